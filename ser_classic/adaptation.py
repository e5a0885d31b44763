"""Adapting a model to the user's recordings: a few labelled clips make it theirs.

A model trained on acted corpora is near chance, one clip at a time, on recordings unlike its
training data; a few labelled clips from the user's own microphone, room and voices move it far
more than any classical lever tried (docs/adaptation.md). :func:`adapt` refits on the base
model's training vectors (its :class:`~ser_classic.training_table.TrainingTable`) plus the
user's clips, in the recipe measured by ``benchmarks/adaptation.py``:

1. **Their own standardization.** The base's vectors are standardized with the base's
   statistics; the user's clips, and every clip the adapted model classifies later, with the
   user's (their microphone and room shift every feature alike), shrunk towards the base's by
   :data:`PSEUDO_CLIPS` clips, so that a handful of clips cannot throw them far.
2. **One classifier on both.** An RBF SVM (C = :data:`SVM_C`, balanced classes), the user's
   clips weighing in all as much as the base's training clips (never less than 1 each).
3. **Kept close to the base where the clips do not help.** Its probabilities (the softmax of
   the summed pairwise margins, at a temperature fitted on the user's clips out of fold) are
   mixed with the base model's own with a weight chosen by cross-validation over the user's
   clips from :data:`BASE_WEIGHTS`, ties towards the base: an adapted model that the estimate
   does not find better than its base stays the base.

The estimate (:class:`Estimate`) is that cross-validation: folds over the user's clips, grouped
by speaker when the speakers are known, each fold's clips classified by the base and by a
model adapted without them; UAR over all of them, with the clips behind it.

Labels are matched case-insensitively with the usual synonyms
(:func:`ser_classic.corpus.canonical_label`). A label the base lacks becomes a new class when it
has at least :data:`MIN_NEW_CLASS_CLIPS` clips, and is left out with a warning otherwise.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import SERError

if TYPE_CHECKING:
    import pandas as pd

    from .model_file import ModelFile
    from .models import Model
    from .training_table import TrainingTable

__all__ = [
    "BASE_WEIGHTS",
    "MIN_NEW_CLASS_CLIPS",
    "PSEUDO_CLIPS",
    "SVM_C",
    "AdaptedClassifier",
    "Estimate",
    "adapt",
    "adapt_features",
    "estimate",
]

_log = logging.getLogger(__name__)

#: Pseudo-clips of the base's statistics mixed into the user's (mean and spread of each feature).
PSEUDO_CLIPS = 20.0
#: Regularization of the adapted SVM (the bundled models' own uses 10: fewer, more varied clips here).
SVM_C = 1.0
#: Weights of the base model's probabilities in the mix, tried by cross-validation (1: the base).
BASE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: The mix when no estimate is possible (a class with fewer than 2 clips): halfway to the base.
UNESTIMATED_BASE_WEIGHT = 0.5
#: A label the base model lacks becomes a class of its own from this many clips.
MIN_NEW_CLASS_CLIPS = 5
#: Folds of the estimate, at most.
MAX_FOLDS = 5
#: The corpus name of the user's clips in the adapted model's training table.
USER_CORPUS = "user"


class AdaptedClassifier:
    """The base model's classifier and an SVM fitted on the base's and the user's vectors.

    Parameters
    ----------
    base : classifier
        The base model's fitted pipeline (raw features in, probabilities of its ``classes_`` out).
    base_weight : float
        Weight of the base's probabilities in :meth:`predict_proba` (0: the adapted SVM alone).
    temperature : float
        The SVM's margins are divided by it before the softmax.

    Attributes (after :meth:`fit`)
    ------------------------------
    classes_ : np.ndarray
        The base's classes and any new one, sorted.
    base_mean_, base_scale_, user_mean_, user_scale_ : np.ndarray [shape=(n_features,)]
        The two standardizations; inputs to :meth:`predict_proba` are the user's.
    svm_ : sklearn.svm.SVC
    """

    def __init__(self, base: Any, *, base_weight: float = 0.0, temperature: float = 1.0, seed: int = 0) -> None:
        self.base = base
        self.base_weight = base_weight
        self.temperature = temperature
        self.seed = seed

    def fit(self, features: np.ndarray, labels: np.ndarray, user: np.ndarray) -> AdaptedClassifier:
        """Fit on rows of the base's training table (``user`` False) and the user's clips (True)."""
        from sklearn.svm import SVC

        values, labels, user = np.asarray(features, dtype=np.float64), np.asarray(labels, dtype=str), np.asarray(user, dtype=bool)
        base_rows, user_rows = values[~user], values[user]
        self.base_mean_, self.base_scale_ = base_rows.mean(axis=0), _scale(base_rows.std(axis=0))
        self.user_mean_, self.user_scale_ = shrunk_statistics(user_rows, self.base_mean_, self.base_scale_)
        standardized = np.where(user[:, np.newaxis], (values - self.user_mean_) / self.user_scale_, (values - self.base_mean_) / self.base_scale_)
        weights = np.where(user, max(1.0, base_rows.shape[0] / max(1, user_rows.shape[0])), 1.0)
        self.svm_ = SVC(C=SVM_C, gamma="scale", class_weight="balanced", decision_function_shape="ovo", random_state=self.seed)
        self.svm_.fit(standardized, labels, sample_weight=weights)
        self.classes_ = np.union1d(self.svm_.classes_, np.asarray(self.base.classes_, dtype=str))
        return self

    def margins(self, features: np.ndarray) -> np.ndarray:
        """The SVM's summed pairwise margins of each class of :attr:`classes_` (a class it never
        saw scores far below the rest): shape ``(n_clips, n_classes)``."""
        from .calibration import pairwise_margins

        standardized = (np.asarray(features, dtype=np.float64) - self.user_mean_) / self.user_scale_
        scores = pairwise_margins(self.svm_.decision_function(standardized), len(self.svm_.classes_))
        full = np.full((scores.shape[0], len(self.classes_)), -1e6)
        full[:, np.searchsorted(self.classes_, self.svm_.classes_)] = scores
        return full

    def base_probabilities(self, features: np.ndarray) -> np.ndarray:
        """The base's probabilities, in the columns of :attr:`classes_` (0 for a new class)."""
        import warnings

        probabilities = np.zeros((len(features), len(self.classes_)))
        with warnings.catch_warnings():  # the base pipeline was fitted on named columns; these are in its order
            warnings.filterwarnings("ignore", "X does not have valid feature names", UserWarning)
            base = self.base.predict_proba(features)
        probabilities[:, np.searchsorted(self.classes_, np.asarray(self.base.classes_, dtype=str))] = base
        return probabilities

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """``(1 - base_weight) * softmax(margins / temperature) + base_weight * base``: rows sum to 1."""
        from scipy.special import softmax

        adapted = softmax(self.margins(features) / self.temperature, axis=1)
        if self.base_weight == 0.0:
            return adapted
        return (1.0 - self.base_weight) * adapted + self.base_weight * self.base_probabilities(features)

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(features), axis=1)]


