"""Training runs: shards -> `AdversarialSeparator.fit` with checkpoints, TensorBoard, early
stopping on validation L_s and resume. The library behind `advsep-tf-train`.

A run directory holds:
    config.json        the full config (checked on --resume, export and separation)
    run.json           the arguments of each invocation
    model.keras        the best model so far by validation L_s (the last one without validation)
    checkpoints/       the last epochs' weights and optimizer states + state.json, for --resume
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
from advsep_tf.export.atomic import (
    atomic_file,
    check_output_folder,
    remove_stale_temporaries,
    save_figure_atomically,
    write_atomically,
)

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
RUN_FILE = "run.json"


def is_run_dir(path: str) -> bool:
    """Whether `path` is a training run directory (what --out may continue with --resume)."""
    return os.path.isfile(os.path.join(path, CONFIG_FILE)) and os.path.isfile(os.path.join(path, RUN_FILE))


def save_model_atomically(model, path: str) -> None:
    """`model.save(path)`, through a temporary name: a kill never leaves a half-written .keras file."""
    with atomic_file(path, suffix=".keras") as tmp:
        model.save(tmp)


def model_file_problem(path: str) -> str | None:
    """Why the .keras file at `path` cannot be used (missing, or does not load), or None."""
    if not os.path.isfile(path):
        return f"{path}: missing"
    try:
        load_run_model(path)
    except AdvsepError as exc:
        return str(exc)
    return None


def _warn(message: str) -> None:
    import sys

    print(f"warning: {message}", file=sys.stderr, flush=True)


def read_run_config(run_dir: str) -> Config:
    path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise AdvsepError(f"{path}: missing: {run_dir} is not a training run directory")
    try:
        with open(path) as f:
            return Config.from_dict(json.load(f), origin=path)
    except ValueError as exc:
        raise AdvsepError(f"{path}: not a valid config ({exc})") from None


PRETRAINED = "pretrained"


def resolve_model_path(run_dir: str) -> str:
    """`pretrained` names the separator shipped inside the package; anything else is a path."""
    if run_dir == PRETRAINED and not os.path.exists(run_dir):
        from importlib import resources

        path = str(resources.files("advsep_tf") / PRETRAINED)
        if not os.path.isfile(os.path.join(path, MODEL_FILE)):
            raise AdvsepError(f"{path}: this installation has no pretrained model (reinstall advsep-tf)")
        return path
    return run_dir


def load_run_model(run_dir: str, expected: Config | None = None):
    """The trained AdversarialSeparator of a run directory, a .keras file or `pretrained`,
    config-checked."""
    import keras

    from advsep_tf.model import AdversarialSeparator  # noqa: F401 - registers the class

    run_dir = resolve_model_path(run_dir)
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


def best_model_checkpoint(path: str, monitor: str, save_best_only: bool):
    """A callback that saves the model to `path` at each epoch's end when `monitor` improved (always,
    without `save_best_only`), atomically: Keras's ModelCheckpoint writes in place, so a kill during
    its save leaves an empty or truncated file. `best` is the best value so far (None before any)."""
    import keras

    class BestModel(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.path, self.best = path, None

        def on_epoch_end(self, epoch, logs=None):
            current = (logs or {}).get(monitor)
            if save_best_only and current is not None:
                if self.best is not None and not current < self.best:
                    return
                self.best = float(current)
            save_model_atomically(self.model, path)

    return BestModel()


def griffin_lim_phase(magnitude, n_fft: int, n_hop: int, iterations: int = 32):
    """A phase for a (frames, n_fft // 2 + 1) magnitude with no phase of its own (Griffin-Lim)."""
    import tensorflow as tf

    from advsep_tf import spectral

    frames = magnitude.shape[0]
    length = (frames + 1) * n_hop - n_fft
    magnitude = tf.cast(magnitude[None], tf.complex64)
    spectrum = magnitude
    for _ in range(iterations):
        waveform = spectral.istft(spectrum, n_fft, n_hop, length)
        rebuilt = spectral.stft(waveform, n_fft, n_hop)[:, :frames]
        spectrum = magnitude * tf.exp(tf.complex(0.0, tf.math.angle(rebuilt)))
    return spectrum[0], length


def validation_preview(log_dir: str, mixture, sources, config):
    """A callback that logs, at each validation, what people would rather see and hear than read.

    mixture (n, nb_bins, nb_frames, 1) and sources (n, nb_bins, nb_frames, nb_stems): consecutive
    validation patches (patch_hop apart). Logs learning rates of both optimizers, audio of the
    excerpt, its estimates and references (the mixture's phase, from Griffin-Lim: shards hold
    magnitudes only), and images of estimate vs reference spectrograms per source.
    """
    import keras
    import tensorflow as tf

    from advsep_tf import spectral

    spec, rate = config.spectrogram, config.audio.sample_rate
    total = (mixture.shape[0] - 1) * spec.patch_hop + spec.nb_frames

    def to_spectrogram(patches):  # (n, F, T, c) -> (c, F, total)
        return spectral.from_patches(tf.constant(patches), 1, total, spec.patch_hop)[0]

    mixture_log = to_spectrogram(mixture)[0]
    phase_source, length = griffin_lim_phase(
        tf.pad(tf.transpose(tf.math.expm1(mixture_log)), [[0, 0], [0, spec.n_fft // 2 + 1 - spec.nb_bins]]),
        spec.n_fft, spec.n_hop,
    )
    mixture_phase = phase_source[None]

    def to_audio(log_spectrograms):  # (c, F, total) -> (c, length)
        return spectral.reconstruct(log_spectrograms[None], mixture_phase[:, : log_spectrograms.shape[-1]],
                                    spec.n_fft, spec.n_hop, length)[0]

    references = to_spectrogram(sources)
    writer = tf.summary.create_file_writer(os.path.join(log_dir, "preview"))

    class ValidationPreview(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            model = self.model
            estimates = to_spectrogram(model.separator(tf.constant(mixture), training=False).numpy())
            with writer.as_default(step=epoch):
                tf.summary.scalar("learning_rate/separator", float(tf.convert_to_tensor(model.optimizer.learning_rate)))
                if model.critic_optimizer is not None:
                    tf.summary.scalar("learning_rate/critic", float(tf.convert_to_tensor(model.critic_optimizer.learning_rate)))
                tf.summary.audio("mixture", to_audio(mixture_log[None])[:, :, None], rate)
                estimated_audio, reference_audio = to_audio(estimates), to_audio(references)
                for k, source in enumerate(config.sources):
                    tf.summary.audio(f"estimate/{source}", estimated_audio[k][None, :, None], rate)
                    tf.summary.audio(f"reference/{source}", reference_audio[k][None, :, None], rate)
                    pair = tf.stack([references[k], estimates[k]])
                    pair = pair / (tf.reduce_max(pair) + 1e-9)
                    gap = tf.ones([pair.shape[1], 2])
                    image = tf.concat([pair[0], gap, pair[1]], axis=1)  # reference | estimate
                    tf.summary.image(f"spectrogram/{source} (reference | estimate)",
                                     tf.image.flip_up_down(image[:, :, None])[None], max_outputs=1)
            writer.flush()

    return ValidationPreview()


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
    # Keras's CSVLogger writes "NA" in the val_ columns of a run without validation data.
    measured = [k for k in rows[0] if any(r[k] not in ("", "NA") for r in rows)]
    rows = [{k: r[k] for k in measured} for r in rows]
    panels = [
        ("supervised loss L_s", [k for k in rows[0] if k.endswith("supervised_loss")]),
        ("adversarial terms", [k for k in rows[0] if k in ("adversarial_loss", "additive_loss")]),
        ("critics", [k for k in rows[0] if k.startswith(("wasserstein_", "gradient_penalty_"))]),
    ]
    panels = [(t, keys) for t, keys in panels if keys]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
    for ax, (title, keys) in zip(axes[0], panels):
        for key in keys:
            ax.plot(epochs, [float(r[key]) if r[key] not in ("", "NA") else float("nan") for r in rows],
                    marker="o", label=key)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure_atomically(fig, png_path, dpi=100)
    plt.close(fig)


def _preview_patches(shard_set, config: Config, nb_patches: int = 8):
    """The first consecutive validation patches (they come from the first validation track)."""
    import numpy as np

    from advsep_tf.data_pipelines.readers import role_examples

    examples = list(role_examples(shard_set, config, "valid", shuffle=False, repeat=False).take(nb_patches))
    return (np.stack([e["mixture"].numpy() for e in examples]), np.stack([e["sources"].numpy() for e in examples]))


STRATEGIES = ("default", "mirrored", "multi_worker")


def make_strategy(name: str):
    """tf.distribute strategy by name; multi_worker reads the cluster from TF_CONFIG."""
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise AdvsepError("--strategy multi_worker: TF_CONFIG is not set (see README, 'Training at scale')")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise AdvsepError(f"unknown strategy '{name}' (strategies: {', '.join(STRATEGIES)})")


def is_chief() -> bool:
    """True unless TF_CONFIG names this process a non-chief worker (worker 0 is chief without one)."""
    try:
        tf_config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    except ValueError:
        raise AdvsepError("TF_CONFIG: not valid JSON") from None
    task = tf_config.get("task", {})
    if not task or task.get("type") == "chief":
        return True
    return task.get("type") == "worker" and task.get("index", 0) == 0 and "chief" not in tf_config.get("cluster", {})


class RunCheckpoint:
    """Epoch checkpoints a killed run resumes from, written atomically, the last `keep` kept.

    RUN_DIR/checkpoints/epoch-NNNNN.weights.h5 holds the weights and both optimizers' states (step
    counters, Adam moments); state.json, replaced last, describes every kept checkpoint under
    "kept" (epoch, step counter, early-stopping and best-model state) and the newest one at its
    top level. A kill at any point leaves state.json naming complete files. Resuming takes the
    newest checkpoint that loads: a damaged one (or an unreadable state.json) is named in a
    warning and the next older one is taken. The unfinished epoch is redone from its start on
    fresh batches: the streams are infinite and reshuffled, so no example is replayed in order,
    but that epoch's steps are.
    """

    STATE = "state.json"

    def __init__(self, run_dir: str, keep: int, early_stopping=None, best_model=None, write: bool = True):
        import keras

        self.directory = os.path.join(run_dir, "checkpoints")
        self.keep, self.early_stopping, self.best_model, self.write = keep, early_stopping, best_model, write
        self._state: dict | None = None
        self._state_read = False
        outer = self

        class Callback(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                outer.restore(self.model)

            def on_epoch_end(self, epoch, logs=None):
                if outer.write:
                    outer.save(self.model, epoch + 1)

        self.callback = Callback()

    def state(self) -> dict | None:
        """The newest checkpoint's state, or None before the first; read (and warned about) once."""
        if not self._state_read:
            self._state, self._state_read = self._read_state(), True
        return self._state

    def _read_state(self) -> dict | None:
        path = os.path.join(self.directory, self.STATE)
        if not os.path.isfile(path):
            return None
        try:
            with open(path) as f:
                state = json.load(f)
            if not isinstance(state, dict) or not {"epoch", "weights"} <= state.keys():
                raise ValueError("no epoch or weights")
            return state
        except (OSError, ValueError) as exc:
            on_disk = sorted(f for f in os.listdir(self.directory) if f.startswith("epoch-") and f.endswith(".weights.h5"))
            kept = [{"epoch": int(name[len("epoch-"):-len(".weights.h5")]), "weights": name} for name in on_disk]
            _warn(
                f"{path}: corrupt checkpoint state ({exc}); "
                + ("resuming from the checkpoint files alone, without the early-stopping and best-model state"
                   if kept else "and no checkpoint files: starting from the first epoch")
            )
            return {**kept[-1], "kept": kept} if kept else None

    def restore(self, model) -> None:
        state = self.state()
        if state is None:
            return
        broken = []
        for candidate in reversed(state.get("kept") or [state]):  # newest first
            weights = os.path.join(self.directory, candidate["weights"])
            try:
                model.load_weights(weights)
                break
            except Exception as exc:  # noqa: BLE001 - any failure here means an unusable checkpoint
                broken.append(f"{weights}: cannot restore checkpoint ({exc.__class__.__name__}: {str(exc)[:200]})")
        else:
            raise AdvsepError(f"{broken[0]}; no intact older checkpoint in {self.directory}")
        if broken:
            _warn(f"{'; '.join(broken)}; resuming from {candidate['weights']} (epoch {candidate['epoch']}) instead")
        model._initial_epoch = candidate["epoch"]
        if self.early_stopping is not None and candidate.get("early_stopping"):
            for key, value in candidate["early_stopping"].items():
                setattr(self.early_stopping, key, value)
        if self.best_model is not None and candidate.get("best") is not None:
            self.best_model.best = candidate["best"]
            # The best model must be on disk and load, or no later epoch would replace it.
            problem = model_file_problem(self.best_model.path)
            if problem:
                _warn(f"{problem}; the next epoch's model replaces it")
                self.best_model.best = None

    def save(self, model, epoch: int) -> None:
        os.makedirs(self.directory, exist_ok=True)
        name = f"epoch-{epoch:05d}.weights.h5"
        with atomic_file(os.path.join(self.directory, name), suffix=".weights.h5") as tmp:
            model.save_weights(tmp)
        checkpoint = {"epoch": epoch, "weights": name, "separator_steps": int(model.optimizer.iterations.numpy())}
        if self.early_stopping is not None:
            es = self.early_stopping
            checkpoint["early_stopping"] = {
                "wait": int(es.wait), "best": None if es.best is None else float(es.best),
                "best_epoch": int(es.best_epoch),
                "stopped_epoch": int(model.stop_training and epoch or 0),
            }
        if self.best_model is not None:
            best = self.best_model.best
            checkpoint["best"] = None if best is None else float(best)
        previous = self.state() or {}
        earlier = previous.get("kept") or ([{k: v for k, v in previous.items()}] if previous else [])
        # After a fall-back to an older checkpoint, the broken newer ones are not kept.
        kept = ([c for c in earlier if c["epoch"] < epoch] + [checkpoint])[-self.keep:]
        self._state = {**checkpoint, "kept": kept}
        write_atomically(os.path.join(self.directory, self.STATE), json.dumps(self._state, indent=2))
        names = {c["weights"] for c in kept}
        for old in os.listdir(self.directory):
            if old.startswith("epoch-") and old.endswith(".weights.h5") and old not in names:
                os.remove(os.path.join(self.directory, old))


def _open_run_dir(run_dir: str) -> None:
    """Before any work: RUN_DIR is new, empty or a training run, and what killed runs left is gone."""
    check_output_folder(run_dir, is_run_dir, "a training run")
    for folder in (run_dir, os.path.join(run_dir, "checkpoints")):
        remove_stale_temporaries(folder)


def _verified_model_file(run_dir: str, model=None) -> str:
    """The run's model.keras, checked by loading it: written (atomically) from `model` if missing
    or broken. A run reports no model it has not verified."""
    path = os.path.join(run_dir, MODEL_FILE)
    problem = model_file_problem(path)
    if problem and model is not None:
        if os.path.lexists(path):
            _warn(f"{problem}; replaced by the model as it is now (the last epoch's weights)")
        save_model_atomically(model, path)
        problem = model_file_problem(path)
    if problem:
        raise AdvsepError(problem)
    return path


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
) -> dict:
    """Train `config` on the shard set in `shard_dir`, writing the run directory; return a summary.

    `training.batch_size` is the global batch: under a distribution strategy each of R replicas
    takes batch_size / R examples of every stream, and gradients are averaged over all of them.
    Under `multi_worker`, every worker trains; only the chief writes the run directory.
    `callbacks` are extra Keras callbacks. `init` (a run directory, a .keras file or
    `pretrained`) starts a new run from a trained separator and its critics (`warm_start`); a
    resumed run continues from its own checkpoint instead.
    """
    import tensorflow as tf
    import keras

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
        raise AdvsepError("training.teacher_targets (--teacher) needs a model to start from and learn from (--init)")
    init_model = load_init(init, config) if init else None
    chief = is_chief()
    if chief:
        _open_run_dir(run_dir)
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
    if chief:
        os.makedirs(run_dir, exist_ok=True)
        config.save(config_path)
        with open(os.path.join(run_dir, "run.json"), "a") as f:
            f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "shards": os.path.abspath(shard_dir),
                                "steps": steps, "resume": resume, "strategy": strategy}) + "\n")

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
    best_model = best_model_checkpoint(os.path.join(run_dir, MODEL_FILE), monitor, save_best_only=has_validation)
    early_stopping = (
        keras.callbacks.EarlyStopping(monitor=monitor, mode="min", patience=config.training.patience)
        if has_validation
        else None
    )
    checkpoint = RunCheckpoint(run_dir, config.training.checkpoints_kept, early_stopping, best_model, write=chief)
    state = checkpoint.state() if resume else None
    if state and state.get("early_stopping", {}).get("stopped_epoch"):
        print(f"{run_dir}: stopped early at epoch {state['epoch']} (validation L_s stopped improving); nothing to resume")
        if chief:
            _verified_model_file(run_dir)
        return _summary(config, run_dir, model_steps=state["separator_steps"], critic_steps=None, seconds=0.0,
                        final={}, best=state.get("best"))
    initial_epoch = state["epoch"] if state else 0
    if config.training.teacher_targets:
        model.set_teacher(init_model)
    if init_model is not None and not state:
        print(warm_start(model, init_model, config, init))
    progress = _ProgressLines(total_steps, steps_per_epoch, initial_epoch)
    # Order matters: early stopping and the best-model check update their state before the
    # checkpoint records it, and after it restores it at the start.
    extra_callbacks = list(callbacks or [])
    callbacks = [cb for cb in (early_stopping, best_model if chief else None) if cb is not None]
    callbacks += [checkpoint.callback, keras.callbacks.TerminateOnNaN()] + extra_callbacks
    if chief:
        callbacks += [
            keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), update_freq="epoch"),
            keras.callbacks.CSVLogger(history_csv, append=True),
            progress.callback,
        ]
        if has_validation:
            callbacks.append(validation_preview(os.path.join(run_dir, "logs"), *_preview_patches(shard_set, config), config))

    dataset = training_dataset(shard_set, config, random_offsets=config.training.random_offsets,
                               remix_probability=config.training.remix_probability)
    if strategy != "default":
        # Every stream is zipped from several shard lists: shard by element, not by file.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dataset = dataset.with_options(options)
    start = time.time()
    history = model.fit(
        dataset,
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        validation_data=validation_dataset(shard_set, config) if has_validation else None,
        validation_steps=validation_steps(shard_set, config) if has_validation else None,
        callbacks=callbacks,
        shuffle=False,  # the tf.data streams shuffle themselves
        verbose=verbose if verbose != 2 else 0,
    )
    elapsed = time.time() - start
    if chief:
        _verified_model_file(run_dir, model)
        if os.path.isfile(history_csv):
            plot_history(history_csv, os.path.join(run_dir, "training_curves.png"))
    final = {k: float(v[-1]) for k, v in history.history.items() if v}
    return _summary(
        config, run_dir, model_steps=int(model.optimizer.iterations.numpy()),
        critic_steps=int(model.critic_optimizer.iterations.numpy()) if model.critic_optimizer else 0,
        seconds=elapsed, final=final, best=best_model.best if has_validation else None,
        traces=model.train_step_traces,
    )


