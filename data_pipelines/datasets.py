"""Dataset adapters: each turns a corpus on disk into uniform `TrackRecord`s.

A record says where a track's audio is (a mixture and/or stems, each an `AudioRef`: a file, or one
stream or one channel of a file) and which role it takes by default. Roles: "train" and "valid"
(paired mixture + every source), "test" (paired, held out: listed, never sharded), "mixtures"
(unlabelled mixtures) and "solo/<source>" (solo recordings of one source). Multitrack corpora
meant for the unpaired pools (MedleyDB, CCMixter, iKala) default to "pool": `splits` deals
their tracks into the pools so that no track feeds two of them.

Stems are stored under canonical names: the corpus's own (vocals, drums, bass, other,
accompaniment) or, for folders of files, the file name through `config.source_map.aliases`
(MIR-1K's vocal.wav/music.wav -> vocals/accompaniment). A config source a track has no stem of is
the sum of the stems `config.source_map.derived` lists for it (accompaniment = drums + bass +
other): the K=2 targets come from K=4 stems by the config, not by code.

Kinds (`--dataset KIND=PATH` of advsep-tf-prepare):
    dsd100         PATH/Mixtures/{Dev,Test}/<track>/mixture.wav +
                   PATH/Sources/{Dev,Test}/<track>/<stem>.wav
    musdb18        PATH/{train,test}/<track>.stem.mp4 (streams: mixture, drums, bass, other, vocals)
    musdb18hq      PATH/{train,test}/<track>/{mixture,vocals,drums,bass,other}.wav
    medleydb       PATH/Audio/<track>/<track>_MIX.wav, <track>_STEMS/, <track>_METADATA.yaml
    ccmixter       PATH/<track>/{mix,source-01,source-02}.wav (accompaniment, vocals)
    ikala          PATH/Wavfile/<track>.wav (left channel accompaniment, right channel vocals)
    mir1k          PATH/Wavfile/<singer>_<song>_<clip>.{wav,flac,ogg}
                   (left accompaniment, right vocals)
    paired         PATH/<track>/<stem>.<ext> (+ optional mixture; else the stems' sum)
    mixtures       any tree of audio files under PATH: unlabelled mixtures
    solo/<source>  any tree of audio files under PATH: solo recordings of <source>
    synthetic      the built-in synthetic corpus (generated at PATH first if it has no corpus.json)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from typing import Callable, Optional

import numpy as np

from advsep_tf.config import Config
from advsep_tf.errors import AdvsepError
from advsep_tf.files import load_json_or_yaml

AUDIO_EXTENSIONS = (
    ".wav",
    ".flac",
    ".ogg",
    ".opus",
    ".mp3",
    ".m4a",
    ".mp4",
    ".aac",
    ".aif",
    ".aiff",
)
PAIRED_ROLES = ("train", "valid")
HELD_OUT_ROLES = ("valid", "test")
# The default role of multitrack corpora that feed the unpaired pools (dealt out by `splits`).
POOL = "pool"
BASE_STEMS = ("vocals", "drums", "bass", "other")
# Stem lengths may differ by this much (encoder padding) before a track is refused.
LENGTH_TOLERANCE_SECONDS = 0.05
# A file whose rate is below this fraction of the model's rate would leave the top of the model's
# band empty after resampling (e.g. 4 kHz audio for an 8192 Hz model): refused, not guessed at.
MIN_RATE_FRACTION = 0.9
# Downmix rule: mono is kept, stereo is averaged; more channels have no agreed mono mix.
MAX_DOWNMIX_CHANNELS = 2

# The dataset kinds of `--dataset KIND=PATH` are READERS' keys and SOLO (defined below the readers).
SOLO = "solo/<source>"  # one kind per source of the config: solo/vocals, solo/accompaniment, ...


@dataclass(frozen=True)
class AudioRef:
    """A waveform on disk: a file, or one audio stream (`stream`) or one channel (`channel`) of
    it."""

    path: str
    stream: Optional[int] = None
    channel: Optional[int] = None

    def describe(self) -> str:
        if self.stream is not None:
            return f"{self.path} (stream {self.stream})"
        if self.channel is not None:
            side = (
                ["left", "right"][self.channel] if self.channel < 2 else f"channel {self.channel}"
            )
            return f"{self.path} ({side} channel)"
        return self.path


@dataclass
class TrackRecord:
    """One track: where its audio is and which role it takes by default.

    `stems` maps canonical stem names to the refs whose sum is that stem; an empty list is a stem
    the track has but that is silent (a MedleyDB song without drums). `expected` maps stem names
    (and "mixture") to the path the corpus's layout puts them at, to name a missing file.
    `partition` names the stems that add up to the mixture (used when there is no mixture file).
    A record whose metadata is broken carries the message in `problem`. `singer` names the
    performer where the corpus says who it is (MIR-1K): splits keep a singer's clips together.
    """

    track_id: str
    origin: str
    role: str
    mixture: Optional[AudioRef] = None
    stems: dict[str, list[AudioRef]] = field(default_factory=dict)
    kind: str = "paired"
    folder: str = ""
    expected: dict[str, str] = field(default_factory=dict)
    partition: tuple[str, ...] = ()
    problem: Optional[str] = None
    singer: Optional[str] = None

    @property
    def key(self) -> str:
        """The track's id across datasets: 'ORIGIN:TRACK', e.g. 'dsd100:Al James - Schoolboy
        Facination'."""
        return f"{self.origin}:{self.track_id}"

    @property
    def files(self) -> list[str]:
        refs = ([self.mixture] if self.mixture else []) + [
            r for refs in self.stems.values() for r in refs
        ]
        return list(dict.fromkeys(r.path for r in refs))

    @property
    def unlabelled(self) -> bool:
        """A plain recording (`mixtures`, `solo/<source>`): it can only take its own role."""
        return self.kind == "mixtures" or self.kind.startswith("solo/")


