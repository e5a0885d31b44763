"""Corpus readers (RAVDESS names, folder per label, CSV manifest) and class selection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from ser_classic.audio import AUDIO_EXTENSIONS
from ser_classic.corpus import (
    EMOTION_SETS,
    count_audio_files,
    find_audio_files,
    parse_ravdess_name,
    read_corpus,
    read_label_folders,
    read_manifest,
    select_classes,
)
from ser_classic.errors import CorpusError

RAVDESS_LABELS = ["angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised"]


def write_clip(path: Path, frequency_hz: float = 220.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    time = np.arange(2205) / 22050
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * frequency_hz * time), 22050)
    return path


@pytest.fixture(scope="module")
def ravdess_table(ravdess_root: Path) -> pd.DataFrame:
    return read_corpus(ravdess_root)


# --- RAVDESS names --------------------------------------------------------------------------


def test_ravdess_name_gives_every_field() -> None:
    assert parse_ravdess_name("/data/Actor_12/03-01-05-02-01-02-12.flac") == {
        "label": "angry",
        "speaker": "Actor_12",
        "vocal_channel": "speech",
        "intensity": "strong",
        "statement": 1,
        "repetition": 2,
        "actor": 12,
        "gender": "female",
    }
    song = parse_ravdess_name("03-02-08-01-02-01-07.wav")
    assert (song["label"], song["vocal_channel"], song["intensity"], song["statement"], song["gender"]) == (
        "surprised", "song", "normal", 2, "male",
    )


@pytest.mark.parametrize(
    "name",
    ["recording.wav", "03-01-09-01-01-01-01.wav", "03-03-05-01-01-01-01.wav", "03-01-05-01-01-01.wav", "03-01-05-01-01-01-1a.wav"],
)
def test_bad_ravdess_name_raises_corpus_error_naming_it(name: str) -> None:
    with pytest.raises(CorpusError, match="not a RAVDESS file name") as caught:
        parse_ravdess_name(name)
    assert caught.value.path == name


# --- the real RAVDESS -------------------------------------------------------------------------


def test_read_corpus_on_ravdess_gives_1440_clips_of_24_speakers(ravdess_table: pd.DataFrame) -> None:
    assert len(ravdess_table) == 1440
    assert list(ravdess_table.columns[:3]) == ["path", "label", "speaker"]
    assert ravdess_table["speaker"].nunique() == 24
    assert set(ravdess_table["speaker"].value_counts()) == {60}
    counts = ravdess_table["label"].value_counts().to_dict()
    assert sorted(counts) == RAVDESS_LABELS
    assert counts == {label: 96 if label == "neutral" else 192 for label in RAVDESS_LABELS}
    assert ravdess_table["path"].is_unique
    assert list(ravdess_table["path"]) == sorted(ravdess_table["path"])
    assert all(Path(path).is_file() for path in ravdess_table["path"].iloc[::97])
    assert set(ravdess_table["gender"]) == {"male", "female"}


@pytest.mark.parametrize(("classes", "expected"), [("ravdess7", 1248), ("basic4", 96 + 3 * 192), ("ravdess8", 1440)])
def test_select_classes_by_set_name(ravdess_table: pd.DataFrame, classes: str, expected: int) -> None:
    selected = select_classes(ravdess_table, classes)
    assert len(selected) == expected
    assert sorted(set(selected["label"])) == sorted(EMOTION_SETS[classes])
    assert selected.index.equals(pd.RangeIndex(expected))


def test_select_classes_by_comma_list_and_sequence(ravdess_table: pd.DataFrame) -> None:
    by_text = select_classes(ravdess_table, "angry, sad")
    assert sorted(set(by_text["label"])) == ["angry", "sad"]
    assert len(by_text) == 384
    assert select_classes(ravdess_table, ["sad", "angry"]).equals(by_text)
    assert select_classes(ravdess_table, None) is ravdess_table


def test_select_classes_refuses_an_unknown_class(ravdess_table: pd.DataFrame) -> None:
    with pytest.raises(CorpusError, match="boredom"):
        select_classes(ravdess_table, "angry,boredom")


# --- folder per label and CSV manifest --------------------------------------------------------


def test_label_folders_give_label_and_speaker(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    write_clip(root / "happy" / "spk1" / "a.wav")
    write_clip(root / "happy" / "spk2" / "nested" / "b.flac")
    write_clip(root / "sad" / "c.wav")
    (root / "sad" / "notes.txt").write_text("not audio")
    write_clip(root / "stray.wav")
    table = read_corpus(root)
    assert read_label_folders(root).equals(table.drop(columns="corpus"))
    assert set(table["corpus"]) == {"corpus"}  # a label-folder corpus is named after its folder
    rows = {Path(path).name: (label, speaker) for path, label, speaker in table[["path", "label", "speaker"]].itertuples(index=False)}
    assert rows == {"a.wav": ("happy", "spk1"), "b.flac": ("happy", "spk2"), "c.wav": ("sad", "unknown")}


def test_empty_label_folders_raise_corpus_error(tmp_path: Path) -> None:
    (tmp_path / "happy").mkdir()
    with pytest.raises(CorpusError, match="no audio files") as caught:
        read_corpus(tmp_path, kind="folders")
    assert all(ending in str(caught.value) for ending in AUDIO_EXTENSIONS), "the message lists every format read"


def test_manifest_paths_are_resolved_from_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "manifests"
    relative = write_clip(folder / "clips" / "one.wav")
    absolute = write_clip(tmp_path / "elsewhere" / "two.wav")
    manifest = folder / "corpus.csv"
    manifest.write_text(f"path,label,speaker,session\nclips/one.wav,angry,s1,a\n{absolute},calm,s2,b\n")
    monkeypatch.chdir(tmp_path)
    table = read_corpus(manifest)
    assert read_manifest(manifest).equals(table.drop(columns="corpus"))
    assert set(table["corpus"]) == {"corpus"}  # a manifest without a corpus column is named after its file
    assert sorted(table["path"]) == sorted([str(relative), str(absolute)])
    assert all(Path(path).is_file() for path in table["path"])
    assert dict(zip(table["label"], table["speaker"])) == {"angry": "s1", "calm": "s2"}
    assert list(table.columns) == ["path", "label", "speaker", "corpus", "session"]


def test_manifest_without_speaker_column_gets_unknown(tmp_path: Path) -> None:
    write_clip(tmp_path / "a.wav")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\na.wav,happy\n")
    assert list(read_corpus(manifest)["speaker"]) == ["unknown"]


def test_manifest_without_label_column_raises_corpus_error(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,emotion\na.wav,happy\n")
    with pytest.raises(CorpusError, match="label") as caught:
        read_corpus(manifest)
    assert caught.value.path == str(manifest)


def test_missing_corpus_and_unknown_kind_raise_corpus_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no such file"):
        read_corpus(tmp_path / "missing")
    with pytest.raises(CorpusError, match="unknown corpus kind"):
        read_corpus(tmp_path, kind="timit")


def test_find_audio_files_recurses_sorted_and_keeps_named_files(tmp_path: Path) -> None:
    write_clip(tmp_path / "b" / "2.wav")
    write_clip(tmp_path / "a" / "1.FLAC")
    (tmp_path / "a" / "readme.md").write_text("x")
    named = tmp_path / "a" / "readme.md"
    assert find_audio_files([tmp_path, named]) == [tmp_path / "a" / "1.FLAC", tmp_path / "b" / "2.wav", named]


def test_folder_search_finds_phone_and_video_recordings(tmp_path: Path) -> None:
    names = ["memo.m4a", "note.aac", "call.MP4", "screen.mov", "meeting.webm", "talk.mkv", "voicemail.amr", "dictation.wma"]
    for name in names:
        (tmp_path / name).write_bytes(b"\0")  # only the ending counts when searching
    (tmp_path / "cover.jpg").write_bytes(b"\0")
    assert find_audio_files([tmp_path]) == sorted(tmp_path / name for name in names)


def test_find_audio_files_follows_a_linked_folder_once_and_names_a_loop(
    actor_01: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A folder holding a link to a link of an actor's folder (no copy), a second link to the
    same folder, and a link back to itself: the actor's clips are found once, under the first
    link's name, and the loop is named in a warning."""
    batch = tmp_path / "batch"
    batch.mkdir()
    (tmp_path / "actor link").symlink_to(actor_01, target_is_directory=True)
    (batch / "a actor").symlink_to(tmp_path / "actor link", target_is_directory=True)
    (batch / "b same actor").symlink_to(actor_01, target_is_directory=True)
    (batch / "loop").symlink_to(batch, target_is_directory=True)
    with caplog.at_level("WARNING", logger="ser_classic.corpus"):
        found = find_audio_files([batch])
    assert found == [batch / "a actor" / path.name for path in sorted(actor_01.glob("*.flac"))]
    messages = [record.getMessage() for record in caplog.records]
    assert any(str(batch / "loop") in message and "loop" in message for message in messages)
    assert any(str(batch / "b same actor") in message and "already read" in message for message in messages)
    caplog.clear()
    with caplog.at_level("WARNING", logger="ser_classic.corpus"):
        assert count_audio_files([batch, actor_01 / found[0].name, tmp_path / "missing.wav"]) == len(found) + 2
    assert caplog.records == []  # counting says nothing: the search that follows does
