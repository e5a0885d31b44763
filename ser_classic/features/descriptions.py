"""What each feature means for people, and the one table of feature groups.

:data:`FEATURE_GROUPS` is that table: the 12 groups that explanations
(:mod:`ser_classic.explanation`) attribute a prediction to and model cards count, each with its
family (one of 7, :data:`FEATURE_FAMILIES`) and its tracks, with each track's label and unit.
Families, each track's group and :data:`TRACKS` are derived from it.

A feature name is a track and a statistic (``f0_semitone_range``, ``rms_db_std``), with a row
number for multi-row tracks (``contrast_03_mean``). Units follow docs/features.md.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FEATURE_FAMILIES",
    "FEATURE_GROUPS",
    "TRACKS",
    "FeatureDescription",
    "FeatureGroup",
    "Track",
    "describe_feature",
    "track_of",
]


@dataclass(frozen=True)
class Track:
    """A frame-wise track (or clip-level measure) as people read it.

    Attributes
    ----------
    label : str
        What it measures, in a few words ("pitch", "loudness").
    unit : str
        Unit of its values and of their statistics ("" for a ratio or a count).
    named : bool
        A person can measure or hear it (a level meter, Praat, a spectrum): explanations name
        such features. MFCC, chroma and tonnetz coefficients have no such meaning; their
        groups are still attributed.
    """

    label: str
    unit: str
    named: bool = True


@dataclass(frozen=True)
class FeatureGroup:
    """A group of features: the tracks it holds and the family it lies in.

    Attributes
    ----------
    family : str
        Its family in :data:`FEATURE_FAMILIES`.
    tracks : dict[str, Track]
        Its tracks (the prefixes of its feature names) and how people read each.
    """

    family: str
    tracks: dict[str, Track]


#: Group -> its family and tracks: the one partition of the features, in the order that
#: explanations and model cards list the groups (the vector's order differs a little). Fine
#: enough that naming three groups says something, few enough (12) for Shapley values over them.
FEATURE_GROUPS: dict[str, FeatureGroup] = {
    "loudness": FeatureGroup("energy and time", {"rms_db": Track("loudness", "dB")}),
    "zero-crossing rate": FeatureGroup("energy and time", {"zcr": Track("zero-crossing rate", "")}),
    "spectral shape": FeatureGroup(
        "spectral shape and contrast",
        {
            "centroid": Track("spectral centroid", "Hz"),
            "bandwidth": Track("spectral bandwidth", "Hz"),
            "rolloff": Track("spectral rolloff", "Hz"),
            "flatness": Track("spectral flatness", ""),
            "spectral_flux": Track("spectral flux", "dB"),
        },
    ),
    "spectral contrast": FeatureGroup("spectral shape and contrast", {"contrast": Track("spectral contrast band", "dB")}),
    "spectral balance": FeatureGroup(
        "spectral balance",
        {
            "alpha_ratio": Track("alpha ratio", "dB"),
            "hammarberg": Track("Hammarberg index", "dB"),
            "spectral_slope_0_500": Track("spectral slope 0-500 Hz", "dB/kHz"),
            "spectral_slope_500_1500": Track("spectral slope 500-1500 Hz", "dB/kHz"),
        },
    ),
    "MFCC": FeatureGroup("cepstral", {"mfcc": Track("MFCC", "", named=False)}),
    "MFCC dynamics": FeatureGroup(
        "cepstral",
        {"mfcc_delta": Track("MFCC delta", "", named=False), "mfcc_delta2": Track("MFCC delta-delta", "", named=False)},
    ),
    "MFCC of unvoiced frames": FeatureGroup("cepstral", {"mfcc_unvoiced": Track("MFCC of unvoiced frames", "", named=False)}),
    "tonal": FeatureGroup("tonal", {"chroma": Track("chroma", "", named=False), "tonnetz": Track("tonnetz", "", named=False)}),
    "voice quality": FeatureGroup("voice quality", {"hnr_db": Track("harmonics-to-noise ratio", "dB")}),
    "pitch": FeatureGroup("pitch and rhythm", {"f0": Track("pitch", "Hz"), "f0_semitone": Track("pitch", "semitones")}),
    "rhythm": FeatureGroup(
        "pitch and rhythm",
        {"voiced_fraction": Track("voiced share of frames", ""), "voiced_segment_rate": Track("voiced-segment rate", "per second")},
    ),
}

#: Family -> its groups, in the order of :data:`FEATURE_GROUPS`, from which it is derived: a
#: coarser split into kinds of measure (cepstral, tonal, pitch and rhythm, ...).
FEATURE_FAMILIES: dict[str, tuple[str, ...]] = {
    family: tuple(group for group, members in FEATURE_GROUPS.items() if members.family == family)
    for family in dict.fromkeys(members.family for members in FEATURE_GROUPS.values())
}

#: Track -> how people read it, for every track of :data:`FEATURE_GROUPS`.
TRACKS: dict[str, Track] = {track: described for members in FEATURE_GROUPS.values() for track, described in members.tracks.items()}

#: Track -> its group.
_GROUP_OF_TRACK = {track: group for group, members in FEATURE_GROUPS.items() for track in members.tracks}

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
    its ``track``, its ``group`` and ``family`` (:data:`FEATURE_GROUPS`), and whether
    explanations name it."""

    name: str
    track: str
    label: str
    unit: str
    group: str
    family: str
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
    group = _GROUP_OF_TRACK[track]
    return FeatureDescription(name, track, " ".join(words), unit, group, FEATURE_GROUPS[group].family, description.named)
