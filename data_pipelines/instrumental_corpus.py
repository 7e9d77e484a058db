"""Hours of real instrumental music from Debian's game-music packages, for `solo/accompaniment`.

    python -m advsep_tf.data_pipelines.instrumental_corpus fetch --out DIR [PACKAGE ...]
    python -m advsep_tf.data_pipelines.instrumental_corpus verify --out DIR
    python -m advsep_tf.data_pipelines.instrumental_corpus screen --out DIR
    advsep-tf-train ... --dataset solo/accompaniment=DIR/accompaniment

fetch: for each named package (default: `DEFAULT_PACKAGES`) at the version pinned in `PINNED`,
`apt-get download NAME=VERSION` in a temporary folder (nothing is installed); the .deb's SHA-256
must equal the one `apt-cache show NAME=VERSION` gives, else the package is refused. Its audio
files (`AUDIO_SUFFIXES`) are extracted with `dpkg-deb -x` to DIR/<package>/<path in the package>.
Each file's licence comes from the package's `usr/share/doc/<package>/copyright`: in a DEP-5 file,
the `License:` of the last `Files:` paragraph whose pattern matches a tail of the installed path
(DEP-5 patterns name source paths, which end like the installed ones: `music/x.ogg`); in a free-
text file, its first licence-like line. DIR/manifest.json (rewritten atomically after each
package) lists every file: path relative to DIR, package, version, licence, duration (s), sha256.

Re-running fetch on DIR first checks every file the manifest lists: a changed file is named and
nothing is done (exit 1); missing files are fetched again, and must match their recorded sha256.
`fetch --manifest OLD/manifest.json --out NEW` reproduces OLD's folder from its packages and
versions, checking each file against OLD's sha256. verify re-checks DIR and names every changed or
missing file (exit 1 if any).

screen: tracks with singing are flagged by the shipped separator (`pretrained`). Rule: from each
track, three 10 s excerpts centred at 25%, 50% and 75% of its length are separated; an excerpt's
score is the vocals estimate's energy relative to the excerpt's own, in dB; a track is flagged
when its loudest excerpt scores above `DEFAULT_THRESHOLD_DB` (-10 dB). Why -10: the scores of
this corpus run smoothly from -28 to -1 dB (median -10.5) with no gap to cut at, and the model
under-reads real singing: on 24 MUSDB18 previews (true vocals share -9 to -2 dB) it gave -14 to
-4 dB, 20 of 24 above -10 dB. A lower threshold catches more singing and drops more
instrumental hours; the games' speech clips (narration, announcements) score -3 to -1 dB, and
so do some dense instrumentals (benchmarks/real/README.md). Tracks shorter than
`DEFAULT_MIN_SECONDS` (sound effects, jingles) are excluded as well. The rest are linked
(relative symlinks, which `datasets.audio_files` follows) into DIR/accompaniment/<package>/...,
and listed in DIR/accompaniment.txt. Scores are kept in the manifest, so a rerun with another
--threshold-db only relinks.

The downloader and the archive's checksums come from `apt-get` and `apt-cache`, or from the
commands in ADVSEP_TF_APT_GET and ADVSEP_TF_APT_CACHE (shell words; the tests' stand-ins).
Nothing here deletes or replaces a file it did not write: DIR must be new, empty or a corpus
folder (holding manifest.json), and DIR/accompaniment is replaced only if it holds this module's
marker file.
"""

from __future__ import annotations

import argparse
import collections
import fnmatch
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from typing import Callable, Iterable

import numpy as np

from advsep_tf.errors import AdvsepError
from advsep_tf import files

