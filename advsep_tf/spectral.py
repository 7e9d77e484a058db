"""Spectral transforms, once, as TensorFlow ops: used by the shard writer, the model, whole-song
separation and the exported serving signature alike.

Layouts (the model's, "frequency x time" as in the paper):
    waveform      (batch, nb_samples)                          float32
    stft          (batch, nb_frames_total, n_fft // 2 + 1)     complex64
    log spectrum  (batch, nb_bins, nb_frames_total)            float32, log1p(|stft|) of the kept bins
    patches       (nb_patches, nb_bins, nb_frames, nb_stems)   float32
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def _edge_padding(n_fft: int, n_hop: int) -> int:
    # Every sample must be covered by as many windows as in the steady state, or the inverse
    # transform cannot undo the window at the edges: pad by one window minus one hop on each side.
    return n_fft - n_hop


def stft(waveform: tf.Tensor, n_fft: int, n_hop: int) -> tf.Tensor:
    """(batch, nb_samples) float32 -> (batch, nb_frames_total, n_fft // 2 + 1) complex64."""
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    pad = _edge_padding(n_fft, n_hop)
    length = tf.shape(waveform)[-1]
    # Round the padded length up so that the last frame ends exactly on the signal's padded end.
    padded = length + 2 * pad
    frames = tf.maximum(1, (padded - n_fft + n_hop - 1) // n_hop + 1)
    end_pad = (frames - 1) * n_hop + n_fft - padded
    waveform = tf.pad(waveform, [[0, 0], [pad, pad + end_pad]])
    return tf.signal.stft(
        waveform,
        frame_length=n_fft,
        frame_step=n_hop,
        fft_length=n_fft,
        window_fn=tf.signal.hann_window,
        pad_end=False,
    )


def istft(spectrum: tf.Tensor, n_fft: int, n_hop: int, length) -> tf.Tensor:
    """(batch, nb_frames_total, n_fft // 2 + 1) complex64 -> (batch, length) float32."""
    waveform = tf.signal.inverse_stft(
        spectrum,
        frame_length=n_fft,
        frame_step=n_hop,
        fft_length=n_fft,
        window_fn=tf.signal.inverse_stft_window_fn(n_hop, forward_window_fn=tf.signal.hann_window),
    )
    pad = _edge_padding(n_fft, n_hop)
    return waveform[:, pad : pad + length]


def log_magnitude(spectrum: tf.Tensor, nb_bins: int) -> tf.Tensor:
    """(batch, frames, n_fft // 2 + 1) complex -> (batch, nb_bins, frames) log1p magnitudes."""
    magnitude = tf.abs(spectrum[..., :nb_bins])
    return tf.transpose(tf.math.log1p(magnitude), [0, 2, 1])


def nb_patches_for(nb_frames_total, nb_frames: int, patch_hop: int):
    """Patches needed so that every frame is covered (at least one)."""
    extra = tf.maximum(0, nb_frames_total - nb_frames)
    return (extra + patch_hop - 1) // patch_hop + 1


def to_patches(log_spectrum: tf.Tensor, nb_frames: int, patch_hop: int) -> tf.Tensor:
    """(batch, nb_bins, nb_frames_total) -> (batch * nb_patches, nb_bins, nb_frames, 1).

    The spectrum is zero-padded at the end (log1p(0) = 0: silence) to a whole number of patches.
    """
    batch, nb_bins, total = tf.unstack(tf.shape(log_spectrum))
    nb_patches = nb_patches_for(total, nb_frames, patch_hop)
    padded_total = (nb_patches - 1) * patch_hop + nb_frames
    log_spectrum = tf.pad(log_spectrum, [[0, 0], [0, 0], [0, padded_total - total]])
    patches = tf.signal.frame(log_spectrum, nb_frames, patch_hop, axis=-1)  # (b, F, n, T)
    patches = tf.transpose(patches, [0, 2, 1, 3])
    return tf.reshape(patches, [batch * nb_patches, nb_bins, nb_frames, 1])


def crossfade_window(nb_frames: int, patch_hop: int) -> np.ndarray:
    """Weights across a patch's frames for overlap-add; sin^2 gives a constant sum at half overlap."""
    if patch_hop == nb_frames:
        return np.ones(nb_frames, np.float32)
    t = (np.arange(nb_frames) + 0.5) / nb_frames
    return (np.sin(np.pi * t) ** 2).astype(np.float32)


def from_patches(patches: tf.Tensor, batch, nb_frames_total, patch_hop: int) -> tf.Tensor:
    """(batch * nb_patches, nb_bins, nb_frames, nb_stems) -> (batch, nb_stems, nb_bins, nb_frames_total).

    Overlapping patches are cross-faded (weighted overlap-add, normalised by the summed weights),
    so patch borders leave no seam.
    """
    shape = tf.shape(patches)
    nb_bins, nb_frames, nb_stems = patches.shape[1], patches.shape[2], patches.shape[3]
    nb_patches = shape[0] // batch
    window = tf.constant(crossfade_window(nb_frames, patch_hop))
    patches = tf.reshape(patches, [batch, nb_patches, nb_bins, nb_frames, nb_stems])
    patches = tf.transpose(patches, [0, 4, 2, 1, 3]) * window  # (b, K, F, n, T)
    summed = tf.signal.overlap_and_add(patches, patch_hop)
    weights = tf.signal.overlap_and_add(tf.tile(window[tf.newaxis], [nb_patches, 1]), patch_hop)
    return (summed / weights)[..., :nb_frames_total]


def reconstruct(
    log_estimates: tf.Tensor, mixture_stft: tf.Tensor, n_fft: int, n_hop: int, length
) -> tf.Tensor:
    """Estimated log1p magnitudes with the mixture's phase, back to waveforms.

    log_estimates: (batch, nb_stems, nb_bins, frames); mixture_stft: (batch, frames, n_fft//2+1).
    Returns (batch, nb_stems, length). Bins above nb_bins (the dropped Nyquist bin) are set to zero.
    """
    nb_stems = log_estimates.shape[1]
    magnitude = tf.transpose(tf.math.expm1(tf.nn.relu(log_estimates)), [0, 1, 3, 2])  # (b, K, T, F)
    missing = n_fft // 2 + 1 - magnitude.shape[-1]
    magnitude = tf.pad(magnitude, [[0, 0], [0, 0], [0, 0], [0, missing]])
    phase = tf.math.angle(mixture_stft)[:, tf.newaxis]
    spectrum = tf.complex(magnitude * tf.cos(phase), magnitude * tf.sin(phase))
    frames, bins = tf.shape(spectrum)[2], tf.shape(spectrum)[3]
    flat = tf.reshape(spectrum, [-1, frames, bins])
    waveforms = istft(flat, n_fft, n_hop, length)
    return tf.reshape(waveforms, [-1, nb_stems, length])


# -- The "dft_matmul" STFT backend: LiteRT's built-in ops only ------------------------------------
#
# LiteRT has no inverse FFT and no complex arithmetic among its built-in ops (RFFT becomes RFFT2D;
# complex multiplication and IRFFT need Flex). The functions below compute the same transforms as
# `stft` / `istft` / `reconstruct` above with real tensors only: framing, a DFT as a matrix product
# with constant cosine and sine bases (the window folded in), the real and imaginary parts carried
# separately, and overlap-add. They agree with the "tf_signal" backend to float32 round-off (see
# tests/test_litert.py) and are what the LiteRT export runs; everything else keeps the functions above.

STFT_BACKENDS = ("tf_signal", "dft_matmul")


def _hann(n_fft: int) -> np.ndarray:
    """tf.signal.hann_window(n_fft) (periodic), in float64."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)


def _inverse_hann(n_fft: int, n_hop: int) -> np.ndarray:
    """tf.signal.inverse_stft_window_fn(n_hop, hann)(n_fft), in float64: the window over the sum of
    the squared windows that overlap each sample."""
    window = _hann(n_fft)
    overlaps = -(-n_fft // n_hop)
    squared = np.pad(window**2, (0, overlaps * n_hop - n_fft)).reshape(overlaps, n_hop).sum(0)
    return window / np.tile(squared, overlaps)[:n_fft]


def dft_bases(n_fft: int, n_hop: int) -> tuple[np.ndarray, np.ndarray]:
    """(analysis, synthesis) float32 matrices of the windowed real DFT.

    analysis   (n_fft, 2 * nb_freqs): frame @ analysis = [real | imag] of the windowed frame's rfft
    synthesis  (2 * nb_freqs, n_fft): [real | imag] @ synthesis = irfft of the frame times the
               inverse-STFT window (the imaginary parts of DC and Nyquist are ignored, as irfft does)
    with nb_freqs = n_fft // 2 + 1.
    """
    nb_freqs = n_fft // 2 + 1
    angle = 2 * np.pi * np.outer(np.arange(n_fft), np.arange(nb_freqs)) / n_fft  # (n, k)
    window = _hann(n_fft)[:, None]
    analysis = np.concatenate([window * np.cos(angle), -window * np.sin(angle)], axis=1)
    weight = np.full(nb_freqs, 2.0)
    weight[0] = 1.0
    if n_fft % 2 == 0:
        weight[-1] = 1.0
    inverse = _inverse_hann(n_fft, n_hop)[None, :]
    synthesis = np.concatenate(
        [weight[:, None] * np.cos(angle.T), -weight[:, None] * np.sin(angle.T)], axis=0
    ) * inverse / n_fft
    return analysis.astype(np.float32), synthesis.astype(np.float32)


def _static_or_dynamic_length(waveform: tf.Tensor):
    return waveform.shape[-1] if waveform.shape[-1] is not None else tf.shape(waveform)[-1]


def stft_dft(waveform: tf.Tensor, n_fft: int, n_hop: int) -> tuple[tf.Tensor, tf.Tensor]:
    """`stft` as a DFT by matrix product: (batch, nb_samples) float32 ->
    (real, imag), each (batch, nb_frames_total, n_fft // 2 + 1) float32.

    The same edge padding and frame count as `stft`; static shapes stay static (for LiteRT).
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    pad = _edge_padding(n_fft, n_hop)
    length = _static_or_dynamic_length(waveform)
    if isinstance(length, int):
        frames = max(1, -(-(length + 2 * pad - n_fft) // n_hop) + 1)
    else:
        frames = tf.maximum(1, (length + 2 * pad - n_fft + n_hop - 1) // n_hop + 1)
    end_pad = (frames - 1) * n_hop + n_fft - (length + 2 * pad)
    waveform = tf.pad(waveform, [[0, 0], [pad, pad + end_pad]])
    framed = tf.signal.frame(waveform, n_fft, n_hop, pad_end=False)  # (batch, frames, n_fft)
    analysis, _ = dft_bases(n_fft, n_hop)
    spectrum = tf.matmul(framed, tf.constant(analysis))
    nb_freqs = n_fft // 2 + 1
    return spectrum[..., :nb_freqs], spectrum[..., nb_freqs:]


def istft_dft(real: tf.Tensor, imag: tf.Tensor, n_fft: int, n_hop: int, length) -> tf.Tensor:
    """`istft` by matrix product: (real, imag), each (batch, nb_frames_total, n_fft // 2 + 1) ->
    (batch, length) float32."""
    _, synthesis = dft_bases(n_fft, n_hop)
    frames = tf.matmul(tf.concat([real, imag], axis=-1), tf.constant(synthesis))  # (batch, T, n_fft)
    waveform = tf.signal.overlap_and_add(frames, n_hop)
    pad = _edge_padding(n_fft, n_hop)
    return waveform[:, pad : pad + length]


def log_magnitude_dft(real: tf.Tensor, imag: tf.Tensor, nb_bins: int) -> tf.Tensor:
    """`log_magnitude` from real and imaginary parts: (batch, frames, n_freqs) x 2 ->
    (batch, nb_bins, frames) log1p magnitudes (written log(1 + x): LiteRT has no LOG1P)."""
    real, imag = real[..., :nb_bins], imag[..., :nb_bins]
    magnitude = tf.sqrt(real * real + imag * imag)
    return tf.transpose(tf.math.log(1.0 + magnitude), [0, 2, 1])


def reconstruct_dft(log_estimates: tf.Tensor, real: tf.Tensor, imag: tf.Tensor, n_fft: int, n_hop: int, length):
    """`reconstruct` with the mixture's STFT as real and imaginary parts: the estimated magnitudes
    take the mixture's phase as (real, imag) / |mixture| (angle 0 where the mixture is 0, as
    tf.math.angle), no complex tensor anywhere.

    log_estimates (batch, nb_stems, nb_bins, frames); real, imag (batch, frames, n_fft // 2 + 1).
    Returns (batch, nb_stems, length).
    """
    nb_stems, nb_bins = log_estimates.shape[1], log_estimates.shape[2]
    magnitude = tf.transpose(tf.exp(tf.nn.relu(log_estimates)) - 1.0, [0, 1, 3, 2])  # (b, K, T, F)
    real, imag = real[:, tf.newaxis, :, :nb_bins], imag[:, tf.newaxis, :, :nb_bins]
    mixture = tf.sqrt(real * real + imag * imag)
    nonzero = mixture > 0
    safe = tf.where(nonzero, mixture, tf.ones_like(mixture))
    cos = tf.where(nonzero, real / safe, tf.ones_like(mixture))
    sin = tf.where(nonzero, imag / safe, tf.zeros_like(mixture))
    missing = n_fft // 2 + 1 - nb_bins  # bins above nb_bins (the dropped Nyquist bin) are zero
    padding = [[0, 0], [0, 0], [0, 0], [0, missing]]
    est_real, est_imag = tf.pad(magnitude * cos, padding), tf.pad(magnitude * sin, padding)
    frames = est_real.shape[2] if est_real.shape[2] is not None else tf.shape(est_real)[2]
    flat_shape = [-1, frames, n_fft // 2 + 1]
    waveforms = istft_dft(tf.reshape(est_real, flat_shape), tf.reshape(est_imag, flat_shape), n_fft, n_hop, length)
    return tf.reshape(waveforms, [-1, nb_stems, length])


def stft_parts(waveform: tf.Tensor, n_fft: int, n_hop: int, backend: str = "tf_signal") -> tuple[tf.Tensor, tf.Tensor]:
    """(batch, nb_samples) -> (real, imag), each (batch, nb_frames_total, n_fft // 2 + 1), by
    either backend: "tf_signal" (`stft`, an FFT) or "dft_matmul" (`stft_dft`, LiteRT built-ins)."""
    if backend == "dft_matmul":
        return stft_dft(waveform, n_fft, n_hop)
    if backend == "tf_signal":
        spectrum = stft(waveform, n_fft, n_hop)
        return tf.math.real(spectrum), tf.math.imag(spectrum)
    raise ValueError(f"stft backend must be one of {', '.join(STFT_BACKENDS)}, got '{backend}'")


def istft_parts(real: tf.Tensor, imag: tf.Tensor, n_fft: int, n_hop: int, length, backend: str = "tf_signal") -> tf.Tensor:
    """The inverse of `stft_parts`: (real, imag) -> (batch, length) float32, by either backend."""
    if backend == "dft_matmul":
        return istft_dft(real, imag, n_fft, n_hop, length)
    if backend == "tf_signal":
        return istft(tf.complex(real, imag), n_fft, n_hop, length)
    raise ValueError(f"stft backend must be one of {', '.join(STFT_BACKENDS)}, got '{backend}'")
