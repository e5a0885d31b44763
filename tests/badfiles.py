"""Awkward and broken input files, synthesized on demand (never committed).

:func:`write_bad_files` writes every case into a folder and returns ``case name -> path``;
:func:`expected_error` says, per case, whether ser-classic must classify the file (``None``) or
refuse it with an error whose reason contains the returned text. The reliability tests run
the cases through the Python API and ``ser predict``; the demo's tests can reuse them.

Cases: empty and header-only WAV, truncated WAV (data and header) and FLAC, text and PNG
named ``.wav``, a directory named ``x.wav``, a file without read permission, digital
silence, 10 ms and 0.3 s clips, DC offset, full-scale clipping, white noise, 8 and 96 kHz,
6 channels, 8/16/24-bit integer and 32/64-bit float WAV, NaN and infinite samples, a float
WAV holding 32-bit integer values (far beyond full scale), MP3, Ogg Vorbis and Opus, AAC in
M4A and in MP4 beside a video track, Opus in WebM, an M4A named ``.wav``, a truncated M4A, an
MP4 with video only (these with PyAV's encoders, :mod:`media`), a symbolic-link loop between
two files, a clip in a folder holding a link back to its parent (a directory loop), names with
spaces, unicode, commas, quotes and a newline, and a one-hour WAV (sparse, so it costs no disk
and no time to write).
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import soundfile
from media import write_encoded, write_video_only

__all__ = ["BAD_CASES", "NO_SPEECH_REASON", "expected_error", "voice_like", "write_bad_files"]

#: The reason of a readable file without speech: features are extracted, no emotion is given.
NO_SPEECH_REASON = "no speech found"

#: Case name -> substring of the error reason, or ``None`` when a valid prediction is required.
BAD_CASES: dict[str, str | None] = {
    "empty": "empty file",
    "header_only": "no audio samples",
    "truncated_wav_data": None,
    "truncated_wav_header": "not a readable audio file",
    "truncated_flac": "not a readable audio file",
    "text_as_wav": "not a readable audio file",
    "png_as_wav": "not a readable audio file",
    "directory_as_wav": "is a directory",
    "unreadable": "permission denied",
    "silence": "digital silence",
    "clip_10ms": "too short",
    "one_sample": "too short",
    "clip_300ms": None,
    "dc_offset": None,
    "clipped": None,
    "white_noise": NO_SPEECH_REASON,
    "rate_8khz": None,
    "rate_96khz": None,
    "channels_6": None,
    "pcm_u8": None,
    "pcm_16": None,
    "pcm_24": None,
    "float_32": None,
    "float_64": None,
    "float_nan": "NaN or infinite",
    "float_inf": "NaN or infinite",
    "float_huge": "implausible level",
    "mp3": None,
    "truncated_mp3": None,
    "ogg_vorbis": None,
    "ogg_opus": None,
    "m4a_aac": None,
    "mp4_aac_and_video": None,
    "webm_opus": None,
    "m4a_named_wav": None,
    "truncated_m4a": "not a readable audio file",
    "video_only_mp4": "no audio track (video only)",
    "symlink_loop": "symbolic link",
    "symlink_loop_back": "symbolic link",
    "inside_directory_loop": None,
    "name_spaces": None,
    "name_unicode": None,
    "name_commas": None,
    "name_quotes": None,
    "name_newline": None,
    "one_hour": "too long",
}


def expected_error(case: str) -> str | None:
    """What :data:`BAD_CASES` expects, for this process: root reads files without permission."""
    if case == "unreadable" and os.geteuid() == 0:
        return None
    return BAD_CASES[case]


def voice_like(seconds: float = 1.5, sample_rate: int = 48000, seed: int = 0) -> tuple[np.ndarray, int]:
    """A vowel-like test signal: harmonics of a gliding 140-220 Hz pitch, syllable envelope, breath noise."""
    time = np.arange(int(seconds * sample_rate)) / sample_rate
    pitch = 140 + 80 * np.sin(np.pi * time / seconds)
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * np.minimum(time * 4 / seconds, 1)))
    rng = np.random.default_rng(seed)
    signal = 0.2 * envelope * harmonics + 0.003 * rng.standard_normal(time.size)
    return signal.astype(np.float32), sample_rate


def _loudest_part(signal: np.ndarray, sample_rate: int, seconds: float) -> np.ndarray:
    """The ``seconds``-long stretch of ``signal`` with the most energy."""
    length = min(int(seconds * sample_rate), signal.size)
    cumulative = np.concatenate([[0.0], np.cumsum(signal.astype(np.float64) ** 2)])
    start = int(np.argmax(cumulative[length:] - cumulative[:-length]))
    return signal[start : start + length]


def _wav_header(sample_rate: int, n_channels: int, bits: int, n_frames: int) -> bytes:
    """A canonical 44-byte PCM WAV header announcing ``n_frames`` frames."""
    block = n_channels * bits // 8
    data_bytes = n_frames * block
    return (
        b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, n_channels, sample_rate, sample_rate * block, block, bits)
        + b"data" + struct.pack("<I", data_bytes)
    )


def _png_bytes() -> bytes:
    """A valid 1x1 grey PNG image."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b"")


