"""Temperature scaling on grouped folds (``ser_classic.calibration``), on synthetic scores and clips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import softmax
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC
from sklearn.utils.estimator_checks import parametrize_with_checks

from ser_classic.calibration import TemperatureScaled, calibration_groups, fit_temperature


@settings(max_examples=15, deadline=None)
@given(temperature=st.floats(0.3, 4.0), seed=st.integers(0, 2**16))
def test_fit_temperature_recovers_the_temperature_that_generated_the_labels(temperature: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.normal(scale=3.0, size=(4000, 5))
    probabilities = softmax(scores / temperature, axis=1)
    target = np.array([rng.choice(5, p=row) for row in probabilities])
    assert fit_temperature(scores, target) == pytest.approx(temperature, rel=0.15)


def _copied_clips(n_clips: int = 60, n_copies: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random clips with random labels (nothing to learn), each present ``n_copies`` times with
    tiny differences, as augmented copies are."""
    rng = np.random.default_rng(0)
    clips = rng.normal(size=(n_clips, 8))
    labels = np.tile(["a", "b", "c", "d"], n_clips // 4)
    features = np.vstack([clips + rng.normal(scale=1e-3, size=clips.shape) for _ in range(n_copies)])
    return features, np.tile(labels, n_copies), np.tile(np.arange(n_clips), n_copies)


def test_grouping_copies_together_keeps_a_memorizing_model_from_claiming_confidence() -> None:
    features, labels, clips = _copied_clips()
    memorizer = KNeighborsClassifier(n_neighbors=1)
    leaky = TemperatureScaled(memorizer).fit(features, labels)  # a clip's copies on both sides
    grouped = TemperatureScaled(memorizer).fit(features, labels, groups=clips)
    new_clips = np.random.default_rng(1).normal(size=(200, 8))
    assert leaky.predict_proba(new_clips).max(axis=1).mean() > 0.9
    assert grouped.predict_proba(new_clips).max(axis=1).mean() < 0.4  # chance is 0.25
    assert grouped.temperature_ > 5 * leaky.temperature_


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), n_classes=st.integers(2, 5))
def test_temperature_never_changes_the_class_with_the_highest_score(seed: int, n_classes: int) -> None:
    rng = np.random.default_rng(seed)
    labels = np.arange(90) % n_classes
    features = rng.normal(size=(90, 4)) + labels[:, None] * 0.5
    for estimator in (SVC(), LogisticRegression()):
        scaled = TemperatureScaled(estimator).fit(features, labels, groups=np.arange(90) // 10)
        test = rng.normal(size=(50, 4)) * 2
        fitted = scaled.estimator_
        scores = fitted.predict_proba(test) if hasattr(fitted, "predict_proba") else fitted.decision_function(test)
        if scores.ndim == 1:  # two classes: one signed score
            scores = np.column_stack([-scores, scores])
        assert_array_equal(scaled.predict(test), fitted.classes_[scores.argmax(axis=1)])
        assert_allclose(scaled.predict_proba(test).sum(axis=1), 1.0)


def test_a_class_from_one_speaker_only_neither_breaks_nor_flattens_the_calibration() -> None:
    """Its clips meet an inner model that never saw the class; they must not drive the
    temperature (their floor score would flatten every probability)."""
    rng = np.random.default_rng(0)
    labels = np.array(["x"] * 25 + ["y"] * 25 + ["rare"] * 10)
    centres = {"x": (0.0, 0.0, 0.0), "y": (8.0, 0.0, 0.0), "rare": (0.0, 8.0, 0.0)}
    features = np.array([centres[label] for label in labels]) + rng.normal(size=(60, 3))
    speakers = np.array([f"s{k % 5}" for k in range(50)] + ["only"] * 10)  # every "rare" clip from one speaker
    scaled = TemperatureScaled(LogisticRegression()).fit(features, labels, groups=speakers)
    assert list(scaled.classes_) == ["rare", "x", "y"]
    probabilities = scaled.predict_proba(features)
    assert probabilities.shape == (60, 3) and np.all(np.isfinite(probabilities))
    assert_allclose(probabilities.sum(axis=1), 1.0)
    assert probabilities.max(axis=1).mean() > 0.8  # well-separated classes stay confident


def test_fewer_groups_than_folds_fit_with_one_group_per_row_instead_of_failing() -> None:
    features, labels, _ = _copied_clips(n_clips=12, n_copies=1)
    scaled = TemperatureScaled(LogisticRegression(), n_splits=3).fit(features, labels, groups=np.array(["s1", "s2"] * 6))
    assert np.isfinite(scaled.temperature_)
    assert clone(scaled).get_params()["n_splits"] == 3


def test_calibration_groups_are_speakers_when_there_are_enough_else_source_clips() -> None:
    sources = np.array([0, 1, 2, 3, 0, 2])  # four clips, then copies of clips 0 and 2
    assert_array_equal(calibration_groups(np.array(["a", "b", "c", "c"]), sources), ["a", "b", "c", "c", "a", "c"])
    assert_array_equal(calibration_groups(np.array(["a", "b", "b", "b"]), sources), sources)  # 2 speakers < 3 folds
    assert_array_equal(calibration_groups(None, sources), sources)


#: A weight of 2 is a repeated row in every fit, but not in the temperature's inner folds, which
#: may put a row and its repetition in different folds.
WEIGHTS_ARE_NOT_REPETITIONS = {
    "check_sample_weight_equivalence_on_dense_data": "inner folds split repeated rows, weighted rows stay whole"
}


@parametrize_with_checks([TemperatureScaled(LogisticRegression())], expected_failed_checks=lambda _: WEIGHTS_ARE_NOT_REPETITIONS)
def test_follows_the_scikit_learn_estimator_contract(estimator: TemperatureScaled, check: object) -> None:
    check(estimator)
