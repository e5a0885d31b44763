"""Model artifacts are verified before use, and training is deterministic.

Every refusal that the card alone can decide (hash, extractor version, feature names, missing
card) is proved to happen *before unpickling*: the model file is replaced by a pickle whose
loading would create a marker folder, and the marker must not appear. A control test shows
that the same pickle, once the card vouches for it, is indeed executed on load: the card's
SHA-256 is what stands between a modified file and ``pickle.load``.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import DATA_ROOT
from ser_classic.cli import app
from ser_classic.errors import ModelError
from ser_classic.features import EXTRACTOR_VERSION
from ser_classic.features.cache import file_sha256
from ser_classic.models import CLASSIFIERS, card_path, load_model, read_card, train


class _CreatesMarkerWhenUnpickled:
    """Unpickling an instance calls ``os.mkdir(marker)``: a visible side effect."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.marker),)


@pytest.fixture()
def model_path(small_model_path: Path, tmp_path: Path) -> Path:
    """A private copy of the small model and its card."""
    target = tmp_path / "model" / "small.joblib"
    target.parent.mkdir()
    shutil.copy(small_model_path, target)
    shutil.copy(card_path(small_model_path), card_path(target))
    return target


def _write_card(model: Path, card: dict) -> None:
    card_path(model).write_text(json.dumps(card))


def _plant_side_effect_pickle(model: Path, marker: Path, *, vouch: bool) -> None:
    """Replace the model file by a side-effect pickle; with ``vouch`` the card's hash matches it."""
    model.write_bytes(pickle.dumps(_CreatesMarkerWhenUnpickled(marker)))
    if vouch:
        card = read_card(model)
        card["artifact"]["sha256"] = file_sha256(model)
        _write_card(model, card)


def test_saved_model_loads_and_predicts_as_trained(small_training_set, tmp_path: Path) -> None:
    features, labels = small_training_set
    model = train(features, labels, classifier="logreg", seed=0)
    model.save(tmp_path / "m.joblib")
    loaded = load_model(tmp_path / "m.joblib")
    assert loaded.classes == model.classes and loaded.feature_names == model.feature_names
    np.testing.assert_array_equal(loaded.predict_proba(features).to_numpy(), model.predict_proba(features).to_numpy())


@pytest.mark.parametrize("damage", ["one flipped byte", "truncated", "one byte appended"])
def test_modified_model_bytes_are_refused(model_path: Path, damage: str) -> None:
    data = bytearray(model_path.read_bytes())
    if damage == "one flipped byte":
        data[len(data) // 2] ^= 0x01
    elif damage == "truncated":
        data = data[: len(data) - 100]
    else:
        data += b"\x00"
    model_path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256 of the file does not match its model card") as raised:
        load_model(model_path)
    assert str(model_path) in str(raised.value)


def test_hash_mismatch_is_refused_before_unpickling(model_path: Path, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    _plant_side_effect_pickle(model_path, marker, vouch=False)
    with pytest.raises(ModelError, match="SHA-256"):
        load_model(model_path)
    assert not marker.exists()


def test_control_a_vouched_pickle_is_executed_then_rejected(model_path: Path, tmp_path: Path) -> None:
    """The marker pickle does run when the card's hash matches it: the check above is what
    prevented it. (Hence the trust model: whoever can rewrite both files can run code.)"""
    marker = tmp_path / "unpickled"
    _plant_side_effect_pickle(model_path, marker, vouch=True)
    with pytest.raises(ModelError, match="not a ser-classic model artifact"):
        load_model(model_path)
    assert marker.is_dir()


def _card_for_other_version(card: dict) -> None:
    card["feature_config"]["version"] = f"{EXTRACTOR_VERSION}-other"


def _card_with_renamed_feature(card: dict) -> None:
    card["feature_names"][3] = "loudness_mean"


def _card_with_reordered_features(card: dict) -> None:
    card["feature_names"][0], card["feature_names"][1] = card["feature_names"][1], card["feature_names"][0]


def _card_with_unknown_setting(card: dict) -> None:
    card["feature_config"]["window"] = "kaiser"


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (_card_for_other_version, "feature extractor version"),
        (_card_with_renamed_feature, "feature names differ"),
        (_card_with_reordered_features, "feature names differ"),
        (_card_with_unknown_setting, "feature settings are not this extractor's"),
    ],
    ids=["other extractor version", "renamed feature", "reordered features", "unknown setting"],
)
def test_incompatible_card_is_refused_before_unpickling(model_path: Path, tmp_path: Path, edit, reason: str) -> None:
    marker = tmp_path / "unpickled"
    _plant_side_effect_pickle(model_path, marker, vouch=True)
    card = read_card(model_path)
    edit(card)
    _write_card(model_path, card)
    with pytest.raises(ModelError, match=reason):
        load_model(model_path)
    assert not marker.exists()


