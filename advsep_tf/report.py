"""The results report: one `report.html` to read the scores of a run, look at its spectrograms and
listen to it, written by `advsep-tf-evaluate` (also with `--compare`) and `advsep-tf-experiment`.

The page opens from the file system: its assets lie in `report_files/` beside it and are named by
relative paths; nothing comes from a server or the network. It holds
- a summary table per source and model (mean and median SDR/SIR/SAR over tracks, as in the
  models' `results.json`), the oracle and the mixture-as-estimate beside the models;
- a per-track table that sorts by any column when its header is clicked;
- per track, spectrograms of the mixture, every reference and every estimate, and players for
  them: mono MP3 excerpts of one stated length, from the same offset in every file of the
  track, so that the page stays small for a whole test set;
- the box plots, training curves and critic-gradient figure where the run has them;
- the configuration and the command line.
"""

from __future__ import annotations

import datetime
import html
import json
import math
import os
import re
import shlex
import shutil
import sys
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import soundfile as sf

from advsep_tf.errors import AdvsepError
from advsep_tf.evaluate import (
    LEAKAGE_FLOOR_DB,
    LEAKAGE_SILENCE_DB,
    EvaluationResult,
    format_db,
    track_mixture,
)
from advsep_tf.files import atomic_output, write_atomically

REPORT_HTML = "report.html"
ASSETS_DIR = "report_files"
ORACLE = "oracle"
MIXTURE_LABEL = "mixture as estimate"
SUMMARY_METRICS = ("SDR", "SIR", "SAR")
STATS = ("mean", "median")
DEFAULT_EXCERPT_SECONDS = 10.0
# Excerpts at higher rates are resampled to this: the page is for listening, and 22 kHz keeps what
# separation errors sound like while halving the audio of a 44.1 kHz test set.
MAX_AUDIO_RATE = 22050
# MP3 rather than Ogg Vorbis: every browser plays it, and chromium reports a Vorbis file 256
# samples too long (it ignores the end trim), 1% of a 3 s excerpt at 8 kHz. LAME's VBR at this
# level gives about 15 kbit/s for mono 8 kHz and 35 kbit/s for mono 22 kHz.
MP3_COMPRESSION_LEVEL = 0.5
# The sample rates MPEG audio has; an excerpt is resampled to the highest one not above its own.
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
# Spectrogram images: at most this many frames wide and rows high, about their size on the page.
# JPEG: a spectrogram is noise-like, and a lossless PNG of one is 2-3 times the size.
SPECTROGRAM_MAX_FRAMES = 320
SPECTROGRAM_ROWS = 128
SPECTROGRAM_JPEG_QUALITY = 85
SPECTROGRAM_RANGE_DB = 80.0
SPECTROGRAM_WINDOW_SECONDS = 0.046
# The loudest excerpt is searched for at this granularity.
EXCERPT_SEARCH_STEP_SECONDS = 0.25

EXPERIMENT_FIGURES = (
    ("boxplot_sdr.png", "SDR per track: a panel per source, a box per model; triangles are means."),
    ("training_curves.png", "Training and validation supervised loss L_s per model."),
    (
        "critic_gradients.png",
        "The paper's figure: the gradient of each critic's output with respect to the separator's "
        "estimate. Where it is positive (red), raising the estimate's magnitude makes it look more "
        "like a real solo recording of that source to the critic.",
    ),
)


@dataclass
class WrittenReport:
    """Where the page went and how much disk it takes with its assets."""

    path: Path
    nb_bytes: int
    nb_files: int


@dataclass
class _Stem:
    """One spectrogram and player of a track section."""

    label: str
    image: str | None = None  # relative to the page
    audio: str | None = None
    seconds: float = 0.0
    score: str = ""
    missing: str = ""


@dataclass
class _TrackSection:
    name: str
    anchor: str
    rows: list[tuple[str, list[_Stem | None]]] = field(default_factory=list)
    description: str = ""
    frequency_labels: tuple[str, str, str] = ("", "", "")


