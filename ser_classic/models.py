"""Named classifier pipelines and the :class:`Model` artifact (joblib file + JSON model card).

The artifact holds the fitted pipeline, its classes, the feature names and the extractor
settings; the card beside it (``NAME.card.json``) describes it for people and holds the
SHA-256 of the joblib file, checked before the file is unpickled.
"""

from __future__ import annotations

import datetime as _dt
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder

from .atomic import atomic_output
from .errors import ModelError
from .features.cache import file_sha256
from .features.config import FeatureConfig, table_config
from .features.extractor import feature_names
from .model_file import ARTIFACT_FORMAT, DEFAULT_MODEL_PATH, ModelFile, card_path, read_card, resolve_model
from .reference import ExplanationReference, explanation_reference
from .training_table import TrainingTable, training_table_path

__all__ = [
    "CLASSIFIERS",
    "ENSEMBLE_MEMBERS",
    "DEFAULT_MODEL_PATH",
    "resolve_model",
    "LabelEncodedClassifier",
    "Model",
    "build_pipeline",
    "card_path",
    "fit_pipeline",
    "load_model",
    "read_card",
    "train",
]

#: Fewer clips of a class leave the calibration folds (:mod:`ser_classic.calibration`) without examples of it.
MIN_CLIPS_PER_CLASS = 5


class LabelEncodedClassifier(ClassifierMixin, BaseEstimator):
    """Fits ``estimator`` on integer codes of string labels and answers in the labels.

    Lets classifiers that need ``0..n-1`` targets (XGBoost) sit in a pipeline with the
    encoding stored inside it: no separate encoder file.
    """

    def __init__(self, estimator: BaseEstimator) -> None:
        self.estimator = estimator

    def fit(self, X: Any, y: Any, **fit_params: Any) -> LabelEncodedClassifier:
        self.encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.encoder_.classes_
        self.estimator_ = clone(self.estimator).fit(X, self.encoder_.transform(y), **fit_params)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.estimator_.predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def _svm(seed: int) -> BaseEstimator:
    from sklearn.svm import SVC

    from .calibration import TemperatureScaled

    # Temperature scaling of the SVC's scores never changes which class scores highest; the
    # scores are the pairwise margins summed per class (calibration.pairwise_margins), which do
    # not jump when a feature moves a hair as the "ovr" shape's vote counts do.
    svc = SVC(C=10.0, gamma="scale", class_weight="balanced", decision_function_shape="ovo", random_state=seed)
    return TemperatureScaled(svc, seed=seed)


def _mlp(seed: int) -> BaseEstimator:
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(
        hidden_layer_sizes=(256, 128),
        alpha=1e-2,
        learning_rate_init=1e-3,
        max_iter=400,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=20,
        random_state=seed,
    )


def _xgboost(seed: int) -> BaseEstimator:
    from xgboost import XGBClassifier

    booster = XGBClassifier(
        n_estimators=400,
        max_depth=4,
        learning_rate=0.05,
        subsample=0.8,
        colsample_bytree=0.5,
        tree_method="hist",
        n_jobs=1,
        random_state=seed,
    )
    return LabelEncodedClassifier(booster)


def _logistic(seed: int) -> BaseEstimator:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=0.1, max_iter=2000, class_weight="balanced", random_state=seed)


#: Members of the ``ensemble`` classifier, each as built by its own builder.
ENSEMBLE_MEMBERS = ("svm", "logreg", "mlp")


def _ensemble(seed: int) -> BaseEstimator:
    from sklearn.ensemble import VotingClassifier

    from .calibration import TemperatureScaled

    # Soft voting: the unweighted mean of the members' probabilities (no weights fitted on test
    # folds), then one temperature for the mean, fitted on folds grouped by speaker: the MLP
    # alone is overconfident. The SVM member keeps its own temperature, which it fits without
    # groups (VotingClassifier passes none), so copies of a clip can sit on both sides of its
    # folds; the outer temperature corrects the mean. XGBoost is left out for time: it adds
    # about 1 point speaker-independent but multiplies training time by ten.
    members = [(name, CLASSIFIERS[name](seed)) for name in ENSEMBLE_MEMBERS]
    return TemperatureScaled(VotingClassifier(members, voting="soft"), seed=seed)


