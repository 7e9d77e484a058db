"""Write an artifact under a temporary name and rename it into place only when it is complete.

A failed export (conversion error, verification beyond tolerance, interrupt) leaves nothing:
neither the artifact, nor its temporary twin, nor the parent folders the export created.
"""

from __future__ import annotations

import contextlib
import os
import shutil

from advsep_tf.errors import AdvsepError


def _missing_parents(path: str) -> list[str]:
    """Ancestors of `path` that do not exist yet, outermost first."""
    missing = []
    parent = os.path.dirname(os.path.abspath(path))
    while parent and not os.path.exists(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    return missing[::-1]


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


@contextlib.contextmanager
def atomic_output(path: str, directory: bool):
    """Yield a temporary path beside `path`; on normal exit, move it to `path` (replacing what was
    there); on any error, remove it and the parent folders created for it."""
    path = path.rstrip("/") or path
    if os.path.exists(path) and os.path.isdir(path) != directory:
        kind = "a directory" if os.path.isdir(path) else "a file"
        raise AdvsepError(f"{path}: exists and is {kind}; remove it or choose another --out")
    created = _missing_parents(path)
    tmp = f"{path}.tmp"
    _remove(tmp)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        yield tmp
        if not os.path.lexists(tmp):
            raise AdvsepError(f"{path}: nothing was produced")
        _remove(path)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        for folder in reversed(created):  # innermost first; only if still empty
            try:
                os.rmdir(folder)
            except OSError:
                break
        raise
