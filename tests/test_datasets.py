"""One test per dataset adapter: a fixture tree in the corpus's own layout, built from the real
recordings in ../shared/data, prepared with the tiny config; every role holds exactly the patches
an independent count expects, and they read back."""

import numpy as np
import pytest

from advsep_tf.config import load_config
from advsep_tf.data_pipelines import datasets
from advsep_tf.data_pipelines.prepare import prepare
from advsep_tf.data_pipelines.readers import role_examples
from advsep_tf.data_pipelines.shards import ShardSet

import layouts
from layouts import decode, expected_patches

RATE = 8192


@pytest.fixture(scope="module")
def k2():
    return load_config("tiny")


@pytest.fixture(scope="module")
def k4():
    return load_config("tiny").replace(sources=["vocals", "drums", "bass", "other"])


def prepared(config, datasets_, out, **kwargs):
    manifest = prepare(config, datasets_, str(out), progress=False, examples_per_shard=64, **kwargs)
    return manifest, ShardSet.open(str(out), expected=config, verify_checksums=True)


def assert_patches(shard_set, expected: dict):
    """Each role holds the expected number of patches, and reading it back gives them all."""
    got = {role: shard_set.examples(role) for role in expected}
    assert got == expected
    for role, count in expected.items():
        if count:
            assert (
                sum(
                    1
                    for _ in role_examples(
                        shard_set, shard_set.config, role, shuffle=False, repeat=False
                    )
                )
                == count
            )


def trimmed_sum(waves):
    n = min(len(w) for w in waves)
    total = np.zeros(n, np.float32)
    for w in waves:
        total += w[:n]
    return total


def test_musdb_official_validation_list_ships_as_package_data():
    names = datasets.musdb_validation_tracks()
    assert len(names) == 14 == len(set(names))
    assert "Actions - One Minute Smile" in names and "Young Griffo - Pennies" in names


def test_dsd100(k2, tmp_path):
    roles = layouts.build_dsd100(tmp_path / "DSD100")
    manifest, shard_set = prepared(k2, [("dsd100", str(tmp_path / "DSD100"))], tmp_path / "shards")
    mixture = {
        t: decode(tmp_path / "DSD100" / "Mixtures" / s / t / "mixture.wav", RATE)
        for s, names in (("Dev", roles["train"] + roles["valid"]), ("Test", roles["test"]))
        for t in names
    }
    assert_patches(
        shard_set,
        {
            "train": expected_patches(mixture[roles["train"][0]], k2),
            "valid": expected_patches(mixture[roles["valid"][0]], k2),
        },
    )
    assert manifest["test_tracks"] == [f"dsd100:{roles['test'][0]}"]
    assert manifest["roles"]["train"]["tracks"] == [f"dsd100:{roles['train'][0]}"]


def test_dsd100_k2_targets_come_from_the_configs_source_map(k2, tmp_path):
    layouts.build_dsd100(tmp_path / "DSD100")
    record = next(
        r for r in datasets.dsd100_tracks(str(tmp_path / "DSD100"), k2) if r.role == "train"
    )
    sources = tmp_path / "DSD100" / "Sources" / "Dev" / record.track_id
    stems = {s: decode(sources / f"{s}.wav", RATE) for s in layouts.STEMS}
    audio = datasets.load_track_audio(record, k2)
    np.testing.assert_allclose(
        audio["accompaniment"], stems["drums"] + stems["bass"] + stems["other"], atol=1e-6
    )
    np.testing.assert_allclose(audio["vocals"], stems["vocals"], atol=1e-6)
    # The map is the config's: another map, another target.
    other_map = k2.replace(source_map={"derived": {"accompaniment": ["bass", "other"]}})
    assert other_map.differences(k2, k2.DATA_SECTIONS) == ["source_map.derived"]
    audio = datasets.load_track_audio(record, other_map)
    np.testing.assert_allclose(audio["accompaniment"], stems["bass"] + stems["other"], atol=1e-6)


def test_musdb18hq(k2, tmp_path):
    roles = layouts.build_musdb18hq(tmp_path / "musdb18hq")
    manifest, shard_set = prepared(
        k2, [("musdb18hq", str(tmp_path / "musdb18hq"))], tmp_path / "shards"
    )
    root = tmp_path / "musdb18hq" / "train"
    assert_patches(
        shard_set,
        {
            "train": expected_patches(decode(root / roles["train"][0] / "mixture.wav", RATE), k2),
            "valid": expected_patches(decode(root / roles["valid"][0] / "mixture.wav", RATE), k2),
        },
    )
    assert manifest["roles"]["valid"]["tracks"] == [f"musdb18hq:{layouts.MUSDB_VALIDATION_NAME}"]
    assert manifest["test_tracks"] == [f"musdb18hq:{roles['test'][0]}"]