#: Classifier name -> builder of the final step; every pipeline standardizes features first.
CLASSIFIERS = {"svm": _svm, "mlp": _mlp, "xgboost": _xgboost, "logreg": _logistic, "ensemble": _ensemble}


def build_pipeline(name: str, *, seed: int = 0) -> Pipeline:
    """Unfitted pipeline ``StandardScaler -> classifier`` for a name in :data:`CLASSIFIERS`."""
    from sklearn.preprocessing import StandardScaler

    if name not in CLASSIFIERS:
        raise ModelError(f"unknown classifier {name!r}; choose from {sorted(CLASSIFIERS)}")
    return Pipeline([("scale", StandardScaler()), ("classify", CLASSIFIERS[name](seed))])


def fit_pipeline(
    pipeline: BaseEstimator, features: Any, labels: np.ndarray, groups: np.ndarray, sample_weight: np.ndarray | None = None
) -> BaseEstimator:
    """Fit ``pipeline`` (any scikit-learn classifier); one whose ``fit`` takes ``groups`` (the
    speaker, or the source clip, of each row), or a Pipeline whose last step's does, gets them,
    e.g. for the calibration folds of a temperature-scaled classifier or an inner grouped search;
    likewise ``sample_weight`` (each row's share of its clip, with augmented copies)."""
    final = pipeline.steps[-1][1] if isinstance(pipeline, Pipeline) else pipeline
    prefix = f"{pipeline.steps[-1][0]}__" if isinstance(pipeline, Pipeline) else ""
    extra = {"groups": groups, "sample_weight": sample_weight}
    fit_params = {f"{prefix}{name}": value for name, value in extra.items() if value is not None and _takes(final, name)}
    return pipeline.fit(features, labels, **fit_params)


