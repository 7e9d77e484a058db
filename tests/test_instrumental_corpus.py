"""The instrumental corpus script on a fixture .deb, with stand-ins for apt-get and apt-cache."""

import hashlib
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from advsep_tf.data_pipelines import instrumental_corpus as corpus
from advsep_tf.errors import AdvsepError

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not installed")

NAME, VERSION = "fake-music", "1.0-1"
COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fake

Files: *
Copyright: 2024 Someone
License: GPL-2+
 Long text of the licence.

Files: music/theme.*
Copyright: 2024 A Composer
License: CC-BY-SA-4.0
"""


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    """A .deb holding a 2 s WAV and a 1 s OGG under usr/share/games, and a DEP-5 copyright."""
    tree = tmp_path_factory.mktemp("pkg") / "tree"
    music = tree / "usr/share/games/fake/music"
    music.mkdir(parents=True)
    rate = 8000
    tone = 0.1 * np.sin(2 * np.pi * 440 * np.arange(2 * rate) / rate).astype(np.float32)
    sf.write(music / "theme.wav", tone, rate)
    sf.write(music / "battle.ogg", tone[:rate], rate)
    (tree / f"usr/share/doc/{NAME}").mkdir(parents=True)
    (tree / f"usr/share/doc/{NAME}/copyright").write_text(COPYRIGHT)
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN/control").write_text(
        f"Package: {NAME}\nVersion: {VERSION}\nArchitecture: all\n"
        "Maintainer: Nobody <nobody@example.org>\nDescription: fixture music\n"
    )
    path = tree.parent / f"{NAME}_{VERSION}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(tree), str(path)],
        check=True,
        capture_output=True,
    )
    return path


def stand_ins(tmp_path, deb, sha256=None):
    """(apt-get, apt-cache) commands: one copies the fixture, the other prints its SHA256."""
    apt_get, apt_cache = tmp_path / "apt-get", tmp_path / "apt-cache"
    apt_get.write_text(f'#!/bin/sh\n[ "$2" = "{NAME}={VERSION}" ] && cp "{deb}" .\n')
    digest = sha256 or hashlib.sha256(deb.read_bytes()).hexdigest()
    apt_cache.write_text(f"#!/bin/sh\necho 'Package: {NAME}'\necho 'SHA256: {digest}'\n")
    for tool in (apt_get, apt_cache):
        tool.chmod(0o755)
    return [str(apt_get)], [str(apt_cache)]


def test_fetch_writes_the_manifest(tmp_path, deb):
    apt_get, apt_cache = stand_ins(tmp_path, deb)
    out = tmp_path / "corpus"
    corpus.fetch(str(out), {NAME: VERSION}, apt_get=apt_get, apt_cache=apt_cache)
    manifest = json.loads((out / "manifest.json").read_text())
    tracks = {os.path.basename(t["path"]): t for t in manifest["tracks"]}
    assert sorted(tracks) == ["battle.ogg", "theme.wav"]
    theme = tracks["theme.wav"]
    assert theme["path"] == f"{NAME}/usr/share/games/fake/music/theme.wav"
    assert (theme["package"], theme["version"]) == (NAME, VERSION)
    assert theme["licence"] == "CC-BY-SA-4.0"  # the later, narrower paragraph wins
    assert tracks["battle.ogg"]["licence"] == "GPL-2+"
    assert theme["duration"] == pytest.approx(2.0, abs=1e-3)
    assert tracks["battle.ogg"]["duration"] == pytest.approx(1.0, abs=0.01)
    assert theme["sha256"] == hashlib.sha256((out / theme["path"]).read_bytes()).hexdigest()
    assert manifest["packages"][NAME]["deb_sha256"] == hashlib.sha256(deb.read_bytes()).hexdigest()


def test_verify_names_a_changed_file_and_refetch_restores_a_missing_one(
    tmp_path, deb, monkeypatch, capsys
):
    apt_get, apt_cache = stand_ins(tmp_path, deb)
    monkeypatch.setenv(corpus.APT_GET_ENV, apt_get[0])
    monkeypatch.setenv(corpus.APT_CACHE_ENV, apt_cache[0])
    monkeypatch.setitem(corpus.PINNED, NAME, VERSION)
    out = tmp_path / "corpus"
    main = ["fetch", NAME, "--out", str(out)]
    assert corpus.run_main(main) == 0
    assert corpus.run_main(["verify", "--out", str(out)]) == 0
    theme = out / NAME / "usr/share/games/fake/music/theme.wav"
    battle = out / NAME / "usr/share/games/fake/music/battle.ogg"
    theme.write_bytes(theme.read_bytes()[:-10] + b"0123456789")
    battle.unlink()
    capsys.readouterr()
    assert corpus.run_main(["verify", "--out", str(out)]) == 1
    said = capsys.readouterr()
    assert f"changed: {NAME}/usr/share/games/fake/music/theme.wav" in said.out
    assert f"missing: {NAME}/usr/share/games/fake/music/battle.ogg" in said.out
    # A re-fetch never overwrites the changed file: it names it and stops.
    assert corpus.run_main(main) == 1
    assert "theme.wav" in capsys.readouterr().out
    assert theme.read_bytes().endswith(b"0123456789")
    theme.unlink()
    assert corpus.run_main(main) == 0
    assert corpus.run_main(["verify", "--out", str(out)]) == 0
    # The manifest reproduces the folder elsewhere.
    again = tmp_path / "again"
    assert (
        corpus.run_main(["fetch", "--manifest", str(out / "manifest.json"), "--out", str(again)])
        == 0
    )
    assert battle.read_bytes() == (again / battle.relative_to(out)).read_bytes()


def test_a_checksum_mismatch_is_refused(tmp_path, deb, monkeypatch, capsys):
    apt_get, apt_cache = stand_ins(tmp_path, deb, sha256="0" * 64)
    out = tmp_path / "corpus"
    with pytest.raises(AdvsepError, match=f"^{NAME}={VERSION}: refused: .*SHA256"):
        corpus.fetch(str(out), {NAME: VERSION}, apt_get=apt_get, apt_cache=apt_cache)
    assert not (out / NAME).exists()
    monkeypatch.setenv(corpus.APT_GET_ENV, apt_get[0])
    monkeypatch.setenv(corpus.APT_CACHE_ENV, apt_cache[0])
    monkeypatch.setitem(corpus.PINNED, NAME, VERSION)
    assert corpus.run_main(["fetch", NAME, "--out", str(out)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and NAME in lines[0]


def test_a_folder_not_made_by_fetch_is_refused(tmp_path, deb):
    apt_get, apt_cache = stand_ins(tmp_path, deb)
    out = tmp_path / "corpus"
    (out / "notes").mkdir(parents=True)
    with pytest.raises(AdvsepError, match="not a corpus folder"):
        corpus.fetch(str(out), {NAME: VERSION}, apt_get=apt_get, apt_cache=apt_cache)


class StandInSeparator:
    """Hears a voice in the WAV (half its amplitude) and none in the OGG."""

    def separate(self, waveform, rate):
        share = 0.5 if waveform.shape[0] == 2 * 8000 else 0.01
        return {"vocals": share * waveform, "accompaniment": (1 - share) * waveform}


def test_screen_flags_and_links_the_rest(tmp_path, deb):
    from advsep_tf.data_pipelines.datasets import unlabelled_tracks

    apt_get, apt_cache = stand_ins(tmp_path, deb)
    out = tmp_path / "corpus"
    corpus.fetch(str(out), {NAME: VERSION}, apt_get=apt_get, apt_cache=apt_cache)
    manifest = corpus.screen(str(out), StandInSeparator(), threshold_db=-12, min_seconds=0.5)
    scores = {os.path.basename(t["path"]): t for t in manifest["tracks"]}
    assert scores["theme.wav"]["vocal_energy_db"] == pytest.approx(-6.02, abs=0.01)
    assert scores["theme.wav"]["flagged"] and not scores["battle.ogg"]["flagged"]
    records = unlabelled_tracks(str(out / "accompaniment"), "solo/accompaniment", "solo")
    assert [r.track_id for r in records] == [f"{NAME}/usr/share/games/fake/music/battle"]
    assert (out / "accompaniment.txt").read_text().strip().endswith("battle.ogg")
    # Another threshold relinks without separating again (no separator is given).
    corpus.screen(str(out), None, threshold_db=-3, min_seconds=0.5)
    assert len(unlabelled_tracks(str(out / "accompaniment"), "solo/accompaniment", "solo")) == 2
