"""The ways of learning from unpaired audio besides the paper's critics: synthetic pairs from the
solo pools, teacher-student on unlabelled mixtures, spectrally normalised critics."""

import numpy as np
import pytest
import tensorflow as tf

from advsep_tf import losses
from advsep_tf.data_pipelines import readers
from killed_run import kill_run, resumable_sections
from pipeline_steps import prepare_paired_only


def _log1p(x):
    return tf.math.log1p(tf.constant(x, tf.float32))


def test_weighted_supervised_loss_is_l_s_with_unit_weights_and_ignores_zero_weights():
    rng = np.random.default_rng(0)
    estimates, targets = _log1p(rng.random((4, 8, 8, 2))), _log1p(rng.random((4, 8, 8, 2)))
    ones = tf.ones([4])
    np.testing.assert_allclose(
        losses.weighted_supervised_loss(estimates, targets, ones),
        losses.supervised_loss(estimates, targets),
        rtol=1e-6,
    )
    # Example 3 is untrusted: whatever it holds does not count.
    weights = tf.constant([1.0, 1.0, 1.0, 0.0])
    spoiled = tf.concat([targets[:3], targets[3:] + 100.0], axis=0)
    np.testing.assert_allclose(
        losses.weighted_supervised_loss(estimates, spoiled, weights),
        losses.supervised_loss(estimates[:3], targets[:3]),
        rtol=1e-6,
    )
    assert float(losses.weighted_supervised_loss(estimates, targets, tf.zeros([4]))) == 0.0


def test_consistency_error_is_zero_when_the_estimates_add_up_to_the_mixture():
    rng = np.random.default_rng(1)
    stems = rng.random((2, 8, 8, 2)).astype(np.float32)
    mixture = _log1p(stems.sum(axis=-1, keepdims=True))
    np.testing.assert_allclose(
        losses.consistency_error(mixture, _log1p(stems)), [0.0, 0.0], atol=1e-5
    )
    # Half of each stem missing: half the mixture's magnitude unexplained.
    np.testing.assert_allclose(
        losses.consistency_error(mixture, _log1p(stems / 2)), [0.5, 0.5], rtol=1e-4
    )


def test_synthetic_pair_mixes_gained_solo_excerpts_with_exact_labels():
    rng = np.random.default_rng(2)
    example = {"mixture": _log1p(rng.random((8, 8, 1))), "sources": _log1p(rng.random((8, 8, 2)))}
    solos = [_log1p(rng.random((8, 8, 1)) + 0.1) for _ in range(2)]
    made = readers.synthetic_pair(example, solos, 1.0, (0.5, 1.25), seed=3)
    for k in range(2):
        gain = np.expm1(made["sources"][..., k].numpy()) / np.expm1(solos[k][..., 0].numpy())
        # One gain per excerpt, in range.
        assert np.ptp(gain) < 1e-4 and 0.5 <= gain.mean() <= 1.25
    np.testing.assert_allclose(made["mixture"], readers.remix(made["sources"]), rtol=1e-6)
    kept = readers.synthetic_pair(example, solos, 0.0, (0.5, 1.25), seed=3)
    np.testing.assert_array_equal(kept["mixture"], example["mixture"])
    np.testing.assert_array_equal(kept["sources"], example["sources"])


def test_synthetic_pairs_take_their_stems_from_the_solo_pools(tiny_config, tiny_shards):
    from advsep_tf.data_pipelines.shards import ShardSet

    config = tiny_config.replace(
        training={
            "mode": "supervised",
            "synthetic_pairs": 1.0,
            "remix_probability": 0.0,
            "synthetic_gain": [1.0, 1.0],
        }
    )
    shard_set = ShardSet.open(str(tiny_shards), expected=config)
    batch = next(iter(readers.training_dataset(shard_set, config)))
    solo_vocals = np.stack(
        [
            e["excerpt"].numpy()
            for e in readers.role_examples(
                shard_set, config, "solo/vocals", shuffle=False, repeat=False
            )
        ]
    )
    paired_vocals = np.stack(
        [
            e["sources"][..., :1].numpy()
            for e in readers.role_examples(shard_set, config, "train", shuffle=False, repeat=False)
        ]
    )
    for vocals in batch[readers.PAIRED_SOURCES][..., :1].numpy():
        assert np.min(np.abs(solo_vocals - vocals).max(axis=(1, 2, 3))) < 1e-5
        assert np.min(np.abs(paired_vocals - vocals).max(axis=(1, 2, 3))) > 1e-3


