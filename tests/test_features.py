"""The feature vector against librosa's own functions, its names, determinism, the
scikit-learn contract of :class:`FeatureExtractor`, and the feature cache.

The reference values are computed here with librosa's public functions, not through the
extractor's code, on the signal the extractor describes (the speech band, trimmed to its speech:
:mod:`ser_classic.features.conditioning`, tested in ``test_conditioning.py``): the test builds
the floored magnitude spectrogram itself (``librosa.stft``, the bins below the band emptied, then
the floor ``spectral_floor_db`` below the 95th percentile of the frames' strongest bins) and
passes it as ``S=...``, so a wrong window, hop, floor, reference, power, mel setting, row order
or statistic in the extractor shows up as a mismatch. The analysis settings are read from
``FeatureConfig()``; their v5 values are pinned once, in :func:`test_version_5_analysis_settings`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import librosa
import numpy as np
import pandas as pd
import pytest
import scipy.signal
import soundfile
from numpy.testing import assert_allclose, assert_array_equal

from ser_classic.audio import ANALYSIS_SAMPLE_RATE, load
from ser_classic.features import EXTRACTOR_VERSION, FeatureConfig, FeatureExtractor, extract_features, feature_names
from ser_classic.features.conditioning import speech_band, speech_bounds

CFG = FeatureConfig()
SR = CFG.sample_rate
FRAME_STATS = ("mean", "std", "p10", "p50", "p90")
ROW_STATS = ("mean", "std")
DELTA_STATS = ("std",)


def described(y: np.ndarray) -> np.ndarray:
    """What the extractor describes of ``y``: its speech band, trimmed to its speech."""
    band = speech_band(y, CFG)
    start, end = speech_bounds(band, CFG)
    return band[start:end]


def robust_max(values: np.ndarray) -> float:
    """The extractor's reference: the 95th percentile, not the maximum."""
    return float(np.percentile(values, CFG.reference_percentile))


def floored_magnitude(y: np.ndarray) -> np.ndarray:
    """``|STFT|`` (Hann, centred) of the described signal, bins below the band emptied, floored
    ``spectral_floor_db`` below the robust maximum of the frames' strongest bins."""
    magnitude = np.abs(librosa.stft(y, n_fft=CFG.n_fft, hop_length=CFG.hop_length))
    magnitude[librosa.fft_frequencies(sr=SR, n_fft=CFG.n_fft) < CFG.band_low_hz] = 0.0
    return np.maximum(magnitude, robust_max(magnitude.max(axis=0)) * 10.0 ** (-CFG.spectral_floor_db / 20.0))


def reference_log_mel(S: np.ndarray) -> np.ndarray:
    """Log-mel spectrogram (dB relative to the robust maximum of the frames' strongest band, no
    top_db) of the floored magnitude."""
    mel = librosa.feature.melspectrogram(S=S**2, sr=SR, n_fft=CFG.n_fft, n_mels=CFG.n_mels)
    return librosa.power_to_db(mel, ref=robust_max(mel.max(axis=0)), amin=1e-18, top_db=None)


def reference_mfcc(S: np.ndarray) -> np.ndarray:
    return librosa.feature.mfcc(S=reference_log_mel(S), n_mfcc=CFG.n_mfcc)


def reference_level_db(S: np.ndarray) -> np.ndarray:
    """Frame RMS in dB relative to the robust maximum of the frames' RMS."""
    rms = librosa.feature.rms(S=S, frame_length=CFG.n_fft)[0]
    return librosa.amplitude_to_db(rms, ref=robust_max(rms), amin=1e-18, top_db=None)


def reference_statistics(track: np.ndarray, statistics: tuple[str, ...]) -> np.ndarray:
    """Statistics over frames of each row, rows first: numpy's population std and percentiles."""
    rows = np.atleast_2d(np.asarray(track, dtype=np.float64))
    functions = {
        "mean": lambda row: row.mean(),
        "std": lambda row: row.std(),
        "p10": lambda row: np.percentile(row, 10),
        "p50": lambda row: np.percentile(row, 50),
        "p90": lambda row: np.percentile(row, 90),
    }
    return np.array([functions[stat](row) for row in rows for stat in statistics])


def names_of(track: str, n_rows: int | None, statistics: tuple[str, ...]) -> list[str]:
    if n_rows is None:
        return [f"{track}_{stat}" for stat in statistics]
    return [f"{track}_{row:02d}_{stat}" for row in range(1, n_rows + 1) for stat in statistics]


def harmonic_tone(frequency_hz: float, sample_rate: int, seconds: float = 2.0) -> np.ndarray:
    """Four harmonics with falling amplitude, no noise: the same waveform at any rate."""
    time = np.arange(int(seconds * sample_rate)) / sample_rate
    return sum(0.3 / k * np.sin(2 * np.pi * frequency_hz * k * time) for k in range(1, 5)).astype(np.float32)


