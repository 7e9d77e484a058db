"""The paper's experiment as one call: several models (supervised baseline, V, VA) trained on the
same scarce paired data with the same seed, evaluated on the same held-out tracks, next to the
ideal-ratio-mask oracle. The library behind `advsep-tf-experiment` and `advsep-tf-demo`.

Writes into the output folder: `runs/<model>/` (run directories), `separated/<model>/`,
`results/<model>/` (results.json/.csv), `results/oracle/`, `comparison.md`, `summary.json`,
`oracle_estimates/` (the oracle's stems, full band at the test tracks' rate),
`boxplot_sdr.png`, `training_curves.png` and `critic_gradients.png` (the paper's figure: the
gradient of each critic's output with respect to the separator's estimate), `results/mixture/`
(the mixture as estimate), `report.html` with `report_files/` (see `advsep_tf.report`), and
`experiment.json` first, which marks the folder as an experiment's: a rerun continues only such a
folder (or a new or empty one), so an experiment never writes among someone else's files.

With several seeds (`seeds`), every model is trained once per seed (`runs/seed<N>/<model>/`,
likewise `separated/` and `results/`), and `comparison.md` gives per source the mean over seeds
with a 95% interval (Student's t), and the paired difference of each model minus the baseline
(same seed, same tracks) with its interval. A model whose results exist is not trained again: the
command resumes a partly finished experiment. With `warm_start_steps`, the adversarial models
start from the same seed's trained baseline and train that many more steps (the `real-small`
recipe); a `baseline+` control continues the baseline supervised for as many steps, so that the
adversarial term's effect is not confused with the extra steps.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import numpy as np

from advsep_tf.config import Config
from advsep_tf.files import (
    check_output_folder,
    load_json_or_yaml,
    write_figure,
    write_atomically,
)

MARKER = "experiment.json"
MARKER_FORMAT = "advsep-tf-experiment"

# Training overrides per model: the paper's three runs.
PAPER_RUNS = {
    "baseline": {"mode": "supervised"},
    "V": {"mode": "adversarial", "critics": ["vocals"]},
    "VA": {"mode": "adversarial", "critics": []},
}

# Every way of using unpaired audio that the experiment can compare. A model's spec holds
# training overrides plus these keys: `critic` (critic overrides), `start_from` (the model of the
# same seed it warm-starts from, for --warm-start-steps more steps; the paper's runs start from
# the baseline), `teacher` (the model of the same seed that labels unlabelled mixtures) and
# `ceiling` (trained on the ceiling split's shards: the unpaired pools with their true labels).
METHODS = {
    **PAPER_RUNS,
    # (a) critics kept 1-Lipschitz by spectral normalisation instead of the gradient penalty
    "VA-SN": {"mode": "adversarial", "critics": [], "critic": {"normalization": "spectral"}},
    # (c) synthetic pairs from the solo pools, trained from scratch to early stopping
    "synthetic": {"mode": "supervised", "synthetic_pairs": 0.5},
    # (b) teacher-student: the converged baseline labels the unlabelled mixtures
    "teacher": {
        "mode": "supervised",
        "pseudo_label_weight": 1.0,
        "teacher": "baseline",
        "start_from": "baseline",
    },
    # (b) + (c): the synthetic-pairs model teaches itself on the unlabelled mixtures
    "synthetic+teacher": {
        "mode": "supervised",
        "synthetic_pairs": 0.5,
        "pseudo_label_weight": 1.0,
        "teacher": "synthetic",
        "start_from": "synthetic",
    },
    # the oracle-supervised ceiling: every pool used as paired data with its true stems
    "ceiling": {"mode": "supervised", "ceiling": True},
}
SPEC_KEYS = ("critic", "start_from", "teacher", "ceiling")
# Written into a run directory once the experiment has trained it: wall seconds, loading included.
TRAINING_TIME = "training_time.json"


def model_config(config: Config, spec: dict, seed: int | None = None) -> Config:
    """`config` with a model spec's training (and critic) overrides, and `seed` if given."""
    training = {k: v for k, v in spec.items() if k not in SPEC_KEYS}
    if seed is not None:
        training["seed"] = seed
    sections = {"training": training}
    if spec.get("critic"):
        sections["critic"] = spec["critic"]
    return config.replace(**sections)


