"""Training runs: shards -> `AdversarialSeparator.fit` with checkpoints, TensorBoard, early
stopping on validation L_s and resume. The library behind `advsep-tf-train`.

A run directory holds:
    config.json        the full config (checked on --resume, export and separation)
    run.json           the arguments of each invocation
    model.keras        the best model so far by validation L_s (the last one without validation)
    backup/            the latest epoch's weights and optimizer states, for --resume
    logs/              TensorBoard event files
    history.csv        one row of metrics per epoch; training_curves.png plots it
"""

from __future__ import annotations

import json
import math
import os
import time

from advsep_tf.config import Config
from advsep_tf.errors import AdvsepError, ConfigMismatchError

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"


def read_run_config(run_dir: str) -> Config:
    path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise AdvsepError(f"{path}: missing: {run_dir} is not a training run directory")
    try:
        with open(path) as f:
            return Config.from_dict(json.load(f), origin=path)
    except ValueError as exc:
        raise AdvsepError(f"{path}: not a valid config ({exc})") from None


def load_run_model(run_dir: str, expected: Config | None = None):
    """The trained AdversarialSeparator of a run directory (or a .keras file), config-checked."""
    import keras

    from advsep_tf.model import AdversarialSeparator  # noqa: F401 - registers the class

    path = run_dir if run_dir.endswith(".keras") else os.path.join(run_dir, MODEL_FILE)
    if not os.path.isfile(path):
        raise AdvsepError(f"{path}: no trained model there (train first, or point at a .keras file)")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - any failure to deserialise means a bad file
        raise AdvsepError(f"{path}: cannot load the model ({exc.__class__.__name__}: {str(exc)[:200]})") from None
    if expected is not None:
        diffs = expected.differences(model.separation_config, Config.MODEL_SECTIONS)
        if diffs:
            raise ConfigMismatchError(
                f"{path}: model was trained with a different config: "
                f"{model.separation_config.describe_differences(expected, Config.MODEL_SECTIONS)}"
            )
    return model


