"""BSS Eval v4 scores of separated stems against their references, the way SiSEC 2018 and MUSDB18
papers report them.

Both folders are laid out as `<track>/<source>.wav`, like a MUSDB18-HQ track folder. For every
track, all evaluated sources go to one `museval.evaluate` call, stacked as
(nb_sources, nb_samples, nb_channels): SIR and SAR depend on which other references the estimate
is projected onto, so the scores of a source change with the set of sources evaluated with it, and
at least two sources are needed. Each track and source then gets the median over frames of each
metric (frames where a reference is silent are NaN in museval and are ignored), and each source the
mean and the median of those over tracks, since the field reports both.

A per-track score is None when every frame of it is NaN. SDR is +inf for a bit-exact estimate.
SAR is +inf (shown as "∞") for an estimate that is the track's mixture, the mixture as estimate:
the mixture is the sum of the references, so BSS Eval's artefact term is zero and SAR unbounded;
museval returns about 169 dB there, a number made of its epsilon, not a measurement.

`evaluate_all` scores, in one call, models (estimate folders or separators), the ideal-ratio-mask
oracle and the mixture as estimate: what `advsep-tf-evaluate`, `advsep-tf-experiment`, the demo
and the benchmarks run.
"""

from __future__ import annotations

import csv
import importlib.metadata
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import soundfile as sf

from advsep_tf.errors import AdvsepError
from advsep_tf.files import load_json_or_yaml, write_figure, write_atomically

METRICS = ("SDR", "SIR", "SAR", "ISR", "leakage")
# Leakage: an estimate's energy over the mixture's in the windows where its reference is silent,
# i.e. this many dB or more below the reference's loudest window (a vocal pause, for the vocals).
LEAKAGE_WINDOW_SECONDS = 0.25
LEAKAGE_SILENCE_DB = 40.0
# Leakage this far down is inaudible beside the rest of the song; a track scores no lower, so that
# the mean over tracks measures what leaks, not how deep a gated (all-zero) estimate's silence is.
LEAKAGE_FLOOR_DB = -60.0
RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
# MUSDB reference folders hold mixture.wav next to the stems; it is the input, not a source.
MIXTURE_NAME = "mixture"
RESULT_FORMAT_VERSION = 1
# The SAR of an estimate equal to the mixture (see the module's docstring).
DEGENERATE_SAR = math.inf
# evaluate_all's names for the bounds it scores beside the models.
ORACLE = "oracle"
MIXTURE = "mixture"
ORACLE_RATES = ("input", "model")


@dataclass
class SourceScores:
    """One track and source: the median over frames of each metric in `METRICS`, in dB."""

    track: str
    source: str
    scores: dict[str, float | None]


