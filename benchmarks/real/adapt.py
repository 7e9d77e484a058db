"""Does adaptation without paired data help? A model trained without MIR-1K (MUSDB18 previews
only) is adapted to MIR-1K from its mixtures and solo vocals alone (`--init --teacher`), and
scored on MIR-1K singers it never heard in any form. The adaptations: the paper's (a vocal
critic); synthetic pairs (the solo vocals mixed over the teacher's accompaniment estimates of the
mixtures, `--synthetic-pairs`); and, with `--accompaniment-pool DIR` (hours of instrumental music,
such as the Debian game-music corpus of `data_pipelines/instrumental_corpus.py`), synthetic pairs
of the solo vocals over that pool, with random phases: half of each batch (`synthetic_pool`) or
all of it (`synthetic_pool_only`; `synthetic_pool_only_ema` with its weights averaged;
`synthetic_pool_only_ema_pitch` with the solo excerpts pitch-shifted too), both stems exact.
Beside them a control adapted with the teacher alone and the starting model.

    python benchmarks/real/adapt.py --out adapt/ [--real ../shared/real] [--steps 500] [--seeds
    1,2,3] [--config real-small] [--methods adapted,synthetic,teacher_only]
    [--accompaniment-pool DIR]

Each seed trains its own starting model and the adaptations (`--seed`); the report gives each
seed's scores, then the adapted model minus the starting model and minus the control, paired by
seed (mean and 95% interval over seeds), on the test singers (adaptation.md) and on the
validation singers the recipe is chosen on (adaptation_valid.md). Every step is an advsep-tf
command (printed as it runs); finished steps are skipped on a rerun.
"""

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
START, CONTROL = "starting model (MUSDB18 only)", "teacher only (control)"
# Recipe choices (steps, averaging, augmentation) are made on these singers, never on the test
# singers: tammy, the validation singer of every split, and the 8 singers of the adaptation's
# mixtures, whose stems no adaptation reads (the teacher-labelled methods do see their mixtures,
# unlabelled; the pool methods never read them). Every MIR-1K singer but the test singers and
# the solo singers: 445 clips.
VALIDATION_SINGERS = (
    "tammy",
    *("Ani", "ariel", "khair", "titon", "Kenshin", "davidson", "geniusturtle", "leon"),
)
CRITIC, SYNTHETIC = "adapted (teacher + vocal critic)", "adapted (teacher + synthetic pairs)"
POOL = "adapted (synthetic pairs over the instrumental pool)"
POOL_ONLY = "adapted (synthetic pairs over the instrumental pool only)"
POOL_ONLY_EMA = "adapted (the same, weights averaged)"
POOL_ONLY_EMA_PITCH = "adapted (the same, solo excerpts pitch-shifted)"
# The target's shards with the instrumental pool as solo accompaniment (--accompaniment-pool).
POOL_SHARDS = "shards_target_pool"
# Every example a synthetic pair: solo vocals over the pool, powers added (random phases).
POOL_ONLY_OPTIONS = ["--mode", "supervised", "--synthetic-pairs", "1", "--remix-phases", "random"]
# label: (run folder, target shards, advsep-tf-train options)
ADAPTATIONS = {
    CRITIC: ("adapted", "shards_target", ["--mode", "adversarial", "--critics", "vocals"]),
    SYNTHETIC: ("synthetic", "shards_target", ["--mode", "supervised", "--synthetic-pairs", "0.5"]),
    POOL: (
        "synthetic_pool",
        POOL_SHARDS,
        ["--mode", "supervised", "--synthetic-pairs", "0.5", "--remix-phases", "random"],
    ),
    POOL_ONLY: ("synthetic_pool_only", POOL_SHARDS, POOL_ONLY_OPTIONS),
    POOL_ONLY_EMA: (
        "synthetic_pool_only_ema",
        POOL_SHARDS,
        POOL_ONLY_OPTIONS + ["--ema-decay", "0.999"],
    ),
    POOL_ONLY_EMA_PITCH: (
        "synthetic_pool_only_ema_pitch",
        POOL_SHARDS,
        POOL_ONLY_OPTIONS + ["--ema-decay", "0.999", "--solo-pitch-shift", "2"],
    ),
    CONTROL: ("teacher_only", "shards_target", ["--mode", "supervised"]),
}