class MissingStemError(AdvsepError):
    """A file the corpus layout (or a metadata file) promises is not there."""


# -- resolving a record's audio for a role ----------------------------------------------------


def source_refs(record: TrackRecord, source: str, config: Config) -> Optional[list[AudioRef]]:
    """The refs whose sum is `source` for this track, from its own stem or the config's source map.

    Returns None when the corpus has no such stem at all (CCMixter has no drums); raises
    MissingStemError when the layout promises a file that is not there.
    """
    if source in record.stems:
        return list(record.stems[source])
    parts = config.source_map.derived.get(source)
    if parts and all(p in record.stems for p in parts):
        return [r for p in parts for r in record.stems[p]]
    missing = None
    if source in record.expected:
        missing = record.expected[source]
    elif parts and any(p in record.expected and p not in record.stems for p in parts):
        missing = next(
            record.expected[p] for p in parts if p in record.expected and p not in record.stems
        )
    elif record.kind in ("paired", "synthetic"):
        missing = os.path.join(record.folder, f"{source}.wav")
    if missing is None:
        return None
    alternatives = f" (or {', '.join(parts)})" if parts else ""
    raise MissingStemError(
        f"{missing}: missing stem '{source}'{alternatives} of track {record.key}"
    )


def mixture_refs(record: TrackRecord, config: Config) -> Optional[list[AudioRef]]:
    """The mixture's refs: its own file, or the stems that add up to it; None: the sources' sum."""
    if record.mixture is not None:
        return [record.mixture]
    if "mixture" in record.expected:
        raise MissingStemError(
            f"{record.expected['mixture']}: missing mixture of track {record.key}"
        )
    if record.partition:
        return [r for stem in record.partition for r in record.stems.get(stem, [])]
    return None


def role_inputs(
    record: TrackRecord, role: str, config: Config
) -> dict[str, Optional[list[AudioRef]]]:
    """What a track reads in a role: {"mixture": refs or None (the sources' sum), source: refs}.

    Raises:
        MissingStemError: a file the layout promises is missing (an input problem).
        AdvsepError: the track cannot take the role at all (a split problem), saying why.
    """
    reason = role_refusal(record, role, config)
    if reason:
        raise AdvsepError(f"{record.key} cannot be in {role}: {reason}")
    if role.startswith("solo/"):
        source = role.split("/", 1)[1]
        return {source: source_refs(record, source, config)}
    if role == "mixtures":
        refs = mixture_refs(record, config)
        if refs is None:  # a paired folder without mixture.wav: the sum of the config's sources
            return {"mixture": [r for s in config.sources for r in source_refs(record, s, config)]}
        return {"mixture": refs}
    inputs = {
        "mixture": mixture_refs(record, config)
        if record.mixture or "mixture" in record.expected
        else None
    }
    for source in config.sources:
        inputs[source] = source_refs(record, source, config)
    return inputs


def role_refusal(record: TrackRecord, role: str, config: Config) -> Optional[str]:
    """Why `record` can never take `role` (its corpus lacks what the role needs), or None.

    A file that the layout promises but that is missing is not a refusal: `role_inputs` reports
    it as an input problem (`--on-error`).
    """
    if record.unlabelled:
        return None if role == record.kind else f"it is a plain {record.kind} recording"
    if role.startswith("solo/"):
        source = role.split("/", 1)[1]
        try:
            refs = source_refs(record, source, config)
        except MissingStemError:
            return None
        if refs is None:
            return f"its corpus ({record.kind}) has no {source} stem"
        if not refs:
            return f"it has no {source} stem (silent)"
        return None
    if role == "mixtures":
        return None
    lacking = []
    for source in config.sources:
        try:
            if source_refs(record, source, config) is None:
                lacking.append(source)
        except MissingStemError:
            pass
    if lacking:
        return f"its corpus ({record.kind}) has no {', '.join(lacking)} stem"
    return None


