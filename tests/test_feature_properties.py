"""Properties of the feature extractor over generated signals (hypothesis).

Policy checked here (and stated in the README's Robustness section): any finite signal of at
least ``MIN_DURATION_SECONDS``, at any rate from 8 to 96 kHz, whose mono mix peaks at most at
``MAX_PEAK_AMPLITUDE``, gives a vector with the extractor's names and only finite values.
Everything else raises ``AudioError``: empty, shorter than the minimum, all zeros (also when
resampling to the analysis rate leaves nothing but zeros), NaN or infinite samples, or a peak
beyond the limit. There are no silent fill-in values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ser_classic.audio import MAX_PEAK_AMPLITUDE, MIN_DURATION_SECONDS, to_mono
from ser_classic.errors import AudioError
from ser_classic.features import extract_features, feature_names



def examples(count: int) -> settings:
    """``count`` examples, no deadline (the first call imports librosa), no example database
    in the work tree; a failure prints the blob that reproduces it."""
    return settings(
        max_examples=count, deadline=None, database=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
    )

SHAPES = ("noise", "sine", "pulses", "click", "dc", "square", "nyquist", "chirp", "bursts", "steps")


def synthesize(shape: str, n_samples: int, sample_rate: int, seed: int, frequency_hz: float) -> np.ndarray:
    """A signal of peak 1 (before the caller scales it) with no silent sample pattern assumed."""
    rng = np.random.default_rng(seed)
    time = np.arange(n_samples) / sample_rate
    if shape == "noise":
        signal = rng.standard_normal(n_samples)
    elif shape == "sine":
        signal = np.sin(2 * np.pi * frequency_hz * time + rng.uniform(0, np.pi))
    elif shape == "pulses":
        signal = np.zeros(n_samples)
        signal[:: max(1, int(sample_rate / frequency_hz))] = 1.0
    elif shape == "click":
        signal = np.zeros(n_samples)
        signal[rng.integers(n_samples)] = 1.0
    elif shape == "dc":
        signal = np.full(n_samples, 1.0)
    elif shape == "square":
        signal = np.where(np.sin(2 * np.pi * frequency_hz * time) >= 0, 1.0, -1.0)
    elif shape == "nyquist":
        signal = np.where(np.arange(n_samples) % 2 == 0, 1.0, -1.0)
    elif shape == "chirp":
        signal = np.sin(np.pi * (sample_rate / 2) * time**2 / max(time[-1], 1e-9))
    elif shape == "bursts":
        signal = rng.standard_normal(n_samples) * (rng.random(n_samples) < 0.01)
    else:  # steps: a few constant levels, as from a broken decoder
        signal = rng.uniform(-1, 1, 8)[np.minimum(np.arange(n_samples) * 8 // n_samples, 7)]
    peak = np.max(np.abs(signal))
    return signal / peak if peak > 0 else signal


@st.composite
def valid_signals(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    """(signal, sample rate): finite, 0.1-0.6 s, 8-96 kHz, peak from 1e-30 to the limit, 1 or 2 channels."""
    sample_rate = draw(st.integers(8000, 96000))
    extra_seconds = draw(st.one_of(st.just(0.0), st.floats(0.0, 0.5)))
    n_samples = math.ceil((MIN_DURATION_SECONDS + extra_seconds) * sample_rate)
    shape = draw(st.sampled_from(SHAPES))
    signal = synthesize(shape, n_samples, sample_rate, draw(st.integers(0, 2**16)), draw(st.floats(20, 4000)))
    peak = 10.0 ** draw(st.floats(-30, math.log10(MAX_PEAK_AMPLITUDE)))
    signal = peak * signal
    if draw(st.booleans()):
        signal = np.stack([signal, -0.5 * signal[::-1]], axis=1)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return signal.astype(dtype), sample_rate


@examples(200)
@given(valid_signals())
def test_any_finite_signal_gives_fixed_names_and_finite_values(example: tuple[np.ndarray, int]) -> None:
    signal, sample_rate = example
    vector = extract_features(signal, sample_rate)
    assert list(vector.index) == feature_names()
    assert vector.dtype == np.float64
    assert np.all(np.isfinite(vector.to_numpy())), vector[~np.isfinite(vector.to_numpy())]


@examples(15)
@given(valid_signals())
def test_the_same_signal_gives_the_same_vector(example: tuple[np.ndarray, int]) -> None:
    signal, sample_rate = example
    first = extract_features(signal, sample_rate)
    np.testing.assert_array_equal(extract_features(signal.copy(), sample_rate).to_numpy(), first.to_numpy())


@examples(40)
@given(sample_rate=st.integers(8000, 96000), fraction=st.floats(0.0, 1.0, exclude_max=True), seed=st.integers(0, 99))
def test_shorter_than_the_minimum_is_refused(sample_rate: int, fraction: float, seed: int) -> None:
    n_samples = int(fraction * math.ceil(MIN_DURATION_SECONDS * sample_rate))
    signal = np.random.default_rng(seed).uniform(-0.5, 0.5, n_samples)
    reason = "no audio samples" if n_samples == 0 else "too short"
    with pytest.raises(AudioError, match=reason):
        extract_features(signal, sample_rate)


@examples(20)
@given(sample_rate=st.integers(8000, 96000), seconds=st.floats(MIN_DURATION_SECONDS, 2.0), channels=st.integers(1, 6))
def test_digital_silence_is_refused(sample_rate: int, seconds: float, channels: int) -> None:
    signal = np.zeros((math.ceil(seconds * sample_rate), channels), dtype=np.float32)
    with pytest.raises(AudioError, match="digital silence"):
        extract_features(signal, sample_rate)


@examples(30)
@given(
    example=valid_signals(),
    bad_value=st.sampled_from([np.nan, np.inf, -np.inf]),
    where=st.floats(0.0, 1.0, exclude_max=True),
)
def test_nan_or_infinite_samples_are_refused(example: tuple[np.ndarray, int], bad_value: float, where: float) -> None:
    signal, sample_rate = example
    signal = signal.copy()
    signal[int(where * signal.shape[0])] = bad_value
    with pytest.raises(AudioError, match="NaN or infinite"):
        extract_features(signal, sample_rate)


@examples(20)
@given(example=valid_signals(), excess=st.floats(1.01, 1e250))
def test_peaks_beyond_the_limit_are_refused_not_overflowed(example: tuple[np.ndarray, int], excess: float) -> None:
    signal, sample_rate = example
    peak = float(np.max(np.abs(to_mono(signal.astype(np.float64)))))  # the limit applies to the mono mix
    assume(peak > 0)
    huge = signal.astype(np.float64) * (MAX_PEAK_AMPLITUDE * excess / peak)
    with pytest.raises(AudioError, match="implausible level"):
        extract_features(huge, sample_rate)


def test_exactly_the_minimum_duration_is_accepted_at_common_rates() -> None:
    rng = np.random.default_rng(0)
    for sample_rate in (8000, 11025, 16000, 22050, 44100, 48000, 96000):
        signal = rng.uniform(-0.5, 0.5, math.ceil(MIN_DURATION_SECONDS * sample_rate))
        assert np.all(np.isfinite(extract_features(signal, sample_rate).to_numpy()))