# Current in Debian 12 (bookworm) when this corpus was built; a version the archive no longer
# holds is refused by `apt-cache show`, and a newer one is a deliberate edit here.
PINNED = {
    "warzone2100-music": "4.3.3-3",
    "singularity-music": "007-2",
    "hyperrogue-music": "12.0q-1",
    "ufoai-music": "2.5-2",
    "nexuiz-music": "2.5.2-12",
    "planetblupi-music-ogg": "1.14.2-3",
    "drascula-music": "1.0+ds4-2",
    "asc-music": "1.3-6",
    "freedroidrpg-data": "1.0-1",
    "supertuxkart-data": "1.4+dfsg-2",
}
DEFAULT_PACKAGES = ("warzone2100-music", "singularity-music", "hyperrogue-music")
AUDIO_SUFFIXES = (".ogg", ".opus", ".mp3", ".flac", ".wav")
# Quake-engine games (ufoai, nexuiz) ship their music inside zip archives.
ARCHIVE_SUFFIXES = (".pk3", ".zip")
ARCHIVE_FOLDER = ".d"
MANIFEST = "manifest.json"
FORMAT = "advsep-tf instrumental corpus 1"
ACCOMPANIMENT = "accompaniment"
LINKS_MARKER = ".advsep-tf-instrumental-links"
APT_GET_ENV = "ADVSEP_TF_APT_GET"
APT_CACHE_ENV = "ADVSEP_TF_APT_CACHE"

DEFAULT_THRESHOLD_DB = -10.0
DEFAULT_MIN_SECONDS = 30.0
EXCERPT_SECONDS = 10.0
EXCERPT_AT = (0.25, 0.5, 0.75)

_LICENCE_LIKE = re.compile(
    r"\b(GPL|LGPL|General Public Licen[cs]e|Creative Commons|CC[- ]BY|CC0|public domain|BSD|"
    r"MIT licen[cs]e|Artistic|zlib|Free Art|Open Audio Licen[cs]e|OAL)\b",
    re.IGNORECASE,
)


def _log(line: str) -> None:
    print(line, flush=True)


# -- apt -----------------------------------------------------------------------------------------


def _command(env: str, default: str) -> list[str]:
    return shlex.split(os.environ.get(env, default))


def _run(argv: list[str], what: str, cwd: str | None = None) -> str:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise AdvsepError(f"{what}: cannot run {argv[0]} ({exc.strerror})") from None
    if done.returncode != 0:
        detail = " ".join((done.stderr or done.stdout).split())[-300:]
        raise AdvsepError(f"{what}: {shlex.join(argv)} failed ({detail})")
    return done.stdout


def archive_sha256(name: str, version: str, apt_cache: list[str] | None = None) -> str:
    """The SHA256 field `apt-cache show NAME=VERSION` gives for the package's .deb."""
    apt_cache = apt_cache or _command(APT_CACHE_ENV, "apt-cache")
    text = _run([*apt_cache, "show", f"{name}={version}"], f"{name}={version}")
    found = re.search(r"^SHA256:\s*([0-9a-fA-F]{64})\s*$", text, re.MULTILINE)
    if not found:
        raise AdvsepError(f"{name}={version}: apt-cache show gives no SHA256 field")
    return found.group(1).lower()


def download_deb(
    name: str,
    version: str,
    folder: str,
    apt_get: list[str] | None = None,
    apt_cache: list[str] | None = None,
) -> tuple[str, str]:
    """`apt-get download NAME=VERSION` into `folder`, checked against the archive's SHA-256:
    (path of the .deb, its sha256)."""
    expected = archive_sha256(name, version, apt_cache)
    apt_get = apt_get or _command(APT_GET_ENV, "apt-get")
    _run([*apt_get, "download", f"{name}={version}"], f"{name}={version}", cwd=folder)
    debs = glob.glob(os.path.join(folder, "*.deb"))
    if len(debs) != 1:
        raise AdvsepError(
            f"{name}={version}: apt-get download left {len(debs)} .deb files, not one"
        )
    got = files.sha256_of(debs[0])
    if got != expected:
        raise AdvsepError(
            f"{name}={version}: refused: the downloaded .deb's SHA256 {got[:16]}... differs from "
            f"the archive's {expected[:16]}..."
        )
    fields = _run(["dpkg-deb", "-f", debs[0], "Package", "Version"], debs[0])
    control = dict(line.split(": ", 1) for line in fields.splitlines() if ": " in line)
    if (control.get("Package"), control.get("Version")) != (name, version):
        raise AdvsepError(f"{name}={version}: the downloaded .deb is {control} instead")
    return debs[0], got


# -- licences ------------------------------------------------------------------------------------


