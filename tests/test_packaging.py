"""setup.cfg declares what the package imports: every third-party module that advsep_tf,
data_pipelines/ or export/ imports comes from a distribution in install_requires or in an extra
for users (litert, beam; not test)."""

import ast
import configparser
import importlib.metadata
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = ("advsep_tf", "data_pipelines", "export")


def declared() -> set[str]:
    setup_cfg = configparser.ConfigParser()
    setup_cfg.read(ROOT / "setup.cfg")
    lines = setup_cfg["options"]["install_requires"].splitlines()
    extras = setup_cfg["options.extras_require"]
    lines += [line for name in extras if name != "test" for line in extras[name].splitlines()]
    names = {
        re.split(r"[<>=!~\[; ]", line.strip(), maxsplit=1)[0] for line in lines if line.strip()
    }
    return {normalise(name) for name in names if name and not name.startswith("#")}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_top_level_modules() -> set[str]:
    modules = set()
    for folder in PACKAGE_FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    modules |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"advsep_tf", "__future__"}


def test_every_imported_distribution_is_declared():
    distributions = importlib.metadata.packages_distributions()
    missing = {}
    for module in sorted(imported_top_level_modules()):
        names = {normalise(d) for d in distributions.get(module, [module])}
        if not names & declared():
            missing[module] = sorted(names)
    assert not missing, f"imported but not declared in setup.cfg: {missing}"
