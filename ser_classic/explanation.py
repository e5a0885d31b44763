"""Why a model gave a clip its emotion, in terms a person can check.

Two answers, both about the model, not about the speaker's feelings:

- **Feature groups** (:data:`~ser_classic.features.descriptions.FEATURE_GROUPS`, 12 of
  them): the Shapley value of each group for the predicted class's probability. A group is
  *absent* when its features take a training clip's values instead of this clip's; the value
  of a set of present groups is the probability averaged over the model's reference clips
  (:class:`~ser_classic.reference.ExplanationReference`). The contributions add up to the
  clip's probability minus that average over the reference clips (the *baseline*).
- **Named features**: among the features a person can measure (pitch in Hz and semitones,
  levels in dB, ...), those whose replacement by the training median alone lowers the
  probability most, each with the clip's value, its unit and its percentile among the
  training clips (with per-speaker normalization: relative to the speaker's own clips).

The Shapley values are estimated by walking from each reference clip to this clip, switching
the groups one at a time in a random order and then in the reverse order (antithetic
permutation sampling: 64 walks of 11 inner steps, some 740 rows for the model in one batch).
Each walk's steps add up to its exact difference, so the contributions add up exactly; the
orders are random with a fixed seed, so the same clip gets the same answer. Exact Shapley
values over 12 groups would need 4096 coalitions times the reference clips, about 180 times
as many rows: seconds per clip with the ensemble, whose SVM member dominates the cost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ModelError, SERError
from .features.descriptions import FEATURE_GROUPS, FeatureDescription, describe_feature
from .reference import ExplanationReference

if TYPE_CHECKING:
    import pandas as pd

    from .model_file import ModelFile
    from .models import Model

__all__ = [
    "N_NAMED_FEATURES",
    "Explanation",
    "NamedFeature",
    "explain",
    "explain_features",
    "explanation_markdown",
    "group_shapley_values",
]

_log = logging.getLogger(__name__)

#: Features named by an explanation (at most: only those that raise the probability).
N_NAMED_FEATURES = 3


def group_shapley_values(
    probability: Callable[[np.ndarray], np.ndarray],
    clip: np.ndarray,
    reference_rows: np.ndarray,
    feature_groups: np.ndarray,
    n_groups: int,
    *,
    seed: int = 0,
) -> tuple[np.ndarray, float]:
    """Shapley values of feature groups for ``probability``, by antithetic permutation sampling.

    For each reference row, one random order of the groups and its reverse: along each, the
    groups switch from the reference row's values to the clip's one at a time, and each step's
    change of ``probability`` is the contribution of the group that switched. All rows go to
    ``probability`` in one call.

    Parameters
    ----------
    probability : callable
        Rows ``(n, n_features)`` -> the explained probability of each ``(n,)``.
    clip : np.ndarray [shape=(n_features,)]
    reference_rows : np.ndarray [shape=(n_rows, n_features)]
    feature_groups : np.ndarray [shape=(n_features,), dtype=int]
        Group (``0 .. n_groups - 1``) of each feature.
    n_groups : int
    seed : int
        Seed of the orders.

    Returns
    -------
    values : np.ndarray [shape=(n_groups,)]
        They add up to ``probability(clip) - baseline``.
    baseline : float
        Mean of ``probability`` over the reference rows.
    """
    rng = np.random.default_rng(seed)
    orders = np.stack([rng.permutation(n_groups) for _ in range(len(reference_rows))])
    orders = np.concatenate([orders, orders[:, ::-1]])
    starts = np.concatenate([reference_rows, reference_rows])
    joined_at = np.argsort(orders, axis=1)  # joined_at[walk, group]: the step that switches the group
    steps = np.arange(1, n_groups)  # groups switched after each inner step of a walk
    switched = joined_at[:, np.newaxis, :] < steps[np.newaxis, :, np.newaxis]
    inner = np.where(switched[:, :, feature_groups], clip, starts[:, np.newaxis, :]).reshape(-1, clip.shape[0])
    scores = probability(np.concatenate([inner, reference_rows, clip[np.newaxis, :]]))
    n_walks, n_inner = len(orders), inner.shape[0]
    start_scores = np.tile(scores[n_inner:-1], 2)
    walks = np.column_stack([start_scores, scores[:n_inner].reshape(n_walks, n_groups - 1), np.full(n_walks, scores[-1])])
    values = np.zeros(n_groups)
    np.add.at(values, orders, np.diff(walks, axis=1))
    return values / n_walks, float(scores[n_inner:-1].mean())


@dataclass(frozen=True)
class NamedFeature:
    """A feature that moved the prediction, as a person can check it.

    Attributes
    ----------
    name, label, unit, group : str
        ``f0_semitone_range``, "pitch range", "semitones", "pitch".
    value : float
        The clip's value, in ``unit``.
    percentile : float
        Share (0-100) of training clips with a lower value (with per-speaker normalization:
        after each is standardized by its speaker's statistics, this clip by its speaker's).
    effect : float
        How much lower the probability is with this feature at the training median.
    """

    name: str
    label: str
    unit: str
    group: str
    value: float
    percentile: float
    effect: float

    def phrase(self) -> str:
        """E.g. ``pitch range very high (11.2 semitones, 93rd percentile)``."""
        unit = f" {self.unit}" if self.unit else ""
        if self.percentile <= 0.0:
            where = "below every training clip"
        elif self.percentile >= 100.0:
            where = "above every training clip"
        else:
            where = f"{_ordinal(min(max(round(self.percentile), 1), 99))} percentile"  # inside the range: 1st-99th
        return f"{self.label} {_level_word(self.percentile)} ({_number(self.value)}{unit}, {where})"


@dataclass(frozen=True)
class Explanation:
    """Why the model gave a clip its emotion (see the module's docstring for what it means).

    Attributes
    ----------
    emotion : str
        The predicted class.
    probabilities : dict of str to float
        Every class's probability, in the model's class order.
    baseline : float
        The emotion's mean probability over the model's reference clips.
    groups : dict of str to float
        Contribution of each feature group to the emotion's probability, largest first; they
        add up to ``probability - baseline``.
    features : tuple of NamedFeature
        The checkable features that raised the probability most, largest effect first.
    relative_to_speaker : bool
        Percentiles are relative to the speaker's own clips (per-speaker or per-batch model).
    path : str or None
        The clip's file, when explained from one.
    """

    emotion: str
    probabilities: dict[str, float]
    baseline: float
    groups: dict[str, float]
    features: tuple[NamedFeature, ...] = field(default_factory=tuple)
    relative_to_speaker: bool = False
    path: str | None = None

    @property
    def probability(self) -> float:
        """The predicted emotion's probability."""
        return self.probabilities[self.emotion]

    @property
    def percentiles_of(self) -> str:
        """What the percentiles compare the clip with, in words."""
        if self.relative_to_speaker:
            return "the speaker's own clips (each feature standardized by the speaker's mean and spread)"
        return "the model's training clips"

    def to_text(self) -> str:
        """A few lines: the emotion and the features behind it, then the groups."""
        reasons = ", ".join(feature.phrase() for feature in self.features) or "no single checkable feature stands out"
        lines = [
            f"{self.emotion} ({self.probability:.2f}): {reasons}",
            f"p({self.emotion}) is {self.baseline:.2f} for the average reference clip, {self.probability:.2f} for this one; "
            "by feature group:",
            *[f"  {value:+.2f}  {group}" for group, value in self.groups.items()],
            f"Percentiles among {self.percentiles_of}.",
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the fields, the probability and what the percentiles compare with."""
        return {
            "path": self.path,
            "emotion": self.emotion,
            "probability": self.probability,
            "probabilities": dict(self.probabilities),
            "baseline": self.baseline,
            "groups": [{"group": group, "contribution": value} for group, value in self.groups.items()],
            "features": [
                {
                    "name": feature.name,
                    "label": feature.label,
                    "value": feature.value,
                    "unit": feature.unit,
                    "percentile": feature.percentile,
                    "effect": feature.effect,
                    "group": feature.group,
                }
                for feature in self.features
            ],
            "percentiles_of": self.percentiles_of,
        }


def explanation_markdown(explanation: Explanation) -> str:
    """The explanation as Markdown for the demo's "Why" panel: groups table, named features."""
    emotion = explanation.emotion
    lines = [
        f"**{emotion} ({explanation.probability:.2f})**; p({emotion}) is {explanation.baseline:.2f} for the "
        "average reference clip.",
        "",
        f"| feature group | moves p({emotion}) by |",
        "|---|---:|",
        *[f"| {group} | {value:+.2f} |" for group, value in explanation.groups.items()],
        "",
    ]
    if explanation.features:
        lines += [f"**Features that moved it most** (percentiles among {explanation.percentiles_of}):", ""]
        lines += [f"- {feature.phrase()}" for feature in explanation.features]
    else:
        lines.append("No single checkable feature stands out.")
    lines += ["", "_This explains the model's output, not the speaker's feelings._"]
    return "\n".join(lines) + "\n"


def explain_features(
    features: pd.Series,
    model: Model,
    *,
    speaker_features: pd.DataFrame | None = None,
    path: str | None = None,
    seed: int = 0,
) -> Explanation:
    """Explain the model's prediction for one clip's feature vector.

    Parameters
    ----------
    features : pandas.Series [shape=(n_features,)]
        The clip's features, indexed by name (e.g. a row of a feature table).
    model : Model
        Trained with reference data (any model trained by this version).
    speaker_features : DataFrame [shape=(n_clips, n_features)], optional
        For a model that standardizes per speaker (per batch): the speaker's (batch's) other
        clips; the statistics come from them and this clip, as ``ser predict`` computes them
        over a speaker's files.
    path : str, optional
        The clip's file, for the explanation and error messages.
    seed : int
        Seed of the group orders (:func:`group_shapley_values`).

    Raises
    ------
    ModelError
        The model holds no reference data (retrain it), or it standardizes per speaker and
        ``speaker_features`` is missing.
    """
    reference = _reference_of(model)
    names = model.feature_names
    values = features[names].to_numpy(dtype=np.float64)
    inputs = _model_inputs(values, model, speaker_features, path)
    probabilities = model.input_probabilities(inputs[np.newaxis, :])[0]
    target = int(np.argmax(probabilities))

    def probability(rows: np.ndarray) -> np.ndarray:
        return model.input_probabilities(rows)[:, target]

    descriptions = [describe_feature(name) for name in names]
    groups = list(FEATURE_GROUPS)
    group_index = np.array([groups.index(description.group) for description in descriptions])
    contributions, baseline = group_shapley_values(probability, inputs, reference.rows, group_index, len(groups), seed=seed)
    named = _named_features(probability, inputs, values, reference, descriptions)
    order = np.argsort(-contributions, kind="stable")
    return Explanation(
        emotion=model.classes[target],
        probabilities=dict(zip(model.classes, map(float, probabilities))),
        baseline=baseline,
        groups={groups[i]: float(contributions[i]) for i in order},
        features=named,
        relative_to_speaker=model.speaker_norm or model.batch_norm,
        path=path,
    )


def explain(
    clip: str | PathLike[str] | np.ndarray,
    model: Model | ModelFile,
    *,
    sample_rate: int | None = None,
    speaker_clips: Sequence[str | PathLike[str]] = (),
    cache_dir: str | PathLike[str] | None = None,
    n_jobs: int | None = 1,
    seed: int = 0,
) -> Explanation:
    """Explain the model's prediction for an audio file or a signal.

    Parameters
    ----------
    clip : str, PathLike or np.ndarray [shape=(n,) or (n, channels)]
        An audio file, or a signal at ``sample_rate``.
    model : Model or ModelFile
        A :class:`~ser_classic.model_file.ModelFile` is loaded while the extraction warms up,
        as :func:`~ser_classic.prediction.predict_files` does.
    sample_rate : int, optional
        Required with a signal.
    speaker_clips : sequence of str or PathLike
        Files or folders of the speaker's other recordings; required by a model that
        standardizes per speaker (or per batch), ignored otherwise. ``clip`` is left out of them.
    cache_dir : str or PathLike, optional
        Feature cache folder.
    n_jobs : int, optional
        Worker processes (-1: all cores): for the speaker's clips, and from 2 on a helper
        process warms up the extraction while a ``ModelFile`` loads.
    seed : int
        Seed of the group orders.

    Raises
    ------
    SERError
        :class:`~ser_classic.errors.AudioError` (unreadable, or no speech:
        :class:`~ser_classic.errors.NoSpeechError`) naming the file, or a
        :class:`~ser_classic.errors.ModelError` (see :func:`explain_features`).
    """
    from pathlib import Path

    from .corpus import find_audio_files
    from .model_file import ModelFile
    from .prediction import model_and_vectors

    model_path = model.path if isinstance(model, ModelFile) else model.card.get("artifact", {}).get("file")
    explainable = "explanation" in model.card if isinstance(model, ModelFile) else model.reference is not None
    if not explainable:
        raise ModelError(_NO_REFERENCE, model_path)
    normalized = model.speaker_norm or model.batch_norm
    is_signal = isinstance(clip, np.ndarray)
    own = None if is_signal else Path(clip).resolve()
    others = [path for path in find_audio_files(speaker_clips) if path.resolve() != own] if normalized else []
    if normalized and not others:
        raise ModelError(_needs_speaker(model), model_path)
    targets = others if is_signal else [Path(clip), *others]
    with model_and_vectors(targets, model, n_jobs=n_jobs, cache_dir=cache_dir) as (loaded, vectors):
        results = list(vectors)
    if is_signal:
        vector = _signal_vector(clip, sample_rate, loaded)
        label = None
    else:
        label, vector = results.pop(0)
        if isinstance(vector, SERError):
            raise vector
    import pandas as pd

    speaker_features = None
    if normalized:
        usable = [(path, values) for path, values in results if not isinstance(values, SERError)]
        for path, values in results:
            if isinstance(values, SERError):
                _log.warning("left out of the speaker's clips: %s", values)
        if not usable:
            raise ModelError(_needs_speaker(loaded), model_path)
        speaker_features = pd.DataFrame([values for _, values in usable], index=[path for path, _ in usable], columns=loaded.feature_names)
    features = pd.Series(vector, index=loaded.feature_names)
    return explain_features(features, loaded, speaker_features=speaker_features, path=label, seed=seed)


_NO_REFERENCE = "this model holds no reference data for explanations (trained before ser-classic could explain): retrain it"


def _reference_of(model: Model) -> ExplanationReference:
    if model.reference is None:
        raise ModelError(_NO_REFERENCE, model.card.get("artifact", {}).get("file"))
    return model.reference


def _needs_speaker(model: Model | ModelFile) -> str:
    group = "speaker" if model.speaker_norm else "batch"
    return (
        f"this model standardizes features per {group}: explaining a clip needs other clips of its {group} "
        f"(10 or more; --speaker-clips in the command line)"
    )


def _model_inputs(values: np.ndarray, model: Model, speaker_features: pd.DataFrame | None, path: str | None) -> np.ndarray:
    """The clip's features as the pipeline sees them: standardized with its speaker's clips when
    the model standardizes per speaker (or batch)."""
    if not (model.speaker_norm or model.batch_norm):
        return values
    if speaker_features is None or len(speaker_features) == 0:
        raise ModelError(_needs_speaker(model), path)
    import pandas as pd

    from .normalization import MIN_CLIPS_PER_SPEAKER, standardize_per_speaker

    table = pd.concat([speaker_features[model.feature_names], pd.DataFrame([values], columns=model.feature_names)])
    if len(table) < MIN_CLIPS_PER_SPEAKER:
        _log.warning("%d clip(s) of the speaker: statistics from fewer than %d clips are unreliable", len(table), MIN_CLIPS_PER_SPEAKER)
    return standardize_per_speaker(table, ["speaker"] * len(table)).to_numpy()[-1]


def _named_features(
    probability: Callable[[np.ndarray], np.ndarray],
    inputs: np.ndarray,
    values: np.ndarray,
    reference: ExplanationReference,
    descriptions: list[FeatureDescription],
) -> tuple[NamedFeature, ...]:
    """The checkable features whose replacement by the training median lowers the probability
    most (at most :data:`N_NAMED_FEATURES`, only those that lower it)."""
    columns = np.array([i for i, description in enumerate(descriptions) if description.named])
    medians = reference.percentiles[50]
    rows = np.tile(inputs, (len(columns) + 1, 1))
    rows[np.arange(1, len(columns) + 1), columns] = medians[columns]
    scores = probability(rows)
    effects = scores[0] - scores[1:]
    chosen = [k for k in np.argsort(-effects, kind="stable")[:N_NAMED_FEATURES] if effects[k] > 0]
    named = []
    for k in chosen:
        column, description = columns[k], descriptions[columns[k]]
        named.append(
            NamedFeature(
                name=description.name,
                label=description.label,
                unit=description.unit,
                group=description.group,
                value=float(values[column]),
                percentile=_percentile(inputs[column], reference.percentiles[:, column]),
                effect=float(effects[k]),
            )
        )
    return tuple(named)


def _signal_vector(signal: np.ndarray, sample_rate: int | None, model: Model) -> np.ndarray:
    """A signal's feature vector, checked for speech."""
    from .features.extractor import extract_features
    from .prediction import speech_check

    if sample_rate is None:
        raise SERError("explaining a signal needs its sample_rate")
    values = extract_features(signal, sample_rate, model.feature_config).to_numpy()
    checked = speech_check(values, model.feature_names, "the signal")
    if isinstance(checked, SERError):
        raise checked
    return checked


def _percentile(value: float, percentiles: np.ndarray) -> float:
    """Share (0-100) of training clips below ``value``, interpolated between the stored
    percentiles 0..100; a value equal to several of them gets the middle of their levels."""
    low = int(np.searchsorted(percentiles, value, side="left"))
    high = int(np.searchsorted(percentiles, value, side="right"))
    if high > low:
        return (low + high - 1) / 2
    if low == 0:
        return 0.0
    if low == len(percentiles):
        return 100.0
    below, above = percentiles[low - 1], percentiles[low]
    return float(low - 1 + (value - below) / (above - below))


def _level_word(percentile: float) -> str:
    if percentile < 10:
        return "very low"
    if percentile < 25:
        return "low"
    if percentile <= 75:
        return "typical"
    if percentile <= 90:
        return "high"
    return "very high"


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _number(value: float) -> str:
    """A value with as many digits as people read: 1890, 11.2, 0.083."""
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}"
    return f"{value:.2g}"
