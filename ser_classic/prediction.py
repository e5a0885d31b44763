"""Batch prediction over files and folders: one row per input file, errors included."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from os import PathLike
from typing import Any

import pandas as pd

from .corpus import find_audio_files
from .errors import SERError
from .features.extractor import FeatureExtractor
from .models import Model

__all__ = ["prediction_columns", "predict_files"]

_log = logging.getLogger(__name__)


def prediction_columns(classes: Sequence[str]) -> list[str]:
    """``path, emotion, confidence, p_<class>..., error``."""
    return ["path", "emotion", "confidence", *[f"p_{label}" for label in classes], "error"]


def predict_files(
    paths: Iterable[str | PathLike[str]],
    model: Model,
    *,
    n_jobs: int | None = 1,
    progress: bool = False,
    cache_dir: str | PathLike[str] | None = None,
    batch_size: int = 32,
) -> Iterator[dict[str, Any]]:
    """Classify audio files; folders are searched recursively for audio files.

    Yields one row per file, in order, as soon as its batch is done: ``path``, ``emotion``,
    ``confidence`` (the top probability), ``p_<class>`` (summing to 1) and ``error`` (empty, or
    why the file could not be classified; the other fields are then ``None``). A bad file never
    stops the batch.
    """
    files = find_audio_files(paths)
    extractor = FeatureExtractor(model.feature_config, cache_dir=cache_dir, n_jobs=n_jobs)
    pending: list[tuple[str, Any]] = []
    for item in extractor.iter_files(files, progress=progress):
        pending.append(item)
        if len(pending) >= batch_size:
            yield from _classify(pending, model)
            pending = []
    yield from _classify(pending, model)


def _classify(results: list[tuple[str, Any]], model: Model) -> Iterator[dict[str, Any]]:
    good = [(path, values) for path, values in results if not isinstance(values, SERError)]
    probabilities = (
        model.predict_proba(pd.DataFrame([v for _, v in good], columns=model.feature_names, index=[p for p, _ in good]))
        if good
        else None
    )
    position = 0
    for path, values in results:
        if isinstance(values, SERError):
            _log.warning("%s", values)
            yield {"path": path, "emotion": None, "confidence": None, "error": values.reason}
            continue
        row = probabilities.iloc[position]
        position += 1
        yield {
            "path": path,
            "emotion": str(row.idxmax()),
            "confidence": float(row.max()),
            **{f"p_{label}": float(value) for label, value in row.items()},
            "error": "",
        }