@dataclass
class EvaluationResult:
    """Per-track scores of one model on one set of tracks, with the settings that produced them."""

    rows: list[SourceScores]
    sources: list[str]
    win_seconds: float = 1.0
    hop_seconds: float = 1.0
    estimates_dir: str = ""
    references_dir: str = ""
    museval_version: str = ""

    @property
    def tracks(self) -> list[str]:
        return list(dict.fromkeys(row.track for row in self.rows))

    def nb_tracks(self, source: str) -> int:
        return sum(1 for row in self.rows if row.source == source)

    @property
    def aggregate(self) -> dict[str, dict[str, dict[str, float | None]]]:
        """{source: {metric: {"mean": dB, "median": dB}}} over tracks.

        None where no track has a score for that source and metric.
        """
        # Derived on demand so that it can never disagree with `rows`.
        aggregate = {}
        for source in self.sources:
            per_metric = {}
            for metric in METRICS:
                values = [
                    row.scores[metric]
                    for row in self.rows
                    if row.source == source and row.scores.get(metric) is not None
                ]
                per_metric[metric] = {
                    "mean": _nan_to_none(float(np.mean(values))) if values else None,
                    "median": _nan_to_none(float(np.median(values))) if values else None,
                }
            aggregate[source] = per_metric
        return aggregate

    def to_dict(self) -> dict:
        """A strict-JSON dict: undefined scores are null, infinite ones the strings "inf"/"-inf"."""
        tracks: dict[str, dict[str, dict]] = {}
        for row in self.rows:
            tracks.setdefault(row.track, {})[row.source] = {
                metric: _encode_score(row.scores.get(metric)) for metric in METRICS
            }
        aggregate = {
            source: {"nb_tracks": self.nb_tracks(source)}
            | {
                metric: {stat: _encode_score(value) for stat, value in stats.items()}
                for metric, stats in per_metric.items()
            }
            for source, per_metric in self.aggregate.items()
        }
        return {
            "format_version": RESULT_FORMAT_VERSION,
            "settings": {
                "sources": list(self.sources),
                "win_seconds": self.win_seconds,
                "hop_seconds": self.hop_seconds,
                "estimates_dir": self.estimates_dir,
                "references_dir": self.references_dir,
                "museval_version": self.museval_version,
                "bss_eval": "museval.evaluate, mode v4",
                "per_track": "median over frames, NaN frames ignored",
                "aggregate": "mean and median over tracks",
            },
            "tracks": tracks,
            "aggregate": aggregate,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "EvaluationResult":
        """Inverse of `to_dict`; the aggregate is recomputed from the per-track scores."""
        try:
            settings = data["settings"]
            rows = [
                SourceScores(
                    track=track,
                    source=source,
                    # Results written before leakage was measured have none.
                    scores={metric: _decode_score(scores.get(metric)) for metric in METRICS},
                )
                for track, per_source in data["tracks"].items()
                for source, scores in per_source.items()
            ]
            return cls(
                rows=rows,
                sources=list(settings["sources"]),
                win_seconds=float(settings["win_seconds"]),
                hop_seconds=float(settings["hop_seconds"]),
                estimates_dir=settings.get("estimates_dir", ""),
                references_dir=settings.get("references_dir", ""),
                museval_version=settings.get("museval_version", ""),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise AdvsepError(
                f"not an evaluation result: {error!r} is missing or malformed"
            ) from error


def evaluate_folders(
    estimates_dir: str | os.PathLike,
    references_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    sources: Sequence[str] | None = None,
    win_seconds: float = 1.0,
    hop_seconds: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationResult:
    """Scores each `<track>/<source>.wav` of `estimates_dir` against its twin in `references_dir`.

    Args:
        estimates_dir: separated stems, `<track>/<source>.wav`, each (nb_samples, nb_channels)
            with exactly the sample rate, channel count and length of its reference.
        references_dir: true stems in the same layout (a MUSDB18-HQ folder works as is).
        out_dir: if given, `results.json` (per track, aggregate, settings) and `results.csv`
            (one row per track and source) are written there.
        sources: the sources to evaluate, jointly. None: every source that is in every reference
            track (except `mixture`) and that the estimates contain; a track missing one of those
            estimates is then an error rather than being skipped.
        win_seconds, hop_seconds: BSS Eval frame length and hop, converted to samples at each
            track's sample rate (museval's default is 44100 samples, i.e. 1 s at 44.1 kHz).
        progress: called as progress(done, total) after each track.

    Raises:
        AdvsepError: naming the file, for missing or extra tracks and files, a mismatch of sample
            rate, channel count or length, NaN/inf samples, empty or all-zero audio, or fewer than
            two sources (museval's SIR needs interfering sources).
    """
    _check_windows(win_seconds, hop_seconds)
    estimates_dir = Path(estimates_dir)
    references_dir = Path(references_dir)
    estimate_tracks = _list_tracks(estimates_dir, "estimates")
    reference_tracks = _list_tracks(references_dir, "references")
    _check_same_tracks(estimate_tracks, reference_tracks, estimates_dir, references_dir)
    tracks = sorted(reference_tracks)
    selected_sources = _select_sources(
        tracks, estimate_tracks, reference_tracks, estimates_dir, references_dir, sources
    )

    return _score_tracks(
        tracks,
        selected_sources,
        lambda track: _evaluate_track(
            estimates_dir / track,
            references_dir / track,
            selected_sources,
            win_seconds,
            hop_seconds,
        ),
        win_seconds,
        hop_seconds,
        str(estimates_dir),
        references_dir,
        out_dir,
        progress,
    )


def evaluate_mixture_as_estimate(
    references_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    sources: Sequence[str] | None = None,
    win_seconds: float = 1.0,
    hop_seconds: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationResult:
    """BSS Eval of the unprocessed mixture as the estimate of every source: the floor a separator
    has to beat before it has separated anything.

    Same arguments, checks and outputs as `evaluate_folders`, with the mixture of each reference
    track (see `track_mixture`) in place of an estimates folder. The result's `estimates_dir` is
    empty: there is no such folder.
    """
    _check_windows(win_seconds, hop_seconds)
    references_dir = Path(references_dir)
    reference_tracks = _list_tracks(references_dir, "references")
    tracks = sorted(reference_tracks)
    # Every reference track "has" every estimate: the mixture stands in for each.
    selected_sources = _select_sources(
        tracks,
        {track: set(reference_tracks[track]) for track in tracks},
        reference_tracks,
        references_dir,
        references_dir,
        sources,
    )

    def score_track(track):
        references, sample_rate = [], None
        for source in selected_sources:
            reference, sample_rate = _read_checked(references_dir / track / f"{source}.wav")
            references.append(reference)
        mixture, mixture_rate, mixture_path = track_mixture(
            references_dir / track, selected_sources
        )
        for source, reference in zip(selected_sources, references):
            _check_pair(
                mixture_path,
                mixture,
                mixture_rate,
                references_dir / track / f"{source}.wav",
                reference,
                sample_rate,
            )
        scores = _bss_eval(
            references,
            [mixture] * len(references),
            sample_rate,
            win_seconds,
            hop_seconds,
            f"the mixture {mixture_path} against {references_dir / track}",
        )
        for row, reference in zip(scores, references):
            row["leakage"] = leakage_db(mixture, reference, mixture, sample_rate)
            row["SAR"] = DEGENERATE_SAR
        return scores

    return _score_tracks(
        tracks,
        selected_sources,
        score_track,
        win_seconds,
        hop_seconds,
        "",
        references_dir,
        out_dir,
        progress,
    )


def _check_windows(win_seconds: float, hop_seconds: float) -> None:
    if not (win_seconds > 0 and hop_seconds > 0):
        raise AdvsepError(
            f"win_seconds and hop_seconds must be positive, got {win_seconds} and {hop_seconds}"
        )


def _score_tracks(
    tracks,
    sources,
    score_track,
    win_seconds,
    hop_seconds,
    estimates_dir: str,
    references_dir,
    out_dir,
    progress,
) -> EvaluationResult:
    """The result of `score_track(track)` (one score dict per source) for every track, with the
    settings, saved to `out_dir` when given; `progress(done, total)` after each track."""
    rows = []
    for done, track in enumerate(tracks, start=1):
        rows.extend(
            SourceScores(track=track, source=source, scores=scores)
            for source, scores in zip(sources, score_track(track))
        )
        if progress is not None:
            progress(done, len(tracks))
    result = EvaluationResult(
        rows=rows,
        sources=list(sources),
        win_seconds=float(win_seconds),
        hop_seconds=float(hop_seconds),
        estimates_dir=estimates_dir,
        references_dir=str(references_dir),
        museval_version=_package_version("museval"),
    )
    if out_dir is not None:
        save_result(result, out_dir)
    return result


def track_mixture(
    track_dir: str | os.PathLike, sources: Sequence[str]
) -> tuple[np.ndarray, int, Path]:
    """(audio, sample_rate, path) of a reference track's mixture: `mixture.wav`, or else the sum of
    the stems in `sources` (then `path` is the track folder).
    """
    track_dir = Path(track_dir)
    mixture_path = track_dir / f"{MIXTURE_NAME}.wav"
    if mixture_path.is_file():
        audio, sample_rate = _read_checked(mixture_path)
        return audio, sample_rate, mixture_path
    stems = [_read_checked(track_dir / f"{source}.wav") for source in sources]
    length = min(len(audio) for audio, _ in stems)
    return np.sum([audio[:length] for audio, _ in stems], axis=0), stems[0][1], track_dir


def save_result(result: EvaluationResult, out_dir: str | os.PathLike) -> Path:
    """Writes `results.json` and `results.csv` into `out_dir`; returns the JSON path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / RESULTS_JSON
    write_atomically(json_path, json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n")
    write_atomically(out_dir / RESULTS_CSV, _to_csv(result))
    return json_path


def load_result(path: str | os.PathLike) -> EvaluationResult:
    """Reads a `results.json` written by `evaluate_folders` or `save_result`."""
    path = Path(path)
    data = load_json_or_yaml(path, "evaluation result")
    try:
        return EvaluationResult.from_dict(data)
    except AdvsepError as error:
        raise AdvsepError(f"{path}: {error}") from error


def format_db(value: float | None) -> str:
    """A score in dB as the tables show it: two decimals, "n/a" for none, ±∞ for an infinity."""
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.2f}"


def format_table(
    results: EvaluationResult | Mapping[str, EvaluationResult], title: str | None = None
) -> str:
    """One markdown table: a row per source and model (one result: a row per source), each metric
    as "mean / median" over tracks in dB. Pass the oracle and the mixture as estimate (as
    `evaluate_all` names them) among `results` to have their rows beside the models'.
    """
    single = isinstance(results, EvaluationResult)
    named = {"": results} if single else dict(results)
    if not named:
        raise AdvsepError("format_table needs at least one evaluation result")
    sources = list(dict.fromkeys(s for result in named.values() for s in result.sources))
    lines = [f"### {title}", ""] if title else []
    first = "| source | " if single else "| source | model | "
    lines.append(first + " | ".join(METRICS) + " | tracks |")
    lines.append("|---" * (len(METRICS) + (2 if single else 3)) + "|")
    for source in sources:
        for name, result in named.items():
            per_metric = result.aggregate.get(source)
            if per_metric is None:
                continue
            cells = [
                f"{format_db(per_metric[m]['mean'])} / {format_db(per_metric[m]['median'])}"
                for m in METRICS
            ]
            label = f"| {source} | " if single else f"| {source} | {_display_name(name)} | "
            lines.append(label + " | ".join(cells) + f" | {result.nb_tracks(source)} |")
    lines.append("")
    win = _format_seconds(next(iter(named.values())).win_seconds)
    lines.append(
        f"dB, mean / median over tracks of the per-track median over {win} s frames (BSS Eval v4, "
        f"museval); leakage: the estimate's energy over the mixture's where the reference is "
        f"{LEAKAGE_SILENCE_DB:g} dB or more below its loudest "
        f"{_format_seconds(LEAKAGE_WINDOW_SECONDS)} s window (at most {-LEAKAGE_FLOOR_DB:g} dB "
        f"down per track)."
    )
    if any(
        row.scores.get("SAR") == DEGENERATE_SAR for result in named.values() for row in result.rows
    ):
        lines.append(
            "SAR ∞: the estimate is the mixture, the sum of the references, so BSS Eval's "
            "artefact term is zero (museval prints about 169 dB); not a measurement."
        )
    if ORACLE in named:
        lines.append("oracle: the ideal ratio mask (the upper bound of a mask-based separator).")
    if MIXTURE in named:
        lines.append("mixture as estimate: the score of not separating at all.")
    return "\n".join(lines)


def _display_name(name: str) -> str:
    return "mixture as estimate" if name == MIXTURE else name


def format_comparison(
    results: Mapping[str, EvaluationResult], metric_list: Iterable[str] = ("SDR", "SIR", "SAR")
) -> str:
    """One markdown table comparing models: a row per source, a "<model> <metric>" column per pair.

    Values are means over tracks in dB; "n/a" where a model has no score for a source.
    """
    metric_list = tuple(metric_list)
    unknown = [metric for metric in metric_list if metric not in METRICS]
    if unknown or not metric_list:
        raise AdvsepError(f"metric_list must name some of {METRICS}, got {list(metric_list)}")
    if not results:
        raise AdvsepError("format_comparison needs at least one evaluation result")
    sources = list(dict.fromkeys(s for result in results.values() for s in result.sources))
    aggregates = {name: result.aggregate for name, result in results.items()}

    header = ["source"] + [f"{name} {metric}" for name in results for metric in metric_list]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for source in sources:
        cells = [source]
        for name in results:
            per_metric = aggregates[name].get(source)
            for metric in metric_list:
                cells.append(format_db(per_metric[metric]["mean"]) if per_metric else "n/a")
        lines.append("| " + " | ".join(cells) + " |")

    lines.append("")
    notes = ["dB, mean over tracks of the per-track median (BSS Eval v4, museval)."]
    track_sets = {name: tuple(sorted(result.tracks)) for name, result in results.items()}
    if len(set(track_sets.values())) > 1:
        counts = ", ".join(f"{name}: {len(tracks)}" for name, tracks in track_sets.items())
        notes.append(
            f"Not comparable as is: the models were scored on different tracks ({counts})."
        )
    frames = {(result.win_seconds, result.hop_seconds) for result in results.values()}
    if len(frames) > 1:
        notes.append("Not comparable as is: the models were scored with different frame settings.")
    source_sets = {tuple(result.sources) for result in results.values()}
    if len(source_sets) > 1:
        # SIR and SAR depend on which references are evaluated together.
        notes.append(
            "SIR/SAR not comparable as is: the models were scored on different source sets."
        )
    lines.extend(notes)
    return "\n".join(lines)


def plot_boxplots(
    results: Mapping[str, EvaluationResult], png_path: str | os.PathLike, metric: str = "SDR"
) -> None:
    """Per-track `metric` as box plots: one panel per source, one box per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = list(dict.fromkeys(s for result in results.values() for s in result.sources))
    fig, axes = plt.subplots(
        1, len(sources), figsize=(2.2 + 1.4 * len(results) * len(sources), 3.8), squeeze=False
    )
    for ax, source in zip(axes[0], sources):
        data, labels = [], []
        for name, result in results.items():
            values = [
                row.scores[metric]
                for row in result.rows
                if row.source == source
                and row.scores.get(metric) is not None
                and math.isfinite(row.scores[metric])
            ]
            data.append(values)
            labels.append(name)
        ax.boxplot(data, showmeans=True)
        ax.set_xticks(range(1, len(labels) + 1), labels, rotation=30, ha="right")
        ax.set_title(source)
        ax.set_ylabel(f"{metric} (dB)")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{metric} per track (BSS Eval v4); triangles are means")
    write_figure(fig, png_path)


def write_oracle_estimates(
    references_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    config,
    sources: Sequence[str] | None = None,
    rate: str = "input",
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Ideal-ratio-mask estimates for every reference track, written as `<track>/<source>.wav`.

    The mixture (`mixture.wav`, or the sum of the stems where there is none) is masked with
    |S_k| / sum_j |S_j| (`filtering.mask_mixture`) with its own phase. `rate` "input" (the
    default): at each track's own rate, with the STFT that spans the config's window in time
    (`filtering.band_stft`), over the whole band: the upper bound of a separator whose masks are
    applied at the input's rate, as `advsep-tf-separate` does by default. "model": resampled to
    the config's rate, masked at its STFT settings and resampled back, so band-limited to half
    the model's rate (the bound of a model's own band). `progress(done, total)` after each track.
    """
    import tensorflow as tf

    from advsep_tf import filtering, transforms
    from advsep_tf.data_pipelines.audio import AudioAdapter, resample

    if rate not in ORACLE_RATES:
        raise AdvsepError(f"oracle rate must be one of {ORACLE_RATES}, got {rate!r}")
    references_dir, out_dir = Path(references_dir), Path(out_dir)
    adapter = AudioAdapter.default()
    tracks = _list_tracks(references_dir, "references")
    if not sources:
        sources = sorted(set.intersection(*tracks.values()) - {MIXTURE_NAME})
    sources = list(sources)
    model_rate = config.audio.sample_rate
    for done, track in enumerate(sorted(tracks), start=1):
        stems = []
        for source in sources:
            data, track_rate = _read_checked(references_dir / track / f"{source}.wav")
            stems.append(data)
        length = min(len(x) for x in stems)
        stems = np.stack([x[:length] for x in stems])  # (K, n, c)
        mixture_path = references_dir / track / f"{MIXTURE_NAME}.wav"
        if mixture_path.is_file():
            mixture = _read_checked(mixture_path)[0][:length]
        else:
            mixture = stems.sum(0)
        channels = np.concatenate([mixture.T[None], stems.transpose(0, 2, 1)])  # (1 + K, c, n)
        flat = channels.reshape(-1, length)
        at_model_rate = rate == "model" and track_rate != model_rate
        if at_model_rate:
            flat = resample(flat.T, track_rate, model_rate).T
        if rate == "model":
            stft = transforms.STFT.from_config(config.spectrogram)
        else:
            stft = filtering.band_stft(config, track_rate)
        parts = np.ascontiguousarray(flat, np.float32).reshape(*channels.shape[:2], -1)
        mixture_parts = tf.constant(parts[0])  # (c, n)
        stem_parts = tf.constant(parts[1:].transpose(1, 0, 2))  # (c, K, n)
        waveforms = filtering.mask_mixture(mixture_parts, stem_parts, stft).numpy()  # (c, K, n)
        waveforms = waveforms.transpose(1, 0, 2).reshape(-1, waveforms.shape[-1])
        if at_model_rate:
            waveforms = resample(waveforms.T, model_rate, track_rate).T
        waveforms = waveforms[:, :length]
        if waveforms.shape[1] < length:
            waveforms = np.pad(waveforms, [(0, 0), (0, length - waveforms.shape[1])])
        waveforms = waveforms.reshape(len(sources), channels.shape[1], length)
        for source, estimate in zip(sources, waveforms):
            adapter.save(
                out_dir / track / f"{source}.wav", np.ascontiguousarray(estimate.T), track_rate
            )
        if progress is not None:
            progress(done, len(tracks))
    return out_dir


def folder_bytes(folder: str | os.PathLike) -> int:
    """The size of the files under `folder`, in bytes (0 when it does not exist)."""
    return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())


def progress_bar(description: str, enabled: bool = True) -> Callable[[int, int], None]:
    """A `progress(done, total)` callback that draws a tqdm bar labelled `description`, made on
    the first call (so that an input error is not printed after an empty bar) and closed when
    done == total."""
    from tqdm.auto import tqdm

    bars = []

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(
                tqdm(
                    total=total,
                    desc=description,
                    unit="track",
                    disable=not enabled,
                    dynamic_ncols=True,
                )
            )
        bars[0].update(done - bars[0].n)
        if done >= total:
            bars[0].close()

    return progress


def evaluate_all(
    references_dir: str | os.PathLike,
    estimates: Mapping[str, object] | None = None,
    out_dir: str | os.PathLike | None = None,
    *,
    oracle=None,
    oracle_rate: str = "input",
    oracle_audio: str | os.PathLike | None = None,
    mixture: bool = True,
    sources: Sequence[str] | None = None,
    result_dirs: Mapping[str, str | os.PathLike] | None = None,
    separated_dir: str | os.PathLike | None = None,
    reuse: bool = False,
    progress: bool | Callable[[str], Callable[[int, int], None]] = True,
    with_audio: Callable[[dict], object] | None = None,
    win_seconds: float = 1.0,
    hop_seconds: float = 1.0,
) -> dict[str, EvaluationResult]:
    """Score models, the ideal-ratio-mask oracle and the mixture as estimate on one reference
    folder (`<track>/<source>.wav`, `mixture.wav` optional); returns {name: result}, the models
    in the order given, then "oracle" and "mixture" where asked for.

    Args:
        estimates: {name: a folder of estimates (`<track>/<source>.wav`), or a separator (an
            object with `config`, as `advsep_tf.separate.Separator`), which separates every
            track's mixture into `separated_dir/<name>` first}.
        out_dir: each name's `results.json` and `results.csv` go to `out_dir/<name>/`, unless
            `result_dirs` names another folder for it; None and no `result_dirs`: nothing saved.
        oracle: a `Config` (or preset name): also score the ideal ratio mask at its STFT window,
            at the rate `oracle_rate` says (see `write_oracle_estimates`; "input": full band).
        oracle_audio: a folder to keep the oracle's stems in; None: they are written to a
            temporary folder and removed before returning (after `with_audio`).
        mixture: also score the mixture as estimate (`evaluate_mixture_as_estimate`).
        sources: the sources scored, jointly, for every name (None: as `evaluate_folders`
            chooses for the first name, then the same for the others).
        reuse: load a name's results where its `results.json` exists instead of scoring again.
        progress: True/False for tqdm bars labelled by what they do ("score <name>",
            "separate <name>", "oracle estimates"), or a function of that label that returns a
            `progress(done, total)` callback.
        with_audio: called with the results while every estimate's audio is still on disk
            (the report's excerpts are taken there).
        win_seconds, hop_seconds: BSS Eval frames, as `evaluate_folders`.
    """
    import shutil
    import tempfile

    references_dir = Path(references_dir)
    estimates = dict(estimates or {})
    reserved = [name for name in estimates if name in (ORACLE, MIXTURE)]
    if reserved:
        raise AdvsepError(f"model name(s) {reserved} are the oracle's and the mixture's")
    if callable(progress):
        bar = progress
    else:
        enabled = bool(progress)

        def bar(label):
            return progress_bar(label, enabled)

    def result_dir(name: str) -> Path | None:
        if result_dirs and name in result_dirs:
            return Path(result_dirs[name])
        return Path(out_dir) / name if out_dir is not None else None

    def reused(name: str) -> EvaluationResult | None:
        folder = result_dir(name)
        if reuse and folder is not None and (folder / RESULTS_JSON).is_file():
            return load_result(folder / RESULTS_JSON)
        return None

    def score(name: str, folder: Path) -> EvaluationResult:
        return evaluate_folders(
            folder,
            references_dir,
            result_dir(name),
            sources,
            win_seconds,
            hop_seconds,
            bar(f"score {name}"),
        )

    results: dict[str, EvaluationResult] = {}
    for name, estimate in estimates.items():
        result = reused(name)
        if result is None:
            if isinstance(estimate, (str, os.PathLike)):
                folder = Path(estimate)
            else:
                folder = _separate_references(
                    estimate, references_dir, name, separated_dir, out_dir, bar(f"separate {name}")
                )
            result = score(name, folder)
        results[name] = result
        sources = sources or result.sources
    temporary = None
    try:
        if oracle is not None:
            result = reused(ORACLE)
            if result is None:
                if isinstance(oracle, str):
                    from advsep_tf.config import load_config

                    oracle = load_config(oracle)
                if oracle_audio is None:
                    temporary = tempfile.mkdtemp(prefix="advsep-oracle-")
                folder = Path(oracle_audio or temporary)
                write_oracle_estimates(
                    references_dir, folder, oracle, sources, oracle_rate, bar("oracle estimates")
                )
                result = score(ORACLE, folder)
            results[ORACLE] = result
        if mixture:
            result = reused(MIXTURE)
            if result is None:
                result = evaluate_mixture_as_estimate(
                    references_dir,
                    result_dir(MIXTURE),
                    sources,
                    win_seconds,
                    hop_seconds,
                    bar("score mixture as estimate"),
                )
            results[MIXTURE] = result
        if with_audio is not None:
            with_audio(results)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    if temporary is not None:
        # The stems are gone: the saved result says so rather than naming a removed folder.
        results[ORACLE].estimates_dir = ""
        if result_dir(ORACLE) is not None:
            save_result(results[ORACLE], result_dir(ORACLE))
    return results


def _separate_references(
    separator, references_dir: Path, name: str, separated_dir, out_dir, progress
) -> Path:
    """Separate every reference track's mixture into `<separated_dir>/<name>/<track>/`."""
    from advsep_tf.data_pipelines.audio import AudioAdapter
    from advsep_tf.stem_files import separate_files

    if separated_dir is None and out_dir is None:
        raise AdvsepError(f"{name}: a separator's stems need a folder: give separated_dir")
    root = Path(separated_dir) if separated_dir is not None else Path(out_dir) / "separated"
    folder = root / name
    tracks = _list_tracks(references_dir, "references")
    mixtures = []
    for track in sorted(tracks):
        path = references_dir / track / f"{MIXTURE_NAME}.wav"
        if not path.is_file():  # the stems' sum, written beside the separated stems
            stems = sorted(tracks[track] - {MIXTURE_NAME})
            audio, rate, _ = track_mixture(references_dir / track, stems)
            path = root / f"{name}_mixtures" / track / f"{MIXTURE_NAME}.wav"
            AudioAdapter.default().save(path, audio, rate)
        mixtures.append(str(path))
    for done, path in enumerate(mixtures, start=1):
        # overwrite: stems there are an earlier, unfinished evaluation's.
        separate_files(separator, [path], str(folder), progress=False, overwrite=True)
        progress(done, len(mixtures))
    return folder


def _evaluate_track(
    estimate_track_dir: Path,
    reference_track_dir: Path,
    sources: Sequence[str],
    win_seconds: float,
    hop_seconds: float,
) -> list[dict[str, float | None]]:
    references = []
    estimates = []
    first_reference = None  # (path, sample_rate, shape)
    for source in sources:
        reference_path = reference_track_dir / f"{source}.wav"
        estimate_path = estimate_track_dir / f"{source}.wav"
        reference, reference_rate = _read_checked(reference_path)
        estimate, estimate_rate = _read_checked(estimate_path, silent_ok=True)
        if not np.any(estimate):
            estimate = _silent_estimate(estimate.shape, str(estimate_path))
        _check_pair(
            estimate_path, estimate, estimate_rate, reference_path, reference, reference_rate
        )
        if first_reference is None:
            first_reference = (reference_path, reference_rate, reference.shape)
        elif (reference_rate, reference.shape) != first_reference[1:]:
            # museval stacks the sources of a track, so they must agree with each other too.
            raise AdvsepError(
                f"{reference_path}: {_describe(reference_rate, reference.shape)} differs from "
                f"{first_reference[0]}: {_describe(*first_reference[1:])}"
            )
        references.append(reference)
        estimates.append(estimate)

    scores = _bss_eval(
        references,
        estimates,
        first_reference[1],
        win_seconds,
        hop_seconds,
        f"{estimate_track_dir} against {reference_track_dir}",
    )
    mixture, _, _ = track_mixture(reference_track_dir, sources)
    for row, reference, estimate in zip(scores, references, estimates):
        row["leakage"] = leakage_db(estimate, reference, mixture, first_reference[1])
        if estimate.shape == mixture.shape and np.array_equal(estimate, mixture):
            row["SAR"] = DEGENERATE_SAR  # the mixture as estimate: no artefact term
    return scores


def leakage_db(
    estimate: np.ndarray,
    reference: np.ndarray,
    mixture: np.ndarray,
    sample_rate: int,
    window_seconds: float = LEAKAGE_WINDOW_SECONDS,
    silence_db: float = LEAKAGE_SILENCE_DB,
) -> float | None:
    """What an estimate holds where its source is silent, relative to the mixture, in dB.

    Arrays are (samples, channels). Windows of `window_seconds` where the reference's energy is
    `silence_db` or more below its loudest window count; the result is 10 log10 of the estimate's
    energy over the mixture's, summed over those windows. None when the source is never silent
    (or silent throughout) or the mixture is silent there too; never below LEAKAGE_FLOOR_DB.
    Good separators reach -25 dB and below for the vocals in vocal pauses; the mixture as its own
    estimate scores 0 dB.
    """
    window = max(1, int(round(window_seconds * sample_rate)))
    length = min(len(estimate), len(reference), len(mixture)) // window * window
    if length == 0:
        return None
    silent = silent_windows(reference[:length], sample_rate, window_seconds, silence_db)
    mixture_energy = _window_energies(mixture[:length], window)[silent].sum()
    if not silent.any() or mixture_energy <= 0:
        return None
    estimate_energy = _window_energies(estimate[:length], window)[silent].sum()
    floor = 10 ** (LEAKAGE_FLOOR_DB / 10)
    return float(10 * np.log10(max(estimate_energy / mixture_energy, floor)))


def silent_windows(
    reference: np.ndarray,
    sample_rate: int,
    window_seconds: float = LEAKAGE_WINDOW_SECONDS,
    silence_db: float = LEAKAGE_SILENCE_DB,
) -> np.ndarray:
    """Per whole window of `window_seconds` of a (samples, channels) reference: True where its
    energy is `silence_db` or more below its loudest window (the windows `leakage_db` scores);
    all False where the reference is silent throughout."""
    energies = _window_energies(reference, max(1, int(round(window_seconds * sample_rate))))
    if energies.size == 0 or energies.max() <= 0:
        return np.zeros(energies.shape, bool)
    return energies <= energies.max() * 10 ** (-silence_db / 10)


def _window_energies(audio: np.ndarray, window: int) -> np.ndarray:
    """The energy of each whole `window` of (samples, channels) audio, summed over channels."""
    whole = len(audio) // window * window
    return np.square(audio[:whole].astype(np.float64)).reshape(-1, window * audio.shape[-1]).sum(1)


def _bss_eval(
    references: Sequence[np.ndarray],
    estimates: Sequence[np.ndarray],
    sample_rate: int,
    win_seconds: float,
    hop_seconds: float,
    what: str,
) -> list[dict[str, float | None]]:
    # museval pulls in musdb and pandas; importing it here keeps `import advsep_tf.evaluate` light.
    import museval

    win = max(1, int(round(win_seconds * sample_rate)))
    hop = max(1, int(round(hop_seconds * sample_rate)))
    try:
        sdr, isr, sir, sar = museval.evaluate(
            np.stack(references), np.stack(estimates), win=win, hop=hop
        )
    except ValueError as error:
        raise AdvsepError(f"{what}: museval refused the track: {error}") from error

    framewise = {"SDR": sdr, "SIR": sir, "SAR": sar, "ISR": isr}
    return [
        {metric: _median_over_frames(values[index]) for metric, values in framewise.items()}
        for index in range(len(references))
    ]


def _median_over_frames(frames: np.ndarray) -> float | None:
    defined = frames[~np.isnan(frames)]
    return float(np.median(defined)) if defined.size else None


# A separator that outputs silence for a source has failed on that track: it must be scored (low),
# not dropped, and museval cannot project an all-zero signal. Noise this far below any music stands
# in for it: museval then scores it about 0 dB SDR, the score of outputting nothing.
SILENT_ESTIMATE_LEVEL = 1e-7


def _silent_estimate(shape, name: str) -> np.ndarray:
    seed = int.from_bytes(name.encode()[-8:].rjust(8, b"\0"), "little")
    return (SILENT_ESTIMATE_LEVEL * np.random.default_rng(seed).standard_normal(shape)).astype(
        np.float32
    )


def _read_checked(path: Path, silent_ok: bool = False) -> tuple[np.ndarray, int]:
    try:
        audio, sample_rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        raise AdvsepError(f"{path}: cannot read audio: {error}") from error
    if audio.size == 0:
        raise AdvsepError(f"{path}: empty audio ({audio.shape[0]} samples)")
    if not np.all(np.isfinite(audio)):
        nb_bad = int(np.count_nonzero(~np.isfinite(audio)))
        raise AdvsepError(f"{path}: {nb_bad} NaN or inf samples")
    if not silent_ok and not np.any(audio):
        # museval rejects all-zero sources (the projection becomes underdetermined).
        raise AdvsepError(f"{path}: all samples are zero; BSS Eval cannot score a silent source")
    return audio, sample_rate


def _check_pair(
    estimate_path: Path,
    estimate: np.ndarray,
    estimate_rate: int,
    reference_path: Path,
    reference: np.ndarray,
    reference_rate: int,
) -> None:
    if estimate_rate != reference_rate:
        raise AdvsepError(
            f"{estimate_path}: sample rate {estimate_rate} Hz, but its reference "
            f"{reference_path} has {reference_rate} Hz"
        )
    if estimate.shape[1] != reference.shape[1]:
        raise AdvsepError(
            f"{estimate_path}: {estimate.shape[1]} channel(s), but its reference "
            f"{reference_path} has {reference.shape[1]}"
        )
    if estimate.shape[0] != reference.shape[0]:
        raise AdvsepError(
            f"{estimate_path}: {estimate.shape[0]} samples, but its reference {reference_path} "
            f"has {reference.shape[0]}; a separator must return exactly the input length"
        )


def _list_tracks(folder: Path, role: str) -> dict[str, set[str]]:
    """{track: {source, ...}} of a `<track>/<source>.wav` folder."""
    if not folder.is_dir():
        raise AdvsepError(f"{folder}: {role} folder does not exist")
    tracks = {
        track_dir.name: {wav.stem for wav in track_dir.glob("*.wav") if wav.is_file()}
        for track_dir in folder.iterdir()
        if track_dir.is_dir() and not track_dir.name.startswith(".")
    }
    if not tracks:
        raise AdvsepError(
            f"{folder}: no track folders in the {role} (expected <track>/<source>.wav)"
        )
    return tracks


def _check_same_tracks(
    estimate_tracks: Mapping, reference_tracks: Mapping, estimates_dir: Path, references_dir: Path
) -> None:
    extra = sorted(set(estimate_tracks) - set(reference_tracks))
    if extra:
        raise AdvsepError(
            f"{estimates_dir}: {len(extra)} track(s) have no reference in {references_dir}: "
            + ", ".join(extra)
        )
    missing = sorted(set(reference_tracks) - set(estimate_tracks))
    if missing:
        raise AdvsepError(
            f"{estimates_dir}: {len(missing)} reference track(s) of {references_dir} have no "
            "estimates: " + ", ".join(missing)
        )


def _select_sources(
    tracks: Sequence[str],
    estimate_tracks: Mapping[str, set[str]],
    reference_tracks: Mapping[str, set[str]],
    estimates_dir: Path,
    references_dir: Path,
    sources: Sequence[str] | None,
) -> list[str]:
    if sources is None:
        in_every_reference = set.intersection(*(reference_tracks[t] for t in tracks))
        in_estimates = set.union(*(estimate_tracks[t] for t in tracks))
        selected = sorted((in_every_reference & in_estimates) - {MIXTURE_NAME})
        if not selected:
            raise AdvsepError(
                f"no source is both in every reference track of {references_dir} "
                f"({sorted(in_every_reference)}) and in the estimates of {estimates_dir} "
                f"({sorted(in_estimates)})"
            )
    else:
        selected = list(sources)
        if len(set(selected)) != len(selected):
            raise AdvsepError(f"sources lists a source twice: {selected}")
        for track in tracks:
            for source in selected:
                if source not in reference_tracks[track]:
                    missing_path = references_dir / track / f"{source}.wav"
                    raise AdvsepError(f"{missing_path}: no such reference")

    missing = [
        str(estimates_dir / track / f"{source}.wav")
        for track in tracks
        for source in selected
        if source not in estimate_tracks[track]
    ]
    if missing:
        raise AdvsepError("missing estimate file(s): " + ", ".join(missing))
    if len(selected) < 2:
        raise AdvsepError(
            f"BSS Eval needs at least two sources per track (SIR measures the leak of the others), "
            f"got {selected}; add the complementary source (e.g. accompaniment)"
        )
    return selected


def _to_csv(result: EvaluationResult) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["track", "source", *METRICS])
    for row in result.rows:
        writer.writerow(
            [row.track, row.source]
            + ["" if row.scores.get(m) is None else repr(row.scores[m]) for m in METRICS]
        )
    return buffer.getvalue()


def _encode_score(value: float | None) -> float | str | None:
    if value is not None and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _decode_score(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value not in ("inf", "-inf"):
            raise ValueError(f"score {value!r}")
        return float(value)
    return float(value)


def _nan_to_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def _format_seconds(seconds: float) -> str:
    return f"{seconds:g}"


def _describe(sample_rate: int, shape: tuple[int, int]) -> str:
    return f"{sample_rate} Hz, {shape[1]} channel(s), {shape[0]} samples"


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return ""
