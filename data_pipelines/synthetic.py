"""A deterministic synthetic multitrack corpus for the demo and the tests (NumPy only).

Every song is rendered from one integer seed: tempo, key, chord progression, voice range,
vowels and levels all come from generators seeded with it, so the same seed and arguments give
bit-identical stems on any run. The four base sources follow MUSDB18:

- "vocals": a sung vowel: a harmonic series with vibrato and portamento whose harmonic
  amplitudes follow the formants of a vowel that changes from note to note; notes come from the
  song's scale, grouped into phrases separated by rests; a few consonant-like noise bursts.
- "drums": kick (a sine swept down), snare (noise burst and tone), hi-hat (high-passed noise)
  on a sixteenth-note grid, with per-bar variations and fills.
- "bass": the chord roots (and fifths, octaves) as plucked notes with a few harmonics.
- "other": the chords, as a sustained pad or rhythmic keys, sometimes with an arpeggio.

The derived source "accompaniment" is drums + bass + other (the paper's K=2 setting).

`write_corpus` writes paired tracks in the MUSDB18-HQ layout plus the unpaired data of the
semi-supervised setting (solo recordings per source and unlabelled mixtures), each from a
different song so that paired and unpaired data never share material.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Optional, Sequence, Union

import numpy as np

from advsep_tf.errors import AdvsepError
from advsep_tf.files import load_json_or_yaml, write_atomically

if TYPE_CHECKING:
    from advsep_tf.config import Config

SOURCE_NAMES = ("vocals", "drums", "bass", "other")
DERIVED_SOURCES = {"accompaniment": ("drums", "bass", "other")}

CORPUS_FILE = "corpus.json"
MUSDB_FOLDER = "musdb18hq"
SOLO_FOLDER = "solo"
MIXTURES_FOLDER = "mixtures"
# Song seeds of a corpus are seed * SEEDS_PER_CORPUS + running index.
SEEDS_PER_CORPUS = 100_000

# RMS of each stem relative to the vocals: the three accompaniment stems together come out
# about as loud as the vocals, as in most mixed pop music.
STEM_LEVELS_DB = {"vocals": 0.0, "drums": -4.0, "bass": -5.0, "other": -4.0}
LEVEL_SPREAD_DB = 3.0
MIXTURE_PEAK_RANGE = (0.5, 0.8)

# Partials stop below this fraction of the sample rate so that nothing aliases.
_PARTIAL_LIMIT = 0.45

_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
# Chord progressions as 0-based scale degrees, one chord per bar.
_MAJOR_PROGRESSIONS = ((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (0, 3, 4, 3), (0, 3, 0, 4))
_MINOR_PROGRESSIONS = ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2))

# (F1, F2, F3) in Hz of adult male vowels (Peterson & Barney 1952): /a/, /e/, /i/, /o/, /u/.
_VOWEL_FORMANTS = (
    (730.0, 1090.0, 2440.0),
    (530.0, 1840.0, 2480.0),
    (270.0, 2290.0, 3010.0),
    (570.0, 840.0, 2410.0),
    (300.0, 870.0, 2240.0),
)
_FORMANT_BANDWIDTHS = (80.0, 100.0, 140.0)
_FORMANT_GAINS = (1.0, 0.5, 0.15)

# Sixteenth-note steps of one 4/4 bar.
_KICK_PATTERNS = (
    (0, 8),
    (0, 8, 10),
    (0, 3, 8),
    (0, 4, 8, 12),
    (0, 6, 8, 11),
)
_SNARE_STEPS = (4, 12)
_HAT_PATTERNS = (
    tuple(range(0, 16, 2)),  # eighths
    tuple(range(16)),  # sixteenths
    (2, 6, 10, 14),  # off-beats
)
# Bass figures for one bar: (start in beats, length in beats, semitones above the root).
_BASS_PATTERNS = (
    ((0.0, 1.75, 0), (2.0, 1.75, 0)),
    ((0.0, 1.0, 0), (1.0, 1.0, 0), (2.0, 1.0, 7), (3.0, 1.0, 0)),
    tuple((0.5 * i, 0.45, 0) for i in range(8)),
    ((0.0, 1.5, 0), (1.5, 0.5, 0), (2.0, 1.0, 7), (3.0, 1.0, 12)),
)
# Onsets (in beats) of the chord hits when "other" plays keys.
_KEYS_PATTERNS = ((0.0, 2.0), (0.0, 1.0, 2.0, 3.0), (0.5, 1.5, 2.5, 3.5), (0.0, 1.5, 3.0))

ProgressCallback = Callable[[int, int], None]


def generate_song(
    seed: int,
    duration: float,
    sample_rate: int,
    sources: Iterable[str] = SOURCE_NAMES,
) -> dict[str, np.ndarray]:
    """Renders one synthetic song.

    Args:
        seed: the song's seed; every musical choice derives from it.
        duration: length in seconds.
        sample_rate: in Hz.
        sources: names from `SOURCE_NAMES` or `DERIVED_SOURCES`.

    Returns:
        `{name: waveform}` for each requested source plus "mixture", each a float32 array of
        shape `(nb_samples,)` with `nb_samples = round(duration * sample_rate)`. The mixture is
        the sum of the four base stems, so it equals the sum of any requested set of sources
        that partitions them (to float32 rounding).

    Raises:
        AdvsepError: an unknown source name or a non-positive duration or sample rate.
    """
    sources = _check_sources(sources)
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise AdvsepError(f"song seed must be a non-negative integer, got {seed!r}")
    if not duration > 0:
        raise AdvsepError(f"song duration must be positive, got {duration!r} s")
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise AdvsepError(f"sample rate must be a positive integer, got {sample_rate!r}")

    # One child generator per stem: a change to how one stem is drawn leaves the others intact.
    plan_seed, levels_seed, *stem_seeds = np.random.SeedSequence(int(seed)).spawn(
        2 + len(SOURCE_NAMES)
    )
    plan = _plan_song(np.random.default_rng(plan_seed), float(duration), int(sample_rate))
    renderers = {
        "vocals": _render_vocals,
        "drums": _render_drums,
        "bass": _render_bass,
        "other": _render_other,
    }
    stems = {
        name: renderers[name](plan, np.random.default_rng(stem_seed))
        for name, stem_seed in zip(SOURCE_NAMES, stem_seeds)
    }
    stems = _set_levels(stems, np.random.default_rng(levels_seed))

    base = {name: stems[name].astype(np.float32) for name in SOURCE_NAMES}
    song = {"mixture": _sum_in_order(base[name] for name in SOURCE_NAMES)}
    for name in sources:
        if name in base:
            song[name] = base[name]
        else:
            song[name] = _sum_in_order(base[part] for part in DERIVED_SOURCES[name])
    return song


def write_corpus(
    root: Union[str, os.PathLike],
    sources: Sequence[str],
    sample_rate: int = 8192,
    nb_train: int = 8,
    nb_valid: int = 2,
    nb_test: int = 3,
    nb_mixtures: int = 8,
    nb_solo: int = 8,
    duration: float = 12.0,
    seed: int = 0,
    progress: Optional[ProgressCallback] = None,
) -> dict:
    """Writes a synthetic corpus of mono WAV files under `root`.

    Layout:
        musdb18hq/train/<track>/{mixture,<stem>}.wav   train and valid tracks (as MUSDB's
                                                        validation tracks live in train/)
        musdb18hq/test/<track>/{mixture,<stem>}.wav     test tracks
        solo/<source>/<track>.wav                       nb_solo per requested source
        mixtures/<track>.wav                            nb_mixtures unlabelled mixtures
        corpus.json                                     written last, see below

    Each paired track holds the four base stems and every requested derived source. Every file
    (or track folder) comes from its own song, seeded `seed * SEEDS_PER_CORPUS + index` and
    named `synth_<index>`, so no two roles share material.

    Args:
        root: the corpus folder; created if missing.
        sources: the separation targets, e.g. ("vocals", "accompaniment").
        progress: called as `progress(nb_songs_done, nb_songs_total)` after each song.

    Returns:
        The corpus.json content: format, version, sources, base_sources, sample_rate, duration,
        seed, `tracks` = {"train": [...], "valid": [...], "test": [...], "mixtures": [...],
        "solo": {source: [...]}} and `song_seeds` = {track: seed}.
    """
    from advsep_tf.data_pipelines.audio import AudioAdapter  # noqa: PLC0415

    sources = _check_sources(sources)
    counts = {
        "nb_train": nb_train,
        "nb_valid": nb_valid,
        "nb_test": nb_test,
        "nb_mixtures": nb_mixtures,
        "nb_solo": nb_solo,
    }
    for name, count in counts.items():
        if int(count) != count or count < 0:
            raise AdvsepError(f"{name} must be a non-negative integer, got {count!r}")
    nb_songs = nb_train + nb_valid + nb_test + nb_mixtures + nb_solo * len(sources)
    if nb_songs >= SEEDS_PER_CORPUS:
        raise AdvsepError(f"a corpus holds at most {SEEDS_PER_CORPUS - 1} songs, not {nb_songs}")
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise AdvsepError(f"corpus seed must be a non-negative integer, got {seed!r}")

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    # A corpus.json left by an earlier run would vouch for files about to be overwritten.
    (root / CORPUS_FILE).unlink(missing_ok=True)

    adapter = AudioAdapter.default()
    track_stems = (*SOURCE_NAMES, *(name for name in sources if name in DERIVED_SOURCES))
    song_seeds: dict[str, int] = {}

    def next_song() -> tuple[str, int]:
        index = len(song_seeds)
        track = f"synth_{index:04d}"
        song_seeds[track] = int(seed) * SEEDS_PER_CORPUS + index
        return track, song_seeds[track]

    def report() -> None:
        if progress is not None:
            progress(len(song_seeds), nb_songs)

    def render(song_seed: int, names: Sequence[str]) -> dict[str, np.ndarray]:
        return generate_song(song_seed, duration, sample_rate, names)

    tracks: dict = {"train": [], "valid": [], "test": [], "mixtures": [], "solo": {}}
    for role, count, split in (
        ("train", nb_train, "train"),
        ("valid", nb_valid, "train"),
        ("test", nb_test, "test"),
    ):
        for _ in range(count):
            track, song_seed = next_song()
            song = render(song_seed, track_stems)
            folder = root / MUSDB_FOLDER / split / track
            for name in ("mixture", *track_stems):
                adapter.save(folder / f"{name}.wav", song[name], sample_rate)
            tracks[role].append(track)
            report()

    for _ in range(nb_mixtures):
        track, song_seed = next_song()
        mixture = render(song_seed, ())["mixture"]
        adapter.save(root / MIXTURES_FOLDER / f"{track}.wav", mixture, sample_rate)
        tracks["mixtures"].append(track)
        report()

    for source in sources:
        tracks["solo"][source] = []
        for _ in range(nb_solo):
            track, song_seed = next_song()
            solo = render(song_seed, (source,))[source]
            adapter.save(root / SOLO_FOLDER / source / f"{track}.wav", solo, sample_rate)
            tracks["solo"][source].append(track)
            report()

    corpus = {
        "format": "advsep_tf.synthetic",
        "version": 1,
        "sources": list(sources),
        "base_sources": list(SOURCE_NAMES),
        "sample_rate": int(sample_rate),
        "duration": float(duration),
        "seed": int(seed),
        "tracks": tracks,
        "song_seeds": song_seeds,
    }
    write_atomically(root / CORPUS_FILE, json.dumps(corpus, indent=2) + "\n")
    return corpus


def write_config_corpus(
    root: Union[str, os.PathLike], config: Config, nb_unpaired: int, **options
) -> dict:
    """`write_corpus` of `config`'s sources at its sample rate, with `nb_unpaired` unlabelled
    mixtures and as many solo recordings per source (as `advsep_tf.experiment.CorpusScale` sizes
    a corpus); `options` (nb_train, nb_valid, nb_test, duration, seed, ...) go to `write_corpus`
    as they are."""
    return write_corpus(
        root,
        config.sources,
        sample_rate=config.audio.sample_rate,
        nb_mixtures=nb_unpaired,
        nb_solo=nb_unpaired,
        **options,
    )


def read_corpus(root: Union[str, os.PathLike]) -> dict:
    """Loads the corpus.json that `write_corpus` leaves as its last step.

    Raises:
        AdvsepError: the folder holds no corpus.json (an unfinished or foreign folder), or
            the file is corrupt.
    """
    path = Path(root) / CORPUS_FILE
    if not path.is_file():
        raise AdvsepError(f"{root}: not a synthetic corpus (no {CORPUS_FILE})")
    corpus = load_json_or_yaml(path, "corpus description")
    required = ("sources", "sample_rate", "duration", "seed", "tracks")
    missing = [key for key in required if key not in corpus] if isinstance(corpus, dict) else []
    if not isinstance(corpus, dict) or missing:
        raise AdvsepError(
            f"{path}: not a valid corpus description (missing {', '.join(missing) or 'everything'})"
        )
    return corpus


def _check_sources(sources: Iterable[str]) -> tuple[str, ...]:
    if isinstance(sources, str):
        sources = (sources,)
    sources = tuple(sources)
    supported = (*SOURCE_NAMES, *DERIVED_SOURCES)
    unknown = [name for name in sources if name not in supported]
    if unknown:
        raise AdvsepError(
            f"unknown source {', '.join(map(repr, unknown))}; "
            f"the synthetic corpus supports {', '.join(supported)}"
        )
    return tuple(dict.fromkeys(sources))


def _sum_in_order(arrays: Iterable[np.ndarray]) -> np.ndarray:
    # A fixed summation order keeps the float32 result reproducible.
    arrays = iter(arrays)
    total = next(arrays).copy()
    for array in arrays:
        total += array
    return total


# --------------------------------------------------------------------------------------------
# The song plan: what every stem agrees on.


@dataclasses.dataclass(frozen=True)
class _SongPlan:
    sample_rate: int
    nb_samples: int
    beat_seconds: float
    # Per bar, the chord's pitch classes (0 = C), root first.
    chords: tuple[tuple[int, ...], ...]
    tonic: int
    scale: tuple[int, ...]

    @property
    def bar_seconds(self) -> float:
        return 4 * self.beat_seconds

    @property
    def nb_bars(self) -> int:
        return len(self.chords)

    def scale_notes(self, lowest: int, highest: int) -> list[int]:
        """MIDI notes of the song's scale in [lowest, highest]."""
        return [
            note for note in range(lowest, highest + 1) if (note - self.tonic) % 12 in self.scale
        ]

    def samples(self, seconds: float) -> int:
        return int(round(seconds * self.sample_rate))