def test_synthetic_pairs_without_a_solo_pool_are_refused(tiny_config, tmp_path, tiny_corpus):
    from advsep_tf.data_pipelines.shards import ShardSet
    from advsep_tf.errors import AdvsepError

    out = tmp_path / "paired_only"
    prepare_paired_only(tiny_config, tiny_corpus, out)
    config = tiny_config.replace(training={"mode": "supervised", "synthetic_pairs": 0.5})
    with pytest.raises(AdvsepError, match="synthetic_pairs needs solo recordings"):
        readers.check_training_roles(ShardSet.open(str(out), expected=config), config)


def _student_and_teacher(config):
    from advsep_tf.model import AdversarialSeparator

    student = AdversarialSeparator(config)
    teacher = AdversarialSeparator(config.replace(training={"seed": 99}))
    student.set_teacher(teacher)
    return student, teacher


def _labelling_student(tiny_config, max_error, seed):
    """A student, its teacher labelling every patch (no remixes) and 3 mixture patches."""
    config = tiny_config.replace(
        training={
            "mode": "supervised",
            "pseudo_label_weight": 1.0,
            "remix_probability": 0.0,
            "pseudo_label_max_error": max_error,
        }
    )
    student, teacher = _student_and_teacher(config)
    spec = config.spectrogram
    patches = np.random.default_rng(seed).random((3, spec.nb_bins, spec.nb_frames, 1))
    return student, teacher, _log1p(patches + 0.05)


def test_pseudo_labels_are_the_teachers_estimates_with_one_gain_on_input_and_target(tiny_config):
    student, teacher, mixture = _labelling_student(tiny_config, max_error=1e9, seed=4)
    inputs, targets, weights = student.pseudo_labelled(mixture)
    labels = teacher.separator(mixture).numpy()
    gain = np.expm1(inputs.numpy()) / np.expm1(mixture.numpy())
    target_gain = np.expm1(targets.numpy()) / np.maximum(np.expm1(labels), 1e-12)
    for i in range(3):
        assert 0.5 <= gain[i].mean() <= 1.5 and np.ptp(gain[i]) < 1e-3
        alive = np.expm1(labels[i]) > 1e-3
        np.testing.assert_allclose(target_gain[i][alive], gain[i].mean(), rtol=1e-3)
    np.testing.assert_array_equal(weights, [1.0, 1.0, 1.0])


def test_untrusted_pseudo_labels_get_no_weight(tiny_config):
    student, _, mixture = _labelling_student(tiny_config, max_error=1e-6, seed=5)
    # An untrained teacher's estimates do not add up to the mixture: nothing is trusted.
    _, _, weights = student.pseudo_labelled(mixture)
    np.testing.assert_array_equal(weights, [0.0, 0.0, 0.0])


def test_a_step_with_pseudo_labels_minimises_l_s_plus_the_weighted_pseudo_term(
    tiny_config, tiny_shards
):
    from advsep_tf.data_pipelines.shards import ShardSet

    weight = 0.7
    config = tiny_config.replace(
        training={
            "mode": "supervised",
            "pseudo_label_weight": weight,
            "pseudo_label_max_error": 1e9,
        }
    )
    student, _ = _student_and_teacher(config)
    student.compile()
    shard_set = ShardSet.open(str(tiny_shards), expected=config)
    batch = next(iter(readers.training_dataset(shard_set, config)))
    assert batch[readers.PSEUDO_MIXTURE].shape[0] == config.training.batch_size
    logs = student.train_step(batch)
    total, supervised, pseudo = (
        float(logs[k]) for k in ("loss", "supervised_loss", "pseudo_label_loss")
    )
    assert pseudo > 0 and float(logs["pseudo_labels_trusted"]) == 1.0
    assert total == pytest.approx(supervised + weight * pseudo, rel=1e-5)


