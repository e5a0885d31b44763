"""Frame-wise spectral tracks, all computed from one magnitude STFT.

Each function takes the precomputed spectrogram, as librosa's own feature functions allow
(``S=...``), so one STFT per clip feeds every group.
"""

from __future__ import annotations

import numpy as np

from .config import FeatureConfig

__all__ = ["magnitude_spectrogram", "frame_tracks", "contrast_track", "cepstral_tracks", "tonal_tracks"]

#: Rows of ``librosa.feature.spectral_contrast`` with its default six bands.
N_CONTRAST_BANDS = 7
#: Rows of the chroma and tonnetz tracks.
N_CHROMA = 12
N_TONNETZ = 6


def magnitude_spectrogram(signal: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """``|STFT|`` with a Hann window, centred frames: shape ``(1 + n_fft // 2, n_frames)``."""
    import librosa

    return np.abs(librosa.stft(signal, n_fft=config.n_fft, hop_length=config.hop_length))


def frame_tracks(signal: np.ndarray, magnitude: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Scalar tracks: zero-crossing rate, RMS, centroid, bandwidth, roll-off (85%), flatness."""
    import librosa.feature as lf

    sr = config.sample_rate
    return {
        "zcr": lf.zero_crossing_rate(signal, frame_length=config.n_fft, hop_length=config.hop_length)[0],
        "rms": lf.rms(S=magnitude, frame_length=config.n_fft)[0],
        "centroid": lf.spectral_centroid(S=magnitude, sr=sr)[0],
        "bandwidth": lf.spectral_bandwidth(S=magnitude, sr=sr)[0],
        "rolloff": lf.spectral_rolloff(S=magnitude, sr=sr)[0],
        "flatness": lf.spectral_flatness(S=magnitude)[0],
    }


def contrast_track(magnitude: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Spectral contrast in seven octave bands from 200 Hz: shape ``(7, n_frames)``."""
    import librosa.feature as lf

    return lf.spectral_contrast(S=magnitude, sr=config.sample_rate)


def cepstral_tracks(power: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    """MFCCs from a log-mel spectrogram, with deltas and delta-deltas: each ``(n_mfcc, n_frames)``."""
    import librosa
    import librosa.feature as lf

    mel = lf.melspectrogram(S=power, sr=config.sample_rate, n_mels=config.n_mels)
    mfcc = lf.mfcc(S=librosa.power_to_db(mel), n_mfcc=config.n_mfcc)
    width = _delta_width(mfcc.shape[1])
    return {
        "mfcc": mfcc,
        "mfcc_delta": lf.delta(mfcc, width=width),
        "mfcc_delta2": lf.delta(mfcc, width=width, order=2),
    }


def tonal_tracks(power: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Chroma (12 pitch classes, C first) and tonnetz (6 tonal centroids) from the same chroma.

    Tuning is fixed at A440 (``tuning=0``): estimating it per clip costs time and means
    nothing for speech.
    """
    import librosa.feature as lf

    chroma = lf.chroma_stft(S=power, sr=config.sample_rate, tuning=0.0)
    return {"chroma": chroma, "tonnetz": lf.tonnetz(chroma=chroma, sr=config.sample_rate)}


def _delta_width(n_frames: int) -> int:
    """librosa's default width 9, narrowed (odd, >= 3) for clips with fewer frames."""
    largest_odd = n_frames if n_frames % 2 else n_frames - 1
    return max(3, min(9, largest_odd))
