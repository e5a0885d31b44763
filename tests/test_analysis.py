"""analyze_clip: the row ``ser predict`` gives, the pictures' frames and the timeline, from one decode."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from demo_support import write_concatenation
from ser_classic import audio
from ser_classic.analysis import analyze_clip
from ser_classic.features.conditioning import speech_band, speech_bounds
from ser_classic.models import Model, load_model
from ser_classic.prediction import NO_SPEECH, predict_files


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


@pytest.fixture(scope="module")
def three_clips(actor_01: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Angry, sad and happy clips of actor 1 joined by one-second silences (about 14 s)."""
    path = tmp_path_factory.mktemp("long") / "three clips.wav"
    write_concatenation([actor_01 / f"03-01-{emotion}-02-01-01-01.flac" for emotion in ("05", "04", "03")], path)
    return path


@pytest.fixture()
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Counts of the file openings (every decode and header read goes through ``audio._open``),
    of ``audio.load`` and ``audio.read_blocks``, and of the extractor's STFT and YIN, from here on."""
    from ser_classic.features import dsp

    counts: Counter = Counter()

    def counted(owner: object, name: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            counts[name] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    for name in ("_open", "load", "read_blocks"):
        counted(audio, name)
    for name in ("stft", "yin"):
        counted(dsp, name)
    return counts


def test_the_row_is_the_one_ser_predict_gives(angry_clip: Path, model: Model) -> None:
    clip = analyze_clip(angry_clip, model)
    expected = next(predict_files([angry_clip], model))
    assert {k: v for k, v in clip.row.items() if k != "path"} == {k: v for k, v in expected.items() if k != "path"}
    assert list(clip.probabilities) == model.classes and clip.has_speech


def test_a_short_clip_is_decoded_once_and_described_with_one_stft_and_one_pitch_track(
    angry_clip: Path, model: Model, calls: Counter
) -> None:
    clip = analyze_clip(angry_clip, model, window_seconds=10.0)
    assert clip.timeline is None
    assert calls == {"_open": 1, "load": 1, "stft": 1, "yin": 1}


def test_the_pictures_show_the_frames_the_features_summarize(angry_clip: Path, model: Model) -> None:
    from ser_classic.features import FeatureExtractor

    config = model.feature_config
    clip = analyze_clip(angry_clip, model)
    signal = audio.load(angry_clip, sample_rate=config.sample_rate)
    band = speech_band(signal, config)
    np.testing.assert_array_equal(clip.tracks.signal, band)
    start, end = speech_bounds(band, config)
    assert clip.tracks.kept_seconds == (start / config.sample_rate, end / config.sample_rate)
    assert clip.tracks.frame_seconds[0] == start / config.sample_rate
    features = FeatureExtractor(config).extract_file(angry_clip)
    assert clip.tracks.voiced.mean() == features["voiced_fraction"]


def test_a_long_recording_is_decoded_once_and_gets_the_timeline_of_its_signal(
    three_clips: Path, model: Model, calls: Counter
) -> None:
    from ser_classic.timeline import speech_shares, timeline

    clip = analyze_clip(three_clips, model, window_seconds=3.0)
    assert (calls["_open"], calls["load"], calls["read_blocks"]) == (1, 1, 0)
    rate = model.feature_config.sample_rate
    signal = audio.load(three_clips, sample_rate=rate, max_seconds=None)
    pd.testing.assert_frame_equal(clip.timeline, timeline(signal, model, sample_rate=rate, window_seconds=3.0))
    pd.testing.assert_series_equal(clip.speech_shares, speech_shares(clip.timeline))


def test_a_clip_whose_speech_fills_one_window_has_no_speech_shares(angry_clip: Path, model: Model) -> None:
    clip = analyze_clip(angry_clip, model, window_seconds=3.0)
    assert clip.timeline is not None and clip.timeline["speech"].sum() == 1
    assert clip.speech_shares is None


def test_a_recording_without_speech_gets_no_speech_and_no_timeline(model: Model, tmp_path: Path) -> None:
    sample_rate = 16000
    seconds = np.arange(8 * sample_rate) / sample_rate
    hum = tmp_path / "hum.wav"
    soundfile.write(hum, 0.2 * np.sin(2 * np.pi * 50.0 * seconds), sample_rate)
    clip = analyze_clip(hum, model)
    assert not clip.has_speech and clip.row["emotion"] == NO_SPEECH and "no speech" in clip.row["error"]
    assert clip.probabilities == {} and clip.timeline is None and clip.speech_shares is None
    assert clip.row == next(predict_files([hum], model)) | {"path": str(hum)}


def test_a_model_that_standardizes_over_many_clips_is_refused_before_decoding(
    small_training_set: tuple, angry_clip: Path, calls: Counter
) -> None:
    from ser_classic.errors import ModelError
    from ser_classic.models import train

    features, labels = small_training_set
    batch_model = train(features, labels, classifier="logreg", batches=["ravdess"] * len(labels), batch_norm=True)
    with pytest.raises(ModelError, match="per batch"):
        analyze_clip(angry_clip, batch_model)
    assert calls["_open"] == 0
