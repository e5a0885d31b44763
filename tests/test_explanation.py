"""Explanations: group attributions that find a planted signal, named features with units and
percentiles (per speaker for a per-speaker model), text and JSON, the ``ser explain`` command,
and the errors of a model that cannot explain."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ser_classic.errors import ModelError
from ser_classic.explanation import Explanation, NamedFeature, explain, explain_features, explanation_markdown, group_shapley_values
from ser_classic.features import FEATURE_FAMILIES, FEATURE_GROUPS, FeatureConfig, feature_names
from ser_classic.features.descriptions import TRACKS, describe_feature, track_of
from ser_classic.model_card import card_markdown, feature_groups
from ser_classic.models import DEFAULT_MODEL_PATH, Model, load_model, read_card, train
from ser_classic.reference import REFERENCE_CLIPS, explanation_reference

NAMES = feature_names()
GROUP_OF = {name: describe_feature(name).group for name in NAMES}


def columns_of(group: str) -> list[str]:
    return [name for name in NAMES if GROUP_OF[name] == group]


def synthetic_table(rng: np.random.Generator, labels: np.ndarray, separations: dict[str, float]) -> pd.DataFrame:
    """Standard normal features; the features of group ``g`` move with the class's code (-1, 0,
    1) so that the class means lie ``separations[g]`` apart over the whole group (each feature
    by ``separations[g] / sqrt(its size)``): the groups not in ``separations`` are pure noise."""
    codes = pd.Series(labels).astype("category").cat.codes.to_numpy() - 1.0
    table = pd.DataFrame(rng.standard_normal((len(labels), len(NAMES))), columns=NAMES)
    for group, separation in separations.items():
        columns = columns_of(group)
        table[columns] += separation / np.sqrt(len(columns)) * codes[:, np.newaxis]
    return table


@pytest.fixture(scope="module")
def planted() -> tuple[Model, pd.DataFrame]:
    """A logistic regression on 1500 rows where pitch carries the label strongly, every other
    group weakly, and tonal (36 features) not at all; 90 held-out rows."""
    rng = np.random.default_rng(0)
    labels = np.array(["angry", "neutral", "sad"] * 530)
    separations = {group: 3.0 for group in FEATURE_GROUPS if group != "tonal"}
    separations["pitch"] = 10.0
    table = synthetic_table(rng, labels, separations)
    model = train(table.iloc[:1500], labels[:1500], classifier="logreg")
    return model, table.iloc[1500:]


def test_the_group_table_holds_every_track_of_the_extractor_exactly_once() -> None:
    listed = [track for members in FEATURE_GROUPS.values() for track in members.tracks]
    assert len(listed) == len(set(listed)) and listed == list(TRACKS)
    for config in (FeatureConfig(), FeatureConfig(n_mfcc=13)):
        tracks_of_names = [track_of(name) for name in feature_names(config)]
        assert None not in tracks_of_names
        assert set(tracks_of_names) == set(listed)
    assert len(FEATURE_GROUPS) == 12 and len(FEATURE_FAMILIES) == 7


def test_families_are_derived_from_the_groups() -> None:
    assert [group for groups in FEATURE_FAMILIES.values() for group in groups] == list(FEATURE_GROUPS)
    for family, groups in FEATURE_FAMILIES.items():
        assert all(FEATURE_GROUPS[group].family == family for group in groups)
        family_tracks = {track for members in FEATURE_GROUPS.values() if members.family == family for track in members.tracks}
        assert family_tracks == {track for group in groups for track in FEATURE_GROUPS[group].tracks}
    for name in NAMES:
        description = describe_feature(name)
        assert description.track in FEATURE_GROUPS[description.group].tracks
        assert description.family == FEATURE_GROUPS[description.group].family
    assert FEATURE_FAMILIES["cepstral"] == ("MFCC", "MFCC dynamics", "MFCC of unvoiced frames")


def test_descriptions_give_labels_and_units() -> None:
    described = {name: (describe_feature(name).label, describe_feature(name).unit) for name in NAMES}
    assert described["f0_semitone_range"] == ("pitch range", "semitones")
    assert described["f0_semitone_slope"] == ("pitch slope", "semitones/s")
    assert described["f0_p50"] == ("pitch median", "Hz")
    assert described["rms_db_std"] == ("loudness variation", "dB")
    assert described["contrast_03_mean"] == ("spectral contrast band 3 mean", "dB")
    assert not describe_feature("mfcc_delta_01_std").named and describe_feature("mfcc_delta_01_std").group == "MFCC dynamics"


def card_group_rows(card: dict[str, object]) -> dict[str, tuple[str, int]]:
    """Group -> (family, features) as the card's Markdown lists them."""
    rows = re.findall(r"^\| ([^|]+) \| ([^|]+) \| (\d+) \|$", card_markdown(card), flags=re.MULTILINE)
    return {group: (family, int(count)) for group, family, count in rows}


