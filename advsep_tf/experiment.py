"""The paper's experiment as one call: several models (supervised baseline, V, VA) trained on the
same scarce paired data with the same seed, evaluated on the same held-out tracks, next to the
ideal-ratio-mask oracle. The library behind `advsep-tf-experiment` and `advsep-tf-demo`.

Writes into the output folder: `runs/<model>/` (run directories), `separated/<model>/`,
`results/<model>/` (results.json/.csv), `results/oracle/`, `comparison.md`, `summary.json`,
`boxplot_sdr.png`, `training_curves.png` and `critic_gradients.png` (the paper's figure: the
gradient of each critic's output with respect to the separator's estimate), and `experiment.json`
first, which marks the folder as an experiment's: a rerun continues only such a folder (or a new
or empty one), so an experiment never writes among someone else's files.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import numpy as np

from advsep_tf.config import Config
from advsep_tf.export.atomic import check_output_folder, save_figure_atomically, write_atomically

MARKER = "experiment.json"
MARKER_FORMAT = "advsep-tf-experiment"

# Training overrides per model: the paper's three runs.
PAPER_RUNS = {
    "baseline": {"mode": "supervised"},
    "V": {"mode": "adversarial", "critics": ["vocals"]},
    "VA": {"mode": "adversarial", "critics": []},
}


@dataclass
class CorpusScale:
    """Size of a generated synthetic corpus: paired data scarce, unpaired data plentiful."""

    nb_train: int
    nb_valid: int
    nb_test: int
    nb_unpaired: int
    duration: float


DEFAULT_SCALE = CorpusScale(nb_train=4, nb_valid=2, nb_test=4, nb_unpaired=24, duration=12.0)


def is_experiment_dir(path: str) -> bool:
    """Whether `path` is an experiment's output folder (its marker, written first, is there)."""
    from advsep_tf.data_pipelines.datasets import load_json_or_yaml
    from advsep_tf.errors import AdvsepError

    try:
        marker = load_json_or_yaml(os.path.join(path, MARKER), "experiment marker")
    except AdvsepError:
        return False
    return isinstance(marker, dict) and marker.get("format") == MARKER_FORMAT


