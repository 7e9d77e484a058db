"""The tf.data readers' on-the-fly augmentations, each a small named function."""

import copy
import json

import numpy as np
import pytest
import tensorflow as tf

from advsep_tf.data_pipelines import readers
from advsep_tf.data_pipelines.shards import ShardSet
from advsep_tf.errors import AdvsepError


def log1p_magnitudes(shape, seed):
    return tf.constant(
        np.log1p(np.random.default_rng(seed).uniform(0, 3, shape)).astype(np.float32)
    )


def test_random_gain_scales_the_linear_magnitude_by_one_gain_in_range():
    excerpt = log1p_magnitudes((32, 16, 1), 0)
    gains = []
    for seed in range(20):
        out = readers.random_gain(excerpt, 0.2, 1.2, seed=seed)
        ratio = np.expm1(out.numpy()) / np.expm1(excerpt.numpy())
        np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-4)
        gains.append(ratio.flat[0])
    assert 0.2 <= min(gains) and max(gains) <= 1.2 and max(gains) - min(gains) > 0.3


def test_remix_sums_linear_magnitudes():
    stems = log1p_magnitudes((8, 4, 3), 1)
    np.testing.assert_allclose(
        readers.remix(stems).numpy()[..., 0], np.log1p(np.expm1(stems.numpy()).sum(-1)), rtol=1e-5
    )


def test_remix_with_random_phases_adds_powers_on_average():
    # Two stems of equal magnitude 1 in every bin: in phase they sum to 2; with independent
    # uniform phases the mixture's power is 2 on average, and never above the aligned sum.
    stems = tf.fill((64, 64, 2), float(np.log1p(1.0)))
    phases = readers.remix_phases(stems, "random", seed=3)
    mixture = np.expm1(readers.remix(stems, phases).numpy())
    assert np.all(mixture <= 2.0 + 1e-5)
    assert abs(np.mean(mixture**2) - 2.0) < 0.1
    assert readers.remix_phases(stems, "aligned") is None
    np.testing.assert_allclose(np.expm1(readers.remix(stems).numpy()), 2.0, rtol=1e-5)


def test_random_remix_in_random_phase_mode_draws_new_phases():
    example = {"mixture": log1p_magnitudes((8, 4, 1), 2), "sources": log1p_magnitudes((8, 4, 2), 3)}
    donors = [example, example]
    aligned = readers.random_remix(example, donors, 1.0, seed=5)["mixture"].numpy()
    randomised = readers.random_remix(example, donors, 1.0, seed=5, phase_mode="random")["mixture"]
    assert np.all(randomised.numpy() <= aligned + 1e-6)
    assert np.mean(randomised.numpy() < aligned - 1e-3) > 0.5


def test_random_remix_takes_each_stem_from_another_track():
    example = {"mixture": log1p_magnitudes((8, 4, 1), 2), "sources": log1p_magnitudes((8, 4, 2), 3)}
    donors = [
        {
            "mixture": log1p_magnitudes((8, 4, 1), 10 + k),
            "sources": log1p_magnitudes((8, 4, 2), 20 + k),
        }
        for k in range(2)
    ]
    remixed = readers.random_remix(example, donors, probability=1.0)
    np.testing.assert_array_equal(remixed["sources"][..., 0], donors[0]["sources"][..., 0])
    np.testing.assert_array_equal(remixed["sources"][..., 1], donors[1]["sources"][..., 1])
    np.testing.assert_allclose(remixed["mixture"], readers.remix(remixed["sources"]), rtol=1e-6)
    kept = readers.random_remix(example, donors, probability=0.0)
    np.testing.assert_array_equal(kept["sources"], example["sources"])
    np.testing.assert_array_equal(kept["mixture"], example["mixture"])
    changed = [
        not np.array_equal(
            readers.random_remix(example, donors, 0.5)["sources"], example["sources"]
        )
        for _ in range(40)
    ]
    assert 5 < sum(changed) < 35