def test_the_card_and_the_explanation_name_the_same_groups(planted: tuple[Model, pd.DataFrame], tmp_path: Path) -> None:
    model, held_out = planted
    model.save(tmp_path / "m.joblib")
    card = read_card(tmp_path / "m.joblib")
    explanation = explain_features(held_out.iloc[0], load_model(tmp_path / "m.joblib"))
    card_partition: dict[str, set[str]] = {}
    for name, group in feature_groups(card["feature_names"]).items():
        card_partition.setdefault(group, set()).add(name)
    explained_partition: dict[str, set[str]] = {}
    for name in model.feature_names:
        explained_partition.setdefault(describe_feature(name).group, set()).add(name)
    assert card_partition == explained_partition
    assert set(explanation.groups) == set(card_partition) == set(card["explanation"]["groups"])
    rows = card_group_rows(card)
    assert list(rows) == list(card["explanation"]["groups"]) == list(FEATURE_GROUPS)
    assert rows == {group: (FEATURE_GROUPS[group].family, len(names)) for group, names in card_partition.items()}
    assert all(feature.group == describe_feature(feature.name).group for feature in explanation.features)


def test_a_card_saved_before_the_one_table_lists_the_groups_explanations_name() -> None:
    card = read_card(DEFAULT_MODEL_PATH)  # written by the old code: its groups are derived on reading
    assert list(card_group_rows(card)) == list(FEATURE_GROUPS)
    assert sum(count for _, count in card_group_rows(card).values()) == card["n_features"]


def test_planted_label_group_ranks_first_and_noise_group_last(planted: tuple[Model, pd.DataFrame]) -> None:
    model, held_out = planted
    firsts, lasts = [], []
    for _, row in held_out.iterrows():
        groups = explain_features(row, model).groups
        by_size = sorted(groups, key=lambda group: abs(groups[group]), reverse=True)
        firsts.append(by_size[0] == "pitch")
        lasts.append(by_size[-1] == "tonal")
    assert np.mean(firsts) >= 0.95
    assert np.mean(lasts) >= 0.9


def test_contributions_add_up_to_probability_minus_baseline_and_repeat(planted: tuple[Model, pd.DataFrame]) -> None:
    model, held_out = planted
    row = held_out.iloc[0]
    explanation = explain_features(row, model)
    assert list(explanation.groups) and set(explanation.groups) == set(FEATURE_GROUPS)
    assert sum(explanation.groups.values()) == pytest.approx(explanation.probability - explanation.baseline, abs=1e-9)
    assert list(explanation.groups.values()) == sorted(explanation.groups.values(), reverse=True)
    predicted = model.predict_proba(row.to_frame().T).iloc[0]
    assert explanation.emotion == predicted.idxmax()
    assert explanation.probabilities == pytest.approx(predicted.to_dict(), abs=1e-12)
    assert explain_features(row, model) == explanation


def test_shapley_values_of_an_additive_score_are_exact() -> None:
    rng = np.random.default_rng(1)
    groups = np.array([0, 0, 1, 2, 2, 2, 3])
    weights = rng.standard_normal(groups.size)
    clip, reference = rng.standard_normal(groups.size), rng.standard_normal((5, groups.size))
    values, baseline = group_shapley_values(lambda rows: rows @ weights, clip, reference, groups, 4, seed=3)
    expected = [np.sum((weights * (clip - reference.mean(axis=0)))[groups == g]) for g in range(4)]
    np.testing.assert_allclose(values, expected, atol=1e-12)
    assert baseline == pytest.approx(float(np.mean(reference @ weights)))


def test_named_features_carry_value_unit_and_percentile(planted: tuple[Model, pd.DataFrame]) -> None:
    model, held_out = planted
    explanation = explain_features(held_out.iloc[0], model)
    assert explanation.features, "pitch carries the label: some pitch feature must be named"
    for feature in explanation.features:
        assert feature.effect > 0 and 0 <= feature.percentile <= 100
        assert feature.value == held_out.iloc[0][feature.name]
        assert describe_feature(feature.name).named
    assert explanation.features[0].group == "pitch"
    phrase = NamedFeature("f0_semitone_range", "pitch range", "semitones", "pitch", 11.23, 93.2, 0.1).phrase()
    assert phrase == "pitch range very high (11.2 semitones, 93rd percentile)"
    assert NamedFeature("f0_p50", "pitch median", "Hz", "pitch", 81.0, 0.0, 0.1).phrase().endswith("below every training clip)")
    assert "12th percentile" in NamedFeature("zcr_p50", "zero-crossing rate median", "", "zero-crossing rate", 0.05, 11.6, 0.1).phrase()


