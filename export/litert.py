"""LiteRT (TFLite) export of the trained separator: built-in ops only, fixed segment, verified.

The `.tflite` model separates one fixed-length segment of mono audio at the model's rate,
waveform in, waveforms out (signature "separate"; see `litert_runner` for the contract):

    waveform (segment_samples,) float32, valid_samples () int32 -> {source: (segment_samples,)}

LiteRT's built-in ops have no inverse FFT and no complex arithmetic, so the graph uses the
"dft_matmul" STFT backend of `advsep_tf.transforms` (a DFT as a matrix product, real and imaginary
parts apart); the rest (log1p, patching, the U-Net, cross-fading, phase, overlap-add) is plain
float32 arithmetic. Patches beyond `valid_samples` get no weight, so the last segment of a song
is separated exactly as the whole song would be. `litert_runner.LiteRTSeparator` (numpy and
ai-edge-litert only) chunks songs of any length.

Conversion goes through a SavedModel of that one function (`TFLiteConverter.from_saved_model`,
never `from_keras_model`) with `supported_ops = [TFLITE_BUILTINS]`: no Flex ops, which the pip
runtimes cannot run. Quantisation: "none" (float32), "float16" (weights stored as float16) or
"int8" (dynamic-range: int8 weights, activations quantised on the fly).

Verification: the written file is reloaded with ai-edge-litert's interpreter and run through
`LiteRTSeparator` on a probe of known sources that spans several segments; it must match the
Python separator within FLOAT32_TOLERANCE (max abs) for float32; a quantised model may lose at
most SDR_DROP_TOLERANCE[quantize] dB SDR against the probe's true sources, and the SDR of its
output against the Python separator's output must be at least SDR_VS_PYTHON_FLOOR[quantize] dB.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

import numpy as np

from advsep_tf.config import Config
from advsep_tf.errors import AdvsepError
from advsep_tf.export import litert_runner, verification
from advsep_tf.files import atomic_output, remove, temporary_path

QUANTIZATIONS = ("none", "float16", "int8")
# Max abs difference (float32 waveforms) between the float32 model and the Python separator.
FLOAT32_TOLERANCE = 1e-4
# SDR (dB) a quantised model may lose on the probe against the Python separator, both measured
# against the probe's true sources (the worst source).
SDR_DROP_TOLERANCE = {"float16": 0.1, "int8": 1.0}
# ... and their output must stay this close (SDR, dB) to the Python separator's output.
SDR_VS_PYTHON_FLOOR = {"float16": 30.0, "int8": 15.0}
# Default segment: this many half-patch hops (16 U-Net patches per model call).
DEFAULT_SEGMENT_HOPS = 16
# The probe spans this many segments (at least PROBE_MIN_SECONDS), so that chunking is checked too.
PROBE_SEGMENTS = 2.6
PROBE_MIN_SECONDS = 2.5


def segment_samples_for(config: Config, segment_seconds: float | None = None) -> int:
    """The segment length in samples: `segment_seconds` rounded up to whole half-patch hops
    (default DEFAULT_SEGMENT_HOPS of them), at least the shortest segment that can step."""
    from advsep_tf import transforms

    spec = config.spectrogram
    quantum = transforms.inference_patch_hop(spec.nb_frames) * spec.n_hop
    shortest = transforms.minimum_model_segment(spec.n_fft, spec.n_hop, spec.nb_frames)
    if segment_seconds is None:
        return max(DEFAULT_SEGMENT_HOPS * quantum, shortest)
    if segment_seconds <= 0:
        raise AdvsepError(f"--segment-seconds must be positive, got {segment_seconds}")
    samples = -(-int(np.ceil(segment_seconds * config.audio.sample_rate)) // quantum) * quantum
    if samples < shortest:
        raise AdvsepError(
            f"--segment-seconds {segment_seconds}: a segment needs at least "
            f"{shortest / config.audio.sample_rate:.3f} s "
            f"({shortest} samples) for this model's context"
        )
    return samples


def segment_function(estimate_patches, config: Config, segment_samples: int):
    """The tf.function that the `.tflite` file holds: `advsep_tf.separate.separate_segment` on one
    mono segment, with the "dft_matmul" STFT and static shapes (LiteRT built-in ops only).

    `estimate_patches`: (nb_patches, nb_bins, nb_frames, 1) -> (nb_patches, nb_bins, nb_frames,
    nb_stems).
    """
    import tensorflow as tf

    from advsep_tf import transforms
    from advsep_tf.separate import separate_segment

    stft = transforms.STFT.from_config(config.spectrogram, backend="dft_matmul")

    @tf.function(
        input_signature=[
            tf.TensorSpec([segment_samples], tf.float32, name="waveform"),
            tf.TensorSpec([], tf.int32, name="valid_samples"),
        ]
    )
    def separate(waveform, valid_samples):
        waveforms = separate_segment(
            estimate_patches, waveform[tf.newaxis], valid_samples, config, stft
        )
        return {source: waveforms[0, k] for k, source in enumerate(config.sources)}

    return separate


def _layout(config: Config, segment_samples: int) -> dict:
    """Where the runner keeps each segment's output (`transforms.model_segment_layout`)."""
    from advsep_tf import transforms

    spec = config.spectrogram
    return transforms.model_segment_layout(
        spec.n_fft, spec.n_hop, spec.nb_frames, segment_samples
    ).to_dict()


