"""Streaming separation: a song arrives in blocks and its stems leave in blocks, in memory that
does not grow with the song.

`SegmentWalk` is the one segment walker: `Separator` runs the model's segments and the
input-rate band masking through it, block by block. `StreamPipeline` is what `Separator.stream`
runs, stage by stage: the input's blocks are resampled to the model's rate (soxr, streaming:
bit-identical to resampling the whole song), separated segment by segment, resampled back, and
for input above the model's rate turned into soft masks on the input-rate mixture (on exact
segments too). Each stage holds a bounded buffer, and the output trails the input by a fixed
number of samples (`Separator.latency`).

numpy and soxr only: no TensorFlow here (the separator's graphs arrive as functions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from advsep_tf import transforms

# How far a streaming resampler (soxr HQ) may trail its input, at the most: measured below 0.2 s
# for rates from 8 to 48 kHz and blocks of 1 to 10^6 samples.
RESAMPLER_LATENCY_SECONDS = 0.5


class SegmentWalk:
    """Runs `process(segment, valid_samples)` on the segments of `layout` as samples arrive, and
    returns the samples each segment keeps, in order: the one segment walker of the package.

    Segments start at 0, `layout.step` apart; a segment is the song's last when it reaches the
    song's end. The first keeps its output from 0, the others from `layout.left_margin`; each keeps
    up to where the next one's kept part starts (the last: to the song's end). So the kept parts
    tile the song. The LiteRT runner (`export/litert_runner.py`, which runs without advsep_tf)
    plans the same segments; tests/test_layers.py checks that it does.

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
            raise RuntimeError(
                "internal error: the separation trails its input by more than "
                f"{self.latency} samples"
            )
        self.released += due
        return self.held.take(due)

    def finish(self, parts: list[np.ndarray], received: int) -> np.ndarray:
        for part in parts:
            self.held.append(part)
        if self.held.size != received - self.released:
            due = received - self.released
            raise RuntimeError(f"internal error: {self.held.size} samples left for {due} still due")
        return self.held.take(self.held.size)


class _Resampler:
    """soxr's streaming resampler on (nb_channels, n) blocks; identity at equal rates."""

    def __init__(self, in_rate: int, out_rate: int, nb_channels: int):
        import soxr

        self.stream = (
            None
            if in_rate == out_rate
            else soxr.ResampleStream(in_rate, out_rate, nb_channels, dtype="float32", quality="HQ")
        )

    def push(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        if self.stream is None:
            return block
        resampled = self.stream.resample_chunk(np.ascontiguousarray(block.T), last=last)
        return np.ascontiguousarray(resampled.T)


class StreamPipeline:
    """One song through the stages of `Separator.stream`, block by block ((nb_channels, n)
    arrays)."""

    def __init__(self, separator, sample_rate: int, nb_channels: int):
        """`separator`: the `advsep_tf.separate.Separator` whose graphs and layouts run here."""
        config = separator.config
        model_rate = config.audio.sample_rate
        self.nb_channels, self.nb_stems = nb_channels, config.nb_stems
        self.to_model = _Resampler(sample_rate, model_rate, nb_channels)
        self.model_walk = SegmentWalk(separator.separate_segment, separator.layout)
        self.from_model = _Resampler(model_rate, sample_rate, nb_channels * config.nb_stems)
        self.band_walk = None
        if separator.masks_at_input_rate(sample_rate):
            self.band_walk = SegmentWalk(
                separator.band_masks_function(sample_rate), separator.band_layout(sample_rate)
            )
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
        empty = np.zeros((self.nb_channels, self.nb_stems, 0), np.float32)
        stems = np.concatenate(parts, axis=-1) if parts else empty
        if self.from_model.stream is not None:
            rows = self.nb_channels * self.nb_stems
            flat = self.from_model.push(stems.reshape(rows, stems.shape[-1]), last=last)
            stems = flat.reshape(self.nb_channels, self.nb_stems, flat.shape[-1])
        # Resampling rounds lengths: never more stems than input samples, silence for any missing.
        stems = stems[..., : self.received - self.stems_out]
        if last and self.stems_out + stems.shape[-1] < self.received:
            missing = self.received - self.stems_out - stems.shape[-1]
            silence = np.zeros(stems.shape[:-1] + (missing,), np.float32)
            stems = np.concatenate([stems, silence], axis=-1)
        self.stems_out += stems.shape[-1]
        if self.band_walk is None:
            return [stems]
        kept = []
        if stems.shape[-1]:
            mixture = self.mixture.take(stems.shape[-1])
            kept = self.band_walk.push(np.concatenate([mixture[:, None], stems], axis=1))
        return kept + (self.band_walk.finish() if last else [])
