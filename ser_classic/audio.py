"""Reading audio files into one mono float32 signal at the analysis sample rate.

Everything downstream (features, models, timeline) sees signals at :data:`ANALYSIS_SAMPLE_RATE`,
so a model never depends on the rate its input happened to be recorded at.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from .errors import AudioError

__all__ = [
    "ANALYSIS_SAMPLE_RATE",
    "AUDIO_EXTENSIONS",
    "MIN_DURATION_SECONDS",
    "MAX_DURATION_SECONDS",
    "MAX_PEAK_AMPLITUDE",
    "load",
    "to_mono",
    "resample",
    "trim_silence",
    "trim_bounds",
    "check_signal",
    "AudioInfo",
    "file_info",
    "read_blocks",
]

#: The one sample rate at which every feature is computed (Hz): its Nyquist frequency, 7 kHz,
#: lies below the band edge of every common recording rate from 16 kHz up, so the resampler's
#: filter, not the recording's, decides what the features see.
ANALYSIS_SAMPLE_RATE = 14000
#: File name endings treated as audio when a folder is searched.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".opus"})
#: Shorter signals hold too few analysis frames for meaningful statistics.
MIN_DURATION_SECONDS = 0.1
#: Longer files are refused by the clip classifier (use a timeline for long recordings).
MAX_DURATION_SECONDS = 600.0
#: Samples beyond this many times full scale (+120 dB) are no audio level (e.g. integer values
#: stored in a float file); the float32 feature computation stays finite far above it.
MAX_PEAK_AMPLITUDE = 1e6
#: Frames decoded at a time: channels are mixed down block by block, so a long multichannel
#: file never needs more memory than its mono signal.
_BLOCK_FRAMES = 1 << 18

_log = logging.getLogger(__name__)
#: One redirection of the process's stderr at a time (the demo decodes in several threads).
_stderr_lock = threading.Lock()


def to_mono(signal: np.ndarray) -> np.ndarray:
    """Average channels: ``(n_samples, n_channels)`` or ``(n_samples,)`` -> ``(n_samples,)``."""
    if signal.ndim == 1:
        return signal
    return signal.mean(axis=1)


def resample(signal: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """High-quality resampling (soxr "HQ"); returns the input unchanged when rates match."""
    if source_rate == target_rate:
        return signal
    import soxr

    return soxr.resample(signal, source_rate, target_rate, quality="HQ")


def trim_silence(signal: np.ndarray, top_db: float) -> np.ndarray:
    """Cut leading and trailing parts quieter than ``top_db`` below the loudest frame."""
    start, end = trim_bounds(signal, top_db)
    return signal[start:end]


def trim_bounds(signal: np.ndarray, top_db: float) -> tuple[int, int]:
    """Sample indices ``(start, end)`` of the part :func:`trim_silence` keeps.

    The bounds of ``librosa.effects.trim(signal, top_db=top_db)`` (RMS of 2048-sample frames,
    hop 512, against the loudest frame; ``(0, 0)`` when no frame is loud enough), computed
    here because importing ``librosa.effects`` also imports scikit-learn's decomposition and
    clustering modules: a second of start-up for every ``ser`` command.
    """
    import librosa

    frame_length, hop_length = 2048, 512
    rms = librosa.feature.rms(y=signal, frame_length=frame_length, hop_length=hop_length)[0]
    loud = np.flatnonzero(librosa.amplitude_to_db(rms, ref=np.max, top_db=None) > -top_db)
    if loud.size == 0:
        return 0, 0
    return int(loud[0]) * hop_length, min(signal.shape[-1], (int(loud[-1]) + 1) * hop_length)


def check_signal(
    signal: np.ndarray,
    sample_rate: int,
    path: str | PathLike[str] | None = None,
    *,
    max_peak: float | None = MAX_PEAK_AMPLITUDE,
) -> None:
    """Raise :class:`AudioError` unless ``signal`` is finite, has no peak above ``max_peak``
    (unchecked when ``None``), is long enough and not all zeros."""
    if signal.size == 0:
        raise AudioError("no audio samples (empty signal)", path)
    if not np.all(np.isfinite(signal)):
        raise AudioError("signal contains NaN or infinite samples", path)
    peak = float(np.max(np.abs(signal)))
    if max_peak is not None and peak > max_peak:
        raise AudioError(
            f"implausible level: peak amplitude {peak:.3g}, more than {max_peak:.0e} times full scale", path
        )
    duration = signal.shape[0] / sample_rate
    if duration < MIN_DURATION_SECONDS:
        raise AudioError(
            f"too short: {duration:.3f} s, at least {MIN_DURATION_SECONDS} s is needed", path
        )
    if not np.any(signal):
        raise AudioError("digital silence: every sample is zero", path)


def _check_file(file_path: Path, path: str | PathLike[str]) -> None:
    """Raise :class:`AudioError` unless ``file_path`` is a non-empty file this process may read."""
    if not file_path.exists():
        if file_path.is_symlink():
            raise AudioError("broken symbolic link (its target is missing, or the links form a loop)", path)
        raise AudioError("no such file", path)
    if file_path.is_dir():
        raise AudioError("is a directory, not an audio file", path)
    if file_path.stat().st_size == 0:
        raise AudioError("empty file (0 bytes)", path)
    # Opened here, not by libsndfile, so that a missing permission is reported as such.
    with open(file_path, "rb"):
        pass


@contextmanager
def _decoding(path: str | PathLike[str]) -> Iterator[None]:
    """Turn decoder and file-system failures inside the block into an :class:`AudioError`."""
    import soundfile

    try:
        yield
    except AudioError:
        raise
    except PermissionError:
        raise AudioError("permission denied", path) from None
    except (soundfile.LibsndfileError, RuntimeError, OSError, ValueError) as error:
        reason = str(error).split(": ", 1)[-1] if str(error) else type(error).__name__
        raise AudioError(f"not a readable audio file ({reason})", path) from None


@contextmanager
def _decoder_messages(path: str | PathLike[str]) -> Iterator[None]:
    """Inside the block, what C decoders write to the process's stderr (libmpg123's warnings
    about a truncated MP3 or an odd ID3 tag, which libsndfile does not silence) is logged at
    INFO level for ``path`` instead (``ser --verbose`` shows it). Other threads' stderr output
    during the block is caught with it."""
    with _stderr_lock, tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = " ".join(captured.read().decode(errors="replace").split())
            if text:
                _log.info("%s: the decoder says: %s", path, text)


def _too_long(seconds: float, limit_seconds: float) -> str:
    return (
        f"too long: {seconds:.0f} s, the limit is {limit_seconds:.0f} s "
        "(use `ser timeline` for long recordings)"
    )


def load(
    path: str | PathLike[str],
    *,
    sample_rate: int = ANALYSIS_SAMPLE_RATE,
    trim_db: float | None = None,
    max_seconds: float | None = MAX_DURATION_SECONDS,
) -> np.ndarray:
    """Read any file libsndfile can decode as mono float32 at ``sample_rate``.

    Parameters
    ----------
    path : str or PathLike
        WAV (any bit depth, float too), FLAC, OGG/Vorbis/Opus, MP3, AIFF, ...
    sample_rate : int
        Output rate in Hz; the analysis rate by default.
    trim_db : float, optional
        If given, leading and trailing silence quieter than this many dB below the peak is cut.
    max_seconds : float, optional
        Refuse files longer than this, before decoding them.

    Returns
    -------
    signal : np.ndarray [shape=(n,), dtype=float32]

    Raises
    ------
    AudioError
        Naming the file and why: missing, unreadable, empty, too long, too short, silent,
        non-finite samples.
    """
    import soundfile

    file_path = Path(path)
    with _decoding(path):
        _check_file(file_path, path)
        with _decoder_messages(path), soundfile.SoundFile(file_path) as sound:
            source_rate = sound.samplerate
            limit = None if max_seconds is None else int(max_seconds * source_rate)
            if limit is not None and sound.frames > limit:
                raise AudioError(_too_long(sound.frames / source_rate, max_seconds), path)
            blocks, n_frames = [], 0
            while True:
                block = sound.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    break
                n_frames += block.shape[0]
                if limit is not None and n_frames > limit:  # the header understated the length
                    raise AudioError(_too_long(n_frames / source_rate, max_seconds), path)
                if not np.all(np.isfinite(block)):
                    raise AudioError("signal contains NaN or infinite samples", path)
                blocks.append(to_mono(block))
    if n_frames == 0:
        raise AudioError("no audio samples (header only)", path)
    if n_frames < MIN_DURATION_SECONDS * source_rate:  # resampling might leave no sample at all
        raise AudioError(f"too short: {n_frames / source_rate:.3f} s, at least {MIN_DURATION_SECONDS} s is needed", path)
    signal = np.concatenate(blocks)
    signal = resample(signal, source_rate, sample_rate).astype(np.float32, copy=False)
    check_signal(signal, sample_rate, path)
    if trim_db is not None:
        signal = trim_silence(signal, trim_db)
        if signal.shape[0] < math.ceil(MIN_DURATION_SECONDS * sample_rate):
            raise AudioError(f"too short after trimming silence ({trim_db} dB)", path)
    return signal


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says, read without decoding the samples."""

    path: str
    format: str
    subtype: str
    sample_rate: int
    channels: int
    frames: int
    size_bytes: int

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def file_info(path: str | PathLike[str]) -> AudioInfo:
    """Header information of an audio file (format, sample rate, channels, duration, size).

    Raises
    ------
    AudioError
        Missing, empty, a directory, unreadable, or not a file libsndfile can read.
    """
    import soundfile

    file_path = Path(path)
    with _decoding(path):
        _check_file(file_path, path)
        with _decoder_messages(path):
            header = soundfile.info(str(file_path))
    return AudioInfo(
        path=str(file_path),
        format=header.format,
        subtype=header.subtype,
        sample_rate=int(header.samplerate),
        channels=int(header.channels),
        frames=int(header.frames),
        size_bytes=file_path.stat().st_size,
    )


