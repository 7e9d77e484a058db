"""Training run directories: what they hold, loading their model, and the checkpoint state a
killed or finished run resumes from.

A run directory holds:
    config.json        the full config (checked on --resume, export and separation)
    run.json           the arguments of each invocation, one JSON line each
    model.keras        the best model so far by validation L_s (the last one without validation)
    checkpoints/       the last epochs' weights and optimizer states + state.json, for --resume
    logs/              TensorBoard event files (advsep_tf.training_report)
    history.csv        one row of metrics per epoch; training_curves.png plots it

`load_run_model` is all that separation and export need; `train` (advsep_tf.train) writes the
rest through `open_run_dir`, `record_invocation`, `BestModelCheckpoint` and `RunCheckpoint`.
"""

from __future__ import annotations

import json
import os
import sys
import time

import keras

from advsep_tf.config import PRETRAINED, Config
from advsep_tf.errors import AdvsepError, ConfigMismatchError
from advsep_tf.files import (
    atomic_file,
    check_output_folder,
    load_json_or_yaml,
    remove_stale_temporaries,
    write_atomically,
)

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
RUN_FILE = "run.json"
CHECKPOINT_FOLDER = "checkpoints"
# What a resumed run must share with the run it continues: the weights' shapes, and what the
# optimizer states and the losses mean.
RESUME_SECTIONS = Config.MODEL_SECTIONS + ("critic", "loss", "optimizer")
# What a warm start (--init) must share with the model it copies when critics are copied too.
WEIGHT_SECTIONS = Config.MODEL_SECTIONS + ("critic",)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


# -- the run directory
# ------------------------------------------------------------------------------


def is_run_dir(path: str) -> bool:
    """Whether `path` is a training run directory (what --out may continue with --resume)."""
    return os.path.isfile(os.path.join(path, CONFIG_FILE)) and os.path.isfile(
        os.path.join(path, RUN_FILE)
    )


def open_run_dir(run_dir: str) -> None:
    """Before any work: RUN_DIR is new, empty or a training run, and what killed runs left is
    gone."""
    check_output_folder(run_dir, is_run_dir, "a training run")
    for folder in (run_dir, os.path.join(run_dir, CHECKPOINT_FOLDER)):
        remove_stale_temporaries(folder)


def read_run_config(run_dir: str) -> Config:
    path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise AdvsepError(f"{path}: missing: {run_dir} is not a training run directory")
    data = load_json_or_yaml(path, "run config")
    try:
        return Config.from_dict(data, origin=path)
    except ValueError as exc:
        raise AdvsepError(f"{path}: not a valid config ({exc})") from None


def check_resumable(run_dir: str, config: Config, resume: bool) -> None:
    """Refuse to write over a run unless resuming it, and to resume it with another config."""
    config_path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.isfile(config_path):
        return
    if not resume:
        raise AdvsepError(
            f"{run_dir}: already holds a training run (pass --resume to continue it, or choose a "
            f"new --out)"
        )
    previous = read_run_config(run_dir)
    diffs = config.differences(previous, RESUME_SECTIONS) + (
        ["training.mode"] if previous.critic_sources != config.critic_sources else []
    )
    if diffs:
        raise ConfigMismatchError(
            f"{config_path}: run was started with a different config: "
            f"{previous.describe_differences(config, RESUME_SECTIONS) or 'critic sources differ'}"
        )


def record_invocation(run_dir: str, config: Config, **arguments) -> None:
    """Write the config and append this invocation's arguments to run.json."""
    os.makedirs(run_dir, exist_ok=True)
    config.save(os.path.join(run_dir, CONFIG_FILE))
    with open(os.path.join(run_dir, RUN_FILE), "a") as f:
        f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **arguments}) + "\n")


# -- the model file -------------------------------------------------------------------------------


def resolve_model_path(run_dir: str) -> str:
    """`pretrained` names the separator shipped inside the package; anything else is a path."""
    if run_dir == PRETRAINED and not os.path.exists(run_dir):
        from importlib import resources

        path = str(resources.files("advsep_tf") / PRETRAINED)
        if not os.path.isfile(os.path.join(path, MODEL_FILE)):
            raise AdvsepError(
                f"{path}: this installation has no pretrained model (reinstall advsep-tf)"
            )
        return path
    return run_dir


def load_run_model(run_dir: str, expected: Config | None = None):
    """The trained AdversarialSeparator of a run directory, a .keras file or `pretrained`,
    config-checked."""
    from advsep_tf.model import AdversarialSeparator  # noqa: F401 - registers the class

    run_dir = resolve_model_path(run_dir)
    path = run_dir if run_dir.endswith(".keras") else os.path.join(run_dir, MODEL_FILE)
    if not os.path.isfile(path):
        raise AdvsepError(
            f"{path}: no trained model there (train first, or point at a .keras file)"
        )
    import zipfile

    # Keras calls a file it cannot open as a zip archive "not found", even when it is there.
    if not zipfile.is_zipfile(path):
        raise AdvsepError(
            f"{path}: damaged model file ({os.path.getsize(path)} bytes, not a "
            "complete .keras archive: truncated or overwritten)"
        )
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - any failure to deserialise means a bad file
        raise AdvsepError(
            f"{path}: cannot load the model ({exc.__class__.__name__}: {str(exc)[:200]})"
        ) from None
    if expected is not None:
        diffs = expected.differences(model.separation_config, Config.MODEL_SECTIONS)
        if diffs:
            raise ConfigMismatchError(
                f"{path}: model was trained with a different config: "
                f"{model.separation_config.describe_differences(expected, Config.MODEL_SECTIONS)}"
            )
    return model