def write_report(
    out_dir: str | os.PathLike,
    results: Mapping[str, EvaluationResult],
    mixture: EvaluationResult | None = None,
    figures: Sequence[tuple[str | os.PathLike, str]] = (),
    config: Mapping | None = None,
    command: str | None = None,
    title: str = "advsep-tf results",
    notes: str = "",
    excerpt_seconds: float = DEFAULT_EXCERPT_SECONDS,
    progress: bool = True,
) -> WrittenReport:
    """Writes `out_dir/report.html` and its assets in `out_dir/report_files/`; prints where and
    how large at the end.

    Args:
        results: {model name: its evaluation}; the one named "oracle" is shown as the oracle. The
            audio comes from each result's `estimates_dir` and `references_dir`, where they exist.
        mixture: the mixture-as-estimate evaluation (`evaluate.evaluate_mixture_as_estimate`).
        figures: (png path, caption) pairs; those that exist are copied beside the page.
        config: shown as JSON. command: shown as is; None: this process's command line.
        notes: preformatted text shown under the title (e.g. the experiment's comparison.md).
        excerpt_seconds: the length of every audio excerpt (the whole track when shorter).
    """
    if not results:
        raise AdvsepError("a report needs at least one evaluation result")
    if not excerpt_seconds > 0:
        raise AdvsepError(f"excerpt_seconds must be positive, got {excerpt_seconds}")
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [name for name in results if name != ORACLE] + [
        name for name in results if name == ORACLE
    ]
    scored = {name: results[name] for name in names}
    if mixture is not None:
        scored[MIXTURE_LABEL] = mixture
    sources = list(dict.fromkeys(source for result in scored.values() for source in result.sources))
    tracks = sorted(dict.fromkeys(track for result in scored.values() for track in result.tracks))
    references_dir = _first_existing(result.references_dir for result in scored.values())
    if command is None:
        command = shlex.join([os.path.basename(sys.argv[0]), *sys.argv[1:]])

    # Built aside and swapped in, so that an interrupted run leaves the previous report whole.
    assets = out_dir / ASSETS_DIR
    with atomic_output(
        str(assets), directory=True, overwrite=True, what="an earlier report's assets"
    ) as building:
        building = Path(building)
        building.mkdir()
        sections = []
        for index, track in enumerate(
            tqdm(tracks, desc="report", unit="track", disable=not progress, dynamic_ncols=True),
            start=1,
        ):
            sections.append(
                _track_section(
                    index, track, names, results, sources, references_dir, building, excerpt_seconds
                )
            )
        figure_entries = []
        for figure_path, caption in figures:
            figure_path = Path(figure_path)
            if figure_path.is_file():
                shutil.copyfile(figure_path, building / figure_path.name)
                figure_entries.append((f"{ASSETS_DIR}/{figure_path.name}", caption))
        page = _render_page(
            title=title,
            notes=notes,
            names=names,
            scored=scored,
            sources=sources,
            tracks=tracks,
            sections=sections,
            figures=figure_entries,
            config=config,
            command=command,
            excerpt_seconds=excerpt_seconds,
            has_references=references_dir is not None,
        )
    page_path = out_dir / REPORT_HTML
    write_atomically(page_path, page)

    asset_files = [path for path in assets.rglob("*") if path.is_file()]
    written = WrittenReport(
        path=page_path,
        nb_bytes=page_path.stat().st_size + sum(path.stat().st_size for path in asset_files),
        nb_files=1 + len(asset_files),
    )
    print(
        f"Report: {page_path.resolve()} ({format_size(written.nb_bytes)} with {ASSETS_DIR}/, "
        f"{written.nb_files} files)",
        flush=True,
    )
    return written


def write_experiment_report(
    out_dir: str | os.PathLike,
    test_dir: str | os.PathLike,
    config,
    runs: Mapping[str, Mapping],
    results: Mapping[str, EvaluationResult],
    title: str,
    notes: str = "",
    progress: bool = True,
    mixture: EvaluationResult | None = None,
) -> WrittenReport:
    """The report of `experiment.run_experiment`, with the experiment's figures and
    configuration; `mixture`: the mixture as estimate's scores (None: scored here, into
    `results/mixture/`)."""
    from advsep_tf.evaluate import MIXTURE, evaluate_all

    out_dir = Path(out_dir)
    if mixture is None:
        mixture = evaluate_all(
            test_dir, out_dir=out_dir / "results", sources=config.sources, progress=progress
        )[MIXTURE]
    return write_report(
        out_dir,
        results,
        mixture=mixture,
        figures=[(out_dir / name, caption) for name, caption in EXPERIMENT_FIGURES],
        config={
            "runs": {name: dict(overrides) for name, overrides in runs.items()},
            "config": config.to_dict(),
        },
        title=title,
        notes=notes,
        progress=progress,
    )


