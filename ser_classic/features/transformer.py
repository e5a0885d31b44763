"""FeatureExtractor: the feature vectors of audio files, as a scikit-learn transformer.

Kept apart from :mod:`ser_classic.features.extractor`, which computes the vectors, and from
:mod:`ser_classic.features.files`, which runs it on many files: scikit-learn is imported here
only, so that a process that only extracts (a pool worker, ``ser features``) starts without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from os import PathLike
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from ..errors import SERError
from .cache import FeatureCache
from .config import FeatureConfig
from .extractor import extract_features, extract_file, feature_names
from .files import feature_table, iter_vectors

__all__ = ["FeatureExtractor"]


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
        """Named vector of an in-memory signal (see :func:`~ser_classic.features.extract_features`)."""
        return extract_features(signal, sample_rate, self.config_)

    def extract_file(self, path: str | PathLike[str]) -> pd.Series:
        """Named vector of one file, named by its path."""
        result = extract_file(str(path), self.config_, self._cache())
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
        """Feature table indexed by path (``file``), in the order given, recording its
        settings in ``attrs["feature_config"]`` (see :func:`~ser_classic.features.config.table_config`).

        ``errors="skip"`` leaves failed files out (each is logged); ``"raise"`` raises the first.
        """
        return feature_table(
            paths, self.config_, cache_dir=self.cache_dir, n_jobs=self.n_jobs if n_jobs is None else n_jobs, progress=progress, errors=errors
        )

    def iter_files(
        self,
        paths: Sequence[str | PathLike[str]],
        *,
        n_jobs: int | None = None,
        progress: bool = False,
    ) -> Iterator[tuple[str, np.ndarray | SERError]]:
        """Yield ``(path, vector or error)`` in input order as files finish; never raises per file."""
        yield from iter_vectors(paths, self.config_, cache_dir=self.cache_dir, n_jobs=self.n_jobs if n_jobs is None else n_jobs, progress=progress)

    def _cache(self) -> FeatureCache | None:
        return None if self.cache_dir is None else FeatureCache(Path(self.cache_dir), self.config_)
