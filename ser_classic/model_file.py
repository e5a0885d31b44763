"""A model file on disk and the card beside it, read and checked before anything is unpickled.

The card (``NAME.card.json``) holds the SHA-256 of the joblib file, the classes and the extractor
settings. This module imports no scikit-learn: the CLI knows what a model needs (and whether
its file is the one the card describes) before paying for the model itself (see
:class:`ModelFile`); :mod:`ser_classic.models` holds the pipelines, :class:`~ser_classic.models.Model`
and :func:`~ser_classic.models.load_model`, the one way to load a model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib.resources import files
from os import PathLike
from pathlib import Path
from typing import Any

from .errors import ModelError
from .features.config import EXTRACTOR_VERSION, FeatureConfig
from .features.extractor import feature_names

__all__ = ["ARTIFACT_FORMAT", "BUNDLED_MODELS", "DEFAULT_MODEL_PATH", "ModelFile", "card_path", "read_card", "resolve_model"]

#: The bundled models by name, shipped inside the package (``ser_classic/bundled``) and each
#: rebuilt by the command in docs/results.md: ``default`` knows the 6 emotions of both training
#: corpora (RAVDESS and CREMA-D); ``ravdess8`` all 8 of RAVDESS, calm and surprised included,
#: from RAVDESS alone.
BUNDLED_MODELS = {name: Path(str(files(__package__) / "bundled" / f"ser-{name}.joblib")) for name in ("default", "ravdess8")}
DEFAULT_MODEL_PATH = BUNDLED_MODELS["default"]
ARTIFACT_FORMAT = 1


def resolve_model(model: str | PathLike[str] | None) -> Path:
    """The file of ``model``: a path, or the name of a bundled model (:data:`BUNDLED_MODELS`),
    or the default model when ``None``. A path that exists wins over a bundled name."""
    if model is None:
        return DEFAULT_MODEL_PATH
    path = Path(model)
    if not path.exists() and str(model) in BUNDLED_MODELS:
        return BUNDLED_MODELS[str(model)]
    return path


def card_path(model_path: str | PathLike[str]) -> Path:
    """The model card beside a model file: ``m.joblib`` -> ``m.card.json``."""
    path = Path(model_path)
    return path.with_name(path.stem + ".card.json")


def read_card(model_path: str | PathLike[str]) -> dict[str, Any]:
    """The model card beside ``model_path``; :class:`ModelError` if missing or not JSON."""
    card_file = card_path(model_path)
    if not card_file.is_file():
        if not Path(model_path).exists():
            raise ModelError("no such model file", model_path)
        raise ModelError(f"model card {card_file.name} is missing: cannot verify the model", model_path)
    try:
        card = json.loads(card_file.read_text())
    except (OSError, ValueError) as error:
        raise ModelError(f"unreadable model card ({error})", card_file) from None
    if not isinstance(card, dict):
        raise ModelError("model card is not a JSON object", card_file)
    return card


@dataclass(frozen=True, eq=False)
class ModelFile:
    """A model file that its card vouches for, read but not yet unpickled.

    :meth:`open` checks all that the card alone can decide; :func:`ser_classic.models.load_model`
    unpickles the very bytes whose SHA-256 was checked. In between, the classes and extractor
    settings are known, so features can be extracted while the model loads, which imports
    scikit-learn (about a second of start-up): see :func:`ser_classic.prediction.predict_files`.

    Attributes
    ----------
    path : str or PathLike
        The model file, as given to :meth:`open`.
    card : dict
        Its model card.
    feature_config : FeatureConfig
        Extractor settings the features must be computed with, from the card.
    """

    path: str | PathLike[str]
    card: dict[str, Any]
    feature_config: FeatureConfig
    content: bytes = field(repr=False)

    @property
    def classes(self) -> list[str]:
        """Class labels, in the order of probability columns (the loaded model's, as checked by :meth:`load`)."""
        return [str(label) for label in self.card["classes"]]

    @property
    def speaker_norm(self) -> bool:
        """Whether the model standardizes features per speaker (see :attr:`Model.speaker_norm`)."""
        return bool(self.card.get("speaker_norm", False))

    @property
    def batch_norm(self) -> bool:
        """Whether the model standardizes features per batch (see :attr:`Model.batch_norm`)."""
        return bool(self.card.get("batch_norm", False))

    @classmethod
    def open(cls, path: str | PathLike[str]) -> ModelFile:
        """Read a model file and check its card: hash, extractor version, feature names.

        Raises
        ------
        ModelError
            Missing file or card, a SHA-256 that does not match the card, another extractor
            version, or other feature names.
        """
        target = Path(path)
        card = read_card(target)
        if not target.is_file():
            raise ModelError("no such model file", path)
        artifact_entry = card.get("artifact")
        expected = artifact_entry.get("sha256") if isinstance(artifact_entry, dict) else None
        try:
            content = target.read_bytes()
        except OSError as error:
            raise ModelError(f"cannot read the model file ({error.strerror or type(error).__name__})", path) from None
        if expected != hashlib.sha256(content).hexdigest():
            raise ModelError(
                "SHA-256 of the file does not match its model card: refusing to load a modified or "
                "foreign model file",
                path,
            )
        stored_config = card.get("feature_config")
        stored_config = stored_config if isinstance(stored_config, dict) else {}
        if stored_config.get("version") != EXTRACTOR_VERSION:
            raise ModelError(
                f"made with feature extractor version {stored_config.get('version')!r}, this is "
                f"version {EXTRACTOR_VERSION!r}: retrain the model",
                path,
            )
        try:
            config = FeatureConfig.from_dict(stored_config)
        except TypeError:
            raise ModelError("the model card's feature settings are not this extractor's: retrain the model", path) from None
        if card.get("feature_names") != feature_names(config):
            raise ModelError("its feature names differ from this extractor's: retrain the model", path)
        return cls(path=path, card=card, feature_config=config, content=content)