def test_musdb18_stem_mp4(k4, tmp_path):
    roles = layouts.build_musdb18(tmp_path / "musdb18")
    manifest, shard_set = prepared(
        k4, [("musdb18", str(tmp_path / "musdb18"))], tmp_path / "shards"
    )
    file = tmp_path / "musdb18" / "train" / f"{roles['train'][0]}.stem.mp4"
    assert_patches(shard_set, {"train": expected_patches(decode(file, RATE, stream=0), k4)})
    assert manifest["test_tracks"] == [f"musdb18:{roles['test'][0]}"]
    # Streams 1-4 are drums, bass, other, vocals: the sources channel of an example holds them in
    # the config's order (vocals, drums, bass, other).
    record = next(
        r
        for r in datasets.musdb_tracks(str(tmp_path / "musdb18"), k4, hq=False)
        if r.role == "train"
    )
    audio = datasets.load_track_audio(record, k4)
    for source, stream in (("drums", 1), ("bass", 2), ("other", 3), ("vocals", 4)):
        np.testing.assert_allclose(
            audio[source], decode(file, RATE, stream=stream)[: len(audio[source])], atol=1e-5
        )
    example = next(
        iter(role_examples(shard_set, shard_set.config, "train", shuffle=False, repeat=False))
    )
    assert example["sources"].shape == (32, 16, 4)


def test_medleydb_maps_labels_and_counts_each_vocal_stem_once(k2, k4, tmp_path):
    root = tmp_path / "MedleyDB"
    metadata = layouts.build_medleydb(root)
    records = datasets.medleydb_tracks(str(root), k2)
    assert [r.track_id for r in records] == sorted(metadata)
    rock = records[0]
    assert [len(rock.stems[s]) for s in layouts.STEMS] == [2, 1, 1, 1]
    assert not any("_RAW" in f for f in rock.files)
    # vocals = the two vocal stems, each once (the authors' loader added them three times).
    stem_dir = root / "Audio" / rock.track_id / f"{rock.track_id}_STEMS"
    # Stems 01-04 are vocals, drums, bass, other; 05 the second vocal stem.
    vocals = decode(stem_dir / f"{rock.track_id}_STEM_01.wav", RATE) + decode(
        stem_dir / f"{rock.track_id}_STEM_05.wav", RATE
    )
    audio = datasets.load_track_audio(rock, k2, role="train")
    np.testing.assert_allclose(audio["vocals"], vocals, atol=1e-6)
    accompaniment = sum(
        decode(stem_dir / f"{rock.track_id}_STEM_0{i}.wav", RATE) for i in (2, 3, 4)
    )
    np.testing.assert_allclose(audio["accompaniment"], accompaniment, atol=1e-5)
    assert (
        datasets.medleydb_stem_of("female singer") == "vocals"
        and datasets.medleydb_stem_of("toms") == "drums"
    )
    assert (
        datasets.medleydb_stem_of(["double bass"]) == "bass"
        and datasets.medleydb_stem_of("flute") == "other"
    )

    # Default: MedleyDB tracks are dealt into the unpaired pools, one pool per track.
    manifest, shard_set = prepared(k2, [("medleydb", str(root))], tmp_path / "shards")
    falcon = records[1]
    falcon_dir = root / "Audio" / falcon.track_id
    assert_patches(
        shard_set,
        {
            "mixtures": expected_patches(
                decode(root / "Audio" / rock.track_id / f"{rock.track_id}_MIX.wav", RATE), k2
            ),
            "solo/vocals": expected_patches(
                decode(
                    falcon_dir / f"{falcon.track_id}_STEMS" / f"{falcon.track_id}_STEM_01.wav", RATE
                ),
                k2,
            ),
        },
    )
    # K=4: the same labels give drums, bass and other.
    audio = datasets.load_track_audio(rock, k4, role="train")
    np.testing.assert_allclose(
        audio["drums"], decode(stem_dir / f"{rock.track_id}_STEM_02.wav", RATE), atol=1e-6
    )


def test_ccmixter(k2, tmp_path):
    clips = layouts.build_ccmixter(tmp_path / "ccmixter")
    manifest, shard_set = prepared(
        k2, [("ccmixter", str(tmp_path / "ccmixter"))], tmp_path / "shards"
    )
    root = tmp_path / "ccmixter"
    # Dealt in track order: mixtures, solo/vocals (source-02), solo/accompaniment (source-01),
    # mixtures.
    assert [
        manifest["roles"][r]["tracks"] for r in ("mixtures", "solo/vocals", "solo/accompaniment")
    ] == [
        [f"ccmixter:{clips[0]}", f"ccmixter:{clips[3]}"],
        [f"ccmixter:{clips[1]}"],
        [f"ccmixter:{clips[2]}"],
    ]
    assert_patches(
        shard_set,
        {
            "mixtures": sum(
                expected_patches(decode(root / c / "mix.wav", RATE), k2)
                for c in (clips[0], clips[3])
            ),
            "solo/vocals": expected_patches(decode(root / clips[1] / "source-02.wav", RATE), k2),
            "solo/accompaniment": expected_patches(
                decode(root / clips[2] / "source-01.wav", RATE), k2
            ),
        },
    )


