"""Every front end: --help, bad usage (exit 2), and bad input (exit 1, one line naming the file);
the options they share, defined once."""

import configparser
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from advsep_tf.cli import common, options
from advsep_tf.cli import demo, evaluate, export, prepare, separate, train


def console_scripts() -> dict[str, str]:
    """{script name: "module:function"} as setup.cfg declares them: a new command is tested here
    as soon as it is declared."""
    setup_cfg = configparser.ConfigParser()
    setup_cfg.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    lines = setup_cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=")) for line in lines)


COMMANDS = console_scripts()


def run_cli(module, argv, capsys):
    code = common.run(module.main, argv)
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.startswith("error:")], err


def assert_clear_error(module, argv, capsys, *fragments, exit_code=1):
    code, errors, err = run_cli(module, argv, capsys)
    assert code == exit_code, err
    assert len(errors) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert str(fragment) in errors[0], errors[0]
    return errors[0]


def test_every_command_module_is_declared_as_a_console_script():
    modules = {p.stem for p in Path(common.__file__).parent.glob("*.py")} - {
        "__init__",
        "common",
        "options",
    }
    assert {target.split(":")[0] for target in COMMANDS.values()} == {
        f"advsep_tf.cli.{m}" for m in modules
    }
    assert "advsep-tf-experiment" in COMMANDS
    for name, target in COMMANDS.items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_console_scripts_print_help_and_reject_bad_usage(name):
    script = shutil.which(
        name, path=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    )
    assert script, f"{name} is not installed (pip install -e . again after adding it to setup.cfg)"
    shown = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "usage:" in shown.stdout
    wrong = subprocess.run(
        [script, "--no-such-option"], capture_output=True, text=True, timeout=120
    )
    assert wrong.returncode == 2 and "usage:" in wrong.stderr


@pytest.fixture()
def bad_audio(tmp_path):
    """One file per kind of bad audio."""
    files = {}
    files["empty"] = tmp_path / "empty.wav"
    files["empty"].write_bytes(b"")
    files["corrupt"] = tmp_path / "corrupt.wav"
    files["corrupt"].write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" + os.urandom(300))
    files["nan"] = tmp_path / "nan.wav"
    data = np.zeros((8192, 1), np.float32)
    data[100:110] = np.nan
    sf.write(files["nan"], data, 8192, subtype="FLOAT")
    files["missing"] = tmp_path / "missing.wav"
    return files


@pytest.mark.parametrize(
    "kind, problem",
    [
        ("empty", "file is empty (0 bytes)"),
        ("corrupt", "cannot decode audio"),
        ("nan", "samples are NaN or infinite"),
        ("missing", "input file not found"),
    ],
)
def test_separate_names_bad_input_files(tiny_run, bad_audio, tmp_path, capsys, kind, problem):
    line = assert_clear_error(
        separate,
        [
            str(bad_audio[kind]),
            "--model",
            str(tiny_run),
            "--out",
            str(tmp_path / "o"),
            "--no-progress",
        ],
        capsys,
        bad_audio[kind],
    )
    assert problem in line


@pytest.mark.parametrize(
    "kind, problem",
    [
        ("empty", "file is empty (0 bytes)"),
        ("corrupt", "cannot decode audio"),
        ("nan", "samples are NaN or infinite"),
    ],
)
def test_prepare_names_bad_input_files(bad_audio, tmp_path, capsys, kind, problem):
    folder = tmp_path / "mixtures"
    folder.mkdir()
    shutil.copy(bad_audio[kind], folder / bad_audio[kind].name)
    line = assert_clear_error(
        prepare,
        [
            "--config",
            "tiny",
            "--dataset",
            f"mixtures={folder}",
            "--out",
            str(tmp_path / "s"),
            "--no-progress",
        ],
        capsys,
        folder / bad_audio[kind].name,
    )
    assert problem in line
    assert not (tmp_path / "s" / "manifest.json").exists()


