"""File safety and structured I/O, the bottom layer every other module writes and reads through:
writing outputs without ever destroying a user's files (atomic writes, the overwrite policy),
reading JSON/YAML back, SHA-256 checksums, and paths that are URLs (`gs://`).

The rule: a command never deletes or replaces anything it did not create, unless the user asked
(`--overwrite`), and even then never the current directory, a folder holding one of its inputs
(the model being read, the data), or something that does not look like an earlier output of the
same command. Each refusal is one line naming the path and what was found there, raised before
any work.

Every file a later command reads is written under a temporary name in the destination's folder,
`.NAME.PID.TOKEN.tmp[SUFFIX]`, and renamed into place only when complete, so a failed or killed
command leaves the destination as it was. Where that name would pass the file system's 255-byte
limit, NAME is `#` and a hash of the final name, so any name the file system accepts can be
written. A folder that replaces another (an export with `--overwrite`) cannot be renamed over it:
the two are swapped in one step (Linux's renameat2 RENAME_EXCHANGE), so a reader of the path
finds the old folder or the new one at every instant, and the old one, now under the temporary
name, is removed. Where the system cannot swap (another OS, a file system without it), the old
one is first moved aside as `.NAME.PID.TOKEN.old` and the new one renamed in: for that instant
the path is missing (TF Serving's convention of numbered version folders, `serving/advsep/2`
beside `serving/advsep/1`, avoids replacing a folder at all). What a killed process left behind
(its pid no longer runs) is cleaned up by the next write to the same place: temporaries are
removed, and an output moved aside but never replaced is put back.

Deterministic kills for tests go through one hook, `kill_point_for_tests` (see there).

Paths with a scheme (`gs://bucket/shards`) go through `tf.io.gfile` (TensorFlow is imported only
for them): a Beam preparation may write its shard set to a bucket. There a rename is a copy, so a
reader may see a partial file while it runs; a temporary is cleaned up by nothing but the command
that made it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import uuid
from typing import Callable, Iterable

from advsep_tf.errors import AdvsepError

KILL_AT_ENV = "ADVSEP_TF_KILL_AT"
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.(?P<kind>tmp|old)(?:\..*)?$")


def kill_point_for_tests(point: str) -> None:
    """Test seam, and the only one: SIGKILL this process when the environment variable
    ADVSEP_TF_KILL_AT (KILL_AT_ENV) equals `point`; otherwise do nothing.

    The tests use it to kill a command at a deterministic instant and check what it leaves. The
    points, all in this module: "replace:NAME" just before NAME is renamed into place (its
    temporary complete), "swap:NAME" between moving an old folder NAME aside and renaming the new
    one in. Unset (as in any real use), it costs one dictionary look-up.
    """
    if os.environ.get(KILL_AT_ENV) == point:
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def is_url(path: str) -> bool:
    """Whether `path` names a file system of tf.io.gfile's (gs://, s3://, ...), not a local path."""
    return "://" in path


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def _split(path: str) -> tuple[str, str]:
    if is_url(path):
        folder, name = path.rstrip("/").rsplit("/", 1)
        return folder, name  # os.path.abspath would make "gs://b/x" "/cwd/gs:/b/x"
    return os.path.split(os.path.abspath(path))


def open_file(path: str | os.PathLike, mode: str = "r"):
    """`open(path, mode)` (text as UTF-8), or tf.io.gfile's for a URL."""
    path = os.fspath(path)
    if is_url(path):
        return _gfile().GFile(path, mode)
    return open(path, mode, encoding=None if "b" in mode else "utf-8")


# The longest file name (in bytes) of the file systems in use: ext4, XFS, btrfs, APFS, NTFS.
NAME_MAX = 255


def _short_name(name: str) -> str:
    """What a temporary of output `name` is named after when `name` itself is too long for it."""
    return "#" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def temporary_path(path: str, suffix: str = "", kind: str = "tmp") -> str:
    """A fresh name beside `path` that a reader globbing for outputs does not match, and that is
    no longer than NAME_MAX bytes whatever the length of `path`'s name.

    `suffix` is for writers that choose the format by extension (Keras: ".keras", ".weights.h5").
    """
    folder, name = _split(path)
    tail = f".{os.getpid()}.{uuid.uuid4().hex[:8]}.{kind}{suffix}"
    leaf = f".{name}{tail}"
    if len(leaf.encode("utf-8", "surrogateescape")) > NAME_MAX:
        leaf = f".{_short_name(name)}{tail}"
    return f"{folder}/{leaf}" if is_url(path) else os.path.join(folder, leaf)


