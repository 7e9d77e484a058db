"""Does adaptation without paired data help? A model trained without MIR-1K (MUSDB18 previews
only) is adapted to MIR-1K from its mixtures and solo vocals alone (`--init --teacher`, a vocal
critic), and scored on MIR-1K singers it never heard in any form, beside a control adapted with
the teacher alone (no critic) and the starting model.

    python benchmarks/real/adapt.py --out adapt/ [--real ../shared/real] [--steps 500]

Every step is an advsep-tf command (printed as it runs); finished steps are skipped on a rerun.
"""

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(command: list[str], done: str) -> None:
    if os.path.exists(done):
        print(f"done already: {' '.join(command)}", flush=True)
        return
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, check=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--real", default=os.path.join(HERE, "..", "..", "..", "shared", "real"))
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--config", default="real-small")
    args = p.parse_args(argv)
    bin_dir = os.path.dirname(sys.executable)
    tool = lambda name: os.path.join(bin_dir, name)  # noqa: E731
    data = ["--dataset", f"mir1k={args.real}/mir1k", "--dataset", f"musdb18={args.real}/musdb18_7"]
    out = args.out
    for name in ("source", "target"):
        shards = os.path.join(out, f"shards_{name}")
        run([tool("advsep-tf-prepare"), "--config", args.config, *data, "--split",
             os.path.join(HERE, f"split_adapt_{name}.yaml"), "--out", shards, "--no-progress"],
            os.path.join(shards, "manifest.json"))
    source = os.path.join(out, "source")
    run([tool("advsep-tf-train"), "--config", args.config, "--shards", os.path.join(out, "shards_source"),
         "--out", source], os.path.join(source, "history.csv.done"))
    open(os.path.join(source, "history.csv.done"), "w").close()
    variants = {"adapted (teacher + vocal critic)": ["--mode", "adversarial", "--critics", "vocals"],
                "teacher only (control)": ["--mode", "supervised"]}
    runs = {"starting model (MUSDB18 only)": source}
    for label, options in variants.items():
        run_dir = os.path.join(out, "adapted" if "critic" in label else "teacher_only")
        run([tool("advsep-tf-train"), "--config", args.config, "--shards", os.path.join(out, "shards_target"),
             "--out", run_dir, "--init", source, "--teacher", "--steps", str(args.steps), *options],
            os.path.join(run_dir, "model.keras"))
        runs[label] = run_dir

    import advsep_tf  # noqa: F401
    from advsep_tf.config import load_config
    from advsep_tf.data_pipelines.datasets import all_records
    from advsep_tf.data_pipelines.splits import assign_roles, load_split
    from advsep_tf.evaluate import evaluate_folders, load_result
    from advsep_tf.experiment import write_test_references
    from advsep_tf.separate import Separator, separate_files

    config = load_config(args.config)
    datasets = [("mir1k", f"{args.real}/mir1k"), ("musdb18", f"{args.real}/musdb18_7")]
    test = assign_roles(all_records(datasets, config), config,
                        load_split(os.path.join(HERE, "split_adapt_target.yaml"), config))["test"]
    references = write_test_references(test, os.path.join(out, "test_references"), config, 16000)
    mixtures = [os.path.join(references, t, "mixture.wav") for t in sorted(os.listdir(references))
                if os.path.isdir(os.path.join(references, t))]
    lines = ["| model | vocals SDR | accompaniment SDR | vocals SIR | vocals SAR |", "|---|---|---|---|---|"]
    for label, run_dir in runs.items():
        result_dir = os.path.join(out, "results", os.path.basename(run_dir))
        if not os.path.isfile(os.path.join(result_dir, "results.json")):
            estimates = os.path.join(out, "separated", os.path.basename(run_dir))
            separate_files(Separator.load(run_dir), mixtures, estimates, progress=False, overwrite=True)
            evaluate_folders(estimates, references, out_dir=result_dir, sources=config.sources)
        agg = load_result(os.path.join(result_dir, "results.json")).aggregate
        lines.append(f"| {label} | {agg['vocals']['SDR']['mean']:.2f} | {agg['accompaniment']['SDR']['mean']:.2f} | "
                     f"{agg['vocals']['SIR']['mean']:.2f} | {agg['vocals']['SAR']['mean']:.2f} |")
    table = "\n".join(lines)
    print(f"\nMIR-1K test singers (abjones, annar: {len(mixtures)} clips, 16 kHz), mean over clips:\n\n{table}")
    with open(os.path.join(out, "adaptation.md"), "w") as f:
        f.write(table + "\n")


if __name__ == "__main__":
    main()