def test_text_json_markdown_and_figure(planted: tuple[Model, pd.DataFrame]) -> None:
    from ser_classic.plots import explanation_figure

    model, held_out = planted
    explanation = explain_features(held_out.iloc[0], model, path="clip.wav")
    lines = explanation.to_text().splitlines()
    assert re.fullmatch(rf"{explanation.emotion} \(0\.\d\d\): pitch .+ percentile\)(, .+)?", lines[0])
    assert lines[-1] == "Percentiles among the model's training clips."
    assert len(lines) == 3 + len(FEATURE_GROUPS)
    as_json = json.loads(json.dumps(explanation.to_dict()))
    assert as_json["path"] == "clip.wav" and as_json["emotion"] == explanation.emotion
    assert [item["group"] for item in as_json["groups"]] == list(explanation.groups)
    assert {"name", "label", "value", "unit", "percentile", "effect", "group"} <= set(as_json["features"][0])
    markdown = explanation_markdown(explanation)
    assert all(f"| {group} | {value:+.2f} |" in markdown for group, value in explanation.groups.items())
    assert "not the speaker's feelings" in markdown
    figure = explanation_figure(explanation)
    assert len(figure.axes[0].patches) == len(FEATURE_GROUPS)


def test_model_file_keeps_reference_data_and_the_card_stays_small(planted: tuple[Model, pd.DataFrame], tmp_path: Path) -> None:
    model, held_out = planted
    model.save(tmp_path / "m.joblib")
    loaded = load_model(tmp_path / "m.joblib")
    assert loaded.reference is not None and loaded.reference.rows.shape == (REFERENCE_CLIPS, len(NAMES))
    np.testing.assert_array_equal(loaded.reference.percentiles, model.reference.percentiles)
    assert explain_features(held_out.iloc[0], loaded) == explain_features(held_out.iloc[0], model)
    card = read_card(tmp_path / "m.joblib")
    assert card["explanation"]["reference_clips"] == REFERENCE_CLIPS
    assert len(json.dumps(card["explanation"])) < 1000


def test_reference_sample_takes_the_classes_in_turn() -> None:
    labels = np.array(["angry"] * 100 + ["sad"] * 20 + ["calm"] * 5)
    inputs = np.arange(len(labels), dtype=float)[:, np.newaxis]  # a row's value is its index
    reference = explanation_reference(inputs, labels, seed=0)
    counts = Counter(labels[reference.rows[:, 0].astype(int)])
    assert sum(counts.values()) == REFERENCE_CLIPS and counts["calm"] == 5 and abs(counts["angry"] - counts["sad"]) <= 1
    assert reference.percentiles.shape == (101, 1) and reference.percentiles[50, 0] == np.median(inputs)
    assert np.array_equal(explanation_reference(inputs, labels, seed=0).rows, reference.rows)


def test_model_without_reference_data_says_to_retrain(planted: tuple[Model, pd.DataFrame], tmp_path: Path) -> None:
    model, held_out = planted
    old = dataclasses.replace(model, reference=None, card={})
    with pytest.raises(ModelError, match="retrain"):
        explain_features(held_out.iloc[0], old)
    old.save(tmp_path / "old.joblib")
    assert "explanation" not in read_card(tmp_path / "old.joblib")
    from ser_classic.model_file import ModelFile

    with pytest.raises(ModelError, match=r"old\.joblib: .*retrain"):
        explain(tmp_path / "missing-clip.wav", ModelFile.open(tmp_path / "old.joblib"))


