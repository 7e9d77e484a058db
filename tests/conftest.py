"""Shared fixtures: a tiny config, a tiny synthetic corpus and its shard set, the real recordings."""

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
    synthetic.write_corpus(
        root, tiny_config.sources, sample_rate=8192, nb_train=3, nb_valid=1, nb_test=2,
        nb_mixtures=3, nb_solo=3, duration=4.0, seed=7,
    )
    return root


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory, tiny_config, tiny_corpus):
    from advsep_tf.data_pipelines.prepare import prepare

    out = tmp_path_factory.mktemp("shards")
    prepare(tiny_config, [("synthetic", str(tiny_corpus))], str(out), progress=False, examples_per_shard=64)
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_config, tiny_shards):
    """A trained (a few steps) adversarial run directory."""
    from advsep_tf.train import train

    run_dir = tmp_path_factory.mktemp("run") / "adversarial"
    train(tiny_config, str(tiny_shards), str(run_dir), steps=4, verbose=0)
    return run_dir
