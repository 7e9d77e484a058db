"""advsep-tf-experiment: the paper's experiment: baseline, V (vocal critic) and VA (a critic per
source) on the same scarce paired data, evaluated on held-out tracks beside the oracle."""

from __future__ import annotations

import sys

from advsep_tf.cli import common


def main(argv=None) -> None:
    p = common.parser("advsep-tf-experiment", __doc__.splitlines()[0])
    p.epilog = (
        "examples:\n"
        "  advsep-tf-experiment --out experiment/                      # synthetic corpus, demo preset\n"
        "  advsep-tf-experiment --config paper --shards shards/ --test-dir dsd100_test/ --out paper_run/"
    )
    p.formatter_class = __import__("argparse").RawDescriptionHelpFormatter
    common.add_config_option(p, required=False)
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--shards", metavar="SHARD_DIR", help="a prepared shard set (default: generate a synthetic corpus)")
    p.add_argument("--test-dir", metavar="DIR", help="held-out tracks as <track>/<source>.wav (with --shards)")
    p.add_argument("--steps", type=int, metavar="N", help="separator steps per model (default: training.max_steps)")
    p.add_argument("--models", default="baseline,V,VA", help="which of baseline, V, VA to run (default: all)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    common.quiet_tensorflow(args.verbose)

    from advsep_tf.config import load_config
    from advsep_tf.experiment import PAPER_RUNS, run_experiment

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in PAPER_RUNS]
    if unknown:
        p.error(f"--models: unknown model(s) {', '.join(unknown)} (known: {', '.join(PAPER_RUNS)})")
    if args.shards and not args.test_dir:
        p.error("--shards needs --test-dir, the held-out tracks as <track>/<source>.wav")
    config = load_config(args.config or "demo")
    if "V" in names and "vocals" not in config.sources:
        p.error(f"--models V needs a 'vocals' source; config '{config.name}' has {', '.join(config.sources)}")
    run_experiment(
        args.out, config, runs={n: PAPER_RUNS[n] for n in names}, steps=args.steps, shard_dir=args.shards,
        test_dir=args.test_dir, title="advsep-tf experiment: baseline vs V vs VA", progress=not args.no_progress,
    )


def cli() -> int:
    return common.run(main)


if __name__ == "__main__":
    sys.exit(cli())
