"""advsep-tf-prepare on an Apache Beam runner (DirectRunner, in this process): the same shard set as
the local path, byte for byte; bad input failed or skipped as there; the command line."""

import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip(
    "apache_beam", reason="apache-beam is not installed (pip install 'advsep-tf[beam]')"
)

from advsep_tf.cli import common  # noqa: E402
from advsep_tf.cli import prepare as prepare_cli  # noqa: E402
from advsep_tf.data_pipelines import readers  # noqa: E402
from advsep_tf.data_pipelines.beam import ERROR_NOTE, STAGING_PREFIX, prepare_beam  # noqa: E402
from advsep_tf.data_pipelines.prepare import JOURNAL, prepare  # noqa: E402
from advsep_tf.data_pipelines.shards import MANIFEST, ShardSet  # noqa: E402
from advsep_tf.errors import AdvsepError  # noqa: E402

from pipeline_steps import prepare_argv, prepare_synthetic  # noqa: E402

IN_PROCESS = ["--direct_num_workers=1"]
# What may differ between two preparations of the same inputs: when, and how long it took.
VOLATILE = ("created", "seconds_elapsed")


def comparable(manifest):
    return {k: v for k, v in manifest.items() if k not in VOLATILE}


def role_records(shard_dir, manifest, role):
    import tensorflow as tf

    files = [os.path.join(shard_dir, s["file"]) for s in manifest["roles"][role]["shards"]]
    return [record.numpy() for record in tf.data.TFRecordDataset(files)] if files else []


def patch_ids(records):
    import tensorflow as tf

    ids = []
    for record in records:
        example = tf.train.Example.FromString(record)
        feature = example.features.feature
        ids.append(
            (feature["track"].bytes_list.value[0].decode(), feature["patch"].int64_list.value[0])
        )
    return ids


def assert_only_the_shard_set(shard_dir, manifest):
    listed = {s["file"] for info in manifest["roles"].values() for s in info["shards"]}
    assert set(os.listdir(shard_dir)) == listed | {MANIFEST}


def test_beam_prepare_equals_the_local_prepare_and_trains(
    tiny_config, tiny_corpus, tiny_shards, tmp_path
):
    out = tmp_path / "beam"
    # What interrupted runs leave behind is cleared, never read as part of the shard set.
    (out / f"{STAGING_PREFIX}old").mkdir(parents=True)
    (out / f"{STAGING_PREFIX}old" / "train.tfrecord-00000-of-00001").write_bytes(b"stale")
    (out / "train.tfrecord-00007.tmp").write_bytes(b"half-written")
    (out / "solo-vocals.tfrecord-00003").write_bytes(b"an unfinished local run's shard")
    (out / JOURNAL).write_text("{}")

    local = json.loads((tiny_shards / MANIFEST).read_text())
    manifest = prepare_beam(
        tiny_config,
        [("synthetic", str(tiny_corpus))],
        str(out),
        examples_per_shard=64,
        pipeline_args=IN_PROCESS,
    )
    assert json.loads((out / MANIFEST).read_text()) == manifest

    # The same patches: per role, the same multiset of serialized examples...
    assert list(manifest["roles"]) == list(local["roles"])
    for role, info in local["roles"].items():
        assert manifest["roles"][role]["examples"] == info["examples"] > 0
        ours, theirs = role_records(out, manifest, role), role_records(tiny_shards, local, role)
        assert len(ours) == info["examples"]
        assert sorted(ours) == sorted(theirs)
        assert len(set(patch_ids(ours))) == len(ours)
    # ... and in fact the same shard files and manifest (but for when it was made).
    assert comparable(manifest) == comparable(local)
    assert_only_the_shard_set(out, manifest)

    shard_set = ShardSet.open(str(out), expected=tiny_config, verify_checksums=True)
    batch = next(iter(readers.training_dataset(shard_set, tiny_config)))
    b, n = tiny_config.training.batch_size, tiny_config.loss.n_critic
    assert batch["paired_mixture"].shape == (b, 32, 16, 1) and batch["paired_sources"].shape == (
        b,
        32,
        16,
        2,
    )
    assert batch["unpaired_mixtures"].shape == (b, n + 1, 32, 16, 1)
    assert all(np.all(np.isfinite(v.numpy())) for v in batch.values())

    with pytest.raises(AdvsepError, match="already holds a prepared shard set"):
        prepare_beam(
            tiny_config, [("synthetic", str(tiny_corpus))], str(out), pipeline_args=IN_PROCESS
        )