def _paragraphs(text: str) -> list[dict[str, str]]:
    """DEP-5 paragraphs as {field: value}, continuation lines joined with newlines."""
    found, fields, last = [], {}, None
    for line in text.splitlines() + [""]:
        if not line.strip():
            if fields:
                found.append(fields)
            fields, last = {}, None
        elif line[0] in " \t" and last:
            fields[last] += "\n" + line.strip()
        elif ":" in line:
            last, value = line.split(":", 1)
            last = last.strip().lower()
            fields[last] = value.strip()
    return found


def licence_reader(copyright_text: str | None) -> Callable[[str], str]:
    """A function: path of a file as installed -> its licence, from the package's copyright."""
    if copyright_text is None:
        return lambda path: "unknown (the package has no copyright file)"
    if copyright_text.lstrip().lower().startswith("format:"):
        rules = []
        for fields in _paragraphs(copyright_text):
            if "files" in fields and "license" in fields:
                licence = fields["license"].split("\n", 1)[0].strip()
                rules.append((fields["files"].split(), licence))

        def dep5(path: str) -> str:
            parts = path.strip("/").split("/")
            tails = ["/".join(parts[i:]) for i in range(len(parts))]
            licence = "unknown (no Files: paragraph matches)"
            for patterns, rule_licence in rules:  # the last match wins (DEP-5)
                if any(fnmatch.fnmatchcase(t, p) for p in patterns for t in tails):
                    licence = rule_licence
            return licence

        return dep5
    for line in copyright_text.splitlines():
        if _LICENCE_LIKE.search(line):
            return lambda path, line=" ".join(line.split()): f"text: {line}"
    return lambda path: "unknown (no licence-like line in the copyright file)"


# -- manifest ------------------------------------------------------------------------------------


def _empty_manifest() -> dict:
    return {"format": FORMAT, "packages": {}, "tracks": []}


def read_manifest(path: str) -> dict:
    manifest = files.load_json_or_yaml(path, "corpus manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise AdvsepError(f"{path}: not a manifest of this corpus (format '{FORMAT}')")
    return manifest


def write_manifest(out: str, manifest: dict) -> None:
    manifest["tracks"].sort(key=lambda t: t["path"])
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    files.write_atomically(os.path.join(out, MANIFEST), text)


def _is_corpus(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, MANIFEST))


def check_files(out: str, tracks: Iterable[dict]) -> tuple[list[str], list[str]]:
    """(changed, missing): the tracks' paths whose file differs from its sha256 or is absent."""
    changed, missing = [], []
    for track in tracks:
        path = os.path.join(out, track["path"])
        if not os.path.isfile(path):
            missing.append(track["path"])
        elif files.sha256_of(path) != track["sha256"]:
            changed.append(track["path"])
    return changed, missing


def verify(out: str) -> dict:
    """Re-check every file of DIR's manifest; raise naming how many changed or are missing."""
    manifest = read_manifest(os.path.join(out, MANIFEST))
    changed, missing = check_files(out, manifest["tracks"])
    for path in changed:
        _log(f"changed: {path}")
    for path in missing:
        _log(f"missing: {path}")
    if changed or missing:
        raise AdvsepError(
            f"{out}: {len(changed)} changed and {len(missing)} missing of "
            f"{len(manifest['tracks'])} files (listed above)"
        )
    _log(f"{out}: all {len(manifest['tracks'])} files match the manifest")
    return manifest


# -- fetch ---------------------------------------------------------------------------------------


def _unpack_archives(root: str) -> None:
    """Extract the audio members of each zip archive under `root` to <archive>.d/ beside it."""
    import zipfile

    for rel in _files_in(root, ARCHIVE_SUFFIXES):
        archive = os.path.join(root, rel)
        try:
            with zipfile.ZipFile(archive) as z:
                members = [m for m in z.namelist() if m.lower().endswith(AUDIO_SUFFIXES)]
                z.extractall(archive + ARCHIVE_FOLDER, members)  # extractall drops "..", "/"
        except zipfile.BadZipFile:
            continue  # a .zip that is not one holds no audio we could read either


def _licence_path(rel: str) -> str:
    """The path a member of an archive would have in the source tree: the archive's name
    dropped (base/0music.pk3.d/music/x.ogg -> base/music/x.ogg)."""
    parts = rel.split("/")
    inside = [
        p
        for p in parts
        if not (p.endswith(ARCHIVE_FOLDER) and p[:-2].lower().endswith(ARCHIVE_SUFFIXES))
    ]
    return "/".join(inside)