class _ProgressLines:
    """One line per epoch with step rate and ETA: readable in logs, where a live bar is not."""

    def __init__(self, total_steps: int, steps_per_epoch: int, initial_epoch: int):
        import keras

        outer = self

        class Callback(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                outer.start = time.time()

            def on_epoch_end(self, epoch, logs=None):
                done = (epoch + 1) * steps_per_epoch
                run_steps = done - initial_epoch * steps_per_epoch
                rate = run_steps / max(time.time() - outer.start, 1e-9)
                eta = (total_steps - done) / rate if rate else float("inf")
                shown = {k: v for k, v in (logs or {}).items() if "loss" in k or k.startswith("wasserstein")}
                metrics = " ".join(f"{k}={v:.4g}" for k, v in sorted(shown.items()))
                print(
                    f"step {done}/{total_steps} ({rate:.2f} steps/s, ETA {eta:.0f} s) {metrics}", flush=True
                )

        self.callback = Callback()


def plot_history(csv_path: str, png_path: str) -> None:
    """Training curves (losses and Wasserstein estimates per epoch) as a PNG."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    epochs = [int(r["epoch"]) + 1 for r in rows]
    panels = [
        ("supervised loss L_s", [k for k in rows[0] if k.endswith("supervised_loss")]),
        ("adversarial terms", [k for k in rows[0] if k in ("adversarial_loss", "additive_loss")]),
        ("critics", [k for k in rows[0] if k.startswith(("wasserstein_", "gradient_penalty_"))]),
    ]
    panels = [(t, keys) for t, keys in panels if keys]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
    for ax, (title, keys) in zip(axes[0], panels):
        for key in keys:
            ax.plot(epochs, [float(r[key]) for r in rows], marker="o", label=key)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)


def train(
    config: Config,
    shard_dir: str,
    run_dir: str,
    steps: int | None = None,
    resume: bool = False,
    verbose: int = 2,
) -> dict:
    """Train `config` on the shard set in `shard_dir`, writing the run directory; return a summary."""
    import keras

    from advsep_tf.data_pipelines.readers import training_dataset, validation_dataset, validation_steps
    from advsep_tf.data_pipelines.shards import ShardSet
    from advsep_tf.model import AdversarialSeparator

    shard_set = ShardSet.open(shard_dir, expected=config)
    config_path = os.path.join(run_dir, CONFIG_FILE)
    if os.path.isfile(config_path):
        if not resume:
            raise AdvsepError(f"{run_dir}: already holds a training run (pass --resume to continue it, or choose a new --out)")
        previous = read_run_config(run_dir)
        sections = Config.MODEL_SECTIONS + ("critic", "loss", "optimizer")
        diffs = config.differences(previous, sections) + (
            ["training.mode"] if previous.critic_sources != config.critic_sources else []
        )
        if diffs:
            raise ConfigMismatchError(
                f"{config_path}: run was started with a different config: "
                f"{previous.describe_differences(config, sections) or 'critic sources differ'}"
            )
    os.makedirs(run_dir, exist_ok=True)
    config.save(config_path)
    with open(os.path.join(run_dir, "run.json"), "a") as f:
        f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "shards": os.path.abspath(shard_dir),
                            "steps": steps, "resume": resume}) + "\n")

    keras.utils.set_random_seed(config.training.seed)
    total_steps = steps or config.training.max_steps
    steps_per_epoch = min(config.training.steps_per_epoch, total_steps)
    epochs = math.ceil(total_steps / steps_per_epoch)
    total_steps = epochs * steps_per_epoch

    model = AdversarialSeparator(config)
    model.compile()
    has_validation = shard_set.examples("valid") > 0
    monitor = "val_supervised_loss" if has_validation else "supervised_loss"
    history_csv = os.path.join(run_dir, "history.csv")
    progress = _ProgressLines(total_steps, steps_per_epoch, 0)
    callbacks = [
        # Restores weights, both optimizers' states and the epoch counter after an interruption.
        keras.callbacks.BackupAndRestore(os.path.join(run_dir, "backup"), delete_checkpoint=False),
        keras.callbacks.ModelCheckpoint(
            os.path.join(run_dir, MODEL_FILE), monitor=monitor, mode="min", save_best_only=has_validation
        ),
        keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), update_freq="epoch"),
        keras.callbacks.CSVLogger(history_csv, append=True),
        keras.callbacks.TerminateOnNaN(),
        progress.callback,
    ]
    if has_validation:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode="min", patience=config.training.patience))

    start = time.time()
    history = model.fit(
        training_dataset(shard_set, config),
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        validation_data=validation_dataset(shard_set, config) if has_validation else None,
        validation_steps=validation_steps(shard_set, config) if has_validation else None,
        callbacks=callbacks,
        shuffle=False,  # the tf.data streams shuffle themselves
        verbose=verbose if verbose != 2 else 0,
    )
    elapsed = time.time() - start
    if not os.path.isfile(os.path.join(run_dir, MODEL_FILE)):
        model.save(os.path.join(run_dir, MODEL_FILE))
    if os.path.isfile(history_csv):
        plot_history(history_csv, os.path.join(run_dir, "training_curves.png"))
    final = {k: float(v[-1]) for k, v in history.history.items() if v}
    return {
        "run_dir": run_dir,
        "mode": config.training.mode,
        "critics": config.critic_sources,
        "separator_steps": int(model.optimizer.iterations.numpy()),
        "critic_steps": int(model.critic_optimizer.iterations.numpy()) if model.critic_optimizer else 0,
        "seconds": round(elapsed, 1),
        "final_metrics": final,
        "best_val_supervised_loss": min(history.history.get("val_supervised_loss", [float("nan")]) or [float("nan")]),
    }
