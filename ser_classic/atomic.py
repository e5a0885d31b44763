"""Writing files so that readers see either the old file, nothing, or the complete new one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_output"]


@contextmanager
def atomic_output(
    target: str | os.PathLike[str], mode: str = "wb", *, keep_lines_on_interrupt: bool = False
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``target`` and rename it onto ``target`` on success.

    On any exception, KeyboardInterrupt included, the temporary file is removed and ``target``
    is left as it was. Text mode writes UTF-8 with untranslated newlines (as CSV wants).

    With ``keep_lines_on_interrupt`` (for line files such as JSONL that a later run can
    resume), a KeyboardInterrupt instead renames the complete lines written so far onto
    ``target``, cutting any unfinished last line; the interrupt is then raised again. Either
    way ``target`` only ever holds complete lines.
    """
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    text = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
    interrupt: KeyboardInterrupt | None = None
    try:
        try:
            with os.fdopen(handle, mode, **text) as stream:
                yield stream
        except KeyboardInterrupt as error:
            if not (keep_lines_on_interrupt and _cut_to_complete_lines(temporary)):
                raise
            interrupt = error
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    if interrupt is not None:
        raise interrupt


def _cut_to_complete_lines(path: str) -> bool:
    """Truncate ``path`` after its last newline; true when at least one line remains."""
    with open(path, "r+b") as stream:
        end = stream.read().rfind(b"\n") + 1
        stream.truncate(end)
    return end > 0


def _umask() -> int:
    """The process umask (read by setting it, then restoring it)."""
    current = os.umask(0)
    os.umask(current)
    return current
