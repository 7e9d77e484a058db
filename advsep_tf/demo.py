"""The main job on the embedded default: scarce paired data + plentiful unpaired data, supervised
baseline vs. adversarial model, on the built-in synthetic corpus. The library behind
`advsep-tf-demo`.

Steps: generate the corpus -> prepare shards -> train the baseline and the adversarial model on
the same paired subset (the adversarial one also on unpaired mixtures and solo recordings) ->
separate the held-out test songs -> evaluate both with museval -> a comparison table, the stems
and a plot of the training curves in the output folder.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from advsep_tf.config import Config, load_config


@dataclass
class DemoScale:
    nb_train: int
    nb_valid: int
    nb_test: int
    nb_unpaired: int
    duration: float
    steps: int


# Paired data is deliberately scarce next to the unpaired pools: the setting the method is for.
FULL = DemoScale(nb_train=4, nb_valid=2, nb_test=4, nb_unpaired=24, duration=12.0, steps=1000)
QUICK = DemoScale(nb_train=2, nb_valid=1, nb_test=2, nb_unpaired=4, duration=6.0, steps=20)


def _stage(message: str, start: float) -> None:
    print(f"[{time.time() - start:6.0f} s] {message}", flush=True)


def plot_training_curves(run_dirs: dict[str, str], png_path: str) -> None:
    """Validation and training L_s of every run, one figure."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, run_dir in run_dirs.items():
        with open(os.path.join(run_dir, "history.csv")) as f:
            rows = list(csv.DictReader(f))
        epochs = [int(r["epoch"]) + 1 for r in rows]
        ax.plot(epochs, [float(r["supervised_loss"]) for r in rows], "--", label=f"{name} train L_s")
        if rows and "val_supervised_loss" in rows[0]:
            ax.plot(epochs, [float(r["val_supervised_loss"]) for r in rows], "-o", label=f"{name} validation L_s")
    ax.set_xlabel("epoch")
    ax.set_ylabel("L_s (MSE of log1p magnitudes)")
    ax.set_title("Supervised loss, baseline vs adversarial")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)


def run_demo(out_dir: str = "demo_output", quick: bool = False, config: Config | None = None, progress: bool = True) -> dict:
    from advsep_tf.data_pipelines import synthetic
    from advsep_tf.data_pipelines.prepare import format_summary, prepare
    from advsep_tf.evaluate import evaluate_folders, format_comparison
    from advsep_tf.separate import Separator, separate_files
    from advsep_tf.train import train

    start = time.time()
    scale = QUICK if quick else FULL
    config = config or load_config("demo")
    os.makedirs(out_dir, exist_ok=True)
    corpus_dir = os.path.join(out_dir, "corpus")
    shard_dir = os.path.join(out_dir, "shards")

    _stage(f"generating the synthetic corpus in {corpus_dir}", start)
    if not os.path.isfile(os.path.join(corpus_dir, "corpus.json")):
        synthetic.write_corpus(
            corpus_dir,
            config.sources,
            sample_rate=config.audio.sample_rate,
            nb_train=scale.nb_train,
            nb_valid=scale.nb_valid,
            nb_test=scale.nb_test,
            nb_mixtures=scale.nb_unpaired,
            nb_solo=scale.nb_unpaired,
            duration=scale.duration,
            seed=config.training.seed,
        )
    corpus = synthetic.read_corpus(corpus_dir)

    _stage("preparing shards", start)
    manifest = prepare(config, [("synthetic", corpus_dir)], shard_dir, overwrite=True, progress=progress)
    print(format_summary(manifest, shard_dir))

    runs = {
        "baseline": config.replace(training={"mode": "supervised"}),
        "adversarial": config.replace(training={"mode": "adversarial", "critics": []}),
    }
    run_dirs, summaries = {}, {}
    for name, run_config in runs.items():
        run_dir = os.path.join(out_dir, "runs", name)
        _stage(f"training {name} ({run_config.training.mode}) for {scale.steps} steps", start)
        summaries[name] = train(run_config, shard_dir, run_dir, steps=scale.steps, resume=os.path.isdir(run_dir))
        run_dirs[name] = run_dir

    test_dir = os.path.join(corpus_dir, "musdb18hq", "test")
    mixtures = [os.path.join(test_dir, track, "mixture.wav") for track in corpus["tracks"]["test"]]
    results = {}
    for name, run_dir in run_dirs.items():
        _stage(f"separating {len(mixtures)} held-out songs with {name}", start)
        separated = os.path.join(out_dir, "separated", name)
        separate_files(Separator.from_checkpoint(run_dir), mixtures, separated, progress=progress)
        _stage(f"evaluating {name} with museval", start)
        results[name] = evaluate_folders(
            separated, test_dir, out_dir=os.path.join(out_dir, "results", name), sources=config.sources
        )

    plot_training_curves(run_dirs, os.path.join(out_dir, "training_curves.png"))
    wall = time.time() - start
    table = format_comparison(results)
    report = (
        f"# advsep-tf demo: supervised baseline vs adversarial ({'quick' if quick else 'full'} scale)\n\n"
        f"Paired training songs: {len(corpus['tracks']['train'])}, unpaired mixtures: {len(corpus['tracks']['mixtures'])}, "
        f"solo recordings per source: {scale.nb_unpaired}, held-out test songs: {len(mixtures)}; "
        f"{scale.steps} separator steps each, preset '{config.name}', seed {config.training.seed}.\n\n"
        f"Mean BSS Eval v4 scores (dB) on the held-out synthetic songs:\n\n{table}\n\n"
        f"Wall time: {wall:.0f} s\n"
    )
    with open(os.path.join(out_dir, "comparison.md"), "w") as f:
        f.write(report)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump({"training": summaries, "results": {k: v.to_dict() for k, v in results.items()},
                   "wall_seconds": round(wall, 1)}, f, indent=2)
    print("\n" + report)
    print(f"Stems in {out_dir}/separated, results in {out_dir}/results, curves in {out_dir}/training_curves.png")
    return {"results": results, "wall_seconds": wall, "table": table, "training": summaries}

