"""Data pipeline throughput, side by side in one run: preparation and reading against training.

1. Preparation: a corpus of real recordings in their corpora's layouts (the MUSDB18 excerpts in
   ../shared/data as MUSDB18 .stem.mp4 and MUSDB18-HQ folders, repeated under new track names; the
   unlabelled songs; the solo vocals; MIR-1K clips as CCMixter tracks), prepared with the `demo`
   preset by `advsep-tf-prepare`'s library, once with one worker and once with one worker per
   CPU core. Reported as minutes of audio prepared per minute of wall time (the audio of every
   track of every role, once per role).
2. Reading: patches per second out of `training_dataset` (the zipped paired, unlabelled and solo
   streams, parsed, shuffled, gain-augmented, batched), with and without the optional
   augmentations (random offsets, remixing).
3. Training: the adversarial `demo` step's rate on one cached batch (pure compute), times the
   patches one step consumes (batch x (1 + (n_critic + 1) + n_critic x critics)).
The ratios say whether the input pipeline keeps up with training (reading / consumption > 1) and
how much of an hour of training one hour of preparation feeds.

    python benchmarks/bench_data.py [--copies 24] [--repeats 2] [--steps 30] [--out /tmp/bench_data]
"""

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import advsep_tf  # noqa: F401 - before TensorFlow
import soundfile as sf

from advsep_tf.config import load_config
from advsep_tf.data_pipelines.prepare import prepare

# The tests' corpus layouts: the benchmark's .stem.mp4 files are encoded as the tests' are.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from layouts import encode_stem_mp4  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EXCERPTS = ("musdb18_Music_Delta_-_80s_Rock", "musdb18_The_Easton_Ellises_-_Falcon_69")


def build_corpus(root: Path, copies: int) -> list[tuple[str, str]]:
    """Layouts under `root` (links to ../shared/data; new audio only where a layout needs it)."""
    if root.exists():
        shutil.rmtree(root)
    stem_mp4 = {}
    for excerpt in EXCERPTS:
        stem_mp4[excerpt] = encode_stem_mp4(
            DATA / "paired_4stem" / excerpt, root / "encoded" / f"{excerpt}.stem.mp4", "256k"
        )
    for copy in range(copies):
        for excerpt in EXCERPTS:
            name = f"{excerpt} {copy:03d}"
            (root / "musdb18" / "train").mkdir(parents=True, exist_ok=True)
            os.symlink(stem_mp4[excerpt], root / "musdb18" / "train" / f"{name}.stem.mp4")
            for stem in ("mixture", "vocals", "drums", "bass", "other"):
                target = root / "musdb18hq" / "train" / name / f"{stem}.wav"
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(DATA / "paired_4stem" / excerpt / f"{stem}.wav", target)
    os.symlink(DATA / "mixtures", root / "mixtures")
    os.symlink(DATA / "solo_vocals", root / "solo_vocals")
    for clip in sorted((DATA / "paired_2stem").glob("mir1k_*")):
        folder = root / "ccmixter" / clip.name
        folder.mkdir(parents=True)
        os.symlink(clip / "music.wav", folder / "source-01.wav")
        os.symlink(clip / "vocal.wav", folder / "source-02.wav")
        music, rate = sf.read(clip / "music.wav", dtype="float32")
        vocal, _ = sf.read(clip / "vocal.wav", dtype="float32")
        sf.write(folder / "mix.wav", music + vocal, rate, subtype="FLOAT")
    return [
        ("musdb18", str(root / "musdb18")),
        ("musdb18hq", str(root / "musdb18hq")),
        ("mixtures", str(root / "mixtures")),
        ("solo/vocals", str(root / "solo_vocals")),
        ("ccmixter", str(root / "ccmixter")),
    ]


def time_preparation(config, datasets, out: Path, workers: int) -> tuple[float, dict]:
    if out.exists():
        shutil.rmtree(out)
    start = time.perf_counter()
    manifest = prepare(config, datasets, str(out), progress=False, workers=workers)
    return time.perf_counter() - start, manifest


def reading_rate(shard_set, config, batches: int, **augment) -> float:
    from advsep_tf.data_pipelines.readers import patches_per_step, training_dataset

    iterator = iter(training_dataset(shard_set, config, **augment))
    for _ in range(5):  # warm-up: shuffle buffers, threads
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * patches_per_step(config) / (time.perf_counter() - start)


