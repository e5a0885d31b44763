"""On-disk feature cache keyed by file content and extractor settings.

``<directory>/<settings digest>/<sha256 of the file's bytes>.npy``: renaming or moving a file
keeps its entry; changing a byte of it, or any extractor setting or the extractor version,
misses. Writes go to a temporary file renamed into place, so parallel workers and interrupted
runs never leave a partial entry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from .config import FeatureConfig

__all__ = ["FeatureCache", "file_sha256"]


def file_sha256(path: str | PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class FeatureCache:
    """Feature vectors of files already seen, for one :class:`FeatureConfig`."""

    directory: Path
    config: FeatureConfig

    @property
    def folder(self) -> Path:
        """Where this configuration's vectors live."""
        return self.directory / self.config.digest()

    def _entry(self, path: str | PathLike[str], sha256: str | None) -> Path:
        return self.folder / f"{sha256 or file_sha256(path)}.npy"

    def get(self, path: str | PathLike[str], *, sha256: str | None = None) -> np.ndarray | None:
        """The cached vector of ``path``'s content, or ``None`` (also when ``path`` cannot be read:
        loading it then reports why). ``sha256``: the file's digest, when the caller has it."""
        try:
            entry = self._entry(path, sha256)
        except OSError:
            return None
        if not entry.is_file():
            return None
        try:
            return np.load(entry, allow_pickle=False)
        except (OSError, ValueError):
            return None

    def put(self, path: str | PathLike[str], values: np.ndarray, *, sha256: str | None = None) -> None:
        """Store ``values`` for ``path``'s content, atomically."""
        entry = self._entry(path, sha256)
        with atomic_output(entry) as stream:
            np.save(stream, np.asarray(values, dtype=np.float64), allow_pickle=False)
