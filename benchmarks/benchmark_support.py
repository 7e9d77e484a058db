"""What several benchmarks share: a small model trained on the synthetic corpus, a test song from
the MIR-1K clips of ../shared/data, running a measurement in a fresh process (so that
process-wide settings and peak memory are its own), and the Markdown table of the results."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def synthetic_shards(
    config, corpus: Path, shards: Path, nb_train: int, nb_valid: int, nb_unpaired: int
) -> Path:
    """`shards`: the shard set of `config` prepared from a synthetic corpus of 12 s songs with one
    test track, written in `corpus` with `config`'s training seed; both are kept and reused."""
    from advsep_tf.data_pipelines import synthetic
    from advsep_tf.data_pipelines.prepare import prepare

    if not (corpus / "corpus.json").is_file():
        synthetic.write_config_corpus(
            corpus,
            config,
            nb_train=nb_train,
            nb_valid=nb_valid,
            nb_test=1,
            nb_unpaired=nb_unpaired,
            duration=12.0,
            seed=config.training.seed,
        )
    if not (shards / "manifest.json").is_file():
        prepare(config, [("synthetic", str(corpus))], str(shards), overwrite=True, progress=False)
    return shards


def trained_supervised_run(config, out: Path, steps: int, name: str) -> Path:
    """A run directory of `config` trained supervised for `steps` on a synthetic corpus (cached in
    `out`)."""
    from advsep_tf.train import train

    config = config.replace(training={"mode": "supervised"})
    rate = config.audio.sample_rate
    shards = synthetic_shards(
        config,
        out / f"corpus_{rate}",
        out / f"shards_{rate}",
        nb_train=8,
        nb_valid=2,
        nb_unpaired=1,
    )
    run = out / name
    if not (run / "model.keras").is_file():
        train(config, str(shards), str(run), steps=steps, verbose=0)
    return run


def benchmark_input(seconds: float, rate: int) -> tuple[np.ndarray, dict[str, np.ndarray], str]:
    """(mixture, {source: truth}, description) at `rate`."""
    import soundfile as sf
    import soxr

    clips = sorted((SHARED_DATA / "paired_2stem").glob("mir1k_*")) if SHARED_DATA.is_dir() else []
    if clips:
        vocals, music = [], []
        for clip in clips:
            v, r = sf.read(clip / "vocal.wav", dtype="float32")
            m, _ = sf.read(clip / "music.wav", dtype="float32")
            vocals.append(soxr.resample(v, r, rate))
            music.append(soxr.resample(m, r, rate))
        vocals, music = np.concatenate(vocals), np.concatenate(music)
        description = (
            f"the {len(clips)} MIR-1K clips ({len(vocals) / rate:.1f} s) joined and repeated"
        )
    else:
        from advsep_tf.data_pipelines.synthetic import generate_song

        stems = generate_song(20180415, 30.0, rate, ["vocals", "accompaniment"])
        vocals, music = stems["vocals"], stems["accompaniment"]
        description = "a synthetic test song (../shared/data absent)"
    n = int(seconds * rate)
    repeat = -(-n // len(vocals))
    vocals, music = np.tile(vocals, repeat)[:n], np.tile(music, repeat)[:n]
    return (
        (vocals + music).astype(np.float32),
        {"vocals": vocals, "accompaniment": music},
        description,
    )


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


def print_table(
    columns: Sequence[str], rows: Sequence[tuple[str, dict]], cells: Callable[[dict], list[str]]
) -> None:
    """`rows` = [(name, result)] as a Markdown table under `columns`: the name, then
    `cells(result)`; a failed measurement ({"error": ...}) shows its error instead."""
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for name, result in rows:
        if "error" in result:
            print(f"| {name} | failed: {result['error']} |" + " |" * (len(columns) - 2))
        else:
            print("| " + " | ".join([name, *cells(result)]) + " |")
