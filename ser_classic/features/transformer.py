"""FeatureExtractor: the feature vectors of audio files, as a scikit-learn transformer.

Kept apart from :mod:`ser_classic.features.extractor`, which computes the vectors: scikit-learn
and pandas are imported here only, so that a process that only extracts (a helper or pool
worker) starts without them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from os import PathLike
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from ..errors import SERError
from .cache import FeatureCache
from .config import FeatureConfig
from .extractor import extract_features, extract_file, feature_names, warm_up

_log = logging.getLogger(__name__)

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
        """Named vector of an in-memory signal (no trimming)."""
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
        table.attrs["feature_config"] = self.config_.to_dict()
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
            extract_file,
            path_list,
            config=config,
            cache=cache,
            n_jobs=self.n_jobs if n_jobs is None else n_jobs,
            progress=progress,
            description="features",
            # workers forked after a warm-up start ready; with a cache, files may need no extraction
            warm_up=partial(warm_up, config) if cache is None else None,
        )
        yield from zip(path_list, results)

    def _cache(self) -> FeatureCache | None:
        return None if self.cache_dir is None else FeatureCache(Path(self.cache_dir), self.config_)