def is_litert_export(path: str) -> bool:
    """Whether `path` is a `.tflite` file this module wrote (what --overwrite may replace)."""
    from tensorflow.lite.python import schema_py_generated as schema

    try:
        with open(path, "rb") as f:
            if f.read(8)[4:8] != b"TFL3":  # the flatbuffer's file identifier
                return False
            f.seek(0)
            data = f.read()
        model = schema.Model.GetRootAs(data, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() == litert_runner.METADATA_NAME.encode():
                metadata = json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
                return metadata.get("format") == "advsep-tf-litert"
    except Exception:  # noqa: BLE001 - unreadable or foreign: not ours
        return False
    return False


def export_litert(
    model,
    out_path: str,
    quantize: str = "none",
    segment_seconds: float | None = None,
    verify: bool = True,
    overwrite: bool = False,
    protected: dict[str, str] | None = None,
) -> dict:
    """Write `model.separator` as a `.tflite` file at `out_path` (atomically); return a summary.

    Nothing is left at `out_path` (or beside it) when conversion or verification fails. An
    existing file is replaced only with `overwrite` and only if it is an earlier LiteRT export.
    The intermediate SavedModel is written beside `out_path` under a temporary name, not in the
    system's temporary folder, so that what a killed export left is found by the next one.
    """
    import keras

    from advsep_tf import __version__

    if quantize not in QUANTIZATIONS:
        raise AdvsepError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}, got '{quantize}'")
    config: Config = model.separation_config
    separator = model.separator
    segment_samples = segment_samples_for(config, segment_seconds)
    if verify:
        try:
            import ai_edge_litert.interpreter  # noqa: F401 - checked before minutes of conversion
        except ImportError:
            raise AdvsepError(
                "verifying a LiteRT export needs ai-edge-litert: pip install 'advsep-tf[litert]'"
            ) from None

    def estimate_patches(patches):
        return separator(patches, training=False)

    with atomic_output(
        out_path,
        directory=False,
        overwrite=overwrite,
        looks_like=is_litert_export,
        what="an earlier LiteRT export",
        protected=protected,
    ) as tmp_path:
        work = temporary_path(out_path)
        os.makedirs(work)
        try:
            archive = keras.export.ExportArchive()
            archive.track(separator)
            archive.add_endpoint(
                litert_runner.SIGNATURE, segment_function(estimate_patches, config, segment_samples)
            )
            saved_model = os.path.join(work, "saved_model")
            archive.write_out(saved_model, verbose=False)
            flatbuffer = _convert(saved_model, quantize)
            metadata = {
                "format": "advsep-tf-litert",
                "version": __version__,
                "config": config.to_dict(),
                "sources": list(config.sources),
                "sample_rate": config.audio.sample_rate,
                "segment_samples": segment_samples,
                "layout": _layout(config, segment_samples),
                "quantize": quantize,
                "signature": litert_runner.SIGNATURE,
            }
            flatbuffer = _with_metadata(
                flatbuffer, litert_runner.METADATA_NAME, json.dumps(metadata).encode()
            )
            with open(tmp_path, "wb") as f:
                f.write(flatbuffer)
            summary = {
                "path": out_path,
                "bytes": len(flatbuffer),
                "quantize": quantize,
                "segment_samples": segment_samples,
                "segment_seconds": segment_samples / config.audio.sample_rate,
                "ops": sorted(builtin_op_names(flatbuffer)),
            }
            if verify:
                summary.update(_verify(tmp_path, out_path, estimate_patches, config, quantize))
        finally:
            remove(work)
    return summary


