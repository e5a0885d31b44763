"""`ser predict` on recordings saved the way phones and video calls save them.

RAVDESS clips of actors 19 and 22 (all eight emotions, normal intensity) are re-encoded with
PyAV's encoders as AAC in ``.m4a`` (96 kbit/s), AAC in ``.mp4`` beside a video track (128
kbit/s) and Opus in ``.webm`` (48 kbit/s), and put in one folder with their FLAC originals, a
truncated ``.m4a`` and a video-only ``.mp4``. One run of the real ``ser predict`` (the bundled
model, the default process pool) over that folder must label every good file, agree with the
FLAC labels on at least 85% of the clips per format, give each broken file one error row, and
exit with 1, writing nothing but its own messages to stderr.

The bundled model was trained on all 24 actors, so its labels of these clips are more stable
than those of new speakers: this checks the decoding path end to end. The agreement of a model
that never heard actors 19-24 is measured by ``benchmarks/format_agreement.py``.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile
from media import write_encoded, write_video_only

SER = str(Path(sys.executable).with_name("ser"))
ACTORS = (19, 22)
#: Folder -> (ending, codec, encoder settings): the formats of the issue's acceptance.
FORMATS = {
    "m4a": (".m4a", "aac", {"bit_rate": 96000}),
    "mp4": (".mp4", "aac", {"bit_rate": 128000, "with_video": True}),
    "webm": (".webm", "libopus", {"bit_rate": 48000, "codec_rate": 48000}),
}
MIN_AGREEMENT = 0.85


@pytest.fixture(scope="module")
def batch(ravdess_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``flac/`` (links to the originals), one folder per format, and ``broken/``."""
    root = tmp_path_factory.mktemp("formats")
    clips = [ravdess_root / f"Actor_{actor:02d}" / f"03-01-{emotion:02d}-01-01-01-{actor:02d}.flac" for actor in ACTORS for emotion in range(1, 9)]
    (root / "flac").mkdir()
    for clip in clips:
        (root / "flac" / clip.name).symlink_to(clip)
    for folder, (ending, codec, settings) in FORMATS.items():
        (root / folder).mkdir()
        for clip in clips:
            signal, sample_rate = soundfile.read(clip, dtype="float32")
            write_encoded(root / folder / clip.with_suffix(ending).name, signal, sample_rate, codec, **settings)
    (root / "broken").mkdir()
    truncated = write_encoded(root / "broken" / "truncated.m4a", *soundfile.read(clips[0], dtype="float32"), "aac", bit_rate=96000)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    write_video_only(root / "broken" / "video only.mp4")
    return root


@pytest.fixture(scope="module")
def predicted(batch: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, dict[Path, dict]]:
    """``ser predict BATCH --output predictions.csv``: the finished process and path -> row."""
    output = tmp_path_factory.mktemp("predictions") / "predictions.csv"
    finished = subprocess.run([SER, "predict", str(batch), "--output", str(output)], capture_output=True, text=True, timeout=600)
    with open(output, encoding="utf-8", newline="") as stream:
        return finished, {Path(row["path"]): row for row in csv.DictReader(stream)}


def test_every_clip_in_m4a_mp4_and_webm_gets_a_label_mostly_the_flac_one(batch: Path, predicted) -> None:
    _, rows = predicted
    flac = {path.stem: row["emotion"] for path, row in rows.items() if path.parent.name == "flac"}
    assert len(flac) == 8 * len(ACTORS) and all(flac.values())
    for folder in FORMATS:
        encoded = {path.stem: row for path, row in rows.items() if path.parent.name == folder}
        assert set(encoded) == set(flac), folder
        assert all(row["error"] == "" and row["emotion"] for row in encoded.values()), folder
        agreement = sum(encoded[stem]["emotion"] == label for stem, label in flac.items()) / len(flac)
        assert agreement >= MIN_AGREEMENT, f"{folder}: {agreement:.0%} of the labels equal the FLAC ones"


def test_a_truncated_m4a_and_a_video_only_mp4_get_one_error_row_each_and_exit_1(batch: Path, predicted) -> None:
    finished, rows = predicted
    assert finished.returncode == 1
    errors = {path.name: row for path, row in rows.items() if row["error"]}
    assert set(errors) == {"truncated.m4a", "video only.mp4"}
    assert errors["truncated.m4a"]["error"].startswith("not a readable audio file (")
    assert errors["video only.mp4"]["error"] == "no audio track (video only)"
    assert all(row["emotion"] == "" for row in errors.values())
    assert len(rows) == 8 * len(ACTORS) * (1 + len(FORMATS)) + 2
    lines = [line for line in re.split(r"[\r\n]", finished.stderr) if line.strip()]
    for name in errors:
        assert sum(f"{batch / 'broken' / name}: " in line for line in lines) == 1, name
    assert lines[-1] == f"ser: 2 of {len(rows)} file(s) could not be classified (see the error column)"
    decoder_logs = [line for line in lines if not line.startswith("ser: ") and "it/s" not in line and "file" not in line]
    assert decoder_logs == [], "FFmpeg's own messages must not reach stderr"
