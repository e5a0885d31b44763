"""Feature vectors of many files: streamed in order, or gathered into a table.

What :class:`~ser_classic.features.FeatureExtractor` runs on files, without scikit-learn: a
command that only extracts (``ser features``) starts sooner without it. While the workers of a
:func:`~ser_classic.parallel.worker_server` start, this process reads the first files ahead
for them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from functools import partial
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np

from ..audio import load
from ..errors import AudioError, SERError
from .cache import FeatureCache
from .config import FeatureConfig
from .extractor import extract_file, feature_names, warm_up

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["feature_table", "iter_vectors"]

_log = logging.getLogger(__name__)


def iter_vectors(
    paths: Sequence[str | PathLike[str]],
    config: FeatureConfig,
    *,
    cache_dir: str | PathLike[str] | None = None,
    n_jobs: int | None = 1,
    progress: bool = False,
) -> Iterator[tuple[str, np.ndarray | SERError]]:
    """Yield ``(path, vector or error)`` in input order as files finish; never raises per file.

    ``n_jobs`` worker processes (``-1``: as many as pay off, see
    :func:`~ser_classic.parallel.ordered_map`); vectors are cached in ``cache_dir`` when given.
    """
    from ..parallel import ordered_map

    cache = None if cache_dir is None else FeatureCache(Path(cache_dir), config)
    path_list = [str(p) for p in paths]
    results = ordered_map(
        _file_vector,
        path_list,
        config=config,
        cache=cache,
        n_jobs=n_jobs,
        progress=progress,
        description="features",
        # workers forked after a warm-up start ready; with a cache, files may need no extraction
        warm_up=partial(warm_up, config) if cache is None else None,
        prefetch=partial(_read_ahead, config=config, cache=cache),
        on_lost=_lost,
    )
    yield from zip(path_list, results)


def _lost(item: str | Decoded) -> AudioError:
    """The error of a file whose worker process died extracting it, twice."""
    path = item.path if isinstance(item, Decoded) else item
    return AudioError("the worker process extracting this file died (a crash in a decoder, or killed: out of memory?)", path)


#: Longest file this process reads ahead for the workers (see :func:`_read_ahead`), in seconds:
#: with :data:`~ser_classic.parallel.PREFETCH_ITEMS`, a bound on the memory it holds.
READ_AHEAD_MAX_SECONDS = 10.0


class Decoded(NamedTuple):
    """A file's audio, read by this process for a worker (see :func:`_read_ahead`)."""

    path: str
    signal: np.ndarray


def _read_ahead(path: str, *, config: FeatureConfig, cache: FeatureCache | None) -> str | Decoded:
    """The file decoded and resampled (the extractor's conditioning and trimming are the
    worker's), for a worker to start from; the path itself when the file is cached, longer
    than :data:`READ_AHEAD_MAX_SECONDS`, or unreadable (its worker then says why)."""
    try:
        if cache is not None and cache.get(path) is not None:
            return path
        return Decoded(path, load(path, sample_rate=config.sample_rate, max_seconds=READ_AHEAD_MAX_SECONDS))
    except Exception:  # the worker reads the file again and names the problem
        return path


def _file_vector(item: str | Decoded, config: FeatureConfig, cache: FeatureCache | None) -> np.ndarray | SERError:
    """:func:`~ser_classic.features.extractor.extract_file` of a path or of a file read ahead."""
    if isinstance(item, Decoded):
        return extract_file(item.path, config, cache, decoded=item.signal)
    return extract_file(item, config, cache)


def feature_table(
    paths: Sequence[str | PathLike[str]],
    config: FeatureConfig,
    *,
    cache_dir: str | PathLike[str] | None = None,
    n_jobs: int | None = 1,
    progress: bool = False,
    errors: Literal["raise", "skip"] = "raise",
) -> pd.DataFrame:
    """Feature table indexed by path (``file``), in the order given, recording its settings in
    ``attrs["feature_config"]`` (see :func:`~ser_classic.features.config.table_config`).

    ``errors="skip"`` leaves failed files out (each is logged); ``"raise"`` raises the first.
    """
    import pandas as pd  # here: the workers import this module, and go without pandas

    names = feature_names(config)
    rows, index = [], []
    for path, result in iter_vectors(paths, config, cache_dir=cache_dir, n_jobs=n_jobs, progress=progress):
        if isinstance(result, SERError):
            if errors == "raise":
                raise result
            _log.warning("skipped %s", result)
            continue
        rows.append(result)
        index.append(path)
    table = pd.DataFrame(
        np.vstack(rows) if rows else np.empty((0, len(names))),
        index=pd.Index(index, name="file"),
        columns=names,
    )
    table.attrs["feature_config"] = config.to_dict()
    return table
