"""The separator: one graph that separates a stretch of a song, and `Separator`, which runs it on
songs of any length.

One graph separates a stretch of a song (`separate_segment`): STFT, log1p magnitudes, patches half
a patch apart, the separator, cross-faded patches, the mixture's phase, inverse STFT. It is the
exported SavedModel's serving function (the whole song as one segment, `separate_waveforms`), the
LiteRT model's segment function (with the "dft_matmul" STFT) and, on segments of
`segment_seconds`, what `Separator` runs. Segments start on the model's patch grid and overlap by
the model's context (`transforms.model_segment_layout`), and each keeps only the samples that saw
all their context, so the segmented result equals the whole-song pass to float round-off.

`Separator.stream` runs the streaming pipeline (`advsep_tf.streaming`: resampling, the segment
walk, band masks above the model's rate) block by block, so `separate_to_file`, which reads and
writes files block by block, runs in flat memory. The output trails the input by a fixed
`Separator.latency(sample_rate)` samples. Where the stems go, and what is checked before any work,
is `advsep_tf.stem_files`.

Multichannel input is separated channel by channel (the model sees mono); every stem has the
input's length, sample rate and channel count.
"""

from __future__ import annotations

import math
import os
from typing import Iterable, Iterator

import numpy as np
import tensorflow as tf

from advsep_tf import filtering, transforms
from advsep_tf.config import Config
from advsep_tf.errors import AdvsepError
from advsep_tf.files import folders_removed_on_failure
from advsep_tf.stem_files import FILENAME_FORMAT, plan_separation, record_separation, too_short
from advsep_tf.streaming import RESAMPLER_LATENCY_SECONDS, StreamPipeline

DEFAULT_CHUNK_PATCHES = 16
# The silence gate of mask reconstruction (`filtering.gate_masks`), in dB; None: off.
DEFAULT_SILENCE_GATE_DB = None
# Model-rate segments of about this length: long enough that the context the segments repeat
# (about 2 s on each side for the shipped models) costs little, short enough for flat memory.
SEGMENT_SECONDS = 30.0
# Segments of the band masking at the input's rate (frame-by-frame work: little context).
BAND_SEGMENT_SECONDS = 10.0
# How stems reach an input rate above the model's (see Separator): "direct" resamples the model-rate
# stems (nothing above the model's band); "mask" turns them into soft masks for the input-rate
# mixture STFT, extended above the band, so the stems keep the high band and sum to the mixture.
RECONSTRUCTIONS = ("mask", "direct")
# How the masks of a recording's channels relate (with "mask" reconstruction above the model's
# rate). The model hears each channel alone; "shared" gives every channel the masks of the
# estimates' magnitudes summed over channels, which averages out the channels' independent
# errors (on the 14 stereo test previews, the shipped model: +0.15 dB vocals and +0.20 dB
# accompaniment SDR, better on all 14 for both; advsep_tf/pretrained/MODEL_CARD.md); "independent"
# keeps each channel's own masks, for recordings whose channels hold different sources (a voice
# panned hard to one side).
CHANNEL_MASKS = ("shared", "independent")


def separate_segment(
    estimate_patches,
    waveforms: tf.Tensor,
    valid_samples,
    config: Config,
    stft: transforms.STFT,
    chunk_patches: int | None = None,
) -> tf.Tensor:
    """(batch, nb_samples) mono waveforms at the model's rate, of which the first `valid_samples`
    are the song's (the rest is past its end) -> (batch, nb_stems, nb_samples).

    `estimate_patches`: (n, nb_bins, nb_frames, 1) -> (n, nb_bins, nb_frames, nb_stems), called on
    `chunk_patches` patches at a time (None: all at once; static shapes stay static, for LiteRT).
    Samples past `valid_samples`, and the patches the whole song would not have, count for nothing.
    """
    spec = config.spectrogram
    patch_hop = transforms.inference_patch_hop(spec.nb_frames)
    waveforms = tf.convert_to_tensor(waveforms, tf.float32)
    batch, length = _dim(waveforms, 0), _dim(waveforms, 1)
    valid = tf.clip_by_value(tf.cast(valid_samples, tf.int32), 1, length)
    waveforms = waveforms * tf.cast(tf.range(length) < valid, tf.float32)
    real, imag = stft.forward(waveforms)
    patches = transforms.to_patches(
        stft.log_magnitude(real, imag, spec.nb_bins), spec.nb_frames, patch_hop
    )
    estimates = _estimate_in_chunks(estimate_patches, patches, chunk_patches, config.nb_stems)
    valid_patches = transforms.nb_patches_for(
        transforms.nb_stft_frames(valid, spec.n_fft, spec.n_hop), spec.nb_frames, patch_hop
    )
    log_estimates = transforms.from_patches(
        estimates, batch, _dim(real, 1), patch_hop, valid_patches
    )
    return stft.reconstruct(log_estimates, real, imag, length)


