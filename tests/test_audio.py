"""Loading audio files: formats and bit depths, containers FFmpeg reads (written with PyAV), channel
mixing, resampling, trimming, streaming, errors."""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile
from media import write_encoded, write_video_only
from numpy.testing import assert_allclose

from ser_classic.audio import ANALYSIS_SAMPLE_RATE, file_info, load, read_blocks
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


# --- containers only FFmpeg reads (PyAV) ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "codec", "options"),
    [
        ("memo.m4a", "aac", {"bit_rate": 96000}),
        ("call.mp4", "aac", {"bit_rate": 128000, "with_video": True}),
        ("screen.mov", "aac", {"bit_rate": 128000}),
        ("note.webm", "libopus", {"bit_rate": 48000, "codec_rate": 48000}),
        ("meeting.mkv", "libopus", {"bit_rate": 64000, "codec_rate": 48000}),
        ("voicemail.amr", "libopencore_amrnb", {"bit_rate": 12200, "codec_rate": 8000}),
        ("dictation.wma", "wmav2", {"bit_rate": 64000}),
    ],
)
def test_containers_only_ffmpeg_reads_are_decoded_at_the_analysis_rate(tmp_path: Path, name: str, codec: str, options: dict) -> None:
    original = sine(440, 48000, 1.0)
    signal = load(write_encoded(tmp_path / name, original, 48000, codec, **options))
    assert signal.dtype == np.float32 and signal.ndim == 1
    assert signal.size == pytest.approx(SR, abs=0.1 * SR)  # codecs add priming and padding
    middle = signal[SR // 4 : 3 * SR // 4]
    assert dominant_frequency(middle, SR) == pytest.approx(440, abs=3)
    # AMR-NB, a speech codec, keeps a pure tone's pitch but loses ~17% of its level
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.2)


@pytest.mark.parametrize("codec", ["pcm_u8", "pcm_s16le", "pcm_s32le", "pcm_f32le"])
def test_pcm_of_any_sample_format_in_a_mov_is_scaled_to_full_scale_and_mixed_to_mono(tmp_path: Path, codec: str) -> None:
    left, right = sine(300, SR, 0.5), sine(700, SR, 0.5, amplitude=0.3)
    path = write_encoded(tmp_path / f"{codec}.mov", np.column_stack([left, right]), SR, codec)
    assert file_info(path).channels == 2
    assert_allclose(load(path), (left + right) / 2, rtol=0, atol=1 / 2**6 if codec == "pcm_u8" else 1 / 2**14)


def test_file_info_of_an_m4a_reads_its_header(tmp_path: Path) -> None:
    path = write_encoded(tmp_path / "memo.m4a", sine(440, 44100, 2.0), 44100, "aac", bit_rate=96000)
    info = file_info(path)
    assert (info.format, info.subtype, info.sample_rate, info.channels) == ("M4A", "AAC", 44100, 1)
    assert info.duration_seconds == pytest.approx(2.0, abs=0.05)
    assert info.size_bytes == path.stat().st_size


def test_a_live_webm_that_states_no_duration_gets_it_from_its_packets(tmp_path: Path) -> None:
    path = write_encoded(tmp_path / "browser.webm", sine(440, 48000, 3.0), 48000, "libopus", options={"live": "1"})
    import av

    with av.open(str(path)) as container:
        assert container.duration is None and container.streams.audio[0].duration is None
    assert file_info(path).duration_seconds == pytest.approx(3.0, abs=0.05)


def test_an_m4a_named_wav_is_read_by_ffmpeg_when_libsndfile_cannot_open_it(tmp_path: Path) -> None:
    path = write_encoded(tmp_path / "memo.m4a", sine(440, 48000, 1.0), 48000, "aac", bit_rate=96000)
    path = path.rename(path.with_suffix(".wav"))
    assert dominant_frequency(load(path), SR) == pytest.approx(440, abs=3)


def test_a_video_named_wav_keeps_libsndfiles_reason(tmp_path: Path) -> None:
    path = write_video_only(tmp_path / "clip.mp4").rename(tmp_path / "clip.wav")
    with pytest.raises(AudioError, match=r"not a readable audio file \(Format not recognised"):
        load(path)


def test_a_video_without_an_audio_track_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = write_video_only(tmp_path / "screen.mp4")
    for read in (load, file_info, lambda source: list(read_blocks(source))):
        with pytest.raises(AudioError) as caught:
            read(path)
        assert str(caught.value) == f"{path}: no audio track (video only)"


@pytest.mark.parametrize("options", [{}, {"movflags": "faststart"}], ids=["index-at-end", "index-first"])
def test_a_truncated_m4a_is_refused_naming_the_file(tmp_path: Path, options: dict) -> None:
    path = write_encoded(tmp_path / "cut.m4a", sine(440, 48000, 3.0), 48000, "aac", options=options)
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 6 // 10])
    with pytest.raises(AudioError) as caught:
        load(path)
    assert str(caught.value).startswith(f"{path}: not a readable audio file (")
    assert caught.value.path == str(path)


def test_decoding_broken_containers_writes_nothing_to_stderr(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    broken = write_encoded(tmp_path / "cut.m4a", sine(440, 48000, 3.0), 48000, "aac", options={"movflags": "faststart"})
    broken.write_bytes(broken.read_bytes()[:-5000])
    garbage = tmp_path / "noise.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    capfd.readouterr()
    for path in (broken, garbage, write_video_only(tmp_path / "video.mp4")):
        with pytest.raises(AudioError):
            load(path)
    assert capfd.readouterr().err == ""


def test_read_blocks_streams_an_m4a_without_holding_it_whole(tmp_path: Path) -> None:
    """Three minutes of AAC read in 5 s blocks: the blocks equal ``load``, and Python's peak
    allocation while reading stays below a quarter of the decoded signal's size."""
    rate, seconds = 16000, 180
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(rate * seconds)).astype(np.float32)
    path = write_encoded(tmp_path / "long.m4a", noise, rate, "aac", bit_rate=64000)
    whole = load(path, max_seconds=None)
    tracemalloc.start()
    try:
        n_samples, energy = 0, 0.0
        for block in read_blocks(path, block_seconds=5.0):
            n_samples += block.size
            energy += float(np.sum(block.astype(np.float64) ** 2))
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n_samples == whole.size
    assert energy == pytest.approx(float(np.sum(whole.astype(np.float64) ** 2)), rel=1e-5)
    assert peak_bytes < whole.nbytes / 4, f"peak {peak_bytes / 1e6:.1f} MB while reading {whole.nbytes / 1e6:.1f} MB of samples"


def test_without_the_ffmpeg_extra_an_m4a_gets_an_error_naming_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PyAV is an optional extra (its FFmpeg holds GPL parts): without it the file is refused clearly."""
    clip = tmp_path / "memo.m4a"
    clip.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(64))
    monkeypatch.setitem(sys.modules, "av", None)  # import av now raises ImportError
    with pytest.raises(AudioError, match=r"memo\.m4a: \.m4a files need FFmpeg's decoders: pip install 'ser-classic\[ffmpeg\]'"):
        load(clip)


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