def ensemble_of(models: list, names: list[str] | None = None):
    """One separator (supervised, no critics) whose `separator.members` are the separators of
    `models`, trained runs of one config, in order: their estimates are averaged. One model: a
    copy of its separator alone."""
    from advsep_tf.model import AdversarialSeparator

    names = names or [f"model {i + 1}" for i in range(len(models))]
    first = models[0].separation_config
    for name, model in zip(names[1:], models[1:]):
        diffs = first.differences(model.separation_config, Config.MODEL_SECTIONS)
        if diffs:
            raise ConfigMismatchError(
                f"{name}: its separator differs from {names[0]}'s in {', '.join(diffs)}"
            )
    if len(models) > 1 and first.separator.members != 1:
        raise AdvsepError(
            f"{names[0]}: already an ensemble; the members of one must be single U-Nets"
        )
    members = len(models) if len(models) > 1 else first.separator.members
    config = first.replace(
        training={"mode": "supervised", "critics": []}, separator={"members": members}
    )
    ensemble = AdversarialSeparator(config)
    if len(models) == 1:
        ensemble.separator.set_weights(models[0].separator.get_weights())
    for i, model in enumerate(models if len(models) > 1 else []):
        ensemble.separator.get_layer(f"member{i}").set_weights(model.separator.get_weights())
    return ensemble


def save_model_atomically(model, path: str) -> None:
    """`model.save(path)`, through a temporary name: a kill never leaves a half-written .keras
    file."""
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


def verified_model_file(run_dir: str, model=None) -> str:
    """The run's model.keras, checked by loading it: written (atomically) from `model` if missing
    or broken. A run reports no model it has not verified."""
    path = os.path.join(run_dir, MODEL_FILE)
    problem = model_file_problem(path)
    if problem and model is not None:
        if os.path.lexists(path):
            warn(f"{problem}; replaced by the model as it is now (the last epoch's weights)")
        with model.averaged_weights():
            save_model_atomically(model, path)
        problem = model_file_problem(path)
    if problem:
        raise AdvsepError(problem)
    return path


class BestModelCheckpoint(keras.callbacks.Callback):
    """Saves the model to `path` at each epoch's end when `monitor` improved (always, without
    `save_best_only`), atomically: Keras's ModelCheckpoint writes in place, so a kill during its
    save leaves an empty or truncated file. `best` is the best value so far (None before any).
    With training.ema_decay the file holds the averaged weights, which validation scored
    (`ValidateAveragedWeights`)."""

    def __init__(self, path: str, monitor: str, save_best_only: bool):
        super().__init__()
        self.path, self.monitor, self.save_best_only = path, monitor, save_best_only
        self.best = None

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if self.save_best_only and current is not None:
            if self.best is not None and not current < self.best:
                return
            self.best = float(current)
        with self.model.averaged_weights():
            save_model_atomically(self.model, self.path)


class ValidateAveragedWeights(keras.callbacks.Callback):
    """Validation (and so early stopping) scores the separator's averaged weights
    (training.ema_decay), the ones the run saves; training goes on from its own."""

    def on_test_begin(self, logs=None):
        self.model.swap_averaged_weights()

    def on_test_end(self, logs=None):
        self.model.swap_averaged_weights()


# -- checkpoints ----------------------------------------------------------------------------------