def _audio_in(root: str) -> list[str]:
    return _files_in(root, AUDIO_SUFFIXES)


def _files_in(root: str, suffixes: tuple[str, ...]) -> list[str]:
    """Files ending in one of `suffixes` (not links) under `root`, relative to it, sorted."""
    found = []
    for directory, dirs, names in os.walk(root):
        dirs.sort()
        for name in names:
            path = os.path.join(directory, name)
            if name.lower().endswith(suffixes) and not os.path.islink(path):
                found.append(os.path.relpath(path, root).replace(os.sep, "/"))
    return sorted(found)


def _fetch_package(
    dest: str,
    name: str,
    version: str,
    manifest: dict,
    reference: dict[str, dict],
    apt_get,
    apt_cache,
) -> list[dict]:
    """Download, check and extract one package's audio into `dest` (where files already there
    are kept); its tracks' manifest entries, paths relative to the corpus folder."""
    import soundfile as sf

    have = {t["path"]: t for t in manifest["tracks"] if t["package"] == name}
    with tempfile.TemporaryDirectory(prefix="advsep-corpus-") as tmp:
        deb, deb_sha256 = download_deb(name, version, tmp, apt_get, apt_cache)
        root = os.path.join(tmp, "root")
        _run(["dpkg-deb", "-x", deb, root], f"{name}={version}")
        _unpack_archives(root)
        copyright_path = os.path.join(root, "usr", "share", "doc", name, "copyright")
        text = None
        if os.path.isfile(copyright_path):
            with open(copyright_path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        licence_of = licence_reader(text)
        tracks, skipped = [], []
        for rel in _audio_in(root):
            path = f"{name}/{rel}"
            source = os.path.join(root, rel)
            try:
                info = sf.info(source)
            except Exception as exc:  # noqa: BLE001 - any decoder error means unusable here
                skipped.append(f"{path} ({exc.__class__.__name__}: {' '.join(str(exc).split())})")
                continue
            sha256 = files.sha256_of(source)
            if path in reference and reference[path]["sha256"] != sha256:
                raise AdvsepError(
                    f"{path}: {name}={version} holds another file than the manifest's (sha256 "
                    f"{sha256[:16]}... instead of {reference[path]['sha256'][:16]}...)"
                )
            target = os.path.join(dest, rel)
            if not os.path.isfile(target):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with files.atomic_file(target) as part:
                    shutil.copyfile(source, part)
            tracks.append(
                {
                    **have.get(path, {}),
                    "path": path,
                    "package": name,
                    "version": version,
                    "licence": licence_of(_licence_path(rel)),
                    "duration": round(float(info.duration), 3),
                    "sample_rate": int(info.samplerate),
                    "channels": int(info.channels),
                    "sha256": sha256,
                }
            )
        for line in skipped:
            _log(f"  skipped {line}")
        if not tracks:
            _log(
                f"  {name}={version}: no audio files ({', '.join(AUDIO_SUFFIXES)}), not even "
                f"in {', '.join(ARCHIVE_SUFFIXES)} archives"
            )
        got = {t["path"] for t in tracks}
        absent = sorted(p for p, t in reference.items() if t["package"] == name and p not in got)
        if absent:
            raise AdvsepError(
                f"{name}={version}: the package lacks {len(absent)} file(s) of the "
                f"manifest, first {absent[0]}"
            )
    if text is None:
        kind = "none"
    else:
        kind = "DEP-5" if text.lstrip().lower().startswith("format:") else "free text"
    manifest["packages"][name] = {
        "version": version,
        "deb_sha256": deb_sha256,
        "files": len(tracks),
        "seconds": round(sum(t["duration"] for t in tracks), 1),
        "copyright": kind,
    }
    return tracks


def fetch(
    out: str,
    packages: dict[str, str],
    reference: dict | None = None,
    apt_get: list[str] | None = None,
    apt_cache: list[str] | None = None,
) -> dict:
    """Fetch `packages` ({name: version}) into `out`; the manifest written to out/manifest.json.

    `reference`: a manifest to reproduce; its files must come back with the same sha256.
    """
    files.check_output_folder(out, _is_corpus, "a corpus folder (with manifest.json)")
    manifest_path = os.path.join(out, MANIFEST)
    manifest = read_manifest(manifest_path) if os.path.isfile(manifest_path) else _empty_manifest()
    for name, version in packages.items():
        held = manifest["packages"].get(name, {}).get("version")
        if held not in (None, version):
            raise AdvsepError(
                f"{name}: {out} holds version {held}, not {version}; fetch "
                f"{version} into another folder"
            )
        folder = os.path.join(out, name)
        if held is None and os.path.lexists(folder):
            raise AdvsepError(
                f"{folder}: exists but the manifest does not list {name}; not "
                f"overwritten: move it away or choose another --out"
            )
    # A changed file is someone's edit or damage: name it and stop before anything is written.
    changed, missing = check_files(out, manifest["tracks"])
    if changed:
        for path in changed:
            _log(f"changed: {path}")
        raise AdvsepError(
            f"{out}: {len(changed)} file(s) differ from the manifest (listed "
            f"above); not overwritten: restore or remove them, then rerun"
        )
    os.makedirs(out, exist_ok=True)
    have = {t["path"]: t for t in manifest["tracks"]}
    reference_tracks = {t["path"]: t for t in (reference or manifest)["tracks"]}
    for name, version in packages.items():
        folder = os.path.join(out, name)
        wanted = [t for t in reference_tracks.values() if t["package"] == name]
        complete = (
            name in manifest["packages"]
            and not any(t["package"] == name for p, t in have.items() if p in missing)
            and all(have.get(t["path"], {}).get("sha256") == t["sha256"] for t in wanted)
        )
        if complete:
            entry = manifest["packages"][name]
            _log(
                f"{name} {version}: already here, {entry['files']} files, "
                f"{entry['seconds'] / 60:.1f} min"
            )
            continue
        if name in manifest["packages"]:  # restore missing files beside the ones still there
            tracks = _fetch_package(
                folder, name, version, manifest, reference_tracks, apt_get, apt_cache
            )
        else:  # a new package appears whole or not at all, so a kill leaves nothing unlisted
            with files.atomic_output(folder, directory=True) as part:
                os.makedirs(part)
                tracks = _fetch_package(
                    part, name, version, manifest, reference_tracks, apt_get, apt_cache
                )
        manifest["tracks"] = [t for t in manifest["tracks"] if t["package"] != name] + tracks
        write_manifest(out, manifest)
        minutes = sum(t["duration"] for t in tracks) / 60
        licences = collections.Counter(t["licence"] for t in tracks)
        _log(
            f"{name} {version}: {len(tracks)} files, {minutes:.1f} min of audio "
            f"({', '.join(f'{k}: {n}' for k, n in licences.most_common())})"
        )
    write_manifest(out, manifest)
    summarise(manifest)
    return manifest


def summarise(manifest: dict) -> None:
    """Print hours per package and per licence."""
    by_package = collections.defaultdict(float)
    by_licence = collections.defaultdict(float)
    for track in manifest["tracks"]:
        by_package[track["package"]] += track["duration"]
        by_licence[track["licence"]] += track["duration"]
    total = sum(by_package.values())
    _log(f"total: {len(manifest['tracks'])} files, {total / 3600:.2f} h")
    for name, seconds in sorted(by_package.items(), key=lambda kv: -kv[1]):
        _log(f"  {seconds / 3600:6.2f} h  {name} {manifest['packages'][name]['version']}")
    for licence, seconds in sorted(by_licence.items(), key=lambda kv: -kv[1]):
        _log(f"  {seconds / 3600:6.2f} h  licence {licence}")


# -- screen --------------------------------------------------------------------------------------


def excerpts(path: str) -> Iterable[tuple[np.ndarray, int]]:
    """(samples, channels) float32 excerpts of `EXCERPT_SECONDS` centred at `EXCERPT_AT`."""
    import soundfile as sf

    with sf.SoundFile(path) as f:
        rate, frames = f.samplerate, f.frames
        length = min(frames, int(EXCERPT_SECONDS * rate))
        for at in EXCERPT_AT:
            start = int(np.clip(at * frames - length / 2, 0, frames - length))
            f.seek(start)
            yield f.read(length, dtype="float32", always_2d=True), rate


def vocal_energy_db(separator, waveform: np.ndarray, rate: int) -> float | None:
    """The separator's vocals estimate's energy relative to `waveform`'s, in dB (None if silent)."""
    energy = float(np.sum(np.square(waveform, dtype=np.float64)))
    if energy < 1e-12 * waveform.size:  # below -120 dBFS on average: nothing to judge
        return None
    vocals = separator.separate(waveform, rate)["vocals"]
    vocals_energy = max(float(np.sum(np.square(vocals, dtype=np.float64))), 1e-20)
    return 10.0 * float(np.log10(vocals_energy / energy))


def load_separator(model: str = "pretrained"):
    from advsep_tf.separate import Separator

    return Separator.load(model)


def screen(
    out: str,
    separator=None,
    model: str = "pretrained",
    threshold_db: float = DEFAULT_THRESHOLD_DB,
    min_seconds: float = DEFAULT_MIN_SECONDS,
) -> dict:
    """Score every track of out's manifest (once per model) and link the unflagged ones into
    out/accompaniment; `separator`: anything with `.separate(waveform, rate) -> {"vocals": ...}`."""
    manifest = read_manifest(os.path.join(out, MANIFEST))
    changed, missing = check_files(out, manifest["tracks"])
    if changed or missing:
        first = (changed + missing)[0]
        raise AdvsepError(
            f"{os.path.join(out, first)}: {'changed' if changed else 'missing'} "
            f"({len(changed)} changed, {len(missing)} missing; run verify)"
        )
    todo = [
        t
        for t in manifest["tracks"]
        if t["duration"] >= min_seconds and t.get("screen_model") != model
    ]
    if todo and separator is None:
        separator = load_separator(model)
    for done, track in enumerate(todo, 1):
        scores = [
            vocal_energy_db(separator, w, r) for w, r in excerpts(os.path.join(out, track["path"]))
        ]
        track["excerpt_db"] = [None if s is None else round(s, 2) for s in scores]
        track["screen_model"] = model
        heard = [s for s in scores if s is not None]
        _log(
            f"[{done}/{len(todo)}] {track['path']}: {max(heard) if heard else float('nan'):.1f} dB"
        )
        if done % 10 == 0:
            write_manifest(out, manifest)  # a long screen resumes from here
    kept = []
    for track in manifest["tracks"]:
        heard = [s for s in track.get("excerpt_db") or [] if s is not None]
        track["vocal_energy_db"] = max(heard) if heard else None
        track["flagged"] = bool(heard) and max(heard) > threshold_db
        if track["duration"] < min_seconds:
            track["excluded"] = f"shorter than {min_seconds:g} s"
        elif not heard:
            track["excluded"] = "silent"
        elif track["flagged"]:
            track["excluded"] = f"vocals {max(heard):.1f} dB > {threshold_db:g} dB"
        else:
            track.pop("excluded", None)
            kept.append(track)
    manifest["screen"] = {
        "model": model,
        "threshold_db": threshold_db,
        "min_seconds": min_seconds,
        "excerpt_seconds": EXCERPT_SECONDS,
        "excerpt_at": list(EXCERPT_AT),
        "rule": "flagged when the loudest excerpt's vocals energy relative to the excerpt "
        "exceeds threshold_db",
    }
    write_manifest(out, manifest)
    link_accompaniment(out, kept)
    _report_screen(manifest, kept)
    return manifest


def _is_links_folder(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, LINKS_MARKER))


