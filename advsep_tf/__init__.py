"""advsep-tf: adversarial semi-supervised music source separation in TensorFlow/Keras.

Stoller, Ewert & Dixon, "Adversarial Semi-Supervised Audio Source Separation applied to Singing
Voice Extraction", ICASSP 2018: a U-Net separator trained on scarce paired data, plus one
Wasserstein critic per source on unpaired mixtures and solo recordings.

The public API (`__all__`), imported when first used, so that `import advsep_tf` (and every
command's --help) stays fast and imports no TensorFlow:

    >>> from advsep_tf import Separator
    >>> stems = Separator.load("pretrained").separate(waveform, sample_rate)

- `Separator`: separate songs with a trained model (`advsep_tf.separate`)
- `AdversarialSeparator`: the model that trains (`advsep_tf.model`)
- `Config`, `load_config`, `preset_names`: configurations and their presets (`advsep_tf.config`)
- `prepare`, `ShardSet`: datasets to TFRecord shards, and a shard set read back
  (`advsep_tf.data_pipelines`)
- `AdvsepError`: what the package raises for bad input, one line naming the culprit

Importing prints nothing: TensorFlow's C++ start-up logging is silenced unless you set
TF_CPP_MIN_LOG_LEVEL yourself (`advsep_tf.tensorflow_logging`).
"""

import importlib
import os

from advsep_tf import tensorflow_logging

# oneDNN is off by default on some x86 CPUs; measured 1.65x faster training and 1.7x faster batched
# inference with it on. It only takes effect if set before TensorFlow is imported.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
tensorflow_logging.install()

__version__ = "0.1.0"

# Each public name and the module that defines it.
_EXPORTS = {
    "Separator": "advsep_tf.separate",
    "AdversarialSeparator": "advsep_tf.model",
    "Config": "advsep_tf.config",
    "load_config": "advsep_tf.config",
    "preset_names": "advsep_tf.config",
    "prepare": "advsep_tf.data_pipelines.prepare",
    "ShardSet": "advsep_tf.data_pipelines.shards",
    "AdvsepError": "advsep_tf.errors",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # once
        return value
    raise AttributeError(f"module 'advsep_tf' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__})
