"""Writers for prediction rows (CSV, JSONL, a terminal table) and feature tables.

File outputs are atomic (see :mod:`ser_classic.atomic`): an interrupted run leaves the old
file or none, never a partial one.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .atomic import atomic_output
from .errors import SERError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ROW_FORMATS", "format_for", "read_jsonl_rows", "write_rows", "write_table"]

#: Output formats of prediction rows.
ROW_FORMATS = ("csv", "jsonl", "table")


def format_for(output: str | PathLike[str] | None, requested: str | None) -> str:
    """The row format: as requested, else from the output's ending, else ``table`` on a terminal."""
    if requested is not None:
        if requested not in ROW_FORMATS:
            raise SERError(f"unknown format {requested!r}; choose from {list(ROW_FORMATS)}")
        return requested
    if output is not None:
        return "jsonl" if Path(output).suffix.lower() in {".jsonl", ".json", ".ndjson"} else "csv"
    return "table" if sys.stdout.isatty() else "csv"


def _clean(value: Any) -> Any:
    """JSON-safe scalar: NaN and missing values become ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_stream(rows: Iterable[dict[str, Any]], columns: Sequence[str], fmt: str, stream: IO[str]) -> int:
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(stream, fieldnames=list(columns), lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in columns})
            stream.flush()
            count += 1
    elif fmt == "jsonl":
        for row in rows:
            stream.write(json.dumps({key: _clean(row.get(key)) for key in columns}, ensure_ascii=False) + "\n")
            stream.flush()
            count += 1
    else:
        import pandas as pd

        table = pd.DataFrame(list(rows), columns=list(columns))
        count = len(table)
        shown = [c for c in ("path", "emotion", "confidence", "error") if c in table.columns]
        stream.write(table[shown].fillna("").to_string(index=False, float_format=lambda v: f"{v:.3f}") + "\n")
    return count


def write_rows(
    rows: Iterable[dict[str, Any]],
    columns: Sequence[str],
    fmt: str,
    output: str | PathLike[str] | None = None,
    *,
    keep_on_interrupt: bool = False,
) -> int:
    """Write rows to ``output`` (atomically) or stdout as they come; returns how many.

    ``keep_on_interrupt`` (JSONL ``output`` only): Ctrl-C keeps the rows written so far in
    ``output``, each complete, for a later run to resume (see :func:`read_jsonl_rows`).
    Otherwise an interrupted run leaves ``output`` as it was.
    """
    if output is None:
        return _write_stream(rows, columns, fmt, sys.stdout)
    if keep_on_interrupt and fmt != "jsonl":
        raise SERError(f"only JSONL output can be kept when interrupted, not {fmt}", output)
    with atomic_output(output, "w", keep_lines_on_interrupt=keep_on_interrupt) as stream:
        return _write_stream(rows, columns, fmt, stream)


def read_jsonl_rows(path: str | PathLike[str]) -> list[dict[str, Any]]:
    """The rows of a JSONL output written by :func:`write_rows`; none if the file does not exist.

    An unfinished last line (no newline, not JSON) is left out. Any other line that is not a
    JSON object with a ``path`` raises :class:`SERError`: the file is not one of ours.
    """
    source = Path(path)
    if not source.exists():
        return []
    try:
        lines = source.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as error:
        raise SERError(f"cannot read the earlier output ({error})", path) from None
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            if number == len(lines):  # the unfinished line an interrupted writer may leave
                break
            row = None
        if not isinstance(row, dict) or not isinstance(row.get("path"), str):
            raise SERError(f"line {number} is not a prediction row", path)
        rows.append(row)
    return rows


def write_table(table: pd.DataFrame, output: str | PathLike[str]) -> None:
    """A DataFrame to ``.parquet`` or ``.csv`` (by the ending), atomically."""
    suffix = Path(output).suffix.lower()
    if suffix not in {".parquet", ".csv"}:
        raise SERError("output must end in .parquet or .csv", output)
    with atomic_output(output, "wb") as stream:
        if suffix == ".parquet":
            table.to_parquet(stream)
        else:
            stream.write(table.to_csv().encode())
