"""Shared fixtures: a tiny config, a tiny synthetic corpus and its shard set, the real
recordings."""

from pathlib import Path

import pytest

import advsep_tf  # noqa: F401 - sets TensorFlow's environment before anything imports it

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data_or_skip() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real recordings not available at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_config():
    from advsep_tf.config import load_config

    return load_config("tiny")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory, tiny_config):
    from advsep_tf.data_pipelines import synthetic

    root = tmp_path_factory.mktemp("corpus")
    synthetic.write_config_corpus(
        root, tiny_config, nb_train=3, nb_valid=1, nb_test=2, nb_unpaired=3, duration=4.0, seed=7
    )
    return root


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory, tiny_config, tiny_corpus):
    from advsep_tf.data_pipelines.prepare import prepare

    out = tmp_path_factory.mktemp("shards")
    prepare(
        tiny_config,
        [("synthetic", str(tiny_corpus))],
        str(out),
        progress=False,
        examples_per_shard=64,
    )
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_config, tiny_shards):
    """A trained (a few steps) adversarial run directory."""
    from advsep_tf.train import train

    run_dir = tmp_path_factory.mktemp("run") / "adversarial"
    train(tiny_config, str(tiny_shards), str(run_dir), steps=4, verbose=0)
    return run_dir


def walked_segments(
    nb_samples: int, layout, block: int | None = None
) -> list[tuple[int, int, int]]:
    """[(start, keep_from, keep_to)]: the segments `advsep_tf.streaming.SegmentWalk` runs on a
    song of `nb_samples` arriving in blocks of `block` samples (None: one block), and the part of
    each it keeps, read off the walk itself (the song's samples are their own indices)."""
    import numpy as np

    from advsep_tf.streaming import SegmentWalk

    starts = []

    def process(segment, valid):
        starts.append(int(segment[0, 0]))
        return segment

    walk = SegmentWalk(process, layout)
    song = np.arange(nb_samples, dtype=np.float64)[None]
    block = block or nb_samples
    kept = [k for i in range(0, nb_samples, block) for k in walk.push(song[:, i : i + block])]
    kept += walk.finish()
    return [(start, int(k[0, 0]), int(k[0, -1]) + 1) for start, k in zip(starts, kept, strict=True)]