def read_blocks(
    path: str | PathLike[str],
    *,
    sample_rate: int = ANALYSIS_SAMPLE_RATE,
    block_seconds: float = 30.0,
) -> Iterator[np.ndarray]:
    """Yield a file's audio as consecutive mono float32 blocks at ``sample_rate``.

    For recordings of any length: the file is decoded ``block_seconds`` at a time and
    resampled with a streaming soxr resampler ("HQ"), so memory does not grow with duration.
    The concatenated blocks equal ``load(path, sample_rate=sample_rate, max_seconds=None)``
    (no duration limit, no trimming).

    Raises
    ------
    AudioError
        Missing or unreadable file, no samples, non-finite samples (at the block holding them).
    """
    import soundfile
    import soxr

    info = file_info(path)
    block_frames = max(1, int(block_seconds * info.sample_rate))
    resampler = (
        None
        if info.sample_rate == sample_rate
        else soxr.ResampleStream(info.sample_rate, sample_rate, 1, dtype="float32", quality="HQ")
    )
    n_read = 0
    with _decoding(path):
        with soundfile.SoundFile(str(path)) as sound:
            for block in sound.blocks(blocksize=block_frames, dtype="float32", always_2d=True):
                if not np.all(np.isfinite(block)):
                    raise AudioError(f"signal contains NaN or infinite samples (near {n_read / info.sample_rate:.1f} s)", path)
                n_read += block.shape[0]
                mono = np.ascontiguousarray(to_mono(block), dtype=np.float32)
                yield mono if resampler is None else resampler.resample_chunk(mono)
    if n_read == 0:
        raise AudioError("no audio samples (header only)", path)
    if resampler is not None:
        yield resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