# -- loading ----------------------------------------------------------------------------------


def load_ref(
    ref: AudioRef, config: Config, adapter=None, cache: Optional[dict] = None
) -> np.ndarray:
    """One ref as mono float32 at the config's rate, shape (nb_samples,).

    Raises AdvsepError naming the file for anything that cannot be honoured: undecodable, empty,
    truncated or NaN/inf audio (from the audio adapter), a rate below MIN_RATE_FRACTION of the
    model's, a channel that is not there, more channels than the downmix rule knows.
    """
    from advsep_tf.data_pipelines.audio import AudioAdapter, resample

    adapter = adapter or AudioAdapter.default()
    rate = config.audio.sample_rate
    key = (ref.path, ref.stream)
    if cache is not None and key in cache:
        data, file_rate = cache[key]
    else:
        data, file_rate = (
            adapter.load(ref.path, stream=ref.stream) if ref.stream else adapter.load(ref.path)
        )
        if cache is not None:
            cache[key] = (data, file_rate)
    if file_rate < MIN_RATE_FRACTION * rate:
        raise AdvsepError(
            f"{ref.describe()}: sample rate {file_rate} Hz is too low for the config's {rate} Hz "
            f"(at least "
            f"{int(np.ceil(MIN_RATE_FRACTION * rate))} Hz; upsampling would leave the model's "
            f"band above "
            f"{file_rate // 2} Hz empty)"
        )
    nb_channels = data.shape[1]
    if ref.channel is not None:
        if ref.channel >= nb_channels:
            raise AdvsepError(
                f"{ref.path}: has {nb_channels} channel(s); this layout reads channel "
                f"{ref.channel + 1} "
                f"({ref.describe().rsplit('(', 1)[-1].rstrip(')')}) from it"
            )
        mono = data[:, ref.channel]
    elif nb_channels > MAX_DOWNMIX_CHANNELS:
        raise AdvsepError(
            f"{ref.describe()}: has {nb_channels} channels; advsep-tf-prepare downmixes mono or "
            f"stereo "
            "recordings only (mix it down to stereo or mono first)"
        )
    else:
        mono = data.mean(axis=1) if nb_channels > 1 else data[:, 0]
    if file_rate != rate:
        mono = resample(mono[:, None], file_rate, rate)[:, 0]
    return np.ascontiguousarray(mono, dtype=np.float32)


def load_inputs(
    inputs: dict[str, Optional[list[AudioRef]]], track: str, config: Config, adapter=None
) -> dict[str, np.ndarray]:
    """Decode `role_inputs`: {name: mono float32 waveform at the config's rate}, all of one length.

    Each name is the sum of its refs (an empty list is silence); a mixture of None is the sum of
    the sources. Lengths may differ by LENGTH_TOLERANCE_SECONDS (trimmed to the shortest); more
    is refused, naming both files.
    """
    rate = config.audio.sample_rate
    cache: dict = {}
    loaded: dict[str, list[np.ndarray]] = {}
    lengths: dict[str, int] = {}
    for name, refs in inputs.items():
        if refs is None:
            continue
        loaded[name] = []
        for ref in refs:
            wave = load_ref(ref, config, adapter, cache)
            loaded[name].append(wave)
            lengths[ref.describe()] = len(wave)
    if not lengths:
        raise AdvsepError(f"track {track}: has no audio for {', '.join(inputs)}")
    longest, shortest = max(lengths, key=lengths.get), min(lengths, key=lengths.get)
    if lengths[longest] - lengths[shortest] > LENGTH_TOLERANCE_SECONDS * rate:
        raise AdvsepError(
            f"{shortest}: stem lengths of track {track} differ: {lengths[shortest] / rate:.2f} s "
            f"here, "
            f"{lengths[longest] / rate:.2f} s in {longest} (tolerance {LENGTH_TOLERANCE_SECONDS} s)"
        )
    n = lengths[shortest]
    audio = {}
    for name, waves in loaded.items():
        total = np.zeros(n, np.float32)
        for wave in waves:
            total += wave[:n]
        audio[name] = total
    if "mixture" in inputs and inputs["mixture"] is None:
        total = np.zeros(n, np.float32)
        for name in inputs:
            if name != "mixture":
                total += audio[name]
        audio["mixture"] = total
    return audio


def load_track_audio(
    record: TrackRecord, config: Config, adapter=None, role: Optional[str] = None
) -> dict[str, np.ndarray]:
    """Mono audio at the model's rate for what `record` gives in `role` (default: its own role)."""
    return load_inputs(
        role_inputs(record, role or record.role, config), record.key, config, adapter
    )


# -- adapters ---------------------------------------------------------------------------------


