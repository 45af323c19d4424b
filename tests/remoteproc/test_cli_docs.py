"""docs/cli.md describes the parser as it is: every command has its row, every option and every choice is in it."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

from remoteproc.cli import build_parser

DOC = Path(__file__).resolve().parent.parent.parent / "docs" / "cli.md"


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*prefix, name))
        elif prefix:
            yield " ".join(prefix), action


def _rows(text: str, command: str) -> str:
    """The table rows that document ``rproc COMMAND`` (their first cell starts with it)."""
    start = f"| `rproc {command}"
    return "\n".join(line for line in text.splitlines() if line.startswith((f"{start} ", f"{start}`")))


def test_every_command_option_and_choice_is_in_the_docs() -> None:
    text = DOC.read_text()
    missing = []
    for command, action in _commands(build_parser()):
        rows = _rows(text, command)
        if not rows:
            missing.append(f"rproc {command}: no row")
            continue
        options = [o for o in action.option_strings if o not in ("-h", "--help")]
        if options and not any(re.search(re.escape(o) + r"(?![\w-])", rows) for o in options):
            missing.append(f"rproc {command}: {'/'.join(options)}")
        for choice in action.choices or () if action.option_strings else ():
            if not re.search(re.escape(str(choice)) + r"(?![\w-])", rows):
                missing.append(f"rproc {command}: {'/'.join(options)} {choice}")
    assert missing == []


def test_global_options_are_in_the_docs() -> None:
    intro = DOC.read_text().split("| command |")[0]
    for action in build_parser()._actions:
        if action.option_strings and action.dest not in ("help", "command"):
            assert any(o in intro for o in action.option_strings), action.option_strings
