"""Training-only data augmentation: signal in, perturbed signal out, at the analysis rate.

Each transform is a pure function of a mono float signal (and, where it draws random numbers,
of a :class:`numpy.random.Generator` passed in): the same input and the same generator state
give the same output. :func:`augment` makes ``n_copies`` perturbed copies of a clip from a named
recipe in :data:`RECIPES`.

Augmented copies belong in training folds only: a test clip, and any copy of it, must never be
seen in training (``benchmarks/augmentation.py`` measures whether augmentation helps at all).

Transforms
----------
- :func:`add_noise`: white or pink Gaussian noise (or a noise recording) at an exact
  speech-to-noise ratio (dB).
- :func:`apply_gain`: a level change in dB.
- :func:`change_speed`: resampling that changes tempo and pitch together, as the "speed
  perturbation" of Kaldi (sox ``speed``); cheap.
- :func:`shift_pitch`: phase vocoder + resampling, as ``librosa.effects.pitch_shift``; pitch only.
- :func:`stretch_time`: phase vocoder, as ``librosa.effects.time_stretch``; tempo only.
- :func:`mask_band`: zeroes one frequency band in the STFT domain and resynthesizes the signal,
  a waveform version of SpecAugment's frequency masking.
- :func:`speech_prefix`: the first seconds of a clip's speech, as a live analyser hears an
  utterance that has just begun; such a copy is described as a window inside speech
  (:meth:`Recipe.within_speech`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .audio import ANALYSIS_SAMPLE_RATE
from .errors import SERError

__all__ = [
    "RECIPES",
    "RECIPES_VERSION",
    "AugmentationError",
    "Recipe",
    "Step",
    "add_noise",
    "speech_power",
    "apply_gain",
    "augment",
    "chain",
    "change_speed",
    "mask_band",
    "pink_noise",
    "shift_pitch",
    "speech_prefix",
    "stretch_time",
]


class AugmentationError(SERError):
    """An augmentation asked for something impossible (bad parameter, silent signal, unknown recipe)."""


def _as_signal(signal: np.ndarray) -> np.ndarray:
    array = np.asarray(signal)
    if array.ndim != 1 or array.size == 0:
        raise AugmentationError(f"a non-empty mono signal is needed, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise AugmentationError(f"a floating-point signal is needed, got dtype {array.dtype}")
    return array


#: Frames within this many dB of a clip's loud frames are its speech (:func:`speech_power`).
SPEECH_RANGE_DB = 30.0


def _power(signal: np.ndarray) -> float:
    return float(np.mean(np.square(signal, dtype=np.float64)))


def pink_noise(n_samples: int, *, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with a 1/f power spectrum (-3 dB per octave), zero mean, unit power.

    Parameters
    ----------
    n_samples : int
    rng : numpy.random.Generator

    Returns
    -------
    np.ndarray [shape=(n_samples,), dtype=float64]
    """
    if n_samples < 2:
        raise AugmentationError(f"pink noise needs at least 2 samples, got {n_samples}")
    spectrum = np.fft.rfft(rng.standard_normal(n_samples))
    frequencies = np.arange(spectrum.size, dtype=np.float64)
    spectrum[0] = 0.0
    spectrum[1:] /= np.sqrt(frequencies[1:])
    noise = np.fft.irfft(spectrum, n=n_samples)
    return noise / np.sqrt(_power(noise))


def speech_power(signal: np.ndarray) -> float:
    """Mean square of the signal's speech: of its frames (those of
    :func:`~ser_classic.features.conditioning.frame_levels_db`) whose level is within
    :data:`SPEECH_RANGE_DB` of the 95th percentile of frame levels. Pauses and leading or trailing
    silence do not count, as in the active speech level of ITU-T P.56: an SNR set against it
    means the same for a clip with long pauses as for one without.
    """
    from .features.conditioning import frame_levels_db

    levels = frame_levels_db(np.asarray(signal, dtype=np.float64))
    active = levels >= np.percentile(levels, 95.0) - SPEECH_RANGE_DB
    return float(np.mean(10.0 ** (levels[active] / 10.0)))