def _scale(spread: np.ndarray) -> np.ndarray:
    """A feature's spread as a divisor: constant features divide by 1."""
    return np.where(spread > 1e-12, spread, 1.0)


def shrunk_statistics(rows: np.ndarray, prior_mean: np.ndarray, prior_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread of ``rows``, each feature's pooled with :data:`PSEUDO_CLIPS` pseudo-rows
    of mean ``prior_mean`` and spread ``prior_scale`` (the prior's share shrinks as rows come)."""
    count = rows.shape[0]
    if count == 0:
        return prior_mean.copy(), prior_scale.copy()
    mean = rows.mean(axis=0)
    pooled_mean = (count * mean + PSEUDO_CLIPS * prior_mean) / (count + PSEUDO_CLIPS)
    between = count * PSEUDO_CLIPS / (count + PSEUDO_CLIPS) * (mean - prior_mean) ** 2
    variance = (count * rows.var(axis=0) + PSEUDO_CLIPS * prior_scale**2 + between) / (count + PSEUDO_CLIPS)
    return pooled_mean, _scale(np.sqrt(variance))


@dataclass(frozen=True)
class Estimate:
    """How the adapted model and its base do on the user's clips, by cross-validation.

    Attributes
    ----------
    possible : bool
        False when a class has fewer than 2 clips (``reason`` says which).
    reason : str
        Why no estimate was possible, or how the folds were made.
    n_clips, n_folds : int
        Clips behind the estimate and folds over them.
    base_uar, adapted_uar : float or None
        Unweighted average recall over the user's classes, out of fold: the base model's, and the
        adapted model's at the chosen ``base_weight``.
    uar_by_base_weight : dict
        Adapted UAR for each weight of :data:`BASE_WEIGHTS` tried.
    base_weight, temperature : float
        What the adapted model uses.
    """

    possible: bool
    reason: str
    n_clips: int
    n_folds: int
    base_uar: float | None
    adapted_uar: float | None
    uar_by_base_weight: dict[str, float]
    base_weight: float
    temperature: float

    def summary(self) -> str:
        """One or two lines for people."""
        if not self.possible:
            return f"no estimate: {self.reason}; the adapted model is mixed half and half with its base"
        change = self.adapted_uar - self.base_uar  # type: ignore[operator]
        verdict = "the clips help" if change > 0 else "the clips do not help on these folds: the adapted model stays the base"
        if change > 0 and self.base_weight > 0:
            verdict += f" (the base keeps a weight of {self.base_weight:g})"
        return (
            f"estimate on your {self.n_clips} clips ({self.reason}): UAR {self.base_uar:.3f} with the base model, "
            f"{self.adapted_uar:.3f} adapted; {verdict}"
        )


def _folds(labels: np.ndarray, speakers: np.ndarray, seed: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """Folds over the user's clips (grouped by speaker when there are several known speakers)."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    smallest = min(Counter(labels.tolist()).values())
    known = [speaker for speaker in np.unique(speakers) if speaker not in ("", "unknown")]
    if len(known) >= 2:
        n_folds = min(MAX_FOLDS, len(known), smallest)  # no class in fewer clips than folds
        splitter = StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed)
        return list(splitter.split(labels, labels, groups=speakers)), f"{n_folds} folds grouped by speaker, {len(known)} speakers"
    n_folds = min(MAX_FOLDS, smallest)
    splitter = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    return list(splitter.split(labels, labels)), f"{n_folds} folds of clips (speakers unknown)"


def _uar(truth: np.ndarray, predicted: np.ndarray) -> float:
    from sklearn.metrics import recall_score

    return float(recall_score(truth, predicted, labels=np.unique(truth), average="macro", zero_division=0))


def estimate(
    base: Any, base_features: np.ndarray, base_labels: np.ndarray, features: np.ndarray, labels: np.ndarray, speakers: np.ndarray, *, seed: int = 0
) -> Estimate:
    """Cross-validate the recipe on the user's clips (see :class:`Estimate`): choose the
    temperature and the base's weight, and score the base and the adapted model out of fold.

    Parameters
    ----------
    base : classifier
        The base model's fitted pipeline.
    base_features, base_labels : np.ndarray
        The base's training table.
    features, labels, speakers : np.ndarray
        The user's clips (``speakers`` ``"unknown"`` where not known).
    """
    from scipy.special import log_softmax

    from .calibration import fit_temperature

    counts = Counter(labels.tolist())
    scarce = sorted(label for label, count in counts.items() if count < 2)
    if scarce:
        reason = ", ".join(f"{label!r} has {counts[label]} clip" for label in scarce)
        return Estimate(False, f"{reason}; cross-validation needs at least 2 clips of each class", len(labels), 0,
                        None, None, {}, UNESTIMATED_BASE_WEIGHT, 1.0)
    folds, how = _folds(labels, speakers, seed)
    template = AdaptedClassifier(base, seed=seed)
    margins = np.empty((len(labels), 0))
    for fold, (train, held_out) in enumerate(folds):
        model = _fit(template, base_features, base_labels, features[train], labels[train])
        if fold == 0:
            classes = model.classes_
            margins, base_probabilities = np.empty((len(labels), len(classes))), np.empty((len(labels), len(classes)))
        margins[held_out] = model.margins(features[held_out])
        base_probabilities[held_out] = model.base_probabilities(features[held_out])
    target = np.searchsorted(classes, labels)
    temperature = fit_temperature(log_softmax(margins, axis=1), target)
    adapted = np.exp(log_softmax(margins / temperature, axis=1))
    by_weight = {weight: _uar(labels, classes[np.argmax((1 - weight) * adapted + weight * base_probabilities, axis=1)]) for weight in BASE_WEIGHTS}
    best = max(by_weight.values())
    chosen = max(weight for weight, score in by_weight.items() if score >= best - 1e-12)  # ties: towards the base
    return Estimate(True, how, len(labels), len(folds), by_weight[1.0], by_weight[chosen], {f"{w:g}": s for w, s in by_weight.items()},
                    chosen, temperature)


def _fit(template: AdaptedClassifier, base_features: np.ndarray, base_labels: np.ndarray, features: np.ndarray, labels: np.ndarray) -> AdaptedClassifier:
    """A new classifier with ``template``'s settings, fitted on the base's rows and these clips."""
    model = AdaptedClassifier(template.base, base_weight=template.base_weight, temperature=template.temperature, seed=template.seed)
    user = np.r_[np.zeros(len(base_labels), dtype=bool), np.ones(len(labels), dtype=bool)]
    return model.fit(np.vstack([base_features, features]), np.r_[base_labels, labels], user)


def adapt_features(
    base: Model,
    base_table: TrainingTable,
    features: np.ndarray,
    labels: Sequence[str],
    speakers: Sequence[str] | None = None,
    *,
    clips: Sequence[str] | None = None,
    name: str = "adapted",
    seed: int = 0,
) -> Model:
    """The adapted model from the user's feature vectors (see the module docstring).

    Parameters
    ----------
    base : Model
        A model that classifies one clip at a time.
    base_table : TrainingTable
        Its training vectors.
    features : np.ndarray [shape=(n_clips, n_features)]
        The user's clips, in ``base.feature_names`` order.
    labels : sequence of str
        Their classes: the base's, or new ones.
    speakers : sequence of str, optional
        Their speakers (``"unknown"`` where not known).
    clips : sequence of str, optional
        Their names, for the adapted model's training table.
    name : str
        The model's name on its card.

    Returns
    -------
    Model
        Its card's ``adaptation`` entry holds the settings and the :class:`Estimate`.

    Raises
    ------
    SERError
        No clip, or clips of one class only.
    """
    from .models import Model, library_versions
    from .reference import explanation_reference
    from .training_table import TrainingTable

    values = np.asarray(features, dtype=np.float64)
    label_array = np.asarray(labels, dtype=str)
    speaker_array = np.asarray(speakers if speakers is not None else ["unknown"] * len(label_array), dtype=str)
    if len(label_array) == 0:
        raise SERError("no usable clip to adapt to")
    if len(set(label_array)) < 2:
        raise SERError(f"all usable clips are {str(label_array[0])!r}: adapting needs clips of at least two classes")
    base_values, base_labels = base_table.features.astype(np.float64), base_table.labels
    found = estimate(base.pipeline, base_values, base_labels, values, label_array, speaker_array, seed=seed)
    classifier = _fit(
        AdaptedClassifier(base.pipeline, base_weight=found.base_weight, temperature=found.temperature, seed=seed),
        base_values, base_labels, values, label_array,
    )
    all_values, all_labels = np.vstack([base_values, values]), np.r_[base_labels, label_array]
    user_clips = Counter(label_array.tolist())
    card = {
        "name": name,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "classifier": "adapted",
        "pipeline": [f"adapted: {type(classifier).__name__} (RBF SVM on the base's and the user's clips, mixed with the base's pipeline)"],
        "seed": seed,
        "training": {
            "n_clips": int(len(all_labels)),
            "class_counts": dict(sorted(Counter(all_labels.tolist()).items())),
            "augmentation": "none",
            "n_augmented_copies": 0,
            "corpora": {**dict(Counter(base_table.corpora.tolist())), USER_CORPUS: int(len(label_array))},
            "n_speakers": int(len(set(base_table.speakers.tolist()) | set(speaker_array.tolist()))),
        },
        "adaptation": {
            "base": {key: base.card.get(key) for key in ("name", "classes")} | {"sha256": base.card.get("artifact", {}).get("sha256")},
            "user_clips": dict(sorted(user_clips.items())),
            "n_user_clips": int(len(label_array)),
            "n_user_speakers": int(len(set(speaker_array.tolist()) - {"unknown", ""})),
            "new_classes": sorted(set(label_array.tolist()) - set(map(str, base.classes))),
            "settings": {"svm_c": SVM_C, "pseudo_clips": PSEUDO_CLIPS, "user_clip_weight": max(1.0, len(base_labels) / len(label_array)),
                         "base_weight": found.base_weight, "temperature": found.temperature},
            "estimate": asdict(found),
        },
        "evaluation": {},
        "library_versions": library_versions(),
    }
    table = TrainingTable.of(
        all_values, all_labels, np.r_[base_table.speakers, speaker_array], np.r_[base_table.corpora, [USER_CORPUS] * len(label_array)],
        np.r_[base_table.clips, np.asarray(clips if clips is not None else [f"{USER_CORPUS}/{k}" for k in range(len(label_array))], dtype=str)],
    )
    return Model(
        pipeline=classifier, feature_config=base.feature_config, card=card, reference=explanation_reference(all_values, all_labels, seed=seed),
        training_table=table,
    )


def adapt(
    table: pd.DataFrame,
    base: str | PathLike[str] | ModelFile | None = None,
    *,
    cache_dir: str | PathLike[str] | None = None,
    n_jobs: int | None = 1,
    progress: bool = False,
    name: str = "adapted",
    seed: int = 0,
) -> Model:
    """A model adapted to the user's labelled clips: one library call behind ``ser adapt``.

    Parameters
    ----------
    table : pandas.DataFrame
        The user's clips: ``path``, ``label`` and optionally ``speaker`` (as
        :func:`ser_classic.corpus.read_corpora` reads folders and manifests).
    base : str, PathLike or ModelFile, optional
        The base model: a file, a bundled model's name, or the default model (``None``). Its
        training table (``NAME.training.npz``) must lie beside it.
    cache_dir, n_jobs, progress
        As for :class:`~ser_classic.features.FeatureExtractor`.
    name : str
        The model's name on its card.

    Returns
    -------
    Model
        Not yet saved; the estimate is in ``model.card["adaptation"]["estimate"]``.

    Raises
    ------
    SERError
        A base that needs many clips at once (per-speaker or per-batch normalization) or has no
        training table; no usable clip; usable clips of one class only. Unreadable, silent or
        speechless files are left out with a warning each, as are labels the base lacks with
        fewer than :data:`MIN_NEW_CLASS_CLIPS` clips.
    """
    from .corpus import canonical_label
    from .features.transformer import FeatureExtractor
    from .model_file import ModelFile, resolve_model
    from .models import load_model
    from .prediction import speech_check
    from .training_table import TrainingTable, training_table_path

    model_file = base if isinstance(base, ModelFile) else ModelFile.open(resolve_model(base))
    base_model = load_model(model_file)
    if base_model.speaker_norm or base_model.batch_norm:
        raise SERError("the base model standardizes features over many clips at once: adapt a model that classifies one clip at a time", model_file.path)
    entry = model_file.card.get("training_table")
    if not isinstance(entry, dict):
        raise SERError("the base model holds no training table (trained before ser-classic stored them): train it again", model_file.path)
    base_table = TrainingTable.load(training_table_path(model_file.path), entry)
    labels = [canonical_label(label) for label in table["label"]]
    counts = Counter(labels)
    known = set(map(str, base_model.classes))
    kept_labels = {label for label, count in counts.items() if label in known or count >= MIN_NEW_CLASS_CLIPS}
    for label in sorted(set(counts) - kept_labels):
        _log.warning("label %r: %d clip(s), the base model lacks it and a new class needs at least %d: left out", label, counts[label], MIN_NEW_CLASS_CLIPS)
    for label in sorted(kept_labels - known):
        _log.warning("label %r: the base model lacks it; its %d clips make a new class", label, counts[label])
    speakers = table["speaker"].astype(str).tolist() if "speaker" in table.columns else ["unknown"] * len(table)
    rows = [(str(path), label, speaker) for path, label, speaker in zip(table["path"], labels, speakers) if label in kept_labels]
    extractor = FeatureExtractor(base_model.feature_config, cache_dir=cache_dir, n_jobs=n_jobs)
    usable = []
    for (path, label, speaker), (_, values) in zip(rows, extractor.iter_files([row[0] for row in rows], progress=progress)):
        checked = speech_check(values, base_model.feature_names, path)
        if isinstance(checked, SERError):
            _log.warning("left out: %s", checked)
        else:
            usable.append((path, label, speaker, checked))
    features = np.array([row[3] for row in usable]) if usable else np.zeros((0, len(base_model.feature_names)))
    adapted = adapt_features(
        base_model, base_table, features, [row[1] for row in usable],
        [row[2] for row in usable], clips=[f"{USER_CORPUS}/{row[1]}/{Path(row[0]).name}" for row in usable], name=name, seed=seed,
    )
    adapted.card["adaptation"]["base"]["file"] = Path(model_file.path).name
    return adapted
