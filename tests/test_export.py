import json
import os
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
    print(json.dumps({"rate": rate, "sources": config["sources"], "estimates_shape": estimates.shape.as_list()}))
    """
)


@pytest.fixture(scope="module")
def saved_model(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "advsep" / "1"
    assert common.run(export_main, ["--model", str(tiny_run), "--out", str(out)]) == 0
    return out


def test_export_writes_a_servable_savedmodel(saved_model):
    assert (saved_model / "saved_model.pb").is_file()
    assert (saved_model / "assets" / "advsep_tf_config.json").is_file()
    assert not os.path.exists(f"{saved_model}.tmp")


def test_savedmodel_outside_the_package_reproduces_advsep_tf_separate(saved_model, tiny_run, tmp_path, tiny_config):
    rate = tiny_config.audio.sample_rate
    rng = np.random.default_rng(5)
    t = np.arange(int(4.2 * rate)) / rate
    song = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.2 * rng.standard_normal(t.size)], 1).astype(np.float32)
    wav = tmp_path / "probe.wav"
    sf.write(wav, song, rate, subtype="FLOAT")

    result = subprocess.run(
        [sys.executable, "-c", STANDALONE, str(saved_model), str(wav), str(tmp_path / "served.npz")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info["sources"] == tiny_config.sources
    assert info["estimates_shape"] == [3, 32, 16, 2]
    served = np.load(tmp_path / "served.npz")

    for model in (tiny_run, saved_model):  # a training run, and the SavedModel itself
        out = tmp_path / f"cli_{model.name}"
        assert common.run(separate_main, [str(wav), "--model", str(model), "--out", str(out), "--no-progress"]) == 0
        for source in tiny_config.sources:
            stem, stem_rate = sf.read(out / "probe" / f"{source}.wav", dtype="float32", always_2d=True)
            assert stem_rate == rate and stem.shape == song.shape == served[source].shape
            # Stated tolerance: float32 round-off between two runs of the same graph.
            np.testing.assert_allclose(served[source], stem, atol=1e-4)
