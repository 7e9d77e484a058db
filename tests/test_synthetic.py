"""The synthetic multitrack corpus: determinism, musical sanity, the written layout."""

import hashlib
import json

import numpy as np
import pytest

from advsep_tf.data_pipelines.audio import AudioAdapter
from advsep_tf.data_pipelines.synthetic import (
    CORPUS_FILE,
    DERIVED_SOURCES,
    SOURCE_NAMES,
    generate_song,
    read_corpus,
    write_corpus,
)
from advsep_tf.errors import AdvsepError

SAMPLE_RATE = 8192
ALL_SOURCES = (*SOURCE_NAMES, *DERIVED_SOURCES)


def frame_rms(waveform, frame_length):
    """RMS of consecutive non-overlapping frames: shape (nb_frames,)."""
    nb_frames = len(waveform) // frame_length
    frames = waveform[: nb_frames * frame_length].astype(np.float64)
    return np.sqrt(np.mean(frames.reshape(nb_frames, frame_length) ** 2, axis=1))


def autocorrelation_f0(frame, sample_rate, lowest_hz=60.0, highest_hz=1200.0):
    frame = frame.astype(np.float64) - frame.mean()
    correlation = np.correlate(frame, frame, mode="full")[len(frame) - 1 :]
    shortest, longest = int(sample_rate / highest_hz), int(sample_rate / lowest_hz)
    return sample_rate / (shortest + np.argmax(correlation[shortest:longest]))


def test_same_seed_gives_identical_songs():
    first = generate_song(7, 3.0, SAMPLE_RATE, ALL_SOURCES)
    second = generate_song(7, 3.0, SAMPLE_RATE, ALL_SOURCES)
    other_seed = generate_song(8, 3.0, SAMPLE_RATE, ALL_SOURCES)

    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
        assert not np.allclose(first[name], other_seed[name])


def test_returns_requested_sources_as_float32_mono():
    song = generate_song(1, 2.5, SAMPLE_RATE, ("vocals", "accompaniment"))

    assert set(song) == {"vocals", "accompaniment", "mixture"}
    for waveform in song.values():
        assert waveform.dtype == np.float32
        assert waveform.shape == (int(2.5 * SAMPLE_RATE),)


def test_mixture_is_the_sum_of_the_stems():
    song = generate_song(2, 3.0, SAMPLE_RATE, ALL_SOURCES)

    np.testing.assert_array_equal(
        song["mixture"], song["vocals"] + song["drums"] + song["bass"] + song["other"]
    )
    np.testing.assert_array_equal(
        song["accompaniment"], song["drums"] + song["bass"] + song["other"]
    )
    # Equal up to float32 rounding: the additions happen in another order.
    np.testing.assert_allclose(song["mixture"], song["vocals"] + song["accompaniment"], atol=1e-6)


def test_choice_of_sources_does_not_change_the_song():
    everything = generate_song(3, 2.0, SAMPLE_RATE, ALL_SOURCES)
    vocals_only = generate_song(3, 2.0, SAMPLE_RATE, ("vocals",))

    np.testing.assert_array_equal(vocals_only["vocals"], everything["vocals"])
    np.testing.assert_array_equal(vocals_only["mixture"], everything["mixture"])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_vocals_have_rests_and_a_singing_pitch(seed):
    vocals = generate_song(seed, 8.0, SAMPLE_RATE, ("vocals",))["vocals"]
    frame_length = SAMPLE_RATE // 10  # 100 ms
    rms = frame_rms(vocals, frame_length)

    assert np.sum(rms < 0.01 * rms.max()) >= 1, "no rest between phrases"
    loudest = np.argmax(rms)
    voiced_frame = vocals[loudest * frame_length : (loudest + 1) * frame_length]
    assert 80.0 <= autocorrelation_f0(voiced_frame, SAMPLE_RATE) <= 1000.0


def test_drums_have_transients():
    drums = generate_song(4, 4.0, SAMPLE_RATE, ("drums",))["drums"]
    level_db = 20 * np.log10(frame_rms(drums, 256) + 1e-9)  # 31 ms frames

    onsets = np.sum(np.diff(level_db) > 6.0)
    assert onsets >= 8  # at least two hits a beat at 84-132 bpm over 4 s


@pytest.mark.parametrize("seed", range(6))
def test_levels_are_realistic_and_nothing_clips(seed):
    song = generate_song(seed, 3.0, SAMPLE_RATE, ALL_SOURCES)

    assert 0.4 <= np.abs(song["mixture"]).max() <= 0.8 + 1e-6
    for waveform in song.values():
        assert np.isfinite(waveform).all()
        assert np.abs(waveform).max() <= 0.8 + 1e-6
    vocals_to_accompaniment_db = 20 * np.log10(
        frame_rms(song["vocals"], len(song["vocals"]))[0]
        / frame_rms(song["accompaniment"], len(song["accompaniment"]))[0]
    )
    assert abs(vocals_to_accompaniment_db) < 8.0


