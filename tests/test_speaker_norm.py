"""Per-speaker normalization: statistics, no leakage, and train -> predict with ``--speaker-norm``.

Real RAVDESS clips of six actors (neutral, happy, sad, angry; 14 clips each), linked into
``tmp_path`` folders: four actors to train on, two held out to predict.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ser_classic.cli import app
from ser_classic.corpus import parse_ravdess_name
from ser_classic.errors import ModelError, SERError
from ser_classic.evaluation import evaluate
from ser_classic.features import FeatureExtractor
from ser_classic.models import load_model, train
from ser_classic.normalization import small_speakers, speaker_statistics, standardize_per_speaker

TRAIN_ACTORS = (1, 2, 3, 4)
TEST_ACTORS = (5, 6)


def _clips(ravdess_root: Path, actor: int) -> list[Path]:
    """Neutral (normal intensity only, as recorded), happy, sad, angry; both statements, first take."""
    names = [f"03-01-01-01-{statement}-01-{actor:02d}" for statement in ("01", "02")]
    names += [
        f"03-01-{emotion}-{intensity}-{statement}-01-{actor:02d}"
        for emotion in ("03", "04", "05")
        for intensity in ("01", "02")
        for statement in ("01", "02")
    ]
    return [ravdess_root / f"Actor_{actor:02d}" / f"{name}.flac" for name in names]


def _link_actors(ravdess_root: Path, actors: tuple[int, ...], folder: Path) -> list[Path]:
    """Symbolic links to the actors' clips in ``folder/Actor_XX/`` (no audio is copied)."""
    links = []
    for actor in actors:
        (folder / f"Actor_{actor:02d}").mkdir(parents=True)
        for clip in _clips(ravdess_root, actor):
            link = folder / f"Actor_{actor:02d}" / clip.name
            link.symlink_to(clip)
            links.append(link)
    return links


@pytest.fixture(scope="module")
def six_actors(ravdess_root: Path, feature_cache_dir: Path) -> pd.DataFrame:
    """Features of the six actors' clips with ``label`` and ``speaker`` columns."""
    paths = [clip for actor in TRAIN_ACTORS + TEST_ACTORS for clip in _clips(ravdess_root, actor)]
    features = FeatureExtractor(cache_dir=feature_cache_dir, n_jobs=2).extract_files(paths)
    meta = [parse_ravdess_name(path) for path in paths]
    return features.assign(label=[m["label"] for m in meta], speaker=[m["speaker"] for m in meta])


