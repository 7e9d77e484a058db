"""advsep-tf-experiment: the paper's experiment: baseline, V (vocal critic) and VA (a critic per
source) on the same scarce paired data, evaluated on held-out tracks beside the oracle."""

from __future__ import annotations

import shlex
import sys

from advsep_tf.cli import common, options


def main(argv=None) -> None:
    p = common.parser(
        "advsep-tf-experiment",
        __doc__,
        "examples:\n"
        "  advsep-tf-experiment --out experiment/                      # synthetic corpus, demo "
        "preset\n"
        "  advsep-tf-experiment --config paper --shards shards/ --test-dir dsd100_test/ --out "
        "paper_run/\n"
        "  advsep-tf-experiment --config real-small --dataset mir1k=MIR-1K/ --dataset "
        "musdb18=MUSDB18-7/ \\\n"
        "      --split benchmarks/real/split_paired3.yaml --seeds 1,2,3 --warm-start-steps 600 "
        "--out real_exp/",
    )
    options.add(p, "--config", required=False)
    options.add(
        p,
        "--out",
        metavar="DIR",
        help="the experiment's folder: runs, stems, results, comparison.md, report.html",
    )
    options.add(p, "--shards", help="a prepared shard set (default: generate a synthetic corpus)")
    p.add_argument(
        "--test-dir", metavar="DIR", help="held-out tracks as <track>/<source>.wav (with --shards)"
    )
    options.add(p, "--steps", help="separator steps per model (default: training.max_steps)")
    options.add(
        p,
        "--dataset",
        default=[],
        help="a corpus in its own layout, as advsep-tf-prepare's --dataset (repeatable)",
    )
    options.add(p, "--split", help="split spec for --dataset; its test tracks are the test set")
    p.add_argument(
        "--test-rate",
        type=options.number(int, 1),
        default=44100,
        metavar="HZ",
        help="rate of the test references written from the split (default 44100: museval's)",
    )
    p.add_argument(
        "--seeds",
        metavar="N,N,...",
        help="train every model once per seed (default: the config's seed)",
    )
    p.add_argument(
        "--warm-start-steps",
        type=options.number(int, 1),
        metavar="N",
        help="adversarial models start from the same seed's trained baseline and train N more "
        "steps; "
        "a 'baseline+' control trains the baseline N more steps supervised",
    )
    p.add_argument(
        "--models",
        default="baseline,V,VA",
        metavar="NAME,...",
        help="models to compare, in training order (default: baseline,V,VA): baseline, V, VA "
        "(the paper's), VA-SN (spectrally normalised critics), synthetic (synthetic pairs "
        "from the solo pools), teacher (pseudo labels from the baseline), synthetic+teacher, "
        "ceiling (the pools with their true stems; needs --ceiling-split)",
    )
    p.add_argument(
        "--ceiling-split",
        metavar="FILE",
        help="split spec for the ceiling model: the --split with the unpaired pools moved to train",
    )
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
        command="advsep-tf-experiment "
        + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)),
    )


cli = common.console_script(main)


if __name__ == "__main__":
    sys.exit(cli())
