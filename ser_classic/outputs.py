"""Writers for prediction rows (CSV, JSONL, a terminal table) and feature tables.

File outputs are atomic (see :mod:`ser_classic.atomic`): a failed run leaves the old file or
none, never a partial one; a stopped run may keep the complete rows it wrote, for a later run
to resume.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from importlib.util import find_spec
from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from .atomic import atomic_output
from .errors import SERError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RESUMABLE_FORMATS", "ROW_FORMATS", "RowWriter", "format_for", "read_jsonl_rows", "read_rows", "write_rows", "write_table"]

#: Output formats of prediction rows.
ROW_FORMATS = ("csv", "jsonl", "table")
#: The row formats that a stopped run keeps and a later run reads back (``--resume``).
RESUMABLE_FORMATS = ("csv", "jsonl")


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


def _csv_cell(value: Any) -> Any:
    """A CSV cell: missing values empty, booleans ``true``/``false`` as in JSON (numpy's too)."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    return value


class RowWriter:
    """CSV (header first) or JSONL rows written to a text stream one at a time, each flushed as
    it comes: a reader of the stream, or of the file under it, sees every row at once, and a
    process killed outright leaves its rows complete but the last."""

    def __init__(self, stream: IO[str], columns: Sequence[str], fmt: str) -> None:
        if fmt not in RESUMABLE_FORMATS:
            raise SERError(f"rows are written one at a time as csv or jsonl, not {fmt}")
        self.stream, self.columns, self.format = stream, list(columns), fmt
        self._csv = None
        if fmt == "csv":
            self._csv = csv.DictWriter(stream, fieldnames=self.columns, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
            self._csv.writeheader()
            stream.flush()

    def write(self, row: dict[str, Any]) -> None:
        if self._csv is not None:
            self._csv.writerow({key: _csv_cell(row.get(key)) for key in self.columns})
        else:
            self.stream.write(json.dumps({key: _clean(row.get(key)) for key in self.columns}, ensure_ascii=False) + "\n")
        self.stream.flush()


def _write_stream(rows: Iterable[dict[str, Any]], columns: Sequence[str], fmt: str, stream: IO[str]) -> int:
    count = 0
    if fmt in RESUMABLE_FORMATS:
        writer = RowWriter(stream, columns, fmt)
        for row in rows:
            writer.write(row)
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
    resumed_rows: int = 0,
) -> int:
    """Write rows to ``output`` (atomically) or stdout as they come; returns how many.

    ``keep_on_interrupt`` (CSV or JSONL ``output`` only): a stop (Ctrl-C, SIGTERM, SIGHUP; see
    :mod:`ser_classic.interruption`) keeps the rows written so far in ``output``, each
    complete, for a later run to resume (see :func:`read_rows`). The first ``resumed_rows``
    rows are an earlier run's: a stop before they are all written, or before any row is,
    leaves ``output`` as it was, never with fewer rows than before. Otherwise an interrupted
    run leaves ``output`` as it was.
    """
    if output is None:
        return _write_stream(rows, columns, fmt, sys.stdout)
    if keep_on_interrupt and fmt not in RESUMABLE_FORMATS:
        raise SERError(f"only {' and '.join(RESUMABLE_FORMATS)} output can be kept when interrupted, not {fmt}", output)
    header_lines = 1 if fmt == "csv" else 0
    keep_lines = header_lines + max(resumed_rows, 1) if keep_on_interrupt else 0
    with atomic_output(output, "w", keep_lines_on_interrupt=keep_lines) as stream:
        return _write_stream(rows, columns, fmt, stream)


def read_rows(path: str | PathLike[str], fmt: str) -> list[dict[str, Any]]:
    """The rows of a CSV or JSONL output written by :func:`write_rows`; none if the file does
    not exist. CSV values are the strings of the file (``""`` for none); an unfinished last row
    (no newline) is left out. See :func:`read_jsonl_rows`."""
    if fmt not in RESUMABLE_FORMATS:
        raise SERError(f"cannot read rows back from {fmt} output; use csv or jsonl", path)
    return read_jsonl_rows(path) if fmt == "jsonl" else _read_csv_rows(path)


def _read_text(path: str | PathLike[str]) -> str | None:
    """The text of an earlier output, or ``None`` if it does not exist."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise SERError(f"cannot read the earlier output ({error})", path) from None


def _read_csv_rows(path: str | PathLike[str]) -> list[dict[str, Any]]:
    """The rows of a CSV output, without an unfinished last row; :class:`SERError` for a file
    that has no ``path`` column or a row with another number of fields than the header."""
    text = _read_text(path)
    if not text:
        return []
    records = csv.reader(io.StringIO(text[: text.rfind("\n") + 1], newline=""))
    try:
        header = next(records, [])
        if "path" not in header:
            raise SERError("line 1 is not the header of a prediction file", path)
        rows = []
        for record in records:
            if len(record) != len(header):
                raise SERError(f"row {len(rows) + 1} has {len(record)} fields, not {len(header)}", path)
            rows.append(dict(zip(header, record)))
    except csv.Error as error:
        raise SERError(f"not a CSV file ({error})", path) from None
    return rows


def read_jsonl_rows(path: str | PathLike[str]) -> list[dict[str, Any]]:
    """The rows of a JSONL output written by :func:`write_rows`; none if the file does not exist.

    An unfinished last line (no newline, not JSON) is left out. Any other line that is not a
    JSON object with a ``path`` raises :class:`SERError`: the file is not one of ours.
    """
    text = _read_text(path)
    if text is None:
        return []
    lines = text.split("\n")
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
    if suffix == ".parquet" and find_spec("pyarrow") is None:
        raise SERError("writing .parquet needs pyarrow: pip install 'ser-classic[parquet]', or write .csv", output)
    with atomic_output(output, "wb") as stream:
        if suffix == ".parquet":
            table.to_parquet(stream)
        else:
            stream.write(table.to_csv().encode())
