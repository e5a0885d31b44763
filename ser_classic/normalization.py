"""Per-speaker feature standardization: each speaker's clips are centred and scaled by the
statistics of that speaker's own clips.

Much of what separates two speakers' feature vectors is the voice (pitch range, vocal tract,
microphone), not the emotion; removing each speaker's own mean and spread leaves how a clip
departs from that speaker's usual voice. No label is used, only which clips share a speaker.

This is *transductive*: at prediction time a speaker's statistics come from that speaker's own
unlabelled clips, so a speaker-normalized model needs several clips of each speaker at once
(:data:`MIN_CLIPS_PER_SPEAKER` or more), with roughly varied emotions. One clip alone carries
no information after normalization.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .errors import SERError

__all__ = ["MIN_CLIPS_PER_SPEAKER", "small_speakers", "speaker_statistics", "standardize_per_speaker"]

#: Below this many clips a speaker's statistics are too noisy: callers warn.
MIN_CLIPS_PER_SPEAKER = 10

#: A per-speaker standard deviation below this (a constant feature) scales by 1 instead.
_MIN_STD = 1e-8


def _speaker_array(features: pd.DataFrame, speakers: Sequence[str]) -> np.ndarray:
    speaker_array = np.asarray(speakers, dtype=str)
    if speaker_array.shape != (len(features),):
        raise SERError(f"{len(speaker_array)} speaker(s) given for {len(features)} clip(s): one speaker per clip is needed")
    return speaker_array


def speaker_statistics(features: pd.DataFrame, speakers: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean and standard deviation (``ddof=0``) of each feature over each speaker's clips.

    Parameters
    ----------
    features : DataFrame [shape=(n_clips, n_features)]
    speakers : sequence of str [shape=(n_clips,)]

    Returns
    -------
    mean, std : DataFrame [shape=(n_speakers, n_features)]
        Indexed by speaker; ``std`` is 1 where a feature is constant for a speaker.
    """
    grouped = features.groupby(_speaker_array(features, speakers), sort=True)
    mean = grouped.mean()
    std = grouped.std(ddof=0)
    return mean, std.where(std >= _MIN_STD, 1.0)


def standardize_per_speaker(features: pd.DataFrame, speakers: Sequence[str]) -> pd.DataFrame:
    """Each clip's features minus its speaker's mean, divided by its speaker's standard deviation.

    Uses only the rows given: training clips are normalized with training statistics, and the
    clips of a new speaker with that speaker's own clips, never with anyone else's.

    Parameters
    ----------
    features : DataFrame [shape=(n_clips, n_features)]
    speakers : sequence of str [shape=(n_clips,)]
        Speaker of each row.

    Returns
    -------
    DataFrame [shape=(n_clips, n_features)]
        Same index and columns; a speaker with a single clip gets all zeros.
    """
    speaker_array = _speaker_array(features, speakers)
    mean, std = speaker_statistics(features, speaker_array)
    values = (features.to_numpy(dtype=np.float64) - mean.loc[speaker_array].to_numpy()) / std.loc[speaker_array].to_numpy()
    return pd.DataFrame(values, index=features.index, columns=features.columns)


def small_speakers(speakers: Sequence[str], min_clips: int = MIN_CLIPS_PER_SPEAKER) -> dict[str, int]:
    """Speakers with fewer than ``min_clips`` clips, with their clip counts."""
    names, counts = np.unique(np.asarray(speakers, dtype=str), return_counts=True)
    return {str(name): int(count) for name, count in zip(names, counts) if count < min_clips}
