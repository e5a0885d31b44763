"""The named feature vector of a clip, and :class:`FeatureExtractor` that computes it for files."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Iterator, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from .. import audio
from ..errors import AudioError, SERError
from .cache import FeatureCache
from .config import FeatureConfig
from .pitch import PITCH_NAMES, f0_track, pitch_summary, voiced_frames
from .spectral import (
    BALANCE_TRACKS,
    N_CHROMA,
    SCALAR_TRACKS,
    N_CONTRAST_BANDS,
    N_TONNETZ,
    balance_tracks,
    cepstral_tracks,
    contrast_track,
    frame_tracks,
    magnitude_spectrogram,
    tonal_tracks,
)
from .stats import COEFFICIENT_STATISTICS, FRAME_STATISTICS, summarize, summary_names

_log = logging.getLogger(__name__)

__all__ = ["FEATURE_GROUPS", "feature_names", "extract_features", "FeatureExtractor"]

#: Feature group -> the tracks it holds, for documentation and model cards.
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "energy and time": ("zcr", "rms_db"),
    "spectral shape": ("centroid", "bandwidth", "rolloff", "flatness", "contrast", "spectral_flux"),
    "spectral balance": BALANCE_TRACKS,
    "cepstral": ("mfcc", "mfcc_delta", "mfcc_delta2", "mfcc_unvoiced"),
    "tonal": ("chroma", "tonnetz"),
    "pitch and rhythm": ("voiced_fraction", "f0", "f0_semitone", "voiced_segment_rate"),
}


def _layout(config: FeatureConfig) -> list[tuple[str, int | None, tuple[str, ...]]]:
    """(track, rows or None for a scalar track, statistics), in vector order.

    ``mfcc_unvoiced`` is the MFCC track over the frames that are not voiced (consonants, breath,
    pauses); the spectral balance tracks are taken over the voiced frames. Either falls back
    to all frames when a clip has no such frame.
    """
    return [
        *[(track, None, FRAME_STATISTICS) for track in SCALAR_TRACKS],
        ("contrast", N_CONTRAST_BANDS, COEFFICIENT_STATISTICS),
        ("spectral_flux", None, COEFFICIENT_STATISTICS),
        *[(track, None, COEFFICIENT_STATISTICS) for track in BALANCE_TRACKS],
        ("mfcc", config.n_mfcc, FRAME_STATISTICS),
        ("mfcc_delta", config.n_mfcc, COEFFICIENT_STATISTICS),
        ("mfcc_delta2", config.n_mfcc, COEFFICIENT_STATISTICS),
        ("mfcc_unvoiced", config.n_mfcc, COEFFICIENT_STATISTICS),
        ("chroma", N_CHROMA, COEFFICIENT_STATISTICS),
        ("tonnetz", N_TONNETZ, COEFFICIENT_STATISTICS),
    ]


def feature_names(config: FeatureConfig | None = None) -> list[str]:
    """The ordered feature names for ``config``, e.g. ``zcr_mean``, ``mfcc_03_p90``, ``f0_p50``."""
    config = config or FeatureConfig()
    names = [name for track, rows, stats in _layout(config) for name in summary_names(track, rows, stats)]
    return names + list(PITCH_NAMES)


@functools.cache
def _blas_threads() -> Any:
    """Controller of the BLAS thread pools of numpy and scipy (loaded with librosa)."""
    import librosa  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def extract_vector(signal: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """The feature values of a mono signal already at ``config.sample_rate``, as named by
    :func:`feature_names`. One STFT and one pitch track feed every group.

    Matrix products run on one BLAS thread: multithreaded float32 products (mel and chroma
    filter banks) round differently with the number of threads, and a vector must not depend
    on the process or the machine that computed it (pool workers run one thread each).
    """
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
        voiced = voiced_frames(f0, tracks["rms_db"], config)
        unvoiced = ~voiced if not voiced.all() else voiced
        tracks["mfcc_unvoiced"] = tracks["mfcc"][:, unvoiced]
        tracks.update(
            (track, values[voiced] if voiced.any() else values)
            for track, values in balance_tracks(magnitude, config).items()
        )
        parts = [summarize(tracks[track], stats) for track, _, stats in _layout(config)]
        parts.append(pitch_summary(f0, voiced, config))
    return np.concatenate(parts)


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
    config = config or FeatureConfig()
    mono = audio.to_mono(np.asarray(signal, dtype=np.float64))
    audio.check_signal(mono, sample_rate)  # before float32, where huge values would overflow
    mono = audio.resample(mono.astype(np.float32), sample_rate, config.sample_rate).astype(np.float32, copy=False)
    audio.check_signal(mono, config.sample_rate, max_peak=None)  # resampling may overshoot the input's peak
    values = extract_vector(mono, config)
    if not np.all(np.isfinite(values)):
        raise AudioError("features are not finite for this signal")
    return pd.Series(values, index=feature_names(config), name="features")


def _extract_path(path: str, config: FeatureConfig, cache: FeatureCache | None) -> np.ndarray | SERError:
    """One file's vector, or the error naming it; never raises, so a batch goes on."""
    try:
        if cache is not None:
            cached = cache.get(path)
            if cached is not None:
                return cached
        signal = audio.load(path, sample_rate=config.sample_rate, trim_db=config.trim_db)
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


