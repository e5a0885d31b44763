"""Hand-crafted acoustic features: a named statistical vector per clip.

One STFT and one pitch track per clip feed every group of features (:data:`FEATURE_GROUPS`,
12 groups in 7 families: :data:`FEATURE_FAMILIES`).
:class:`FeatureExtractor` is imported on first use: it brings scikit-learn and pandas, which
computing the features does not need.
"""

from typing import Any

from .cache import FeatureCache
from .config import EXTRACTOR_VERSION, FeatureConfig
from .descriptions import FEATURE_FAMILIES, FEATURE_GROUPS
from .extractor import extract_features, feature_names

__all__ = [
    "EXTRACTOR_VERSION",
    "FEATURE_FAMILIES",
    "FEATURE_GROUPS",
    "FeatureCache",
    "FeatureConfig",
    "FeatureExtractor",
    "extract_features",
    "feature_names",
]


def __getattr__(name: str) -> Any:
    if name == "FeatureExtractor":
        from .transformer import FeatureExtractor

        return FeatureExtractor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