def audio_files(root: str) -> list[str]:
    found = []
    for directory, dirs, names in os.walk(root):
        dirs.sort()
        found += [
            os.path.join(directory, n)
            for n in names
            if n.lower().endswith(AUDIO_EXTENSIONS) and not n.startswith(".")
        ]
    return sorted(found)


def _require_dir(kind: str, path: str, hint: str = "") -> None:
    if not os.path.isdir(path):
        raise AdvsepError(f"{path}: --dataset {kind}: folder not found{hint}")


def _subdirs(path: str) -> list[str]:
    return sorted(
        d
        for d in os.listdir(path)
        if os.path.isdir(os.path.join(path, d)) and not d.startswith(".")
    )


def default_validation(track_ids: list[str]) -> set[str]:
    """Without a split spec, every tenth track (at least one of two or more) validates."""
    ordered = sorted(track_ids)
    if len(ordered) < 2:
        return set()
    return set(ordered[::10]) if len(ordered) >= 10 else {ordered[-1]}


def _named_stems(
    track_dir: str, config: Config
) -> tuple[dict[str, list[AudioRef]], Optional[AudioRef]]:
    """Audio files of a track folder by canonical stem name (through the config's aliases)."""
    stems: dict[str, list[AudioRef]] = {}
    mixture = None
    for name in sorted(os.listdir(track_dir)):
        path = os.path.join(track_dir, name)
        stem, ext = os.path.splitext(name)
        if not os.path.isfile(path) or ext.lower() not in AUDIO_EXTENSIONS or name.startswith("."):
            continue
        canonical = config.source_map.canonical(stem)
        if canonical == "mixture":
            if mixture is None:
                mixture = AudioRef(path)
            continue
        if canonical in stems:
            raise AdvsepError(
                f"{path}: track {os.path.basename(track_dir)} has two files for stem '{canonical}' "
                f"({stems[canonical][0].path}); keep one"
            )
        stems[canonical] = [AudioRef(path)]
    return stems, mixture


def paired_tracks(
    path: str, config: Config, origin: str = "paired", kind: str = "paired"
) -> list[TrackRecord]:
    """PATH/<track>/<stem>.<ext> (names through the config's aliases), with mixture.<ext> when
    present."""
    _require_dir(origin, path)
    track_dirs = _subdirs(path)
    if not track_dirs:
        raise AdvsepError(f"{path}: no track folders (expected {path}/<track>/<source>.wav)")
    valid = default_validation(track_dirs)
    records = []
    for track in track_dirs:
        track_dir = os.path.join(path, track)
        stems, mixture = _named_stems(track_dir, config)
        records.append(
            TrackRecord(
                track,
                origin,
                "valid" if track in valid else "train",
                mixture=mixture,
                stems=stems,
                kind=kind,
                folder=track_dir,
            )
        )
    return records


def _four_stem_record(track, origin, kind, role, folder, mixture_path, stem_paths) -> TrackRecord:
    stems = {s: [AudioRef(p)] for s, p in stem_paths.items() if os.path.isfile(p)}
    return TrackRecord(
        track,
        origin,
        role,
        mixture=AudioRef(mixture_path) if os.path.isfile(mixture_path) else None,
        stems=stems,
        kind=kind,
        folder=folder,
        expected={"mixture": mixture_path, **stem_paths},
        partition=BASE_STEMS,
    )


def dsd100_tracks(path: str, config: Config, origin: str = "dsd100") -> list[TrackRecord]:
    """PATH/Mixtures/{Dev,Test}/<track>/mixture.wav,
    PATH/Sources/{Dev,Test}/<track>/{vocals,drums,bass,other}.wav.

    Dev tracks train (every tenth validates, as for `paired`), Test tracks are held out.
    """
    _require_dir("dsd100", path)
    records = []
    for subset, role in (("Dev", "train"), ("Test", "test")):
        mixtures_dir = os.path.join(path, "Mixtures", subset)
        sources_dir = os.path.join(path, "Sources", subset)
        tracks = sorted(
            set(_subdirs(mixtures_dir) if os.path.isdir(mixtures_dir) else [])
            | set(_subdirs(sources_dir) if os.path.isdir(sources_dir) else [])
        )
        valid = default_validation(tracks) if role == "train" else set()
        for track in tracks:
            records.append(
                _four_stem_record(
                    track,
                    origin,
                    "dsd100",
                    "valid" if track in valid else role,
                    os.path.join(sources_dir, track),
                    os.path.join(mixtures_dir, track, "mixture.wav"),
                    {s: os.path.join(sources_dir, track, f"{s}.wav") for s in BASE_STEMS},
                )
            )
    if not records:
        raise AdvsepError(
            f"{path}: --dataset dsd100: no tracks (expected "
            f"{path}/Mixtures/{{Dev,Test}}/<track>/mixture.wav "
            f"and {path}/Sources/{{Dev,Test}}/<track>/<stem>.wav)"
        )
    return records


