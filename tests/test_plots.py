"""Signal pictures and the model card's text: what they compute, on real and synthetic audio."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from ser_classic import audio
from ser_classic.features import FEATURE_GROUPS, FeatureConfig, feature_names
from ser_classic.features.conditioning import speech_band, speech_bounds
from ser_classic.model_card import card_markdown, feature_group_sizes, feature_groups
from ser_classic.plots import ENVELOPE_POINTS, f0_figure, mel_spectrogram_figure, signal_tracks, waveform_figure


@pytest.fixture()
def padded_tone(tone: tuple[np.ndarray, int]) -> tuple[np.ndarray, int]:
    """The 220 Hz tone with one second of near-silence before and after it."""
    signal, sample_rate = tone
    quiet = 1e-4 * np.random.default_rng(1).standard_normal(sample_rate).astype(np.float32)
    return np.concatenate([quiet, signal, quiet]), sample_rate


def test_tracks_find_the_pitch_and_the_kept_region_of_a_tone(padded_tone: tuple[np.ndarray, int]) -> None:
    signal, sample_rate = padded_tone
    tracks = signal_tracks(signal, FeatureConfig(sample_rate=sample_rate))
    voiced_f0 = tracks.f0_hz[tracks.voiced]
    assert np.median(voiced_f0) == pytest.approx(220, abs=5)
    assert np.all(np.isnan(tracks.f0_hz[~tracks.voiced]))
    inside = (tracks.frame_seconds > 1.2) & (tracks.frame_seconds < 2.8)
    assert tracks.voiced[inside].mean() > 0.9 and not tracks.voiced[tracks.frame_seconds < 0.8].any()
    start, end = tracks.kept_seconds
    assert start == pytest.approx(1.0, abs=0.1) and end == pytest.approx(3.0, abs=0.1)
    assert tracks.mel_db.shape == (tracks.config.n_mels, tracks.frame_seconds.size)
    assert np.percentile(tracks.mel_db.max(axis=0), 95) == pytest.approx(0, abs=0.05) and tracks.mel_db.min() >= -80


def test_tracks_of_a_speech_clip_match_the_extractor_settings(angry_clip: Path) -> None:
    config = FeatureConfig()
    signal = audio.load(angry_clip, sample_rate=config.sample_rate)
    tracks = signal_tracks(signal, config)
    assert tracks.duration_seconds == pytest.approx(signal.size / config.sample_rate)
    band = speech_band(signal, config)
    np.testing.assert_array_equal(tracks.signal, band)
    assert tracks.kept_seconds == tuple(b / config.sample_rate for b in speech_bounds(band, config))
    assert 0.2 < tracks.voiced.mean() < 0.9
    assert np.all((tracks.f0_hz[tracks.voiced] > config.f0_min_hz) & (tracks.f0_hz[tracks.voiced] < config.f0_max_hz))


def test_each_figure_draws_to_png(padded_tone: tuple[np.ndarray, int]) -> None:
    signal, sample_rate = padded_tone
    tracks = signal_tracks(signal, FeatureConfig(sample_rate=sample_rate))
    for draw in (waveform_figure, mel_spectrogram_figure, f0_figure):
        buffer = io.BytesIO()
        draw(tracks).savefig(buffer, format="png")
        assert buffer.getvalue().startswith(b"\x89PNG")


def test_the_mel_spectrogram_is_drawn_on_the_bands_centre_frequencies_without_librosa(angry_clip: Path) -> None:
    """The mesh's rows are the mel bands' centres (as librosa.display draws them), the axis is
    in Hz, and drawing the demo's pictures of a clip imports neither librosa nor numba."""
    import subprocess
    import sys

    import librosa

    config = FeatureConfig()
    tracks = signal_tracks(audio.load(angry_clip, sample_rate=config.sample_rate), config)
    axes = mel_spectrogram_figure(tracks).axes[0]
    mesh = axes.collections[0]
    np.testing.assert_array_equal(mesh.get_array().reshape(tracks.mel_db.shape), tracks.mel_db)
    rows = np.unique(mesh.get_coordinates()[:, 0, 1])
    centres = librosa.mel_frequencies(config.n_mels, fmin=0.0, fmax=config.sample_rate / 2)
    assert np.all((rows[1:-1] > centres[:-1]) & (rows[1:-1] < centres[1:]))  # cell edges between the centres
    assert axes.get_yscale() == "symlog" and axes.get_ylabel() == "Hz"
    code = (
        "import sys; from ser_classic import audio; from ser_classic.features import FeatureConfig; "
        "from ser_classic.plots import signal_tracks, waveform_figure, mel_spectrogram_figure, f0_figure; "
        f"t = signal_tracks(audio.load({str(angry_clip)!r}, sample_rate=FeatureConfig().sample_rate), FeatureConfig()); "
        "[draw(t).savefig(__import__('io').BytesIO(), format='png') for draw in (waveform_figure, mel_spectrogram_figure, f0_figure)]; "
        "print('librosa' in sys.modules, 'numba' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "False"]


def test_waveform_of_a_long_signal_is_drawn_as_a_bounded_envelope() -> None:
    config = FeatureConfig(n_fft=512, hop_length=4096)  # few frames: the envelope is what is tested
    signal = 0.1 * np.random.default_rng(2).standard_normal(600 * config.sample_rate).astype(np.float32)
    tracks = signal_tracks(signal, config)
    axes = waveform_figure(tracks).axes[0]
    envelope = axes.collections[0].get_paths()[0].vertices
    assert len(envelope) <= 4 * ENVELOPE_POINTS + 8
    shown = tracks.signal  # the speech band of the signal
    assert envelope[:, 1].max() == pytest.approx(shown.max()) and envelope[:, 1].min() == pytest.approx(shown.min())


def test_every_feature_belongs_to_a_named_group() -> None:
    names = feature_names()
    groups = feature_groups(names)
    assert "other" not in set(groups.values())
    assert feature_groups(["mfcc_delta_01_mean", "mfcc_01_mean", "f0_p50", "made_up_1"]) == {
        "mfcc_delta_01_mean": "MFCC dynamics",
        "mfcc_01_mean": "MFCC",
        "f0_p50": "pitch",
        "made_up_1": "other",
    }
    assert sum(feature_group_sizes(names).values()) == len(names)


def test_card_markdown_lists_classes_scores_and_feature_groups() -> None:
    from ser_classic.models import DEFAULT_MODEL_PATH, read_card

    card = read_card(DEFAULT_MODEL_PATH)
    text = card_markdown(card)
    assert all(label in text for label in card["classes"])
    for protocol, scores in card.get("evaluation", {}).items():
        assert f"| **{protocol}** |" in text and f"{scores['mean']['accuracy']:.3f}" in text
    for group, size in feature_group_sizes(card["feature_names"]).items():
        assert f"| {group} | {FEATURE_GROUPS[group].family} | {size} |" in text
