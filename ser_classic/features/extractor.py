"""The named feature vector of a clip (:mod:`ser_classic.features.transformer` holds
:class:`FeatureExtractor`, which computes it for files)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import audio
from ..errors import AudioError, SERError
from .cache import FeatureCache
from .conditioning import speech_band, speech_bounds
from .config import FeatureConfig
from .pitch import PITCH_NAMES, f0_track, harmonicity_db, periodicity_track, pitch_summary, voiced_frames
from .spectral import (
    BALANCE_TRACKS,
    N_CHROMA,
    N_CONTRAST_BANDS,
    N_TONNETZ,
    SCALAR_TRACKS,
    balance_tracks,
    cepstral_tracks,
    contrast_track,
    frame_tracks,
    magnitude_spectrogram,
    tonal_tracks,
)
from .stats import COEFFICIENT_STATISTICS, DYNAMICS_STATISTICS, FRAME_STATISTICS, summarize, summary_names

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ClipFrames", "extract_features", "extract_file", "extract_frames", "extract_vector", "feature_names", "warm_up"]


def _layout(config: FeatureConfig) -> list[tuple[str, int | None, tuple[str, ...]]]:
    """(track, rows or None for a scalar track, statistics), in vector order.

    ``mfcc_unvoiced`` is the MFCC track over the frames that are not voiced (consonants, breath,
    pauses); the spectral balance tracks and the harmonics-to-noise ratio ``hnr_db`` are taken
    over the voiced frames. Either falls back to all frames when a clip has no such frame.
    """
    return [
        *[(track, None, FRAME_STATISTICS) for track in SCALAR_TRACKS],
        ("contrast", N_CONTRAST_BANDS, COEFFICIENT_STATISTICS),
        ("spectral_flux", None, COEFFICIENT_STATISTICS),
        *[(track, None, COEFFICIENT_STATISTICS) for track in BALANCE_TRACKS],
        ("mfcc", config.n_mfcc, FRAME_STATISTICS),
        ("mfcc_delta", config.n_mfcc, DYNAMICS_STATISTICS),
        ("mfcc_delta2", config.n_mfcc, DYNAMICS_STATISTICS),
        ("mfcc_unvoiced", config.n_mfcc, COEFFICIENT_STATISTICS),
        ("chroma", N_CHROMA, COEFFICIENT_STATISTICS),
        ("tonnetz", N_TONNETZ, COEFFICIENT_STATISTICS),
        ("hnr_db", None, COEFFICIENT_STATISTICS),
    ]


def feature_names(config: FeatureConfig | None = None) -> list[str]:
    """The ordered feature names for ``config``, e.g. ``zcr_mean``, ``mfcc_03_p90``, ``f0_p50``."""
    return list(_names(config or FeatureConfig()))


@functools.lru_cache(maxsize=8)
def _names(config: FeatureConfig) -> tuple[str, ...]:
    """The names, built once per config: a batch asks for them for every file it classifies."""
    names = [name for track, rows, stats in _layout(config) for name in summary_names(track, rows, stats)]
    return (*names, *PITCH_NAMES)


@functools.cache
def _blas_threads() -> Any:
    """Controller of the BLAS thread pools of numpy and scipy (scipy's loads with scipy.linalg)."""
    import scipy.linalg  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@dataclass(frozen=True)
class ClipFrames:
    """Frame tracks of one extraction, the frames of its STFT: what the features summarize.

    Attributes
    ----------
    mel_db : np.ndarray [shape=(n_mels, n_frames)]
        Log-mel spectrogram feeding the MFCCs, in dB below its strongest band.
    f0_hz : np.ndarray [shape=(n_frames,)]
        YIN F0 estimate of every frame, voiced or not.
    voiced : np.ndarray [shape=(n_frames,), dtype=bool]
        The voicing rule's verdict per frame (``voiced_fraction`` is its mean).
    kept : tuple of int
        ``(start, end)``: the samples of the signal that were described, its speech
        (:func:`~ser_classic.features.conditioning.speech_bounds`); the frames cover them.
    """

    mel_db: np.ndarray
    f0_hz: np.ndarray
    voiced: np.ndarray
    kept: tuple[int, int]


def extract_vector(signal: np.ndarray, config: FeatureConfig, *, within_speech: bool = False) -> np.ndarray:
    """The feature values of a mono signal already at ``config.sample_rate``, as named by
    :func:`feature_names`: the signal is brought to the speech band and its speech kept
    (:mod:`~ser_classic.features.conditioning`); one STFT and one pitch track feed every group.
    ``within_speech``: a window cut from inside speech (see
    :func:`~ser_classic.features.conditioning.speech_bounds`).
    """
    return extract_frames(signal, config, within_speech=within_speech)[0]


def extract_frames(signal: np.ndarray, config: FeatureConfig, *, within_speech: bool = False) -> tuple[np.ndarray, ClipFrames]:
    """:func:`extract_vector`'s values, and the frame tracks they were computed from (for
    pictures of what the model saw, without a second STFT or pitch track).

    Matrix products run on one BLAS thread: multithreaded float32 products (mel and chroma
    filter banks) round differently with the number of threads, and a vector must not depend
    on the process or the machine that computed it (pool workers run one thread each).
    """
    band = speech_band(signal, config)
    start, end = speech_bounds(band, config, within_speech=within_speech)
    signal = band[start:end]
    with _blas_threads().limit(limits=1, user_api="blas"):
        magnitude = magnitude_spectrogram(signal, config)
        power = magnitude**2
        tracks: dict[str, np.ndarray] = {
            **frame_tracks(signal, magnitude, config),
            "contrast": contrast_track(magnitude, config),
            **cepstral_tracks(power, config),
            **tonal_tracks(power, config),
        }
        f0 = f0_track(signal, config)
        periodicity = periodicity_track(power, config)
        voiced = voiced_frames(f0, tracks["rms_db"], periodicity, config)
        unvoiced = ~voiced if not voiced.all() else voiced
        tracks["mfcc_unvoiced"] = tracks["mfcc"][:, unvoiced]
        voiced_tracks = {**balance_tracks(magnitude, config), "hnr_db": harmonicity_db(periodicity)}
        tracks.update((track, values[voiced] if voiced.any() else values) for track, values in voiced_tracks.items())
        parts = [summarize(tracks[track], stats) for track, _, stats in _layout(config)]
        parts.append(pitch_summary(f0, voiced, config))
    return np.concatenate(parts), ClipFrames(mel_db=tracks["log_mel"], f0_hz=f0, voiced=voiced, kept=(start, end))


def extract_features(
    signal: np.ndarray, sample_rate: int, config: FeatureConfig | None = None
) -> pd.Series:
    """Named feature vector of a signal.

    Parameters
    ----------
    signal : np.ndarray [shape=(n,) or (n, channels)]
        Any finite signal of at least :data:`ser_classic.audio.MIN_DURATION_SECONDS`.
    sample_rate : int
        Its rate in Hz; it is resampled to the analysis rate when different.
    config : FeatureConfig, optional

    Returns
    -------
    pandas.Series [shape=(n_features,)]
        Indexed by :func:`feature_names`.

    Raises
    ------
    AudioError
        Empty, shorter than :data:`~ser_classic.audio.MIN_DURATION_SECONDS`, all-zero (also
        after resampling), non-finite, or beyond :data:`~ser_classic.audio.MAX_PEAK_AMPLITUDE`.
    """
    import pandas as pd

    config = config or FeatureConfig()
    mono = audio.to_mono(np.asarray(signal, dtype=np.float64))
    audio.check_signal(mono, sample_rate)  # before float32, where huge values would overflow
    mono = audio.resample(mono.astype(np.float32), sample_rate, config.sample_rate).astype(np.float32, copy=False)
    audio.check_signal(mono, config.sample_rate, max_peak=None)  # resampling may overshoot the input's peak
    values = extract_vector(mono, config)
    if not np.all(np.isfinite(values)):
        raise AudioError("features are not finite for this signal")
    return pd.Series(values, index=feature_names(config), name="features")


def warm_up(config: FeatureConfig) -> None:
    """Extract the features of half a second of a synthetic tone, discarding them: the imports
    (SciPy's FFT and signal modules), the BLAS thread controller and the filter banks that the
    first file would otherwise wait for."""
    _blas_threads()
    seconds = np.arange(config.sample_rate // 2) / config.sample_rate
    extract_vector((0.1 * np.sin(2 * np.pi * 220.0 * seconds)).astype(np.float32), config)


def extract_file(
    path: str, config: FeatureConfig, cache: FeatureCache | None, *, decoded: np.ndarray | None = None
) -> np.ndarray | SERError:
    """One file's vector, or the error naming it; never raises, so a batch goes on.

    ``decoded``: the file's audio as ``audio.load(path, sample_rate=config.sample_rate)``
    gives it, when the caller has read it already.
    """
    try:
        if cache is not None:
            cached = cache.get(path)
            if cached is not None:
                return cached
        signal = audio.load(path, sample_rate=config.sample_rate) if decoded is None else decoded
        values = extract_vector(signal, config)
        if not np.all(np.isfinite(values)):
            raise AudioError("features are not finite", path)
        if cache is not None:
            cache.put(path, values)
        return values
    except SERError as error:
        return error
    except Exception as error:  # a decoder or numeric failure must not end the batch
        return AudioError(f"feature extraction failed ({type(error).__name__}: {error})", path)

