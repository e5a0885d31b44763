"""Everyday recording defects, added to a clean clip: what a microphone, a sound card, the mains
and a room add to speech, none of which carries emotion.

``benchmarks/robustness.py`` and ``tests/test_robustness.py`` save each clip of a held-out set
once clean and once with each of :data:`CONDITIONS`, and count how often the model gives both
the same label. Each condition is a pure function ``(signal, sample_rate, rng, others) ->
signal``: ``signal`` is a clean mono clip in full-scale units, ``others`` are clean clips of
other speakers at the same rate (for babble), and the result has the clip's length (two columns
for the stereo condition).

Examples
--------
>>> from ser_classic.defects import CONDITIONS
>>> noisy = CONDITIONS["white noise, 10 dB SNR"].apply(clip, 48000, rng, others)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .augmentation import add_noise, speech_power

__all__ = [
    "BABBLE_TALKERS",
    "CONDITIONS",
    "Condition",
    "add_click",
    "add_hum",
    "babble",
    "one_silent_channel",
    "scale_to_peak",
]

#: Talkers mixed into :func:`babble`: a crowd, not a voice to follow.
BABBLE_TALKERS = 6


def add_hum(signal: np.ndarray, sample_rate: int, frequency_hz: float, db_below_peak: float) -> np.ndarray:
    """Mains hum: a sine at ``frequency_hz`` whose amplitude is ``db_below_peak`` dB below the
    signal's peak."""
    amplitude = np.max(np.abs(signal)) * 10.0 ** (-db_below_peak / 20.0)
    return signal + amplitude * np.sin(2 * np.pi * frequency_hz * np.arange(signal.size) / sample_rate)


def add_click(signal: np.ndarray, n_samples: int = 20, value: float = 0.99) -> np.ndarray:
    """One click: ``n_samples`` samples set to ``value`` in the middle of the signal (a dropout,
    a crackle of a cable)."""
    clicked = signal.copy()
    middle = signal.size // 2
    clicked[middle : middle + n_samples] = value
    return clicked


def scale_to_peak(signal: np.ndarray, peak_dbfs: float) -> np.ndarray:
    """The signal scaled so that its peak is ``peak_dbfs`` dB re full scale (a low or a high
    input gain)."""
    return signal * (10.0 ** (peak_dbfs / 20.0) / np.max(np.abs(signal)))


def one_silent_channel(signal: np.ndarray) -> np.ndarray:
    """Stereo with the speech on the first channel and the second silent (a mono microphone
    on one input of a stereo sound card): shape ``(n, 2)``."""
    return np.column_stack([signal, np.zeros_like(signal)])


def babble(others: Sequence[np.ndarray], n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Babble noise: :data:`BABBLE_TALKERS` clips of ``others`` (drawn without replacement), each
    at the same speech level (:func:`~ser_classic.augmentation.speech_power`), looped and started
    at a random point, summed. Shape ``(n_samples,)``."""
    chosen = rng.choice(len(others), size=min(BABBLE_TALKERS, len(others)), replace=False)
    crowd = np.zeros(n_samples)
    for index in chosen:
        talker = np.asarray(others[index], dtype=np.float64)
        talker = talker / np.sqrt(speech_power(talker))
        looped = np.tile(talker, n_samples // talker.size + 2)
        start = int(rng.integers(0, looped.size - n_samples))
        crowd += looped[start : start + n_samples]
    return crowd


def _noise(kind: str, snr_db: float) -> Callable[[np.ndarray, int, np.random.Generator, Sequence[np.ndarray]], np.ndarray]:
    def apply(signal: np.ndarray, sample_rate: int, rng: np.random.Generator, others: Sequence[np.ndarray]) -> np.ndarray:
        noise = babble(others, signal.size, rng) if kind == "babble" else None
        color = "pink" if kind == "pink" else "white"
        return add_noise(signal, snr_db, rng=rng, color=color, noise=noise)  # type: ignore[arg-type]

    return apply


@dataclass(frozen=True)
class Condition:
    """A defect and how it is made.

    Attributes
    ----------
    name : str
        As tables show it ("60 Hz hum, -20 dB").
    description : str
        Where it comes from, for people.
    apply : callable
        ``(signal, sample_rate, rng, others) -> signal``: see the module docstring.
    """

    name: str
    description: str
    apply: Callable[[np.ndarray, int, np.random.Generator, Sequence[np.ndarray]], np.ndarray]


#: The defects of the robustness table, by name, in table order. SNRs are against the speech's
#: own level (:func:`~ser_classic.augmentation.speech_power`), not the whole clip's.
CONDITIONS: dict[str, Condition] = {
    condition.name: condition
    for condition in (
        Condition("DC offset +0.05", "cheap USB sound cards, some phones", lambda x, sr, rng, o: x + 0.05),
        Condition("DC offset, 0.5x + 0.4", "a large offset at half the level", lambda x, sr, rng, o: 0.5 * x + 0.4),
        Condition("50 Hz hum, -10 dB", "mains hum 10 dB below the speech's peak", lambda x, sr, rng, o: add_hum(x, sr, 50.0, 10.0)),
        Condition("60 Hz hum, -20 dB", "mains hum 20 dB below the speech's peak", lambda x, sr, rng, o: add_hum(x, sr, 60.0, 20.0)),
        Condition("one click", "20 samples at 0.99 in the middle", lambda x, sr, rng, o: add_click(x)),
        Condition("white noise, 20 dB SNR", "a quiet office", _noise("white", 20.0)),
        Condition("white noise, 10 dB SNR", "a busy room", _noise("white", 10.0)),
        Condition("pink noise, 20 dB SNR", "fans, air conditioning", _noise("pink", 20.0)),
        Condition("pink noise, 10 dB SNR", "fans, air conditioning, loud", _noise("pink", 10.0)),
        Condition("babble, 20 dB SNR", f"{BABBLE_TALKERS} other talkers", _noise("babble", 20.0)),
        Condition("babble, 10 dB SNR", f"{BABBLE_TALKERS} other talkers, loud", _noise("babble", 10.0)),
        Condition("peak -40 dBFS", "a low input gain", lambda x, sr, rng, o: scale_to_peak(x, -40.0)),
        Condition("peak -1 dBFS", "a high input gain", lambda x, sr, rng, o: scale_to_peak(x, -1.0)),
        Condition("stereo, one channel silent", "a mono microphone on a stereo input", lambda x, sr, rng, o: one_silent_channel(x)),
    )
}
