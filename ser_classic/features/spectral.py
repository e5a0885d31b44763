"""Frame-wise spectral tracks, all computed from one magnitude STFT.

Each function takes the precomputed spectrogram, as librosa's own feature functions allow
(``S=...``), so one STFT per clip feeds every group.
"""

from __future__ import annotations

import functools

import numpy as np

from .config import FeatureConfig

__all__ = [
    "SCALAR_TRACKS",
    "magnitude_spectrogram",
    "frame_tracks",
    "contrast_track",
    "cepstral_tracks",
    "tonal_tracks",
]

#: Scalar tracks of :func:`frame_tracks`, in vector order.
SCALAR_TRACKS = ("zcr", "rms_db", "centroid", "bandwidth", "rolloff", "flatness")
#: Floor of the RMS amplitude before taking decibels (-100 dBFS).
RMS_FLOOR = 1e-5
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
    """Scalar tracks: zero-crossing rate, RMS level (dBFS), centroid, bandwidth, roll-off (85%),
    flatness. Level is in decibels because loudness is perceived, and varies, on a log scale."""
    import librosa
    import librosa.feature as lf

    sr = config.sample_rate
    return {
        "zcr": lf.zero_crossing_rate(signal, frame_length=config.n_fft, hop_length=config.hop_length)[0],
        "rms_db": librosa.amplitude_to_db(
            lf.rms(S=magnitude, frame_length=config.n_fft)[0], ref=1.0, amin=RMS_FLOOR, top_db=None
        ),
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

    # lf.melspectrogram(S=power, sr=..., n_mels=...), with its filter bank built once
    mel = np.einsum("...ft,mf->...mt", power, _mel_basis(config.sample_rate, config.n_fft, config.n_mels), optimize=True)
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
    import librosa
    import librosa.feature as lf

    # lf.chroma_stft(S=power, sr=..., tuning=0.0), with its filter bank built once
    raw_chroma = np.einsum("cf,...ft->...ct", _chroma_basis(config.sample_rate, config.n_fft), power, optimize=True)
    chroma = librosa.util.normalize(raw_chroma, norm=np.inf, axis=-2)
    return {"chroma": chroma, "tonnetz": lf.tonnetz(chroma=chroma, sr=config.sample_rate)}


@functools.lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """``librosa.filters.mel`` (Slaney), read-only: building it costs about 1 ms, so once per
    process instead of once per clip. Shape ``(n_mels, 1 + n_fft // 2)``."""
    import librosa

    basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)
    basis.flags.writeable = False
    return basis


@functools.lru_cache(maxsize=8)
def _chroma_basis(sample_rate: int, n_fft: int) -> np.ndarray:
    """``librosa.filters.chroma`` at A440 (``tuning=0``), read-only, built once per process.
    Shape ``(12, 1 + n_fft // 2)``."""
    import librosa

    basis = librosa.filters.chroma(sr=sample_rate, n_fft=n_fft, tuning=0.0)
    basis.flags.writeable = False
    return basis


def _delta_width(n_frames: int) -> int:
    """librosa's default width 9, narrowed (odd, >= 3) for clips with fewer frames."""
    largest_odd = n_frames if n_frames % 2 else n_frames - 1
    return max(3, min(9, largest_odd))