@dataclass
class CorpusScale:
    """Size of a generated synthetic corpus: paired data scarce, unpaired data plentiful."""

    nb_train: int
    nb_valid: int
    nb_test: int
    nb_unpaired: int
    duration: float


# A control for warm-started adversarial runs: the baseline trained on for the same extra steps.
CONTINUED_BASELINE = "baseline+"

DEFAULT_SCALE = CorpusScale(nb_train=4, nb_valid=2, nb_test=4, nb_unpaired=24, duration=12.0)


def is_experiment_dir(path: str) -> bool:
    """Whether `path` is an experiment's output folder (its marker, written first, is there)."""
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
        write_atomically(
            os.path.join(out_dir, MARKER),
            json.dumps(
                {
                    "format": MARKER_FORMAT,
                    "title": title,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                },
                indent=2,
            )
            + "\n",
        )


def _nb_tracks(role_info: dict) -> int:
    """A manifest role's track count (older manifests list the tracks)."""
    tracks = role_info["tracks"]
    return tracks if isinstance(tracks, int) else len(tracks)


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
        (line,) = ax.plot(
            epochs, [float(r["supervised_loss"]) for r in rows], "--", label=f"{name} train"
        )
        if rows and "val_supervised_loss" in rows[0]:
            ax.plot(
                epochs,
                [float(r["val_supervised_loss"]) for r in rows],
                "-o",
                color=line.get_color(),
                label=f"{name} validation",
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel("L_s (MSE of log1p magnitudes)")
    ax.set_title("Supervised loss per model")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    write_figure(fig, png_path)


def loudest_patch(waveform: np.ndarray, config: Config) -> np.ndarray:
    """The (1, nb_bins, nb_frames, 1) log1p-magnitude patch of a mono waveform with most energy."""
    from advsep_tf import transforms

    spec = config.spectrogram
    spectrum = transforms.stft(waveform[None].astype(np.float32), spec.n_fft, spec.n_hop)
    patches = transforms.to_patches(
        transforms.log_magnitude(spectrum, spec.nb_bins), spec.nb_frames, spec.nb_frames
    )
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
        image = row[2].imshow(
            gradient, origin="lower", aspect="auto", cmap="coolwarm", vmin=-limit, vmax=limit
        )
        row[2].set_title(f"d critic_{source} / d estimate")
        fig.colorbar(image, ax=row[2])
        for ax in row:
            ax.set_xlabel("frame")
            ax.set_ylabel("frequency bin")
    write_figure(fig, png_path)


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
            stems = [
                adapter.load(os.path.join(folder, f))
                for f in sorted(os.listdir(folder))
                if f.endswith(".wav")
            ]
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


def write_test_references(records, out_dir: str, config: Config, sample_rate: int) -> str:
    """`<track>/{mixture,<source>}.wav` (mono, `sample_rate`, 16 bit) for held-out dataset records,
    written once: a folder whose `.complete` marker lists the same tracks is reused; one written
    for other tracks is refused rather than scored as if it held these."""
    from advsep_tf.data_pipelines.audio import AudioAdapter
    from advsep_tf.data_pipelines.datasets import load_track_audio
    from advsep_tf.errors import AdvsepError

    marker = os.path.join(out_dir, ".complete")
    listing = "".join(f"{key}\n" for key in sorted(record.key for record in records))
    if os.path.isfile(marker):
        with open(marker) as f:
            held = f.read()
        # Markers written before they listed the tracks hold only their number.
        if held not in (listing, f"{len(records)} tracks\n"):
            raise AdvsepError(
                f"{out_dir}: holds the references of other tracks than the {len(records)} asked "
                f"for (see its .complete); give a new folder"
            )
        return out_dir
    adapter = AudioAdapter.default()
    at_rate = config.replace(audio={"sample_rate": sample_rate})
    for record in records:
        audio = load_track_audio(record, at_rate, adapter, role="test")
        folder = os.path.join(out_dir, record.key.replace(":", "_").replace("/", "_"))
        for name in ["mixture", *config.sources]:
            adapter.save(os.path.join(folder, f"{name}.wav"), audio[name][:, None], sample_rate)
    write_atomically(marker, listing)
    return out_dir


def seed_statistics(values: list[float]) -> dict:
    """Mean over seeds and the half-width of its 95% interval (Student's t; None for one seed)."""
    from scipy import stats

    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "ci95": None, "n": 0}
    mean = float(np.mean(values))
    if len(values) < 2:
        return {"mean": mean, "ci95": None, "n": 1}
    half = float(
        stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values))
    )
    return {"mean": mean, "ci95": half, "n": len(values)}


