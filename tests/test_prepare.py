"""advsep-tf-prepare on real corpora: every layout in one shard set under a split spec, trained on;
the paper's split rule; bad input (fail or skip); resuming after a kill; workers."""

import json
import os
import shutil
import signal
import subprocess

import numpy as np
import pytest
import soundfile as sf
import yaml

from advsep_tf.cli import common
from advsep_tf.cli import prepare as prepare_cli
from advsep_tf.config import load_config
from advsep_tf.data_pipelines.prepare import JOURNAL, prepare
from advsep_tf.data_pipelines.shards import MANIFEST, ShardSet
from advsep_tf.errors import AdvsepError
from advsep_tf.files import KILL_AT_ENV

import layouts
from pipeline_steps import prepare_argv, prepare_command, prepare_synthetic

K4 = ["vocals", "drums", "bass", "other"]


def run_cli(argv, capsys):
    code = common.run(prepare_cli.main, argv)
    captured = capsys.readouterr()
    return (
        code,
        captured.out,
        [line for line in captured.err.splitlines() if line.startswith("error:")],
        captured.err,
    )


def shard_checksums(manifest):
    return {
        role: [(s["file"], s["examples"], s["sha256"]) for s in info["shards"]]
        for role, info in manifest["roles"].items()
    }


# -- every layout together, under a split spec, into model.fit ------------------------------------


def build_everything(root, sources):
    sets = [
        ("dsd100", layouts.build_dsd100),
        ("musdb18hq", layouts.build_musdb18hq),
        ("musdb18", layouts.build_musdb18),
        ("medleydb", layouts.build_medleydb),
        ("ccmixter", layouts.build_ccmixter),
        ("ikala", layouts.build_ikala),
        (
            "paired",
            layouts.build_paired_aliases if len(sources) == 2 else layouts.build_paired_4stem,
        ),
        ("mixtures", layouts.build_mixtures),
    ]
    datasets = []
    for kind, build in sets:
        build(root / kind)
        datasets.append((kind, str(root / kind)))
    for source in ("vocals", "drums", "bass"):
        if source in sources:
            layouts.build_solo(root / f"solo_{source}", source)
            datasets.append((f"solo/{source}", str(root / f"solo_{source}")))
    return datasets


def fit_a_few_steps(config, shard_dir, steps=2):
    from advsep_tf.data_pipelines.readers import (
        training_dataset,
        validation_dataset,
        validation_steps,
    )
    from advsep_tf.model import AdversarialSeparator

    shard_set = ShardSet.open(str(shard_dir), expected=config, verify_checksums=True)
    model = AdversarialSeparator(config)
    model.compile()
    history = model.fit(
        training_dataset(shard_set, config, random_offsets=True, remix_probability=0.5),
        steps_per_epoch=steps,
        epochs=1,
        validation_data=validation_dataset(shard_set, config),
        validation_steps=validation_steps(shard_set, config),
        verbose=0,
    )
    assert int(model.optimizer.iterations) == steps
    assert int(model.critic_optimizer.iterations) == config.loss.n_critic * steps
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    return history


