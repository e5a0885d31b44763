"""Stopped any way, a batch leaves a resumable output and nothing else.

``ser predict`` runs as a real subprocess with a process pool over two RAVDESS actors (a fresh
feature cache, so extraction really runs) and gets SIGINT, SIGTERM or SIGHUP, sent to it alone
(``kill``, ``timeout``) or to its whole process group (a terminal, a batch scheduler), once its
temporary file holds rows. It must exit 128 + the signal with the rows done in its output and
no temporary file, and ``--resume`` must then finish the job: one row per file, as an
uninterrupted run writes them. After SIGKILL, which no handler sees, the next ``--resume``
takes the temporary file over. The library parts (atomic files, reading rows back) are tested
on small files.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import soundfile
from typer.testing import CliRunner

from ser_classic.atomic import atomic_output, leftover_temporary, temporary_path
from ser_classic.cli import app
from ser_classic.errors import SERError
from ser_classic.interruption import Stopped
from ser_classic.models import load_model
from ser_classic.outputs import read_jsonl_rows, read_rows, write_rows
from ser_classic.prediction import predict_files, prediction_columns, resumable_rows

SER = [str(Path(sys.executable).with_name("ser"))]  # the installed command, as users run it
N_CLIPS = 24
N_ACTOR_FILES = 120  # Actor_01 and Actor_02


@pytest.fixture(scope="module")
def clip_folder(ravdess_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One-second excerpts of 24 RAVDESS clips (actor 5), as FLAC."""
    folder = tmp_path_factory.mktemp("clips")
    for number, source in enumerate(sorted((ravdess_root / "Actor_05").glob("*.flac"))[:N_CLIPS]):
        signal_, rate = soundfile.read(source, dtype="float32")
        soundfile.write(folder / f"clip_{number:03d}.flac", signal_[rate : 2 * rate], rate)
    return folder


@pytest.fixture(scope="module")
def two_actors(ravdess_root: Path) -> list[str]:
    return [str(ravdess_root / "Actor_01"), str(ravdess_root / "Actor_02")]