def test_ikala_splits_the_channels(k2, tmp_path):
    (track,) = layouts.build_ikala(tmp_path / "iKala")
    file = tmp_path / "iKala" / "Wavfile" / f"{track}.wav"
    left, right = decode(file, RATE, channel=0), decode(file, RATE, channel=1)
    (record,) = datasets.ikala_tracks(str(tmp_path / "iKala"), k2)
    audio = datasets.load_track_audio(record, k2, role="train")
    np.testing.assert_allclose(audio["accompaniment"], left, atol=1e-6)
    np.testing.assert_allclose(audio["vocals"], right, atol=1e-6)
    np.testing.assert_allclose(audio["mixture"], left + right, atol=1e-6)
    # Alone, the track feeds the first pool: its mixture (left + right) is an unlabelled mixture.
    manifest, shard_set = prepared(k2, [("ikala", str(tmp_path / "iKala"))], tmp_path / "shards")
    assert_patches(shard_set, {"mixtures": expected_patches(left + right, k2)})
    # A split spec can make it a paired track.
    spec = tmp_path / "split.yaml"
    spec.write_text(f"train: ['ikala:{track}']\n")
    manifest, shard_set = prepared(
        k2, [("ikala", str(tmp_path / "iKala"))], tmp_path / "paired", split_file=str(spec)
    )
    assert_patches(shard_set, {"train": expected_patches(left + right, k2), "mixtures": 0})


def test_paired_folders_with_stem_name_aliases(k2, tmp_path):
    clips = layouts.build_paired_aliases(tmp_path / "mir1k")
    manifest, shard_set = prepared(k2, [("paired", str(tmp_path / "mir1k"))], tmp_path / "shards")
    root = tmp_path / "mir1k"

    def count(clip):  # no mixture file: the mixture is vocals + accompaniment
        return expected_patches(
            trimmed_sum(
                [decode(root / clip / "vocal.wav", RATE), decode(root / clip / "music.wav", RATE)]
            ),
            k2,
        )

    valid = sorted(clips)[-1]
    assert_patches(
        shard_set, {"train": sum(count(c) for c in clips if c != valid), "valid": count(valid)}
    )
    record = datasets.paired_tracks(str(root), k2)[0]
    assert record.stems["vocals"][0].path.endswith("vocal.wav")
    assert record.stems["accompaniment"][0].path.endswith("music.wav")


def test_paired_four_stem_folders(k4, tmp_path):
    names = layouts.build_paired_4stem(tmp_path / "paired")
    manifest, shard_set = prepared(k4, [("paired", str(tmp_path / "paired"))], tmp_path / "shards")
    root = tmp_path / "paired"
    assert_patches(
        shard_set,
        {
            "train": expected_patches(decode(root / names[0] / "mixture.wav", RATE), k4),
            "valid": expected_patches(decode(root / names[1] / "mixture.wav", RATE), k4),
        },
    )


def test_mixture_and_solo_folders(k4, tmp_path):
    mixtures = layouts.build_mixtures(tmp_path / "mixtures")
    solo = {s: layouts.build_solo(tmp_path / f"solo_{s}", s) for s in ("vocals", "drums", "bass")}
    sets = [("mixtures", str(tmp_path / "mixtures"))] + [
        (f"solo/{s}", str(tmp_path / f"solo_{s}")) for s in solo
    ]
    manifest, shard_set = prepared(k4, sets, tmp_path / "shards")
    expected = {"mixtures": sum(expected_patches(decode(f, RATE), k4) for f in mixtures)}
    for source, files in solo.items():
        expected[f"solo/{source}"] = sum(expected_patches(decode(f, RATE), k4) for f in files)
    assert_patches(shard_set, expected)
    # Nested folders give nested ids; a one-shot's silent tail is dropped, not sharded.
    assert (
        "mixtures:librosa/admiralbob77_-_Choice_-_Drum-bass.hq"
        in manifest["roles"]["mixtures"]["tracks"]
    )
    assert manifest["roles"]["solo/drums"]["silent_patches_dropped"] > 0


def test_configs_written_before_the_source_map_get_the_default(k2):
    from advsep_tf.config import Config
    from advsep_tf.errors import AdvsepError

    old = k2.to_dict()
    del old["source_map"]
    config = Config.from_dict(old)
    assert config == k2 and config.source_map.derived == {
        "accompaniment": ["drums", "bass", "other"]
    }
    assert (
        config.source_map.canonical("Vocal") == "vocals"
        and config.source_map.canonical("music") == "accompaniment"
    )
    assert "source_map" in Config.DATA_SECTIONS
    with pytest.raises(AdvsepError, match="source_map.derived"):
        k2.replace(source_map={"derived": {"accompaniment": []}})
    with pytest.raises(AdvsepError, match="cannot be a sum that includes itself"):
        k2.replace(source_map={"derived": {"accompaniment": ["accompaniment", "drums"]}})
