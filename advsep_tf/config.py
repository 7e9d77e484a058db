"""The one configuration object: audio, spectrogram, sources, networks, losses, optimiser, training.

A `Config` is written into every shard manifest, run directory and SavedModel; whoever reads one
of those compares it with the config in use (`Config.differences`) and refuses a mismatch.

Named presets ship as JSON files in `advsep_tf/configs/` (`paper`, `musdb4`, `demo`, `tiny`);
`load_config` accepts a preset name or a path to a JSON/YAML file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from advsep_tf.errors import AdvsepError, UsageError

MODES = ("supervised", "adversarial")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# tf.distribute strategies of advsep-tf-train: mirrored = all local GPUs; multi_worker =
# TF_CONFIG's cluster.
STRATEGIES = ("default", "mirrored", "multi_worker")
# The name that selects the separator shipped in advsep_tf/pretrained/ wherever a model is named.
PRETRAINED = "pretrained"
OUTPUT_ACTIVATIONS = ("relu", "softplus")
# How a critic is kept 1-Lipschitz: the paper's gradient penalty, or spectral normalisation of its
# weights (Miyato et al. 2018), which needs no second derivative and so makes a critic step cheaper.
CRITIC_NORMALIZATIONS = ("gradient_penalty", "spectral")
# How remixes sum stems known only as magnitudes (TrainingConfig.remix_phases).
REMIX_PHASES = ("aligned", "random")


@dataclass
class AudioConfig:
    sample_rate: int = 8192
    # 1: the model sees a mono downmix. Separation of multichannel input runs per channel.
    nb_channels: int = 1


@dataclass
class SpectrogramConfig:
    n_fft: int = 512
    n_hop: int = 256
    # Bins kept from the bottom of the spectrum; the paper drops the Nyquist bin (256 of 257).
    nb_bins: int = 256
    nb_frames: int = 64
    # Hop between training patches, in frames (nb_frames: no overlap).
    patch_hop: int = 64
    # Patches whose mixture (or solo) RMS is below this level are dropped as silence.
    silence_threshold_db: float = -60.0


@dataclass
class SeparatorConfig:
    base_filters: int = 16
    # Number of 2x down-sampling levels of the U-Net; nb_bins and nb_frames must divide 2**depth.
    depth: int = 4
    # Of the per-source output layers. "relu" is the paper's; it can die (a source's output stuck
    # at zero for every input, seen on real music with the demo sizes at lr 5e-4), "softplus"
    # cannot and is as cheap.
    output_activation: str = "relu"
    # U-Nets whose log1p estimates are averaged: an ensemble of independently trained members (as
    # Demucs ships bags of models) assembled by benchmarks/real/ship_pretrained.py; the shipped
    # model has 2. Training a config with members > 1 trains the members jointly.
    members: int = 1


@dataclass
class CriticConfig:
    base_filters: int = 32
    max_filters: int = 256
    dense_units: int = 32
    # "gradient_penalty" (the paper's WGAN-GP) or "spectral" (CRITIC_NORMALIZATIONS).
    normalization: str = "gradient_penalty"


@dataclass
class LossConfig:
    alpha: float = 0.001  # weight of the adversarial term L_u
    beta: float = 0.001  # weight of the mixture-consistency term L_add
    gp_lambda: float = 10.0
    n_critic: int = 5


@dataclass
class OptimizerConfig:
    learning_rate: float = 5e-5
    beta_1: float = 0.9
    beta_2: float = 0.999


@dataclass
class TrainingConfig:
    mode: str = "adversarial"
    # Sources that get a critic in adversarial mode; empty means every source (the paper's VA).
    critics: list[str] = field(default_factory=list)
    batch_size: int = 64
    # A "epoch" is this many separator steps; validation and early stopping run after each.
    steps_per_epoch: int = 1000
    max_steps: int = 100_000
    validation_steps: int = 50
    patience: int = 3
    # Random gain range applied to unpaired mixtures and solo excerpts (the paper's 0.2-1.2).
    unpaired_gain: list[float] = field(default_factory=lambda: [0.2, 1.2])
    shuffle_buffer: int = 2048
    seed: int = 1234
    # XLA for train_step: measured slower than oneDNN on a 2-core CPU, so off unless asked for.
    jit_compile: bool = False
    # "float32", "mixed_float16" (GPUs) or "mixed_bfloat16" (CPUs/TPUs with bfloat16 units).
    precision: str = "float32"
    # Epoch checkpoints kept in RUN_DIR/checkpoints for --resume.
    checkpoints_kept: int = 3
    # Augmentations of the training streams (advsep_tf.data_pipelines.readers): cut every excerpt
    # at a random frame offset, and remix this fraction of the paired examples from stems of
    # different tracks. Both matter when paired data is scarce (a few singers, a few songs).
    random_offsets: bool = False
    remix_probability: float = 0.0
    # How every remix (the augmentation above, synthetic pairs, remixed pseudo labels) sums stems
    # known only as magnitudes: "aligned" adds the magnitudes (every bin's stems in phase, which
    # overstates the mixture wherever sources overlap); "random" gives each stem's bins an
    # independent uniform phase, so powers add on average as those of unrelated recordings do.
    remix_phases: str = "aligned"
    # Adaptation without paired data: L_s compares the separator's estimates on unlabelled
    # mixtures with those of the model it started from (advsep-tf-train --init ... --teacher).
    teacher_targets: bool = False
    # Synthetic pairs: this share of the paired examples is replaced by a new mixture of solo
    # excerpts, one per source from that source's solo pool (a paired track's stem where the shard
    # set has no pool), each scaled by one uniform gain in synthetic_gain. Real stems of unrelated
    # recordings: labels are exact, only the pairing is random.
    synthetic_pairs: float = 0.0
    synthetic_gain: list[float] = field(default_factory=lambda: [0.5, 1.25])
    # Shift every solo excerpt of the synthetic pairs by a uniform number of semitones in
    # [-solo_pitch_shift, solo_pitch_shift] (0: off): a few solo singers become many voices.
    solo_pitch_shift: float = 0.0
    # Teacher-student on unlabelled mixtures: each step adds a batch of unlabelled mixtures that a
    # frozen teacher (advsep-tf-train --teacher-model) labels, weighted by this in the loss (0:
    # off).
    # The student sees them augmented (a random gain, and the teacher's stems remixed across the
    # batch); a patch whose teacher estimates do not add up to the mixture (relative error of the
    # linear magnitudes above pseudo_label_max_error) is not trusted and gets no weight.
    pseudo_label_weight: float = 0.0
    pseudo_label_max_error: float = 0.35
    # An exponential moving average of the separator's weights with this decay (0: off; 0.999
    # averages over about the last 1000 steps), as Demucs trains: validation, early stopping and
    # the run's model.keras use the averaged weights, which wander less than the last step's. It
    # matters most where the training data differ from the music the model will meet (adaptation).
    ema_decay: float = 0.0
    # Draw the paired training examples of each origin (the --dataset kinds given to
    # advsep-tf-prepare, kind#2 for a kind given twice; e.g. {"musdb18": 1, "mir1k": 1}) with these
    # relative weights instead of in proportion to their patches ({}: off). Every origin of the
    # training data is named; 0 leaves one out.
    origin_weights: dict[str, float] = field(default_factory=dict)


def _default_derived() -> dict[str, list[str]]:
    return {"accompaniment": ["drums", "bass", "other"]}


def _default_aliases() -> dict[str, str]:
    return {
        "vocal": "vocals",
        "voice": "vocals",
        "voices": "vocals",
        "music": "accompaniment",
        "instrumental": "accompaniment",
        "instrumentals": "accompaniment",
        "mix": "mixture",
    }


@dataclass
class SourceMapConfig:
    """How the stems of a corpus become this config's sources (used when preparing shards).

    A source that a track has no file of is the sum of the stems `derived` lists for it: K=2
    targets from K=4 stems (accompaniment = drums + bass + other). `aliases` maps other names of
    stem files (lower-case file name without extension, e.g. MIR-1K's `vocal`/`music`) to the
    canonical stem names (`vocals`, `accompaniment`, `mixture`, ...).
    """

    derived: dict[str, list[str]] = field(default_factory=_default_derived)
    aliases: dict[str, str] = field(default_factory=_default_aliases)

    def canonical(self, name: str) -> str:
        """The canonical stem name of a file name stem: 'Vocal' -> 'vocals'."""
        name = name.lower()
        return self.aliases.get(name, name)


@dataclass
class Config:
    name: str = "custom"
    sources: list[str] = field(default_factory=lambda: ["vocals", "accompaniment"])
    audio: AudioConfig = field(default_factory=AudioConfig)
    spectrogram: SpectrogramConfig = field(default_factory=SpectrogramConfig)
    separator: SeparatorConfig = field(default_factory=SeparatorConfig)
    critic: CriticConfig = field(default_factory=CriticConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    # Absent from configs written before it existed; the default is what those configs meant.
    source_map: SourceMapConfig = field(default_factory=SourceMapConfig)

    # Sections that decide what a shard holds; a shard set must match these exactly.
    DATA_SECTIONS = ("sources", "audio", "spectrogram", "source_map")
    # Sections that decide the separator's weights; a checkpoint must match these exactly.
    MODEL_SECTIONS = ("sources", "audio", "spectrogram", "separator")

    @property
    def nb_stems(self) -> int:
        return len(self.sources)

    @property
    def critic_sources(self) -> list[str]:
        if self.training.mode != "adversarial":
            return []
        return list(self.training.critics) or list(self.sources)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "config") -> "Config":
        if not isinstance(data, dict):
            raise AdvsepError(
                f"{origin}: expected a mapping of config sections, got {type(data).__name__}"
            )
        kwargs = {}
        section_types = {f.name: f.type for f in dataclasses.fields(cls)}
        for key, value in data.items():
            if key not in section_types:
                raise AdvsepError(
                    f"{origin}: unknown config field '{key}' (known: {', '.join(section_types)})"
                )
            section_cls = _SECTIONS.get(key)
            if section_cls is None:
                kwargs[key] = value
                continue
            if not isinstance(value, dict):
                raise AdvsepError(f"{origin}: section '{key}' must be a mapping")
            known = {f.name for f in dataclasses.fields(section_cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise AdvsepError(
                    f"{origin}: unknown field(s) {', '.join(key + '.' + u for u in unknown)} "
                    f"(known: {', '.join(sorted(known))})"
                )
            kwargs[key] = section_cls(**value)
        config = cls(**kwargs)
        config.validate(origin)
        return config

    def replace(self, **section_updates: dict[str, Any]) -> "Config":
        """A copy with some fields changed: `config.replace(training={"mode": "supervised"})`."""
        data = self.to_dict()
        for key, value in section_updates.items():
            if isinstance(value, dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return Config.from_dict(data, origin=f"{self.name} (modified)")

    def validate(self, origin: str = "config") -> None:
        # Types first: the range checks below would fail with a TypeError on "n_fft": "big".
        problems = self._type_problems()
        if problems:
            raise AdvsepError(f"{origin}: " + "; ".join(problems))
        problems += self._range_problems()
        if not self.sources or len(set(self.sources)) != len(self.sources):
            problems.append("sources must be a non-empty list of distinct names")
        if self.audio.sample_rate <= 0:
            problems.append("audio.sample_rate must be positive")
        if self.audio.nb_channels != 1:
            problems.append(
                "audio.nb_channels must be 1 (the model sees a mono downmix; stereo is separated "
                "per channel)"
            )
        spec = self.spectrogram
        if spec.n_fft & (spec.n_fft - 1):
            problems.append(f"spectrogram.n_fft must be a power of two, got {spec.n_fft}")
        if not 0 < spec.n_hop <= spec.n_fft:
            problems.append("spectrogram.n_hop must be in (0, n_fft]")
        if not 0 < spec.nb_bins <= spec.n_fft // 2 + 1:
            problems.append(
                f"spectrogram.nb_bins must be in (0, n_fft/2+1 = {spec.n_fft // 2 + 1}]"
            )
        if not 0 < spec.patch_hop <= spec.nb_frames:
            problems.append("spectrogram.patch_hop must be in (0, nb_frames]")
        scale = 2**self.separator.depth
        if spec.nb_bins % scale or spec.nb_frames % scale:
            problems.append(
                f"spectrogram.nb_bins ({spec.nb_bins}) and nb_frames ({spec.nb_frames}) must be "
                f"multiples of 2**separator.depth ({scale})"
            )
        choices = {
            "separator.output_activation": (self.separator.output_activation, OUTPUT_ACTIVATIONS),
            "training.mode": (self.training.mode, MODES),
            "training.precision": (self.training.precision, PRECISIONS),
            "training.remix_phases": (self.training.remix_phases, REMIX_PHASES),
            "critic.normalization": (self.critic.normalization, CRITIC_NORMALIZATIONS),
        }
        problems += [
            f"{name} must be one of {', '.join(allowed)}, got '{value}'"
            for name, (value, allowed) in choices.items()
            if value not in allowed
        ]
        if self.separator.base_filters <= 0 or self.separator.depth < 1:
            problems.append("separator.base_filters must be positive and separator.depth >= 1")
        if self.separator.members < 1:
            problems.append(f"separator.members must be >= 1, got {self.separator.members}")
        if min(spec.nb_bins, spec.nb_frames) < 8:
            problems.append("critic inputs need nb_bins and nb_frames >= 8")
        unknown = [s for s in self.training.critics if s not in self.sources]
        if unknown:
            problems.append(
                f"training.critics names unknown source(s) {', '.join(unknown)} (sources: "
                f"{', '.join(self.sources)})"
            )
        if self.loss.n_critic < 1:
            problems.append("loss.n_critic must be >= 1")
        if min(self.loss.alpha, self.loss.beta, self.loss.gp_lambda) < 0:
            problems.append("loss.alpha, loss.beta and loss.gp_lambda must be >= 0")
        if self.training.checkpoints_kept < 1:
            problems.append("training.checkpoints_kept must be >= 1")
        if not 0 <= self.training.remix_probability <= 1:
            problems.append(
                f"training.remix_probability must be in [0, 1], got "
                f"{self.training.remix_probability}"
            )
        if not 0 <= self.training.synthetic_pairs <= 1:
            problems.append(
                f"training.synthetic_pairs must be in [0, 1], got {self.training.synthetic_pairs}"
            )
        if not 0 <= self.training.solo_pitch_shift <= 12:
            problems.append(
                f"training.solo_pitch_shift must be in [0, 12] semitones, got "
                f"{self.training.solo_pitch_shift}"
            )
        weights = self.training.origin_weights
        if any(w < 0 for w in weights.values()) or (weights and not any(weights.values())):
            problems.append(
                f"training.origin_weights must be weights >= 0, at least one above 0, got {weights}"
            )
        if weights and self.training.teacher_targets:
            # Adaptation learns from unlabelled mixtures: there are no paired tracks to weight.
            problems.append(
                "training.origin_weights weights the paired training tracks, which "
                "training.teacher_targets does not read: drop one of the two"
            )
        if not 0 <= self.training.ema_decay < 1:
            problems.append(f"training.ema_decay must be in [0, 1), got {self.training.ema_decay}")
        low_high = self.training.synthetic_gain
        if len(low_high) != 2 or not 0 < low_high[0] <= low_high[1]:
            problems.append("training.synthetic_gain must be [low, high] with 0 < low <= high")
        if not self.training.pseudo_label_weight >= 0:
            problems.append(
                f"training.pseudo_label_weight must be >= 0, got "
                f"{self.training.pseudo_label_weight}"
            )
        if not self.training.pseudo_label_max_error > 0:
            problems.append("training.pseudo_label_max_error must be > 0")
        if self.training.batch_size < 2:
            problems.append(
                "training.batch_size must be >= 2 (the gradient penalty shuffles real excerpts)"
            )
        gain = self.training.unpaired_gain
        if len(gain) != 2 or not 0 < gain[0] <= gain[1]:
            problems.append("training.unpaired_gain must be [low, high] with 0 < low <= high")
        problems += self._source_map_problems()
        if problems:
            raise AdvsepError(f"{origin}: " + "; ".join(problems))

    def _type_problems(self) -> list[str]:
        """Every field whose value is not of its declared type (numbers also finite), by its
        dotted name; source_map is checked by `_source_map_problems`."""
        problems = []
        fields = [
            (f.name, f.type, getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name not in _SECTIONS
        ]
        for section in _SECTIONS:
            if section == "source_map":
                continue
            value = getattr(self, section)
            fields += [
                (f"{section}.{f.name}", f.type, getattr(value, f.name))
                for f in dataclasses.fields(value)
            ]
        for name, kind, value in fields:
            expected = _type_problem(str(kind), value)
            if expected:
                problems.append(f"{name} must be {expected}, got {value!r}")
        return problems

    def _range_problems(self) -> list[str]:
        """The ranges of the fields `validate` does not check on its own."""
        spec, training, optimizer = self.spectrogram, self.training, self.optimizer
        critic = self.critic
        at_least = {
            "spectrogram.n_fft": (spec.n_fft, 2),
            "spectrogram.nb_frames": (spec.nb_frames, 1),
            "critic.base_filters": (critic.base_filters, 1),
            "critic.max_filters": (critic.max_filters, 1),
            "critic.dense_units": (critic.dense_units, 1),
            "training.steps_per_epoch": (training.steps_per_epoch, 1),
            "training.max_steps": (training.max_steps, 1),
            "training.validation_steps": (training.validation_steps, 0),
            "training.patience": (training.patience, 0),
            "training.shuffle_buffer": (training.shuffle_buffer, 1),
            "training.seed": (training.seed, 0),
        }
        problems = [
            f"{name} must be >= {low}, got {value}"
            for name, (value, low) in at_least.items()
            if value < low
        ]
        # 0 is allowed: a run that must not learn (a frozen baseline, the early-stopping test).
        if not optimizer.learning_rate >= 0:
            problems.append(f"optimizer.learning_rate must be >= 0, got {optimizer.learning_rate}")
        for name in ("beta_1", "beta_2"):
            if not 0 <= getattr(optimizer, name) < 1:
                value = getattr(optimizer, name)
                problems.append(f"optimizer.{name} must be in [0, 1), got {value}")
        return problems

    def _source_map_problems(self) -> list[str]:
        problems = []
        derived, aliases = self.source_map.derived, self.source_map.aliases
        if not isinstance(derived, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and v and all(isinstance(p, str) for p in v)
            for k, v in derived.items()
        ):
            problems.append(
                "source_map.derived must map source names to non-empty lists of stem names"
            )
        else:
            circular = sorted(k for k, v in derived.items() if k in v)
            if circular:
                problems.append(
                    f"source_map.derived: {', '.join(circular)} cannot be a sum that includes "
                    f"itself"
                )
        if not isinstance(aliases, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()
        ):
            problems.append("source_map.aliases must map file names to stem names")
        elif any(k != k.lower() for k in aliases):
            problems.append(
                "source_map.aliases: file names must be lower case (matching is case-insensitive)"
            )
        return problems

    def differences(self, other: "Config", sections: tuple[str, ...]) -> list[str]:
        """Dotted names of the fields in `sections` whose values differ, e.g.
        ['spectrogram.n_fft']."""
        mine, theirs = self.to_dict(), other.to_dict()
        diffs = []
        for section in sections:
            a, b = mine.get(section), theirs.get(section)
            if isinstance(a, dict) and isinstance(b, dict):
                diffs += [f"{section}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
            elif a != b:
                diffs.append(section)
        return diffs

    def describe_differences(self, other: "Config", sections: tuple[str, ...]) -> str:
        mine, theirs = self.to_dict(), other.to_dict()
        parts = []
        for name in self.differences(other, sections):
            path = name.split(".")
            a, b = mine, theirs
            for p in path:
                a, b = a.get(p), b.get(p)
            parts.append(f"{name}: {a!r} here vs {b!r} there")
        return "; ".join(parts)

    def save(self, path: str) -> None:
        """Write as JSON or YAML (by extension), atomically."""
        text = (
            _yaml().safe_dump(self.to_dict(), sort_keys=False)
            if path.endswith((".yaml", ".yml"))
            else json.dumps(self.to_dict(), indent=2) + "\n"
        )
        from advsep_tf.files import write_atomically

        write_atomically(path, text)


_SECTIONS = {
    "audio": AudioConfig,
    "spectrogram": SpectrogramConfig,
    "separator": SeparatorConfig,
    "critic": CriticConfig,
    "loss": LossConfig,
    "optimizer": OptimizerConfig,
    "training": TrainingConfig,
    "source_map": SourceMapConfig,
}


def _type_problem(kind: str, value) -> str | None:
    """What a field declared as `kind` ("int", "float", "list[str]", ...) must be, when `value`
    is not that; None when it is."""

    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    def is_number(v):
        return (is_int(v) or isinstance(v, float)) and math.isfinite(v)

    checks = {
        "int": (is_int, "an integer"),
        "float": (is_number, "a finite number"),
        "str": (lambda v: isinstance(v, str), "a string"),
        "bool": (lambda v: isinstance(v, bool), "true or false"),
        "list[str]": (
            lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
            "a list of strings",
        ),
        "list[float]": (
            lambda v: isinstance(v, list) and all(is_number(x) for x in v),
            "a list of finite numbers",
        ),
        "dict[str, float]": (
            lambda v: (
                isinstance(v, dict)
                and all(isinstance(k, str) and is_number(x) for k, x in v.items())
            ),
            "a mapping of names to finite numbers",
        ),
    }
    check, expected = checks.get(kind, (lambda v: True, ""))
    return None if check(value) else expected


def _yaml():
    import yaml

    return yaml


def preset_names() -> list[str]:
    files = resources.files("advsep_tf").joinpath("configs").iterdir()
    return sorted(p.name[: -len(".json")] for p in files if p.name.endswith(".json"))


def load_config(preset_or_path: str) -> Config:
    """A preset name (`paper`, `musdb4`, `demo`, `tiny`) or a path to a JSON/YAML config file."""
    if os.path.sep in preset_or_path or preset_or_path.endswith((".json", ".yaml", ".yml")):
        from advsep_tf.files import load_json_or_yaml

        return Config.from_dict(
            load_json_or_yaml(preset_or_path, "config file"), origin=preset_or_path
        )
    names = preset_names()
    if preset_or_path not in names:
        raise UsageError(
            f"unknown preset '{preset_or_path}' "
            f"(presets: {', '.join(names)}; or give a .json/.yaml path)"
        )
    text = resources.files("advsep_tf").joinpath("configs", f"{preset_or_path}.json").read_text()
    return Config.from_dict(json.loads(text), origin=f"preset '{preset_or_path}'")
