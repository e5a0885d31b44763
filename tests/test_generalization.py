"""Beyond one corpus and one format: CREMA-D, several corpora, the corpus protocol, per-batch
normalization, files without speech, and the same clip in the formats people save."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC
from typer.testing import CliRunner

from ser_classic.cli import app
from ser_classic.corpus import parse_crema_d_name, read_corpora, read_corpus, select_classes
from ser_classic.errors import CorpusError, SERError
from ser_classic.evaluation import evaluate
from ser_classic.features import FeatureExtractor
from ser_classic.prediction import NO_SPEECH, predict_files

# --- corpora ---------------------------------------------------------------------------------


def test_crema_d_names_give_actor_emotion_and_sentence() -> None:
    assert parse_crema_d_name("x/1001_DFA_ANG_XX.flac") == {
        "label": "angry", "speaker": "1001", "sentence": "DFA", "intensity": "XX",
    }
    with pytest.raises(CorpusError, match="not a CREMA-D file name"):
        parse_crema_d_name("1001_DFA_XYZ_XX.wav")


def test_crema_d_folder_is_recognized_with_all_actors_and_six_emotions(crema_d_root: Path) -> None:
    table = read_corpus(crema_d_root)
    assert len(table) == 2184
    assert table["speaker"].nunique() == 91
    assert set(table["corpus"]) == {"crema-d"}
    assert table["label"].value_counts().to_dict() == dict.fromkeys(["angry", "disgust", "fearful", "happy", "neutral", "sad"], 364)


def test_two_corpora_make_one_table_with_distinct_speakers_and_shared_classes(ravdess_root: Path, crema_d_root: Path) -> None:
    table = read_corpora([ravdess_root, crema_d_root])
    assert table["corpus"].value_counts().to_dict() == {"crema-d": 2184, "ravdess": 1440}
    assert table["speaker"].nunique() == 24 + 91
    assert all(speaker.startswith(corpus + "/") for corpus, speaker in zip(table["corpus"], table["speaker"]))
    shared = select_classes(table, "shared")
    assert sorted(set(shared["label"])) == ["angry", "disgust", "fearful", "happy", "neutral", "sad"]
    assert len(shared) == 2184 + 1440 - 2 * 192  # RAVDESS loses calm and surprised
    with pytest.raises(CorpusError, match="share a name"):
        read_corpora([ravdess_root, ravdess_root])


# --- the corpus protocol and per-batch normalization -------------------------------------------


def planted_corpora(offset: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two corpora of 3 classes, 8 speakers each: the class moves feature 0 by one unit; the
    second corpus adds ``offset`` to every feature (a recording channel)."""
    rng = np.random.default_rng(0)
    rows, meta = [], []
    for corpus_index, corpus in enumerate(("a", "b")):
        for speaker in range(8):
            for label_index, label in enumerate(("angry", "neutral", "sad")):
                for _ in range(4):
                    values = rng.normal(0.0, 0.3, 5)
                    values[0] += label_index
                    rows.append(values + offset * corpus_index)
                    meta.append({"label": label, "speaker": f"{corpus}/{speaker}", "corpus": corpus})
    return pd.DataFrame(rows, columns=[f"f{k}" for k in range(5)]), pd.DataFrame(meta)


def test_corpus_protocol_holds_out_each_corpus_once_and_batch_norm_removes_a_channel_offset() -> None:
    features, meta = planted_corpora(offset=3.0)
    plain = evaluate(features, meta["label"], meta["speaker"], classifier="logreg", protocol="corpus", corpora=meta["corpus"])
    assert plain.fold_corpora == ["a", "b"]
    assert plain.n_splits == 2
    normalized = evaluate(
        features, meta["label"], meta["speaker"], classifier="logreg", protocol="corpus", corpora=meta["corpus"], batch_norm=True,
    )
    assert normalized.batch_norm and normalized.summary()["batch_norm"]
    # the offset sends every clip of the held-out corpus to one class; per-batch statistics undo it
    assert plain.summary()["mean"]["uar"] < 0.5
    assert normalized.summary()["mean"]["uar"] > 0.75


