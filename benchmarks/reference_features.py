"""A "reference-style" librosa feature extractor, written the way typical SER projects write it.

The speed baseline of ``benchmarks/speed.py``: the same feature families as ser-classic (energy and
time, spectral shape and contrast, cepstral, tonal, pitch) plus the tempo many projects add, computed the
common way, one file at a time:

- ``librosa.load(path, sr=22050)`` (soundfile decode, soxr "HQ" resampling, as ser-classic);
- every spectral feature called with ``y=...``, so each one computes its own STFT;
- ``chroma_stft`` with its default tuning estimation (``piptrack`` on yet another STFT);
- tonnetz from ``librosa.effects.harmonic(y)`` (HPSS) and tonnetz's default constant-Q chroma;
- pitch from probabilistic YIN (``librosa.pyin``) over C2-C7 (65-2093 Hz), the range of
  librosa's own pyin example that such projects copy. The range decides pyin's cost: over
  ser-classic's 65-600 Hz the whole extractor takes about 230 ms a clip instead of 415 ms
  (one core, warm), so the ratios in ``speed.py`` would be about half as large;
- tempo from ``librosa.beat.beat_track``.

The values are not meant to equal ser-classic's; only the work done per clip is comparable.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

import numpy as np

__all__ = ["F0_RANGE_NOTES", "SAMPLE_RATE", "reference_features", "reference_table"]

#: Analysis rate of the reference extractor (librosa's default, as in ser-classic).
SAMPLE_RATE = 22050
#: pyin's search range: C2-C7, as in librosa's example.
F0_RANGE_NOTES = ("C2", "C7")


def _stats(track: np.ndarray, percentiles: bool = False) -> list[float]:
    """Mean and std of each row (and 10/50/90th percentiles for scalar tracks), NaNs ignored."""
    rows = np.atleast_2d(track)
    values = [np.nanmean(rows, axis=1), np.nanstd(rows, axis=1)]
    if percentiles:
        values.extend(np.nanpercentile(rows, [10, 50, 90], axis=1))
    return list(np.ravel(np.stack(values, axis=1)))


def reference_features(path: str | PathLike[str]) -> np.ndarray:
    """Feature vector of one file, computed the reference way (see the module docstring)."""
    import librosa

    y, sr = librosa.load(path, sr=SAMPLE_RATE)
    y, _ = librosa.effects.trim(y, top_db=30)
    features: list[float] = []
    # energy and time
    features += _stats(librosa.feature.zero_crossing_rate(y)[0], percentiles=True)
    features += _stats(librosa.amplitude_to_db(librosa.feature.rms(y=y)[0]), percentiles=True)
    # spectral shape and contrast: one STFT each
    features += _stats(librosa.feature.spectral_centroid(y=y, sr=sr)[0], percentiles=True)
    features += _stats(librosa.feature.spectral_bandwidth(y=y, sr=sr)[0], percentiles=True)
    features += _stats(librosa.feature.spectral_rolloff(y=y, sr=sr)[0], percentiles=True)
    features += _stats(librosa.feature.spectral_flatness(y=y)[0], percentiles=True)
    features += _stats(librosa.feature.spectral_contrast(y=y, sr=sr))
    # cepstral
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20)
    features += _stats(mfcc, percentiles=True)
    features += _stats(librosa.feature.delta(mfcc))
    features += _stats(librosa.feature.delta(mfcc, order=2))
    # tonal
    features += _stats(librosa.feature.chroma_stft(y=y, sr=sr))
    features += _stats(librosa.feature.tonnetz(y=librosa.effects.harmonic(y), sr=sr))
    # pitch
    fmin, fmax = (float(librosa.note_to_hz(note)) for note in F0_RANGE_NOTES)
    f0, voiced_flag, _ = librosa.pyin(y, fmin=fmin, fmax=fmax, sr=sr)
    voiced_f0 = f0[voiced_flag]
    features.append(float(np.mean(voiced_flag)))
    features += _stats(voiced_f0, percentiles=True) if voiced_f0.size else [0.0] * 5
    # rhythm
    tempo, beats = librosa.beat.beat_track(y=y, sr=sr)
    features += [float(np.atleast_1d(tempo)[0]), float(len(beats))]
    return np.asarray(features, dtype=np.float64)


def reference_table(paths: Sequence[str | PathLike[str]]) -> np.ndarray:
    """Rows of :func:`reference_features`, one file after the other, as such projects do."""
    return np.vstack([reference_features(path) for path in paths])
