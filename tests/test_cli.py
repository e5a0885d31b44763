"""The ``ser`` command line: predict, train, evaluate, features, info, help and exit codes, and
how often a command reads its model file.

Commands run in-process through typer's ``CliRunner`` (stdout and stderr apart), except where a
real process matters (the exit code and one-line error of the installed ``ser`` script). Every
command gets ``--cache-dir`` in the session's feature cache, never the default folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from typer.testing import CliRunner, Result

from ser_classic.cli import app
from ser_classic.corpus import read_corpus
from ser_classic.features import FeatureConfig, FeatureExtractor, feature_names
from ser_classic.models import DEFAULT_MODEL_PATH, card_path, load_model, read_card


def ser(*args: object) -> Result:
    """Run ``ser ARGS`` in-process; an exception other than a clean exit fails the test."""
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def prediction_header(classes: list[str]) -> list[str]:
    return ["path", "emotion", "confidence", *[f"p_{label}" for label in classes], "error"]


@pytest.fixture(scope="module")
def three_actors(ravdess_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CSV manifest (paths relative to it, through symlinks) of actors 1-3: neutral, happy,
    sad and angry, statement 1; 42 clips."""
    folder = tmp_path_factory.mktemp("three-actors")
    table = read_corpus(ravdess_root)
    table = table[table["label"].isin(["neutral", "happy", "sad", "angry"]) & (table["statement"] == 1) & (table["actor"] <= 3)]
    rows = []
    for path, label, speaker in table[["path", "label", "speaker"]].itertuples(index=False):
        link = folder / "clips" / Path(path).name
        link.parent.mkdir(exist_ok=True)
        link.symlink_to(path)
        rows.append({"path": f"clips/{link.name}", "label": label, "speaker": speaker})
    pd.DataFrame(rows).to_csv(folder / "corpus.csv", index=False)
    return folder / "corpus.csv"


