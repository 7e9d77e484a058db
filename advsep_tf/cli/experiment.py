"""advsep-tf-experiment: the paper's experiment: baseline, V (vocal critic) and VA (a critic per
source) on the same scarce paired data, evaluated on held-out tracks beside the oracle."""

from __future__ import annotations

import sys

from advsep_tf.cli import common, options

EPILOG = (
    "examples:\n"
    "  advsep-tf-experiment --out experiment/                      # synthetic corpus, demo "
    "preset\n"
    "  advsep-tf-experiment --config paper --shards shards/ --test-dir dsd100_test/ --out "
    "paper_run/\n"
    "  advsep-tf-experiment --config real-small --dataset mir1k=MIR-1K/ --dataset "
    "musdb18=MUSDB18-7/ \\\n"
    "      --split benchmarks/real/split_paired3.yaml --seeds 1,2,3 --warm-start-steps 600 "
    "--out real_exp/"
)


def main(argv=None) -> None:
    p = common.parser("advsep-tf-experiment", __doc__, EPILOG)
    options.add(p, "--config", "--out", "--shards", "--test-dir", "--steps", "--dataset", "--split")
    options.add(p, "--test-rate", "--seeds", "--warm-start-steps", "--models", "--ceiling-split")
    options.add(p, "--no-progress")
    args = p.parse_args(argv)
    common.quiet_tensorflow(args.verbose)

    from advsep_tf.config import load_config
    from advsep_tf.experiment import METHODS, run_experiment

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        p.error(f"--models: unknown model(s) {', '.join(unknown)} (known: {', '.join(METHODS)})")
    if "ceiling" in names and not args.ceiling_split:
        p.error("--models ceiling needs --ceiling-split")
    if args.shards and not args.test_dir:
        p.error("--shards needs --test-dir, the held-out tracks as <track>/<source>.wav")
    from advsep_tf.data_pipelines.datasets import parse_dataset_arg

    if args.dataset and args.shards:
        p.error("give --dataset (prepared here) or --shards (already prepared), not both")
    if args.split and not args.dataset:
        p.error("--split applies to --dataset")
    try:
        seeds = None
        if args.seeds is not None:
            seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        seeds = [-1]
    if seeds is not None and (not seeds or min(seeds) < 0 or max(seeds) >= 2**32):
        p.error(f"--seeds: expected integers in [0, 2**32) separated by commas, got '{args.seeds}'")
    if args.warm_start_steps is not None and args.warm_start_steps < 1:
        p.error("--warm-start-steps must be >= 1")
    if args.warm_start_steps and "baseline" not in names:
        p.error(
            "--warm-start-steps starts the adversarial models from the baseline: include it in "
            "--models"
        )
    config = load_config(args.config or "demo")
    if "V" in names and "vocals" not in config.sources:
        p.error(
            f"--models V needs a 'vocals' source; config '{config.name}' has "
            f"{', '.join(config.sources)}"
        )
    run_experiment(
        args.out,
        config,
        runs={n: METHODS[n] for n in names},
        steps=args.steps,
        shard_dir=args.shards,
        test_dir=args.test_dir,
        title=f"advsep-tf experiment: {' vs '.join(names)}",
        progress=not args.no_progress,
        datasets=[parse_dataset_arg(d) for d in args.dataset] or None,
        split_file=args.split,
        seeds=seeds,
        warm_start_steps=args.warm_start_steps,
        test_rate=args.test_rate,
        ceiling_split=args.ceiling_split,
        command=common.command_line("advsep-tf-experiment", argv),
    )


cli = common.console_script(main)


if __name__ == "__main__":
    sys.exit(cli())
