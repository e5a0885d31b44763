"""Frame-wise spectral tracks, all computed from one magnitude STFT.

Each function takes the precomputed spectrogram (the :mod:`~ser_classic.features.dsp`
ports of librosa's feature functions take it, as librosa's own allow ``S=...``), so one STFT
per clip feeds every group.
"""

from __future__ import annotations

import functools

import numpy as np

from . import dsp
from .conditioning import reference_level
from .config import FeatureConfig

__all__ = [
    "SCALAR_TRACKS",
    "BALANCE_TRACKS",
    "magnitude_spectrogram",
    "frame_tracks",
    "contrast_track",
    "cepstral_tracks",
    "balance_tracks",
    "tonal_tracks",
]

#: Scalar tracks of :func:`frame_tracks`, in vector order.
SCALAR_TRACKS = ("zcr", "rms_db", "centroid", "bandwidth", "rolloff", "flatness")
#: Smallest value taken to decibels (-360 dB): far below any level a recording holds (a 24-bit
#: file's least step is 1e-7), so no level is absolute; it only keeps logarithms finite. Its
#: square must stay a normal float32, as librosa squares it for amplitudes.
LOG_FLOOR = 1e-18
#: Rows of :func:`~ser_classic.features.dsp.spectral_contrast` with its default six bands.
N_CONTRAST_BANDS = 7
#: Tracks of :func:`balance_tracks`, in vector order.
BALANCE_TRACKS = ("alpha_ratio", "hammarberg", "spectral_slope_0_500", "spectral_slope_500_1500")
#: Rows of the chroma and tonnetz tracks.
N_CHROMA = 12
N_TONNETZ = 6