def test_corpus_protocol_needs_two_corpora_and_one_normalization() -> None:
    features, meta = planted_corpora(offset=0.0)
    with pytest.raises(SERError, match="at least 2 corpora"):
        evaluate(features, meta["label"], meta["speaker"], protocol="corpus", corpora=["a"] * len(meta))
    with pytest.raises(SERError, match="one normalization"):
        evaluate(features, meta["label"], meta["speaker"], corpora=meta["corpus"], speaker_norm=True, batch_norm=True)


@pytest.mark.parametrize("estimator", [LogisticRegression(max_iter=500), LinearSVC()], ids=["with-proba", "without-proba"])
def test_evaluate_accepts_any_estimator(estimator: object) -> None:
    features, meta = planted_corpora(offset=0.0)
    result = evaluate(features, meta["label"], meta["speaker"], classifier=estimator, n_splits=4)
    assert result.classifier == type(estimator).__name__
    assert result.summary()["mean"]["uar"] > 0.8
    assert np.allclose(result.probabilities.sum(axis=1), 1.0)


def test_a_batch_normalized_model_standardizes_the_files_it_is_given_together(tmp_path: Path) -> None:
    """Training corpora each by their own statistics; at prediction, the given batch by its own."""
    from ser_classic.features import feature_names
    from ser_classic.models import load_model, train

    names = feature_names()
    rng = np.random.default_rng(2)
    labels = np.repeat(["angry", "sad"], 60)

    def corpus(channel_scale: float) -> pd.DataFrame:
        """A corpus whose recording channel shifts each feature by its own amount."""
        values = rng.normal(0.0, 1.0, (labels.size, len(names))) + rng.normal(0.0, channel_scale, len(names))
        values[:, 0] += np.where(labels == "angry", 3.0, -3.0)
        return pd.DataFrame(values, columns=names)

    training = pd.concat([corpus(0.0), corpus(5.0)], ignore_index=True)
    both_labels, batches = np.concatenate([labels, labels]), np.repeat(["a", "b"], labels.size)
    plain = train(training, both_labels, classifier="logreg", speakers=batches)
    normalized = train(training, both_labels, classifier="logreg", speakers=batches, batches=batches, batch_norm=True)
    normalized.save(tmp_path / "m.joblib")
    loaded = load_model(tmp_path / "m.joblib")
    assert loaded.batch_norm and not loaded.speaker_norm
    new_corpus = corpus(6.0)  # a recording channel no training corpus had
    accuracy = {
        "plain": np.mean(plain.predict_proba(new_corpus).idxmax(axis=1) == labels),
        "batch": np.mean(loaded.predict_proba(new_corpus, speakers=["new"] * labels.size).idxmax(axis=1) == labels),
    }
    assert accuracy["plain"] < 0.7 < 0.85 < accuracy["batch"], accuracy
    with pytest.raises(SERError, match="per batch"):
        loaded.predict_proba(new_corpus)


def test_scores_by_corpus_come_from_the_out_of_fold_predictions() -> None:
    features, meta = planted_corpora(offset=0.0)
    result = evaluate(features, meta["label"], meta["speaker"], classifier="logreg", n_splits=4)
    by_corpus = result.scores_by(meta["corpus"])
    assert sorted(by_corpus) == ["a", "b"]
    for corpus, scores in by_corpus.items():
        inside = (meta["corpus"] == corpus).to_numpy()
        assert scores["accuracy"] == pytest.approx(float(np.mean(result.y_true[inside] == result.y_pred[inside])))


def test_ser_evaluate_corpus_protocol_on_two_small_corpora(ravdess_root: Path, crema_d_root: Path, tmp_path: Path, feature_cache_dir: Path) -> None:
    rows = []
    for clip in sorted((ravdess_root / "Actor_01").glob("03-01-0[45]-*.flac"))[:12]:
        rows.append({"path": str(clip), "label": "sad" if "-04-" in clip.name else "angry", "speaker": "a01", "corpus": "ravdess"})
    for clip in sorted(crema_d_root.glob("100[1-3]_*_ANG_XX.flac")) + sorted(crema_d_root.glob("100[1-3]_*_SAD_XX.flac")):
        rows.append({"path": str(clip), **parse_crema_d_name(clip), "corpus": "crema-d"})
    manifests = []
    for corpus in ("ravdess", "crema-d"):
        manifest = tmp_path / f"{corpus}.csv"
        pd.DataFrame([row for row in rows if row["corpus"] == corpus])[["path", "label", "speaker", "corpus"]].to_csv(manifest, index=False)
        manifests.append(manifest)
    result = CliRunner().invoke(app, [
        "evaluate", *map(str, manifests), "--protocol", "corpus", "--classifier", "logreg", "--cache-dir", str(feature_cache_dir),
        "--out-dir", str(tmp_path / "report"), "--jobs", "1",
    ])
    assert result.exit_code == 0, result.output
    assert "held-out crema-d: UAR" in result.stdout and "held-out ravdess: UAR" in result.stdout
    report = (tmp_path / "report" / "report.md").read_text()
    assert "leave one corpus out" in report and "| held-out corpus | UAR | accuracy |" in report