def add_noise(
    signal: np.ndarray,
    snr_db: float,
    *,
    rng: np.random.Generator,
    color: Literal["white", "pink"] = "white",
    noise: np.ndarray | None = None,
) -> np.ndarray:
    """The signal plus noise scaled so that the speech-to-noise ratio is exactly ``snr_db``.

    SNR is ``10 log10(P_speech / P_noise)``, the speech's power measured over its active frames
    (:func:`speech_power`), the noise's over the whole clip.

    Parameters
    ----------
    signal : np.ndarray [shape=(n,), float]
    snr_db : float
        Signal-to-noise ratio in dB; 20 dB is a quiet office, 10 dB a busy room.
    rng : numpy.random.Generator
        Source of the noise samples.
    color : {"white", "pink"}
        Gaussian noise with a flat spectrum, or 1/f (more low-frequency energy, closer to room noise).
    noise : np.ndarray [shape=(n,)], optional
        A noise recording (babble, traffic, ...) to add instead of Gaussian noise; ``color`` is
        then ignored.

    Returns
    -------
    np.ndarray [shape=(n,)], same dtype as ``signal``

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> tone = np.sin(2 * np.pi * 220 * np.arange(22050) / 22050).astype(np.float32)
    >>> noisy = add_noise(tone, 20.0, rng=rng)
    >>> float(round(10 * np.log10(speech_power(tone) / np.mean((noisy - tone) ** 2)), 1))
    20.0
    """
    signal = _as_signal(signal)
    if not np.any(signal):
        raise AugmentationError("cannot set an SNR on a silent signal")
    power = speech_power(signal)
    if noise is not None:
        noise = np.asarray(noise, dtype=np.float64).copy()
        if noise.shape != signal.shape or _power(noise) == 0.0:
            raise AugmentationError(f"the noise must be a non-silent signal of the clip's shape {signal.shape}, got {noise.shape}")
    elif color == "white":
        noise = rng.standard_normal(signal.size)
    elif color == "pink":
        noise = pink_noise(signal.size, rng=rng)
    else:
        raise AugmentationError(f"unknown noise color {color!r}; choose 'white' or 'pink'")
    noise *= np.sqrt(power / (_power(noise) * 10.0 ** (snr_db / 10.0)))
    return (signal.astype(np.float64) + noise).astype(signal.dtype)


def apply_gain(signal: np.ndarray, gain_db: float) -> np.ndarray:
    """The signal multiplied by ``10 ** (gain_db / 20)``; no clipping (features see floats).

    Parameters
    ----------
    signal : np.ndarray [shape=(n,), float]
    gain_db : float
        Positive is louder.

    Returns
    -------
    np.ndarray [shape=(n,)], same dtype as ``signal``
    """
    signal = _as_signal(signal)
    return (signal.astype(np.float64) * 10.0 ** (gain_db / 20.0)).astype(signal.dtype)


def change_speed(signal: np.ndarray, factor: float, *, sample_rate: int = ANALYSIS_SAMPLE_RATE) -> np.ndarray:
    """Play the signal ``factor`` times faster: duration divided and pitch multiplied by ``factor``.

    The signal is treated as if sampled at ``round(sample_rate * factor)`` Hz and resampled to
    ``sample_rate`` (soxr, high quality), like ``sox speed`` in Kaldi's speed perturbation
    (factors 0.9 and 1.1 there). Far cheaper than :func:`shift_pitch` or :func:`stretch_time`.

    Parameters
    ----------
    signal : np.ndarray [shape=(n,), float]
    factor : float
        Above 1 is faster and higher; 1.1 raises the pitch by about 1.65 semitones.
    sample_rate : int
        Rate of ``signal`` (Hz).

    Returns
    -------
    np.ndarray [shape=(about n / factor,)], same dtype as ``signal``
    """
    import soxr

    signal = _as_signal(signal)
    if not 0.5 <= factor <= 2.0:
        raise AugmentationError(f"speed factor must be within [0.5, 2], got {factor}")
    source_rate = round(sample_rate * factor)
    if source_rate == sample_rate:
        return signal.copy()
    return soxr.resample(signal, source_rate, sample_rate, quality="HQ").astype(signal.dtype)


