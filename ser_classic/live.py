"""Emotion while someone speaks: the streaming analyser, and the sources it listens to.

:class:`StreamingAnalyser` is fed blocks of samples (any rate, any block size) and returns
rows as soon as they fall due: one row per hop of ``hop_seconds``, at the end of that hop.
The row says whether the hop holds speech and, if it does, the emotion of the last window
of speech (up to ``window_seconds``). It holds a bounded amount of audio and levels however
long it runs.

How a row is computed, with the functions of :mod:`ser_classic.timeline` so that rows agree
with ``ser timeline`` on the same audio:

1. **Levels.** Each block is resampled to the analysis rate (a streaming soxr resampler, as
   :func:`ser_classic.audio.read_blocks` does), brought to the speech band
   (:class:`~ser_classic.features.conditioning.SpeechBand`, in chunks of :data:`BAND_CHUNK`
   samples, so that the result does not depend on how the stream was cut into blocks), and
   its frame levels computed (:class:`~ser_classic.timeline.LevelTrack`).
2. **Speech.** When a hop ends, :func:`~ser_classic.timeline.find_speech` runs on the levels of
   the last ``history_seconds`` (the noise floor is the 5th percentile of those, where the
   timeline takes the whole file's): the same thresholds, hysteresis, joined pauses and
   trimmed edges. A speech region still going on at the last complete frame runs on to the
   hop's end. The hop is **speech** when a speech region overlaps it, else **non-speech**
   (no emotion, no probabilities).
3. **Emotion.** The window is the region holding most of the hop's speech (the later one of
   two equal shares), from at most
   ``window_seconds`` before its end (the hop's end while it goes on) and never before the
   region's start: as the timeline lays windows inside speech regions. It is described as
   the timeline describes its windows (:func:`~ser_classic.features.extractor.extract_vector`
   with ``within_speech=True``), and classified. A region still
   going on with less than ``min_emotion_seconds`` of speech so far gets no emotion yet: its
   row is speech, with the emotion :data:`TOO_SHORT` and no probabilities (the models learnt
   from whole utterances, mostly 2-4 s long; on the first half second of one the bundled
   default mostly answers "fearful", with confidence). A region that ended shorter is classified whole, as the
   timeline classifies it.
4. **Smoothing** (``smoothing`` seconds, off by default): a trailing mean of the probabilities
   of this window and the earlier windows of the same speech region whose centres lie within
   ``smoothing`` seconds before its own. The timeline's mean is centred; a live one cannot
   wait for the windows after.

A row is **due** at the end of its hop, ``k * hop_seconds`` from the stream's start, and is
returned by the :meth:`StreamingAnalyser.feed` call whose block reaches that time;
:meth:`StreamingAnalyser.close` returns the last, shorter hop's. Rows are those of
``ser timeline`` (:func:`~ser_classic.timeline.timeline_columns`): ``start, end`` in seconds
from the stream's start, ``speech``, ``emotion``, ``confidence`` and ``p_<class>``. A speech
row's ``start, end`` are its window's (so windows overlap when the hop is shorter than the
window, and :func:`~ser_classic.timeline.segments` and
:func:`~ser_classic.timeline.speech_shares` take live rows as they take the timeline's); a
non-speech row's are its hop's. Row ``k`` (from 0) is due ``(k + 1) * hop_seconds`` into the
stream, whatever its ``end``: a window ends before the hop does when the speech did.

The sources at the edge yield ``(block, sample_rate)`` pairs: :func:`file_blocks` (a file, as
fast as it decodes or at the recording's pace), :func:`stdin_blocks` (WAV or raw 16-bit PCM
on a pipe) and :func:`microphone_blocks` (through sounddevice and PortAudio, the ``live``
extra). :func:`listen` is the whole job: a source in, rows out until it ends or is stopped.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from os import PathLike
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from . import audio
from .errors import AudioError, SERError
from .timeline import HOP_LENGTH, FRAME_LENGTH, NON_SPEECH, LevelTrack, _edge_db, check_windows, find_speech, timeline_columns

if TYPE_CHECKING:
    from .models import Model

__all__ = [
    "BAND_CHUNK",
    "LIVE_EXTRA",
    "MIN_EMOTION_SECONDS",
    "TOO_SHORT",
    "StreamingAnalyser",
    "file_blocks",
    "input_devices",
    "listen",
    "microphone_blocks",
    "stdin_blocks",
]

#: Samples (at the analysis rate, 73 ms) brought to the speech band at a time.
BAND_CHUNK = FRAME_LENGTH
#: How to install what the microphone needs.
LIVE_EXTRA = (
    "pip install 'ser-classic[live]' (sounddevice; on Linux also the PortAudio library: "
    "apt-get install libportaudio2)"
)
#: Speech an utterance still going on must hold before its rows get an emotion (seconds).
MIN_EMOTION_SECONDS = 0.75
#: The emotion of a speech row whose utterance is still too short to tell (:data:`MIN_EMOTION_SECONDS`).
TOO_SHORT = "too-short"
#: A microphone that delivers nothing for this long (seconds) is taken for lost.
SILENT_DEVICE_SECONDS = 3.0

_log = logging.getLogger(__name__)


class StreamingAnalyser:
    """Blocks of a stream in, rows out as they fall due (see the module docstring).

    Parameters
    ----------
    model : Model, optional
        The bundled default model when ``None``.
    window_seconds, hop_seconds : float
        The analysis window, and the step between rows (hop <= window), as in
        :func:`ser_classic.timeline.timeline`.
    smoothing : float
        Width in seconds of a trailing mean of the probabilities over the windows of the same
        speech region; ``0`` (the default) leaves each window's probabilities as they are.
    threshold_db, margin_db, min_silence_seconds, min_speech_seconds : float
        The speech detector's settings, as in :func:`ser_classic.timeline.timeline`.
    min_emotion_seconds : float
        Speech a region still going on must hold before its rows get an emotion
        (:data:`TOO_SHORT` until then); at most ``window_seconds``.
    history_seconds : float
        How much of the past the noise floor is measured over.

    Examples
    --------
    >>> analyser = StreamingAnalyser(load_model(), window_seconds=3.0, hop_seconds=1.0)  # doctest: +SKIP
    >>> for block in blocks:  # doctest: +SKIP
    ...     for row in analyser.feed(block, 48000):
    ...         print(row["start"], row["end"], row["emotion"])
    >>> last_rows = analyser.close()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: Model | None = None,
        *,
        window_seconds: float = 3.0,
        hop_seconds: float = 1.0,
        smoothing: float = 0.0,
        threshold_db: float | None = None,
        margin_db: float = 12.0,
        min_silence_seconds: float = 0.5,
        min_speech_seconds: float = 0.2,
        min_emotion_seconds: float = MIN_EMOTION_SECONDS,
        history_seconds: float = 60.0,
    ) -> None:
        from .features.conditioning import SpeechBand
        from .models import load_model

        check_windows(window_seconds, hop_seconds, min_speech_seconds)
        if not 0 <= min_emotion_seconds <= window_seconds:
            raise SERError(f"min_emotion_seconds must be between 0 and window_seconds (got {min_emotion_seconds})")
        if history_seconds < window_seconds:
            raise SERError(f"history_seconds must be at least window_seconds (got {history_seconds})")
        self.model = model or load_model()
        self.window_seconds, self.hop_seconds, self.smoothing = window_seconds, hop_seconds, smoothing
        self.threshold_db, self.margin_db = threshold_db, margin_db
        self.min_silence_seconds, self.min_speech_seconds = min_silence_seconds, min_speech_seconds
        self.history_seconds = history_seconds
        config = self.model.feature_config
        self._config, self._rate = config, config.sample_rate
        self._classes = self.model.classes
        self._feature_names = self.model.feature_names
        self._window = round(window_seconds * self._rate)
        self._min_emotion = round(min_emotion_seconds * self._rate)
        self._hop = max(1, round(hop_seconds * self._rate))
        self._history = round(history_seconds * self._rate)
        self._top_db = _edge_db(config)
        # the stream
        self._source_rate: int | None = None
        self._resampler: Any = None
        self._n_input = 0  # samples at the source rate received
        self._n_samples = 0  # samples at the analysis rate received
        self._audio = np.zeros(0, dtype=np.float32)  # the raw samples from _audio_start on
        self._audio_start = 0
        self._band = SpeechBand(config)
        self._unfiltered = np.zeros(0, dtype=np.float32)  # less than BAND_CHUNK samples
        self._track = LevelTrack()
        self._levels = np.zeros(0)  # frame levels (dBFS) from frame _levels_start on
        self._levels_start = 0
        self._all_frames = False  # the stream is closed: every frame is complete
        self._next_due = self._hop
        self._recent: deque[tuple[float, np.ndarray]] = deque()  # (centre, probabilities) of this region's windows
        self._last_window_end: int | None = None
        self._closed = False

    # ------------------------------------------------------------------------- public
    @property
    def columns(self) -> list[str]:
        """The rows' keys, in order: ``start, end, speech, emotion, confidence, p_<class>...``."""
        return timeline_columns(self._classes)

    @property
    def seconds(self) -> float:
        """Seconds of audio received so far."""
        return self._n_samples / self._rate

    @property
    def held_values(self) -> int:
        """How many values the analyser's buffers hold now (audio, levels, smoothing): bounded
        by the window, the hop and ``history_seconds``, whatever the stream's length."""
        return (
            self._audio.size
            + self._unfiltered.size
            + self._levels.size
            + sum(probabilities.size + 1 for _, probabilities in self._recent)
        )

    def feed(self, block: np.ndarray, sample_rate: int) -> list[dict[str, Any]]:
        """The rows that fall due with this block (often none; several for a long block).

        Parameters
        ----------
        block : np.ndarray [shape=(n,) or (n, channels)]
            The next samples of the stream; float in units of full scale, or integers (scaled
            by their type's range, as 16-bit PCM from a browser or a sound card).
        sample_rate : int
            The stream's rate in Hz; it may not change within a stream.

        Raises
        ------
        AudioError
            Non-finite samples; :class:`SERError` for a changed rate or a closed stream.
        """
        if self._closed:
            raise SERError("the stream is closed: start a new StreamingAnalyser")
        samples = _as_float(block)
        if not np.all(np.isfinite(samples)):
            raise AudioError(f"the stream holds NaN or infinite samples (near {self.seconds:.1f} s)")
        resampled = self._resample(samples, int(sample_rate))
        rows = []
        with _one_blas_thread():
            for offset in range(0, resampled.size, self._hop):  # bounded buffers even for a long block
                rows += self._advance(resampled[offset : offset + self._hop])
        return rows

    def close(self) -> list[dict[str, Any]]:
        """End the stream: the rows still due, the last (shorter) hop's included."""
        if self._closed:
            return []
        self._closed = True
        with _one_blas_thread():
            return self._finish()

    def _finish(self) -> list[dict[str, Any]]:
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            length = round(self._n_input * self._rate / self._source_rate)  # as long as the input, to the sample
            rows = self._advance(tail[: max(0, length - self._n_samples)].astype(np.float32, copy=False))
        else:
            rows = []
        if self._unfiltered.size:
            self._append_levels(self._track.push(self._band(self._unfiltered)))
            self._unfiltered = np.zeros(0, dtype=np.float32)
        self._append_levels(self._track.close())
        self._all_frames = True
        start = self._next_due - self._hop
        if self._n_samples > start:
            rows.append(self._row(start, self._n_samples))
        return rows

    # ------------------------------------------------------------------------- the stream
    def _resample(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """``samples`` at the analysis rate (soxr "HQ", streaming: the output does not depend on
        how the input was cut into blocks)."""
        import soxr

        if sample_rate <= 0:
            raise SERError(f"invalid sample rate {sample_rate} Hz")
        if self._source_rate is None:
            self._source_rate = sample_rate
            if sample_rate != self._rate:
                self._resampler = soxr.ResampleStream(sample_rate, self._rate, 1, dtype="float32", quality="HQ")
        elif sample_rate != self._source_rate:
            raise SERError(f"the sample rate changed within the stream ({self._source_rate} Hz, then {sample_rate} Hz)")
        self._n_input += samples.size
        if self._resampler is None:
            return samples
        return self._resampler.resample_chunk(samples)

    def _advance(self, piece: np.ndarray) -> list[dict[str, Any]]:
        """Take in at most one hop of samples; return the row that falls due, if one does."""
        self._audio = np.concatenate([self._audio, piece])
        self._n_samples += piece.size
        pending = np.concatenate([self._unfiltered, piece])
        n_chunks = pending.size // BAND_CHUNK
        for index in range(n_chunks):  # fixed chunks: the same levels however the stream was cut
            self._append_levels(self._track.push(self._band(pending[index * BAND_CHUNK : (index + 1) * BAND_CHUNK])))
        self._unfiltered = pending[n_chunks * BAND_CHUNK :]
        rows = []
        while self._next_due <= self._n_samples:
            rows.append(self._row(self._next_due - self._hop, self._next_due))
            self._next_due += self._hop
        self._forget()
        return rows

    def _append_levels(self, levels: np.ndarray) -> None:
        if levels.size:
            self._levels = np.concatenate([self._levels, levels])

    def _forget(self) -> None:
        """Drop what no row can need any more: audio before the next row's earliest window, levels
        before its history."""
        keep_audio = max(self._audio_start, self._next_due - self._hop - self._window)
        self._audio = self._audio[keep_audio - self._audio_start :]
        self._audio_start = keep_audio
        keep_frames = max(self._levels_start, (self._next_due - self._history) // HOP_LENGTH)
        self._levels = self._levels[keep_frames - self._levels_start :]
        self._levels_start = keep_frames

    # ------------------------------------------------------------------------- one row
    def _complete_frames(self, end: int) -> int:
        """Index after the last frame computed only from chunks that had arrived by sample ``end``."""
        if self._all_frames:
            return self._levels_start + self._levels.size
        filtered = end // BAND_CHUNK * BAND_CHUNK  # the samples of the chunks done by then
        return (filtered - FRAME_LENGTH // 2) // HOP_LENGTH + 1 if filtered >= FRAME_LENGTH // 2 else 0

    def _regions(self, end: int) -> np.ndarray:
        """Speech regions (absolute sample indices) in the history before sample ``end``."""
        first = max(self._levels_start, (end - self._history) // HOP_LENGTH)
        last = min(self._complete_frames(end), self._levels_start + self._levels.size)
        levels = self._levels[first - self._levels_start : last - self._levels_start]
        if levels.size == 0:
            return np.zeros((0, 2), dtype=np.int64)
        regions = find_speech(
            levels,
            levels.size * HOP_LENGTH,
            self._rate,
            threshold_db=self.threshold_db,
            margin_db=self.margin_db,
            top_db=self._top_db,
            reference_percentile=self._config.reference_percentile,
            min_silence_seconds=self.min_silence_seconds,
            min_speech_seconds=self.min_speech_seconds,
        ) + first * HOP_LENGTH
        if len(regions) and regions[-1, 1] >= last * HOP_LENGTH:  # still going on: up to the hop's end
            regions[-1, 1] = end
        return np.minimum(regions, end)

    def _row(self, start: int, end: int) -> dict[str, Any]:
        """The row of the hop ``[start, end)`` (samples)."""
        regions = self._regions(end)
        overlapping = regions[(regions[:, 0] < end) & (regions[:, 1] > start)]
        if len(overlapping) == 0:
            self._recent.clear()
            return {
                "start": round(start / self._rate, 3),
                "end": round(end / self._rate, 3),
                "speech": False,
                "emotion": NON_SPEECH,
                **dict.fromkeys(self.columns[4:]),
            }
        shares = np.minimum(overlapping[:, 1], end) - np.maximum(overlapping[:, 0], start)
        region_start, window_end = (int(value) for value in overlapping[len(shares) - 1 - np.argmax(shares[::-1])])
        window_start = max(region_start, window_end - self._window)
        if self._last_window_end is None or region_start > self._last_window_end:
            self._recent.clear()  # a new speech region: never smooth across a pause
        self._last_window_end = window_end
        if window_end == end and not self._all_frames and window_end - window_start < self._min_emotion:
            return {  # an utterance just begun: too little of it yet
                "start": round(window_start / self._rate, 3),
                "end": round(window_end / self._rate, 3),
                "speech": True,
                "emotion": TOO_SHORT,
                **dict.fromkeys(self.columns[4:]),
            }
        probabilities = self._smoothed(self._classify(window_start, window_end), (window_start + window_end) / 2 / self._rate)
        best = int(np.argmax(probabilities))
        return {
            "start": round(window_start / self._rate, 3),
            "end": round(window_end / self._rate, 3),
            "speech": True,
            "emotion": self._classes[best],
            "confidence": float(probabilities[best]),
            **{f"p_{label}": float(value) for label, value in zip(self._classes, probabilities)},
        }

    def _classify(self, start: int, end: int) -> np.ndarray:
        """Class probabilities of the window ``[start, end)``, described as ``ser predict``
        describes a file holding just that audio."""
        import pandas as pd

        from .features.extractor import extract_vector

        signal = self._audio[start - self._audio_start : end - self._audio_start]
        vector = extract_vector(signal, self._config, within_speech=True)
        if not np.all(np.isfinite(vector)):
            raise AudioError(f"features are not finite for the window {start / self._rate:.1f}-{end / self._rate:.1f} s")
        table = pd.DataFrame(vector[np.newaxis, :], columns=self._feature_names)
        return self.model.predict_proba(table).to_numpy()[0]

    def _smoothed(self, probabilities: np.ndarray, centre: float) -> np.ndarray:
        if self.smoothing <= 0:
            return probabilities
        self._recent.append((centre, probabilities))
        while self._recent and self._recent[0][0] < centre - self.smoothing:
            self._recent.popleft()
        return np.mean([values for _, values in self._recent], axis=0)


def _one_blas_thread() -> Any:
    """Matrix products on one thread, as in every extraction: a live analyser takes one core at
    most, and the many small products of a window run faster without threads waking."""
    from .features.extractor import _blas_threads

    return _blas_threads().limit(limits=1, user_api="blas")


def _as_float(block: np.ndarray) -> np.ndarray:
    """A block as mono float32 in units of full scale (integers scaled by their type's range)."""
    samples = np.asarray(block)
    if samples.dtype.kind == "u":
        bits = 8 * samples.dtype.itemsize
        samples = (samples.astype(np.float64) - 2 ** (bits - 1)) / 2 ** (bits - 1)
    elif samples.dtype.kind == "i":
        samples = samples.astype(np.float64) / 2 ** (8 * samples.dtype.itemsize - 1)
    return np.ascontiguousarray(audio.to_mono(samples.astype(np.float32, copy=False)))


# ----------------------------------------------------------------------------- the job
def listen(
    blocks: Iterable[tuple[np.ndarray, int]],
    model: Model | None = None,
    *,
    window_seconds: float = 3.0,
    hop_seconds: float = 1.0,
    smoothing: float = 0.0,
    duration_seconds: float | None = None,
    stop: threading.Event | None = None,
) -> Iterator[dict[str, Any]]:
    """Rows of a stream as they fall due, until it ends, ``duration_seconds`` of it have come,
    or ``stop`` is set; then the last, shorter hop's row.

    ``blocks`` yields ``(samples, sample_rate)`` pairs: :func:`microphone_blocks`,
    :func:`file_blocks`, :func:`stdin_blocks`, or any other. The settings are checked and the
    extractor warmed up now, before the first block is asked for, so that the first rows are
    as prompt as the later ones.
    When the source fails (a microphone unplugged), the rows due up to then are yielded, then
    its :class:`SERError` is raised.

    Examples
    --------
    >>> for row in listen(file_blocks("call.wav", realtime=True)):  # doctest: +SKIP
    ...     print(row["start"], row["emotion"])
    """
    from .features.extractor import warm_up

    if duration_seconds is not None and duration_seconds <= 0:
        raise SERError(f"duration must be positive (got {duration_seconds} s)")
    analyser = StreamingAnalyser(model, window_seconds=window_seconds, hop_seconds=hop_seconds, smoothing=smoothing)
    warm_up(analyser.model.feature_config)
    return _rows(analyser, iter(blocks), duration_seconds, stop)


def _rows(
    analyser: StreamingAnalyser,
    source: Iterator[tuple[np.ndarray, int]],
    duration_seconds: float | None,
    stop: threading.Event | None,
) -> Iterator[dict[str, Any]]:
    """The rows of :func:`listen`, the source asked for its first block at the first row."""
    taken = 0  # samples of the source taken
    try:
        for block, sample_rate in source:
            if stop is not None and stop.is_set():
                break
            limit = None if duration_seconds is None else round(duration_seconds * sample_rate)
            if limit is not None:
                block = block[: max(0, limit - taken)]
            taken += len(block)
            yield from analyser.feed(block, sample_rate)
            if limit is not None and taken >= limit:
                break
    except SERError:
        yield from analyser.close()
        raise
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()
    yield from analyser.close()


# ----------------------------------------------------------------------------- sources
def file_blocks(
    path: str | PathLike[str],
    *,
    realtime: bool = False,
    block_seconds: float | None = None,
    stop: threading.Event | None = None,
) -> Iterator[tuple[np.ndarray, int]]:
    """A file's audio as mono ``(block, sample_rate)`` pairs at its own rate, as fast as it
    decodes, or with ``realtime`` at the recording's pace: each block is given when its last
    sample would have been heard (blocks of 20 ms, as a sound card's). The file is checked now.

    Raises
    ------
    AudioError
        As :func:`ser_classic.audio.read_blocks`.
    """
    rate = audio.file_info(path).sample_rate  # a missing or unreadable file is reported now
    return _paced_file_blocks(path, rate, realtime, block_seconds or (0.02 if realtime else 1.0), stop)


def _paced_file_blocks(
    path: str | PathLike[str], rate: int, realtime: bool, seconds: float, stop: threading.Event | None
) -> Iterator[tuple[np.ndarray, int]]:
    started = None
    heard = 0
    for block in audio.read_blocks(path, sample_rate=rate, block_seconds=seconds):
        heard += block.size
        if realtime:
            started = time.monotonic() if started is None else started
            wait = started + heard / rate - time.monotonic()
            if wait > 0 and (stop.wait(wait) if stop is not None else time.sleep(wait)):
                return
        if stop is not None and stop.is_set():
            return
        yield block, rate


def stdin_blocks(
    stream: IO[bytes], *, sample_rate: int | None = None, block_seconds: float = 0.05
) -> Iterator[tuple[np.ndarray, int]]:
    """Audio arriving on a pipe: WAV (recognized by its header; PCM 8/16/24/32-bit or float,
    any channels, a length in the header or none, as ``arecord`` and ``sox`` write to a pipe)
    or raw 16-bit little-endian mono PCM at ``sample_rate``.

    Blocks are yielded as soon as some audio has arrived (at most ``block_seconds`` each), so
    a live producer is analysed live. The header (or the first bytes) is read now.

    Raises
    ------
    AudioError
        A WAV header that cannot be read or a sample format it cannot convert; raw audio
        without ``sample_rate``.
    """
    head = _read_exactly(stream, 4)
    if not head:
        raise AudioError("no audio on standard input", "<stdin>")
    if head in (b"RIFF", b"RF64"):
        sample_rate, channels, dtype, bytes_per_sample = _wav_header(stream)
        head = b""
    else:
        if sample_rate is None:
            raise AudioError("raw audio on standard input needs its sample rate (--rate), or send WAV", "<stdin>")
        channels, dtype, bytes_per_sample = 1, np.dtype("<i2"), 2
    return _pipe_blocks(stream, head, sample_rate, channels, dtype, bytes_per_sample, block_seconds)


def _pipe_blocks(
    stream: IO[bytes], pending: bytes, sample_rate: int, channels: int, dtype: np.dtype, bytes_per_sample: int, block_seconds: float
) -> Iterator[tuple[np.ndarray, int]]:
    frame_bytes = channels * bytes_per_sample
    chunk = max(frame_bytes, round(block_seconds * sample_rate) * frame_bytes)
    read = getattr(stream, "read1", stream.read)
    while True:
        data = read(chunk)
        if not data:
            break
        pending += data
        usable = len(pending) // frame_bytes * frame_bytes
        if usable:
            yield _decode(pending[:usable], dtype, bytes_per_sample, channels), sample_rate
            pending = pending[usable:]


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = b""
    while len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            break
        data += more
    return data


def _wav_header(stream: IO[bytes]) -> tuple[int, int, np.dtype, int]:
    """Read a WAV header up to its data chunk: rate, channels, sample type, bytes per sample."""
    import struct

    _read_exactly(stream, 8)  # the RIFF size and "WAVE"
    fmt: tuple[int, int, int, int] | None = None
    while True:
        header = _read_exactly(stream, 8)
        if len(header) < 8:
            raise AudioError("WAV header without a data chunk", "<stdin>")
        chunk_id, size = header[:4], struct.unpack("<I", header[4:])[0]
        if chunk_id == b"data":
            break
        body = _read_exactly(stream, size + (size & 1))
        if chunk_id == b"fmt ":
            tag, channels, rate = struct.unpack("<HHI", body[:8])
            bits = struct.unpack("<H", body[14:16])[0]
            if tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format's tag
                tag = struct.unpack("<H", body[24:26])[0]
            fmt = (tag, channels, rate, bits)
    if fmt is None:
        raise AudioError("WAV header without a fmt chunk", "<stdin>")
    tag, channels, rate, bits = fmt
    types = {(1, 8): "u1", (1, 16): "<i2", (1, 24): "<i3", (1, 32): "<i4", (3, 32): "<f4", (3, 64): "<f8"}
    if (tag, bits) not in types or channels < 1 or rate < 1:
        raise AudioError(f"WAV sample format not supported on standard input (format {tag}, {bits} bits)", "<stdin>")
    name = types[(tag, bits)]
    return rate, channels, np.dtype("<i4") if name == "<i3" else np.dtype(name), bits // 8


def _decode(data: bytes, dtype: np.dtype, bytes_per_sample: int, channels: int) -> np.ndarray:
    """Interleaved samples as an ``(n, channels)`` array of their own type (24-bit widened to 32)."""
    if bytes_per_sample == 3:
        raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3)
        widened = np.zeros((raw.shape[0], 4), dtype=np.uint8)
        widened[:, 1:] = raw
        samples = widened.view("<i4").ravel()
    else:
        samples = np.frombuffer(data, dtype=dtype)
    return samples.reshape(-1, channels)


# ----------------------------------------------------------------------------- the microphone
def _sounddevice() -> Any:
    """The sounddevice module, or a :class:`SERError` saying what to install."""
    try:
        import sounddevice
    except ImportError:
        raise SERError(f"listening to a microphone needs sounddevice: {LIVE_EXTRA}") from None
    except OSError as error:  # sounddevice is there, the PortAudio library is not
        raise SERError(
            f"listening to a microphone needs the PortAudio library ({error}): on Debian or Ubuntu "
            "apt-get install libportaudio2; on macOS and Windows the sounddevice wheel brings it"
        ) from None
    return sounddevice


def input_devices() -> list[dict[str, Any]]:
    """The sound devices that can record: ``index``, ``name``, ``channels``,
    ``default_sample_rate`` and ``default`` (the one :func:`microphone_blocks` takes by default).

    Raises
    ------
    SERError
        sounddevice or PortAudio is missing, or PortAudio cannot list the devices.
    """
    sounddevice = _sounddevice()
    try:
        devices = sounddevice.query_devices()
        default = sounddevice.default.device[0]
    except (sounddevice.PortAudioError, ValueError) as error:
        raise SERError(f"cannot list the sound devices ({error})") from None
    return [
        {
            "index": int(device["index"]),
            "name": str(device["name"]),
            "channels": int(device["max_input_channels"]),
            "default_sample_rate": int(device["default_samplerate"]),
            "default": int(device["index"]) == default,
        }
        for device in devices
        if device["max_input_channels"] > 0
    ]


def microphone_blocks(
    device: int | str | None = None, *, block_seconds: float = 0.02, stop: threading.Event | None = None
) -> Iterator[tuple[np.ndarray, int]]:
    """The microphone's audio as ``(block, sample_rate)`` pairs, mono, at the device's own
    rate, until ``stop`` is set or the iterator is closed. The device is checked now; it
    records from the first block asked for.

    ``device`` is an index or a part of a name from :func:`input_devices`; the system's
    default input when ``None``.

    Raises
    ------
    SERError
        sounddevice or PortAudio is missing, no such device, the device cannot record, or it
        stops delivering audio (unplugged) while the stream runs.
    """
    sounddevice = _sounddevice()
    try:
        info = sounddevice.query_devices(device, kind="input")
    except (sounddevice.PortAudioError, ValueError) as error:
        which = "no default microphone" if device is None else f"no microphone {device!r}"
        raise SERError(f"{which} ({error}); `ser listen --list-devices` lists the devices that can record") from None
    return _recording(sounddevice, info, block_seconds, stop)


def _recording(sounddevice: Any, info: Any, block_seconds: float, stop: threading.Event | None) -> Iterator[tuple[np.ndarray, int]]:
    """The blocks of one input stream, opened at the first block asked for."""
    name, rate = str(info["name"]), int(info["default_samplerate"])
    arrived: queue.Queue[np.ndarray] = queue.Queue()

    def take(indata: np.ndarray, frames: int, moment: Any, status: Any) -> None:
        if status:
            _log.info("microphone %s: %s", name, status)
        arrived.put(indata[:, 0].copy())

    try:
        stream = sounddevice.InputStream(
            device=info["index"], channels=1, samplerate=rate, dtype="float32",
            blocksize=max(1, round(block_seconds * rate)), callback=take,
        )  # fmt: skip
        stream.start()
    except (sounddevice.PortAudioError, ValueError) as error:
        raise SERError(f"the microphone {name!r} cannot record ({error})") from None
    try:
        last = time.monotonic()
        while stop is None or not stop.is_set():
            try:
                block = arrived.get(timeout=0.1)
            except queue.Empty:
                if not stream.active or time.monotonic() - last > SILENT_DEVICE_SECONDS:
                    raise SERError(f"the microphone {name!r} stopped delivering audio (unplugged?)") from None
                continue
            last = time.monotonic()
            yield block, rate
    finally:
        stream.close(ignore_errors=True)
