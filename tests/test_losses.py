import keras
import numpy as np
import pytest
import tensorflow as tf

from advsep_tf import losses


def test_supervised_loss_is_the_mse_summed_over_sources():
    estimates = np.zeros((2, 4, 3, 2), np.float32)
    targets = np.zeros((2, 4, 3, 2), np.float32)
    targets[..., 0] = 1.0  # MSE 1 for the first source
    targets[..., 1] = 2.0  # MSE 4 for the second
    assert float(losses.supervised_loss(estimates, targets)) == pytest.approx(5.0)


def test_additive_loss_works_on_linear_magnitudes():
    mixture = np.log1p(np.full((1, 2, 2, 1), 3.0, np.float32))
    perfect = np.log1p(np.stack([np.full((1, 2, 2), 1.0), np.full((1, 2, 2), 2.0)], -1)).astype(
        np.float32
    )
    assert float(losses.additive_loss(mixture, perfect)) == pytest.approx(0.0, abs=1e-5)
    half = np.log1p(np.stack([np.full((1, 2, 2), 0.5), np.full((1, 2, 2), 1.0)], -1)).astype(
        np.float32
    )
    assert float(losses.additive_loss(mixture, half)) == pytest.approx(1.5**2, rel=1e-4)


def test_generator_and_critic_losses_follow_the_wasserstein_estimate():
    real, fake = tf.constant([[2.0], [4.0]]), tf.constant([[1.0], [-1.0]])
    assert float(losses.wasserstein_estimate(real, fake)) == pytest.approx(3.0)
    assert float(losses.generator_loss([fake, real])) == pytest.approx(-(0.0 + 3.0))
    assert float(losses.critic_loss(real, fake, tf.constant(0.5), 10.0)) == pytest.approx(
        -3.0 + 5.0
    )


def _linear_critic(weight_norm, shape=(8, 4, 1)):
    critic = keras.Sequential(
        [keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(1, use_bias=False)]
    )
    n = int(np.prod(shape))
    critic.layers[-1].kernel.assign(np.full((n, 1), weight_norm / np.sqrt(n), np.float32))
    return critic


@pytest.mark.parametrize("norm, expected", [(0.5, 0.0), (1.0, 0.0), (3.0, 4.0)])
def test_gradient_penalty_is_one_sided(norm, expected):
    # A linear critic's gradient is its weight vector everywhere: the penalty is max(0, |w|-1)^2.
    rng = np.random.default_rng(0)
    real = rng.random((6, 8, 4, 1)).astype(np.float32)
    fake = rng.random((6, 8, 4, 1)).astype(np.float32)
    penalty = losses.gradient_penalty(
        _linear_critic(norm), real, fake, keras.random.SeedGenerator(1)
    )
    assert float(penalty) == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_gradient_penalty_has_finite_gradients_at_zero_gradient():
    critic = _linear_critic(
        0.0
    )  # constant critic: zero input gradient, where a plain norm gives NaN
    real = np.ones((4, 8, 4, 1), np.float32)
    with tf.GradientTape() as tape:
        penalty = losses.gradient_penalty(critic, real, 0 * real, keras.random.SeedGenerator(1))
    grads = tape.gradient(penalty, critic.trainable_variables)
    assert float(penalty) == 0.0
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)


def test_gradient_penalty_interpolates_with_shuffled_reals_and_uniform_weights():
    """Record what the critic sees: points between each fake and some *other* real example."""
    seen = []

    class Recording(keras.layers.Layer):
        def call(self, x):
            seen.append(x)
            return tf.reduce_sum(x, axis=[1, 2, 3])[:, None]

    batch = 64
    # real_j = [1000 + j, 1]: x_hat_i = a_i * real_perm(i) (fakes are zero) reveals both a_i and
    # perm(i).
    real = (
        np.stack([1000.0 + np.arange(batch), np.ones(batch)], axis=1)
        .astype(np.float32)
        .reshape(batch, 2, 1, 1)
    )
    fake = np.zeros_like(real)
    losses.gradient_penalty(Recording(), real, fake, keras.random.SeedGenerator(3))
    x_hat = seen[0].numpy().reshape(batch, 2)
    weights = x_hat[:, 1]
    permutation = np.rint(x_hat[:, 0] / weights - 1000).astype(int)
    assert weights.min() >= 0 and weights.max() <= 1
    assert (
        0.35 < np.mean(weights) < 0.65 and np.std(weights) > 0.2
    )  # uniform(0, 1): mean .5, std .29
    assert sorted(permutation) == list(range(batch))
    assert np.mean(permutation == np.arange(batch)) < 0.2
