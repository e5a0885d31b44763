"""Properties of the feature extractor over generated signals (hypothesis).

Policy checked here (and stated in docs/robustness.md): any finite signal of at
least ``MIN_DURATION_SECONDS``, at any rate from 8 to 96 kHz, whose mono mix peaks at most at
``MAX_PEAK_AMPLITUDE``, gives a vector with the extractor's names and only finite values.
Everything else raises ``AudioError``: empty, shorter than the minimum, all zeros (also when
resampling to the analysis rate leaves nothing but zeros), NaN or infinite samples, or a peak
beyond the limit. There are no silent fill-in values.

Two invariances of extractor version 4 are checked on a synthesized, speech-like utterance:
every level feature is relative to the clip (and the spectrogram floor too), so a gain leaves
the vector unchanged; and the analysed band ends at the analysis rate's Nyquist frequency
(7 kHz), below the band edge of every common rate from 16 kHz up, so one utterance recorded at
48, 22.05 or 16 kHz gives nearly the same vector.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.signal
import soxr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ser_classic.audio import ANALYSIS_SAMPLE_RATE, MAX_PEAK_AMPLITUDE, MIN_DURATION_SECONDS, to_mono
from ser_classic.errors import AudioError
from ser_classic.features import FeatureConfig, extract_features, feature_names


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


# --- invariances of version 4 -----------------------------------------------------------------


def speech_like(sample_rate: int, seconds: float = 2.5, seed: int = 0) -> np.ndarray:
    """A synthetic utterance at ``sample_rate``, peak 0.5, float32.

    A harmonic voice whose F0 glides from 140 Hz up two semitones with a 5.5 Hz, +-0.3 semitone
    vibrato, shaped by three formant-like resonances (700, 1800, 2800 Hz), harmonics up to
    11 kHz; two syllables a second, fricative-like hiss (3-10 kHz) in the gaps between them,
    and a white noise floor about 50 dB below the peak. At 48 kHz it has energy far above
    7 kHz, which a 16 kHz recording of it could not hold.
    """
    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 140.0 * 2.0 ** ((2.0 * time / seconds + 0.3 * np.sin(2 * np.pi * 5.5 * time)) / 12.0)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    top_hz = min(11000.0, 0.45 * sample_rate)
    voice = np.zeros_like(time)
    for k in range(1, int(top_hz // 140) + 1):
        hz = k * f0
        formants = 1 + 3 * np.exp(-(((hz - 700) / 250) ** 2)) + 2 * np.exp(-(((hz - 1800) / 350) ** 2))
        formants += np.exp(-(((hz - 2800) / 400) ** 2))
        voice += np.where(hz < top_hz, formants / k, 0.0) * np.sin(k * phase)
    syllables = np.sin(2 * np.pi * 2.0 * time)
    band = scipy.signal.butter(4, [3000, min(10000.0, 0.45 * sample_rate)], "bandpass", fs=sample_rate, output="sos")
    hiss = scipy.signal.sosfilt(band, rng.standard_normal(time.size))
    signal = voice * np.clip(syllables, 0, None) ** 0.7 + 2.0 * hiss * np.clip(-syllables, 0, None) ** 2
    signal += 0.002 * rng.standard_normal(time.size)
    return (0.5 * signal / np.max(np.abs(signal))).astype(np.float32)


def relative_change(vector: pd.Series, reference: pd.Series, epsilon: float = 1e-3) -> pd.Series:
    """``|vector - reference| / (|reference| + epsilon)`` per feature; the epsilon keeps the
    features that are about zero (some MFCC means, tonnetz) from dividing by nothing."""
    return np.abs(vector - reference) / (np.abs(reference) + epsilon)


@pytest.fixture(scope="module")
def utterance_at_analysis_rate() -> tuple[np.ndarray, pd.Series]:
    signal = speech_like(ANALYSIS_SAMPLE_RATE)
    vector = extract_features(signal, ANALYSIS_SAMPLE_RATE)
    assert 0.3 < vector["voiced_fraction"] < 0.8  # voiced and unvoiced parts, as speech has
    return signal, vector


@pytest.mark.parametrize("gain", [0.1, 4.0, 0.01, 0.001], ids=["-20dB", "+12dB", "-40dB", "-60dB"])
def test_a_gain_leaves_the_vector_unchanged(utterance_at_analysis_rate: tuple[np.ndarray, pd.Series], gain: float) -> None:
    """Level (``rms_db``, MFCC 1), the spectrogram floor and the voicing threshold are relative
    to the clip, and no logarithm has an absolute floor that a quiet recording would reach, so a
    gain changes nothing but float32 rounding, down to a peak of -66 dBFS.

    Bounds: 1e-4 for the largest relative change (:func:`relative_change`) over the 282
    features, 1e-6 for the median (measured before the absolute floors were removed: 1.6e-5 at
    -20 dB, 5.3e-6 at +12 dB; median 1.4e-7).
    """
    signal, reference = utterance_at_analysis_rate
    vector = extract_features(signal * np.float32(gain), ANALYSIS_SAMPLE_RATE)
    change = relative_change(vector, reference)
    assert change.max() < 1e-4, change.nlargest(5)
    assert change.median() < 1e-6


@pytest.fixture(scope="module")
def utterance_at_48_khz() -> tuple[np.ndarray, pd.Series]:
    signal = speech_like(48000)
    return signal, extract_features(signal, 48000)


@pytest.mark.parametrize("recording_rate", [16000, 22050])
def test_the_same_utterance_recorded_at_16_22_or_48_khz_gives_nearly_the_same_vector(
    utterance_at_48_khz: tuple[np.ndarray, pd.Series], recording_rate: int
) -> None:
    """The 48 kHz utterance, resampled to ``recording_rate`` as a recorder at that rate would
    capture it, then given to the extractor, which resamples it to the analysis rate.

    soxr "VHQ" stands for the recorder's anti-aliasing filter: flat up to close below the
    recording's Nyquist frequency, so the copies differ only above 7 kHz, outside the analysed
    band. (scipy's ``resample_poly`` with its default Kaiser window already rolls off below
    7 kHz going to 16 kHz, and moves mfcc_12_p50 by 8%: a property of that filter, not of
    the extractor.)

    Measured (extractor version 5): median relative change 2.3e-5 (16 kHz) and 3.6e-5 (22.05
    kHz); the largest, mfcc_unvoiced_06_mean, is about zero (1.3e-4), so its relative change
    is large (1.5, 1.7) for an absolute one of 1.6e-3 and 1.9e-3; the next largest 0.03
    (mfcc_19_p90). Bounds: median < 2e-4, every feature < 0.05 relative or < 5e-3 absolute.
    The control shows the check can tell: with a 22.05 kHz analysis rate, which the 16 kHz
    copy cannot fill, its median change is 0.34.
    """
    signal, reference = utterance_at_48_khz
    copy = soxr.resample(signal, 48000, recording_rate, quality="VHQ").astype(np.float32)
    vector = extract_features(copy, recording_rate)
    change = relative_change(vector, reference)
    assert change.median() < 2e-4, change.nlargest(5)
    moved = change[(change >= 0.05) & (np.abs(vector - reference) >= 5e-3)]
    assert moved.empty, moved
    if recording_rate == 16000:
        wide = FeatureConfig(sample_rate=22050, n_fft=2048, hop_length=512, n_mels=128)
        wide_change = relative_change(extract_features(copy, recording_rate, wide), extract_features(signal, 48000, wide))
        assert wide_change.median() > 0.05