@pytest.fixture(scope="module")
def trained_model(three_actors: Path, feature_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    """``ser train`` without cross-validation, on two of the manifest's four classes."""
    out = tmp_path_factory.mktemp("trained") / "m.joblib"
    result = ser("train", three_actors, "--out", out, "--classes", "angry,sad", "--classifier", "logreg",
                 "--cv-folds", "0", "--jobs", "2", "--cache-dir", feature_cache_dir)
    return result, out


# --- predict ---------------------------------------------------------------------------------


def test_predict_folder_to_csv(actor_01: Path, small_model_path: Path, feature_cache_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "p.csv"
    result = ser("predict", actor_01, "--model", small_model_path, "--format", "csv", "--output", output,
                 "--jobs", "2", "--cache-dir", feature_cache_dir)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    classes = load_model(small_model_path).classes
    table = pd.read_csv(output, keep_default_na=False)
    assert list(table.columns) == prediction_header(classes)
    assert len(table) == 60
    assert list(table["path"]) == [str(path) for path in sorted(actor_01.glob("*.flac"))]
    probabilities = table[[f"p_{label}" for label in classes]].to_numpy(dtype=float)
    assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert_allclose(table["confidence"].to_numpy(dtype=float), probabilities.max(axis=1), rtol=1e-12)
    assert list(table["emotion"]) == [classes[i] for i in probabilities.argmax(axis=1)]
    assert set(table["error"]) == {""}


def test_predict_jsonl_to_stdout_parses_line_by_line(angry_clip: Path, actor_01: Path, small_model_path: Path, feature_cache_dir: Path) -> None:
    clips = [angry_clip, *sorted(actor_01.glob("03-01-04-*.flac"))[:3]]
    result = ser("predict", *clips, "--model", small_model_path, "--format", "jsonl", "--jobs", "1", "--cache-dir", feature_cache_dir)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    classes = load_model(small_model_path).classes
    rows = [json.loads(line) for line in lines]
    assert [row["path"] for row in rows] == [str(clip) for clip in clips]
    for row in rows:
        assert list(row) == prediction_header(classes)
        assert row["error"] == ""
        assert sum(row[f"p_{label}"] for label in classes) == pytest.approx(1.0, abs=1e-6)
        assert row["confidence"] == max(row[f"p_{label}"] for label in classes)


def test_predict_reports_bad_files_as_rows_and_exits_1(actor_01: Path, small_model_path: Path, feature_cache_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    good = sorted(actor_01.glob("03-01-05-*.flac"))[:3]
    for clip in good:
        shutil.copyfile(clip, folder / clip.name)
    (folder / "notes.wav").write_text("not audio at all\n" * 10)
    (folder / "empty.wav").touch()
    output = tmp_path / "p.csv"
    result = ser("predict", folder, "--model", small_model_path, "--output", output, "--jobs", "1", "--cache-dir", feature_cache_dir)
    assert result.exit_code == 1
    assert "2 of 5" in result.stderr
    table = pd.read_csv(output, keep_default_na=False).set_index("path")
    assert len(table) == 5
    assert "not a readable audio file" in table.loc[str(folder / "notes.wav"), "error"]
    assert "empty file" in table.loc[str(folder / "empty.wav"), "error"]
    for name in ("notes.wav", "empty.wav"):
        assert table.loc[str(folder / name), "emotion"] == "" and table.loc[str(folder / name), "confidence"] == ""
    classes = load_model(small_model_path).classes
    for clip in good:
        row = table.loc[str(folder / clip.name)]
        assert row["error"] == "" and row["emotion"] in classes


def test_predict_with_a_missing_model_exits_2_with_one_line(angry_clip: Path, tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("ser")
    command = [str(script)] if script.is_file() else [shutil.which("ser") or "ser"]
    missing = tmp_path / "missing.joblib"
    finished = subprocess.run([*command, "predict", str(angry_clip), "--model", str(missing)],
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 2
    assert finished.stdout == ""
    assert finished.stderr.count("\n") == 1
    assert finished.stderr.startswith("ser: error: ")
    assert str(missing) in finished.stderr and "no such model file" in finished.stderr


# --- train -----------------------------------------------------------------------------------


def test_train_writes_model_and_card_that_predict_uses(trained_model: tuple[Result, Path], angry_clip: Path,
                                                       feature_cache_dir: Path, tmp_path: Path) -> None:
    result, out = trained_model
    assert result.exit_code == 0, result.stderr
    assert out.is_file() and card_path(out).is_file()
    assert str(out) in result.stdout
    card = read_card(out)
    assert card["classes"] == ["angry", "sad"]
    assert card["classifier"] == "logreg"
    assert card["training"]["n_clips"] == 24 and card["training"]["n_speakers"] == 3
    assert card["evaluation"] == {}
    output = tmp_path / "p.csv"
    predicted = ser("predict", angry_clip, "--model", out, "--output", output, "--cache-dir", feature_cache_dir, "--jobs", "1")
    assert predicted.exit_code == 0, predicted.stderr
    table = pd.read_csv(output, keep_default_na=False)
    assert list(table.columns) == prediction_header(["angry", "sad"])
    assert table.loc[0, "emotion"] in {"angry", "sad"}


def test_train_with_cross_validation_puts_scores_on_the_card(three_actors: Path, feature_cache_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cv.joblib"
    result = ser("train", three_actors, "--out", out, "--classes", "angry,sad", "--cv-folds", "3", "--random-split",
                 "--classifier", "svm", "--jobs", "1", "--cache-dir", feature_cache_dir)
    assert result.exit_code == 0, result.stderr
    card = read_card(out)
    assert card["classifier"] == "svm"
    assert set(card["evaluation"]) == {"speaker", "random"}
    assert card["evaluation"]["speaker"]["n_splits"] == 3 and card["evaluation"]["random"]["n_splits"] == 5
    for protocol in ("speaker", "random"):
        scores = card["evaluation"][protocol]
        assert 0.0 <= scores["mean"]["accuracy"] <= 1.0
        assert np.sum(scores["confusion_matrix"]) == 24
        assert f"{protocol:>8}: accuracy {scores['mean']['accuracy']:.3f}" in result.stdout
    assert load_model(out).classes == ["angry", "sad"]


def test_train_without_options_builds_the_bundled_configuration_scored_by_speaker_only(
    ravdess_root: Path, feature_cache_dir: Path, tmp_path: Path
) -> None:
    """The ensemble's MLP holds out a tenth of its training part: six actors' angry and sad clips."""
    table = read_corpus(ravdess_root)
    chosen = table[table["label"].isin(["angry", "sad"]) & (table["actor"] <= 6)]
    chosen[["path", "label", "speaker"]].to_csv(tmp_path / "six-actors.csv", index=False)
    out = tmp_path / "default.joblib"
    result = ser("train", tmp_path / "six-actors.csv", "--out", out, "--cv-folds", "3", "--jobs", "2", "--cache-dir", feature_cache_dir)
    assert result.exit_code == 0, result.stderr
    card = read_card(out)
    assert card["classifier"] == "ensemble" and card["training"]["augmentation"] == "speed-prefix, 5 copies per training clip"
    assert set(card["evaluation"]) == {"speaker"} and card["evaluation"]["speaker"]["n_splits"] == 3
    assert "speaker folds" in result.stderr  # the folds' progress bar


def test_train_with_speed_augmentation_records_it_and_trains_on_the_copies(three_actors: Path, feature_cache_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "augmented.joblib"
    result = ser("train", three_actors, "--out", out, "--classes", "angry,sad", "--cv-folds", "0", "--augment", "speed",
                 "--jobs", "1", "--cache-dir", feature_cache_dir)
    assert result.exit_code == 0, result.stderr
    training = read_card(out)["training"]
    assert training["augmentation"] == "speed, 2 copies per training clip"
    assert training["n_clips"] == 24 and training["n_augmented_copies"] == 48
    assert load_model(out).classes == ["angry", "sad"]


def test_an_unknown_augmentation_is_refused_before_any_work(three_actors: Path, tmp_path: Path) -> None:
    result = ser("evaluate", three_actors, "--augment", "reverb", "--out-dir", tmp_path / "report")
    assert result.exit_code == 2
    assert "unknown augmentation 'reverb'" in result.stderr and "speed" in result.stderr
    assert not (tmp_path / "report").exists()


# --- evaluate --------------------------------------------------------------------------------


@pytest.mark.parametrize(("protocol", "folds"), [("speaker", 3), ("random", 4)])
def test_evaluate_writes_reports(protocol: str, folds: int, three_actors: Path, feature_cache_dir: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "report"
    result = ser("evaluate", three_actors, "--protocol", protocol, "--classifier", "logreg", "--folds", folds,
                 "--out-dir", out_dir, "--jobs", "1", "--cache-dir", feature_cache_dir)
    assert result.exit_code == 0, result.stderr
    report = json.loads((out_dir / "report.json").read_text())
    assert report["protocol"] == protocol and report["n_splits"] == folds and report["n_clips"] == 42
    assert report["classes"] == ["angry", "happy", "neutral", "sad"]
    assert report["corpus"] == str(three_actors)
    if protocol == "speaker":
        assert sorted(sum(report["fold_speakers"], [])) == ["Actor_01", "Actor_02", "Actor_03"]
    assert f"**{protocol}**" in (out_dir / "report.md").read_text()
    png = (out_dir / "confusion.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    assert "accuracy" in result.stdout


def test_evaluate_with_too_few_speakers_exits_2(three_actors: Path, feature_cache_dir: Path, tmp_path: Path) -> None:
    result = ser("evaluate", three_actors, "--protocol", "speaker", "--classifier", "logreg",
                 "--out-dir", tmp_path / "report", "--jobs", "1", "--cache-dir", feature_cache_dir)
    assert result.exit_code == 2
    last_line = result.stderr.splitlines()[-1]
    assert last_line.startswith("ser: error: ") and "needs at least 6 speakers" in last_line
    assert not (tmp_path / "report").exists()


# --- features --------------------------------------------------------------------------------


@pytest.fixture()
def label_folders(actor_01: Path, tmp_path: Path) -> Path:
    """``corpus/<label>/take-N.flac``: links to four clips, under names that are not RAVDESS's."""
    root = tmp_path / "corpus"
    for label, code in (("angry", "05"), ("sad", "04")):
        (root / label).mkdir(parents=True)
        for number, clip in enumerate(sorted(actor_01.glob(f"03-01-{code}-01-01-*.flac"))):
            (root / label / f"take-{number}.flac").symlink_to(clip)
    return root


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_features_writes_a_table_with_labels(suffix: str, label_folders: Path, feature_cache_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / f"t{suffix}"
    result = ser("features", label_folders, "--output", output, "--jobs", "1", "--cache-dir", feature_cache_dir)
    assert result.exit_code == 0, result.stderr
    table = pd.read_parquet(output) if suffix == ".parquet" else pd.read_csv(output, index_col="path")
    if suffix == ".parquet":  # the settings travel with the table
        assert table.attrs["feature_config"] == FeatureConfig().to_dict()
    paths = sorted(str(path) for path in label_folders.rglob("*.flac"))
    assert len(paths) == 4
    assert sorted(table.index) == paths
    assert list(table["label"]) == [Path(path).parent.name for path in table.index]
    assert set(table["speaker"]) == {"unknown"}
    names = feature_names()
    assert set(names) <= set(table.columns)
    expected = FeatureExtractor().extract_files(list(table.index))
    assert_allclose(table[names].to_numpy(dtype=float), expected.to_numpy(), rtol=1e-12)


# --- info and help ---------------------------------------------------------------------------


def test_info_shows_classes_and_scores_of_the_bundled_model() -> None:
    card = read_card(DEFAULT_MODEL_PATH)
    result = ser("info")
    assert result.exit_code == 0, result.stderr
    assert f"classes    {', '.join(card['classes'])}" in result.stdout
    assert card["evaluation"], "the bundled model's card has no scores"
    for protocol, scores in card["evaluation"].items():
        assert f"{protocol:<10} accuracy {scores['mean']['accuracy']:.3f}" in result.stdout
    assert card["artifact"]["sha256"] in result.stdout


def test_info_json_is_the_card() -> None:
    result = ser("info", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == read_card(DEFAULT_MODEL_PATH)


def test_info_on_a_trained_model(trained_model: tuple[Result, Path]) -> None:
    _, out = trained_model
    result = ser("info", out, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["classes"] == ["angry", "sad"]


# --- opening the model ------------------------------------------------------------------------

#: The files opened while a test watches (see :func:`opened_files`), one list per watching test.
_watching: list[list[str]] = []


def _note_opened_file(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _watching and isinstance(args[0], (str, os.PathLike)):
        _watching[-1].append(os.path.abspath(args[0]))


@pytest.fixture(scope="session")
def _open_events() -> None:
    """Python's ``open`` audit events, seen by :func:`_note_opened_file` for the rest of the
    session (an audit hook cannot be removed; it records only while a test watches)."""
    sys.addaudithook(_note_opened_file)


@pytest.fixture()
def opened_files(_open_events: None) -> Iterator[list[str]]:
    """The absolute paths of the files this process opens during the test, by any code path."""
    _watching.append([])
    yield _watching[-1]
    _watching.pop()


@pytest.mark.parametrize(
    "command",
    [["predict", "{clip}", "--format", "csv", "--model", "{model}"], ["explain", "{clip}", "--model", "{model}"],
     ["timeline", "{clip}", "--model", "{model}"]],
    ids=["predict", "explain", "timeline"],
)
def test_a_command_reads_its_model_file_and_card_once(
    command: list[str], angry_clip: Path, small_model_path: Path, feature_cache_dir: Path, opened_files: list[str]
) -> None:
    cache = ["--cache-dir", str(feature_cache_dir)] if command[0] != "timeline" else []
    result = ser(*(part.format(clip=angry_clip, model=small_model_path) for part in command), *cache)
    assert result.exit_code == 0, result.stderr
    opened = Counter(opened_files)
    assert opened[os.path.abspath(small_model_path)] == 1
    assert opened[os.path.abspath(card_path(small_model_path))] == 1


@pytest.mark.parametrize("options", [[], ["--json"]], ids=["text", "json"])
def test_info_reads_the_model_card_once_and_not_the_model(options: list[str], small_model_path: Path, opened_files: list[str]) -> None:
    result = ser("info", small_model_path, *options)
    assert result.exit_code == 0, result.stderr
    opened = Counter(opened_files)
    assert opened[os.path.abspath(card_path(small_model_path))] == 1
    assert opened[os.path.abspath(small_model_path)] == 0


@pytest.mark.parametrize("command", ["predict", "train", "evaluate", "features", "info", "timeline", "app"])
def test_each_command_help_shows_an_example(command: str) -> None:
    result = ser(command, "--help")
    assert result.exit_code == 0
    assert "Example: ser " + command in " ".join(result.stdout.split())


def test_top_level_help_lists_the_commands() -> None:
    result = ser("--help")
    assert result.exit_code == 0
    for command in ("predict", "train", "evaluate", "features", "info"):
        assert command in result.stdout


def test_parquet_without_pyarrow_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import ser_classic.outputs as outputs
    from ser_classic.errors import SERError

    monkeypatch.setattr(outputs, "find_spec", lambda name: None)
    with pytest.raises(SERError, match=r"ser-classic\[parquet\]"):
        outputs.write_table(pd.DataFrame({"a": [1.0]}), tmp_path / "t.parquet")
    assert list(tmp_path.iterdir()) == []


def test_the_default_feature_cache_is_the_users_cache_folder_not_the_current_one(label_folders: Path, tmp_path: Path) -> None:
    import os

    work, cache_home = tmp_path / "work", tmp_path / "xdg-cache"
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "SER_CACHE_DIR"} | {"XDG_CACHE_HOME": str(cache_home)}
    command = [sys.executable, "-c", "from ser_classic.cli import main; main()", "features", str(label_folders), "--output", "t.csv", "--jobs", "1"]
    subprocess.run(command, cwd=work, env=env, check=True, capture_output=True)
    assert sorted(path.name for path in work.iterdir()) == ["t.csv"]
    cached = list((cache_home / "ser-classic" / "features").rglob("*.npy"))
    assert len(cached) == 4
