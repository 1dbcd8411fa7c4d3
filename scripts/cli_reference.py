"""The command line reference (docs/cli.md), generated from the typer app itself, so that it cannot
drift from the code: `tests/unit/test_docs.py` fails when the file is not what this prints.

Usage: .venv/bin/python -m scripts.cli_reference [--write]
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from streams.ops.cli import app

OUT = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _params(command) -> list[str]:  # noqa: ANN001 - typer's own click
    rows = []
    for param in command.params:
        if param.name == "help":
            continue
        if param.param_type_name == "argument":
            name = f"`{param.name.upper()}`"
        else:
            name = ", ".join(f"`{opt}`" for opt in (*param.opts, *param.secondary_opts))
        default = param.default
        shown = "" if default in (None, False, ()) or callable(default) else f"`{default}`"
        rows.append(f"| {name} | {shown} | {_cell(getattr(param, 'help', '') or '')} |")
    return ["| option | default | what |", "|---|---|---|", *rows] if rows else []


def reference() -> str:
    root = typer.main.get_command(app)
    lines = [
        "# Command line reference",
        "",
        "Every `tally` command (`.venv/bin/tally` after `make install`), generated from the typer "
        "app by",
        "`.venv/bin/python -m scripts.cli_reference --write`; `tests/unit/test_docs.py` checks it "
        "is current.",
        "Settings given by flags here can also come from the environment "
        "([configuration](configuration.md)).",
        "",
    ]

    def walk(command, path: list[str]) -> None:  # noqa: ANN001
        if hasattr(command, "commands"):
            for name in sorted(command.commands):
                walk(command.commands[name], [*path, name])
            return
        lines.extend(
            [f"## `tally {' '.join(path)}`", "", " ".join((command.help or "").split()), ""]
        )
        table = _params(command)
        if table:
            lines.extend([*table, ""])

    walk(root, [])
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    text = reference()
    if "--write" in sys.argv:
        OUT.write_text(text)
        print(f"wrote {OUT} ({text.count(chr(10))} lines)")
    else:
        sys.stdout.write(text)
