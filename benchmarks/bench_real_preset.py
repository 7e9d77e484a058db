"""Choosing the `real` preset by measurement: training steps/s of candidate configurations on this
machine, side by side in one run (each in its own process, on the same random batches).

    python benchmarks/bench_real_preset.py [--steps 15]

Quality is not measured here (that takes a training run each): benchmarks/real/README.md gives
the trained models' scores. This tells which configurations fit a 60-minute CPU budget.
"""

import argparse
import json
import os
import textwrap

from benchmark_support import run_in_subprocess

VARIANT = textwrap.dedent(
    """
    import json, sys, time
    import advsep_tf
    import keras, numpy as np, tensorflow as tf
    from advsep_tf.config import load_config
    from advsep_tf.model import AdversarialSeparator

    preset, steps, overrides = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    config = load_config(preset).replace(**overrides)
    keras.config.set_dtype_policy(config.training.precision)
    model = AdversarialSeparator(config)
    model.compile()
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
    model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # trace
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    elapsed = time.perf_counter() - start
    seconds_of_audio = b * spec.nb_frames * spec.n_hop / config.audio.sample_rate
    print(json.dumps({"steps_per_s": steps / elapsed, "audio_s_per_s": steps * seconds_of_audio / elapsed,
                      "parameters": int(model.separator.count_params())}))
    """
)

SUPERVISED = {"mode": "supervised", "precision": "float32"}
CANDIDATES = [
    ("real: paper U-Net (16 filters, depth 4), n_fft 512, batch 32, float32", "real", {"training": SUPERVISED}),
    ("real in mixed_bfloat16", "real", {"training": {**SUPERVISED, "precision": "mixed_bfloat16"}}),
    ("real, batch 64", "real", {"training": {**SUPERVISED, "batch_size": 64}}),
    ("real, 24 filters", "real", {"training": SUPERVISED, "separator": {"base_filters": 24}}),
    ("demo-size U-Net (8 filters, depth 3, n_fft 256), batch 16, bf16", "demo",
     {"training": {**SUPERVISED, "precision": "mixed_bfloat16"}}),
    ("real, adversarial VA, n_critic 5", "real", {"training": {"mode": "adversarial", "precision": "float32"}}),
    ("demo-size, adversarial VA, n_critic 5, bf16", "demo",
     {"training": {"mode": "adversarial", "precision": "mixed_bfloat16"}}),
    ("demo-size, adversarial VA, n_critic 5, float32", "demo", {"training": {"mode": "adversarial"}}),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15)
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} cores; {args.steps} timed steps per variant\n")
    print("| configuration | separator parameters | steps/s | s of audio per s | steps in 60 min |")
    print("|---|---|---|---|---|")
    for name, preset, overrides in CANDIDATES:
        result = run_in_subprocess(VARIANT, [preset, args.steps, json.dumps(overrides)])
        if "error" in result:
            print(f"| {name} | failed: {result['error']} | | | |", flush=True)
            continue
        print(f"| {name} | {result['parameters']:,} | {result['steps_per_s']:.2f} | {result['audio_s_per_s']:.0f} | "
              f"{result['steps_per_s'] * 3600:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
