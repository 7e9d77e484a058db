"""SavedModel export of the trained separator (no critics) for TF Serving and plain TensorFlow.

Signatures:
    serving_default        waveform (batch, nb_samples, nb_channels) float32 at the model's rate
                           -> {source: (batch, nb_samples, nb_channels)}: STFT, separator,
                           cross-faded patches, mixture phase, inverse STFT, all in the graph
    separate_spectrogram   patches (batch, nb_bins, nb_frames, 1) log1p magnitudes
                           -> {"estimates": (batch, nb_bins, nb_frames, nb_stems)}
    config                 () -> {"config_json": the full config, "version": advsep-tf version}
The config is also written as assets/advsep_tf_config.json. `advsep_tf.saved_model_reader` reads
what this module writes (for `Separator.load`, which never imports the exporter).

The directory is written under a temporary name, reloaded with `tf.saved_model.load`, run on a
fixed probe (`advsep_tf.export.verification.probe`) and compared with the Python separator; it
is renamed into place only within VERIFY_TOLERANCE (max abs), so a failed export leaves nothing.
"""

from __future__ import annotations

import json
import os

from advsep_tf.config import Config
from advsep_tf.files import atomic_output
from advsep_tf.saved_model_reader import CONFIG_ASSET, is_saved_model_export

# Max abs difference (float32 waveform) allowed between the SavedModel and the Python separator.
VERIFY_TOLERANCE = 1e-4
# Length of the verification probe (advsep_tf.export.verification.probe), seconds.
PROBE_SECONDS = 2.5


def export_saved_model(
    model,
    out_dir: str,
    chunk_patches: int | None = None,
    verify: bool = True,
    overwrite: bool = False,
    protected: dict[str, str] | None = None,
) -> dict:
    """Write `model.separator` as a SavedModel at `out_dir` (atomically); return a summary.

    An existing `out_dir` is replaced only with `overwrite` and only if it is an earlier export;
    never when it is or holds the current directory or a `protected` path ({path: what it is}).
    """
    import keras
    import tensorflow as tf

    from advsep_tf import __version__
    from advsep_tf.separate import DEFAULT_CHUNK_PATCHES, Separator, separate_waveforms

    config: Config = model.separation_config
    chunk_patches = chunk_patches or DEFAULT_CHUNK_PATCHES
    separator = model.separator
    spec = config.spectrogram

    archive = keras.export.ExportArchive()
    archive.track(separator)

    def estimate_patches(patches):
        return separator(patches, training=False)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None], tf.float32, name="waveform")])
    def serving(waveform):
        batch, length, channels = tf.unstack(tf.shape(waveform))
        mono = tf.reshape(tf.transpose(waveform, [0, 2, 1]), [batch * channels, length])
        estimates = separate_waveforms(estimate_patches, mono, config, chunk_patches)  # (b*c, K, n)
        estimates = tf.reshape(estimates, [batch, channels, config.nb_stems, length])
        return {
            s: tf.transpose(estimates[:, :, k], [0, 2, 1]) for k, s in enumerate(config.sources)
        }

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, spec.nb_bins, spec.nb_frames, 1], tf.float32, name="patches")
        ]
    )
    def separate_spectrogram(patches):
        return {"estimates": estimate_patches(patches)}

    config_json = json.dumps(config.to_dict())

    @tf.function(input_signature=[])
    def config_endpoint():
        return {"config_json": tf.constant(config_json), "version": tf.constant(__version__)}

    archive.add_endpoint("serving_default", serving)
    archive.add_endpoint("separate_spectrogram", separate_spectrogram)
    archive.add_endpoint("config", config_endpoint)

    out_dir = out_dir.rstrip("/") or out_dir
    with atomic_output(
        out_dir,
        directory=True,
        overwrite=overwrite,
        looks_like=is_saved_model_export,
        what="an earlier SavedModel export",
        protected=protected,
    ) as tmp_dir:
        archive.write_out(tmp_dir, verbose=False)
        os.makedirs(os.path.join(tmp_dir, "assets"), exist_ok=True)
        with open(os.path.join(tmp_dir, "assets", CONFIG_ASSET), "w") as f:
            f.write(config_json)
        summary = {"path": out_dir, "bytes": _tree_size(tmp_dir)}
        if verify:
            summary.update(
                _verify(
                    tmp_dir, out_dir, Separator(estimate_patches, config, chunk_patches), config
                )
            )
    return summary


def _tree_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def _verify(path: str, final_path: str, reference, config: Config) -> dict:
    """Reload the written SavedModel and compare its serving output with the Python separator."""
    import tensorflow as tf

    from advsep_tf.export import verification

    rate = config.audio.sample_rate
    probe, truth = verification.probe(config.sources, rate, PROBE_SECONDS)
    loaded = tf.saved_model.load(path)
    served = loaded.signatures["serving_default"](waveform=tf.constant(probe[None, :, None]))
    exported = {s: served[s].numpy()[0, :, 0] for s in config.sources}
    result = verification.compare(reference.separate(probe, rate), exported, truth)
    verification.judge(final_path, result, max_abs=VERIFY_TOLERANCE)
    result.update(tolerance=f"max abs <= {VERIFY_TOLERANCE:g}", probe_seconds=PROBE_SECONDS)
    return result
