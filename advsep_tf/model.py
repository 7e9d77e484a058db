"""`AdversarialSeparator`: the separator, one critic per source, and the adversarial schedule.

`train_step` runs `loss.n_critic` updates of every critic, each on a fresh batch of unlabelled
mixtures and a fresh batch of solo excerpts of its source, then one separator update on a paired
batch (L_s) plus an unlabelled batch (alpha * L_u + beta * L_add). In `supervised` mode no critic
exists and the step is the supervised baseline (L_s only). With `training.pseudo_label_weight`,
the separator's loss also holds the pseudo-label term on a batch of unlabelled mixtures that a
frozen teacher labels (`set_teacher`, `pseudo_labelled`).

A training batch is the dict that `advsep_tf.data_pipelines.readers.training_dataset` builds;
its layout (keys and shapes) is documented, and its keys named, there.
"""

from __future__ import annotations

import contextlib
import math

import keras
import tensorflow as tf

from advsep_tf import losses
from advsep_tf.config import Config
from advsep_tf.data_pipelines.readers import (
    PAIRED_MIXTURE,
    PAIRED_SOURCES,
    PSEUDO_MIXTURE,
    UNPAIRED_MIXTURES,
    remix,
    solo_key,
    synthetic_key,
)
from advsep_tf.networks import build_critic, build_separator


class _Frozen:
    """Holds a network out of Keras's attribute tracking, so that it is neither trained nor
    saved."""

    def __init__(self, network):
        self.network = network