def test_random_offset_cuts_a_true_excerpt_from_two_consecutive_patches():
    nb_frames, hop = 16, 8
    spectrogram = np.random.default_rng(4).uniform(size=(4, 40, 1)).astype(np.float32)

    def patch(p, track=b"t", index=None):
        return {
            "x": tf.constant(spectrogram[:, p * hop : p * hop + nb_frames]),
            "track": tf.constant(track),
            "patch": tf.constant(p if index is None else index, tf.int64),
        }

    windows = [spectrogram[:, o : o + nb_frames] for o in range(hop + 1)]
    seen = set()
    for seed in range(40):
        out = readers.random_offset(patch(1), patch(2), ["x"], hop, seed=seed)["x"].numpy()
        assert out.shape == (4, nb_frames, 1)
        matches = [
            o
            for o, w in enumerate(windows)
            if np.array_equal(out, spectrogram[:, hop + o : hop + o + nb_frames])
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 3 and seen <= set(range(hop + 1))
    # Not the next patch of the same track (another track, or a silent patch dropped between):
    # unchanged.
    for second in (patch(2, track=b"other"), patch(3)):
        np.testing.assert_array_equal(
            readers.random_offset(patch(1), second, ["x"], hop)["x"], patch(1)["x"]
        )


def test_random_offsets_on_real_shards(tiny_config, tiny_shards):
    shard_set = ShardSet.open(str(tiny_shards), expected=tiny_config)
    hop = tiny_config.spectrogram.patch_hop
    parse = readers._parser("train", tiny_config, with_position=True)
    files = shard_set.files("train")
    plain = [parse(r) for r in tf.data.TFRecordDataset(files[:1])]
    # Shards store each patch's index in its track.
    indices = [int(e["patch"]) for e in plain]
    assert indices[:3] == [indices[0], indices[0] + 1, indices[0] + 2]
    assert len(
        list(
            readers.role_examples(
                shard_set, tiny_config, "train", False, False, random_offsets=True
            )
        )
    ) == shard_set.examples("train")
    # The first shard alone (examples of several shards interleave).
    manifest = copy.deepcopy(shard_set.manifest)
    manifest["roles"]["train"]["shards"] = manifest["roles"]["train"]["shards"][:1]
    manifest["roles"]["train"]["examples"] = len(plain)
    one_shard = ShardSet(shard_set.directory, manifest, shard_set.config)
    shifted = list(
        readers.role_examples(
            one_shard, tiny_config, "train", shuffle=False, repeat=False, random_offsets=True
        )
    )
    assert len(shifted) == len(plain)
    moved = 0
    for i in range(len(plain) - 1):
        first, second = plain[i], plain[i + 1]
        out = shifted[i]
        for key in ("mixture", "sources"):
            window = np.concatenate([first[key].numpy(), second[key].numpy()[:, -hop:]], axis=1)
            candidates = [window[:, o : o + first[key].shape[1]] for o in range(hop + 1)]
            assert any(np.array_equal(out[key].numpy(), c) for c in candidates)
        moved += not np.array_equal(out["mixture"].numpy(), first["mixture"].numpy())
    assert moved > len(plain) // 2


def test_training_dataset_with_every_augmentation(tiny_config, tiny_shards):
    shard_set = ShardSet.open(str(tiny_shards), expected=tiny_config)
    batch = next(
        iter(
            readers.training_dataset(
                shard_set, tiny_config, random_offsets=True, remix_probability=0.5
            )
        )
    )
    b, n = tiny_config.training.batch_size, tiny_config.loss.n_critic
    assert batch["paired_mixture"].shape == (b, 32, 16, 1) and batch["paired_sources"].shape == (
        b,
        32,
        16,
        2,
    )
    assert batch["unpaired_mixtures"].shape == (b, n + 1, 32, 16, 1) and batch[
        "solo_vocals"
    ].shape == (b, n, 32, 16, 1)
    assert all(np.all(np.isfinite(v.numpy())) for v in batch.values())
    assert readers.patches_per_step(tiny_config) == b * (1 + (n + 1) + 2 * n)
    with pytest.raises(AdvsepError, match="remix probability"):
        readers.training_dataset(shard_set, tiny_config, remix_probability=2.0)


def test_pitch_shift_moves_partials_along_frequency_and_silences_what_leaves_the_band():
    from advsep_tf.data_pipelines.readers import pitch_shift

    magnitude = np.zeros((64, 3, 1), np.float32)
    magnitude[[10, 20, 30], :, 0] = [[4.0], [2.0], [1.0]]  # a tone and two partials
    excerpt = tf.math.log1p(tf.constant(magnitude))

    np.testing.assert_allclose(pitch_shift(excerpt, 0.0).numpy(), excerpt.numpy(), atol=1e-6)
    # Up an octave: bin f reads bin f / 2, so each partial lands at twice its bin, spread over
    # its neighbours by the interpolation (the spectrum is stretched, not moved).
    octave_up = np.expm1(pitch_shift(excerpt, 12.0).numpy())[..., 0]
    np.testing.assert_allclose(octave_up[[20, 40, 60], 0], [4.0, 2.0, 1.0], rtol=1e-5)
    np.testing.assert_allclose(octave_up[[19, 21, 41, 61], 0], [2.0, 2.0, 1.0, 0.5], rtol=1e-5)
    assert np.all(octave_up[:19] == 0) and np.all(octave_up[22:39] == 0)
    # Down an octave: bin f reads bin 2f; the upper half reads above the band, so it is silent.
    octave_down = np.expm1(pitch_shift(excerpt, -12.0).numpy())[..., 0]
    assert octave_down[5, 0] == pytest.approx(4.0) and octave_down[15, 0] == pytest.approx(1.0)
    assert np.all(octave_down[32:] == 0)
    # A fraction of a bin: the partial spreads over its neighbours, its sum stretched alike.
    semitone = np.expm1(pitch_shift(excerpt, 1.0).numpy())[..., 0]
    assert 9 < np.argmax(semitone[:, 0]) <= 11
    assert semitone[:16, 0].sum() == pytest.approx(4.0 * 2 ** (1 / 12), rel=0.1)


def test_solo_pitch_shift_changes_the_solo_excerpts_of_synthetic_pairs(tiny_config, tiny_shards):
    from advsep_tf.data_pipelines.readers import _solo_excerpts

    config = tiny_config.replace(training={"mode": "supervised", "synthetic_pairs": 1.0})
    shard_set = ShardSet.open(str(tiny_shards), expected=config)
    plain = next(iter(_solo_excerpts(shard_set, config, 0, 7, False))).numpy()
    shifted_config = config.replace(training={"solo_pitch_shift": 3.0})
    shifted = next(iter(_solo_excerpts(shard_set, shifted_config, 0, 7, False))).numpy()
    assert plain.shape == shifted.shape
    assert not np.allclose(plain, shifted)


@pytest.fixture(scope="module")
def two_origin_shards(tmp_path_factory, tiny_config):
    """A shard set whose training tracks come from two corpora: 'synthetic' (5 tracks) and
    'synthetic#2' (1 track)."""
    from advsep_tf.data_pipelines import synthetic
    from advsep_tf.data_pipelines.prepare import prepare

    root = tmp_path_factory.mktemp("two_origins")
    corpora = []
    for name, tracks, seed in (("big", 5, 11), ("small", 1, 12)):
        corpus = root / name
        synthetic.write_config_corpus(
            corpus,
            tiny_config,
            nb_train=tracks,
            nb_valid=1,
            nb_test=0,
            nb_unpaired=1,
            duration=4.0,
            seed=seed,
        )
        corpora.append(("synthetic", str(corpus)))
    prepare(tiny_config, corpora, str(root / "shards"), progress=False, examples_per_shard=16)
    return ShardSet.open(str(root / "shards"), expected=tiny_config)


def _origin_shares(shard_set, config, draws=600) -> dict[str, float]:
    """The share of each origin among `draws` paired training examples (told apart by their
    mixture patch, which no two tracks share)."""
    parse = readers._parser("train", config, with_position=True)
    origin_of = {
        parse(r)["mixture"].numpy().tobytes(): r_origin
        for r, r_origin in (
            (record, readers.track_origin(parse(record)["track"]).numpy().decode())
            for record in tf.data.TFRecordDataset(shard_set.files("train"))
        )
    }
    examples = readers._training_examples(shard_set, config, "train", True, True, 3, False)
    counts: dict[str, int] = {}
    for example in examples.take(draws):
        origin = origin_of[example["mixture"].numpy().tobytes()]
        counts[origin] = counts.get(origin, 0) + 1
    return {origin: n / draws for origin, n in counts.items()}


def test_origin_weights_set_each_origins_share_of_the_paired_examples(
    tiny_config, two_origin_shards
):
    counts = readers.training_origins(two_origin_shards)
    assert set(counts) == {"synthetic", "synthetic#2"}
    natural = counts["synthetic#2"] / sum(counts.values())
    assert natural < 0.3
    unweighted = _origin_shares(two_origin_shards, tiny_config)
    assert abs(unweighted.get("synthetic#2", 0) - natural) < 0.08
    for small_weight, expected in ((1, 0.5), (3, 0.75)):
        config = tiny_config.replace(
            training={"origin_weights": {"synthetic": 1, "synthetic#2": small_weight}}
        )
        readers.check_origin_weights(two_origin_shards, config)
        assert abs(_origin_shares(two_origin_shards, config)["synthetic#2"] - expected) < 0.08
    left_out = tiny_config.replace(training={"origin_weights": {"synthetic": 1, "synthetic#2": 0}})
    assert set(_origin_shares(two_origin_shards, left_out)) == {"synthetic"}


def test_origin_weights_must_name_the_training_origins(tiny_config, two_origin_shards):
    for weights, problem in (
        ({"synthetic": 1}, "leaves out synthetic#2"),
        ({"synthetic": 1, "synthetic#2": 1, "musdb18": 1}, "names musdb18"),
    ):
        config = tiny_config.replace(training={"origin_weights": weights})
        with pytest.raises(AdvsepError, match=problem):
            readers.training_dataset(two_origin_shards, config)
    with pytest.raises(AdvsepError, match="origin_weights must be weights >= 0"):
        tiny_config.replace(training={"origin_weights": {"synthetic": -1}})
    with pytest.raises(AdvsepError, match="training.teacher_targets does not read"):
        tiny_config.replace(training={"origin_weights": {"synthetic": 1}, "teacher_targets": True})


def test_origin_weights_option_reaches_a_training_run(tiny_config, two_origin_shards, tmp_path):
    from advsep_tf.cli import train as train_cli

    run = tmp_path / "run"
    train_cli.main(
        [
            "--config",
            "tiny",
            "--shards",
            two_origin_shards.directory,
            "--out",
            str(run),
            "--mode",
            "supervised",
            "--steps",
            "2",
            "--origin-weights",
            "synthetic=1,synthetic#2=1",
        ]
    )
    saved = json.loads((run / "config.json").read_text())
    assert saved["training"]["origin_weights"] == {"synthetic": 1.0, "synthetic#2": 1.0}
    with pytest.raises(SystemExit):
        train_cli.main(
            [
                "--config",
                "tiny",
                "--shards",
                "x",
                "--out",
                str(tmp_path / "r2"),
                "--origin-weights",
                "synthetic",
            ]
        )