def musdb_validation_tracks() -> list[str]:
    """The 14 tracks of MUSDB18's train folder that form its official validation set (package
    data)."""
    import yaml

    text = (
        resources.files("advsep_tf.data_pipelines")
        .joinpath("tracklists", "musdb18.yaml")
        .read_text()
    )
    return list(yaml.safe_load(text)["validation"])


# MUSDB18 .stem.mp4 streams (musdb's mus.yaml stem_ids).
MUSDB_STREAMS = {"mixture": 0, "drums": 1, "bass": 2, "other": 3, "vocals": 4}


def musdb_tracks(
    path: str, config: Config, hq: bool, origin: Optional[str] = None
) -> list[TrackRecord]:
    """MUSDB18 (PATH/{train,test}/<track>.stem.mp4) or MUSDB18-HQ
    (PATH/{train,test}/<track>/<stem>.wav).

    train/ and test/ are the official train and test sets; the official validation tracks
    (`musdb_validation_tracks`) are taken out of train.
    """
    kind = "musdb18hq" if hq else "musdb18"
    origin = origin or kind
    _require_dir(kind, path)
    validation = set(musdb_validation_tracks())
    records = []
    for subset in ("train", "test"):
        folder = os.path.join(path, subset)
        if not os.path.isdir(folder):
            continue
        if hq:
            tracks = _subdirs(folder)
        else:
            tracks = sorted(
                n[: -len(".stem.mp4")]
                for n in os.listdir(folder)
                if n.endswith(".stem.mp4") and not n.startswith(".")
            )
        for track in tracks:
            role = "test" if subset == "test" else ("valid" if track in validation else "train")
            if hq:
                track_dir = os.path.join(folder, track)
                records.append(
                    _four_stem_record(
                        track,
                        origin,
                        kind,
                        role,
                        track_dir,
                        os.path.join(track_dir, "mixture.wav"),
                        {s: os.path.join(track_dir, f"{s}.wav") for s in BASE_STEMS},
                    )
                )
            else:
                file = os.path.join(folder, f"{track}.stem.mp4")
                records.append(
                    TrackRecord(
                        track,
                        origin,
                        role,
                        mixture=AudioRef(file, stream=0),
                        stems={s: [AudioRef(file, stream=MUSDB_STREAMS[s])] for s in BASE_STEMS},
                        kind=kind,
                        folder=folder,
                        partition=BASE_STEMS,
                    )
                )
    if not records:
        layout = "<track>/{mixture,vocals,drums,bass,other}.wav" if hq else "<track>.stem.mp4"
        raise AdvsepError(
            f"{path}: --dataset {kind}: no tracks (expected {path}/{{train,test}}/{layout})"
        )
    return records


# MedleyDB instrument labels (its taxonomy) -> base stem; every other label is "other".
MEDLEYDB_VOCALS = frozenset(
    {
        "male singer",
        "female singer",
        "male rapper",
        "female rapper",
        "male screamer",
        "female screamer",
        "male speaker",
        "female speaker",
        "vocalists",
        "choir",
        "beatboxing",
        "singer",
        "rapper",
        "vocals",
    }
)
MEDLEYDB_DRUMS = frozenset(
    {
        "drum set",
        "drum machine",
        "kick drum",
        "snare drum",
        "bass drum",
        "toms",
        "cymbal",
        "hi hat",
        "high hat",
        "auxiliary percussion",
        "bongo",
        "cabasa",
        "cajon",
        "castanet",
        "claps",
        "conga",
        "cowbell",
        "darbuka",
        "dhol",
        "djembe",
        "doumbek",
        "frame drum",
        "gong",
        "guiro",
        "maracas",
        "shaker",
        "sleigh bells",
        "snaps",
        "tabla",
        "tambourine",
        "timpani",
        "triangle",
        "woodblock",
        "percussion",
    }
)
MEDLEYDB_BASS = frozenset(
    {
        "electric bass",
        "double bass",
        "acoustic bass",
        "bass guitar",
        "fretless bass",
        "synth bass",
        "bass synthesizer",
    }
)


def medleydb_stem_of(instrument) -> str:
    """The base stem of a MedleyDB instrument label (or list of labels): vocals, drums, bass or
    other."""
    labels = [instrument] if isinstance(instrument, str) else list(instrument or [])
    labels = [str(label).strip().lower() for label in labels]
    for stem, names in (
        ("vocals", MEDLEYDB_VOCALS),
        ("drums", MEDLEYDB_DRUMS),
        ("bass", MEDLEYDB_BASS),
    ):
        if any(label in names for label in labels):
            return stem
    if any("singer" in label or "vocal" in label or "rapper" in label for label in labels):
        return "vocals"
    return "other"


