"""Augmented copies in training: their features, their alignment, and that a test fold never
sees a copy of its own clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal

from ser_classic.evaluation import evaluate
from ser_classic.features import FeatureExtractor, feature_names
from ser_classic.features.augmented import augmented_features, with_copies
from ser_classic.models import build_pipeline, fit_pipeline, train


@pytest.fixture(scope="module")
def two_clips(actor_01: Path) -> list[Path]:
    return sorted(actor_01.glob("03-01-0[15]-01-01-01-01.flac"))


def test_speed_copies_are_named_aligned_deterministic_and_cached(two_clips: list[Path], tmp_path: Path) -> None:
    first = augmented_features(two_clips, "speed", n_copies=2, cache_dir=tmp_path)
    originals = FeatureExtractor().extract_files(two_clips)
    assert len(first) == 2
    for table in first:
        assert list(table.columns) == feature_names()
        assert list(table.index) == [str(path) for path in two_clips]
        assert np.isfinite(table.to_numpy()).all()
    slower, faster = first[0], first[1]  # x0.9 then x1.1: lower, then higher pitch
    assert (slower["f0_p50"] < originals["f0_p50"]).all() and (faster["f0_p50"] > originals["f0_p50"]).all()
    assert len(list(tmp_path.rglob("*.npy"))) == 2
    again = augmented_features(two_clips, "speed", n_copies=2, cache_dir=tmp_path)
    fresh = augmented_features(list(reversed(two_clips)), "speed", n_copies=2)
    for k in range(2):
        assert_array_equal(again[k].to_numpy(), first[k].to_numpy())
        assert_array_equal(fresh[k].loc[first[k].index].to_numpy(), first[k].to_numpy())


def test_prefix_copies_are_described_as_windows_inside_speech(two_clips: list[Path]) -> None:
    from ser_classic import audio
    from ser_classic.augmentation import speech_prefix
    from ser_classic.features.config import FeatureConfig
    from ser_classic.features.extractor import extract_vector

    config = FeatureConfig()
    copies = augmented_features(two_clips[:1], "speed-prefix")
    assert len(copies) == 5
    signal = audio.load(two_clips[0], sample_rate=config.sample_rate)
    for table, seconds in zip(copies[3:], (0.75, 1.5)):
        expected = extract_vector(speech_prefix(signal, seconds, sample_rate=config.sample_rate), config, within_speech=True)
        assert_array_equal(table.to_numpy()[0], expected)
    assert not np.array_equal(copies[3].to_numpy(), copies[4].to_numpy())


def test_a_file_that_cannot_be_augmented_gets_a_nan_row_and_the_rest_go_on(two_clips: list[Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio at all")
    tables = augmented_features([two_clips[0], broken, two_clips[1]], "speed", n_copies=1)
    rows = tables[0].isna().all(axis=1).to_numpy()
    assert rows.tolist() == [False, True, False]
    assert "broken.wav" in caplog.text


def test_with_copies_appends_complete_copies_under_copy_set_speakers() -> None:
    features = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]})
    copy = pd.DataFrame({"a": [10.0, np.nan, 30.0], "b": [40.0, 50.0, 60.0]})
    table, labels, speakers, sources, weights = with_copies(features, np.array(["x", "y", "z"]), np.array(["s1", "s1", "s2"]), [copy])
    assert table["a"].tolist() == [1.0, 2.0, 3.0, 10.0, 30.0]
    assert labels.tolist() == ["x", "y", "z", "x", "z"]
    assert speakers.tolist() == ["s1", "s1", "s2", "s1 (copy 1)", "s2 (copy 1)"]
    assert sources.tolist() == [0, 1, 2, 0, 2]
    assert weights.tolist() == [0.5, 1.0, 0.5, 0.5, 0.5]  # a clip weighs 1 in all, its copies included


def _memorizable_corpus() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Random features and random labels: nothing to learn, except by memorizing a clip."""
    rng = np.random.default_rng(0)
    speakers = np.repeat([f"s{k:02d}" for k in range(12)], 16)
    labels = rng.choice(["a", "b", "c", "d"], size=speakers.size)
    features = pd.DataFrame(rng.standard_normal((speakers.size, 10)), columns=[f"f{k}" for k in range(10)])
    return features, labels, speakers


@pytest.mark.parametrize("protocol", ["speaker", "random"])
def test_no_test_clip_is_trained_on_through_its_copies(protocol: str) -> None:
    """Exact duplicates as "copies": a copy of a test clip in training would be memorized and
    lift accuracy far above chance (the control shows it does when duplicates do leak)."""
    features, labels, speakers = _memorizable_corpus()
    augmented = evaluate(features, labels, speakers, protocol=protocol, n_splits=4, augmented=[features.copy()])
    assert augmented.summary()["mean"]["accuracy"] < 0.45
    leaked = evaluate(
        pd.concat([features, features], ignore_index=True), np.concatenate([labels, labels]),
        np.concatenate([speakers, speakers]), protocol="random", n_splits=4,
    )
    assert leaked.summary()["mean"]["accuracy"] > 0.6


@pytest.mark.parametrize("classifier", ["svm", "ensemble"])
def test_a_model_trained_on_copies_is_not_confident_about_clips_it_could_only_memorize(classifier: str) -> None:
    """Calibration folds keep a clip and its copies (and a speaker) together: trained on noise,
    the model's confidence on new clips stays near chance (0.25). The control calibrates on
    folds that split a clip from its copy, as before, and comes out confident."""
    features, labels, speakers = _memorizable_corpus()
    names = feature_names()
    rng = np.random.default_rng(1)
    wide = pd.DataFrame(rng.standard_normal((len(labels), len(names))), columns=names)
    new_clips = pd.DataFrame(rng.standard_normal((200, len(names))), columns=names)
    model = train(wide, labels, classifier=classifier, speakers=speakers, augmented=[wide.copy()])
    assert model.predict_proba(new_clips).max(axis=1).mean() < 0.35
    rows = with_copies(wide, labels, speakers, [wide.copy()])
    leaky = fit_pipeline(build_pipeline(classifier), rows.features, rows.labels, np.arange(len(rows.labels)))
    assert leaky.predict_proba(new_clips).max(axis=1).mean() > 0.4  # chance 0.25; the SVM's summed margins: 0.45
