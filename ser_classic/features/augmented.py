"""Feature vectors of augmented copies of training files (see :mod:`ser_classic.augmentation`).

Copies belong in training data only. Each file's copies are drawn from a generator seeded with
the file's SHA-256, so they do not depend on the order or the process the files are handled in;
their vectors are cached like the originals', under a folder named after the recipe.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .. import audio
from ..errors import AudioError, SERError
from .cache import FeatureCache, file_sha256
from .config import FeatureConfig
from .extractor import extract_vector, feature_names

if TYPE_CHECKING:
    import pandas as pd

_log = logging.getLogger(__name__)

__all__ = ["TrainingRows", "augmented_features", "with_copies"]


def _copies_of_path(
    path: str, config: FeatureConfig, recipe: str, n_copies: int, cache: FeatureCache | None
) -> np.ndarray | SERError:
    """Vectors of ``n_copies`` augmented copies of one file, ``(n_copies, n_features)``, or the
    error naming it; never raises, so a batch goes on."""
    from ..augmentation import RECIPES, augment

    try:
        try:
            digest: str | None = file_sha256(path)  # the cache key and the copies' seed, read once
        except OSError:
            digest = None  # unreadable: audio.load below says why
        if cache is not None and digest is not None:
            cached = cache.get(path, sha256=digest)
            if cached is not None and cached.shape[0] == n_copies:
                return cached
        signal = audio.load(path, sample_rate=config.sample_rate)
        rng = np.random.default_rng(int((digest or file_sha256(path))[:16], 16))
        copies = augment(signal, RECIPES[recipe], n_copies=n_copies, rng=rng, sample_rate=config.sample_rate)
        values = np.vstack([
            extract_vector(copy.astype(np.float32, copy=False), config, within_speech=RECIPES[recipe].within_speech(k))
            for k, copy in enumerate(copies)
        ])
        if not np.all(np.isfinite(values)):
            raise AudioError(f"features of the {recipe!r} copies are not finite", path)
        if cache is not None:
            cache.put(path, values, sha256=digest)
        return values
    except SERError as error:
        return error
    except Exception as error:  # one odd file must not end the training run
        return AudioError(f"augmentation failed ({type(error).__name__}: {error})", path)


def augmented_features(
    paths: Sequence[str | PathLike[str]],
    recipe: str,
    *,
    n_copies: int | None = None,
    config: FeatureConfig | None = None,
    cache_dir: str | PathLike[str] | None = None,
    n_jobs: int | None = None,
    progress: bool = False,
) -> list[pd.DataFrame]:
    """Feature tables of augmented copies: table ``k`` holds copy ``k`` of every file.

    Parameters
    ----------
    paths : sequence of path
        Training files.
    recipe : str
        A name in :data:`ser_classic.augmentation.RECIPES`, e.g. ``"speed"``.
    n_copies : int, optional
        Copies per file; the recipe's own number (:attr:`~ser_classic.augmentation.Recipe.n_copies`) by default.
    config : FeatureConfig, optional
    cache_dir : path, optional
        The feature cache folder; copies go to ``<cache_dir>/augmented-<recipe digest>``.
    n_jobs : int, optional
        Worker processes (``-1``: all cores).

    Returns
    -------
    list of DataFrame [shape=(len(paths), n_features)], length ``n_copies``
        Indexed like ``paths`` (``file``), in the same order. A file whose copies fail gets a
        row of NaN, with a warning naming it, so rows stay aligned with the originals.
    """
    from ..augmentation import RECIPES
    from ..parallel import ordered_map

    config = config or FeatureConfig()
    if recipe not in RECIPES:
        raise SERError(f"unknown augmentation {recipe!r}; choose from {', '.join(sorted(RECIPES))}")
    n_copies = RECIPES[recipe].n_copies if n_copies is None else n_copies
    cache = None if cache_dir is None else FeatureCache(Path(cache_dir) / f"augmented-{RECIPES[recipe].digest()}", config)
    names = feature_names(config)
    path_list = [str(p) for p in paths]
    blocks = np.full((n_copies, len(path_list), len(names)), np.nan)
    results = ordered_map(
        _copies_of_path, path_list, config=config, recipe=recipe, n_copies=n_copies, cache=cache,
        n_jobs=n_jobs, progress=progress, description=f"{recipe} copies", on_lost=_lost,
    )
    for row, result in enumerate(results):
        if isinstance(result, SERError):
            _log.warning("no augmented copies: %s", result)
        else:
            blocks[:, row, :] = result
    import pandas as pd  # here: the workers import this module, and go without pandas

    index = pd.Index(path_list, name="file")
    return [pd.DataFrame(block, index=index, columns=names) for block in blocks]


def _lost(path: str) -> AudioError:
    """The error of a file whose worker process died augmenting it, twice."""
    return AudioError("the worker process augmenting this file died (a crash in a decoder, or killed: out of memory?)", path)


class TrainingRows(NamedTuple):
    """Training clips followed by their augmented copies."""

    features: pd.DataFrame
    labels: np.ndarray
    #: ``"s (copy k)"`` for copy ``k`` of a clip of speaker ``s``.
    speakers: np.ndarray
    #: Row position, among the original clips, of the clip each row is (a copy of).
    sources: np.ndarray
    #: Each row's share of its clip: ``1 / (1 + copies of the clip)``, so that every training
    #: clip weighs 1 in all, however many copies it has.
    weights: np.ndarray


def with_copies(
    features: pd.DataFrame,
    labels: np.ndarray,
    speakers: np.ndarray,
    copies: Sequence[pd.DataFrame],
) -> TrainingRows:
    """Training rows plus their augmented copies (rows of NaN left out).

    ``copies`` are tables aligned row by row with ``features`` (as :func:`augmented_features`
    returns them, already restricted to the same rows). Copy ``k`` of speaker ``s`` gets the
    speaker ``"s (copy k)"``: per-speaker normalization then standardizes each set of copies with
    its own statistics, as it does a new speaker's clips, so that an augmentation's systematic
    shift (a higher pitch, say) is not left in the normalized copies. ``sources`` keeps a clip
    and its copies together wherever training splits its data again (calibration folds), and
    ``weights`` shares each clip's weight among its rows: copies show a classifier more ways a
    clip may sound, not more clips, and its regularization keeps the strength it has without them.
    """
    import pandas as pd

    positions = np.arange(len(features))
    tables, label_parts, speaker_parts, source_parts = [features], [labels], [speakers], [positions]
    for k, table in enumerate(copies, start=1):
        if len(table) != len(features):
            raise SERError(f"augmented copy {k} has {len(table)} rows for {len(features)} clips")
        complete = table.notna().all(axis=1).to_numpy()
        tables.append(table[complete].set_axis(features.columns, axis=1))
        label_parts.append(labels[complete])
        speaker_parts.append(np.char.add(speakers[complete].astype(str), f" (copy {k})"))
        source_parts.append(positions[complete])
    sources = np.concatenate(source_parts)
    rows_per_clip = np.bincount(sources, minlength=len(features))
    return TrainingRows(
        pd.concat(tables), np.concatenate(label_parts), np.concatenate(speaker_parts), sources, 1.0 / rows_per_clip[sources]
    )
