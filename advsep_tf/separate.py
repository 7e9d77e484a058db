"""Whole-song separation, any length, in memory that does not grow with the song.

One graph separates a stretch of a song (`separate_segment`): STFT, log1p magnitudes, patches half
a patch apart, the separator, cross-faded patches, the mixture's phase, inverse STFT. It is the
exported SavedModel's serving function (the whole song as one segment, `separate_waveforms`), the
LiteRT model's segment function (with the "dft_matmul" STFT) and, on segments of
`segment_seconds`, what `Separator` runs. Segments start on the model's patch grid and overlap by
the model's context (`transforms.model_segment_layout`), and each keeps only the samples that saw
all their context, so the segmented result equals the whole-song pass to float round-off.

`Separator.stream` is the pipeline, block by block: the input's blocks are resampled to the
model's rate (soxr, streaming: bit-identical to resampling the whole song), separated segment by
segment, resampled back, and for input above the model's rate turned into soft masks on the
input-rate mixture (`filtering.band_masks`, also on exact segments). Each stage holds a bounded
buffer, so `separate_to_file`, which reads and writes files block by block, runs in flat memory.
The output trails the input by a fixed `Separator.latency(sample_rate)` samples.

Multichannel input is separated channel by channel (the model sees mono); every stem has the
input's length, sample rate and channel count.

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
from typing import Iterable, Iterator

import numpy as np
import tensorflow as tf

from advsep_tf import filtering, transforms
from advsep_tf.config import Config
from advsep_tf.errors import AdvsepError
from advsep_tf.export.atomic import check_output_files, check_writable, folders_removed_on_failure

DEFAULT_CHUNK_PATCHES = 16
# Model-rate segments of about this length: long enough that the context the segments repeat
# (about 2 s on each side for the shipped models) costs little, short enough for flat memory.
SEGMENT_SECONDS = 30.0
# Segments of the band masking at the input's rate (frame-by-frame work: little context).
BAND_SEGMENT_SECONDS = 10.0
# How far a streaming resampler (soxr HQ) may trail its input, at the most: measured below 0.2 s
# for rates from 8 to 48 kHz and blocks of 1 to 10^6 samples.
RESAMPLER_LATENCY_SECONDS = 0.5
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


def separate_segment(estimate_patches, waveforms: tf.Tensor, valid_samples, config: Config,
                     stft: transforms.STFT, chunk_patches: int | None = None) -> tf.Tensor:
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
    patches = transforms.to_patches(stft.log_magnitude(real, imag, spec.nb_bins), spec.nb_frames, patch_hop)
    estimates = _estimate_in_chunks(estimate_patches, patches, chunk_patches, config.nb_stems)
    valid_patches = transforms.nb_patches_for(
        transforms.nb_stft_frames(valid, spec.n_fft, spec.n_hop), spec.nb_frames, patch_hop
    )
    log_estimates = transforms.from_patches(estimates, batch, _dim(real, 1), patch_hop, valid_patches)
    return stft.reconstruct(log_estimates, real, imag, length)


def separate_waveforms(estimate_patches, waveforms: tf.Tensor, config: Config, chunk_patches: int) -> tf.Tensor:
    """The whole song in one pass: (batch, nb_samples) at the model's rate -> (batch, nb_stems, nb_samples)."""
    waveforms = tf.convert_to_tensor(waveforms, tf.float32)
    return separate_segment(estimate_patches, waveforms, tf.shape(waveforms)[1], config,
                            transforms.STFT.from_config(config.spectrogram), chunk_patches)


def _dim(tensor: tf.Tensor, axis: int):
    return tensor.shape[axis] if tensor.shape[axis] is not None else tf.shape(tensor)[axis]