def link_accompaniment(out: str, tracks: list[dict]) -> None:
    """out/accompaniment/<path>: a relative symlink to each of `tracks`; out/accompaniment.txt."""
    target = os.path.join(out, ACCOMPANIMENT)
    with files.atomic_output(
        target,
        directory=True,
        overwrite=True,
        looks_like=_is_links_folder,
        what="a folder of links this command made",
    ) as tmp:
        os.makedirs(tmp)
        with open(os.path.join(tmp, LINKS_MARKER), "w", encoding="utf-8") as f:
            f.write("written by advsep_tf.data_pipelines.instrumental_corpus screen\n")
        for track in tracks:
            link = os.path.join(tmp, track["path"])
            os.makedirs(os.path.dirname(link), exist_ok=True)
            # Relative to the link's final place, so the corpus folder can move as a whole.
            final = os.path.join(target, track["path"])
            relative = os.path.relpath(os.path.join(out, track["path"]), os.path.dirname(final))
            os.symlink(relative, link)
    listing = "".join(os.path.abspath(os.path.join(out, t["path"])) + "\n" for t in tracks)
    files.write_atomically(os.path.join(out, ACCOMPANIMENT + ".txt"), listing)


def _report_screen(manifest: dict, kept: list[dict]) -> None:
    per = collections.defaultdict(lambda: [0, 0, 0, 0.0])  # tracks, flagged, kept, kept seconds
    for track in manifest["tracks"]:
        row = per[track["package"]]
        row[0] += 1
        row[1] += track["flagged"]
    for track in kept:
        per[track["package"]][2] += 1
        per[track["package"]][3] += track["duration"]
    _log("package: tracks, flagged for vocals, kept (hours)")
    for name, (n, flagged, nkept, seconds) in sorted(per.items()):
        _log(f"  {name}: {n}, {flagged}, {nkept} ({seconds / 3600:.2f} h)")
    hours = sum(t["duration"] for t in kept) / 3600
    _log(f"kept {len(kept)} tracks, {hours:.2f} h")