def seed_table(
    results_by_seed: dict[int, dict], sources: list[str], oracle=None
) -> tuple[str, dict]:
    """Markdown: per model and source, mean over seeds ± 95% interval of the per-seed mean over
    tracks; then each model minus the baseline, paired by seed. Returns (markdown, numbers)."""
    METRICS = ("SDR", "SIR", "SAR")
    models = list(next(iter(results_by_seed.values())))
    numbers: dict = {"models": {}, "minus_baseline": {}}
    lines = [
        "| model | source | " + " | ".join(f"{m} dB" for m in METRICS) + " | seeds |",
        "|---|---|" + "---|" * len(METRICS) + "---|",
    ]

    def cell(stat):
        if stat["mean"] is None:
            return "n/a"
        return f"{stat['mean']:.2f}" + (
            f" ± {stat['ci95']:.2f}" if stat["ci95"] is not None else ""
        )

    for model in models:
        numbers["models"][model] = {}
        for source in sources:
            stats_ = {
                m: seed_statistics(
                    [r[model].aggregate[source][m]["mean"] for r in results_by_seed.values()]
                )
                for m in METRICS
            }
            numbers["models"][model][source] = stats_
            lines.append(
                f"| {model} | {source} | "
                + " | ".join(cell(stats_[m]) for m in METRICS)
                + f" | {stats_[METRICS[0]]['n']} |"
            )
    if oracle is not None:
        for source in sources:
            lines.append(
                f"| oracle (IRM) | {source} | "
                + " | ".join(f"{oracle.aggregate[source][m]['mean']:.2f}" for m in METRICS)
                + " | - |"
            )
    table = "\n".join(lines)
    if "baseline" in models and len(models) > 1:
        diff = [
            "| model minus baseline | source | "
            + " | ".join(f"{m} dB" for m in METRICS)
            + " | better in seeds |",
            "|---|---|" + "---|" * len(METRICS) + "---|",
        ]
        for model in models:
            if model == "baseline":
                continue
            numbers["minus_baseline"][model] = {}
            for source in sources:
                per_metric, wins = {}, 0
                for m in METRICS:
                    deltas = [
                        r[model].aggregate[source][m]["mean"]
                        - r["baseline"].aggregate[source][m]["mean"]
                        for r in results_by_seed.values()
                    ]
                    per_metric[m] = seed_statistics(deltas)
                    if m == METRICS[0]:
                        wins = sum(d > 0 for d in deltas)
                numbers["minus_baseline"][model][source] = per_metric
                diff.append(
                    f"| {model} - baseline | {source} | "
                    + " | ".join(
                        ("+" if per_metric[m]["mean"] >= 0 else "") + cell(per_metric[m])
                        for m in METRICS
                    )
                    + f" | {wins}/{len(results_by_seed)} |"
                )
        table += (
            "\n\nPaired by seed (same seed, same tracks), mean ± 95% interval:\n\n"
            + "\n".join(diff)
        )
    if "ceiling" in numbers["minus_baseline"]:
        table += "\n\n" + _ceiling_shares(numbers, sources)
    return table, numbers


