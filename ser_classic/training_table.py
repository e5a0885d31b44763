"""The feature vectors a model was trained on, stored beside its model file.

``NAME.training.npz`` (beside ``NAME.joblib``) holds one row per training clip (the original
clips, not their augmented copies): the float32 vector, label, speaker, corpus and the clip's
name within its corpus (``ravdess/Actor_01/03-01-01-01-01-01-01.flac``). Adapting a model to a
user's recordings (:mod:`ser_classic.adaptation`) refits on these rows plus the user's, and the
card's fingerprint of them (:meth:`TrainingTable.fingerprint`) ties a model to the very vectors
it learnt from: re-extracting a few of its clips shows whether this extractor still computes them.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_output
from .errors import ModelError

__all__ = ["TrainingTable", "training_table_path"]

#: Arrays of the file, each one row per clip.
_COLUMNS = ("features", "labels", "speakers", "corpora", "clips")


def training_table_path(model_path: str | PathLike[str]) -> Path:
    """The training table beside a model file: ``m.joblib`` -> ``m.training.npz``."""
    path = Path(model_path)
    return path.with_name(path.stem + ".training.npz")


@dataclass(frozen=True, eq=False)
class TrainingTable:
    """One row per training clip.

    Attributes
    ----------
    features : np.ndarray [shape=(n_clips, n_features), dtype=float32]
        Feature vectors, columns in the model's feature order.
    labels, speakers, corpora, clips : np.ndarray [shape=(n_clips,), dtype=str]
        Each clip's class, speaker, corpus, and name within its corpus (``corpus/relative/path``).
    """

    features: np.ndarray
    labels: np.ndarray
    speakers: np.ndarray
    corpora: np.ndarray
    clips: np.ndarray

    @classmethod
    def of(cls, features: Any, labels: Any, speakers: Any, corpora: Any, clips: Any) -> TrainingTable:
        """A table from any array-likes (features become float32, the rest strings)."""
        return cls(
            np.ascontiguousarray(np.asarray(features, dtype=np.float32)),
            *(np.asarray(values).astype(str) for values in (labels, speakers, corpora, clips)),
        )

    def fingerprint(self) -> str:
        """SHA-256 of the rows' content (vectors, labels, speakers, corpora, clip names): equal
        fingerprints mean the same training data, whatever file holds it."""
        digest = hashlib.sha256()
        digest.update(self.features.tobytes())
        for column in _COLUMNS[1:]:
            digest.update("\n".join(getattr(self, column)).encode())
        return digest.hexdigest()

    def save(self, path: str | PathLike[str]) -> dict[str, Any]:
        """Write the table (zip of compressed arrays, atomically); returns its card entry:
        file name, SHA-256 of the file, :meth:`fingerprint`, clip count and size in bytes."""
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **{column: getattr(self, column) for column in _COLUMNS})
        content = buffer.getvalue()
        with atomic_output(Path(path)) as stream:
            stream.write(content)
        return {
            "file": Path(path).name,
            "sha256": hashlib.sha256(content).hexdigest(),
            "fingerprint": self.fingerprint(),
            "n_clips": int(self.features.shape[0]),
            "bytes": len(content),
        }

    @classmethod
    def load(cls, path: str | PathLike[str], entry: dict[str, Any]) -> TrainingTable:
        """Read a table and check it against its card ``entry`` (as :meth:`save` returned it).

        Raises
        ------
        ModelError
            Missing or unreadable file, a SHA-256 or fingerprint other than the card's.
        """
        try:
            content = Path(path).read_bytes()
        except OSError as error:
            raise ModelError(f"cannot read the model's training table ({error.strerror or type(error).__name__})", path) from None
        if hashlib.sha256(content).hexdigest() != entry.get("sha256"):
            raise ModelError("SHA-256 of the training table does not match the model card", path)
        with np.load(io.BytesIO(content), allow_pickle=False) as arrays:
            table = cls(*(arrays[column] for column in _COLUMNS))
        if table.fingerprint() != entry.get("fingerprint"):
            raise ModelError("the training table's content does not match the model card's fingerprint", path)
        return table