# -- command line --------------------------------------------------------------------------------


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m advsep_tf.data_pipelines.instrumental_corpus",
        description=__doc__.splitlines()[0],
    )
    verbs = p.add_subparsers(dest="verb", required=True)
    f = verbs.add_parser("fetch", help="download, check and extract pinned packages")
    f.add_argument(
        "packages",
        nargs="*",
        metavar="PACKAGE",
        help=f"packages of the pinned table (default: {' '.join(DEFAULT_PACKAGES)}; "
        f"'all' for all of {', '.join(PINNED)})",
    )
    f.add_argument(
        "--manifest", metavar="FILE", help="reproduce this manifest's packages and files"
    )
    v = verbs.add_parser("verify", help="re-check every file's sha256 against the manifest")
    s = verbs.add_parser("screen", help="flag tracks with singing; link the rest")
    s.add_argument("--model", default="pretrained", help="the separator (default: pretrained)")
    s.add_argument(
        "--threshold-db",
        type=float,
        default=DEFAULT_THRESHOLD_DB,
        help="flag a track whose loudest excerpt's vocals energy exceeds this "
        f"(default {DEFAULT_THRESHOLD_DB:g})",
    )
    s.add_argument(
        "--min-seconds",
        type=float,
        default=DEFAULT_MIN_SECONDS,
        help=f"exclude shorter tracks (default {DEFAULT_MIN_SECONDS:g})",
    )
    for sub in (f, v, s):
        sub.add_argument("--out", required=True, metavar="DIR", help="the corpus folder")
    args = p.parse_args(argv)
    if args.verb == "verify":
        verify(args.out)
    elif args.verb == "screen":
        screen(
            args.out, model=args.model, threshold_db=args.threshold_db, min_seconds=args.min_seconds
        )
        folder = os.path.abspath(os.path.join(args.out, ACCOMPANIMENT))
        _log(f"use: --dataset solo/accompaniment={folder}")
    else:
        reference = read_manifest(args.manifest) if args.manifest else None
        if reference is not None:
            if args.packages:
                raise AdvsepError("fetch: name packages or give --manifest, not both")
            packages = {n: e["version"] for n, e in sorted(reference["packages"].items())}
        else:
            names = list(PINNED) if args.packages == ["all"] else args.packages or DEFAULT_PACKAGES
            unknown = [n for n in names if n not in PINNED]
            if unknown:
                raise AdvsepError(f"{unknown[0]}: not in the pinned table ({', '.join(PINNED)})")
            packages = {n: PINNED[n] for n in names}
        fetch(args.out, packages, reference)


def run_main(argv=None) -> int:
    """`main` with the package's errors as one line on stderr and exit code 1."""
    from advsep_tf.cli.common import run

    return run(main, argv)


if __name__ == "__main__":
    sys.exit(run_main())
