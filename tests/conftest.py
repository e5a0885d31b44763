"""Shared fixtures: the RAVDESS corpus from ../shared/data, and small synthetic signals.

Slow tests carry the ``slow`` marker, so that ``pytest -m "not slow"`` is a fast set for
development (CI runs everything): a headless browser, a notebook kernel, a dask cluster, a
one-hour file, ``ser`` process pools stopped by signals, and every test of a served demo
(marked here, by the fixture that serves it: :data:`SLOW_FIXTURES`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("SER_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data"))
RAVDESS = DATA_ROOT / "ravdess"
CREMA_D = DATA_ROOT / "crema-d"

#: A test that uses one of these fixtures is slow, whichever module it is in.
SLOW_FIXTURES = {"server": "serves the demo in a process of its own"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES.keys() & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def _corpus_folder(folder: Path, name: str) -> Path:
    """``folder``; in CI its absence is a failure, elsewhere a skip."""
    if not folder.is_dir():
        message = f"{name} not found at {folder} (set SER_DATA_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return folder


@pytest.fixture(scope="session")
def ravdess_root() -> Path:
    """RAVDESS speech folder; in CI its absence is a failure, elsewhere a skip."""
    return _corpus_folder(RAVDESS, "RAVDESS")


@pytest.fixture(scope="session")
def crema_d_root() -> Path:
    """CREMA-D folder (flat, ``AAAA_SSS_EEE_LL.flac``); in CI its absence is a failure, elsewhere a skip."""
    return _corpus_folder(CREMA_D, "CREMA-D")


@pytest.fixture(scope="session")
def actor_01(ravdess_root: Path) -> Path:
    return ravdess_root / "Actor_01"


@pytest.fixture(scope="session")
def angry_clip(actor_01: Path) -> Path:
    """A strong-intensity angry clip of actor 1 (mono 48 kHz FLAC)."""
    return actor_01 / "03-01-05-02-01-01-01.flac"


@pytest.fixture(scope="session")
def feature_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One feature cache for the whole session: a clip's features are computed once."""
    return tmp_path_factory.mktemp("feature-cache")


@pytest.fixture()
def tone() -> tuple[np.ndarray, int]:
    """Two seconds of a 220 Hz harmonic tone with a little noise, at 22050 Hz."""
    sample_rate = 22050
    time = np.arange(2 * sample_rate) / sample_rate
    rng = np.random.default_rng(0)
    signal = sum(0.3 / k * np.sin(2 * np.pi * 220 * k * time) for k in range(1, 5))
    return (signal + 0.01 * rng.standard_normal(time.size)).astype(np.float32), sample_rate


@pytest.fixture(scope="session")
def small_training_set(ravdess_root: Path) -> tuple[object, list[str]]:
    """Feature table and labels of 24 clips: actors 1-3, neutral/happy/sad/angry, normal intensity."""
    from ser_classic.corpus import parse_ravdess_name
    from ser_classic.features import FeatureExtractor

    paths = [
        ravdess_root / f"Actor_{actor:02d}" / f"03-01-{emotion}-01-01-{repetition}-{actor:02d}.flac"
        for actor in (1, 2, 3)
        for emotion in ("01", "03", "04", "05")
        for repetition in ("01", "02")
    ]
    features = FeatureExtractor(n_jobs=1).extract_files(paths)
    return features, [str(parse_ravdess_name(path)["label"]) for path in paths]


@pytest.fixture(scope="session")
def small_model_path(small_training_set: tuple[object, list[str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A logistic-regression model trained on :func:`small_training_set`, saved with its card.

    Tests that need *a* model use this one, not the bundled default, which may be retrained.
    """
    from ser_classic.models import train

    features, labels = small_training_set
    path = tmp_path_factory.mktemp("small-model") / "small.joblib"
    train(features, labels, classifier="logreg", seed=0).save(path)
    return path