def magnitude_spectrogram(signal: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """``|STFT|`` with a Hann window, centred frames, bins below ``config.band_low_hz`` emptied,
    floored ``config.spectral_floor_db`` below the clip's strong bins: shape ``(1 + n_fft // 2, n_frames)``.

    The floor is relative to the clip (to :func:`~ser_classic.features.conditioning.reference_level`
    of its frames' strongest bins), not to full scale, so the features see the same spectrum
    whether the recording's quiet bins hold dither, codec noise or room noise. The bins below
    the band hold only what the high-pass left of hum and rumble: they are set to the floor.
    """
    magnitude = np.abs(dsp.stft(signal, config.n_fft, config.hop_length))
    magnitude[np.fft.rfftfreq(config.n_fft, 1.0 / config.sample_rate) < config.band_low_hz] = 0.0
    strong = reference_level(magnitude.max(axis=0), config)
    return np.maximum(magnitude, strong * 10.0 ** (-config.spectral_floor_db / 20.0))


def frame_tracks(signal: np.ndarray, magnitude: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Scalar tracks: zero-crossing rate, RMS level, centroid, bandwidth, roll-off (85%),
    flatness. Level is in decibels relative to the clip's reference level
    (:func:`~ser_classic.features.conditioning.reference_level` of its frames' RMS): loudness
    is perceived on a log scale, and a recording's absolute level says more about its
    microphone gain than about its speaker."""
    sr = config.sample_rate
    rms = dsp.rms_from_magnitude(magnitude, config.n_fft)[0]
    return {
        "zcr": dsp.zero_crossing_rate(signal, config.n_fft, config.hop_length)[0],
        "rms_db": dsp.amplitude_to_db(rms, ref=reference_level(rms, config), amin=LOG_FLOOR),
        "centroid": dsp.spectral_centroid(magnitude, sr)[0],
        "bandwidth": dsp.spectral_bandwidth(magnitude, sr)[0],
        "rolloff": dsp.spectral_rolloff(magnitude, sr)[0],
        "flatness": dsp.spectral_flatness(magnitude, amin=LOG_FLOOR)[0],
    }


def contrast_track(magnitude: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Spectral contrast in seven octave bands from 200 Hz: shape ``(7, n_frames)``."""
    return dsp.spectral_contrast(magnitude, config.sample_rate)


def cepstral_tracks(power: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    """MFCCs from a log-mel spectrogram (dB relative to its strong bands, the reference level of
    the frames' strongest band, so the first coefficient is a relative level), with deltas and
    delta-deltas: each ``(n_mfcc, n_frames)``;
    the spectral flux of the same log-mel spectrogram, ``(n_frames - 1,)``; and that
    spectrogram itself, ``log_mel`` ``(n_mels, n_frames)``.

    The flux is the mean over mel bands of the rise in level (dB) from one frame to the next,
    as ``librosa.onset.onset_strength(S=log_mel, center=False)[1:]`` computes it: how abruptly
    the sound changes, which is high in tense, agitated speech.
    """
    # librosa.feature.melspectrogram(S=power, sr=..., n_mels=...), with its filter bank built once
    mel = np.einsum("...ft,mf->...mt", power, _mel_basis(config.sample_rate, config.n_fft, config.n_mels), optimize=True)
    strong = reference_level(mel.max(axis=0), config)
    log_mel = dsp.power_to_db(mel, ref=strong, amin=LOG_FLOOR)  # floored by the spectrogram
    mfcc = dsp.mfcc(log_mel, config.n_mfcc)
    width = _delta_width(mfcc.shape[1])
    return {
        "mfcc": mfcc,
        "mfcc_delta": dsp.delta(mfcc, width),
        "mfcc_delta2": dsp.delta(mfcc, width, order=2),
        "spectral_flux": np.maximum(0.0, np.diff(log_mel, axis=1)).mean(axis=0),
        "log_mel": log_mel,
    }


def balance_tracks(magnitude: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Spectral balance per frame, as eGeMAPS defines it (Eyben et al., 2016): each ``(n_frames,)``.

    ``alpha_ratio``: energy 50-1000 Hz over 1-5 kHz (dB). ``hammarberg``: strongest bin
    0-2 kHz over strongest bin 2-5 kHz (dB). ``spectral_slope_0_500`` and
    ``spectral_slope_500_1500``: least-squares slope of the power spectrum (dB per kHz) in those
    bands. Vocal effort tilts the spectrum: loud, tense speech puts more energy up high.
    """
    frequencies = np.fft.rfftfreq(config.n_fft, 1.0 / config.sample_rate)  # librosa.fft_frequencies
    power = np.asarray(magnitude, dtype=np.float64) ** 2
    power_db = 10.0 * np.log10(np.maximum(power, LOG_FLOOR))

    def band(low_hz: float, high_hz: float) -> np.ndarray:
        return (frequencies >= low_hz) & (frequencies < high_hz)

    def slope(low_hz: float, high_hz: float) -> np.ndarray:
        khz = frequencies[band(low_hz, high_hz)] / 1000.0
        centred = khz - khz.mean()
        return centred @ power_db[band(low_hz, high_hz)] / (centred @ centred)

    low, high = power[band(50, 1000)].sum(axis=0), power[band(1000, 5000)].sum(axis=0)
    return {
        "alpha_ratio": 10.0 * np.log10(np.maximum(low, LOG_FLOOR) / np.maximum(high, LOG_FLOOR)),
        "hammarberg": power_db[band(0, 2000)].max(axis=0) - power_db[band(2000, 5000)].max(axis=0),
        "spectral_slope_0_500": slope(0, 500),
        "spectral_slope_500_1500": slope(500, 1500),
    }


def tonal_tracks(power: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Chroma (12 pitch classes, C first) and tonnetz (6 tonal centroids) from the same chroma.

    Tuning is fixed at A440 (``tuning=0``): estimating it per clip costs time and means
    nothing for speech.
    """
    # librosa.feature.chroma_stft(S=power, sr=..., tuning=0.0), with its filter bank built once
    raw_chroma = np.einsum("cf,...ft->...ct", _chroma_basis(config.sample_rate, config.n_fft), power, optimize=True)
    chroma = dsp.normalize(raw_chroma, norm=np.inf, axis=-2)
    return {"chroma": chroma, "tonnetz": dsp.tonnetz(chroma)}


@functools.lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """:func:`~ser_classic.features.dsp.mel_filters`, read-only: building it costs about 1 ms, so once per
    process instead of once per clip. Shape ``(n_mels, 1 + n_fft // 2)``."""
    basis = dsp.mel_filters(sample_rate, n_fft, n_mels)
    basis.flags.writeable = False
    return basis


@functools.lru_cache(maxsize=8)
def _chroma_basis(sample_rate: int, n_fft: int) -> np.ndarray:
    """:func:`~ser_classic.features.dsp.chroma_filters` (A440), read-only, built once per process.
    Shape ``(12, 1 + n_fft // 2)``."""
    basis = dsp.chroma_filters(sample_rate, n_fft)
    basis.flags.writeable = False
    return basis


def _delta_width(n_frames: int) -> int:
    """librosa's default delta width 9, narrowed (odd, >= 3) for clips with fewer frames."""
    largest_odd = n_frames if n_frames % 2 else n_frames - 1
    return max(3, min(9, largest_odd))
