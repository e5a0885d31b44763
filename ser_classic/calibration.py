"""Temperature scaling fitted on folds grouped by speaker, so that ``confidence`` holds for new speakers.

A classifier is most confident on the speakers it was trained on. Calibrating it on folds that
share speakers (or, with augmented training copies, copies of the same clip) teaches the
calibration that confidence, and the model is then overconfident on anyone else.
:class:`TemperatureScaled` fits one temperature on the out-of-fold scores of folds grouped by
``groups`` (the training speakers), then refits the classifier on all the data. Dividing every
score by one temperature never changes the predicted class.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone

__all__ = ["N_FOLDS", "TemperatureScaled", "calibration_groups", "fit_temperature", "pairwise_margins"]

#: Inner folds the temperature is fitted on.
N_FOLDS = 3

#: Floor of a probability before its logarithm: a class the inner model never saw scores this.
_MIN_PROBABILITY = 1e-12


def _log_scores(estimator: Any, X: Any, classes: np.ndarray) -> np.ndarray:
    """Log-probabilities of ``classes`` (columns), up to a per-row constant, from ``predict_proba``
    or, for classifiers without it (``SVC``), ``decision_function``; a class ``estimator`` never
    saw gets the floor."""
    from scipy.special import log_softmax

    if hasattr(estimator, "predict_proba"):
        scores = np.log(np.clip(estimator.predict_proba(X), _MIN_PROBABILITY, 1.0))
    else:
        scores = np.asarray(estimator.decision_function(X), dtype=np.float64)
        if getattr(estimator, "decision_function_shape", None) == "ovo" and len(estimator.classes_) > 2:
            scores = pairwise_margins(scores, len(estimator.classes_))
        elif scores.ndim == 1:  # two classes: one signed score
            scores = np.column_stack([-scores / 2, scores / 2])
        scores = log_softmax(scores, axis=1)
    full = np.full((scores.shape[0], len(classes)), np.log(_MIN_PROBABILITY))
    full[:, np.searchsorted(classes, estimator.classes_)] = scores
    return full


def pairwise_margins(decisions: np.ndarray, n_classes: int) -> np.ndarray:
    """Each class's summed margin over its one-vs-one classifiers: ``SVC(decision_function_shape="ovo")``
    scores, columns for the pairs ``(0, 1), (0, 2), ..., (n-2, n-1)``, positive for the first
    class of the pair, turned into ``(n_samples, n_classes)``.

    The sum is continuous in the input. The ``"ovr"`` shape counts each class's pairwise wins
    first: a feature that moves a hair can flip one pairwise vote and move a class's score by a
    whole vote, so a probability computed from it jumps (seen: 0.82 to 0.17 for a clip saved
    1 dB quieter).
    """
    margins = np.zeros((decisions.shape[0], n_classes))
    first, second = np.triu_indices(n_classes, k=1)
    np.add.at(margins.T, first, decisions.T)
    np.add.at(margins.T, second, -decisions.T)
    return margins


def calibration_groups(speakers: np.ndarray | None, sources: np.ndarray) -> np.ndarray:
    """Groups for the calibration folds of training rows: the speaker of each row's source clip
    when there are at least :data:`N_FOLDS` speakers, else the source clip itself, so that a
    clip and its augmented copies always share a fold.

    Parameters
    ----------
    speakers : np.ndarray [shape=(n_clips,)], optional
        Speaker of each original training clip; ``None`` when unknown.
    sources : np.ndarray [shape=(n_rows,)]
        Position among the original clips of the clip each training row is (a copy of).
    """
    if speakers is None or len(np.unique(speakers)) < N_FOLDS:
        return np.asarray(sources)
    return np.asarray(speakers)[sources]


def fit_temperature(log_scores: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The temperature ``T`` that minimizes the (weighted) log loss of ``softmax(log_scores / T)``.

    Parameters
    ----------
    log_scores : np.ndarray [shape=(n_clips, n_classes)]
    target : np.ndarray [shape=(n_clips,)]
        Column index of each clip's true class.
    weights : np.ndarray [shape=(n_clips,)], optional
        Each row's weight in the loss (equal by default).
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    rows = np.arange(len(target))

    def log_loss(log_temperature: float) -> float:
        losses = -log_softmax(log_scores / np.exp(log_temperature), axis=1)[rows, target]
        return float(np.average(losses, weights=weights))

    return float(np.exp(minimize_scalar(log_loss, bounds=(-4.0, 4.0), method="bounded").x))


class TemperatureScaled(ClassifierMixin, BaseEstimator):
    """``estimator`` refitted on all the data, its scores divided by a temperature fitted on folds.

    Parameters
    ----------
    estimator : classifier
        With ``predict_proba`` or ``decision_function``.
    n_splits : int
        Inner folds for the out-of-fold scores (``StratifiedGroupKFold``).
    seed : int
        Shuffles the inner folds.

    Attributes
    ----------
    estimator_ : classifier
        Fitted on all the data.
    temperature_ : float
        Above 1 softens the probabilities, below 1 sharpens them.
    classes_ : np.ndarray
    """

    def __init__(self, estimator: BaseEstimator, *, n_splits: int = N_FOLDS, seed: int = 0) -> None:
        self.estimator = estimator
        self.n_splits = n_splits
        self.seed = seed

    def fit(self, X: Any, y: Any, groups: Any = None, sample_weight: Any = None) -> TemperatureScaled:
        """Fit; ``groups`` (e.g. the speaker of each row, :func:`calibration_groups`) keeps a
        group within one inner fold. Without groups, or with fewer groups than folds, each row
        is its own group. ``sample_weight`` weighs the rows in every fit and in the temperature's."""
        from sklearn.model_selection import StratifiedGroupKFold
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import _check_sample_weight, validate_data

        X, labels = validate_data(self, X, y)
        check_classification_targets(labels)
        self.classes_ = np.unique(labels)
        row_groups = np.arange(len(labels))
        if groups is not None and len(np.unique(groups)) >= self.n_splits:
            row_groups = np.asarray(groups)
        out_of_fold = np.empty((len(labels), len(self.classes_)))
        seen = np.zeros(len(labels), dtype=bool)
        folds = StratifiedGroupKFold(self.n_splits, shuffle=True, random_state=self.seed)
        weights = None if sample_weight is None else _check_sample_weight(sample_weight, X, dtype=np.float64)

        def fitted(rows: np.ndarray) -> Any:
            estimator = clone(self.estimator)
            if weights is None:
                return estimator.fit(X[rows], labels[rows])
            return estimator.fit(X[rows], labels[rows], sample_weight=weights[rows])

        for train_rows, held_out in folds.split(X, labels, row_groups):
            inner = fitted(train_rows)
            out_of_fold[held_out] = _log_scores(inner, X[held_out], self.classes_)
            seen[held_out] = np.isin(labels[held_out], inner.classes_)
        # A row whose class its inner model never saw (a class from one speaker only) says
        # nothing about confidence, and its floor score would push the temperature to its bound.
        target = np.searchsorted(self.classes_, labels)
        seen_weights = None if weights is None else weights[seen]
        self.temperature_ = fit_temperature(out_of_fold[seen], target[seen], seen_weights) if seen.any() else 1.0
        self.estimator_ = fitted(np.arange(len(labels)))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        from scipy.special import softmax
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return softmax(_log_scores(self.estimator_, X, self.classes_) / self.temperature_, axis=1)

    def predict(self, X: Any) -> np.ndarray:
        probabilities = self.predict_proba(X)
        return self.classes_[np.argmax(probabilities, axis=1)]