def _takes(estimator: Any, parameter: str) -> bool:
    """Whether ``estimator.fit`` takes ``parameter``."""
    import inspect

    return parameter in inspect.signature(estimator.fit).parameters


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose behaviour an artifact depends on."""
    from importlib.metadata import PackageNotFoundError, version

    # library -> the distributions that may provide it (xgboost comes as xgboost-cpu by default)
    distributions = {name: (name,) for name in ("ser-classic", "numpy", "scipy", "scikit-learn", "librosa", "soundfile", "av", "soxr")}
    distributions["xgboost"] = ("xgboost-cpu", "xgboost")
    found = {}
    for library, candidates in distributions.items():
        for candidate in candidates:
            try:
                found[library] = version(candidate)
                break
            except PackageNotFoundError:
                continue
    import platform

    found["python"] = platform.python_version()
    return found


@dataclass
class Model:
    """A trained classifier with everything needed to use it on new audio.

    Attributes
    ----------
    pipeline : sklearn Pipeline
        Fitted on feature tables whose columns are ``feature_names``.
    feature_config : FeatureConfig
        Extractor settings the features must be computed with.
    card : dict
        Model card (JSON-serializable): classes, training data, protocol and scores, versions.
    speaker_norm : bool
        Features are standardized per speaker before the pipeline
        (:mod:`ser_classic.normalization`): predictions then need each clip's speaker.
    batch_norm : bool
        Features are standardized per batch (each training corpus by its own clips; at
        prediction time the files of one run together): predictions then need many clips at once.
    reference : ExplanationReference or None
        Training-data statistics that explanations need (:mod:`ser_classic.explanation`);
        ``None`` in a model trained before explanations existed.
    training_table : TrainingTable or None
        The vectors it was trained on, as :func:`train` gives it; written beside the model file
        by :meth:`save`, not loaded by :func:`load_model` (see :mod:`ser_classic.training_table`).
    """

    pipeline: Pipeline
    feature_config: FeatureConfig
    card: dict[str, Any] = field(default_factory=dict)
    speaker_norm: bool = False
    batch_norm: bool = False
    reference: ExplanationReference | None = None
    training_table: TrainingTable | None = None

    @property
    def classes(self) -> list[str]:
        """Class labels, in the order of probability columns."""
        return [str(c) for c in self.pipeline.classes_]

    @property
    def feature_names(self) -> list[str]:
        return feature_names(self.feature_config)

    def predict_proba(self, features: pd.DataFrame, speakers: Sequence[str] | None = None) -> pd.DataFrame:
        """Class probabilities (rows sum to 1), columns ordered as :attr:`classes`.

        ``speakers`` (one per row) is required by a :attr:`speaker_norm` model, and by a
        :attr:`batch_norm` model (there the batch of each row: one value for rows classified
        together): each group's rows are then standardized with the statistics of those rows only.
        """
        table = features[self.feature_names]
        if self.speaker_norm or self.batch_norm:
            if speakers is None:
                group = "speaker" if self.speaker_norm else "batch"
                raise ModelError(f"this model standardizes features per {group}: the {group} of each clip is needed")
            from .normalization import standardize_per_speaker

            table = standardize_per_speaker(table, speakers)
        values = self.input_probabilities(table.to_numpy(dtype=np.float64))
        return pd.DataFrame(values, index=features.index, columns=self.classes)

    def input_probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """Class probabilities (rows sum to 1, columns as :attr:`classes`) of rows as the pipeline
        takes them: features in :attr:`feature_names` order, already standardized per speaker
        (or batch) for a model that needs it.

        Parameters
        ----------
        inputs : np.ndarray [shape=(n_rows, n_features)]
        """
        with warnings.catch_warnings():
            # The columns are in the training order; scikit-learn's own name check, repeated
            # by every step of the pipeline, costs more than classifying.
            warnings.filterwarnings("ignore", "X does not have valid feature names", UserWarning)
            values = self.pipeline.predict_proba(inputs)
        return values / values.sum(axis=1, keepdims=True)

    def save(self, path: str | PathLike[str]) -> Path:
        """Write the joblib artifact, its training table (``NAME.training.npz``, when the model
        has one) and its card (with both files' SHA-256); returns the card path."""
        import joblib

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        artifact = {
            "format": ARTIFACT_FORMAT,
            "pipeline": _with_support_vectors(self.pipeline, np.float32),
            "classes": self.classes,
            "feature_names": self.feature_names,
            "feature_config": self.feature_config.to_dict(),
            "speaker_norm": self.speaker_norm,
            "batch_norm": self.batch_norm,
        }
        if self.reference is not None:
            artifact["explanation_reference"] = self.reference.to_dict()
        with atomic_output(target) as stream:
            joblib.dump(artifact, stream, compress=3)
        card = {
            **self.card,
            "classes": self.classes,
            "n_features": len(self.feature_names),
            "feature_names": self.feature_names,
            "feature_config": self.feature_config.to_dict(),
            "speaker_norm": self.speaker_norm,
            "batch_norm": self.batch_norm,
            "artifact": {"file": target.name, "format": ARTIFACT_FORMAT, "sha256": file_sha256(target)},
        }
        card.pop("explanation", None)
        if self.reference is not None:
            card["explanation"] = self.reference.card_entry()
        card.pop("training_table", None)
        if self.training_table is not None:
            card["training_table"] = self.training_table.save(training_table_path(target))
        self.card = card
        text = json.dumps(card, indent=2, default=_json_default) + "\n"
        with atomic_output(card_path(target), "w") as stream:
            stream.write(text)
        return card_path(target)


def load_model(model: str | PathLike[str] | ModelFile | None = None) -> Model:
    """Load a model after checking its card: hash, extractor version, feature names.

    ``model`` is a model file, the name of a bundled model (``"default"``, ``"ravdess8"``: see
    :data:`~ser_classic.model_file.BUNDLED_MODELS`), ``None`` for the default model, or a
    :class:`~ser_classic.model_file.ModelFile` already opened (and so checked).

    Raises
    ------
    ModelError
        Missing file or card, a SHA-256 that does not match the card (the file is then never
        unpickled), another extractor version, other feature names, or an artifact that
        disagrees with its card.
    """
    import io

    import joblib

    checked = model if isinstance(model, ModelFile) else ModelFile.open(resolve_model(model))
    try:
        artifact = joblib.load(io.BytesIO(checked.content))
    except Exception as error:  # unpickling can fail in many ways on a foreign file
        raise ModelError(f"cannot load the model ({type(error).__name__}: {error})", checked.path) from None
    if not isinstance(artifact, dict) or artifact.get("format") != ARTIFACT_FORMAT:
        raise ModelError("not a ser-classic model artifact", checked.path)
    if artifact["feature_names"] != checked.card["feature_names"] or artifact["classes"] != checked.card["classes"]:
        raise ModelError("artifact and model card disagree on features or classes", checked.path)
    speaker_norm, batch_norm = bool(artifact.get("speaker_norm", False)), bool(artifact.get("batch_norm", False))
    if (speaker_norm, batch_norm) != (checked.speaker_norm, checked.batch_norm):
        raise ModelError("artifact and model card disagree on normalization", checked.path)
    if ("explanation_reference" in artifact) != ("explanation" in checked.card):
        raise ModelError("artifact and model card disagree on explanation reference data", checked.path)
    stored = artifact.get("explanation_reference")
    return Model(
        pipeline=_with_support_vectors(artifact["pipeline"], np.float64), feature_config=checked.feature_config, card=checked.card,
        speaker_norm=speaker_norm, batch_norm=batch_norm, reference=None if stored is None else ExplanationReference.from_dict(stored),
    )


def train(
    features: pd.DataFrame,
    labels: Sequence[str],
    *,
    classifier: str = "svm",
    feature_config: FeatureConfig | None = None,
    seed: int = 0,
    card: dict[str, Any] | None = None,
    speakers: Sequence[str] | None = None,
    speaker_norm: bool = False,
    batches: Sequence[str] | None = None,
    batch_norm: bool = False,
    augmented: Sequence[pd.DataFrame] = (),
    augmentation: str = "",
    clips: Sequence[str] | None = None,
) -> Model:
    """Fit a named pipeline on a feature table and wrap it as a :class:`Model`.

    Parameters
    ----------
    features : DataFrame [shape=(n_clips, n_features)]
        Columns are the extractor's feature names.
    labels : sequence of str [shape=(n_clips,)]
    classifier : str
        A name in :data:`CLASSIFIERS`.
    feature_config : FeatureConfig, optional
        The settings the features were extracted with; default: those the table records
        (:func:`~ser_classic.features.config.table_config`), else the default settings. A table
        that records other settings is refused.
    card : dict, optional
        Extra card fields (training corpus, evaluation scores, ...).
    speakers : sequence of str [shape=(n_clips,)], optional
        Speaker of each clip; required with ``speaker_norm``.
    speaker_norm : bool
        Standardize features per speaker (:mod:`ser_classic.normalization`) before the pipeline,
        here and at prediction time.
    batches : sequence of str [shape=(n_clips,)], optional
        Batch (corpus, recording session) of each clip; required with ``batch_norm``.
    batch_norm : bool
        Standardize features per batch before the pipeline; at prediction time the files of a
        run form one batch.
    augmented : sequence of DataFrame [shape=(n_clips, n_features)]
        Augmented copies aligned row by row with ``features``
        (:func:`ser_classic.features.augmented.augmented_features`), trained on as well; with
        ``speaker_norm``, each set of copies of a speaker is standardized with its own statistics.
    augmentation : str
        What made ``augmented``, for the card.
    clips : sequence of str [shape=(n_clips,)], optional
        Each clip's name within its corpus, for the model's :class:`~ser_classic.training_table.TrainingTable`;
        the table's index by default.
    """
    try:
        recorded = table_config(features)
    except ValueError as error:
        raise ModelError(f"{error}: extract the features again") from None
    if feature_config is not None and recorded is not None and recorded != feature_config:
        raise ModelError(
            f"the feature table was made with other extractor settings than feature_config: {recorded} != {feature_config}"
        )
    config = feature_config or recorded or FeatureConfig()
    names = feature_names(config)
    missing = set(names) - set(features.columns)
    if missing:
        raise ModelError(f"feature table lacks {len(missing)} extractor feature(s), e.g. {sorted(missing)[:3]}")
    labels_array = np.asarray(labels, dtype=str)
    if len(set(labels_array)) < 2:
        raise ModelError("training needs at least two classes")
    classes, counts = np.unique(labels_array, return_counts=True)
    if counts.min() < MIN_CLIPS_PER_CLASS:
        scarce = {str(c): int(n) for c, n in zip(classes, counts) if n < MIN_CLIPS_PER_CLASS}
        raise ModelError(f"each class needs at least {MIN_CLIPS_PER_CLASS} training clips; too few: {scarce}")
    if speaker_norm and speakers is None:
        raise ModelError("per-speaker normalization needs the speaker of each training clip")
    if batch_norm and (batches is None or speaker_norm):
        raise ModelError("per-batch normalization needs the batch of each training clip, and no per-speaker normalization")
    from .features.augmented import with_copies

    speaker_array = np.asarray(speakers if speakers is not None else [""] * len(labels_array), dtype=str)
    rows = with_copies(features[names], labels_array, speaker_array, [copies[names] for copies in augmented])
    table = rows.features
    if speaker_norm or batch_norm:
        from .normalization import standardize_per_speaker

        groups_of_rows = rows.speakers if speaker_norm else np.asarray(batches, dtype=str)[rows.sources]
        table = standardize_per_speaker(table, groups_of_rows)
    from .calibration import calibration_groups

    groups = calibration_groups(None if speakers is None else speaker_array, rows.sources)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # as evaluation's folds: faster on few cores, the same rounding everywhere
        pipeline = fit_pipeline(build_pipeline(classifier, seed=seed), table, rows.labels, groups, rows.weights if augmented else None)
    base_card = {
        "name": classifier,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "classifier": classifier,
        "pipeline": [f"{name}: {type(step).__name__}" for name, step in pipeline.steps],
        "seed": seed,
        "training": {
            "n_clips": int(len(labels_array)),
            "class_counts": dict(zip(classes.tolist(), counts.tolist())),
            "augmentation": augmentation or "none",
            "n_augmented_copies": int(len(rows.labels) - len(labels_array)),
        },
        "library_versions": library_versions(),
    }
    merged = {**base_card, **(card or {})}
    merged["training"] = {**base_card["training"], **(card or {}).get("training", {})}
    reference = explanation_reference(table.to_numpy(dtype=np.float64)[: len(labels_array)], labels_array, seed=seed)
    training_table = TrainingTable.of(
        features[names], labels_array, speaker_array, batches if batches is not None else [""] * len(labels_array),
        clips if clips is not None else features.index.astype(str),
    )
    return Model(
        pipeline=pipeline, feature_config=config, card=merged, speaker_norm=speaker_norm, batch_norm=batch_norm,
        reference=reference, training_table=training_table,
    )


def _support_vector_machines(estimator: Any) -> list[Any]:
    """The fitted ``SVC`` instances inside ``estimator``: itself, its pipeline steps, the members
    of an ensemble, a wrapped estimator, at any depth."""
    from sklearn.svm import SVC

    found = [estimator] if isinstance(estimator, SVC) and hasattr(estimator, "support_vectors_") else []
    for value in vars(estimator).values():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            item = item[-1] if isinstance(item, tuple) and item else item  # (name, estimator) pairs
            if isinstance(item, BaseEstimator):
                found += _support_vector_machines(item)
    return found


def _with_support_vectors(pipeline: Any, dtype: type) -> Any:
    """``pipeline`` with its SVMs' support vectors as ``dtype``: float32 in the file, float64
    (what libsvm computes with) once loaded. With augmented copies nearly every training row is
    a support vector; float32 halves the file, and moves the kernel values by less than 1e-6.
    A copy is made when anything changes, so the model in memory keeps what it was fitted with."""
    import copy

    if not any(svm.support_vectors_.dtype != dtype for svm in _support_vector_machines(pipeline)):
        return pipeline
    converted = copy.deepcopy(pipeline)
    for svm in _support_vector_machines(converted):
        svm.support_vectors_ = np.ascontiguousarray(svm.support_vectors_, dtype=dtype)
    return converted


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
