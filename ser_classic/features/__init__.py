"""Hand-crafted acoustic features: a named statistical vector per clip.

One STFT and one pitch track per clip feed every group (see :data:`FEATURE_GROUPS`).
"""

from .cache import FeatureCache
from .config import EXTRACTOR_VERSION, FeatureConfig
from .extractor import FEATURE_GROUPS, FeatureExtractor, extract_features, feature_names

__all__ = [
    "EXTRACTOR_VERSION",
    "FEATURE_GROUPS",
    "FeatureCache",
    "FeatureConfig",
    "FeatureExtractor",
    "extract_features",
    "feature_names",
]