def is_temporary(name: str) -> bool:
    """Whether the file name `name` is one `temporary_path` makes."""
    return _LEFTOVER.match(name) is not None


def move_into_place(tmp: str, path: str) -> None:
    """Rename the complete temporary `tmp` to `path`, replacing what is there (the test seam
    "replace:NAME" is here)."""
    kill_point_for_tests(f"replace:{_split(path)[1]}")
    if is_url(path):
        _gfile().rename(tmp, path, overwrite=True)
    else:
        os.replace(tmp, path)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove(path: str) -> None:
    """Remove the file or folder `path`, if there."""
    if is_url(path):
        gfile = _gfile()
        if gfile.isdir(path):
            gfile.rmtree(path)
        elif gfile.exists(path):
            gfile.remove(path)
    elif os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def remove_stale_temporaries(folder: str, name: str | None = None) -> list[str]:
    """Clean up after killed writers in `folder` (only those of output `name`, if given).

    Temporaries of processes that no longer run are removed; an output a killed replacement had
    moved aside (`.NAME.PID.TOKEN.old`) is put back when nothing took its place, else removed.
    Returns the paths removed or put back.
    """
    try:
        entries = sorted(os.listdir(folder))
    except OSError:
        return []
    cleaned = []
    for entry in entries:
        match = _LEFTOVER.match(entry)
        if not match or (name is not None and match["name"] not in (name, _short_name(name))):
            continue
        if _running(int(match["pid"])):
            continue
        path = os.path.join(folder, entry)
        hashed = match["name"].startswith("#")
        original = os.path.join(folder, name if hashed and name is not None else match["name"])
        if match["kind"] == "old" and not os.path.lexists(original):
            if hashed and name is None:
                continue  # whose it is only a write of that name can tell: left for it
            os.replace(path, original)
        else:
            remove(path)
        cleaned.append(path)
    return cleaned


def _exchange(first: str, second: str) -> bool:
    """Swap the two paths in one step (renameat2 RENAME_EXCHANGE); False where this system or
    file system cannot, having changed nothing."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # a C library older than glibc 2.28
        return False
    at_fdcwd, rename_exchange = -100, 2
    path_type, int_type = ctypes.c_char_p, ctypes.c_int
    renameat2.argtypes = [int_type, path_type, int_type, path_type, ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(error, os.strerror(error), second)


@contextlib.contextmanager
def atomic_file(path: str, suffix: str = ""):
    """Yield a temporary path beside `path` for a writer to fill; rename it to `path` on success,
    remove it on any error. The destination's folder must exist."""
    if not is_url(path):
        remove_stale_temporaries(*_split(path))
    tmp = temporary_path(path, suffix)
    try:
        yield tmp
        if not (_gfile().exists(tmp) if is_url(path) else os.path.lexists(tmp)):
            raise AdvsepError(f"{path}: nothing was written")
        move_into_place(tmp, path)
    except BaseException:
        remove(tmp)
        raise