def shift_pitch(signal: np.ndarray, semitones: float, *, sample_rate: int = ANALYSIS_SAMPLE_RATE) -> np.ndarray:
    """The signal with its pitch moved by ``semitones`` and its duration kept.

    The algorithm of ``librosa.effects.pitch_shift``: a phase-vocoder time stretch by
    ``2 ** (-semitones / 12)``, then resampling (soxr, high quality) back to the original
    length. Built from ``librosa.stft``/``phase_vocoder``/``istft`` because importing
    ``librosa.effects`` also imports scikit-learn's decomposition module (seconds of start-up).
    About 7 ms per second of audio.

    Parameters
    ----------
    signal : np.ndarray [shape=(n,), float]
    semitones : float
        Positive is higher; speech augmentation commonly uses 1-2 semitones either way.
    sample_rate : int
        Rate of ``signal`` (Hz).

    Returns
    -------
    np.ndarray [shape=(n,)], same dtype as ``signal``
    """
    import soxr

    signal = _as_signal(signal)
    if abs(semitones) > 12:
        raise AugmentationError(f"pitch shift must be within one octave, got {semitones} semitones")
    rate = 2.0 ** (-semitones / 12.0)
    stretched = _phase_vocoder_stretch(signal.astype(np.float64), rate)
    shifted = soxr.resample(stretched, sample_rate / rate, sample_rate, quality="HQ")
    return _fit_length(shifted, signal.size).astype(signal.dtype)


def _phase_vocoder_stretch(signal: np.ndarray, rate: float, *, n_fft: int = 2048, hop_length: int = 512) -> np.ndarray:
    """``librosa.effects.time_stretch``: STFT, phase vocoder, inverse STFT to ``round(n / rate)``."""
    import librosa

    spectrum = librosa.stft(signal, n_fft=n_fft, hop_length=hop_length)
    stretched = librosa.phase_vocoder(spectrum, rate=rate, hop_length=hop_length, n_fft=n_fft)
    return librosa.istft(stretched, hop_length=hop_length, n_fft=n_fft, length=int(round(signal.size / rate)))


def _fit_length(signal: np.ndarray, n_samples: int) -> np.ndarray:
    if signal.size >= n_samples:
        return signal[:n_samples]
    return np.pad(signal, (0, n_samples - signal.size))


def stretch_time(signal: np.ndarray, rate: float) -> np.ndarray:
    """The signal played ``rate`` times faster with its pitch kept (the phase-vocoder algorithm
    of ``librosa.effects.time_stretch``, Hann window, 2048-sample frames, hop 512).

    Parameters
    ----------
    signal : np.ndarray [shape=(n,), float]
    rate : float
        Above 1 is faster (shorter); 0.8-1.25 keeps speech natural.

    Returns
    -------
    np.ndarray [shape=(round(n / rate),)], same dtype as ``signal``
    """
    signal = _as_signal(signal)
    if not 0.5 <= rate <= 2.0:
        raise AugmentationError(f"time-stretch rate must be within [0.5, 2], got {rate}")
    return _phase_vocoder_stretch(signal.astype(np.float64), rate).astype(signal.dtype)


def mask_band(
    signal: np.ndarray,
    low_hz: float,
    high_hz: float,
    *,
    sample_rate: int = ANALYSIS_SAMPLE_RATE,
    n_fft: int = 1024,
    hop_length: int = 256,
) -> np.ndarray:
    """The signal with the band ``[low_hz, high_hz]`` removed: STFT, zero the band's bins,
    inverse STFT to the original length.

    Parameters
    ----------
    signal : np.ndarray [shape=(n,), float]
    low_hz, high_hz : float
        Edges of the band, ``0 <= low_hz < high_hz <= sample_rate / 2``.
    sample_rate : int
        Rate of ``signal`` (Hz).
    n_fft, hop_length : int
        STFT frame and hop in samples (Hann window).

    Returns
    -------
    np.ndarray [shape=(n,)], same dtype as ``signal``
    """
    import librosa

    signal = _as_signal(signal)
    if not 0.0 <= low_hz < high_hz <= sample_rate / 2:
        raise AugmentationError(f"band [{low_hz}, {high_hz}] Hz is not inside [0, {sample_rate / 2}] Hz")
    spectrum = librosa.stft(signal.astype(np.float64), n_fft=n_fft, hop_length=hop_length)
    frequencies = librosa.fft_frequencies(sr=sample_rate, n_fft=n_fft)
    spectrum[(frequencies >= low_hz) & (frequencies <= high_hz), :] = 0.0
    restored = librosa.istft(spectrum, hop_length=hop_length, n_fft=n_fft, length=signal.size)
    return restored.astype(signal.dtype)