@pytest.mark.parametrize("sources", [["vocals", "accompaniment"], K4], ids=["K2", "K4"])
def test_all_layouts_in_one_shard_set_under_a_split_spec_train(sources, tmp_path, capsys):
    layouts.data()
    config = load_config("tiny").replace(sources=sources)
    config_file = tmp_path / "config.json"
    config.save(str(config_file))
    datasets = build_everything(tmp_path / "corpora", sources)
    args = ["--config", str(config_file)] + [
        a for kind, path in datasets for a in ("--dataset", f"{kind}={path}")
    ]

    # The generated default spec names every track once and obeys the rule.
    spec_file = tmp_path / "split.yaml"
    code, out, errors, err = run_cli(args + ["--write-split", str(spec_file)], capsys)
    assert code == 0, err
    spec = yaml.safe_load(spec_file.read_text())
    assert spec_file.read_text().startswith("# advsep-tf split spec")
    named = [t for key in ("train", "valid", "test", "mixtures", "unused") for t in spec[key]]
    named += [t for tracks in spec["solo"].values() for t in tracks]
    assert len(named) == len(set(named))
    assert "dsd100:003 - Music Delta - 80s Rock" in spec["test"]
    assert f"musdb18hq:{layouts.MUSDB_VALIDATION_NAME}" in spec["valid"]
    assert "medleydb:MusicDelta_80sRock" in spec["mixtures"]
    assert "ccmixter:abjones_4_08" in spec["solo"]["vocals"]

    # Edit it: iKala's track becomes paired validation data (K=2) or is left out (K=4); a
    # MedleyDB track gives the solo excerpts of "other" (K=4 only has no other solo data).
    spec["mixtures"].remove("ikala:10161_chorus")
    (spec["valid"] if len(sources) == 2 else spec["unused"]).append("ikala:10161_chorus")
    if "other" in sources:
        spec["solo"]["vocals"].remove("medleydb:TheEastonEllises_Falcon69")
        spec["solo"]["other"] = ["medleydb:TheEastonEllises_Falcon69"]
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))

    out_dir = tmp_path / "shards"
    code, out, errors, err = run_cli(
        args + ["--split", str(spec_file), "--out", str(out_dir), "--examples-per-shard", "128"],
        capsys,
    )
    assert code == 0, err
    assert "Prepared" in out and "minutes of audio" in out
    manifest = json.loads((out_dir / MANIFEST).read_text())
    roles = manifest["roles"]
    assert set(roles) == {"train", "valid", "mixtures", *[f"solo/{s}" for s in sources]}
    assert all(info["examples"] > config.training.batch_size for info in roles.values())
    assert ("ikala:10161_chorus" in roles["valid"]["tracks"]) == (len(sources) == 2)
    assert not any("ikala:" in t for t in roles["mixtures"]["tracks"])
    origins = {t.split(":")[0] for info in roles.values() for t in info["tracks"]}
    assert origins >= {
        "dsd100",
        "musdb18hq",
        "musdb18",
        "medleydb",
        "ccmixter",
        "paired",
        "mixtures",
        "solo/vocals",
    }
    assert manifest["split"] == str(spec_file) and manifest["skipped"] == []
    fit_a_few_steps(config, out_dir)


# -- the split spec ------------------------------------------------------------------------------


@pytest.fixture()
def small_corpora(tmp_path):
    layouts.data()
    layouts.build_ccmixter(tmp_path / "ccmixter")
    layouts.build_paired_aliases(tmp_path / "mir1k")
    return [("ccmixter", str(tmp_path / "ccmixter")), ("paired", str(tmp_path / "mir1k"))]


@pytest.mark.parametrize(
    "spec, fragments",
    [
        (
            {"mixtures": ["ccmixter:Kenshin_4_10"], "solo": {"vocals": ["ccmixter:Kenshin_4_10"]}},
            ["ccmixter:Kenshin_4_10 feeds two unpaired pools (mixtures and solo/vocals)"],
        ),
        (
            {"valid": ["ccmixter:amy_6_11"], "mixtures": ["ccmixter:amy_6_11"]},
            ["ccmixter:amy_6_11 is in valid and feeds mixtures"],
        ),
        (
            {"test": ["paired:abjones_4_08"], "solo": {"accompaniment": ["paired:abjones_4_08"]}},
            ["paired:abjones_4_08 is in test and feeds solo/accompaniment"],
        ),
        (
            {"train": ["amy_16_04"], "valid": ["paired:amy_16_04"]},
            ["paired:amy_16_04 is in train and valid"],
        ),
        (
            {"mixtures": ["ccmixter:no_such_track"]},
            ["names track(s) that no --dataset has: ccmixter:no_such_track"],
        ),
        ({"solo": {"drums": ["ccmixter:Kenshin_4_10"]}}, ["solo/drums", "not a source"]),
    ],
    ids=[
        "two-pools",
        "valid-and-pool",
        "test-and-pool",
        "train-and-valid",
        "unknown-track",
        "unknown-source",
    ],
)
def test_split_rule_violations_name_the_tracks(small_corpora, tmp_path, capsys, spec, fragments):
    spec_file = tmp_path / "split.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    args = ["--config", "tiny", "--split", str(spec_file), "--out", str(tmp_path / "s")]
    code, out, errors, err = run_cli(
        args + [a for k, p in small_corpora for a in ("--dataset", f"{k}={p}")], capsys
    )
    assert code == 1 and len(errors) == 1, err
    assert str(spec_file) in errors[0]
    for fragment in fragments:
        assert fragment in errors[0]
    assert not (tmp_path / "s").exists()