def _ceiling_shares(numbers: dict, sources: list[str]) -> str:
    """Markdown: the share of the oracle-supervised ceiling's SDR gain over the baseline that each
    model recovers (mean gain over mean ceiling gain); also stored in `numbers['ceiling_share']`."""
    ceiling = numbers["minus_baseline"]["ceiling"]
    lines = [
        "Share of the ceiling's SDR gain over the baseline recovered (mean gain / ceiling's mean "
        "gain):",
        "",
        "| model | " + " | ".join(sources) + " |",
        "|---|" + "---|" * len(sources),
    ]
    numbers["ceiling_share"] = {}
    for model, per_source in numbers["minus_baseline"].items():
        if model == "ceiling":
            continue
        shares = {}
        for source in sources:
            gap = ceiling[source]["SDR"]["mean"]
            gain = per_source[source]["SDR"]["mean"]
            shares[source] = gain / gap if gap and gap > 0 and gain is not None else None
        numbers["ceiling_share"][model] = shares
        lines.append(
            f"| {model} | "
            + " | ".join("n/a" if v is None else f"{100 * v:.0f}%" for v in shares.values())
            + " |"
        )
    return "\n".join(lines)


def training_time_table(run_dirs_by_seed: dict[int, dict[str, str]]) -> str:
    """Markdown: each model's training time (wall minutes, loading included), mean and range over
    seeds."""
    times: dict[str, list[float]] = {}
    for run_dirs in run_dirs_by_seed.values():
        for name, run_dir in run_dirs.items():
            path = os.path.join(run_dir, TRAINING_TIME)
            if os.path.isfile(path):
                times.setdefault(name, []).append(
                    load_json_or_yaml(path, "training time")["seconds"] / 60
                )
    if not times:
        return ""
    lines = ["| model | training time, min (mean) | min-max | seeds |", "|---|---|---|---|"]
    for name, values in times.items():
        lines.append(
            f"| {name} | {np.mean(values):.1f} | {min(values):.1f}-{max(values):.1f} | "
            f"{len(values)} |"
        )
    return "\n".join(lines)


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
    datasets: list[tuple[str, str]] | None = None,
    split_file: str | None = None,
    seeds: list[int] | None = None,
    warm_start_steps: int | None = None,
    test_rate: int = 44100,
    command: str | None = None,
    ceiling_split: str | None = None,
) -> dict:
    """Train, separate and evaluate every model in `runs` ({name: training overrides}).

    Without `shard_dir` or `datasets`, a synthetic corpus is generated and prepared in `out_dir`;
    its test songs are the held-out set. With `datasets` ([(kind, path)], as advsep-tf-prepare's
    --dataset) and `split_file`, shards are prepared in `out_dir` and the split's test tracks are
    written as references at `test_rate` (unless `test_dir` replaces them). With `shard_dir`,
    `test_dir` (`<track>/<source>.wav`) must be given. A model whose spec says `ceiling` trains
    on shards prepared from `ceiling_split` (the same datasets; the unpaired pools as paired data).
    """
    from advsep_tf.data_pipelines import synthetic
    from advsep_tf.data_pipelines.audio import AudioAdapter
    from advsep_tf.data_pipelines.prepare import format_summary, prepare
    from advsep_tf.errors import AdvsepError
    from advsep_tf.evaluate import (
        MIXTURE,
        ORACLE,
        evaluate_all,
        format_comparison,
        load_result,
        plot_boxplots,
    )
    from advsep_tf.report import write_experiment_report
    from advsep_tf.runs import load_run_model
    from advsep_tf.separate import Separator
    from advsep_tf.stem_files import separate_files
    from advsep_tf.train import train

    start = time.time()
    runs = runs or PAPER_RUNS
    open_experiment_dir(out_dir, title)
    corpus_note = ""
    if datasets:
        from advsep_tf.data_pipelines.datasets import all_records
        from advsep_tf.data_pipelines.splits import assign_roles, load_split

        shard_dir = shard_dir or os.path.join(out_dir, "shards")
        if not os.path.isfile(os.path.join(shard_dir, "manifest.json")):
            stage(f"preparing shards from {', '.join(f'{k}={p}' for k, p in datasets)}", start)
            manifest = prepare(
                config, datasets, shard_dir, split_file=split_file, progress=progress
            )
            print(format_summary(manifest, shard_dir))
        manifest = load_json_or_yaml(os.path.join(shard_dir, "manifest.json"), "shard manifest")
        if test_dir is None:
            assignment = assign_roles(
                all_records(datasets, config), config, load_split(split_file, config)
            )
            if not assignment.get("test"):
                raise AdvsepError(
                    f"{split_file or 'default split'}: no test tracks (give --test-dir)"
                )
            stage(
                f"writing {len(assignment['test'])} held-out test tracks at {test_rate} Hz", start
            )
            test_dir = write_test_references(
                assignment["test"], os.path.join(out_dir, "test_references"), config, test_rate
            )
        roles = manifest["roles"]
        corpus_note = (
            f"Data: {', '.join(f'{k}={p}' for k, p in datasets)}, split "
            f"{split_file or '(default)'}: "
            + ", ".join(
                f"{role} {_nb_tracks(info)} tracks ({info.get('examples', '?')} patches)"
                for role, info in roles.items()
            )
            + f"; {len(manifest.get('test_tracks', []))} held-out test tracks.\n\n"
        )
    elif shard_dir is None:
        corpus_dir = os.path.join(out_dir, "corpus")
        shard_dir = os.path.join(out_dir, "shards")
        if not os.path.isfile(os.path.join(corpus_dir, "corpus.json")):
            stage(f"generating the synthetic corpus in {corpus_dir}", start)
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
        if not os.path.isfile(os.path.join(shard_dir, "manifest.json")):
            stage("preparing shards", start)
            manifest = prepare(
                config, [("synthetic", corpus_dir)], shard_dir, overwrite=True, progress=progress
            )
            print(format_summary(manifest, shard_dir))
        test_dir = os.path.join(corpus_dir, "musdb18hq", "test")
        corpus_note = (
            f"Synthetic corpus: {len(corpus['tracks']['train'])} paired training songs, "
            f"{len(corpus['tracks']['mixtures'])} unlabelled mixtures and {scale.nb_unpaired} "
            f"solo recordings per "
            f"source (all from other songs), {len(corpus['tracks']['test'])} held-out test "
            f"songs.\n\n"
        )
    elif test_dir is None:
        raise AdvsepError(
            f"{shard_dir}: with prepared shards, give the held-out test folder too (--test-dir)"
        )

    mixtures = test_mixtures(test_dir, out_dir)
    # Seeds given: each seed's models in their own folders, so that invocations with disjoint
    # seeds can run side by side in one experiment folder and a last one reports them all.
    per_seed = seeds is not None
    seeds = seeds or [config.training.seed]
    names = list(runs)
    if (
        warm_start_steps
        and "baseline" in runs
        and any(model_config(config, runs[n]).critic_sources for n in runs)
    ):
        names.append(CONTINUED_BASELINE)
    # The control trains as the baseline does; the paper's models start from it when warm.
    training_of = {name: dict(runs.get(name, runs.get("baseline", {}))) for name in names}
    start_from = {}
    for name in names:
        adversarial = bool(model_config(config, training_of[name]).critic_sources)
        origin = training_of[name].get(
            "start_from", "baseline" if adversarial or name == CONTINUED_BASELINE else None
        )
        if (
            warm_start_steps
            and origin in names
            and names.index(origin) < names.index(name)
            and not training_of[name].get("ceiling")
        ):
            start_from[name] = origin
    teacher_missing = [
        n for n in names if training_of[n].get("teacher") and training_of[n]["teacher"] not in names
    ]
    if teacher_missing:
        raise AdvsepError(
            f"model(s) {', '.join(teacher_missing)} learn from a teacher model that is not run: "
            + ", ".join(training_of[n]["teacher"] for n in teacher_missing)
        )
    if any(training_of[n].get("ceiling") for n in names):
        if not (datasets and ceiling_split):
            raise AdvsepError(
                "the ceiling model trains on the unpaired pools with their labels: give --dataset "
                "and --ceiling-split"
            )
        ceiling_shards = os.path.join(out_dir, "shards_ceiling")
        if not os.path.isfile(os.path.join(ceiling_shards, "manifest.json")):
            stage(f"preparing the ceiling's shards ({ceiling_split})", start)
            print(
                format_summary(
                    prepare(
                        config,
                        datasets,
                        ceiling_shards,
                        split_file=ceiling_split,
                        progress=progress,
                    ),
                    ceiling_shards,
                )
            )
    run_dirs_by_seed, summaries, results_by_seed = {}, {}, {}
    for seed in seeds:
        prefix = f"seed{seed}" if per_seed else ""
        run_dirs, results = {}, {}
        for name in names:
            run_config = model_config(config, training_of[name], seed)
            origin = start_from.get(name)
            run_dir = os.path.join(out_dir, "runs", prefix, name)
            result_dir = os.path.join(out_dir, "results", prefix, name)
            label = f"{name}{f' seed {seed}' if prefix else ''}"
            run_dirs[name] = run_dir
            if os.path.isfile(os.path.join(result_dir, "results.json")):
                stage(f"{label}: done in an earlier invocation (results in {result_dir})", start)
            else:
                critics = ", ".join(run_config.critic_sources) or "none"
                described = f"{run_config.training.mode}, critics: {critics}"
                if origin:
                    described += f", warm start from {origin} + at most {warm_start_steps} steps"
                teacher = training_of[name].get("teacher")
                if teacher:
                    described += f", taught by {teacher}"
                stage(f"training {label} ({described})", start)
                model_start = time.time()
                summaries[f"{prefix}/{name}".strip("/")] = train(
                    run_config,
                    ceiling_shards if training_of[name].get("ceiling") else shard_dir,
                    run_dir,
                    steps=warm_start_steps if origin else steps,
                    resume=os.path.isdir(run_dir),
                    init=run_dirs[origin] if origin else None,
                    teacher=run_dirs[teacher] if teacher else None,
                )
                write_atomically(
                    os.path.join(run_dir, TRAINING_TIME),
                    json.dumps({"seconds": round(time.time() - model_start, 1)}) + "\n",
                )
                stage(f"separating {len(mixtures)} held-out tracks with {label}", start)
                separated = os.path.join(out_dir, "separated", prefix, name)
                # overwrite: stems there are an earlier, unfinished invocation's of this experiment.
                separate_files(
                    Separator.from_checkpoint(run_dir),
                    mixtures,
                    separated,
                    progress=progress,
                    overwrite=True,
                )
                stage(f"evaluating {label} with museval", start)
                evaluate_all(
                    test_dir,
                    {name: separated},
                    result_dirs={name: result_dir},
                    mixture=False,
                    sources=config.sources,
                    progress=progress,
                )
            # What is reported is what was written.
            results[name] = load_result(os.path.join(result_dir, "results.json"))
        run_dirs_by_seed[seed], results_by_seed[seed] = run_dirs, results
    run_dirs, results = run_dirs_by_seed[seeds[0]], dict(results_by_seed[seeds[0]])

    stage(
        "oracle (ideal ratio mask, the STFT window of the models, the test tracks' rate) and "
        "the mixture as estimate",
        start,
    )
    # Kept: the report shows the oracle's stems beside the models'.
    bounds = evaluate_all(
        test_dir,
        out_dir=os.path.join(out_dir, "results"),
        oracle=config,
        oracle_audio=os.path.join(out_dir, "oracle_estimates"),
        sources=config.sources,
        reuse=True,
        progress=progress,
    )
    results[ORACLE] = bounds[ORACLE]

    plot_training_curves(run_dirs, os.path.join(out_dir, "training_curves.png"))
    plot_boxplots(results, os.path.join(out_dir, "boxplot_sdr.png"))
    adversarial = [name for name in runs if model_config(config, runs[name]).critic_sources]
    if adversarial:
        name = max(adversarial, key=lambda n: len(model_config(config, runs[n]).critic_sources))
        waveform, _ = AudioAdapter.default().load(
            mixtures[0], sample_rate=config.audio.sample_rate, mono=True
        )
        plot_critic_gradients(
            load_run_model(run_dirs[name]),
            loudest_patch(waveform[:, 0], config),
            os.path.join(out_dir, "critic_gradients.png"),
        )

    table = format_comparison({**results, "mixture as estimate": bounds[MIXTURE]})
    described = []
    for name in names:
        run_config = model_config(config, training_of[name])
        critics = ", ".join(run_config.critic_sources) or "none"
        text = f"{name} ({run_config.training.mode}, critics: {critics}"
        if run_config.critic_sources and run_config.critic.normalization != "gradient_penalty":
            text += f", {run_config.critic.normalization}-normalised critics"
        if run_config.training.synthetic_pairs:
            text += f", synthetic pairs {run_config.training.synthetic_pairs:g} of each batch"
        if training_of[name].get("teacher"):
            text += f", pseudo labels from {training_of[name]['teacher']} (weight "
            text += f"{run_config.training.pseudo_label_weight:g})"
        if training_of[name].get("ceiling"):
            text += ", every pool as paired data with its true stems"
        if start_from.get(name):
            text += f"; from the trained {start_from[name]}, at most {warm_start_steps} more steps"
        described.append(text + ")")
    seeds_part = ""
    numbers = None
    times = training_time_table(run_dirs_by_seed)
    if len(seeds) > 1:
        seeds_table, numbers = seed_table(results_by_seed, config.sources, results["oracle"])
        if times:
            seeds_table += f"\n\nTraining time per model (this machine):\n\n{times}"
        seeds_part = (
            f"Over seeds {', '.join(map(str, seeds))}: mean over seeds of each seed's mean over "
            f"{len(mixtures)} tracks, ± the 95% interval (Student's t):\n\n{seeds_table}\n\n"
            f"Seed {seeds[0]} alone:\n\n"
        )
    report = (
        f"# {title}\n\n{corpus_note}"
        f"Models: {'; '.join(described)}; "
        f"at most {steps or config.training.max_steps} separator steps from scratch (early "
        f"stopping on validation L_s), "
        f"preset '{config.name}', seed{'s' if len(seeds) > 1 else ''} "
        f"{', '.join(map(str, seeds))}. "
        "Oracle: ideal ratio mask with the models' STFT window at the test tracks' rate, full "
        "band (upper bound of a magnitude-mask separator); mixture as estimate: the score of not "
        "separating.\n\n"
        f"{seeds_part}Mean BSS Eval v4 scores on {len(mixtures)} held-out tracks:\n\n{table}\n\n"
        + (f"Command: `{command}`\n\n" if command else "")
        + f"Wall time of this invocation: {time.time() - start:.0f} s\n"
    )
    wall = time.time() - start
    write_atomically(os.path.join(out_dir, "comparison.md"), report)
    summary = {
        "training": summaries,
        "results": {k: v.to_dict() for k, v in results.items()},
        "seeds": seeds,
        "over_seeds": numbers,
        "wall_seconds": round(wall, 1),
    }
    write_atomically(os.path.join(out_dir, "summary.json"), json.dumps(summary, indent=2))
    print("\n" + report)
    print(
        f"Figures: {out_dir}/boxplot_sdr.png, training_curves.png, critic_gradients.png; stems in "
        f"{out_dir}/separated"
    )
    stage("report.html", start)
    write_experiment_report(
        out_dir,
        test_dir,
        config,
        runs,
        results,
        title=title,
        notes=report,
        progress=progress,
        mixture=bounds[MIXTURE],
    )
    return {
        "results": results,
        "wall_seconds": wall,
        "table": table,
        "training": summaries,
        "report": report,
    }