def run(command: list[str], done: str) -> None:
    if os.path.exists(done):
        print(f"done already: {' '.join(command)}", flush=True)
        return
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, check=True)


def train_run(command: list[str], run_dir: str) -> None:
    """An advsep-tf-train command whose run is done once it has exited cleanly (model.keras exists
    from the first epoch on, so it cannot tell)."""
    done = os.path.join(run_dir, "training.done")
    run(command, done)
    open(done, "w").close()


def train_seed(tool, args, seed: int) -> dict[str, str]:
    """{label: run folder} of one seed's starting model, its adaptations and the control."""
    out = os.path.join(args.out, f"seed{seed}")
    source = os.path.join(out, "source")
    train_run(
        [
            tool("advsep-tf-train"),
            "--config",
            args.config,
            "--shards",
            os.path.join(args.out, "shards_source"),
            "--out",
            source,
            "--seed",
            str(seed),
        ],
        source,
    )
    runs = {START: source}
    for label, (folder, shards, options) in ADAPTATIONS.items():
        if folder not in args.methods:
            continue
        run_dir = os.path.join(out, folder)
        train_run(
            [
                tool("advsep-tf-train"),
                "--config",
                args.config,
                "--shards",
                os.path.join(args.out, shards),
                "--out",
                run_dir,
                "--init",
                source,
                "--teacher",
                "--steps",
                str(args.steps),
                "--seed",
                str(seed),
                *options,
            ],
            run_dir,
        )
        runs[label] = run_dir
    return runs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--real", default=os.path.join(HERE, "..", "..", "..", "shared", "real"))
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--config", default="real-small")
    p.add_argument("--seeds", default="1,2,3", help="comma-separated training seeds")
    p.add_argument(
        "--methods",
        help="adaptations to run, comma-separated: adapted (vocal critic), synthetic, "
        "teacher_only, and with --accompaniment-pool synthetic_pool, synthetic_pool_only, "
        "synthetic_pool_only_ema, synthetic_pool_only_ema_pitch (default: adapted, synthetic, "
        "teacher_only, and synthetic_pool_only_ema_pitch, the best measured, with "
        "--accompaniment-pool)",
    )
    p.add_argument(
        "--accompaniment-pool",
        metavar="DIR",
        help="solo accompaniment recordings (the instrumental corpus's accompaniment/ folder) for "
        "the synthetic_pool methods",
    )
    args = p.parse_args(argv)
    default = "adapted,synthetic,teacher_only" + (
        ",synthetic_pool_only_ema_pitch" if args.accompaniment_pool else ""
    )
    args.methods = (args.methods or default).split(",")
    unknown = set(args.methods) - {folder for folder, _, _ in ADAPTATIONS.values()}
    if unknown:
        p.error(f"--methods: unknown {', '.join(sorted(unknown))}")
    pooled = [
        folder
        for folder, shards, _ in ADAPTATIONS.values()
        if folder in args.methods and shards == POOL_SHARDS
    ]
    if pooled and not args.accompaniment_pool:
        p.error(f"--methods {','.join(pooled)} need --accompaniment-pool DIR")
    seeds = [int(s) for s in args.seeds.split(",")]
    bin_dir = os.path.dirname(sys.executable)
    tool = lambda name: os.path.join(bin_dir, name)  # noqa: E731
    data = ["--dataset", f"mir1k={args.real}/mir1k", "--dataset", f"musdb18={args.real}/musdb18_7"]
    out = args.out
    pool = ["--dataset", f"solo/accompaniment={args.accompaniment_pool}"]
    shard_sets = [("shards_source", "source", []), ("shards_target", "target", [])]
    shard_sets += [(POOL_SHARDS, "target", pool)] if pooled else []
    for name, split, extra in shard_sets:
        shards = os.path.join(out, name)
        run(
            [
                tool("advsep-tf-prepare"),
                "--config",
                args.config,
                *data,
                *extra,
                "--split",
                os.path.join(HERE, f"split_adapt_{split}.yaml"),
                "--out",
                shards,
                "--no-progress",
            ],
            os.path.join(shards, "manifest.json"),
        )
    runs_by_seed = {seed: train_seed(tool, args, seed) for seed in seeds}

    import advsep_tf  # noqa: F401
    from advsep_tf.config import load_config
    from advsep_tf.data_pipelines.datasets import all_records
    from advsep_tf.data_pipelines.splits import assign_roles, load_split
    from advsep_tf.experiment import write_test_references
    from advsep_tf.files import write_atomically

    config = load_config(args.config)
    datasets = [("mir1k", f"{args.real}/mir1k"), ("musdb18", f"{args.real}/musdb18_7")]
    records = all_records(datasets, config)
    test = assign_roles(
        records, config, load_split(os.path.join(HERE, "split_adapt_target.yaml"), config)
    )["test"]
    valid = [r for r in records if r.origin == "mir1k" and r.singer in VALIDATION_SINGERS]
    for role, clips, folder in (("test", test, ""), ("validation", valid, "_valid")):
        references = write_test_references(
            clips, os.path.join(out, f"test_references{folder}"), config, 16000
        )
        table = score_table(runs_by_seed, seeds, references, out, folder, config)
        singers = ", ".join(sorted({r.singer for r in clips}))
        print(
            f"\nMIR-1K {role} singers ({singers}: {len(clips)} clips, 16 kHz), mean over clips; "
            f"differences: mean over seeds ± 95% interval:\n\n{table}"
        )
        write_atomically(os.path.join(out, f"adaptation{folder}.md"), table + "\n")