def _medleydb_record(root: str, track: str, origin: str) -> TrackRecord:
    track_dir = os.path.join(root, "Audio", track)
    candidates = [
        os.path.join(track_dir, f"{track}_METADATA.yaml"),
        os.path.join(root, "Metadata", f"{track}_METADATA.yaml"),
    ]
    record = TrackRecord(
        track, origin, POOL, kind="medleydb", folder=track_dir, partition=BASE_STEMS
    )
    metadata_path = next((p for p in candidates if os.path.isfile(p)), None)
    if metadata_path is None:
        record.problem = f"{candidates[0]}: missing MedleyDB metadata of track {record.key}"
        return record
    try:
        metadata = load_json_or_yaml(metadata_path, "MedleyDB metadata file")
    except AdvsepError as exc:
        record.problem = str(exc)
        return record
    entries = (metadata.get("stems") or {}) if isinstance(metadata, dict) else None
    if not isinstance(entries, dict):
        record.problem = (
            f"{metadata_path}: not a valid MedleyDB metadata file ('stems' is not a mapping)"
        )
        return record
    mix = os.path.join(track_dir, metadata.get("mix_filename") or f"{track}_MIX.wav")
    stem_dir = os.path.join(track_dir, metadata.get("stem_dir") or f"{track}_STEMS")
    record.expected["mixture"] = mix
    if not os.path.isfile(mix):
        record.problem = f"{metadata_path}: names the mixture {mix}, which is not there"
        return record
    record.mixture = AudioRef(mix)
    stems: dict[str, list[AudioRef]] = {s: [] for s in BASE_STEMS}
    seen = set()
    for stem_id in sorted(entries):
        entry = entries[stem_id] or {}
        filename = entry.get("filename")
        if not filename:
            record.problem = f"{metadata_path}: stem {stem_id} has no filename"
            return record
        path = os.path.join(stem_dir, filename)
        if not os.path.isfile(path):
            record.problem = (
                f"{metadata_path}: names the stem {path} ({stem_id}), which is not there"
            )
            return record
        # Each stem file counts once, in one source: the authors' loader added vocal stems thrice.
        if path in seen:
            continue
        seen.add(path)
        stems[medleydb_stem_of(entry.get("instrument"))].append(AudioRef(path))
    record.stems = stems
    return record


def medleydb_tracks(path: str, config: Config, origin: str = "medleydb") -> list[TrackRecord]:
    """PATH/Audio/<track>/ with <track>_MIX.wav, <track>_STEMS/ and <track>_METADATA.yaml (or
    PATH/Metadata/).

    Stems map to base stems by instrument label (singers, rappers, choirs -> vocals; drum kits and
    percussion -> drums; electric/double bass -> bass; the rest -> other); the config's source
    map then gives accompaniment = drums + bass + other. `_RAW/` is not read.
    """
    audio_dir = os.path.join(path, "Audio")
    _require_dir("medleydb", audio_dir, f" (MedleyDB layout: {path}/Audio/<track>/<track>_MIX.wav)")
    tracks = _subdirs(audio_dir)
    if not tracks:
        raise AdvsepError(f"{audio_dir}: --dataset medleydb: no track folders")
    return [_medleydb_record(path, track, origin) for track in tracks]


def ccmixter_tracks(path: str, config: Config, origin: str = "ccmixter") -> list[TrackRecord]:
    """PATH/<track>/mix.wav, source-01.wav (accompaniment), source-02.wav (vocals)."""
    _require_dir("ccmixter", path)
    tracks = _subdirs(path)
    if not tracks:
        raise AdvsepError(
            f"{path}: --dataset ccmixter: no track folders (expected {path}/<track>/mix.wav)"
        )
    records = []
    for track in tracks:
        folder = os.path.join(path, track)
        files = {"mixture": "mix.wav", "accompaniment": "source-01.wav", "vocals": "source-02.wav"}
        expected = {name: os.path.join(folder, f) for name, f in files.items()}
        stems = {
            s: [AudioRef(expected[s])]
            for s in ("accompaniment", "vocals")
            if os.path.isfile(expected[s])
        }
        records.append(
            TrackRecord(
                track,
                origin,
                POOL,
                mixture=AudioRef(expected["mixture"])
                if os.path.isfile(expected["mixture"])
                else None,
                stems=stems,
                kind="ccmixter",
                folder=folder,
                expected=expected,
                partition=("accompaniment", "vocals"),
            )
        )
    return records


def ikala_tracks(path: str, config: Config, origin: str = "ikala") -> list[TrackRecord]:
    """PATH/Wavfile/<track>.wav, stereo: left channel accompaniment, right channel vocals.

    The mixture is their sum (left + right), as iKala's mixtures are made.
    """
    wav_dir = os.path.join(path, "Wavfile")
    _require_dir("ikala", wav_dir, f" (iKala layout: {path}/Wavfile/<track>.wav)")
    files = sorted(
        n for n in os.listdir(wav_dir) if n.lower().endswith(".wav") and not n.startswith(".")
    )
    if not files:
        raise AdvsepError(f"{wav_dir}: --dataset ikala: no .wav files")
    return [
        _channel_pair_record(os.path.splitext(name)[0], origin, POOL, wav_dir, name, "ikala")
        for name in files
    ]


