"""The one exception family for user-facing failures.

Every error names the file it concerns (when there is one) and what was wrong, so the CLI
can print it as a single line and a batch can record it in its ``error`` column.
"""

from __future__ import annotations

from os import PathLike

__all__ = ["SERError", "AudioError", "NoSpeechError", "CorpusError", "ModelError"]


class SERError(Exception):
    """Base class of all ser-classic errors.

    Parameters
    ----------
    message : str
        What went wrong, in one line.
    path : str or PathLike, optional
        The file concerned; it is prefixed to the message.
    """

    def __init__(self, message: str, path: str | PathLike[str] | None = None) -> None:
        self.path = None if path is None else str(path)
        self.reason = message
        text = message if path is None else f"{path}: {message}"
        super().__init__(_one_line(text))


def _one_line(text: str) -> str:
    """``text`` with control characters escaped (``\\n`` in a file name, ...): one line, always."""
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text)


class AudioError(SERError):
    """A file could not be turned into a usable signal (unreadable, empty, too short, ...)."""


class NoSpeechError(AudioError):
    """A readable file holds no speech to classify (silence, hum, noise, music without voice)."""


class CorpusError(SERError):
    """A corpus (folder, manifest, file names) could not be read as labelled data."""


class ModelError(SERError):
    """A model artifact is missing, tampered with, or incompatible with this version."""