def format_size(nb_bytes: int) -> str:
    if nb_bytes < 1000:
        return f"{nb_bytes} B"
    if nb_bytes < 1000**2:
        return f"{nb_bytes / 1000:.0f} kB"
    return f"{nb_bytes / 1000**2:.1f} MB"


# --- audio and spectrograms ---------------------------------------------------------------------


def _track_section(
    index: int,
    track: str,
    names: Sequence[str],
    results: Mapping[str, EvaluationResult],
    sources: Sequence[str],
    references_dir: Path | None,
    assets: Path,
    excerpt_seconds: float,
) -> _TrackSection:
    folder_name = f"{index:03d}_{_slug(track)}"
    folder = assets / folder_name
    folder.mkdir()
    section = _TrackSection(name=track, anchor=f"track-{index}")
    track_dir = references_dir / track if references_dir is not None else None
    if track_dir is not None and not track_dir.is_dir():
        track_dir = None
    estimate_paths = {
        name: (Path(results[name].estimates_dir) / track if results[name].estimates_dir else None)
        for name in names
    }

    mixture_excerpt = None
    if track_dir is not None:
        try:
            mixture, rate, _ = track_mixture(track_dir, sources)
        except AdvsepError as error:
            section.description = f"No mixture: {error}. "
        else:
            start_seconds, length_seconds = _loudest_excerpt(
                mixture.mean(axis=1), rate, excerpt_seconds
            )
            mixture_excerpt = _excerpt(mixture, rate, start_seconds, length_seconds)
            del mixture  # whole tracks can be large; only the excerpt is kept
    if mixture_excerpt is None:
        # Without a mixture there is no loudest part to find: the start of the first estimate.
        start_seconds, length_seconds = 0.0, excerpt_seconds
        for folder_path in estimate_paths.values():
            wavs = sorted(folder_path.glob("*.wav")) if folder_path and folder_path.is_dir() else []
            if wavs:
                length_seconds = min(excerpt_seconds, sf.info(str(wavs[0])).duration)
                break

    # The mixture's loudest bin is the 0 dB of every image of the track, so it is drawn first.
    scale = {}

    def stem(
        label: str, audio_and_rate, asset_name: str, score: str = "", missing: str = ""
    ) -> _Stem:
        if audio_and_rate is None:
            return _Stem(label=label, score=score, missing=missing or "not available")
        audio, audio_rate = audio_and_rate
        mp3 = folder / f"{asset_name}.mp3"
        mp3_audio, mp3_rate = _to_mp3_rate(audio, audio_rate)
        sf.write(
            mp3,
            mp3_audio,
            mp3_rate,
            format="MP3",
            subtype="MPEG_LAYER_III",
            compression_level=MP3_COMPRESSION_LEVEL,
        )
        # Drawn before the MP3's resampling: the image shows the stem's whole band.
        power, top_hz = _spectrogram(audio, audio_rate)
        if not scale:
            scale.update(
                power=float(power.max()) or 1.0, top_hz=top_hz, rate=audio_rate, mp3_rate=mp3_rate
            )
        image = folder / f"{asset_name}.jpg"
        _write_spectrogram_jpeg(power, scale["power"], image)
        return _Stem(
            label=label,
            image=f"{ASSETS_DIR}/{folder_name}/{image.name}",
            audio=f"{ASSETS_DIR}/{folder_name}/{mp3.name}",
            seconds=len(mp3_audio) / mp3_rate,
            score=score,
        )

    def from_file(path: Path | None):
        return (
            _read_excerpt(path, start_seconds, length_seconds) if path and path.is_file() else None
        )

    section.rows.append(("mixture", [stem("mixture", mixture_excerpt, "mixture")]))
    for source_index, source in enumerate(sources):
        reference = track_dir / f"{source}.wav" if track_dir else None
        cells = [
            stem(
                "reference",
                from_file(reference),
                f"s{source_index}_reference",
                missing=f"not found: {reference}" if reference else "",
            )
        ]
        for model_index, name in enumerate(names):
            estimate = estimate_paths[name] / f"{source}.wav" if estimate_paths[name] else None
            cells.append(
                stem(
                    name,
                    from_file(estimate),
                    f"s{source_index}_m{model_index}_{_slug(name)}",
                    score=f"SDR {format_db(_track_score(results[name], track, source, 'SDR'))} dB",
                    missing=f"not found: {estimate}" if estimate else "",
                )
            )
        section.rows.append((source, cells))

    if scale:
        top_hz = scale["top_hz"]
        section.frequency_labels = (_format_hz(top_hz), _format_hz(top_hz / 2), "0")
        section.description += (
            f"Excerpt {start_seconds:.2f}-{start_seconds + length_seconds:.2f} s, mono, MP3 at "
            f"{scale['mp3_rate']} Hz. Spectrograms at {scale['rate']} Hz: linear frequency "
            f"0-{_format_hz(top_hz)}, "
            f"colour over {SPECTROGRAM_RANGE_DB:.0f} dB below the "
            f"{'mixture' if mixture_excerpt is not None else 'first image'}'s loudest bin; every "
            "image of the track shares both scales."
        )
    return section


