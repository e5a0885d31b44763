"""Outputs are atomic, and a JSONL run can be resumed.

``ser predict`` runs as a real subprocess and gets SIGINT once it has started writing (its
temporary file holds rows): without ``--resume`` the output must then be absent or unchanged,
with no temporary file left; with ``--resume`` it must hold complete rows only, and a second
``--resume`` run must finish the job without redoing those rows.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile
from typer.testing import CliRunner

from ser_classic.atomic import atomic_output
from ser_classic.cli import app
from ser_classic.errors import SERError
from ser_classic.models import Model
from ser_classic.outputs import read_jsonl_rows
from ser_classic.prediction import predict_files

SER = [str(Path(sys.executable).with_name("ser"))]  # the installed command, as users run it
N_CLIPS = 24


@pytest.fixture(scope="module")
def clip_folder(ravdess_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One-second excerpts of 24 RAVDESS clips (actor 5), as FLAC."""
    folder = tmp_path_factory.mktemp("clips")
    for number, source in enumerate(sorted((ravdess_root / "Actor_05").glob("*.flac"))[:N_CLIPS]):
        signal_, rate = soundfile.read(source, dtype="float32")
        soundfile.write(folder / f"clip_{number:03d}.flac", signal_[rate : 2 * rate], rate)
    return folder