def open_experiment_dir(out_dir: str, title: str) -> None:
    """Refuse a folder of someone else's files before any work; mark a new one as ours."""
    check_output_folder(out_dir, is_experiment_dir, "an earlier experiment's folder")
    os.makedirs(out_dir, exist_ok=True)
    if not is_experiment_dir(out_dir):
        write_atomically(os.path.join(out_dir, MARKER), json.dumps(
            {"format": MARKER_FORMAT, "title": title, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2) + "\n")


def stage(message: str, start: float) -> None:
    print(f"[{time.time() - start:6.0f} s] {message}", flush=True)


def plot_training_curves(run_dirs: dict[str, str], png_path: str) -> None:
    """Training and validation L_s of every run in one figure."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, run_dir in run_dirs.items():
        with open(os.path.join(run_dir, "history.csv")) as f:
            rows = list(csv.DictReader(f))
        epochs = [int(r["epoch"]) + 1 for r in rows]
        (line,) = ax.plot(epochs, [float(r["supervised_loss"]) for r in rows], "--", label=f"{name} train")
        if rows and "val_supervised_loss" in rows[0]:
            ax.plot(epochs, [float(r["val_supervised_loss"]) for r in rows], "-o", color=line.get_color(),
                    label=f"{name} validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("L_s (MSE of log1p magnitudes)")
    ax.set_title("Supervised loss per model")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure_atomically(fig, png_path, dpi=100)
    plt.close(fig)


def loudest_patch(waveform: np.ndarray, config: Config) -> np.ndarray:
    """The (1, nb_bins, nb_frames, 1) log1p-magnitude patch of a mono waveform with most energy."""
    from advsep_tf import spectral

    spec = config.spectrogram
    spectrum = spectral.stft(waveform[None].astype(np.float32), spec.n_fft, spec.n_hop)
    patches = spectral.to_patches(spectral.log_magnitude(spectrum, spec.nb_bins), spec.nb_frames, spec.nb_frames)
    patches = patches.numpy()
    return patches[np.argmax(patches.sum(axis=(1, 2, 3)))][None]


def plot_critic_gradients(model, mixture_patch: np.ndarray, png_path: str) -> None:
    """The paper's figure: d critic_k(estimate_k) / d estimate_k, beside the mixture and estimate.

    Where the gradient is positive, raising the estimate's magnitude makes the critic find it more
    like a real solo recording of that source.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import tensorflow as tf

    config = model.separation_config
    estimates = model.separator(tf.constant(mixture_patch), training=False)
    rows = []
    for critic, source in zip(model.critics, model.critic_sources):
        k = config.sources.index(source)
        estimate = estimates[..., k : k + 1]
        with tf.GradientTape() as tape:
            tape.watch(estimate)
            score = critic(estimate, training=False)
        gradient = tape.gradient(score, estimate)
        rows.append((source, estimate.numpy()[0, ..., 0], gradient.numpy()[0, ..., 0]))
    fig, axes = plt.subplots(len(rows), 3, figsize=(11, 3.2 * len(rows)), squeeze=False)
    for (source, estimate, gradient), row in zip(rows, axes):
        row[0].imshow(mixture_patch[0, ..., 0], origin="lower", aspect="auto", cmap="magma")
        row[0].set_title("mixture (log1p magnitude)")
        row[1].imshow(estimate, origin="lower", aspect="auto", cmap="magma")
        row[1].set_title(f"{source} estimate")
        limit = float(np.max(np.abs(gradient))) or 1.0
        image = row[2].imshow(gradient, origin="lower", aspect="auto", cmap="coolwarm", vmin=-limit, vmax=limit)
        row[2].set_title(f"d critic_{source} / d estimate")
        fig.colorbar(image, ax=row[2])
        for ax in row:
            ax.set_xlabel("frame")
            ax.set_ylabel("frequency bin")
    fig.tight_layout()
    save_figure_atomically(fig, png_path, dpi=100)
    plt.close(fig)


def test_mixtures(test_dir: str, out_dir: str) -> list[str]:
    """`<track>/mixture.wav` of every test track; written as the stems' sum where missing."""
    from advsep_tf.data_pipelines.audio import AudioAdapter
    from advsep_tf.errors import AdvsepError

    if not os.path.isdir(test_dir):
        raise AdvsepError(f"{test_dir}: test folder not found (expected <track>/<source>.wav)")
    adapter = AudioAdapter.default()
    mixtures = []
    for track in sorted(os.listdir(test_dir)):
        folder = os.path.join(test_dir, track)
        if not os.path.isdir(folder):
            continue
        path = os.path.join(folder, "mixture.wav")
        if not os.path.isfile(path):
            stems = [adapter.load(os.path.join(folder, f)) for f in sorted(os.listdir(folder)) if f.endswith(".wav")]
            if not stems:
                raise AdvsepError(f"{folder}: no stems to mix")
            rate = stems[0][1]
            length = min(len(x) for x, _ in stems)
            path = os.path.join(out_dir, "test_mixtures", track, "mixture.wav")
            adapter.save(path, np.sum([x[:length] for x, _ in stems], axis=0), rate)
        mixtures.append(path)
    if not mixtures:
        raise AdvsepError(f"{test_dir}: no test tracks")
    return mixtures


def run_experiment(
    out_dir: str,
    config: Config,
    runs: dict[str, dict] | None = None,
    steps: int | None = None,
    shard_dir: str | None = None,
    test_dir: str | None = None,
    scale: CorpusScale = DEFAULT_SCALE,
    title: str = "advsep-tf experiment",
    progress: bool = True,
) -> dict:
    """Train, separate and evaluate every model in `runs` ({name: training overrides}).

    Without `shard_dir`, a synthetic corpus is generated and prepared in `out_dir`; its test songs
    are the held-out set. With `shard_dir`, `test_dir` (`<track>/<source>.wav`) must be given.
    """
    from advsep_tf.data_pipelines import synthetic
    from advsep_tf.data_pipelines.audio import AudioAdapter
    from advsep_tf.data_pipelines.prepare import format_summary, prepare
    from advsep_tf.errors import AdvsepError
    from advsep_tf.evaluate import (
        evaluate_folders,
        format_comparison,
        load_result,
        plot_boxplots,
        write_oracle_estimates,
    )
    from advsep_tf.separate import Separator, separate_files
    from advsep_tf.train import load_run_model, train

    start = time.time()
    runs = runs or PAPER_RUNS
    open_experiment_dir(out_dir, title)
    corpus_note = ""
    if shard_dir is None:
        corpus_dir = os.path.join(out_dir, "corpus")
        shard_dir = os.path.join(out_dir, "shards")
        if not os.path.isfile(os.path.join(corpus_dir, "corpus.json")):
            stage(f"generating the synthetic corpus in {corpus_dir}", start)
            synthetic.write_corpus(
                corpus_dir, config.sources, sample_rate=config.audio.sample_rate, nb_train=scale.nb_train,
                nb_valid=scale.nb_valid, nb_test=scale.nb_test, nb_mixtures=scale.nb_unpaired,
                nb_solo=scale.nb_unpaired, duration=scale.duration, seed=config.training.seed,
            )
        corpus = synthetic.read_corpus(corpus_dir)
        if not os.path.isfile(os.path.join(shard_dir, "manifest.json")):
            stage("preparing shards", start)
            manifest = prepare(config, [("synthetic", corpus_dir)], shard_dir, overwrite=True, progress=progress)
            print(format_summary(manifest, shard_dir))
        test_dir = os.path.join(corpus_dir, "musdb18hq", "test")
        corpus_note = (
            f"Synthetic corpus: {len(corpus['tracks']['train'])} paired training songs, "
            f"{len(corpus['tracks']['mixtures'])} unlabelled mixtures and {scale.nb_unpaired} solo recordings per "
            f"source (all from other songs), {len(corpus['tracks']['test'])} held-out test songs.\n\n"
        )
    elif test_dir is None:
        raise AdvsepError(f"{shard_dir}: with prepared shards, give the held-out test folder too (--test-dir)")

    mixtures = test_mixtures(test_dir, out_dir)
    run_dirs, summaries, results = {}, {}, {}
    for name, overrides in runs.items():
        run_config = config.replace(training=overrides)
        run_dir = os.path.join(out_dir, "runs", name)
        stage(f"training {name} ({run_config.training.mode}, critics: {', '.join(run_config.critic_sources) or 'none'})", start)
        summaries[name] = train(run_config, shard_dir, run_dir, steps=steps, resume=os.path.isdir(run_dir))
        run_dirs[name] = run_dir
        stage(f"separating {len(mixtures)} held-out tracks with {name}", start)
        separated = os.path.join(out_dir, "separated", name)
        # overwrite: a rerun continues this folder; the stems there are an earlier run's of this experiment.
        separate_files(Separator.from_checkpoint(run_dir), mixtures, separated, progress=progress, overwrite=True)
        stage(f"evaluating {name} with museval", start)
        results[name] = evaluate_folders(separated, test_dir, out_dir=os.path.join(out_dir, "results", name),
                                         sources=config.sources)

    stage("oracle (ideal ratio mask) at the same STFT settings", start)
    oracle_dir = os.path.join(out_dir, "oracle_estimates")
    write_oracle_estimates(test_dir, oracle_dir, config, config.sources)
    results["oracle"] = evaluate_folders(oracle_dir, test_dir, out_dir=os.path.join(out_dir, "results", "oracle"),
                                         sources=config.sources)

    plot_training_curves(run_dirs, os.path.join(out_dir, "training_curves.png"))
    plot_boxplots(results, os.path.join(out_dir, "boxplot_sdr.png"))
    adversarial = [name for name in runs if config.replace(training=runs[name]).critic_sources]
    if adversarial:
        name = max(adversarial, key=lambda n: len(config.replace(training=runs[n]).critic_sources))
        waveform, _ = AudioAdapter.default().load(mixtures[0], sample_rate=config.audio.sample_rate, mono=True)
        plot_critic_gradients(load_run_model(run_dirs[name]), loudest_patch(waveform[:, 0], config),
                              os.path.join(out_dir, "critic_gradients.png"))

    wall = time.time() - start
    table = format_comparison(results)
    described = []
    for name, overrides in runs.items():
        run_config = config.replace(training=overrides)
        described.append(f"{name} ({run_config.training.mode}, critics: {', '.join(run_config.critic_sources) or 'none'})")
    report = (
        f"# {title}\n\n{corpus_note}"
        f"Models: {'; '.join(described)}; "
        f"{summaries[next(iter(runs))]['separator_steps']} separator steps each at most (early stopping on validation L_s), "
        f"preset '{config.name}', seed {config.training.seed}. "
        f"Oracle: ideal ratio mask at the same STFT settings (upper bound of a magnitude-domain separator).\n\n"
        f"Mean BSS Eval v4 scores on {len(mixtures)} held-out tracks:\n\n{table}\n\nWall time: {wall:.0f} s\n"
    )
    write_atomically(os.path.join(out_dir, "comparison.md"), report)
    summary = {"training": summaries, "results": {k: v.to_dict() for k, v in results.items()},
               "wall_seconds": round(wall, 1)}
    write_atomically(os.path.join(out_dir, "summary.json"), json.dumps(summary, indent=2))
    # Reload from disk: what is reported is what was written.
    results = {name: load_result(os.path.join(out_dir, "results", name, "results.json")) for name in results}
    print("\n" + report)
    print(f"Figures: {out_dir}/boxplot_sdr.png, training_curves.png, critic_gradients.png; stems in {out_dir}/separated")
    return {"results": results, "wall_seconds": wall, "table": table, "training": summaries, "report": report}
