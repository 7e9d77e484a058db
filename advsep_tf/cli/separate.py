"""advsep-tf-separate: separate audio files into one file per source."""

from __future__ import annotations

import os
import sys
import time

from advsep_tf.cli import common, options
from advsep_tf.config import PRETRAINED

# The code is MIT; the shipped weights are not. Said in --help and, once per run, on stderr.
MODEL_TERMS = (
    "the default model ('pretrained') was trained on MIR-1K and MUSDB18 previews: "
    "research and non-commercial use only (advsep_tf/pretrained/MODEL_CARD.md)"
)
EPILOG = (
    "example: advsep-tf-separate song.wav --model runs/va --out separated/   (-> "
    "separated/song/vocals.wav ...); "
    "in a pipe: ffmpeg -i song.mp3 -f wav - | advsep-tf-separate - --out - --stem vocals > "
    "vocals.wav. "
    f"Terms: {MODEL_TERMS}; the code is MIT-licensed."
)


def uses_shipped_model(model: str) -> bool:
    """True when --model names the weights shipped in the package (not a local folder of that
    name)."""
    return model == PRETRAINED and not os.path.exists(model)


def main(argv=None) -> None:
    p = common.parser("advsep-tf-separate", __doc__, EPILOG)
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="audio files (wav, flac, ogg, mp3, m4a, ...); '-' reads standard input (needs ffmpeg)",
    )
    options.add(p, "--model", "--out", "--stem", "--filename-format", "--codec")
    options.add(p, "--reconstruction", "--mask-power", "--channel-masks", "--band-extension")
    options.add(p, "--silence-gate")
    options.add(p, "--chunk-patches")
    options.add(p, "--name", "--allow-truncated", "--overwrite", "--no-progress", "--quiet-terms")
    args = p.parse_args(argv)
    # The user waits from here: start-up (TensorFlow, the model, the graph) counts in the summary.
    started = time.monotonic()
    try:
        names = {args.filename_format.format(track="t", source=s, codec="c") for s in ("a", "b")}
    except (KeyError, IndexError, ValueError) as exc:
        p.error(
            f"--filename-format {args.filename_format!r}: {exc.__class__.__name__}: {exc} "
            "(placeholders: {track}, {source}, {codec})"
        )
    if len(names) == 1:
        p.error(
            f"--filename-format {args.filename_format!r}: needs {{source}}, or every stem is "
            f"written to one file"
        )
    to_stdout = args.out == "-"
    if to_stdout and (len(args.inputs) != 1 or not args.stem):
        p.error(
            "--out - writes one stem of one input to standard output: give one INPUT and --stem "
            "SOURCE"
        )
    if args.stem and not to_stdout:
        p.error("--stem goes with --out - (a folder gets every stem)")
    if args.name is not None and "-" not in args.inputs:
        p.error("--name names standard input's stems: it goes with INPUT '-'")
    bad_name = args.name is not None and (not args.name.strip() or os.sep in args.name)
    if bad_name or args.name in (".", ".."):
        p.error(f"--name {args.name!r}: must be a file name, without {os.sep}")
    if uses_shipped_model(args.model) and not args.quiet_terms:
        print(f"note: {MODEL_TERMS}; --quiet-terms hides this", file=sys.stderr)
    common.quiet_tensorflow(args.verbose)

    from advsep_tf.runs import resolve_model_path
    from advsep_tf.separate import Separator
    from advsep_tf.stem_files import check_paths, separate_files

    def load_separator() -> Separator:
        return Separator.load(
            args.model,
            chunk_patches=args.chunk_patches,
            reconstruction=args.reconstruction,
            mask_power=args.mask_power,
            channel_masks=args.channel_masks,
            band_extension=args.band_extension,
            silence_gate_db=args.silence_gate,
        )

    if to_stdout:
        separator = load_separator()
        if args.stem not in separator.config.sources:
            sources = ", ".join(separator.config.sources)
            p.error(f"--stem {args.stem}: this model separates {sources}")
        truncated = separator.separate_to_stream(
            args.inputs[0], args.stem, codec=args.codec, allow_truncated=args.allow_truncated
        )
        if truncated:
            print(f"warning: {truncated}; separated the decodable part only", file=sys.stderr)
        return

    check_paths(args.inputs, args.out)  # before the model loads: a bad path costs no work
    say = _progress_line if not args.no_progress else (lambda message: None)
    say(f"loading the model ({args.model}) ...")
    separator = load_separator()
    say("preparing the separation graph (traced once, on the first stretch of audio) ...")
    summary = separate_files(
        separator,
        args.inputs,
        args.out,
        progress=not args.no_progress,
        filename_format=args.filename_format,
        codec=args.codec,
        overwrite=args.overwrite,
        protected={resolve_model_path(args.model): "the model"},
        allow_truncated=args.allow_truncated,
        stdin_name=args.name or "stdin",
    )
    waited = time.monotonic() - started
    print(
        f"Separated {summary['files']} file(s), {summary['audio_seconds']:.1f} s of audio in "
        f"{waited:.1f} s from the start, loading included "
        f"({summary['audio_seconds'] / waited:.2f}x real time; separating alone "
        f"{summary['seconds']:.1f} s, {summary['x_real_time']}x) into {args.out}"
    )
    for message in summary["truncated"]:
        print(f"  truncated input: {message}; separated the decodable part only")


def _progress_line(message: str) -> None:
    """A start-up stage on stderr, before the progress bar exists (stdout keeps the summary)."""
    print(message, file=sys.stderr, flush=True)


cli = common.console_script(main)


if __name__ == "__main__":
    sys.exit(cli())