def separate_waveforms(
    estimate_patches, waveforms: tf.Tensor, config: Config, chunk_patches: int
) -> tf.Tensor:
    """The whole song in one pass: (batch, nb_samples) at the model's rate -> (batch, nb_stems,
    nb_samples)."""
    waveforms = tf.convert_to_tensor(waveforms, tf.float32)
    return separate_segment(
        estimate_patches,
        waveforms,
        tf.shape(waveforms)[1],
        config,
        transforms.STFT.from_config(config.spectrogram),
        chunk_patches,
    )


def _dim(tensor: tf.Tensor, axis: int):
    return tensor.shape[axis] if tensor.shape[axis] is not None else tf.shape(tensor)[axis]


def _estimate_in_chunks(
    estimate_patches, patches: tf.Tensor, chunk_patches: int | None, nb_stems: int
) -> tf.Tensor:
    if chunk_patches is None:
        return estimate_patches(patches)
    nb_patches, nb_bins, nb_frames = tf.shape(patches)[0], patches.shape[1], patches.shape[2]
    nb_chunks = (nb_patches + chunk_patches - 1) // chunk_patches
    patches = tf.pad(patches, [[0, nb_chunks * chunk_patches - nb_patches], [0, 0], [0, 0], [0, 0]])
    estimates = tf.map_fn(
        estimate_patches,
        tf.reshape(patches, [nb_chunks, chunk_patches, nb_bins, nb_frames, 1]),
        parallel_iterations=1,  # one chunk at a time: memory stays bounded
        fn_output_signature=tf.TensorSpec(
            [chunk_patches, nb_bins, nb_frames, nb_stems], tf.float32
        ),
    )
    return tf.reshape(estimates, [-1, nb_bins, nb_frames, nb_stems])[:nb_patches]


