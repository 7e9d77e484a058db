"""The package's layers point one way, and its front door is quiet.

Imports are read from the source (every .py under advsep_tf/, data_pipelines/, export/ and
benchmarks/), module-level and function-level alike: `advsep_tf.export` is a leaf that only the
command line (advsep_tf/cli/) and the tests import, and no package modules import each other in a
cycle. `from advsep_tf import Separator` prints nothing, and every name of `advsep_tf.__all__`
resolves. The LiteRT runner, which runs without advsep_tf, plans the segments the package's
segment walker runs.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import walked_segments

ROOT = Path(__file__).resolve().parents[1]
# Folder -> the package it installs as (setup.py's package_dir).
FOLDERS = {
    "advsep_tf": "advsep_tf",
    "data_pipelines": "advsep_tf.data_pipelines",
    "export": "advsep_tf.export",
    "benchmarks": "benchmarks",
}


def package_modules() -> dict[str, Path]:
    """{dotted module name: its file} for every .py under FOLDERS."""
    modules = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


def imports(path: Path, module: str, modules) -> set[str]:
    """The dotted names `path` imports (relative imports resolved), at any depth of its code:
    `from X import Y` imports X.Y where that is one of `modules`, else X."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                name = f"{base}.{alias.name}"
                names.add(name if name in modules else base)
    return names


def import_graph() -> dict[str, set[str]]:
    """{package module: the package modules it imports}."""
    modules = package_modules()
    return {
        module: {name for name in imports(path, module, modules) if name in modules} - {module}
        for module, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                group.append(other)
                if other == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_only_the_command_line_imports_the_export_package():
    def inside(name, package):
        return name == package or name.startswith(package + ".")

    modules = package_modules()
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for module, path in modules.items()
        if not inside(module, "advsep_tf.export") and not inside(module, "advsep_tf.cli")
        for name in sorted(imports(path, module, modules))
        if inside(name, "advsep_tf.export")
    ]
    assert not offenders, "\n".join(offenders)


def test_the_package_modules_import_each_other_in_no_cycle():
    graph = import_graph()
    assert "advsep_tf.separate" in graph and "advsep_tf.files" in graph  # the walk found them
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_importing_the_separator_prints_nothing_and_every_public_name_resolves(tmp_path):
    code = "from advsep_tf import Separator\n"
    # The user's own TF_CPP_MIN_LOG_LEVEL (this process has advsep_tf's) would be respected.
    quiet = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
    )
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert (quiet.stdout, quiet.stderr) == ("", "")

    import advsep_tf

    assert "Separator" in advsep_tf.__all__ and "AdversarialSeparator" in advsep_tf.__all__
    for name in advsep_tf.__all__:
        assert getattr(advsep_tf, name) is not None, name
    assert set(advsep_tf.__all__) <= set(dir(advsep_tf))
    with pytest.raises(AttributeError):
        advsep_tf.not_a_name  # noqa: B018


def test_importing_the_package_imports_no_tensorflow():
    code = "import sys, advsep_tf; print('tensorflow' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == "False", result.stderr[-2000:]


@pytest.mark.parametrize(
    "n_fft, n_hop, nb_frames, seconds",
    [
        (512, 256, 64, 30.0),
        (64, 32, 16, None),
        (1024, 256, 128, 10.0),
    ],
)
def test_the_litert_runner_plans_the_segments_the_walker_runs(n_fft, n_hop, nb_frames, seconds):
    from advsep_tf import transforms
    from advsep_tf.export import litert_runner

    quantum = transforms.inference_patch_hop(nb_frames) * n_hop
    shortest = transforms.minimum_model_segment(n_fft, n_hop, nb_frames)
    size = shortest
    if seconds is not None:
        size = max(shortest, -(-int(seconds * 8192) // quantum) * quantum)
    layout = transforms.model_segment_layout(n_fft, n_hop, nb_frames, size)
    for length in (1, size - 1, size, size + 1, 3 * size + 77, 7 * layout.step + 5):
        walked = walked_segments(length, layout, block=4096)
        assert litert_runner.plan_segments(length, layout.to_dict()) == walked, length
