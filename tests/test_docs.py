"""The README and docs/ run: every ```bash and ```python block, in order, one folder per file.

Blocks fenced otherwise (```text, ```console) are not run; each says why in the prose around it.
The blocks refer to inputs a user has (song.wav, my_tracks/, ...): the test makes small ones.
Documented long settings become tiny ones through SUBSTITUTIONS, the only edits made to a block.
Also: the shipped model's terms are where users look (README, model card, --help, stderr).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
RUN_LANGUAGES = ("bash", "python")
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```\s*$", re.M | re.S)
TERMS = re.compile(r"non-\s*commercial", re.I)

# (pattern, replacement, why). Kept short: each entry makes a documented long run tiny.
SUBSTITUTIONS = [
    (
        r"python3 -m venv \.venv && \.venv/bin/pip install -e \. && \.venv/bin/",
        "",
        "the test's own environment is that install",
    ),
    (
        r"advsep-tf-demo --out demo_output",
        "advsep-tf-demo --out demo_output --quick --config tiny --no-progress",
        "the demo takes 7.5 minutes",
    ),
    (
        r"--config (demo|paper|real-ensemble|real-small|real)(?![\w-])",
        "--config tiny",
        "tiny networks",
    ),
    (r'load_config\("demo"\)', 'load_config("tiny")', "tiny networks"),
    (r"--steps \d+", "--steps 2", "two training steps"),
    (r"steps_per_epoch=100, epochs=10", "steps_per_epoch=2, epochs=1", "two training steps"),
    (
        r"--init pretrained",
        "--init runs/mine",
        "an adversarial step of the shipped model's size takes about 25 s on a CPU",
    ),
]

# Inputs a file's blocks use without making them: a shard set and a trained run of the tiny preset.
MADE_ELSEWHERE = {"docs/training.md": ["shards"], "docs/deploy.md": ["runs/va"]}


def code_blocks(text: str) -> list[tuple[str, str]]:
    return [(language, body) for language, body in FENCE.findall(text)]


def substitute(body: str) -> str:
    for pattern, replacement, _why in SUBSTITUTIONS:
        body = re.sub(pattern, replacement, body)
    return body


def write_song(
    path: Path, seconds: float, rate: int, channels: int, seed: int
) -> dict[str, np.ndarray]:
    """A sung-like tone over noise and a bass line; returns the two stems."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    vocals = (
        0.3
        * np.sin(2 * np.pi * 440 * t + 3 * np.sin(2 * np.pi * 5 * t))
        * (np.sin(2 * np.pi * 0.5 * t) > 0)
    )
    accompaniment = 0.2 * np.sin(2 * np.pi * 110 * t) + 0.05 * rng.standard_normal(t.size)
    stems = {
        "vocals": np.stack([vocals] * channels, axis=1).astype(np.float32),
        "accompaniment": np.stack([accompaniment] * channels, axis=1).astype(np.float32),
    }
    sf.write(path, stems["vocals"] + stems["accompaniment"], rate)
    return stems


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_corpus, tiny_shards, tiny_run) -> Path:
    """What the blocks name as the user's: songs, stems, folders of tracks, mixtures and solo
    takes."""
    root = tmp_path_factory.mktemp("doc_inputs")
    stems = write_song(root / "song.wav", 3.0, 44100, 2, seed=1)
    (root / "references" / "song").mkdir(parents=True)
    for source, stem in stems.items():
        sf.write(root / "references" / "song" / f"{source}.wav", stem, 44100)
    other = write_song(root / "other.wav", 2.0, 22050, 1, seed=2)
    (root / "references" / "other").mkdir()
    for source, stem in other.items():
        sf.write(root / "references" / "other" / f"{source}.wav", stem, 22050)
    # my_tracks/<song>/{vocals,accompaniment}.wav: the synthetic corpus's paired songs as a user
    # has them
    for role in ("train", "test"):
        for track in sorted((tiny_corpus / "musdb18hq" / role).iterdir()):
            shutil.copytree(track, root / "my_tracks" / track.name)
    shutil.copytree(tiny_corpus / "mixtures", root / "my_songs")
    shutil.copytree(tiny_corpus / "solo" / "vocals", root / "my_vocal_takes")
    shutil.copytree(tiny_corpus / "solo" / "accompaniment", root / "instrumentals")
    shutil.copytree(tiny_corpus, root / "corpus")
    shutil.copytree(tiny_shards, root / "shards")
    shutil.copytree(tiny_run, root / "runs" / "va")
    return root


