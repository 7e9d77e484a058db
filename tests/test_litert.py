"""LiteRT export: the dft_matmul STFT backend, exact chunking, built-in ops only, and separation
of a real clip outside the package (numpy + ai-edge-litert alone) against the Python separator.

The converter leaks memory (tensorflow #122598): each model is converted once per module.
"""

import ast
import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from advsep_tf import transforms
from advsep_tf.cli import common
from advsep_tf.cli.export import main as export_main
from advsep_tf.export import litert, litert_runner, verification
from conftest import shared_data_or_skip, walked_segments

RUNNER_FILE = Path(litert_runner.__file__)
# Stated tolerances for the real clip, the export's own (advsep_tf/export/litert.py): float32
# within 1e-4 max abs; float16 / int8 lose at most 0.1 / 1 dB SDR against the true stems, and stay
# at least 30 / 15 dB SDR from the Python separator's output.
FLOAT32_MAX_ABS = litert.FLOAT32_TOLERANCE
SDR_DROP = litert.SDR_DROP_TOLERANCE


def _signal(n, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 8192
    return (0.5 * np.sin(2 * np.pi * 440 * t) + 0.1 * rng.standard_normal(n)).astype(np.float32)


# -- the dft_matmul backend against tf.signal -----------------------------------------------------


@pytest.mark.parametrize("n_fft, n_hop", [(512, 256), (256, 128), (256, 64), (64, 32)])
@pytest.mark.parametrize("length", [1000, 8192, 12345])
def test_dft_matmul_stft_and_istft_match_tf_signal(n_fft, n_hop, length):
    x = _signal(length, seed=length)[None]
    reference = transforms.stft(x, n_fft, n_hop).numpy()
    real, imag = transforms.stft_dft(x, n_fft, n_hop)
    assert real.shape == imag.shape == reference.shape
    scale = np.abs(reference).max()
    np.testing.assert_allclose(real.numpy(), reference.real, atol=2e-6 * scale)
    np.testing.assert_allclose(imag.numpy(), reference.imag, atol=2e-6 * scale)
    # The inverse of either backend's spectrum gives the signal back, and the two inverses agree.
    y = transforms.istft_dft(real, imag, n_fft, n_hop, length).numpy()
    assert y.shape == x.shape
    assert np.linalg.norm(y - x) / np.linalg.norm(x) < 1e-5
    y_tf = transforms.istft(tf.constant(reference), n_fft, n_hop, length).numpy()
    np.testing.assert_allclose(y, y_tf, atol=1e-5)


def test_dft_matmul_reconstruct_matches_tf_signal_path():
    n_fft, n_hop, nb_bins = 256, 128, 128
    x = _signal(9000)[None]
    fft, dft = (
        transforms.STFT(n_fft, n_hop, "tf_signal"),
        transforms.STFT(n_fft, n_hop, "dft_matmul"),
    )
    real_tf, imag_tf = fft.forward(x)
    real, imag = dft.forward(x)
    log_tf = fft.log_magnitude(real_tf, imag_tf, nb_bins)
    log_dft = dft.log_magnitude(real, imag, nb_bins)
    np.testing.assert_allclose(log_dft.numpy(), log_tf.numpy(), atol=1e-5)
    # Two "stems": the mixture's own magnitudes (gives the band-limited signal back) and half of
    # them.
    estimates = tf.stack([log_tf, tf.math.log1p(0.5 * tf.math.expm1(log_tf))], axis=1)
    y_tf = fft.reconstruct(estimates, real_tf, imag_tf, x.shape[1]).numpy()
    y_dft = dft.reconstruct(estimates, real, imag, x.shape[1]).numpy()
    assert y_dft.shape == (1, 2, x.shape[1])
    np.testing.assert_allclose(y_dft, y_tf, atol=1e-5)
    assert (
        np.linalg.norm(y_dft[0, 0] - x[0]) / np.linalg.norm(x) < 2e-2
    )  # only the Nyquist bin is missing


def test_dft_matmul_phase_of_silence_is_angle_zero_like_tf_math_angle():
    n_fft, n_hop = 64, 32
    silence = tf.zeros([1, 640])
    fft, dft = (
        transforms.STFT(n_fft, n_hop, "tf_signal"),
        transforms.STFT(n_fft, n_hop, "dft_matmul"),
    )
    real, imag = dft.forward(silence)
    estimates = tf.ones(
        [1, 1, 32, real.shape[1]]
    )  # magnitude e - 1 everywhere, on a silent mixture
    y_tf = fft.reconstruct(estimates, *fft.forward(silence), 640).numpy()
    y_dft = dft.reconstruct(estimates, real, imag, 640).numpy()
    assert np.all(np.isfinite(y_dft))
    np.testing.assert_allclose(y_dft, y_tf, atol=1e-5)


# -- segments: the chunked graph equals the whole-song graph --------------------------------------


@pytest.mark.parametrize(
    "preset, segment", [("tiny", "default"), ("tiny", "shortest"), ("demo", "shortest")]
)
def test_segments_reproduce_whole_song_separation_in_tensorflow(preset, segment):
    """The segment graph (before conversion), chunked by the runner's plan, against the whole-song
    graph: equal to round-off for songs shorter than, equal to, and many times a segment."""
    import keras

    from advsep_tf.config import load_config
    from advsep_tf.networks import build_separator
    from advsep_tf.separate import separate_waveforms

    config = load_config(preset)
    keras.utils.set_random_seed(3)
    separator = build_separator(config)
    spec, rate = config.spectrogram, config.audio.sample_rate

    def estimate(patches):
        return separator(patches, training=False)

    size = litert.segment_samples_for(config)
    if segment == "shortest":
        size = transforms.minimum_model_segment(spec.n_fft, spec.n_hop, spec.nb_frames)
    layout = transforms.model_segment_layout(spec.n_fft, spec.n_hop, spec.nb_frames, size)
    run_segment = litert.segment_function(estimate, config, size)
    for length in (700, size, 3 * size + 77):
        song, _ = verification.probe(config.sources, rate, length / rate)
        whole = separate_waveforms(estimate, tf.constant(song[None]), config, 16).numpy()[0]
        chunked = np.zeros_like(whole)
        plan = litert_runner.plan_segments(length, layout.to_dict())
        assert plan == walked_segments(length, layout)  # the runner's copy walks alike
        for start, keep_from, keep_to in plan:
            part = np.zeros(size, np.float32)
            piece = song[start : start + size]
            part[: piece.size] = piece
            out = run_segment(tf.constant(part), tf.constant(piece.size, tf.int32))
            estimates = np.stack([out[s].numpy() for s in config.sources])
            chunked[:, keep_from:keep_to] = estimates[:, keep_from - start : keep_to - start]
        np.testing.assert_allclose(chunked, whole, atol=1e-5, err_msg=f"length {length}")


def _litert_export_argv(run, out, *options):
    """advsep-tf-export's arguments for converting the trained `run` to a .tflite file `out`."""
    return ["--model", str(run), "--format", "litert", "--out", str(out), *options]


def test_a_segment_shorter_than_the_model_context_is_refused(tiny_run, tmp_path, capsys):
    argv = _litert_export_argv(tiny_run, tmp_path / "short.tflite", "--segment-seconds", "0.05")
    assert common.run(export_main, argv) == 1
    assert "needs at least" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


# -- the exported files ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    """{quantize: (path, the command's summary line)}: each converted once, through the command
    line."""
    out = tmp_path_factory.mktemp("litert")
    models = {}
    for quantize in litert.QUANTIZATIONS:
        path = out / f"advsep_{quantize}.tflite"
        argv = _litert_export_argv(tiny_run, path, "--quantize", quantize)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert common.run(export_main, argv) == 0
        models[quantize] = (path, printed.getvalue().strip().splitlines()[-1])
    return models


@pytest.fixture(scope="module")
def tflite_models(exported):
    return {quantize: path for quantize, (path, _) in exported.items()}


def test_export_prints_what_each_tflite_file_computes(exported, tiny_run, tiny_config):
    """The summary line's numbers are the file's: separating the export's probe again with the
    .tflite file (ai-edge-litert) against the Python separator gives them back."""
    import re

    from advsep_tf.files import is_temporary
    from advsep_tf.separate import Separator

    python_separator = Separator.from_checkpoint(str(tiny_run))
    rate = tiny_config.audio.sample_rate
    for quantize, (path, line) in exported.items():
        assert not [name for name in os.listdir(path.parent) if is_temporary(name)]
        found = re.search(
            r"\(([\d.]+) MB, (\w+), built-in ops only, segments of ([\d.]+) s\); .* on a ([\d.]+) "
            r"s "
            r"probe: max abs error (\S+), SDR vs Python output (\S+) dB(?:, SDR drop vs true "
            r"sources "
            r"(\S+) dB)?",
            line,
        )
        assert found, line
        assert found[1] == f"{path.stat().st_size / 1e6:.2f}" and found[2] == (
            "float32" if quantize == "none" else quantize
        )
        runner = litert_runner.LiteRTSeparator(str(path))
        assert float(found[3]) == pytest.approx(runner.segment_samples / rate, abs=0.01)
        seconds = max(
            litert.PROBE_MIN_SECONDS, litert.PROBE_SEGMENTS * runner.segment_samples / rate
        )
        assert float(found[4]) == round(seconds, 2)
        mixture, truth = verification.probe(tiny_config.sources, rate, seconds)
        measured = verification.compare(
            python_separator.separate(mixture, rate), runner.separate(mixture), truth
        )
        assert float(found[5].rstrip(",")) == pytest.approx(
            measured["max_abs_error"], rel=0.05, abs=1e-6
        ), line
        if quantize == "none":
            assert measured["max_abs_error"] <= FLOAT32_MAX_ABS and found[7] is None
        else:
            assert float(found[6]) == pytest.approx(measured["sdr_vs_python"], abs=0.1), line
            assert float(found[7]) == pytest.approx(measured["sdr_drop"], abs=0.01), line
            assert measured["sdr_drop"] <= SDR_DROP[quantize]
            assert measured["sdr_vs_python"] >= litert.SDR_VS_PYTHON_FLOOR[quantize]


def test_tflite_files_hold_builtin_ops_only(tflite_models):
    from ai_edge_litert import schema_py_generated as schema

    for quantize, path in tflite_models.items():
        data = path.read_bytes()
        model = schema.Model.GetRootAs(data, 0)
        codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
        builtins = [max(c.BuiltinCode(), c.DeprecatedBuiltinCode()) for c in codes]
        assert schema.BuiltinOperator.CUSTOM not in builtins, quantize
        assert all(c.CustomCode() is None for c in codes), quantize
        assert b"Flex" not in data, quantize
        names = {k for k, v in vars(schema.BuiltinOperator).items() if v in builtins}
        assert {"CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED"} <= names  # the U-Net and the DFT
        assert not names & {"RFFT2D", "COMPLEX_ABS", "REAL", "IMAG"}  # no complex tensors at all


def test_tflite_metadata_and_signature(tflite_models, tiny_config):
    from ai_edge_litert.interpreter import Interpreter

    path = tflite_models["none"]
    metadata = litert_runner.read_metadata(str(path))
    assert metadata["config"] == tiny_config.to_dict()
    assert metadata["quantize"] == "none" and metadata["version"]
    size = metadata["segment_samples"]
    signature = Interpreter(model_path=str(path)).get_signature_list()["separate"]
    assert sorted(signature["inputs"]) == ["valid_samples", "waveform"]
    assert sorted(signature["outputs"]) == sorted(tiny_config.sources)
    runner = Interpreter(model_path=str(path)).get_signature_runner("separate")
    details = runner.get_input_details()
    assert (
        list(details["waveform"]["shape"]) == [size] and details["waveform"]["dtype"] == np.float32
    )
    assert (
        list(details["valid_samples"]["shape"]) == []
        and details["valid_samples"]["dtype"] == np.int32
    )
    assert all(list(d["shape"]) == [size] for d in runner.get_output_details().values())


def test_litert_runner_refuses_what_it_cannot_separate(tflite_models, tmp_path):
    separator = litert_runner.LiteRTSeparator(str(tflite_models["none"]))
    with pytest.raises(ValueError, match="resample"):
        separator.separate(np.zeros(1000, np.float32), sample_rate=44100)
    with pytest.raises(ValueError, match="NaN"):
        separator.separate(np.full(1000, np.nan, np.float32))
    song, _ = verification.probe(separator.sources, separator.sample_rate, 0.4)
    stereo = separator.separate(np.stack([song, 0.5 * song], axis=1))  # each channel on its own
    mono = separator.separate(song)
    for source, stem in stereo.items():
        assert stem.shape == (song.size, 2)
        np.testing.assert_allclose(stem[:, 0], mono[source], atol=1e-6)
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\0" * 100)
    with pytest.raises(ValueError, match="junk.tflite"):
        litert_runner.read_metadata(str(junk))


# -- a real clip, outside the package
# ---------------------------------------------------------------

# Runs in a fresh interpreter that imports neither advsep_tf nor TensorFlow: what a device has.
STANDALONE = textwrap.dedent(
    """
    import importlib.util, json, sys
    import numpy as np, soundfile as sf, soxr
    runner_file, clip, out = sys.argv[1:4]
    models = sys.argv[4:]
    spec = importlib.util.spec_from_file_location("litert_runner", runner_file)
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    vocals, rate = sf.read(clip + "/vocal.wav", dtype="float32")
    music, _ = sf.read(clip + "/music.wav", dtype="float32")
    arrays = {}
    for i, model in enumerate(models):
        separator = runner.LiteRTSeparator(model)
        model_rate = separator.sample_rate
        arrays.update({f"{i}/{k}": v for k, v in separator.separate(soxr.resample(vocals + music,
        rate, model_rate)).items()})
    arrays["mixture"] = soxr.resample(vocals + music, rate, model_rate)
    arrays["true/vocals"] = soxr.resample(vocals, rate, model_rate)
    arrays["true/accompaniment"] = soxr.resample(music, rate, model_rate)
    np.savez(out, **arrays)
    print(json.dumps({"rate": model_rate, "sources": separator.sources,
                      "imported": sorted(m for m in ("advsep_tf", "tensorflow", "keras") if m in
                      sys.modules)}))
    """
)


@pytest.fixture(scope="module")
def real_clip():
    data = shared_data_or_skip()
    clips = sorted((data / "paired_2stem").glob("mir1k_*"))
    if not clips:
        pytest.skip(f"no MIR-1K clips in {data / 'paired_2stem'}")
    return clips[0]


def test_tflite_outside_the_package_separates_a_real_clip_like_the_python_separator(
    tflite_models, tiny_run, real_clip, tmp_path, tiny_config
):
    from advsep_tf.separate import Separator

    order = list(litert.QUANTIZATIONS)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            STANDALONE,
            str(RUNNER_FILE),
            str(real_clip),
            str(tmp_path / "out.npz"),
        ]
        + [str(tflite_models[q]) for q in order],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info["imported"] == [], (
        info
    )  # numpy + ai-edge-litert (+ soundfile, soxr for the file) only
    assert info["rate"] == tiny_config.audio.sample_rate and info["sources"] == tiny_config.sources
    arrays = np.load(tmp_path / "out.npz")
    mixture = arrays["mixture"]
    assert mixture.size > 5 * info["rate"]  # several seconds: many segments of the tiny model

    python = Separator.from_checkpoint(str(tiny_run)).separate(mixture, info["rate"])
    truth = {s: arrays[f"true/{s}"] for s in tiny_config.sources}
    for i, quantize in enumerate(order):
        exported = {s: arrays[f"{i}/{s}"] for s in tiny_config.sources}
        assert all(exported[s].shape == mixture.shape for s in exported)
        compared = verification.compare(python, exported, truth)
        if quantize == "none":
            assert compared["max_abs_error"] <= FLOAT32_MAX_ABS, compared
        else:
            assert compared["sdr_drop"] <= SDR_DROP[quantize], (quantize, compared)
            assert compared["sdr_vs_python"] >= litert.SDR_VS_PYTHON_FLOOR[quantize], (
                quantize,
                compared,
            )


def _run_runner(*arguments, timeout=300):
    """The runner file's command line in a fresh interpreter, its output captured."""
    command = [sys.executable, str(RUNNER_FILE), *map(str, arguments)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def test_runner_command_line_writes_stems(tflite_models, tmp_path, tiny_config):
    import soundfile as sf

    song, _ = verification.probe(tiny_config.sources, 8192, 1.3)
    sf.write(tmp_path / "song.wav", song, 8192, subtype="FLOAT")
    result = _run_runner(tflite_models["float16"], tmp_path / "song.wav", tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    separated = litert_runner.LiteRTSeparator(str(tflite_models["float16"])).separate(song)
    for source in tiny_config.sources:
        stem, rate = sf.read(tmp_path / "out" / "song" / f"{source}.wav", dtype="float32")
        assert rate == 8192 and stem.shape == song.shape
        np.testing.assert_allclose(
            stem, separated[source], atol=1e-6
        )  # what the model computes, written as is
    assert np.abs(separated[tiny_config.sources[0]]).max() > 1e-3


def test_runner_writes_stems_at_the_inputs_rate_like_separate(tflite_models, tmp_path, tiny_config):
    """One output contract: the runner's stems have the input's rate, channels and length, as
    advsep-tf-separate's; a bad input among several stops it before anything is written."""
    import soundfile as sf
    import soxr

    rate = 22050
    song, _ = verification.probe(tiny_config.sources, rate, 1.3)
    stereo = np.stack([song, 0.5 * song], axis=1).astype(np.float32)
    sf.write(tmp_path / "song.wav", stereo, rate, subtype="FLOAT")
    (tmp_path / "empty.wav").write_bytes(b"")
    model = str(tflite_models["none"])
    refused = _run_runner(
        model, tmp_path / "song.wav", tmp_path / "empty.wav", tmp_path / "refused"
    )
    assert refused.returncode == 1 and "empty.wav" in refused.stderr, refused.stderr[-2000:]
    assert not (tmp_path / "refused").exists()
    result = _run_runner(model, tmp_path / "song.wav", tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    model_rate = tiny_config.audio.sample_rate
    at_model_rate = soxr.resample(stereo, rate, model_rate).astype(np.float32)
    separated = litert_runner.LiteRTSeparator(model).separate(at_model_rate)
    for source in tiny_config.sources:
        stem, stem_rate = sf.read(
            tmp_path / "out" / "song" / f"{source}.wav", dtype="float32", always_2d=True
        )
        assert stem_rate == rate and stem.shape == stereo.shape
        expected = soxr.resample(separated[source], model_rate, rate)[: len(stereo)]
        np.testing.assert_allclose(stem[: len(expected)], expected, atol=1e-5)
    shown = _run_runner("--help", timeout=60)
    assert shown.returncode == 0 and "input's sample rate" in shown.stdout


def test_runner_file_imports_neither_tensorflow_nor_advsep_tf():
    tree = ast.parse(RUNNER_FILE.read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    top_level = {name.split(".")[0] for name in imported}
    # soundfile and soxr: only in its command line, for reading, resampling and writing files.
    assert top_level <= {
        "__future__",
        "json",
        "os",
        "sys",
        "numpy",
        "ai_edge_litert",
        "soundfile",
        "soxr",
    }, top_level


# -- failures leave nothing
# ---------------------------------------------------------------------------


def test_a_litert_model_beyond_tolerance_is_refused_and_removed(
    tiny_run, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(litert, "FLOAT32_TOLERANCE", 0.0)  # nothing passes
    out = tmp_path / "new" / "folder" / "advsep.tflite"
    assert (
        common.run(export_main, ["--model", str(tiny_run), "--format", "litert", "--out", str(out)])
        == 1
    )
    err = capsys.readouterr().err
    assert "differs from the Python separator" in err and "nothing was written" in err
    assert not (
        tmp_path / "new"
    ).exists()  # neither the file, its .tmp, nor the folders made for it
    assert os.listdir(tmp_path) == []
