"""Adversarial step time with the critic's leaky ReLU as Keras's LeakyReLU (which makes
TensorFlow's grappler remapper fail and print "remapper failed: ... LeakyReluGrad") and as
max(x, 0.2 x) (`advsep_tf.networks.CriticLeakyReLU`), side by side in one run.

Every variant trains the same model (the `demo` preset, adversarial) on the same shard set (the
synthetic corpus, prepared once), in its own process (grappler settings and its log lines are
per process): a few warm-up steps (tracing, grappler), then `--steps` timed steps, in
`--rounds` rounds with the variants interleaved; the best round is reported, with the number of
"remapper failed" lines that process printed. The remapper-off variants show what the remapper
is worth (tf.config.optimizer.set_experimental_options({"remapping": False}) is process-wide).

    python benchmarks/bench_critic_activation.py [--steps 30] [--rounds 3] [--out
    /tmp/bench_critic_activation]
"""

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from benchmark_support import synthetic_shards

VARIANT = textwrap.dedent(
    """
    import json, sys, time
    import advsep_tf
    import keras, tensorflow as tf
    from advsep_tf import networks
    from advsep_tf.config import load_config
    from advsep_tf.data_pipelines.readers import training_dataset
    from advsep_tf.data_pipelines.shards import ShardSet
    from advsep_tf.model import AdversarialSeparator

    shards, steps, activation, remapping = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    == "on"
    if activation == "keras":
        networks.CriticLeakyReLU = keras.layers.LeakyReLU  # the critic as it was built before
    if not remapping:
        tf.config.optimizer.set_experimental_options({"remapping": False})
    config = load_config("demo")
    keras.utils.set_random_seed(config.training.seed)
    model = AdversarialSeparator(config)
    model.compile()
    data = training_dataset(ShardSet.open(shards, expected=config), config)
    model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)  # trace, optimise, warm up
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    elapsed = time.perf_counter() - start
    print(json.dumps({"seconds_per_step": elapsed / steps}))
    """
)

VARIANTS = [
    ("keras LeakyReLU (before)", "keras", "on"),
    ("max(x, 0.2 x) (after)", "maximum", "on"),
    ("keras LeakyReLU, remapper off", "keras", "off"),
    ("max(x, 0.2 x), remapper off", "maximum", "off"),
]


def demo_shards(out: Path) -> Path:
    import advsep_tf  # noqa: F401 - before TensorFlow
    from advsep_tf.config import load_config

    return synthetic_shards(
        load_config("demo"), out / "corpus", out / "shards", nb_train=4, nb_valid=1, nb_unpaired=4
    )


def run_variant(shards: Path, steps: int, activation: str, remapping: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", VARIANT, str(shards), str(steps), activation, remapping],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"},
    )
    if result.returncode != 0:
        return {
            "error": (result.stderr.strip().splitlines() or ["failed without output"])[-1][:200]
        }
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    measured["remapper_errors"] = sum(
        "remapper failed" in line for line in result.stderr.splitlines()
    )
    return measured


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="/tmp/bench_critic_activation")
    args = parser.parse_args(argv)

    shards = demo_shards(Path(args.out))
    print(
        f"machine: {os.cpu_count()} cores; preset demo, adversarial; {args.steps} timed steps, "
        f"{args.rounds} rounds (best shown)\n",
        flush=True,
    )
    results = {name: [] for name, _, _ in VARIANTS}
    for round_ in range(args.rounds):
        for name, activation, remapping in VARIANTS:
            result = run_variant(shards, args.steps, activation, remapping)
            results[name].append(result)
            print(f"  round {round_ + 1}, {name}: {result}", flush=True)
    reference = None
    print(
        "\n| critic activation | s/step (best) | all rounds | vs before | 'remapper failed' lines |"
    )
    print("|---|---|---|---|---|")
    for name, _, _ in VARIANTS:
        good = [r for r in results[name] if "error" not in r]
        if not good:
            print(f"| {name} | failed: {results[name][-1]['error']} | | | |")
            continue
        best = min(r["seconds_per_step"] for r in good)
        reference = reference or best
        rounds = ", ".join(f"{r['seconds_per_step']:.3f}" for r in good)
        print(
            f"| {name} | {best:.3f} | {rounds} | {reference / best:.2f}x | "
            f"{good[-1]['remapper_errors']} |"
        )


if __name__ == "__main__":
    main()