def test_pseudo_labels_need_a_teacher(tiny_config, tiny_shards, tmp_path):
    from advsep_tf.errors import AdvsepError
    from advsep_tf.train import train

    config = tiny_config.replace(training={"mode": "supervised", "pseudo_label_weight": 1.0})
    with pytest.raises(AdvsepError, match="needs a teacher"):
        train(config, str(tiny_shards), str(tmp_path / "run"), steps=2, verbose=0)
    assert not (tmp_path / "run").exists()


def test_spectrally_normalised_critics_need_no_gradient_penalty(tiny_config, tiny_shards):
    import keras

    from advsep_tf.data_pipelines.shards import ShardSet
    from advsep_tf.model import AdversarialSeparator

    config = tiny_config.replace(critic={"normalization": "spectral"})
    model = AdversarialSeparator(config)
    wrapped = [
        layer
        for layer in model.critics[0].layers
        if isinstance(layer, keras.layers.SpectralNormalization)
    ]
    assert len(wrapped) == sum(
        isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
        for layer in AdversarialSeparator(tiny_config).critics[0].layers
    )
    model.compile()
    batch = next(
        iter(readers.training_dataset(ShardSet.open(str(tiny_shards), expected=config), config))
    )
    logs = model.train_step(batch)
    assert all(float(logs[f"gradient_penalty_{s}"]) == 0.0 for s in config.sources)
    # The critic's largest singular value is held near 1 by the power iteration.
    dense = [layer for layer in wrapped if isinstance(layer.layer, keras.layers.Dense)][0]
    kernel = dense.layer.kernel.numpy()
    assert np.linalg.svd(kernel, compute_uv=False)[0] < 1.5


METHODS = {
    "synthetic pairs": {"training": {"mode": "supervised", "synthetic_pairs": 0.5}},
    "teacher-student": {"training": {"mode": "supervised", "pseudo_label_weight": 1.0}},
    "spectral critics": {"critic": {"normalization": "spectral"}},
    "weight averaging": {"training": {"mode": "supervised", "ema_decay": 0.9}},
}


@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_trains_resumes_after_kill_9_and_saves(method, tiny_shards, tiny_run, tmp_path):
    from advsep_tf.config import load_config
    from advsep_tf.runs import load_run_model
    from advsep_tf.train import train

    sections = resumable_sections(METHODS[method])
    teacher = str(tiny_run) if "pseudo_label_weight" in sections["training"] else ""
    run_dir = tmp_path / "run"
    kill_run(tiny_shards, run_dir, 1, METHODS[method], teacher)
    config = load_config("tiny").replace(**sections)
    summary = train(
        config,
        str(tiny_shards),
        str(run_dir),
        steps=4,
        resume=True,
        verbose=0,
        teacher=teacher or None,
    )
    assert summary["separator_steps"] == 4
    model = load_run_model(str(run_dir))
    assert model.separation_config.to_dict() == config.to_dict()


def test_the_seed_table_gives_each_models_share_of_the_ceilings_gain():
    from types import SimpleNamespace

    from advsep_tf.experiment import seed_table

    def result(vocals, accompaniment):
        return SimpleNamespace(
            aggregate={
                source: {m: {"mean": value} for m in ("SDR", "SIR", "SAR")}
                for source, value in (("vocals", vocals), ("accompaniment", accompaniment))
            }
        )

    by_seed = {
        1: {
            "baseline": result(4.0, 5.0),
            "synthetic": result(5.0, 5.5),
            "ceiling": result(6.0, 7.0),
        },
        2: {
            "baseline": result(3.0, 4.0),
            "synthetic": result(4.0, 4.5),
            "ceiling": result(5.0, 6.0),
        },
    }
    table, numbers = seed_table(by_seed, ["vocals", "accompaniment"])
    assert numbers["ceiling_share"]["synthetic"] == {
        "vocals": pytest.approx(0.5),
        "accompaniment": pytest.approx(0.25),
    }
    assert "| synthetic | 50% | 25% |" in table


