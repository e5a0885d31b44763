"""Fundamental frequency from YIN (librosa's, ported: 20-100x faster than ``pyin``), and voicing from
each frame's periodicity, measured on the clip's one spectrogram."""

from __future__ import annotations

import numpy as np

from . import dsp
from .config import FeatureConfig

__all__ = ["PITCH_NAMES", "f0_track", "periodicity_track", "harmonicity_db", "voiced_frames", "pitch_summary"]

#: Names of :func:`pitch_summary`, in vector order.
PITCH_NAMES = (
    "voiced_fraction",
    "f0_mean",
    "f0_std",
    "f0_p10",
    "f0_p50",
    "f0_p90",
    "f0_semitone_std",
    "f0_semitone_range",
    "f0_semitone_slope",
    "voiced_segment_rate",
)
#: Reference of the semitone scale (Hz), as in eGeMAPS ("semitones from 27.5 Hz" differs only by
#: a constant, which none of the statistics below depends on).
SEMITONE_REFERENCE_HZ = 100.0


def f0_track(signal: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """YIN F0 estimate (Hz) per frame, frames aligned with the STFT's: shape ``(n_frames,)``."""
    return dsp.yin(signal, config.f0_min_hz, config.f0_max_hz, config.sample_rate, config.n_fft, config.hop_length)


def periodicity_track(power: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Periodicity of each frame: the highest normalized autocorrelation at a lag inside the
    pitch range, in [0, 1], shape ``(n_frames,)``.

    The autocorrelation is the inverse FFT of the frame's power spectrum, divided by that of
    the analysis window, as Boersma (1993) does in Praat: without that correction the window's
    taper alone would lower every peak. White noise gives about 0.1-0.2, voiced speech 0.5-0.95.

    Parameters
    ----------
    power : np.ndarray [shape=(1 + n_fft // 2, n_frames)]
        Power spectrogram (Hann window, as :func:`~ser_classic.features.spectral.magnitude_spectrogram`).
    """
    autocorrelation = np.fft.irfft(np.asarray(power, dtype=np.float64), n=config.n_fft, axis=0)
    shortest = int(np.ceil(config.sample_rate / config.f0_max_hz))
    longest = int(np.floor(config.sample_rate / config.f0_min_hz))
    window = _window_autocorrelation(config.n_fft)[shortest : longest + 1, np.newaxis]
    energy = np.maximum(autocorrelation[:1], np.finfo(np.float64).tiny)
    normalized = autocorrelation[shortest : longest + 1] / energy / window
    return np.clip(normalized.max(axis=0), 0.0, 1.0)


def _window_autocorrelation(n_fft: int) -> np.ndarray:
    """Normalized autocorrelation of the periodic Hann window (librosa's STFT window)."""
    window = np.hanning(n_fft + 1)[:-1]
    autocorrelation = np.fft.irfft(np.abs(np.fft.rfft(window)) ** 2, n=n_fft)
    return autocorrelation / autocorrelation[0]


def harmonicity_db(periodicity: np.ndarray) -> np.ndarray:
    """Harmonics-to-noise ratio (dB) from periodicity ``r``: ``10 log10(r / (1 - r))``
    (Boersma, 1993), with ``r`` kept within [0.001, 0.999] (-30 to +30 dB)."""
    clipped = np.clip(periodicity, 0.001, 0.999)
    return 10.0 * np.log10(clipped / (1.0 - clipped))


def voiced_frames(f0: np.ndarray, level_db: np.ndarray, periodicity: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Boolean mask of voiced frames.

    A frame is voiced when it is loud (RMS level ``level_db``, relative to the clip's reference
    level, above ``-voicing_db``),
    periodic (:func:`periodicity_track` at least ``voicing_threshold``, Praat's default 0.45)
    and YIN found a period strictly inside the search range: YIN returns the range's edges
    when there is no periodicity to find. Noise, hum below the pitch range and dither are not
    voiced, however loud.
    """
    loud = level_db >= -config.voicing_db
    in_range = (f0 > config.f0_min_hz * 1.01) & (f0 < config.f0_max_hz * 0.99)
    return loud & in_range & (periodicity >= config.voicing_threshold)


def pitch_summary(f0: np.ndarray, voiced: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Pitch and rhythm statistics named by :data:`PITCH_NAMES`; zeros where nothing is voiced.

    F0 level and spread in Hz; spread, range (90th minus 10th percentile) and slope (least
    squares over the voiced frames' times, per second) on the semitone scale, which compares
    intonation across low and high voices; voiced segments (runs of voiced frames) per second,
    a speaking-rate cue.
    """
    voiced_f0 = f0[voiced].astype(np.float64)
    if voiced_f0.size == 0:
        return np.zeros(len(PITCH_NAMES))
    p10, p50, p90 = np.percentile(voiced_f0, [10, 50, 90])
    semitones = 12.0 * np.log2(voiced_f0 / SEMITONE_REFERENCE_HZ)
    st_p10, st_p90 = np.percentile(semitones, [10, 90])
    seconds = np.flatnonzero(voiced) * config.hop_length / config.sample_rate
    centred = seconds - seconds.mean()
    slope = centred @ semitones / (centred @ centred) if semitones.size > 1 else 0.0
    n_segments = np.count_nonzero(np.diff(voiced.astype(np.int8), prepend=0) == 1)
    duration_seconds = voiced.size * config.hop_length / config.sample_rate
    return np.array([
        voiced.mean(), voiced_f0.mean(), voiced_f0.std(), p10, p50, p90,
        semitones.std(), st_p90 - st_p10, slope, n_segments / duration_seconds,
    ])
