"""tf.data readers: paired, unlabelled-mixture and per-source solo streams, zipped into what
`AdversarialSeparator.train_step` consumes (see advsep_tf.model for the batch layout).

Each stream: list_files -> interleave(TFRecordDataset) -> parse -> shuffle -> repeat -> augment
-> batch -> prefetch.
"""

from __future__ import annotations

import tensorflow as tf

from advsep_tf.config import Config
from advsep_tf.data_pipelines.shards import ShardSet, feature_keys
from advsep_tf.errors import AdvsepError
from advsep_tf.model import solo_key

AUTOTUNE = tf.data.AUTOTUNE


def _parser(role: str, config: Config):
    spec = config.spectrogram
    keys = feature_keys(role)
    description = {k: tf.io.FixedLenFeature([], tf.string) for k in keys}
    channels = {"mixture": 1, "excerpt": 1, "sources": config.nb_stems}

    def parse(serialized):
        example = tf.io.parse_single_example(serialized, description)
        return {
            k: tf.reshape(tf.io.decode_raw(example[k], tf.float32), [spec.nb_bins, spec.nb_frames, channels[k]])
            for k in keys
        }

    return parse


def random_gain(log_magnitude: tf.Tensor, low: float, high: float, seed=None) -> tf.Tensor:
    """Scale an excerpt's linear magnitude by one uniform gain in [low, high] (log1p domain in, out)."""
    gain = tf.random.uniform([], low, high, seed=seed)
    return tf.math.log1p(gain * tf.math.expm1(log_magnitude))


def role_examples(shard_set: ShardSet, role: str, shuffle: bool, repeat: bool, seed: int | None = None) -> tf.data.Dataset:
    """Parsed examples of one role: dicts of (nb_bins, nb_frames, channels) float32 tensors."""
    files = shard_set.files(role)
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 8),
        num_parallel_calls=AUTOTUNE,
        deterministic=not shuffle,
    )
    dataset = dataset.map(_parser(role, shard_set.config), num_parallel_calls=AUTOTUNE, deterministic=not shuffle)
    if shuffle:
        dataset = dataset.shuffle(shard_set.config.training.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    return dataset


def paired_dataset(shard_set: ShardSet, role: str, batch_size: int, shuffle: bool, repeat: bool, seed=None):
    """{"paired_mixture": (B, F, T, 1), "paired_sources": (B, F, T, nb_stems)}."""
    dataset = role_examples(shard_set, role, shuffle, repeat, seed)
    dataset = dataset.map(lambda e: {"paired_mixture": e["mixture"], "paired_sources": e["sources"]})
    return dataset.batch(batch_size, drop_remainder=repeat)


def _unpaired_stream(shard_set: ShardSet, role: str, key: str, batches: int, config: Config, seed: int):
    low, high = config.training.unpaired_gain
    dataset = role_examples(shard_set, role, shuffle=True, repeat=True, seed=seed)
    dataset = dataset.map(lambda e: random_gain(e[key], low, high), num_parallel_calls=AUTOTUNE)
    return dataset.batch(config.training.batch_size, drop_remainder=True).batch(batches, drop_remainder=True)


def training_dataset(shard_set: ShardSet, config: Config) -> tf.data.Dataset:
    """The zipped, infinite training stream for `config.training.mode`."""
    _check_roles(shard_set, config)
    seed = config.training.seed
    streams = {"paired": paired_dataset(shard_set, "train", config.training.batch_size, True, True, seed)}
    if config.critic_sources:
        n_critic = config.loss.n_critic
        streams["unpaired_mixtures"] = _unpaired_stream(shard_set, "mixtures", "mixture", n_critic + 1, config, seed + 1)
        for i, source in enumerate(config.critic_sources):
            streams[solo_key(source)] = _unpaired_stream(
                shard_set, f"solo/{source}", "excerpt", n_critic, config, seed + 2 + i
            )

    def merge(batch):
        merged = dict(batch.pop("paired"))
        merged.update(batch)
        return merged

    return tf.data.Dataset.zip(streams).map(merge).prefetch(AUTOTUNE)


def validation_steps(shard_set: ShardSet, config: Config) -> int:
    batch = config.training.batch_size
    return min(config.training.validation_steps, -(-shard_set.examples("valid") // batch))


def validation_dataset(shard_set: ShardSet, config: Config) -> tf.data.Dataset:
    """The first `validation_steps` batches of the validation role, the same ones at every epoch.

    Repeated so that Keras never sees it run dry (it warns then); fit takes `validation_steps`.
    """
    dataset = paired_dataset(shard_set, "valid", config.training.batch_size, shuffle=False, repeat=False)
    return dataset.take(validation_steps(shard_set, config)).repeat().prefetch(AUTOTUNE)


def _check_roles(shard_set: ShardSet, config: Config) -> None:
    needed = ["train"] + (["mixtures"] + [f"solo/{s}" for s in config.critic_sources] if config.critic_sources else [])
    missing = [r for r in needed if shard_set.examples(r) == 0]
    if missing:
        hint = " (or train with --mode supervised)" if "train" not in missing else ""
        raise AdvsepError(
            f"{shard_set.directory}: shard set has no examples for {', '.join(missing)}, needed by "
            f"{config.training.mode} training{hint}; prepare it with the matching --dataset options"
        )
    short = [r for r in needed if shard_set.examples(r) < config.training.batch_size]
    if short:
        raise AdvsepError(
            f"{shard_set.directory}: fewer examples than one batch ({config.training.batch_size}) for {', '.join(short)}"
        )
