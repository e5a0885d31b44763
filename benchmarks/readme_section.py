"""Writing a benchmark's results into its marked section of a results page (docs/), and its raw results as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_section(output: Path, name: str, text: str) -> None:
    """Replace the text between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` in ``output``
    (or append it with the markers when they are missing)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    section = f"{begin}\n{text.strip()}\n{end}"
    old = output.read_text() if output.is_file() else ""
    if begin in old and end in old:
        new = old[: old.index(begin)] + section + old[old.index(end) + len(end) :]
    else:
        new = old + ("\n" if old else "") + section + "\n"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(new)


def write_json(path: Path, results: Any) -> None:
    """The raw results beside the page (``reports/NAME.json``), for ``--from-json`` re-renders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=str))
