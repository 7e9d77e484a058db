"""The method's losses as pure functions (PAPER.md, "Losses").

Tensors are log1p magnitudes laid out (batch, nb_bins, nb_frames, nb_stems) for separator
outputs and targets, (batch, nb_bins, nb_frames, 1) for mixtures and critic inputs.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# Inside the square root of the gradient norm, so that a zero gradient has a finite derivative.
NORM_EPSILON = 1e-12


def supervised_loss(estimates: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """L_s: mean squared error on log1p magnitudes, averaged per source and summed over sources."""
    per_source = tf.reduce_mean(tf.square(estimates - targets), axis=[0, 1, 2])
    return tf.reduce_sum(per_source)


def additive_loss(mixture: tf.Tensor, estimates: tf.Tensor) -> tf.Tensor:
    """L_add: MSE between the mixture magnitude and the sum of estimated magnitudes (linear
    scale)."""
    mixture_magnitude = tf.math.expm1(mixture[..., 0])
    estimated_sum = tf.reduce_sum(tf.math.expm1(estimates), axis=-1)
    return tf.reduce_mean(tf.square(mixture_magnitude - estimated_sum))


def generator_loss(fake_scores: list[tf.Tensor]) -> tf.Tensor:
    """L_u for the separator: -sum_k mean(critic_k(estimate_k)) over the critics given."""
    return -tf.add_n([tf.reduce_mean(scores) for scores in fake_scores])


def wasserstein_estimate(real_scores: tf.Tensor, fake_scores: tf.Tensor) -> tf.Tensor:
    """The critic's estimate of the Wasserstein distance between real and separated excerpts."""
    return tf.reduce_mean(real_scores) - tf.reduce_mean(fake_scores)


def gradient_penalty(critic, real: tf.Tensor, fake: tf.Tensor, seed_generator) -> tf.Tensor:
    """One-sided WGAN-GP term: mean(max(0, ||grad critic(x_hat)|| - 1)^2).

    x_hat interpolates between separated excerpts and *shuffled* real excerpts (so that an
    interpolate never pairs a separator output with its own source), with one uniform weight per
    example. The norm runs over all non-batch axes, with an epsilon inside the square root.
    """
    batch = tf.shape(real)[0]
    order = tf.argsort(keras.random.uniform([batch], seed=seed_generator))
    real = tf.gather(real, order)
    weight = keras.random.uniform([batch, 1, 1, 1], seed=seed_generator)
    interpolates = weight * real + (1.0 - weight) * fake
    with tf.GradientTape() as tape:
        tape.watch(interpolates)
        scores = tf.cast(critic(interpolates, training=True), tf.float32)
    gradients = tf.cast(tape.gradient(scores, interpolates), tf.float32)
    norms = tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=[1, 2, 3]) + NORM_EPSILON)
    return tf.reduce_mean(tf.square(tf.nn.relu(norms - 1.0)))


def critic_loss(
    real_scores: tf.Tensor, fake_scores: tf.Tensor, penalty: tf.Tensor, gp_lambda: float
) -> tf.Tensor:
    """mean(critic(fake)) - mean(critic(real)) + lambda * GP."""
    return -wasserstein_estimate(real_scores, fake_scores) + gp_lambda * penalty


def consistency_error(mixture: tf.Tensor, estimates: tf.Tensor) -> tf.Tensor:
    """Per example, how far the estimates are from adding up to the mixture: the mean absolute
    difference of linear magnitudes over the mixture's mean magnitude. (batch,) float32."""
    mixture_magnitude = tf.math.expm1(mixture[..., 0])
    residual = tf.abs(mixture_magnitude - tf.reduce_sum(tf.math.expm1(estimates), axis=-1))
    return tf.reduce_mean(residual, axis=[1, 2]) / (
        tf.reduce_mean(mixture_magnitude, axis=[1, 2]) + 1e-6
    )


def weighted_supervised_loss(
    estimates: tf.Tensor, targets: tf.Tensor, weights: tf.Tensor
) -> tf.Tensor:
    """L_s with a weight per example (batch,): the weighted mean of each example's L_s; 0 when every
    weight is 0. The pseudo-label term: untrusted labels get weight 0."""
    per_example = tf.reduce_sum(
        tf.reduce_mean(tf.square(estimates - targets), axis=[1, 2]), axis=-1
    )
    return tf.reduce_sum(weights * per_example) / tf.maximum(tf.reduce_sum(weights), 1.0)