# --- files without speech ----------------------------------------------------------------------


def write_non_speech(folder: Path) -> dict[str, Path]:
    """Three seconds each of dithered digital silence, 50 Hz mains hum (with its third harmonic),
    white noise, digital silence, 60 Hz hum alone and a constant offset with dither (16 kHz)."""
    rate, rng = 16000, np.random.default_rng(1)
    seconds = np.arange(3 * rate) / rate
    dither = (rng.integers(-1, 2, seconds.size) + rng.integers(-1, 2, seconds.size)) / 32768.0
    signals = {
        "dithered-silence": dither,
        "hum-50hz": 0.2 * np.sin(2 * np.pi * 50 * seconds) + 0.05 * np.sin(2 * np.pi * 150 * seconds),
        "white-noise": 0.1 * rng.standard_normal(seconds.size),
        "digital-silence": np.zeros(seconds.size),
        "hum-60hz": 0.3 * np.sin(2 * np.pi * 60 * seconds),
        "offset": 0.3 + dither,
    }
    paths = {}
    for name, signal in signals.items():
        paths[name] = folder / f"{name}.wav"
        soundfile.write(paths[name], signal, rate, subtype="PCM_16")
    return paths


def test_silence_hum_and_noise_get_no_speech_and_speech_keeps_its_emotion(tmp_path: Path, angry_clip: Path) -> None:
    from ser_classic.models import DEFAULT_MODEL_PATH, load_model

    paths = write_non_speech(tmp_path)
    rows = list(predict_files([*paths.values(), angry_clip], load_model(DEFAULT_MODEL_PATH)))
    for name, row in zip(paths, rows):
        assert row["emotion"] == NO_SPEECH, (name, row)
        assert row["confidence"] is None
        assert ("digital silence" if name == "digital-silence" else "no speech found") in row["error"]
    assert rows[-1]["emotion"] not in (None, NO_SPEECH) and rows[-1]["error"] == ""


def test_ser_predict_writes_no_speech_rows_and_exits_1(tmp_path: Path, angry_clip: Path) -> None:
    write_non_speech(tmp_path)
    shutil.copy(angry_clip, tmp_path / angry_clip.name)
    result = CliRunner().invoke(app, ["predict", str(tmp_path), "--format", "jsonl", "--jobs", "1"])
    assert result.exit_code == 1
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    emotions = {Path(row["path"]).stem: row["emotion"] for row in rows}
    assert {emotions[name] for name in ("dithered-silence", "hum-50hz", "white-noise", "digital-silence", "hum-60hz", "offset")} == {NO_SPEECH}
    assert emotions[angry_clip.stem] != NO_SPEECH


# --- the same speech in other formats ------------------------------------------------------------

SOX = shutil.which("sox")


@pytest.fixture(scope="module")
def sox() -> str:
    """The sox command (``.ci/run`` installs it); in CI its absence is a failure, elsewhere a skip."""
    if SOX is None:
        if os.environ.get("CI"):
            pytest.fail("sox is not installed")
        pytest.skip("sox is not installed")
    return SOX


