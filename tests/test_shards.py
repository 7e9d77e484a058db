import os
import shutil
import subprocess
import time

import numpy as np
import pytest

from advsep_tf.data_pipelines.prepare import JOURNAL
from advsep_tf.data_pipelines.readers import role_examples
from advsep_tf.data_pipelines.shards import MANIFEST, ShardSet
from advsep_tf.errors import AdvsepError, ConfigMismatchError

from pipeline_steps import prepare_command, prepare_paired_only, prepare_synthetic


def test_prepared_shard_set_reads_back_every_role(tiny_config, tiny_shards, tiny_corpus):
    shard_set = ShardSet.open(str(tiny_shards), expected=tiny_config, verify_checksums=True)
    assert set(shard_set.roles) == {
        "train",
        "valid",
        "mixtures",
        "solo/vocals",
        "solo/accompaniment",
    }
    manifest = shard_set.manifest
    assert (
        len(manifest["roles"]["train"]["tracks"]) == 3
        and len(manifest["roles"]["valid"]["tracks"]) == 1
    )
    assert len(manifest["test_tracks"]) == 2
    for role in shard_set.roles:
        count = sum(
            1 for _ in role_examples(shard_set, shard_set.config, role, shuffle=False, repeat=False)
        )
        assert count == shard_set.examples(role) > 0
        names = [s["file"] for s in manifest["roles"][role]["shards"]]
        total = len(names)
        assert names[0].endswith(f"-00000-of-{total:05d}")
    example = next(
        iter(role_examples(shard_set, shard_set.config, "train", shuffle=False, repeat=False))
    )
    assert example["mixture"].shape == (32, 16, 1) and example["sources"].shape == (32, 16, 2)
    # The stems of a paired patch add up to the mixture (magnitudes, up to phase cancellation).
    mixture = np.expm1(example["mixture"].numpy()[..., 0])
    stems = np.expm1(example["sources"].numpy()).sum(-1)
    assert np.all(mixture <= stems + 1e-3)


def test_reader_refuses_a_shard_set_prepared_with_another_config(tiny_config, tiny_shards):
    other = tiny_config.replace(
        spectrogram={"n_hop": 16}, sources=["vocals", "drums", "bass", "other"]
    )
    with pytest.raises(ConfigMismatchError) as info:
        ShardSet.open(str(tiny_shards), expected=other)
    message = str(info.value)
    assert str(tiny_shards) in message and "spectrogram.n_hop" in message and "sources" in message
    # Training-only fields do not matter to a shard set.
    ShardSet.open(str(tiny_shards), expected=tiny_config.replace(loss={"alpha": 0.5}))


def test_a_modified_shard_fails_the_checksum(tiny_config, tiny_shards, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_shards, copy)
    shard = sorted(p for p in os.listdir(copy) if p.startswith("train."))[0]
    with open(copy / shard, "r+b") as f:
        f.seek(100)
        f.write(b"\xff\xff\xff\xff")
    with pytest.raises(AdvsepError, match=f"{shard}: checksum differs"):
        ShardSet.open(str(copy), expected=tiny_config, verify_checksums=True)
    os.remove(copy / shard)
    with pytest.raises(AdvsepError, match=f"{shard}: shard listed in the manifest is missing"):
        ShardSet.open(str(copy), expected=tiny_config)


def test_a_killed_writer_leaves_nothing_the_reader_accepts(tiny_config, tiny_corpus, tmp_path):
    out = tmp_path / "shards"
    command = prepare_command(tiny_corpus, out, "--examples-per-shard", "8", "--no-progress")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if out.is_dir() and any(".tfrecord-" in name for name in os.listdir(out)):
            break
        time.sleep(0.005)
    assert process.poll() is None, "prepare finished before it could be killed"
    process.kill()
    process.wait()
    assert not (out / MANIFEST).exists()
    with pytest.raises(AdvsepError, match="did not finish"):
        ShardSet.open(str(out), expected=tiny_config)
    # A rerun resumes: it keeps the finished shards the journal vouches for, drops half-written
    # ones, and completes (tests/test_prepare.py checks the result equals an uninterrupted run).
    manifest = prepare_synthetic(tiny_config, tiny_corpus, out, examples_per_shard=8)
    assert not any(name.endswith(".tmp") for name in os.listdir(out))
    assert not (out / JOURNAL).exists()
    listed = {s["file"] for role in manifest["roles"].values() for s in role["shards"]}
    assert listed == {name for name in os.listdir(out) if ".tfrecord-" in name}
    ShardSet.open(str(out), expected=tiny_config, verify_checksums=True)


def test_prepare_refuses_to_overwrite_without_being_asked(tiny_config, tiny_corpus, tiny_shards):
    with pytest.raises(AdvsepError, match="already holds a prepared shard set"):
        prepare_synthetic(tiny_config, tiny_corpus, tiny_shards)


def test_adversarial_training_needs_unpaired_roles(tiny_config, tiny_corpus, tmp_path):
    from advsep_tf.data_pipelines.readers import training_dataset

    out = tmp_path / "paired_only"
    prepare_paired_only(tiny_config, tiny_corpus, out)
    shard_set = ShardSet.open(str(out), expected=tiny_config)
    with pytest.raises(
        AdvsepError,
        match=r"no examples for mixtures, solo/vocals, solo/accompaniment.*--mode supervised",
    ):
        training_dataset(shard_set, tiny_config)
    training_dataset(shard_set, tiny_config.replace(training={"mode": "supervised"}))
