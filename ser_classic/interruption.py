"""Stopping a batch the same way whichever signal asks: SIGINT, SIGTERM or SIGHUP.

Ctrl-C sends SIGINT; schedulers, ``timeout``, containers and closed terminals send SIGTERM or
SIGHUP. Inside :func:`stop_on_signals` each of them raises :class:`Stopped`, a
``KeyboardInterrupt``, so everything that already cleans up after Ctrl-C (worker pools,
progress bars, :func:`~ser_classic.atomic.atomic_output`) does the same for the other two.
Worker processes leave the three to the process that started them, which ends them after a
stop as after a finished run (:func:`leave_stop_signals_to_parent`).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["STOP_SIGNALS", "StopRequest", "Stopped", "leave_stop_signals_to_parent", "stop_on_signals", "stop_requests"]

#: The signals that stop a batch cleanly.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """A stop signal arrived; ``signal_number`` says which.

    A ``KeyboardInterrupt``, not a :class:`~ser_classic.errors.SERError`: nothing failed, and
    code that handles Ctrl-C handles it too.
    """

    def __init__(self, signal_number: int) -> None:
        self.signal_number = signal_number
        super().__init__(signal.Signals(signal_number).name)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Inside the block, the first of :data:`STOP_SIGNALS` raises :class:`Stopped` in the main
    thread; the next ones are ignored, so that they cannot break the clean-up the first one
    started (SIGKILL still ends the process at once). The earlier handlers come back after."""
    stopping = False

    def stop(signal_number: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise Stopped(signal_number)

    previous = {number: signal.signal(number, stop) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class StopRequest(threading.Event):
    """Set when a stop signal arrived; ``signal_number`` says which (``None`` until then)."""

    def __init__(self) -> None:
        super().__init__()
        self.signal_number: int | None = None


@contextmanager
def stop_requests() -> Iterator[StopRequest]:
    """Inside the block, the first of :data:`STOP_SIGNALS` sets the event it yields: a loop that
    checks it between steps (a live stream between two blocks) ends cleanly, after the step
    under way. A second signal raises :class:`Stopped`, for a step that would never end. The
    earlier handlers come back after."""
    request = StopRequest()

    def stop(signal_number: int, frame: FrameType | None) -> None:
        if request.is_set():
            raise Stopped(signal_number)
        request.signal_number = signal_number
        request.set()

    previous = {number: signal.signal(number, stop) for number in STOP_SIGNALS}
    try:
        yield request
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def leave_stop_signals_to_parent() -> None:
    """In a worker process: let the process that started it handle :data:`STOP_SIGNALS`,
    which a terminal or a batch scheduler may send to the whole process group.

    A worker whose parent is gone (killed outright) has nobody to end it: it then ends at the
    signal, as it would by default.
    """
    parent = os.getppid()

    def stop_if_orphaned(signal_number: int, frame: FrameType | None) -> None:
        if os.getppid() != parent:
            os._exit(128 + signal_number)

    for number in STOP_SIGNALS:
        signal.signal(number, stop_if_orphaned)