def write_atomically(path: str | os.PathLike, content: str | bytes) -> None:
    """Write `content` (text as UTF-8, newlines as given) to `path` through a temporary name."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    with atomic_file(os.fspath(path)) as tmp:
        with open_file(tmp, "wb") as f:
            f.write(data)


def write_figure(figure, path: str | os.PathLike, dpi: int = 100) -> None:
    """Lay out a matplotlib figure, write it to `path` through a temporary name (the format from
    `path`'s extension) and close it: reports draw many figures, and pyplot keeps every open one."""
    import matplotlib.pyplot as plt

    path = os.fspath(path)
    figure.tight_layout()
    with atomic_file(path) as tmp:
        figure.savefig(tmp, format=os.path.splitext(path)[1].lstrip(".") or "png", dpi=dpi)
    plt.close(figure)


# -- reading back ---------------------------------------------------------------------------------


def load_json_or_yaml(path: str | os.PathLike, what: str):
    """The content of the JSON file `path` (YAML for .yaml/.yml). A missing, unreadable or invalid
    file raises one AdvsepError line naming the file and `what` it should be ("config file")."""
    path = os.fspath(path)
    if not (_gfile().exists(path) if is_url(path) else os.path.isfile(path)):
        raise AdvsepError(f"{path}: {what} not found")
    try:
        with open_file(path) as f:
            if path.endswith((".yaml", ".yml")):
                import yaml

                return yaml.safe_load(f)
            return json.load(f)
    except Exception as exc:  # noqa: BLE001 - any read or parse error is the file's
        detail = " ".join(str(exc).split())  # YAML's messages span lines
        raise AdvsepError(
            f"{path}: not a valid {what} ({exc.__class__.__name__}: {detail})"
        ) from None


def sha256_of(path: str | os.PathLike) -> str:
    """The file's SHA-256, as hex."""
    digest = hashlib.sha256()
    with open_file(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- what a command may write where ----------------------------------------------------------------


def _found(path: str, limit: int = 4) -> str:
    """What is at `path`, for a refusal: "holds a.txt, b/ and 3 more" or "is a file of 12 bytes"."""
    if not os.path.isdir(path):
        return f"is a file of {os.path.getsize(path)} bytes"
    entries = sorted(os.listdir(path))
    shown = [e + ("/" if os.path.isdir(os.path.join(path, e)) else "") for e in entries[:limit]]
    more = f" and {len(entries) - limit} more" if len(entries) > limit else ""
    return "holds " + ", ".join(shown) + more


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def refuse_protected(path: str, protected: dict[str, str], option: str = "--out") -> None:
    """Refuse an output that is, or holds, a protected path ({path: what it is, e.g. "the model
    being exported"}); the current directory is always protected."""
    real = os.path.realpath(path)
    for other, description in {os.getcwd(): "the current directory", **protected}.items():
        other_real = os.path.realpath(other)
        if real == other_real:
            raise AdvsepError(f"{path}: is {description}; {option} must name a new path")
        if _inside(other_real, real):
            raise AdvsepError(
                f"{path}: holds {description} ({other}); {option} must name a new path"
            )


def check_writable(path: str, option: str = "--out") -> None:
    """Refuse an output path whose nearest existing ancestor is a file or is read-only."""
    folder = os.path.abspath(path)
    while not os.path.lexists(folder):
        folder = os.path.dirname(folder)
    if folder != os.path.abspath(path) and not os.path.isdir(folder):
        raise AdvsepError(f"{path}: cannot be created: {folder} is a file, not a folder ({option})")
    target = folder if os.path.isdir(folder) else os.path.dirname(folder)
    if not os.access(target, os.W_OK | os.X_OK):
        raise AdvsepError(f"{path}: cannot write there: {target} is not writable ({option})")


def check_output_folder(
    path: str, looks_like: Callable[[str], bool], what: str, option: str = "--out"
) -> None:
    """A folder a command writes into must be new, empty, or `what` (an earlier output of the
    same command, recognised by `looks_like`); anything else holds someone's files."""
    check_writable(path, option)
    if not os.path.lexists(path):
        return
    if not os.path.isdir(path):
        raise AdvsepError(f"{path}: exists and is a file; {option} must be a folder")
    if os.listdir(path) and not looks_like(path):
        raise AdvsepError(
            f"{path}: {_found(path)}, not {what}; this command writes only into a new or empty "
            f"folder or {what}: choose another {option}"
        )


def check_output_files(
    paths: Iterable[str],
    overwrite: bool,
    what: str,
    protected: dict[str, str] | None = None,
    option: str = "--out",
) -> None:
    """Files a command is about to write: those that exist are replaced only with `overwrite`, only
    when they are files, and never when protected ({path: what it is})."""
    protected_real = {os.path.realpath(p): d for p, d in (protected or {}).items()}
    for path in paths:
        real = os.path.realpath(path)
        for other, description in protected_real.items():
            if _inside(other, real):
                raise AdvsepError(
                    f"{path}: is {description}; this command would replace it: choose another "
                    f"{option}"
                )
        folder = os.path.dirname(os.path.abspath(path))
        while not os.path.lexists(folder):
            folder = os.path.dirname(folder)
        if not os.path.isdir(folder):
            raise AdvsepError(f"{path}: cannot be written: {folder} is a file, not a folder")
        if not os.path.lexists(path):
            continue
        if os.path.isdir(path):
            raise AdvsepError(f"{path}: exists and is a folder, where this command writes {what}")
        if not overwrite:
            raise AdvsepError(
                f"{path}: exists; pass --overwrite to replace {what}, or choose another {option}"
            )


@contextlib.contextmanager
def atomic_output(
    path: str,
    directory: bool,
    overwrite: bool = False,
    looks_like: Callable[[str], bool] | None = None,
    what: str = "an earlier export",
    protected: dict[str, str] | None = None,
):
    """Yield a temporary path beside `path`; on normal exit, move it to `path`; on any error,
    remove it and the parent folders created for it, leaving `path` as it was.

    An existing `path` is replaced only with `overwrite`, only when `looks_like(path)` says it is
    `what`, and never when it is or holds the current directory or a `protected` path; an empty
    folder holds nothing to lose and is replaced without asking.
    """
    path = path.rstrip("/") or path
    check_replaceable(path, directory, overwrite, looks_like, what, protected)
    created = _missing_parents(path)
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    remove_stale_temporaries(folder, name)
    tmp = temporary_path(path)
    try:
        yield tmp
        if not os.path.lexists(tmp):
            raise AdvsepError(f"{path}: nothing was produced")
        if os.path.isdir(path) and not os.path.islink(path):
            kill_point_for_tests(f"replace:{name}")
            if _exchange(tmp, path):
                kill_point_for_tests(f"swap:{name}")
                remove(tmp)  # the old folder, now under the temporary name
            else:
                aside = temporary_path(path, kind="old")
                os.replace(path, aside)
                kill_point_for_tests(f"swap:{name}")
                os.replace(tmp, path)
                remove(aside)
        else:
            move_into_place(tmp, path)
    except BaseException:
        remove(tmp)
        for parent in reversed(created):  # innermost first; only if still empty
            try:
                os.rmdir(parent)
            except OSError:
                break
        raise


def check_replaceable(
    path: str,
    directory: bool,
    overwrite: bool,
    looks_like: Callable[[str], bool] | None,
    what: str,
    protected: dict[str, str] | None = None,
    option: str = "--out",
) -> None:
    """What `atomic_output` refuses, callable on its own to refuse before any work."""
    refuse_protected(path, protected or {}, option)
    check_writable(path, option)
    if not os.path.lexists(path):
        return
    is_directory = os.path.isdir(path)
    if is_directory != directory:
        kind = "a folder" if is_directory else "a file"
        wanted = "a folder" if directory else "a file"
        raise AdvsepError(f"{path}: exists and is {kind}; {option} names {wanted} here")
    if is_directory and not os.listdir(path):
        return
    if not overwrite:
        raise AdvsepError(
            f"{path}: exists; pass --overwrite to replace {what}, or choose another {option}"
        )
    if looks_like is not None and not looks_like(path):
        raise AdvsepError(
            f"{path}: {_found(path)}, not {what}; not replaced, even with --overwrite: choose "
            f"another {option}"
        )


@contextlib.contextmanager
def folders_removed_on_failure(*paths: str):
    """The folders among `paths` and their ancestors that do not exist yet are removed again,
    innermost first, if the block fails and leaves them empty: a failed command leaves no empty
    folder of its own behind."""
    missing = {parent for path in paths for parent in _missing_parents(os.path.join(path, "x"))}
    created = sorted(missing, key=len, reverse=True)
    try:
        yield
    except BaseException:
        for folder in created:
            try:
                os.rmdir(folder)
            except OSError:
                pass  # not empty, or not made: kept
        raise


def _missing_parents(path: str) -> list[str]:
    """Ancestors of `path` that do not exist yet, outermost first."""
    missing = []
    parent = os.path.dirname(os.path.abspath(path))
    while parent and not os.path.exists(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    return missing[::-1]
