"""Classifier pipelines, the saved model artifact and its card, evaluation protocols and reports.

Features of a RAVDESS subset (24 actors x 14 clips: neutral, happy, sad, angry, statement 1)
are extracted once per session into the shared feature cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
from importlib.metadata import version
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from ser_classic.corpus import read_corpus, select_classes
from ser_classic.errors import ModelError
from ser_classic.evaluation import evaluate, write_report
from ser_classic.features import FeatureConfig, FeatureExtractor, feature_names
from ser_classic.models import CLASSIFIERS, LabelEncodedClassifier, Model, build_pipeline, card_path, load_model, train

CLASSES = ["angry", "happy", "neutral", "sad"]


@pytest.fixture(scope="module")
def corpus(ravdess_root: Path) -> pd.DataFrame:
    table = select_classes(read_corpus(ravdess_root), "basic4")
    return table[table["statement"] == 1].reset_index(drop=True)


@pytest.fixture(scope="module")
def features(corpus: pd.DataFrame, feature_cache_dir: Path) -> pd.DataFrame:
    return FeatureExtractor(cache_dir=feature_cache_dir, n_jobs=2).extract_files(corpus["path"].tolist())


@pytest.fixture(scope="module")
def small(corpus: pd.DataFrame, features: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Eight actors (112 clips), enough for every pipeline's internal validation split."""
    keep = corpus["actor"].le(8).to_numpy()
    return features[keep], corpus.loc[keep, "label"].to_numpy()


def fast(name: str) -> object:
    """The named pipeline; XGBoost with 40 instead of 400 trees, to keep the test quick."""
    pipeline = build_pipeline(name, seed=0)
    if name == "xgboost":
        pipeline.set_params(classify__estimator__n_estimators=40)
    return pipeline


def test_subset_has_24_speakers_and_four_classes(corpus: pd.DataFrame, features: pd.DataFrame) -> None:
    assert len(corpus) == 24 * 14
    assert corpus["speaker"].nunique() == 24
    assert sorted(set(corpus["label"])) == CLASSES
    assert list(features.index) == corpus["path"].tolist()
    assert list(features.columns) == feature_names()


# --- pipelines ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_each_pipeline_gives_probabilities_ordered_like_classes(name: str, small: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = small
    pipeline = fast(name).fit(X, y)
    assert list(pipeline.named_steps) == ["scale", "classify"]
    assert list(pipeline.classes_) == CLASSES
    probabilities = pipeline.predict_proba(X)
    assert probabilities.shape == (len(X), len(CLASSES))
    assert np.all(probabilities >= 0)
    assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert_array_equal(pipeline.classes_[probabilities.argmax(axis=1)], pipeline.predict(X))
    # On its own training clips each class's column is the largest for that class: the columns
    # are labelled correctly, not just normalized.
    mean_by_class = pd.DataFrame(probabilities, columns=pipeline.classes_).groupby(y).mean()
    assert list(mean_by_class.idxmax(axis=1)) == list(mean_by_class.index)


def test_unknown_classifier_name_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="unknown classifier"):
        build_pipeline("random_forest")


def test_training_with_too_few_clips_of_a_class_is_a_model_error(small: tuple[pd.DataFrame, np.ndarray]) -> None:
    features, labels = small
    rare = labels[0]
    keep = np.flatnonzero(labels != rare).tolist() + np.flatnonzero(labels == rare)[:4].tolist()
    with pytest.raises(ModelError, match=rf"at least 5 training clips; too few: {{'{rare}': 4}}"):
        train(features.iloc[keep], labels[keep], classifier="svm")


def test_xgboost_label_encoding_lives_inside_the_pipeline(small: tuple[pd.DataFrame, np.ndarray], tmp_path: Path) -> None:
    X, y = small
    pipeline = fast("xgboost").fit(X, y)
    step = pipeline.named_steps["classify"]
    assert isinstance(step, LabelEncodedClassifier)
    assert list(step.encoder_.classes_) == CLASSES
    predicted = pipeline.predict(X)
    assert set(predicted) <= set(CLASSES) and predicted.dtype.kind in "UO"
    model = Model(pipeline=pipeline, feature_config=FeatureConfig())
    model.save(tmp_path / "xgb.joblib")
    loaded = load_model(tmp_path / "xgb.joblib")
    assert loaded.classes == CLASSES
    assert_array_equal(loaded.pipeline.predict(X), predicted)
    assert_array_equal(loaded.predict_proba(X).to_numpy(), model.predict_proba(X).to_numpy())


