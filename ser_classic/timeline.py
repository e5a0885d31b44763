"""Emotions over time in long recordings: speech regions, windows over speech, segments.

A recording is read twice, block by block, so memory does not grow with its duration:

1. **Speech regions.** The level (RMS in dBFS) of every frame (``audio.FRAME_LENGTH`` samples,
   hop ``audio.HOP_LENGTH``, at the analysis rate) is kept: a few bytes per frame. Speech is found with two thresholds
   (hysteresis): a region must somewhere be louder than ``threshold_db``, by default
   ``margin_db`` above the recording's noise floor (the 5th percentile of frame levels), and it
   extends on both sides while frames stay above ``threshold_db - margin_db / 2``; neither
   threshold is ever below :data:`ABSOLUTE_FLOOR_DBFS`. Regions separated by less than
   ``min_silence_seconds`` are joined, each region's edges are trimmed ``top_db`` below its own
   robust reference level (``FeatureConfig.trim_db`` below the ``reference_percentile``-th
   percentile of its frame levels, as every training clip was trimmed), and regions shorter than ``min_speech_seconds`` are dropped. The reference
   is the noise floor and not the loudest frame of the whole file (``librosa.effects.split``)
   because levels vary by tens of dB within one recording (RAVDESS clips peak anywhere from
   -5 to -52 dBFS): a quiet turn after a shout would otherwise vanish.
2. **Windows.** Windows of ``window_seconds`` every ``hop_seconds`` are laid inside each speech
   region, the last one ending at the region's end; a region shorter than a window is one
   window. Each window is described as ``ser predict`` describes a file that holds just that
   window's audio, trimmed only ``FeatureConfig.trim_db`` below its reference level (it lies
   inside speech: ``extract_vector(..., within_speech=True)``), and all windows are
   classified in batches by the model.

Gaps between speech regions are rows of their own, with the emotion :data:`NON_SPEECH` and no
probabilities: silence is never given an emotion.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial
from itertools import islice
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import audio
from .errors import AudioError, SERError

if TYPE_CHECKING:
    from .features.config import FeatureConfig
    from .models import Model

__all__ = [
    "ABSOLUTE_FLOOR_DBFS",
    "LevelTrack",
    "NON_SPEECH",
    "find_speech",
    "frame_levels",
    "plot_timeline",
    "segments",
    "smooth_probabilities",
    "speech_regions",
    "speech_shares",
    "timeline",
    "timeline_colours",
    "timeline_columns",
    "window_bounds",
]

#: The emotion of rows that hold no speech.
NON_SPEECH = "non-speech"
#: No frame quieter than this (RMS, dB re full scale) is ever speech, whatever the noise floor.
ABSOLUTE_FLOOR_DBFS = -80.0
#: Frame length and hop (samples at the analysis rate) of the level track; those of the trimming.
FRAME_LENGTH, HOP_LENGTH = audio.FRAME_LENGTH, audio.HOP_LENGTH
_NOISE_PERCENTILE = 5.0
_POWER_FLOOR = 1e-10  # -100 dBFS, the level of digital silence
_BATCH_WINDOWS = 32


def check_windows(window_seconds: float, hop_seconds: float, min_speech_seconds: float) -> None:
    """Refuse windows, hops and speech lengths no timeline can use (:class:`SERError`)."""
    if not (window_seconds >= audio.MIN_DURATION_SECONDS and 0 < hop_seconds <= window_seconds):
        raise SERError(
            f"need window_seconds >= {audio.MIN_DURATION_SECONDS} and 0 < hop_seconds <= window_seconds "
            f"(got window {window_seconds}, hop {hop_seconds})"
        )
    if min_speech_seconds < audio.MIN_DURATION_SECONDS:
        raise SERError(f"min_speech_seconds must be at least {audio.MIN_DURATION_SECONDS}")


def timeline_columns(classes: Iterable[str]) -> list[str]:
    """``start, end, speech, emotion, confidence, p_<class>...``."""
    return ["start", "end", "speech", "emotion", "confidence", *[f"p_{label}" for label in classes]]


# ----------------------------------------------------------------------------- reading
def _is_path(source: object) -> bool:
    return isinstance(source, (str, PathLike))


def _prepare_signal(source: np.ndarray, sample_rate: int | None, target_rate: int) -> np.ndarray:
    """An in-memory signal as mono float32 at ``target_rate``."""
    if sample_rate is None:
        raise SERError("a signal needs its sample_rate")
    mono = audio.to_mono(np.asarray(source, dtype=np.float32))
    if mono.size == 0:
        raise AudioError("no audio samples (empty signal)")
    if not np.all(np.isfinite(mono)):
        raise AudioError("signal contains NaN or infinite samples")
    return audio.resample(mono, int(sample_rate), target_rate).astype(np.float32, copy=False)


def _blocks(source: object, signal: np.ndarray | None, sample_rate: int, block_seconds: float) -> Iterator[np.ndarray]:
    """Consecutive mono blocks at ``sample_rate``: from the file, or slices of ``signal``."""
    if signal is None:
        yield from audio.read_blocks(source, sample_rate=sample_rate, block_seconds=block_seconds)  # type: ignore[arg-type]
        return
    step = max(1, int(block_seconds * sample_rate))
    for offset in range(0, signal.size, step):
        yield signal[offset : offset + step]


def _progress(
    blocks: Iterator[np.ndarray], total_seconds: float, sample_rate: int, description: str
) -> Iterator[np.ndarray]:
    """Pass blocks through, advancing a progress bar on stderr by the seconds they hold."""
    from tqdm.auto import tqdm

    with tqdm(total=round(total_seconds, 1), desc=description, unit="s", leave=False) as bar:
        for block in blocks:
            bar.update(round(block.size / sample_rate, 3))
            yield block


# ----------------------------------------------------------------------------- speech regions
class LevelTrack:
    """:func:`frame_levels` block by block: blocks of one stream in, the levels of the frames
    they complete out; for streams that never end (:mod:`ser_classic.live`).

    Holds less than one frame of samples between calls.

    Examples
    --------
    >>> track = LevelTrack()
    >>> levels = np.concatenate([*map(track.push, blocks), track.close()])  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._carry = np.zeros(FRAME_LENGTH // 2, dtype=np.float64)
        #: Samples pushed so far.
        self.n_samples = 0

    def push(self, block: np.ndarray) -> np.ndarray:
        """The levels (dBFS) of the frames that ``block`` completes: shape ``(n_new_frames,)``."""
        self.n_samples += block.size
        return self._take(np.concatenate([self._carry, np.asarray(block, dtype=np.float64)]))

    def close(self) -> np.ndarray:
        """The levels of the last frames, the stream's end zero-padded (as ``librosa.feature.rms``)."""
        return self._take(np.concatenate([self._carry, np.zeros(FRAME_LENGTH // 2)]))

    def _take(self, buffer: np.ndarray) -> np.ndarray:
        if buffer.size < FRAME_LENGTH:
            self._carry = buffer
            return np.zeros(0)
        squares = np.lib.stride_tricks.sliding_window_view(buffer**2, FRAME_LENGTH)[::HOP_LENGTH]
        self._carry = buffer[squares.shape[0] * HOP_LENGTH :]
        return 10.0 * np.log10(np.maximum(squares.mean(axis=1), _POWER_FLOOR))


def frame_levels(blocks: Iterable[np.ndarray]) -> tuple[np.ndarray, int]:
    """Level (dBFS of the RMS) of centred frames over a stream of blocks, and the sample count.

    Frames are those of ``librosa.feature.rms(y, frame_length=FRAME_LENGTH, hop_length=HOP_LENGTH)``:
    frame ``k`` is centred on sample ``k * HOP_LENGTH`` of the zero-padded signal,
    ``1 + n // HOP_LENGTH`` frames. See :class:`LevelTrack` for a stream that never ends.
    """
    track = LevelTrack()
    levels = [track.push(block) for block in blocks]
    levels.append(track.close())
    return np.concatenate(levels), track.n_samples


def _runs(mask: np.ndarray) -> np.ndarray:
    """``[start, stop)`` frame index pairs of the runs of True in ``mask``, shape ``(n, 2)``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return edges.reshape(-1, 2)


def find_speech(
    levels: np.ndarray,
    n_samples: int,
    sample_rate: int,
    *,
    threshold_db: float | None = None,
    margin_db: float = 12.0,
    top_db: float = 30.0,
    min_silence_seconds: float = 0.5,
    min_speech_seconds: float = 0.2,
    reference_percentile: float = 95.0,
) -> np.ndarray:
    """Speech regions from a frame level track (pure function; see the module docstring).

    Parameters
    ----------
    levels : np.ndarray [shape=(n_frames,)]
        Frame levels in dBFS, from :func:`frame_levels`.
    n_samples : int
        Length of the signal the frames cover.

    Returns
    -------
    regions : np.ndarray [shape=(n_regions, 2), dtype=int]
        ``[start, end)`` sample indices, sorted and disjoint.
    """
    if levels.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if threshold_db is None:
        threshold_db = float(np.percentile(levels, _NOISE_PERCENTILE)) + margin_db
    high = max(threshold_db, ABSOLUTE_FLOOR_DBFS)
    low = max(threshold_db - margin_db / 2, ABSOLUTE_FLOOR_DBFS)
    hop_seconds = HOP_LENGTH / sample_rate
    regions: list[list[int]] = []
    for start, stop in _runs(levels > low):
        if regions and (start - regions[-1][1]) * hop_seconds < min_silence_seconds:
            regions[-1][1] = stop
        else:
            regions.append([start, stop])
    kept = []
    for start, stop in regions:
        if levels[start:stop].max() <= high:
            continue
        loud = np.flatnonzero(levels[start:stop] > np.percentile(levels[start:stop], reference_percentile) - top_db)
        first, last = start + loud[0], start + loud[-1] + 1
        begin, end = first * HOP_LENGTH, min(n_samples, last * HOP_LENGTH)
        if end - begin >= min_speech_seconds * sample_rate:
            kept.append((begin, end))
    return np.asarray(kept, dtype=np.int64).reshape(-1, 2)


def speech_regions(
    source: str | PathLike[str] | np.ndarray,
    *,
    sample_rate: int | None = None,
    threshold_db: float | None = None,
    margin_db: float = 12.0,
    top_db: float | None = None,
    min_silence_seconds: float = 0.5,
    min_speech_seconds: float = 0.2,
    progress: bool = False,
    config: FeatureConfig | None = None,
) -> pd.DataFrame:
    """Where a recording holds speech, by energy: DataFrame ``start, end`` in seconds.

    ``source`` is a path (read blockwise, any length) or a signal with its ``sample_rate``.
    The settings are those of :func:`timeline`; region edges are trimmed ``top_db`` below each
    region's reference level (as the extractor trims a clip), by default the ``trim_db`` of ``config`` (a model's
    ``feature_config``; default :class:`~ser_classic.features.FeatureConfig`), as :func:`timeline` does.
    """
    from .features.config import FeatureConfig

    config = config or FeatureConfig()
    rate = config.sample_rate
    top_db = _edge_db(config) if top_db is None else top_db
    signal = None if _is_path(source) else _prepare_signal(source, sample_rate, rate)  # type: ignore[arg-type]
    regions, _ = _speech(
        source, signal, config, threshold_db, margin_db, top_db, min_silence_seconds, min_speech_seconds, progress
    )
    return pd.DataFrame(regions / rate, columns=["start", "end"])


def _speech(
    source: object,
    signal: np.ndarray | None,
    config: FeatureConfig,
    threshold_db: float | None,
    margin_db: float,
    top_db: float,
    min_silence_seconds: float,
    min_speech_seconds: float,
    progress: bool,
) -> tuple[np.ndarray, int]:
    """First pass: speech regions (samples at the analysis rate) and the signal's length.

    Levels are those of the speech band (:class:`~ser_classic.features.conditioning.SpeechBand`):
    an offset, hum or rumble is not speech."""
    from .features.conditioning import SpeechBand

    rate = config.sample_rate
    blocks = _blocks(source, signal, rate, block_seconds=30.0)
    if progress:
        seconds = signal.size / rate if signal is not None else audio.file_info(source).duration_seconds  # type: ignore[arg-type]
        blocks = _progress(blocks, seconds, rate, "speech")
    levels, n_samples = frame_levels(map(SpeechBand(config), blocks))
    regions = find_speech(
        levels,
        n_samples,
        rate,
        threshold_db=threshold_db,
        margin_db=margin_db,
        top_db=top_db,
        min_silence_seconds=min_silence_seconds,
        min_speech_seconds=min_speech_seconds,
        reference_percentile=config.reference_percentile,
    )
    return regions, n_samples


def _edge_db(config: FeatureConfig) -> float:
    """How far below its loudest frame a speech region's edges are cut: as the extractor trims."""
    return config.trim_db if config.trim_db is not None else 40.0


# ----------------------------------------------------------------------------- windows
def window_bounds(regions: np.ndarray, window_samples: int, hop_samples: int) -> np.ndarray:
    """Analysis windows inside speech regions (pure function).

    Returns
    -------
    windows : np.ndarray [shape=(n_windows, 3), dtype=int]
        ``start, end`` (samples) and the index of the region, in time order. Windows start every
        ``hop_samples`` from the region's start; one more ends at the region's end when the
        last regular one falls short of it; a region shorter than a window is one window.
    """
    rows = []
    for index, (start, end) in enumerate(regions):
        if end - start <= window_samples:
            rows.append((start, end, index))
            continue
        starts = list(range(start, end - window_samples + 1, hop_samples))
        if starts[-1] + window_samples < end:
            starts.append(end - window_samples)
        rows += [(s, s + window_samples, index) for s in starts]
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def _window_signals(blocks: Iterable[np.ndarray], windows: np.ndarray) -> Iterator[np.ndarray]:
    """Second pass: the samples of each window, in order, holding at most a block and a window."""
    buffer = np.zeros(0, dtype=np.float32)
    buffer_start = 0  # sample index of buffer[0]
    next_window = 0
    for block in blocks:
        buffer = np.concatenate([buffer, block])
        while next_window < len(windows) and windows[next_window, 1] <= buffer_start + buffer.size:
            start, end = windows[next_window, :2] - buffer_start
            yield buffer[start:end].copy()
            next_window += 1
        keep_from = windows[next_window, 0] if next_window < len(windows) else buffer_start + buffer.size
        drop = int(min(max(keep_from - buffer_start, 0), buffer.size))
        buffer, buffer_start = buffer[drop:], buffer_start + drop
    if next_window < len(windows):
        raise AudioError("the audio ended before the speech regions found in it (file changed while reading?)")





def _classify_windows(
    signals: Iterator[np.ndarray], model: Model, n_windows: int, n_jobs: int | None, progress: bool
) -> np.ndarray:
    """Probabilities ``(n_windows, n_classes)`` of the windows, features computed in batches
    (of enough windows for ``n_jobs`` workers; a batch holds a few hundred kB per window)."""
    from .features.extractor import extract_vector, warm_up
    from .parallel import MIN_ITEMS_PER_WORKER, ordered_map, resolve_jobs

    warm = partial(warm_up, model.feature_config)  # each batch's workers are forked from this warm process
    workers = resolve_jobs(n_jobs)
    batch_size = _BATCH_WINDOWS if workers == 1 else max(_BATCH_WINDOWS, MIN_ITEMS_PER_WORKER) * workers
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_windows, desc="emotions", unit="window", leave=False)
    probabilities = []
    try:
        while True:
            batch = list(islice(signals, batch_size))
            if not batch:
                break
            vectors = list(ordered_map(extract_vector, batch, n_jobs=n_jobs, warm_up=warm, config=model.feature_config, within_speech=True))
            table = pd.DataFrame(np.vstack(vectors), columns=model.feature_names)
            if not np.all(np.isfinite(table.to_numpy())):
                raise AudioError("features are not finite for a window of the recording")
            probabilities.append(model.predict_proba(table).to_numpy())
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
    return np.vstack(probabilities) if probabilities else np.zeros((0, len(model.classes)))


def smooth_probabilities(
    probabilities: np.ndarray, centres: np.ndarray, regions: np.ndarray, seconds: float
) -> np.ndarray:
    """Centred moving average of window probabilities over time, within each speech region.

    Each window's probabilities become the mean over the windows of the same region whose
    centres lie within ``seconds / 2`` of its centre; rows still sum to 1. Speech regions are
    never averaged together: a pause may be a change of speaker.
    """
    if seconds <= 0 or len(probabilities) == 0:
        return probabilities
    smoothed = np.empty_like(probabilities)
    for index in range(len(probabilities)):
        near = (regions == regions[index]) & (np.abs(centres - centres[index]) <= seconds / 2)
        smoothed[index] = probabilities[near].mean(axis=0)
    return smoothed


# ----------------------------------------------------------------------------- the timeline
def timeline(
    source: str | PathLike[str] | np.ndarray,
    model: Model | None = None,
    *,
    sample_rate: int | None = None,
    window_seconds: float = 3.0,
    hop_seconds: float = 1.0,
    smoothing: float = 0.0,
    threshold_db: float | None = None,
    margin_db: float = 12.0,
    min_silence_seconds: float = 0.5,
    min_speech_seconds: float = 0.2,
    n_jobs: int | None = 1,
    progress: bool = False,
) -> pd.DataFrame:
    """Emotion of a recording over time, over its speech only.

    Parameters
    ----------
    source : str, PathLike or np.ndarray [shape=(n,) or (n, channels)]
        An audio file of any length (read blockwise: memory does not grow with duration;
        ``audio.MAX_DURATION_SECONDS`` does not apply), or a signal with its ``sample_rate``.
    model : Model, optional
        The bundled default model when ``None``.
    window_seconds, hop_seconds : float
        Analysis window and the step between windows inside a speech region (hop <= window).
    smoothing : float
        Width in seconds of a centred moving average of the probabilities over neighbouring
        windows of the same speech region (:func:`smooth_probabilities`); ``0`` (the default)
        leaves each window's probabilities as the model gave them.
    threshold_db : float, optional
        Level (dBFS) a speech region must reach; by default ``margin_db`` above the noise floor
        (the 5th percentile of frame levels). Regions extend while frames stay above
        ``threshold_db - margin_db / 2``; neither is below :data:`ABSOLUTE_FLOOR_DBFS`.
    min_silence_seconds, min_speech_seconds : float
        Shorter pauses are part of the speech around them; shorter bursts are not speech.
    n_jobs : int, optional
        Worker processes for the window features (``-1``: all cores).
    progress : bool
        Progress bars on stderr.

    Returns
    -------
    pandas.DataFrame
        One row per analysis window, and one per gap between speech regions, in time order:
        ``start, end`` (seconds), ``speech`` (bool), ``emotion`` (a class, or :data:`NON_SPEECH`),
        ``confidence`` (the top probability), ``p_<class>`` (NaN on non-speech rows); see
        :func:`timeline_columns`. Windows overlap when ``hop_seconds < window_seconds``;
        :func:`segments` turns the rows into a partition of time.

    Raises
    ------
    SERError
        Invalid settings; :class:`AudioError` naming the file when it cannot be read.

    Examples
    --------
    >>> from ser_classic.timeline import timeline, segments
    >>> frame = timeline("interview.flac", window_seconds=3.0, hop_seconds=1.0)  # doctest: +SKIP
    >>> segments(frame).head()  # doctest: +SKIP
    """
    from .models import load_model

    check_windows(window_seconds, hop_seconds, min_speech_seconds)
    model = model or load_model()
    config = model.feature_config
    rate = config.sample_rate
    path = Path(source) if _is_path(source) else None  # type: ignore[arg-type]
    signal = None if path is not None else _prepare_signal(source, sample_rate, rate)  # type: ignore[arg-type]
    top_db = _edge_db(config)
    try:
        regions, n_samples = _speech(
            path, signal, config, threshold_db, margin_db, top_db, min_silence_seconds, min_speech_seconds, progress
        )
        windows = window_bounds(regions, round(window_seconds * rate), max(1, round(hop_seconds * rate)))
        signals = _window_signals(_blocks(path, signal, rate, block_seconds=30.0), windows)
        probabilities = _classify_windows(signals, model, len(windows), n_jobs, progress)
    except SERError as error:
        if path is not None and error.path is None:
            raise type(error)(error.reason, path) from None
        raise
    centres = windows[:, :2].mean(axis=1) / rate
    probabilities = smooth_probabilities(probabilities, centres, windows[:, 2], smoothing)
    return _assemble(windows, probabilities, regions, n_samples, rate, model.classes)


def _assemble(
    windows: np.ndarray,
    probabilities: np.ndarray,
    regions: np.ndarray,
    n_samples: int,
    rate: int,
    classes: list[str],
) -> pd.DataFrame:
    """Speech windows and non-speech gaps as one frame in time order."""
    columns = timeline_columns(classes)
    speech = pd.DataFrame(probabilities, columns=columns[5:])
    speech.insert(0, "start", windows[:, 0] / rate)
    speech.insert(1, "end", windows[:, 1] / rate)
    speech.insert(2, "speech", True)
    speech.insert(
        3, "emotion", np.asarray(classes, dtype=object)[probabilities.argmax(axis=1)] if len(probabilities) else []
    )
    speech.insert(4, "confidence", probabilities.max(axis=1) if len(probabilities) else [])
    edges = np.concatenate([[0], regions.ravel(), [n_samples]]).reshape(-1, 2)
    gaps = edges[edges[:, 1] > edges[:, 0]]
    silence = pd.DataFrame(
        {"start": gaps[:, 0] / rate, "end": gaps[:, 1] / rate, "speech": False, "emotion": NON_SPEECH}
    )
    parts = [part for part in (speech, silence) if len(part)]
    frame = pd.concat(parts, ignore_index=True) if parts else speech
    frame = frame.reindex(columns=columns)
    frame["speech"] = frame["speech"].astype(bool)
    frame = frame.sort_values(["start", "end"], kind="stable").reset_index(drop=True)
    return frame.astype({name: float for name in ["start", "end", "confidence", *columns[5:]]})


def segments(frame: pd.DataFrame) -> pd.DataFrame:
    """Consecutive rows with the same emotion merged into segments that partition time.

    Overlapping windows first share the time between them: each window of a speech run owns
    the time from the midpoint between its centre and the previous window's centre to the
    midpoint with the next one's (the run's first and last windows reach the run's edges), so
    segments never overlap. Non-speech rows own their whole gap.

    Returns
    -------
    pandas.DataFrame
        ``start, end`` (seconds), ``emotion``, ``confidence`` (mean over the merged rows; NaN
        for non-speech).
    """
    columns = ["start", "end", "emotion", "confidence"]
    if len(frame) == 0:
        return pd.DataFrame(columns=columns)
    ordered = frame.sort_values(["start", "end"], kind="stable").reset_index(drop=True)
    starts, ends = ordered["start"].to_numpy(float), ordered["end"].to_numpy(float)
    is_speech = ordered["speech"].to_numpy(bool)
    owned_start, owned_end = starts.copy(), ends.copy()
    index = 0
    while index < len(ordered):
        if not is_speech[index]:
            index += 1
            continue
        stop, run_end = index + 1, ends[index]
        while stop < len(ordered) and is_speech[stop] and starts[stop] <= run_end:
            run_end = max(run_end, ends[stop])
            stop += 1
        centres = (starts[index:stop] + ends[index:stop]) / 2
        middles = (centres[:-1] + centres[1:]) / 2
        owned_start[index:stop] = np.concatenate([[starts[index]], middles])
        owned_end[index:stop] = np.concatenate([middles, [run_end]])
        index = stop
    emotions = ordered["emotion"].to_numpy(object)
    confidence = ordered["confidence"].to_numpy(float)
    rows = []
    first = 0
    for index in range(1, len(ordered) + 1):
        if (
            index == len(ordered)
            or emotions[index] != emotions[first]
            or owned_start[index] > owned_end[index - 1] + 1e-9
        ):
            merged = confidence[first:index]
            mean = float(np.mean(merged)) if np.all(np.isfinite(merged)) else float("nan")
            rows.append((owned_start[first], owned_end[index - 1], emotions[first], mean))
            first = index
    return pd.DataFrame(rows, columns=columns)


def speech_shares(frame: pd.DataFrame) -> pd.Series:
    """Share of the speech time each emotion holds in a timeline, largest first.

    Time is shared between overlapping windows as :func:`segments` shares it; non-speech
    time does not count. Empty when the timeline holds no speech.

    Returns
    -------
    pandas.Series
        Emotion -> share of the speech time (summing to 1), in decreasing order.
    """
    merged = segments(frame)
    speech = merged[(merged["emotion"] != NON_SPEECH) & merged["confidence"].notna()]  # live rows too short to tell: none
    seconds = (speech["end"] - speech["start"]).groupby(speech["emotion"]).sum()
    if seconds.sum() <= 0:
        return pd.Series(dtype=float, name="share")
    return (seconds / seconds.sum()).sort_values(ascending=False, kind="stable").rename("share")


# ----------------------------------------------------------------------------- plot
#: Colour of non-speech in timeline plots: a light grey that no class gets.
NON_SPEECH_COLOUR = (0.85, 0.85, 0.85, 1.0)
#: The tab10 colours classes take in turn: all but its grey (index 7), which non-speech's resembles.
_CLASS_COLOURS = (0, 1, 2, 3, 4, 5, 6, 8, 9)


def timeline_colours(classes: Iterable[str]) -> dict[str, tuple[float, float, float, float]]:
    """Class -> RGBA colour of :func:`plot_timeline` (tab10 without its grey), and :data:`NON_SPEECH`'s."""
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    colours = {label: palette(_CLASS_COLOURS[i % len(_CLASS_COLOURS)]) for i, label in enumerate(classes)}
    return {**colours, NON_SPEECH: NON_SPEECH_COLOUR}


def plot_timeline(
    frame: pd.DataFrame,
    path: str | PathLike[str],
    *,
    signal: np.ndarray | None = None,
    sample_rate: int | None = None,
    title: str | None = None,
) -> None:
    """PNG of a timeline: class probabilities over time as stacked areas, the merged segments
    as a coloured band, and the waveform (when ``signal`` and ``sample_rate`` are given) or the
    speech regions underneath. Written atomically; no display needed, and no pyplot state is
    touched (a :class:`matplotlib.figure.Figure` renders itself with Agg).
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from .atomic import atomic_output

    classes = [column[2:] for column in frame.columns if column.startswith("p_")]
    colours = timeline_colours(classes)
    duration = float(frame["end"].max()) if len(frame) else 0.0

    figure = Figure(figsize=(12, 5.2), layout="constrained")
    top, band, bottom = figure.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [4, 0.7, 1.4]})
    merged = segments(frame)
    speech_rows = frame[frame["speech"]].sort_values("start")
    owned = merged[merged["emotion"] != NON_SPEECH]
    # stacked areas per speech run, drawn at window centres, so silence stays empty
    runs = (speech_rows["start"] > speech_rows["end"].cummax().shift(fill_value=-np.inf)).cumsum()
    for _, run in speech_rows.groupby(runs):
        centres = ((run["start"] + run["end"]) / 2).to_numpy()
        x = np.concatenate([[run["start"].min()], centres, [run["end"].max()]])
        values = run[[f"p_{c}" for c in classes]].to_numpy().T
        values = np.concatenate([values[:, :1], values, values[:, -1:]], axis=1)
        top.stackplot(x, values, colors=[colours[c] for c in classes], linewidth=0)
    for start, end in frame.loc[~frame["speech"], ["start", "end"]].itertuples(index=False):
        top.axvspan(start, end, color=colours[NON_SPEECH], alpha=0.5, linewidth=0)
    top.set_ylim(0, 1)
    top.set_ylabel("probability")
    top.set_title(title or "Emotion over time")
    top.legend(
        handles=[Patch(color=colours[c], label=c) for c in [*classes, NON_SPEECH]],
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        frameon=False,
    )

    for start, end, emotion, _ in merged.itertuples(index=False):
        band.axvspan(start, end, color=colours.get(emotion, "black"), linewidth=0)
    band.set_yticks([])
    band.set_ylabel("segments", rotation=0, ha="right", va="center")

    waveform = signal is not None and sample_rate is not None
    if waveform:
        mono = audio.to_mono(np.asarray(signal, dtype=np.float32))
        bins = max(1, mono.size // 4000)
        usable = mono[: mono.size // bins * bins].reshape(-1, bins)
        times = (np.arange(usable.shape[0]) + 0.5) * bins / sample_rate
        bottom.fill_between(times, usable.min(axis=1), usable.max(axis=1), color="0.3", linewidth=0)
        bottom.set_ylabel("waveform")
    else:
        bottom.set_ylabel("speech")
        bottom.set_yticks([])
    for start, end in owned[["start", "end"]].itertuples(index=False):
        bottom.axvspan(start, end, color="tab:green", alpha=0.15 if waveform else 0.7, linewidth=0)
    bottom.set_xlabel("time (s)")
    bottom.set_xlim(0, duration or 1.0)

    with atomic_output(path, "wb") as stream:
        figure.savefig(stream, format="png", dpi=120)