def training_rate(shard_set, config, steps: int) -> float:
    import tensorflow as tf

    from advsep_tf.data_pipelines.readers import training_dataset
    from advsep_tf.model import AdversarialSeparator

    batch = next(iter(training_dataset(shard_set, config)))
    cached = tf.data.Dataset.from_tensors(batch).repeat()
    model = AdversarialSeparator(config)
    model.compile()
    model.fit(cached, steps_per_epoch=3, epochs=1, verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(cached, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--copies", type=int, default=24, help="copies of each MUSDB excerpt per layout"
    )
    parser.add_argument(
        "--repeats", type=int, default=2, help="preparations per worker count (the fastest counts)"
    )
    parser.add_argument("--steps", type=int, default=30, help="training steps timed")
    parser.add_argument(
        "--batches", type=int, default=60, help="training batches read for the reading rate"
    )
    parser.add_argument("--out", default="/tmp/bench_data")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"real recordings not available at {DATA}", file=sys.stderr)
        return 1

    from advsep_tf.data_pipelines.readers import patches_per_step
    from advsep_tf.data_pipelines.shards import ShardSet

    out = Path(args.out)
    config = load_config("demo")
    datasets = build_corpus(out / "corpus", args.copies)
    cores = os.cpu_count() or 1
    load_before = os.getloadavg()[0]
    best = {}
    for _ in range(args.repeats):  # interleaved, so that other load on the machine hits both alike
        for workers in sorted({1, cores}):
            seconds, manifest = time_preparation(
                config, datasets, out / f"shards_{workers}", workers
            )
            audio = sum(info["seconds"] for info in manifest["roles"].values())
            patches = sum(info["examples"] for info in manifest["roles"].values())
            print(
                f"prepare, {workers} worker(s): {audio / 60:.1f} min of audio, {patches} patches "
                f"in {seconds:.1f} s",
                flush=True,
            )
            if workers not in best or seconds < best[workers][1]:
                best[workers] = (workers, seconds, audio, patches)
    rows = [best[w] for w in sorted(best)]
    checksums = {
        w: [
            s["sha256"]
            for info in ShardSet.open(str(out / f"shards_{w}")).manifest["roles"].values()
            for s in info["shards"]
        ]
        for w, *_ in rows
    }
    identical = len({tuple(c) for c in checksums.values()}) == 1

    shard_set = ShardSet.open(str(out / "shards_1"), expected=config)
    read = reading_rate(shard_set, config, args.batches)
    read_augmented = reading_rate(
        shard_set, config, args.batches, random_offsets=True, remix_probability=0.5
    )
    steps_per_second = training_rate(shard_set, config, args.steps)
    per_step = patches_per_step(config)
    consumption = steps_per_second * per_step

    print()
    print(
        f"machine: {cores} CPU core(s), load average {load_before:.1f} before and "
        f"{os.getloadavg()[0]:.1f} after; "
        f"preset demo (batch {config.training.batch_size}, n_critic {config.loss.n_critic}, "
        f"{len(config.critic_sources)} critics: {per_step} patches per step)"
    )
    print("| measure | value |")
    print("|---|---|")
    for workers, seconds, audio, patches in rows:
        print(
            f"| preparation, {workers} worker(s) | {audio / seconds:.1f} min of audio per min "
            f"({patches / seconds:.0f} patches/s) |"
        )
    if len(rows) > 1:
        print(
            f"| preparation speed-up, {rows[-1][0]} workers vs 1 | "
            f"{rows[0][1] / rows[-1][1]:.2f}x (shards identical: {identical}) |"
        )
    print(f"| tf.data reading (gain only) | {read:.0f} patches/s |")
    print(f"| tf.data reading (+ random offsets, remix 0.5) | {read_augmented:.0f} patches/s |")
    print(
        f"| training step (adversarial, cached batch) | {steps_per_second:.2f} steps/s = "
        f"{consumption:.0f} patches/s |"
    )
    print(
        f"| reading / consumption | {read / consumption:.1f}x (augmented "
        f"{read_augmented / consumption:.1f}x) |"
    )
    fastest = max(rows, key=lambda r: r[3] / r[1])
    print(
        f"| preparation / consumption (patches) | {fastest[3] / fastest[1] / consumption:.2f}x "
        f"with {fastest[0]} worker(s) |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
