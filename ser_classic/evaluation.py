"""Cross-validation protocols, metrics and reports.

``speaker``: folds grouped by speaker (no speaker in both train and test); the honest,
headline protocol. ``corpus``: leave one corpus out (train on the others, test on it), which
asks what a model does on recordings unlike its training data; its headline is the unweighted
average recall (UAR). ``random``: stratified folds that put every speaker in train and test
alike; speaker-dependent, reported only to compare with published claims.
Everything fitted (scaler included) is fitted inside the training folds only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from .errors import SERError

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

__all__ = ["PROTOCOLS", "Evaluation", "evaluate", "expected_calibration_error", "write_report"]

#: Protocol name -> one-line description used in reports.
PROTOCOLS = {
    "speaker": "speaker-independent: folds grouped by speaker, no speaker in both train and test",
    "corpus": "leave one corpus out: train on the other corpora, test on the held-out one",
    "random": "random stratified folds: speaker-dependent, for comparison with published claims only",
}


@dataclass
class Evaluation:
    """Out-of-fold predictions of one protocol and the scores derived from them."""

    protocol: str
    classifier: str
    classes: list[str]
    n_splits: int
    seed: int
    y_true: np.ndarray
    y_pred: np.ndarray
    fold_of: np.ndarray
    fold_speakers: list[list[str]] = field(default_factory=list)
    probabilities: np.ndarray | None = None
    speaker_norm: bool = False
    augmentation: str = ""
    batch_norm: bool = False
    fold_corpora: list[str] = field(default_factory=list)
    estimators: list[Any] | None = None

    def scores_by(self, groups: Sequence[str]) -> dict[str, dict[str, float]]:
        """Scores of the out-of-fold predictions of each group's clips (e.g. each corpus's)."""
        group_array = np.asarray(groups, dtype=str)
        return {
            str(group): _scores(self.y_true[group_array == group], self.y_pred[group_array == group], self.classes)
            for group in sorted(set(group_array))
        }

    def fold_scores(self) -> list[dict[str, float]]:
        """Accuracy, unweighted average recall, weighted F1, macro F1, worst class recall and
        (with probabilities) expected calibration error of each fold."""
        folds = []
        for k in range(self.n_splits):
            in_fold = self.fold_of == k
            scores = _scores(self.y_true[in_fold], self.y_pred[in_fold], self.classes)
            if self.probabilities is not None:
                scores["ece"] = expected_calibration_error(self.y_true[in_fold], self.probabilities[in_fold], self.classes)
            folds.append(scores)
        return folds

    def summary(self) -> dict[str, Any]:
        """Mean and standard deviation over folds, per-class scores and confusion over all folds."""
        from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

        folds = self.fold_scores()
        precision, recall, f1, support = precision_recall_fscore_support(
            self.y_true, self.y_pred, labels=self.classes, zero_division=0
        )
        return {
            "protocol": self.protocol,
            "protocol_description": PROTOCOLS[self.protocol],
            "classifier": self.classifier,
            "classes": self.classes,
            "n_clips": int(len(self.y_true)),
            "n_splits": self.n_splits,
            "seed": self.seed,
            "speaker_norm": self.speaker_norm,
            "batch_norm": self.batch_norm,
            "augmentation": self.augmentation,
            "mean": {k: float(np.mean([f[k] for f in folds])) for k in folds[0]},
            "std": {k: float(np.std([f[k] for f in folds])) for k in folds[0]},
            "folds": folds,
            "fold_speakers": self.fold_speakers,
            "fold_corpora": self.fold_corpora,
            "per_class": {
                label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                for label, p, r, f, s in zip(self.classes, precision, recall, f1, support)
            },
            "confusion_matrix": confusion_matrix(self.y_true, self.y_pred, labels=self.classes).tolist(),
        }


def _scores(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    present = [c for c in classes if c in set(y_true)]
    recalls = recall_score(y_true, y_pred, labels=present, average=None, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "uar": float(np.mean(recalls)),
        "f1_weighted": float(f1_score(y_true, y_pred, labels=present, average="weighted", zero_division=0)),
        "f1_macro": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "recall_worst": float(np.min(recalls)),
    }


def expected_calibration_error(
    y_true: Sequence[str], probabilities: np.ndarray, classes: Sequence[str], *, n_bins: int = 10
) -> float:
    """Top-label expected calibration error: the clip-weighted mean, over ``n_bins`` equal-width
    confidence bins, of ``|accuracy - mean confidence|`` in the bin (0 is perfectly calibrated).

    Parameters
    ----------
    y_true : sequence of str [shape=(n_clips,)]
    probabilities : np.ndarray [shape=(n_clips, n_classes)]
        Columns ordered as ``classes``.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidence = probabilities.max(axis=1)
    correct = np.asarray(classes)[probabilities.argmax(axis=1)] == np.asarray(y_true, dtype=str)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    gaps = [abs(correct[bins == b].mean() - confidence[bins == b].mean()) * np.sum(bins == b) for b in np.unique(bins)]
    return float(np.sum(gaps) / len(confidence))