def speech_prefix(signal: np.ndarray, seconds: float, *, sample_rate: int = ANALYSIS_SAMPLE_RATE) -> np.ndarray:
    """The first ``seconds`` of the clip's speech (all of it when shorter): the signal cut at the
    start of its speech (:func:`~ser_classic.features.conditioning.speech_bounds` in the speech
    band), as ``ser listen`` hears an utterance ``seconds`` after it began.

    Parameters
    ----------
    signal : np.ndarray [shape=(n,), float]
    seconds : float
        Length of the prefix, > 0.
    sample_rate : int
        Rate of ``signal`` (Hz).

    Returns
    -------
    np.ndarray [shape=(at most seconds * sample_rate,)], same dtype as ``signal``
    """
    from .features.conditioning import speech_band, speech_bounds
    from .features.config import FeatureConfig

    signal = _as_signal(signal)
    if seconds <= 0:
        raise AugmentationError(f"a speech prefix must be longer than 0 s, got {seconds}")
    config = FeatureConfig(sample_rate=sample_rate)
    start, end = speech_bounds(speech_band(signal, config), config)
    return signal[start : min(end, start + round(seconds * sample_rate))].copy()


def _mel_band(rng: np.random.Generator, sample_rate: int, max_width: float) -> tuple[float, float]:
    """A band drawn uniformly on the mel scale, of width up to ``max_width`` of the mel axis
    (as SpecAugment draws its frequency masks on mel bins)."""
    import librosa

    top_mel = float(librosa.hz_to_mel(sample_rate / 2))
    width = rng.uniform(0.0, max_width) * top_mel
    low = rng.uniform(0.0, top_mel - width)
    low_hz, high_hz = librosa.mel_to_hz(np.array([low, low + width]))
    return float(low_hz), float(min(high_hz, sample_rate / 2))


# ---------------------------------------------------------------------------------------------
# Recipes


@dataclass(frozen=True)
class Step:
    """One transform of a recipe and how its parameter is chosen.

    Attributes
    ----------
    kind : {"noise", "gain", "speed", "pitch", "stretch", "mask", "prefix"}
    cycle : tuple of float
        Copy ``k`` of a clip uses ``cycle[k % len(cycle)]`` (speed 0.9 then 1.1, ...): every
        clip's copy ``k`` then shares one condition, a "virtual speaker" for per-speaker
        normalization. Empty when the parameter is drawn at random instead. With ``copies``,
        ``k`` counts only those copies. For ``prefix``, the prefix's length in seconds.
    low, high : float
        Range of a uniformly drawn parameter (SNR in dB, gain in dB, |semitones|, mask width as
        a fraction of the mel axis), when ``cycle`` is empty. For ``pitch`` with a cycle, the
        cycle gives the sign and the magnitude is drawn from ``[low, high]``.
    probability : float
        Chance that the step is applied to a copy at all.
    copies : tuple of int
        The copies (0-based) the step applies to; every copy when empty. A recipe can so make
        different kinds of copy of one clip (clean speed copies beside a noisy one).
    """

    kind: str
    cycle: tuple[float, ...] = ()
    low: float = 0.0
    high: float = 0.0
    probability: float = 1.0
    copies: tuple[int, ...] = ()

    def applies_to(self, copy_index: int) -> bool:
        """Whether copy ``copy_index`` of a clip goes through this step (before ``probability``)."""
        return not self.copies or copy_index in self.copies


