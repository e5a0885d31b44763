"""Augmentation transforms: exact levels, lengths, determinism, band removal; synthetic signals only."""

from __future__ import annotations

import numpy as np
import pytest

from ser_classic import augmentation
from ser_classic.augmentation import (
    RECIPES,
    AugmentationError,
    add_noise,
    apply_gain,
    augment,
    change_speed,
    mask_band,
    shift_pitch,
    speech_prefix,
    stretch_time,
)
from ser_classic.errors import SERError

SAMPLE_RATE = 22050


def _snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    clean64 = clean.astype(np.float64)
    return float(10 * np.log10(np.mean(clean64**2) / np.mean((noisy.astype(np.float64) - clean64) ** 2)))


def _band_power(signal: np.ndarray, low_hz: float, high_hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(signal.astype(np.float64))) ** 2
    frequencies = np.fft.rfftfreq(signal.size, 1 / SAMPLE_RATE)
    return float(spectrum[(frequencies >= low_hz) & (frequencies <= high_hz)].sum())


@pytest.fixture()
def white(tone: tuple[np.ndarray, int]) -> np.ndarray:
    """Two seconds of white noise at 22050 Hz, float32."""
    return np.random.default_rng(1).standard_normal(2 * SAMPLE_RATE).astype(np.float32) * 0.1


@pytest.mark.parametrize("color", ["white", "pink"])
@pytest.mark.parametrize("snr_db", [15.0, 20.0, 30.0])
def test_noise_reaches_the_requested_snr_within_a_tenth_of_a_db(tone, color, snr_db) -> None:
    signal, _ = tone
    noisy = add_noise(signal, snr_db, rng=np.random.default_rng(0), color=color)
    assert abs(_snr_db(signal, noisy) - snr_db) < 0.1
    assert noisy.dtype == signal.dtype and noisy.shape == signal.shape


def test_pink_noise_has_more_energy_in_low_than_in_high_octaves() -> None:
    noise = augmentation.pink_noise(4 * SAMPLE_RATE, rng=np.random.default_rng(0))
    low, high = _band_power(noise, 100, 200), _band_power(noise, 4000, 8000)
    assert np.isclose(np.mean(noise**2), 1.0)
    # 1/f: equal power per octave, so one low octave holds about as much as one high octave,
    # and a bin at 150 Hz about 40 times more than a bin at 6 kHz
    assert 0.5 < low / high < 2.0


def test_gain_scales_by_exactly_the_requested_decibels(tone) -> None:
    signal, _ = tone
    louder = apply_gain(signal, 6.0)
    ratio_db = 10 * np.log10(np.mean(louder.astype(np.float64) ** 2) / np.mean(signal.astype(np.float64) ** 2))
    assert ratio_db == pytest.approx(6.0, abs=1e-4)
    assert np.array_equal(apply_gain(signal, 0.0), signal)


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturbation_scales_duration_and_pitch_together(factor) -> None:
    time = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    signal = np.sin(2 * np.pi * 440 * time).astype(np.float32)
    faster = change_speed(signal, factor, sample_rate=SAMPLE_RATE)
    assert faster.size == pytest.approx(signal.size / factor, rel=1e-3)
    spectrum = np.abs(np.fft.rfft(faster * np.hanning(faster.size)))
    peak_hz = np.fft.rfftfreq(faster.size, 1 / SAMPLE_RATE)[spectrum.argmax()]
    assert peak_hz == pytest.approx(440 * factor, rel=0.01)


def test_pitch_shift_keeps_the_length_and_moves_the_pitch() -> None:
    time = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    signal = np.sin(2 * np.pi * 440 * time).astype(np.float32)
    shifted = shift_pitch(signal, 2.0, sample_rate=SAMPLE_RATE)
    assert shifted.shape == signal.shape and np.all(np.isfinite(shifted))
    spectrum = np.abs(np.fft.rfft(shifted * np.hanning(shifted.size)))
    peak_hz = np.fft.rfftfreq(shifted.size, 1 / SAMPLE_RATE)[spectrum.argmax()]
    assert peak_hz == pytest.approx(440 * 2 ** (2 / 12), rel=0.01)


@pytest.mark.parametrize("rate", [0.9, 1.1])
def test_time_stretch_changes_the_length_by_the_rate(tone, rate) -> None:
    signal, _ = tone
    stretched = stretch_time(signal, rate)
    assert stretched.size == pytest.approx(signal.size / rate, rel=0.01)
    assert np.all(np.isfinite(stretched))


