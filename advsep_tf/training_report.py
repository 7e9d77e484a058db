"""What a training run shows people while and after it trains: one progress line per epoch,
TensorBoard previews (audio, spectrograms, learning rates) of a validation excerpt, and the
training curves as a PNG. Nothing here changes what is trained or saved for resuming
(advsep_tf.runs); `advsep_tf.train` adds these callbacks on the chief only.
"""

from __future__ import annotations

import os
import time

import keras

from advsep_tf.config import Config
from advsep_tf.files import write_figure


class ProgressLines(keras.callbacks.Callback):
    """One line per epoch with step rate and ETA: readable in logs, where a live bar is not."""

    def __init__(self, total_steps: int, steps_per_epoch: int, initial_epoch: int):
        super().__init__()
        self.total_steps, self.steps_per_epoch, self.initial_epoch = (
            total_steps,
            steps_per_epoch,
            initial_epoch,
        )
        self.start = time.time()

    def on_train_begin(self, logs=None):
        self.start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        done = (epoch + 1) * self.steps_per_epoch
        run_steps = done - self.initial_epoch * self.steps_per_epoch
        rate = run_steps / max(time.time() - self.start, 1e-9)
        eta = (self.total_steps - done) / rate if rate else float("inf")
        shown = {
            k: v for k, v in (logs or {}).items() if "loss" in k or k.startswith("wasserstein")
        }
        metrics = " ".join(f"{k}={v:.4g}" for k, v in sorted(shown.items()))
        print(
            f"step {done}/{self.total_steps} ({rate:.2f} steps/s, ETA {eta:.0f} s) {metrics}",
            flush=True,
        )


def audio_summary(name: str, waveform, sample_rate: int) -> None:
    """What `tf.summary.audio(name, waveform[None, :, None], sample_rate)` writes (one WAV clip,
    no label), for a (samples,) waveform.

    tf.summary.audio transposes a tensor of strings, and with oneDNN on that makes TensorFlow's
    C++ side print "oneDNN supports DT_STRING only on platforms with AVX-512" in every run; this
    stacks the same (1, 2) tensor directly.
    """
    import tensorflow as tf
    from tensorboard.plugins.audio import metadata

    wav = tf.audio.encode_wav(waveform[:, None], sample_rate)
    summary_metadata = metadata.create_summary_metadata(
        display_name=None, description=None, encoding=metadata.Encoding.Value("WAV")
    )
    tf.summary.write(name, tf.stack([wav, tf.constant("")])[None], metadata=summary_metadata)


def preview_patches(shard_set, config: Config, nb_patches: int = 8):
    """The first consecutive validation patches (they come from the first validation track):
    mixture (n, nb_bins, nb_frames, 1) and sources (n, nb_bins, nb_frames, nb_stems)."""
    import numpy as np

    from advsep_tf.data_pipelines.readers import role_examples

    examples = list(
        role_examples(shard_set, config, "valid", shuffle=False, repeat=False).take(nb_patches)
    )
    return (
        np.stack([e["mixture"].numpy() for e in examples]),
        np.stack([e["sources"].numpy() for e in examples]),
    )


class ValidationPreview(keras.callbacks.Callback):
    """Logs, at each validation, what people would rather see and hear than read.

    mixture (n, nb_bins, nb_frames, 1) and sources (n, nb_bins, nb_frames, nb_stems): consecutive
    validation patches (patch_hop apart, `preview_patches`). Logs learning rates of both
    optimizers, audio of the excerpt, its estimates and references (the mixture's phase, from
    Griffin-Lim: shards hold magnitudes only), and images of estimate vs reference spectrograms
    per source, under LOG_DIR/preview.
    """

    def __init__(self, log_dir: str, mixture, sources, config: Config):
        import tensorflow as tf

        from advsep_tf import filtering, transforms

        super().__init__()
        spec = config.spectrogram
        self.config, self.mixture = config, mixture
        self.stft = transforms.STFT.from_config(spec)
        self.total = (mixture.shape[0] - 1) * spec.patch_hop + spec.nb_frames
        self.mixture_log = self._to_spectrogram(mixture)[0]
        self.mixture_real, self.mixture_imag, self.length = filtering.griffin_lim(
            tf.pad(
                tf.transpose(tf.math.expm1(self.mixture_log)),
                [[0, 0], [0, spec.n_fft // 2 + 1 - spec.nb_bins]],
            ),
            self.stft,
        )
        self.references = self._to_spectrogram(sources)
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "preview"))

    def _to_spectrogram(
        self, patches
    ):  # (n, F, T, c) -> (c, F, total): the separation's cross-fade
        import tensorflow as tf

        from advsep_tf import transforms

        return transforms.from_patches(
            tf.constant(patches), 1, self.total, self.config.spectrogram.patch_hop
        )[0]

    def _to_audio(
        self, log_spectrograms
    ):  # (c, F, total) -> (c, length), with the Griffin-Lim phase
        return self.stft.reconstruct(
            log_spectrograms[None], self.mixture_real, self.mixture_imag, self.length
        )[0]

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        model, rate = self.model, self.config.audio.sample_rate
        estimates = self._to_spectrogram(
            model.separator(tf.constant(self.mixture), training=False).numpy()
        )
        with self.writer.as_default(step=epoch):
            tf.summary.scalar(
                "learning_rate/separator",
                float(tf.convert_to_tensor(model.optimizer.learning_rate)),
            )
            if model.critic_optimizer is not None:
                tf.summary.scalar(
                    "learning_rate/critic",
                    float(tf.convert_to_tensor(model.critic_optimizer.learning_rate)),
                )
            audio_summary("mixture", self._to_audio(self.mixture_log[None])[0], rate)
            estimated_audio, reference_audio = (
                self._to_audio(estimates),
                self._to_audio(self.references),
            )
            for k, source in enumerate(self.config.sources):
                audio_summary(f"estimate/{source}", estimated_audio[k], rate)
                audio_summary(f"reference/{source}", reference_audio[k], rate)
                pair = tf.stack([self.references[k], estimates[k]])
                pair = pair / (tf.reduce_max(pair) + 1e-9)
                gap = tf.ones([pair.shape[1], 2])
                image = tf.concat([pair[0], gap, pair[1]], axis=1)  # reference | estimate
                tf.summary.image(
                    f"spectrogram/{source} (reference | estimate)",
                    tf.image.flip_up_down(image[:, :, None])[None],
                    max_outputs=1,
                )
        self.writer.flush()


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
            ax.plot(
                epochs,
                [float(r[key]) if r[key] not in ("", "NA") else float("nan") for r in rows],
                marker="o",
                label=key,
            )
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    write_figure(fig, png_path)