@dataclass(frozen=True)
class Recipe:
    """A named chain of :class:`Step`, applied in order to each of ``n_copies`` copies of a clip."""

    name: str
    steps: tuple[Step, ...]
    description: str = ""
    n_copies: int = 2

    def to_dict(self) -> dict[str, Any]:
        """Plain description, as stored in cache keys and reports."""
        steps = [{key: value for key, value in vars(step).items() if key != "copies" or value} for step in self.steps]
        return {"name": self.name, "n_copies": self.n_copies, "steps": steps}

    def within_speech(self, copy_index: int) -> bool:
        """Whether copy ``copy_index`` is a piece of speech (a :func:`speech_prefix`), to be
        described as a window inside speech is (``extract_vector(..., within_speech=True)``)."""
        return any(step.kind == "prefix" and step.applies_to(copy_index) for step in self.steps)

    def digest(self) -> str:
        """Short hash of :meth:`to_dict` (and of :data:`RECIPES_VERSION`)."""
        text = json.dumps({"version": RECIPES_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


#: Bumped whenever a transform's computation changes, so that cached augmented features are not reused.
RECIPES_VERSION = "2"

#: The standard settings, fixed before any result was seen: SNR 15-30 dB, gain within 6 dB,
#: Kaldi's speed factors 0.9 and 1.1, pitch 1-2 semitones down then up, tempo 0.9 and 1.1,
#: two SpecAugment-style frequency masks each up to 10 % of the mel axis. ``speed-noise`` and
#: ``speed-prefix`` (the default of ``ser train``) combine them as measurements chose
#: (docs/robustness.md, docs/development.md "Which training copies").
RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe("noise", (Step("noise", low=5.0, high=30.0),), "white or pink noise, SNR 5-30 dB"),
        Recipe("gain", (Step("gain", low=-6.0, high=6.0),), "gain -6 to +6 dB"),
        Recipe("speed", (Step("speed", cycle=(0.9, 1.1)),), "speed perturbation x0.9, x1.1 (tempo and pitch)"),
        Recipe("pitch", (Step("pitch", cycle=(-1.0, 1.0), low=1.0, high=2.0),), "pitch shift 1-2 semitones down, up"),
        Recipe("stretch", (Step("stretch", cycle=(0.9, 1.1)),), "time stretch x0.9, x1.1 (tempo only)"),
        Recipe("mask", (Step("mask", low=0.0, high=0.1), Step("mask", low=0.0, high=0.1)),
               "two frequency masks, each up to 10 % of the mel axis"),
        Recipe(
            "speed-noise",
            (Step("speed", cycle=(1.0, 0.9, 1.1)), Step("noise", low=5.0, high=30.0)),
            "three copies with white or pink noise at an SNR of 5-30 dB, the second and third first "
            "at speed x0.9 and x1.1",
            n_copies=3,
        ),
        Recipe(
            "speed-prefix",
            (
                Step("speed", cycle=(0.9, 1.1), copies=(0, 1)),
                Step("noise", low=5.0, high=30.0, copies=(2,)),
                Step("prefix", cycle=(0.75, 1.5), copies=(3, 4)),
            ),
            "five copies: at speed x0.9 and x1.1; one with white or pink noise at an SNR of 5-30 dB; "
            "the first 0.75 s and 1.5 s of the clip's speech, as a live window hears an utterance begin",
            n_copies=5,
        ),
        Recipe(
            "mix",
            (
                Step("speed", cycle=(0.9, 1.1)),
                Step("gain", low=-6.0, high=6.0),
                Step("noise", low=15.0, high=30.0, probability=0.5),
                Step("mask", low=0.0, high=0.1, probability=0.5),
            ),
            "speed x0.9/x1.1, then gain +-6 dB, noise SNR 15-30 dB (half the copies), "
            "one frequency mask (half the copies)",
        ),
    )
}