class FeatureExtractor(TransformerMixin, BaseEstimator):
    """Turns audio files into named feature vectors (a scikit-learn transformer).

    Parameters
    ----------
    config : FeatureConfig, optional
        Analysis settings; the defaults when ``None``.
    cache_dir : str or PathLike, optional
        Folder of the feature cache (keyed by file content and settings); no cache when ``None``.
    n_jobs : int, optional
        Worker processes for many files (``-1``: all cores).

    Examples
    --------
    >>> from ser_classic import FeatureExtractor
    >>> extractor = FeatureExtractor()
    >>> vector = extractor.extract_file("Actor_01/03-01-05-01-01-01-01.flac")  # doctest: +SKIP
    >>> vector["mfcc_01_mean"]  # doctest: +SKIP
    """

    def __init__(
        self,
        config: FeatureConfig | None = None,
        *,
        cache_dir: str | PathLike[str] | None = None,
        n_jobs: int | None = None,
    ) -> None:
        self.config = config
        self.cache_dir = cache_dir
        self.n_jobs = n_jobs

    @property
    def config_(self) -> FeatureConfig:
        """The settings in force (``config`` or the defaults)."""
        return self.config or FeatureConfig()

    def fit(self, X: object = None, y: object = None) -> FeatureExtractor:
        """Nothing to learn; records the output names."""
        self.feature_names_out_ = np.asarray(feature_names(self.config_), dtype=object)
        self.n_features_out_ = len(self.feature_names_out_)
        return self

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """The feature names, as :func:`feature_names` gives them."""
        return np.asarray(feature_names(self.config_), dtype=object)

    def transform(self, X: Iterable[str | PathLike[str]]) -> pd.DataFrame:
        """Feature table of the files in ``X`` (a sequence of paths); raises on a bad file."""
        paths = [str(p) for p in np.asarray(X, dtype=object).ravel()]
        return self.extract_files(paths)

    def extract_signal(self, signal: np.ndarray, sample_rate: int) -> pd.Series:
        """Named vector of an in-memory signal (no trimming)."""
        return extract_features(signal, sample_rate, self.config_)

    def extract_file(self, path: str | PathLike[str]) -> pd.Series:
        """Named vector of one file, named by its path."""
        result = _extract_path(str(path), self.config_, self._cache())
        if isinstance(result, SERError):
            raise result
        return pd.Series(result, index=feature_names(self.config_), name=str(path))

    def extract_files(
        self,
        paths: Sequence[str | PathLike[str]],
        *,
        n_jobs: int | None = None,
        progress: bool = False,
        errors: Literal["raise", "skip"] = "raise",
    ) -> pd.DataFrame:
        """Feature table indexed by path (``file``), in the order given.

        ``errors="skip"`` leaves failed files out (each is logged); ``"raise"`` raises the first.
        """
        names = feature_names(self.config_)
        rows, index = [], []
        for path, result in self.iter_files(paths, n_jobs=n_jobs, progress=progress):
            if isinstance(result, SERError):
                if errors == "raise":
                    raise result
                _log.warning("skipped %s", result)
                continue
            rows.append(result)
            index.append(str(path))
        table = pd.DataFrame(
            np.vstack(rows) if rows else np.empty((0, len(names))),
            index=pd.Index(index, name="file"),
            columns=names,
        )
        return table

    def iter_files(
        self,
        paths: Sequence[str | PathLike[str]],
        *,
        n_jobs: int | None = None,
        progress: bool = False,
    ) -> Iterator[tuple[str, np.ndarray | SERError]]:
        """Yield ``(path, vector or error)`` in input order as files finish; never raises per file."""
        from ..parallel import ordered_map

        config, cache = self.config_, self._cache()
        path_list = [str(p) for p in paths]
        results = ordered_map(
            _extract_path,
            path_list,
            config=config,
            cache=cache,
            n_jobs=self.n_jobs if n_jobs is None else n_jobs,
            progress=progress,
            description="features",
        )
        yield from zip(path_list, results)

    def _cache(self) -> FeatureCache | None:
        return None if self.cache_dir is None else FeatureCache(Path(self.cache_dir), self.config_)