def test_per_speaker_percentiles_are_relative_to_the_speaker() -> None:
    """Pitch says the emotion only relative to each speaker's usual pitch: a low-voiced
    speaker's angry clip is low among all training clips yet high for that speaker."""
    rng = np.random.default_rng(2)
    pitch = columns_of("pitch")
    tables, labels, speakers = [], [], []
    for speaker, base_hz in enumerate([120, 150, 180, 210, 240, 270, 300]):
        emotions = np.array(["angry", "sad"] * 10)
        table = pd.DataFrame(rng.standard_normal((20, len(NAMES))), columns=NAMES)
        table[pitch] = base_hz + np.where(emotions == "angry", 25.0, -25.0)[:, np.newaxis] + 5 * rng.standard_normal((20, len(pitch)))
        tables.append(table)
        labels += list(emotions)
        speakers += [f"s{speaker}"] * 20
    training = pd.concat(tables, ignore_index=True)
    model = train(training, labels, classifier="logreg", speakers=speakers, speaker_norm=True)
    new_speaker = training.iloc[:12].copy()
    new_speaker[pitch] = np.repeat(90 + np.array([25.0, -25.0] * 6)[:, np.newaxis], len(pitch), axis=1)
    clip, others = new_speaker.iloc[0], new_speaker.iloc[1:]
    with pytest.raises(ModelError, match="other clips of its speaker"):
        explain_features(clip, model)
    explanation = explain_features(clip, model, speaker_features=others)
    assert explanation.emotion == "angry" and explanation.relative_to_speaker
    named_pitch = [feature for feature in explanation.features if feature.group == "pitch"]
    assert named_pitch, explanation.to_text()
    for feature in named_pitch:
        assert (training[feature.name] < feature.value).mean() < 0.2  # low among all training clips...
        assert feature.percentile > 60  # ...high for this speaker (the upper of its two modes: 75th)
    assert "speaker's own clips" in explanation.to_text()


# --- the ser command ------------------------------------------------------------------------


def ser_process(*args: object) -> subprocess.CompletedProcess[str]:
    """The installed ``ser`` script in a new process."""
    script = Path(sys.executable).with_name("ser")
    command = [str(script)] if script.is_file() else [shutil.which("ser") or "ser"]
    return subprocess.run([*command, *map(str, args)], check=False, capture_output=True, text=True, timeout=120)


def test_ser_explain_prints_text_and_json(angry_clip: Path, small_model_path: Path, feature_cache_dir: Path) -> None:
    common = ["--model", small_model_path, "--cache-dir", feature_cache_dir]
    as_json = ser_process("explain", angry_clip, "--format", "json", *common)
    assert as_json.returncode == 0, as_json.stderr
    result = json.loads(as_json.stdout)
    assert result["path"] == str(angry_clip) and result["emotion"] in load_model(small_model_path).classes
    assert sum(item["contribution"] for item in result["groups"]) == pytest.approx(result["probability"] - result["baseline"])
    as_text = ser_process("explain", angry_clip, *common)
    assert as_text.returncode == 0, as_text.stderr
    assert as_text.stdout.startswith(f"{result['emotion']} ({result['probability']:.2f}): ")


def test_ser_explain_with_an_old_model_exits_2_with_one_line(angry_clip: Path, small_model_path: Path, tmp_path: Path) -> None:
    old = dataclasses.replace(load_model(small_model_path), reference=None)
    old.save(tmp_path / "old.joblib")
    finished = ser_process("explain", angry_clip, "--model", tmp_path / "old.joblib")
    assert finished.returncode == 2 and finished.stdout == ""
    assert finished.stderr.count("\n") == 1
    assert finished.stderr.startswith(f"ser: error: {tmp_path / 'old.joblib'}: ") and "retrain" in finished.stderr


def test_ser_explain_with_a_per_speaker_model_needs_the_speakers_clips(
    small_training_set: tuple[pd.DataFrame, list[str]], actor_01: Path, feature_cache_dir: Path, tmp_path: Path
) -> None:
    features, labels = small_training_set
    speakers = [Path(path).parent.name for path in features.index]
    train(features, labels, classifier="logreg", speakers=speakers, speaker_norm=True).save(tmp_path / "norm.joblib")
    clips = sorted(actor_01.glob("03-01-0[1-5]-01-01-*.flac"))
    folder = tmp_path / "speaker"
    folder.mkdir()
    for clip in clips:
        (folder / clip.name).symlink_to(clip)
    common = ["--model", tmp_path / "norm.joblib", "--cache-dir", feature_cache_dir, "--format", "json"]
    alone = ser_process("explain", folder / clips[0].name, *common)
    assert alone.returncode == 2 and "other clips of its speaker" in alone.stderr
    together = ser_process("explain", folder / clips[0].name, "--speaker-clips", folder, *common)
    assert together.returncode == 0, together.stderr
    assert "speaker's own clips" in json.loads(together.stdout)["percentiles_of"]


def test_explain_a_signal_matches_the_file(angry_clip: Path, small_model_path: Path) -> None:
    from ser_classic import audio

    model = load_model(small_model_path)
    signal = audio.load(angry_clip, sample_rate=model.feature_config.sample_rate)
    from_signal = explain(signal, model, sample_rate=model.feature_config.sample_rate)
    from_file = explain(angry_clip, model)
    assert from_signal.emotion == from_file.emotion
    assert from_signal.probability == pytest.approx(from_file.probability, abs=1e-3)
    assert isinstance(from_file, Explanation) and from_file.path == str(angry_clip)
