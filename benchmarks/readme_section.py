"""Writing a benchmark's results into its marked section of a results page (docs/)."""

from __future__ import annotations

from pathlib import Path


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