def _channel_pair_record(
    track_id: str,
    origin: str,
    role: str,
    folder: str,
    name: str,
    kind: str,
    singer: Optional[str] = None,
) -> TrackRecord:
    """A stereo file `folder`/`name` holding a track's accompaniment on its left channel and its
    vocals on its right (iKala, MIR-1K): no mixture file, their sum is the mixture."""
    file = os.path.join(folder, name)
    return TrackRecord(
        track_id,
        origin,
        role,
        stems={"accompaniment": [AudioRef(file, channel=0)], "vocals": [AudioRef(file, channel=1)]},
        kind=kind,
        folder=folder,
        partition=("accompaniment", "vocals"),
        singer=singer,
    )


MIR1K_EXTENSIONS = (".wav", ".flac", ".ogg")


def mir1k_singer(track_id: str) -> str:
    """MIR-1K names clips <singer>_<song>_<clip>: the singer is the part before the first '_'."""
    return track_id.split("_", 1)[0]


def mir1k_default_roles(singers: list[str]) -> dict[str, str]:
    """Default role per singer: in case-insensitive name order, the 4th of every 5 validates and the
    5th is held out as test (13 singers: 2 validate, 2 test, 9 train). Fixed by the names alone, so
    it does not move when clips are added or re-encoded."""
    ordered = sorted(set(singers), key=str.lower)
    roles = {}
    for index, singer in enumerate(ordered):
        roles[singer] = "valid" if index % 5 == 3 else "test" if index % 5 == 4 else "train"
    return roles


def mir1k_tracks(path: str, config: Config, origin: str = "mir1k") -> list[TrackRecord]:
    """PATH/Wavfile/<singer>_<song>_<clip>.{wav,flac,ogg}, stereo: left channel accompaniment,
    right channel vocals; the mixture is their sum. Paired, split by singer
    (`mir1k_default_roles`)."""
    wav_dir = os.path.join(path, "Wavfile")
    _require_dir("mir1k", wav_dir, f" (MIR-1K layout: {path}/Wavfile/<singer>_<song>_<clip>.wav)")
    names = sorted(
        n
        for n in os.listdir(wav_dir)
        if n.lower().endswith(MIR1K_EXTENSIONS) and not n.startswith(".")
    )
    if not names:
        raise AdvsepError(f"{wav_dir}: --dataset mir1k: no {'/'.join(MIR1K_EXTENSIONS)} files")
    ids = [os.path.splitext(n)[0] for n in names]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise AdvsepError(f"{wav_dir}: clip {duplicated[0]} is there in two formats; keep one")
    roles = mir1k_default_roles([mir1k_singer(i) for i in ids])
    records = []
    for name, track_id in zip(names, ids):
        singer = mir1k_singer(track_id)
        records.append(
            _channel_pair_record(track_id, origin, roles[singer], wav_dir, name, "mir1k", singer)
        )
    return records


def unlabelled_tracks(path: str, role: str, origin: str) -> list[TrackRecord]:
    """Any tree of audio files: each file is one unlabelled mixture or one solo recording."""
    _require_dir(origin, path)
    files = audio_files(path)
    if not files:
        raise AdvsepError(
            f"{path}: --dataset {origin}: no audio files ({', '.join(AUDIO_EXTENSIONS)})"
        )
    names = [os.path.relpath(file, path).replace(os.sep, "/") for file in files]
    stems = [os.path.splitext(name)[0] for name in names]
    records = []
    for file, name, stem in zip(files, names, stems):
        # The id is the path without extension, unless two files differ only by extension.
        track_id = stem if stems.count(stem) == 1 else name
        if role == "mixtures":
            records.append(
                TrackRecord(track_id, origin, role, mixture=AudioRef(file), kind=role, folder=path)
            )
        else:
            source = role.split("/", 1)[1]
            records.append(
                TrackRecord(
                    track_id, origin, role, stems={source: [AudioRef(file)]}, kind=role, folder=path
                )
            )
    return records


