"""Extractor settings, defined once and stored in every cache key and model artifact."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from ..audio import ANALYSIS_SAMPLE_RATE, FRAME_LENGTH, HOP_LENGTH

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EXTRACTOR_VERSION", "FeatureConfig", "table_config"]

#: Bumped whenever the computation of any feature changes, so that stale vectors are never reused.
EXTRACTOR_VERSION = "5"


@dataclass(frozen=True)
class FeatureConfig:
    """Analysis settings of the feature extractor.

    Attributes
    ----------
    sample_rate : int
        Analysis rate (Hz); signals at other rates are resampled first. Its Nyquist frequency
        is the analysed band's upper edge: at 14 kHz every input recorded at 16 kHz or more
        is analysed over the same 0-7 kHz band, whatever its own bandwidth.
    band_low_hz : float
        Lower edge of the analysed band (Hz): the offset (DC) and everything below it are
        removed before any feature (:mod:`~ser_classic.features.conditioning`), so mains hum
        at 50 or 60 Hz and rumble never enter; the lowest voices' fundamentals lie above it
        or are found from their harmonics.
    n_fft, hop_length : int
        STFT frame and hop in samples (about 73 ms and 18 ms at 14 kHz).
    n_mels, n_mfcc : int
        Mel bands feeding the MFCCs, and MFCCs kept.
    spectral_floor_db : float
        Spectrogram bins are floored this many dB below the clip's strong bins (the
        ``reference_percentile``-th percentile of the frames' strongest bins), so that dither,
        codec noise and recording noise floors below it do not count.
    reference_percentile : float
        Levels are relative to this percentile of the clip's frame levels (and the floor to
        this percentile of its frames' strongest bins), not to the loudest frame: a click a
        few frames long does not move them.
    f0_min_hz, f0_max_hz : float
        Search range of the pitch tracker; covers adult speech from low male to high female.
    voicing_db : float
        Frames quieter than this many dB below the clip's reference level are unvoiced.
    voicing_threshold : float
        Frames whose periodicity (normalized autocorrelation in the pitch range) is below this
        are unvoiced; 0.45 is Praat's default.
    trim_db : float or None
        Leading/trailing parts quieter than this many dB below the reference level (or close
        to the noise floor) are cut before analysis; ``None`` keeps the whole signal.
    """

    sample_rate: int = ANALYSIS_SAMPLE_RATE
    band_low_hz: float = 80.0
    n_fft: int = FRAME_LENGTH
    hop_length: int = HOP_LENGTH
    n_mels: int = 64
    n_mfcc: int = 20
    spectral_floor_db: float = 70.0
    reference_percentile: float = 95.0
    f0_min_hz: float = 65.0
    f0_max_hz: float = 600.0
    voicing_db: float = 30.0
    voicing_threshold: float = 0.45
    trim_db: float | None = 30.0

    def to_dict(self) -> dict[str, object]:
        """Plain dict with the extractor version, as stored in artifacts and cache keys."""
        return {"version": EXTRACTOR_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> FeatureConfig:
        """Inverse of :meth:`to_dict` (the version key is ignored; callers check it)."""
        return cls(**{k: v for k, v in values.items() if k != "version"})  # type: ignore[arg-type]

    def digest(self) -> str:
        """Short hash of :meth:`to_dict`: equal digests mean identical feature vectors."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def table_config(table: pd.DataFrame) -> FeatureConfig | None:
    """The settings a feature table was made with, as :class:`~ser_classic.features.FeatureExtractor`
    records them in ``table.attrs["feature_config"]`` (kept by Parquet files); ``None`` if not recorded.

    Raises
    ------
    ValueError
        The table was made by another extractor version.
    """
    recorded = table.attrs.get("feature_config")
    if not isinstance(recorded, dict):
        return None
    if recorded.get("version") != EXTRACTOR_VERSION:
        raise ValueError(f"the feature table was made by extractor version {recorded.get('version')!r}, this is {EXTRACTOR_VERSION!r}")
    return FeatureConfig.from_dict(recorded)