def test_prepare_names_a_missing_stem_and_mismatched_lengths(tiny_corpus, tmp_path, capsys):
    tracks = tmp_path / "paired"
    shutil.copytree(tiny_corpus / "musdb18hq" / "train", tracks)
    track = sorted(os.listdir(tracks))[0]
    os.remove(tracks / track / "vocals.wav")
    assert_clear_error(
        prepare,
        ["--config", "tiny", "--dataset", f"paired={tracks}", "--out", str(tmp_path / "s")],
        capsys,
        tracks / track / "vocals.wav",
        "missing stem",
    )
    shutil.copy(
        tiny_corpus / "musdb18hq" / "train" / track / "vocals.wav", tracks / track / "vocals.wav"
    )
    audio, rate = sf.read(tracks / track / "accompaniment.wav")
    sf.write(tracks / track / "accompaniment.wav", audio[: len(audio) // 2], rate)
    assert_clear_error(
        prepare,
        [
            "--config",
            "tiny",
            "--dataset",
            f"paired={tracks}",
            "--out",
            str(tmp_path / "s"),
            "--no-progress",
        ],
        capsys,
        "accompaniment.wav",
        "differ",
    )


def test_unknown_preset_and_dataset_kind(tmp_path, capsys):
    assert_clear_error(
        prepare,
        ["--config", "nope", "--dataset", f"paired={tmp_path}", "--out", str(tmp_path)],
        capsys,
        "unknown preset 'nope'",
        exit_code=2,
    )  # bad usage
    with pytest.raises(SystemExit) as exit_info:  # bad usage: argparse's exit code 2
        run_cli(
            prepare,
            ["--config", "tiny", "--dataset", f"karaoke={tmp_path}", "--out", str(tmp_path)],
            capsys,
        )
    assert exit_info.value.code == 2 and "unknown dataset kind 'karaoke'" in capsys.readouterr().err
    assert_clear_error(
        prepare,
        ["--config", "tiny", "--dataset", f"paired={tmp_path / 'absent'}", "--out", str(tmp_path)],
        capsys,
        tmp_path / "absent",
        "not found",
    )
    assert_clear_error(demo, ["--config", "nope"], capsys, "unknown preset 'nope'", exit_code=2)


def test_train_refuses_mismatched_shards_and_runs(tiny_shards, tiny_run, tmp_path, capsys):
    assert_clear_error(
        train,
        ["--config", "demo", "--shards", str(tiny_shards), "--out", str(tmp_path / "r")],
        capsys,
        tiny_shards / "manifest.json",
        "spectrogram.n_fft",
    )
    assert_clear_error(
        train,
        ["--config", "tiny", "--shards", str(tmp_path / "none"), "--out", str(tmp_path / "r")],
        capsys,
        tmp_path / "none",
        "not found",
    )
    # An existing run: no silent overwrite, and --resume with other settings is refused.
    assert_clear_error(
        train,
        ["--config", "tiny", "--shards", str(tiny_shards), "--out", str(tiny_run)],
        capsys,
        tiny_run,
        "--resume",
    )
    changed = tmp_path / "changed.json"
    from advsep_tf.config import load_config

    load_config("tiny").replace(separator={"base_filters": 8}).save(str(changed))
    assert_clear_error(
        train,
        [
            "--config",
            str(changed),
            "--shards",
            str(tiny_shards),
            "--out",
            str(tiny_run),
            "--resume",
        ],
        capsys,
        tiny_run / "config.json",
        "separator.base_filters",
    )


def test_export_and_separate_refuse_mismatched_or_corrupt_checkpoints(tiny_run, tmp_path, capsys):
    assert_clear_error(
        export,
        ["--model", str(tiny_run), "--config", "musdb4", "--out", str(tmp_path / "sm")],
        capsys,
        tiny_run / "model.keras",
        "sources",
    )
    assert not (tmp_path / "sm").exists()
    broken = tmp_path / "broken_run"
    broken.mkdir()
    shutil.copy(tiny_run / "config.json", broken / "config.json")
    (broken / "model.keras").write_bytes(b"PK\x03\x04 not really a zip")
    assert_clear_error(
        export,
        ["--model", str(broken), "--out", str(tmp_path / "sm")],
        capsys,
        broken / "model.keras",
        "damaged model file",
    )
    assert not (tmp_path / "sm").exists() and not (tmp_path / "sm.tmp").exists()
    song = tmp_path / "song.wav"
    sf.write(song, np.zeros((8192, 1), np.float32) + 0.1, 8192)
    assert_clear_error(
        separate,
        [str(song), "--model", str(broken), "--out", str(tmp_path / "o")],
        capsys,
        broken / "model.keras",
    )
    assert_clear_error(
        separate,
        [str(song), "--model", str(tmp_path / "absent"), "--out", str(tmp_path / "o")],
        capsys,
        tmp_path / "absent",
    )


def test_evaluate_names_bad_folders_and_files(tmp_path, capsys):
    refs, ests = tmp_path / "refs" / "t1", tmp_path / "ests" / "t1"
    refs.mkdir(parents=True)
    ests.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for source in ("vocals", "accompaniment"):
        sf.write(
            refs / f"{source}.wav", 0.1 * rng.standard_normal((8192 * 2, 1)), 8192, subtype="FLOAT"
        )
        sf.write(
            ests / f"{source}.wav", 0.1 * rng.standard_normal((8192 * 2, 1)), 8192, subtype="FLOAT"
        )
    bad = np.full((8192 * 2, 1), np.nan, np.float32)
    sf.write(ests / "vocals.wav", bad, 8192, subtype="FLOAT")
    assert_clear_error(
        evaluate,
        [
            "--estimates",
            str(tmp_path / "ests"),
            "--references",
            str(tmp_path / "refs"),
            "--out",
            str(tmp_path / "res"),
            "--no-progress",
        ],
        capsys,
        ests / "vocals.wav",
        "NaN",
    )
    assert_clear_error(
        evaluate,
        [
            "--estimates",
            str(tmp_path / "nothing"),
            "--references",
            str(tmp_path / "refs"),
            "--out",
            str(tmp_path / "res"),
        ],
        capsys,
        tmp_path / "nothing",
    )


def test_verbose_shows_the_traceback(tmp_path, capsys):
    argv = [
        "--config",
        "tiny",
        "--dataset",
        f"paired={tmp_path / 'absent'}",
        "--out",
        str(tmp_path),
        "--verbose",
    ]
    code, errors, err = run_cli(prepare, argv, capsys)
    assert code == 1 and "Traceback" in err and errors


# -- the options, defined once
# ----------------------------------------------------------------------


def test_options_take_their_choices_and_defaults_from_the_library():
    from advsep_tf import config
    from advsep_tf.data_pipelines import audio, shards
    from advsep_tf.data_pipelines import prepare as prepare_lib
    from advsep_tf.export import litert
    from advsep_tf.filtering import BAND_EXTENSIONS
    from advsep_tf.separate import (
        CHANNEL_MASKS,
        DEFAULT_CHUNK_PATCHES,
        DEFAULT_SILENCE_GATE_DB,
        RECONSTRUCTIONS,
    )

    expected = {
        "--mode": (config.MODES, None),
        "--precision": (config.PRECISIONS, None),
        "--strategy": (config.STRATEGIES, config.STRATEGIES[0]),
        "--codec": (tuple(audio.SOUNDFILE_CODECS), "wav"),
        "--reconstruction": (RECONSTRUCTIONS, RECONSTRUCTIONS[0]),
        "--channel-masks": (CHANNEL_MASKS, CHANNEL_MASKS[0]),
        "--band-extension": (BAND_EXTENSIONS, BAND_EXTENSIONS[0]),
        "--chunk-patches": (None, DEFAULT_CHUNK_PATCHES),
        "--silence-gate": (None, DEFAULT_SILENCE_GATE_DB),
        "--quantize": (litert.QUANTIZATIONS, "none"),
        "--on-error": (prepare_lib.ON_ERROR, "fail"),
        "--examples-per-shard": (None, shards.EXAMPLES_PER_SHARD),
        "--model": (None, config.PRETRAINED),
    }
    for name, (choices, default) in expected.items():
        option = options.OPTIONS[name]
        assert tuple(option.get("choices") or ()) == tuple(choices or ()), name
        assert option.get("default") == default, name
    help_text = options.OPTIONS["--config"]["help"]
    assert (
        help_text[help_text.index("(") + 1 : help_text.index(")")].split(", ")
        == config.preset_names()
    )


def test_parsing_the_command_line_imports_no_tensorflow():
    # TensorFlow prints start-up lines before common.quiet_tensorflow can silence them, and takes
    # seconds to import: --help and bad usage must not pay for it.
    code = (
        "import sys\n"
        "from advsep_tf.cli import demo, evaluate, experiment, export, prepare, separate, train\n"
        "for m in (demo, evaluate, experiment, export, prepare, separate, train):\n"
        "    try:\n"
        "        m.main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(k for k in ('tensorflow', 'keras') if k in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    "option, value, expected",
    [
        ("--synthetic-pairs", "1.5", "in [0, 1]"),
        ("--synthetic-pairs", "-0.1", "in [0, 1]"),
        ("--pseudo-labels", "-1", ">= 0"),
        ("--pseudo-labels", "nan", ">= 0"),
    ],
)
def test_training_shares_and_weights_are_refused_before_tensorflow_loads(option, value, expected):
    argv = ["--config", "tiny", "--shards", "s", "--out", "o", option, value]
    code = (
        "import sys\n"
        "from advsep_tf.cli import train\n"
        "try:\n"
        f"    train.main({argv!r})\n"
        "except SystemExit as e:\n"
        "    print(e.code, sorted(k for k in ('tensorflow', 'keras') if k in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip().splitlines()[-1] == "2 []"
    assert f"{option}: expected a finite number {expected}, got '{value}'" in result.stderr


def test_the_commands_import_tensorflow_without_kerass_optional_integrations():
    # A fresh interpreter, as a command starts: TensorFlow (and Keras) are imported without
    # scikit-learn and matplotlib, which stay importable afterwards for whoever needs them.
    script = (
        "import sys\n"
        "from advsep_tf.cli import common\n"
        "common.quiet_tensorflow()\n"
        "import keras\n"
        "print(sorted(n for n in common.KERAS_EXTRAS if n in sys.modules))\n"
        "import matplotlib\n"
        "print(matplotlib.__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
    )
    assert result.stdout.split("\n")[:2] == ["[]", "matplotlib"]


def test_modules_skipped_only_within_the_block():
    name = "advsep_tf_no_such_module_yet"
    with common.modules_skipped([name, "sys"]):
        with pytest.raises(ImportError):
            importlib.import_module(name)
        assert sys.modules["sys"] is sys  # an imported module is left alone
    assert name not in sys.modules
