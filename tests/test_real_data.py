"""MIR-1K's own layout (`mir1k` kind), splits by singer, warm start (`--init`), and the training
augmentations as config fields."""

import json
import os

import numpy as np
import pytest
import soundfile as sf

from advsep_tf.config import load_config
from advsep_tf.data_pipelines import datasets
from advsep_tf.data_pipelines.prepare import prepare
from advsep_tf.data_pipelines.shards import ShardSet
from advsep_tf.data_pipelines.splits import SplitSpec, assign_roles
from advsep_tf.errors import AdvsepError, ConfigMismatchError
from advsep_tf.experiment import seed_statistics

from layouts import expected_patches

RATE = 16000
# Five singers: by the default rule (case-insensitive name order) the 4th validates, the 5th tests.
CLIPS = {
    "amy": ["amy_1_01.wav", "amy_1_02.ogg"],
    "Bob": ["Bob_2_01.flac"],
    "carl": ["carl_3_01.wav"],
    "dee": ["dee_4_01.ogg"],
    "eve": ["eve_5_01.wav"],
}


def tone(frequency, seconds=1.5, seed=0):
    t = np.arange(int(seconds * RATE)) / RATE
    noise = np.random.default_rng(seed).normal(0, 0.01, t.shape)
    return (0.3 * np.sin(2 * np.pi * frequency * t) + noise).astype(np.float32)


@pytest.fixture(scope="module")
def mir1k_tree(tmp_path_factory):
    """MIR-1K's layout: Wavfile/<singer>_<song>_<clip>.<ext>, left accompaniment, right vocals."""
    root = tmp_path_factory.mktemp("MIR-1K")
    (root / "Wavfile").mkdir()
    for i, name in enumerate(n for names in CLIPS.values() for n in names):
        stereo = np.stack([tone(220 + 40 * i, seed=i), tone(900 + 70 * i, seed=100 + i)], axis=1)
        sf.write(root / "Wavfile" / name, stereo, RATE)
    return root


def _tiny_on_mir1k(tree, split, out, *options):
    """advsep-tf-prepare's or advsep-tf-experiment's arguments: the tiny preset on the MIR-1K
    `tree` under the split spec file `split`."""
    return [
        "--config",
        "tiny",
        "--dataset",
        f"mir1k={tree}",
        "--split",
        str(split),
        "--out",
        str(out),
        *options,
    ]


@pytest.fixture(scope="module")
def tiny():
    return load_config("tiny")


def test_mir1k_reads_any_extension_and_splits_the_channels(mir1k_tree, tiny):
    records = datasets.mir1k_tracks(str(mir1k_tree), tiny)
    assert [r.track_id for r in records] == sorted(
        n.rsplit(".", 1)[0] for names in CLIPS.values() for n in names
    )
    assert {r.track_id: r.singer for r in records}["Bob_2_01"] == "Bob"
    by_id = {r.track_id: r for r in records}
    for track_id in ("amy_1_02", "Bob_2_01", "eve_5_01"):  # ogg, flac, wav
        stereo, rate = sf.read(
            next((mir1k_tree / "Wavfile").glob(f"{track_id}.*")), dtype="float32"
        )
        audio = datasets.load_track_audio(by_id[track_id], tiny, role="train")
        from advsep_tf.data_pipelines.audio import resample

        left, right = (resample(stereo[:, c : c + 1], rate, 8192)[:, 0] for c in (0, 1))
        tolerance = 0.05 if track_id.endswith("02") else 1e-4  # Vorbis is lossy
        np.testing.assert_allclose(audio["accompaniment"], left, atol=tolerance)
        np.testing.assert_allclose(audio["vocals"], right, atol=tolerance)
        np.testing.assert_allclose(
            audio["mixture"], audio["accompaniment"] + audio["vocals"], atol=1e-6
        )