@keras.saving.register_keras_serializable(package="advsep_tf")
class AdversarialSeparator(keras.Model):
    """U-Net separator trained with L_s + alpha * L_u + beta * L_add against per-source critics.

    `call(mixture)`: (batch, nb_bins, nb_frames, 1) log1p magnitudes ->
    (batch, nb_bins, nb_frames, nb_stems) log1p magnitude estimates, in `config.sources` order.
    """

    def __init__(self, config, separator=None, critics=None, **kwargs):
        super().__init__(**kwargs)
        self.separation_config = config if isinstance(config, Config) else Config.from_dict(config)
        cfg = self.separation_config
        self.separator = separator or build_separator(cfg)
        self.critic_sources = cfg.critic_sources
        if critics is None:
            critics = [build_critic(cfg, name=f"critic_{source}") for source in self.critic_sources]
        if len(critics) != len(self.critic_sources):
            raise ValueError(
                f"{len(critics)} critics given for critic sources {self.critic_sources}"
            )
        self.critics = list(critics)
        # training.ema_decay: one average per separator weight, saved with the model (a resumed
        # run continues its average); `averaged_weights` swaps them in.
        self.weight_averages = [
            self.add_weight(
                shape=v.shape,
                initializer="zeros",
                trainable=False,
                name=f"average_{i}",
                aggregation="only_first_replica",
            )
            for i, v in enumerate(self.separator.trainable_variables)
            if cfg.training.ema_decay > 0
        ]
        self.seed_generator = keras.random.SeedGenerator(cfg.training.seed)
        self.critic_optimizer = None
        self._teacher = _Frozen(None)
        # Incremented by Python code in train_step, which runs only while TensorFlow traces it.
        self.train_step_traces = 0

        mean = keras.metrics.Mean
        self.supervised_loss_tracker = mean(name="supervised_loss")
        self.total_loss_tracker = mean(name="loss")
        self.trackers = [self.total_loss_tracker, self.supervised_loss_tracker]
        if cfg.training.pseudo_label_weight > 0:
            self.pseudo_loss_tracker = mean(name="pseudo_label_loss")
            self.trusted_tracker = mean(name="pseudo_labels_trusted")
            self.trackers += [self.pseudo_loss_tracker, self.trusted_tracker]
        if self.critics:
            self.adversarial_loss_tracker = mean(name="adversarial_loss")
            self.additive_loss_tracker = mean(name="additive_loss")
            self.wasserstein_trackers = [mean(name=f"wasserstein_{s}") for s in self.critic_sources]
            self.penalty_trackers = [
                mean(name=f"gradient_penalty_{s}") for s in self.critic_sources
            ]
            self.trackers += [self.adversarial_loss_tracker, self.additive_loss_tracker]
            self.trackers += self.wasserstein_trackers + self.penalty_trackers
        # Sub-models are built by construction; nothing is left to infer from a first call.
        self.built = True

    @property
    def metrics(self):
        return list(self.trackers)

    def call(self, mixture, training=False):
        return self.separator(mixture, training=training)

    def set_teacher(self, teacher) -> None:
        """Targets for batches without paired sources: a frozen copy of `teacher`'s separator.

        It labels the unlabelled mixtures of the pseudo-label term (`training.pseudo_label_weight`)
        and, with `training.teacher_targets`, the batches that replace the paired ones. Adapting a
        trained model to music that has no paired stems: L_s becomes the distance to
        what the model separated before adaptation, which holds the separator near a known good
        solution while the critics pull it towards the new music's solo recordings. The teacher
        is not part of the model: it is neither trained nor saved.
        """
        frozen = keras.models.clone_model(teacher.separator)
        frozen.set_weights(teacher.separator.get_weights())
        frozen.trainable = False
        self._teacher = _Frozen(frozen)

    # -- compile / serialisation -------------------------------------------------------------

    def compile(self, separator_optimizer=None, critic_optimizer=None, **kwargs):
        opt = self.separation_config.optimizer

        def adam():
            return keras.optimizers.Adam(opt.learning_rate, beta_1=opt.beta_1, beta_2=opt.beta_2)

        separator_optimizer = separator_optimizer or adam()
        # Keras wraps the separator's optimizer in a LossScaleOptimizer under mixed_float16; the
        # critics' optimizer is ours to wrap.
        super().compile(optimizer=separator_optimizer, **kwargs)
        critic_optimizer = (critic_optimizer or adam()) if self.critics else None
        if (
            critic_optimizer is not None
            and self.dtype_policy.name == "mixed_float16"
            and not isinstance(critic_optimizer, keras.optimizers.LossScaleOptimizer)
        ):
            critic_optimizer = keras.optimizers.LossScaleOptimizer(critic_optimizer)
        self.critic_optimizer = critic_optimizer
        # Build both optimizers on their variables now: under a distribution strategy, or when
        # reloading optimizer state, they must exist before the first step.
        self.optimizer.build(self.separator.trainable_variables)
        if self.critic_optimizer is not None:
            self.critic_optimizer.build(self.critic_variables)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # A private Keras hook, overridden because no public one exists: under a distribution
        # strategy, fit (Keras 3.15) pulls a batch and reduces it across replicas to build the
        # model symbolically, and MultiWorkerMirroredStrategy cannot reduce a dict batch
        # ("unsupported
        # type <class 'dict'>"). The networks are built by construction and both optimizers by
        # compile(), so there is nothing to build. tests/test_model.py fails if Keras changes the
        # hook.
        if self.built and self.optimizer is not None and self.optimizer.built:
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    @property
    def critic_variables(self):
        return [v for critic in self.critics for v in critic.trainable_variables]

    def get_compile_config(self):
        if getattr(self, "optimizer", None) is None:  # an uncompiled model saves without optimizers
            return None
        config = {"separator_optimizer": keras.saving.serialize_keras_object(self.optimizer)}
        if self.critic_optimizer is not None:
            config["critic_optimizer"] = keras.saving.serialize_keras_object(self.critic_optimizer)
        return config

    def compile_from_config(self, config):
        self.compile(
            separator_optimizer=keras.saving.deserialize_keras_object(
                config["separator_optimizer"]
            ),
            critic_optimizer=(
                keras.saving.deserialize_keras_object(config["critic_optimizer"])
                if "critic_optimizer" in config
                else None
            ),
        )

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "config": self.separation_config.to_dict(),
            "separator": keras.saving.serialize_keras_object(self.separator),
            "critics": [keras.saving.serialize_keras_object(c) for c in self.critics],
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["separator"] = keras.saving.deserialize_keras_object(config["separator"])
        config["critics"] = [keras.saving.deserialize_keras_object(c) for c in config["critics"]]
        return cls(**config)

    # -- training ------------------------------------------------------------------------------

    def _separate(self, mixture, training):
        # Under mixed precision the networks compute in float16/bfloat16; losses stay float32.
        return tf.cast(self.separator(mixture, training=training), tf.float32)

    @staticmethod
    def _per_replica(loss):
        """Gradients are summed over replicas: scale each replica's mean loss by 1 / replicas."""
        return loss / tf.distribute.get_strategy().num_replicas_in_sync

    def _critic_step(self, unlabelled_mixture, solo_batches):
        """One update of every critic on fresh unlabelled and solo batches."""
        cfg = self.separation_config
        estimates = self._separate(unlabelled_mixture, training=False)
        with tf.GradientTape() as tape:
            total = 0.0
            results = []
            for critic, source in zip(self.critics, self.critic_sources):
                k = cfg.sources.index(source)
                fake = estimates[..., k : k + 1]
                real = solo_batches[source]
                real_scores = tf.cast(critic(real, training=True), tf.float32)
                fake_scores = tf.cast(critic(fake, training=True), tf.float32)
                if cfg.critic.normalization == "spectral":  # Lipschitz by construction: no penalty
                    penalty = tf.constant(0.0)
                else:
                    penalty = losses.gradient_penalty(critic, real, fake, self.seed_generator)
                total += losses.critic_loss(real_scores, fake_scores, penalty, cfg.loss.gp_lambda)
                results.append((losses.wasserstein_estimate(real_scores, fake_scores), penalty))
            scaled = self.critic_optimizer.scale_loss(self._per_replica(total))
        variables = self.critic_variables
        self.critic_optimizer.apply(tape.gradient(scaled, variables), variables)
        for (wasserstein, penalty), w_tracker, p_tracker in zip(
            results, self.wasserstein_trackers, self.penalty_trackers
        ):
            w_tracker.update_state(wasserstein)
            p_tracker.update_state(penalty)

    def pseudo_labelled(self, mixture):
        """The teacher's labels for unlabelled mixtures, augmented for the student.

        mixture: (batch, F, T, 1) log1p. Returns (student input (batch, F, T, 1), targets (batch,
        F, T, nb_stems), weights (batch,)). A label is trusted (weight 1) when the teacher's
        estimates add up to the mixture within `training.pseudo_label_max_error` (relative error of
        linear magnitudes, `losses.consistency_error`). A share `training.remix_probability` of
        the examples becomes a remix: source k of example i with the other sources taken from other
        examples of the batch, the mixture their sum, trusted when every part is. Every example
        then gets one random gain in [0.5, 1.5] on input and targets alike: the noise of a noisy
        student.
        """
        cfg = self.separation_config
        if self._teacher.network is None:
            raise ValueError("training.pseudo_label_weight needs a teacher (set_teacher)")
        labels = tf.stop_gradient(
            tf.cast(self._teacher.network(mixture, training=False), tf.float32)
        )
        trusted = tf.cast(
            losses.consistency_error(mixture, labels) <= cfg.training.pseudo_label_max_error,
            tf.float32,
        )
        batch = tf.shape(mixture)[0]
        stems, weights = [labels[..., 0]], trusted
        for k in range(1, cfg.nb_stems):  # unrolled at trace time
            order = tf.argsort(keras.random.uniform([batch], seed=self.seed_generator))
            stems.append(tf.gather(labels[..., k], order))
            weights = weights * tf.gather(trusted, order)
        remixed_targets = tf.stack(stems, axis=-1)
        use = (
            keras.random.uniform([batch], seed=self.seed_generator) < cfg.training.remix_probability
        )
        pick = tf.reshape(use, [-1, 1, 1, 1])
        targets = tf.where(pick, remixed_targets, labels)
        inputs = tf.where(pick, self._remix(remixed_targets), mixture)
        weights = tf.where(use, weights, trusted)
        gain = keras.random.uniform([batch, 1, 1, 1], 0.5, 1.5, seed=self.seed_generator)
        return (
            tf.math.log1p(gain * tf.math.expm1(inputs)),
            tf.math.log1p(gain * tf.math.expm1(targets)),
            weights,
        )

    def _remix(self, stems):
        """`readers.remix` with the phases of `training.remix_phases`, drawn from the model's seed
        generator."""
        if self.separation_config.training.remix_phases == "aligned":
            return remix(stems)
        phases = keras.random.uniform(tf.shape(stems), 0.0, 2 * math.pi, seed=self.seed_generator)
        return remix(stems, phases)

    def _with_solo_excerpts(self, data, mixture, targets):
        """Synthetic pairs without paired data (adaptation with `training.synthetic_pairs`): in a
        share of the examples, source k's teacher estimate is replaced by a real solo excerpt of
        that source (the batch's `synthetic_<source>`, gain-scaled as in `readers.synthetic_pair`)
        and the mixture becomes the sum. The solo recordings' labels are exact; the other
        sources keep the teacher's estimates.
        """
        cfg = self.separation_config
        pools = [k for k, s in enumerate(cfg.sources) if synthetic_key(s) in data]
        if not pools or cfg.training.synthetic_pairs <= 0:
            return mixture, targets
        batch = tf.shape(mixture)[0]
        low, high = cfg.training.synthetic_gain
        stems = []
        for k, source in enumerate(cfg.sources):
            if k in pools:
                gain = keras.random.uniform([batch, 1, 1], low, high, seed=self.seed_generator)
                stems.append(
                    tf.math.log1p(gain * tf.math.expm1(data[synthetic_key(source)][..., 0]))
                )
            else:
                stems.append(targets[..., k])
        synthetic = tf.stack(stems, axis=-1)
        use = tf.reshape(
            keras.random.uniform([batch], seed=self.seed_generator) < cfg.training.synthetic_pairs,
            [-1, 1, 1, 1],
        )
        return tf.where(use, self._remix(synthetic), mixture), tf.where(use, synthetic, targets)

    def train_step(self, data):
        self.train_step_traces += 1
        cfg = self.separation_config
        if self.critics:
            unpaired = data[UNPAIRED_MIXTURES]
            # train_step is not autographed: this Python loop is unrolled at trace time.
            for i in range(cfg.loss.n_critic):
                solo = {s: data[solo_key(s)][:, i] for s in self.critic_sources}
                self._critic_step(unpaired[:, i], solo)

        variables = self.separator.trainable_variables
        mixture, targets = data[PAIRED_MIXTURE], data.get(PAIRED_SOURCES)
        if targets is None:  # adaptation: the teacher's estimates stand in for the stems
            if self._teacher.network is None:
                raise ValueError("a batch without paired_sources needs a teacher (set_teacher)")
            targets = tf.stop_gradient(
                tf.cast(self._teacher.network(mixture, training=False), tf.float32)
            )
            mixture, targets = self._with_solo_excerpts(data, mixture, targets)
        pseudo_weight = cfg.training.pseudo_label_weight
        if pseudo_weight > 0:
            pseudo_inputs, pseudo_targets, trust = self.pseudo_labelled(data[PSEUDO_MIXTURE])
        with tf.GradientTape() as tape:
            estimates = self._separate(mixture, training=True)
            supervised = losses.supervised_loss(estimates, targets)
            total = supervised
            if pseudo_weight > 0:
                pseudo = losses.weighted_supervised_loss(
                    self._separate(pseudo_inputs, training=True), pseudo_targets, trust
                )
                total = total + pseudo_weight * pseudo
            if self.critics:
                unlabelled = unpaired[:, cfg.loss.n_critic]
                unlabelled_estimates = self._separate(unlabelled, training=True)
                fake_scores = [
                    tf.cast(
                        critic(unlabelled_estimates[..., k : k + 1], training=False), tf.float32
                    )
                    for critic, k in zip(
                        self.critics, (cfg.sources.index(s) for s in self.critic_sources)
                    )
                ]
                adversarial = losses.generator_loss(fake_scores)
                additive = losses.additive_loss(unlabelled, unlabelled_estimates)
                total = total + cfg.loss.alpha * adversarial + cfg.loss.beta * additive
            scaled = self.optimizer.scale_loss(self._per_replica(total))
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        if self.weight_averages:
            # The first step of a run (warm starts too) starts the average at the weights.
            decay = tf.where(self.optimizer.iterations > 1, cfg.training.ema_decay, 0.0)
            for average, variable in zip(self.weight_averages, variables):
                average.assign(decay * average + (1.0 - decay) * variable)

        self.supervised_loss_tracker.update_state(supervised)
        self.total_loss_tracker.update_state(total)
        if pseudo_weight > 0:
            self.pseudo_loss_tracker.update_state(pseudo)
            self.trusted_tracker.update_state(tf.reduce_mean(trust))
        if self.critics:
            self.adversarial_loss_tracker.update_state(adversarial)
            self.additive_loss_tracker.update_state(additive)
        return self._logs(self.metrics)

    def swap_averaged_weights(self) -> None:
        """Exchange the separator's weights with their moving averages (training.ema_decay; no-op
        without): a second call swaps them back."""
        for average, variable in zip(self.weight_averages, self.separator.trainable_variables):
            trained = variable.numpy()
            variable.assign(average.numpy())
            average.assign(trained)

    @contextlib.contextmanager
    def averaged_weights(self):
        """The separator holds its averaged weights inside the block (as saved and validated)."""
        self.swap_averaged_weights()
        try:
            yield self
        finally:
            self.swap_averaged_weights()

    def test_step(self, data):
        estimates = self._separate(data[PAIRED_MIXTURE], training=False)
        supervised = losses.supervised_loss(estimates, data[PAIRED_SOURCES])
        self.supervised_loss_tracker.update_state(supervised)
        self.total_loss_tracker.update_state(supervised)
        return self._logs((self.total_loss_tracker, self.supervised_loss_tracker))

    @staticmethod
    def _logs(trackers):
        # Keras (3.15) averages logs over workers with reduce("MEAN", axis=0), which needs a
        # batch axis: under MultiWorkerMirroredStrategy give each value one, which the mean removes.
        multi_worker = isinstance(
            tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy
        )
        return {
            m.name: tf.reshape(m.result(), [1]) if multi_worker else m.result() for m in trackers
        }
