"""What the extractor does to a signal before any feature: the speech band, then the speech.

A recording carries what its equipment adds: a constant offset (cheap sound cards, some
phones), mains hum at 50 or 60 Hz, clicks, noise. None of it carries emotion, so none of it
may reach a feature:

1. **The speech band** (:func:`speech_band`). The offset is removed (the signal's mean),
   clicks are repaired (:func:`repair_clicks`), then a steep high-pass (Chebyshev type II, flat above ``config.band_low_hz``, at least
   :data:`STOPBAND_ATTENUATION_DB` down from :data:`STOPBAND_RATIO` times that edge to 0 Hz)
   takes out hum and rumble below the lowest voice. :class:`SpeechBand` does the same block by
   block, for streams.
2. **The speech** (:func:`speech_bounds`). Leading and trailing parts are cut where the level
   (RMS of frames) stays ``config.trim_db`` below the clip's speech level, or within
   :data:`NOISE_MARGIN_DB` of its noise floor, whichever is higher.

Levels are relative to a robust reference, :func:`reference_level`: a high percentile of
frame levels, not the loudest frame, so that a click does not move every level of the clip.
"""

from __future__ import annotations

import functools

import numpy as np

from ..audio import FRAME_LENGTH, HOP_LENGTH, MIN_DURATION_SECONDS
from . import dsp
from .config import FeatureConfig

__all__ = [
    "NOISE_MARGIN_DB",
    "NOISE_PERCENTILE",
    "STOPBAND_ATTENUATION_DB",
    "STOPBAND_RATIO",
    "SpeechBand",
    "band_filter",
    "frame_levels_db",
    "reference_level",
    "repair_clicks",
    "speech_band",
    "speech_bounds",
]

#: The high-pass attenuates by at least this much (dB) in its stopband.
STOPBAND_ATTENUATION_DB = 60.0
#: The stopband starts this fraction of ``band_low_hz`` down (64 Hz for 80 Hz): 50 and 60 Hz
#: mains hum lie in it.
STOPBAND_RATIO = 0.8
#: The passband's edge is at most this far down (dB) at ``band_low_hz``.
PASSBAND_RIPPLE_DB = 1.0
#: Clicks are found against the signal's median over this many samples (1 ms at 14 kHz):
#: longer than a click, shorter than a period of the voice.
CLICK_MEDIAN_SAMPLES = 15
#: The residual from that median is compared per block of this many samples ...
CLICK_BLOCK_SAMPLES = 32
#: ... with the :data:`CLICK_CONTEXT_PERCENTILE`-th percentile of the largest residuals of this
#: many blocks around it (about 100 ms: several periods of the lowest voice, or of hum).
CLICK_CONTEXT_BLOCKS = 45
#: A click fills one or two of those blocks: it does not move this percentile of them.
CLICK_CONTEXT_PERCENTILE = 80.0
#: A sample whose residual exceeds that context this many times is part of a click.
CLICK_FACTOR = 5.0
#: Residuals more than 60 dB below the running median's peak are never a click: dither in a
#: pause, not equipment (relative, so that a gain changes nothing).
CLICK_FLOOR = 1e-3
#: The high-pass starts in the state that leaves the least output over this much of a stream (s).
PRIME_SECONDS = 0.1
#: The clip's noise floor is this percentile of its frame levels (dB).
NOISE_PERCENTILE = 5.0
#: Edges within this many dB of the noise floor are not speech.
NOISE_MARGIN_DB = 6.0
#: Levels below this (power, -120 dB re full scale) count as this: logarithms stay finite.
_POWER_FLOOR = 1e-12


@functools.lru_cache(maxsize=8)
def band_filter(sample_rate: int, band_low_hz: float) -> np.ndarray:
    """Second-order sections of the speech band's high-pass at ``sample_rate``, read-only.

    Chebyshev type II: flat passband (no ripple) from ``band_low_hz`` up, at least
    :data:`STOPBAND_ATTENUATION_DB` down below ``STOPBAND_RATIO * band_low_hz``; the order is
    the lowest that meets both (12 at 14 kHz for 80 Hz).

    Returns
    -------
    np.ndarray [shape=(n_sections, 6)]
    """
    import scipy.signal

    stop_hz = STOPBAND_RATIO * band_low_hz
    order, edge_hz = scipy.signal.cheb2ord(
        band_low_hz, stop_hz, PASSBAND_RIPPLE_DB, STOPBAND_ATTENUATION_DB, fs=sample_rate
    )
    sections = scipy.signal.cheby2(order, STOPBAND_ATTENUATION_DB, edge_hz, "highpass", fs=sample_rate, output="sos")
    sections.flags.writeable = False
    return sections


