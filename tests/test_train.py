import csv
import math
import json
import os

import keras

from advsep_tf.runs import load_run_model
from advsep_tf.train import train

from pipeline_steps import ADVERSARIAL_METRICS


def test_a_run_directory_has_everything_users_look_at(tiny_run, tiny_config):
    for name in ("config.json", "run.json", "model.keras", "history.csv", "training_curves.png"):
        assert (tiny_run / name).is_file(), name
    assert any(
        f.startswith("events.out.tfevents")
        for _, _, files in os.walk(tiny_run / "logs")
        for f in files
    )
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
        training={"steps_per_epoch": 1, "patience": 2, "mode": "supervised"},
        optimizer={"learning_rate": 0.0},
    )
    summary = train(config, str(tiny_shards), str(tmp_path / "run"), steps=10, verbose=0)
    assert summary["separator_steps"] == 3


def test_tensorboard_logs_hold_scalars_audio_and_images(tiny_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def tags(folder):
        accumulator = EventAccumulator(
            str(folder), size_guidance={"audio": 0, "images": 0, "tensors": 0, "scalars": 0}
        )
        accumulator.Reload()
        return accumulator.Tags(), accumulator

    train_tags, _ = tags(tiny_run / "logs" / "train")
    scalars = set(train_tags["tensors"]) | set(train_tags["scalars"])
    for name in ADVERSARIAL_METRICS:
        assert f"epoch_{name}" in scalars, (name, sorted(scalars))
    validation_tags, _ = tags(tiny_run / "logs" / "validation")
    assert "epoch_supervised_loss" in set(validation_tags["tensors"]) | set(
        validation_tags["scalars"]
    )

    preview_tags, accumulator = tags(tiny_run / "logs" / "preview")
    everything = (
        set(preview_tags["tensors"])
        | set(preview_tags["scalars"])
        | set(preview_tags["audio"])
        | set(preview_tags["images"])
    )
    expected = {
        "learning_rate/separator",
        "learning_rate/critic",
        "mixture",
        "estimate/vocals",
        "reference/vocals",
        "estimate/accompaniment",
        "reference/accompaniment",
    }
    # tf.summary.audio/image are stored as tensor summaries with plugin data; names may carry
    # suffixes.
    for tag in expected:
        assert any(t == tag or t.startswith(tag + "/") for t in everything), (
            tag,
            sorted(everything),
        )
    assert any(t.startswith("spectrogram/vocals") for t in everything)
    audio = accumulator.Tensors("mixture")[0].tensor_proto
    assert len(audio.string_val[0]) > 44  # a real WAV payload, not just a header


def test_early_stopping_state_survives_a_resume(tiny_config, tiny_shards, tmp_path):
    # Validation L_s never improves (learning rate 0): patience 3 stops after epoch 4 in one go.
    config = tiny_config.replace(
        training={"steps_per_epoch": 1, "patience": 3, "mode": "supervised"},
        optimizer={"learning_rate": 0.0},
    )
    run_dir = str(tmp_path / "run")
    assert train(config, str(tiny_shards), run_dir, steps=2, verbose=0)["separator_steps"] == 2
    # Had the resumed run forgotten its two epochs without improvement, it would run 4 more.
    assert (
        train(config, str(tiny_shards), run_dir, steps=20, resume=True, verbose=0)[
            "separator_steps"
        ]
        == 4
    )
    again = train(config, str(tiny_shards), run_dir, steps=20, resume=True, verbose=0)
    assert again["separator_steps"] == 4  # stopped early: nothing more to do


def test_checkpoints_are_atomic_and_only_the_last_ones_kept(tiny_config, tiny_shards, tmp_path):
    config = tiny_config.replace(
        training={"steps_per_epoch": 1, "checkpoints_kept": 2, "patience": 100}
    )
    run_dir = tmp_path / "run"
    train(config, str(tiny_shards), str(run_dir), steps=4, verbose=0)
    files = sorted(os.listdir(run_dir / "checkpoints"))
    assert files == ["epoch-00003.weights.h5", "epoch-00004.weights.h5", "state.json"]
    with open(run_dir / "checkpoints" / "state.json") as f:
        state = json.load(f)
    assert (
        state["epoch"] == 4
        and state["weights"] == "epoch-00004.weights.h5"
        and state["separator_steps"] == 4
    )


def test_a_killed_run_resumes_with_its_step_counter_and_optimizer_state(tiny_shards, tmp_path):
    from advsep_tf.config import load_config
    from killed_run import kill_run

    run_dir = tmp_path / "run"
    # Killed one step into its third epoch: two epochs checkpointed, one step lost.
    kill_run(tiny_shards, run_dir, 2)
    state = json.loads((run_dir / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 2 and state["separator_steps"] == 4

    config = load_config("tiny").replace(training={"steps_per_epoch": 2, "patience": 100})
    summary = train(config, str(tiny_shards), str(run_dir), steps=8, resume=True, verbose=0)
    # The counters carry on from the checkpoint (4 steps, not the 5 taken): the third epoch is
    # redone, then the fourth.
    assert summary["separator_steps"] == 8
    assert summary["critic_steps"] == config.loss.n_critic * 8
    with open(run_dir / "history.csv") as f:
        epochs = [int(r["epoch"]) for r in csv.DictReader(f)]
    assert epochs == [0, 1, 2, 3]


def test_no_retracing_over_epochs(tiny_config, tiny_shards, tmp_path):
    config = tiny_config.replace(training={"steps_per_epoch": 2, "patience": 100})
    summary = train(config, str(tiny_shards), str(tmp_path / "run"), steps=8, verbose=0)
    assert summary["separator_steps"] == 8
    assert summary["train_step_traces"] == 1


def _one_step(config, batch, weights, jit_compile: bool):
    """The logs and weights after one fit step from `weights` on `batch`, with plain SGD: the
    updates are the gradients scaled, so they differ only as much as the gradients do."""
    import tensorflow as tf

    from advsep_tf.model import AdversarialSeparator

    model = AdversarialSeparator(config)
    sgd = keras.optimizers.SGD
    model.compile(
        separator_optimizer=sgd(1e-3), critic_optimizer=sgd(1e-3), jit_compile=jit_compile
    )
    # Keras quietly compiles without XLA (a warning) when it thinks a model cannot be compiled.
    assert model.jit_compile is jit_compile
    model.set_weights(weights)
    history = model.fit(
        tf.data.Dataset.from_tensors(batch).repeat(), steps_per_epoch=1, epochs=1, verbose=0
    )
    return {k: v[-1] for k, v in history.history.items()}, model.get_weights()


def _same_draws_everywhere(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    """Numbers in [0, 1) that a plain graph and XLA compute alike (a golden-ratio sequence)."""
    import tensorflow as tf

    count = tf.reduce_prod(tf.cast(shape, tf.int32))
    return tf.reshape(
        tf.math.floormod(0.1 + 0.618034 * tf.range(count, dtype=tf.float32), 1.0), shape
    )


def test_xla_compiled_train_step_matches_the_plain_one(tiny_config, tiny_shards, monkeypatch):
    import numpy as np

    from advsep_tf.data_pipelines.readers import training_dataset
    from advsep_tf.data_pipelines.shards import ShardSet
    from advsep_tf.model import AdversarialSeparator

    # The gradient penalty's random draws (its shuffle and interpolation weights) are fixed here:
    # XLA draws other numbers than TensorFlow's kernels from the same seed, whatever the
    # algorithm, and that is not what this test is about.
    monkeypatch.setattr(keras.random, "uniform", _same_draws_everywhere)
    keras.utils.set_random_seed(7)
    batch = next(
        iter(training_dataset(ShardSet.open(str(tiny_shards), expected=tiny_config), tiny_config))
    )
    model = AdversarialSeparator(tiny_config)
    for critic in model.critics:  # steeper critics, so that the one-sided penalty is not zero
        critic.set_weights([2 * w for w in critic.get_weights()])
    initial = model.get_weights()
    plain_logs, plain_weights = _one_step(tiny_config, batch, initial, jit_compile=False)
    xla_logs, xla_weights = _one_step(tiny_config, batch, initial, jit_compile=True)
    assert (
        plain_logs["gradient_penalty_vocals"] > 0
        and plain_logs["gradient_penalty_accompaniment"] > 0
    )
    # XLA's fused kernels round differently from oneDNN's, and a step amplifies round-off unevenly:
    # the critic terms come after n_critic updates of steep critics, where a relative change of
    # 1e-6 in the weights has moved a Wasserstein estimate by 1e-3 relative. So each quantity's
    # tolerance is measured here: the same plain step from weights moved by 1e-6 relative (a few
    # float32 ulps) shows how far round-off alone can take it. A dropped term, a stale variable or
    # a Python side effect baked into the trace moves a quantity by its own size, far beyond that;
    # the 2% floor is for kernels that round more coarsely than this machine's (one CI machine's
    # XLA step differed by 0.7% in the adversarial loss from an unseeded start).
    rng = np.random.default_rng(0)
    nudged = [w * (1 + 1e-6 * rng.standard_normal(w.shape)).astype(w.dtype) for w in initial]
    nudged_logs, nudged_weights = _one_step(tiny_config, batch, nudged, jit_compile=False)
    assert xla_logs.keys() == plain_logs.keys()
    conditioned = set()
    for name, value in plain_logs.items():
        round_off = abs(nudged_logs[name] - value)
        # A value near zero (a Wasserstein estimate can be) is compared by its round-off alone.
        if round_off < 0.1 * abs(value):
            conditioned.add(name)
        np.testing.assert_allclose(
            xla_logs[name], value, rtol=2e-2, atol=100 * round_off + 1e-6, err_msg=name
        )
    # The comparison means something: the losses themselves are well conditioned.
    assert {"loss", "supervised_loss"} <= conditioned, conditioned
    for before, xla, plain, plain_nudged, start_nudged in zip(
        initial, xla_weights, plain_weights, nudged_weights, nudged
    ):
        update = plain - before
        round_off = np.abs((plain_nudged - start_nudged) - update).max()
        np.testing.assert_allclose(
            xla - before, update, rtol=0, atol=2e-2 * np.abs(update).max() + 100 * round_off + 1e-9
        )
    assert any(np.abs(plain - before).max() > 0 for before, plain in zip(initial, plain_weights))


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
import json, os, socket, sys
import numpy as np
import keras
from advsep_tf.config import load_config
from advsep_tf.train import train

shards, run_dir, out, port_fd = sys.argv[1:5]

class SaveFinalWeights(keras.callbacks.Callback):
    def on_train_end(self, logs=None):
        np.savez(out, *[np.asarray(v) for v in self.model.weights])

config = load_config("tiny").replace(training={"steps_per_epoch": 2, "patience": 100})
# This worker's port, bound by the test and held until now: free it just before TensorFlow binds it.
socket.socket(fileno=int(port_fd)).close()
summary = train(config, shards, run_dir, steps=4, verbose=0, strategy="multi_worker",
callbacks=[SaveFinalWeights()])
print(json.dumps({k: summary[k] for k in ("separator_steps", "critic_steps")}))
"""
# What a worker prints when another process took its port in the moment between the worker
# releasing it and TensorFlow's gRPC server binding it.
PORT_TAKEN = "Could not start gRPC server"


def _run_two_workers(shards, folder):
    """Start two workers of one cluster on ports the operating system chose; return their exit
    codes and outputs, or None when one of them lost its port to another process.

    TensorFlow's server binds its port itself, with SO_REUSEPORT off, so no socket can keep the
    port while it binds: whoever picks the port must release it first. Here each port stays bound
    (by the test, then by the worker, which inherits the socket) until the worker is about to
    start its server, a window of milliseconds instead of the seconds that importing TensorFlow
    takes; a worker that loses the race anyway says so, and the caller starts again on new ports.
    """
    import socket
    import subprocess
    import sys
    import time

    sockets = [socket.socket() for _ in range(2)]
    for s in sockets:
        s.bind(("", 0))  # every address, as TensorFlow's server binds it (0.0.0.0:PORT)
    cluster = {"worker": [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]}
    processes, logs = [], []
    try:
        for index, s in enumerate(sockets):
            env = {
                **os.environ,
                "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": index}}
                ),
            }
            logs.append(
                (
                    open(folder / f"worker{index}.out", "w+"),
                    open(folder / f"worker{index}.err", "w+"),
                )
            )
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        TWO_WORKERS,
                        str(shards),
                        str(folder / f"run{index}"),
                        str(folder / f"weights{index}.npz"),
                        str(s.fileno()),
                    ],
                    env=env,
                    stdout=logs[-1][0],
                    stderr=logs[-1][1],
                    pass_fds=[s.fileno()],
                )
            )
    finally:
        for s in sockets:
            s.close()  # each worker holds its own copy
    deadline = time.time() + 600
    # A worker that fails leaves the other waiting for it: stop the other one then.
    while any(p.poll() is None for p in processes) and time.time() < deadline:
        if any(p.poll() not in (None, 0) for p in processes):
            break
        time.sleep(0.2)
    for p in processes:
        if p.poll() is None:
            p.kill()
        p.wait()
    outputs = []
    for out, err in logs:
        out.seek(0), err.seek(0)
        outputs.append((out.read(), err.read()))
        out.close(), err.close()
    if any(PORT_TAKEN in err for _, err in outputs):
        return None
    return [p.returncode for p in processes], outputs


def test_two_local_workers_end_with_identical_weights_equal_to_the_chiefs(tiny_shards, tmp_path):
    import numpy as np

    for attempt in range(3):
        folder = tmp_path / f"attempt{attempt}"
        folder.mkdir()
        result = _run_two_workers(tiny_shards, folder)
        if result is not None:
            break
    else:
        raise AssertionError("three clusters in a row lost a port to other processes")
    codes, outputs = result
    for code, (_, err) in zip(codes, outputs):
        assert code == 0, err[-3000:]
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert summaries[0] == summaries[1] == {"separator_steps": 4, "critic_steps": 8}
    # Only the chief (worker 0) writes the run directory.
    assert (folder / "run0" / "checkpoints" / "state.json").is_file()
    assert not (folder / "run1").exists()
    weights = [np.load(folder / f"weights{i}.npz") for i in range(2)]
    for key in weights[0].files:
        np.testing.assert_array_equal(weights[0][key], weights[1][key])
    # What the chief saved is what both workers hold.
    model = load_run_model(str(folder / "run0"))
    model.load_weights(folder / "run0" / "checkpoints" / "epoch-00002.weights.h5")
    for saved, held in zip(model.weights, (weights[0][k] for k in weights[0].files)):
        np.testing.assert_array_equal(np.asarray(saved), held)
