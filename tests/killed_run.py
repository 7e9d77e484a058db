"""A training run killed with SIGKILL at a fixed point, for the resume tests: run `SCRIPT` with
`python -c SCRIPT SHARDS RUN_DIR EPOCH SECTIONS_JSON [TEACHER]`. It trains the `tiny` preset with
the config sections of SECTIONS_JSON (2 steps an epoch, no early stopping) and kills itself after
the first step of epoch EPOCH (0-based): a kill mid-epoch, at the same point on every run."""

import json
import signal
import subprocess
import sys

SCRIPT = """
import json, os, signal, sys
import keras
from advsep_tf.config import load_config
from advsep_tf.train import train

class KillAfterFirstStepOf(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.kill_epoch, self.epoch = epoch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.kill_epoch:
            os.kill(os.getpid(), signal.SIGKILL)

config = load_config("tiny").replace(**json.loads(sys.argv[4]))
train(config, sys.argv[1], sys.argv[2], steps=400, resume=True, verbose=0,
      teacher=sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] else None,
      callbacks=[KillAfterFirstStepOf(int(sys.argv[3]))])
"""


def resumable_sections(sections: dict | None = None) -> dict:
    """`sections` with 2 steps an epoch and no early stopping, as the killed run trains."""
    sections = dict(sections or {})
    sections["training"] = {**sections.get("training", {}), "steps_per_epoch": 2, "patience": 100}
    return sections


def kill_run(shards, run_dir, epoch: int, sections: dict | None = None, teacher: str = "") -> None:
    """Train in a subprocess until it kills itself in epoch `epoch`; fail if it ends otherwise."""
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            str(shards),
            str(run_dir),
            str(epoch),
            json.dumps(resumable_sections(sections)),
            teacher,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
