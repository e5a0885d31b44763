"""What each feature means for people: its track's label and unit, and the groups that
explanations (:mod:`ser_classic.explanation`) attribute a prediction to.

A feature name is a track and a statistic (``f0_semitone_range``, ``rms_db_std``), with a row
number for multi-row tracks (``contrast_03_mean``). Units follow docs/features.md.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EXPLANATION_GROUPS", "TRACKS", "FeatureDescription", "Track", "describe_feature", "track_of"]


@dataclass(frozen=True)
class Track:
    """A frame-wise track (or clip-level measure) as people read it.

    Attributes
    ----------
    label : str
        What it measures, in a few words ("pitch", "loudness").
    unit : str
        Unit of its values and of their statistics ("" for a ratio or a count).
    group : str
        Its group in :data:`EXPLANATION_GROUPS`.
    named : bool
        A person can measure or hear it (a level meter, Praat, a spectrum): explanations name
        such features. MFCC, chroma and tonnetz coefficients have no such meaning; their
        groups are still attributed.
    """

    label: str
    unit: str
    group: str
    named: bool = True


#: Track -> how people read it; every track of :data:`ser_classic.features.FEATURE_GROUPS`.
TRACKS: dict[str, Track] = {
    "rms_db": Track("loudness", "dB", "loudness"),
    "zcr": Track("zero-crossing rate", "", "zero-crossing rate"),
    "centroid": Track("spectral centroid", "Hz", "spectral shape"),
    "bandwidth": Track("spectral bandwidth", "Hz", "spectral shape"),
    "rolloff": Track("spectral rolloff", "Hz", "spectral shape"),
    "flatness": Track("spectral flatness", "", "spectral shape"),
    "spectral_flux": Track("spectral flux", "dB", "spectral shape"),
    "contrast": Track("spectral contrast band", "dB", "spectral contrast"),
    "alpha_ratio": Track("alpha ratio", "dB", "spectral balance"),
    "hammarberg": Track("Hammarberg index", "dB", "spectral balance"),
    "spectral_slope_0_500": Track("spectral slope 0-500 Hz", "dB/kHz", "spectral balance"),
    "spectral_slope_500_1500": Track("spectral slope 500-1500 Hz", "dB/kHz", "spectral balance"),
    "mfcc": Track("MFCC", "", "MFCC", named=False),
    "mfcc_delta": Track("MFCC delta", "", "MFCC dynamics", named=False),
    "mfcc_delta2": Track("MFCC delta-delta", "", "MFCC dynamics", named=False),
    "mfcc_unvoiced": Track("MFCC of unvoiced frames", "", "MFCC of unvoiced frames", named=False),
    "chroma": Track("chroma", "", "tonal", named=False),
    "tonnetz": Track("tonnetz", "", "tonal", named=False),
    "hnr_db": Track("harmonics-to-noise ratio", "dB", "voice quality"),
    "f0": Track("pitch", "Hz", "pitch"),
    "f0_semitone": Track("pitch", "semitones", "pitch"),
    "voiced_fraction": Track("voiced share of frames", "", "rhythm"),
    "voiced_segment_rate": Track("voiced-segment rate", "per second", "rhythm"),
}

#: Group -> its tracks: a finer split of :data:`ser_classic.features.FEATURE_GROUPS` (each group
#: lies inside one of them), fine enough that naming three of them says something, few enough
#: (12) for Shapley values over them.
EXPLANATION_GROUPS: dict[str, tuple[str, ...]] = {
    group: tuple(track for track, description in TRACKS.items() if description.group == group)
    for group in dict.fromkeys(description.group for description in TRACKS.values())
}

#: Statistic in a feature name -> how people read it.
_STATISTICS = {
    "mean": "mean",
    "std": "variation",
    "p10": "low end",
    "p50": "median",
    "p90": "high end",
    "range": "range",
    "slope": "slope",
}


@dataclass(frozen=True)
class FeatureDescription:
    """One feature as people read it: ``label`` ("pitch range"), ``unit`` ("semitones"),
    its ``track`` and explanation ``group``, and whether explanations name it."""

    name: str
    track: str
    label: str
    unit: str
    group: str
    named: bool


def track_of(name: str) -> str | None:
    """The track of a feature name: the longest track name it starts with (``mfcc_delta_01_std``
    is ``mfcc_delta``, not ``mfcc``), or ``None`` for a name of no known track."""
    matches = [track for track in TRACKS if name == track or name.startswith(track + "_")]
    return max(matches, key=len, default=None)


def describe_feature(name: str) -> FeatureDescription:
    """How people read feature ``name``, e.g. ``f0_semitone_range`` -> "pitch range", semitones.

    Raises
    ------
    KeyError
        ``name`` belongs to no track in :data:`TRACKS`.
    """
    track = track_of(name)
    if track is None:
        raise KeyError(f"{name!r} is no feature of a known track")
    description = TRACKS[track]
    parts = name[len(track) :].strip("_").split("_") if name != track else []
    words = [description.label]
    unit = description.unit
    if parts and parts[0].isdigit():
        words.append(str(int(parts.pop(0))))
    if parts:
        words.append(_STATISTICS.get(parts[0], parts[0]))
        if parts[0] == "slope":
            unit = f"{unit}/s"
    return FeatureDescription(name, track, " ".join(words), unit, description.group, description.named)
