"""Choosing the `real` preset by measurement: training steps/s of candidate configurations on this
machine, side by side in one run (each in its own process, on the same random batches).

    python benchmarks/bench_real_preset.py [--steps 15]

Quality is not measured here (that takes a training run each): benchmarks/real/README.md gives
the trained models' scores. This tells which configurations fit a 60-minute CPU budget.
"""

import argparse
import json
import os

from bench_training import VARIANT
from benchmark_support import run_in_subprocess

SUPERVISED = {"mode": "supervised", "precision": "float32"}
# Each candidate: (description, preset, overrides); the training mode and precision are passed
# apart.
CANDIDATES = [
    (
        "real: paper U-Net (16 filters, depth 4), n_fft 512, batch 32, float32",
        "real",
        {"training": SUPERVISED},
    ),
    ("real in mixed_bfloat16", "real", {"training": {**SUPERVISED, "precision": "mixed_bfloat16"}}),
    ("real, batch 64", "real", {"training": {**SUPERVISED, "batch_size": 64}}),
    ("real, 24 filters", "real", {"training": SUPERVISED, "separator": {"base_filters": 24}}),
    (
        "demo-size U-Net (8 filters, depth 3, n_fft 256), batch 16, bf16",
        "demo",
        {"training": {**SUPERVISED, "precision": "mixed_bfloat16"}},
    ),
    (
        "real, adversarial VA, n_critic 5",
        "real",
        {"training": {"mode": "adversarial", "precision": "float32"}},
    ),
    (
        "demo-size, adversarial VA, n_critic 5, bf16",
        "demo",
        {"training": {"mode": "adversarial", "precision": "mixed_bfloat16"}},
    ),
    (
        "demo-size, adversarial VA, n_critic 5, float32",
        "demo",
        {"training": {"mode": "adversarial"}},
    ),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15)
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} cores; {args.steps} timed steps per variant\n")
    print("| configuration | separator parameters | steps/s | s of audio per s | steps in 60 min |")
    print("|---|---|---|---|---|")
    for name, preset, overrides in CANDIDATES:
        training = overrides.get("training", {})
        jit = "1" if training.get("jit_compile") else "0"
        result = run_in_subprocess(
            VARIANT,
            [
                preset,
                args.steps,
                training.get("mode", "supervised"),
                jit,
                training.get("precision", "float32"),
                json.dumps(overrides),
            ],
        )
        if "error" in result:
            print(f"| {name} | failed: {result['error']} | | | |", flush=True)
            continue
        print(
            f"| {name} | {result['parameters']:,} | {result['steps_per_s']:.2f} | "
            f"{result['audio_s_per_s']:.0f} | "
            f"{result['steps_per_s'] * 3600:,.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