def test_old_style_split_files_keep_their_meaning(small_corpora, tmp_path):
    config = load_config("tiny")
    # {train, valid, test} of bare track ids: the valid list replaces the default validation
    # track (amy_6_11 trains now), tracks not named keep their default roles.
    spec = tmp_path / "split.json"
    spec.write_text(json.dumps({"train": [], "valid": ["Kenshin_4_10"], "test": ["abjones_4_08"]}))
    manifest = prepare(
        config, small_corpora[1:], str(tmp_path / "s"), split_file=str(spec), progress=False
    )
    assert manifest["roles"]["valid"]["tracks"] == ["paired:Kenshin_4_10"]
    assert manifest["roles"]["train"]["tracks"] == ["paired:amy_16_04", "paired:amy_6_11"]
    assert manifest["test_tracks"] == ["paired:abjones_4_08"]


def test_a_written_default_split_reproduces_the_default_roles(small_corpora, tmp_path, capsys):
    config = load_config("tiny")
    default = prepare(config, small_corpora, str(tmp_path / "default"), progress=False)
    args = ["--config", "tiny"] + [a for k, p in small_corpora for a in ("--dataset", f"{k}={p}")]
    code, out, errors, err = run_cli(args + ["--write-split", str(tmp_path / "split.json")], capsys)
    assert code == 0 and "Edit it, then prepare with --split" in out, err
    explicit = prepare(
        config,
        small_corpora,
        str(tmp_path / "explicit"),
        split_file=str(tmp_path / "split.json"),
        progress=False,
    )
    assert shard_checksums(explicit) == shard_checksums(default)


# -- bad input -----------------------------------------------------------------------------------


def noise(seconds=2.0, rate=8192, channels=1, seed=0):
    return (
        0.1 * np.random.default_rng(seed).standard_normal((int(seconds * rate), channels))
    ).astype(np.float32)


def _write(path, data, rate=8192, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, rate, **kwargs)
    return path


def bad_mixture_folder(root, make_bad):
    """mixtures/good.wav plus mixtures/zz_bad.<ext> made by `make_bad(path)`; returns (dataset, bad
    file)."""
    _write(root / "good.wav", noise())
    bad = make_bad(root)
    return [("mixtures", str(root))], bad


