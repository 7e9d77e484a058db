"""No command deletes or replaces a file it did not create (issue 9): every case is checked against
a tree of the user's files, whose checksums must be the same afterwards, not only by exit codes.
The kill cases kill at a deterministic point (ADVSEP_TF_KILL_AT, see advsep_tf.files)."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from advsep_tf.cli import common
from advsep_tf.cli import demo, evaluate, experiment, export, prepare, separate, train
from advsep_tf.files import KILL_AT_ENV

from pipeline_steps import evaluate_argv


def checksums(root) -> dict[str, str]:
    """{path relative to root: sha256} of every file under `root`."""
    sums = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                sums[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return sums


def leftovers(root) -> list[str]:
    """Temporaries (.NAME.PID.TOKEN.tmp / .old) anywhere under `root`."""
    from advsep_tf.files import _LEFTOVER

    return sorted(
        os.path.relpath(os.path.join(folder, n), root)
        for folder, dirs, files in os.walk(root)
        for n in dirs + files
        if _LEFTOVER.match(n)
    )


def changed(before: dict[str, str], root) -> list[str]:
    after = checksums(root)
    return sorted(path for path, digest in before.items() if after.get(path) != digest)


def assert_intact(before: dict[str, str], root) -> None:
    assert not changed(before, root), f"user files changed or removed: {changed(before, root)}"
    assert not leftovers(root), leftovers(root)


def run_cli(module, argv, capsys) -> tuple[int, str]:
    """(exit code, stderr) of a command run in this process; bad usage is argparse's exit 2."""
    try:
        code = common.run(module.main, argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith(("error:", "advsep-tf-"))]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def write_song(path, seconds=1.0, rate=8192, channels=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    song = np.stack([0.3 * np.sin(2 * np.pi * 330 * t)] * channels, 1).astype(np.float32)
    sf.write(path, song, rate, subtype="FLOAT")
    return path


def script(module: str, *argv, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """The current directory of a user, with their files in it."""
    home = tmp_path / "home"
    (home / "photos").mkdir(parents=True)
    (home / "notes.txt").write_text("my notes\n")
    (home / "photos" / "cat.jpg").write_bytes(os.urandom(2000))
    monkeypatch.chdir(home)
    return home


# -- 1 and 2: export never replaces what it did not create
# -------------------------------------------


@pytest.mark.parametrize("out", [".", ".."])
@pytest.mark.parametrize("overwrite", [False, True])
def test_export_to_the_current_directory_or_its_parent_deletes_nothing(
    tiny_run, home, capsys, out, overwrite
):
    before = checksums(home.parent)
    argv = ["--model", str(tiny_run), "--format", "saved_model", "--out", out] + [
        "--overwrite"
    ] * overwrite
    code, err = run_cli(export, argv, capsys)
    assert code == 1 and "current directory" in error_line(err), err
    assert_intact(before, home.parent)


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("target", ["photos", "run"])
def test_export_never_replaces_a_folder_that_is_not_an_earlier_export(
    tiny_run, home, capsys, overwrite, target
):
    shutil.copytree(tiny_run, home / "run")
    before = checksums(home)
    argv = ["--model", "run", "--out", target] + ["--overwrite"] * overwrite
    code, err = run_cli(export, argv, capsys)
    line = error_line(err)
    assert code == 1 and target in line, err
    assert (
        "the model being exported"
        if target == "run"
        else "not an earlier"
        if overwrite
        else "--overwrite"
    ) in line
    assert_intact(before, home)


def test_export_overwrite_replaces_an_earlier_export_and_nothing_else(tiny_run, home, capsys):
    from advsep_tf.saved_model_reader import is_saved_model_export

    out = home / "serving" / "advsep" / "1"
    assert run_cli(export, ["--model", str(tiny_run), "--out", str(out)], capsys)[0] == 0
    (home / "serving" / "advsep" / "README").write_text("the serving folder's own notes\n")
    before = checksums(home)
    code, err = run_cli(export, ["--model", str(tiny_run), "--out", str(out)], capsys)
    assert code == 1 and "--overwrite" in error_line(err)
    assert_intact(before, home)

    assert (
        run_cli(export, ["--model", str(tiny_run), "--out", str(out), "--overwrite"], capsys)[0]
        == 0
    )
    assert is_saved_model_export(str(out))
    outside = {
        path: digest for path, digest in before.items() if not path.startswith("serving/advsep/1/")
    }
    assert_intact(outside, home)


# -- 3: colliding output names
# -----------------------------------------------------------------------


def test_separate_refuses_inputs_whose_stems_would_collide_before_any_work(tiny_run, home, capsys):
    first, second = (
        write_song(home / "a" / "song.wav"),
        write_song(home / "b" / "song.wav", seconds=1.5),
    )
    before = checksums(home)
    code, err = run_cli(
        separate, [str(first), str(second), "--model", str(tiny_run), "--out", "sep"], capsys
    )
    line = error_line(err)
    assert code == 1 and str(first) in line and str(second) in line and "sep/song/" in line, err
    assert not (home / "sep").exists()  # refused before the first song was separated
    assert_intact(before, home)


# -- 4: model.keras and checkpoints: atomic, verified, with a fall-back
# --------------------------------


def test_a_run_killed_while_saving_its_model_leaves_none_and_resumes_to_a_verified_one(
    tiny_shards, home, capsys
):
    run_dir = home / "runs" / "va"
    before = checksums(home)
    argv = ["--config", "tiny", "--shards", tiny_shards, "--out", run_dir, "--steps", "2"]
    killed = script("advsep_tf.cli.train", *argv, env={KILL_AT_ENV: "replace:model.keras"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    # Killed with the new model complete under its temporary name, before the rename: no
    # model.keras at all, rather than an empty one.
    assert not (run_dir / "model.keras").exists()
    assert [n for n in os.listdir(run_dir) if n.startswith(".model.keras.")], os.listdir(run_dir)
    assert not changed(before, home)

    code = common.run(train.main, [*map(str, argv), "--resume"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"model in {run_dir}/model.keras" in out
    from advsep_tf.runs import model_file_problem

    assert model_file_problem(str(run_dir / "model.keras")) is None
    assert not leftovers(run_dir)
    assert_intact(before, home)


@pytest.fixture()
def three_epochs(tiny_shards, tmp_path):
    """A run of three one-step epochs, all three checkpoints kept, and its config file."""
    from advsep_tf.config import load_config
    from advsep_tf.train import train as train_run

    config = load_config("tiny").replace(
        training={"steps_per_epoch": 1, "patience": 100, "checkpoints_kept": 3}
    )
    config_file = tmp_path / "config.json"
    config.save(str(config_file))
    run_dir = tmp_path / "run"
    train_run(config, str(tiny_shards), str(run_dir), steps=3, verbose=0)
    assert sorted(os.listdir(run_dir / "checkpoints"))[:3] == [
        f"epoch-0000{i}.weights.h5" for i in (1, 2, 3)
    ]
    return run_dir, config_file


def test_resume_falls_back_to_the_newest_intact_checkpoint_and_replaces_a_broken_model(
    three_epochs, tiny_shards, tmp_path, capsys
):
    from advsep_tf.runs import model_file_problem

    run_dir, config_file = three_epochs
    latest = run_dir / "checkpoints" / "epoch-00003.weights.h5"
    latest.write_bytes(latest.read_bytes()[:1000])  # damaged
    (run_dir / "model.keras").write_bytes(b"")  # what an in-place save killed midway left
    argv = [
        "--config",
        str(config_file),
        "--shards",
        str(tiny_shards),
        "--out",
        str(run_dir),
        "--steps",
        "4",
        "--resume",
    ]
    code, err = run_cli(train, argv, capsys)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert any(
        str(latest) in w and "resuming from epoch-00002.weights.h5 (epoch 2)" in w for w in warnings
    ), err
    assert any(str(run_dir / "model.keras") in w for w in warnings), err
    state = json.loads((run_dir / "checkpoints" / "state.json").read_text())
    # Two epochs redone from epoch 2's step counter: the damaged epoch 3 was not used.
    assert state["epoch"] == 4 and state["separator_steps"] == 4
    assert model_file_problem(str(run_dir / "model.keras")) is None

    for name in os.listdir(run_dir / "checkpoints"):
        if name.endswith(".weights.h5"):
            (run_dir / "checkpoints" / name).write_bytes(b"junk")
    # run.json, the log of invocations, records this one too; nothing else changes.
    before = {path: digest for path, digest in checksums(run_dir).items() if path != "run.json"}
    code, err = run_cli(train, argv[:-2] + ["6", "--resume"], capsys)
    assert code == 1 and "no intact older checkpoint" in error_line(err), err
    assert_intact(before, run_dir)


# -- 5: inputs checked before any work; bad usage exits 2
# ---------------------------------------------


@pytest.fixture()
def no_separation(monkeypatch):
    """Fails the test if a song is separated: the checks must come first."""
    from advsep_tf.separate import Separator

    def refuse(*args, **kwargs):
        raise AssertionError("a song was separated before the inputs were checked")

    monkeypatch.setattr(Separator, "separate", refuse)


@pytest.mark.parametrize("case", ["1 sample", "2 samples", "a folder", "out is a file"])
def test_bad_inputs_and_outputs_are_named_in_one_line_before_any_separation(
    tiny_run, home, capsys, no_separation, case
):
    song = write_song(home / "song.wav")
    tiny = home / "click.wav"
    sf.write(tiny, np.full((int(case[0]) if case[0].isdigit() else 1, 2), 0.1, np.float32), 44100)
    (home / "stems.txt").write_text("not a folder\n")
    inputs, out, named, problem = {
        "1 sample": ([tiny], "sep", tiny, "too short to separate: 1 sample(s) at 44100 Hz"),
        "2 samples": ([tiny], "sep", tiny, "too short to separate: 2 sample(s) at 44100 Hz"),
        "a folder": ([home / "photos"], "sep", home / "photos", "is a folder"),
        "out is a file": ([song], "stems.txt", "stems.txt", "exists and is a file"),
    }[case]
    before = checksums(home)
    code, err = run_cli(
        separate,
        [*map(str, inputs), "--model", str(tiny_run), "--out", out, "--no-progress"],
        capsys,
    )
    line = error_line(err)
    assert code == 1 and line.startswith(f"error: {named}: ") and problem in line, err
    assert not (home / "sep").exists()
    assert_intact(before, home)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_out_is_named_before_any_separation(tiny_run, home, capsys, no_separation):
    song = write_song(home / "song.wav")
    locked = home / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, err = run_cli(
            separate, [str(song), "--model", str(tiny_run), "--out", str(locked / "sep")], capsys
        )
    finally:
        locked.chmod(0o700)
    assert code == 1 and "not writable" in error_line(err)


def test_an_unknown_dataset_kind_is_bad_usage(home, capsys):
    before = checksums(home)
    code, err = run_cli(
        prepare, ["--config", "tiny", "--dataset", f"karaoke={home}", "--out", "shards"], capsys
    )
    assert code == 2 and "unknown dataset kind 'karaoke'" in error_line(err), err
    assert not (home / "shards").exists()
    assert_intact(before, home)


# -- 6: a killed export leaves its temporaries where the next export removes them
# ------------------------


def test_a_killed_litert_export_leaves_the_destination_as_it_was_and_the_next_one_cleans_up(
    tiny_run, home, tmp_path, capsys
):
    system_tmp = tmp_path / "system_tmp"
    system_tmp.mkdir()
    (home / "models").mkdir()
    (home / "models" / "other.tflite").write_bytes(b"someone else's model")
    before = checksums(home)
    out = home / "models" / "advsep.tflite"
    killed = script(
        "advsep_tf.cli.export",
        "--model",
        tiny_run,
        "--format",
        "litert",
        "--out",
        out,
        env={KILL_AT_ENV: "replace:advsep.tflite", "TMPDIR": str(system_tmp)},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not out.exists()
    assert not [n for n in os.listdir(system_tmp) if n.startswith("advsep")], os.listdir(system_tmp)
    # What it left is beside the destination, under names the next export there recognises.
    left = leftovers(home)
    assert left and all(os.path.basename(p).startswith(".advsep.tflite.") for p in left), left
    assert not changed(before, home)

    assert (
        run_cli(
            export, ["--model", str(tiny_run), "--format", "litert", "--out", str(out)], capsys
        )[0]
        == 0
    )
    assert out.is_file()
    assert_intact(before, home)


@pytest.mark.parametrize("exchange", [True, False])
def test_a_folder_replacement_killed_between_its_renames_leaves_one_export_or_is_put_back(
    tmp_path, exchange
):
    from advsep_tf import files
    from advsep_tf.files import remove_stale_temporaries

    probe_a, probe_b = tmp_path / "a", tmp_path / "b"
    probe_a.mkdir(), probe_b.mkdir()
    if exchange and not files._exchange(str(probe_a), str(probe_b)):
        pytest.skip("this system or file system cannot swap two paths in one step")
    out = tmp_path / "export"
    out.mkdir()
    (out / "saved_model.pb").write_bytes(b"the earlier export")
    before = checksums(tmp_path)
    replace = (
        "import os, sys\n"
        "from advsep_tf import files\n"
        + ("" if exchange else "files._exchange = lambda first, second: False\n")
        + "with files.atomic_output(sys.argv[1], directory=True, overwrite=True) as tmp:\n"
        "    os.makedirs(tmp)\n"
        "    open(os.path.join(tmp, 'saved_model.pb'), 'wb').write(b'the new export')\n"
    )
    killed = subprocess.run(
        [sys.executable, "-c", replace, str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, KILL_AT_ENV: "swap:export"},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    remove_stale_temporaries(str(tmp_path), "export")
    assert not leftovers(tmp_path)
    if exchange:  # swapped in one step: the new export in place, never a moment without one
        assert (out / "saved_model.pb").read_bytes() == b"the new export"
    else:  # moved aside, the new one not yet in place: the next run puts the old one back
        assert_intact(before, tmp_path)
        assert sorted(checksums(tmp_path)) == sorted(before)


# -- every command's output options against a tree of the user's files
# ---------------------------------


@pytest.fixture()
def user_tree(home, tiny_run, tiny_corpus, tiny_shards):
    """The user's current directory: other files, a folder of theirs, inputs, and a trained run."""
    (home / "existing" / "sub").mkdir(parents=True)
    (home / "existing" / "a.txt").write_text("a\n")
    (home / "existing" / "sub" / "b.txt").write_text("b\n")
    (home / "existing" / "results.json").write_text('{"mine": true}\n')
    (home / "existing" / "song").mkdir()
    (home / "existing" / "song" / "vocals.wav").write_bytes(b"someone's vocals")
    data = home / "data"
    write_song(data / "song.wav")
    rng = np.random.default_rng(0)
    for folder in ("refs", "ests"):
        for source in ("vocals", "accompaniment"):
            (data / folder / "t1").mkdir(parents=True, exist_ok=True)
            sf.write(
                data / folder / "t1" / f"{source}.wav",
                0.1 * rng.standard_normal((8192, 1)),
                8192,
                subtype="FLOAT",
            )
    shutil.copytree(tiny_corpus, data / "corpus")
    shutil.copytree(tiny_shards, data / "shards")
    shutil.copytree(tiny_run, home / "run")
    return home


def _and_with_overwrite(name, module, argv, input_folder, writes_a_file):
    """The command as given, then the same with --overwrite."""
    return [
        (name, module, argv, input_folder, writes_a_file),
        (
            f"{name} --overwrite",
            module,
            lambda t: [*argv(t), "--overwrite"],
            input_folder,
            writes_a_file,
        ),
    ]


def _commands():
    """(name, module, argv for an output target, the command's input folder, option is a file)."""
    tiny_on_corpus = ["--config", "tiny", "--dataset", "synthetic=data/corpus"]
    return [
        *_and_with_overwrite(
            "prepare",
            prepare,
            lambda t: [*tiny_on_corpus, "--out", t, "--no-progress"],
            "data/corpus",
            False,
        ),
        (
            "prepare --write-split",
            prepare,
            lambda t: [*tiny_on_corpus, "--write-split", t, "--overwrite"],
            "data/corpus",
            True,
        ),
        (
            "train",
            train,
            lambda t: ["--config", "tiny", "--shards", "data/shards", "--out", t, "--steps", "1"],
            "data/shards",
            False,
        ),
        (
            "separate",
            separate,
            lambda t: ["data/song.wav", "--model", "run", "--out", t, "--no-progress"],
            "data",
            False,
        ),
        (
            "evaluate",
            evaluate,
            lambda t: evaluate_argv("data/ests", "data/refs", t, "--no-progress"),
            "data/ests",
            False,
        ),
        *_and_with_overwrite(
            "export", export, lambda t: ["--model", "run", "--out", t], "run", False
        ),
        *_and_with_overwrite(
            "export litert",
            export,
            lambda t: ["--model", "run", "--format", "litert", "--out", t],
            "run",
            True,
        ),
        (
            "demo",
            demo,
            lambda t: ["--out", t, "--quick", "--config", "tiny", "--no-progress"],
            "data",
            False,
        ),
        (
            "experiment",
            experiment,
            lambda t: ["--out", t, "--config", "tiny", "--steps", "1", "--no-progress"],
            "data",
            False,
        ),
    ]


# The user's file in each target folder that a command writing a file is pointed at.
FILE_IN = {
    ".": "notes.txt",
    "existing": "existing/a.txt",
    "data": "data/song.wav",
    "data/corpus": "data/corpus/corpus.json",
    "data/shards": "data/shards/manifest.json",
    "data/ests": "data/ests/t1/vocals.wav",
    "run": "run/model.keras",
}
# Where a command writes and succeeds: new files beside the user's, none replaced. Everything
# else is refused (exit 1, the path named; 2 for --out inside evaluate's --estimates).
SUCCEEDS = {
    ("separate", "."),
    ("separate", "data"),
    ("separate", "run"),
    ("evaluate", "."),
    ("evaluate", "run"),
}


def test_no_command_changes_a_user_file_through_any_output_option(user_tree, capsys):
    outcomes = {}
    for name, module, argv, input_folder, writes_a_file in _commands():
        for target in dict.fromkeys((".", "existing", input_folder, "run")):
            out = FILE_IN[target] if writes_a_file else target
            before = checksums(user_tree)
            code, err = run_cli(module, argv(out), capsys)
            outcomes[(name, target)] = code
            assert_intact(before, user_tree)
            if code == 1:  # bad input: one line naming the path (or a file under it)
                named = error_line(err).removeprefix("error: ").split(": ", 1)[0]
                assert not os.path.relpath(named, out).startswith(".."), (name, target, err)
            elif code == 2:  # bad usage
                assert f"--out {out} " in error_line(err), (name, target, err)
    refused = {key: code for key, code in outcomes.items() if key not in SUCCEEDS}
    assert {key: outcomes[key] for key in SUCCEEDS} == dict.fromkeys(SUCCEEDS, 0)
    assert set(refused.values()) <= {1, 2} and refused[("evaluate", "data/ests")] == 2, refused
    assert [key for key, code in refused.items() if code == 2] == [("evaluate", "data/ests")], (
        refused
    )


# -- issue 22: truncated input, bad option values, --overwrite's promise, stdin, long names ----


def _encoded_songs(folder):
    """{extension: path} of one short stereo song in each format (m4a with its index first, as
    streaming encoders write it, so that a cut file still decodes up to the cut)."""
    folder.mkdir(parents=True, exist_ok=True)
    wav = folder / "song.wav"
    rate = 44100
    t = np.arange(rate) / rate
    rng = np.random.default_rng(3)
    song = np.stack([0.3 * np.sin(2 * np.pi * 330 * t), 0.2 * np.sin(2 * np.pi * 440 * t)], 1)
    song = (song + 0.01 * rng.standard_normal(song.shape)).astype(np.float32)
    sf.write(wav, song, rate, subtype="PCM_16")
    songs = {"wav": wav}
    for ext, flags in (("mp3", []), ("flac", []), ("m4a", ["-movflags", "+faststart"])):
        songs[ext] = folder / f"song.{ext}"
        command = [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-i",
            str(wav),
            *flags,
            str(songs[ext]),
        ]
        subprocess.run(command, check=True)
    return songs


@pytest.fixture(scope="module")
def encoded_songs(tmp_path_factory):
    return _encoded_songs(tmp_path_factory.mktemp("encoded"))


@pytest.mark.parametrize("ext", ["mp3", "m4a", "flac", "wav"])
@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.9])
def test_a_truncated_file_never_yields_samples_the_decoder_did_not_produce(
    encoded_songs, tmp_path, ext, fraction
):
    from advsep_tf.data_pipelines.audio import AudioAdapter, TruncatedAudioError

    adapter = AudioAdapter.default()
    whole = np.concatenate(list(adapter.read_blocks(encoded_songs[ext], block_samples=4096)))
    cut = tmp_path / f"cut.{ext}"
    data = encoded_songs[ext].read_bytes()
    cut.write_bytes(data[: int(len(data) * fraction)])

    stopped = f"{cut}: .*decoding stopped at sample"
    with pytest.raises(TruncatedAudioError, match=stopped) as loaded:
        adapter.load(cut)
    with pytest.raises(TruncatedAudioError, match=stopped) as streamed:
        list(adapter.read_blocks(cut, block_samples=4096))
    assert max(streamed.value.nb_decoded, loaded.value.nb_decoded) < len(whole)

    blocks = adapter.read_blocks(cut, block_samples=4096, allow_truncated=True)
    decoded = np.concatenate(list(blocks))
    assert blocks.truncated and f"decoding stopped at sample {len(decoded)}" in blocks.truncated
    # Exactly what the decoder produced: the whole file's first samples, nothing after them.
    assert len(decoded) == streamed.value.nb_decoded
    np.testing.assert_array_equal(decoded, whole[: len(decoded)])


def test_a_truncated_mp3_is_refused_by_separate_and_separated_only_as_far_as_it_decodes(
    tiny_run, encoded_songs, home, capsys
):
    data = encoded_songs["mp3"].read_bytes()
    cut = home / "cut.mp3"
    cut.write_bytes(data[: len(data) // 2])
    argv = [str(cut), "--model", str(tiny_run), "--out", "sep", "--no-progress"]
    code, err = run_cli(separate, argv, capsys)
    stopped = f"{cut}: file is truncated or damaged: decoding stopped at sample"
    assert code == 1 and stopped in error_line(err), err
    assert not (home / "sep").exists()  # the folders it made are gone with the failure

    from advsep_tf.data_pipelines.audio import AudioAdapter, TruncatedAudioError

    with pytest.raises(TruncatedAudioError) as truncated:
        AudioAdapter.default().load(cut)
    code = common.run(separate.main, argv + ["--allow-truncated"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"truncated input: {cut}: file is truncated" in out
    for source in ("vocals", "accompaniment"):
        stem, rate = sf.read(home / "sep" / "cut" / f"{source}.wav")
        assert rate == 44100 and len(stem) == truncated.value.nb_decoded


def test_a_truncated_wav_found_while_streaming_leaves_no_empty_out_folder(tiny_run, home, capsys):
    song = write_song(home / "song.wav", seconds=2.0)
    song.write_bytes(song.read_bytes()[:-4000])
    before = checksums(home)
    argv = [str(song), "--model", str(tiny_run), "--out", "new/sep", "--no-progress"]
    code, err = run_cli(separate, argv, capsys)
    assert code == 1 and "decoding stopped at sample" in error_line(err), err
    assert not (home / "new").exists()
    assert_intact(before, home)


def _bad_usages(tiny_run):
    """(command, argv, what the error line names) of command-line values wrong on their face."""
    model = ["--model", str(tiny_run)]
    sep = ["song.wav", *model, "--out", "sep"]
    fit = ["--config", "tiny", "--shards", "shards", "--out", "run"]
    evaluate_args = ["--estimates", "ests", "--references", "refs", "--out", "res"]
    export_args = [*model, "--format", "litert", "--out", "m.tflite"]
    prepare_args = ["--config", "tiny", "--dataset", "synthetic=corpus", "--out", "shards"]
    cases = [
        (separate, [*sep, "--mask-power", v], "--mask-power")
        for v in ("-1", "nan", "inf", "0", "x", "1e9")
    ]
    cases += [
        (separate, [*sep, "--chunk-patches", v], "--chunk-patches") for v in ("0", "-3", "1.5")
    ]
    cases += [
        (separate, ["-", *model, "--out", "-", "--stem", "drums"], "--stem drums"),
        (separate, [*sep, "--name", "x"], "--name"),
        (separate, ["-", *model, "--out", "sep", "--name", "a/b"], "--name"),
        (prepare, [*prepare_args, "--examples-per-shard", "0"], "--examples-per-shard"),
        (prepare, [*prepare_args, "--workers", "-1"], "--workers"),
        (prepare, ["--config", "nosuch", *prepare_args[2:]], "unknown preset 'nosuch'"),
        (train, ["--config", "nosuch", *fit[2:]], "unknown preset 'nosuch'"),
        (train, [*fit, "--critics", "drums"], "--critics"),
        (train, [*fit, "--steps", "0"], "--steps"),
        (train, [*fit, "--steps", "nan"], "--steps"),
        (train, [*fit, "--remix-probability", "nan"], "--remix-probability"),
        (train, [*fit, "--remix-probability", "1.5"], "--remix-probability"),
        (train, [*fit, "--seed", "-1"], "--seed"),
        (evaluate, [*evaluate_args, "--excerpt-seconds", "inf"], "--excerpt-seconds"),
        (evaluate, [*evaluate_args, "--excerpt-seconds", "nan"], "--excerpt-seconds"),
        (export, [*export_args, "--segment-seconds", "nan"], "--segment-seconds"),
        (export, [*export_args, "--segment-seconds", "0"], "--segment-seconds"),
        (export, [*model, "--out", "m", "--config", "nosuch"], "unknown preset 'nosuch'"),
        (experiment, ["--out", "exp", "--test-rate", "0"], "--test-rate"),
        (experiment, ["--out", "exp", "--warm-start-steps", "inf"], "--warm-start-steps"),
        (experiment, ["--out", "exp", "--seeds", "1,-2"], "--seeds"),
        (experiment, ["--out", "exp", "--config", "nosuch"], "unknown preset 'nosuch'"),
        (demo, ["--out", "d", "--config", "nosuch"], "unknown preset 'nosuch'"),
    ]
    return cases


def test_every_command_exits_2_for_a_value_wrong_on_its_face_and_writes_nothing(
    tiny_run, home, capsys
):
    write_song(home / "song.wav")
    before = checksums(home)
    wrong = []
    for module, argv, named in _bad_usages(tiny_run):
        code, err = run_cli(module, argv, capsys)
        if code != 2 or named not in error_line(err):
            wrong.append((module.__name__, argv, code, err.strip().splitlines()[-1:]))
    assert not wrong, wrong
    assert_intact(before, home)
    assert sorted(os.listdir(home)) == ["notes.txt", "photos", "song.wav"]


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("spectrogram.n_fft", "big", "spectrogram.n_fft must be an integer, got 'big'"),
        (
            "optimizer.learning_rate",
            float("nan"),
            "optimizer.learning_rate must be a finite number",
        ),
        ("training.critics", "vocals", "training.critics must be a list of strings"),
        ("training.steps_per_epoch", 0, "training.steps_per_epoch must be >= 1"),
    ],
)
def test_a_config_file_field_of_the_wrong_type_is_named_by_its_dotted_name(
    tiny_shards, home, capsys, field, value, expected
):
    from advsep_tf.config import load_config

    config = load_config("tiny").to_dict()
    section, name = field.split(".")
    config[section][name] = value
    (home / "bad.json").write_text(json.dumps(config))
    argv = ["--config", "bad.json", "--shards", str(tiny_shards), "--out", "run"]
    code, err = run_cli(train, argv, capsys)
    line = error_line(err)
    assert code == 1 and line.startswith("error: bad.json: ") and expected in line, err
    assert not (home / "run").exists()


def test_separate_overwrite_replaces_only_the_stems_of_an_earlier_separation(
    tiny_run, home, capsys
):
    song = write_song(home / "song.wav")
    (home / "sep" / "song").mkdir(parents=True)
    (home / "sep" / "song" / "vocals.wav").write_bytes(b"someone's file")
    before = checksums(home)
    argv = [str(song), "--model", str(tiny_run), "--out", "sep", "--no-progress"]
    for extra in ([], ["--overwrite"]):
        code, err = run_cli(separate, argv + extra, capsys)
        assert code == 1 and error_line(err).startswith("error: sep/song/vocals.wav: exists"), err
        assert_intact(before, home)

    mine = [str(song), "--model", str(tiny_run), "--out", "mine", "--no-progress"]
    assert run_cli(separate, mine, capsys)[0] == 0
    code, err = run_cli(separate, mine, capsys)
    assert code == 1 and "--overwrite" in error_line(err)
    assert run_cli(separate, mine + ["--overwrite"], capsys)[0] == 0


def test_evaluate_overwrite_never_replaces_results_files_it_did_not_write(home, capsys):
    rng = np.random.default_rng(0)
    for folder in ("refs", "ests"):
        for source in ("vocals", "accompaniment"):
            (home / folder / "t1").mkdir(parents=True, exist_ok=True)
            noise = 0.1 * rng.standard_normal((8192, 1))
            sf.write(home / folder / "t1" / f"{source}.wav", noise, 8192, subtype="FLOAT")
    mine = home / "mine"
    mine.mkdir()
    for name in ("results.json", "results.csv", "report.html"):
        (mine / name).write_text(f"my own {name}\n")
    before = checksums(home)
    argv = ["--estimates", "ests", "--references", "refs", "--no-progress", "--out"]
    code, err = run_cli(evaluate, [*argv, "mine", "--overwrite"], capsys)
    line = error_line(err)
    assert code == 1 and line.startswith("error: mine/") and "even with --overwrite" in line, err
    assert_intact(before, home)

    assert run_cli(evaluate, [*argv, "results"], capsys)[0] == 0
    assert run_cli(evaluate, [*argv, "results"], capsys)[0] == 1
    assert run_cli(evaluate, [*argv, "results", "--overwrite"], capsys)[0] == 0
    assert_intact(before, home)


@pytest.mark.parametrize("name", [None, "my song"])
def test_standard_input_separates_into_a_folder(tiny_run, home, name):
    song = write_song(home / "song.wav", seconds=1.5)
    argv = ["-", "--model", tiny_run, "--out", "sep", "--no-progress"]
    argv += ["--name", name] if name else []
    command = [sys.executable, "-m", "advsep_tf.cli.separate", *map(str, argv)]
    with open(song, "rb") as stdin:
        result = subprocess.run(command, stdin=stdin, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    for source in ("vocals", "accompaniment"):
        stem = home / "sep" / (name or "stdin") / f"{source}.wav"
        assert sf.info(stem).frames == sf.info(song).frames


def test_any_name_the_file_system_accepts_is_written_atomically(tmp_path):
    from advsep_tf.files import (
        atomic_output,
        remove_stale_temporaries,
        temporary_path,
        write_atomically,
    )

    for length in (200, 240, 255):
        path = tmp_path / ("n" * (length - 5) + ".json")
        assert len(os.path.basename(temporary_path(str(path)))) <= 255
        write_atomically(path, "{}")
        assert path.read_text() == "{}"
    folder = tmp_path / ("e" * 250)
    for content in (b"old", b"new"):
        with atomic_output(str(folder), directory=True, overwrite=True) as tmp:
            os.makedirs(tmp)
            (Path(tmp) / "saved_model.pb").write_bytes(content)
    assert (folder / "saved_model.pb").read_bytes() == b"new"
    # A killed writer's temporary of a long name is recognised by the next write of that name.
    leftover = Path(temporary_path(str(folder)).replace(f".{os.getpid()}.", ".999999999."))
    leftover.mkdir()
    assert remove_stale_temporaries(str(tmp_path), folder.name) == [str(leftover)]
    assert not leftovers(tmp_path)


def test_export_to_a_long_folder_name(tiny_run, tmp_path, capsys):
    out = tmp_path / ("v" * 250)
    code, err = run_cli(export, ["--model", str(tiny_run), "--out", str(out)], capsys)
    assert code == 0, err
    assert (out / "saved_model.pb").is_file() and not leftovers(tmp_path)


def test_a_damaged_model_file_is_called_damaged(tiny_run, home, capsys):
    song = write_song(home / "song.wav")
    model = home / "model.keras"
    original = (tiny_run / "model.keras").read_bytes()
    model.write_bytes(original[: len(original) // 2])
    argv = [str(song), "--model", str(model), "--out", "sep", "--no-progress"]
    code, err = run_cli(separate, argv, capsys)
    line = error_line(err)
    assert code == 1 and f"{model}: damaged model file" in line, err
    assert "not found" not in line.lower(), err