@pytest.fixture
def corpus_with_a_broken_track(tiny_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    broken = corpus / "musdb18hq" / "train" / "aaa_broken"
    broken.mkdir()
    noise = 0.1 * np.random.default_rng(0).standard_normal(4 * 8192).astype(np.float32)
    sf.write(broken / "accompaniment.wav", noise, 8192)
    (broken / "vocals.wav").write_bytes(b"")
    return corpus, str(broken / "vocals.wav")


def test_bad_input_fails_naming_the_file_or_is_skipped_as_locally(
    tiny_config, corpus_with_a_broken_track, tmp_path
):
    corpus, bad_file = corpus_with_a_broken_track
    datasets = [("synthetic", str(corpus))]
    out = tmp_path / "failed"
    with pytest.raises(AdvsepError) as info:
        prepare_beam(
            tiny_config, datasets, str(out), examples_per_shard=16, pipeline_args=IN_PROCESS
        )
    assert str(info.value).startswith(f"{bad_file}: ") and "empty" in str(info.value)
    assert os.listdir(out) == []  # no manifest, no shards, no staging folder, no error note
    with pytest.raises(AdvsepError, match="did not finish"):
        ShardSet.open(str(out))

    local = prepare(
        tiny_config,
        datasets,
        str(tmp_path / "local"),
        progress=False,
        examples_per_shard=16,
        on_error="skip",
    )
    manifest = prepare_beam(
        tiny_config,
        datasets,
        str(tmp_path / "skipped"),
        examples_per_shard=16,
        on_error="skip",
        pipeline_args=IN_PROCESS,
    )
    assert [e["track"] for e in manifest["skipped"]] == ["synthetic:aaa_broken"]
    assert manifest["skipped"][0]["file"] == bad_file
    assert comparable(manifest) == comparable(local)
    assert not (tmp_path / "skipped" / ERROR_NOTE).exists()


def run_cli(argv, capsys):
    code = common.run(prepare_cli.main, argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_command_line_runs_a_beam_runner(tiny_config, tiny_corpus, tmp_path, capsys):
    out = tmp_path / "shards"
    base = prepare_argv(tiny_corpus, out, "--examples-per-shard", "32")
    code, stdout, err = run_cli(
        [*base, "--runner", "DirectRunner", "--beam-option=--direct_num_workers=1"], capsys
    )
    assert code == 0, err
    assert f"Prepared {out} in" in stdout and "train" in stdout and "solo/vocals" in stdout
    manifest = json.loads((out / MANIFEST).read_text())
    local = prepare_synthetic(tiny_config, tiny_corpus, tmp_path / "local", examples_per_shard=32)
    assert comparable(manifest) == comparable(local)
    assert_only_the_shard_set(out, manifest)

    code, _, err = run_cli([*base, "--runner", "DirectRunner"], capsys)
    assert code == 1 and "already holds a prepared shard set" in err
    code, _, err = run_cli([*base, "--runner", "DirectRunner", "--overwrite"], capsys)
    assert code == 0, err
    # Usage errors: exit code 2.
    for extra in (
        ["--beam-option=--direct_num_workers=2"],
        ["--runner", "DirectRunner", "--workers", "2"],
        ["--runner", "NoSuchRunner"],
    ):
        with pytest.raises(SystemExit) as info:
            prepare_cli.main([*base, "--overwrite", *extra])
        assert info.value.code == 2
