"""The corpus workflows behind ``ser train``, ``ser evaluate`` and ``ser features``, as library calls.

:func:`load_corpus_data` reads one or more labelled corpora and their (cached) features;
:func:`fit_corpus` cross-validates a configuration on it and fits the model whose card holds
those scores; :func:`evaluate_corpus` cross-validates only. The CLI commands are thin layers
over these, so a Python user gets the same scored model card as ``ser train``.

Examples
--------
>>> from ser_classic.training import fit_corpus
>>> model = fit_corpus(["../shared/data/ravdess"], cache_dir="features/cache")  # doctest: +SKIP
>>> model.card["evaluation"]["speaker"]["mean"]["accuracy"]  # doctest: +SKIP
>>> model.save("models/my-model.joblib")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any

import pandas as pd

from .errors import SERError

if TYPE_CHECKING:
    from .evaluation import Evaluation
    from .models import Model

__all__ = ["BUNDLED_AUGMENTATION", "CorpusData", "clip_names", "evaluate_corpus", "fit_corpus", "load_corpus_data"]

logger = logging.getLogger(__name__)

#: Folds of the random stratified split recorded on a card (speaker-dependent, for comparison only).
RANDOM_SPLIT_FOLDS = 5
#: The augmentation of the bundled models and of ``ser train`` without ``--augment``: five
#: copies of every training clip, two played faster and slower, one noisy and the first 0.75 s
#: and 1.5 s of its speech (:data:`ser_classic.augmentation.RECIPES`); it keeps the label of a
#: clip recorded in a noisy room (docs/robustness.md) and of an utterance ``ser listen`` has
#: heard only the start of (docs/development.md "Which training copies").
BUNDLED_AUGMENTATION = "speed-prefix"


@dataclass(frozen=True)
class CorpusData:
    """Labelled clips with their feature vectors.

    Attributes
    ----------
    table : DataFrame
        One row per clip: ``path``, ``label``, ``speaker``, ``corpus`` (see :func:`ser_classic.corpus.read_corpora`).
    features : DataFrame
        Feature vectors, one row per clip of ``table`` in its order.
    copies : list of DataFrame
        Feature tables of augmented copies (empty without augmentation), each aligned with ``table``.
    augmentation : str
        How the copies were made, for cards and reports ("" for none).
    sources : list of str
        The corpus paths read.
    classes : str
        The classes asked for (``classes`` of :func:`load_corpus_data`), or ``"all in corpus"``.
    """

    table: pd.DataFrame
    features: pd.DataFrame
    copies: list[pd.DataFrame]
    augmentation: str
    sources: list[str]
    classes: str = "all in corpus"


def load_corpus_data(
    corpora: Sequence[str | PathLike[str]],
    *,
    kind: str = "auto",
    classes: str | None = None,
    augment: str = "none",
    n_jobs: int = -1,
    cache_dir: str | PathLike[str] | None = None,
    progress: bool = False,
) -> CorpusData:
    """Read labelled corpora (folders or manifests) and extract their features.

    Parameters
    ----------
    corpora : sequence of path
        Corpus folders (RAVDESS, CREMA-D, ``ROOT/<label>/*``) or manifests, read by
        :func:`ser_classic.corpus.read_corpora`.
    kind : str
        ``"auto"`` (detected per path) or a reader name in :data:`ser_classic.corpus.CORPUS_KINDS`.
    classes : str or None
        Keep only these classes: a comma-separated list, a name in
        :data:`ser_classic.corpus.EMOTION_SETS`, or ``"shared"`` (those every corpus has).
    augment : str
        ``"none"`` or a recipe of :data:`ser_classic.augmentation.RECIPES`: feature tables of
        augmented copies of every clip (used in training folds only).
    n_jobs, cache_dir, progress
        As for :class:`ser_classic.features.FeatureExtractor`.

    Raises
    ------
    SERError
        An unreadable corpus, an unknown recipe, or no clip left.
    """
    from .augmentation import RECIPES
    from .corpus import read_corpora, select_classes
    from .features.config import FeatureConfig
    from .features.files import feature_table

    if augment != "none" and augment not in RECIPES:
        raise SERError(f"unknown augmentation {augment!r}; choose none or one of: {', '.join(RECIPES)}")
    table = select_classes(read_corpora(list(corpora), kind), classes)
    paths = table["path"].tolist()
    features = feature_table(paths, FeatureConfig(), cache_dir=cache_dir, n_jobs=n_jobs, progress=progress)
    copies: list[pd.DataFrame] = []
    if augment != "none":
        from .features.augmented import augmented_features

        copies = augmented_features(paths, augment, cache_dir=cache_dir, n_jobs=n_jobs, progress=progress)
    label = f"{augment}, {len(copies)} copies per training clip" if copies else ""
    return CorpusData(table=table, features=features, copies=copies, augmentation=label, sources=[str(path) for path in corpora],
        classes=classes or "all in corpus",
    )


def evaluate_corpus(
    data: CorpusData,
    *,
    classifier: Any = "svm",
    protocol: str = "speaker",
    n_splits: int | None = None,
    seed: int = 0,
    speaker_norm: bool = False,
    batch_norm: bool = False,
    n_jobs: int = -1,
    progress: bool = False,
) -> Evaluation:
    """Cross-validate a classifier on ``data`` (see :func:`ser_classic.evaluation.evaluate`);
    ``n_splits`` defaults to 6 for the speaker protocol and 5 for the random split."""
    from .evaluation import evaluate

    table = data.table
    return evaluate(
        data.features, table["label"], table["speaker"], classifier=classifier, protocol=protocol,
        n_splits=n_splits or (6 if protocol == "speaker" else RANDOM_SPLIT_FOLDS), seed=seed, progress=progress,
        speaker_norm=speaker_norm, batch_norm=batch_norm, corpora=table["corpus"], augmented=data.copies,
        augmentation=data.augmentation, n_jobs=n_jobs,
    )


def fit_corpus(
    data: CorpusData,
    *,
    classifier: str = "ensemble",
    cv_folds: int = 6,
    random_split: bool = False,
    seed: int = 0,
    speaker_norm: bool = False,
    batch_norm: bool = False,
    name: str = "model",
    n_jobs: int = -1,
    progress: bool = False,
) -> Model:
    """Cross-validate a configuration on ``data``, then fit it on all of it.

    The model card records the training data and the cross-validated scores of the same
    configuration: speaker-independent (``cv_folds`` folds grouped by speaker; 0 skips it, as
    do fewer speakers than folds) with each corpus's own scores when there are several, and,
    with ``random_split``, random stratified 5-fold (speaker-dependent, for comparison only).
    With no option, on data loaded with ``augment=BUNDLED_AUGMENTATION``, this is the bundled
    models' configuration (the soft-voting ensemble) and what ``ser train`` builds by default.

    Returns
    -------
    Model
        Fitted and scored, not yet saved (see :meth:`~ser_classic.models.Model.save`).
    """
    from .models import train

    table = data.table
    scores: dict[str, Any] = {}
    for protocol, folds in (("speaker", cv_folds), ("random", RANDOM_SPLIT_FOLDS if cv_folds and random_split else 0)):
        if not folds:
            continue
        if protocol == "speaker" and table["speaker"].nunique() < folds:
            logger.warning("fewer than %d speakers: no speaker-independent scores on the card", folds)
            continue
        result = evaluate_corpus(
            data, classifier=classifier, protocol=protocol, n_splits=folds, seed=seed, speaker_norm=speaker_norm,
            batch_norm=batch_norm, n_jobs=n_jobs, progress=progress,
        )
        summary = result.summary()
        scores[protocol] = {key: summary[key] for key in ("protocol_description", "n_splits", "mean", "std", "per_class", "confusion_matrix")}
        if protocol == "speaker" and table["corpus"].nunique() > 1:
            scores[protocol]["per_corpus"] = result.scores_by(table["corpus"])
    card = {
        "name": name,
        "training": {
            "corpus": data.sources,
            "corpora": {str(corpus): int(count) for corpus, count in table["corpus"].value_counts(sort=False).items()},
            "n_speakers": int(table["speaker"].nunique()),
            "classes_requested": data.classes,
        },
        "evaluation": scores,
    }
    return train(
        data.features, table["label"], classifier=classifier, seed=seed, card=card, speakers=table["speaker"],
        speaker_norm=speaker_norm, batches=table["corpus"], batch_norm=batch_norm, augmented=data.copies,
        augmentation=data.augmentation, clips=clip_names(table["path"], data.sources),
    )


def clip_names(paths: Sequence[str], sources: Sequence[str]) -> list[str]:
    """Each clip's name within its corpus: ``<corpus folder name>/<path inside it>`` for a clip
    under one of the corpus folders (or beside one of the manifests) in ``sources``, else its
    file name. The same on every machine, wherever the corpora lie."""
    from pathlib import Path

    roots = [Path(source) if Path(source).is_dir() else Path(source).parent for source in sources]
    names = []
    for path in map(Path, paths):
        root = next((root for root in roots if path.is_relative_to(root)), None)
        names.append(f"{root.name}/{path.relative_to(root).as_posix()}" if root is not None else path.name)
    return names
