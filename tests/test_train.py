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