def _adaptation_batch(tiny_config, tiny_shards, **training):
    """An adaptation config (teacher targets, every example a synthetic pair at unit gain, plus
    `training`) and one training batch of the tiny shards read with it."""
    from advsep_tf.data_pipelines.shards import ShardSet

    config = tiny_config.replace(
        training={
            "mode": "supervised",
            "teacher_targets": True,
            "synthetic_pairs": 1.0,
            "synthetic_gain": [1.0, 1.0],
            **training,
        }
    )
    shard_set = ShardSet.open(str(tiny_shards), expected=config)
    return config, next(iter(readers.training_dataset(shard_set, config)))


def test_adaptation_makes_synthetic_pairs_of_solo_excerpts_and_the_teachers_other_sources(
    tiny_config, tiny_shards
):
    from advsep_tf.model import AdversarialSeparator

    config, batch = _adaptation_batch(tiny_config, tiny_shards)
    assert set(batch) == {readers.PAIRED_MIXTURE, "synthetic_vocals", "synthetic_accompaniment"}
    # Only the vocals have a real solo excerpt in this test: the accompaniment stays the teacher's.
    del batch["synthetic_accompaniment"]
    model = AdversarialSeparator(config)
    labels = tf.random.uniform(batch[readers.PAIRED_MIXTURE].shape[:3] + (2,))
    mixture, targets = model._with_solo_excerpts(batch, batch[readers.PAIRED_MIXTURE], labels)
    np.testing.assert_allclose(
        targets[..., 0], batch["synthetic_vocals"][..., 0], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(targets[..., 1], labels[..., 1], rtol=1e-6)
    np.testing.assert_allclose(mixture, readers.remix(targets), rtol=1e-5, atol=1e-6)


def test_adaptation_over_an_accompaniment_pool_labels_both_stems_exactly_with_random_phases(
    tiny_config, tiny_shards
):
    """The measured-best adaptation (adapt.py's synthetic_pool_only): solo vocals over solo
    accompaniment, every example, random phases. Both labels are the solo excerpts, none the
    teacher's, and the mixture adds the stems' powers on average rather than their magnitudes."""
    from advsep_tf.model import AdversarialSeparator

    config, batch = _adaptation_batch(tiny_config, tiny_shards, remix_phases="random")
    model = AdversarialSeparator(config)
    labels = tf.random.uniform(batch[readers.PAIRED_MIXTURE].shape[:3] + (2,))
    mixture, targets = model._with_solo_excerpts(batch, batch[readers.PAIRED_MIXTURE], labels)
    for k, source in enumerate(config.sources):
        np.testing.assert_allclose(
            targets[..., k], batch[readers.synthetic_key(source)][..., 0], rtol=1e-5, atol=1e-6
        )
    magnitudes = tf.math.expm1(targets)
    mixed = tf.math.expm1(mixture[..., 0])
    aligned = tf.reduce_sum(magnitudes, axis=-1)
    powers = tf.sqrt(tf.reduce_sum(magnitudes**2, axis=-1))
    both = tf.reduce_min(magnitudes, axis=-1) > 0.1 * tf.reduce_max(magnitudes, axis=-1)
    assert float(tf.reduce_mean(tf.boolean_mask(mixed, both))) < 0.95 * float(
        tf.reduce_mean(tf.boolean_mask(aligned, both))
    )
    ratio = tf.reduce_mean(tf.boolean_mask(mixed**2, both)) / tf.reduce_mean(
        tf.boolean_mask(powers**2, both)
    )
    assert 0.7 < float(ratio) < 1.3