def _convert(saved_model_dir: str, quantize: str) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=[litert_runner.SIGNATURE]
    )
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS
    ]  # no SELECT_TF_OPS: no Flex
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic range: int8 weights
    try:
        flatbuffer = converter.convert()
    except Exception as exc:  # noqa: BLE001 - the converter raises its own ConverterError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise AdvsepError(
            f"LiteRT conversion with built-in ops only failed: {first[:300]}"
        ) from None
    custom = custom_op_names(flatbuffer)
    if custom:
        raise AdvsepError(
            f"LiteRT conversion produced custom/Flex ops {', '.join(sorted(custom))}; refusing"
        )
    return flatbuffer


def _operator_codes(flatbuffer: bytes):
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(flatbuffer, 0)
    return [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]


def custom_op_names(flatbuffer: bytes) -> set[str]:
    """Names of the custom ops (Flex ops are custom ops named Flex...) a `.tflite` file uses."""
    from tensorflow.lite.python import schema_py_generated as schema

    names = set()
    for code in _operator_codes(flatbuffer):
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            names.add((code.CustomCode() or b"?").decode())
    return names


def builtin_op_names(flatbuffer: bytes) -> set[str]:
    from tensorflow.lite.python import schema_py_generated as schema

    by_code = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return {
        by_code.get(max(c.BuiltinCode(), c.DeprecatedBuiltinCode()), "?")
        for c in _operator_codes(flatbuffer)
    }


def _with_metadata(flatbuffer: bytes, name: str, payload: bytes) -> bytes:
    """The flatbuffer with one more metadata entry `name` holding `payload`."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.python import util

    model = util._convert_model_from_bytearray_to_object(flatbuffer)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(payload, np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata = list(model.metadata or []) + [entry]
    return bytes(util._convert_model_from_object_to_bytearray(model))


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (C++ start-up lines that Python's logging cannot reach)."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _verify(path: str, final_path: str, estimate_patches, config: Config, quantize: str) -> dict:
    """Reload `path` with ai-edge-litert, separate the probe, compare with the Python separator."""
    from advsep_tf.separate import Separator

    runner = litert_runner.LiteRTSeparator(path)
    with (
        _quiet_stderr()
    ):  # the first call prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
        runner.run_segment(np.zeros(runner.segment_samples, np.float32), 1)
    rate = config.audio.sample_rate
    seconds = max(PROBE_MIN_SECONDS, PROBE_SEGMENTS * runner.segment_samples / rate)
    mixture, truth = verification.probe(config.sources, rate, seconds)
    reference = Separator(estimate_patches, config)
    result = verification.compare(
        reference.separate(mixture, rate), runner.separate(mixture), truth
    )
    if quantize == "none":
        verification.judge(final_path, result, max_abs=FLOAT32_TOLERANCE)
        result["tolerance"] = f"max abs <= {FLOAT32_TOLERANCE:g}"
    else:
        verification.judge(
            final_path,
            result,
            max_sdr_drop=SDR_DROP_TOLERANCE[quantize],
            min_sdr_vs_python=SDR_VS_PYTHON_FLOOR[quantize],
        )
        result["tolerance"] = (
            f"SDR drop <= {SDR_DROP_TOLERANCE[quantize]:g} dB, SDR vs Python >= "
            f"{SDR_VS_PYTHON_FLOOR[quantize]:g} dB"
        )
    result["probe_seconds"] = round(seconds, 2)
    return result