# --- the Model artifact ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_model(small: tuple[pd.DataFrame, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> tuple[Model, Path]:
    X, y = small
    model = train(X, y, classifier="logreg", seed=0, card={"training": {"corpus": "ravdess subset"}})
    path = tmp_path_factory.mktemp("model") / "logreg.joblib"
    model.save(path)
    return model, path


def test_save_writes_joblib_and_card(saved_model: tuple[Model, Path]) -> None:
    model, path = saved_model
    card_file = card_path(path)
    assert card_file == path.with_name("logreg.card.json")
    assert path.is_file() and card_file.is_file()
    card = json.loads(card_file.read_text())
    assert card["classes"] == CLASSES == model.classes
    assert card["feature_names"] == feature_names() and card["n_features"] == len(feature_names())
    assert card["feature_config"] == FeatureConfig().to_dict()
    assert card["artifact"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert card["artifact"]["file"] == path.name
    for library, distribution in (("numpy", "numpy"), ("scikit-learn", "scikit-learn"), ("librosa", "librosa"), ("xgboost", "xgboost-cpu")):
        assert card["library_versions"][library] == version(distribution)
    assert card["training"]["corpus"] == "ravdess subset"
    assert card["training"]["n_clips"] == 112
    assert card["training"]["class_counts"] == {"angry": 32, "happy": 32, "neutral": 16, "sad": 32}
    assert card["classifier"] == "logreg"


def test_load_round_trip_gives_identical_probabilities(saved_model: tuple[Model, Path], features: pd.DataFrame) -> None:
    model, path = saved_model
    loaded = load_model(path)
    assert loaded.classes == model.classes
    assert loaded.feature_config == model.feature_config
    assert loaded.card == json.loads(card_path(path).read_text())
    expected = model.predict_proba(features)
    got = loaded.predict_proba(features)
    assert list(got.columns) == CLASSES
    assert_array_equal(got.to_numpy(), expected.to_numpy())
    assert_allclose(got.sum(axis=1), 1.0, atol=1e-12)


def test_predict_proba_selects_feature_columns_by_name(saved_model: tuple[Model, Path], features: pd.DataFrame) -> None:
    model, _ = saved_model
    shuffled = features[features.columns[::-1]]
    assert_array_equal(model.predict_proba(shuffled).to_numpy(), model.predict_proba(features).to_numpy())


def test_pipeline_survives_joblib_in_memory(saved_model: tuple[Model, Path], features: pd.DataFrame) -> None:
    model, _ = saved_model
    buffer = io.BytesIO()
    joblib.dump(model.pipeline, buffer)
    buffer.seek(0)
    assert_array_equal(joblib.load(buffer).predict_proba(features), model.pipeline.predict_proba(features))


# --- evaluation protocols -------------------------------------------------------------------


@pytest.fixture(scope="module")
def speaker_evaluation(corpus: pd.DataFrame, features: pd.DataFrame) -> object:
    return evaluate(features, corpus["label"], corpus["speaker"], classifier="logreg", protocol="speaker", n_splits=6)


@pytest.fixture(scope="module")
def random_evaluation(corpus: pd.DataFrame, features: pd.DataFrame) -> object:
    return evaluate(features, corpus["label"], corpus["speaker"], classifier="logreg", protocol="random", n_splits=5, seed=3)


def test_speaker_protocol_never_shares_a_speaker_between_train_and_test(speaker_evaluation: object, corpus: pd.DataFrame) -> None:
    evaluation = speaker_evaluation
    speakers = corpus["speaker"].to_numpy()
    assert evaluation.n_splits == 6
    assert sorted(set(evaluation.fold_of)) == list(range(6))
    assert_array_equal(evaluation.y_true, corpus["label"].to_numpy())
    held_out: list[str] = []
    for fold in range(6):
        test = evaluation.fold_of == fold
        test_speakers, train_speakers = set(speakers[test]), set(speakers[~test])
        assert test_speakers.isdisjoint(train_speakers)
        assert len(test_speakers) == 4
        assert evaluation.fold_speakers[fold] == sorted(test_speakers)
        held_out += evaluation.fold_speakers[fold]
    assert sorted(held_out) == sorted(set(speakers))


def test_speaker_protocol_scores_are_above_chance(speaker_evaluation: object) -> None:
    summary = speaker_evaluation.summary()
    assert summary["mean"]["accuracy"] > 0.45
    assert len(summary["folds"]) == 6
    assert summary["classes"] == CLASSES


def test_speaker_protocol_needs_enough_speakers(corpus: pd.DataFrame, features: pd.DataFrame) -> None:
    from ser_classic.errors import SERError

    keep = corpus["actor"].le(3).to_numpy()
    with pytest.raises(SERError, match="at least 6 speakers"):
        evaluate(features[keep], corpus.loc[keep, "label"], corpus.loc[keep, "speaker"], classifier="logreg", n_splits=6)


def test_random_protocol_is_stratified(random_evaluation: object, corpus: pd.DataFrame) -> None:
    evaluation = random_evaluation
    totals = corpus["label"].value_counts()
    speakers = corpus["speaker"].to_numpy()
    shared = 0
    for fold in range(5):
        test = evaluation.fold_of == fold
        counts = pd.Series(evaluation.y_true[test]).value_counts()
        for label in CLASSES:
            assert abs(counts[label] - totals[label] / 5) <= 1
        shared += len(set(speakers[test]) & set(speakers[~test]))
    assert shared > 0
    assert evaluation.fold_speakers == []


def test_random_protocol_is_reproducible_and_seeded(small: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = small
    speakers = X.index.str.extract(r"(Actor_\d\d)", expand=False)
    first, again, other = (
        evaluate(X, y, speakers, classifier="svm", protocol="random", n_splits=4, seed=seed) for seed in (3, 3, 4)
    )
    assert_array_equal(again.fold_of, first.fold_of)
    assert_array_equal(again.y_pred, first.y_pred)
    assert not np.array_equal(other.fold_of, first.fold_of)


def test_folds_fitted_in_parallel_give_the_same_predictions(corpus: pd.DataFrame, features: pd.DataFrame) -> None:
    arguments = (features, corpus["label"], corpus["speaker"])
    serial = evaluate(*arguments, classifier="mlp", n_splits=6, n_jobs=1)
    parallel = evaluate(*arguments, classifier="mlp", n_splits=6, n_jobs=2)
    assert_array_equal(parallel.fold_of, serial.fold_of)
    assert_array_equal(parallel.probabilities, serial.probabilities)
    assert parallel.fold_speakers == serial.fold_speakers


# --- reports --------------------------------------------------------------------------------


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_write_report_writes_json_markdown_and_png(speaker_evaluation: object, tmp_path: Path) -> None:
    paths = write_report(speaker_evaluation, tmp_path / "report", corpus="ravdess subset")
    assert paths == {
        "json": tmp_path / "report" / "report.json",
        "markdown": tmp_path / "report" / "report.md",
        "png": tmp_path / "report" / "confusion.png",
    }
    report = json.loads(paths["json"].read_text())
    assert report["protocol"] == "speaker" and report["corpus"] == "ravdess subset"
    assert report["classes"] == CLASSES and report["n_clips"] == 336
    matrix = np.array(report["confusion_matrix"])
    true_counts = pd.Series(speaker_evaluation.y_true).value_counts()
    predicted_counts = pd.Series(speaker_evaluation.y_pred).value_counts()
    assert list(matrix.sum(axis=1)) == [true_counts[label] for label in CLASSES]
    assert list(matrix.sum(axis=0)) == [predicted_counts.get(label, 0) for label in CLASSES]
    assert [report["per_class"][label]["support"] for label in CLASSES] == list(matrix.sum(axis=1))
    assert np.trace(matrix) / matrix.sum() == pytest.approx(np.mean(speaker_evaluation.y_true == speaker_evaluation.y_pred))
    assert report["mean"]["accuracy"] == pytest.approx(np.mean([fold["accuracy"] for fold in report["folds"]]))
    markdown = paths["markdown"].read_text()
    assert markdown.startswith("# ")
    assert "**speaker**" in markdown and "| true \\ predicted | angry | happy | neutral | sad |" in markdown
    width, height = png_size(paths["png"])
    assert width > 100 and height > 100