def score_table(runs_by_seed, seeds, references, out, folder, config) -> str:
    """Each seed's scores on the clips in `references`, then each adaptation minus the starting
    model and minus the control, paired by seed (results under out/results<folder>/)."""
    from advsep_tf.evaluate import evaluate_folders, load_result
    from advsep_tf.experiment import seed_statistics
    from advsep_tf.separate import Separator
    from advsep_tf.stem_files import separate_files

    mixtures = [
        os.path.join(references, t, "mixture.wav")
        for t in sorted(os.listdir(references))
        if os.path.isdir(os.path.join(references, t))
    ]
    lines = [
        "| seed | model | vocals SDR | accompaniment SDR | vocals SIR | vocals SAR |",
        "|---|---|---|---|---|---|",
    ]
    sdr = {}  # (seed, label, source) -> mean SDR over clips
    for seed, runs in runs_by_seed.items():
        for label, run_dir in runs.items():
            name = os.path.relpath(run_dir, out).replace(os.sep, "_")
            result_dir = os.path.join(out, f"results{folder}", name)
            if not os.path.isfile(os.path.join(result_dir, "results.json")):
                estimates = os.path.join(out, f"separated{folder}", name)
                separate_files(
                    Separator.load(run_dir), mixtures, estimates, progress=False, overwrite=True
                )
                evaluate_folders(estimates, references, out_dir=result_dir, sources=config.sources)
            agg = load_result(os.path.join(result_dir, "results.json")).aggregate
            for source in ("vocals", "accompaniment"):
                sdr[seed, label, source] = agg[source]["SDR"]["mean"]
            lines.append(
                f"| {seed} | {label} | {agg['vocals']['SDR']['mean']:.2f} | "
                f"{agg['accompaniment']['SDR']['mean']:.2f} | {agg['vocals']['SIR']['mean']:.2f} | "
                f"{agg['vocals']['SAR']['mean']:.2f} |"
            )
    lines += [
        "",
        "| difference, paired by seed | vocals SDR | accompaniment SDR | seeds better (vocals) |",
        "|---|---|---|---|",
    ]
    ran = set(next(iter(runs_by_seed.values())))
    for adapted in [a for a in ADAPTATIONS if a != CONTROL and a in ran]:
        for minus in [m for m in (START, CONTROL) if m in ran]:
            cells = []
            for source in ("vocals", "accompaniment"):
                stats = seed_statistics(
                    [sdr[seed, adapted, source] - sdr[seed, minus, source] for seed in seeds]
                )
                interval = f" ± {stats['ci95']:.2f}" if stats["ci95"] is not None else ""
                cells.append(f"{stats['mean']:+.2f}{interval}")
            better = sum(
                sdr[seed, adapted, "vocals"] > sdr[seed, minus, "vocals"] for seed in seeds
            )
            lines.append(
                f"| {adapted} minus {minus} | {cells[0]} | {cells[1]} | {better}/{len(seeds)} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
