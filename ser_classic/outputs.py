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
from typing import IO, Any

import pandas as pd

from .atomic import atomic_output
from .errors import SERError

__all__ = ["ROW_FORMATS", "format_for", "write_rows", "write_table"]

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
) -> int:
    """Write rows to ``output`` (atomically) or stdout as they come; returns how many."""
    if output is None:
        return _write_stream(rows, columns, fmt, sys.stdout)
    with atomic_output(output, "w") as stream:
        return _write_stream(rows, columns, fmt, stream)


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
