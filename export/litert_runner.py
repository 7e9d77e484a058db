"""Separate songs of any length with an advsep-tf LiteRT model: numpy and ai-edge-litert only.

This file imports neither TensorFlow nor advsep_tf: copy it next to a `.tflite` file written by
`advsep-tf-export --format litert` and run it where only `pip install ai-edge-litert numpy` is
available (`python litert_runner.py model.tflite song.wav out/` also needs soundfile to read and
write audio files, and soxr for input at another rate than the model's). Its stems have the
input's rate, channels and length, as advsep-tf-separate's; see `main`.

The model (signature "separate") works on one fixed-length segment of mono audio at the model's
sample rate:

    waveform       float32 (segment_samples,)   the segment, zero-padded after the song's end
    valid_samples  int32   ()                   how many of its samples are the song's
    -> {source: float32 (segment_samples,)}

Inside: STFT as a DFT by matrix product, log1p magnitudes, half-overlapping patches, the U-Net,
cross-faded patches, the mixture's phase, inverse STFT and overlap-add, built-in ops only.

`LiteRTSeparator` cuts a song into segments that start on the model's patch grid and overlap by
the model's context, keeps from each segment the samples that saw all their context, and joins
the kept parts (the layout, computed at export by `advsep_tf.transforms.model_segment_layout`,
travels in the metadata). The result equals separating the whole song in one
graph, as `advsep_tf.separate.Separator` does, up to float round-off (float32 model).

The configuration travels inside the `.tflite` file as the flatbuffer metadata entry
"advsep_tf" (JSON: config, segment length and layout, sources, quantisation, version).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

METADATA_NAME = "advsep_tf"
SIGNATURE = "separate"


def plan_segments(nb_samples: int, layout: dict) -> list[tuple[int, int, int]]:
    """[(start, keep_from, keep_to)] in song samples: run a segment at `start`, keep its output on
    [keep_from, keep_to). The kept ranges tile [0, nb_samples).

    The segments `advsep_tf.streaming.SegmentWalk` runs, planned for a whole song (this file runs
    without advsep_tf; tests/test_layers.py checks that the two agree); the layout itself is
    computed once, at export, and read from the model's metadata.
    """
    size, step, left = layout["segment_samples"], layout["step"], layout["left_margin"]
    starts = [0]
    while starts[-1] + size < nb_samples:
        starts.append(starts[-1] + step)
    keeps = [0] + [s + left for s in starts[1:]] + [nb_samples]
    return [(s, keeps[i], keeps[i + 1]) for i, s in enumerate(starts)]


def read_metadata(model_path: str) -> dict:
    """The "advsep_tf" JSON metadata of a `.tflite` file written by advsep-tf-export."""
    from ai_edge_litert import schema_py_generated as schema

    with open(model_path, "rb") as f:
        data = f.read()
    try:
        model = schema.Model.GetRootAs(data, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() == METADATA_NAME.encode():
                return json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file
        raise ValueError(
            f"{model_path}: not a readable LiteRT model ({exc.__class__.__name__}: {exc})"
        ) from None
    raise ValueError(
        f"{model_path}: no '{METADATA_NAME}' metadata: not written by advsep-tf-export --format "
        f"litert"
    )


class LiteRTSeparator:
    """Whole songs through a fixed-segment advsep-tf LiteRT model.

    >>> separator = LiteRTSeparator("model.tflite")
    >>> stems = separator.separate(waveform)     # (nb_samples,) or (nb_samples, nb_channels) at
    ...                                          # separator.sample_rate -> {source: same shape}
    """

    def __init__(self, model_path: str, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.model_path = model_path
        self.metadata = read_metadata(model_path)
        config = self.metadata["config"]
        if "layout" not in self.metadata:
            raise ValueError(
                f"{model_path}: written by an older advsep-tf (no segment layout); export it again"
            )
        self.sources = list(config["sources"])
        self.sample_rate = int(config["audio"]["sample_rate"])
        self.layout = self.metadata["layout"]
        self.interpreter = Interpreter(model_path=model_path, num_threads=num_threads)
        self._run = self.interpreter.get_signature_runner(SIGNATURE)

    @property
    def segment_samples(self) -> int:
        return self.layout["segment_samples"]

    def run_segment(self, segment: np.ndarray, valid_samples: int) -> np.ndarray:
        """One model call: (segment_samples,) float32 -> (nb_stems, segment_samples)."""
        outputs = self._run(waveform=segment, valid_samples=np.array(valid_samples, np.int32))
        return np.stack([outputs[source] for source in self.sources])

    def separate_mono(self, waveform: np.ndarray) -> np.ndarray:
        """(nb_samples,) at the model's rate -> (nb_stems, nb_samples)."""
        waveform = np.asarray(waveform, np.float32)
        n, size = waveform.shape[0], self.segment_samples
        result = np.zeros((len(self.sources), n), np.float32)
        for start, keep_from, keep_to in plan_segments(n, self.layout):
            segment = np.zeros(size, np.float32)
            part = waveform[start : start + size]
            segment[: part.shape[0]] = part
            estimates = self.run_segment(segment, part.shape[0])
            result[:, keep_from:keep_to] = estimates[:, keep_from - start : keep_to - start]
        return result

    def separate(
        self, waveform: np.ndarray, sample_rate: int | None = None
    ) -> dict[str, np.ndarray]:
        """(nb_samples,) or (nb_samples, nb_channels) at the model's rate -> {source: same shape}.

        Each channel is separated on its own (the model sees mono), as advsep-tf does.
        """
        if sample_rate is not None and sample_rate != self.sample_rate:
            raise ValueError(
                f"the model runs at {self.sample_rate} Hz; resample the {sample_rate} Hz input "
                f"first "
                "(e.g. soxr.resample or librosa.resample)"
            )
        waveform = np.asarray(waveform, np.float32)
        if waveform.ndim not in (1, 2) or waveform.shape[0] == 0:
            raise ValueError(
                f"expected a (nb_samples,) or (nb_samples, nb_channels) waveform, got shape "
                f"{waveform.shape}"
            )
        if not np.all(np.isfinite(waveform)):
            raise ValueError("waveform holds NaN or infinite samples")
        channels = waveform[:, None] if waveform.ndim == 1 else waveform
        stems = np.stack(
            [self.separate_mono(channels[:, c]) for c in range(channels.shape[1])], axis=-1
        )
        return {
            s: (stems[k, :, 0] if waveform.ndim == 1 else stems[k])
            for k, s in enumerate(self.sources)
        }