@pytest.fixture(scope="module")
def converted_clips(ravdess_root: Path, sox: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Four clips of each of actors 19-24 as FLAC and as sox converts them, with its default
    dither: 16-bit WAV at 44.1, 22.05 and 16 kHz, and 128 kbit/s MP3."""
    folder = tmp_path_factory.mktemp("formats")
    clips = [clip for actor in range(19, 25) for clip in sorted((ravdess_root / f"Actor_{actor}").glob("*.flac"))[5::15]]
    commands = {
        "wav-44100": (["-b", "16", "-r", "44100"], ".wav"),
        "wav-22050": (["-b", "16", "-r", "22050"], ".wav"),
        "wav-16000": (["-b", "16", "-r", "16000"], ".wav"),
        "mp3-128k": (["-r", "44100", "-C", "128"], ".mp3"),
    }
    converted: dict[str, list[Path]] = {"flac": clips}
    for name, (options, ending) in commands.items():
        converted[name] = []
        for clip in clips:
            target = folder / name / (clip.stem + ending)
            target.parent.mkdir(exist_ok=True)
            subprocess.run([sox, str(clip), *options, str(target)], check=True, capture_output=True)
            converted[name].append(target)
    return converted


@pytest.fixture(scope="module")
def format_vectors(converted_clips: dict[str, list[Path]]) -> dict[str, pd.DataFrame]:
    extractor = FeatureExtractor(n_jobs=2)
    return {name: extractor.extract_files(paths).reset_index(drop=True) for name, paths in converted_clips.items()}


@pytest.mark.parametrize("fmt", ["wav-44100", "wav-22050", "wav-16000", "mp3-128k"])
def test_the_same_clip_in_another_format_gives_nearly_the_same_vector(format_vectors: dict[str, pd.DataFrame], fmt: str) -> None:
    """Differences measured in units of each feature's spread across the clips: what a model sees.

    Extractor version 3 moved its top contrast band by 16-18 such units at 22.05 and 16 kHz.
    """
    flac, other = format_vectors["flac"], format_vectors[fmt]
    spread = flac.std().replace(0.0, 1.0)
    shift = ((other - flac) / spread).abs()
    typical, worst = (0.1, 0.6) if fmt.startswith("mp3") else (0.02, 0.1)  # lossy coding moves more
    assert shift.median().median() < typical
    assert shift.median().max() < worst


@pytest.mark.parametrize("fmt", ["wav-44100", "wav-22050", "wav-16000", "mp3-128k"])
def test_the_same_clip_in_another_format_keeps_its_label(converted_clips: dict[str, list[Path]], fmt: str) -> None:
    from ser_classic.models import DEFAULT_MODEL_PATH, load_model

    model = load_model(DEFAULT_MODEL_PATH)
    labels = {
        name: [row["emotion"] for row in predict_files(converted_clips[name], model, n_jobs=2)] for name in ("flac", fmt)
    }
    same = np.mean(np.asarray(labels["flac"]) == np.asarray(labels[fmt]))
    assert same >= 0.85, f"{fmt}: {same:.0%} of {len(labels['flac'])} labels equal the FLAC's"


# --- the bundled models ----------------------------------------------------------------------------


def test_the_default_model_knows_the_shared_emotions_of_both_corpora_and_ravdess8_all_eight() -> None:
    from ser_classic.corpus import EMOTION_SETS
    from ser_classic.model_file import BUNDLED_MODELS, DEFAULT_MODEL_PATH, read_card, resolve_model

    assert resolve_model(None) == DEFAULT_MODEL_PATH == resolve_model("default")
    default, ravdess8 = read_card(resolve_model("default")), read_card(resolve_model("ravdess8"))
    assert resolve_model("ravdess8") == BUNDLED_MODELS["ravdess8"]
    assert sorted(default["classes"]) == sorted(EMOTION_SETS["crema6"])
    assert set(default["training"]["corpora"]) == {"ravdess", "crema-d"}
    per_corpus = default["evaluation"]["speaker"]["per_corpus"]
    assert set(per_corpus) == {"ravdess", "crema-d"} and all(0.0 < s["uar"] <= 1.0 for s in per_corpus.values())
    assert sorted(ravdess8["classes"]) == sorted(EMOTION_SETS["ravdess8"])


def test_ser_info_and_predict_take_a_bundled_model_by_name(angry_clip: Path) -> None:
    info = CliRunner().invoke(app, ["info", "ravdess8"])
    assert info.exit_code == 0, info.output
    assert "calm" in info.stdout and "ravdess (1440 clips)" in info.stdout
    predicted = CliRunner().invoke(app, ["predict", str(angry_clip), "--model", "ravdess8", "--format", "jsonl", "--jobs", "1"])
    assert predicted.exit_code == 0, predicted.output
    assert '"p_surprised"' in predicted.stdout
    missing = CliRunner().invoke(app, ["info", "no-such-model"])
    assert missing.exit_code == 2 and "no such model file" in missing.stderr
