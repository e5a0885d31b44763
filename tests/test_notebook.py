"""The feature tour notebook runs from top to bottom, on a small subset of RAVDESS."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "feature_tour.ipynb"


def test_feature_tour_is_committed_without_outputs() -> None:
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)


@pytest.mark.slow  # a Jupyter kernel runs the notebook
def test_feature_tour_runs_and_shows_distributions_and_a_confusion_matrix(
    ravdess_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.setenv("SER_DATA_DIR", str(ravdess_root.parent))
    monkeypatch.setenv("SER_TOUR_ACTORS", "3")
    client = NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) == 2, "feature distributions and the confusion matrix"
    printed = "".join(output.get("text", "") for output in outputs if output.output_type == "stream")
    assert "the names are feature_names(): True" in printed
    assert "accuracy on speaker Actor_03" in printed
    warned = "".join(output.get("text", "") for output in outputs if output.output_type == "stream" and output.name == "stderr")
    assert "Warning" not in warned, warned
