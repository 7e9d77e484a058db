"""From magnitude estimates to stems: ratio masks, the band above the model's, Griffin-Lim.

Masks are computed on the STFT of what they filter, so a masked set of stems sums to the mixture
it came from (`ratio_masks`). The ideal ratio mask (the oracle) is `mask_mixture` with the true
stems;
`band_masks` uses the model's stems at the input's rate and extends them above the model's band,
where the model heard nothing.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from advsep_tf import transforms

# Magnitudes this small count as silence: a silent bin's mask is split evenly.
SILENCE = 1e-10
# How masks continue above the model's band (`mask_mixture`'s `band_extension`). "mean": every
# bin above the band takes the top octave's mean mask of its frame (one gain per frame). "tilt":
# each stem's log magnitude, frame by frame, follows the straight line in log frequency fitted to
# the band's top octave, so a stem whose spectrum falls (a voice) loses share bin by bin to one
# whose spectrum stays flat (cymbals). Measured on the shipped model's validation tracks, "tilt"
# scored 0.03-0.05 dB lower and leaked slightly more in vocal pauses, so "mean" is the default.
BAND_EXTENSIONS = ("mean", "tilt")


# The silence gate (`gate_masks`): a source whose estimate holds less than the gate's threshold of
# the mixture's energy, over this window, is leakage rather than the source (a singer's pause
# that keeps the hi-hats and the bass); its share goes to the other sources. The gain falls from 1
# at the threshold to 0 at GATE_KNEE_DB below it. The window is the leakage figure's
# (`advsep_tf.evaluate.LEAKAGE_WINDOW_SECONDS`).
GATE_WINDOW_SECONDS = 0.25
GATE_KNEE_DB = 6.0


def ratio_masks(magnitudes: tf.Tensor, power: float = 1.0, axis: int = 0) -> tf.Tensor:
    """|S_k|^p / sum_j |S_j|^p along `axis` (the stems' axis). p = 1: magnitude ratio masks;
    p = 2: the Wiener filter's gain. Where every stem is silent each gets 1 / nb_stems."""
    weights = magnitudes**power
    total = tf.reduce_sum(weights, axis=axis, keepdims=True)
    nb_stems = tf.cast(tf.shape(magnitudes)[axis], magnitudes.dtype)
    return tf.where(total <= SILENCE, 1.0 / nb_stems, weights / tf.maximum(total, SILENCE))


def band_top_bin(model_rate: int, model_n_fft: int, nb_bins: int, rate: int, n_fft: int) -> int:
    """The first bin of an n_fft STFT at `rate` above the model's band (nb_bins of model_n_fft at
    model_rate)."""
    top = int(np.floor(nb_bins * model_rate / model_n_fft / (rate / n_fft)))
    return min(top, n_fft // 2)


def band_stft(config, rate: int) -> transforms.STFT:
    """The STFT at `rate` that spans the model's window in time: n_fft the next power of two of
    the model's n_fft scaled by rate / model rate, the hop in the same ratio."""
    spec = config.spectrogram
    n_fft = int(2 ** np.ceil(np.log2(spec.n_fft * rate / config.audio.sample_rate)))
    return transforms.STFT(n_fft, max(1, int(round(n_fft * spec.n_hop / spec.n_fft))))


def mask_mixture(
    mixture: tf.Tensor,
    stems: tf.Tensor,
    stft: transforms.STFT,
    power: float = 1.0,
    band_top: int | None = None,
    shared_channels: bool = False,
    band_extension: str = BAND_EXTENSIONS[0],
    gate_db: float | None = None,
    gate_context: int = 0,
) -> tf.Tensor:
    """Stems from the mixture's STFT masked with `ratio_masks` of the stems' STFT.

    mixture (batch, n) and stems (batch, nb_stems, n) at one rate; returns (batch, nb_stems, n),
    which sums to the mixture. With `band_top`, the stems are band-limited: above that bin the
    masks continue as `band_extension` says (`BAND_EXTENSIONS`). With `shared_channels`, the batch
    is the channels of one recording and every channel gets the masks of the stems' magnitudes
    summed over channels. With `gate_db`, the batch is the channels of one recording and the
    masks pass `gate_masks` over `gate_context` frames on each side. Frame by frame (with the
    gate, up to `gate_context` frames away), so it can run on segments
    (`transforms.frame_segment_layout`).
    """
    length = tf.shape(mixture)[-1]
    nb_stems = stems.shape[1]
    parts = tf.concat([mixture[:, tf.newaxis], stems], axis=1)  # (b, 1 + K, n)
    real, imag = stft.forward(tf.reshape(parts, [-1, length]))
    frames, freqs = tf.shape(real)[1], stft.n_fft // 2 + 1
    real = tf.reshape(real, [-1, 1 + nb_stems, frames, freqs])
    imag = tf.reshape(imag, [-1, 1 + nb_stems, frames, freqs])
    top = freqs if band_top is None else band_top
    magnitudes = tf.sqrt(real[:, 1:, :, :top] ** 2 + imag[:, 1:, :, :top] ** 2)
    if shared_channels:
        magnitudes = tf.reduce_sum(magnitudes, axis=0, keepdims=True)
    masks = band_limited_masks(magnitudes, freqs, power, band_extension)
    if gate_db is not None:
        mixture_power = real[:, :1] ** 2 + imag[:, :1] ** 2
        masks = gate_masks(masks, mixture_power, gate_db, 2 * gate_context + 1)
    masked_real, masked_imag = masks * real[:, :1], masks * imag[:, :1]
    flat = [-1, frames, freqs]
    waveforms = stft.inverse(tf.reshape(masked_real, flat), tf.reshape(masked_imag, flat), length)
    return tf.reshape(waveforms, [-1, nb_stems, length])


def gate_context_frames(n_hop: int, rate: int) -> int:
    """Frames on each side of a frame that the silence gate averages over (GATE_WINDOW_SECONDS
    in all)."""
    return int(round(GATE_WINDOW_SECONDS * rate / n_hop / 2))


def gate_masks(
    masks: tf.Tensor,
    mixture_power: tf.Tensor,
    threshold_db: float,
    window_frames: int,
    knee_db: float = GATE_KNEE_DB,
) -> tf.Tensor:
    """The silence gate: masks (channels, nb_stems, frames, freqs) of one recording, each stem's
    gain brought down where its share of the mixture's energy (mixture_power: (channels, 1,
    frames, freqs)), summed over channels and bins and averaged over `window_frames` frames
    around each frame, is below `threshold_db` (gain 1 there and above, 0 at `knee_db` below,
    linear in dB between). The gated masks are normalised to sum to 1 again, so what a stem
    loses goes to the others; where every stem would be gated the masks stay as they were."""
    source_energy = tf.reduce_sum(masks**2 * mixture_power, axis=[0, 3])  # (K, frames)
    mixture_energy = tf.reduce_sum(mixture_power, axis=[0, 3])  # (1, frames)
    kernel = tf.ones([window_frames, 1, 1]) / window_frames

    def over_window(energy):  # zeros beyond the edges: a song's start and end
        return tf.nn.conv1d(energy[..., tf.newaxis], kernel, 1, "SAME")[..., 0]

    share_db = (
        10.0
        * (
            tf.math.log(over_window(source_energy) + SILENCE)
            - tf.math.log(over_window(mixture_energy) + SILENCE)
        )
        / np.log(10.0)
    )
    gain = tf.clip_by_value((share_db - threshold_db + knee_db) / knee_db, 0.0, 1.0)
    gated = masks * gain[tf.newaxis, :, :, tf.newaxis]
    kept = tf.reduce_sum(gated, axis=1, keepdims=True)
    return tf.where(kept > SILENCE, gated / tf.maximum(kept, SILENCE), masks)


def band_limited_masks(
    magnitudes: tf.Tensor,
    freqs: int,
    power: float = 1.0,
    band_extension: str = BAND_EXTENSIONS[0],
) -> tf.Tensor:
    """`ratio_masks` of stem magnitudes (batch, nb_stems, frames, top) known up to bin top,
    continued to `freqs` bins as `band_extension` says (`BAND_EXTENSIONS`)."""
    top = magnitudes.shape[-1]
    if top < freqs and band_extension == "tilt":
        magnitudes = tf.concat([magnitudes, tilt_extension(magnitudes, freqs)], axis=-1)
    masks = ratio_masks(magnitudes, power, axis=1)
    if masks.shape[-1] < freqs:  # "mean"
        above = tf.reduce_mean(masks[..., top // 2 : top], axis=-1, keepdims=True)
        masks = tf.concat([masks, tf.repeat(above, freqs - top, axis=-1)], axis=-1)
    return masks


def tilt_extension(magnitudes: tf.Tensor, freqs: int) -> tf.Tensor:
    """Magnitudes (..., top) continued to bins top..freqs-1: per frame, the least-squares line of
    log magnitude against log frequency over the top octave (bins top/2..top-1), evaluated above.
    A slope above zero is cut to zero: no stem grows without bound above what was heard."""
    top = magnitudes.shape[-1]
    x = np.log(np.arange(top // 2, top, dtype=np.float64))
    x_above = np.log(np.arange(top, freqs, dtype=np.float64))
    centred = (x - x.mean()) / np.sum((x - x.mean()) ** 2)
    y = tf.math.log(magnitudes[..., top // 2 :] + SILENCE)
    slope = tf.minimum(tf.reduce_sum(y * centred.astype(np.float32), axis=-1, keepdims=True), 0.0)
    at_mean = tf.reduce_mean(y, axis=-1, keepdims=True)
    return tf.exp(at_mean + slope * (x_above - x.mean()).astype(np.float32))


def band_masks(
    mixture: tf.Tensor,
    stems: tf.Tensor,
    config,
    rate: int,
    power: float = 1.0,
    shared_channels: bool = False,
    band_extension: str = BAND_EXTENSIONS[0],
    gate_db: float | None = None,
) -> tf.Tensor:
    """The model's band-limited stems at the input's `rate` -> full-band stems (`mask_mixture`
    at `band_stft`, extended above the model's band as `band_extension` says, silence-gated at
    `gate_db`)."""
    spec = config.spectrogram
    stft = band_stft(config, rate)
    top = band_top_bin(config.audio.sample_rate, spec.n_fft, spec.nb_bins, rate, stft.n_fft)
    return mask_mixture(
        mixture,
        stems,
        stft,
        power,
        top,
        shared_channels,
        band_extension=band_extension,
        gate_db=gate_db,
        gate_context=gate_context_frames(stft.n_hop, rate),
    )


def griffin_lim(
    magnitude: tf.Tensor, stft: transforms.STFT, iterations: int = 32
) -> tuple[tf.Tensor, tf.Tensor, int]:
    """A phase for a (frames, n_fft // 2 + 1) magnitude that has none of its own (Griffin-Lim):
    returns the (real, imag) spectrum, each (1, frames, n_fft // 2 + 1), and its length in
    samples."""
    frames = magnitude.shape[0]
    length = (frames + 1) * stft.n_hop - stft.n_fft
    magnitude = tf.convert_to_tensor(magnitude, tf.float32)[tf.newaxis]
    real, imag = magnitude, tf.zeros_like(magnitude)
    for _ in range(iterations):
        rebuilt_real, rebuilt_imag = stft.forward(stft.inverse(real, imag, length))
        rebuilt_real, rebuilt_imag = rebuilt_real[:, :frames], rebuilt_imag[:, :frames]
        norm = tf.sqrt(rebuilt_real**2 + rebuilt_imag**2)
        nonzero = norm > 0
        safe = tf.where(nonzero, norm, tf.ones_like(norm))
        real = magnitude * tf.where(nonzero, rebuilt_real / safe, tf.ones_like(norm))
        imag = magnitude * tf.where(nonzero, rebuilt_imag / safe, tf.zeros_like(norm))
    return real, imag, length
