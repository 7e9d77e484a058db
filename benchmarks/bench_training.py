"""Training speed, side by side in one run: oneDNN, XLA and mixed precision, and how close the
separator's forward pass comes to this machine's matmul ceiling.

Each variant runs in its own process (oneDNN and XLA are process-wide), on the same random
batches, and reports steps/s after warm-up. The separator's FLOPs are counted from its layers.

    python benchmarks/bench_training.py [--preset demo] [--steps 20] [--forward-preset paper]
    [--forward-batch 64]
"""

import argparse
import os
import textwrap

from benchmark_support import print_table, run_in_subprocess

VARIANT = textwrap.dedent(
    """
    import json, sys, time
    import advsep_tf
    import keras, numpy as np, tensorflow as tf
    from advsep_tf.config import load_config
    from advsep_tf.model import AdversarialSeparator

    preset, steps, mode, jit, precision = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    == "1", sys.argv[5]
    overrides = json.loads(sys.argv[6]) if len(sys.argv) > 6 else {}
    config = load_config(preset).replace(**overrides)
    config = config.replace(training={"mode": mode, "jit_compile": jit, "precision": precision})
    keras.config.set_dtype_policy(precision)
    model = AdversarialSeparator(config)
    model.compile(jit_compile=jit)
    spec, b, n = config.spectrogram, config.training.batch_size, config.loss.n_critic
    rng = np.random.default_rng(0)
    shape = (spec.nb_bins, spec.nb_frames)
    batch = {"paired_mixture": rng.random((b, *shape, 1), np.float32),
             "paired_sources": rng.random((b, *shape, config.nb_stems), np.float32)}
    if config.critic_sources:
        batch["unpaired_mixtures"] = rng.random((b, n + 1, *shape, 1), np.float32)
        for s in config.critic_sources:
            batch["solo_" + s] = rng.random((b, n, *shape, 1), np.float32)
    data = tf.data.Dataset.from_tensors(batch).repeat()
    model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # trace / compile
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    elapsed = time.perf_counter() - start
    seconds_of_audio = b * spec.nb_frames * spec.n_hop / config.audio.sample_rate
    print(json.dumps({"steps_per_s": steps / elapsed, "seconds_per_step": elapsed / steps,
                      "audio_s_per_s": steps * seconds_of_audio / elapsed,
                      "parameters": int(model.separator.count_params())}))
    """
)

FORWARD = textwrap.dedent(
    """
    import json, sys, time
    import advsep_tf
    import keras, numpy as np, tensorflow as tf
    from advsep_tf.config import load_config
    from advsep_tf.networks import build_separator

    preset, batch = sys.argv[1], int(sys.argv[2])
    config = load_config(preset)
    separator = build_separator(config)

    def conv_flops(layer):
        # 2 * multiply-adds of each output element; for a transposed convolution, of each input one.
        kh, kw = layer.kernel_size
        cin, cout = layer.kernel.shape[2], layer.kernel.shape[3]
        if isinstance(layer, keras.layers.Conv2DTranspose):
            h, w = layer.input.shape[1:3]
            return 2 * kh * kw * cin * cout * h * w
        h, w = layer.output.shape[1:3]
        return 2 * kh * kw * cin * cout * h * w

    flops = sum(conv_flops(l) for l in separator.layers if isinstance(l, keras.layers.Conv2D))
    x = tf.random.uniform((batch, config.spectrogram.nb_bins, config.spectrogram.nb_frames, 1))
    forward = tf.function(lambda x: separator(x, training=False))
    forward(x)
    runs = 5
    start = time.perf_counter()
    for _ in range(runs):
        forward(x).numpy()
    elapsed = (time.perf_counter() - start) / runs

    a = tf.random.uniform((2048, 2048)); b = tf.random.uniform((2048, 2048))
    matmul = tf.function(lambda a, b: tf.linalg.matmul(a, b))
    matmul(a, b)
    start = time.perf_counter()
    for _ in range(10):
        matmul(a, b).numpy()
    matmul_seconds = (time.perf_counter() - start) / 10
    spec = config.spectrogram
    audio_seconds = batch * spec.nb_frames * spec.n_hop / config.audio.sample_rate
    print(json.dumps({
        "gflop_per_patch": flops / 1e9, "forward_gflops": flops * batch / elapsed / 1e9,
        "matmul_gflops": 2 * 2048**3 / matmul_seconds / 1e9, "x_real_time": audio_seconds / elapsed,
    }))
    """
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--forward-batch", type=int, default=64)
    parser.add_argument(
        "--forward-preset", default="paper", help="preset whose separator forward pass is timed"
    )
    args = parser.parse_args(argv)

    print(
        f"machine: {os.cpu_count()} cores; preset {args.preset}; {args.steps} timed steps per "
        f"variant\n"
    )
    variants = [
        ("adversarial", "float32, oneDNN on (default)", {}, "0", "float32"),
        ("adversarial", "float32, oneDNN off", {"TF_ENABLE_ONEDNN_OPTS": "0"}, "0", "float32"),
        ("adversarial", "float32, XLA", {}, "1", "float32"),
        ("adversarial", "mixed_bfloat16", {}, "0", "mixed_bfloat16"),
        ("adversarial", "mixed_float16", {}, "0", "mixed_float16"),
        ("supervised", "supervised baseline, float32", {}, "0", "float32"),
    ]
    rows = []
    for mode, name, env, jit, precision in variants:
        result = run_in_subprocess(VARIANT, [args.preset, args.steps, mode, jit, precision], env)
        rows.append((name, result))
        print(f"  {name}: {result}", flush=True)
    reference = rows[0][1].get("steps_per_s")

    def speed_cells(result):
        ratio = result["steps_per_s"] / reference if reference else float("nan")
        return [
            f"{result['steps_per_s']:.3f}",
            f"{result['seconds_per_step']:.3f}",
            f"{ratio:.2f}x",
        ]

    print()
    print_table(("variant", "steps/s", "s/step", "vs default"), rows, speed_cells)

    forward = run_in_subprocess(FORWARD, [args.forward_preset, args.forward_batch])
    forward_off = run_in_subprocess(
        FORWARD, [args.forward_preset, args.forward_batch], {"TF_ENABLE_ONEDNN_OPTS": "0"}
    )
    print(
        f"\nSeparator forward pass, preset {args.forward_preset}, batch {args.forward_batch} "
        f"({forward.get('gflop_per_patch', 0):.3f} GFLOP/patch):"
    )
    print_table(
        (
            "oneDNN",
            "forward GFLOP/s",
            "matmul GFLOP/s (ceiling)",
            "fraction of ceiling",
            "x real time",
        ),
        [("on", forward), ("off", forward_off)],
        lambda result: [
            f"{result['forward_gflops']:.1f}",
            f"{result['matmul_gflops']:.1f}",
            f"{result['forward_gflops'] / result['matmul_gflops']:.0%}",
            f"{result['x_real_time']:.0f}x",
        ],
    )


if __name__ == "__main__":
    main()