class RunCheckpoint(keras.callbacks.Callback):
    """Epoch checkpoints a killed run resumes from, written atomically, the last `keep` kept.

    RUN_DIR/checkpoints/epoch-NNNNN.weights.h5 holds the weights and both optimizers' states (step
    counters, Adam moments); state.json, replaced last, describes every kept checkpoint under
    "kept" (epoch, step counter, early-stopping and best-model state) and the newest one at its
    top level. A kill at any point leaves state.json naming complete files. Resuming takes the
    newest checkpoint that loads: a damaged one (or an unreadable state.json) is named in a
    warning and the next older one is taken. The unfinished epoch is redone from its start on
    fresh batches: the streams are infinite and reshuffled, so no example is replayed in order,
    but that epoch's steps are.

    Before `fit`, `restore(model)` loads the weights and returns the epoch to pass as
    `fit(initial_epoch=...)`. At the start of training, after EarlyStopping has reset itself,
    this callback puts back the early-stopping and best-model state of that checkpoint: it must
    come after both in the callback list. At each epoch's end (after both have updated their
    state) it writes the next checkpoint, unless `write` is False (a non-chief worker).
    """

    STATE = "state.json"

    def __init__(
        self, run_dir: str, keep: int, early_stopping=None, best_model=None, write: bool = True
    ):
        super().__init__()
        self.directory = os.path.join(run_dir, CHECKPOINT_FOLDER)
        self.keep, self.early_stopping, self.best_model, self.write = (
            keep,
            early_stopping,
            best_model,
            write,
        )
        self._state: dict | None = None
        self._state_read = False
        self._restored: dict | None = None

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
            on_disk = sorted(
                f
                for f in os.listdir(self.directory)
                if f.startswith("epoch-") and f.endswith(".weights.h5")
            )
            kept = [
                {"epoch": int(name[len("epoch-") : -len(".weights.h5")]), "weights": name}
                for name in on_disk
            ]
            warn(
                f"{path}: corrupt checkpoint state ({exc}); "
                + (
                    "resuming from the checkpoint files alone, without the early-stopping and "
                    "best-model state"
                    if kept
                    else "and no checkpoint files: starting from the first epoch"
                )
            )
            return {**kept[-1], "kept": kept} if kept else None

    def restore(self, model) -> int:
        """Load the newest checkpoint that loads into `model`; return its epoch (0 without one)."""
        state = self.state()
        if state is None:
            return 0
        broken = []
        for candidate in reversed(state.get("kept") or [state]):  # newest first
            weights = os.path.join(self.directory, candidate["weights"])
            try:
                model.load_weights(weights)
                break
            except Exception as exc:  # noqa: BLE001 - any failure here means an unusable checkpoint
                broken.append(
                    f"{weights}: cannot restore checkpoint ({exc.__class__.__name__}: "
                    f"{str(exc)[:200]})"
                )
        else:
            raise AdvsepError(f"{broken[0]}; no intact older checkpoint in {self.directory}")
        if broken:
            warn(
                f"{'; '.join(broken)}; resuming from {candidate['weights']} (epoch "
                f"{candidate['epoch']}) instead"
            )
        self._restored = candidate
        return candidate["epoch"]

    def on_train_begin(self, logs=None):
        candidate = self._restored
        if candidate is None:
            return
        if self.early_stopping is not None and candidate.get("early_stopping"):
            for key, value in candidate["early_stopping"].items():
                setattr(self.early_stopping, key, value)
        if self.best_model is not None and candidate.get("best") is not None:
            self.best_model.best = candidate["best"]
            # The best model must be on disk and load, or no later epoch would replace it.
            problem = model_file_problem(self.best_model.path)
            if problem:
                warn(f"{problem}; the next epoch's model replaces it")
                self.best_model.best = None

    def on_epoch_end(self, epoch, logs=None):
        if self.write:
            self.save(self.model, epoch + 1)

    def save(self, model, epoch: int) -> None:
        os.makedirs(self.directory, exist_ok=True)
        name = f"epoch-{epoch:05d}.weights.h5"
        with atomic_file(os.path.join(self.directory, name), suffix=".weights.h5") as tmp:
            model.save_weights(tmp)
        checkpoint = {
            "epoch": epoch,
            "weights": name,
            "separator_steps": int(model.optimizer.iterations.numpy()),
        }
        if self.early_stopping is not None:
            es = self.early_stopping
            checkpoint["early_stopping"] = {
                "wait": int(es.wait),
                "best": None if es.best is None else float(es.best),
                "best_epoch": int(es.best_epoch),
                "stopped_epoch": int(model.stop_training and epoch or 0),
            }
        if self.best_model is not None:
            best = self.best_model.best
            checkpoint["best"] = None if best is None else float(best)
        previous = self.state() or {}
        earlier = previous.get("kept") or (
            [{k: v for k, v in previous.items()}] if previous else []
        )
        # After a fall-back to an older checkpoint, the broken newer ones are not kept.
        kept = ([c for c in earlier if c["epoch"] < epoch] + [checkpoint])[-self.keep :]
        self._state = {**checkpoint, "kept": kept}
        write_atomically(
            os.path.join(self.directory, self.STATE), json.dumps(self._state, indent=2)
        )
        names = {c["weights"] for c in kept}
        for old in os.listdir(self.directory):
            if old.startswith("epoch-") and old.endswith(".weights.h5") and old not in names:
                os.remove(os.path.join(self.directory, old))


# -- warm starts ----------------------------------------------------------------------------------


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
            f"{source_path}: --init model was trained with a config whose weights do not fit this "
            f"one: "
            f"{previous.describe_differences(config, sections)}"
        )
    return source


def load_teacher(source_path: str, config: Config):
    """The frozen teacher of the pseudo-label term: any trained model (a run directory, a .keras
    file, an ensemble or `pretrained`) whose estimates have this config's layout (sources, audio
    and spectrogram); its U-Net may differ in size."""
    source = load_run_model(source_path)
    sections = ("sources", "audio", "spectrogram")
    if config.differences(source.separation_config, sections):
        raise ConfigMismatchError(
            f"{source_path}: teacher model's estimates do not have this config's layout: "
            f"{source.separation_config.describe_differences(config, sections)}"
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
    return (
        f"{source_path}: warm start from its separator"
        + (f" and the {', '.join(shared)} critic(s)" if shared else "")
        + (f"; new critic(s) for {', '.join(fresh)}" if fresh else "")
    )