def _truncated(root):
    path = _write(root / "zz_bad.wav", noise(seconds=3.0), subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _non_finite(value):
    def make(root):
        data = noise()
        data[1000:1010] = value
        return _write(root / "zz_bad.wav", data, subtype="FLOAT")

    return make


def _paired(root, vocals_seconds, accompaniment_seconds):
    for track, (v, a) in {
        "good": (2.0, 2.0),
        "zz_bad": (vocals_seconds, accompaniment_seconds),
    }.items():
        _write(root / track / "vocals.wav", noise(v, seed=1))
        if a:
            _write(root / track / "accompaniment.wav", noise(a, seed=2))
    return [("paired", str(root))]


def case_lengths(root):
    return _paired(root, 2.0, 1.0), root / "zz_bad" / "accompaniment.wav"


def case_missing_stem(root):
    return _paired(root, 2.0, None), root / "zz_bad" / "accompaniment.wav"


def case_ikala_mono(root):
    _write(root / "Wavfile" / "good.wav", noise(channels=2, rate=44100))
    bad = _write(root / "Wavfile" / "zz_bad.wav", noise(channels=1, rate=44100))
    return [("ikala", str(root))], bad


def case_medleydb_metadata(root):
    track = "Artist_Song"
    folder = root / "Audio" / track
    _write(folder / f"{track}_MIX.wav", noise(channels=2, rate=44100))
    _write(folder / f"{track}_STEMS" / f"{track}_STEM_01.wav", noise(channels=2, rate=44100))
    metadata = {
        "mix_filename": f"{track}_MIX.wav",
        "stem_dir": f"{track}_STEMS",
        "stems": {
            "S01": {"filename": f"{track}_STEM_01.wav", "instrument": "female singer"},
            "S02": {"filename": f"{track}_STEM_02.wav", "instrument": "drum set"},
        },
    }
    metadata_file = folder / f"{track}_METADATA.yaml"
    metadata_file.write_text(yaml.safe_dump(metadata))
    good = root / "Audio" / "Good_Song"
    _write(good / "Good_Song_MIX.wav", noise(channels=2, rate=44100))
    (good / "Good_Song_METADATA.yaml").write_text(yaml.safe_dump({"stems": {}}))
    return [("medleydb", str(root))], metadata_file


def _raw(name, content):
    def make(root):
        (root / name).write_bytes(content)
        return root / name

    return make


BAD_INPUTS = {
    "empty": (lambda root: bad_mixture_folder(root, _raw("zz_bad.wav", b"")), "empty"),
    "truncated": (lambda root: bad_mixture_folder(root, _truncated), "truncated"),
    "undecodable": (
        lambda root: bad_mixture_folder(root, _raw("zz_bad.ogg", b"OggS" + os.urandom(400))),
        "cannot decode",
    ),
    "nan": (lambda root: bad_mixture_folder(root, _non_finite(np.nan)), "NaN"),
    "inf": (lambda root: bad_mixture_folder(root, _non_finite(np.inf)), "infinite"),
    "lengths-differ": (case_lengths, "differ"),
    "missing-stem": (case_missing_stem, "missing stem 'accompaniment'"),
    "rate-too-low": (
        lambda root: bad_mixture_folder(
            root, lambda r: _write(r / "zz_bad.wav", noise(rate=4000), rate=4000)
        ),
        "sample rate 4000 Hz is too low",
    ),
    "six-channels": (
        lambda root: bad_mixture_folder(
            root, lambda r: _write(r / "zz_bad.wav", noise(channels=6))
        ),
        "has 6 channels",
    ),
    "ikala-mono": (case_ikala_mono, "has 1 channel(s)"),
    "metadata-names-absent-audio": (case_medleydb_metadata, "_STEM_02.wav"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_naming_the_file_or_is_skipped_and_listed(case, tmp_path, capsys):
    build, problem = BAD_INPUTS[case]
    datasets, bad = build(tmp_path / "data")
    args = ["--config", "tiny", "--no-progress", "--examples-per-shard", "16"]
    args += [a for kind, path in datasets for a in ("--dataset", f"{kind}={path}")]

    out_dir = tmp_path / "fail"
    code, out, errors, err = run_cli(args + ["--out", str(out_dir)], capsys)
    assert code == 1 and len(errors) == 1 and "Traceback" not in err, err
    assert str(bad) in errors[0] and problem in errors[0], errors[0]
    assert not (out_dir / MANIFEST).exists()
    assert not out_dir.exists() or not [n for n in os.listdir(out_dir) if n.endswith(".tmp")]
    with pytest.raises(AdvsepError):
        ShardSet.open(str(out_dir))

    out_dir = tmp_path / "skip"
    code, out, errors, err = run_cli(args + ["--out", str(out_dir), "--on-error", "skip"], capsys)
    assert code == 0, err
    assert "skipped 1 track(s)" in out and str(bad) in out and problem in out, out
    manifest = json.loads((out_dir / MANIFEST).read_text())
    assert len(manifest["skipped"]) == 1 and problem in manifest["skipped"][0]["reason"]
    assert manifest["skipped"][0]["file"] == str(bad)
    assert sum(info["examples"] for info in manifest["roles"].values()) > 0
    assert not [n for n in os.listdir(out_dir) if n.endswith(".tmp") or n == JOURNAL]
    ShardSet.open(str(out_dir), verify_checksums=True)


# -- resuming and workers -------------------------------------------------------------------------


def prepare_killed_at(point, corpus, out, *extra):
    """Run advsep-tf-prepare until it SIGKILLs itself at `point` (advsep_tf.files's
    ADVSEP_TF_KILL_AT: "replace:NAME" is just before NAME is renamed into place)."""
    command = prepare_command(corpus, out, "--no-progress", *extra)
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env={**os.environ, KILL_AT_ENV: point}
    )
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    assert not (out / MANIFEST).exists()
    with pytest.raises(AdvsepError, match="did not finish"):
        ShardSet.open(str(out))


def interim_names(manifest):
    """The shards' names before their role's count is known, in the order they are closed."""
    return [
        s["file"].rsplit("-of-", 1)[0]
        for info in manifest["roles"].values()
        for s in info["shards"]
    ]


def test_an_interrupted_prepare_resumes_to_the_same_shard_set(tiny_config, tiny_corpus, tmp_path):
    # The tiny corpus plus a broken first training track, skipped before the kill.
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    _write(corpus / "musdb18hq" / "train" / "aaa_broken" / "accompaniment.wav", noise(4.0))
    (corpus / "musdb18hq" / "train" / "aaa_broken" / "vocals.wav").write_bytes(b"")
    datasets = [("synthetic", str(corpus))]
    reference = prepare(
        tiny_config,
        datasets,
        str(tmp_path / "reference"),
        progress=False,
        examples_per_shard=8,
        on_error="skip",
    )
    assert [e["track"] for e in reference["skipped"]] == ["synthetic:aaa_broken"]

    # Killed with the 21st shard written but not yet renamed into place: 20 are closed and
    # journalled.
    order = interim_names(reference)
    assert len(order) > 21
    out = tmp_path / "shards"
    prepare_killed_at(
        f"replace:{order[20]}", corpus, out, "--examples-per-shard", "8", "--on-error", "skip"
    )
    journal = json.loads((out / JOURNAL).read_text())
    kept = {
        s["file"]: os.stat(out / s["file"]).st_mtime_ns
        for st in journal["roles"].values()
        for s in st["shards"]
    }
    assert sorted(kept) == sorted(order[:20])
    assert any(
        name.startswith(f".{order[20]}.") for name in os.listdir(out)
    )  # the killed run's temporary
    # A shard the journal vouches for but whose bytes changed is redone, with everything after it.
    last = sorted(kept)[-1]
    with open(out / last, "r+b") as f:
        f.seek(20)
        f.write(b"\x00\x01\x02\x03")
    (out / "train.tfrecord-00099.tmp").write_bytes(b"half-written")

    assert [e["track"] for st in journal["roles"].values() for e in st["skipped"]] == [
        "synthetic:aaa_broken"
    ]
    manifest = prepare(
        tiny_config, datasets, str(out), progress=False, examples_per_shard=8, on_error="skip"
    )
    assert manifest["resumed_shards"] == len(kept) - 1
    assert shard_checksums(manifest) == shard_checksums(reference)
    assert manifest["skipped"] == reference["skipped"]
    for role in ("train", "valid", "mixtures"):
        assert manifest["roles"][role]["tracks"] == reference["roles"][role]["tracks"]
        assert manifest["roles"][role]["seconds"] == reference["roles"][role]["seconds"]
    # The kept shards were not rewritten (same modification time under their final names).
    final_names = {
        s["file"].rsplit("-of-", 1)[0]: s["file"]
        for info in manifest["roles"].values()
        for s in info["shards"]
    }
    for name, mtime in kept.items():
        if name != last:
            assert os.stat(out / final_names[name]).st_mtime_ns == mtime
    listed = {s["file"] for info in manifest["roles"].values() for s in info["shards"]}
    assert listed == set(os.listdir(out)) - {MANIFEST}
    ShardSet.open(str(out), expected=tiny_config, verify_checksums=True)


def test_a_prepare_killed_before_its_manifest_keeps_every_shard(
    tiny_config, tiny_corpus, tiny_shards, tmp_path
):
    """Killed after the shards got their final names, before manifest.json: the rerun renames them
    back, keeps them all (checked by sha256) and writes the same shard set."""
    out = tmp_path / "shards"
    prepare_killed_at(f"replace:{MANIFEST}", tiny_corpus, out, "--examples-per-shard", "64")
    finished = {name for name in os.listdir(out) if "-of-" in name}
    assert finished and (out / JOURNAL).exists()
    manifest = prepare_synthetic(tiny_config, tiny_corpus, out, examples_per_shard=64)
    assert manifest["resumed_shards"] == len(finished)
    assert {s["file"] for info in manifest["roles"].values() for s in info["shards"]} == finished
    assert shard_checksums(manifest) == shard_checksums(
        json.loads((tiny_shards / MANIFEST).read_text())
    )
    ShardSet.open(str(out), expected=tiny_config, verify_checksums=True)


def test_workers_do_not_change_the_shards(tiny_config, tiny_corpus, tmp_path, capsys):
    one = prepare_synthetic(tiny_config, tiny_corpus, tmp_path / "one", examples_per_shard=32)
    code, out, errors, err = run_cli(
        prepare_argv(tiny_corpus, tmp_path / "two", "--examples-per-shard", "32", "--workers", "2"),
        capsys,
    )
    assert code == 0, err
    # The progress bar counts tracks and shows patches, their rate and the audio done.
    assert "track" in err and "patches" in err and "min audio" in err
    two = json.loads((tmp_path / "two" / MANIFEST).read_text())
    assert shard_checksums(two) == shard_checksums(one)
