import csv
import json
import os

import keras
import pytest

from advsep_tf.train import load_run_model, train


def test_a_run_directory_has_everything_users_look_at(tiny_run, tiny_config):
    for name in ("config.json", "run.json", "model.keras", "history.csv", "training_curves.png"):
        assert (tiny_run / name).is_file(), name
    assert any(f.startswith("events.out.tfevents") for _, _, files in os.walk(tiny_run / "logs") for f in files)
    with open(tiny_run / "config.json") as f:
        assert json.load(f) == tiny_config.to_dict()
    with open(tiny_run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and float(rows[0]["val_supervised_loss"]) > 0
    model = load_run_model(str(tiny_run), expected=tiny_config)
    assert model.separation_config == tiny_config


def test_resume_continues_from_the_last_checkpoint(tiny_config, tiny_shards, tmp_path):
    config = tiny_config.replace(training={"steps_per_epoch": 2, "patience": 100})
    run_dir = str(tmp_path / "run")
    first = train(config, str(tiny_shards), run_dir, steps=4, verbose=0)
    assert first["separator_steps"] == 4 and first["critic_steps"] == 4 * config.loss.n_critic
    resumed = train(config, str(tiny_shards), run_dir, steps=8, resume=True, verbose=0)
    # The restored optimizers carry on counting: 4 steps before, 4 more now.
    assert resumed["separator_steps"] == 8 and resumed["critic_steps"] == 8 * config.loss.n_critic
    with open(os.path.join(run_dir, "history.csv")) as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1, 2, 3]


def test_early_stopping_on_validation_loss(tiny_config, tiny_shards, tmp_path):
    # A zero learning rate never improves validation L_s: training stops after `patience` epochs.
    config = tiny_config.replace(
        training={"steps_per_epoch": 1, "patience": 2, "mode": "supervised"}, optimizer={"learning_rate": 0.0}
    )
    summary = train(config, str(tiny_shards), str(tmp_path / "run"), steps=10, verbose=0)
    assert summary["separator_steps"] == 3


def test_tensorboard_logs_hold_scalars_audio_and_images(tiny_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def tags(folder):
        accumulator = EventAccumulator(str(folder), size_guidance={"audio": 0, "images": 0, "tensors": 0, "scalars": 0})
        accumulator.Reload()
        return accumulator.Tags(), accumulator

    train_tags, _ = tags(tiny_run / "logs" / "train")
    scalars = set(train_tags["tensors"]) | set(train_tags["scalars"])
    for name in ("loss", "supervised_loss", "adversarial_loss", "additive_loss", "wasserstein_vocals",
                 "wasserstein_accompaniment", "gradient_penalty_vocals", "gradient_penalty_accompaniment"):
        assert f"epoch_{name}" in scalars, (name, sorted(scalars))
    validation_tags, _ = tags(tiny_run / "logs" / "validation")
    assert "epoch_supervised_loss" in set(validation_tags["tensors"]) | set(validation_tags["scalars"])

    preview_tags, accumulator = tags(tiny_run / "logs" / "preview")
    everything = set(preview_tags["tensors"]) | set(preview_tags["scalars"]) | set(preview_tags["audio"]) | set(preview_tags["images"])
    expected = {"learning_rate/separator", "learning_rate/critic", "mixture", "estimate/vocals", "reference/vocals",
                "estimate/accompaniment", "reference/accompaniment"}
    # tf.summary.audio/image are stored as tensor summaries with plugin data; names may carry suffixes.
    for tag in expected:
        assert any(t == tag or t.startswith(tag + "/") for t in everything), (tag, sorted(everything))
    assert any(t.startswith("spectrogram/vocals") for t in everything)
    audio = accumulator.Tensors("mixture")[0].tensor_proto
    assert len(audio.string_val[0]) > 44  # a real WAV payload, not just a header