def _truncate(path: Path, keep_fraction: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])


def write_bad_files(folder: str | os.PathLike[str], speech: tuple[np.ndarray, int] | None = None) -> dict[str, Path]:
    """Write every case of :data:`BAD_CASES` into ``folder``; returns ``case -> path``.

    Parameters
    ----------
    folder : str or PathLike
        Created if needed; the cases are its only content.
    speech : (np.ndarray [shape=(n,)], int), optional
        A mono speech recording and its rate, used wherever a case needs real content
        (formats, rates, names, ...); :func:`voice_like` by default.
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    signal, rate = speech if speech is not None else voice_like()
    signal = np.asarray(signal, dtype=np.float64)
    signal = 0.5 * signal / np.max(np.abs(signal))
    paths: dict[str, Path] = {}

    def wav(case: str, name: str, data: np.ndarray, sample_rate: int = rate, **options: str) -> Path:
        path = root / name
        soundfile.write(path, data, sample_rate, **options)
        paths[case] = path
        return path

    paths["empty"] = root / "empty.wav"
    paths["empty"].write_bytes(b"")
    paths["header_only"] = root / "header_only.wav"
    paths["header_only"].write_bytes(_wav_header(rate, 1, 16, 0))
    _truncate(wav("truncated_wav_data", "truncated_data.wav", signal, subtype="PCM_16"), 0.6)
    _truncate(wav("truncated_wav_header", "truncated_header.wav", signal, subtype="PCM_16"), 30 / (44 + 2 * signal.size))
    flac = root / "truncated.flac"
    soundfile.write(flac, signal, rate, format="FLAC")
    _truncate(flac, 0.6)
    paths["truncated_flac"] = flac
    paths["text_as_wav"] = root / "notes.wav"
    paths["text_as_wav"].write_text("These are meeting notes, not audio.\n" * 20)
    paths["png_as_wav"] = root / "picture.wav"
    paths["png_as_wav"].write_bytes(_png_bytes())
    paths["directory_as_wav"] = root / "x.wav"
    paths["directory_as_wav"].mkdir()
    os.chmod(wav("unreadable", "unreadable.wav", signal, subtype="PCM_16"), 0)

    wav("silence", "silence.wav", np.zeros(rate), subtype="PCM_16")
    wav("clip_10ms", "clip_10ms.wav", _loudest_part(signal, rate, 0.01), subtype="PCM_16")
    wav("one_sample", "one_sample.wav", signal[np.argmax(np.abs(signal))][np.newaxis], subtype="PCM_16")
    wav("clip_300ms", "clip_300ms.wav", _loudest_part(signal, rate, 0.3), subtype="PCM_16")
    wav("dc_offset", "dc_offset.wav", 0.3 * signal + 0.5, subtype="PCM_16")
    wav("clipped", "clipped.wav", np.clip(20 * signal, -1.0, 1.0), subtype="PCM_16")
    noise = np.random.default_rng(1).uniform(-0.5, 0.5, 2 * rate)
    wav("white_noise", "white_noise.wav", noise, subtype="PCM_16")

    import soxr

    wav("rate_8khz", "rate_8khz.wav", soxr.resample(signal, rate, 8000), 8000, subtype="PCM_16")
    wav("rate_96khz", "rate_96khz.wav", soxr.resample(signal, rate, 96000), 96000, subtype="PCM_24")
    gains = np.array([1.0, 0.8, 0.6, 0.4, 0.2, -0.5])
    wav("channels_6", "channels_6.wav", signal[:, None] * gains, subtype="PCM_16")
    for case, subtype in [("pcm_u8", "PCM_U8"), ("pcm_16", "PCM_16"), ("pcm_24", "PCM_24"),
                          ("float_32", "FLOAT"), ("float_64", "DOUBLE")]:
        wav(case, f"{case}.wav", signal, subtype=subtype)
    poisoned = signal.copy()
    poisoned[rate // 2 : rate // 2 + 10] = np.nan
    wav("float_nan", "float_nan.wav", poisoned, subtype="FLOAT")
    poisoned[rate // 2 : rate // 2 + 10] = np.inf
    wav("float_inf", "float_inf.wav", poisoned, subtype="FLOAT")
    wav("float_huge", "float_int32_values.wav", np.round(signal * 2**31), subtype="FLOAT")
    wav("mp3", "speech.mp3", signal, format="MP3", subtype="MPEG_LAYER_III")
    _truncate(wav("truncated_mp3", "truncated.mp3", signal, format="MP3", subtype="MPEG_LAYER_III"), 0.5)
    wav("ogg_vorbis", "speech.ogg", signal, format="OGG", subtype="VORBIS")
    wav("ogg_opus", "speech.opus", soxr.resample(signal, rate, 48000), 48000, format="OGG", subtype="OPUS")
    paths["m4a_aac"] = write_encoded(root / "memo.m4a", signal, rate, "aac", bit_rate=96000)
    paths["mp4_aac_and_video"] = write_encoded(root / "call.mp4", signal, rate, "aac", bit_rate=128000, with_video=True)
    paths["webm_opus"] = write_encoded(root / "note.webm", signal, rate, "libopus", bit_rate=48000, codec_rate=48000)
    renamed = write_encoded(root / "renamed.m4a", signal, rate, "aac", bit_rate=96000)
    paths["m4a_named_wav"] = renamed.rename(root / "memo named.wav")
    _truncate(write_encoded(root / "truncated.m4a", signal, rate, "aac", bit_rate=96000), 0.6)
    paths["truncated_m4a"] = root / "truncated.m4a"
    paths["video_only_mp4"] = write_video_only(root / "video only.mp4")

    (root / "loop_b.wav").symlink_to("loop_a.wav")
    (root / "loop_a.wav").symlink_to("loop_b.wav")
    paths["symlink_loop"] = root / "loop_a.wav"
    paths["symlink_loop_back"] = root / "loop_b.wav"
    looped = root / "looped folder"
    looped.mkdir()
    (looped / "up").symlink_to("..", target_is_directory=True)
    wav("inside_directory_loop", "looped folder/inside.wav", signal, subtype="PCM_16")

    wav("name_spaces", "name with  spaces .wav", signal, subtype="PCM_16")
    wav("name_unicode", "émotion_日本語_😀.wav", signal, subtype="PCM_16")
    wav("name_commas", "a,b,,c.wav", signal, subtype="PCM_16")
    wav("name_quotes", "say \"hi\" 'there'.wav", signal, subtype="PCM_16")
    wav("name_newline", "first line\nsecond line.wav", signal, subtype="PCM_16")

    one_hour = root / "one_hour.wav"
    n_frames = 3600 * 8000
    with open(one_hour, "wb") as stream:
        stream.write(_wav_header(8000, 1, 16, n_frames))
        stream.truncate(44 + 2 * n_frames)
    paths["one_hour"] = one_hour
    missing = set(BAD_CASES) - set(paths)
    if missing:
        raise RuntimeError(f"cases without a file: {sorted(missing)}")
    return paths

