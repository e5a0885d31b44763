"""Pictures of one recording for people: waveform, mel spectrogram, F0 contour, and why the
model gave it its emotion (:func:`explanation_figure`).

:func:`signal_tracks` takes what the pictures show from the feature extractor itself (its
trimming, its one STFT and pitch track, its voicing rule; reused when the features were just
computed), so a picture shows what the model's features were computed from. The ``*_figure`` functions only draw; they use
matplotlib's object API (no pyplot state), so several threads can draw at once, and return a
:class:`matplotlib.figure.Figure` to show or ``savefig``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .features.config import FeatureConfig

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .explanation import Explanation
    from .features.extractor import ClipFrames

__all__ = ["SignalTracks", "signal_tracks", "waveform_figure", "mel_spectrogram_figure", "f0_figure", "explanation_figure"]

#: Width and height (inches) of every signal picture; they stack in a column on one page.
FIGURE_SIZE = (10.0, 2.5)
#: Dynamic range shown by the mel spectrogram (dB below its reference level).
MEL_RANGE_DB = 80.0
#: Points per waveform envelope: long recordings are drawn as min/max per bin, not per sample.
ENVELOPE_POINTS = 2000


@dataclass(frozen=True)
class SignalTracks:
    """Frame-wise views of one mono signal: the frames of the extractor's STFT of the part it keeps.

    Attributes
    ----------
    signal : np.ndarray [shape=(n,)]
        The signal in the speech band (:func:`~ser_classic.features.conditioning.speech_band`:
        offset, hum and rumble removed) at ``config.sample_rate``: what the features see.
    config : FeatureConfig
        The settings the tracks were computed with.
    frame_seconds : np.ndarray [shape=(n_frames,)]
        Centre time of each frame, from the start of ``signal`` (frames cover ``kept_seconds``).
    mel_db : np.ndarray [shape=(n_mels, n_frames)]
        Mel power spectrogram in dB relative to its strong bands (the extractor's reference:
        the 95th percentile of the frames' strongest band), floored at ``-MEL_RANGE_DB``.
    f0_hz : np.ndarray [shape=(n_frames,)]
        F0 estimate on voiced frames, NaN elsewhere.
    voiced : np.ndarray [shape=(n_frames,), dtype=bool]
        The extractor's voicing rule applied to each frame (``voiced_fraction`` is its mean).
    kept_seconds : tuple of float
        ``(start, end)`` of the part the extractor keeps after trimming silence (see
        :func:`~ser_classic.features.conditioning.speech_bounds`).
    """

    signal: np.ndarray
    config: FeatureConfig
    frame_seconds: np.ndarray
    mel_db: np.ndarray
    f0_hz: np.ndarray
    voiced: np.ndarray
    kept_seconds: tuple[float, float]

    @property
    def duration_seconds(self) -> float:
        return self.signal.shape[0] / self.config.sample_rate


def signal_tracks(signal: np.ndarray, config: FeatureConfig | None = None, *, frames: ClipFrames | None = None) -> SignalTracks:
    """Mel spectrogram, F0 and voicing of the part of a mono signal the extractor keeps.

    The frames are the feature extractor's own (:func:`~ser_classic.features.extractor.extract_frames`
    of the signal): the pictures show what the features summarize.

    Parameters
    ----------
    signal : np.ndarray [shape=(n,)]
        Finite mono signal at ``config.sample_rate``, as decoded.
    config : FeatureConfig, optional
        Extractor settings (those of the model in use); the defaults when ``None``.
    frames : ClipFrames, optional
        ``extract_frames(signal, config)[1]`` when already computed; computed when ``None``.

    Raises
    ------
    AudioError
        Less than :data:`ser_classic.audio.MIN_DURATION_SECONDS` is left after trimming.
    """
    from .features.conditioning import speech_band
    from .features.extractor import extract_frames

    config = config or FeatureConfig()
    frames = frames if frames is not None else extract_frames(signal, config)[1]
    start, end = frames.kept
    frame_samples = start + config.hop_length * np.arange(frames.voiced.size)
    return SignalTracks(
        signal=speech_band(signal, config),
        config=config,
        frame_seconds=frame_samples / config.sample_rate,
        mel_db=np.maximum(frames.mel_db, -MEL_RANGE_DB),
        f0_hz=np.where(frames.voiced, frames.f0_hz, np.nan),
        voiced=frames.voiced,
        kept_seconds=(start / config.sample_rate, end / config.sample_rate),
    )


def _new_axes(*, colorbar: bool = False) -> tuple[Figure, Any, Any]:
    """A figure with fixed margins (a layout engine would cost more than the drawing), its axes,
    and an axes for a colour bar on the right when asked, else ``None``."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGURE_SIZE, dpi=100)
    right = 0.9 if colorbar else 0.98
    axes = figure.add_axes((0.075, 0.19, right - 0.075, 0.71))
    bar = figure.add_axes((right + 0.01, 0.19, 0.012, 0.71)) if colorbar else None
    return figure, axes, bar