def test_missing_card_is_refused_before_unpickling(model_path: Path, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    _plant_side_effect_pickle(model_path, marker, vouch=True)
    card_path(model_path).unlink()
    with pytest.raises(ModelError, match="model card small.card.json is missing"):
        load_model(model_path)
    assert not marker.exists()


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"artifact": "abc", "feature_config": 7}'])
def test_malformed_card_is_refused_with_model_error(model_path: Path, text: str) -> None:
    card_path(model_path).write_text(text)
    with pytest.raises(ModelError):
        load_model(model_path)


def test_missing_model_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model file"):
        load_model(tmp_path / "absent.joblib")


def test_artifact_whose_features_disagree_with_its_card_is_refused(model_path: Path) -> None:
    """Names stored inside the pickle are checked too (this one is necessarily after unpickling)."""
    import joblib

    artifact = joblib.load(model_path)
    artifact["feature_names"] = list(reversed(artifact["feature_names"]))
    joblib.dump(artifact, model_path)
    card = read_card(model_path)
    card["artifact"]["sha256"] = file_sha256(model_path)
    _write_card(model_path, card)
    with pytest.raises(ModelError, match="artifact and model card disagree"):
        load_model(model_path)


def test_cli_refuses_a_tampered_model_in_one_line(model_path: Path, angry_clip: Path) -> None:
    data = bytearray(model_path.read_bytes())
    data[-10] ^= 0xFF
    model_path.write_bytes(bytes(data))
    result = CliRunner().invoke(app, ["predict", str(angry_clip), "--model", str(model_path), "--format", "csv", "--jobs", "1"])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "SHA-256" in lines[0] and str(model_path) in lines[0]


@pytest.mark.parametrize("classifier", sorted(CLASSIFIERS))
def test_training_twice_with_the_same_seed_gives_identical_probabilities(small_training_set, classifier: str) -> None:
    features, labels = small_training_set
    first = train(features, labels, classifier=classifier, seed=7).predict_proba(features)
    second = train(features, labels, classifier=classifier, seed=7).predict_proba(features)
    np.testing.assert_array_equal(first.to_numpy(), second.to_numpy())
    assert list(first.columns) == list(second.columns)


def test_the_seed_matters_for_a_randomized_classifier(small_training_set) -> None:
    """Sensitivity check of the test above: XGBoost subsamples rows and columns by the seed."""
    features, labels = small_training_set
    first = train(features, labels, classifier="xgboost", seed=1).predict_proba(features)
    second = train(features, labels, classifier="xgboost", seed=2).predict_proba(features)
    assert not np.array_equal(first.to_numpy(), second.to_numpy())


def test_the_same_train_command_in_two_fresh_processes_gives_the_same_model(small_training_set, tmp_path: Path) -> None:
    """``ser train`` run twice as new processes (other hash seeds, so other set and dict orders):
    the two models give the same probabilities bit for bit. Training twice in one process
    could not show a dependence on process state."""
    features, labels = small_training_set
    manifest = tmp_path / "corpus.csv"
    manifest.write_text("path,label\n" + "".join(f"{path},{label}\n" for path, label in zip(features.index, labels)))
    project = str(Path(__file__).resolve().parents[1])
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [project, os.environ.get("PYTHONPATH")]))}
    models = [tmp_path / run / "model.joblib" for run in ("first", "second")]
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", "from ser_classic.cli import main; main()", "train", str(manifest), "--out", str(model),
             "--cv-folds", "0", "--seed", "3", "--jobs", "1", "--cache-dir", str(tmp_path / "cache" / str(hash_seed))],
            env={**environment, "PYTHONHASHSEED": str(hash_seed)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for hash_seed, model in enumerate(models, start=1)
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr[-2000:]
    first, second = (load_model(model) for model in models)
    assert first.classes == second.classes
    np.testing.assert_array_equal(first.predict_proba(features).to_numpy(), second.predict_proba(features).to_numpy())
    assert read_card(models[0])["classifier"] == "ensemble"  # the default configuration, with its randomized MLP


@pytest.mark.parametrize("name", ["default", "ravdess8"])
def test_a_bundled_model_was_trained_on_the_vectors_this_extractor_computes(name: str, ravdess_root: Path, crema_d_root: Path) -> None:
    """Its training table matches the card (SHA-256 and fingerprint), and a sample of its
    training clips, extracted again now, gives the stored vectors: a model trained on stale
    cached vectors (an extractor change that kept its version) fails here."""
    from numpy.testing import assert_allclose

    from ser_classic.features import FeatureExtractor
    from ser_classic.model_file import BUNDLED_MODELS
    from ser_classic.training_table import TrainingTable, training_table_path

    card = read_card(BUNDLED_MODELS[name])
    table = TrainingTable.load(training_table_path(BUNDLED_MODELS[name]), card["training_table"])
    assert table.features.shape == (card["training"]["n_clips"], card["n_features"])
    assert sorted(set(table.labels)) == sorted(card["classes"])
    sample = np.linspace(0, len(table.clips) - 1, 16).astype(int)
    again = FeatureExtractor(n_jobs=2).extract_files([DATA_ROOT / clip for clip in table.clips[sample]])
    assert_allclose(again.to_numpy(np.float32), table.features[sample], rtol=1e-5, atol=1e-5)