def _splits(
    protocol: str, labels: np.ndarray, speakers: np.ndarray, corpora: np.ndarray, n_splits: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut, StratifiedKFold

    if protocol == "corpus":
        if len(set(corpora)) < 2:
            raise SERError("protocol 'corpus' needs at least 2 corpora (give several corpus paths)")
        return list(LeaveOneGroupOut().split(labels, labels, groups=corpora))
    if protocol == "speaker":
        n_speakers = len(set(speakers))
        if n_speakers < n_splits:
            raise SERError(f"protocol 'speaker' needs at least {n_splits} speakers, the corpus has {n_speakers}")
        splitter = GroupKFold(n_splits=n_splits)
        return list(splitter.split(labels, labels, groups=speakers))
    if protocol == "random":
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        return list(splitter.split(labels, labels))
    raise SERError(f"unknown protocol {protocol!r}; choose from {sorted(PROTOCOLS)}")


def evaluate(
    features: pd.DataFrame,
    labels: Sequence[str],
    speakers: Sequence[str],
    *,
    classifier: str | BaseEstimator = "svm",
    protocol: str = "speaker",
    n_splits: int = 6,
    seed: int = 0,
    progress: bool = False,
    speaker_norm: bool = False,
    batch_norm: bool = False,
    corpora: Sequence[str] | None = None,
    augmented: Sequence[pd.DataFrame] = (),
    augmentation: str = "",
    n_jobs: int | None = 1,
    return_estimators: bool = False,
) -> Evaluation:
    """Cross-validate a pipeline under a protocol.

    Parameters
    ----------
    features : DataFrame [shape=(n_clips, n_features)]
    labels, speakers : sequence of str [shape=(n_clips,)]
    classifier : str or estimator
        A name in :data:`ser_classic.models.CLASSIFIERS`, or any scikit-learn classifier
        (cloned for each fold; it gets the features unscaled).
    protocol : {"speaker", "corpus", "random"}
    n_splits : int
        Folds; 6 on RAVDESS's 24 actors gives 4 held-out actors per fold. Ignored by ``corpus``,
        which has one fold per corpus.
    speaker_norm : bool
        Standardize features per speaker (:mod:`ser_classic.normalization`), separately in each
        fold's training part and test part: a test clip is normalized with statistics of its
        speaker's test clips only, as at prediction time.
    batch_norm : bool
        Standardize features per corpus in the same way (each corpus, or a fold's part of it, by
        its own statistics): what a folder of one user's recordings allows without speaker labels.
    corpora : sequence of str [shape=(n_clips,)], optional
        Corpus of each clip; needed by the ``corpus`` protocol and ``batch_norm``.
    augmented : sequence of DataFrame [shape=(n_clips, n_features)]
        Augmented copies aligned row by row with ``features``
        (:func:`ser_classic.features.augmented.augmented_features`). A training fold gets the
        copies of its own clips (:func:`~ser_classic.features.augmented.with_copies`); test folds
        never see a copy.
    augmentation : str
        What made ``augmented`` (e.g. ``"speed, 2 copies"``), for the reports.
    n_jobs : int, optional
        Folds fitted at once, each in a worker process (``-1``: all cores). Every fold runs on
        one BLAS thread whatever ``n_jobs``, so the scores do not depend on it. With
        ``progress``, a bar on stderr counts finished folds and estimates the time left.
    return_estimators : bool
        Keep each fold's fitted pipeline in :attr:`Evaluation.estimators`, in fold order (as
        scikit-learn's ``cross_validate(return_estimator=True)``), e.g. to read the
        hyperparameters a search chose in each fold.
    """
    from .parallel import resolve_jobs

    if speaker_norm and batch_norm:
        raise SERError("choose one normalization: per speaker or per batch")
    label_array = np.asarray(labels, dtype=str)
    speaker_array = np.asarray(speakers, dtype=str)
    corpus_array = np.asarray(corpora if corpora is not None else ["corpus"] * len(label_array), dtype=str)
    data = _FoldData(
        features, label_array, speaker_array, corpus_array, list(augmented), classifier, protocol, seed,
        speaker_array if speaker_norm else corpus_array if batch_norm else None, speaker_norm,
    )
    name = classifier if isinstance(classifier, str) else type(classifier).__name__
    classes = sorted(set(label_array))
    splits = _splits(protocol, label_array, speaker_array, corpus_array, n_splits, seed)
    n_splits = len(splits)
    workers = min(resolve_jobs(n_jobs), n_splits)
    if workers > 1:
        from joblib import Parallel, delayed

        pool = Parallel(n_jobs=workers, return_as="generator_unordered")
        results = pool(delayed(_fit_fold)(data, fold, train, test, n_splits) for fold, (train, test) in enumerate(splits))
    else:
        results = (_fit_fold(data, fold, train, test, n_splits) for fold, (train, test) in enumerate(splits))
    if progress:
        from tqdm.auto import tqdm

        results = tqdm(results, total=n_splits, desc=f"{protocol} folds", unit="fold", leave=False)
    probabilities = np.zeros((len(label_array), len(classes)))
    fold_of = np.empty(len(label_array), dtype=int)
    estimators: list[Any] = [None] * n_splits
    for fold, fitted, fold_probabilities in results:
        fitted_classes = fitted.classes_
        estimators[fold] = fitted
        test_index = splits[fold][1]
        columns = [classes.index(str(label)) for label in fitted_classes]
        probabilities[np.ix_(test_index, columns)] = fold_probabilities / fold_probabilities.sum(axis=1, keepdims=True)
        fold_of[test_index] = fold
    y_pred = np.asarray(classes)[probabilities.argmax(axis=1)]
    return Evaluation(
        protocol=protocol,
        classifier=name,
        classes=classes,
        n_splits=n_splits,
        seed=seed,
        y_true=label_array,
        y_pred=y_pred.astype(str),
        fold_of=fold_of,
        fold_speakers=[sorted(set(speaker_array[test])) for _, test in splits] if protocol == "speaker" else [],
        probabilities=probabilities,
        speaker_norm=speaker_norm,
        augmentation=augmentation,
        batch_norm=batch_norm,
        fold_corpora=[", ".join(sorted(set(corpus_array[test]))) for _, test in splits],
        estimators=estimators if return_estimators else None,
    )


class _FoldData(NamedTuple):
    """What every fold of one :func:`evaluate` call is fitted from (sent once to each worker)."""

    features: pd.DataFrame
    labels: np.ndarray
    speakers: np.ndarray
    corpora: np.ndarray
    augmented: list[pd.DataFrame]
    classifier: Any
    protocol: str
    seed: int
    norm_groups: np.ndarray | None
    speaker_norm: bool


def _fit_fold(
    data: _FoldData, fold: int, train_index: np.ndarray, test_index: np.ndarray, n_splits: int
) -> tuple[int, np.ndarray, np.ndarray]:
    """Fit one fold's training part and return ``(fold, fitted pipeline, test probabilities)``."""
    from sklearn.base import clone
    from threadpoolctl import threadpool_limits

    from .calibration import calibration_groups
    from .features.augmented import with_copies
    from .models import build_pipeline, fit_pipeline
    from .normalization import standardize_per_speaker

    rows = with_copies(
        data.features.iloc[train_index],
        data.labels[train_index],
        data.speakers[train_index],
        [copies.iloc[train_index] for copies in data.augmented],
    )
    train_part, test_part = rows.features, data.features.iloc[test_index]
    if data.norm_groups is not None:
        train_groups = rows.speakers if data.speaker_norm else data.norm_groups[train_index][rows.sources]
        train_part = standardize_per_speaker(train_part, train_groups)
        test_part = standardize_per_speaker(test_part, data.norm_groups[test_index])
    # Calibration folds inside the training part are grouped as the protocol's folds are.
    groups = calibration_groups(data.speakers[train_index] if data.protocol != "random" else None, rows.sources)
    classifier = data.classifier
    pipeline = build_pipeline(classifier, seed=data.seed) if isinstance(classifier, str) else clone(classifier)
    name = classifier if isinstance(classifier, str) else type(classifier).__name__
    with threadpool_limits(limits=1):  # the same rounding in a worker and in this process
        try:
            fit_pipeline(pipeline, train_part, rows.labels, groups, rows.weights if data.augmented else None)
        except ValueError as error:  # e.g. a class too rare in this fold's training part
            raise SERError(f"fold {fold + 1} of {n_splits}: cannot fit {name!r} ({error})") from None
        return fold, pipeline, _probabilities(pipeline, test_part)


def _probabilities(fitted: Any, features: pd.DataFrame) -> np.ndarray:
    """``predict_proba``, or one-hot predictions for a classifier without probabilities."""
    if hasattr(fitted, "predict_proba"):
        return fitted.predict_proba(features)
    predicted = np.asarray(fitted.predict(features))
    return (predicted[:, None] == np.asarray(fitted.classes_)[None, :]).astype(np.float64)


def markdown_report(summary: dict[str, Any], title: str) -> str:
    """A Markdown page: protocol, fold-averaged scores, per-class table, confusion matrix."""
    lines = [f"# {title}", "", f"Protocol: **{summary['protocol']}** ({summary['protocol_description']}).", ""]
    lines += [
        f"Classifier `{summary['classifier']}`, {summary['n_clips']} clips, {len(summary['classes'])} classes "
        f"({', '.join(summary['classes'])}), {summary['n_splits']} folds, seed {summary['seed']}"
        + (", features standardized per speaker (transductive)" if summary.get("speaker_norm") else "")
        + (f", training folds augmented ({summary['augmentation']})." if summary.get("augmentation") else "."),
        "",
        "| metric | mean over folds | std |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {summary['mean'][k]:.3f} | {summary['std'][k]:.3f} |" for k in summary["mean"]]
    if summary["protocol"] == "corpus":
        lines += ["", "| held-out corpus | UAR | accuracy |", "|---|---|---|"]
        lines += [
            f"| {corpus} | {scores['uar']:.3f} | {scores['accuracy']:.3f} |"
            for corpus, scores in zip(summary["fold_corpora"], summary["folds"])
        ]
    lines += ["", "| class | precision | recall | F1 | clips |", "|---|---|---|---|---|"]
    lines += [
        f"| {label} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['support']} |"
        for label, s in summary["per_class"].items()
    ]
    header = "| true \\ predicted | " + " | ".join(summary["classes"]) + " |"
    lines += ["", "Confusion matrix (all folds pooled):", "", header, "|" + "---|" * (len(summary["classes"]) + 1)]
    lines += [
        f"| {label} | " + " | ".join(str(v) for v in row) + " |"
        for label, row in zip(summary["classes"], summary["confusion_matrix"])
    ]
    return "\n".join(lines) + "\n"


def plot_confusion(summary: dict[str, Any], path: str | PathLike[str], title: str) -> None:
    """Row-normalized confusion matrix as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(summary["confusion_matrix"], dtype=float)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    classes = summary["classes"]
    figure, axes = plt.subplots(figsize=(1.0 + 0.8 * len(classes), 0.8 + 0.7 * len(classes)), dpi=110)
    axes.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for (row, column), value in np.ndenumerate(rates):
        axes.text(column, row, f"{value:.2f}", ha="center", va="center", color="white" if value > 0.5 else "black", fontsize=8)
    axes.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def write_report(evaluation: Evaluation, directory: str | PathLike[str], *, corpus: str = "") -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``confusion.png`` into ``directory``."""
    from .atomic import atomic_output

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    summary = {**evaluation.summary(), "corpus": corpus}
    title = f"ser-classic evaluation: {evaluation.classifier}, protocol {evaluation.protocol}"
    paths = {"json": folder / "report.json", "markdown": folder / "report.md", "png": folder / "confusion.png"}
    with atomic_output(paths["json"], "w") as stream:
        json.dump(summary, stream, indent=2)
    with atomic_output(paths["markdown"], "w") as stream:
        stream.write(markdown_report(summary, title) + (f"\nCorpus: `{corpus}`.\n" if corpus else ""))
    plot_confusion(summary, paths["png"], f"{evaluation.classifier}, {evaluation.protocol} protocol")
    return paths