def _plan_song(rng: np.random.Generator, duration: float, sample_rate: int) -> _SongPlan:
    tempo = rng.uniform(84.0, 132.0)
    beat_seconds = 60.0 / tempo
    minor = rng.random() < 0.4
    scale = _MINOR if minor else _MAJOR
    progressions = _MINOR_PROGRESSIONS if minor else _MAJOR_PROGRESSIONS
    progression = progressions[rng.integers(len(progressions))]
    tonic = int(rng.integers(12))
    chord_size = 4 if rng.random() < 0.35 else 3  # sevenths or triads
    # One bar more than needed, so notes still sound at the very end of the song.
    nb_bars = math.ceil(duration / (4 * beat_seconds)) + 1
    chords = []
    for bar in range(nb_bars):
        degree = progression[bar % len(progression)]
        chords.append(tuple((tonic + scale[(degree + 2 * i) % 7]) % 12 for i in range(chord_size)))
    return _SongPlan(
        sample_rate=sample_rate,
        nb_samples=max(1, int(round(duration * sample_rate))),
        beat_seconds=beat_seconds,
        chords=tuple(chords),
        tonic=tonic,
        scale=scale,
    )


def _set_levels(stems: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Sets each stem's RMS to its level, then scales all so the mixture peaks in range."""
    leveled = {}
    for name in SOURCE_NAMES:
        level_db = STEM_LEVELS_DB[name] + rng.uniform(-LEVEL_SPREAD_DB, LEVEL_SPREAD_DB)
        rms = np.sqrt(np.mean(stems[name] ** 2))
        gain = 10.0 ** (level_db / 20.0) / rms if rms > 0 else 0.0
        leveled[name] = stems[name] * gain
    mixture = sum(leveled[name] for name in SOURCE_NAMES)
    target_peak = rng.uniform(*MIXTURE_PEAK_RANGE)
    # A stem may peak above the mixture where others cancel it; neither may clip.
    peak = max(np.abs(mixture).max(), *(np.abs(stem).max() for stem in leveled.values()))
    gain = target_peak / peak if peak > 0 else 0.0
    return {name: stem * gain for name, stem in leveled.items()}


# --------------------------------------------------------------------------------------------
# Signal helpers. Waveforms here are float64 arrays of shape (nb_samples,).


def _midi_to_hz(midi: Union[float, np.ndarray]) -> Union[float, np.ndarray]:
    return 440.0 * 2.0 ** ((np.asarray(midi) - 69.0) / 12.0)


def _moving_average(signal: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of `width` samples, edges held; O(nb_samples) for any width."""
    if width <= 1:
        return signal.copy()
    padded = np.concatenate(
        [np.full(width // 2, signal[0]), signal, np.full(width - width // 2, signal[-1])]
    )
    cumulative = np.concatenate([[0.0], np.cumsum(padded)])
    return (cumulative[width:] - cumulative[:-width])[: len(signal)] / width


def _band_noise(
    rng: np.random.Generator, nb_samples: int, sample_rate: int, low_hz: float, high_hz: float
) -> np.ndarray:
    """White noise band-limited to [low_hz, high_hz], unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(nb_samples))
    frequencies = np.fft.rfftfreq(nb_samples, 1.0 / sample_rate)
    spectrum[(frequencies < low_hz) | (frequencies > high_hz)] = 0.0
    noise = np.fft.irfft(spectrum, nb_samples)
    rms = np.sqrt(np.mean(noise**2))
    return noise / rms if rms > 0 else noise


def _ramp_envelope(
    nb_samples: int,
    attack: int,
    release: int,
    start_level: float = 0.0,
    end_level: float = 0.0,
) -> np.ndarray:
    """1 in the middle, linear ramps from `start_level` and down to `end_level` (in samples)."""
    envelope = np.ones(nb_samples)
    attack = min(attack, nb_samples // 2)
    release = min(release, nb_samples - attack)
    if attack > 0:
        envelope[:attack] = np.linspace(start_level, 1.0, attack, endpoint=False)
    if release > 0:
        envelope[nb_samples - release :] = np.linspace(1.0, end_level, release)
    return envelope


def _add_at(track: np.ndarray, start: int, sound: np.ndarray) -> None:
    """Adds `sound` into `track` from sample `start`, cropping whatever falls outside."""
    start = max(0, start)
    stop = min(len(track), start + len(sound))
    if stop > start:
        track[start:stop] += sound[: stop - start]


@dataclasses.dataclass(frozen=True)
class _Timbre:
    """A harmonic instrument: partial k (at k * f0) has `amplitudes[k - 1]`."""

    amplitudes: tuple[float, ...]
    # Time constant of each partial's exponential decay in seconds; None: sustained.
    decays: Optional[tuple[float, ...]]
    attack: float  # seconds
    release: float  # seconds
    # Non-zero: every partial is doubled by a copy this far off, for a chorus-like width.
    detune_cents: float = 0.0


_PAD = _Timbre(
    amplitudes=tuple(k**-1.5 for k in range(1, 9)),
    decays=None,
    attack=0.08,
    release=0.15,
    detune_cents=4.0,
)
_KEYS = _Timbre(
    amplitudes=tuple(k**-2.0 for k in range(1, 11)),
    decays=tuple(0.6 / (1 + 0.3 * (k - 1)) for k in range(1, 11)),
    attack=0.004,
    release=0.05,
)
_ARPEGGIO = _Timbre(
    amplitudes=tuple(k**-1.5 for k in range(1, 7)),
    decays=tuple(0.2 / k for k in range(1, 7)),
    attack=0.003,
    release=0.03,
)


def _play(
    track: np.ndarray,
    plan: _SongPlan,
    rng: np.random.Generator,
    timbre: _Timbre,
    midi: float,
    start: int,
    nb_samples: int,
    gain: float,
) -> None:
    """Adds one note of `timbre` into `track` (start and length in samples)."""
    sample_rate = plan.sample_rate
    time = np.arange(nb_samples) / sample_rate
    frequency = _midi_to_hz(midi)
    detunes = (0.0,) if timbre.detune_cents == 0 else (-timbre.detune_cents, timbre.detune_cents)
    note = np.zeros(nb_samples)
    for k, amplitude in enumerate(timbre.amplitudes, start=1):
        if k * frequency >= _PARTIAL_LIMIT * sample_rate:
            break
        partial = np.zeros(nb_samples)
        for cents in detunes:
            partial_hz = k * frequency * 2.0 ** (cents / 1200.0)
            partial += np.sin(2 * np.pi * partial_hz * time + rng.uniform(0, 2 * np.pi))
        if timbre.decays is not None:
            partial *= np.exp(-time / timbre.decays[k - 1])
        note += amplitude / len(detunes) * partial
    note *= _ramp_envelope(
        nb_samples, attack=plan.samples(timbre.attack), release=plan.samples(timbre.release)
    )
    _add_at(track, start, gain * note)


# --------------------------------------------------------------------------------------------
# Vocals.


def _render_vocals(plan: _SongPlan, rng: np.random.Generator) -> np.ndarray:
    sr = plan.sample_rate
    high_voice = rng.random() < 0.5
    lowest, highest = (57, 76) if high_voice else (48, 67)  # A3-E5 or C3-G4
    # Shorter vocal tracts have higher formants.
    formant_scale = (1.15 if high_voice else 1.0) * rng.uniform(0.95, 1.05)
    notes = plan.scale_notes(lowest, highest)
    vibrato_hz = rng.uniform(5.0, 6.0)

    # The melody: (start, end) in samples, MIDI note, vowel index, velocity, phrase boundaries.
    melody = []
    nb_beats = 4 * plan.nb_bars
    # Half of the longer songs open with a bar of instrumental intro.
    beat = 4.0 if plan.nb_bars >= 4 and rng.random() < 0.5 else 0.0
    note_index = len(notes) // 2 + int(rng.integers(-2, 3))
    while beat < nb_beats:
        phrase_end = min(beat + rng.choice((4.0, 6.0, 8.0)), nb_beats)
        phrase = []
        while beat < phrase_end:
            length = min(rng.choice((0.5, 1.0, 1.0, 1.5, 2.0)), phrase_end - beat)
            step = int(rng.choice((-3, -2, -1, -1, 0, 1, 1, 2, 3)))
            note_index = int(np.clip(note_index + step, 0, len(notes) - 1))
            phrase.append(
                {
                    "start": plan.samples(beat * plan.beat_seconds),
                    "end": plan.samples((beat + length) * plan.beat_seconds),
                    "midi": notes[note_index],
                    "vowel": int(rng.integers(len(_VOWEL_FORMANTS))),
                    "velocity": rng.uniform(0.7, 1.0),
                    "vibrato_depth": rng.uniform(0.15, 0.45),  # semitones
                }
            )
            beat += length
        phrase[0]["phrase_start"] = True
        phrase[-1]["phrase_end"] = True
        melody.extend(phrase)
        beat += rng.choice((1.0, 1.5, 2.0, 3.0))  # the rest between phrases

    # Control signals at the audio rate; the total is long enough for every note.
    nb_total = max(plan.nb_samples, melody[-1]["end"])
    pitch = np.full(nb_total, float(melody[0]["midi"]))
    formants = np.tile(np.array(_VOWEL_FORMANTS[melody[0]["vowel"]])[:, None], (1, nb_total))
    loudness = np.zeros(nb_total)
    vibrato_depth = np.zeros(nb_total)
    consonants = np.zeros(nb_total)
    for index, note in enumerate(melody):
        start, end = note["start"], note["end"]
        # Pitch and vowel hold through the following rest, so glides start from the last note.
        held_until = melody[index + 1]["start"] if index + 1 < len(melody) else nb_total
        pitch[start:held_until] = note["midi"]
        formants[:, start:held_until] = np.array(_VOWEL_FORMANTS[note["vowel"]])[:, None]
        first, last = note.get("phrase_start", False), note.get("phrase_end", False)
        loudness[start:end] = note["velocity"] * _ramp_envelope(
            end - start,
            attack=plan.samples(0.06 if first else 0.03),
            release=plan.samples(0.12 if last else 0.03),
            # Legato notes only dip between each other; phrases start and end in silence.
            start_level=0.0 if first else 0.6,
            end_level=0.0 if last else 0.6,
        )
        time_in_note = np.arange(end - start) / sr
        vibrato_depth[start:end] = note["vibrato_depth"] * np.clip(
            (time_in_note - 0.15) / 0.25, 0.0, 1.0
        )
        if first or rng.random() < 0.25:
            burst = _band_noise(
                rng, plan.samples(0.04), sr, min(2000.0, 0.25 * sr), _PARTIAL_LIMIT * sr
            )
            burst *= np.linspace(1.0, 0.0, len(burst)) * 0.3 * note["velocity"]
            _add_at(consonants, start, burst)

    time = np.arange(nb_total) / sr
    drift = _moving_average(rng.standard_normal(nb_total), plan.samples(0.2))
    drift *= 0.08 / max(drift.std(), 1e-12)
    pitch = (
        _moving_average(pitch, plan.samples(0.04))  # portamento
        + vibrato_depth * np.sin(2 * np.pi * vibrato_hz * time + rng.uniform(0, 2 * np.pi))
        + drift
    )
    f0 = _midi_to_hz(pitch)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    formants = np.stack([_moving_average(row, plan.samples(0.05)) for row in formants])
    formants *= formant_scale

    voice = np.zeros(nb_total)
    limit_hz = _PARTIAL_LIMIT * sr
    for k in range(1, int(limit_hz / f0.min()) + 1):
        harmonic_hz = k * f0
        envelope = np.zeros(nb_total)
        for formant_hz, bandwidth, gain in zip(formants, _FORMANT_BANDWIDTHS, _FORMANT_GAINS):
            envelope += gain * _resonance(harmonic_hz, formant_hz, bandwidth)
        # The glottal source falls off about 6 dB per octave after lip radiation; partials
        # fade out over the last 5% below the limit instead of switching off.
        taper = np.clip((limit_hz - harmonic_hz) / (0.05 * sr), 0.0, 1.0)
        voice += envelope * taper / k * np.sin(k * phase)
    voice /= max(np.abs(voice).max(), 1e-12)
    return (voice * loudness + consonants)[: plan.nb_samples]


def _resonance(frequency: np.ndarray, centre: np.ndarray, bandwidth: float) -> np.ndarray:
    """Magnitude response of a second-order resonance: 1 at 0 Hz, centre/bandwidth at centre."""
    return centre**2 / np.sqrt((centre**2 - frequency**2) ** 2 + (bandwidth * frequency) ** 2)


# --------------------------------------------------------------------------------------------
# Drums.


def _render_drums(plan: _SongPlan, rng: np.random.Generator) -> np.ndarray:
    sr = plan.sample_rate
    track = np.zeros(plan.nb_samples)
    kick_steps = _KICK_PATTERNS[rng.integers(len(_KICK_PATTERNS))]
    hat_steps = _HAT_PATTERNS[rng.integers(len(_HAT_PATTERNS))]
    kick = _kick(sr)
    step_seconds = plan.beat_seconds / 4

    for bar in range(plan.nb_bars):
        # (step, instrument, velocity) for this bar.
        hits = [(step, "kick", 1.0) for step in kick_steps]
        hits += [(step, "snare", 1.0) for step in _SNARE_STEPS]
        hits += [(step, "hat", 0.9 if step % 4 == 0 else 0.6) for step in hat_steps]
        if rng.random() < 0.2:
            hits.append((int(rng.choice((6, 10, 14))), "kick", 0.8))
        if rng.random() < 0.15:
            hits.append((int(rng.choice((7, 11, 15))), "snare", 0.3))  # ghost note
        if bar % 4 == 3 and rng.random() < 0.5:
            hits += [(step, "snare", 0.5 + 0.1 * (step - 12)) for step in range(12, 16)]
        if rng.random() < 0.2:
            hits = [hit for hit in hits if not (hit[0] == 14 and hit[1] == "hat")]
            hits.append((14, "open_hat", 0.7))

        for step, instrument, velocity in hits:
            # A few milliseconds of human timing.
            onset = (bar * 16 + step) * step_seconds + rng.normal(0.0, 0.004)
            velocity *= rng.uniform(0.9, 1.1)
            if instrument == "kick":
                sound = kick
            elif instrument == "snare":
                sound = _snare(sr, rng)
            else:
                sound = _hi_hat(sr, rng, open_hat=instrument == "open_hat")
            _add_at(track, plan.samples(onset), velocity * sound)
    return track


def _kick(sample_rate: int) -> np.ndarray:
    """A sine swept from about 155 Hz down to 45 Hz, decaying over a few hundred ms."""
    time = np.arange(int(0.35 * sample_rate)) / sample_rate
    frequency = 45.0 + 110.0 * np.exp(-time / 0.04)
    body = np.sin(2 * np.pi * np.cumsum(frequency) / sample_rate) * np.exp(-time / 0.18)
    return body * _ramp_envelope(len(time), attack=int(0.002 * sample_rate), release=64)


def _snare(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A band of noise plus two decaying drum-head modes."""
    nb_samples = int(0.25 * sample_rate)
    time = np.arange(nb_samples) / sample_rate
    tone = 0.5 * np.sin(2 * np.pi * 185.0 * time) * np.exp(-time / 0.05)
    tone += 0.25 * np.sin(2 * np.pi * 330.0 * time) * np.exp(-time / 0.03)
    high_hz = min(8000.0, _PARTIAL_LIMIT * sample_rate)
    noise = _band_noise(rng, nb_samples, sample_rate, 1000.0, high_hz) * np.exp(-time / 0.07)
    return (tone + 0.4 * noise) * _ramp_envelope(nb_samples, attack=8, release=64)


def _hi_hat(sample_rate: int, rng: np.random.Generator, open_hat: bool) -> np.ndarray:
    """High-passed noise: a short tick when closed, a longer wash when open."""
    nb_samples = int((0.4 if open_hat else 0.08) * sample_rate)
    time = np.arange(nb_samples) / sample_rate
    # Real hats sit around 6-16 kHz; at low sample rates they take the top of the band.
    low_hz = min(6000.0, 0.3 * sample_rate)
    high_hz = min(16000.0, 0.48 * sample_rate)
    noise = _band_noise(rng, nb_samples, sample_rate, low_hz, high_hz)
    decay = np.exp(-time / (0.12 if open_hat else 0.015))
    return 0.3 * noise * decay * _ramp_envelope(nb_samples, attack=4, release=32)


# --------------------------------------------------------------------------------------------
# Bass and other.


def _render_bass(plan: _SongPlan, rng: np.random.Generator) -> np.ndarray:
    track = np.zeros(plan.nb_samples)
    pattern = _BASS_PATTERNS[rng.integers(len(_BASS_PATTERNS))]
    lowest = int(rng.choice((28, 33)))  # E1 or A1: the bottom of the bass register
    decay = rng.uniform(0.3, 0.6)
    plucked = _Timbre(
        amplitudes=tuple(k**-1.2 for k in range(1, 7)),
        # Upper partials of a plucked string die away faster than the fundamental.
        decays=tuple(decay / (1 + 0.5 * (k - 1)) for k in range(1, 7)),
        attack=0.005,
        release=0.03,
    )
    for bar, chord in enumerate(plan.chords):
        root = lowest + (chord[0] - lowest) % 12
        for start_beats, length_beats, interval in pattern:
            start = plan.samples((4 * bar + start_beats) * plan.beat_seconds)
            if start >= plan.nb_samples:
                break
            nb_samples = plan.samples(length_beats * plan.beat_seconds)
            gain = rng.uniform(0.85, 1.0)
            _play(track, plan, rng, plucked, root + interval, start, nb_samples, gain)
    return track


def _render_other(plan: _SongPlan, rng: np.random.Generator) -> np.ndarray:
    track = np.zeros(plan.nb_samples)
    pad = rng.random() < 0.5
    keys_pattern = _KEYS_PATTERNS[rng.integers(len(_KEYS_PATTERNS))]
    arpeggio = rng.random() < 0.5
    lowest = int(rng.integers(53, 58))  # F3-A#3: chords sit just under the voice

    for bar, chord in enumerate(plan.chords):
        bar_start = plan.samples(bar * plan.bar_seconds)
        if bar_start >= plan.nb_samples:
            break
        voicing = sorted(lowest + (pitch_class - lowest) % 12 for pitch_class in chord)
        if pad:
            # Held for the bar and a little more, so consecutive chords overlap smoothly.
            nb_samples = plan.samples(plan.bar_seconds + 0.1)
            for midi in voicing:
                _play(track, plan, rng, _PAD, midi, bar_start, nb_samples, gain=0.5)
        else:
            offsets = (*keys_pattern, 4.0)
            for onset_beats, next_beats in zip(offsets[:-1], offsets[1:]):
                start = bar_start + plan.samples(onset_beats * plan.beat_seconds)
                nb_samples = plan.samples((next_beats - onset_beats) * plan.beat_seconds)
                gain = 0.5 * rng.uniform(0.75, 1.0)
                for midi in voicing:
                    _play(track, plan, rng, _KEYS, midi, start, nb_samples, gain)

        if arpeggio:
            nb_samples = plan.samples(plan.beat_seconds / 2)
            for eighth in range(8):
                start = plan.samples((8 * bar + eighth) * plan.beat_seconds / 2)
                midi = voicing[eighth % len(voicing)] + 12
                _play(track, plan, rng, _ARPEGGIO, midi, start, nb_samples, gain=0.3)
    return track