def test_mir1k_default_roles_split_by_singer(mir1k_tree, tiny):
    records = datasets.mir1k_tracks(str(mir1k_tree), tiny)
    roles = {r.singer: r.role for r in records}
    assert roles == {"amy": "train", "Bob": "train", "carl": "train", "dee": "valid", "eve": "test"}
    # The 13 singers of the real corpus: 2 validate, 2 test, 9 train.
    real = [
        "amy",
        "leon",
        "geniusturtle",
        "jmzen",
        "davidson",
        "Kenshin",
        "titon",
        "khair",
        "abjones",
        "annar",
        "ariel",
        "Ani",
        "tammy",
    ]
    counts = {
        role: list(datasets.mir1k_default_roles(real).values()).count(role)
        for role in ("train", "valid", "test")
    }
    assert counts == {"train": 9, "valid": 2, "test": 2}


def test_split_spec_names_singers_and_pools_take_one_channel(mir1k_tree, tiny, tmp_path):
    spec = tmp_path / "split.yaml"
    spec.write_text(
        "train: [mir1k:singer=amy]\nvalid: [mir1k:singer=Bob]\ntest: [singer=carl]\n"
        "solo: {vocals: [mir1k:singer=dee], accompaniment: [mir1k:singer=eve]}\n"
    )
    manifest = prepare(
        tiny,
        [("mir1k", str(mir1k_tree))],
        str(tmp_path / "shards"),
        split_file=str(spec),
        progress=False,
        examples_per_shard=64,
    )
    roles = manifest["roles"]
    assert roles["train"]["tracks"] == ["mir1k:amy_1_01", "mir1k:amy_1_02"]
    assert manifest["test_tracks"] == ["mir1k:carl_3_01"]
    shard_set = ShardSet.open(str(tmp_path / "shards"), expected=tiny)
    records = {r.track_id: r for r in datasets.mir1k_tracks(str(mir1k_tree), tiny)}
    right = datasets.load_track_audio(records["dee_4_01"], tiny, role="solo/vocals")["vocals"]
    left = datasets.load_track_audio(records["eve_5_01"], tiny, role="solo/accompaniment")[
        "accompaniment"
    ]
    assert shard_set.examples("solo/vocals") == expected_patches(right, tiny)
    assert shard_set.examples("solo/accompaniment") == expected_patches(left, tiny)
    # The pool took the right channel alone, not the mixture: the tones differ.
    assert not np.allclose(
        right,
        datasets.load_track_audio(records["dee_4_01"], tiny, role="train")["mixture"],
        atol=0.05,
    )


def test_a_singer_in_test_and_another_role_is_refused_by_name(mir1k_tree, tiny, tmp_path):
    records = datasets.mir1k_tracks(str(mir1k_tree), tiny)
    spec = tmp_path / "split.yaml"
    spec.write_text("test: [mir1k:amy_1_01]\ntrain: [mir1k:amy_1_02]\n")
    with pytest.raises(AdvsepError, match=r"singer amy \(mir1k\) is in test and in train"):
        assign_roles(records, tiny, SplitSpec.load(str(spec), tiny))
    # Their clips in one held-out role (the rest unused) is fine.
    spec.write_text("valid: [mir1k:amy_1_01]\nunused: [mir1k:amy_1_02]\n")
    assignment = assign_roles(records, tiny, SplitSpec.load(str(spec), tiny))
    assert [r.track_id for r in assignment["valid"]] == ["amy_1_01"]


def test_mir1k_without_wavfile_names_the_folder(tmp_path, tiny):
    with pytest.raises(AdvsepError, match="Wavfile: --dataset mir1k: folder not found"):
        datasets.mir1k_tracks(str(tmp_path), tiny)


def test_warm_start_gives_identical_predictions_and_refuses_other_shapes(tiny, tiny_run):
    import keras

    from advsep_tf.model import AdversarialSeparator
    from advsep_tf.runs import load_run_model, warm_start

    source = load_run_model(str(tiny_run))
    mixture = np.random.default_rng(0).random((2, 32, 16, 1)).astype(np.float32)
    fresh = AdversarialSeparator(tiny.replace(training={"seed": 99}))
    fresh.compile()
    assert not np.allclose(fresh.predict(mixture, verbose=0), source.predict(mixture, verbose=0))
    message = warm_start(fresh, str(tiny_run), tiny)
    assert "and the vocals, accompaniment critic(s)" in message
    np.testing.assert_array_equal(
        fresh.predict(mixture, verbose=0), source.predict(mixture, verbose=0)
    )
    for mine, theirs in zip(fresh.critics, source.critics):
        np.testing.assert_array_equal(mine(mixture), theirs(mixture))

    wider = tiny.replace(separator={"base_filters": 8})
    other = AdversarialSeparator(wider)
    with pytest.raises(ConfigMismatchError, match="separator.base_filters"):
        warm_start(other, str(tiny_run), wider)
    keras.backend.clear_session()


