"""advsep-tf-prepare: audio folders -> TFRecord shards of spectrogram patches + manifest.json."""

from __future__ import annotations

import sys

from advsep_tf.cli import common

EPILOG = """dataset kinds (--dataset KIND=PATH, repeatable):
  synthetic      the built-in synthetic corpus (generated at PATH if PATH has none)
  paired         PATH/<track>/<source>.wav, optional PATH/<track>/mixture.wav
  mixtures       any tree of audio files: unlabelled mixtures
  solo/<source>  any tree of audio files: solo recordings of <source>

example:
  advsep-tf-prepare --config demo --dataset synthetic=corpus/ --out shards/
"""


def main(argv=None) -> None:
    p = common.parser("advsep-tf-prepare", __doc__.splitlines()[0])
    p.epilog = EPILOG
    p.formatter_class = __import__("argparse").RawDescriptionHelpFormatter
    common.add_config_option(p)
    p.add_argument("--dataset", action="append", required=True, metavar="KIND=PATH", help="a dataset to read")
    p.add_argument("--split", metavar="SPLIT_FILE", help="JSON/YAML {train, valid, test: [track ids]}")
    p.add_argument("--out", required=True, metavar="SHARD_DIR")
    p.add_argument("--overwrite", action="store_true", help="replace a shard set already in SHARD_DIR")
    p.add_argument("--examples-per-shard", type=int, default=256, metavar="N")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    common.quiet_tensorflow(args.verbose)
    if args.examples_per_shard < 1:
        p.error("--examples-per-shard must be >= 1")

    from advsep_tf.config import load_config
    from advsep_tf.data_pipelines.datasets import parse_dataset_arg
    from advsep_tf.data_pipelines.prepare import format_summary, prepare

    config = load_config(args.config)
    datasets = [parse_dataset_arg(d) for d in args.dataset]
    manifest = prepare(
        config, datasets, args.out, args.split, args.overwrite,
        progress=not args.no_progress, examples_per_shard=args.examples_per_shard,
    )
    print(format_summary(manifest, args.out))


def cli() -> int:
    return common.run(main)


if __name__ == "__main__":
    sys.exit(cli())