WEIGHT_SECTIONS = Config.MODEL_SECTIONS + ("critic",)


def load_init(source_path: str, config: Config):
    """The trained model `--init` names, refused (naming the fields) when its weights do not fit
    `config`: other sources, audio, STFT or U-Net size, or another critic section when critics
    are copied."""
    source = load_run_model(source_path)
    previous = source.separation_config
    shared = [s for s in config.critic_sources if s in previous.critic_sources]
    sections = WEIGHT_SECTIONS if shared else Config.MODEL_SECTIONS
    if config.differences(previous, sections):
        raise ConfigMismatchError(
            f"{source_path}: --init model was trained with a config whose weights do not fit this one: "
            f"{previous.describe_differences(config, sections)}"
        )
    return source


def warm_start(model, source, config: Config, source_path: str = "--init model") -> str:
    """Copy a trained separator (`load_init`'s model, or a path to one) and the critics of the
    sources both runs criticise into `model`; return a line saying what was copied."""
    if isinstance(source, str):
        source_path, source = source, load_init(source, config)
    previous = source.separation_config
    shared = [s for s in config.critic_sources if s in previous.critic_sources]
    model.separator.set_weights(source.separator.get_weights())
    source_critics = dict(zip(previous.critic_sources, source.critics))
    for critic, name in zip(model.critics, config.critic_sources):
        if name in source_critics:
            critic.set_weights(source_critics[name].get_weights())
    fresh = [s for s in config.critic_sources if s not in shared]
    return (f"{source_path}: warm start from its separator"
            + (f" and the {', '.join(shared)} critic(s)" if shared else "")
            + (f"; new critic(s) for {', '.join(fresh)}" if fresh else ""))


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