def _estimate_in_chunks(estimate_patches, patches: tf.Tensor, chunk_patches: int | None, nb_stems: int) -> tf.Tensor:
    if chunk_patches is None:
        return estimate_patches(patches)
    nb_patches, nb_bins, nb_frames = tf.shape(patches)[0], patches.shape[1], patches.shape[2]
    nb_chunks = (nb_patches + chunk_patches - 1) // chunk_patches
    patches = tf.pad(patches, [[0, nb_chunks * chunk_patches - nb_patches], [0, 0], [0, 0], [0, 0]])
    estimates = tf.map_fn(
        estimate_patches,
        tf.reshape(patches, [nb_chunks, chunk_patches, nb_bins, nb_frames, 1]),
        parallel_iterations=1,  # one chunk at a time: memory stays bounded
        fn_output_signature=tf.TensorSpec([chunk_patches, nb_bins, nb_frames, nb_stems], tf.float32),
    )
    return tf.reshape(estimates, [-1, nb_bins, nb_frames, nb_stems])[:nb_patches]


class SegmentWalk:
    """Runs `process(segment, valid_samples)` on the segments of `layout` as samples arrive, and
    returns the samples each segment keeps, in order (`transforms.plan_segments`, block by block).

    Blocks are arrays (..., nb_samples). A segment runs once the sample after its end has arrived
    (then it is not the song's last, whatever comes next) or at `finish`, so the segments are the
    same for any block sizes. The buffer holds at most one segment and one block.
    """

    def __init__(self, process, layout: transforms.SegmentLayout):
        self.process, self.layout = process, layout
        self.pending: list[np.ndarray] = []  # blocks not yet joined into `buffer`
        self.buffer, self.buffer_start = None, 0
        self.received = 0
        self.start = 0  # of the next segment
        self.first = True

    def push(self, block: np.ndarray) -> list[np.ndarray]:
        self.pending.append(block)
        self.received += block.shape[-1]
        kept = []
        while self.received > self.start + self.layout.size:
            kept.append(self._run(last=False))
        return kept

    def finish(self) -> list[np.ndarray]:
        if self.received == 0:
            return []
        return [self._run(last=True)]

    def _run(self, last: bool) -> np.ndarray:
        layout = self.layout
        if self.pending:
            parts = ([self.buffer] if self.buffer is not None else []) + self.pending
            self.buffer, self.pending = np.concatenate(parts, axis=-1), []
        offset = self.start - self.buffer_start
        segment = self.buffer[..., offset : offset + layout.size]
        valid = segment.shape[-1]
        if valid < layout.size:
            segment = np.pad(segment, [(0, 0)] * (segment.ndim - 1) + [(0, layout.size - valid)])
        output = self.process(segment, valid)
        keep_from = 0 if self.first else layout.left_margin
        keep_to = valid if last else layout.left_margin + layout.step
        self.first = False
        self.start += layout.step
        drop = self.start - self.buffer_start
        self.buffer, self.buffer_start = self.buffer[..., drop:], self.start
        return output[..., keep_from:keep_to]


class _Fifo:
    """Blocks (..., n) in, any number of samples out, copying only what leaves."""

    def __init__(self):
        self.parts: list[np.ndarray] = []
        self.size = 0

    def append(self, block: np.ndarray) -> None:
        if block.shape[-1]:
            self.parts.append(block)
            self.size += block.shape[-1]

    def take(self, nb_samples: int) -> np.ndarray:
        taken, needed = [], nb_samples
        while needed:
            part = self.parts[0]
            if part.shape[-1] <= needed:
                taken.append(self.parts.pop(0))
                needed -= part.shape[-1]
            else:
                taken.append(part[..., :needed])
                self.parts[0] = part[..., needed:]
                needed = 0
        self.size -= nb_samples
        return np.concatenate(taken, axis=-1)