@pytest.fixture(scope="module")
def clip_signal(angry_clip: Path) -> np.ndarray:
    return load(angry_clip)


@pytest.fixture(scope="module")
def tone_signal() -> np.ndarray:
    """The conftest tone (220 Hz harmonics + a little noise), module-scoped."""
    time = np.arange(2 * SR) / SR
    rng = np.random.default_rng(0)
    signal = sum(0.3 / k * np.sin(2 * np.pi * 220 * k * time) for k in range(1, 5))
    return (signal + 0.01 * rng.standard_normal(time.size)).astype(np.float32)


@pytest.fixture(scope="module")
def clean_tone_signal() -> np.ndarray:
    """A noiseless harmonic tone: most of its bins lie below the spectrogram floor."""
    return harmonic_tone(220.0, SR)


@pytest.fixture(scope="module", params=["ravdess_clip", "tone", "clean_tone"])
def signal_and_vector(request: pytest.FixtureRequest) -> tuple[np.ndarray, pd.Series]:
    """A real RAVDESS clip, the noisy tone and a noiseless tone at the analysis rate, each with
    its public vector."""
    fixture = {"ravdess_clip": "clip_signal", "tone": "tone_signal", "clean_tone": "clean_tone_signal"}[request.param]
    signal = request.getfixturevalue(fixture)
    return described(signal), extract_features(signal, SR)


@pytest.fixture(scope="module")
def clip_vector(clip_signal: np.ndarray) -> pd.Series:
    return extract_features(clip_signal, SR)


@pytest.fixture(scope="module")
def tone_vector(tone_signal: np.ndarray) -> pd.Series:
    return extract_features(tone_signal, SR)


@pytest.fixture(scope="module")
def a_few_clips(actor_01: Path) -> list[Path]:
    return sorted(actor_01.glob("03-01-0[12]-01-01-0[12]-01.flac"))


# --- names and shape --------------------------------------------------------------------


def test_the_golden_vectors_are_those_of_this_extractor_version(ravdess_root: Path, crema_d_root: Path) -> None:
    """A change of any clip's vector must come with a new EXTRACTOR_VERSION, and a new version
    with new golden vectors (``python tests/golden_vectors.py``): a feature cache or a model
    never meets vectors other than its version's. rtol 1e-5 allows another machine's rounding."""
    from golden_vectors import GOLDEN_FILE, extract_golden

    golden = json.loads(GOLDEN_FILE.read_text())
    assert golden["extractor_version"] == EXTRACTOR_VERSION, (
        f"EXTRACTOR_VERSION is {EXTRACTOR_VERSION!r}, the golden vectors are version {golden['extractor_version']!r}: "
        "write them again with `python tests/golden_vectors.py`"
    )
    for clip, vector in extract_golden().items():
        assert_allclose(vector, golden["vectors"][clip], rtol=1e-5, atol=1e-6, err_msg=f"{clip}: the vector changed, "
                        "and EXTRACTOR_VERSION did not: raise it (and write the golden vectors again)")


def test_version_5_analysis_settings() -> None:
    """The one place the v5 numbers are written out: every other test reads them from the config."""
    assert EXTRACTOR_VERSION == "5"
    assert ANALYSIS_SAMPLE_RATE == 14000
    assert (CFG.sample_rate, CFG.n_fft, CFG.hop_length, CFG.n_mels, CFG.n_mfcc) == (ANALYSIS_SAMPLE_RATE, 1024, 256, 64, 20)
    assert (CFG.band_low_hz, CFG.spectral_floor_db, CFG.reference_percentile) == (80.0, 70.0, 95.0)


def test_vector_is_a_named_series_of_feature_names_length(clip_vector: pd.Series) -> None:
    names = feature_names()
    assert 150 <= len(names) <= 320
    assert len(clip_vector) == len(names)
    assert list(clip_vector.index) == names
    assert clip_vector.dtype == np.float64


def test_feature_names_are_unique_stable_and_well_formed() -> None:
    names = feature_names()
    assert names == feature_names() == feature_names(FeatureConfig())
    assert len(set(names)) == len(names)
    for spot in ("zcr_mean", "rms_db_p90", "centroid_p10", "flatness_std", "contrast_07_std", "mfcc_01_mean",
                 "mfcc_20_p90", "mfcc_delta_05_std", "mfcc_delta2_20_std", "mfcc_unvoiced_20_std",
                 "chroma_01_mean", "chroma_12_std", "tonnetz_06_mean", "spectral_flux_std", "alpha_ratio_mean",
                 "hammarberg_std", "spectral_slope_500_1500_mean", "hnr_db_mean", "hnr_db_std", "voiced_fraction",
                 "f0_p50", "f0_semitone_range", "f0_semitone_slope", "voiced_segment_rate"):
        assert spot in names
    # delta means telescope to the trim boundaries: only their std is kept
    assert [name for name in names if name.startswith("mfcc_delta") and not name.endswith("_std")] == []
    assert len([name for name in names if name.startswith("mfcc_delta")]) == 2 * CFG.n_mfcc
    pattern = re.compile(r"^[a-z0-9_]+?(_\d\d)?_(mean|std|p10|p50|p90|range|slope)$|^voiced_(fraction|segment_rate)$")
    assert [name for name in names if not pattern.match(name)] == []


