"""Fundamental frequency and voicing from ``librosa.yin`` (20-100x faster than ``pyin``)."""

from __future__ import annotations

import numpy as np

from .config import FeatureConfig

__all__ = ["f0_track", "voiced_frames"]


def f0_track(signal: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """YIN F0 estimate (Hz) per frame, frames aligned with the STFT's: shape ``(n_frames,)``."""
    import librosa

    return librosa.yin(
        signal,
        fmin=config.f0_min_hz,
        fmax=config.f0_max_hz,
        sr=config.sample_rate,
        frame_length=config.n_fft,
        hop_length=config.hop_length,
    )


def voiced_frames(f0: np.ndarray, level_db: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Boolean mask of voiced frames.

    A frame is voiced when it is loud (RMS level within ``voicing_db`` of the loudest frame)
    and YIN found a period strictly inside the search range: YIN returns the range's edges
    when there is no periodicity to find.
    """
    loud = level_db >= level_db.max() - config.voicing_db
    in_range = (f0 > config.f0_min_hz * 1.01) & (f0 < config.f0_max_hz * 0.99)
    return loud & in_range