@pytest.fixture(scope="module")
def reference(two_actors: list[str], small_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, tuple], Path]:
    """The rows of an uninterrupted ``ser predict`` over the two actors (by path), and the
    feature cache it filled, which resumed runs use to finish sooner."""
    folder = tmp_path_factory.mktemp("reference")
    output, cache = folder / "reference.jsonl", folder / "cache"
    arguments = [*two_actors, "--model", str(small_model_path), "--jobs", "2", "--cache-dir", str(cache), "--output", str(output)]
    finished = subprocess.run([*SER, "predict", *arguments], capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    rows = read_jsonl_rows(output)
    assert len(rows) == N_ACTOR_FILES
    return {row["path"]: _values(row) for row in rows}, cache


def _values(row: dict[str, Any]) -> tuple:
    """What a row says about its file, alike whether read back from CSV (strings) or JSONL."""
    numbers = [float(row[key]) for key in row if key == "confidence" or key.startswith("p_")]
    return (row["emotion"], *numbers, row["error"] or "")


def _warm(cache: Path) -> list[str]:
    """Options of a resumed run: the reference's cache, which holds every file's features, so
    one process is quickest (the rows do not depend on it)."""
    return ["--jobs", "1", "--cache-dir", str(cache)]


def _complete_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@contextmanager
def _running(arguments: list[str]) -> Iterator[subprocess.Popen]:
    """``ser ARGUMENTS`` in a new process group, whose every process is killed on leaving."""
    process = subprocess.Popen([*SER, *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        yield process
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


def _wait_for_lines(process: subprocess.Popen, path: Path, lines: int, timeout: float = 240) -> None:
    """Return once ``path`` holds ``lines`` complete lines; fail if ``process`` ends or stalls first."""
    deadline = time.monotonic() + timeout
    while _complete_lines(path) < lines:
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"ser ended or stalled before writing {lines} lines (exit {process.poll()}): {process.stderr.read()[-2000:]}")
        time.sleep(0.01)


def _stop_once_writing(arguments: list[str], output: Path, stop: signal.Signals, *, whole_group: bool) -> subprocess.CompletedProcess:
    """Run ``ser ARGUMENTS``; send ``stop`` (to its process group when ``whole_group``) once its
    temporary file holds a row."""
    with _running(arguments) as process:
        header_lines = 1 if output.suffix == ".csv" else 0
        _wait_for_lines(process, temporary_path(output), header_lines + 1)
        if whole_group:
            os.killpg(process.pid, stop)
        else:
            process.send_signal(stop)
        stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _check_resume_finishes(arguments: list[str], output: Path, kept: list[dict[str, Any]], reference_rows: dict[str, tuple]) -> list[dict[str, Any]]:
    """``ser ARGUMENTS --resume`` ends well with one row per file, the kept ones first and unchanged."""
    finished = subprocess.run([*SER, *arguments, "--resume"], capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert sorted(os.listdir(output.parent)) == [output.name]
    rows = read_rows(output, output.suffix[1:])
    assert sorted(row["path"] for row in rows) == sorted(reference_rows)
    assert rows[: len(kept)] == kept
    assert [row["path"] for row in rows if _values(row) != reference_rows[row["path"]]] == []
    return rows


STOPS = [
    pytest.param(signal.SIGINT, "csv", True, id="SIGINT-csv-group (Ctrl-C)"),
    pytest.param(signal.SIGINT, "jsonl", False, id="SIGINT-jsonl-process"),
    pytest.param(signal.SIGTERM, "jsonl", False, id="SIGTERM-jsonl-process (kill, timeout)"),
    pytest.param(signal.SIGTERM, "csv", True, id="SIGTERM-csv-group (batch scheduler)"),
    pytest.param(signal.SIGHUP, "jsonl", True, id="SIGHUP-jsonl-group (closed terminal)"),
    pytest.param(signal.SIGHUP, "csv", False, id="SIGHUP-csv-process"),
]


@pytest.mark.slow  # a ser process with a pool, stopped by a signal, then resumed
@pytest.mark.parametrize(("stop", "fmt", "whole_group"), STOPS)
def test_a_stopped_predict_keeps_its_rows_and_resume_finishes_it(
    stop: signal.Signals, fmt: str, whole_group: bool, two_actors: list[str], small_model_path: Path,
    reference: tuple[dict[str, tuple], Path], tmp_path: Path,
) -> None:
    reference_rows, reference_cache = reference
    output = tmp_path / "out" / f"predictions.{fmt}"
    common = ["predict", *two_actors, "--model", str(small_model_path), "--output", str(output)]
    stopped = _stop_once_writing([*common, "--jobs", "2", "--cache-dir", str(tmp_path / "cache")], output, stop, whole_group=whole_group)

    assert stopped.returncode == 128 + stop, stopped.stderr
    assert sorted(os.listdir(output.parent)) == [output.name]
    assert output.read_text(encoding="utf-8").endswith("\n")
    kept = read_rows(output, fmt)
    assert 0 < len(kept) < N_ACTOR_FILES, "the run finished before the signal: the test proved nothing"
    assert len({row["path"] for row in kept}) == len(kept)
    assert [row["path"] for row in kept if _values(row) != reference_rows[row["path"]]] == []
    message = f"ser: stopped by {stop.name}: {len(kept)} file(s) done in {output}; run the same command with --resume"
    assert message in stopped.stderr

    _check_resume_finishes([*common, *_warm(reference_cache)], output, kept, reference_rows)


@pytest.mark.slow  # a ser process with a pool, stopped by a signal
def test_after_sigkill_resume_takes_the_temporary_file_over(
    two_actors: list[str], small_model_path: Path, reference: tuple[dict[str, tuple], Path], tmp_path: Path
) -> None:
    reference_rows, reference_cache = reference
    output = tmp_path / "out" / "predictions.csv"
    common = ["predict", *two_actors, "--model", str(small_model_path), "--output", str(output)]
    with _running([*common, "--jobs", "2", "--cache-dir", str(tmp_path / "cache")]) as process:
        _wait_for_lines(process, temporary_path(output), 1 + 5)
        os.killpg(process.pid, signal.SIGKILL)  # every process at once, as a power loss
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    leftover = temporary_path(output)
    assert sorted(os.listdir(output.parent)) == [leftover.name]

    # A marked row proves that the rows of the killed run are taken over, not classified again;
    # a half-written last line, as a write cut short leaves, is dropped.
    done = read_rows(leftover, "csv")
    assert 5 <= len(done) < N_ACTOR_FILES
    done[0]["confidence"] = "0.123456789"
    with leftover.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(done[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(done)
        stream.write(f"{done[-1]['path']},angry,0.9")

    rows = _check_resume_finishes([*common, *_warm(reference_cache)], output, done, {
        **reference_rows, done[0]["path"]: _values(done[0])
    })
    assert rows[0]["confidence"] == "0.123456789"


@pytest.mark.slow  # a ser process with a pool, stopped by a signal
def test_features_stopped_by_sigterm_leave_the_output_and_continue_from_the_cache(
    actor_01: Path, tmp_path: Path
) -> None:
    output, cache = tmp_path / "out" / "features.parquet", tmp_path / "cache"
    arguments = ["features", str(actor_01), "--output", str(output), "--jobs", "2", "--cache-dir", str(cache)]
    with _running(arguments) as process:
        deadline = time.monotonic() + 240
        while len(list(cache.rglob("*.npy"))) < 3:
            assert process.poll() is None and time.monotonic() < deadline, "ser features ended or stalled before extracting 3 clips"
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert not output.parent.exists() or os.listdir(output.parent) == []
    assert f"ser: stopped by SIGTERM: {output} left as it was; the clips done are cached in {cache}" in stderr
    cached = len(list(cache.rglob("*.npy")))
    assert 3 <= cached < 60

    finished = subprocess.run([*SER, *arguments], capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert sorted(os.listdir(output.parent)) == [output.name]
    assert len(list(cache.rglob("*.npy"))) == 60
    assert list(cache.rglob("*.tmp")) == []  # what workers ended mid-write left was taken over


@pytest.mark.slow  # a ser process with a pool, stopped by a signal
def test_sigint_with_resume_keeps_complete_rows_and_a_second_resume_changes_nothing(
    clip_folder: Path, small_model_path: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out" / "predictions.jsonl"
    arguments = ["predict", str(clip_folder), "--model", str(small_model_path), "--output", str(output), "--jobs", "1", "--resume"]
    interrupted = _stop_once_writing(arguments, output, signal.SIGINT, whole_group=False)
    assert interrupted.returncode == 130, interrupted.stderr
    kept = read_jsonl_rows(output)
    assert 0 < len(kept) < N_CLIPS

    expected = {row["path"]: _values(row) for row in predict_files([clip_folder], load_model(small_model_path))}
    rows = _check_resume_finishes(arguments[:-1], output, kept, expected)
    again = subprocess.run([*SER, *arguments], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert read_jsonl_rows(output) == rows


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_resume_drops_an_unfinished_last_line_and_redoes_that_file(fmt: str, clip_folder: Path, small_model_path: Path, tmp_path: Path) -> None:
    clips = sorted(clip_folder.iterdir())[:3]
    output = tmp_path / f"predictions.{fmt}"
    common = [*map(str, clips), "--model", str(small_model_path), "--output", str(output), "--jobs", "1"]
    assert CliRunner().invoke(app, ["predict", *common]).exit_code == 0
    complete = output.read_text(encoding="utf-8")
    lines = complete.splitlines(keepends=True)
    output.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2], encoding="utf-8")
    result = CliRunner().invoke(app, ["predict", *common, "--resume"])
    assert result.exit_code == 0, result.output
    assert output.read_text(encoding="utf-8") == complete


def test_resume_needs_a_csv_or_jsonl_output(angry_clip: Path, small_model_path: Path, tmp_path: Path) -> None:
    for target in (["--output", str(tmp_path / "p.txt"), "--format", "table"], ["--format", "csv"]):
        result = CliRunner().invoke(app, ["predict", str(angry_clip), "--model", str(small_model_path), "--resume", *target])
        assert result.exit_code == 2
        assert "--resume needs a CSV or JSONL --output" in result.stderr
    assert os.listdir(tmp_path) == []


def test_resume_refuses_the_output_of_a_model_with_other_classes(angry_clip: Path, small_model_path: Path, tmp_path: Path) -> None:
    output = tmp_path / "p.jsonl"
    foreign = '{"path": "a.wav", "emotion": "calm", "confidence": 1.0, "p_calm": 1.0, "error": ""}\n'
    output.write_text(foreign)
    result = CliRunner().invoke(app, ["predict", str(angry_clip), "--model", str(small_model_path), "-o", str(output), "--resume", "--jobs", "1"])
    assert result.exit_code == 2
    assert "other columns" in result.stderr and str(output) in result.stderr
    assert output.read_text() == foreign


# --- the library parts -----------------------------------------------------------------------


def _rows(paths: str) -> list[dict[str, Any]]:
    """Rows of a two-class model for files named by the letters of ``paths``."""
    columns = prediction_columns(["happy", "sad"])
    return [dict(zip(columns, [path, "sad", 1.0, 0.0, 1.0, ""])) for path in paths]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_write_rows_keeps_the_rows_done_on_a_stop_but_never_fewer_than_resumed(fmt: str, tmp_path: Path) -> None:
    output = tmp_path / f"rows.{fmt}"
    output.write_text("old\n")

    def stopped_after(rows: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        yield from rows
        raise Stopped(signal.SIGTERM)

    columns = prediction_columns(["happy", "sad"])
    for done, resumed in ((0, 0), (2, 3)):  # nothing new, or fewer than the earlier run's rows
        with pytest.raises(Stopped):
            write_rows(stopped_after(_rows("abc"[:done])), columns, fmt, output, keep_on_interrupt=True, resumed_rows=resumed)
        assert output.read_text() == "old\n"
    with pytest.raises(Stopped):
        write_rows(stopped_after(_rows("ab")), columns, fmt, output, keep_on_interrupt=True)
    assert [row["path"] for row in read_rows(output, fmt)] == ["a", "b"]
    assert os.listdir(tmp_path) == [output.name]


def test_atomic_output_keeps_complete_lines_only_when_asked(tmp_path: Path) -> None:
    target = tmp_path / "rows.jsonl"
    target.write_text("old\n")
    for keep in (0, 3, 2):
        with pytest.raises(KeyboardInterrupt):
            with atomic_output(target, "w", keep_lines_on_interrupt=keep) as stream:
                stream.write("first\nsecond\nthi")
                raise KeyboardInterrupt
        assert target.read_text() == ("first\nsecond\n" if keep == 2 else "old\n")
    with pytest.raises(RuntimeError):
        with atomic_output(target, "w", keep_lines_on_interrupt=1) as stream:
            stream.write("other\n")
            raise RuntimeError("any other failure discards the new file")
    assert target.read_text() == "first\nsecond\n"
    assert sorted(os.listdir(tmp_path)) == ["rows.jsonl"]


def test_a_temporary_file_is_taken_over_once_its_writer_is_gone(tmp_path: Path) -> None:
    target = tmp_path / "rows.jsonl"
    leftover = temporary_path(target)
    assert leftover == tmp_path / ".rows.jsonl.tmp"
    leftover.write_text("a killed run's rows\n")
    assert leftover_temporary(target) == leftover
    with atomic_output(target, "w") as first:
        first.write("first\n")
        assert leftover_temporary(target) is None  # held by this writer
        with atomic_output(target, "w") as second:  # a concurrent run: a name of its own
            second.write("second\n")
        assert sorted(os.listdir(tmp_path)) == [".rows.jsonl.tmp", "rows.jsonl"]
    assert target.read_text() == "first\n"
    assert sorted(os.listdir(tmp_path)) == ["rows.jsonl"]


def test_resumable_rows_come_from_a_leftover_first_then_from_the_output(tmp_path: Path) -> None:
    output = tmp_path / "p.csv"
    classes = ["happy", "sad"]
    write_rows(_rows("ab"), prediction_columns(classes), "csv", output)
    with temporary_path(output).open("w") as stream:
        stream.write(",".join(prediction_columns(classes)) + "\n")
        stream.write("b,happy,1.0,1.0,0.0,\nc,happy,1.0,1.0,0.0,\nd,hap")
    rows = resumable_rows(output, "csv", classes)
    assert [(row["path"], row["emotion"]) for row in rows] == [("b", "happy"), ("c", "happy"), ("a", "sad")]


def test_reading_rows_refuses_a_file_that_is_not_a_prediction_output(tmp_path: Path) -> None:
    other = tmp_path / "notes.jsonl"
    other.write_text("not json\n{\"path\": \"a.wav\"}\n")
    with pytest.raises(SERError, match="line 1 is not a prediction row"):
        read_jsonl_rows(other)
    table = tmp_path / "table.csv"
    table.write_text("file,value\na.wav,1\n")
    with pytest.raises(SERError, match="not the header of a prediction file"):
        read_rows(table, "csv")
    assert read_rows(tmp_path / "absent.csv", "csv") == read_jsonl_rows(tmp_path / "absent.jsonl") == []
