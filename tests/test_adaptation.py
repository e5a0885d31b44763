"""Adapting a model to the user's labelled clips (``ser adapt``, :mod:`ser_classic.adaptation`):
the recipe on planted data, the honest estimate, labels, bad input, and the adapted model as
an ordinary model file."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ser_classic.adaptation import MIN_NEW_CLASS_CLIPS, UNESTIMATED_BASE_WEIGHT, adapt, adapt_features
from ser_classic.cli import app
from ser_classic.corpus import canonical_label
from ser_classic.errors import SERError
from ser_classic.features import feature_names
from ser_classic.models import Model, load_model, train

NAMES = feature_names()
CLASSES = ("angry", "happy", "sad")


def planted(n_per_class: int, shift: float, seed: int, speakers: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clips of 3 classes: the class moves features 0-9 by 1.5 units each (a weak cue in noise);
    ``shift`` moves every feature by a fixed random amount (a recording channel)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(CLASSES, n_per_class)
    values = rng.normal(0.0, 1.0, (labels.size, len(NAMES)))
    for index, label in enumerate(CLASSES):
        values[labels == label, 10 * index : 10 * index + 10] += 1.5
    values += shift * np.random.default_rng(99).normal(0.0, 1.0, len(NAMES))
    return values, labels, np.array([f"s{k % speakers}" for k in range(labels.size)])


@pytest.fixture(scope="module")
def base() -> Model:
    values, labels, speakers = planted(60, shift=0.0, seed=0)
    return train(pd.DataFrame(values, columns=NAMES), labels, classifier="logreg", speakers=speakers)


def accuracy(model: Model, values: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(model.predict_proba(pd.DataFrame(values, columns=NAMES)).idxmax(axis=1).to_numpy() == labels))


def test_labels_are_matched_ignoring_case_with_the_usual_synonyms() -> None:
    assert [canonical_label(name) for name in ("Anger", " fear", "HAPPINESS", "Sadness", "neutral", "Angry", "whisper")] == [
        "angry", "fearful", "happy", "sad", "neutral", "angry", "whisper"]


def test_clips_of_a_new_channel_make_the_model_work_there_and_the_estimate_says_so(base: Model) -> None:
    user_values, user_labels, user_speakers = planted(10, shift=3.0, seed=1)
    test_values, test_labels, _ = planted(40, shift=3.0, seed=2)
    adapted = adapt_features(base, base.training_table, user_values, user_labels, user_speakers)
    assert accuracy(adapted, test_values, test_labels) > accuracy(base, test_values, test_labels) + 0.2
    estimate = adapted.card["adaptation"]["estimate"]
    assert estimate["possible"] and estimate["n_clips"] == 30 and "grouped by speaker" in estimate["reason"]
    assert estimate["adapted_uar"] > estimate["base_uar"] + 0.2


def test_clips_that_do_not_help_leave_the_base(base: Model) -> None:
    """Labels drawn at random teach nothing: the estimate finds no gain and the base keeps all its weight."""
    user_values, _, user_speakers = planted(10, shift=0.0, seed=3)
    shuffled = np.random.default_rng(4).permutation(np.repeat(CLASSES, 10))
    adapted = adapt_features(base, base.training_table, user_values, shuffled, user_speakers)
    assert adapted.card["adaptation"]["settings"]["base_weight"] == 1.0
    test_values, _, _ = planted(20, shift=0.0, seed=5)
    frame = pd.DataFrame(test_values, columns=NAMES)
    np.testing.assert_allclose(adapted.predict_proba(frame).to_numpy(), base.predict_proba(frame).to_numpy(), atol=1e-9)


def test_three_clips_per_class_from_several_speakers_give_as_many_grouped_folds_as_clips(base: Model) -> None:
    """Fewer clips in a class than the usual 5 folds: the folds, grouped by speaker, are fewer."""
    values, labels, speakers = planted(3, shift=3.0, seed=7, speakers=6)
    estimate = adapt_features(base, base.training_table, values, labels, speakers).card["adaptation"]["estimate"]
    assert estimate["possible"] and estimate["n_folds"] == 3 and "grouped by speaker" in estimate["reason"]


def test_a_class_with_one_clip_makes_the_estimate_impossible_and_says_why(base: Model) -> None:
    values, labels, speakers = planted(4, shift=1.0, seed=6)
    keep = np.r_[np.flatnonzero(labels != "sad"), np.flatnonzero(labels == "sad")[:1]]
    adapted = adapt_features(base, base.training_table, values[keep], labels[keep], speakers[keep])
    estimate = adapted.card["adaptation"]["estimate"]
    assert not estimate["possible"] and "'sad' has 1 clip" in estimate["reason"] and "at least 2" in estimate["reason"]
    assert adapted.card["adaptation"]["settings"]["base_weight"] == UNESTIMATED_BASE_WEIGHT


@pytest.mark.parametrize(("labels", "message"), [([], "no usable clip"), (["sad"] * 4, "at least two classes")])
def test_no_clip_or_one_class_is_refused(base: Model, labels: list[str], message: str) -> None:
    values = np.zeros((len(labels), len(NAMES)))
    with pytest.raises(SERError, match=message):
        adapt_features(base, base.training_table, values, labels)


def test_the_adapted_model_is_an_ordinary_model_file_with_its_base_on_the_card(base: Model, tmp_path: Path) -> None:
    base.save(tmp_path / "base.joblib")
    values, labels, speakers = planted(8, shift=2.0, seed=7)
    adapted = adapt_features(load_model(tmp_path / "base.joblib"), base.training_table, values, labels, speakers, name="mine")
    adapted.save(tmp_path / "mine.joblib")
    card = json.loads((tmp_path / "mine.card.json").read_text())
    base_card = json.loads((tmp_path / "base.card.json").read_text())
    assert card["name"] == "mine" and card["classifier"] == "adapted"
    assert card["adaptation"]["base"]["sha256"] == base_card["artifact"]["sha256"]
    assert card["adaptation"]["user_clips"] == {"angry": 8, "happy": 8, "sad": 8} and card["adaptation"]["n_user_speakers"] == 6
    assert card["training"]["n_clips"] == 180 + 24 and card["training_table"]["n_clips"] == 204
    reloaded = load_model(tmp_path / "mine.joblib")
    frame = pd.DataFrame(values, columns=NAMES)
    np.testing.assert_allclose(reloaded.predict_proba(frame).to_numpy(), adapted.predict_proba(frame).to_numpy(), atol=1e-6)


# --- ser adapt on real files ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def labelled(ravdess_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ROOT/<label>/<speaker>/ links to clips of actors 23-24: folder names in other words and
    cases ("Anger", "sadness"), a label the small base model lacks with too few clips ("calm", 2),
    an unreadable file and a silent one."""
    import soundfile

    root = tmp_path_factory.mktemp("labelled")
    for code, folder in (("05", "Anger"), ("04", "sadness"), ("03", "HAPPY"), ("01", "neutral"), ("02", "calm")):
        for actor in (23, 24):
            clips = sorted((ravdess_root / f"Actor_{actor}").glob(f"03-01-{code}-*.flac"))[: 1 if code == "02" else 3]
            (root / folder / f"actor{actor}").mkdir(parents=True, exist_ok=True)
            for clip in clips:
                os.symlink(clip, root / folder / f"actor{actor}" / clip.name)
    (root / "neutral" / "actor23" / "broken.wav").write_bytes(b"not audio at all")
    soundfile.write(root / "sadness" / "actor24" / "silent.wav", np.zeros(16000), 16000)
    return root


