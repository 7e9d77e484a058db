import csv
import math
import json
import os

import keras

from advsep_tf.runs import load_run_model
from advsep_tf.train import train


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


def test_early_stopping_state_survives_a_resume(tiny_config, tiny_shards, tmp_path):
    # Validation L_s never improves (learning rate 0): patience 3 stops after epoch 4 in one go.
    config = tiny_config.replace(
        training={"steps_per_epoch": 1, "patience": 3, "mode": "supervised"}, optimizer={"learning_rate": 0.0}
    )
    run_dir = str(tmp_path / "run")
    assert train(config, str(tiny_shards), run_dir, steps=2, verbose=0)["separator_steps"] == 2
    # Had the resumed run forgotten its two epochs without improvement, it would run 4 more.
    assert train(config, str(tiny_shards), run_dir, steps=20, resume=True, verbose=0)["separator_steps"] == 4
    again = train(config, str(tiny_shards), run_dir, steps=20, resume=True, verbose=0)
    assert again["separator_steps"] == 4  # stopped early: nothing more to do


def test_checkpoints_are_atomic_and_only_the_last_ones_kept(tiny_config, tiny_shards, tmp_path):
    config = tiny_config.replace(training={"steps_per_epoch": 1, "checkpoints_kept": 2, "patience": 100})
    run_dir = tmp_path / "run"
    train(config, str(tiny_shards), str(run_dir), steps=4, verbose=0)
    files = sorted(os.listdir(run_dir / "checkpoints"))
    assert files == ["epoch-00003.weights.h5", "epoch-00004.weights.h5", "state.json"]
    with open(run_dir / "checkpoints" / "state.json") as f:
        state = json.load(f)
    assert state["epoch"] == 4 and state["weights"] == "epoch-00004.weights.h5" and state["separator_steps"] == 4


KILLED_RUN = """
import sys
from advsep_tf.config import load_config
from advsep_tf.train import train
config = load_config("tiny").replace(training={"steps_per_epoch": 2, "patience": 100})
train(config, sys.argv[1], sys.argv[2], steps=int(sys.argv[3]), resume=True, verbose=0)
"""


def test_a_killed_run_resumes_with_its_step_counter_and_optimizer_state(tiny_shards, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    run_dir = tmp_path / "run"
    state_file = run_dir / "checkpoints" / "state.json"
    process = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(tiny_shards), str(run_dir), "400"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if state_file.is_file() and json.loads(state_file.read_text())["epoch"] >= 2:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    state = json.loads(state_file.read_text())
    killed_at = state["epoch"]
    assert killed_at >= 2 and state["separator_steps"] == 2 * killed_at

    from advsep_tf.config import load_config

    config = load_config("tiny").replace(training={"steps_per_epoch": 2, "patience": 100})
    model = keras.saving.load_model(run_dir / "model.keras") if (run_dir / "model.keras").exists() else None
    del model  # the best-model file may be older than the checkpoint; the checkpoint is what resumes
    summary = train(config, str(tiny_shards), str(run_dir), steps=2 * (killed_at + 2), resume=True, verbose=0)
    # The counters carry on from the checkpoint: two more epochs of 2 steps each, no restart.
    assert summary["separator_steps"] == 2 * (killed_at + 2)
    assert summary["critic_steps"] == config.loss.n_critic * 2 * (killed_at + 2)
    with open(run_dir / "history.csv") as f:
        epochs = [int(r["epoch"]) for r in csv.DictReader(f)]
    assert epochs[-2:] == [killed_at, killed_at + 1]


def test_no_retracing_over_epochs(tiny_config, tiny_shards, tmp_path):
    config = tiny_config.replace(training={"steps_per_epoch": 2, "patience": 100})
    summary = train(config, str(tiny_shards), str(tmp_path / "run"), steps=8, verbose=0)
    assert summary["separator_steps"] == 8
    assert summary["train_step_traces"] == 1


def test_xla_compiled_train_step_runs_on_cpu(tiny_config, tiny_shards, tmp_path):
    config = tiny_config.replace(training={"jit_compile": True, "steps_per_epoch": 2})
    summary = train(config, str(tiny_shards), str(tmp_path / "run"), steps=2, verbose=0)
    assert summary["separator_steps"] == 2 and all(map(math.isfinite, summary["final_metrics"].values()))


def test_mixed_precision_trains_and_keeps_float32_losses(tiny_config, tiny_shards, tmp_path):
    config = tiny_config.replace(training={"precision": "mixed_bfloat16", "steps_per_epoch": 2})
    run_dir = tmp_path / "run"
    summary = train(config, str(tiny_shards), str(run_dir), steps=2, verbose=0)
    assert summary["critic_steps"] == 2 * config.loss.n_critic
    assert all(map(math.isfinite, summary["final_metrics"].values()))
    model = load_run_model(str(run_dir))
    assert model.separator.layers[1].compute_dtype == "bfloat16"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is put back


TWO_WORKERS = """
import json, os, sys
import numpy as np
import keras
from advsep_tf.config import load_config
from advsep_tf.train import train

shards, run_dir, out = sys.argv[1:4]

class SaveFinalWeights(keras.callbacks.Callback):
    def on_train_end(self, logs=None):
        np.savez(out, *[np.asarray(v) for v in self.model.weights])

config = load_config("tiny").replace(training={"steps_per_epoch": 2, "patience": 100})
summary = train(config, shards, run_dir, steps=4, verbose=0, strategy="multi_worker", callbacks=[SaveFinalWeights()])
print(json.dumps({k: summary[k] for k in ("separator_steps", "critic_steps")}))
"""


def _free_ports(count):
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_local_workers_end_with_identical_weights_equal_to_the_chiefs(tiny_shards, tmp_path):
    import subprocess
    import sys

    import numpy as np

    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        processes.append(subprocess.Popen(
            [sys.executable, "-c", TWO_WORKERS, str(tiny_shards), str(tmp_path / f"run{index}"),
             str(tmp_path / f"weights{index}.npz")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert summaries[0] == summaries[1] == {"separator_steps": 4, "critic_steps": 8}
    # Only the chief (worker 0) writes the run directory.
    assert (tmp_path / "run0" / "checkpoints" / "state.json").is_file()
    assert not (tmp_path / "run1").exists()
    weights = [np.load(tmp_path / f"weights{i}.npz") for i in range(2)]
    for key in weights[0].files:
        np.testing.assert_array_equal(weights[0][key], weights[1][key])
    # What the chief saved is what both workers hold.
    model = load_run_model(str(tmp_path / "run0"))
    model.load_weights(tmp_path / "run0" / "checkpoints" / "epoch-00002.weights.h5")
    for saved, held in zip(model.weights, (weights[0][k] for k in weights[0].files)):
        np.testing.assert_array_equal(np.asarray(saved), held)
