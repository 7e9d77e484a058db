"""tf.data readers: paired, unlabelled-mixture and per-source solo streams, zipped into the
training batch that `AdversarialSeparator.train_step` consumes.

The training batch is a dict; the batch axis comes first everywhere, so that a distribution
strategy splits every stream across replicas:
    paired_mixture     (batch, nb_bins, nb_frames, 1)
    paired_sources     (batch, nb_bins, nb_frames, nb_stems)   absent with training.teacher_targets
    unpaired_mixtures  (batch, n_critic + 1, nb_bins, nb_frames, 1)   adversarial mode only
    solo_<source>      (batch, n_critic, nb_bins, nb_frames, 1)       one per critic (`solo_key`)
    pseudo_mixture     (batch, nb_bins, nb_frames, 1)   unlabelled, for the teacher to label;
                                                        with training.pseudo_label_weight > 0
    synthetic_<source> (batch, nb_bins, nb_frames, 1)   solo excerpts, one per source with a solo
                                                        pool; with teacher_targets and
                                                        synthetic_pairs
A validation batch holds the first two.

Every reader takes the training config explicitly: batch size, shuffle buffer, seed, gains and
augmentations come from `config.training` (the shard set's own config is what it was prepared
with; only its spectrogram layout, checked equal on opening, is shared).

Each stream: list_files -> interleave(TFRecordDataset) -> parse -> shuffle -> repeat -> augment
-> batch -> prefetch.

On-the-fly augmentations, each a small named function (all work on log1p magnitudes):
- `random_gain`: one uniform gain in `config.training.unpaired_gain` (the paper's 0.2-1.2) per
  unpaired excerpt, so per source for the solo streams; always on for unpaired data.
- `random_remix`: paired stems from different tracks mixed into a new paired example. The
  mixture is the sum of the stems' *linear magnitudes*, log1p(sum_k expm1(s_k)): an
  approximation, since the magnitude of a sum of signals is at most (and usually a little less
  than) the sum of their magnitudes; phase cancellation is ignored. A fraction
  `config.training.remix_probability` of the paired examples is remixed (default 0: off).
- `synthetic_pair`: with `config.training.synthetic_pairs` > 0, that share of the paired examples
  becomes a new mixture of solo excerpts (one per source, from the shard set's `solo/<source>`
  pools, each with a gain in `training.synthetic_gain`): unpaired solo recordings turned into
  exactly labelled pairs.
- `pitch_shift`: with `config.training.solo_pitch_shift` > 0, every solo excerpt (the stems of
  synthetic pairs) is shifted along frequency by a uniform number of semitones in [-s, s]:
  more voices and instruments than the pool holds (formants move with the pitch).
- `random_offset`: a random frame offset. Shards hold patches `patch_hop` frames apart; two
  consecutive patches of one track are a window of nb_frames + patch_hop frames, and the excerpt
  is cut from it at an offset drawn uniformly from [0, patch_hop] frames, so excerpts are no
  longer aligned to the patch grid (a patch whose successor was dropped as silent, or lies in
  another shard, keeps offset 0). `config.training.random_offsets` turns it on for every stream
  (default off). Needs shards of format version 2 (they store each patch's index).

Paired training examples come from every track in proportion to its patches, unless
`config.training.origin_weights` names a weight per origin (the `--dataset` kinds given to
advsep-tf-prepare, `kind#2` for a kind given twice): then each origin is its own stream and a
batch draws from them with those weights (`tf.data.Dataset.sample_from_datasets`), so that a
small corpus of the music that matters is not drowned by a large one of other music.
"""

from __future__ import annotations

import math

import tensorflow as tf

from advsep_tf.config import Config
from advsep_tf.data_pipelines.shards import ShardSet, feature_keys
from advsep_tf.errors import AdvsepError

AUTOTUNE = tf.data.AUTOTUNE

PAIRED_MIXTURE = "paired_mixture"
PAIRED_SOURCES = "paired_sources"
UNPAIRED_MIXTURES = "unpaired_mixtures"
PSEUDO_MIXTURE = "pseudo_mixture"


