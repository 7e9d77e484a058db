"""Reading a SavedModel that `advsep-tf-export --format saved_model` wrote: what `Separator.load`
needs of it, so that separating never imports the exporter (`advsep_tf.export.saved_model`, which
writes the format this module reads: the signatures are described there).
"""

from __future__ import annotations

import json
import os

from advsep_tf.config import Config
from advsep_tf.errors import AdvsepError

# The full config, beside the `config` endpoint that also returns it.
CONFIG_ASSET = "advsep_tf_config.json"


def is_saved_model_export(path: str) -> bool:
    """Whether `path` looks like a SavedModel advsep-tf-export wrote (what --overwrite may
    replace)."""
    return os.path.isfile(os.path.join(path, "saved_model.pb")) and os.path.isfile(
        os.path.join(path, "assets", CONFIG_ASSET)
    )


def read_saved_model(path: str):
    """(loaded SavedModel, its Config)."""
    import tensorflow as tf

    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise AdvsepError(f"{path}: not a SavedModel (no saved_model.pb)")
    loaded = tf.saved_model.load(path)
    if not hasattr(loaded, "config"):
        raise AdvsepError(f"{path}: not an advsep-tf SavedModel (no 'config' endpoint)")
    config_json = loaded.config()["config_json"].numpy().decode()
    return loaded, Config.from_dict(json.loads(config_json), origin=f"{path} (embedded config)")
