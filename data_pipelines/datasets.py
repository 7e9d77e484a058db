"""Dataset adapters: each turns a corpus on disk into uniform `TrackRecord`s with a role.

Roles: "train" and "valid" (paired mixture + stems), "test" (paired, held out: never sharded),
"mixtures" (unlabelled mixtures) and "solo/<source>" (solo recordings of one source).

Kinds (`--dataset KIND=PATH` of advsep-tf-prepare):
    synthetic      the built-in synthetic corpus (generated at PATH first if PATH has no corpus.json)
    paired         PATH/<track>/<source>.wav (+ optional mixture.wav; else the stems' sum)
    mixtures       any tree of audio files under PATH: unlabelled mixtures
    solo/<source>  any tree of audio files under PATH: solo recordings of <source>
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from advsep_tf.config import Config
from advsep_tf.errors import AdvsepError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".mp4", ".aac", ".aif", ".aiff")
PAIRED_ROLES = ("train", "valid")
# Stem lengths may differ by this much (encoder padding) before a track is refused.
LENGTH_TOLERANCE_SECONDS = 0.05


@dataclass
class TrackRecord:
    """One track: where its audio is and what it is for.

    `stems` maps each source to the files whose sum is that source (one file, or several for a
    derived source such as accompaniment = drums + bass + other).
    """

    track_id: str
    origin: str
    role: str
    mixture: str | None = None
    stems: dict[str, list[str]] = field(default_factory=dict)

    @property
    def files(self) -> list[str]:
        return ([self.mixture] if self.mixture else []) + [p for paths in self.stems.values() for p in paths]


def load_split(path: str | None) -> dict[str, set[str]]:
    """A split file: {"train": [...], "valid": [...], "test": [...]} of track ids (JSON or YAML)."""
    if path is None:
        return {}
    if not os.path.isfile(path):
        raise AdvsepError(f"{path}: split file not found")
    try:
        with open(path) as f:
            if path.endswith((".yaml", ".yml")):
                import yaml

                data = yaml.safe_load(f)
            else:
                data = json.load(f)
    except Exception as exc:  # noqa: BLE001 - any parse error is the user's file
        raise AdvsepError(f"{path}: not a valid split file ({exc})") from None
    if not isinstance(data, dict) or not set(data) <= {"train", "valid", "test"}:
        raise AdvsepError(f"{path}: a split file maps 'train', 'valid' and/or 'test' to lists of track ids")
    split = {role: set(tracks or []) for role, tracks in data.items()}
    overlap = sorted((split.get("train", set()) | split.get("test", set())) & split.get("valid", set()))
    overlap += sorted(split.get("train", set()) & split.get("test", set()))
    if overlap:
        raise AdvsepError(f"{path}: tracks listed in more than one role: {', '.join(overlap)}")
    return split


def _assign_paired_role(track_id: str, split: dict[str, set[str]], default: str) -> str:
    for role in ("valid", "test", "train"):
        if track_id in split.get(role, ()):
            return role
    return default


def default_validation(track_ids: list[str]) -> set[str]:
    """Without a split file, every tenth track (at least one of two or more) validates."""
    ordered = sorted(track_ids)
    if len(ordered) < 2:
        return set()
    return set(ordered[:: 10]) if len(ordered) >= 10 else {ordered[-1]}


def audio_files(root: str) -> list[str]:
    found = []
    for directory, _, names in os.walk(root):
        found += [os.path.join(directory, n) for n in names if n.lower().endswith(AUDIO_EXTENSIONS)]
    return sorted(found)


def _require_dir(kind: str, path: str) -> None:
    if not os.path.isdir(path):
        raise AdvsepError(f"{path}: --dataset {kind}: folder not found")


def _stem_files(track_dir: str, config: Config, derived: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    stems = {}
    for source in config.sources:
        direct = os.path.join(track_dir, f"{source}.wav")
        if os.path.isfile(direct):
            stems[source] = [direct]
        elif source in derived and all(os.path.isfile(os.path.join(track_dir, f"{p}.wav")) for p in derived[source]):
            stems[source] = [os.path.join(track_dir, f"{p}.wav") for p in derived[source]]
        else:
            raise AdvsepError(f"{direct}: missing stem '{source}' of track {os.path.basename(track_dir)}")
    return stems


def paired_tracks(path: str, config: Config, split: dict[str, set[str]], origin: str = "paired") -> list[TrackRecord]:
    """PATH/<track>/<source>.wav, with mixture.wav when present."""
    from advsep_tf.data_pipelines.synthetic import DERIVED_SOURCES

    _require_dir(origin, path)
    track_dirs = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
    if not track_dirs:
        raise AdvsepError(f"{path}: no track folders (expected {path}/<track>/<source>.wav)")
    valid = split.get("valid") if split else None
    valid = valid if valid is not None else default_validation(track_dirs)
    records = []
    for track in track_dirs:
        track_dir = os.path.join(path, track)
        mixture = os.path.join(track_dir, "mixture.wav")
        role = _assign_paired_role(track, {**split, "valid": valid}, "train")
        records.append(
            TrackRecord(
                track_id=track,
                origin=origin,
                role=role,
                mixture=mixture if os.path.isfile(mixture) else None,
                stems=_stem_files(track_dir, config, DERIVED_SOURCES),
            )
        )
    return records


def unlabelled_tracks(path: str, role: str, origin: str) -> list[TrackRecord]:
    """Any tree of audio files: each file is one unlabelled mixture or one solo recording."""
    _require_dir(origin, path)
    files = audio_files(path)
    if not files:
        raise AdvsepError(f"{path}: --dataset {origin}: no audio files ({', '.join(AUDIO_EXTENSIONS)})")
    records = []
    for file in files:
        track_id = os.path.splitext(os.path.relpath(file, path))[0]
        if role == "mixtures":
            records.append(TrackRecord(track_id, origin, role, mixture=file))
        else:
            records.append(TrackRecord(track_id, origin, role, stems={role.split("/", 1)[1]: [file]}))
    return records


def synthetic_tracks(path: str, config: Config, split: dict[str, set[str]]) -> list[TrackRecord]:
    """The built-in synthetic corpus; generated at PATH (with the config's sources) if absent."""
    from advsep_tf.data_pipelines import synthetic

    if not os.path.isfile(os.path.join(path, "corpus.json")):
        print(f"{path}: no synthetic corpus there yet; generating one for sources {', '.join(config.sources)}")
        synthetic.write_corpus(path, config.sources, sample_rate=config.audio.sample_rate)
    corpus = synthetic.read_corpus(path)
    missing = [s for s in config.sources if s not in corpus["sources"]]
    if missing:
        raise AdvsepError(
            f"{path}/corpus.json: synthetic corpus has sources {corpus['sources']}, config needs {', '.join(missing)}"
        )
    tracks = corpus["tracks"]
    default_split = {"valid": set(tracks["valid"]), "test": set(tracks["test"])}
    split = split or default_split
    records = []
    for subset in ("train", "test"):
        for record in paired_tracks(os.path.join(path, "musdb18hq", subset), config, split, origin="synthetic"):
            if subset == "test" and record.role == "train":
                record.role = "test"
            records.append(record)
    records += unlabelled_tracks(os.path.join(path, "mixtures"), "mixtures", "synthetic")
    for source in config.sources:
        solo_dir = os.path.join(path, "solo", source)
        if os.path.isdir(solo_dir):
            records += unlabelled_tracks(solo_dir, f"solo/{source}", "synthetic")
    return records


def dataset_records(kind: str, path: str, config: Config, split: dict[str, set[str]]) -> list[TrackRecord]:
    """Dispatch one `--dataset KIND=PATH`."""
    if kind == "synthetic":
        return synthetic_tracks(path, config, split)
    if kind == "paired":
        return paired_tracks(path, config, split)
    if kind == "mixtures":
        return unlabelled_tracks(path, "mixtures", kind)
    if kind.startswith("solo/"):
        source = kind.split("/", 1)[1]
        if source not in config.sources:
            raise AdvsepError(f"--dataset {kind}={path}: '{source}' is not a source of this config ({', '.join(config.sources)})")
        return unlabelled_tracks(path, kind, kind)
    kinds = "synthetic, paired, mixtures, solo/<source>"
    raise AdvsepError(f"--dataset {kind}={path}: unknown dataset kind '{kind}' (kinds: {kinds})")


def parse_dataset_arg(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise AdvsepError(f"--dataset {text}: expected KIND=PATH, e.g. paired=/data/tracks")
    kind, path = text.split("=", 1)
    return kind.strip(), os.path.expanduser(path.strip())


def load_track_audio(record: TrackRecord, config: Config, adapter=None) -> dict[str, np.ndarray]:
    """Mono audio at the model's rate: {"mixture": (n,), <source>: (n,) ...} for what the record has.

    A missing mixture is the sum of the stems; stems whose lengths differ by more than
    LENGTH_TOLERANCE_SECONDS are refused, smaller differences are trimmed to the shortest.
    """
    from advsep_tf.data_pipelines.audio import AudioAdapter

    adapter = adapter or AudioAdapter.default()
    rate = config.audio.sample_rate

    def load(path):
        data, _ = adapter.load(path, sample_rate=rate, mono=True)
        return data[:, 0]

    audio = {}
    lengths = {}
    for source, paths in record.stems.items():
        parts = [load(p) for p in paths]
        for p, part in zip(paths, parts):
            lengths[p] = len(part)
        n = min(len(part) for part in parts)
        audio[source] = np.sum([part[:n] for part in parts], axis=0).astype(np.float32)
    if record.mixture:
        audio["mixture"] = load(record.mixture)
        lengths[record.mixture] = len(audio["mixture"])
    if len(lengths) > 1:
        longest, shortest = max(lengths, key=lengths.get), min(lengths, key=lengths.get)
        if lengths[longest] - lengths[shortest] > LENGTH_TOLERANCE_SECONDS * rate:
            raise AdvsepError(
                f"{shortest}: stem lengths of track '{record.track_id}' differ: {lengths[shortest] / rate:.2f} s here, "
                f"{lengths[longest] / rate:.2f} s in {longest}"
            )
    n = min(len(a) for a in audio.values())
    audio = {k: v[:n] for k, v in audio.items()}
    if "mixture" not in audio and record.stems:
        audio["mixture"] = np.sum([audio[s] for s in record.stems], axis=0).astype(np.float32)
    return audio
