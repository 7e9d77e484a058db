"""The model card's picture of a vocal pause: what a separator leaves in the vocals where the
singer is silent, on the test track (a preview or a test singer's MIR-1K clip) with the longest
vocal pause, and the mean vocal leakage in vocal pauses over all test tracks that have one.

    python benchmarks/real/vocal_pause.py [--model pretrained] [--real ../shared/real]
        [--split benchmarks/real/split_pretrained.yaml] [--track NAME]
        [--silence-gate DB|off] [--out docs/images/vocal_pause.png]

The pause is found by the rule of the evaluation's leakage figure (`advsep_tf.evaluate.leakage_db`):
windows of 0.25 s where the true vocals are 40 dB or more below their loudest window. The figure
shows the mixture, the true vocals and the estimated vocals (previews stereo as released at
44.1 kHz, MIR-1K clips mono at 16 kHz; channels averaged for display) with those windows
shaded, and the track's leakage in its title.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def test_tracks(split_file: str, real: str, role: str = "test") -> dict[str, str]:
    """{track name: file} of the split's test (or other `role`'s) previews and singers' MIR-1K
    clips."""
    from advsep_tf.files import load_json_or_yaml

    tracks = {}
    for entry in load_json_or_yaml(split_file, "split spec")[role]:
        kind, _, name = entry.partition(":")
        if kind == "musdb18":
            tracks[name] = os.path.join(real, "musdb18_7", "train", f"{name}.stem.mp4")
        elif kind == "mir1k" and name.startswith("singer="):
            folder = os.path.join(real, "mir1k", "Wavfile")
            singer = name.removeprefix("singer=")
            for clip in sorted(os.listdir(folder)):
                if clip.startswith(f"{singer}_"):
                    tracks[os.path.splitext(clip)[0]] = os.path.join(folder, clip)
    return tracks


def mixture_and_vocals(path: str) -> tuple[np.ndarray, np.ndarray, int]:
    """A MUSDB18 preview's mixture and vocals streams as released (stereo, 44.1 kHz), or a MIR-1K
    clip's sum of channels and its right (vocal) channel (mono, 16 kHz)."""
    from advsep_tf.data_pipelines.audio import AudioAdapter

    adapter = AudioAdapter.default()
    if path.endswith(".stem.mp4"):
        (mixture, rate), (vocals, _) = (adapter.load(path, stream=s) for s in (0, 4))
        return mixture, vocals, rate
    clip, rate = adapter.load(path)
    return clip.sum(axis=1, keepdims=True), clip[:, 1:2], rate


def spectrogram_db(audio: np.ndarray, rate: int) -> np.ndarray:
    import librosa

    magnitude = np.abs(librosa.stft(audio.mean(axis=1), n_fft=2048, hop_length=512))
    return librosa.amplitude_to_db(magnitude, ref=1.0, top_db=None)


def main(argv=None) -> int:
    from advsep_tf.cli.options import DEFAULT_SILENCE_GATE_DB, decibels_or_off

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="pretrained", help="a run, .keras or 'pretrained'")
    parser.add_argument("--real", default=os.path.join(ROOT, "..", "shared", "real"))
    parser.add_argument("--split", default=os.path.join(HERE, "split_pretrained.yaml"))
    parser.add_argument("--track", help="a test track (default: the longest vocal pause)")
    parser.add_argument(
        "--silence-gate",
        type=decibels_or_off(-100, 0),
        default=DEFAULT_SILENCE_GATE_DB,
        help="the separator's silence gate in dB or 'off' (default: advsep-tf-separate's)",
    )
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "images", "vocal_pause.png"))
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from advsep_tf import Separator
    from advsep_tf.evaluate import LEAKAGE_WINDOW_SECONDS, leakage_db, silent_windows
    from advsep_tf.files import write_figure

    separator = Separator.load(args.model, silence_gate_db=args.silence_gate)
    tracks = test_tracks(args.split, args.real)
    if args.track:
        tracks = {args.track: tracks[args.track]}
    leakages, pauses, start = {}, {}, time.time()
    for done, (name, path) in enumerate(tracks.items(), 1):
        mixture, vocals, rate = mixture_and_vocals(path)
        pauses[name] = int(silent_windows(vocals, rate).sum())
        if pauses[name]:
            estimate = separator.separate(mixture, rate)["vocals"]
            leakages[name] = leakage_db(estimate, vocals, mixture, rate)
        if done % 20 == 0 or done == len(tracks):
            rate_per_s = done / (time.time() - start)
            print(
                f"{done}/{len(tracks)} tracks ({rate_per_s:.1f}/s, "
                f"ETA {(len(tracks) - done) / rate_per_s:.0f} s)",
                flush=True,
            )
    scored = [v for v in leakages.values() if v is not None]
    print(
        f"vocal leakage in vocal pauses: mean {np.mean(scored):.1f} dB, median "
        f"{np.median(scored):.1f} dB over the {len(scored)} of {len(tracks)} test tracks that "
        f"have a pause (worst {max(scored):.1f} dB, best {min(scored):.1f} dB)"
    )
    track = max(pauses, key=pauses.get)
    mixture, vocals, rate = mixture_and_vocals(tracks[track])
    estimate = separator.separate(mixture, rate)["vocals"]
    leakage = leakages[track]
    silent = silent_windows(vocals, rate)
    print(
        f"figure: {track}, {silent.sum()} of {len(silent)} windows of 0.25 s are a vocal pause; "
        f"vocal leakage there {leakage:.1f} dB"
    )

    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    extent = [0, len(mixture) / rate, 0, rate / 2000]
    for ax, (title, signal) in zip(
        axes, [("mixture", mixture), ("true vocals", vocals), ("estimated vocals", estimate)]
    ):
        image = ax.imshow(
            spectrogram_db(signal, rate),
            origin="lower",
            aspect="auto",
            extent=extent,
            vmin=-80,
            vmax=20,
            cmap="magma",
        )
        for k in np.flatnonzero(silent):
            ax.axvspan(
                k * LEAKAGE_WINDOW_SECONDS,
                (k + 1) * LEAKAGE_WINDOW_SECONDS,
                color="cyan",
                alpha=0.12,
                lw=0,
            )
        fig.colorbar(image, ax=ax, label="dB", pad=0.01)
        ax.set_ylabel("kHz")
        ax.set_title(title, fontsize=9)
    axes[-1].set_xlabel("seconds (shaded: vocals 40 dB or more below their loudest 0.25 s)")
    fig.suptitle(f"{track}: vocal leakage in the pause {leakage:.1f} dB (model: {args.model})")
    write_figure(fig, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
