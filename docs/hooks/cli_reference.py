"""MkDocs hook: the CLI reference page (``cli.md``) is generated from the typer app at build time.

The page holds a short introduction and the marker ``<!-- cli-reference -->``; this hook puts
there, for ``ser`` and each of its commands, the help text, the usage line and a table of the
arguments and options, exactly as ``ser COMMAND --help`` states them. The reference therefore
cannot go stale: a new command or option appears on the next ``mkdocs build``.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path
from typing import Any

MARKER = "<!-- cli-reference -->"
PAGE = "cli.md"


def _escape(text: str) -> str:
    """Markdown-safe text: HTML special characters escaped outside `code spans`."""
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(part if part.startswith("`") else html.escape(part, quote=False) for part in parts)


def _cell(text: str) -> str:
    return _escape(" ".join(text.split())).replace("|", "\\|")


def _help_blocks(text: str) -> list[str]:
    """A command's help as Markdown paragraphs; its ``Example: ...`` lines as a console block."""
    blocks = []
    for paragraph in text.strip().split("\n\n"):
        flat = " ".join(paragraph.split())
        if flat.startswith("Example: "):
            blocks.append("Example:\n\n```console\n$ " + flat.removeprefix("Example: ") + "\n```")
        else:
            blocks.append(_escape(flat))
    return blocks


def _parameters_table(command: Any, context: Any) -> list[str]:
    rows = ["| argument or option | description |", "|---|---|"]
    for parameter in command.get_params(context):
        record = parameter.get_help_record(context)
        if record is None or parameter.name == "help":
            continue
        names, description = record
        rows.append(f"| `{names}` | {_cell(description)} |")
    return rows if len(rows) > 2 else []


def cli_reference() -> str:
    """Markdown reference of the ``ser`` command and every command under it."""
    import click
    import typer.main

    from ser_classic.cli import app

    group = typer.main.get_command(app)
    root = click.Context(group, info_name="ser")
    lines = [*_help_blocks(group.help or ""), ""]
    lines += ["| command | what it does |", "|---|---|"]
    for name, command in group.commands.items():
        if not command.hidden:
            lines.append(f"| [`ser {name}`](#ser-{name}) | {_cell(command.get_short_help_str(limit=200))} |")
    for name, command in group.commands.items():
        if command.hidden:
            continue
        context = click.Context(command, info_name=name, parent=root)
        usage = " ".join(["ser", name, *command.collect_usage_pieces(context)])
        lines += ["", f"## `ser {name}` {{#ser-{name}}}", ""]
        lines += [block + "\n" for block in _help_blocks(command.help or "")]
        lines += ["```console", f"$ {usage}", "```", ""]
        lines += _parameters_table(command, context)
    return "\n".join(lines) + "\n"


def on_config(config: Any, **kwargs: Any) -> Any:
    """Import ``ser_classic`` from the checkout being documented (as mkdocstrings reads it),
    not from wherever it may be installed."""
    root = str(Path(config.config_file_path).resolve().parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    return config


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{PAGE} lacks the marker {MARKER!r} where the generated reference goes")
    return markdown.replace(MARKER, cli_reference())
