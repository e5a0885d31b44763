"""Reading audio files into one mono float32 signal at the analysis sample rate.

Everything downstream (features, models, timeline) sees signals at :data:`ANALYSIS_SAMPLE_RATE`,
so a model never depends on the rate its input happened to be recorded at.
"""

from __future__ import annotations

import math
from os import PathLike
from pathlib import Path

import numpy as np

from .errors import AudioError

__all__ = [
    "ANALYSIS_SAMPLE_RATE",
    "AUDIO_EXTENSIONS",
    "MIN_DURATION_SECONDS",
    "MAX_DURATION_SECONDS",
    "load",
    "to_mono",
    "resample",
    "trim_silence",
    "check_signal",
]

#: The one sample rate at which every feature is computed (Hz).
ANALYSIS_SAMPLE_RATE = 22050
#: File name endings treated as audio when a folder is searched.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".opus"})
#: Shorter signals hold too few analysis frames for meaningful statistics.
MIN_DURATION_SECONDS = 0.1
#: Longer files are refused by the clip classifier (use a timeline for long recordings).
MAX_DURATION_SECONDS = 600.0


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
    import librosa

    trimmed, _ = librosa.effects.trim(signal, top_db=top_db, frame_length=2048, hop_length=512)
    return trimmed


def check_signal(signal: np.ndarray, sample_rate: int, path: str | PathLike[str] | None = None) -> None:
    """Raise :class:`AudioError` unless ``signal`` is finite, long enough and not all zeros."""
    if signal.size == 0:
        raise AudioError("no audio samples (empty signal)", path)
    if not np.all(np.isfinite(signal)):
        raise AudioError("signal contains NaN or infinite samples", path)
    duration = signal.shape[0] / sample_rate
    if duration < MIN_DURATION_SECONDS:
        raise AudioError(
            f"too short: {duration:.3f} s, at least {MIN_DURATION_SECONDS} s is needed", path
        )
    if not np.any(signal):
        raise AudioError("digital silence: every sample is zero", path)


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
    if not file_path.exists():
        raise AudioError("no such file", path)
    if file_path.is_dir():
        raise AudioError("is a directory, not an audio file", path)
    try:
        if file_path.stat().st_size == 0:
            raise AudioError("empty file (0 bytes)", path)
        with soundfile.SoundFile(file_path) as sound:
            source_rate = sound.samplerate
            n_frames = sound.frames
            if max_seconds is not None and n_frames > max_seconds * source_rate:
                raise AudioError(
                    f"too long: {n_frames / source_rate:.0f} s, the limit is {max_seconds:.0f} s "
                    "(use `ser timeline` for long recordings)",
                    path,
                )
            data = sound.read(dtype="float32", always_2d=True)
    except AudioError:
        raise
    except PermissionError:
        raise AudioError("permission denied", path) from None
    except (soundfile.LibsndfileError, RuntimeError, OSError, ValueError) as error:
        reason = str(error).split(": ", 1)[-1] if str(error) else type(error).__name__
        raise AudioError(f"not a readable audio file ({reason})", path) from None
    if data.shape[0] == 0:
        raise AudioError("no audio samples (header only)", path)
    if not np.all(np.isfinite(data)):
        raise AudioError("signal contains NaN or infinite samples", path)
    signal = to_mono(data)
    signal = resample(signal, source_rate, sample_rate).astype(np.float32, copy=False)
    check_signal(signal, sample_rate, path)
    if trim_db is not None:
        signal = trim_silence(signal, trim_db)
        if signal.shape[0] < math.ceil(MIN_DURATION_SECONDS * sample_rate):
            raise AudioError(f"too short after trimming silence ({trim_db} dB)", path)
    return signal
