"""ser-classic: speech emotion recognition with hand-crafted features and classical models.

The public API is imported lazily, so ``import ser_classic`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__: str
"""The installed package's version (from its metadata: pyproject.toml's, typed once)."""

_EXPORTS = {
    "SERError": "errors",
    "AudioError": "errors",
    "CorpusError": "errors",
    "ModelError": "errors",
    "FeatureExtractor": "features",
    "FeatureConfig": "features",
    "extract_features": "features",
    "feature_names": "features",
    "read_corpus": "corpus",
    "Model": "models",
    "train": "models",
    "evaluate": "evaluation",
    "predict_files": "prediction",
    "load_model": "models",
    "analyze_clip": "analysis",
    "explain": "explanation",
    "Explanation": "explanation",
    "adapt": "adaptation",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name == "__version__":  # one version, pyproject.toml's, read from the installed metadata
        from importlib.metadata import version

        return version("ser-classic")
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ser_classic' has no attribute {name!r}")
    module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(__all__)
