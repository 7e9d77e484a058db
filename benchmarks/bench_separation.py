"""Whole-song separation speed and peak memory, side by side in one run:
`advsep-tf-separate` (file in, stems out, block by block) on stereo 44.1 kHz WAV files of 1, 10
and 60 minutes, and a Spleeter-style 2-stem U-Net at 44.1 kHz (Keras, random weights) on 30 s
in memory, on this machine.

Each measurement runs in its own process: peak RSS is that process's whole peak (ru_maxrss:
TensorFlow, the model and every buffer), x real time counts everything from reading the input
to the stems' last byte. Separation streams, so the peak should not grow with the song.

    python benchmarks/bench_separation.py [--minutes 1 10 60] [--model pretrained] [--work DIR]
"""

import argparse
import os
import shutil
import tempfile
import textwrap
from pathlib import Path

from benchmark_support import print_table, run_in_subprocess

ADVSEP = textwrap.dedent(
    """
    import json, resource, sys, time
    from advsep_tf.cli.separate import main

    song, out, model = sys.argv[1:4]
    start = time.perf_counter()
    main([song, "--model", model, "--out", out, "--no-progress"])
    elapsed = time.perf_counter() - start
    print(json.dumps({"seconds": elapsed, "peak_rss_mb":
    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    """
)


def write_song(path: Path, minutes: float, rate: int = 44100) -> None:
    """A stereo 16-bit WAV of `minutes`, written a minute at a time (the benchmark's own memory
    must not grow with the song either): a melody over noise, one minute repeated."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(60 * rate) / rate
    melody = 0.3 * np.sin(2 * np.pi * 220 * 2 ** (np.floor(t * 2) % 12 / 12) * t)
    minute = np.stack(
        [
            melody + 0.05 * rng.standard_normal(t.size),
            0.8 * melody + 0.05 * rng.standard_normal(t.size),
        ],
        1,
    )
    with sf.SoundFile(path, "w", rate, 2, "PCM_16") as f:
        whole, rest = divmod(int(round(minutes * 60 * rate)), minute.shape[0])
        for _ in range(whole):
            f.write(minute)
        f.write(minute[:rest])


SPLEETER_STYLE = textwrap.dedent(
    """
    import json, resource, sys, time
    import advsep_tf
    import keras, numpy as np, tensorflow as tf
    from keras import layers

    seconds, rate = float(sys.argv[1]), 44100
    n_fft, hop, frames, bins = 4096, 1024, 512, 1024

    def unet(name):
        # Spleeter's 2-stem U-Net shape: 6 strided 5x5 convolutions (16..512 filters) with batch
        # norm and leaky ReLU, 6 transposed ones back with skips, a sigmoid mask.
        x = inputs = keras.Input((frames, bins, 2))
        skips = []
        for filters in (16, 32, 64, 128, 256, 512):
            x = layers.Conv2D(filters, 5, strides=2, padding="same")(x)
            x = layers.LeakyReLU(0.2)(layers.BatchNormalization()(x))
            skips.append(x)
        for i, filters in enumerate((256, 128, 64, 32, 16, 1)):
            x = layers.Conv2DTranspose(filters, 5, strides=2, padding="same", activation="relu")(x
            if i == 0 else layers.Concatenate()([x, skips[5 - i]]))
            x = layers.BatchNormalization()(x)
        mask = layers.Conv2D(2, 4, dilation_rate=2, padding="same", activation="sigmoid")(x)
        return keras.Model(inputs, mask, name=name)

    models = [unet("vocals"), unet("accompaniment")]

    @tf.function
    def separate(waveform):  # (2, n)
        spectrum = tf.signal.stft(waveform, n_fft, hop, pad_end=True)  # (2, T, 2049)
        magnitude = tf.abs(spectrum)[:, :, :bins]
        total = tf.shape(magnitude)[1]
        pad = (frames - total % frames) % frames
        x = tf.pad(magnitude, [[0, 0], [0, pad], [0, 0]])
        x = tf.transpose(tf.reshape(x, [2, -1, frames, bins]), [1, 2, 3, 0])  # (segments, T, F, 2)
        outputs = []
        for model in models:
            mask = tf.transpose(model(x, training=False), [3, 0, 1, 2])
            mask = tf.reshape(mask, [2, -1, bins])[:, :total]
            mask = tf.pad(mask, [[0, 0], [0, 0], [0, n_fft // 2 + 1 - bins]])
            outputs.append(tf.signal.inverse_stft(spectrum * tf.cast(mask, tf.complex64), n_fft,
            hop))
        return outputs

    rng = np.random.default_rng(0)
    separate(tf.constant((0.1 * rng.standard_normal((2, rate * 5))).astype(np.float32)))
    song = tf.constant((0.1 * rng.standard_normal((2, int(seconds * rate)))).astype(np.float32))
    start = time.perf_counter()
    [o.numpy() for o in separate(song)]
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"x_real_time": seconds / elapsed, "seconds": elapsed, "peak_rss_mb": peak}))
    """
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    parser.add_argument("--model", default="pretrained")
    parser.add_argument(
        "--work", default=None, help="folder for the songs and stems (default: a temporary one)"
    )
    args = parser.parse_args(argv)
    print(
        f"machine: {os.cpu_count()} cores; stereo 44.1 kHz 16-bit WAV in, float32 WAV stems out; "
        f"model {args.model}\n"
    )
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_separation_"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for minutes in args.minutes:
            song = work / f"song_{minutes:g}min.wav"
            write_song(song, minutes)
            result = run_in_subprocess(ADVSEP, [song, work / "out", args.model])
            if "error" not in result:
                result["x_real_time"] = minutes * 60 / result["seconds"]
            rows.append((f"advsep-tf-separate, {minutes:g} min", result))
            print(f"  {rows[-1][0]}: {result}", flush=True)
            song.unlink()
            shutil.rmtree(work / "out", ignore_errors=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    result = run_in_subprocess(SPLEETER_STYLE, [30])
    rows.append(("Spleeter-style 2-stem U-Net (44.1 kHz, Keras, in memory), 30 s", result))
    print(f"  {rows[-1][0]}: {result}", flush=True)
    print()
    print_table(
        ("what", "x real time", "seconds", "peak RSS (MB)"),
        rows,
        lambda result: [
            f"{result['x_real_time']:.1f}",
            f"{result['seconds']:.1f}",
            f"{result['peak_rss_mb']:.0f}",
        ],
    )
    peaks = {
        minutes: r["peak_rss_mb"]
        for minutes, (_, r) in zip(args.minutes, rows)
        if "peak_rss_mb" in r
    }
    if 1 in peaks:
        print(
            "\npeak RSS relative to 1 minute: "
            + ", ".join(f"{m:g} min {p / peaks[1]:.2f}x" for m, p in peaks.items())
        )


if __name__ == "__main__":
    main()
