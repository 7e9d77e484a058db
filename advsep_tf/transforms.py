"""Spectral transforms and the frame arithmetic behind them, once, for the shard writer, the model,
whole-song separation, the exports and the previews alike.

Layouts (the model's, "frequency x time" as in the paper):
    waveform      (batch, nb_samples)                          float32
    stft          (batch, nb_frames_total, n_fft // 2 + 1)     complex64, or (real, imag) float32
    log spectrum  (batch, nb_bins, nb_frames_total)            float32, log1p(|stft|), kept bins
    patches       (nb_patches, nb_bins, nb_frames, nb_stems)   float32

Two STFT backends compute the same transform: "tf_signal" (`tf.signal`'s FFT, complex tensors)
and "dft_matmul" (a DFT as a matrix product with real tensors only: LiteRT has no inverse FFT and
no complex arithmetic among its built-in ops). A separation graph picks one once (`STFT`); they
agree to float32 round-off (tests/test_litert.py).

The arithmetic that says which frames and patches a stretch of samples has, and where a segment
of a song is separated exactly as the whole song would be (`model_segment_layout`), is plain Python
so
that the numpy-only segment walk (`advsep_tf.streaming.SegmentWalk`) and the graphs share it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

STFT_BACKENDS = ("tf_signal", "dft_matmul")


# -- Frame arithmetic (Python ints or scalar tensors) ----------------------------------------------


def _maximum(a, b):
    return max(a, b) if isinstance(a, int) and isinstance(b, int) else tf.maximum(a, b)


def edge_padding(n_fft: int, n_hop: int) -> int:
    """Zeros added before and after a signal. Every sample must be covered by as many windows as
    in the steady state, or the inverse transform cannot undo the window at the edges: one window
    minus one hop."""
    return n_fft - n_hop


def nb_stft_frames(nb_samples, n_fft: int, n_hop: int):
    """STFT frames of `nb_samples` (at least one): the edge-padded signal, rounded up so that the
    last frame ends exactly on the padded end."""
    padded = nb_samples + 2 * edge_padding(n_fft, n_hop)
    return _maximum(1, (padded - n_fft + n_hop - 1) // n_hop + 1)


def inference_patch_hop(nb_frames: int) -> int:
    """Separation cuts a song's spectrogram into patches half a patch apart: every frame is seen
    by two patches, whose estimates are cross-faded (training patches are `patch_hop` apart)."""
    return nb_frames // 2


def nb_patches_for(nb_frames_total, nb_frames: int, patch_hop: int):
    """Patches needed so that every frame is covered (at least one)."""
    extra = _maximum(0, nb_frames_total - nb_frames)
    return (extra + patch_hop - 1) // patch_hop + 1


# -- Segments: where a piece of a song is separated exactly as the whole song ---------------------


@dataclass(frozen=True)
class SegmentLayout:
    """Segments of `size` samples start every `step` samples (the first at 0); the samples a
    segment keeps start `left_margin` after its start (the first segment keeps from 0) and run for
    `step` samples (the last segment keeps to the song's end). `quantum`: starts are multiples of
    it, so that each segment's frames (and patches) are the whole song's."""

    size: int
    step: int
    left_margin: int
    right_margin: int
    quantum: int

    def to_dict(self) -> dict:
        return {
            "segment_samples": self.size,
            "step": self.step,
            "left_margin": self.left_margin,
            "right_margin": self.right_margin,
            "quantum": self.quantum,
        }


def model_segment_layout(
    n_fft: int, n_hop: int, nb_frames: int, segment_samples: int
) -> SegmentLayout:
    """The layout of the separation graph (`advsep_tf.separate.separate_segment`).

    A sample's output depends on the STFT frames that cover it, the patches that cover those
    frames, and the samples those patches cover; near a segment's edges some of that lies outside
    the segment. Samples in [left_margin, size - right_margin) saw all of it (a song's own start
    and end are padded alike in a segment and in the whole song, so there no margin is needed).
    `step` is the largest multiple of half a patch that lets consecutive kept regions meet.
    """
    patch_hop = inference_patch_hop(nb_frames)
    quantum = patch_hop * n_hop
    if segment_samples % quantum:
        raise ValueError(
            f"segment_samples ({segment_samples}) must be a multiple of {quantum} (half a patch)"
        )
    # Left: frames before t0 reach before the segment; patches before p0 hold such frames.
    t0 = -(-n_fft // n_hop) - 1
    p0 = -(-t0 // patch_hop)
    left = (nb_frames + (p0 - 1) * patch_hop) * n_hop if p0 > 0 else 0
    # Right: frames after `last` reach past the segment; patches after p1 hold such frames.
    last = segment_samples // n_hop - 1
    p1 = (last - nb_frames + 1) // patch_hop
    right = segment_samples - (((p1 + 1) * patch_hop + 1) * n_hop - n_fft)
    step = (segment_samples - left - right) // quantum * quantum
    return SegmentLayout(segment_samples, step, left, right, quantum)


def minimum_model_segment(n_fft: int, n_hop: int, nb_frames: int) -> int:
    """The shortest segment (a multiple of half a patch) whose step is at least half a patch."""
    quantum = inference_patch_hop(nb_frames) * n_hop
    samples = quantum
    while model_segment_layout(n_fft, n_hop, nb_frames, samples).step < quantum:
        samples += quantum
    return samples


def frame_segment_layout(
    n_fft: int, n_hop: int, segment_samples: int, context_frames: int = 0
) -> SegmentLayout:
    """The layout of a frame-by-frame STFT operation (analysis, a per-frame gain, synthesis),
    whose gain may depend on up to `context_frames` frames on either side.

    Segments start on the hop grid, so their frames are the whole signal's. A sample is covered
    by frames that start up to n_fft - 1 samples before it and end up to n_fft - 1 after it; a
    segment's frames that start within the edge padding see its zeros, not the song.
    """
    context = context_frames * n_hop
    left = -(-(n_fft + edge_padding(n_fft, n_hop)) // n_hop) * n_hop + context
    right = -(-n_fft // n_hop) * n_hop + context
    segment_samples = -(-segment_samples // n_hop) * n_hop
    step = (segment_samples - left - right) // n_hop * n_hop
    if step < n_hop:
        raise ValueError(f"a segment of {segment_samples} samples is too short for n_fft {n_fft}")
    return SegmentLayout(segment_samples, step, left, right, n_hop)


# -- STFT ------------------------------------------------------------------------------------------


def stft(waveform: tf.Tensor, n_fft: int, n_hop: int) -> tf.Tensor:
    """(batch, nb_samples) float32 -> (batch, nb_frames_total, n_fft // 2 + 1) complex64."""
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    return tf.signal.stft(
        _pad_for_frames(waveform, n_fft, n_hop),
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
    pad = edge_padding(n_fft, n_hop)
    return waveform[:, pad : pad + length]


def _pad_for_frames(waveform: tf.Tensor, n_fft: int, n_hop: int) -> tf.Tensor:
    pad = edge_padding(n_fft, n_hop)
    length = waveform.shape[-1] if waveform.shape[-1] is not None else tf.shape(waveform)[-1]
    frames = nb_stft_frames(length, n_fft, n_hop)  # static shapes stay static (for LiteRT)
    end_pad = (frames - 1) * n_hop + n_fft - (length + 2 * pad)
    return tf.pad(waveform, [[0, 0], [pad, pad + end_pad]])


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
               inverse-STFT window (the imaginary parts of DC and Nyquist are ignored, as irfft
               does)
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
    synthesis = (
        np.concatenate(
            [weight[:, None] * np.cos(angle.T), -weight[:, None] * np.sin(angle.T)], axis=0
        )
        * inverse
        / n_fft
    )
    return analysis.astype(np.float32), synthesis.astype(np.float32)


def stft_dft(waveform: tf.Tensor, n_fft: int, n_hop: int) -> tuple[tf.Tensor, tf.Tensor]:
    """`stft` as a DFT by matrix product: (batch, nb_samples) float32 ->
    (real, imag), each (batch, nb_frames_total, n_fft // 2 + 1) float32."""
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    framed = tf.signal.frame(_pad_for_frames(waveform, n_fft, n_hop), n_fft, n_hop, pad_end=False)
    analysis, _ = dft_bases(n_fft, n_hop)
    spectrum = tf.matmul(framed, tf.constant(analysis))
    nb_freqs = n_fft // 2 + 1
    return spectrum[..., :nb_freqs], spectrum[..., nb_freqs:]


def istft_dft(real: tf.Tensor, imag: tf.Tensor, n_fft: int, n_hop: int, length) -> tf.Tensor:
    """`istft` by matrix product: (real, imag), each (batch, nb_frames_total, n_fft // 2 + 1) ->
    (batch, length) float32."""
    _, synthesis = dft_bases(n_fft, n_hop)
    frames = tf.matmul(
        tf.concat([real, imag], axis=-1), tf.constant(synthesis)
    )  # (batch, T, n_fft)
    waveform = tf.signal.overlap_and_add(frames, n_hop)
    pad = edge_padding(n_fft, n_hop)
    return waveform[:, pad : pad + length]


@dataclass(frozen=True)
class STFT:
    """The STFT of one configuration, by one backend, on real and imaginary parts.

    >>> transform = STFT.from_config(config.spectrogram)            # "tf_signal"
    >>> real, imag = transform.forward(waveforms)  # (batch, frames, n_fft // 2 + 1) each
    >>> waveforms = transform.inverse(real, imag, nb_samples)
    """

    n_fft: int
    n_hop: int
    backend: str = "tf_signal"

    def __post_init__(self):
        if self.backend not in STFT_BACKENDS:
            raise ValueError(
                f"stft backend must be one of {', '.join(STFT_BACKENDS)}, got '{self.backend}'"
            )

    @classmethod
    def from_config(cls, spectrogram, backend: str = "tf_signal") -> "STFT":
        return cls(spectrogram.n_fft, spectrogram.n_hop, backend)

    def forward(self, waveform: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(batch, nb_samples) -> (real, imag), each (batch, nb_frames_total, n_fft // 2 + 1)."""
        if self.backend == "dft_matmul":
            return stft_dft(waveform, self.n_fft, self.n_hop)
        spectrum = stft(waveform, self.n_fft, self.n_hop)
        return tf.math.real(spectrum), tf.math.imag(spectrum)

    def inverse(self, real: tf.Tensor, imag: tf.Tensor, length) -> tf.Tensor:
        """(real, imag) -> (batch, length) float32."""
        if self.backend == "dft_matmul":
            return istft_dft(real, imag, self.n_fft, self.n_hop, length)
        return istft(tf.complex(real, imag), self.n_fft, self.n_hop, length)

    def log_magnitude(self, real: tf.Tensor, imag: tf.Tensor, nb_bins: int) -> tf.Tensor:
        """(batch, frames, n_freqs) x 2 -> (batch, nb_bins, frames) log1p magnitudes (written
        log(1 + x) by "dft_matmul": LiteRT has no LOG1P)."""
        real, imag = real[..., :nb_bins], imag[..., :nb_bins]
        magnitude = tf.sqrt(real * real + imag * imag)
        logs = (
            tf.math.log(1.0 + magnitude)
            if self.backend == "dft_matmul"
            else tf.math.log1p(magnitude)
        )
        return tf.transpose(logs, [0, 2, 1])

    def reconstruct(
        self, log_estimates: tf.Tensor, real: tf.Tensor, imag: tf.Tensor, length
    ) -> tf.Tensor:
        """Estimated log1p magnitudes with the mixture's phase, back to waveforms.

        log_estimates (batch, nb_stems, nb_bins, frames); real, imag (batch, frames, n_fft // 2 +
        1),
        the mixture's STFT. Returns (batch, nb_stems, length). The phase is (real, imag) / |mixture|
        (angle 0 where the mixture is 0, as tf.math.angle); bins above nb_bins (the dropped Nyquist
        bin) are zero.
        """
        nb_stems, nb_bins = log_estimates.shape[1], log_estimates.shape[2]
        magnitude = tf.transpose(
            tf.exp(tf.nn.relu(log_estimates)) - 1.0, [0, 1, 3, 2]
        )  # (b, K, T, F)
        real, imag = real[:, tf.newaxis, :, :nb_bins], imag[:, tf.newaxis, :, :nb_bins]
        mixture = tf.sqrt(real * real + imag * imag)
        nonzero = mixture > 0
        safe = tf.where(nonzero, mixture, tf.ones_like(mixture))
        cos = tf.where(nonzero, real / safe, tf.ones_like(mixture))
        sin = tf.where(nonzero, imag / safe, tf.zeros_like(mixture))
        missing = self.n_fft // 2 + 1 - nb_bins
        padding = [[0, 0], [0, 0], [0, 0], [0, missing]]
        est_real, est_imag = tf.pad(magnitude * cos, padding), tf.pad(magnitude * sin, padding)
        frames = est_real.shape[2] if est_real.shape[2] is not None else tf.shape(est_real)[2]
        flat_shape = [-1, frames, self.n_fft // 2 + 1]
        waveforms = self.inverse(
            tf.reshape(est_real, flat_shape), tf.reshape(est_imag, flat_shape), length
        )
        return tf.reshape(waveforms, [-1, nb_stems, length])


def log_magnitude(spectrum: tf.Tensor, nb_bins: int) -> tf.Tensor:
    """(batch, frames, n_fft // 2 + 1) complex -> (batch, nb_bins, frames) log1p magnitudes: the
    model's input features (the shard writer's)."""
    magnitude = tf.abs(spectrum[..., :nb_bins])
    return tf.transpose(tf.math.log1p(magnitude), [0, 2, 1])


# -- Patches ---------------------------------------------------------------------------------------


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
    """Weights across a patch's frames for overlap-add; sin^2 gives a constant sum at half
    overlap."""
    if patch_hop == nb_frames:
        return np.ones(nb_frames, np.float32)
    t = (np.arange(nb_frames) + 0.5) / nb_frames
    return (np.sin(np.pi * t) ** 2).astype(np.float32)


def from_patches(
    patches: tf.Tensor, batch, nb_frames_total, patch_hop: int, nb_valid_patches=None
) -> tf.Tensor:
    """(batch * nb_patches, nb_bins, nb_frames, nb_stems) -> (batch, nb_stems, nb_bins,
    nb_frames_total).

    Overlapping patches are cross-faded (weighted overlap-add, normalised by the summed weights),
    so patch borders leave no seam. Patches from `nb_valid_patches` on (per batch row; default:
    all are valid) get no weight: a segment's patches past its song's end.
    """
    nb_bins, nb_frames, nb_stems = patches.shape[1], patches.shape[2], patches.shape[3]
    nb_patches = (
        patches.shape[0] // batch
        if isinstance(batch, int) and patches.shape[0]
        else tf.shape(patches)[0] // batch
    )
    window = tf.constant(crossfade_window(nb_frames, patch_hop))[tf.newaxis]  # (1, T)
    if nb_valid_patches is not None:
        window = (
            window * tf.cast(tf.range(nb_patches) < nb_valid_patches, tf.float32)[:, tf.newaxis]
        )
    else:
        window = tf.tile(window, [nb_patches, 1])
    patches = tf.reshape(patches, [batch, nb_patches, nb_bins, nb_frames, nb_stems])
    weighted = tf.transpose(patches, [0, 4, 2, 1, 3]) * window  # (b, K, F, n, T)
    summed = tf.signal.overlap_and_add(weighted, patch_hop)[..., :nb_frames_total]
    weights = tf.signal.overlap_and_add(window, patch_hop)[:nb_frames_total]
    return summed / tf.maximum(weights, 1e-12)