def _apply_step(
    signal: np.ndarray, step: Step, copy_index: int, rng: np.random.Generator, sample_rate: int
) -> np.ndarray:
    position = step.copies.index(copy_index) if step.copies else copy_index
    cycled = step.cycle[position % len(step.cycle)] if step.cycle else None
    if step.kind == "noise":
        color = "pink" if rng.random() < 0.5 else "white"
        return add_noise(signal, rng.uniform(step.low, step.high), rng=rng, color=color)
    if step.kind == "gain":
        return apply_gain(signal, rng.uniform(step.low, step.high) if cycled is None else cycled)
    if step.kind == "speed":
        return change_speed(signal, rng.uniform(step.low, step.high) if cycled is None else cycled, sample_rate=sample_rate)
    if step.kind == "pitch":
        magnitude = rng.uniform(step.low, step.high)
        sign = (1.0 if rng.random() < 0.5 else -1.0) if cycled is None else np.sign(cycled)
        return shift_pitch(signal, sign * magnitude, sample_rate=sample_rate)
    if step.kind == "stretch":
        return stretch_time(signal, rng.uniform(step.low, step.high) if cycled is None else cycled)
    if step.kind == "mask":
        low_hz, high_hz = _mel_band(rng, sample_rate, step.high)
        if high_hz <= low_hz:  # a zero-width draw masks nothing
            return signal
        return mask_band(signal, low_hz, high_hz, sample_rate=sample_rate)
    if step.kind == "prefix":
        if cycled is None:
            raise AugmentationError("a prefix step needs its lengths in seconds as its cycle")
        return speech_prefix(signal, cycled, sample_rate=sample_rate)
    raise AugmentationError(f"unknown augmentation step {step.kind!r}")


_STEP_KINDS: tuple[str, ...] = ("noise", "gain", "speed", "pitch", "stretch", "mask", "prefix")


def augment(
    signal: np.ndarray,
    recipe: str | Recipe,
    *,
    n_copies: int,
    rng: np.random.Generator,
    sample_rate: int = ANALYSIS_SAMPLE_RATE,
) -> list[np.ndarray]:
    """``n_copies`` augmented copies of a clip, each the recipe's steps applied in order.

    Parameters
    ----------
    signal : np.ndarray [shape=(n,), float]
        A mono clip at ``sample_rate``.
    recipe : str or Recipe
        A name in :data:`RECIPES`, or a :class:`Recipe`.
    n_copies : int
        Copies to make; copy ``k`` uses the ``k``-th value of each step's cycle.
    rng : numpy.random.Generator
        Every random draw comes from it, in a fixed order: the same generator state gives the
        same copies. Seed it per clip (e.g. from the clip's name) to make copies independent
        of the order clips are processed in.
    sample_rate : int
        Rate of ``signal`` and of the copies (Hz).

    Returns
    -------
    list of np.ndarray
        ``n_copies`` signals, same dtype as ``signal``; lengths change with speed and stretch.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> tone = np.sin(2 * np.pi * 220 * np.arange(22050) / 22050).astype(np.float32)
    >>> [copy.size for copy in augment(tone, "speed", n_copies=2, rng=rng)]
    [24500, 20045]
    """
    signal = _as_signal(signal)
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise AugmentationError(f"unknown augmentation recipe {recipe!r}; choose from {sorted(RECIPES)}")
        recipe = RECIPES[recipe]
    if n_copies < 0:
        raise AugmentationError(f"n_copies must be at least 0, got {n_copies}")
    for step in recipe.steps:
        if step.kind not in _STEP_KINDS:
            raise AugmentationError(f"unknown augmentation step {step.kind!r} in recipe {recipe.name!r}")
    copies = []
    for copy_index in range(n_copies):
        copy = signal
        for step in recipe.steps:
            if not step.applies_to(copy_index) or (step.probability < 1.0 and rng.random() >= step.probability):
                continue
            copy = _apply_step(copy, step, copy_index, rng, sample_rate)
        copies.append(copy if copy is not signal else signal.copy())
    return copies


def chain(name: str, recipes: Sequence[str | Recipe], description: str = "") -> Recipe:
    """A recipe applying the steps of ``recipes`` in turn (e.g. the singles found to help)."""
    steps: list[Step] = []
    for recipe in recipes:
        steps.extend((RECIPES[recipe] if isinstance(recipe, str) else recipe).steps)
    return Recipe(name, tuple(steps), description or " + ".join(r if isinstance(r, str) else r.name for r in recipes))