def synthetic_key(source: str) -> str:
    """The training batch's key for solo excerpts of `source` that become synthetic pairs when there
    is no paired data (adaptation): (batch, F, T, 1)."""
    return f"synthetic_{source}"


def solo_key(source: str) -> str:
    """The training batch's key for the solo excerpts of `source`."""
    return f"solo_{source}"


def _parser(role: str, config: Config, with_position: bool = False):
    spec = config.spectrogram
    keys = feature_keys(role)
    description = {k: tf.io.FixedLenFeature([], tf.string) for k in keys}
    if with_position:
        description["track"] = tf.io.FixedLenFeature([], tf.string, default_value="")
        description["patch"] = tf.io.FixedLenFeature([], tf.int64, default_value=-1)
    channels = {"mixture": 1, "excerpt": 1, "sources": config.nb_stems}

    def parse(serialized):
        example = tf.io.parse_single_example(serialized, description)
        parsed = {
            k: tf.reshape(
                tf.io.decode_raw(example[k], tf.float32),
                [spec.nb_bins, spec.nb_frames, channels[k]],
            )
            for k in keys
        }
        if with_position:
            parsed["track"], parsed["patch"] = example["track"], example["patch"]
        return parsed

    return parse


def random_gain(log_magnitude: tf.Tensor, low: float, high: float, seed=None) -> tf.Tensor:
    """Scale an excerpt's linear magnitude by one uniform gain in [low, high] (log1p domain in,
    out)."""
    gain = tf.random.uniform([], low, high, seed=seed)
    return tf.math.log1p(gain * tf.math.expm1(log_magnitude))


def pitch_shift(log_magnitude: tf.Tensor, semitones) -> tf.Tensor:
    """An (F, T, C) log1p excerpt shifted by `semitones` along frequency: what lay at bin f lies
    at bin f * 2**(semitones / 12) (linear interpolation of linear magnitudes); bins whose
    content would come from above the band are silent."""
    nb_bins = tf.shape(log_magnitude)[0]
    position = tf.range(nb_bins, dtype=tf.float32) / tf.pow(2.0, semitones / 12.0)
    below = tf.floor(position)
    weight = (position - below)[:, None, None]
    # Row nb_bins is silence: every position at or past the band's top reads it.
    magnitude = tf.concat([tf.math.expm1(log_magnitude), tf.zeros_like(log_magnitude[:1])], 0)
    below = tf.minimum(tf.cast(below, tf.int32), nb_bins)
    above = tf.minimum(below + 1, nb_bins)
    shifted = (1.0 - weight) * tf.gather(magnitude, below) + weight * tf.gather(magnitude, above)
    return tf.math.log1p(shifted)


def remix(sources: tf.Tensor, phases: tf.Tensor | None = None) -> tf.Tensor:
    """The mixture of stems known only as magnitudes: (..., K) log1p -> (..., 1) log1p.

    `phases` None: the sum of the linear magnitudes (every bin's stems in phase). `phases`, an
    array of angles shaped like `sources` (`remix_phases`): the magnitude of the stems' sum with
    those phases, whose power is on average the sum of the stems' powers, as it is for unrelated
    recordings mixed in the waveform domain.
    """
    magnitudes = tf.math.expm1(sources)
    if phases is None:
        return tf.math.log1p(tf.reduce_sum(magnitudes, axis=-1, keepdims=True))
    real = tf.reduce_sum(magnitudes * tf.cos(phases), axis=-1, keepdims=True)
    imag = tf.reduce_sum(magnitudes * tf.sin(phases), axis=-1, keepdims=True)
    return tf.math.log1p(tf.sqrt(real**2 + imag**2))


def _derived_seed(seed, offset: int):
    """Each random op its own seed, derived from the stream's (None stays None: unseeded)."""
    return None if seed is None else seed + offset