def _loudest_excerpt(mono: np.ndarray, rate: int, seconds: float) -> tuple[float, float]:
    """(start, length) in seconds of the loudest `seconds` of a track; the whole when shorter."""
    length = int(round(seconds * rate))
    if length >= len(mono):
        return 0.0, len(mono) / rate
    step = max(1, int(round(EXCERPT_SEARCH_STEP_SECONDS * rate)))
    energy = np.concatenate([[0.0], np.cumsum(mono.astype(np.float64) ** 2)])
    starts = np.arange(0, len(mono) - length + 1, step)
    best = int(starts[np.argmax(energy[starts + length] - energy[starts])])
    return best / rate, length / rate


def _read_excerpt(
    path: Path, start_seconds: float, length_seconds: float
) -> tuple[np.ndarray, int]:
    try:
        rate = sf.info(str(path)).samplerate
        start, length = int(round(start_seconds * rate)), int(round(length_seconds * rate))
        audio, _ = sf.read(str(path), start=start, frames=length, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        raise AdvsepError(f"{path}: cannot read audio for the report: {error}") from error
    return _excerpt(audio, rate, 0.0, length / rate)


def _excerpt(
    audio: np.ndarray, rate: int, start_seconds: float, length_seconds: float
) -> tuple[np.ndarray, int]:
    """(nb_samples, nb_channels) -> mono float32 at most MAX_AUDIO_RATE, zero-padded where the
    audio ends before the excerpt does."""
    from advsep_tf.data_pipelines.audio import resample

    start, length = int(round(start_seconds * rate)), int(round(length_seconds * rate))
    mono = audio[start : start + length].mean(axis=1).astype(np.float32)
    if len(mono) < length:
        mono = np.pad(mono, (0, length - len(mono)))
    if rate > MAX_AUDIO_RATE:
        mono = resample(mono[:, None], rate, MAX_AUDIO_RATE)[:, 0]
        rate = MAX_AUDIO_RATE
    return np.clip(mono, -1.0, 1.0), rate


def _to_mp3_rate(mono: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
    from advsep_tf.data_pipelines.audio import resample

    target = max([r for r in MP3_RATES if r <= rate] or [MP3_RATES[0]])
    if target != rate:
        mono = np.clip(resample(mono[:, None], rate, target)[:, 0], -1.0, 1.0)
    return mono, target


def _spectrogram(mono: np.ndarray, rate: int) -> tuple[np.ndarray, float]:
    """(rows, frames) power of a Hann-window STFT, low frequencies first; and the top edge in Hz."""
    n_fft = 2 ** int(math.ceil(math.log2(max(16.0, rate * SPECTROGRAM_WINDOW_SECONDS))))
    padded = np.pad(mono.astype(np.float64), (n_fft // 2, n_fft // 2))
    hop = max(n_fft // 4, math.ceil((len(padded) - n_fft) / max(1, SPECTROGRAM_MAX_FRAMES - 1)))
    nb_frames = max(1, 1 + (len(padded) - n_fft) // hop)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:nb_frames]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)[:, : n_fft // 2]) ** 2
    nb_bins = power.shape[1]
    rows = min(SPECTROGRAM_ROWS, nb_bins)
    group = nb_bins // rows
    power = power[:, : rows * group].reshape(len(power), rows, group).mean(axis=2)
    return power.T, rate / 2 * (rows * group) / nb_bins


def _write_spectrogram_jpeg(power: np.ndarray, reference_power: float, path: Path) -> None:
    from matplotlib import colormaps
    from PIL import Image

    db = 10 * np.log10(np.maximum(power, 1e-20) / reference_power)
    level = np.clip(1 + db / SPECTROGRAM_RANGE_DB, 0.0, 1.0)
    indices = np.round(level * 255).astype(np.uint8)[::-1]  # low frequencies at the bottom
    palette = np.round(colormaps["magma"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    Image.fromarray(np.ascontiguousarray(palette[indices])).save(
        path, quality=SPECTROGRAM_JPEG_QUALITY
    )


# --- the page ------------------------------------------------------------------------------------


def _render_page(
    title: str,
    notes: str,
    names: Sequence[str],
    scored: Mapping[str, EvaluationResult],
    sources: Sequence[str],
    tracks: Sequence[str],
    sections: Sequence[_TrackSection],
    figures: Sequence[tuple[str, str]],
    config: Mapping | None,
    command: str,
    excerpt_seconds: float,
    has_references: bool,
) -> str:
    from advsep_tf import __version__

    e = html.escape
    columns = list(scored)
    generated = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        # No favicon request: from file:// it would be a failed load in the console.
        '<link rel="icon" href="data:,">',
        f"<style>{_CSS}</style></head><body>",
        f"<header><h1>{e(title)}</h1>",
        f'<p class="meta">Written {e(generated)} by advsep-tf {e(__version__)}; '
        f"{len(tracks)} track(s), sources {e(', '.join(sources))}.</p>",
        '<nav><a href="#summary-section">Summary</a> <a href="#per-track-section">Per track</a> '
        + ('<a href="#figures">Figures</a> ' if figures else "")
        + '<a href="#tracks">Listen</a> <a href="#configuration">Configuration</a></nav></header>',
    ]
    if notes:
        parts.append(
            f'<details class="notes"><summary>About this '
            f"run</summary><pre>{e(notes)}</pre></details>"
        )

    # Summary.
    metrics = _summary_metrics(scored)
    bests = {}
    for source in sources:
        present = [name for name in columns if source in scored[name].sources]
        contenders = [name for name in present if name in names and name != ORACLE]
        bests[source] = _best_means(scored, contenders, source, metrics)
    any_bold = any(bests.values())
    degenerate = any(
        row.scores.get("SAR") == math.inf for result in scored.values() for row in result.rows
    )
    parts.append('<section id="summary-section"><h2>Summary</h2>')
    parts.append(
        "<p>BSS Eval v4 (museval) in dB: per track the median over frames, then the mean and the "
        "median over tracks, as in each model's <code>results.json</code>. "
        + (
            "<b>Bold</b>: the best model mean per column (the oracle and the mixture are bounds, "
            "not contenders; lowest is best for leakage). "
            if any_bold
            else ""
        )
        + "The oracle is the ideal ratio mask; the mixture as estimate is the score of doing "
        "nothing."
        + (
            " Leakage: the estimate's energy over the mixture's where the reference is silent "
            f"({LEAKAGE_SILENCE_DB:g} dB or more below its loudest window; a track scores no "
            f"lower than {LEAKAGE_FLOOR_DB:g} dB), lower is better; n/a "
            "where a source is never silent."
            if "leakage" in metrics
            else ""
        )
        + (
            " SAR \u221e: the mixture as estimate is the sum of the references, so BSS Eval's "
            "artefact term is zero (museval returns about 169 dB there, not a measurement)."
            if degenerate
            else ""
        )
        + "</p>"
    )
    absent = []
    if ORACLE not in names:
        absent.append(
            "no oracle scores (<code>advsep-tf-evaluate --oracle PRESET</code> adds them)"
        )
    if MIXTURE_LABEL not in scored:
        absent.append("no mixture-as-estimate scores (they need the results' one reference folder)")
    if absent:
        parts.append(f'<p class="warning">This report has {" and ".join(absent)}.</p>')
    parts.append(
        '<div class="scroll"><table id="summary" class="scores"><thead><tr>'
        '<th scope="col">source</th><th scope="col">model</th>'
    )
    for metric in metrics:
        for stat in STATS:
            parts.append(f'<th scope="col">{metric} {stat}</th>')
    parts.append('<th scope="col">tracks</th></tr></thead>')
    for source in sources:
        present = [name for name in columns if source in scored[name].sources]
        best = bests[source]
        parts.append("<tbody>")
        for row_index, name in enumerate(present):
            result = scored[name]
            aggregate = result.aggregate[source]
            parts.append(f'<tr class="{_role(name, names)}">')
            if row_index == 0:
                parts.append(f'<th scope="rowgroup" rowspan="{len(present)}">{e(source)}</th>')
            parts.append(f'<td class="name">{e(name)}</td>')
            for metric in metrics:
                for stat in STATS:
                    value = aggregate[metric][stat]
                    is_best = stat == "mean" and best.get(metric) == name
                    text = f"<b>{format_db(value)}</b>" if is_best else format_db(value)
                    best_class = ' class="best"' if is_best else ""
                    parts.append(
                        f'<td{best_class} data-model="{e(name)}" '
                        f'data-source="{e(source)}" data-metric="{metric}" data-stat="{stat}" '
                        f'data-value="{_data_value(value)}">{text}</td>'
                    )
            parts.append(
                f'<td data-tracks="{result.nb_tracks(source)}">{result.nb_tracks(source)}</td></tr>'
            )
        parts.append("</tbody>")
    parts.append("</table></div></section>")

    # Per track, sortable; three header rows (model, source, metric) keep the columns narrow, and
    # a wider table scrolls inside its own box, the track names staying in view.
    parts.append('<section id="per-track-section"><h2>Per track</h2>')
    parts.append(
        "<p>Median over frames per track, dB. Click a metric's header to sort by it; "
        "click again to reverse. Track names lead to their spectrograms and players. "
        "A table wider than the page scrolls sideways inside its box.</p>"
    )
    parts.append(
        '<div class="scroll" id="per-track-box"><table id="per-track" '
        'class="scores sortable"><thead><tr>'
    )
    parts.append(
        '<th scope="col" rowspan="3" data-column="0" data-sort="text" tabindex="0">track</th>'
    )
    for name in columns:
        span = sum(len(SUMMARY_METRICS) for s in sources if s in scored[name].sources)
        parts.append(
            f'<th scope="colgroup" colspan="{span}" class="{_role(name, names)}">{e(name)}</th>'
        )
    parts.append("</tr><tr>")
    for name in columns:
        for source in sources:
            if source in scored[name].sources:
                parts.append(
                    f'<th scope="colgroup" colspan="{len(SUMMARY_METRICS)}" '
                    f'class="group">{e(source)}</th>'
                )
    parts.append("</tr><tr>")
    column = 1
    for name in columns:
        for source in sources:
            if source not in scored[name].sources:
                continue
            for metric in SUMMARY_METRICS:
                parts.append(
                    f'<th scope="col" data-column="{column}" data-sort="number" tabindex="0" '
                    f'data-model="{e(name)}" data-source="{e(source)}" data-metric="{metric}" '
                    f'title="{e(name)}: {e(source)} {metric}">{metric}</th>'
                )
                column += 1
    parts.append("</tr></thead><tbody>")
    anchors = {section.name: section.anchor for section in sections}
    for track in tracks:
        parts.append(
            f'<tr data-track="{e(track)}"><td><a href="#{anchors[track]}">{e(track)}</a></td>'
        )
        for name in columns:
            for source in sources:
                if source not in scored[name].sources:
                    continue
                for metric in SUMMARY_METRICS:
                    value = _track_score(scored[name], track, source, metric)
                    parts.append(f'<td data-value="{_data_value(value)}">{format_db(value)}</td>')
        parts.append("</tr>")
    parts.append("</tbody></table></div></section>")

    if figures:
        parts.append('<section id="figures"><h2>Figures</h2>')
        for src, caption in figures:
            parts.append(
                f'<figure class="figure"><img src="{_url(src)}" alt="{e(caption)}">'
                f"<figcaption>{e(caption)}</figcaption></figure>"
            )
        parts.append("</section>")

    parts.append('<section id="tracks"><h2>Listen</h2>')
    parts.append(
        f"<p>Per track: the mixture, then per source the reference and each model's estimate. "
        f"Excerpts of {excerpt_seconds:g} s (the whole track when shorter) from the loudest part "
        f"of the mixture, the same offset in every file; mono MP3 at the highest MP3 rate up to "
        f"the track's and at most {MAX_AUDIO_RATE} Hz. The scores are those of the whole track.</p>"
    )
    if not has_references:
        parts.append(
            '<p class="warning">The reference folder of these results was not found, so '
            "there is no mixture or reference to show.</p>"
        )
    for section in sections:
        parts.append(_render_track(section, names))
    parts.append("</section>")

    parts.append('<section id="configuration"><h2>Configuration</h2>')
    parts.append(f'<h3>Command line</h3><pre id="command">{e(command)}</pre>')
    if config is not None:
        parts.append(
            f'<h3>Configuration</h3><pre id="config">{e(json.dumps(config, indent=2))}</pre>'
        )
    parts.append(
        '<h3>Evaluation settings</h3><div class="scroll"><table class="settings"><thead><tr>'
        "<th>model</th><th>tracks</th><th>sources</th><th>window / hop (s)</th>"
        "<th>estimates</th><th>references</th><th>museval</th></tr></thead><tbody>"
    )
    for name, result in scored.items():
        parts.append(
            f"<tr><td>{e(name)}</td><td>{len(result.tracks)}</td>"
            f"<td>{e(', '.join(result.sources))}</td>"
            f"<td>{result.win_seconds:g} / {result.hop_seconds:g}</td>"
            f"<td><code>{e(result.estimates_dir or '(the mixture)')}</code></td>"
            f"<td><code>{e(result.references_dir)}</code></td><td>{e(result.museval_version)}</td></tr>"
        )
    parts.append("</tbody></table></div></section>")
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"


def _render_track(section: _TrackSection, names: Sequence[str]) -> str:
    e = html.escape
    nb_columns = 1 + len(names)
    parts = [
        f'<section class="track" id="{section.anchor}" data-track="{e(section.name)}">',
        f"<h3>{e(section.name)}</h3>",
        f'<p class="meta">{e(section.description)}</p>',
        f'<div class="stems" style="grid-template-columns: 4.2em repeat({nb_columns}, '
        f'minmax(11em, 1fr))">',
    ]
    top, middle, bottom = section.frequency_labels
    for row_label, cells in section.rows:
        parts.append(
            f'<div class="axis"><span>{e(top)}</span><span>{e(middle)}</span>'
            f"<span>{e(bottom)}</span></div>"
        )
        for cell in list(cells) + [None] * (nb_columns - len(cells)):
            if cell is None:
                parts.append('<div class="stem empty"></div>')
                continue
            # The row's source is named once, by its reference (the first cell); captions stay on
            # one line, so that every image of a row starts at the height of its frequency axis.
            full = row_label if cell.label == row_label else f"{row_label} · {cell.label}"
            heading = full if cell is cells[0] else cell.label
            parts.append(
                f'<figure class="stem"><figcaption title="{e(full)} '
                f'{e(cell.score)}"><b>{e(heading)}</b> '
                f"{e(cell.score)}</figcaption>"
            )
            if cell.image:
                parts.append(
                    f'<img src="{_url(cell.image)}" alt="spectrogram: {e(full)}" '
                    f'width="{SPECTROGRAM_MAX_FRAMES}" height="{SPECTROGRAM_ROWS}">'
                    f'<audio controls preload="metadata" src="{_url(cell.audio)}" '
                    f'data-seconds="{cell.seconds:.6f}"></audio>'
                )
            else:
                parts.append(f'<p class="missing">{e(cell.missing)}</p>')
            parts.append("</figure>")
    parts.append("</div></section>")
    return "\n".join(parts)


_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
  max-width: 1400px; padding: 0 1.5em 3em; color: #1d1d1f; background: #fff; }
header { border-bottom: 1px solid #ddd; margin-bottom: 1em; }
h1 { font-size: 1.6em; margin: .8em 0 .2em; } h2 { margin-top: 1.6em; } h3 { margin: 1.2em 0 .3em; }
nav a { margin-right: 1em; } .meta { color: #555; font-size: .9em; margin: .2em 0 .6em; }
.scroll { overflow-x: auto; max-width: 100%; }
#per-track-box { overflow-x: auto; }
th.group { text-align: center; font-weight: 600; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .55em; text-align: right; white-space: nowrap; }
th { background: #f4f4f6; }
#summary thead th:nth-child(-n+2), td.name, #per-track td:first-child, th[scope=rowgroup],
.settings th, .settings td { text-align: left; }
tr.oracle td, th.oracle { color: #1f5fa8; } tr.mixture td, th.mixture { color: #8a5a00; }
tbody + tbody { border-top: 2px solid #999; }
th[scope=colgroup] { text-align: center; }
/* The track names stay in view while a wide per-track table scrolls sideways. */
#per-track tr > :first-child { position: sticky; left: 0; background: #fff; z-index: 2; }
#per-track thead tr > :first-child { background: #f4f4f6; }
td.best { font-weight: 700; }
table.sortable th[data-sort] { cursor: pointer; user-select: none; }
table.sortable th[aria-sort=ascending]::after { content: " \\25B2"; }
table.sortable th[aria-sort=descending]::after { content: " \\25BC"; }
.figure img { max-width: 100%; border: 1px solid #eee; } figcaption { font-size: .85em; color:
#444; }
.track { border-top: 1px solid #ddd; padding-top: .3em; }
.stems { display: grid; gap: .5em .6em; align-items: start; overflow-x: auto; }
.stem { margin: 0; min-width: 0; }
.stem figcaption { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; height: 18px;
  line-height: 18px; }
.stem img { display: block; width: 100%; height: 128px; background: #000; }
.stem audio { width: 100%; height: 2.2em; margin-top: .2em; }
.axis { display: flex; flex-direction: column; justify-content: space-between; height: 128px;
  margin-top: 18px; font-size: .72em; line-height: 1; color: #555; text-align: right;
  border-right: 1px solid #999; padding-right: .3em; white-space: nowrap; }
.missing, .warning { color: #a00; font-size: .85em; }
pre { background: #f6f6f8; padding: .7em; overflow-x: auto; font-size: .85em; }
details.notes pre { white-space: pre-wrap; }
"""

# Sorts a table's body rows by the clicked header's column: numbers by data-value (missing
# scores last in both directions), text otherwise; a second click reverses.
_SCRIPT = """
(function () {
  'use strict';
  function key(cell, numeric) {
    if (!numeric) { return cell.textContent.trim(); }
    var text = cell.getAttribute('data-value');
    return text === null || text === '' ? null : Number(text);
  }
  function sortBy(table, header) {
    var column = Number(header.getAttribute('data-column'));
    var numeric = header.getAttribute('data-sort') === 'number';
    var ascending = header.getAttribute('aria-sort') !== 'ascending';
    table.querySelectorAll('th[aria-sort]').forEach(function (th) {
    th.removeAttribute('aria-sort'); });
    header.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[column], numeric), y = key(b.cells[column], numeric);
      if (x === null || y === null) { return (x === null) - (y === null); }
      var order = x === y ? 0 : (numeric ? (x < y ? -1 : 1) : x.localeCompare(y));
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    table.querySelectorAll('th[data-sort]').forEach(function (header) {
      header.addEventListener('click', function () { sortBy(table, header); });
      header.addEventListener('keydown', function (event) {
        if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); sortBy(table,
        header); }
      });
    });
  });
})();
"""


# --- small helpers -------------------------------------------------------------------------------


def _role(name: str, names: Sequence[str]) -> str:
    if name == ORACLE:
        return "oracle"
    return "model" if name in names else "mixture"


def _summary_metrics(scored: Mapping[str, EvaluationResult]) -> tuple[str, ...]:
    """SUMMARY_METRICS, and the leakage where some result has a leakage score."""
    has_leakage = any(
        row.scores.get("leakage") is not None for result in scored.values() for row in result.rows
    )
    return SUMMARY_METRICS + (("leakage",) if has_leakage else ())


def _best_means(
    scored: Mapping[str, EvaluationResult],
    contenders: Sequence[str],
    source: str,
    metrics: Sequence[str] = SUMMARY_METRICS,
) -> dict[str, str]:
    """{metric: the contender with the best mean} (highest; lowest for the leakage), where two or
    more contenders have a mean and they differ."""
    best = {}
    if len(contenders) < 2:
        return best
    for metric in metrics:
        means = {
            name: scored[name].aggregate[source][metric]["mean"]
            for name in contenders
            if scored[name].aggregate[source][metric]["mean"] is not None
        }
        if len(means) >= 2 and len(set(means.values())) > 1:
            pick = min if metric == "leakage" else max
            best[metric] = pick(means, key=means.get)
    return best


def _track_score(result: EvaluationResult, track: str, source: str, metric: str) -> float | None:
    for row in result.rows:
        if row.track == track and row.source == source:
            return row.scores.get(metric)
    return None


def _data_value(value: float | None) -> str:
    # JavaScript's Number() reads "Infinity", and repr keeps every digit of the JSON value.
    if value is None:
        return ""
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(float(value))


def _format_hz(hz: float) -> str:
    return f"{hz / 1000:.1f} kHz" if hz >= 1000 else f"{hz:.0f} Hz"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:60] or "x"


def _url(relative: str) -> str:
    return html.escape(urllib.parse.quote(relative))


def _existing_dir(path: str) -> Path | None:
    return Path(path) if path and Path(path).is_dir() else None


def _first_existing(paths) -> Path | None:
    for path in paths:
        found = _existing_dir(path)
        if found is not None:
            return found
    return None
