"""Loading audio files: formats and bit depths, channel mixing, resampling, trimming, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
from numpy.testing import assert_allclose

from ser_classic.audio import ANALYSIS_SAMPLE_RATE, load
from ser_classic.errors import AudioError, SERError

SR = ANALYSIS_SAMPLE_RATE


def sine(frequency_hz: float, sample_rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    time = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return amplitude * np.sin(2 * np.pi * frequency_hz * time)


def dominant_frequency(signal: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(signal.size)))
    return float(np.fft.rfftfreq(signal.size, 1 / sample_rate)[np.argmax(spectrum)])


@pytest.mark.parametrize(
    ("suffix", "subtype", "max_error"),
    [
        (".wav", "PCM_16", 1 / 2**15),
        (".wav", "PCM_24", 1 / 2**23),
        (".wav", "FLOAT", 1e-7),
        (".flac", "PCM_16", 1 / 2**15),
        (".flac", "PCM_24", 1 / 2**23),
    ],
)
def test_load_reads_formats_and_bit_depths_as_float32(tmp_path: Path, suffix: str, subtype: str, max_error: float) -> None:
    original = sine(440, SR, 0.5) + sine(1234, SR, 0.5, amplitude=0.2)
    path = tmp_path / f"clip-{subtype}{suffix}"
    soundfile.write(path, original, SR, subtype=subtype)
    signal = load(path)
    assert signal.dtype == np.float32 and signal.ndim == 1
    assert signal.shape == original.shape
    assert_allclose(signal, original, rtol=0, atol=max_error)


def test_load_reads_a_real_ravdess_flac_at_the_analysis_rate(angry_clip: Path) -> None:
    info = soundfile.info(angry_clip)
    signal = load(angry_clip)
    assert signal.dtype == np.float32 and signal.ndim == 1
    assert signal.size == pytest.approx(info.frames * SR / info.samplerate, abs=2)
    assert 0.05 < np.max(np.abs(signal)) <= 1.0


def test_stereo_is_mixed_to_mono(tmp_path: Path) -> None:
    left, right = sine(300, SR, 0.5), sine(700, SR, 0.5, amplitude=0.3)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.column_stack([left, right]), SR, subtype="FLOAT")
    assert_allclose(load(path), (left + right) / 2, atol=1e-6)


def test_opposite_channels_cancel_to_silence_and_are_refused(tmp_path: Path) -> None:
    left = sine(300, SR, 0.5)
    path = tmp_path / "phase.wav"
    soundfile.write(path, np.column_stack([left, -left]), SR, subtype="FLOAT")
    with pytest.raises(AudioError, match="digital silence"):
        load(path)


def test_the_analysis_rate_puts_nyquist_at_7_khz() -> None:
    """7 kHz lies below the band edge of every common recording rate from 16 kHz up."""
    assert SR == 14000


@pytest.mark.parametrize("source_rate", [48000, 44100, 22050, 16000, 8000])
def test_other_rates_are_resampled_to_the_analysis_rate(tmp_path: Path, source_rate: int) -> None:
    path = tmp_path / f"tone-{source_rate}.wav"
    soundfile.write(path, sine(440, source_rate, 1.0), source_rate, subtype="PCM_16")
    signal = load(path)
    assert signal.size == pytest.approx(SR, abs=2)
    assert dominant_frequency(signal, SR) == pytest.approx(440, abs=2)
    middle = signal[SR // 4 : 3 * SR // 4]
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


@pytest.mark.parametrize("source_rate", [48000, 22050, 16000])
def test_content_above_the_analysis_nyquist_is_removed_not_aliased(tmp_path: Path, source_rate: int) -> None:
    """A 7.6 kHz tone, above the analysed band's 7 kHz edge but inside every source's band, is
    filtered out: no trace at 7.6 kHz or at its alias 6.4 kHz (SR - 7.6 kHz), and only the
    440 Hz tone's level remains. Measured: everything above 1 kHz at most -106 dB below the
    440 Hz peak (Hann sidelobes and 16-bit quantization); the bound is -80 dB."""
    path = tmp_path / f"two-tones-{source_rate}.wav"
    soundfile.write(path, sine(440, source_rate, 1.0, 0.4) + sine(7600, source_rate, 1.0, 0.4), source_rate, subtype="PCM_16")
    middle = load(path)[SR // 4 : 3 * SR // 4]
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(middle.size)))
    hz = np.fft.rfftfreq(middle.size, 1 / SR)
    assert dominant_frequency(middle, SR) == pytest.approx(440, abs=2)
    assert 20 * np.log10(spectrum[hz > 1000].max() / spectrum.max()) < -80
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.4 / np.sqrt(2), rel=0.01)


def test_load_can_return_another_rate(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    soundfile.write(path, sine(440, SR, 1.0), SR)
    signal = load(path, sample_rate=16000)
    assert signal.size == pytest.approx(16000, abs=2)
    assert dominant_frequency(signal, 16000) == pytest.approx(440, abs=2)


def test_trimming_removes_leading_and_trailing_silence(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    quiet = 1e-4 * rng.standard_normal(SR)
    path = tmp_path / "padded.wav"
    soundfile.write(path, np.concatenate([quiet, sine(220, SR, 1.0), quiet]), SR, subtype="FLOAT")
    assert load(path).size == 3 * SR
    trimmed = load(path, trim_db=30)
    frame = 2048
    assert SR <= trimmed.size <= SR + 2 * frame
    assert np.sqrt(np.mean(trimmed**2)) > 0.3


def test_missing_file_raises_audio_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "missing.wav"
    with pytest.raises(AudioError) as caught:
        load(path)
    assert isinstance(caught.value, SERError)
    assert caught.value.path == str(path)
    assert str(caught.value) == f"{path}: no such file"


def test_text_file_raises_audio_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 20)
    with pytest.raises(AudioError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not a readable audio file")
    assert "\n" not in message


def test_empty_file_raises_audio_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "empty.flac"
    path.touch()
    with pytest.raises(AudioError, match="empty file") as caught:
        load(path)
    assert str(path) in str(caught.value)


def test_a_truncated_mp3_is_read_without_the_decoders_message_on_stderr(
    angry_clip: Path, tmp_path: Path, capfd: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    """libmpg123 writes "Xing stream size off ..." to the process's stderr; it goes to the log."""
    signal, rate = soundfile.read(angry_clip, dtype="float32")
    mp3 = tmp_path / "truncated.mp3"
    soundfile.write(mp3, signal, rate, format="MP3")
    mp3.write_bytes(mp3.read_bytes()[: mp3.stat().st_size // 2])
    with caplog.at_level("INFO", logger="ser_classic.audio"):
        assert load(mp3).size > 0
    assert capfd.readouterr().err == ""
    assert any(str(mp3) in record.getMessage() and "decoder says" in record.getMessage() for record in caplog.records)


def test_a_one_sample_file_is_too_short_not_empty(tmp_path: Path) -> None:
    path = tmp_path / "one_sample.wav"
    soundfile.write(path, np.array([0.5]), 48000, subtype="PCM_16")
    with pytest.raises(AudioError, match="too short: 0.000 s"):
        load(path)