def remix_phases(sources: tf.Tensor, mode: str, seed=None) -> tf.Tensor | None:
    """The phases `remix` gives `sources` in `training.remix_phases` mode `mode`: None
    ("aligned"), or independent uniform angles, one per stem and bin ("random")."""
    if mode == "aligned":
        return None
    return tf.random.uniform(tf.shape(sources), 0.0, 2 * math.pi, seed=seed)


def random_remix(
    example: dict, donors: list[dict], probability: float, seed=None, phase_mode: str = "aligned"
) -> dict:
    """With probability `probability`, stem k of `example` becomes stem k of `donors[k]` (examples
    of other tracks) and the mixture their `remix` in `phase_mode` (`training.remix_phases`);
    otherwise `example` as is.

    example, donors[k]: {"mixture": (F, T, 1), "sources": (F, T, K)} log1p magnitudes.
    """
    stems = tf.stack([donor["sources"][..., k] for k, donor in enumerate(donors)], axis=-1)
    return _maybe_remixed(example, stems, probability, seed, phase_mode, _derived_seed(seed, 1))


def synthetic_pair(
    example: dict,
    stems: list[tf.Tensor],
    probability: float,
    gain: tuple[float, float],
    seed=None,
    phase_mode: str = "aligned",
) -> dict:
    """With probability `probability`, a new example whose stem k is `stems[k]` (an unrelated solo
    excerpt, (F, T, 1) log1p) scaled by a uniform gain in `gain`, and whose mixture is their
    `remix` in `phase_mode` (`training.remix_phases`); otherwise `example` as is. Independent gains
    vary the sources' balance as real mixes do; the labels stay exact.
    """
    low, high = gain
    scaled = [
        random_gain(stem[..., 0], low, high, _derived_seed(seed, k)) for k, stem in enumerate(stems)
    ]
    sources = tf.stack(scaled, axis=-1)
    return _maybe_remixed(example, sources, probability, seed, phase_mode, _derived_seed(seed, 97))


def _maybe_remixed(example: dict, stems, probability: float, seed, phase_mode: str, phase_seed):
    """With probability `probability` (drawn with `seed`), `stems` and their `remix` in
    `phase_mode` (phases drawn with `phase_seed`) in place of `example`'s; otherwise `example`."""
    use = tf.random.uniform([], seed=seed) < probability
    mixture = remix(stems, remix_phases(stems, phase_mode, phase_seed))
    return {
        "mixture": tf.where(use, mixture, example["mixture"]),
        "sources": tf.where(use, stems, example["sources"]),
    }


def random_offset(first: dict, second: dict, keys, patch_hop: int, seed=None) -> dict:
    """An excerpt cut at a random frame offset in [0, patch_hop] from two consecutive patches.

    first, second: parsed examples with "track", "patch" and (F, T, C) tensors under `keys`; when
    `second` is not the next patch of `first`'s track, `first` is returned unchanged.
    """
    consecutive = tf.logical_and(
        tf.equal(first["track"], second["track"]),
        tf.logical_and(tf.equal(second["patch"], first["patch"] + 1), first["patch"] >= 0),
    )
    offset = tf.where(
        consecutive, tf.random.uniform([], 0, patch_hop + 1, dtype=tf.int32, seed=seed), 0
    )
    out = {}
    for key in keys:
        nb_frames = first[key].shape[1]
        window = tf.concat([first[key], second[key][:, nb_frames - patch_hop :, :]], axis=1)
        out[key] = tf.reshape(window[:, offset : offset + nb_frames, :], first[key].shape)
    return out


