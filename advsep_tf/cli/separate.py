"""advsep-tf-separate: separate audio files into one file per source."""

from __future__ import annotations

import sys

from advsep_tf.cli import common


def main(argv=None) -> None:
    p = common.parser("advsep-tf-separate", __doc__.splitlines()[0])
    p.epilog = "example: advsep-tf-separate song.wav --model runs/va --out separated/   (-> separated/song/vocals.wav ...)"
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files (wav, flac, ogg, mp3, m4a, ...)")
    p.add_argument("--model", default="pretrained", metavar="RUN_DIR_OR_SAVEDMODEL",
                   help="a run directory, a .keras file, a SavedModel, or 'pretrained' (default: the vocals/"
                        "accompaniment separator shipped with the package)")
    p.add_argument("--out", required=True, metavar="OUT_DIR")
    p.add_argument("--filename-format", default="{track}/{source}.{codec}", help="default: {track}/{source}.{codec}")
    p.add_argument("--codec", default="wav", choices=["wav", "flac", "ogg", "mp3"],
                   help="wav (float32) or flac (24 bit) keep the stems exact; ogg and mp3 are lossy")
    p.add_argument("--reconstruction", default="mask", choices=["mask", "direct"],
                   help="for input above the model's rate: 'mask' (default) applies the estimates as soft "
                        "masks to the input-rate mixture and keeps the high band; 'direct' resamples the "
                        "band-limited stems")
    p.add_argument("--mask-power", type=float, default=1.0, help="1: magnitude ratio masks; 2: Wiener-style")
    p.add_argument("--chunk-patches", type=int, default=16, help="patches per separator call (memory bound)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files at the stems' paths (an earlier separation's); never an input or the model")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        names = {args.filename_format.format(track="t", source=s, codec="c") for s in ("a", "b")}
    except (KeyError, IndexError, ValueError) as exc:
        p.error(f"--filename-format {args.filename_format!r}: {exc.__class__.__name__}: {exc} "
                "(placeholders: {track}, {source}, {codec})")
    if len(names) == 1:
        p.error(f"--filename-format {args.filename_format!r}: needs {{source}}, or every stem is written to one file")
    common.quiet_tensorflow(args.verbose)

    from advsep_tf.separate import Separator, check_paths, separate_files
    from advsep_tf.runs import resolve_model_path

    check_paths(args.inputs, args.out)  # before the model loads: a bad path costs no work
    separator = Separator.load(
        args.model, chunk_patches=args.chunk_patches, reconstruction=args.reconstruction, mask_power=args.mask_power
    )
    summary = separate_files(
        separator, args.inputs, args.out, progress=not args.no_progress,
        filename_format=args.filename_format, codec=args.codec, overwrite=args.overwrite,
        protected={resolve_model_path(args.model): "the model"},
    )
    print(
        f"Separated {summary['files']} file(s), {summary['audio_seconds']:.1f} s of audio in {summary['seconds']:.1f} s "
        f"({summary['x_real_time']}x real time) into {args.out}"
    )


def cli() -> int:
    return common.run(main)


if __name__ == "__main__":
    sys.exit(cli())