def test_init_through_the_cli_starts_from_the_trained_model(
    tiny_run, tiny_shards, tmp_path, capsys
):
    from advsep_tf.cli.train import main

    tiny_on_shards = ["--config", "tiny", "--shards", str(tiny_shards)]
    out = tmp_path / "finetuned"
    main(
        [
            *tiny_on_shards,
            "--out",
            str(out),
            "--init",
            str(tiny_run),
            "--mode",
            "supervised",
            "--steps",
            "2",
            "--remix-probability",
            "0.5",
            "--random-offsets",
        ]
    )
    printed = capsys.readouterr().out
    assert f"{tiny_run}: warm start from its separator" in printed
    saved = json.loads((out / "config.json").read_text())
    assert (
        saved["training"]["remix_probability"] == 0.5
        and saved["training"]["random_offsets"] is True
    )
    with pytest.raises(SystemExit) as exit_info:
        main([*tiny_on_shards, "--out", str(tmp_path / "x"), "--remix-probability", "1.5"])
    assert exit_info.value.code == 2


def test_experiment_on_a_dataset_with_seeds_resumes_and_reports_intervals(
    mir1k_tree, tmp_path, capsys
):
    from advsep_tf.cli import common
    from advsep_tf.cli import experiment as experiment_cli
    from advsep_tf.evaluate import load_result

    spec = tmp_path / "split.yaml"
    spec.write_text(
        "train: [mir1k:amy_1_01]\nmixtures: [mir1k:amy_1_02]\nvalid: [mir1k:singer=Bob]\ntest: "
        "[singer=carl]\n"
        "solo: {vocals: [mir1k:singer=dee], accompaniment: [mir1k:singer=eve]}\n"
    )
    out = tmp_path / "experiment"
    argv = _tiny_on_mir1k(
        mir1k_tree,
        spec,
        out,
        "--models",
        "baseline,VA",
        "--seeds",
        "3,4",
        "--steps",
        "2",
        "--warm-start-steps",
        "2",
        "--test-rate",
        "16000",
        "--no-progress",
    )
    assert common.run(experiment_cli.main, argv) == 0
    first = capsys.readouterr().out
    assert "warm start from baseline + at most 2 steps" in first
    # The test split became references at the asked rate, and only the test singer's clips.
    assert sorted(os.listdir(out / "test_references")) == [".complete", "mir1k_carl_3_01"]
    info = sf.info(out / "test_references" / "mir1k_carl_3_01" / "vocals.wav")
    assert info.samplerate == 16000
    report = (out / "comparison.md").read_text()
    assert "VA - baseline" in report and "baseline+ - baseline" in report and "seeds 3, 4" in report
    # The interval in the summary is the one computed from the per-seed results on disk.
    summary = json.loads((out / "summary.json").read_text())
    per_seed = [
        load_result(out / "results" / f"seed{s}" / "VA" / "results.json").aggregate["vocals"][
            "SDR"
        ]["mean"]
        for s in (3, 4)
    ]
    expected = seed_statistics(per_seed)
    got = summary["over_seeds"]["models"]["VA"]["vocals"]["SDR"]
    assert got["mean"] == pytest.approx(expected["mean"]) and got["ci95"] == pytest.approx(
        expected["ci95"]
    )
    assert expected["ci95"] > 0
    # A second invocation trains nothing again.
    mtime = (out / "runs" / "seed3" / "VA" / "model.keras").stat().st_mtime
    assert common.run(experiment_cli.main, argv) == 0
    assert capsys.readouterr().out.count("done in an earlier invocation") == 6
    assert (out / "runs" / "seed3" / "VA" / "model.keras").stat().st_mtime == mtime


