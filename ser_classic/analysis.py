"""One recording analysed from one decode: its emotion, the frames behind it, its emotion over time.

:func:`analyze_clip` is what the demo (:mod:`ser_classic.demo`) shows, as one library call:
the row ``ser predict`` gives the file, the frame tracks of the signal pictures
(:mod:`ser_classic.plots`) and, for a recording longer than one window, its timeline
(:mod:`ser_classic.timeline`). The file is decoded once; the clip's features and its pictures
come from one STFT and one pitch track; the timeline's windows are cut from the decoded signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np

from . import audio
from .errors import AudioError, ModelError
from .features.extractor import extract_frames
from .plots import SignalTracks, signal_tracks
from .prediction import NO_SPEECH, classify_vector, speech_check

if TYPE_CHECKING:
    import pandas as pd

    from .explanation import Explanation
    from .models import Model

__all__ = ["ClipAnalysis", "analyze_clip"]


@dataclass(frozen=True)
class ClipAnalysis:
    """One recording as :func:`analyze_clip` found it.

    Attributes
    ----------
    row : dict
        The row ``ser predict`` gives the file (:func:`~ser_classic.prediction.predict_files`):
        ``path, emotion, confidence, p_<class>..., error``. Without speech, the emotion is
        :data:`~ser_classic.prediction.NO_SPEECH`, there are no probabilities and ``error`` says why.
    tracks : SignalTracks
        The decoded signal and the frames its features were computed from, for
        :func:`~ser_classic.plots.waveform_figure`, :func:`~ser_classic.plots.mel_spectrogram_figure`
        and :func:`~ser_classic.plots.f0_figure`.
    timeline : pandas.DataFrame or None
        :func:`~ser_classic.timeline.timeline` of the signal when it holds speech and is longer
        than one window, else ``None``.
    explanation : Explanation or None
        Why the model chose the row's emotion (:func:`~ser_classic.explanation.explain_features`
        of the clip's vector), when asked for and the clip holds speech; else ``None``.
    """

    row: dict[str, Any]
    tracks: SignalTracks
    timeline: pd.DataFrame | None
    explanation: Explanation | None = None

    @property
    def has_speech(self) -> bool:
        return self.row["emotion"] != NO_SPEECH

    @property
    def probabilities(self) -> dict[str, float]:
        """Class -> probability, in the model's class order (empty without speech)."""
        return {key.removeprefix("p_"): value for key, value in self.row.items() if key.startswith("p_")}

    @property
    def speech_shares(self) -> pd.Series | None:
        """Share of the speech time per emotion, largest first (:func:`~ser_classic.timeline.speech_shares`),
        when speech fills more than one window of the timeline; else ``None``: the shares of a
        single window would only repeat the clip's label."""
        if self.timeline is None or self.timeline["speech"].sum() < 2:
            return None
        from .timeline import speech_shares

        return speech_shares(self.timeline)


def analyze_clip(
    path: str | PathLike[str],
    model: Model,
    *,
    window_seconds: float = 3.0,
    max_seconds: float | None = audio.MAX_DURATION_SECONDS,
    explain: bool = False,
) -> ClipAnalysis:
    """Classify one recording and keep what its pictures and timeline need, from one decode.

    The row is the one ``ser predict`` gives the file with ``model``: the signal is described
    exactly as for a prediction, and the frames of that description are the pictures' tracks. Each timeline window is cut from the
    decoded signal and described on its own, as :func:`~ser_classic.timeline.timeline` always does.

    Parameters
    ----------
    path : str or PathLike
        Any file :func:`ser_classic.audio.load` reads.
    model : Model
        A model that classifies one clip at a time (no per-speaker or per-batch normalization).
    window_seconds : float
        Timeline window (hop 1 s); a recording no longer than one window gets no timeline.
    max_seconds : float, optional
        Longer files are refused before they are decoded.
    explain : bool
        Also explain the clip's emotion (:attr:`ClipAnalysis.explanation`), from the same vector.

    Returns
    -------
    ClipAnalysis

    Raises
    ------
    AudioError
        Naming the file: unreadable, too long, too short (also after trimming), silent, ...
    ModelError
        ``model`` standardizes features over many clips, or (with ``explain``) holds no reference data.

    Examples
    --------
    >>> clip = analyze_clip("memo.m4a", load_model())  # doctest: +SKIP
    >>> clip.row["emotion"], clip.speech_shares  # doctest: +SKIP
    """
    if model.speaker_norm or model.batch_norm:
        group = "per speaker over many clips of each speaker" if model.speaker_norm else "per batch over many clips at once"
        raise ModelError(
            f"the model standardizes features {group}; one recording alone cannot be classified with it: "
            "choose another model (or use `ser predict` on many files)"
        )
    config = model.feature_config
    signal = audio.load(path, sample_rate=config.sample_rate, max_seconds=max_seconds)
    values, frames = extract_frames(signal, config)
    if not np.all(np.isfinite(values)):
        raise AudioError("features are not finite", path)
    row = classify_vector(str(path), speech_check(values, model.feature_names, str(path)), model)
    tracks = signal_tracks(signal, config, frames=frames)
    frame = None
    if row["emotion"] != NO_SPEECH and signal.size > window_seconds * config.sample_rate:
        from .timeline import timeline

        frame = timeline(signal, model, sample_rate=config.sample_rate, window_seconds=window_seconds)
    explanation = None
    if explain and row["emotion"] != NO_SPEECH:
        import pandas as pd

        from .explanation import explain_features

        explanation = explain_features(pd.Series(values, index=model.feature_names), model, path=str(path))
    return ClipAnalysis(row=row, tracks=tracks, timeline=frame, explanation=explanation)