class SpeechBand:
    """:func:`speech_band` block by block: blocks of one stream in, filtered blocks out.

    The offset removed is the first block's mean; the filter starts in a state fitted to the
    stream's beginning (see :meth:`_primed_state`), so neither an offset nor hum present from
    the start leaves a transient; its state is carried from block to block. Fed one block, it gives :func:`speech_band` of that block.

    Examples
    --------
    >>> band = SpeechBand(FeatureConfig())
    >>> filtered = np.concatenate([band(block) for block in np.array_split(signal, 10)])  # doctest: +SKIP
    """

    def __init__(self, config: FeatureConfig) -> None:
        self._sections = band_filter(config.sample_rate, config.band_low_hz).copy()  # sosfilt wants it writable
        self._sample_rate, self._band_low_hz = config.sample_rate, config.band_low_hz
        self._offset: float | None = None
        self._state: np.ndarray | None = None

    def __call__(self, block: np.ndarray) -> np.ndarray:
        """The next block, offset removed, clicks repaired and high-pass filtered: float32, the block's shape."""
        import scipy.signal

        samples = np.asarray(block, dtype=np.float64)
        if samples.size == 0:
            return np.zeros(0, dtype=np.float32)
        if self._offset is None:
            self._offset = float(samples.mean())
        centred = repair_clicks(samples - self._offset)
        if self._state is None:
            self._state = self._primed_state(centred)
        filtered, self._state = scipy.signal.sosfilt(self._sections, centred, zi=self._state)
        return filtered.astype(np.float32)

    def _primed_state(self, first: np.ndarray) -> np.ndarray:
        """The filter state that leaves the least output over the first :data:`PRIME_SECONDS`
        of the stream (least squares over the filter's zero-input responses): the steady state
        of whatever hum and rumble were there before the recording started, so they do not ring
        at its start. Speech is hardly touched: the filter's own modes lie below the band."""
        import scipy.signal

        length = min(round(PRIME_SECONDS * self._sample_rate), first.size)
        responses = _zero_input_responses(self._sample_rate, self._band_low_hz, length)
        forced = scipy.signal.sosfilt(self._sections, first[:length])
        state, *_ = np.linalg.lstsq(responses.T, -forced, rcond=None)
        return state.reshape(self._sections.shape[0], 2)


