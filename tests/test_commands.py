"""One command convention: every subcommand is a module of cyclestyle/commands/, cli.py a table."""

from __future__ import annotations

import argparse
import ast

import pytest

from cyclestyle import cli

from .conftest import REPO

PACKAGE = REPO / "cyclestyle"


def test_help_lists_every_registered_command_in_the_table_order():
    text = cli.build_parser().format_help()
    positions = [text.index(f"    {name} ") if f"    {name} " in text else text.index(f"    {name}\n")
                 for name in cli.COMMANDS.names()]
    assert positions == sorted(positions)
    assert len(cli.COMMANDS) >= 12


@pytest.mark.parametrize("name", cli.COMMANDS.names())
def test_every_command_module_has_its_texts_add_arguments_and_run(name):
    module = cli.COMMANDS.get(name)
    assert module.__name__.startswith("cyclestyle.commands.")
    assert isinstance(module.HELP, str) and module.HELP
    assert isinstance(module.DESCRIPTION, str) and module.DESCRIPTION
    assert module.EPILOG is None or isinstance(module.EPILOG, str)
    assert issubclass(module.FORMATTER_CLASS, argparse.HelpFormatter)
    assert callable(module.add_arguments) and callable(module.run)
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    assert parser.format_help()


def test_every_module_of_the_commands_folder_is_registered():
    registered = {module.__name__.rsplit(".", 1)[1] for module in cli.COMMANDS.values()}
    on_disk = {p.stem for p in (PACKAGE / "commands").glob("*.py") if p.stem != "__init__"}
    assert on_disk == registered


def test_no_library_module_parses_arguments():
    """argparse (and the Namespace a parser makes) belongs to cyclestyle/commands/ and cli.py."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "commands" or rel.as_posix() == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{rel}:{node.lineno}" for n in names if n.split(".")[0] == "argparse"]
    assert offenders == []


def test_an_unknown_command_is_a_usage_error_listing_the_commands(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["trian"])
    assert stop.value.code == 2
    assert "choose from 'train', 'style-train'" in capsys.readouterr().err
