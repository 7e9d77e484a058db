"""What several benchmarks share: a small model trained on the synthetic corpus, and running a
measurement in a fresh process (so that process-wide settings and peak memory are its own)."""

import json
import os
import subprocess
import sys
from pathlib import Path


def trained_supervised_run(config, out: Path, steps: int, name: str) -> Path:
    """A run directory of `config` trained supervised for `steps` on a synthetic corpus (cached in
    `out`)."""
    from advsep_tf.data_pipelines import synthetic
    from advsep_tf.data_pipelines.prepare import prepare
    from advsep_tf.train import train

    config = config.replace(training={"mode": "supervised"})
    rate = config.audio.sample_rate
    corpus, shards, run = out / f"corpus_{rate}", out / f"shards_{rate}", out / name
    if not (corpus / "corpus.json").is_file():
        synthetic.write_corpus(
            corpus,
            config.sources,
            sample_rate=rate,
            nb_train=8,
            nb_valid=2,
            nb_test=1,
            nb_mixtures=1,
            nb_solo=1,
            duration=12.0,
            seed=config.training.seed,
        )
    if not (shards / "manifest.json").is_file():
        prepare(config, [("synthetic", str(corpus))], str(shards), overwrite=True, progress=False)
    if not (run / "model.keras").is_file():
        train(config, str(shards), str(run), steps=steps, verbose=0)
    return run


def run_in_subprocess(code: str, args, env=None, timeout=7200) -> dict:
    """Run `code` with `args`; its last stdout line is a JSON result ({"error": ...} on failure)."""
    result = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["failed without output"]
        return {"error": lines[-1][:200]}
    return json.loads(result.stdout.strip().splitlines()[-1])
