"""The package's structure: imports go down the layers, never in a circle; settings travel with tables.

The import graph is read from the source (every ``import`` of a ``ser_classic`` module, at the
top of a module or inside a function; annotations under ``TYPE_CHECKING`` excepted), so a
lazy import that goes back up a layer is caught as well as an eager one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ser_classic
from ser_classic.errors import ModelError
from ser_classic.features import FeatureConfig, feature_names
from ser_classic.models import train

PACKAGE = Path(ser_classic.__file__).parent

#: Each module's layer: a module may import modules of its own layer or below, never above.
LAYERS: dict[str, int] = {
    "errors": 0, "atomic": 0, "interruption": 0,
    "audio": 1, "outputs": 1, "parallel": 1,
    "features": 2, "features.config": 2, "features.stats": 2, "features.dsp": 2, "features.spectral": 2, "features.pitch": 2,
    "features.cache": 2, "features.extractor": 2, "features.transformer": 2, "features.augmented": 2,
    "features.descriptions": 2, "features.files": 2, "features.conditioning": 2, "features.preload": 2, "augmentation": 2, "defects": 2, "normalization": 2, "calibration": 2, "reference": 2,
    "corpus": 3, "model_file": 3, "plots": 3, "training_table": 3,
    "models": 4, "adaptation": 5,
    "evaluation": 5, "prediction": 5, "timeline": 5, "live": 5, "explanation": 5, "analysis": 5,
    "training": 6, "model_card": 6,
    "cli": 7, "demo": 7, "": 8,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """The package modules that ``path`` (module ``name``) imports."""
    tree = ast.parse(path.read_text())
    type_only = {
        id(node)
        for branch in ast.walk(tree)
        if isinstance(branch, ast.If) and "TYPE_CHECKING" in ast.unparse(branch.test)
        for node in ast.walk(branch)
    }
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only or not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = package[: len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
        for alias in node.names:
            target = ".".join([*base, alias.name]).strip(".")
            target = target if target in modules else ".".join(base)
            if target in modules and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: _imports(path, name, set(files)) for name, path in files.items()}


def test_every_module_has_a_layer() -> None:
    assert set(_graph()) - set(LAYERS) == set(), "place new modules in LAYERS"


def test_imports_never_go_up_a_layer() -> None:
    upward = [(module, target) for module, targets in _graph().items() for target in targets if LAYERS[target] > LAYERS[module]]
    assert upward == []


def test_the_import_graph_has_no_circle() -> None:
    graph = _graph()
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import circle: {' -> '.join([*path, module])}"
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, (*path, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())


def test_the_layer_check_sees_a_lazy_upward_import(tmp_path: Path) -> None:
    """The checker itself can fail: an import inside a function is found."""
    source = tmp_path / "ser_classic" / "audio.py"
    source.parent.mkdir()
    source.write_text("def f():\n    from .cli import app\n    from .errors import SERError\n")
    assert _imports(source, "audio", {"audio", "cli", "errors"}) == {"cli", "errors"}


def _table(config: FeatureConfig) -> tuple[pd.DataFrame, list[str]]:
    rng = np.random.default_rng(0)
    labels = ["angry"] * 6 + ["sad"] * 6
    table = pd.DataFrame(rng.normal(size=(12, len(feature_names(config)))), columns=feature_names(config))
    table.attrs["feature_config"] = config.to_dict()
    return table, labels


def test_training_refuses_a_table_made_with_other_settings() -> None:
    table, labels = _table(FeatureConfig(n_fft=512, hop_length=128))
    with pytest.raises(ModelError, match="other extractor settings"):
        train(table, labels, classifier="logreg", feature_config=FeatureConfig())


def test_training_takes_the_settings_the_table_records() -> None:
    config = FeatureConfig(n_fft=512, hop_length=128)
    table, labels = _table(config)
    assert train(table, labels, classifier="logreg").feature_config == config


def test_a_table_of_another_extractor_version_is_refused() -> None:
    table, labels = _table(FeatureConfig())
    table.attrs["feature_config"] = {**table.attrs["feature_config"], "version": "0"}
    with pytest.raises(ModelError, match="extractor version '0'"):
        train(table, labels, classifier="logreg")