class Separator:
    """Separate songs with a trained model.

    >>> separator = Separator.load("pretrained")  # or a run directory, .keras, SavedModel
    >>> stems = separator.separate(waveform, sample_rate)  # {source: (nb_samples, nb_channels)}
    >>> for stems in separator.stream(blocks, sample_rate): ...  # block by block, fixed latency
    >>> separator.separate_to_file("song.wav", "out/")                # out/song/<source>.wav
    """

    def __init__(
        self,
        estimate_patches,
        config: Config,
        chunk_patches: int = DEFAULT_CHUNK_PATCHES,
        segment_seconds: float = SEGMENT_SECONDS,
        reconstruction: str = "mask",
        mask_power: float = 1.0,
        channel_masks: str = CHANNEL_MASKS[0],
        band_extension: str = filtering.BAND_EXTENSIONS[0],
        silence_gate_db: float | None = DEFAULT_SILENCE_GATE_DB,
    ):
        if reconstruction not in RECONSTRUCTIONS:
            raise AdvsepError(
                f"reconstruction must be one of {', '.join(RECONSTRUCTIONS)}, got "
                f"'{reconstruction}'"
            )
        if channel_masks not in CHANNEL_MASKS:
            raise AdvsepError(
                f"channel_masks must be one of {', '.join(CHANNEL_MASKS)}, got '{channel_masks}'"
            )
        if band_extension not in filtering.BAND_EXTENSIONS:
            raise AdvsepError(
                f"band_extension must be one of {', '.join(filtering.BAND_EXTENSIONS)}, got "
                f"'{band_extension}'"
            )
        # NaN or a negative power would give NaN or inverted masks; far above 10, |S|^p overflows.
        try:
            valid_power = 0 < float(mask_power) <= 10
        except (TypeError, ValueError):
            valid_power = False
        if not valid_power:
            raise AdvsepError(f"mask_power must be a number in (0, 10], got {mask_power!r}")
        if silence_gate_db is not None and not -100 <= silence_gate_db <= 0:
            raise AdvsepError(
                f"silence_gate_db must be in [-100, 0] dB (or None: off), got {silence_gate_db!r}"
            )
        self.config = config
        self.chunk_patches = chunk_patches
        self.reconstruction = reconstruction
        self.mask_power = mask_power
        self.channel_masks = channel_masks
        self.band_extension = band_extension
        self.silence_gate_db = silence_gate_db
        spec = config.spectrogram
        quantum = transforms.inference_patch_hop(spec.nb_frames) * spec.n_hop
        shortest = transforms.minimum_model_segment(spec.n_fft, spec.n_hop, spec.nb_frames)
        segment = max(
            shortest,
            -(-int(math.ceil(segment_seconds * config.audio.sample_rate)) // quantum) * quantum,
        )
        self.layout = transforms.model_segment_layout(
            spec.n_fft, spec.n_hop, spec.nb_frames, segment
        )
        self.segment_samples = segment
        self._estimate_patches = estimate_patches
        stft = transforms.STFT.from_config(spec)
        self._separate_segment = tf.function(
            lambda waveforms, valid: separate_segment(
                self._estimate_patches, waveforms, valid, config, stft, chunk_patches
            ),
            input_signature=[
                tf.TensorSpec([None, segment], tf.float32),
                tf.TensorSpec([], tf.int32),
            ],
            # Not autographed: the graph has no Python control flow on tensors, and autograph's
            # source transformation was most of a song's start-up (8 of 11 s on 2 cores).
            autograph=False,
        )
        self._band_masks = {}

    @classmethod
    def from_checkpoint(
        cls, path: str, chunk_patches: int = DEFAULT_CHUNK_PATCHES, **kwargs
    ) -> "Separator":
        """From a training run directory, a .keras file or "pretrained"."""
        from advsep_tf.runs import load_run_model

        model = load_run_model(path)
        separator = model.separator
        return cls(
            lambda patches: separator(patches, training=False),
            model.separation_config,
            chunk_patches,
            **kwargs,
        )

    @classmethod
    def from_saved_model(
        cls, path: str, chunk_patches: int = DEFAULT_CHUNK_PATCHES, **kwargs
    ) -> "Separator":
        """From a SavedModel written by advsep-tf-export (its `separate_spectrogram` signature)."""
        from advsep_tf.saved_model_reader import read_saved_model

        loaded, config = read_saved_model(path)
        # The closure keeps `loaded` (and so its variables) alive as long as the Separator.
        return cls(
            lambda patches: loaded.separate_spectrogram(patches)["estimates"],
            config,
            chunk_patches,
            **kwargs,
        )

    @classmethod
    def load(cls, path: str, chunk_patches: int = DEFAULT_CHUNK_PATCHES, **kwargs) -> "Separator":
        """A run directory, a .keras file, a SavedModel directory or "pretrained"."""
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            return cls.from_saved_model(path, chunk_patches, **kwargs)
        return cls.from_checkpoint(path, chunk_patches, **kwargs)

    def separate_segment(self, segment: np.ndarray, valid_samples: int) -> np.ndarray:
        """(nb_channels, segment_samples) at the model's rate -> (nb_channels, nb_stems,
        segment_samples)."""
        return self._separate_segment(
            tf.constant(segment, tf.float32), tf.constant(valid_samples, tf.int32)
        ).numpy()

    def masks_at_input_rate(self, sample_rate: int) -> bool:
        """Whether the stems are masks of the input-rate mixture (`band_masks_function`): with
        "mask" reconstruction, for input above the model's rate or with the silence gate on."""
        above = sample_rate > self.config.audio.sample_rate
        return self.reconstruction == "mask" and (above or self.silence_gate_db is not None)

    def band_layout(self, sample_rate: int) -> transforms.SegmentLayout:
        stft = filtering.band_stft(self.config, sample_rate)
        context = 0
        if self.silence_gate_db is not None:
            context = filtering.gate_context_frames(stft.n_hop, sample_rate)
        return transforms.frame_segment_layout(
            stft.n_fft, stft.n_hop, int(BAND_SEGMENT_SECONDS * sample_rate), context
        )

    def band_masks_function(self, sample_rate: int):
        """(nb_channels, 1 + nb_stems, n) mixture and stems at `sample_rate`, valid samples ->
        (nb_channels, nb_stems, n) full-band stems (`filtering.band_masks`)."""
        if sample_rate not in self._band_masks:
            config, power, shared = self.config, self.mask_power, self.channel_masks == "shared"
            extension, gate = self.band_extension, self.silence_gate_db
            size = self.band_layout(sample_rate).size
            graph = tf.function(
                lambda parts: filtering.band_masks(
                    parts[:, 0], parts[:, 1:], config, sample_rate, power, shared, extension, gate
                ),
                input_signature=[tf.TensorSpec([None, 1 + config.nb_stems, size], tf.float32)],
                autograph=False,
            )
            # Past the song's end the segment holds zeros: masked silence, cut off by the walk.
            self._band_masks[sample_rate] = lambda parts, valid: graph(tf.constant(parts)).numpy()
        return self._band_masks[sample_rate]

    def latency(self, sample_rate: int) -> int:
        """How many samples (at `sample_rate`) `stream`'s output trails its input: after n input
        samples, max(0, n - latency) output samples of each source have been yielded.

        The model-rate segment (a segment runs once the sample after its end has arrived), at the
        input's rate, plus an allowance for each streaming resampler and, where the stems are masks
        at the input's rate (`masks_at_input_rate`), the band-masking segment.
        """
        model_rate = self.config.audio.sample_rate
        latency = math.ceil(self.layout.size * sample_rate / model_rate) + 1
        if sample_rate != model_rate:
            latency += 2 * math.ceil(RESAMPLER_LATENCY_SECONDS * sample_rate)
        if self.masks_at_input_rate(sample_rate):
            latency += self.band_layout(sample_rate).size
        return latency

    def stream(
        self, blocks: Iterable[np.ndarray], sample_rate: int
    ) -> Iterator[dict[str, np.ndarray]]:
        """Separate a song that arrives in blocks; yield {source: block} as stems become known.

        Blocks: float arrays (n,) or (n, nb_channels), any sizes, one channel count. The output
        trails the input by `latency(sample_rate)` samples (see there); once `blocks` is
        exhausted the rest follows, so the yielded blocks join into exactly what `separate` returns
        for the whole song. Memory holds about one segment, not the song.
        """
        pipeline, mono, received = None, None, 0
        for block in blocks:
            block = np.asarray(block, dtype=np.float32)
            if pipeline is None:
                mono = block.ndim == 1
                nb_channels = 1 if mono else (block.shape[1] if block.ndim == 2 else 0)
                if nb_channels == 0:
                    raise AdvsepError(
                        f"expected blocks of shape (nb_samples, nb_channels), got {block.shape}"
                    )
                pipeline = StreamPipeline(self, sample_rate, nb_channels)
            channels = block[None] if mono else block.T
            if block.ndim != (1 if mono else 2) or channels.shape[0] != pipeline.nb_channels:
                raise AdvsepError(
                    f"a block of shape {block.shape} in a stream of "
                    f"{pipeline.nb_channels}-channel blocks"
                )
            if not np.all(np.isfinite(block)):
                raise AdvsepError(
                    f"the block after sample {received} holds NaN or infinite samples"
                )
            received += block.shape[0]
            out = pipeline.push(np.ascontiguousarray(channels))
            if out is not None:
                yield self._as_stems(out, mono)
        if pipeline is None or received == 0:
            raise AdvsepError("no audio samples to separate")
        problem = too_short(self.config, received, sample_rate)
        if problem:
            raise AdvsepError(problem)
        yield self._as_stems(pipeline.finish(), mono)

    def _as_stems(self, stems: np.ndarray, mono: bool) -> dict[str, np.ndarray]:
        """(nb_channels, nb_stems, n) -> {source: (n,) or (n, nb_channels)}."""
        return {
            s: (stems[0, k] if mono else np.ascontiguousarray(stems[:, k].T))
            for k, s in enumerate(self.config.sources)
        }

    def separate(self, waveform: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        """(nb_samples,) or (nb_samples, nb_channels) float -> {source: array of the input's
        shape}."""
        waveform = np.asarray(waveform, dtype=np.float32)
        if waveform.ndim not in (1, 2) or waveform.shape[0] == 0:
            raise AdvsepError(
                f"expected a (nb_samples, nb_channels) waveform, got shape {waveform.shape}"
            )
        if not np.all(np.isfinite(waveform)):
            raise AdvsepError("waveform holds NaN or infinite samples")
        problem = too_short(self.config, waveform.shape[0], sample_rate)
        if problem:
            raise AdvsepError(problem)
        parts = list(self.stream([waveform], sample_rate))
        return {s: np.concatenate([p[s] for p in parts], axis=0) for s in self.config.sources}

    def separate_to_file(
        self,
        input_path: str,
        out_dir: str,
        filename_format: str = FILENAME_FORMAT,
        codec: str = "wav",
        audio_adapter=None,
        overwrite: bool = False,
        protected: dict[str, str] | None = None,
        progress=None,
        allow_truncated: bool = False,
        truncated: list[str] | None = None,
        stdin_name: str = "stdin",
    ) -> list[str]:
        """Separate one audio file; write one file per source as the stems are made; return their
        paths.

        The input is read and the stems written block by block (flat memory); each stem file
        appears complete at the end, or not at all, and holds exactly as many samples as the
        decoder produced. A truncated or damaged input is an error; with `allow_truncated` its
        decodable part is separated and the error's message appended to `truncated`. Existing
        files at those paths are replaced only with `overwrite` (see `plan_separation`), and
        folders made for the stems are removed again if the separation fails.
        `progress(seconds)` is called with the seconds of input separated since its last call.
        Standard input ("-") is named `stdin_name` in the stems' paths.
        """
        from contextlib import ExitStack

        from advsep_tf.data_pipelines.audio import AudioAdapter

        outputs = plan_separation(
            [input_path],
            out_dir,
            self.config,
            filename_format,
            codec,
            overwrite,
            protected,
            stdin_name=stdin_name,
        )
        adapter = audio_adapter or AudioAdapter.default()
        stem_folders = [os.path.dirname(p) for p in outputs[input_path]]
        with folders_removed_on_failure(out_dir, *stem_folders):
            # Only asked for when wanted: an adapter written before the option need not know it.
            audio = (
                adapter.read_blocks(input_path, allow_truncated=True)
                if allow_truncated
                else adapter.read_blocks(input_path)
            )
            with ExitStack() as stack:
                writers = [
                    stack.enter_context(
                        adapter.open_writer(path, audio.sample_rate, audio.nb_channels, codec)
                    )
                    for path in outputs[input_path]
                ]
                for stems in self._stream_file(audio):
                    for writer, stem in zip(writers, stems.values()):
                        writer.write(stem)
                    if progress is not None:
                        progress(len(next(iter(stems.values()))) / audio.sample_rate)
        record_separation(out_dir, outputs[input_path])
        if getattr(audio, "truncated", None) and truncated is not None:
            truncated.append(audio.truncated)
        return outputs[input_path]

    def separate_to_stream(
        self,
        input_path: str,
        source: str,
        codec: str = "wav",
        audio_adapter=None,
        allow_truncated: bool = False,
    ) -> str | None:
        """One stem of `input_path` ("-": standard input) to standard output, as it is made.
        Returns None, or with `allow_truncated` the message saying that the input was truncated
        and only its decodable part separated."""
        from advsep_tf.data_pipelines.audio import STDIO, AudioAdapter

        if source not in self.config.sources:
            raise AdvsepError(
                f"--stem {source}: this model separates {', '.join(self.config.sources)}"
            )
        adapter = audio_adapter or AudioAdapter.default()
        audio = (
            adapter.read_blocks(input_path, allow_truncated=True)
            if allow_truncated
            else adapter.read_blocks(input_path)
        )
        with adapter.open_writer(STDIO, audio.sample_rate, audio.nb_channels, codec) as writer:
            for stems in self._stream_file(audio):
                writer.write(stems[source])
        return getattr(audio, "truncated", None)

    def _stream_file(self, audio) -> Iterator[dict[str, np.ndarray]]:
        """`stream` over a file's `AudioBlocks`; every error line names the file."""
        try:
            yield from self.stream(audio, audio.sample_rate)
        except AdvsepError as error:
            message = str(error)
            raise AdvsepError(
                message if message.startswith(f"{audio.name}:") else f"{audio.name}: {message}"
            ) from None
