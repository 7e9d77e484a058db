"""Training runs: shards -> `AdversarialSeparator.fit` with checkpoints, TensorBoard, early
stopping on validation L_s and resume. The library behind `advsep-tf-train`.

What the run directory holds, and the checkpoints it resumes from: advsep_tf.runs. What the run
shows while it trains (progress lines, TensorBoard previews, curves): advsep_tf.training_report.
"""

from __future__ import annotations

import json
import math
import os
import time

from advsep_tf import runs
from advsep_tf.config import STRATEGIES, Config
from advsep_tf.errors import AdvsepError


def make_strategy(name: str):
    """tf.distribute strategy by name; multi_worker reads the cluster from TF_CONFIG."""
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise AdvsepError(
                "--strategy multi_worker: TF_CONFIG is not set (see README, 'Training at scale')"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise AdvsepError(f"unknown strategy '{name}' (strategies: {', '.join(STRATEGIES)})")


def is_chief() -> bool:
    """True unless TF_CONFIG names this process a non-chief worker (worker 0 is chief without
    one)."""
    try:
        tf_config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    except ValueError:
        raise AdvsepError("TF_CONFIG: not valid JSON") from None
    task = tf_config.get("task", {})
    if not task or task.get("type") == "chief":
        return True
    return (
        task.get("type") == "worker"
        and task.get("index", 0) == 0
        and "chief" not in tf_config.get("cluster", {})
    )


def train(
    config: Config,
    shard_dir: str,
    run_dir: str,
    steps: int | None = None,
    resume: bool = False,
    verbose: int = 2,
    strategy: str = "default",
    callbacks: list | None = None,
    init: str | None = None,
    teacher: str | None = None,
) -> dict:
    """Train `config` on the shard set in `shard_dir`, writing the run directory; return a summary.

    `training.batch_size` is the global batch: under a distribution strategy each of R replicas
    takes batch_size / R examples of every stream, and gradients are averaged over all of them.
    Under `multi_worker`, every worker trains; only the chief writes the run directory.
    `callbacks` are extra Keras callbacks. `init` (a run directory, a .keras file or
    `pretrained`) starts a new run from a trained separator and its critics (`runs.warm_start`); a
    resumed run continues from its own checkpoint instead. `teacher` (the same kinds of names;
    default: `init`) labels unlabelled mixtures for `training.pseudo_label_weight` and
    `training.teacher_targets`.
    """
    import tensorflow as tf
    import keras

    from advsep_tf import training_report
    from advsep_tf.data_pipelines.readers import (
        check_training_roles,
        training_dataset,
        validation_dataset,
        validation_steps,
    )
    from advsep_tf.data_pipelines.shards import ShardSet
    from advsep_tf.model import AdversarialSeparator

    shard_set = ShardSet.open(shard_dir, expected=config)
    check_training_roles(shard_set, config)  # before the run directory is written
    if config.training.teacher_targets and not init:
        raise AdvsepError(
            "training.teacher_targets (--teacher) needs a model to start from and learn from "
            "(--init)"
        )
    if config.training.pseudo_label_weight > 0 and not (teacher or init):
        raise AdvsepError(
            "training.pseudo_label_weight needs a teacher to label the unlabelled mixtures "
            "(--teacher-model, or --init)"
        )
    init_model = runs.load_init(init, config) if init else None
    teacher_model = runs.load_teacher(teacher, config) if teacher else init_model
    chief = is_chief()
    if chief:
        runs.open_run_dir(run_dir)
    runs.check_resumable(run_dir, config, resume)
    if chief:
        runs.record_invocation(
            run_dir,
            config,
            shards=os.path.abspath(shard_dir),
            steps=steps,
            resume=resume,
            strategy=strategy,
            init=init,
            teacher=teacher,
        )

    keras.utils.set_random_seed(config.training.seed)
    total_steps = steps or config.training.max_steps
    steps_per_epoch = min(config.training.steps_per_epoch, total_steps)
    epochs = math.ceil(total_steps / steps_per_epoch)
    total_steps = epochs * steps_per_epoch

    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.training.precision)
    try:
        with make_strategy(strategy).scope():
            model = AdversarialSeparator(config)
            model.compile(jit_compile=config.training.jit_compile)
    finally:
        keras.config.set_dtype_policy(previous_policy)

    has_validation = shard_set.examples("valid") > 0
    monitor = "val_supervised_loss" if has_validation else "supervised_loss"
    history_csv = os.path.join(run_dir, "history.csv")
    best_model = runs.BestModelCheckpoint(
        os.path.join(run_dir, runs.MODEL_FILE), monitor, save_best_only=has_validation
    )
    early_stopping = (
        keras.callbacks.EarlyStopping(
            monitor=monitor, mode="min", patience=config.training.patience
        )
        if has_validation
        else None
    )
    checkpoint = runs.RunCheckpoint(
        run_dir, config.training.checkpoints_kept, early_stopping, best_model, write=chief
    )
    state = checkpoint.state() if resume else None
    if state and state.get("early_stopping", {}).get("stopped_epoch"):
        print(
            f"{run_dir}: stopped early at epoch {state['epoch']} (validation L_s stopped "
            f"improving); nothing to resume"
        )
        if chief:
            runs.verified_model_file(run_dir)
        return _summary(
            config,
            run_dir,
            model_steps=state["separator_steps"],
            critic_steps=None,
            seconds=0.0,
            final={},
            best=state.get("best"),
        )
    # The newest checkpoint that loads: not always the one `state` names (see RunCheckpoint).
    initial_epoch = checkpoint.restore(model) if state else 0
    if config.training.teacher_targets or config.training.pseudo_label_weight > 0:
        model.set_teacher(teacher_model)
    if init_model is not None and not state:
        print(runs.warm_start(model, init_model, config, init))
    # Order matters: early stopping and the best-model check update their state before the
    # checkpoint records it, and reset it at the start before the checkpoint puts it back.
    extra_callbacks = list(callbacks or [])
    callbacks = [cb for cb in (early_stopping, best_model if chief else None) if cb is not None]
    callbacks += [checkpoint, keras.callbacks.TerminateOnNaN()] + extra_callbacks
    if model.weight_averages and has_validation:
        callbacks.append(runs.ValidateAveragedWeights())
    if chief:
        callbacks += [
            keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), update_freq="epoch"),
            keras.callbacks.CSVLogger(history_csv, append=True),
            training_report.ProgressLines(total_steps, steps_per_epoch, initial_epoch),
        ]
        if has_validation:
            mixture, sources = training_report.preview_patches(shard_set, config)
            callbacks.append(
                training_report.ValidationPreview(
                    os.path.join(run_dir, "logs"), mixture, sources, config
                )
            )

    dataset = training_dataset(shard_set, config)  # augmentations as config.training asks
    if strategy != "default":
        # Every stream is zipped from several shard lists: shard by element, not by file.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        dataset = dataset.with_options(options)
    start = time.time()
    history = model.fit(
        dataset,
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        initial_epoch=initial_epoch,
        validation_data=validation_dataset(shard_set, config) if has_validation else None,
        validation_steps=validation_steps(shard_set, config) if has_validation else None,
        callbacks=callbacks,
        shuffle=False,  # the tf.data streams shuffle themselves
        verbose=verbose if verbose != 2 else 0,
    )
    elapsed = time.time() - start
    if chief:
        runs.verified_model_file(run_dir, model)
        if os.path.isfile(history_csv):
            training_report.plot_history(history_csv, os.path.join(run_dir, "training_curves.png"))
    final = {k: float(v[-1]) for k, v in history.history.items() if v}
    return _summary(
        config,
        run_dir,
        model_steps=int(model.optimizer.iterations.numpy()),
        critic_steps=int(model.critic_optimizer.iterations.numpy())
        if model.critic_optimizer
        else 0,
        seconds=elapsed,
        final=final,
        best=best_model.best if has_validation else None,
        traces=model.train_step_traces,
    )


def _summary(config, run_dir, model_steps, critic_steps, seconds, final, best, traces=None) -> dict:
    return {
        "run_dir": run_dir,
        "mode": config.training.mode,
        "critics": config.critic_sources,
        "separator_steps": model_steps,
        "critic_steps": critic_steps,
        "seconds": round(seconds, 1),
        "final_metrics": final,
        "best_val_supervised_loss": best if best is not None else float("nan"),
        "train_step_traces": traces,
    }