class _FixedLatency:
    """Releases output so that after n input samples exactly max(0, n - latency) have left."""

    def __init__(self, latency: int):
        self.latency, self.released, self.held = latency, 0, _Fifo()

    def push(self, parts: list[np.ndarray], received: int) -> np.ndarray | None:
        for part in parts:
            self.held.append(part)
        due = max(0, received - self.latency) - self.released
        if due <= 0:
            return None
        if self.held.size < due:
            raise RuntimeError(f"internal error: the separation trails its input by more than {self.latency} samples")
        self.released += due
        return self.held.take(due)

    def finish(self, parts: list[np.ndarray], received: int) -> np.ndarray:
        for part in parts:
            self.held.append(part)
        if self.held.size != received - self.released:
            raise RuntimeError(f"internal error: {self.held.size} samples left for {received - self.released} still due")
        return self.held.take(self.held.size)


class _Resampler:
    """soxr's streaming resampler on (nb_channels, n) blocks; identity at equal rates."""

    def __init__(self, in_rate: int, out_rate: int, nb_channels: int):
        import soxr

        self.stream = None if in_rate == out_rate else soxr.ResampleStream(
            in_rate, out_rate, nb_channels, dtype="float32", quality="HQ")

    def push(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        if self.stream is None:
            return block
        return np.ascontiguousarray(self.stream.resample_chunk(np.ascontiguousarray(block.T), last=last).T)


class _StreamPipeline:
    """One song through the stages of `Separator.stream`, block by block ((nb_channels, n) arrays)."""

    def __init__(self, separator: "Separator", sample_rate: int, nb_channels: int):
        config = separator.config
        model_rate = config.audio.sample_rate
        self.nb_channels, self.nb_stems = nb_channels, config.nb_stems
        self.to_model = _Resampler(sample_rate, model_rate, nb_channels)
        self.model_walk = SegmentWalk(separator.separate_segment, separator.layout)
        self.from_model = _Resampler(model_rate, sample_rate, nb_channels * config.nb_stems)
        self.band_walk = None
        if separator.reconstruction == "mask" and sample_rate > model_rate:
            self.band_walk = SegmentWalk(separator.band_masks_function(sample_rate), separator.band_layout(sample_rate))
            self.mixture = _Fifo()  # the input-rate mixture, until its stems arrive
        self.output = _FixedLatency(separator.latency(sample_rate))
        self.received = self.stems_out = 0

    def push(self, block: np.ndarray) -> np.ndarray | None:
        self.received += block.shape[-1]
        if self.band_walk is not None:
            self.mixture.append(block)
        stems = self.model_walk.push(self.to_model.push(block))
        return self.output.push(self._to_input_rate(stems, last=False), self.received)

    def finish(self) -> np.ndarray:
        tail = self.to_model.push(np.zeros((self.nb_channels, 0), np.float32), last=True)
        stems = self.model_walk.push(tail) + self.model_walk.finish()
        return self.output.finish(self._to_input_rate(stems, last=True), self.received)

    def _to_input_rate(self, parts: list[np.ndarray], last: bool) -> list[np.ndarray]:
        """Model-rate stems [(c, K, n)] -> input-rate stems, masked where the band walk runs."""
        stems = np.concatenate(parts, axis=-1) if parts else np.zeros((self.nb_channels, self.nb_stems, 0), np.float32)
        if self.from_model.stream is not None:
            rows = self.nb_channels * self.nb_stems
            flat = self.from_model.push(stems.reshape(rows, stems.shape[-1]), last=last)
            stems = flat.reshape(self.nb_channels, self.nb_stems, flat.shape[-1])
        # Resampling rounds lengths: never more stems than input samples, silence for any missing.
        stems = stems[..., : self.received - self.stems_out]
        if last and self.stems_out + stems.shape[-1] < self.received:
            missing = self.received - self.stems_out - stems.shape[-1]
            stems = np.concatenate([stems, np.zeros(stems.shape[:-1] + (missing,), np.float32)], axis=-1)
        self.stems_out += stems.shape[-1]
        if self.band_walk is None:
            return [stems]
        kept = []
        if stems.shape[-1]:
            mixture = self.mixture.take(stems.shape[-1])
            kept = self.band_walk.push(np.concatenate([mixture[:, None], stems], axis=1))
        return kept + (self.band_walk.finish() if last else [])


class Separator:
    """Separate songs with a trained model.

    >>> separator = Separator.load("pretrained")                      # or a run directory, .keras, SavedModel
    >>> stems = separator.separate(waveform, sample_rate)             # {source: (nb_samples, nb_channels)}
    >>> for stems in separator.stream(blocks, sample_rate): ...       # block by block, fixed latency
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
    ):
        if reconstruction not in RECONSTRUCTIONS:
            raise AdvsepError(f"reconstruction must be one of {', '.join(RECONSTRUCTIONS)}, got '{reconstruction}'")
        if channel_masks not in CHANNEL_MASKS:
            raise AdvsepError(f"channel_masks must be one of {', '.join(CHANNEL_MASKS)}, got '{channel_masks}'")
        # NaN or a negative power would give NaN or inverted masks; far above 10, |S|^p overflows.
        try:
            valid_power = 0 < float(mask_power) <= 10
        except (TypeError, ValueError):
            valid_power = False
        if not valid_power:
            raise AdvsepError(f"mask_power must be a number in (0, 10], got {mask_power!r}")
        self.config = config
        self.chunk_patches = chunk_patches
        self.reconstruction = reconstruction
        self.mask_power = mask_power
        self.channel_masks = channel_masks
        spec = config.spectrogram
        quantum = transforms.inference_patch_hop(spec.nb_frames) * spec.n_hop
        shortest = transforms.minimum_model_segment(spec.n_fft, spec.n_hop, spec.nb_frames)
        segment = max(shortest, -(-int(math.ceil(segment_seconds * config.audio.sample_rate)) // quantum) * quantum)
        self.layout = transforms.model_segment_layout(spec.n_fft, spec.n_hop, spec.nb_frames, segment)
        self.segment_samples = segment
        self._estimate_patches = estimate_patches
        stft = transforms.STFT.from_config(spec)
        self._separate_segment = tf.function(
            lambda waveforms, valid: separate_segment(self._estimate_patches, waveforms, valid, config, stft, chunk_patches),
            input_signature=[tf.TensorSpec([None, segment], tf.float32), tf.TensorSpec([], tf.int32)],
        )
        self._band_masks = {}

    @classmethod
    def from_checkpoint(cls, path: str, chunk_patches: int = DEFAULT_CHUNK_PATCHES, **kwargs) -> "Separator":
        """From a training run directory, a .keras file or "pretrained"."""
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
        """A run directory, a .keras file, a SavedModel directory or "pretrained"."""
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            return cls.from_saved_model(path, chunk_patches, **kwargs)
        return cls.from_checkpoint(path, chunk_patches, **kwargs)

    def separate_segment(self, segment: np.ndarray, valid_samples: int) -> np.ndarray:
        """(nb_channels, segment_samples) at the model's rate -> (nb_channels, nb_stems, segment_samples)."""
        return self._separate_segment(tf.constant(segment, tf.float32), tf.constant(valid_samples, tf.int32)).numpy()

    def band_layout(self, sample_rate: int) -> transforms.SegmentLayout:
        stft = filtering.band_stft(self.config, sample_rate)
        return transforms.frame_segment_layout(stft.n_fft, stft.n_hop, int(BAND_SEGMENT_SECONDS * sample_rate))

    def band_masks_function(self, sample_rate: int):
        """(nb_channels, 1 + nb_stems, n) mixture and stems at `sample_rate`, valid samples ->
        (nb_channels, nb_stems, n) full-band stems (`filtering.band_masks`)."""
        if sample_rate not in self._band_masks:
            config, power, shared = self.config, self.mask_power, self.channel_masks == "shared"
            size = self.band_layout(sample_rate).size
            graph = tf.function(
                lambda parts: filtering.band_masks(parts[:, 0], parts[:, 1:], config, sample_rate, power, shared),
                input_signature=[tf.TensorSpec([None, 1 + config.nb_stems, size], tf.float32)],
            )
            # Past the song's end the segment holds zeros: masked silence, cut off by the walk.
            self._band_masks[sample_rate] = lambda parts, valid: graph(tf.constant(parts)).numpy()
        return self._band_masks[sample_rate]

    def latency(self, sample_rate: int) -> int:
        """How many samples (at `sample_rate`) `stream`'s output trails its input: after n input
        samples, max(0, n - latency) output samples of each source have been yielded.

        The model-rate segment (a segment runs once the sample after its end has arrived), at the
        input's rate, plus an allowance for each streaming resampler and, for input above the
        model's rate with "mask" reconstruction, the band-masking segment.
        """
        model_rate = self.config.audio.sample_rate
        latency = math.ceil(self.layout.size * sample_rate / model_rate) + 1
        if sample_rate != model_rate:
            latency += 2 * math.ceil(RESAMPLER_LATENCY_SECONDS * sample_rate)
        if self.reconstruction == "mask" and sample_rate > model_rate:
            latency += self.band_layout(sample_rate).size
        return latency

    def stream(self, blocks: Iterable[np.ndarray], sample_rate: int) -> Iterator[dict[str, np.ndarray]]:
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
                    raise AdvsepError(f"expected blocks of shape (nb_samples, nb_channels), got {block.shape}")
                pipeline = _StreamPipeline(self, sample_rate, nb_channels)
            channels = block[None] if mono else block.T
            if block.ndim != (1 if mono else 2) or channels.shape[0] != pipeline.nb_channels:
                raise AdvsepError(f"a block of shape {block.shape} in a stream of {pipeline.nb_channels}-channel blocks")
            if not np.all(np.isfinite(block)):
                raise AdvsepError(f"the block after sample {received} holds NaN or infinite samples")
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
        return {s: (stems[0, k] if mono else np.ascontiguousarray(stems[:, k].T)) for k, s in enumerate(self.config.sources)}

    def separate(self, waveform: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        """(nb_samples,) or (nb_samples, nb_channels) float -> {source: array of the input's shape}."""
        waveform = np.asarray(waveform, dtype=np.float32)
        if waveform.ndim not in (1, 2) or waveform.shape[0] == 0:
            raise AdvsepError(f"expected a (nb_samples, nb_channels) waveform, got shape {waveform.shape}")
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
        filename_format: str = "{track}/{source}.{codec}",
        codec: str = "wav",
        audio_adapter=None,
        overwrite: bool = False,
        protected: dict[str, str] | None = None,
        progress=None,
        allow_truncated: bool = False,
        truncated: list[str] | None = None,
        stdin_name: str = "stdin",
    ) -> list[str]:
        """Separate one audio file; write one file per source as the stems are made; return their paths.

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

        outputs = plan_separation([input_path], out_dir, self.config, filename_format, codec,
                                  overwrite, protected, stdin_name=stdin_name)
        adapter = audio_adapter or AudioAdapter.default()
        stem_folders = [os.path.dirname(p) for p in outputs[input_path]]
        with folders_removed_on_failure(out_dir, *stem_folders):
            # Only asked for when wanted: an adapter written before the option need not know it.
            audio = (adapter.read_blocks(input_path, allow_truncated=True) if allow_truncated
                     else adapter.read_blocks(input_path))
            with ExitStack() as stack:
                writers = [
                    stack.enter_context(
                        adapter.open_writer(path, audio.sample_rate, audio.nb_channels, codec))
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

    def separate_to_stream(self, input_path: str, source: str, codec: str = "wav",
                           audio_adapter=None, allow_truncated: bool = False) -> str | None:
        """One stem of `input_path` ("-": standard input) to standard output, as it is made.
        Returns None, or with `allow_truncated` the message saying that the input was truncated
        and only its decodable part separated."""
        from advsep_tf.data_pipelines.audio import STDIO, AudioAdapter

        if source not in self.config.sources:
            raise AdvsepError(f"--stem {source}: this model separates {', '.join(self.config.sources)}")
        adapter = audio_adapter or AudioAdapter.default()
        audio = (adapter.read_blocks(input_path, allow_truncated=True) if allow_truncated
                 else adapter.read_blocks(input_path))
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
            raise AdvsepError(message if message.startswith(f"{audio.name}:") else f"{audio.name}: {message}") from None


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


def check_paths(inputs: list[str], out_dir: str) -> dict[str, tuple[int, int, int | None]]:
    """Every input is a readable file whose header parses and whose first samples decode, and
    `out_dir` can be a folder: checked before the model loads, so that a bad input among many
    stops the command before any is separated. Returns {input: (nb_channels, sample_rate,
    nb_samples or None)} (`data_pipelines.audio.probe`); standard input is not probed."""
    from advsep_tf.data_pipelines.audio import STDIO, probe

    for path in inputs:
        if path == STDIO:  # standard input: read when separating
            continue
        if os.path.isdir(path):
            raise AdvsepError(f"{path}: is a folder; give the audio files in it (e.g. {os.path.join(path, '*.wav')})")
        if not os.path.exists(path):
            raise AdvsepError(f"{path}: input file not found")
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise AdvsepError(f"{path}: not a readable file")
    if os.path.lexists(out_dir) and not os.path.isdir(out_dir):
        raise AdvsepError(f"{out_dir}: exists and is a file; --out must be a folder")
    check_writable(out_dir)
    return {path: probe(path) for path in dict.fromkeys(inputs) if path != STDIO}


def plan_separation(
    inputs: list[str],
    out_dir: str,
    config: Config,
    filename_format: str = "{track}/{source}.{codec}",
    codec: str = "wav",
    overwrite: bool = False,
    protected: dict[str, str] | None = None,
    stdin_name: str = "stdin",
) -> dict[str, list[str]]:
    """{input: its stems' paths, in `config.sources` order}, after refusing, before any work, what
    would fail or destroy something: see `check_paths`; two stems on one path (inputs of the same
    track name, or a --filename-format without {source}); an existing file where a stem goes
    (replaced only with `overwrite` and only when `out_dir`'s separation record lists it as a
    stem written there, never an input or a `protected` path); an input shorter than one model
    frame (measured from its header, or ffprobe's)."""
    from advsep_tf.data_pipelines.audio import STDIO

    probed = check_paths(inputs, out_dir)
    outputs, writer = {}, {}
    for path in inputs:
        outputs[path] = []
        for source in config.sources:
            try:
                relative = filename_format.format(
                    track=track_name(path, stdin_name), source=source, codec=codec)
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
    stems = [p for paths in outputs.values() for p in paths]
    check_output_files(
        stems, overwrite, "the stems of an earlier separation",
        {**{path: "an input" for path in inputs if path != STDIO}, **(protected or {})},
    )
    earlier = separated_stems(out_dir)
    for stem in stems:
        if os.path.lexists(stem) and os.path.realpath(stem) not in earlier:
            raise AdvsepError(
                f"{stem}: exists and is not a stem an earlier separation wrote (not listed in "
                f"{os.path.join(out_dir, SEPARATION_RECORD)}); not replaced, even with "
                "--overwrite: choose another --out"
            )
    for path, (_, sample_rate, nb_samples) in probed.items():
        # nb_samples None: the container does not say; measured as it decodes.
        problem = nb_samples is not None and too_short(config, nb_samples, sample_rate)
        if problem:
            raise AdvsepError(f"{path}: {problem}")
    return outputs


def track_name(input_path: str, stdin_name: str = "stdin") -> str:
    """The file's name without extension; for MUSDB-style <track>/mixture.wav, the folder's name;
    `stdin_name` for standard input ("-")."""
    if input_path == "-":
        return stdin_name
    name = os.path.splitext(os.path.basename(input_path))[0]
    if name == "mixture":
        return os.path.basename(os.path.dirname(os.path.abspath(input_path))) or name
    return name


def _fit_length(stems: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad the last axis to `length`."""
    if stems.shape[-1] >= length:
        return stems[..., :length]
    return np.pad(stems, [(0, 0)] * (stems.ndim - 1) + [(0, length - stems.shape[-1])])


def separate_files(separator: Separator, inputs: list[str], out_dir: str, progress: bool = True, **kwargs) -> dict:
    """Many files, with a progress bar in seconds of audio; returns a summary (files, seconds of
    audio, x real time).

    Every input and output is checked (`plan_separation`) before the first file is separated;
    `kwargs` are `separate_to_file`'s.
    """
    import soundfile as sf
    from tqdm.auto import tqdm

    plan_separation(
        inputs, out_dir, separator.config, kwargs.get("filename_format", "{track}/{source}.{codec}"),
        kwargs.get("codec", "wav"), kwargs.get("overwrite", False), kwargs.get("protected"),
        stdin_name=kwargs.get("stdin_name", "stdin"),
    )
    truncated = kwargs.setdefault("truncated", [])
    durations = {}
    for path in inputs:
        if path == "-":  # libsndfile reads "-" as standard input, and closes it
            durations[path] = None
            continue
        try:
            durations[path] = sf.info(path).duration
        except Exception:  # noqa: BLE001 - formats soundfile cannot read: their length is learnt as they go
            durations[path] = None
    # A bar with a total only when every length is known up front (a pipe's is not).
    total = sum(durations.values()) if all(durations.values()) else None
    start, audio_seconds, outputs = time.time(), 0.0, {}
    with tqdm(total=total, desc="separate", unit="s", unit_scale=True, disable=not progress, dynamic_ncols=True,
              bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} s of audio [{elapsed}<{remaining}, {rate_fmt}{postfix}]") as bar:
        for i, path in enumerate(inputs):
            bar.set_postfix_str(f"file {i + 1}/{len(inputs)}")
            seconds = []

            def advance(step, seconds=seconds):
                seconds.append(step)
                bar.update(step if bar.total is None else min(step, bar.total - bar.n))  # no float overshoot

            outputs[path] = separator.separate_to_file(path, out_dir, progress=advance, **kwargs)
            audio_seconds += sum(seconds)
    elapsed = time.time() - start
    return {
        "files": len(inputs),
        "audio_seconds": round(audio_seconds, 2),
        "seconds": round(elapsed, 2),
        "x_real_time": round(audio_seconds / elapsed, 2) if elapsed > 0 else None,
        "outputs": outputs,
        "truncated": truncated,
    }


# Beside the stems, in --out: the stems separations wrote there, the only files --overwrite
# replaces (a user's own file at a stem's path is not one of them).
SEPARATION_RECORD = ".advsep-tf-separate.json"


def separated_stems(out_dir: str) -> set[str]:
    """Real paths of the stems that separations into `out_dir` wrote (its SEPARATION_RECORD)."""
    import json

    try:
        with open(os.path.join(out_dir, SEPARATION_RECORD), encoding="utf-8") as f:
            stems = json.load(f).get("stems", [])
    except (OSError, ValueError, AttributeError):
        return set()
    return {os.path.realpath(os.path.join(out_dir, stem))
            for stem in stems if isinstance(stem, str)}


def record_separation(out_dir: str, stems: list[str]) -> None:
    """Add `stems` to `out_dir`'s SEPARATION_RECORD."""
    import json

    from advsep_tf.export.atomic import write_atomically

    root = os.path.realpath(out_dir)
    paths = separated_stems(out_dir) | {os.path.realpath(p) for p in stems}
    known = sorted(os.path.relpath(p, root) for p in paths)
    os.makedirs(out_dir, exist_ok=True)
    record = json.dumps({"stems": known}, indent=1) + "\n"
    write_atomically(os.path.join(out_dir, SEPARATION_RECORD), record)