def test_unknown_source():
    with pytest.raises(AdvsepError, match="'guitar'.*vocals, drums, bass, other, accompaniment"):
        generate_song(0, 1.0, SAMPLE_RATE, ("vocals", "guitar"))


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    calls = []
    corpus = write_corpus(
        root,
        sources=("vocals", "accompaniment"),
        sample_rate=4000,
        nb_train=2,
        nb_valid=1,
        nb_test=1,
        nb_mixtures=2,
        nb_solo=2,
        duration=2.0,
        seed=5,
        progress=lambda done, total: calls.append((done, total)),
    )
    return root, corpus, calls


def test_corpus_layout(corpus_root):
    root, corpus, calls = corpus_root
    tracks = corpus["tracks"]

    assert [len(tracks[role]) for role in ("train", "valid", "test", "mixtures")] == [2, 1, 1, 2]
    assert {source: len(names) for source, names in tracks["solo"].items()} == {
        "vocals": 2,
        "accompaniment": 2,
    }
    stems = {
        "mixture.wav",
        "vocals.wav",
        "drums.wav",
        "bass.wav",
        "other.wav",
        "accompaniment.wav",
    }
    for role, split in (("train", "train"), ("valid", "train"), ("test", "test")):
        for track in tracks[role]:
            folder = root / "musdb18hq" / split / track
            assert {path.name for path in folder.iterdir()} == stems
    for track in tracks["mixtures"]:
        assert (root / "mixtures" / f"{track}.wav").is_file()
    for source, names in tracks["solo"].items():
        for track in names:
            assert (root / "solo" / source / f"{track}.wav").is_file()
    assert not list(root.rglob("*.tmp"))
    assert calls[-1] == (10, 10) and len(calls) == 10


def test_corpus_description_is_written_and_read_back(corpus_root):
    root, corpus, _ = corpus_root

    assert read_corpus(root) == corpus
    assert json.loads((root / CORPUS_FILE).read_text()) == corpus
    assert corpus["sources"] == ["vocals", "accompaniment"]
    assert (corpus["sample_rate"], corpus["duration"], corpus["seed"]) == (4000, 2.0, 5)


def test_corpus_files_load_at_the_corpus_rate_and_add_up(corpus_root):
    root, corpus, _ = corpus_root
    adapter = AudioAdapter.default()
    folder = root / "musdb18hq" / "train" / corpus["tracks"]["train"][0]

    stems = {}
    for path in folder.iterdir():
        stems[path.stem], sample_rate = adapter.load(path)
        assert sample_rate == 4000
        assert stems[path.stem].shape == (8000, 1)
    np.testing.assert_allclose(
        stems["mixture"], stems["vocals"] + stems["accompaniment"], atol=1e-6
    )
    np.testing.assert_allclose(
        stems["mixture"],
        stems["vocals"] + stems["drums"] + stems["bass"] + stems["other"],
        atol=1e-6,
    )


def test_paired_and_unpaired_songs_are_disjoint(corpus_root):
    root, corpus, _ = corpus_root
    seeds = corpus["song_seeds"]

    assert len(set(seeds.values())) == len(seeds) == 10
    digests = [hashlib.sha256(path.read_bytes()).hexdigest() for path in root.rglob("*.wav")]
    assert len(digests) == 4 * 6 + 2 + 2 * 2
    assert len(set(digests)) == len(digests)


def test_a_config_corpus_has_its_sources_and_rate_and_equal_unpaired_pools(
    tiny_corpus, tiny_config
):
    corpus = read_corpus(tiny_corpus)

    assert corpus["sources"] == list(tiny_config.sources)
    assert corpus["sample_rate"] == tiny_config.audio.sample_rate
    assert len(corpus["tracks"]["mixtures"]) == 3
    assert {source: len(names) for source, names in corpus["tracks"]["solo"].items()} == {
        source: 3 for source in tiny_config.sources
    }


def test_read_corpus_refuses_other_folders(tmp_path):
    with pytest.raises(AdvsepError, match="not a synthetic corpus"):
        read_corpus(tmp_path)
    (tmp_path / CORPUS_FILE).write_text("{not json")
    with pytest.raises(AdvsepError, match=f"{CORPUS_FILE}: not a valid corpus description"):
        read_corpus(tmp_path)


def test_write_corpus_refuses_unknown_source(tmp_path):
    with pytest.raises(AdvsepError, match="unknown source"):
        write_corpus(tmp_path, sources=("vocals", "piano"), nb_train=1)
    assert not (tmp_path / CORPUS_FILE).exists()