def test_masking_removes_the_energy_of_the_masked_band_only(white) -> None:
    masked = mask_band(white, 1000.0, 2000.0, sample_rate=SAMPLE_RATE)
    assert masked.shape == white.shape and masked.dtype == white.dtype
    inside = _band_power(masked, 1100, 1900) / _band_power(white, 1100, 1900)
    outside = _band_power(masked, 3000, 8000) / _band_power(white, 3000, 8000)
    assert 10 * np.log10(inside) < -30
    assert outside == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_every_recipe_gives_finite_copies_and_the_same_copies_for_the_same_seed(tone, recipe) -> None:
    signal, _ = tone
    first = augment(signal, recipe, n_copies=2, rng=np.random.default_rng(7))
    again = augment(signal, recipe, n_copies=2, rng=np.random.default_rng(7))
    assert len(first) == 2
    for copy, repeat in zip(first, again):
        assert copy.dtype == signal.dtype and np.all(np.isfinite(copy))
        assert 0.8 * signal.size < copy.size < 1.2 * signal.size
        assert np.array_equal(copy, repeat)
        assert not np.array_equal(copy, signal)
    assert np.array_equal(signal, tone[0])  # the input is never modified


def _utterance(tone: tuple[np.ndarray, int], lead_seconds: float) -> np.ndarray:
    """The tone after ``lead_seconds`` of faint noise, then 0.5 s of it again."""
    signal, sample_rate = tone
    quiet = 1e-4 * np.random.default_rng(3).standard_normal(round(lead_seconds * sample_rate)).astype(np.float32)
    return np.concatenate([quiet, signal, quiet[: sample_rate // 2]])


@pytest.mark.parametrize("lead_seconds", [0.0, 0.4, 1.0])
def test_a_speech_prefix_starts_where_the_speech_does_and_lasts_the_requested_time(tone, lead_seconds) -> None:
    signal, sample_rate = tone
    utterance = _utterance(tone, lead_seconds)
    for seconds in (0.75, 1.5):
        prefix = speech_prefix(utterance, seconds, sample_rate=sample_rate)
        start = round(lead_seconds * sample_rate)
        offset = next(k for k in range(start - 2048, utterance.size) if np.array_equal(utterance[k : k + prefix.size], prefix))
        assert abs(offset - start) <= 512  # within a hop of the tone's onset
        assert prefix.size == round(seconds * sample_rate)
    assert speech_prefix(utterance, 5.0, sample_rate=sample_rate).size <= signal.size + 2048  # never past the speech (frames are 2048 samples)


def test_the_live_recipe_makes_speed_noisy_and_prefix_copies_and_marks_only_prefixes_as_speech(tone) -> None:
    sample_rate = tone[1]
    utterance = _utterance(tone, 0.5)
    recipe = RECIPES["speed-prefix"]
    slower, faster, noisy, short, longer = augment(utterance, recipe, n_copies=5, rng=np.random.default_rng(0), sample_rate=sample_rate)
    assert slower.size > utterance.size > faster.size
    assert noisy.size == utterance.size and 5 < _snr_db(utterance, noisy) < 30.5
    assert (short.size, longer.size) == (round(0.75 * sample_rate), round(1.5 * sample_rate))
    assert [recipe.within_speech(k) for k in range(5)] == [False, False, False, True, True]
    assert np.array_equal(short, longer[: short.size])


def test_different_seeds_give_different_noise(tone) -> None:
    signal, _ = tone
    one = augment(signal, "noise", n_copies=1, rng=np.random.default_rng(0))[0]
    two = augment(signal, "noise", n_copies=1, rng=np.random.default_rng(1))[0]
    assert not np.array_equal(one, two)


def test_speed_copies_cycle_through_the_recipe_factors(tone) -> None:
    signal, _ = tone
    slower, faster = augment(signal, "speed", n_copies=2, rng=np.random.default_rng(0))
    assert slower.size > signal.size > faster.size


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: add_noise(np.zeros(100, np.float32), 20.0, rng=np.random.default_rng(0)), "silent"),
        (lambda s: add_noise(s, 20.0, rng=np.random.default_rng(0), color="blue"), "noise color"),
        (lambda s: change_speed(s, 3.0), "speed factor"),
        (lambda s: mask_band(s, 2000.0, 1000.0), "band"),
        (lambda s: augment(s, "reverb", n_copies=1, rng=np.random.default_rng(0)), "unknown augmentation recipe"),
        (lambda s: apply_gain(s.reshape(2, -1), 3.0), "mono"),
    ],
)
def test_bad_requests_raise_the_library_error(tone, call, message) -> None:
    with pytest.raises(AugmentationError, match=message) as caught:
        call(tone[0])
    assert isinstance(caught.value, SERError)