def run_block(language: str, body: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    if language == "bash":
        command = ["bash", "-euo", "pipefail", "-c", body]
    else:
        script = cwd / "block.py"
        script.write_text(body)
        command = [sys.executable, str(script)]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("doc", DOC_FILES)
def test_code_blocks_run(doc, inputs, tmp_path):
    blocks = [
        (lang, body)
        for lang, body in code_blocks((ROOT / doc).read_text())
        if lang in RUN_LANGUAGES
    ]
    if not blocks:
        pytest.skip(f"{doc} has no bash or python blocks")
    for name in (
        "song.wav",
        "other.wav",
        "references",
        "my_tracks",
        "my_songs",
        "my_vocal_takes",
        "instrumentals",
        "corpus",
        *MADE_ELSEWHERE.get(doc, []),
    ):
        source = inputs / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for language, body in blocks:
        body = substitute(body)
        result = run_block(language, body, tmp_path, env)
        assert result.returncode == 0, (
            f"{doc}: this {language} block failed with exit code {result.returncode}:\n{body}\n"
            f"--- stdout (end)\n{result.stdout[-2000:]}\n--- stderr (end)\n{result.stderr[-4000:]}"
        )


def test_a_broken_block_fails(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    assert (
        run_block("bash", "advsep-tf-separate missing.wav --out sep/", tmp_path, env).returncode
        == 1
    )
    assert run_block("python", "import advsep_tf.no_such_module", tmp_path, env).returncode == 1


def test_every_fenced_block_is_marked_and_no_code_is_indented():
    for doc in DOC_FILES:
        text = (ROOT / doc).read_text()
        for language, _body in code_blocks(text):
            assert language, (
                f"{doc}: a ``` block without a language (bash, python, text or console)"
            )
        outside = FENCE.sub("", text)
        indented = [
            line
            for line in outside.splitlines()
            if re.match(r"    \S", line) and "advsep-tf" in line
        ]
        assert not indented, f"{doc}: indented code escapes the test: {indented[:2]}"


def test_readme_is_short_and_links_only_existing_docs():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    for link in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / link).is_file(), link
    assert (
        'python3 -m venv .venv && .venv/bin/pip install -q -e ".[test]" && .venv/bin/python -m '
        "pytest" in text
    )
    assert text.count(".venv/bin/python -m pytest") == 1
    assert (
        'python3 -m venv .venv && .venv/bin/pip install -q -e ".[test]" && .venv/bin/python -m '
        "pytest" in (ROOT / ".ci" / "run").read_text()
    )


# --- the shipped model's terms ---


def test_terms_in_the_readmes_first_screen():
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:30])
    assert TERMS.search(first_screen) and "MIR-1K" in first_screen and "MUSDB18" in first_screen
    assert "MIT" in first_screen


def test_terms_first_in_the_model_card():
    card = (ROOT / "advsep_tf" / "pretrained" / "MODEL_CARD.md").read_text()
    first_section = card.split("\n## ")[1].split("\n## ")[0]
    assert first_section.startswith("Terms and intended use")
    assert TERMS.search(first_section) and "MIR-1K" in first_section and "MUSDB18" in first_section


def test_licence_file_and_metadata():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    setup_cfg = (ROOT / "setup.cfg").read_text()
    assert "license = MIT" in setup_cfg and "license_files = LICENSE" in setup_cfg
    description = next(line for line in setup_cfg.splitlines() if line.startswith("description ="))
    assert TERMS.search(description)


def test_terms_in_separate_help(capsys):
    from advsep_tf.cli.separate import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert TERMS.search(help_text) and "--quiet-terms" in help_text


def separate(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).parent / "advsep-tf-separate"), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_terms_printed_once_when_the_shipped_model_separates(tmp_path):
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "noise.wav", 0.1 * rng.standard_normal(16000).astype(np.float32), 16000)
    result = separate("noise.wav", "--out", "sep", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(TERMS.findall(result.stderr)) == 1, result.stderr
    assert (tmp_path / "sep" / "noise" / "vocals.wav").is_file()


def test_quiet_terms_hides_the_notice(tmp_path):
    # A missing input stops the command before the model loads, after the notice would be printed.
    loud = separate("missing.wav", "--out", "sep", cwd=tmp_path)
    quiet = separate("missing.wav", "--out", "sep", "--quiet-terms", cwd=tmp_path)
    assert loud.returncode == quiet.returncode == 1
    assert len(TERMS.findall(loud.stderr)) == 1, loud.stderr
    assert not TERMS.search(quiet.stderr), quiet.stderr
    assert "missing.wav" in quiet.stderr
    # another model: no notice
    other = separate("missing.wav", "--out", "sep", "--model", "runs/va", cwd=tmp_path)
    assert not TERMS.search(other.stderr), other.stderr
