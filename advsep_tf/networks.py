"""The paper's networks as plain Keras models: the U-Net separator and the DCGAN-style critic.

Both take log1p magnitudes laid out as (batch, nb_bins, nb_frames, channels), frequency first.
"""

from __future__ import annotations

import keras
from keras import layers

from advsep_tf.config import Config


def build_separator(config: Config, name: str = "separator") -> keras.Model:
    """The separator: one U-Net (`build_unet`), or with `separator.members` > 1 that many U-Nets
    named member0, member1, ... whose estimates are averaged.

    (batch, nb_bins, nb_frames, 1) -> (batch, nb_bins, nb_frames, nb_stems) log1p magnitudes.
    Averaging log1p magnitudes (the domain L_s is measured in) rather than magnitudes keeps an
    ensemble's output a function of the same kind as a member's.
    """
    members = config.separator.members
    if members == 1:
        return build_unet(config, name=name)
    spec = config.spectrogram
    mixture = keras.Input((spec.nb_bins, spec.nb_frames, 1), name="mixture")
    estimates = [build_unet(config, name=f"member{i}")(mixture) for i in range(members)]
    return keras.Model(
        mixture, layers.Average(dtype="float32", name="mean_estimates")(estimates), name=name
    )


def build_unet(config: Config, name: str = "separator") -> keras.Model:
    """U-Net (Jansson et al. 2017 style, as the paper's code builds it), 'same' padding.

    (batch, nb_bins, nb_frames, 1) -> (batch, nb_bins, nb_frames, nb_stems), one ReLU 1x1
    convolution per source giving that source's log1p magnitude directly (no mask).

    The paper's code uses 'valid' convolutions with extra input context; 'same' padding keeps
    input and output the same size, and whole-song separation cross-fades overlapping patches so
    the patch borders, where 'same' padding sees zeros, carry little weight.
    """
    spec, net = config.spectrogram, config.separator
    mixture = keras.Input((spec.nb_bins, spec.nb_frames, 1), name="mixture")
    x = layers.Conv2D(net.base_filters, 3, padding="same", activation="relu", name="conv_in")(
        mixture
    )
    skips = []
    for level in range(net.depth):
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level}_pool")(x)
        filters = net.base_filters * 2 ** (level + 1)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"down{level}_conv")(
            x
        )
    for level in reversed(range(net.depth)):
        filters = net.base_filters * 2**level
        x = layers.Conv2DTranspose(filters, 2, strides=2, name=f"up{level}_deconv")(x)
        x = layers.Concatenate(name=f"up{level}_skip")([x, skips[level]])
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"up{level}_conv")(x)
    x = layers.Concatenate(name="with_mixture")([x, mixture])
    # float32 outputs whatever the dtype policy: under mixed precision only the hidden layers
    # compute in float16/bfloat16, and every consumer gets float32 estimates.
    estimates = [
        layers.Conv2D(
            1, 1, activation=net.output_activation, dtype="float32", name=f"out_{source}"
        )(x)
        for source in config.sources
    ]
    output = (
        estimates[0]
        if len(estimates) == 1
        else layers.Concatenate(dtype="float32", name="estimates")(estimates)
    )
    return keras.Model(mixture, output, name=name)


@keras.saving.register_keras_serializable(package="advsep_tf")
class CriticLeakyReLU(layers.LeakyReLU):
    """`keras.layers.LeakyReLU` computed as max(x, negative_slope * x): the same function for
    slopes in [0, 1], and no weights, so trained critics load either way.

    Why: the gradient penalty differentiates the critic twice. With Keras's LeakyReLU,
    TensorFlow's grappler remapper fuses Conv2D + BiasAdd + LeakyRelu while the second
    derivative's LeakyReluGrad still reads the BiasAdd; the rewrite fails and TensorFlow's C++
    side prints "remapper failed: INVALID_ARGUMENT ... LeakyReluGrad" on every adversarial run.
    Written as a maximum, the derivatives are the maximum's and the rewrites succeed; the step
    time is unchanged (benchmarks/bench_critic_activation.py).
    """

    def call(self, inputs):
        return keras.ops.maximum(inputs, self.negative_slope * inputs)


def build_critic(config: Config, name: str = "critic") -> keras.Model:
    """DCGAN-style Wasserstein critic, no batch normalisation (it would break the gradient penalty).

    (batch, nb_bins, nb_frames, 1) -> (batch, 1). 4x4 stride-2 convolutions (filters doubling from
    base_filters up to max_filters) until one axis is <= 4, then 4x2 convolutions striding along
    frequency only until frequency is <= 4; a dense layer and a linear bias-free scalar.
    With `critic.normalization` "spectral", every weight layer is spectrally normalised (one power
    iteration per training call), which keeps the critic 1-Lipschitz without a gradient penalty.
    """
    spec, net = config.spectrogram, config.critic
    if net.normalization == "spectral":

        def normalised(layer):
            return layers.SpectralNormalization(layer, name=f"{layer.name}_sn")
    else:

        def normalised(layer):
            return layer

    excerpt = keras.Input((spec.nb_bins, spec.nb_frames, 1), name="excerpt")
    x, bins, frames, filters, i = excerpt, spec.nb_bins, spec.nb_frames, net.base_filters, 0
    while bins > 4 and frames > 4:
        x = normalised(layers.Conv2D(filters, 4, strides=2, padding="same", name=f"conv{i}"))(x)
        x = CriticLeakyReLU(0.2, name=f"conv{i}_act")(x)
        bins, frames, filters, i = (
            (bins + 1) // 2,
            (frames + 1) // 2,
            min(filters * 2, net.max_filters),
            i + 1,
        )
    filters = min(filters, net.max_filters)
    while bins > 4:
        x = normalised(
            layers.Conv2D(filters, (4, 2), strides=(2, 1), padding="same", name=f"conv{i}")
        )(x)
        x = CriticLeakyReLU(0.2, name=f"conv{i}_act")(x)
        bins, i = (bins + 1) // 2, i + 1
    x = layers.Flatten(name="flatten")(x)
    x = normalised(layers.Dense(net.dense_units, name="dense"))(x)
    x = CriticLeakyReLU(0.2, name="dense_act")(x)
    score = normalised(layers.Dense(1, use_bias=False, dtype="float32", name="score"))(x)
    return keras.Model(excerpt, score, name=name)
