"""Reading audio files into one mono float32 signal at the analysis sample rate.

Everything downstream (features, models, timeline) sees signals at :data:`ANALYSIS_SAMPLE_RATE`,
so a model never depends on the rate its input happened to be recorded at.

Two decoders sit behind :func:`load`, :func:`file_info` and :func:`read_blocks`: libsndfile
(through soundfile) is the fast path for what it reads (WAV, FLAC, OGG, MP3, AIFF); FFmpeg
(through PyAV, its libraries inside the wheel) reads the first audio track of the containers
phones and video calls write (M4A/AAC, MP4/MOV, WebM/MKV, AMR, WMA, ...) and any file libsndfile
cannot open. PyAV drops FFmpeg's own log messages unless a program asks for them
(``av.logging.set_level``), so decoding never writes to stderr; failures arrive as exceptions.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import AudioError, NoSpeechError

if TYPE_CHECKING:
    import av.audio.frame
    import av.audio.stream
    import av.container
    import soundfile

__all__ = [
    "ANALYSIS_SAMPLE_RATE",
    "AUDIO_EXTENSIONS",
    "MIN_DURATION_SECONDS",
    "MAX_DURATION_SECONDS",
    "MAX_PEAK_AMPLITUDE",
    "load",
    "to_mono",
    "resample",
    "check_signal",
    "AudioInfo",
    "file_info",
    "read_blocks",
]

#: The one sample rate at which every feature is computed (Hz): its Nyquist frequency, 7 kHz,
#: lies below the band edge of every common recording rate from 16 kHz up, so the resampler's
#: filter, not the recording's, decides what the features see.
ANALYSIS_SAMPLE_RATE = 14000
#: Endings libsndfile reads: decoded by soundfile; FFmpeg only takes a file libsndfile cannot open.
_LIBSNDFILE_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".opus"})
#: Endings only FFmpeg reads: voice memos and voice notes (M4A/AAC, AMR, 3GP), video calls and
#: screen recordings (MP4, MOV, WebM, MKV, AVI), Windows Media. Their first audio track is read.
_FFMPEG_EXTENSIONS = frozenset({".m4a", ".m4b", ".aac", ".mp4", ".m4v", ".mov", ".3gp", ".3g2", ".webm", ".weba",
                                ".mkv", ".mka", ".avi", ".amr", ".awb", ".wma", ".wmv", ".asf"})
#: File name endings treated as audio when a folder is searched.
AUDIO_EXTENSIONS = _LIBSNDFILE_EXTENSIONS | _FFMPEG_EXTENSIONS
#: Frame length and hop (samples at the analysis rate, 73 ms and 18 ms) of every level track:
#: silence trimming, the timeline's speech regions and the extractor's STFT.
FRAME_LENGTH, HOP_LENGTH = 1024, 256
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
    """High-quality resampling (soxr "HQ"); returns the input unchanged when rates match.

    The signal's mean (a recording's constant offset) goes around the resampler: its filter
    sees a signal that starts and ends near zero, so an offset does not ring at the edges.
    """
    if source_rate == target_rate:
        return signal
    import soxr

    offset = signal.mean(dtype=np.float64)
    resampled = soxr.resample(signal - signal.dtype.type(offset), source_rate, target_rate, quality="HQ")
    return resampled + resampled.dtype.type(offset)


def check_signal(
    signal: np.ndarray,
    sample_rate: int,
    path: str | PathLike[str] | None = None,
    *,
    max_peak: float | None = MAX_PEAK_AMPLITUDE,
) -> None:
    """Raise :class:`AudioError` unless ``signal`` is finite, has no peak above ``max_peak``
    (unchecked when ``None``), is long enough and not all zeros (a :class:`NoSpeechError`:
    silence holds no speech)."""
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
        raise NoSpeechError("digital silence: every sample is zero", path)


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
        raise AudioError(f"not a readable audio file ({_reason(error)})", path) from None


def _reason(error: Exception) -> str:
    """The decoder's own words: ``strerror`` of an OS or FFmpeg error, else the message after its prefix."""
    strerror = getattr(error, "strerror", None)
    if strerror:
        return str(strerror)
    return str(error).split(": ", 1)[-1] if str(error) else type(error).__name__


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


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says, read without decoding the samples.

    ``frames`` is exact for the files libsndfile reads; for other containers it comes from the
    duration the container states (or, when it states none, from its packets' time stamps).
    """

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


@dataclass(frozen=True)
class _Source:
    """An open audio file: its header, and ``blocks(n_frames)`` yielding its samples as mono
    float32 blocks of about ``n_frames`` each, at ``info.sample_rate``."""

    info: AudioInfo
    blocks: Callable[[int], Iterator[np.ndarray]]


@contextmanager
def _open(file_path: Path, path: str | PathLike[str]) -> Iterator[_Source]:
    """Open a file with libsndfile (the fast path) or FFmpeg.

    FFmpeg opens the endings only it reads, and any other file libsndfile cannot open (an M4A
    named ``.wav``, say); when FFmpeg finds no audio in such a file either, libsndfile's reason
    is the one reported.
    """
    if file_path.suffix.lower() in _FFMPEG_EXTENSIONS:
        with _open_with_ffmpeg(file_path, path) as source:
            yield source
        return
    import soundfile

    with ExitStack() as stack:
        try:
            stack.enter_context(_decoder_messages(path))
            source = _soundfile_source(stack.enter_context(soundfile.SoundFile(file_path)), file_path)
        except soundfile.LibsndfileError as error:
            try:
                source = stack.enter_context(_open_with_ffmpeg(file_path, path))
            except AudioError:
                raise error from None
        yield source


def _soundfile_source(sound: soundfile.SoundFile, file_path: Path) -> _Source:
    info = AudioInfo(
        path=str(file_path),
        format=sound.format,
        subtype=sound.subtype,
        sample_rate=int(sound.samplerate),
        channels=int(sound.channels),
        frames=int(sound.frames),
        size_bytes=file_path.stat().st_size,
    )

    def blocks(n_frames: int) -> Iterator[np.ndarray]:
        # read() until it returns nothing, not SoundFile.blocks(): blocks() trusts the header's
        # frame count, which libsndfile only estimates for MP3, and pads past the real end with
        # uninitialized memory (seen: samples of 1e37).
        while (block := sound.read(n_frames, dtype="float32", always_2d=True)).shape[0]:
            yield to_mono(block)

    return _Source(info, blocks)


@contextmanager
def _open_with_ffmpeg(file_path: Path, path: str | PathLike[str]) -> Iterator[_Source]:
    """Open the first audio track of any file FFmpeg reads (through PyAV, the ``ffmpeg`` extra)."""
    try:
        import av
    except ImportError:
        raise AudioError(
            f"{file_path.suffix or 'this'} files need FFmpeg's decoders: pip install 'ser-classic[ffmpeg]' "
            "(PyAV; its bundled FFmpeg holds GPL-licensed parts, so it is an optional extra)",
            path,
        ) from None

    with _ffmpeg_errors(path), av.open(str(file_path), metadata_errors="ignore") as container:
        if not container.streams.audio:
            holds = "video only" if container.streams.video else "no audio or video stream"
            raise AudioError(f"no audio track ({holds})", path)
        stream = container.streams.audio[0]
        sample_rate = int(stream.codec_context.sample_rate)
        if sample_rate <= 0:
            raise AudioError("not a readable audio file (its audio track states no sample rate)", path)
        info = AudioInfo(
            path=str(file_path),
            format=_container_name(container, file_path),
            subtype=stream.codec_context.name.upper(),
            sample_rate=sample_rate,
            channels=int(stream.codec_context.channels),
            frames=round(_stated_seconds(container, stream, file_path) * sample_rate),
            size_bytes=file_path.stat().st_size,
        )

        def blocks(n_frames: int) -> Iterator[np.ndarray]:
            with _ffmpeg_errors(path):
                yield from _decoded_blocks(container.decode(stream), sample_rate, n_frames, path)

        yield _Source(info, blocks)


@contextmanager
def _ffmpeg_errors(path: str | PathLike[str]) -> Iterator[None]:
    """FFmpeg's exceptions (not all of them OS or value errors) as an :class:`AudioError`."""
    import av

    try:
        yield
    except av.FFmpegError as error:
        raise AudioError(f"not a readable audio file ({_reason(error)})", path) from None


def _container_name(container: av.container.InputContainer, file_path: Path) -> str:
    """The file's ending when the demuxer owns it (``M4A``, ``WEBM``), else the demuxer's name."""
    names = container.format.name.split(",")
    ending = file_path.suffix.lower().lstrip(".")
    return ending.upper() if ending in names or ending in container.format.extensions else names[0].upper()


def _stated_seconds(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream, file_path: Path
) -> float:
    """The track's duration as stated by the track, else by the container, else by the time
    stamps of its packets (a live WebM recording states none; the packets are read, not decoded)."""
    import av

    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    with av.open(str(file_path), metadata_errors="ignore") as scan:
        track = scan.streams.audio[0]
        ends = (packet.pts + (packet.duration or 0) for packet in scan.demux(track) if packet.pts is not None)
        return float(max(ends, default=0) * track.time_base) if track.time_base is not None else 0.0


def _decoded_blocks(
    frames: Iterator[av.audio.frame.AudioFrame], sample_rate: int, n_frames: int, path: str | PathLike[str]
) -> Iterator[np.ndarray]:
    """Decoded frames gathered into mono blocks of at least ``n_frames`` (the last one shorter)."""
    pending: list[np.ndarray] = []
    n_pending = 0
    for frame in frames:
        if frame.sample_rate != sample_rate:
            raise AudioError(f"sample rate changes within the file ({sample_rate} Hz, then {frame.sample_rate} Hz)", path)
        pending.append(_frame_to_mono(frame))
        n_pending += pending[-1].size
        if n_pending >= n_frames:
            yield np.concatenate(pending)
            pending, n_pending = [], 0
    if pending:
        yield np.concatenate(pending)


def _frame_to_mono(frame: av.audio.frame.AudioFrame) -> np.ndarray:
    """One decoded frame, any sample format, as mono float32 in units of full scale."""
    samples = frame.to_ndarray()
    if not frame.format.is_planar:  # interleaved: one row of n_samples * n_channels values
        samples = samples.reshape(-1, frame.layout.nb_channels).T
    if samples.dtype.kind == "u":  # 8-bit, centred on 128
        samples = (samples.astype(np.float32) - 128) / 128
    elif samples.dtype.kind == "i":
        samples = samples.astype(np.float32) / 2 ** (8 * samples.dtype.itemsize - 1)
    return samples.mean(axis=0, dtype=np.float32)


def _refuse_non_finite(block: np.ndarray, path: str | PathLike[str], where: str = "") -> None:
    if not np.all(np.isfinite(block)):
        raise AudioError(f"signal contains NaN or infinite samples{where}", path)


def load(
    path: str | PathLike[str],
    *,
    sample_rate: int = ANALYSIS_SAMPLE_RATE,
    max_seconds: float | None = MAX_DURATION_SECONDS,
) -> np.ndarray:
    """Read an audio file (or a video's first audio track) as mono float32 at ``sample_rate``.

    Parameters
    ----------
    path : str or PathLike
        WAV (any bit depth, float too), FLAC, OGG/Vorbis/Opus, MP3, AIFF through libsndfile;
        M4A/AAC, MP4/MOV, WebM/MKV, AMR, WMA, ... through FFmpeg.
    sample_rate : int
        Output rate in Hz; the analysis rate by default.
    max_seconds : float, optional
        Refuse files longer than this, before decoding them.

    Returns
    -------
    signal : np.ndarray [shape=(n,), dtype=float32]

    Raises
    ------
    AudioError
        Naming the file and why: missing, unreadable, corrupt or truncated, no audio track,
        empty, too long, too short, silent, non-finite samples.
    """
    file_path = Path(path)
    with _decoding(path):
        _check_file(file_path, path)
        with _open(file_path, path) as source:
            source_rate = source.info.sample_rate
            limit = None if max_seconds is None else int(max_seconds * source_rate)
            if limit is not None and source.info.frames > limit:
                raise AudioError(_too_long(source.info.duration_seconds, max_seconds), path)
            blocks, n_frames = [], 0
            for block in source.blocks(_BLOCK_FRAMES):
                n_frames += block.shape[0]
                if limit is not None and n_frames > limit:  # the header understated the length
                    raise AudioError(_too_long(n_frames / source_rate, max_seconds), path)
                _refuse_non_finite(block, path)
                blocks.append(block)
    if n_frames == 0:
        raise AudioError("no audio samples (header only)", path)
    if n_frames < MIN_DURATION_SECONDS * source_rate:  # resampling might leave no sample at all
        raise AudioError(f"too short: {n_frames / source_rate:.3f} s, at least {MIN_DURATION_SECONDS} s is needed", path)
    signal = np.concatenate(blocks)
    signal = resample(signal, source_rate, sample_rate).astype(np.float32, copy=False)
    check_signal(signal, sample_rate, path)
    return signal


def file_info(path: str | PathLike[str]) -> AudioInfo:
    """Header information of an audio file (format, sample rate, channels, duration, size).

    Raises
    ------
    AudioError
        Missing, empty, a directory, unreadable, no audio track, or not a file either decoder reads.
    """
    file_path = Path(path)
    with _decoding(path):
        _check_file(file_path, path)
        with _open(file_path, path) as source:
            return source.info


def read_blocks(
    path: str | PathLike[str],
    *,
    sample_rate: int = ANALYSIS_SAMPLE_RATE,
    block_seconds: float = 30.0,
) -> Iterator[np.ndarray]:
    """Yield a file's audio as consecutive mono float32 blocks at ``sample_rate``.

    For recordings of any length and format: the file is decoded ``block_seconds`` at a time and
    resampled with a streaming soxr resampler ("HQ"), so memory does not grow with duration.
    The concatenated blocks equal ``load(path, sample_rate=sample_rate, max_seconds=None)``
    (no duration limit, no trimming).

    Raises
    ------
    AudioError
        Missing or unreadable file, no audio track, no samples, corrupt data or non-finite samples
        (at the block holding them).
    """
    import soxr

    file_path = Path(path)
    n_read = 0
    with _decoding(path):
        _check_file(file_path, path)
        with _open(file_path, path) as source:
            source_rate = source.info.sample_rate
            resampler = (
                None
                if source_rate == sample_rate
                else soxr.ResampleStream(source_rate, sample_rate, 1, dtype="float32", quality="HQ")
            )
            offset = None  # the first block's mean goes around the resampler, as in resample()
            for block in source.blocks(max(1, int(block_seconds * source_rate))):
                _refuse_non_finite(block, path, f" (near {n_read / source_rate:.1f} s)")
                n_read += block.shape[0]
                mono = np.ascontiguousarray(block, dtype=np.float32)
                if resampler is None:
                    yield mono
                    continue
                offset = np.float32(mono.mean(dtype=np.float64)) if offset is None else offset
                yield resampler.resample_chunk(mono - offset) + offset
    if n_read == 0:
        raise AudioError("no audio samples (header only)", path)
    if resampler is not None:
        yield resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True) + (offset or np.float32(0))