def synthetic_tracks(path: str, config: Config, origin: str = "synthetic") -> list[TrackRecord]:
    """The built-in synthetic corpus; generated at PATH (with the config's sources) if absent."""
    from advsep_tf.data_pipelines import synthetic
    from advsep_tf.files import check_output_folder

    if not os.path.isfile(os.path.join(path, "corpus.json")):
        # Generated only where it destroys nothing: a new or empty folder, or a generation cut
        # short.
        ours = {synthetic.MUSDB_FOLDER, synthetic.MIXTURES_FOLDER, synthetic.SOLO_FOLDER}
        leftover = f".{synthetic.CORPUS_FILE}."  # a corpus.json temporary of a killed generation
        check_output_folder(
            path,
            lambda folder: {n for n in os.listdir(folder) if not n.startswith(leftover)} <= ours,
            "a synthetic corpus",
            option=f"--dataset synthetic={path}",
        )
        print(
            f"{path}: no synthetic corpus there yet; generating one for sources "
            f"{', '.join(config.sources)}"
        )
        synthetic.write_corpus(path, config.sources, sample_rate=config.audio.sample_rate)
    corpus = synthetic.read_corpus(path)
    missing = [
        s for s in config.sources if s not in corpus["sources"] and s not in synthetic.SOURCE_NAMES
    ]
    if missing:
        raise AdvsepError(
            f"{path}/corpus.json: synthetic corpus has sources {corpus['sources']}, config needs "
            f"{', '.join(missing)}"
        )
    tracks = corpus["tracks"]
    valid, test = set(tracks["valid"]), set(tracks["test"])
    records = []
    for subset in ("train", "test"):
        folder = os.path.join(path, "musdb18hq", subset)
        if not os.path.isdir(folder):
            continue
        for record in paired_tracks(folder, config, origin=origin, kind="synthetic"):
            record.role = (
                "test"
                if record.track_id in test
                else "valid"
                if record.track_id in valid
                else "train"
            )
            records.append(record)
    records += unlabelled_tracks(os.path.join(path, "mixtures"), "mixtures", origin)
    for source in config.sources:
        solo_dir = os.path.join(path, "solo", source)
        if os.path.isdir(solo_dir):
            records += unlabelled_tracks(solo_dir, f"solo/{source}", origin)
    return records


# Each dataset kind's reader: (path, config, origin) -> its tracks. The solo kinds (SOLO) are
# read by `unlabelled_tracks`, once their source is known to be the config's.
READERS: dict[str, Callable[[str, Config, str], list[TrackRecord]]] = {
    "dsd100": dsd100_tracks,
    "musdb18": lambda path, config, origin: musdb_tracks(path, config, hq=False, origin=origin),
    "musdb18hq": lambda path, config, origin: musdb_tracks(path, config, hq=True, origin=origin),
    "medleydb": medleydb_tracks,
    "ccmixter": ccmixter_tracks,
    "ikala": ikala_tracks,
    "mir1k": mir1k_tracks,
    "paired": paired_tracks,
    "mixtures": lambda path, config, origin: unlabelled_tracks(path, "mixtures", origin),
    "synthetic": synthetic_tracks,
}
KINDS = (*READERS, SOLO)


def dataset_records(
    kind: str, path: str, config: Config, origin: Optional[str] = None
) -> list[TrackRecord]:
    """Read one `--dataset KIND=PATH` with its kind's reader (READERS); `origin` labels its tracks
    (default: the kind)."""
    problem = dataset_kind_problem(kind, path, config)
    if problem:
        raise AdvsepError(problem)
    origin = origin or kind
    if kind in READERS:
        return READERS[kind](path, config, origin)
    return unlabelled_tracks(path, kind, origin)  # solo/<source>


def dataset_kind_problem(kind: str, path: str, config: Config) -> Optional[str]:
    """Why `--dataset KIND=PATH` names no dataset kind of this config (bad usage), or None."""
    if kind.startswith("solo/"):
        source = kind.split("/", 1)[1]
        if source not in config.sources:
            sources = ", ".join(config.sources)
            return f"--dataset {kind}={path}: '{source}' is not a source of this config ({sources})"
        return None
    if kind in READERS:
        return None
    return f"--dataset {kind}={path}: unknown dataset kind '{kind}' (kinds: {', '.join(KINDS)})"


def origin_labels(datasets: list[tuple[str, str]]) -> list[str]:
    """A label per dataset for its track ids: the kind, then 'kind#2', 'kind#3' for repeats."""
    seen: dict[str, int] = {}
    labels = []
    for kind, _ in datasets:
        seen[kind] = seen.get(kind, 0) + 1
        labels.append(kind if seen[kind] == 1 else f"{kind}#{seen[kind]}")
    return labels


def all_records(datasets: list[tuple[str, str]], config: Config) -> list[TrackRecord]:
    """The records of every `--dataset`, in argument order; track keys are unique."""
    records = []
    for (kind, path), origin in zip(datasets, origin_labels(datasets)):
        records += dataset_records(kind, path, config, origin)
    return records


def parse_dataset_arg(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise AdvsepError(f"--dataset {text}: expected KIND=PATH, e.g. paired=/data/tracks")
    kind, path = text.split("=", 1)
    return kind.strip(), os.path.expanduser(path.strip())