def test_the_documented_feature_table_groups_features_as_model_cards_count_them() -> None:
    """The documented table (docs/features.md) and the demo's Model tab (``feature_group_sizes``)
    show one grouping, each group in its family of ``FEATURE_GROUPS``."""
    from ser_classic.features import FEATURE_GROUPS
    from ser_classic.model_card import feature_group_sizes

    page = (Path(__file__).resolve().parents[1] / "docs" / "features.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| ([A-Za-z -]+?)(?: \((\d+)\))?(?:, voiced frames)? \| ([a-z ]+) \|.*\| (\d+) \|$", page, flags=re.MULTILINE)
    counted: dict[str, int] = {}
    stated: dict[str, int] = {}
    for group, size, family, dims in rows:
        assert family == FEATURE_GROUPS[group].family, group
        counted[group] = counted.get(group, 0) + int(dims)
        if size:
            stated[group] = int(size)
    expected = feature_group_sizes(feature_names())
    assert counted == expected and stated == expected


def test_feature_names_follow_the_config() -> None:
    names = feature_names(FeatureConfig(n_mfcc=13))
    assert "mfcc_13_p90" in names and "mfcc_14_mean" not in names
    cepstral = [name for name in names if name.startswith("mfcc")]
    assert len(cepstral) * 20 == 13 * len([name for name in feature_names() if name.startswith("mfcc")])
    assert [name for name in names if not name.startswith("mfcc")] == [
        name for name in feature_names() if not name.startswith("mfcc")
    ]


def test_every_value_is_finite(signal_and_vector: tuple[np.ndarray, pd.Series]) -> None:
    _, vector = signal_and_vector
    assert np.all(np.isfinite(vector.to_numpy()))


# --- each group against librosa -----------------------------------------------------------
# The extractor runs on float32 signals exactly as these references do; identical results are
# expected, and rtol=1e-5 / atol=1e-6 only leave room for float32 summation order.

RTOL, ATOL = 1e-5, 1e-6


@pytest.mark.parametrize(
    "track",
    ["zcr", "rms_db", "centroid", "bandwidth", "rolloff", "flatness"],
)
def test_scalar_tracks_match_librosa(track: str, signal_and_vector: tuple[np.ndarray, pd.Series]) -> None:
    y, vector = signal_and_vector
    S = floored_magnitude(y)
    reference = {
        # the zero-crossing rate is the one track of the time signal, not of the spectrogram
        "zcr": lambda: librosa.feature.zero_crossing_rate(y, frame_length=CFG.n_fft, hop_length=CFG.hop_length)[0],
        "rms_db": lambda: reference_level_db(S),
        "centroid": lambda: librosa.feature.spectral_centroid(S=S, sr=SR, n_fft=CFG.n_fft)[0],
        "bandwidth": lambda: librosa.feature.spectral_bandwidth(S=S, sr=SR, n_fft=CFG.n_fft)[0],
        "rolloff": lambda: librosa.feature.spectral_rolloff(S=S, sr=SR, n_fft=CFG.n_fft)[0],
        "flatness": lambda: librosa.feature.spectral_flatness(S=S, n_fft=CFG.n_fft, amin=1e-18)[0],
    }[track]()
    assert reference.size == S.shape[1]
    assert_allclose(vector[names_of(track, None, FRAME_STATS)], reference_statistics(reference, FRAME_STATS), rtol=RTOL, atol=ATOL)


def test_spectral_contrast_matches_librosa(signal_and_vector: tuple[np.ndarray, pd.Series]) -> None:
    y, vector = signal_and_vector
    contrast = librosa.feature.spectral_contrast(S=floored_magnitude(y), sr=SR, n_fft=CFG.n_fft)
    assert contrast.shape[0] == 7
    assert_allclose(vector[names_of("contrast", 7, ROW_STATS)], reference_statistics(contrast, ROW_STATS), rtol=RTOL, atol=ATOL)


def test_mfcc_and_deltas_match_librosa(signal_and_vector: tuple[np.ndarray, pd.Series]) -> None:
    y, vector = signal_and_vector
    n = CFG.n_mfcc
    mfcc = reference_mfcc(floored_magnitude(y))
    assert mfcc.shape[0] == n and mfcc.shape[1] > 9  # long enough for librosa's default delta width
    assert_allclose(vector[names_of("mfcc", n, FRAME_STATS)], reference_statistics(mfcc, FRAME_STATS), rtol=RTOL, atol=1e-4)
    delta = librosa.feature.delta(mfcc)
    delta2 = librosa.feature.delta(mfcc, order=2)
    assert_allclose(vector[names_of("mfcc_delta", n, DELTA_STATS)], reference_statistics(delta, DELTA_STATS), rtol=RTOL, atol=ATOL)
    assert_allclose(vector[names_of("mfcc_delta2", n, DELTA_STATS)], reference_statistics(delta2, DELTA_STATS), rtol=RTOL, atol=ATOL)