def _envelope(signal: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(seconds, lower, upper)``: min and max of the signal in up to :data:`ENVELOPE_POINTS` bins."""
    n_bins = min(ENVELOPE_POINTS, signal.shape[0])
    edges = np.linspace(0, signal.shape[0], n_bins + 1).astype(int)
    lower = np.minimum.reduceat(signal, edges[:-1])
    upper = np.maximum.reduceat(signal, edges[:-1])
    return edges[:-1] / sample_rate, lower, upper


def waveform_figure(tracks: SignalTracks) -> Figure:
    """Waveform with the part kept after trimming shaded and voiced frames marked beneath it."""
    figure, axes, _ = _new_axes()
    seconds, lower, upper = _envelope(tracks.signal, tracks.config.sample_rate)
    axes.fill_between(seconds, lower, upper, color="#3b6ea8", linewidth=0.6, step="post")
    start, end = tracks.kept_seconds
    trim_label = "kept after trimming" if tracks.config.trim_db is None else f"kept after trimming ({tracks.config.trim_db:g} dB)"
    axes.axvspan(start, end, color="#f2c14e", alpha=0.25, label=trim_label)
    peak = float(np.max(np.abs(tracks.signal))) or 1.0
    voiced_level = np.where(tracks.voiced, -1.12 * peak, np.nan)
    axes.plot(tracks.frame_seconds, voiced_level, color="#2a9d5c", linewidth=4, solid_capstyle="butt", label="voiced frames")
    axes.set_xlim(0, tracks.duration_seconds)
    axes.set_ylim(-1.25 * peak, 1.1 * peak)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("amplitude")
    axes.set_title("Waveform", fontsize=10)
    axes.legend(loc="upper right", fontsize=8, framealpha=0.8)
    return figure


def mel_spectrogram_figure(tracks: SignalTracks) -> Figure:
    """Mel spectrogram (dB) with a frequency axis in Hz, drawn as ``librosa.display.specshow(...,
    y_axis="mel")`` draws it (a mesh on the bands' centre frequencies, a symmetric-log axis
    linear below 1 kHz), without importing librosa: its numba kernels would cost the demo's
    server about 140 MB."""
    from matplotlib import ticker

    from .features.dsp import mel_frequencies

    figure, axes, bar = _new_axes(colorbar=True)
    config = tracks.config
    centres = mel_frequencies(config.n_mels, config.sample_rate / 2)
    image = axes.pcolormesh(tracks.frame_seconds, centres, tracks.mel_db, cmap="magma", shading="auto", rasterized=True, edgecolors="none")
    axes.set_yscale("symlog", base=2, linthresh=1000.0)
    axes.yaxis.set_major_formatter(ticker.ScalarFormatter())
    axes.yaxis.set_major_locator(ticker.SymmetricalLogLocator(axes.yaxis.get_transform()))
    axes.set_ylabel("Hz")
    figure.colorbar(image, cax=bar, format="%+.0f dB")
    axes.set_xlim(0, tracks.duration_seconds)
    axes.set_xlabel("time (s)")
    axes.set_title(f"Mel spectrogram ({config.n_mels} bands) of the part kept after trimming", fontsize=10)
    return figure


def f0_figure(tracks: SignalTracks) -> Figure:
    """F0 contour over voiced frames, on the pitch tracker's search range."""
    figure, axes, _ = _new_axes()
    axes.plot(tracks.frame_seconds, tracks.f0_hz, color="#c0392b", linewidth=1.5)
    voiced_f0 = tracks.f0_hz[tracks.voiced]
    if voiced_f0.size:
        median = float(np.median(voiced_f0))
        axes.axhline(median, color="grey", linestyle="--", linewidth=0.8, label=f"median {median:.0f} Hz")
        axes.legend(loc="upper right", fontsize=8)
        title = f"F0 contour ({100 * tracks.voiced.mean():.0f}% of frames voiced)"
    else:
        title = "F0 contour (no voiced frames found)"
    axes.set_xlim(0, tracks.duration_seconds)
    axes.set_ylim(tracks.config.f0_min_hz, tracks.config.f0_max_hz)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("F0 (Hz)")
    axes.set_title(title, fontsize=10)
    return figure


def explanation_figure(explanation: Explanation) -> Figure:
    """Horizontal bars: how much each feature group moved the predicted emotion's probability
    (:attr:`~ser_classic.explanation.Explanation.groups`), the largest at the top."""
    from matplotlib.figure import Figure

    groups = list(explanation.groups)[::-1]
    values = np.array([explanation.groups[group] for group in groups])
    height = 0.25 * len(groups) + 1.0  # inches: a bar each, and room for the title and axis label
    figure = Figure(figsize=(FIGURE_SIZE[0], height), dpi=100)
    axes = figure.add_axes((0.22, 0.7 / height, 0.74, 1 - 1.1 / height))
    axes.barh(groups, values, color=np.where(values >= 0, "#c0392b", "#3b6ea8"))
    axes.axvline(0.0, color="grey", linewidth=0.8)
    emotion = explanation.emotion
    axes.set_xlabel(f"change of p({emotion}) from {explanation.baseline:.2f}, the average reference clip")
    axes.set_title(f"Why {emotion} ({explanation.probability:.2f}): feature groups", fontsize=10)
    axes.tick_params(axis="y", labelsize=9)
    return figure
