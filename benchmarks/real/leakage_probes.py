"""Can separation settings, rather than a better model, bring the shipped model's vocal leakage in
vocal pauses to -25 dB? Post-filters on its vocals, scored on tracks outside the test split.

    python benchmarks/real/leakage_probes.py [--model pretrained] [--high-band-model RUN]
        [--real ../shared/real] [--split benchmarks/real/split_pretrained.yaml]

The probes, each applied to the vocals estimate (the accompaniment is the mixture minus it, so
the stems still add up to the mixture):
- `gate T`: advsep-tf-separate's `--silence-gate T` (`advsep_tf.filtering.gate_masks`): a
  source whose share of the mixture's energy over 0.25 s is below T dB is silenced (gain 1 at T,
  0 at T - 6 dB, linear in dB between) and its share handed to the others.
- `sharpen a-b`: each STFT bin's vocal mask |V| / |X| scaled by a ramp from 0 at a to 1 at b, so
  that the small masks of leakage vanish and the large ones of singing stay.
- `band split F`: the vocals below F Hz from `--model`, above it from `--high-band-model` (a
  16 kHz model, which sees to 8 kHz where the shipped model extends its 4 kHz masks).
- `power-2 remask`: the vocals and the rest remasked with Wiener gains |V|^2 / (|V|^2 + |X - V|^2)
  (for mono input, one iteration of multichannel Wiener EM, as norbert's, reduces to this).
- `ideal mask above 4 kHz`: a bound, not a setting: the vocals above 4 kHz by the ideal ratio
  mask of the true stems, what the best reconstruction above the shipped model's band could give.

Scores: SDR (museval, median over 1 s frames, mean over tracks) on the split's validation singer
(MIR-1K, 16 kHz) and validation previews (stereo as released, 44.1 kHz); the leakage figure
(`advsep_tf.evaluate.leakage_db`) on MIR-1K clips with a vocal pause of the training singers,
since no validation track has such a pause. The models heard those clips in training, so their
leakage there is lower than on unseen singers: read that column as a comparison between
settings, not as the model's leakage.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from vocal_pause import mixture_and_vocals  # noqa: E402

N_FFT, HOP = 2048, 512
LEAKAGE_CLIPS = 60


def stft(audio: np.ndarray) -> np.ndarray:
    import librosa

    return librosa.stft(audio.T, n_fft=N_FFT, hop_length=HOP)  # (channels, bins, frames)


def istft(spectrum: np.ndarray, like: np.ndarray) -> np.ndarray:
    import librosa

    audio = librosa.istft(spectrum, n_fft=N_FFT, hop_length=HOP, length=len(like))
    return audio.T.reshape(like.shape)


def sharpen(mixture, vocals, rate, low, high):
    spectrum = stft(vocals)
    mask = np.abs(spectrum).sum(0) / (np.abs(stft(mixture)).sum(0) + 1e-9)
    return istft(spectrum * np.clip((mask - low) / (high - low), 0.0, 1.0), vocals)


def power2_remask(mixture, vocals):
    spectrum, rest = stft(vocals), stft(mixture - vocals)
    gain = np.abs(spectrum) ** 2 / (np.abs(spectrum) ** 2 + np.abs(rest) ** 2 + 1e-18)
    return istft(stft(mixture) * gain, vocals)


def bins_above(rate, crossover) -> np.ndarray:
    """(bins, 1): True for the STFT bins at or above `crossover` Hz."""
    import librosa

    return (librosa.fft_frequencies(sr=rate, n_fft=N_FFT) >= crossover)[:, None]


def ideal_above(mixture, vocals, reference, rate, crossover=4000):
    above = bins_above(rate, crossover)
    true, rest = np.abs(stft(reference)), np.abs(stft(mixture - reference))
    ideal = stft(mixture) * true / (true + rest + 1e-9)
    return istft(np.where(above, ideal, stft(vocals)), vocals)


def band_split(low_band, high_band, rate, crossover):
    return istft(np.where(bins_above(rate, crossover), stft(high_band), stft(low_band)), low_band)


def validation_tracks(split_file: str, real: str) -> dict[str, tuple]:
    """{name: (mixture, vocals, rate)} of the split's validation singers' clips and previews."""
    from vocal_pause import test_tracks

    tracks = {}
    for name, path in test_tracks(split_file, real, role="valid").items():
        tracks[name] = mixture_and_vocals(path)
    return tracks


def pause_clips(split_file: str, real: str) -> list[tuple]:
    """Up to LEAKAGE_CLIPS MIR-1K clips of the training singers that have a vocal pause."""
    from advsep_tf.evaluate import silent_windows
    from advsep_tf.files import load_json_or_yaml

    singers = {
        e.removeprefix("mir1k:singer=")
        for e in load_json_or_yaml(split_file, "split spec")["train"]
        if e.startswith("mir1k:singer=")
    }
    folder = os.path.join(real, "mir1k", "Wavfile")
    clips = []
    for clip in sorted(os.listdir(folder)):
        if clip.split("_")[0] in singers:
            mixture, vocals, rate = mixture_and_vocals(os.path.join(folder, clip))
            if silent_windows(vocals, rate).any():
                clips.append((mixture, vocals, rate))
    return clips[:: max(1, len(clips) // LEAKAGE_CLIPS)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="pretrained")
    parser.add_argument("--high-band-model", help="a 16 kHz run for the band-split probes")
    parser.add_argument("--real", default=os.path.join(ROOT, "..", "shared", "real"))
    parser.add_argument("--split", default=os.path.join(HERE, "split_pretrained.yaml"))
    args = parser.parse_args(argv)

    from advsep_tf import Separator
    from advsep_tf.evaluate import _bss_eval, leakage_db

    model = Separator.load(args.model, silence_gate_db=None)
    high = Separator.load(args.high_band_model) if args.high_band_model else None
    gated = {t: Separator.load(args.model, silence_gate_db=t) for t in (-25, -20, -15)}
    # Each probe: (mixture, vocals estimate, rate, high-band model's vocals, true vocals) -> vocals.
    probes = {"none": lambda m, v, r, h, t: v}
    for threshold, separator in gated.items():
        probes[f"gate {threshold} dB"] = lambda m, v, r, h, t, s=separator: s.separate(m, r)[
            "vocals"
        ].reshape(m.shape)
    for low, top in ((0.1, 0.3), (0.15, 0.5)):
        probes[f"sharpen {low:g}-{top:g}"] = lambda m, v, r, h, t, a=low, b=top: sharpen(
            m, v, r, a, b
        )
    probes["power-2 remask"] = lambda m, v, r, h, t: power2_remask(m, v)
    probes["ideal mask above 4 kHz (a bound)"] = lambda m, v, r, h, t: ideal_above(m, v, t, r)
    if high is not None:
        for crossover in (2000, 4000):
            probes[f"band split {crossover} Hz"] = lambda m, v, r, h, t, c=crossover: band_split(
                v, h, r, c
            )

    def vocals(mixture, rate):
        low = model.separate(mixture, rate)["vocals"].reshape(mixture.shape)
        top = None if high is None else high.separate(mixture, rate)["vocals"]
        return low, None if top is None else top.reshape(mixture.shape)

    sdr = {name: {"singer": [], "previews": []} for name in probes}
    start = time.time()
    tracks = validation_tracks(args.split, args.real)
    for done, (name, (mixture, reference, rate)) in enumerate(tracks.items(), 1):
        group = "previews" if rate == 44100 else "singer"
        estimate, high_band = vocals(mixture, rate)
        for probe, apply in probes.items():
            v = apply(mixture, estimate, rate, high_band, reference)
            scores = _bss_eval([reference, mixture - reference], [v, mixture - v], rate, 1, 1, name)
            sdr[probe][group].append((scores[0]["SDR"], scores[1]["SDR"]))
        print(f"validation {done}/{len(tracks)} ({time.time() - start:.0f} s)", flush=True)
    leakage = {name: [] for name in probes}
    clips = pause_clips(args.split, args.real)
    for done, (mixture, reference, rate) in enumerate(clips, 1):
        estimate, high_band = vocals(mixture, rate)
        for probe, apply in probes.items():
            leakage[probe].append(
                leakage_db(
                    apply(mixture, estimate, rate, high_band, reference), reference, mixture, rate
                )
            )
        if done % 20 == 0 or done == len(clips):
            print(f"pauses {done}/{len(clips)} ({time.time() - start:.0f} s)", flush=True)

    def mean(pairs, k):
        return np.mean([p[k] for p in pairs if p[k] is not None])

    print(
        f"\n| setting | validation singer SDR vocals / acc. | validation previews SDR vocals / "
        f"acc. | leakage in pauses, {len(clips)} training-singer clips (mean dB) |\n"
        "|---|---|---|---|"
    )
    for probe in probes:
        s, p = sdr[probe]["singer"], sdr[probe]["previews"]
        scored = [x for x in leakage[probe] if x is not None]
        print(
            f"| {probe} | {mean(s, 0):.2f} / {mean(s, 1):.2f} | {mean(p, 0):.2f} / "
            f"{mean(p, 1):.2f} | {np.mean(scored):.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