def test_the_floor_decides_the_quiet_bins(clean_tone_signal: np.ndarray) -> None:
    """On a noiseless tone most bins lie below the floor, and the vector follows the floored
    spectrogram, not the raw one (flatness about 3.0e-4 against 2.9e-4 unfloored: the
    high-pass's stopband leaves the quietest bins near the floor)."""
    tone = described(clean_tone_signal)
    raw = np.abs(librosa.stft(tone, n_fft=CFG.n_fft, hop_length=CFG.hop_length))
    assert np.mean(raw < floored_magnitude(tone)) > 0.5
    vector = extract_features(clean_tone_signal, SR)
    floored = librosa.feature.spectral_flatness(S=floored_magnitude(tone), amin=1e-18)[0].mean()
    unfloored = librosa.feature.spectral_flatness(S=raw)[0].mean()
    assert vector["flatness_mean"] == pytest.approx(floored, rel=RTOL)
    assert vector["flatness_mean"] != pytest.approx(unfloored, rel=0.02)


def test_mfcc_1_is_a_level_relative_to_the_strong_mel_bands(signal_and_vector: tuple[np.ndarray, pd.Series]) -> None:
    """The log-mel reference is the 95th percentile of the frames' strongest band, where the
    log-mel spectrogram reads 0 dB; MFCC 1 (the orthonormal DCT's first row) is the band mean
    times sqrt(n_mels)."""
    y, vector = signal_and_vector
    log_mel = reference_log_mel(floored_magnitude(y))
    # a percentile of the bands' powers in dB, not of the dB values: equal up to interpolation
    assert robust_max(log_mel.max(axis=0)) == pytest.approx(0.0, abs=0.05)
    assert vector["mfcc_01_p10"] <= vector["mfcc_01_p50"] <= vector["mfcc_01_p90"]
    assert_allclose(vector["mfcc_01_mean"], np.sqrt(CFG.n_mels) * log_mel.mean(), rtol=RTOL)


