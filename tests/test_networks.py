import keras
import numpy as np
import pytest

from advsep_tf.config import load_config
from advsep_tf.networks import build_critic, build_separator

SOURCES = {1: ["vocals"], 2: ["vocals", "accompaniment"], 4: ["vocals", "drums", "bass", "other"]}


@pytest.mark.parametrize("nb_stems", [1, 2, 4])
@pytest.mark.parametrize("nb_bins, nb_frames, depth", [(32, 16, 2), (64, 32, 3), (128, 16, 4)])
def test_shapes_for_any_k_and_patch_size(nb_stems, nb_bins, nb_frames, depth):
    config = load_config("tiny").replace(
        sources=SOURCES[nb_stems],
        spectrogram={
            "nb_bins": nb_bins,
            "nb_frames": nb_frames,
            "n_fft": 2 * nb_bins,
            "n_hop": nb_bins,
        },
        separator={"depth": depth},
    )
    x = np.random.default_rng(0).random((3, nb_bins, nb_frames, 1)).astype(np.float32)
    estimates = build_separator(config)(x)
    assert estimates.shape == (3, nb_bins, nb_frames, nb_stems)
    assert np.all(np.asarray(estimates) >= 0)  # ReLU outputs: log1p magnitudes
    assert build_critic(config)(x).shape == (3, 1)


def test_paper_sizes_match_the_published_networks():
    paper = load_config("paper")
    separator, critic = build_separator(paper), build_critic(paper)
    assert 0.9e6 < separator.count_params() < 1.0e6  # "about 0.96 M parameters"
    assert 1.8e6 < critic.count_params() < 1.95e6  # "about 1.87 M parameters"
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in critic.layers)
    assert critic.layers[-1].use_bias is False
    strides = [layer.strides for layer in critic.layers if isinstance(layer, keras.layers.Conv2D)]
    assert strides == [(2, 2)] * 4 + [(2, 1)] * 2


def test_get_config_round_trip_rebuilds_the_same_function():
    config = load_config("tiny")
    for model in (build_separator(config), build_critic(config)):
        clone = model.__class__.from_config(model.get_config())
        clone.set_weights(model.get_weights())
        x = np.random.default_rng(1).random((2, 32, 16, 1)).astype(np.float32)
        np.testing.assert_allclose(np.asarray(clone(x)), np.asarray(model(x)), atol=1e-6)


def test_the_critic_leaky_relu_is_keras_leaky_relu():
    from advsep_tf.networks import CriticLeakyReLU

    x = np.linspace(-3, 3, 61, dtype=np.float32)
    np.testing.assert_array_equal(CriticLeakyReLU(0.2)(x), keras.layers.LeakyReLU(0.2)(x))


def test_an_ensemble_separator_averages_its_members():
    config = load_config("tiny")
    ensemble = build_separator(config.replace(separator={"members": 3}))
    single = build_separator(config)
    assert ensemble.count_params() == 3 * single.count_params()
    x = np.random.default_rng(2).random((2, 32, 16, 1)).astype(np.float32)
    members = [np.asarray(ensemble.get_layer(f"member{i}")(x)) for i in range(3)]
    assert np.abs(members[0] - members[1]).max() > 1e-3  # independently initialised members
    np.testing.assert_allclose(np.asarray(ensemble(x)), np.mean(members, axis=0), atol=1e-6)


def test_members_below_one_are_refused():
    from advsep_tf.errors import AdvsepError

    with pytest.raises(AdvsepError, match="separator.members must be >= 1"):
        load_config("tiny").replace(separator={"members": 0})
