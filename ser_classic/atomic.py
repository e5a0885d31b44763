"""Writing files so that readers see either the old file, nothing, or the complete new one.

The new content goes to a temporary file beside the target, ``.NAME.tmp``, renamed onto the
target when complete. The name is fixed so that a run killed outright (SIGKILL, a power loss),
which cannot remove its temporary file, leaves at most one, which the next run writing the
same target takes over (:func:`leftover_temporary` finds it first, for a resumed run to
read). A writer holds an exclusive ``flock`` on its temporary file: a file nobody holds is a
leftover; while another live process holds it, a unique name (``.NAME.XXXX.tmp``) is used.
"""

from __future__ import annotations

import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_output", "leftover_temporary", "temporary_path"]


def temporary_path(target: str | os.PathLike[str]) -> Path:
    """Where :func:`atomic_output` writes ``target`` before renaming it: ``.NAME.tmp`` beside it."""
    path = Path(target)
    return path.with_name(f".{path.name}.tmp")


def leftover_temporary(target: str | os.PathLike[str]) -> Path | None:
    """The temporary file of ``target`` left by a run that no longer runs, or ``None``."""
    path = temporary_path(target)
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            return None
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return None  # a live writer holds it
    finally:
        os.close(handle)
    return path


@contextmanager
def atomic_output(
    target: str | os.PathLike[str], mode: str = "wb", *, keep_lines_on_interrupt: int = 0
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``target`` and rename it onto ``target`` on success.

    On any exception, KeyboardInterrupt included, the temporary file is removed and ``target``
    is left as it was. Text mode writes UTF-8 with untranslated newlines (as CSV wants).

    With ``keep_lines_on_interrupt`` (for line files such as CSV or JSONL that a later run can
    resume), a KeyboardInterrupt (Ctrl-C, or a :class:`~ser_classic.interruption.Stopped`)
    instead renames the complete lines written so far onto ``target``, cutting any unfinished
    last line, provided there are at least ``keep_lines_on_interrupt`` of them; the interrupt
    is then raised again. Either way ``target`` only ever holds complete lines.
    """
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = _open_temporary(path)
    lock = os.dup(handle)  # holds the flock until the file is renamed or removed
    text = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
    interrupt: KeyboardInterrupt | None = None
    try:
        try:
            with os.fdopen(handle, mode, **text) as stream:
                yield stream
        except KeyboardInterrupt as error:
            if not (keep_lines_on_interrupt and _cut_to_complete_lines(temporary) >= keep_lines_on_interrupt):
                raise
            interrupt = error
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    finally:
        os.close(lock)
    if interrupt is not None:
        raise interrupt


def _open_temporary(target: Path) -> tuple[int, str]:
    """A descriptor of an empty temporary file for ``target``, locked, and its path:
    :func:`temporary_path`, taken over if a dead run left it, else a unique name beside it."""
    fixed = temporary_path(target)
    try:
        handle = os.open(fixed, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError:  # a symbolic link, or a leftover of another user
        pass
    else:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(handle, 0)
            return handle, str(fixed)
        except OSError:  # another run is writing the same target right now
            os.close(handle)
    handle, unique = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle, unique


def _cut_to_complete_lines(path: str) -> int:
    """Truncate ``path`` after its last newline; returns how many lines remain."""
    with open(path, "r+b") as stream:
        data = stream.read()
        end = data.rfind(b"\n") + 1
        stream.truncate(end)
    return data.count(b"\n", 0, end)


def _umask() -> int:
    """The process umask (read by setting it, then restoring it)."""
    current = os.umask(0)
    os.umask(current)
    return current