def test_chroma_and_tonnetz_match_librosa(signal_and_vector: tuple[np.ndarray, pd.Series]) -> None:
    y, vector = signal_and_vector
    chroma = librosa.feature.chroma_stft(S=floored_magnitude(y) ** 2, sr=SR, n_fft=CFG.n_fft, tuning=0.0)
    tonnetz = librosa.feature.tonnetz(chroma=chroma, sr=SR)
    assert_allclose(vector[names_of("chroma", 12, ROW_STATS)], reference_statistics(chroma, ROW_STATS), rtol=RTOL, atol=ATOL)
    assert_allclose(vector[names_of("tonnetz", 6, ROW_STATS)], reference_statistics(tonnetz, ROW_STATS), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(("frequency_hz", "pitch_class"), [(261.63, 1), (220.0, 10)])
def test_chroma_rows_start_at_c(frequency_hz: float, pitch_class: int) -> None:
    """C4 peaks in chroma_01, A3 (with harmonics A, E, A) in chroma_10."""
    vector = extract_features(harmonic_tone(frequency_hz, SR), SR)
    means = vector[names_of("chroma", 12, ("mean",))].to_numpy()
    assert int(np.argmax(means)) + 1 == pitch_class


def reference_yin(y: np.ndarray) -> np.ndarray:
    return librosa.yin(
        y, fmin=CFG.f0_min_hz, fmax=CFG.f0_max_hz, sr=SR, frame_length=CFG.n_fft, hop_length=CFG.hop_length
    )


def reference_periodicity(S: np.ndarray) -> np.ndarray:
    """Per frame, the highest normalized autocorrelation at a lag in the pitch range (Boersma,
    1993): the frame's autocorrelation (inverse FFT of its floored power spectrum) over its
    energy, divided by the periodic Hann window's own (circular) autocorrelation, computed here
    in the time domain."""
    lags = np.arange(int(np.ceil(SR / CFG.f0_max_hz)), int(np.floor(SR / CFG.f0_min_hz)) + 1)
    autocorrelation = np.fft.irfft(S.astype(np.float64) ** 2, n=CFG.n_fft, axis=0)
    window = scipy.signal.get_window("hann", CFG.n_fft, fftbins=True)  # librosa.stft's window
    window_autocorrelation = np.array([window @ np.roll(window, -lag) for lag in lags]) / (window @ window)
    normalized = autocorrelation[lags] / autocorrelation[0] / window_autocorrelation[:, np.newaxis]
    return np.clip(normalized.max(axis=0), 0.0, 1.0)


def reference_voicing(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """YIN F0, periodicity and the voiced mask (loud, periodic, F0 strictly inside the range)."""
    S = floored_magnitude(y)
    f0, level_db, periodicity = reference_yin(y), reference_level_db(S), reference_periodicity(S)
    assert f0.shape == level_db.shape == periodicity.shape
    loud = level_db >= -CFG.voicing_db
    in_range = (f0 > CFG.f0_min_hz * 1.01) & (f0 < CFG.f0_max_hz * 0.99)
    return f0, periodicity, loud & in_range & (periodicity >= CFG.voicing_threshold)


def vector_of(vector: pd.Series, track: str, n_rows: int | None) -> np.ndarray:
    return vector[names_of(track, n_rows, ROW_STATS)].to_numpy()


def test_spectral_flux_is_librosa_onset_strength_of_the_log_mel(signal_and_vector: tuple[np.ndarray, pd.Series]) -> None:
    y, vector = signal_and_vector
    log_mel = reference_log_mel(floored_magnitude(y))
    flux = librosa.onset.onset_strength(S=log_mel, sr=SR, center=False)[1:]
    assert_allclose(vector[names_of("spectral_flux", None, ROW_STATS)], reference_statistics(flux, ROW_STATS), rtol=RTOL, atol=ATOL)


def test_unvoiced_mfccs_are_the_mfccs_of_the_frames_that_are_not_voiced(clip_signal: np.ndarray, clip_vector: pd.Series) -> None:
    _, _, voiced = reference_voicing(described(clip_signal))
    mfcc = reference_mfcc(floored_magnitude(described(clip_signal)))
    assert 0 < voiced.sum() < voiced.size
    expected = reference_statistics(mfcc[:, ~voiced], ROW_STATS)
    assert_allclose(vector_of(clip_vector, "mfcc_unvoiced", CFG.n_mfcc), expected, rtol=RTOL, atol=1e-4)
    assert not np.allclose(vector_of(clip_vector, "mfcc_unvoiced", CFG.n_mfcc), reference_statistics(mfcc, ROW_STATS), rtol=0.01)


def test_spectral_balance_over_voiced_frames_matches_per_frame_fits(clip_signal: np.ndarray, clip_vector: pd.Series) -> None:
    """eGeMAPS-style alpha ratio, Hammarberg index and slopes, recomputed frame by frame from the
    floored spectrogram; the harmonics-to-noise ratio from the periodicity, over the same frames."""
    _, periodicity, voiced = reference_voicing(described(clip_signal))
    power = floored_magnitude(described(clip_signal)).astype(np.float64) ** 2
    power_db = 10 * np.log10(power)
    hz = librosa.fft_frequencies(sr=SR, n_fft=CFG.n_fft)

    def in_band(low: float, high: float) -> np.ndarray:
        return (hz >= low) & (hz < high)

    per_frame = {
        "alpha_ratio": 10 * np.log10(power[in_band(50, 1000)].sum(0) / power[in_band(1000, 5000)].sum(0)),
        "hammarberg": power_db[in_band(0, 2000)].max(0) - power_db[in_band(2000, 5000)].max(0),
        "spectral_slope_0_500": np.polyfit(hz[in_band(0, 500)] / 1000, power_db[in_band(0, 500)], 1)[0],
        "spectral_slope_500_1500": np.polyfit(hz[in_band(500, 1500)] / 1000, power_db[in_band(500, 1500)], 1)[0],
        "hnr_db": 10 * np.log10(np.clip(periodicity, 0.001, 0.999) / (1 - np.clip(periodicity, 0.001, 0.999))),
    }
    for track, values in per_frame.items():
        assert_allclose(vector_of(clip_vector, track, None), reference_statistics(values[voiced], ROW_STATS), rtol=1e-6, atol=1e-6)


def test_louder_high_band_lowers_the_alpha_ratio_and_hammarberg_index() -> None:
    rng = np.random.default_rng(1)
    low = harmonic_tone(150.0, SR)
    bright = low + 0.05 * np.sin(2 * np.pi * 3000.0 * np.arange(low.size) / SR).astype(np.float32)
    dull_vector, bright_vector = extract_features(low + 1e-4 * rng.standard_normal(low.size).astype(np.float32), SR), extract_features(bright, SR)
    assert bright_vector["alpha_ratio_mean"] < dull_vector["alpha_ratio_mean"] - 10
    assert bright_vector["hammarberg_mean"] < dull_vector["hammarberg_mean"] - 10


# --- pitch --------------------------------------------------------------------------------


def test_pitch_of_a_steady_220_hz_tone(tone_vector: pd.Series) -> None:
    assert tone_vector["f0_p50"] == pytest.approx(220.0, rel=0.02)
    assert tone_vector["f0_mean"] == pytest.approx(220.0, rel=0.02)
    assert tone_vector["f0_p10"] <= tone_vector["f0_p50"] <= tone_vector["f0_p90"]
    assert tone_vector["f0_std"] < 2.0
    assert tone_vector["voiced_fraction"] >= 0.95


def test_pitch_of_speech_is_yin_over_loud_periodic_in_range_frames(clip_signal: np.ndarray, clip_vector: pd.Series) -> None:
    f0, periodicity, voiced = reference_voicing(described(clip_signal))
    assert 0.1 < voiced.mean() < 1.0
    # periodicity decides some frames of this clip, so leaving it out shows (loudness decides
    # none here: its trimmed speech stays within voicing_db of its reference level)
    level_db = reference_level_db(floored_magnitude(described(clip_signal)))
    in_range = (f0 > CFG.f0_min_hz * 1.01) & (f0 < CFG.f0_max_hz * 0.99)
    assert np.any(in_range & (periodicity < CFG.voicing_threshold) & (level_db >= -CFG.voicing_db))
    assert 75.0 < clip_vector["f0_p50"] < 500.0
    assert_allclose(clip_vector["f0_p50"], np.median(f0[voiced]), rtol=1e-6)
    assert_allclose(clip_vector["voiced_fraction"], voiced.mean(), rtol=1e-12)
    assert_allclose(
        clip_vector[["f0_mean", "f0_std", "f0_p10", "f0_p90"]],
        [f0[voiced].mean(), f0[voiced].std(), *np.percentile(f0[voiced], [10, 90])],
        rtol=1e-6,
    )


def test_semitone_statistics_and_segment_rate_follow_yin(clip_signal: np.ndarray, clip_vector: pd.Series) -> None:
    f0, _, voiced = reference_voicing(described(clip_signal))
    semitones = 12 * np.log2(f0[voiced] / 100.0)
    seconds = np.flatnonzero(voiced) * CFG.hop_length / SR
    runs = np.count_nonzero(np.diff(np.concatenate([[0], voiced.astype(int)])) == 1)
    assert_allclose(
        clip_vector[["f0_semitone_std", "f0_semitone_range", "f0_semitone_slope", "voiced_segment_rate"]],
        [semitones.std(), np.subtract(*np.percentile(semitones, [90, 10])), np.polyfit(seconds, semitones, 1)[0],
         runs / (voiced.size * CFG.hop_length / SR)],
        rtol=1e-6,
    )
    assert 1 <= runs and clip_vector["voiced_segment_rate"] > 0


def test_an_octave_glide_rises_six_semitones_a_second_and_a_steady_tone_not_at_all(tone_vector: pd.Series) -> None:
    seconds = 2.0
    time = np.arange(int(seconds * SR)) / SR
    frequency = 150.0 * 2 ** (time / seconds)  # one octave in two seconds
    glide = (0.3 * np.sin(2 * np.pi * np.cumsum(frequency) / SR)).astype(np.float32)
    vector = extract_features(glide, SR)
    assert vector["f0_semitone_slope"] == pytest.approx(6.0, rel=0.05)
    assert vector["f0_semitone_range"] == pytest.approx(0.8 * 12, rel=0.1)
    assert abs(tone_vector["f0_semitone_slope"]) < 0.1 and tone_vector["f0_semitone_std"] < 0.1
    assert tone_vector["voiced_segment_rate"] == pytest.approx(1 / 2, rel=0.1)


# --- determinism and resampling -------------------------------------------------------------

PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: Run by a fresh interpreter: the vectors of the files and ``.npz`` signals named on the
#: command line, saved as one array.
EXTRACT_IN_A_FRESH_PROCESS = """
import sys
import numpy as np
from ser_classic.features import FeatureExtractor, extract_features
output, *inputs = sys.argv[1:]
extractor = FeatureExtractor()
vectors = []
for item in inputs:
    if item.endswith(".npz"):
        with np.load(item) as data:
            vectors.append(extract_features(data["signal"], int(data["sample_rate"])).to_numpy())
    else:
        vectors.append(extractor.extract_file(item).to_numpy())
np.save(output, np.vstack(vectors))
"""


def synthetic_signals() -> list[tuple[np.ndarray, int]]:
    """Signals unlike speech at the edges of what the extractor takes: other rates, stereo,
    tiny and huge levels, float64."""
    rng = np.random.default_rng(11)
    seconds = np.arange(int(1.5 * 8000)) / 8000
    chirp = 1e5 * scipy.signal.chirp(seconds, f0=80.0, t1=seconds[-1], f1=3000.0)
    noise = 1e-20 * rng.standard_normal((int(0.4 * 96000), 2))
    pulses = np.zeros(int(0.8 * 44100))
    pulses[::300] = 0.5
    return [(chirp, 8000), (noise, 96000), (pulses.astype(np.float32), 44100), (harmonic_tone(150.0, 22050), 22050)]


def test_vectors_are_the_same_bit_for_bit_in_fresh_processes_and_in_pool_workers(a_few_clips: list[Path], tmp_path: Path) -> None:
    """Two new interpreters, with other hash seeds and one or the default number of BLAS
    threads, compute exactly the vectors of this process; so does a pool of workers. A repeat in
    one process could not show a dependence on process state, thread count or set order."""
    signals = synthetic_signals()
    signal_files = []
    for k, (signal, sample_rate) in enumerate(signals):
        signal_files.append(tmp_path / f"signal-{k}.npz")
        np.savez(signal_files[-1], signal=signal, sample_rate=sample_rate)
    inputs = [*map(str, a_few_clips), *map(str, signal_files)]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    runs = {
        "one BLAS thread": {"PYTHONHASHSEED": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
        "default threads": {"PYTHONHASHSEED": "2"},
    }
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-c", EXTRACT_IN_A_FRESH_PROCESS, str(tmp_path / f"{k}.npy"), *inputs],
            env={**environment, **settings}, stderr=subprocess.PIPE, text=True,
        )
        for k, (name, settings) in enumerate(runs.items())
    }
    extractor = FeatureExtractor()
    here = np.vstack(
        [extractor.extract_file(path).to_numpy() for path in a_few_clips]
        + [extract_features(signal, sample_rate).to_numpy() for signal, sample_rate in signals]
    )
    pool = extractor.extract_files(a_few_clips, n_jobs=2)
    assert len(a_few_clips) == 4
    assert list(pool.index) == [str(path) for path in a_few_clips]
    assert list(pool.columns) == feature_names()
    assert_array_equal(pool.to_numpy(), here[: len(a_few_clips)])
    for k, (name, process) in enumerate(processes.items()):
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, f"{name}: {stderr[-2000:]}"
        assert_array_equal(np.load(tmp_path / f"{k}.npy"), here, err_msg=name)


@pytest.mark.parametrize("recording_rate", [44100, 22050, 16000])
def test_a_copy_at_another_common_rate_gives_nearly_the_same_vector(
    angry_clip: Path, clip_vector: pd.Series, recording_rate: int
) -> None:
    """The 48 kHz recording decoded at 44.1, 22.05 or 16 kHz, then resampled by the extractor.

    Every such chain keeps the analysed band (up to the analysis rate's Nyquist frequency,
    7 kHz) intact, so the copies differ from the direct 48 kHz -> analysis-rate vector only by
    the resamplers' passband ripple. Measured (extractor version 5): median relative change
    3e-6 (44.1 kHz), 1.4e-5 (22.05 kHz), 1.2e-5 (16 kHz); the largest change against
    rtol=0.02 + atol=2e-3 uses at most 0.62 of it (``mfcc_unvoiced_04_mean``, whose value is
    near 0: one frame's voicing), every other feature at most 0.05. The same samples *declared*
    as the analysis rate are far off (median 0.11-0.43): the check can tell resampling from none.
    """
    copy = load(angry_clip, sample_rate=recording_rate)
    vector = extract_features(copy, recording_rate)
    assert_allclose(vector, clip_vector, rtol=0.02, atol=2e-3)
    relative = np.abs(vector - clip_vector) / np.abs(clip_vector)
    assert relative.median() < 1e-4
    assert vector["f0_p50"] == pytest.approx(clip_vector["f0_p50"], rel=1e-4)
    not_resampled = extract_features(copy, SR)
    assert (np.abs(not_resampled - clip_vector) / np.abs(clip_vector)).median() > 0.05


# --- scikit-learn contract ------------------------------------------------------------------


def test_feature_extractor_is_exported_at_top_level() -> None:
    from ser_classic import FeatureExtractor as exported

    assert exported is FeatureExtractor


def test_feature_extractor_params_clone_and_fit(tmp_path: Path) -> None:
    from sklearn.base import clone

    config = FeatureConfig(n_mfcc=13)
    extractor = FeatureExtractor(config, cache_dir=tmp_path, n_jobs=2)
    assert extractor.get_params() == {"config": config, "cache_dir": tmp_path, "n_jobs": 2}
    copy = clone(extractor)
    assert copy is not extractor and copy.get_params() == extractor.get_params()
    assert extractor.set_params(n_jobs=1) is extractor and extractor.n_jobs == 1
    assert extractor.fit(["unused.wav"]) is extractor
    assert list(extractor.get_feature_names_out()) == feature_names(config)
    assert list(FeatureExtractor().get_feature_names_out()) == feature_names()


def test_transform_of_paths_gives_a_named_table_and_survives_pickling(a_few_clips: list[Path]) -> None:
    """A path-consuming transformer: ``check_estimator`` is not run because it feeds numeric
    arrays, which this transformer rightly reads as (missing) file names."""
    extractor = FeatureExtractor().fit(a_few_clips)
    table = extractor.transform([str(path) for path in a_few_clips])
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == list(extractor.get_feature_names_out())
    assert list(table.index) == [str(path) for path in a_few_clips]
    buffer = io.BytesIO()
    joblib.dump(extractor, buffer)
    buffer.seek(0)
    restored = joblib.load(buffer)
    assert restored.get_params() == extractor.get_params()
    assert_array_equal(restored.transform(a_few_clips).to_numpy(), table.to_numpy())


def test_extractor_is_the_first_step_of_a_pipeline_fitted_on_paths(ravdess_root: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    paths = [
        str(ravdess_root / f"Actor_{actor:02d}" / f"03-01-{emotion}-02-01-0{repetition}-{actor:02d}.flac")
        for actor in (1, 2)
        for emotion in ("04", "05")
        for repetition in (1, 2)
    ]
    labels = ["sad", "sad", "angry", "angry"] * 2
    pipeline = make_pipeline(FeatureExtractor(), StandardScaler(), LogisticRegression(max_iter=1000)).fit(paths, labels)
    assert sorted(pipeline.classes_) == ["angry", "sad"]
    assert pipeline.predict_proba(paths[:2]).shape == (2, 2)
    scaled = make_pipeline(FeatureExtractor(), StandardScaler()).set_output(transform="pandas").fit_transform(paths)
    assert list(scaled.columns) == feature_names()


# --- cache ----------------------------------------------------------------------------------


@pytest.fixture()
def wav_clip(tmp_path: Path, clip_signal: np.ndarray) -> Path:
    """The RAVDESS clip as 16-bit WAV, a format where one changed byte still decodes."""
    path = tmp_path / "audio" / "clip.wav"
    path.parent.mkdir()
    soundfile.write(path, clip_signal, SR, subtype="PCM_16")
    return path


def cache_entry(cache_dir: Path, config: FeatureConfig, audio_path: Path) -> Path:
    return cache_dir / config.digest() / f"{hashlib.sha256(audio_path.read_bytes()).hexdigest()}.npy"


def test_second_extraction_reads_the_cache(tmp_path: Path, wav_clip: Path) -> None:
    cache_dir = tmp_path / "cache"
    extractor = FeatureExtractor(cache_dir=cache_dir)
    computed = extractor.extract_file(wav_clip)
    entry = cache_entry(cache_dir, FeatureConfig(), wav_clip)
    assert entry.is_file()
    assert_array_equal(np.load(entry), computed.to_numpy())
    marker = np.arange(len(computed), dtype=np.float64)
    np.save(entry, marker)
    assert_array_equal(FeatureExtractor(cache_dir=cache_dir).extract_file(wav_clip).to_numpy(), marker)
    assert_array_equal(extractor.extract_files([wav_clip]).to_numpy()[0], marker)
    assert_array_equal(FeatureExtractor().extract_file(wav_clip).to_numpy(), computed.to_numpy())


def test_cache_is_keyed_by_content_not_name(tmp_path: Path, wav_clip: Path) -> None:
    cache_dir = tmp_path / "cache"
    extractor = FeatureExtractor(cache_dir=cache_dir)
    computed = extractor.extract_file(wav_clip)
    entry = cache_entry(cache_dir, FeatureConfig(), wav_clip)
    marker = np.full(len(computed), 7.0)
    np.save(entry, marker)

    renamed = tmp_path / "elsewhere" / "another name.wav"
    renamed.parent.mkdir()
    shutil.copyfile(wav_clip, renamed)
    assert_array_equal(extractor.extract_file(renamed).to_numpy(), marker)

    changed = tmp_path / "changed.wav"
    data = bytearray(wav_clip.read_bytes())
    data[len(data) // 2] ^= 0x01
    changed.write_bytes(bytes(data))
    fresh = extractor.extract_file(changed)
    assert not np.array_equal(fresh.to_numpy(), marker)
    assert np.median(np.abs(fresh - computed) / np.abs(computed)) < 1e-3
    assert sorted(p.name for p in entry.parent.iterdir()) == sorted(
        [entry.name, cache_entry(cache_dir, FeatureConfig(), changed).name]
    )


def test_changed_config_uses_another_cache_folder(tmp_path: Path, wav_clip: Path) -> None:
    cache_dir = tmp_path / "cache"
    default, other = FeatureConfig(), FeatureConfig(voicing_db=20.0)
    assert default.digest() != other.digest()
    FeatureExtractor(default, cache_dir=cache_dir).extract_file(wav_clip)
    np.save(cache_entry(cache_dir, default, wav_clip), np.zeros(len(feature_names())))
    vector = FeatureExtractor(other, cache_dir=cache_dir).extract_file(wav_clip)
    assert np.any(vector.to_numpy() != 0)
    assert cache_entry(cache_dir, other, wav_clip).is_file()
    assert sorted(p.name for p in cache_dir.iterdir()) == sorted([default.digest(), other.digest()])
