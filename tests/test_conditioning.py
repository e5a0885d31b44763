"""What the extractor does before any feature (:mod:`ser_classic.features.conditioning`): the
speech band (no offset, no clicks, nothing below ``band_low_hz``) and the speech's bounds,
with levels relative to a robust reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from ser_classic import audio
from ser_classic.features import FeatureConfig
from ser_classic.features.conditioning import (
    STOPBAND_ATTENUATION_DB,
    SpeechBand,
    band_filter,
    frame_levels_db,
    reference_level,
    repair_clicks,
    speech_band,
    speech_bounds,
)

CFG = FeatureConfig()
SR = CFG.sample_rate


def level_db(signal: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.asarray(signal, dtype=np.float64) ** 2))


@pytest.fixture(scope="module")
def clip(ravdess_root: Path) -> np.ndarray:
    return audio.load(ravdess_root / "Actor_19" / "03-01-05-01-01-01-19.flac")


def test_the_high_pass_keeps_the_voice_and_stops_mains_hum() -> None:
    frequencies = [0.5, 50.0, 60.0, 64.0, 80.0, 100.0, 200.0, 1000.0]
    _, response = scipy.signal.sosfreqz(band_filter(SR, CFG.band_low_hz), worN=frequencies, fs=SR)
    gain_db = dict(zip(frequencies, 20 * np.log10(np.abs(response))))
    assert all(gain_db[f] <= -STOPBAND_ATTENUATION_DB + 0.1 for f in (0.5, 50.0, 60.0, 64.0))
    assert gain_db[80.0] >= -1.01 and all(abs(gain_db[f]) < 0.1 for f in (100.0, 200.0, 1000.0))


@pytest.mark.parametrize(("frequency_hz", "below_peak_db"), [(50.0, 10.0), (60.0, 20.0), (50.0, 0.0)])
def test_hum_from_the_first_sample_is_gone_from_the_speech_band(frequency_hz: float, below_peak_db: float) -> None:
    """Even where the hum starts with the signal (no transient: the filter starts in a state fitted to it)."""
    seconds = np.arange(2 * SR) / SR
    hum = 0.3 * 10 ** (-below_peak_db / 20) * np.sin(2 * np.pi * frequency_hz * seconds + 0.7)
    band = speech_band(hum.astype(np.float32), CFG)
    assert level_db(band) < level_db(hum) - STOPBAND_ATTENUATION_DB + 3
    assert frame_levels_db(band).max() < level_db(hum) - 40  # the first frames too


def test_an_offset_changes_nothing_in_the_speech_band(clip: np.ndarray) -> None:
    plain = speech_band(clip, CFG)
    for offset in (0.05, 0.4, -0.7):
        np.testing.assert_allclose(speech_band(clip + np.float32(offset), CFG), plain, atol=1e-6)


def test_a_click_is_repaired_and_speech_is_left_alone(clip: np.ndarray) -> None:
    centred = clip - clip.mean()
    untouched = repair_clicks(centred)
    assert np.mean(untouched != centred) < 1e-3  # a few samples of a clean clip at most
    clicked = centred.copy()
    middle = clicked.size // 2
    clicked[middle : middle + 6] = 0.99
    repaired = repair_clicks(clicked)
    assert np.abs(repaired[middle - 50 : middle + 56]).max() < 0.2
    changed = np.flatnonzero(repaired != untouched)  # against the clean clip's own repair
    assert changed.size < 20 and np.all(np.abs(changed - middle) < 20)


def test_a_stream_in_blocks_gives_the_whole_signal_s_speech_band(clip: np.ndarray) -> None:
    """One block is the whole-signal function; blocks of a stream continue the filter's state
    (the offset is the first block's mean, so blocks differ only where the mean does)."""
    band = SpeechBand(CFG)
    np.testing.assert_array_equal(band(clip), speech_band(clip, CFG))
    stream = SpeechBand(CFG)
    pieces = np.concatenate([stream(block) for block in np.array_split(clip, 7)])
    whole = speech_band(clip, CFG)
    assert pieces.shape == whole.shape
    assert level_db(pieces - whole) < level_db(whole) - 40


def test_the_reference_level_ignores_a_few_loud_frames() -> None:
    levels = np.r_[np.full(97, -30.0), np.full(3, 0.0)]
    assert reference_level(levels, CFG) == pytest.approx(-30.0, abs=1e-9)
    assert reference_level(np.r_[np.full(90, -30.0), np.full(10, 0.0)], CFG) > -30.0


def test_speech_bounds_cut_leading_and_trailing_silence() -> None:
    rng = np.random.default_rng(1)
    quiet = (1e-4 * rng.standard_normal(SR)).astype(np.float32)
    seconds = np.arange(SR) / SR
    voice = (0.3 * np.sin(2 * np.pi * 220 * seconds)).astype(np.float32)
    start, end = speech_bounds(speech_band(np.r_[quiet, voice, quiet], CFG), CFG)
    assert abs(start - SR) <= 2 * CFG.n_fft and abs(end - 2 * SR) <= 2 * CFG.n_fft


def test_speech_bounds_in_noise_cut_where_the_speech_rises_above_the_noise_floor() -> None:
    """10 dB of noise keeps every frame within 30 dB of the speech: the noise floor decides."""
    rng = np.random.default_rng(2)
    seconds = np.arange(SR) / SR
    voice = 0.3 * np.sin(2 * np.pi * 220 * seconds)
    signal = np.r_[np.zeros(SR), voice, np.zeros(SR)] + 0.3 / np.sqrt(2) * 10 ** (-10 / 20) * rng.standard_normal(3 * SR)
    start, end = speech_bounds(speech_band(signal.astype(np.float32), CFG), CFG)
    assert abs(start - SR) <= 2 * CFG.n_fft and abs(end - 2 * SR) <= 2 * CFG.n_fft


@pytest.mark.parametrize("kind", ["white noise", "dither", "one click in silence"])
def test_speech_bounds_keep_a_signal_where_nothing_stands_out(kind: str) -> None:
    """The voicing rule, not the trimming, then says that it holds no speech."""
    rng = np.random.default_rng(3)
    signal = {"white noise": 0.1 * rng.standard_normal(2 * SR), "dither": 3e-5 * rng.standard_normal(2 * SR)}.get(kind)
    if signal is None:
        signal = 1e-5 * rng.standard_normal(2 * SR)
        signal[SR : SR + 6] = 0.9
    band = speech_band(signal.astype(np.float32), CFG)
    assert speech_bounds(band, CFG) == (0, band.size)
