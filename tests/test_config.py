import json

import pytest

from advsep_tf.config import Config, load_config, preset_names
from advsep_tf.errors import AdvsepError


def test_presets_hold_the_papers_settings():
    assert set(preset_names()) >= {"paper", "musdb4", "demo", "tiny"}
    paper = load_config("paper")
    assert paper.audio.sample_rate == 8192 and paper.audio.nb_channels == 1
    assert (paper.spectrogram.n_fft, paper.spectrogram.n_hop) == (512, 256)
    assert (paper.spectrogram.nb_bins, paper.spectrogram.nb_frames) == (256, 64)
    assert paper.sources == ["vocals", "accompaniment"]
    assert paper.separator.base_filters == 16
    assert paper.loss.alpha == paper.loss.beta == 0.001
    assert paper.loss.gp_lambda == 10 and paper.loss.n_critic == 5
    assert paper.optimizer.learning_rate == 5e-5 and paper.training.batch_size == 64
    musdb4 = load_config("musdb4")
    assert musdb4.sources == ["vocals", "drums", "bass", "other"]
    assert musdb4.differences(paper, Config.MODEL_SECTIONS) == ["sources"]


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_round_trip_through_files(tmp_path, suffix):
    config = load_config("musdb4").replace(training={"mode": "supervised"}, loss={"alpha": 0.5})
    path = str(tmp_path / f"config{suffix}")
    config.save(path)
    again = load_config(path)
    assert again == config
    assert again.to_dict() == config.to_dict()


def test_critic_sources_follow_mode_and_selection():
    config = load_config("paper")
    assert config.critic_sources == ["vocals", "accompaniment"]
    assert config.replace(training={"critics": ["vocals"]}).critic_sources == ["vocals"]
    assert config.replace(training={"mode": "supervised"}).critic_sources == []


@pytest.mark.parametrize(
    "change, message",
    [
        ({"spectrogram": {"n_fft": 500}}, "power of two"),
        ({"spectrogram": {"nb_bins": 300}}, "nb_bins"),
        ({"training": {"mode": "gan"}}, "training.mode must be one of supervised, adversarial"),
        ({"training": {"remix_phases": "zero"}}, "training.remix_phases must be one of aligned"),
        ({"training": {"precision": "fp8"}}, "training.precision"),
        ({"critic": {"normalization": "batch"}}, "critic.normalization"),
        ({"separator": {"output_activation": "tanh"}}, "separator.output_activation"),
        ({"training": {"critics": ["piano"]}}, "piano"),
        ({"separator": {"depth": 7}}, "multiples of 2**separator.depth"),
        ({"sources": ["vocals", "vocals"]}, "distinct"),
        ({"loss": {"n_critic": 0}}, "n_critic"),
    ],
)
def test_invalid_configs_are_refused_with_the_field_named(change, message):
    with pytest.raises(AdvsepError, match=message.replace("*", r"\*")):
        load_config("paper").replace(**change)


def test_unknown_fields_and_presets_are_named(tmp_path):
    path = tmp_path / "bad.json"
    data = load_config("tiny").to_dict()
    data["loss"]["gamma"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(AdvsepError, match=r"bad.json: unknown field\(s\) loss.gamma"):
        load_config(str(path))
    with pytest.raises(AdvsepError, match="unknown preset 'papr'"):
        load_config("papr")
    with pytest.raises(AdvsepError, match="config file not found"):
        load_config(str(tmp_path / "missing.yaml"))
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(AdvsepError, match="broken.json: not a valid config file"):
        load_config(str(tmp_path / "broken.json"))


def test_differences_name_the_fields():
    a = load_config("paper")
    b = a.replace(spectrogram={"n_fft": 1024, "n_hop": 512})
    assert a.differences(b, Config.DATA_SECTIONS) == ["spectrogram.n_fft", "spectrogram.n_hop"]
    assert "spectrogram.n_fft: 512 here vs 1024 there" in a.describe_differences(
        b, Config.DATA_SECTIONS
    )
    assert a.differences(a.replace(loss={"alpha": 1.0}), Config.DATA_SECTIONS) == []
