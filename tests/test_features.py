"""The feature vector against librosa's own functions, its names, determinism, the
scikit-learn contract of :class:`FeatureExtractor`, and the feature cache.

The reference values are computed here with librosa's public functions on the signal itself
(``y=...``), not through the extractor's shared spectrogram, so a wrong window, hop, power,
row order or statistic in the extractor shows up as a mismatch.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
from pathlib import Path

import joblib
import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile
from numpy.testing import assert_allclose, assert_array_equal

from ser_classic.audio import ANALYSIS_SAMPLE_RATE, load
from ser_classic.features import FeatureConfig, FeatureExtractor, extract_features, feature_names

SR = ANALYSIS_SAMPLE_RATE
FRAME_STATS = ("mean", "std", "p10", "p50", "p90")
ROW_STATS = ("mean", "std")


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


@pytest.fixture(scope="module", params=["ravdess_clip", "tone"])
def signal_and_vector(request: pytest.FixtureRequest) -> tuple[np.ndarray, pd.Series]:
    """A real RAVDESS clip and a synthetic tone at 22050 Hz, each with its public vector."""
    signal = request.getfixturevalue("clip_signal" if request.param == "ravdess_clip" else "tone_signal")
    return signal, extract_features(signal, SR)


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
                 "mfcc_20_p90", "mfcc_delta_05_mean", "mfcc_delta2_20_std", "mfcc_unvoiced_20_std",
                 "chroma_01_mean", "chroma_12_std", "tonnetz_06_mean", "spectral_flux_std", "alpha_ratio_mean",
                 "hammarberg_std", "spectral_slope_500_1500_mean", "voiced_fraction", "f0_p50",
                 "f0_semitone_range", "f0_semitone_slope", "voiced_segment_rate"):
        assert spot in names
    pattern = re.compile(r"^[a-z0-9_]+?(_\d\d)?_(mean|std|p10|p50|p90|range|slope)$|^voiced_(fraction|segment_rate)$")
    assert [name for name in names if not pattern.match(name)] == []


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
    reference = {
        "zcr": lambda: librosa.feature.zero_crossing_rate(y, frame_length=2048, hop_length=512)[0],
        "rms_db": lambda: librosa.amplitude_to_db(
            librosa.feature.rms(S=np.abs(librosa.stft(y)))[0], ref=1.0, amin=1e-5, top_db=None
        ),
        "centroid": lambda: librosa.feature.spectral_centroid(y=y, sr=SR)[0],
        "bandwidth": lambda: librosa.feature.spectral_bandwidth(y=y, sr=SR)[0],
        "rolloff": lambda: librosa.feature.spectral_rolloff(y=y, sr=SR)[0],
        "flatness": lambda: librosa.feature.spectral_flatness(y=y)[0],
    }[track]()
    assert_allclose(vector[names_of(track, None, FRAME_STATS)], reference_statistics(reference, FRAME_STATS), rtol=RTOL, atol=ATOL)


def test_spectral_contrast_matches_librosa(signal_and_vector: tuple[np.ndarray, pd.Series]) -> None:
    y, vector = signal_and_vector
    contrast = librosa.feature.spectral_contrast(y=y, sr=SR)
    assert contrast.shape[0] == 7
    assert_allclose(vector[names_of("contrast", 7, ROW_STATS)], reference_statistics(contrast, ROW_STATS), rtol=RTOL, atol=ATOL)


def test_mfcc_and_deltas_match_librosa(signal_and_vector: tuple[np.ndarray, pd.Series]) -> None:
    y, vector = signal_and_vector
    mfcc = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=20)
    assert_allclose(vector[names_of("mfcc", 20, FRAME_STATS)], reference_statistics(mfcc, FRAME_STATS), rtol=RTOL, atol=1e-4)
    delta = librosa.feature.delta(mfcc)
    delta2 = librosa.feature.delta(mfcc, order=2)
    assert_allclose(vector[names_of("mfcc_delta", 20, ROW_STATS)], reference_statistics(delta, ROW_STATS), rtol=RTOL, atol=ATOL)
    assert_allclose(vector[names_of("mfcc_delta2", 20, ROW_STATS)], reference_statistics(delta2, ROW_STATS), rtol=RTOL, atol=ATOL)


def test_chroma_and_tonnetz_match_librosa(signal_and_vector: tuple[np.ndarray, pd.Series]) -> None:
    y, vector = signal_and_vector
    chroma = librosa.feature.chroma_stft(y=y, sr=SR, tuning=0.0)
    tonnetz = librosa.feature.tonnetz(chroma=chroma, sr=SR)
    assert_allclose(vector[names_of("chroma", 12, ROW_STATS)], reference_statistics(chroma, ROW_STATS), rtol=RTOL, atol=ATOL)
    assert_allclose(vector[names_of("tonnetz", 6, ROW_STATS)], reference_statistics(tonnetz, ROW_STATS), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(("frequency_hz", "pitch_class"), [(261.63, 1), (220.0, 10)])
def test_chroma_rows_start_at_c(frequency_hz: float, pitch_class: int) -> None:
    """C4 peaks in chroma_01, A3 (with harmonics A, E, A) in chroma_10."""
    vector = extract_features(harmonic_tone(frequency_hz, SR), SR)
    means = vector[names_of("chroma", 12, ("mean",))].to_numpy()
    assert int(np.argmax(means)) + 1 == pitch_class


def reference_voicing(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """YIN F0, RMS level (dB) and the voiced mask, from librosa on the signal itself."""
    f0 = librosa.yin(y, fmin=65, fmax=600, sr=SR, frame_length=2048, hop_length=512)
    level_db = librosa.amplitude_to_db(librosa.feature.rms(S=np.abs(librosa.stft(y)))[0], ref=1.0, amin=1e-5, top_db=None)
    voiced = (level_db >= level_db.max() - 30.0) & (f0 > 65 * 1.01) & (f0 < 600 * 0.99)
    return f0, level_db, voiced


def vector_of(vector: pd.Series, track: str, n_rows: int | None) -> np.ndarray:
    return vector[names_of(track, n_rows, ROW_STATS)].to_numpy()


def test_spectral_flux_is_librosa_onset_strength_of_the_log_mel(signal_and_vector: tuple[np.ndarray, pd.Series]) -> None:
    y, vector = signal_and_vector
    log_mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SR))
    flux = librosa.onset.onset_strength(S=log_mel, sr=SR, center=False)[1:]
    assert_allclose(vector[names_of("spectral_flux", None, ROW_STATS)], reference_statistics(flux, ROW_STATS), rtol=RTOL, atol=ATOL)


def test_unvoiced_mfccs_are_the_mfccs_of_the_frames_that_are_not_voiced(clip_signal: np.ndarray, clip_vector: pd.Series) -> None:
    _, _, voiced = reference_voicing(clip_signal)
    mfcc = librosa.feature.mfcc(y=clip_signal, sr=SR, n_mfcc=20)
    assert 0 < voiced.sum() < voiced.size
    expected = reference_statistics(mfcc[:, ~voiced], ROW_STATS)
    assert_allclose(vector_of(clip_vector, "mfcc_unvoiced", 20), expected, rtol=RTOL, atol=1e-4)
    assert not np.allclose(vector_of(clip_vector, "mfcc_unvoiced", 20), reference_statistics(mfcc, ROW_STATS), rtol=0.01)


def test_spectral_balance_over_voiced_frames_matches_per_frame_fits(clip_signal: np.ndarray, clip_vector: pd.Series) -> None:
    """eGeMAPS-style alpha ratio, Hammarberg index and slopes, recomputed frame by frame."""
    _, _, voiced = reference_voicing(clip_signal)
    power = np.abs(librosa.stft(clip_signal)).astype(np.float64) ** 2
    power_db = 10 * np.log10(power + 1e-10)
    hz = librosa.fft_frequencies(sr=SR, n_fft=2048)

    def in_band(low: float, high: float) -> np.ndarray:
        return (hz >= low) & (hz < high)

    per_frame = {
        "alpha_ratio": 10 * np.log10((power[in_band(50, 1000)].sum(0) + 1e-10) / (power[in_band(1000, 5000)].sum(0) + 1e-10)),
        "hammarberg": power_db[in_band(0, 2000)].max(0) - power_db[in_band(2000, 5000)].max(0),
        "spectral_slope_0_500": np.polyfit(hz[in_band(0, 500)] / 1000, power_db[in_band(0, 500)], 1)[0],
        "spectral_slope_500_1500": np.polyfit(hz[in_band(500, 1500)] / 1000, power_db[in_band(500, 1500)], 1)[0],
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


def test_pitch_of_speech_is_yin_over_loud_in_range_frames(clip_signal: np.ndarray, clip_vector: pd.Series) -> None:
    f0 = librosa.yin(clip_signal, fmin=65, fmax=600, sr=SR, frame_length=2048, hop_length=512)
    level_db = librosa.amplitude_to_db(
        librosa.feature.rms(S=np.abs(librosa.stft(clip_signal)))[0], ref=1.0, amin=1e-5, top_db=None
    )
    voiced = (level_db >= level_db.max() - 30.0) & (f0 > 65 * 1.01) & (f0 < 600 * 0.99)
    assert 0.1 < voiced.mean() < 1.0
    assert 75.0 < clip_vector["f0_p50"] < 500.0
    assert_allclose(clip_vector["f0_p50"], np.median(f0[voiced]), rtol=1e-6)
    assert_allclose(clip_vector["voiced_fraction"], voiced.mean(), rtol=1e-12)
    assert_allclose(
        clip_vector[["f0_mean", "f0_std", "f0_p10", "f0_p90"]],
        [f0[voiced].mean(), f0[voiced].std(), *np.percentile(f0[voiced], [10, 90])],
        rtol=1e-6,
    )


def test_semitone_statistics_and_segment_rate_follow_yin(clip_signal: np.ndarray, clip_vector: pd.Series) -> None:
    f0, _, voiced = reference_voicing(clip_signal)
    semitones = 12 * np.log2(f0[voiced] / 100.0)
    seconds = np.flatnonzero(voiced) * 512 / SR
    runs = np.count_nonzero(np.diff(np.concatenate([[0], voiced.astype(int)])) == 1)
    assert_allclose(
        clip_vector[["f0_semitone_std", "f0_semitone_range", "f0_semitone_slope", "voiced_segment_rate"]],
        [semitones.std(), np.subtract(*np.percentile(semitones, [90, 10])), np.polyfit(seconds, semitones, 1)[0],
         runs / (voiced.size * 512 / SR)],
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


def test_same_signal_gives_identical_vector(clip_signal: np.ndarray, clip_vector: pd.Series) -> None:
    assert_array_equal(extract_features(clip_signal.copy(), SR).to_numpy(), clip_vector.to_numpy())


def test_extract_file_is_deterministic_and_matches_parallel_extract_files(a_few_clips: list[Path]) -> None:
    extractor = FeatureExtractor()
    first = [extractor.extract_file(path) for path in a_few_clips]
    again = [extractor.extract_file(path) for path in a_few_clips]
    table = extractor.extract_files(a_few_clips, n_jobs=2)
    assert len(a_few_clips) == 4
    assert list(table.index) == [str(path) for path in a_few_clips]
    assert list(table.columns) == feature_names()
    for path, vector, repeated in zip(a_few_clips, first, again):
        assert vector.name == str(path)
        assert_array_equal(vector.to_numpy(), repeated.to_numpy())
        assert_array_equal(table.loc[str(path)].to_numpy(), vector.to_numpy())


def test_a_44_1_khz_copy_gives_nearly_the_same_vector(angry_clip: Path, clip_vector: pd.Series) -> None:
    """The 48 kHz recording decoded at 44.1 kHz is resampled to 22.05 kHz by the extractor.

    Two resampling chains (48k->22.05k, 48k->44.1k->22.05k) differ only near 11 kHz, the top of
    spectral contrast band 7; every other value agrees within 2% (+1e-3). The same samples
    *declared* as 22.05 kHz are far off: the check can tell resampling from none.
    """
    copy_44k = load(angry_clip, sample_rate=44100)
    vector = extract_features(copy_44k, 44100)
    top_band = clip_vector.index.str.startswith("contrast_07")
    assert_allclose(vector[~top_band], clip_vector[~top_band], rtol=0.02, atol=1e-3)
    assert_allclose(vector[top_band], clip_vector[top_band], rtol=0.1)
    relative = np.abs(vector - clip_vector) / np.abs(clip_vector)
    assert relative.median() < 1e-3
    not_resampled = extract_features(copy_44k, SR)
    assert (np.abs(not_resampled - clip_vector) / np.abs(clip_vector)).median() > 0.05
    assert vector["f0_p50"] == pytest.approx(clip_vector["f0_p50"], rel=0.01)


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
