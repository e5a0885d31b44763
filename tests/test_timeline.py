"""Emotion timeline of long recordings: speech regions, windows, segments, CLI, bounded memory.

The recording under test concatenates RAVDESS clips (angry, sad, calm) of actors 17-24, each
trimmed as the extractor trims clips, with 1 s of quiet noise (-80 dBFS, the level of the
clips' own background) between them. The model is trained here on actors 1-12 only, so every
clip of the recording is held out.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile
from typer.testing import CliRunner

from ser_classic import audio
from ser_classic.cli import app
from ser_classic.corpus import read_corpus
from ser_classic.errors import AudioError, SERError
from ser_classic.features import FeatureExtractor
from ser_classic.features.conditioning import speech_band, speech_bounds
from ser_classic.models import Model, train
from ser_classic.prediction import predict_files
from ser_classic.timeline import (
    NON_SPEECH,
    frame_levels,
    plot_timeline,
    segments,
    smooth_probabilities,
    speech_regions,
    timeline,
    timeline_columns,
    window_bounds,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CLASSES = {"05": "angry", "04": "sad", "02": "calm"}
TRAIN_ACTORS = [f"Actor_{number:02d}" for number in range(1, 13)]
HELD_OUT_ACTORS = [str(number) for number in range(17, 25)]
RATE = audio.ANALYSIS_SAMPLE_RATE
TOLERANCE_SECONDS = 0.3


@pytest.fixture(scope="module")
def held_out_model(ravdess_root: Path) -> Model:
    """SVM on angry/sad/calm clips of actors 1-12 (features from the project's cache)."""
    corpus = read_corpus(ravdess_root, "ravdess")
    table = corpus[corpus["label"].isin(CLASSES.values()) & corpus["speaker"].isin(TRAIN_ACTORS)]
    extractor = FeatureExtractor(cache_dir=PROJECT_ROOT / "features" / "cache", n_jobs=2)
    features = extractor.extract_files(table["path"].tolist())
    return train(features, table["label"].tolist(), classifier="svm", seed=0)


@pytest.fixture(scope="module")
def model_file(held_out_model: Model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "held-out.joblib"
    held_out_model.save(path)
    return path


@pytest.fixture(scope="module")
def recording(ravdess_root: Path, held_out_model: Model, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """24 held-out clips, angry/sad/calm in turn, 1 s of quiet noise around each."""
    rng = np.random.default_rng(0)
    config = held_out_model.feature_config

    def pause() -> np.ndarray:
        return (1e-4 * rng.standard_normal(RATE)).astype(np.float32)

    parts, clips, position = [pause()], [], 1.0
    for actor in HELD_OUT_ACTORS:
        for code, emotion in CLASSES.items():
            path = ravdess_root / f"Actor_{actor}" / f"03-01-{code}-02-01-01-{actor}.flac"
            clip = audio.load(path, sample_rate=RATE)
            start, end = speech_bounds(speech_band(clip, config), config)
            clip = clip[start:end]
            clips.append({"path": str(path), "emotion": emotion, "start": position, "end": position + clip.size / RATE})
            parts += [clip, pause()]
            position += clip.size / RATE + 1.0
    signal = np.concatenate(parts)
    file = tmp_path_factory.mktemp("recording") / "concatenated.wav"
    soundfile.write(file, signal, RATE, subtype="FLOAT")
    return {"path": file, "signal": signal, "clips": pd.DataFrame(clips)}


@pytest.fixture(scope="module")
def frame(recording: dict, held_out_model: Model) -> pd.DataFrame:
    return timeline(recording["path"], held_out_model, window_seconds=3.0, hop_seconds=1.0)


def speech_runs(frame: pd.DataFrame) -> list[tuple[float, float]]:
    """Extents of the runs of overlapping speech windows."""
    runs: list[list[float]] = []
    for start, end in frame.loc[frame["speech"], ["start", "end"]].itertuples(index=False):
        if runs and start <= runs[-1][1]:
            runs[-1][1] = max(runs[-1][1], end)
        else:
            runs.append([start, end])
    return [(start, end) for start, end in runs]


# --------------------------------------------------------------------------- reading and levels
def test_read_blocks_streams_the_same_samples_as_load(angry_clip: Path) -> None:
    blocks = list(audio.read_blocks(angry_clip, block_seconds=0.37))
    whole = audio.load(angry_clip)
    assert len(blocks) > 5
    streamed = np.concatenate(blocks)
    assert streamed.shape == whole.shape
    # the stream takes its first block's mean around the resampler, load the whole file's: the
    # filter's start differs by the difference of the two (1.4e-5 at the first sample here)
    np.testing.assert_allclose(streamed, whole, atol=5e-5)


def test_read_blocks_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="no such file") as caught:
        next(audio.read_blocks(tmp_path / "absent.wav"))
    assert caught.value.path == str(tmp_path / "absent.wav")


def test_frame_levels_over_blocks_equal_librosa_rms(angry_clip: Path) -> None:
    signal = audio.load(angry_clip)
    cuts = [0, 1000, 1001, 7000, 30000, signal.size]
    levels, n_samples = frame_levels(signal[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True))
    rms = librosa.feature.rms(y=signal, frame_length=audio.FRAME_LENGTH, hop_length=audio.HOP_LENGTH, center=True, pad_mode="constant")[0]
    assert n_samples == signal.size
    np.testing.assert_allclose(levels, 20 * np.log10(np.maximum(rms, 1e-5)), atol=1e-3)


# --------------------------------------------------------------------------- speech and windows
def test_speech_regions_line_up_with_the_clips(recording: dict, frame: pd.DataFrame) -> None:
    clips = recording["clips"]
    for regions in (speech_regions(recording["path"]), pd.DataFrame(speech_runs(frame), columns=["start", "end"])):
        for clip in clips.itertuples():
            assert np.min(np.abs(regions["start"] - clip.start)) <= TOLERANCE_SECONDS, clip
            assert np.min(np.abs(regions["end"] - clip.end)) <= TOLERANCE_SECONDS, clip
        for region in regions.itertuples():
            inside = (clips["start"] - TOLERANCE_SECONDS <= region.start) & (
                region.end <= clips["end"] + TOLERANCE_SECONDS
            )
            assert inside.sum() == 1, f"speech region {region.start:.2f}-{region.end:.2f} s is not inside one clip"


def test_silence_between_clips_is_non_speech_without_probabilities(recording: dict, frame: pd.DataFrame) -> None:
    clips = recording["clips"]
    duration = recording["signal"].size / RATE
    gaps = zip([0.0, *clips["end"]], [*clips["start"], duration], strict=True)
    probability_columns = [c for c in frame.columns if c.startswith("p_")]
    for gap_start, gap_end in gaps:
        overlapping = frame[
            (frame["end"] > gap_start + TOLERANCE_SECONDS) & (frame["start"] < gap_end - TOLERANCE_SECONDS)
        ]
        assert len(overlapping) == 1
        assert not overlapping["speech"].any()
        assert (overlapping["emotion"] == NON_SPEECH).all()
        assert overlapping[["confidence", *probability_columns]].isna().all(axis=None)
    assert NON_SPEECH not in set(frame.loc[frame["speech"], "emotion"])


def test_timeline_agrees_with_predict_on_at_least_90_percent_of_clips(
    recording: dict, frame: pd.DataFrame, held_out_model: Model
) -> None:
    clips = recording["clips"]
    predicted = {row["path"]: row["emotion"] for row in predict_files(clips["path"], held_out_model)}
    merged = segments(frame)
    agree = 0
    for clip in clips.itertuples():
        overlap = (np.minimum(merged["end"], clip.end) - np.maximum(merged["start"], clip.start)).clip(lower=0)
        by_label = overlap[merged["emotion"] != NON_SPEECH].groupby(merged["emotion"]).sum()
        agree += by_label.idxmax() == predicted[clip.path]
    assert agree >= 0.9 * len(clips), f"{agree} of {len(clips)} clips agree"


def test_rows_are_ordered_windows_with_probabilities_summing_to_one(frame: pd.DataFrame, held_out_model: Model) -> None:
    assert list(frame.columns) == timeline_columns(held_out_model.classes)
    assert frame["start"].is_monotonic_increasing
    speech = frame[frame["speech"]]
    probabilities = speech[[f"p_{c}" for c in held_out_model.classes]]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-9)
    assert (speech["emotion"] == probabilities.idxmax(axis=1).str[2:]).all()
    np.testing.assert_allclose(speech["confidence"], probabilities.max(axis=1))
    assert (speech["end"] - speech["start"] <= 3.0 + 1e-9).all()


def test_segments_partition_time_and_merge_equal_neighbours(recording: dict, frame: pd.DataFrame) -> None:
    merged = segments(frame)
    assert merged.columns.tolist() == ["start", "end", "emotion", "confidence"]
    assert merged["start"].iloc[0] == 0.0
    assert merged["end"].iloc[-1] == pytest.approx(recording["signal"].size / RATE, abs=1e-6)
    np.testing.assert_allclose(merged["start"].iloc[1:].to_numpy(), merged["end"].iloc[:-1].to_numpy())
    assert (merged["end"] > merged["start"]).all()
    assert (merged["emotion"].iloc[1:].to_numpy() != merged["emotion"].iloc[:-1].to_numpy()).all()


def test_long_regions_get_overlapping_windows_ending_at_the_region_end() -> None:
    windows = window_bounds(np.array([[0, 100], [200, 230], [300, 1000]]), 60, 20)
    assert windows[:3].tolist() == [[0, 60, 0], [20, 80, 0], [40, 100, 0]]
    assert windows[3].tolist() == [200, 230, 1]
    last = windows[windows[:, 2] == 2]
    assert last[0, 0] == 300 and last[-1, 1] == 1000
    assert np.all(np.diff(last[:, 0]) <= 20) and np.all(last[:, 1] - last[:, 0] == 60)


def test_smoothing_averages_neighbours_within_one_region_only() -> None:
    probabilities = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    centres = np.array([1.0, 2.0, 3.0, 4.0])
    regions = np.array([0, 0, 0, 1])
    assert smooth_probabilities(probabilities, centres, regions, 0.0) is probabilities
    smoothed = smooth_probabilities(probabilities, centres, regions, 2.0)
    np.testing.assert_allclose(smoothed[1], [2 / 3, 1 / 3])
    np.testing.assert_allclose(smoothed[3], [0.0, 1.0])  # alone in its region
    np.testing.assert_allclose(smoothed.sum(axis=1), 1.0)


def test_smoothing_option_changes_probabilities_but_not_speech(
    recording: dict, held_out_model: Model, frame: pd.DataFrame
) -> None:
    smoothed = timeline(recording["signal"], held_out_model, sample_rate=RATE, smoothing=10.0)
    assert smoothed[["start", "end", "speech"]].equals(frame[["start", "end", "speech"]])
    columns = [f"p_{c}" for c in held_out_model.classes]
    for _, run in smoothed[smoothed["speech"]].groupby((~smoothed["speech"]).cumsum()):
        # 10 s spans every window of a clip: each window holds the clip's mean
        np.testing.assert_allclose(
            run[columns].to_numpy(), np.broadcast_to(run[columns].iloc[0], (len(run), len(columns)))
        )


def test_signal_input_gives_the_rows_of_file_input(recording: dict, held_out_model: Model, frame: pd.DataFrame) -> None:
    from_signal = timeline(recording["signal"], held_out_model, sample_rate=RATE)
    pd.testing.assert_frame_equal(from_signal, frame)


def test_all_silence_is_one_non_speech_row(held_out_model: Model) -> None:
    quiet = (3e-4 * np.random.default_rng(1).standard_normal(5 * RATE)).astype(np.float32)
    result = timeline(quiet, held_out_model, sample_rate=RATE)
    assert result[["start", "end", "speech", "emotion"]].values.tolist() == [[0.0, 5.0, False, NON_SPEECH]]


def test_invalid_settings_and_inputs_raise_ser_errors(held_out_model: Model, tmp_path: Path) -> None:
    with pytest.raises(SERError, match="hop_seconds"):
        timeline(np.ones(RATE), held_out_model, sample_rate=RATE, window_seconds=1.0, hop_seconds=2.0)
    with pytest.raises(SERError, match="sample_rate"):
        timeline(np.ones(RATE), held_out_model)
    with pytest.raises(AudioError) as caught:
        timeline(tmp_path / "absent.flac", held_out_model)
    assert caught.value.path == str(tmp_path / "absent.flac")


def test_plot_is_a_png_with_waveform_or_regions(frame: pd.DataFrame, recording: dict, tmp_path: Path) -> None:
    import matplotlib.image

    for name, kwargs in (("wave.png", {"signal": recording["signal"], "sample_rate": RATE}), ("regions.png", {})):
        plot_timeline(frame, tmp_path / name, **kwargs)
        image = matplotlib.image.imread(tmp_path / name)
        assert image.shape[0] > 400 and image.shape[1] > 1000
        assert image[..., :3].std() > 0.1  # not a blank canvas


def test_every_class_of_eight_and_non_speech_get_clearly_different_colours() -> None:
    from ser_classic.corpus import EMOTION_SETS
    from ser_classic.timeline import timeline_colours

    colours = timeline_colours(EMOTION_SETS["ravdess8"])
    rgb = np.array([colour[:3] for colour in colours.values()])
    distances = np.linalg.norm(rgb[:, None, :] - rgb[None, :, :], axis=2)
    assert len(colours) == 9 and distances[~np.eye(len(rgb), dtype=bool)].min() > 0.2
    chroma = rgb.max(axis=1) - rgb.min(axis=1)
    assert chroma[-1] == 0 and chroma[:-1].min() > 0.2, "grey is non-speech's alone"


# --------------------------------------------------------------------------- command line
def test_cli_writes_csv_jsonl_and_a_png(recording: dict, model_file: Path, frame: pd.DataFrame, tmp_path: Path) -> None:
    runner = CliRunner()
    csv_path, png_path, jsonl_path = tmp_path / "timeline.csv", tmp_path / "timeline.png", tmp_path / "segments.jsonl"
    arguments = ["timeline", str(recording["path"]), "--model", str(model_file), "--window", "3", "--hop", "1"]
    result = runner.invoke(app, [*arguments, "--output", str(csv_path), "--plot", str(png_path)])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(csv_path)
    assert written.columns.tolist() == frame.columns.tolist()
    assert len(written) == len(frame)
    assert (written["emotion"] == frame["emotion"]).all()
    np.testing.assert_allclose(written["start"], frame["start"], atol=5e-4)
    assert written.loc[~written["speech"], "p_angry"].isna().all()
    assert {line.split(",")[2] for line in csv_path.read_text().splitlines()[1:]} == {"true", "false"}  # as in JSON
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    result = runner.invoke(app, [*arguments, "--segments", "--format", "jsonl", "--output", str(jsonl_path)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in jsonl_path.read_text().splitlines()]
    assert [list(row) for row in rows[:1]] == [["start", "end", "emotion", "confidence"]]
    assert [row["emotion"] for row in rows] == segments(frame)["emotion"].tolist()
    assert all(row["confidence"] is None for row in rows if row["emotion"] == NON_SPEECH)


def test_cli_reports_a_missing_file_and_bad_settings(model_file: Path, tmp_path: Path, recording: dict) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["timeline", str(tmp_path / "absent.wav"), "--model", str(model_file)])
    assert missing.exit_code == 2
    assert "absent.wav" in missing.output and "no such file" in missing.output
    bad = runner.invoke(
        app, ["timeline", str(recording["path"]), "--model", str(model_file), "--window", "1", "--hop", "2"]
    )
    assert bad.exit_code == 2
    assert "hop" in bad.output


@pytest.mark.slow  # writes and reads a one-hour file
def test_one_hour_file_runs_in_bounded_memory(model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`ser timeline` on synthetic 5-minute and 1-hour files: peak RSS under 1 GB, not growing."""
    script = PROJECT_ROOT / "benchmarks" / "timeline_memory.py"
    command = [
        sys.executable,
        str(script),
        "--minutes",
        "5",
        "60",
        "--model",
        str(model_file),
        "--workdir",
        str(tmp_path),
    ]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
    reports = [json.loads(line) for line in finished.stdout.splitlines()]
    with capsys.disabled():
        for report in reports:
            print(f"\n[timeline memory] {report}")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    short, long = reports
    assert long["rows"] == 2 * long["bursts"]  # every burst is a speech window, every pause a non-speech row
    assert long["peak_rss_mb"] < 1024
    # holding the hour at the analysis rate alone would add 300 MB
    assert long["peak_rss_mb"] - short["peak_rss_mb"] < 64
