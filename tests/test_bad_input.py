"""Bad input never crashes a batch, loses a row or yields NaN (cases: :mod:`badfiles`).

Every case goes through ``FeatureExtractor.extract_file``, ``predict_files`` and ``ser
predict`` on one folder that holds all cases together with three good RAVDESS clips. Each
file gets a valid prediction or a one-line error naming it, as :data:`badfiles.BAD_CASES`
expects; every file that can be classified gets exactly the row it gets when classified
alone; CSV and JSONL outputs parse back with one row per input.

Unreadable files: tests run as root in CI, and root reads a file without read permission.
The permission case is therefore checked with the effective user switched to ``nobody``
(in-process, around the library calls only); in the ``ser predict`` run as root the same
file is simply classified.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
from badfiles import BAD_CASES, NO_SPEECH_REASON, expected_error, write_bad_files
from typer.testing import CliRunner

from ser_classic.cli import app
from ser_classic.errors import AudioError
from ser_classic.features import FeatureExtractor, feature_names
from ser_classic.models import Model, load_model
from ser_classic.outputs import write_rows
from ser_classic.prediction import predict_files, prediction_columns

SER = str(Path(sys.executable).with_name("ser"))
GOOD_CLIPS = ("Actor_01/03-01-05-02-01-01-01.flac", "Actor_02/03-01-04-01-02-01-02.flac", "Actor_03/03-01-03-02-01-02-03.flac")
NOBODY = 65534


@pytest.fixture(scope="module")
def generated(ravdess_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """One folder with every bad case plus three good RAVDESS clips (copied), and
    case name -> path (the good clips as ``good:<file name>``)."""
    root = tmp_path_factory.mktemp("bad input")
    speech, rate = soundfile.read(ravdess_root / GOOD_CLIPS[0], dtype="float32")
    cases = write_bad_files(root, (speech, rate))
    for clip in GOOD_CLIPS:
        cases[f"good:{Path(clip).name}"] = Path(shutil.copy(ravdess_root / clip, root))
    return root, cases


@pytest.fixture(scope="module")
def folder(generated: tuple[Path, dict[str, Path]]) -> Path:
    return generated[0]


@pytest.fixture(scope="module")
def cases(generated: tuple[Path, dict[str, Path]]) -> dict[str, Path]:
    return generated[1]


def _expected(case: str) -> str | None:
    return None if case.startswith("good:") else expected_error(case)


@pytest.fixture(scope="module")
def model(small_model_path: Path) -> Model:
    return load_model(small_model_path)


@pytest.fixture(scope="module")
def mixed_rows(folder: Path, model: Model) -> list[dict]:
    """``predict_files`` over the whole folder in one process."""
    return list(predict_files([folder], model, n_jobs=1))


def _assert_valid_row(row: dict, classes: list[str]) -> None:
    probabilities = np.array([row[f"p_{label}"] for label in classes], dtype=float)
    assert row["error"] == ""
    assert np.all(np.isfinite(probabilities)) and math.isclose(probabilities.sum(), 1.0, rel_tol=1e-9)
    assert row["emotion"] == classes[int(np.argmax(probabilities))]
    assert row["confidence"] == probabilities.max()


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_extract_file_gives_a_finite_named_vector_or_a_one_line_error(cases: dict[str, Path], case: str) -> None:
    path, reason = cases[case], _expected(case)
    started = time.monotonic()
    if reason in (None, NO_SPEECH_REASON):  # a file without speech has features, and no emotion
        vector = FeatureExtractor(n_jobs=1).extract_file(path)
        assert list(vector.index) == feature_names()
        assert np.all(np.isfinite(vector.to_numpy()))
        return
    with pytest.raises(AudioError) as raised:
        FeatureExtractor(n_jobs=1).extract_file(path)
    error = raised.value
    assert reason in error.reason
    assert error.path == str(path)
    assert str(error) == f"{path}: {error.reason}" and "\n" not in str(error)
    assert time.monotonic() - started < 10, "refusing a file must not take long (no decoding of a 1-hour file)"


def test_predict_files_gives_one_row_per_file_with_the_expected_outcome(cases: dict[str, Path], mixed_rows: list[dict], model: Model) -> None:
    by_path = {row["path"]: row for row in mixed_rows}
    assert len(by_path) == len(mixed_rows) == len(cases)
    assert set(by_path) == {str(path) for path in cases.values()}
    for case, path in cases.items():
        row, reason = by_path[str(path)], _expected(case)
        if reason is None:
            _assert_valid_row(row, model.classes)
        else:
            emotion = "no speech" if reason in (NO_SPEECH_REASON, "digital silence") else None  # silence holds no speech
            assert reason in row["error"] and row["emotion"] == emotion and row["confidence"] is None, (case, row)


def test_every_classifiable_file_gets_the_row_it_gets_alone(cases: dict[str, Path], mixed_rows: list[dict], model: Model) -> None:
    by_path = {row["path"]: row for row in mixed_rows}
    classifiable = [path for case, path in cases.items() if _expected(case) is None]
    assert len(classifiable) >= 25
    for path in classifiable:
        [alone] = predict_files([path], model, n_jobs=1)
        assert by_path[str(path)] == alone


@contextmanager
def _without_root() -> Iterator[None]:
    """Access files as ``nobody`` if this process is root (root ignores read permissions)."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)


