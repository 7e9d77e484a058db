"""TensorFlow's C++ logging, quiet unless the user set it: importing advsep-tf prints nothing.

Measured with TensorFlow 2.21 on a machine without a GPU: `import tensorflow` prints "All log
messages before absl::InitializeLog() ..." and `I0000` lines (oneDNN, cudart_stub) before its
logging reads TF_CPP_MIN_LOG_LEVEL, so no level hides them; the first op then prints an `E0000 ...
failed call to cuInit` line, which TF_CPP_MIN_LOG_LEVEL=3 hides (2 does not). So `install`, which
`import advsep_tf` runs before anything imports TensorFlow, sets TF_CPP_MIN_LOG_LEVEL=3 and
silences the process's stderr (file descriptor 2) while TensorFlow itself is imported, and only
then. A user who set TF_CPP_MIN_LOG_LEVEL to 0, 1 or 2 gets TensorFlow's logging untouched, as do
the commands' --verbose (`show`); 3 (also what a child process inherits from this one) asks for
no logging, and gets none. Python errors raised by the import are not lost: they propagate
after stderr is restored.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys

LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LEVEL = "3"


@contextlib.contextmanager
def stderr_silenced():
    """File descriptor 2 goes to the null device for the block (C++ writes included)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _QuietLoader(importlib.abc.Loader):
    """The `tensorflow` package's own loader, run with stderr silenced."""

    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        uninstall()  # once imported, TensorFlow has printed its start-up lines
        # The module's loader is TensorFlow's own again once it runs (importlib.resources and
        # friends ask it for files).
        module.__loader__ = module.__spec__.loader = self.loader
        with stderr_silenced():
            self.loader.exec_module(module)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as the rest of sys.meta_path would, and hands it a quiet loader (until
    it is imported: a `find_spec` that only looks, as Keras's, changes nothing)."""

    searching = False

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow" or self.searching:
            return None
        self.searching = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self.searching = False
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


_FINDER = _QuietTensorFlowFinder()


def install() -> None:
    """Quiet TensorFlow's C++ logging, unless the user set TF_CPP_MIN_LOG_LEVEL below 3 or
    TensorFlow is already imported (its start-up lines are then printed already)."""
    if os.environ.get(LEVEL_ENV, QUIET_LEVEL) != QUIET_LEVEL:
        return
    if "tensorflow" in sys.modules or _FINDER in sys.meta_path:
        return
    os.environ[LEVEL_ENV] = QUIET_LEVEL
    sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def show() -> None:
    """TensorFlow's logging as it would be without advsep-tf (--verbose), if it is not imported
    yet: start-up lines and errors (TF_CPP_MIN_LOG_LEVEL=2 unless the user set a level)."""
    if _FINDER in sys.meta_path:
        uninstall()
        os.environ[LEVEL_ENV] = "2"