def test_seed_statistics_interval():
    stats = seed_statistics([1.0, 2.0, 3.0])
    # t(0.975, 2) = 4.303; sd = 1; n = 3
    assert stats["mean"] == 2.0 and stats["ci95"] == pytest.approx(4.3027 / np.sqrt(3), rel=1e-4)
    assert seed_statistics([5.0])["ci95"] is None


def test_teacher_targets_replace_the_stems_when_adapting(tiny, tiny_run):
    import keras

    from advsep_tf.model import AdversarialSeparator
    from advsep_tf.runs import load_run_model, warm_start

    config = tiny.replace(training={"mode": "supervised", "teacher_targets": True})
    student = AdversarialSeparator(config)
    student.compile(separator_optimizer=keras.optimizers.SGD(0.0))
    warm_start(student, str(tiny_run), config)
    teacher = load_run_model(str(tiny_run))
    student.set_teacher(teacher)
    batch = {"paired_mixture": np.random.default_rng(1).random((2, 32, 16, 1)).astype(np.float32)}
    # Before adaptation the student is its teacher: L_s is exactly zero.
    assert float(student.train_step(batch)["supervised_loss"]) == 0.0
    student.set_teacher(AdversarialSeparator(config.replace(training={"seed": 5})))
    student.supervised_loss_tracker.reset_state()
    assert float(student.train_step(batch)["supervised_loss"]) > 0.0
    # The teacher is not saved with the student.
    assert len(student.weights) == len(AdversarialSeparator(config).weights)


def test_adaptation_runs_with_no_paired_data(mir1k_tree, tiny_run, tmp_path, capsys):
    from advsep_tf.cli import common
    from advsep_tf.cli import prepare as prepare_cli
    from advsep_tf.cli import train as train_cli

    spec = tmp_path / "split.yaml"
    spec.write_text(
        "train: []\nvalid: []\ntest: [singer=carl]\nmixtures: [mir1k:singer=amy, "
        "mir1k:singer=Bob]\n"
        "solo: {vocals: [mir1k:singer=dee]}\nunused: [singer=eve]\n"
    )
    shards = tmp_path / "shards"
    prepared = _tiny_on_mir1k(mir1k_tree, spec, shards, "--no-progress")
    assert common.run(prepare_cli.main, prepared) == 0
    out = tmp_path / "adapted"
    base = [
        "--config",
        "tiny",
        "--shards",
        str(shards),
        "--out",
        str(out),
        "--mode",
        "adversarial",
        "--critics",
        "vocals",
        "--steps",
        "2",
    ]
    # Without --teacher there is nothing to compute L_s on: one line says what is missing.
    assert common.run(train_cli.main, base) == 1
    assert "no examples for train" in capsys.readouterr().err
    assert common.run(train_cli.main, base + ["--init", str(tiny_run), "--teacher"]) == 0
    printed = capsys.readouterr().out
    assert "warm start from its separator and the vocals critic(s)" in printed
    assert "no validation data, the last step's model kept" in printed
    assert (out / "model.keras").stat().st_size > 0


def test_softplus_outputs_cannot_die_where_relu_outputs_do(tiny):
    """A relu output layer whose pre-activations all went negative outputs zero for every input
    and gets no gradient; softplus keeps both. The real-music presets use softplus."""
    import tensorflow as tf

    from advsep_tf.networks import build_separator

    assert load_config("real-small").separator.output_activation == "softplus"
    with pytest.raises(AdvsepError, match="separator.output_activation"):
        tiny.replace(separator={"output_activation": "tanh"})
    mixture = tf.random.uniform((2, 32, 16, 1))
    for activation, dies in (("relu", True), ("softplus", False)):
        separator = build_separator(tiny.replace(separator={"output_activation": activation}))
        out = separator.get_layer("out_vocals")
        kernel, bias = out.get_weights()
        out.set_weights([kernel * 0, bias * 0 - 5.0])  # the state a dead output is in
        with tf.GradientTape() as tape:
            estimate = separator(mixture)[..., 0]
            loss = tf.reduce_mean((estimate - 1.0) ** 2)
        gradient = tape.gradient(loss, out.bias)
        assert (float(tf.reduce_max(estimate)) == 0.0) == dies
        assert (float(tf.abs(gradient[0])) == 0.0) == dies