@functools.lru_cache(maxsize=8)
def _zero_input_responses(sample_rate: int, band_low_hz: float, length: int) -> np.ndarray:
    """The high-pass's output, over ``length`` samples of silence, from each unit state: shape
    ``(2 * n_sections, length)``, read-only."""
    import scipy.signal

    sections = band_filter(sample_rate, band_low_hz).copy()
    responses = np.empty((sections.size // 3, length))
    for index in range(responses.shape[0]):
        state = np.zeros((sections.shape[0], 2))
        state.flat[index] = 1.0
        responses[index] = scipy.signal.sosfilt(sections, np.zeros(length), zi=state)[0]
    responses.flags.writeable = False
    return responses


def repair_clicks(signal: np.ndarray) -> np.ndarray:
    """The signal with its clicks replaced by its running median.

    A click (a crackle, a dropout, a pop of the line) is a few samples far off the signal's
    running median (over :data:`CLICK_MEDIAN_SAMPLES`) compared with how far the signal strays
    from it around them (a high percentile, over :data:`CLICK_CONTEXT_BLOCKS` blocks, of each
    block's largest residual, and more than :data:`CLICK_FLOOR` times the median's peak): voiced
    speech and hum stray alike in every period, a click once. Those samples,
    and two on each side, take the median's value. A clean recording is changed by less than
    its features notice (``benchmarks/robustness.py`` measures it).

    Parameters
    ----------
    signal : np.ndarray [shape=(n,)]
        Without offset (zero mean).

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float64]
    """
    from scipy.ndimage import binary_dilation, median_filter, percentile_filter

    samples = np.asarray(signal, dtype=np.float64)
    if samples.size < CLICK_MEDIAN_SAMPLES:
        return samples
    median = median_filter(samples, size=CLICK_MEDIAN_SAMPLES, mode="reflect")
    residual = np.abs(samples - median)
    padded = np.pad(residual, (0, -residual.size % CLICK_BLOCK_SAMPLES))
    block_peaks = padded.reshape(-1, CLICK_BLOCK_SAMPLES).max(axis=1)
    context = percentile_filter(block_peaks, CLICK_CONTEXT_PERCENTILE, size=CLICK_CONTEXT_BLOCKS, mode="reflect")
    floor = CLICK_FLOOR * float(np.max(np.abs(median)))
    clicks = residual > CLICK_FACTOR * np.repeat(context, CLICK_BLOCK_SAMPLES)[: residual.size] + floor
    edge = CLICK_MEDIAN_SAMPLES // 2  # where the running median sees a reflected signal
    clicks[:edge] = clicks[-edge:] = False
    if not clicks.any():
        return samples
    clicks = binary_dilation(clicks, iterations=2)
    return np.where(clicks, median, samples)


def speech_band(signal: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """The signal without its offset (mean), its clicks (:func:`repair_clicks`) and what lies
    below ``config.band_low_hz``.

    Parameters
    ----------
    signal : np.ndarray [shape=(n,)]
        Mono, at ``config.sample_rate``.

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float32]
    """
    return SpeechBand(config)(signal)


def frame_levels_db(signal: np.ndarray) -> np.ndarray:
    """Level (dB re full scale, of the RMS) of the centred frames ``librosa.feature.rms(y=signal,
    frame_length=FRAME_LENGTH, hop_length=HOP_LENGTH)`` takes: shape ``(1 + n // HOP_LENGTH,)``."""
    rms = dsp.rms_from_signal(signal, FRAME_LENGTH, HOP_LENGTH)[0]
    return 10.0 * np.log10(np.maximum(rms.astype(np.float64) ** 2, _POWER_FLOOR))


def reference_level(values: np.ndarray, config: FeatureConfig) -> float:
    """The clip's robust maximum of ``values`` (frame levels, or frames' strongest bins): their
    ``config.reference_percentile``-th percentile. A click or a pop a few frames long does
    not move it, where it would be the maximum."""
    return float(np.percentile(values, config.reference_percentile))


def speech_bounds(signal: np.ndarray, config: FeatureConfig, *, within_speech: bool = False) -> tuple[int, int]:
    """Sample indices ``(start, end)`` of the speech in a clip (in the speech band, see
    :func:`speech_band`): leading and trailing frames below a threshold are cut.

    The threshold is ``config.trim_db`` below :func:`reference_level` of the frame levels, or
    :data:`NOISE_MARGIN_DB` above the noise floor (the :data:`NOISE_PERCENTILE`-th percentile of
    frame levels), whichever is higher: in a clean recording, pauses are far below speech; in a
    noisy one, they are the noise. When less than :data:`~ser_classic.audio.MIN_DURATION_SECONDS`
    stands out from the noise floor (speech barely above it; steady noise, hum or dither), the
    first threshold alone decides; when that too leaves less (a click in silence), or with
    ``config.trim_db`` ``None``, the whole signal is kept: the voicing rule then decides whether
    it holds speech at all.

    ``within_speech``: the signal was cut from inside speech already (a window of a speech
    region, found against the whole recording's noise floor), so its quietest frames are quiet
    speech, not noise: only the first threshold applies. Without it, trimming such a signal
    again would cut its soft edges.
    """
    if config.trim_db is None:
        return 0, signal.shape[0]
    levels = frame_levels_db(signal)
    below_speech = reference_level(levels, config) - config.trim_db
    above_noise = float(np.percentile(levels, NOISE_PERCENTILE)) + NOISE_MARGIN_DB
    shortest = np.ceil(MIN_DURATION_SECONDS * config.sample_rate)
    for threshold in (below_speech,) if within_speech else (max(below_speech, above_noise), below_speech):
        loud = np.flatnonzero(levels > threshold)
        if loud.size:
            start, end = int(loud[0]) * HOP_LENGTH, min(signal.shape[0], (int(loud[-1]) + 1) * HOP_LENGTH)
            if end - start >= shortest:
                return start, end
    return 0, signal.shape[0]