def _interrupt_once_writing(arguments: list[str], out_dir: Path, *, whole_group: bool) -> subprocess.CompletedProcess:
    """Run ``ser`` with ``arguments``; send SIGINT (to its process group, as Ctrl-C in a terminal
    does, when ``whole_group``) as soon as a temporary output file in ``out_dir`` holds data."""
    process = subprocess.Popen(
        [*SER, *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 240
    while not any(path.stat().st_size > 0 for path in out_dir.glob(".*.tmp")):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            stdout, stderr = process.communicate()
            pytest.fail(f"ser ended or stalled before writing any row (exit {process.returncode}): {stderr[-2000:]}")
        time.sleep(0.01)
    if whole_group:
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.parametrize(
    ("jobs", "existing"),
    [("1", "path,emotion\nold.wav,sad\n"), ("2", None)],
    ids=["one process, over an existing output", "process pool, Ctrl-C to the group, no output yet"],
)
def test_sigint_leaves_no_partial_output(clip_folder: Path, small_model_path: Path, tmp_path: Path, jobs: str, existing: str | None) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    output = out_dir / "predictions.csv"
    if existing is not None:
        output.write_text(existing)
    arguments = ["predict", str(clip_folder), "--model", str(small_model_path), "--output", str(output), "--jobs", jobs]
    result = _interrupt_once_writing(arguments, out_dir, whole_group=jobs != "1")
    assert result.returncode != 0, "the run finished before the interrupt: the test proved nothing"
    if existing is None:
        assert sorted(os.listdir(out_dir)) == []
    else:
        assert sorted(os.listdir(out_dir)) == ["predictions.csv"]
        assert output.read_text() == existing


def test_sigint_with_resume_keeps_complete_rows_and_resume_finishes(clip_folder: Path, small_model_path: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    output = out_dir / "predictions.jsonl"
    arguments = ["predict", str(clip_folder), "--model", str(small_model_path), "--output", str(output), "--jobs", "1", "--resume"]
    interrupted = _interrupt_once_writing(arguments, out_dir, whole_group=False)
    assert interrupted.returncode != 0, "the run finished before the interrupt: the test proved nothing"
    assert sorted(os.listdir(out_dir)) == ["predictions.jsonl"]
    text = output.read_text(encoding="utf-8")
    assert text.endswith("\n")
    kept = [json.loads(line) for line in text.splitlines()]
    assert 0 < len(kept) < N_CLIPS
    assert len({row["path"] for row in kept}) == len(kept)

    # A marked row proves that resuming keeps earlier rows instead of classifying them again.
    kept[0]["confidence"] = 0.123456789
    output.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in kept), encoding="utf-8")
    finished = subprocess.run([*SER, *arguments], capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert sorted(os.listdir(out_dir)) == ["predictions.jsonl"]
    rows = read_jsonl_rows(output)
    assert [row["path"] for row in rows[: len(kept)]] == [row["path"] for row in kept]
    assert rows[0]["confidence"] == 0.123456789
    expected = {row["path"]: row for row in predict_files([clip_folder], Model.load(small_model_path))}
    assert sorted(row["path"] for row in rows) == sorted(expected)
    assert [row for row in rows[1:] if row != expected[row["path"]]] == []

    again = subprocess.run([*SER, *arguments], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert read_jsonl_rows(output) == rows


def test_resume_drops_an_unfinished_last_line_and_redoes_that_file(clip_folder: Path, small_model_path: Path, tmp_path: Path) -> None:
    clips = sorted(clip_folder.iterdir())[:3]
    output = tmp_path / "predictions.jsonl"
    common = [*map(str, clips), "--model", str(small_model_path), "--output", str(output), "--jobs", "1"]
    assert CliRunner().invoke(app, ["predict", *common]).exit_code == 0
    complete = output.read_text(encoding="utf-8")
    first_line, second_line = complete.splitlines(keepends=True)[:2]
    output.write_text(first_line + second_line[: len(second_line) // 2], encoding="utf-8")
    result = CliRunner().invoke(app, ["predict", *common, "--resume"])
    assert result.exit_code == 0, result.output
    assert output.read_text(encoding="utf-8") == complete


def test_resume_needs_a_jsonl_output(angry_clip: Path, small_model_path: Path, tmp_path: Path) -> None:
    for target in (["--output", str(tmp_path / "p.csv")], []):
        result = CliRunner().invoke(app, ["predict", str(angry_clip), "--model", str(small_model_path), "--resume", "--format", "csv", *target])
        assert result.exit_code == 2
        assert "--resume needs a JSONL --output" in result.stderr
    assert not (tmp_path / "p.csv").exists()


def test_resume_refuses_the_output_of_a_model_with_other_classes(angry_clip: Path, small_model_path: Path, tmp_path: Path) -> None:
    output = tmp_path / "p.jsonl"
    foreign = '{"path": "a.wav", "emotion": "calm", "confidence": 1.0, "p_calm": 1.0, "error": ""}\n'
    output.write_text(foreign)
    result = CliRunner().invoke(app, ["predict", str(angry_clip), "--model", str(small_model_path), "-o", str(output), "--resume", "--jobs", "1"])
    assert result.exit_code == 2
    assert "other columns" in result.stderr and str(output) in result.stderr
    assert output.read_text() == foreign


def test_atomic_output_keeps_complete_lines_only_when_asked(tmp_path: Path) -> None:
    target = tmp_path / "rows.jsonl"
    target.write_text("old\n")
    for keep in (False, True):
        with pytest.raises(KeyboardInterrupt):
            with atomic_output(target, "w", keep_lines_on_interrupt=keep) as stream:
                stream.write("first\nsecond\nthi")
                raise KeyboardInterrupt
        assert target.read_text() == ("first\nsecond\n" if keep else "old\n")
    with pytest.raises(RuntimeError):
        with atomic_output(target, "w", keep_lines_on_interrupt=True) as stream:
            stream.write("other\n")
            raise RuntimeError("any other failure discards the new file")
    assert target.read_text() == "first\nsecond\n"
    assert sorted(os.listdir(tmp_path)) == ["rows.jsonl"]


def test_reading_rows_refuses_a_file_that_is_not_a_prediction_output(tmp_path: Path) -> None:
    other = tmp_path / "notes.jsonl"
    other.write_text("not json\n{\"path\": \"a.wav\"}\n")
    with pytest.raises(SERError, match="line 1 is not a prediction row"):
        read_jsonl_rows(other)
    assert read_jsonl_rows(tmp_path / "absent.jsonl") == []