def test_ser_adapt_writes_a_model_that_ser_predict_and_info_take(
    labelled: Path, small_model_path: Path, tmp_path: Path, feature_cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "mine.joblib"
    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(app, ["adapt", str(labelled), "--out", str(out), "--model", str(small_model_path),
                                          "--cache-dir", str(feature_cache_dir), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    left_out = [record.getMessage() for record in caplog.records if "left out" in record.getMessage()]
    assert len(left_out) == 3 and any("broken.wav: not a readable audio file" in line for line in left_out)
    assert any("silent.wav: digital silence" in line for line in left_out) and any("'calm': 2 clip(s)" in line for line in left_out)
    assert "adapted small.joblib to 24 clips of yours (angry 6, happy 6, neutral 6, sad 6)" in result.stdout
    assert "estimate on your" in result.stdout and "grouped by speaker, 2 speakers" in result.stdout
    card = json.loads(out.with_name("mine.card.json").read_text())
    assert card["adaptation"]["user_clips"] == {"angry": 6, "happy": 6, "neutral": 6, "sad": 6}
    predicted = CliRunner().invoke(app, ["predict", str(labelled / "Anger"), "--model", str(out), "--format", "jsonl", "--jobs", "1"])
    assert predicted.exit_code == 0, predicted.output
    assert len(predicted.stdout.splitlines()) == 6
    info = CliRunner().invoke(app, ["info", str(out)])
    assert info.exit_code == 0 and "adapted    from small.joblib" in info.stdout and "estimate" in info.stdout


@pytest.mark.parametrize(("folders", "message"), [(("angry",), "at least two classes"), (("whisper",), "no usable clip")])
def test_ser_adapt_without_two_usable_classes_exits_2_and_writes_nothing(
    labelled: Path, small_model_path: Path, tmp_path: Path, folders: tuple[str, ...], message: str
) -> None:
    """One class only, or only a label the base lacks with too few clips: a clear message, no file."""
    root = tmp_path / "clips"
    for folder in folders:
        (root / folder).mkdir(parents=True)
        for clip in sorted((labelled / "Anger").rglob("*.flac"))[:3]:
            os.symlink(clip.resolve(), root / folder / clip.name)
    out = tmp_path / "out" / "never.joblib"
    result = CliRunner().invoke(app, ["adapt", str(root), "--kind", "folders", "--out", str(out), "--model", str(small_model_path), "--jobs", "1"])
    assert result.exit_code == 2
    assert message in result.stderr
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_a_label_the_base_lacks_becomes_a_class_with_enough_clips(small_model_path: Path, labelled: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, feature_cache_dir: Path) -> None:
    table = pd.DataFrame([
        {"path": str(path), "label": path.parent.parent.name, "speaker": path.parent.name} for path in labelled.rglob("*.flac")
    ])
    table.loc[table["label"] == "HAPPY", "label"] = "surprised"  # 6 clips of a class the small model lacks
    with caplog.at_level(logging.WARNING):
        model = adapt(table, small_model_path, cache_dir=feature_cache_dir)
    assert "surprised" in model.classes and "calm" not in model.classes
    assert model.card["adaptation"]["new_classes"] == ["surprised"]
    assert f"its {6} clips make a new class" in caplog.text and MIN_NEW_CLASS_CLIPS <= 6
