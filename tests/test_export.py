import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf

from advsep_tf.cli import common
from advsep_tf.cli.export import main as export_main
from advsep_tf.cli.separate import main as separate_main

# Runs in a fresh interpreter that must never import advsep_tf: what a serving host has.
STANDALONE = textwrap.dedent(
    """
    import json, sys
    import numpy as np, soundfile as sf, tensorflow as tf
    saved_model, wav, out = sys.argv[1:4]
    loaded = tf.saved_model.load(saved_model)
    waveform, rate = sf.read(wav, dtype="float32", always_2d=True)
    outputs = loaded.signatures["serving_default"](waveform=tf.constant(waveform[None]))
    config = json.loads(loaded.config()["config_json"].numpy())
    spec = config["spectrogram"]
    patches = tf.zeros([3, spec["nb_bins"], spec["nb_frames"], 1])
    estimates = loaded.signatures["separate_spectrogram"](patches=patches)["estimates"]
    assert "advsep_tf" not in sys.modules
    np.savez(out, **{k: v.numpy()[0] for k, v in outputs.items()})
    print(json.dumps({"rate": rate, "sources": config["sources"], "estimates_shape":
    estimates.shape.as_list()}))
    """
)


def _run_standalone(script, *arguments):
    """Run `script` in a fresh interpreter with `arguments`; what its last line printed, as JSON."""
    result = subprocess.run(
        [sys.executable, "-c", script, *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def saved_model(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "advsep" / "1"
    assert common.run(export_main, ["--model", str(tiny_run), "--out", str(out)]) == 0
    return out


def serve(saved_model, mixture):
    """The SavedModel's serving_default on a mono `mixture` (n,), in this process: {source:
    (n,)}."""
    import tensorflow as tf

    outputs = tf.saved_model.load(str(saved_model)).signatures["serving_default"](
        waveform=tf.constant(mixture[None, :, None])
    )
    return {source: value.numpy()[0, :, 0] for source, value in outputs.items()}


def test_the_savedmodel_computes_the_trained_separator(saved_model, tiny_run, tiny_config):
    import tensorflow as tf

    from advsep_tf.export import verification
    from advsep_tf.files import is_temporary
    from advsep_tf.export.saved_model import VERIFY_TOLERANCE
    from advsep_tf.separate import Separator
    from advsep_tf.runs import load_run_model

    loaded = tf.saved_model.load(str(saved_model))
    embedded = json.loads(loaded.config()["config_json"].numpy())
    assert json.loads((saved_model / "assets" / "advsep_tf_config.json").read_text()) == embedded
    assert (
        embedded["sources"] == tiny_config.sources
        and embedded["spectrogram"] == tiny_config.to_dict()["spectrogram"]
    )
    # The trained weights: the spectrogram endpoint equals the run's separator on the same patches.
    spec = tiny_config.spectrogram
    patches = tf.random.stateless_uniform(
        [5, spec.nb_bins, spec.nb_frames, 1], seed=[1, 2], maxval=3.0
    )
    exported = loaded.signatures["separate_spectrogram"](patches=patches)["estimates"].numpy()
    trained = load_run_model(str(tiny_run)).separator(patches, training=False).numpy()
    np.testing.assert_allclose(exported, trained, atol=1e-5)
    assert np.abs(trained).max() > 1e-3  # not a separator that outputs nothing
    # Whole songs: the serving signature separates a clip as the Python separator does.
    mixture, _ = verification.probe(tiny_config.sources, tiny_config.audio.sample_rate, 3.3)
    python = Separator.from_checkpoint(str(tiny_run)).separate(
        mixture, tiny_config.audio.sample_rate
    )
    served = serve(saved_model, mixture)
    for source in tiny_config.sources:
        assert served[source].shape == mixture.shape
        np.testing.assert_allclose(served[source], python[source], atol=VERIFY_TOLERANCE)
    assert not [name for name in os.listdir(saved_model.parent) if is_temporary(name)]


def test_savedmodel_outside_the_package_reproduces_advsep_tf_separate(
    saved_model, tiny_run, tmp_path, tiny_config
):
    rate = tiny_config.audio.sample_rate
    rng = np.random.default_rng(5)
    t = np.arange(int(4.2 * rate)) / rate
    song = np.stack(
        [0.3 * np.sin(2 * np.pi * 220 * t), 0.2 * rng.standard_normal(t.size)], 1
    ).astype(np.float32)
    wav = tmp_path / "probe.wav"
    sf.write(wav, song, rate, subtype="FLOAT")

    info = _run_standalone(STANDALONE, saved_model, wav, tmp_path / "served.npz")
    assert info["sources"] == tiny_config.sources
    assert info["estimates_shape"] == [3, 32, 16, 2]
    served = np.load(tmp_path / "served.npz")

    for model in (tiny_run, saved_model):  # a training run, and the SavedModel itself
        out = tmp_path / f"cli_{model.name}"
        assert (
            common.run(
                separate_main, [str(wav), "--model", str(model), "--out", str(out), "--no-progress"]
            )
            == 0
        )
        for source in tiny_config.sources:
            stem, stem_rate = sf.read(
                out / "probe" / f"{source}.wav", dtype="float32", always_2d=True
            )
            assert stem_rate == rate and stem.shape == song.shape == served[source].shape
            # Stated tolerance: float32 round-off between two runs of the same graph.
            np.testing.assert_allclose(served[source], stem, atol=1e-4)


# -- deployment acceptance: real clip, saved_model_cli, failures
# ------------------------------------

SAVED_MODEL_REAL_CLIP = textwrap.dedent(
    """
    import json, sys
    import numpy as np, soundfile as sf, soxr, tensorflow as tf
    saved_model, clip, out = sys.argv[1:4]
    loaded = tf.saved_model.load(saved_model)
    config = json.loads(loaded.config()["config_json"].numpy())
    rate = config["audio"]["sample_rate"]
    vocals, clip_rate = sf.read(clip + "/vocal.wav", dtype="float32")
    music, _ = sf.read(clip + "/music.wav", dtype="float32")
    mixture = soxr.resample(vocals + music, clip_rate, rate)
    outputs = loaded.signatures["serving_default"](waveform=tf.constant(mixture[None, :, None]))
    np.savez(out, mixture=mixture, **{k: v.numpy()[0, :, 0] for k, v in outputs.items()})
    print(json.dumps({"rate": rate, "imported_advsep_tf": "advsep_tf" in sys.modules}))
    """
)


def test_savedmodel_outside_the_package_separates_a_real_clip_like_the_python_separator(
    saved_model, tiny_run, tmp_path, tiny_config
):
    from conftest import shared_data_or_skip

    from advsep_tf.export.saved_model import VERIFY_TOLERANCE
    from advsep_tf.separate import Separator

    clips = sorted((shared_data_or_skip() / "paired_2stem").glob("mir1k_*"))
    if not clips:
        pytest.skip("no MIR-1K clips in ../shared/data/paired_2stem")
    info = _run_standalone(SAVED_MODEL_REAL_CLIP, saved_model, clips[0], tmp_path / "served.npz")
    assert not info["imported_advsep_tf"]
    served = np.load(tmp_path / "served.npz")
    python = Separator.from_checkpoint(str(tiny_run)).separate(served["mixture"], info["rate"])
    for source in tiny_config.sources:
        assert served[source].shape == served["mixture"].shape
        # Stated tolerance: the export's own (float32 round-off between two runs of the same graph).
        np.testing.assert_allclose(served[source], python[source], atol=VERIFY_TOLERANCE)


def test_saved_model_cli_lists_both_signatures_with_dtypes_and_shapes(saved_model, tiny_config):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run(
        [cli, "show", "--dir", str(saved_model), "--all"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout
    signatures = {}
    for block in text.split("signature_def['")[1:]:
        name, body = block.split("']", 1)
        tensors = {}
        for kind, tensor, dtype, shape in __import__("re").findall(
            r"(inputs|outputs)\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: (\([^)]*\))",
            body.split("Method name")[0],
        ):
            tensors[(kind, tensor)] = (dtype, shape)
        signatures[name] = tensors
    nb_bins, nb_frames = tiny_config.spectrogram.nb_bins, tiny_config.spectrogram.nb_frames
    expected_serving = {("inputs", "waveform"): ("DT_FLOAT", "(-1, -1, -1)")}
    expected_serving.update(
        {("outputs", s): ("DT_FLOAT", "(-1, -1, -1)") for s in tiny_config.sources}
    )
    assert signatures["serving_default"] == expected_serving
    assert signatures["separate_spectrogram"] == {
        ("inputs", "patches"): ("DT_FLOAT", f"(-1, {nb_bins}, {nb_frames}, 1)"),
        ("outputs", "estimates"): (
            "DT_FLOAT",
            f"(-1, {nb_bins}, {nb_frames}, {tiny_config.nb_stems})",
        ),
    }
    assert signatures["config"] == {
        ("outputs", "config_json"): ("DT_STRING", "()"),
        ("outputs", "version"): ("DT_STRING", "()"),
    }


def test_savedmodel_export_prints_what_the_artifact_measures(
    tiny_run, tmp_path, capsys, tiny_config
):
    from advsep_tf.export import verification
    from advsep_tf.export.saved_model import PROBE_SECONDS, VERIFY_TOLERANCE
    from advsep_tf.separate import Separator

    out = tmp_path / "sm"
    assert common.run(export_main, ["--model", str(tiny_run), "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    found = re.search(
        r"\(([\d.]+) MB\).* on a ([\d.]+) s probe: max abs error (\S+), SDR vs Python output "
        r"(\S+) dB",
        line,
    )
    assert found, line
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    assert found[1] == f"{size / 1e6:.2f}" and float(found[2]) == PROBE_SECONDS
    # The numbers are the artifact's: its output on the probe, measured again here.
    rate = tiny_config.audio.sample_rate
    probe, _ = verification.probe(tiny_config.sources, rate, PROBE_SECONDS)
    measured = verification.compare(
        Separator.from_checkpoint(str(tiny_run)).separate(probe, rate), serve(out, probe)
    )
    printed_error = float(found[3].rstrip(","))
    assert printed_error <= VERIFY_TOLERANCE and measured["max_abs_error"] <= VERIFY_TOLERANCE
    assert printed_error == pytest.approx(measured["max_abs_error"], rel=0.5, abs=1e-6)
    assert float(found[4]) > 60  # float32 round-off only


def _leaves_nothing(tmp_path, out):
    assert not os.path.exists(out)
    assert os.listdir(tmp_path) == ["bad_run"] or os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "fmt, name", [("saved_model", "serving/advsep/1"), ("litert", "models/advsep.tflite")]
)
def test_a_checkpoint_of_another_config_is_refused(tiny_run, tmp_path, capsys, fmt, name):
    out = tmp_path / name
    argv = ["--model", str(tiny_run), "--format", fmt, "--out", str(out), "--config", "demo"]
    assert common.run(export_main, argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1
    assert "different config" in err and "spectrogram.n_fft" in err
    _leaves_nothing(tmp_path, out)


@pytest.mark.parametrize(
    "fmt, name", [("saved_model", "serving/advsep/1"), ("litert", "models/advsep.tflite")]
)
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_checkpoint_is_refused(tiny_run, tmp_path, capsys, fmt, name, damage):
    bad = tmp_path / "bad_run"
    bad.mkdir()
    (bad / "config.json").write_bytes((tiny_run / "config.json").read_bytes())
    original = (tiny_run / "model.keras").read_bytes()
    (bad / "model.keras").write_bytes(
        b"not a keras file" * 10 if damage == "garbage" else original[: len(original) // 2]
    )
    out = tmp_path / name
    assert common.run(export_main, ["--model", str(bad), "--format", fmt, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "model.keras: damaged model file" in err, err
    assert "not found" not in err, err
    _leaves_nothing(tmp_path, out)


def test_a_savedmodel_beyond_tolerance_is_refused_and_removed(
    tiny_run, tmp_path, monkeypatch, capsys
):
    from advsep_tf.export import saved_model as saved_model_module

    monkeypatch.setattr(saved_model_module, "VERIFY_TOLERANCE", -1.0)  # nothing passes
    out = tmp_path / "serving" / "advsep" / "1"
    assert common.run(export_main, ["--model", str(tiny_run), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "differs from the Python separator" in err and "nothing was written" in err
    assert os.listdir(tmp_path) == []  # no directory, no .tmp, no parent folders made for it


def test_litert_options_are_refused_for_saved_model(tiny_run, tmp_path, capsys):
    out = tmp_path / "sm"
    with pytest.raises(SystemExit) as exit_info:  # bad usage: argparse's exit code 2
        common.run(export_main, ["--model", str(tiny_run), "--out", str(out), "--quantize", "int8"])
    assert exit_info.value.code == 2
    assert "litert only" in capsys.readouterr().err
    assert not out.exists()


def test_an_ensemble_of_trained_models_averages_them_and_exports(tiny_run, tmp_path):
    from advsep_tf.errors import ConfigMismatchError
    from advsep_tf.model import AdversarialSeparator
    from advsep_tf.runs import ensemble_of, load_run_model, save_model_atomically

    trained = load_run_model(str(tiny_run))
    other = AdversarialSeparator(trained.separation_config)  # the same config, other weights
    ensemble = ensemble_of([trained, other])
    assert ensemble.separation_config.separator.members == 2 and not ensemble.critics
    spec = trained.separation_config.spectrogram
    x = np.random.default_rng(3).random((2, spec.nb_bins, spec.nb_frames, 1)).astype(np.float32)
    expected = (np.asarray(trained(x)) + np.asarray(other(x))) / 2
    assert np.abs(expected - np.asarray(trained(x))).max() > 1e-3
    np.testing.assert_allclose(np.asarray(ensemble(x)), expected, atol=1e-5)

    path = tmp_path / "ensemble.keras"
    save_model_atomically(ensemble, str(path))
    np.testing.assert_allclose(np.asarray(load_run_model(str(path))(x)), expected, atol=1e-5)
    # The export checks the SavedModel against the Python separator of the ensemble.
    assert common.run(export_main, ["--model", str(path), "--out", str(tmp_path / "serving")]) == 0

    wider = AdversarialSeparator(trained.separation_config.replace(separator={"base_filters": 8}))
    with pytest.raises(ConfigMismatchError, match="separator.base_filters"):
        ensemble_of([trained, wider], ["a", "b"])
