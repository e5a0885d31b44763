"""Summary statistics that turn frame-wise tracks into named numbers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["FRAME_STATISTICS", "COEFFICIENT_STATISTICS", "DYNAMICS_STATISTICS", "summarize", "summary_names"]

#: Statistics of scalar tracks (ZCR, RMS, centroid, ...): the distribution's shape matters.
FRAME_STATISTICS: tuple[str, ...] = ("mean", "std", "p10", "p50", "p90")
#: Statistics of each row of a multi-row track (MFCC, chroma, ...): kept small, rows are many.
COEFFICIENT_STATISTICS: tuple[str, ...] = ("mean", "std")

#: Statistics of derivative tracks (MFCC deltas): their mean over a clip telescopes to the
#: difference of its first and last frames, which the silence trimming decides, not the voice.
DYNAMICS_STATISTICS: tuple[str, ...] = ("std",)

_PERCENTILES = {"p10": 10.0, "p50": 50.0, "p90": 90.0}


def summary_names(prefix: str, n_rows: int | None, statistics: Sequence[str]) -> list[str]:
    """Names for :func:`summarize`: ``prefix_stat`` or ``prefix_NN_stat`` (rows from 01)."""
    if n_rows is None:
        return [f"{prefix}_{stat}" for stat in statistics]
    return [f"{prefix}_{row:02d}_{stat}" for row in range(1, n_rows + 1) for stat in statistics]


def summarize(track: np.ndarray, statistics: Sequence[str]) -> np.ndarray:
    """Statistics over time of each row, flattened row by row.

    Parameters
    ----------
    track : np.ndarray [shape=(n_frames,) or (n_rows, n_frames)]
    statistics : sequence of {"mean", "std", "p10", "p50", "p90"}

    Returns
    -------
    values : np.ndarray [shape=(n_rows * len(statistics),)]
        Ordered as :func:`summary_names` names them.
    """
    rows = np.atleast_2d(np.asarray(track, dtype=np.float64))
    columns = []
    percentiles = [stat for stat in statistics if stat in _PERCENTILES]
    if percentiles:
        computed = np.percentile(rows, [_PERCENTILES[p] for p in percentiles], axis=1)
        by_name = dict(zip(percentiles, computed))
    for stat in statistics:
        if stat == "mean":
            columns.append(rows.mean(axis=1))
        elif stat == "std":
            columns.append(rows.std(axis=1))
        else:
            columns.append(by_name[stat])
    return np.stack(columns, axis=1).ravel()