def test_a_file_without_read_permission_is_reported_as_such(cases: dict[str, Path], model: Model) -> None:
    folder = Path(tempfile.mkdtemp(prefix="ser-permission-"))  # under /tmp: others may enter it
    try:
        folder.chmod(0o755)
        target = folder / "locked.wav"
        shutil.copy(cases["pcm_16"], target)
        target.chmod(0o000)
        list(predict_files([cases["pcm_16"]], model, n_jobs=1))  # imports done before switching user
        with _without_root():
            with pytest.raises(AudioError, match="permission denied"):
                FeatureExtractor(n_jobs=1).extract_file(target)
            with pytest.raises(AudioError, match="permission denied"):
                FeatureExtractor(n_jobs=1, cache_dir=folder / "cache").extract_file(target)
            [row] = predict_files([target], model, n_jobs=1)
        assert row["error"] == "permission denied" and row["emotion"] is None
    finally:
        shutil.rmtree(folder)


def test_jsonl_of_the_mixed_rows_parses_back_without_nan(mixed_rows: list[dict], model: Model, tmp_path: Path) -> None:
    output = tmp_path / "rows.jsonl"
    columns = prediction_columns(model.classes)
    assert write_rows(mixed_rows, columns, "jsonl", output) == len(mixed_rows)

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} in JSONL output")

    lines = output.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == ""
    parsed = [json.loads(line, parse_constant=refuse) for line in lines[:-1]]
    assert [row["path"] for row in parsed] == [row["path"] for row in mixed_rows]
    assert all(list(row) == columns for row in parsed)


@pytest.fixture(scope="module")
def cli_run(folder: Path, small_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """``ser predict FOLDER --output predictions.csv`` with the default process pool."""
    output = tmp_path_factory.mktemp("cli") / "predictions.csv"
    result = subprocess.run([SER, "predict", str(folder), "--model", str(small_model_path), "--output", str(output)],
                            capture_output=True, text=True, timeout=600)
    return result, output


def test_ser_predict_on_the_mixed_folder_fails_overall_and_names_each_bad_file_once(cli_run, cases: dict[str, Path]) -> None:
    result, output = cli_run
    assert result.returncode == 1
    assert result.stdout == ""
    messages = [line for line in re.split(r"[\r\n]", result.stderr) if "ser: " in line]
    failing = {case: path for case, path in cases.items() if _expected(case) is not None}
    for case, path in failing.items():
        naming = [line for line in messages if f"ser: {path}: " in line]
        assert len(naming) == 1 and _expected(case) in naming[0], (case, naming)
    assert messages[-1].endswith(f"ser: {len(failing)} of {len(cases)} file(s) could not be classified (see the error column)")


def test_ser_predict_csv_parses_back_with_one_row_per_input(cli_run, cases: dict[str, Path], model: Model) -> None:
    result, output = cli_run
    text = output.read_text(encoding="utf-8")
    columns = prediction_columns(model.classes)
    with io.StringIO(text, newline="") as stream:
        records = list(csv.DictReader(stream))
    assert list(records[0]) == columns
    assert sorted(record["path"] for record in records) == sorted(str(path) for path in cases.values())
    table = pd.read_csv(io.StringIO(text), dtype={"path": str, "emotion": str, "error": str}, keep_default_na=False)
    assert list(table.columns) == columns and len(table) == len(cases)
    assert sorted(table["path"]) == sorted(str(path) for path in cases.values())
    assert str(cases["name_newline"]) in set(table["path"]) and str(cases["name_commas"]) in set(table["path"])
    probabilities = table[[f"p_{label}" for label in model.classes]].replace("", np.nan).astype(float)
    good = table["error"] == ""
    assert np.all(np.isfinite(probabilities[good].to_numpy()))
    assert probabilities[~good].isna().all(axis=None)
    for case, path in cases.items():
        row = table[table["path"] == str(path)].iloc[0]
        reason = _expected(case)
        assert (row["error"] == "") if reason is None else (reason in row["error"]), (case, row["error"])


def test_ser_predict_gives_each_good_clip_the_row_it_gets_alone(cli_run, cases: dict[str, Path], small_model_path: Path) -> None:
    result, output = cli_run
    with open(output, encoding="utf-8", newline="") as stream:
        mixed = {record["path"]: record for record in csv.DictReader(stream)}
    for clip in [path for case, path in cases.items() if case.startswith("good:")]:
        alone = CliRunner().invoke(app, ["predict", str(clip), "--model", str(small_model_path), "--format", "csv", "--jobs", "1"])
        assert alone.exit_code == 0, alone.output
        [record] = list(csv.DictReader(io.StringIO(alone.stdout, newline="")))
        assert mixed[str(clip)] == record


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_gradio_handler_answers_every_case_with_a_result_or_a_one_line_message(cases: dict[str, Path], case: str) -> None:
    """The demo's request handler on the same files: never raises, never shows a traceback,
    never returns a non-finite probability (its own upload limits may refuse the 1-hour file)."""
    from ser_classic.demo import analyze

    analysis = analyze(str(cases[case]))
    error = analysis.error
    if _expected(case) is None:
        assert error == "", (case, error)
        probabilities = np.array(list(analysis.probabilities.values()))
        assert np.all(np.isfinite(probabilities)) and math.isclose(probabilities.sum(), 1.0, rel_tol=1e-9)
        assert analysis.waveform is not None and analysis.spectrogram is not None and analysis.f0 is not None
    else:
        assert error and "\n" not in error and "Traceback" not in analysis.summary, (case, error)
        assert analysis.probabilities is None and analysis.waveform is None
