"""Whole-song separation speed and peak memory, side by side in one run:
advsep-tf (paper preset, random weights) on songs of 1, 10 and 60 minutes, and a Spleeter-style
2-stem U-Net at 44.1 kHz (Keras, random weights) on the same 30 s, on this machine.

Each measurement runs in its own process; peak memory is the growth of ru_maxrss over the
process's state just before separating (the model loaded and warmed up).

    python benchmarks/bench_separation.py [--minutes 1 10 60] [--preset paper]
"""

import argparse
import os
import textwrap

from benchmark_support import run_in_subprocess

ADVSEP = textwrap.dedent(
    """
    import json, resource, sys, time
    import advsep_tf
    import numpy as np
    from advsep_tf.config import load_config
    from advsep_tf.model import AdversarialSeparator
    from advsep_tf.separate import Separator

    preset, seconds, rate = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    config = load_config(preset).replace(training={"mode": "supervised"})
    model = AdversarialSeparator(config)
    separator = Separator(lambda p: model.separator(p, training=False), config)
    rng = np.random.default_rng(0)
    separator.separate((0.1 * rng.standard_normal((rate * 5, 2))).astype(np.float32), rate)  # warm up
    song = (0.1 * rng.standard_normal((int(seconds * rate), 2))).astype(np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    stems = separator.separate(song, rate)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"x_real_time": seconds / elapsed, "seconds": elapsed, "peak_growth_mb": peak - before,
                      "song_mb": song.nbytes / 2**20}))
    """
)

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
            x = layers.Conv2DTranspose(filters, 5, strides=2, padding="same", activation="relu")(x if i == 0 else layers.Concatenate()([x, skips[5 - i]]))
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
            outputs.append(tf.signal.inverse_stft(spectrum * tf.cast(mask, tf.complex64), n_fft, hop))
        return outputs

    rng = np.random.default_rng(0)
    separate(tf.constant((0.1 * rng.standard_normal((2, rate * 5))).astype(np.float32)))
    song = tf.constant((0.1 * rng.standard_normal((2, int(seconds * rate)))).astype(np.float32))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    [o.numpy() for o in separate(song)]
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"x_real_time": seconds / elapsed, "seconds": elapsed, "peak_growth_mb": peak - before}))
    """
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    parser.add_argument("--preset", default="paper")
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} cores; stereo 44.1 kHz input; random weights\n")
    rows = []
    for minutes in args.minutes:
        result = run_in_subprocess(ADVSEP, [args.preset, minutes * 60, 44100])
        rows.append((f"advsep-tf {args.preset}, {minutes:g} min", result))
        print(f"  {rows[-1][0]}: {result}", flush=True)
    result = run_in_subprocess(ADVSEP, [args.preset, 30, 44100])
    rows.append((f"advsep-tf {args.preset}, 30 s", result))
    print(f"  {rows[-1][0]}: {result}", flush=True)
    result = run_in_subprocess(SPLEETER_STYLE, [30])
    rows.append(("Spleeter-style 2-stem U-Net (44.1 kHz, Keras), 30 s", result))
    print(f"  {rows[-1][0]}: {result}", flush=True)
    print("\n| what | x real time | seconds | peak memory growth (MB) | song as float32 (MB) |")
    print("|---|---|---|---|---|")
    for name, result in rows:
        if "error" in result:
            print(f"| {name} | failed: {result['error']} | | | |")
            continue
        print(f"| {name} | {result['x_real_time']:.1f} | {result['seconds']:.1f} | {result['peak_growth_mb']:.0f} | "
              f"{result.get('song_mb', float('nan')):.0f} |")


if __name__ == "__main__":
    main()
