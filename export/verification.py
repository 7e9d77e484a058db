"""What every export checks before it keeps an artifact: a fixed probe, and how outputs compare.

The probe is a mixture of `nb_stems` known synthetic sources (harmonic tones with vibrato and
note changes, one of them with noise bursts), so a quantised model can be judged by how much
SDR it loses against the true sources, not only by its distance to the float model.

SDR here is the plain energy ratio 10 log10(|reference|^2 / |reference - estimate|^2) over the
whole signal (the "new SDR" of the Music Demixing challenges): no BSS Eval projections, so a
small difference reads as a large SDR.
"""

from __future__ import annotations

import numpy as np

from advsep_tf.errors import AdvsepError


def probe(
    sources: list[str], sample_rate: int, seconds: float
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(mixture (n,), {source: (n,)}) float32, the same for the same arguments."""
    rng = np.random.default_rng(20180415)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    stems = {}
    for k, source in enumerate(sources):
        note = np.floor(t * (1.5 + 0.5 * k)).astype(int)  # a new note every 1/(1.5 + k/2) s
        f0 = 110.0 * 2 ** ((k * 7 + 3 * (note % 4)) / 12) * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * t))
        phase = 2 * np.pi * np.cumsum(f0) / sample_rate
        tone = sum(np.sin(h * phase) / h for h in range(1, 6))
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * (0.7 + 0.3 * k) * t + k) ** 2
        stem = 0.15 * envelope * tone
        if k % 2:
            bursts = (np.sin(2 * np.pi * 4 * t) > 0.7).astype(np.float64)
            stem = stem + 0.05 * bursts * rng.standard_normal(n)
        else:
            # A noise floor: no time-frequency bin of the mixture is near zero, where its phase
            # (which every estimate takes) would be decided by float round-off.
            stem = stem + 0.01 * rng.standard_normal(n)
        stems[source] = stem.astype(np.float32)
    mixture = np.sum(list(stems.values()), axis=0).astype(np.float32)
    return mixture, stems


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """10 log10(|reference|^2 / |reference - estimate|^2) in dB (inf when they are equal)."""
    reference, estimate = np.asarray(reference, np.float64), np.asarray(estimate, np.float64)
    error = np.sum((reference - estimate) ** 2)
    if error == 0:
        return float("inf")
    return float(10 * np.log10((np.sum(reference**2) + 1e-20) / error))


def compare(
    python: dict[str, np.ndarray],
    exported: dict[str, np.ndarray],
    truth: dict[str, np.ndarray] | None = None,
) -> dict:
    """Max abs error and SDR of the exported outputs against the Python separator's (worst source);
    with `truth`, also each one's SDR against the true sources and the largest drop."""
    result = {
        "max_abs_error": max(float(np.max(np.abs(python[s] - exported[s]))) for s in python),
        "sdr_vs_python": min(sdr(python[s], exported[s]) for s in python),
    }
    if truth is not None:
        python_sdr = {s: sdr(truth[s], python[s]) for s in python}
        exported_sdr = {s: sdr(truth[s], exported[s]) for s in python}
        result["sdr_python"] = python_sdr
        result["sdr_exported"] = exported_sdr
        result["sdr_drop"] = max(python_sdr[s] - exported_sdr[s] for s in python)
    return result


def judge(
    path: str,
    result: dict,
    max_abs: float | None = None,
    max_sdr_drop: float | None = None,
    min_sdr_vs_python: float | None = None,
) -> None:
    """Raise AdvsepError (naming the artifact and the numbers) when `result` is beyond tolerance."""
    if max_abs is not None and not result["max_abs_error"] <= max_abs:
        raise AdvsepError(
            f"{path}: exported model differs from the Python separator by "
            f"{result['max_abs_error']:.3g} "
            f"(max abs) > {max_abs:g}; nothing was written"
        )
    if max_sdr_drop is not None and not result["sdr_drop"] <= max_sdr_drop:
        raise AdvsepError(
            f"{path}: exported model loses {result['sdr_drop']:.2f} dB SDR against the Python "
            f"separator "
            f"on the probe (tolerance {max_sdr_drop:g} dB); nothing was written"
        )
    # A floor as well: an output far from the Python one (all zeros, say) can score as well against
    # the true sources as a barely trained model does.
    if min_sdr_vs_python is not None and not result["sdr_vs_python"] >= min_sdr_vs_python:
        raise AdvsepError(
            f"{path}: exported model's output is only {result['sdr_vs_python']:.1f} dB SDR from "
            f"the Python "
            f"separator's (at least {min_sdr_vs_python:g} dB expected); nothing was written"
        )


def format_result(result: dict, with_drop: bool = False) -> str:
    """One line: max abs error, SDR vs the Python output, and (with_drop) the SDR drop."""
    sdr_text = (
        "inf" if result["sdr_vs_python"] == float("inf") else f"{result['sdr_vs_python']:.1f}"
    )
    text = f"max abs error {result['max_abs_error']:.2e}, SDR vs Python output {sdr_text} dB"
    if with_drop and "sdr_drop" in result:
        text += f", SDR drop vs true sources {result['sdr_drop']:+.2f} dB"
    return text
