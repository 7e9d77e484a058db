"""Whole-song separation, any length, with bounded memory.

The song's spectrogram is cut into overlapping patches (half-patch hop), the separator runs on
fixed-size chunks of patches (so activations never grow with the song), and the estimates are
cross-faded back together, given the mixture's phase and inverted. The same graph
(`separate_waveforms`) is the exported SavedModel's serving signature.

Multichannel input is separated channel by channel (the model sees mono); input at another rate
is resampled to the model's rate and the stems back to the input's rate, so every stem has the
input's length, sample rate and channel count. The model's band (0 to sample_rate / 2) is all the
stems carry: content above it is lost.

Before separating anything, `plan_separation` checks every input and output: inputs that are
missing, folders, unreadable or shorter than one STFT frame, an --out that is a file or not
writable, stems of two inputs that would land on the same path, and stems that would replace an
existing file (only with `overwrite`, and never an input or the model) are refused in one line
naming the path.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import tensorflow as tf

from advsep_tf import spectral
from advsep_tf.config import Config
from advsep_tf.errors import AdvsepError
from advsep_tf.export.atomic import check_output_files, check_writable

DEFAULT_CHUNK_PATCHES = 16
# Long songs are separated in segments of this length (model-rate audio), cross-faded over
# SEGMENT_OVERLAP_SECONDS, so that memory does not grow with the song beyond its waveforms.
SEGMENT_SECONDS = 30.0
SEGMENT_OVERLAP_SECONDS = 1.0
# How stems reach an input rate above the model's (see Separator): "direct" resamples the model-rate
# stems (nothing above the model's band); "mask" turns them into soft masks for the input-rate
# mixture STFT, extended above the band, so the stems keep the high band and sum to the mixture.
RECONSTRUCTIONS = ("mask", "direct")


def separate_waveforms(estimate_patches, waveforms: tf.Tensor, config: Config, chunk_patches: int) -> tf.Tensor:
    """(batch, nb_samples) mono waveforms at the model's rate -> (batch, nb_stems, nb_samples).

    `estimate_patches`: (chunk_patches, nb_bins, nb_frames, 1) -> (chunk_patches, nb_bins, nb_frames, nb_stems).
    """
    spec = config.spectrogram
    hop = spec.nb_frames // 2
    waveforms = tf.convert_to_tensor(waveforms, tf.float32)
    batch, length = tf.shape(waveforms)[0], tf.shape(waveforms)[1]
    mixture_stft = spectral.stft(waveforms, spec.n_fft, spec.n_hop)
    total_frames = tf.shape(mixture_stft)[1]
    patches = spectral.to_patches(spectral.log_magnitude(mixture_stft, spec.nb_bins), spec.nb_frames, hop)
    nb_patches = tf.shape(patches)[0]
    nb_chunks = (nb_patches + chunk_patches - 1) // chunk_patches
    patches = tf.pad(patches, [[0, nb_chunks * chunk_patches - nb_patches], [0, 0], [0, 0], [0, 0]])
    chunks = tf.reshape(patches, [nb_chunks, chunk_patches, spec.nb_bins, spec.nb_frames, 1])
    estimates = tf.map_fn(
        estimate_patches,
        chunks,
        parallel_iterations=1,  # one chunk at a time: memory stays bounded
        fn_output_signature=tf.TensorSpec([chunk_patches, spec.nb_bins, spec.nb_frames, config.nb_stems], tf.float32),
    )
    estimates = tf.reshape(estimates, [-1, spec.nb_bins, spec.nb_frames, config.nb_stems])[:nb_patches]
    log_estimates = spectral.from_patches(estimates, batch, total_frames, hop)
    return spectral.reconstruct(log_estimates, mixture_stft, spec.n_fft, spec.n_hop, length)


class Separator:
    """Separate songs with a trained model.

    >>> separator = Separator.from_checkpoint("runs/demo")          # or a .keras file
    >>> stems = separator.separate(waveform, sample_rate)            # {source: (nb_samples, nb_channels)}
    >>> separator.separate_to_file("song.wav", "out/")               # out/song/<source>.wav
    """

    def __init__(
        self,
        estimate_patches,
        config: Config,
        chunk_patches: int = DEFAULT_CHUNK_PATCHES,
        segment_seconds: float = SEGMENT_SECONDS,
        reconstruction: str = "mask",
        mask_power: float = 1.0,
    ):
        if reconstruction not in RECONSTRUCTIONS:
            raise AdvsepError(f"reconstruction must be one of {', '.join(RECONSTRUCTIONS)}, got '{reconstruction}'")
        self.config = config
        self.chunk_patches = chunk_patches
        self.segment_seconds = segment_seconds
        self.reconstruction = reconstruction
        self.mask_power = mask_power
        rate = config.audio.sample_rate
        self.segment_samples = int(segment_seconds * rate)
        self.overlap_samples = min(int(SEGMENT_OVERLAP_SECONDS * rate), self.segment_samples // 4)
        self._estimate_patches = estimate_patches
        self._separate = tf.function(
            lambda waveforms: separate_waveforms(self._estimate_patches, waveforms, config, chunk_patches),
            input_signature=[tf.TensorSpec([None, None], tf.float32)],
            reduce_retracing=True,
        )

    @classmethod
    def from_checkpoint(cls, path: str, chunk_patches: int = DEFAULT_CHUNK_PATCHES, **kwargs) -> "Separator":
        """From a training run directory or a .keras file."""
        from advsep_tf.runs import load_run_model

        model = load_run_model(path)
        separator = model.separator
        return cls(lambda patches: separator(patches, training=False), model.separation_config, chunk_patches, **kwargs)

    @classmethod
    def from_saved_model(cls, path: str, chunk_patches: int = DEFAULT_CHUNK_PATCHES, **kwargs) -> "Separator":
        """From a SavedModel written by advsep-tf-export (its `separate_spectrogram` signature)."""
        from advsep_tf.export.saved_model import read_saved_model

        loaded, config = read_saved_model(path)
        # The closure keeps `loaded` (and so its variables) alive as long as the Separator.
        return cls(lambda patches: loaded.separate_spectrogram(patches)["estimates"], config, chunk_patches, **kwargs)

    @classmethod
    def load(cls, path: str, chunk_patches: int = DEFAULT_CHUNK_PATCHES, **kwargs) -> "Separator":
        """A run directory, a .keras file or a SavedModel directory."""
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            return cls.from_saved_model(path, chunk_patches, **kwargs)
        return cls.from_checkpoint(path, chunk_patches, **kwargs)

    def separate(self, waveform: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        """(nb_samples,) or (nb_samples, nb_channels) float -> {source: array of the input's shape}."""
        from advsep_tf.data_pipelines.audio import resample

        waveform = np.asarray(waveform, dtype=np.float32)
        mono_input = waveform.ndim == 1
        if mono_input:
            waveform = waveform[:, None]
        if waveform.ndim != 2 or waveform.shape[0] == 0:
            raise AdvsepError(f"expected a (nb_samples, nb_channels) waveform, got shape {waveform.shape}")
        if not np.all(np.isfinite(waveform)):
            raise AdvsepError("waveform holds NaN or infinite samples")
        problem = too_short(self.config, waveform.shape[0], sample_rate)
        if problem:
            raise AdvsepError(problem)
        rate = self.config.audio.sample_rate
        channels = waveform.T  # (nb_channels, nb_samples)
        if sample_rate != rate:
            channels = resample(channels.T, sample_rate, rate).T
        estimates = self.separate_model_rate(np.ascontiguousarray(channels, np.float32))  # (c, K, n_model)
        if sample_rate != rate:
            upsampled = resample(estimates.reshape(-1, estimates.shape[-1]).T, rate, sample_rate).T
            estimates = _fit_length(upsampled, waveform.shape[0]).reshape(estimates.shape[:2] + (-1,))
            if self.reconstruction == "mask" and sample_rate > rate:
                estimates = self.apply_band_masks(np.ascontiguousarray(waveform.T), estimates, sample_rate)
        stems = {}
        for k, source in enumerate(self.config.sources):
            stem = _fit_length(estimates[:, k], waveform.shape[0]).T
            stems[source] = stem[:, 0] if mono_input else np.ascontiguousarray(stem)
        return stems

    def separate_model_rate(self, channels: np.ndarray) -> np.ndarray:
        """(nb_channels, nb_samples) at the model's rate -> (nb_channels, nb_stems, nb_samples).

        Segment by segment: each segment's estimates are faded out over the overlap while the next
        segment's fade in (the two weights sum to one), so no seam is left.
        """
        return _crossfaded_segments(
            lambda start, end: self._separate(tf.constant(channels[:, start:end])).numpy(),
            (channels.shape[0], self.config.nb_stems),
            channels.shape[1],
            self.segment_samples,
            self.overlap_samples,
        )

    def apply_band_masks(self, mixture: np.ndarray, stems: np.ndarray, sample_rate: int) -> np.ndarray:
        """Band-limited stems -> soft masks -> full-band stems from the input-rate mixture.

        mixture (nb_channels, n) and stems (nb_channels, nb_stems, n), both at `sample_rate`.
        Masks are |S_k|^p / sum_j |S_j|^p (p = mask_power; 2 is the Wiener-filter gain) of the
        stems' STFT; above the model's band, where the stems are empty, each frame takes the mean
        mask of the band's top octave. The masked stems sum to the mixture.
        """
        spec, rate = self.config.spectrogram, self.config.audio.sample_rate
        ratio = sample_rate / rate
        n_fft = int(2 ** np.ceil(np.log2(spec.n_fft * ratio)))
        n_hop = max(1, int(round(n_fft * spec.n_hop / spec.n_fft)))
        band_top = int(np.floor(spec.nb_bins * rate / spec.n_fft / (sample_rate / n_fft)))
        band_top = min(band_top, n_fft // 2)
        octave = slice(band_top // 2, band_top)
        power = self.mask_power

        def process(start, end):
            segment = np.concatenate([mixture[:, None, start:end], stems[:, :, start:end]], axis=1)
            nb_channels, nb_parts, length = segment.shape
            spectra = spectral.stft(tf.constant(segment.reshape(-1, length)), n_fft, n_hop)
            spectra = tf.reshape(spectra, [nb_channels, nb_parts, -1, n_fft // 2 + 1])
            weights = tf.abs(spectra[:, 1:]) ** power
            masks = weights[..., :band_top] / (tf.reduce_sum(weights[..., :band_top], axis=1, keepdims=True) + 1e-10)
            silent = tf.reduce_sum(weights[..., :band_top], axis=1, keepdims=True) <= 1e-10
            masks = tf.where(silent, 1.0 / (nb_parts - 1), masks)
            above = tf.reduce_mean(masks[..., octave], axis=-1, keepdims=True)
            masks = tf.concat([masks, tf.repeat(above, n_fft // 2 + 1 - band_top, axis=-1)], axis=-1)
            masked = tf.cast(masks, tf.complex64) * spectra[:, :1]
            flat = tf.reshape(masked, [-1, masked.shape[2], masked.shape[3]])
            return tf.reshape(spectral.istft(flat, n_fft, n_hop, length), [nb_channels, nb_parts - 1, length]).numpy()

        segment = int(self.segment_seconds * sample_rate)
        overlap = min(int(SEGMENT_OVERLAP_SECONDS * sample_rate), segment // 4)
        return _crossfaded_segments(process, stems.shape[:2], stems.shape[-1], segment, overlap)

    def separate_to_file(
        self,
        input_path: str,
        out_dir: str,
        filename_format: str = "{track}/{source}.{codec}",
        codec: str = "wav",
        audio_adapter=None,
        overwrite: bool = False,
        protected: dict[str, str] | None = None,
    ) -> list[str]:
        """Separate one audio file; write one file per source; return their paths.

        Existing files at those paths are replaced only with `overwrite` (see `plan_separation`).
        """
        from advsep_tf.data_pipelines.audio import AudioAdapter

        outputs = plan_separation([input_path], out_dir, self.config, filename_format, codec, overwrite, protected)
        adapter = audio_adapter or AudioAdapter.default()
        waveform, sample_rate = adapter.load(input_path)
        problem = too_short(self.config, len(waveform), sample_rate)
        if problem:  # formats soundfile cannot read were not measured before loading
            raise AdvsepError(f"{input_path}: {problem}")
        stems = self.separate(waveform, sample_rate)
        for path, stem in zip(outputs[input_path], stems.values()):
            adapter.save(path, stem, sample_rate, codec=codec)
        return outputs[input_path]


def too_short(config: Config, nb_samples: int, sample_rate: int) -> str | None:
    """Why `nb_samples` at `sample_rate` cannot be separated (shorter than one STFT frame of the
    model, whose estimates would be edge padding only), or None."""
    needed = math.ceil(config.spectrogram.n_fft * sample_rate / config.audio.sample_rate)
    if nb_samples >= needed:
        return None
    return (
        f"too short to separate: {nb_samples} sample(s) at {sample_rate} Hz; the model needs at least one "
        f"frame ({needed} samples, {needed / sample_rate * 1000:.1f} ms)"
    )


def check_paths(inputs: list[str], out_dir: str) -> None:
    """Inputs are readable files and `out_dir` can be a folder: checked before the model loads."""
    for path in inputs:
        if os.path.isdir(path):
            raise AdvsepError(f"{path}: is a folder; give the audio files in it (e.g. {os.path.join(path, '*.wav')})")
        if not os.path.exists(path):
            raise AdvsepError(f"{path}: input file not found")
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise AdvsepError(f"{path}: not a readable file")
    if os.path.lexists(out_dir) and not os.path.isdir(out_dir):
        raise AdvsepError(f"{out_dir}: exists and is a file; --out must be a folder")
    check_writable(out_dir)


def plan_separation(
    inputs: list[str],
    out_dir: str,
    config: Config,
    filename_format: str = "{track}/{source}.{codec}",
    codec: str = "wav",
    overwrite: bool = False,
    protected: dict[str, str] | None = None,
) -> dict[str, list[str]]:
    """{input: its stems' paths, in `config.sources` order}, after refusing, before any work, what
    would fail or destroy something: see `check_paths`; two stems on one path (inputs of the same
    track name, or a --filename-format without {source}); an existing file where a stem goes
    (replaced only with `overwrite`, never an input or a `protected` path); an input shorter than
    one model frame (measured from its header, where soundfile reads it)."""
    import soundfile as sf

    check_paths(inputs, out_dir)
    outputs, writer = {}, {}
    for path in inputs:
        outputs[path] = []
        for source in config.sources:
            try:
                relative = filename_format.format(track=track_name(path), source=source, codec=codec)
            except (KeyError, IndexError, ValueError) as exc:
                raise AdvsepError(
                    f"--filename-format {filename_format!r}: {exc.__class__.__name__}: {exc} "
                    "(placeholders: {track}, {source}, {codec})"
                ) from None
            stem_path = os.path.normpath(os.path.join(out_dir, relative))
            key = os.path.realpath(stem_path)
            if key in writer:
                other, other_source = writer[key]
                if other != path:
                    raise AdvsepError(f"{other} and {path}: both would be written to {stem_path}; separate them "
                                      "into different --out folders, or rename one")
                if other_source == source:
                    raise AdvsepError(f"{path}: given twice")
                raise AdvsepError(f"--filename-format {filename_format!r}: every stem of {path} would be "
                                  f"written to {stem_path}; include {{source}}")
            writer[key] = (path, source)
            outputs[path].append(stem_path)
    check_output_files(
        [p for paths in outputs.values() for p in paths], overwrite, "the stems of an earlier separation",
        {**{path: "an input" for path in inputs}, **(protected or {})},
    )
    for path in inputs:
        try:
            info = sf.info(path)
        except Exception:  # noqa: BLE001 - formats soundfile cannot read are measured after decoding
            continue
        problem = too_short(config, info.frames, info.samplerate)
        if problem:
            raise AdvsepError(f"{path}: {problem}")
    return outputs


def _crossfaded_segments(process, leading_shape: tuple, length: int, segment: int, overlap: int) -> np.ndarray:
    """Run `process(start, end) -> (*leading_shape, end - start)` over overlapping segments.

    Each segment fades out over the overlap while the next fades in (the weights sum to one), so
    memory is bounded by one segment and no seam is left.
    """
    if length <= segment:
        return process(0, length)
    result = np.zeros(tuple(leading_shape) + (length,), np.float32)
    fade_in = np.linspace(0.0, 1.0, overlap + 2, dtype=np.float32)[1:-1]
    start = 0
    while True:
        end = min(start + segment, length)
        part = process(start, end)
        if start > 0:
            part[..., :overlap] *= fade_in
        if end < length:
            part[..., -overlap:] *= fade_in[::-1]
        result[..., start:end] += part
        if end == length:
            return result
        start = end - overlap


def track_name(input_path: str) -> str:
    """The file's name without extension; for MUSDB-style <track>/mixture.wav, the folder's name."""
    name = os.path.splitext(os.path.basename(input_path))[0]
    if name == "mixture":
        return os.path.basename(os.path.dirname(os.path.abspath(input_path))) or name
    return name


def _fit_length(stems: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad the last axis to `length` (resampling rounds lengths)."""
    if stems.shape[-1] >= length:
        return stems[..., :length]
    return np.pad(stems, [(0, 0)] * (stems.ndim - 1) + [(0, length - stems.shape[-1])])


def separate_files(separator: Separator, inputs: list[str], out_dir: str, progress: bool = True, **kwargs) -> dict:
    """Many files with a progress bar; returns a summary (files, seconds of audio, x real time).

    Every input and output is checked (`plan_separation`) before the first file is separated;
    `kwargs` are `separate_to_file`'s.
    """
    import soundfile as sf
    from tqdm.auto import tqdm

    plan_separation(
        inputs, out_dir, separator.config, kwargs.get("filename_format", "{track}/{source}.{codec}"),
        kwargs.get("codec", "wav"), kwargs.get("overwrite", False), kwargs.get("protected"),
    )
    start, audio_seconds, outputs = time.time(), 0.0, {}
    for path in tqdm(inputs, desc="separate", unit="file", disable=not progress, dynamic_ncols=True):
        try:
            audio_seconds += sf.info(path).duration
        except Exception:  # noqa: BLE001 - formats soundfile cannot read still separate via ffmpeg
            pass
        outputs[path] = separator.separate_to_file(path, out_dir, **kwargs)
    elapsed = time.time() - start
    return {
        "files": len(inputs),
        "audio_seconds": round(audio_seconds, 2),
        "seconds": round(elapsed, 2),
        "x_real_time": round(audio_seconds / elapsed, 2) if elapsed > 0 else None,
        "outputs": outputs,
    }
