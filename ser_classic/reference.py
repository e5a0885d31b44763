"""What a model keeps of its training data so that it can explain itself without the corpus:
a small class-balanced sample of training clips and each feature's percentiles
(:mod:`ser_classic.explanation` uses them; :func:`ser_classic.models.train` makes them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .features.descriptions import FEATURE_GROUPS

__all__ = ["REFERENCE_CLIPS", "ExplanationReference", "explanation_reference"]

#: Training clips a model keeps as reference (class-balanced): absent groups take their values.
REFERENCE_CLIPS = 32
#: Percentile levels stored per feature: 0, 1, ..., 100.
_LEVELS = np.arange(101)


@dataclass(frozen=True, eq=False)
class ExplanationReference:
    """What explanations need from the training data; kept in the model artifact.

    Both are in the space the pipeline sees: features standardized per speaker (or batch) for
    a model that standardizes them so, the features themselves otherwise.

    Attributes
    ----------
    rows : np.ndarray [shape=(n_rows, n_features)]
        A class-balanced sample of training clips (:data:`REFERENCE_CLIPS`).
    percentiles : np.ndarray [shape=(101, n_features)]
        Percentiles 0, 1, ..., 100 of each feature over all training clips (augmented copies
        left out).
    """

    rows: np.ndarray
    percentiles: np.ndarray

    def to_dict(self) -> dict[str, np.ndarray]:
        """Plain arrays, as stored in the artifact (no class of this package gets pickled)."""
        return {"rows": self.rows, "percentiles": self.percentiles}

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> ExplanationReference:
        return cls(rows=np.asarray(stored["rows"], dtype=np.float64), percentiles=np.asarray(stored["percentiles"], dtype=np.float64))

    def card_entry(self) -> dict[str, Any]:
        """What the model card says about it (the arrays stay in the artifact)."""
        return {
            "reference_clips": int(self.rows.shape[0]),
            "percentile_levels": int(self.percentiles.shape[0]),
            "groups": list(FEATURE_GROUPS),
        }


def explanation_reference(inputs: np.ndarray, labels: Sequence[str], *, seed: int = 0) -> ExplanationReference:
    """Reference data of a model from its training clips as the pipeline sees them.

    Parameters
    ----------
    inputs : np.ndarray [shape=(n_clips, n_features)]
        The training clips (no augmented copies), standardized as the pipeline was fitted.
    labels : sequence of str [shape=(n_clips,)]
    seed : int
        Seed of the sample: each class in turn gives a clip, drawn at random, until
        :data:`REFERENCE_CLIPS` are chosen (all clips, when fewer).
    """
    values = np.asarray(inputs, dtype=np.float64)
    label_array = np.asarray(labels, dtype=str)
    rng = np.random.default_rng(seed)
    shuffled = [rng.permutation(np.flatnonzero(label_array == label)) for label in np.unique(label_array)]
    longest = max(len(indices) for indices in shuffled)
    round_robin = [indices[turn] for turn in range(longest) for indices in shuffled if turn < len(indices)]
    chosen = np.asarray(round_robin[:REFERENCE_CLIPS], dtype=int)
    return ExplanationReference(rows=values[chosen].copy(), percentiles=np.percentile(values, _LEVELS, axis=0))