def main(argv=None) -> int:
    """python litert_runner.py MODEL.tflite INPUT [INPUT ...] OUT_DIR
    -> OUT_DIR/<track>/<source>.wav

    The stems have each input's sample rate, channel count and length, as advsep-tf-separate's
    (32-bit float WAV). Input at another rate than the model's is resampled to it with soxr and
    the stems back to the input's rate; they are then band-limited to half the model's rate,
    like advsep-tf-separate --reconstruction direct (its default, mask, keeps the band above).
    Every input is read before the first is separated: a bad one stops the command (exit 1)
    before any stem is written. Needs numpy, ai-edge-litert, soundfile, and soxr for input at
    another rate than the model's.
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3 or args[0] in ("-h", "--help"):
        print(main.__doc__)
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    import soundfile as sf

    model_path, inputs, out_dir = args[0], args[1:-1], args[-1]
    songs = {}
    for path in inputs:  # all read and checked first: nothing is written for a bad input list
        try:
            waveform, rate = sf.read(path, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, OSError) as error:
            print(f"error: {path}: cannot read audio ({error})", file=sys.stderr)
            return 1
        if waveform.shape[0] == 0:
            print(f"error: {path}: holds no audio samples (0 frames)", file=sys.stderr)
            return 1
        songs[path] = (waveform, rate)
    separator = LiteRTSeparator(model_path)
    for path, (waveform, rate) in songs.items():
        length = waveform.shape[0]
        if rate != separator.sample_rate:
            import soxr

            waveform = soxr.resample(waveform, rate, separator.sample_rate).astype(np.float32)
        track = os.path.splitext(os.path.basename(path))[0]
        os.makedirs(os.path.join(out_dir, track), exist_ok=True)
        for source, stem in separator.separate(waveform).items():
            if rate != separator.sample_rate:
                stem = soxr.resample(stem, separator.sample_rate, rate).astype(np.float32)
                # soxr's output length is rounded: the stem keeps the input's exactly.
                stem = np.pad(stem[:length], [(0, max(0, length - stem.shape[0])), (0, 0)])
            target = os.path.join(out_dir, track, f"{source}.wav")
            sf.write(target, stem, rate, subtype="FLOAT")
            print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
