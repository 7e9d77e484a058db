"""Every command's --help: each option has help text, the description is whole sentences, and an
epilog shows an example. The parsers are built in-process (their `parse_args` is stopped)."""

import argparse
import configparser
import importlib
from pathlib import Path

import pytest


def console_scripts() -> dict[str, str]:
    setup_cfg = configparser.ConfigParser()
    setup_cfg.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    lines = setup_cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=")) for line in lines)


COMMANDS = console_scripts()


class _Built(Exception):
    """Raised by parse_args with the parser that main built."""


def build_parser(target: str, monkeypatch) -> argparse.ArgumentParser:
    module = importlib.import_module(target.split(":")[0])

    def stop(self, *args, **kwargs):
        raise _Built(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", stop)
    with pytest.raises(_Built) as built:
        module.main([])
    return built.value.args[0]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_has_help_and_the_text_is_whole(name, monkeypatch):
    parser = build_parser(COMMANDS[name], monkeypatch)
    assert parser.prog == name
    missing = [
        "/".join(action.option_strings) or action.dest
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction)
        and (not action.help or action.help == argparse.SUPPRESS or not action.help.strip())
    ]
    assert not missing, f"{name}: options without help: {missing}"
    description = parser.description.strip()
    assert description.endswith("."), f"{name}: description cut off: {description!r}"
    assert description.count("(") == description.count(")"), description
    assert parser.epilog and "example" in parser.epilog.lower(), f"{name}: no example epilog"
    assert len(parser.format_help()) > 200


def test_help_names_mir1k_pretrained_and_one_demo_time(monkeypatch):
    prepare = build_parser(COMMANDS["advsep-tf-prepare"], monkeypatch).format_help()
    assert "mir1k" in prepare
    export = build_parser(COMMANDS["advsep-tf-export"], monkeypatch)
    model = next(a for a in export._actions if "--model" in a.option_strings)
    assert "pretrained" in model.help
    demo = build_parser(COMMANDS["advsep-tf-demo"], monkeypatch)
    quick = next(a for a in demo._actions if "--quick" in a.option_strings)
    assert "about 1 minute" in quick.help
    assert "about 10 minutes on 2 CPU cores" in demo.epilog and "10-15" not in demo.epilog
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "about 10 minutes on 2 CPU cores" in " ".join(readme.split())
    assert "about 1 minute" in readme
    docs_cli = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    assert "| `mir1k` |" in docs_cli


def test_every_command_specific_option_is_one_its_command_adds(monkeypatch):
    """options.COMMAND_OPTIONS changes an option for one command; a key naming an option the
    command does not add (a typo, an option moved away) would change nothing, silently."""
    from advsep_tf.cli import options

    for name, differences in options.COMMAND_OPTIONS.items():
        assert name in COMMANDS, f"COMMAND_OPTIONS names no command: {name}"
        parser = build_parser(COMMANDS[name], monkeypatch)
        added = {s for action in parser._actions for s in action.option_strings}
        stray = sorted(set(differences) - added)
        assert not stray, f"{name}: COMMAND_OPTIONS changes options it does not add: {stray}"