def _consecutive_pairs(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """(example, next example) for every example of a file; the last one is paired with a blank."""
    blank = tf.nest.map_structure(lambda s: tf.zeros(s.shape, s.dtype), dataset.element_spec)
    blank["patch"] = tf.constant(-1, tf.int64)

    def step(state, current):
        previous, has_previous = state
        return (current, tf.constant(True)), (previous, current, has_previous)

    pairs = dataset.concatenate(tf.data.Dataset.from_tensors(blank)).scan(
        (blank, tf.constant(False)), step
    )
    return pairs.filter(lambda previous, current, has_previous: has_previous).map(
        lambda previous, current, has_previous: (previous, current)
    )


def role_examples(
    shard_set: ShardSet,
    config: Config,
    role: str,
    shuffle: bool,
    repeat: bool,
    seed: int | None = None,
    random_offsets: bool = False,
    origin: str | None = None,
    shuffle_buffer: int | None = None,
) -> tf.data.Dataset:
    """Parsed examples of one role: dicts of (nb_bins, nb_frames, channels) float32 tensors.

    Shuffled examples pass through a buffer of `shuffle_buffer` (default
    `config.training.shuffle_buffer`). With `random_offsets`, each example is cut at a random
    frame offset (`random_offset`). With `origin`, only the examples of that origin's tracks.
    """
    layout = shard_set.config  # the shapes written to disk (equal to config's when opened with it)
    files = shard_set.files(role)
    keys = feature_keys(role)
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    if random_offsets:
        parse = _parser(role, layout, with_position=True)
        patch_hop = layout.spectrogram.patch_hop

        def read(path):
            pairs = _consecutive_pairs(_origin_records(path, origin).map(parse))
            # An op seed per stream: without one, TensorFlow warns that the graph seed is reused.
            op_seed = _derived_seed(seed, 307)
            return pairs.map(
                lambda first, second: random_offset(first, second, keys, patch_hop, op_seed)
            )

        dataset = dataset.interleave(
            read,
            cycle_length=min(len(files), 8),
            num_parallel_calls=AUTOTUNE,
            deterministic=not shuffle,
        )
    else:
        dataset = dataset.interleave(
            lambda path: _origin_records(path, origin),
            cycle_length=min(len(files), 8),
            num_parallel_calls=AUTOTUNE,
            deterministic=not shuffle,
        )
        dataset = dataset.map(
            _parser(role, layout), num_parallel_calls=AUTOTUNE, deterministic=not shuffle
        )
    if shuffle:
        dataset = dataset.shuffle(
            shuffle_buffer or config.training.shuffle_buffer,
            seed=seed,
            reshuffle_each_iteration=True,
        )
    if repeat:
        dataset = dataset.repeat()
    return dataset


def track_origin(track: tf.Tensor) -> tf.Tensor:
    """The origin of a serialized track key "<origin>:<track id>" (the dataset's name)."""
    return tf.strings.split(track, ":", maxsplit=1)[0]


def _record_origin(record: tf.Tensor) -> tf.Tensor:
    """The origin of a serialized example's track."""
    track = {"track": tf.io.FixedLenFeature([], tf.string, default_value="")}
    return track_origin(tf.io.parse_single_example(record, track)["track"])


def _origin_records(path, origin: str | None) -> tf.data.Dataset:
    """The serialized examples of one shard file, only those of `origin`'s tracks when given."""
    records = tf.data.TFRecordDataset(path)
    if origin is None:
        return records
    return records.filter(lambda record: tf.equal(_record_origin(record), origin))


def _training_examples(
    shard_set: ShardSet, config: Config, role: str, shuffle, repeat, seed, random_offsets
) -> tf.data.Dataset:
    """`role_examples` of a paired role; the train role drawn by `training.origin_weights` when
    it names any (one stream per origin, each with its share of the shuffle buffer)."""
    weights = config.training.origin_weights if role == "train" else {}
    if not weights:
        return role_examples(shard_set, config, role, shuffle, repeat, seed, random_offsets)
    origins = sorted(o for o, w in weights.items() if w > 0)
    buffer = max(1, config.training.shuffle_buffer // len(origins))
    streams = [
        role_examples(
            shard_set,
            config,
            role,
            shuffle,
            True,  # an origin's stream must not run dry before the others
            _derived_seed(seed, 701 + k),
            random_offsets,
            origin=origin,
            shuffle_buffer=buffer,
        )
        for k, origin in enumerate(origins)
    ]
    return tf.data.Dataset.sample_from_datasets(
        streams, [float(weights[o]) for o in origins], seed=_derived_seed(seed, 699)
    )


def training_origins(shard_set: ShardSet, role: str = "train") -> dict[str, int]:
    """{origin: examples} of a role's shards (reads every record's track key)."""
    counts: dict[str, int] = {}
    records = tf.data.TFRecordDataset(shard_set.files(role))
    for origins in records.map(_record_origin, num_parallel_calls=AUTOTUNE).batch(4096):
        for origin in origins.numpy():
            counts[origin.decode()] = counts.get(origin.decode(), 0) + 1
    return counts


def check_origin_weights(shard_set: ShardSet, config: Config) -> None:
    """training.origin_weights must name each origin of the paired training data, and only those."""
    weights = config.training.origin_weights
    if not weights:
        return
    counts = training_origins(shard_set)
    unknown = sorted(set(weights) - set(counts))
    unnamed = sorted(set(counts) - set(weights))
    if unknown or unnamed:
        problem = (
            f"names {', '.join(unknown)}, which the training data do not hold"
            if unknown
            else f"leaves out {', '.join(unnamed)} (give it a weight, 0 to leave it out)"
        )
        held = ", ".join(f"{o} ({n} examples)" for o, n in sorted(counts.items()))
        raise AdvsepError(
            f"{shard_set.directory}: training.origin_weights {problem}; its training data come "
            f"from {held}"
        )


def paired_dataset(
    shard_set: ShardSet,
    config: Config,
    role: str,
    shuffle: bool,
    repeat: bool,
    seed=None,
    random_offsets: bool = False,
    remix_probability: float = 0.0,
    synthetic_pairs: float = 0.0,
):
    """{"paired_mixture": (B, F, T, 1), "paired_sources": (B, F, T, nb_stems)}, B =
    training.batch_size."""
    dataset = _training_examples(shard_set, config, role, shuffle, repeat, seed, random_offsets)
    if synthetic_pairs > 0:
        dataset = _with_synthetic_pairs(
            dataset, shard_set, config, role, synthetic_pairs, seed, random_offsets
        )
    if remix_probability > 0:
        donors = [
            _training_examples(
                shard_set,
                config,
                role,
                True,
                True,
                _derived_seed(seed, 101 + k),
                random_offsets,
            )
            for k in range(config.nb_stems)
        ]
        dataset = tf.data.Dataset.zip((dataset, tuple(donors))).map(
            lambda example, donor: random_remix(
                example,
                list(donor),
                remix_probability,
                _derived_seed(seed, 211),
                config.training.remix_phases,
            ),
            num_parallel_calls=AUTOTUNE,
        )
    dataset = dataset.map(lambda e: {PAIRED_MIXTURE: e["mixture"], PAIRED_SOURCES: e["sources"]})
    return dataset.batch(config.training.batch_size, drop_remainder=repeat)


def _solo_excerpts(shard_set, config, k: int, seed, random_offsets) -> tf.data.Dataset:
    """Shuffled, repeated (F, T, 1) excerpts of source k's solo pool (synthetic pairs' stems)."""
    stream_seed = _derived_seed(seed, 503 + k)
    pool = f"solo/{config.sources[k]}"
    examples = role_examples(shard_set, config, pool, True, True, stream_seed, random_offsets)
    excerpts = examples.map(lambda e: e["excerpt"])
    semitones = config.training.solo_pitch_shift
    if semitones > 0:
        shift_seed = _derived_seed(stream_seed, 1)
        excerpts = excerpts.map(
            lambda x: pitch_shift(x, tf.random.uniform([], -semitones, semitones, seed=shift_seed)),
            num_parallel_calls=AUTOTUNE,
        )
    return excerpts


def _with_synthetic_pairs(dataset, shard_set, config, role, share, seed, random_offsets):
    """`dataset` with `share` of its examples replaced by `synthetic_pair`s of solo excerpts."""
    stems = []
    for k, source in enumerate(config.sources):
        if shard_set.examples(f"solo/{source}") > 0:
            stems.append(_solo_excerpts(shard_set, config, k, seed, random_offsets))
        else:  # no solo pool for this source: a paired track's stem stands in, seeded alike
            stream_seed = _derived_seed(seed, 503 + k)
            stream = role_examples(shard_set, config, role, True, True, stream_seed, random_offsets)
            stems.append(stream.map(lambda e, k=k: e["sources"][..., k : k + 1]))
    gain = tuple(config.training.synthetic_gain)
    op_seed = _derived_seed(seed, 601)
    return tf.data.Dataset.zip((dataset, tuple(stems))).map(
        lambda example, solo: synthetic_pair(
            example, list(solo), share, gain, op_seed, config.training.remix_phases
        ),
        num_parallel_calls=AUTOTUNE,
    )


def check_synthetic_pools(shard_set: ShardSet, config: Config) -> None:
    """Synthetic pairs need a solo pool for at least one source (otherwise they are plain
    remixes)."""
    if config.training.synthetic_pairs > 0 and not any(
        shard_set.examples(f"solo/{s}") for s in config.sources
    ):
        raise AdvsepError(
            f"{shard_set.directory}: training.synthetic_pairs needs solo recordings of at least "
            f"one source "
            f"(prepare with --dataset solo/<source>=DIR)"
        )


def _unpaired_stream(
    shard_set: ShardSet,
    config: Config,
    role: str,
    key: str,
    batches: int,
    seed: int,
    random_offsets: bool = False,
):
    low, high = config.training.unpaired_gain
    dataset = role_examples(
        shard_set, config, role, shuffle=True, repeat=True, seed=seed, random_offsets=random_offsets
    )
    dataset = dataset.map(
        lambda e: random_gain(e[key], low, high, seed + 401), num_parallel_calls=AUTOTUNE
    )
    # (batch, batches, F, T, 1): the batch axis first, so distribution strategies split it.
    return dataset.batch(batches, drop_remainder=True).batch(
        config.training.batch_size, drop_remainder=True
    )


def teacher_dataset(shard_set: ShardSet, config: Config, seed: int, random_offsets: bool = False):
    """{"paired_mixture": (B, F, T, 1)} from the unlabelled mixtures, for a teacher to label."""
    dataset = role_examples(
        shard_set,
        config,
        "mixtures",
        shuffle=True,
        repeat=True,
        seed=seed,
        random_offsets=random_offsets,
    )
    return dataset.map(lambda e: {PAIRED_MIXTURE: e["mixture"]}).batch(
        config.training.batch_size, drop_remainder=True
    )


def training_dataset(
    shard_set: ShardSet,
    config: Config,
    random_offsets: bool | None = None,
    remix_probability: float | None = None,
) -> tf.data.Dataset:
    """The zipped, infinite training stream for `config.training.mode` (the batch layout above).

    Unpaired excerpts always get `random_gain`; `training.random_offsets` and
    `training.remix_probability` (or the arguments, when given) turn on `random_offset` (every
    stream) and `random_remix` (paired stream). With `training.teacher_targets`, the supervised
    batches are unlabelled mixtures without sources (the model's teacher labels them).
    """
    check_training_roles(shard_set, config)
    training = config.training
    random_offsets = training.random_offsets if random_offsets is None else random_offsets
    remix_probability = (
        training.remix_probability if remix_probability is None else remix_probability
    )
    if not 0 <= remix_probability <= 1:
        raise AdvsepError(f"remix probability must be in [0, 1], got {remix_probability}")
    seed = training.seed
    if training.teacher_targets:
        paired = teacher_dataset(shard_set, config, seed + 97, random_offsets)
        if training.synthetic_pairs > 0:  # no paired stems: solo excerpts join in the model's step
            for k, source in enumerate(config.sources):
                if shard_set.examples(f"solo/{source}") > 0:
                    solo = _solo_excerpts(shard_set, config, k, seed, random_offsets)
                    solo = solo.batch(training.batch_size, drop_remainder=True)
                    paired = tf.data.Dataset.zip((paired, solo)).map(
                        lambda batch, solo, key=synthetic_key(source): {**batch, key: solo}
                    )
    else:
        paired = paired_dataset(
            shard_set,
            config,
            "train",
            True,
            True,
            seed,
            random_offsets,
            remix_probability,
            training.synthetic_pairs,
        )
    streams = {"paired": paired}
    if training.pseudo_label_weight > 0:
        streams[PSEUDO_MIXTURE] = (
            role_examples(
                shard_set,
                config,
                "mixtures",
                shuffle=True,
                repeat=True,
                seed=seed + 701,
                random_offsets=random_offsets,
            )
            .map(lambda e: e["mixture"])
            .batch(training.batch_size, drop_remainder=True)
        )
    if config.critic_sources:
        n_critic = config.loss.n_critic
        streams[UNPAIRED_MIXTURES] = _unpaired_stream(
            shard_set, config, "mixtures", "mixture", n_critic + 1, seed + 1, random_offsets
        )
        for i, source in enumerate(config.critic_sources):
            streams[solo_key(source)] = _unpaired_stream(
                shard_set,
                config,
                f"solo/{source}",
                "excerpt",
                n_critic,
                seed + 2 + i,
                random_offsets,
            )

    def merge(batch):
        merged = dict(batch.pop("paired"))
        merged.update(batch)
        return merged

    return tf.data.Dataset.zip(streams).map(merge).prefetch(AUTOTUNE)


def patches_per_step(config: Config) -> int:
    """Patches one training step consumes: a paired batch, a batch for the teacher to label when
    pseudo labels are on, and with critics n_critic + 1 unlabelled batches and n_critic solo
    batches per critic."""
    batch = config.training.batch_size
    critics = len(config.critic_sources)
    batches = 1 + (config.training.pseudo_label_weight > 0)
    if critics:
        batches += config.loss.n_critic + 1 + config.loss.n_critic * critics
    return batch * batches


def validation_steps(shard_set: ShardSet, config: Config) -> int:
    batch = config.training.batch_size
    return min(config.training.validation_steps, -(-shard_set.examples("valid") // batch))


def validation_dataset(shard_set: ShardSet, config: Config) -> tf.data.Dataset:
    """The first `validation_steps` batches of the validation role, the same ones at every epoch.

    Repeated so that Keras never sees it run dry (it warns then); fit takes `validation_steps`.
    """
    dataset = paired_dataset(shard_set, config, "valid", shuffle=False, repeat=False)
    return dataset.take(validation_steps(shard_set, config)).repeat().prefetch(AUTOTUNE)


def check_training_roles(shard_set: ShardSet, config: Config) -> None:
    needed = ["mixtures"] if config.training.teacher_targets else ["train"]
    if config.training.pseudo_label_weight > 0 and "mixtures" not in needed:
        needed.append("mixtures")
    if config.critic_sources:
        needed += [
            r
            for r in ["mixtures"] + [f"solo/{s}" for s in config.critic_sources]
            if r not in needed
        ]
    missing = [r for r in needed if shard_set.examples(r) == 0]
    if missing:
        hint = " (or train with --mode supervised)" if "train" not in missing else ""
        raise AdvsepError(
            f"{shard_set.directory}: shard set has no examples for {', '.join(missing)}, needed by "
            f"{config.training.mode} training{hint}; prepare it with the matching --dataset options"
        )
    check_synthetic_pools(shard_set, config)
    check_origin_weights(shard_set, config)
    short = [r for r in needed if shard_set.examples(r) < config.training.batch_size]
    if short:
        raise AdvsepError(
            f"{shard_set.directory}: fewer examples than one batch ({config.training.batch_size}) "
            f"for {', '.join(short)}"
        )
