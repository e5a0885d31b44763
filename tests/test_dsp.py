"""The extractor's ports of librosa's functions (``ser_classic.features.dsp``) compute what
librosa computes: the same numbers, bit for bit, on real clips of both corpora, the same dtype
and the same memory layout (a reduction over a differently laid out array adds in another order).
librosa is the reference here and nowhere else in the extraction path."""

from __future__ import annotations

from pathlib import Path

import librosa
import librosa.feature as lf
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ser_classic import audio
from ser_classic.features import FeatureConfig, dsp
from ser_classic.features.conditioning import speech_band
from ser_classic.features.spectral import LOG_FLOOR

CFG = FeatureConfig()


def assert_same(ours: np.ndarray, theirs: np.ndarray) -> None:
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


@pytest.fixture(scope="module", params=["ravdess", "crema-d", "short"])
def signal(request: pytest.FixtureRequest, ravdess_root: Path, crema_d_root: Path) -> np.ndarray:
    """The speech band of a RAVDESS clip, of a CREMA-D clip, and of a quarter second of one."""
    path = crema_d_root / "1001_DFA_ANG_XX.flac" if request.param == "crema-d" else ravdess_root / "Actor_02" / "03-01-06-02-02-01-02.flac"
    band = speech_band(audio.load(path, sample_rate=CFG.sample_rate), CFG)
    return band[: CFG.sample_rate // 4] if request.param == "short" else band


@pytest.fixture(scope="module")
def magnitude(signal: np.ndarray) -> np.ndarray:
    return np.abs(librosa.stft(signal, n_fft=CFG.n_fft, hop_length=CFG.hop_length))


def test_stft_is_librosa_s_with_its_layout(signal: np.ndarray) -> None:
    ours = dsp.stft(signal, CFG.n_fft, CFG.hop_length)
    theirs = librosa.stft(signal, n_fft=CFG.n_fft, hop_length=CFG.hop_length)
    assert_same(ours, theirs)
    assert ours.flags.f_contiguous == theirs.flags.f_contiguous
    assert_same(dsp.stft(signal.astype(np.float64), CFG.n_fft, CFG.hop_length), librosa.stft(signal.astype(np.float64), n_fft=CFG.n_fft, hop_length=CFG.hop_length))


def test_frame_wise_features_are_librosa_s(signal: np.ndarray, magnitude: np.ndarray) -> None:
    sr, n_fft, hop = CFG.sample_rate, CFG.n_fft, CFG.hop_length
    assert_same(dsp.rms_from_magnitude(magnitude, n_fft), lf.rms(S=magnitude, frame_length=n_fft))
    for y in (signal, signal.astype(np.float64)):
        assert_same(dsp.rms_from_signal(y, 1024, 256), lf.rms(y=y, frame_length=1024, hop_length=256))
        assert_same(dsp.zero_crossing_rate(y, n_fft, hop), lf.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop))
    assert_same(dsp.spectral_centroid(magnitude, sr), lf.spectral_centroid(S=magnitude, sr=sr))
    assert_same(dsp.spectral_bandwidth(magnitude, sr), lf.spectral_bandwidth(S=magnitude, sr=sr))
    assert_same(dsp.spectral_rolloff(magnitude, sr), lf.spectral_rolloff(S=magnitude, sr=sr))
    assert_same(dsp.spectral_flatness(magnitude, LOG_FLOOR), lf.spectral_flatness(S=magnitude, amin=LOG_FLOOR))
    assert_same(dsp.spectral_contrast(magnitude, sr), lf.spectral_contrast(S=magnitude, sr=sr))
    rms = lf.rms(S=magnitude, frame_length=n_fft)[0]
    reference = float(np.percentile(rms, 95))
    assert_same(dsp.amplitude_to_db(rms, ref=reference, amin=LOG_FLOOR), librosa.amplitude_to_db(rms, ref=reference, amin=LOG_FLOOR, top_db=None))


def test_cepstral_and_tonal_features_are_librosa_s(magnitude: np.ndarray) -> None:
    sr, n_fft = CFG.sample_rate, CFG.n_fft
    mel_basis = dsp.mel_filters(sr, n_fft, CFG.n_mels)
    assert_same(mel_basis, librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=CFG.n_mels))
    mel = mel_basis @ magnitude**2
    reference = float(np.percentile(mel.max(axis=0), 95))
    log_mel = dsp.power_to_db(mel, ref=reference, amin=LOG_FLOOR)
    assert_same(log_mel, librosa.power_to_db(mel, ref=reference, amin=LOG_FLOOR, top_db=None))
    assert_same(dsp.power_to_db(mel, top_db=80.0), librosa.power_to_db(mel))
    mfcc = dsp.mfcc(log_mel, CFG.n_mfcc)
    assert_same(mfcc, lf.mfcc(S=log_mel, n_mfcc=CFG.n_mfcc))
    width = min(9, mfcc.shape[1] - (1 - mfcc.shape[1] % 2))
    for order in (1, 2):
        assert_same(dsp.delta(mfcc, width, order=order), lf.delta(mfcc, width=width, order=order))
    chroma_basis = dsp.chroma_filters(sr, n_fft)
    assert_same(chroma_basis, librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=0.0))
    chroma = dsp.normalize(chroma_basis @ magnitude**2, norm=np.inf, axis=-2)
    assert_same(chroma, librosa.util.normalize(chroma_basis @ magnitude**2, norm=np.inf, axis=-2))
    assert_same(dsp.tonnetz(chroma), lf.tonnetz(chroma=chroma, sr=sr))


def test_yin_is_librosa_s(signal: np.ndarray) -> None:
    arguments = (CFG.f0_min_hz, CFG.f0_max_hz, CFG.sample_rate, CFG.n_fft, CFG.hop_length)
    theirs = librosa.yin(signal, fmin=CFG.f0_min_hz, fmax=CFG.f0_max_hz, sr=CFG.sample_rate, frame_length=CFG.n_fft, hop_length=CFG.hop_length)
    assert_same(dsp.yin(signal, *arguments), theirs)


@settings(max_examples=25, deadline=None)
@given(
    f0=st.floats(70.0, 400.0),
    noise=st.floats(0.0, 0.3),
    seconds=st.floats(0.1, 1.0),
    seed=st.integers(0, 2**16),
)
def test_yin_and_zero_crossings_match_librosa_on_any_tone_in_noise(f0: float, noise: float, seconds: float, seed: int) -> None:
    """Ties, silent stretches and troughs at the range's edges: every branch of YIN's trough
    search and of the zero-crossing stencil."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * CFG.sample_rate)) / CFG.sample_rate
    y = (0.3 * np.sign(np.sin(2 * np.pi * f0 * t)) * (t > seconds / 3) + noise * rng.standard_normal(t.size)).astype(np.float32)
    arguments = (CFG.f0_min_hz, CFG.f0_max_hz, CFG.sample_rate, CFG.n_fft, CFG.hop_length)
    assert_same(dsp.yin(y, *arguments), librosa.yin(y, fmin=CFG.f0_min_hz, fmax=CFG.f0_max_hz, sr=CFG.sample_rate, frame_length=CFG.n_fft, hop_length=CFG.hop_length))
    assert_same(dsp.zero_crossing_rate(y, CFG.n_fft, CFG.hop_length), lf.zero_crossing_rate(y, frame_length=CFG.n_fft, hop_length=CFG.hop_length))
