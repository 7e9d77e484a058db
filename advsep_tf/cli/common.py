"""Shared front-end plumbing: a parser with --verbose, and one error line instead of a traceback.
The options themselves are defined in `options`.

Exit codes: 0 success, 1 bad input (one line naming the file and the problem), 2 bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import traceback

from advsep_tf.cli import options


def parser(prog: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """A command's parser, with --verbose; an epilog keeps its line breaks. `description` may be
    the command module's docstring: its first paragraph is the description, never cut off."""
    import textwrap

    # Wrapped here: with a multi-line epilog, argparse prints the description as it is given.
    description = textwrap.fill(" ".join(description.strip().split("\n\n")[0].split()), 79)
    p = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter
        if epilog and "\n" in epilog
        else argparse.HelpFormatter,
    )
    options.add(p, "--verbose")
    return p


def command_line(prog: str, argv=None) -> str:
    """The command as a user would type it again: `prog` and the arguments, shell-quoted."""
    import shlex

    return shlex.join([prog, *(sys.argv[1:] if argv is None else argv)])


def quiet_tensorflow(verbose: bool = False) -> None:
    """Import TensorFlow once the arguments are parsed: quietly (`advsep_tf.tensorflow_logging`,
    which `import advsep_tf` set up), or with `verbose` with its own logging.

    Users of a command-line tool should see its progress and its errors, not TensorFlow's
    start-up lines (oneDNN, CUDA probing).
    """
    from advsep_tf import tensorflow_logging

    if verbose:
        tensorflow_logging.show()
    with modules_skipped(KERAS_EXTRAS):
        import tensorflow  # noqa: F401


# Importing TensorFlow imports Keras, and Keras imports scikit-learn (for its scikit-learn
# wrappers) and matplotlib (for its image plots) whenever they are installed: about a quarter of
# the import's CPU time on 2 cores (4.5 s against 3.3 s, benchmarks/bench_startup.py). No command
# uses either integration, so they are skipped while TensorFlow is imported; a command that plots
# imports matplotlib itself afterwards, as usual.
KERAS_EXTRAS = ("sklearn", "matplotlib")


@contextlib.contextmanager
def modules_skipped(names):
    """Within the block, `import name` of these (not yet imported) modules raises ImportError,
    which the importers' optional-dependency fallbacks catch; afterwards they import normally."""
    skipped = [name for name in names if name not in sys.modules]
    sys.modules.update(dict.fromkeys(skipped))
    try:
        yield
    finally:
        for name in skipped:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def console_script(main):
    """The function a console script calls: `run(main)`, returning its exit code."""
    return functools.partial(run, main)


def run(main, argv=None) -> int:
    """Call `main(argv)` and turn the package's errors into one line and exit code 1 (bad input)
    or 2 (`UsageError`, bad usage, as argparse's own errors)."""
    from advsep_tf.errors import AdvsepError, UsageError

    verbose = "--verbose" in (sys.argv[1:] if argv is None else argv)
    try:
        main(argv)
        return 0
    except AdvsepError as exc:
        if verbose:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence of a command-line tool
        if verbose:
            traceback.print_exc()
        print(
            f"error: {exc.__class__.__name__}: {exc} (rerun with --verbose for the traceback)",
            file=sys.stderr,
        )
        return 1