def _split(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    return table.drop(columns=["label", "speaker"]), table["label"], table["speaker"]


def test_each_speaker_is_standardized_with_its_own_statistics_only() -> None:
    rng = np.random.default_rng(0)
    a = pd.DataFrame(rng.normal(5.0, 2.0, size=(12, 3)), columns=["x", "y", "z"]).assign(z=7.0)
    b = pd.DataFrame(rng.normal(-40.0, 0.1, size=(15, 3)), columns=["x", "y", "z"])
    table = pd.concat([a, b], ignore_index=True)
    speakers = ["a"] * 12 + ["b"] * 15

    normalized = standardize_per_speaker(table, speakers)

    for speaker, rows in normalized.groupby(np.array(speakers)):
        varying = rows[["x", "y"]] if speaker == "a" else rows
        np.testing.assert_allclose(varying.mean(), 0.0, atol=1e-12)
        np.testing.assert_allclose(varying.std(ddof=0), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(normalized.loc[:11, "z"], 0.0)  # constant for speaker a: centred, not divided by 0
    alone = standardize_per_speaker(a, ["a"] * 12)
    np.testing.assert_allclose(normalized.iloc[:12].to_numpy(), alone.to_numpy(), rtol=1e-12, atol=1e-12)
    mean, std = speaker_statistics(table, speakers)
    assert list(mean.index) == ["a", "b"] and mean.loc["b", "x"] == pytest.approx(b["x"].mean())
    assert std.loc["a", "z"] == 1.0
    assert small_speakers(speakers) == {}
    assert small_speakers(speakers, min_clips=13) == {"a": 12}
    with pytest.raises(SERError, match="one speaker per clip"):
        standardize_per_speaker(table, speakers[:-1])


def test_test_speakers_labels_never_reach_their_own_predictions(six_actors: pd.DataFrame) -> None:
    features, labels, speakers = _split(six_actors)
    honest = evaluate(features, labels, speakers, classifier="logreg", protocol="speaker", n_splits=3, speaker_norm=True)
    first_fold = honest.fold_of == 0
    shuffled = labels.to_numpy().copy()
    shuffled[first_fold] = np.random.default_rng(1).permutation(shuffled[first_fold])

    relabelled = evaluate(features, shuffled, speakers, classifier="logreg", protocol="speaker", n_splits=3, speaker_norm=True)

    assert honest.speaker_norm and honest.summary()["speaker_norm"]
    np.testing.assert_array_equal(relabelled.fold_of, honest.fold_of)
    np.testing.assert_allclose(relabelled.probabilities[first_fold], honest.probabilities[first_fold])
    assert not np.allclose(relabelled.probabilities[~first_fold], honest.probabilities[~first_fold])


def test_a_speakers_predictions_depend_on_that_speaker_only(six_actors: pd.DataFrame) -> None:
    features, labels, speakers = _split(six_actors)
    training = speakers.isin([f"Actor_{a:02d}" for a in TRAIN_ACTORS]).to_numpy()
    model = train(features[training], labels[training], classifier="logreg", speakers=speakers[training], speaker_norm=True)
    held_out = features[~training]

    together = model.predict_proba(held_out, speakers=speakers[~training])
    actor_5 = (speakers[~training] == "Actor_05").to_numpy()
    alone = model.predict_proba(held_out[actor_5], speakers=speakers[~training][actor_5])

    np.testing.assert_allclose(alone.to_numpy(), together[actor_5].to_numpy(), rtol=1e-9, atol=1e-12)
    unnormalized = train(features[training], labels[training], classifier="logreg")
    assert not np.allclose(unnormalized.predict_proba(held_out).to_numpy(), together.to_numpy())
    with pytest.raises(ModelError, match="speaker"):
        model.predict_proba(held_out)
    with pytest.raises(ModelError, match="speaker"):
        train(features[training], labels[training], speaker_norm=True)


def test_a_resumed_run_still_counts_the_skipped_files_in_their_speakers_statistics(
    six_actors: pd.DataFrame, ravdess_root: Path, feature_cache_dir: Path
) -> None:
    from ser_classic.prediction import predict_files

    features, labels, speakers = _split(six_actors)
    training = speakers.isin([f"Actor_{a:02d}" for a in TRAIN_ACTORS]).to_numpy()
    model = train(features[training], labels[training], classifier="logreg", speakers=speakers[training], speaker_norm=True)
    files = [clip for actor in TEST_ACTORS for clip in _clips(ravdess_root, actor)]

    full = list(predict_files(files, model, cache_dir=feature_cache_dir))
    resumed = list(predict_files(files, model, cache_dir=feature_cache_dir, skip={str(path) for path in files[:5]}))

    assert [row["path"] for row in full] == [str(path) for path in files]
    assert resumed == full[5:]


def _invoke(*args: object) -> object:
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    assert result.exit_code == 0, result.stderr + str(result.exception)
    return result


def _accuracy(rows: pd.DataFrame) -> float:
    truth = [parse_ravdess_name(path)["label"] for path in rows["path"]]
    return float(np.mean(rows["emotion"].to_numpy() == np.asarray(truth)))


def test_train_and_predict_with_speaker_norm_round_trip(
    ravdess_root: Path, feature_cache_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _link_actors(ravdess_root, TRAIN_ACTORS, tmp_path / "train")
    test_files = _link_actors(ravdess_root, TEST_ACTORS, tmp_path / "test")
    model_path = tmp_path / "m.joblib"
    common = ["--cache-dir", feature_cache_dir, "--jobs", 1]

    _invoke("train", tmp_path / "train", "--out", model_path, "--classifier", "logreg", "--cv-folds", 2, "--random-split", "--speaker-norm", *common)
    card = json.loads(model_path.with_name("m.card.json").read_text())
    assert card["speaker_norm"] is True and load_model(model_path).speaker_norm
    assert set(card["evaluation"]) == {"speaker", "random"}

    by_folder = pd.read_csv(io.StringIO(_invoke("predict", tmp_path / "test", "--model", model_path, "--format", "csv", *common).stdout))
    assert sorted(by_folder["path"]) == sorted(map(str, test_files))
    assert by_folder["error"].isna().all()
    print("held-out accuracy", _accuracy(by_folder))
    assert _accuracy(by_folder) > 0.4  # four classes: chance is 0.25

    manifest = tmp_path / "files.csv"
    pd.DataFrame(
        {"path": [str(p.relative_to(tmp_path)) for p in test_files], "who": [p.parent.name for p in test_files]}
    ).to_csv(manifest, index=False)
    by_manifest = pd.read_csv(io.StringIO(_invoke(
        "predict", "--manifest", manifest, "--speaker", "who", "--model", model_path, "--format", "csv", *common
    ).stdout))
    np.testing.assert_allclose(by_manifest.filter(like="p_").to_numpy(), by_folder.filter(like="p_").to_numpy(), atol=1e-12)

    pd.DataFrame({"path": [str(p.relative_to(tmp_path)) for p in test_files], "who": "everyone"}).to_csv(manifest, index=False)
    pooled = pd.read_csv(io.StringIO(_invoke(
        "predict", "--manifest", manifest, "--speaker", "who", "--model", model_path, "--format", "csv", *common
    ).stdout))
    assert not np.allclose(pooled.filter(like="p_").to_numpy(), by_folder.filter(like="p_").to_numpy())

    caplog.clear()
    _invoke("predict", *test_files[:3], "--model", model_path, "--format", "csv", *common)
    assert "only 3 file(s)" in caplog.text


def test_expected_calibration_error_is_the_gap_between_confidence_and_accuracy() -> None:
    from ser_classic.evaluation import expected_calibration_error

    classes = ["a", "b"]
    sure = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(["a", "b"], sure, classes) == 0.0
    assert expected_calibration_error(["b", "a"], sure, classes) == 1.0
    # confidence 0.7 (bin 7), right 3 times out of 4: gap 0.05
    seventy = np.array([[0.7, 0.3]] * 4)
    assert expected_calibration_error(["a", "a", "a", "b"], seventy, classes) == pytest.approx(0.05)
