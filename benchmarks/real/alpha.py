"""VA with another weight alpha of the adversarial term, or other critics, trained exactly as an
experiment's VA was (its config, its number of steps, from the same seed's baseline) and compared
paired by seed with that experiment's baseline, baseline+ (the same extra steps, supervised) and VA.

    python benchmarks/real/alpha.py exp_paired3 --alpha 0.01 [--seeds 1,2,3] [--out
    exp_paired3/alpha_0.01]
    python benchmarks/real/alpha.py exp_paired3 --set critic.base_filters=8 --set
    critic.max_filters=32

Writes OUT/runs/seed<N>/, OUT/results/seed<N>/results.json, and OUT/comparison.md (the seed table
of `advsep-tf-experiment` with the new model added). Finished seeds are reused.
"""

import argparse
import glob
import json
import os
import sys


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "experiment", help="an advsep-tf-experiment folder run with --warm-start-steps"
    )
    parser.add_argument(
        "--alpha", type=float, default=None, help="loss.alpha (default: the VA run's)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=NUMBER",
        help="another config value for the variant (repeatable), e.g. critic.base_filters=8",
    )
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    import advsep_tf  # noqa: F401 - oneDNN on before TensorFlow loads
    from advsep_tf.config import Config
    from advsep_tf.evaluate import evaluate_folders, load_result
    from advsep_tf.experiment import seed_table
    from advsep_tf.files import load_json_or_yaml, write_atomically
    from advsep_tf.separate import Separator
    from advsep_tf.stem_files import separate_files
    from advsep_tf.train import train

    changes: dict = {}
    if args.alpha is not None:
        changes.setdefault("loss", {})["alpha"] = args.alpha
    for setting in args.set:
        key, _, value = setting.partition("=")
        section, _, field = key.partition(".")
        if not (section and field and value):
            parser.error(f"--set {setting!r}: expected SECTION.FIELD=NUMBER")
        changes.setdefault(section, {})[field] = (
            float(value) if "." in value or "e" in value else int(value)
        )
    if not changes:
        parser.error("give --alpha or --set: the variant must differ from VA")
    label = " ".join(
        f"{field}={value:g}" for section in changes.values() for field, value in section.items()
    )
    experiment = args.experiment
    out = args.out or os.path.join(experiment, label.replace(" ", "_").replace("=", "_"))
    name = f"VA {label}"
    test_dir = os.path.join(experiment, "test_references")
    mixtures = sorted(glob.glob(os.path.join(test_dir, "*", "mixture.wav")))
    results_by_seed, config = {}, None
    for seed in (int(s) for s in args.seeds.split(",")):
        runs = os.path.join(experiment, "runs", f"seed{seed}")
        va_dir = os.path.join(runs, "VA")
        config = Config.from_dict(
            load_json_or_yaml(os.path.join(va_dir, "config.json"), "run config"), origin=va_dir
        )
        config = config.replace(**changes)
        with open(os.path.join(va_dir, "run.json")) as f:
            steps = json.loads(f.readline())["steps"]  # the warm-start steps VA was given
        run_dir = os.path.join(out, "runs", f"seed{seed}")
        result_dir = os.path.join(out, "results", f"seed{seed}")
        if not os.path.isfile(os.path.join(result_dir, "results.json")):
            print(
                f"seed {seed}: training {name} for {steps} steps from "
                f"{os.path.join(runs, 'baseline')}",
                flush=True,
            )
            train(
                config,
                os.path.join(experiment, "shards"),
                run_dir,
                steps=steps,
                resume=os.path.isdir(run_dir),
                init=os.path.join(runs, "baseline"),
            )
            separated = os.path.join(out, "separated", f"seed{seed}")
            separate_files(
                Separator.from_checkpoint(run_dir),
                mixtures,
                separated,
                progress=False,
                overwrite=True,
            )
            evaluate_folders(separated, test_dir, out_dir=result_dir, sources=config.sources)
        results = {
            model: load_result(
                os.path.join(experiment, "results", f"seed{seed}", model, "results.json")
            )
            for model in ("baseline", "baseline+", "VA")
        }
        results[name] = load_result(os.path.join(result_dir, "results.json"))
        results_by_seed[seed] = results
    table, numbers = seed_table(results_by_seed, list(config.sources))
    print(table)
    arguments = argv if argv is not None else sys.argv[1:]
    write_atomically(
        os.path.join(out, "comparison.md"),
        f"# {name} against {experiment}'s models, paired by seed\n\n    "
        f"{' '.join(['python benchmarks/real/alpha.py', *arguments])}\n\n{table}\n",
    )
    write_atomically(os.path.join(out, "summary.json"), json.dumps(numbers, indent=2))


if __name__ == "__main__":
    main()
