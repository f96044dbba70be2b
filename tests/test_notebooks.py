"""The notebooks run top to bottom (with small settings), so they cannot rot."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert {p.name for p in NOTEBOOKS} >= {"quickstart.ipynb", "augmented_scorecam.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, monkeypatch):
    monkeypatch.setenv("TFSCORECAM_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    notebook = nbformat.read(path, as_version=4)
    saved = [cell.outputs for cell in notebook.cells if cell.cell_type == "code"]
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    outputs = [o for cell in cells for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    for cell, before in zip(cells, saved, strict=True):
        if any(call in cell.source for call in (".plot(", "plot_comparison(", "imshow(")):
            assert any("image/png" in o.get("data", {}) for o in cell.outputs), cell.source
        printed = _printed(before)  # what the saved notebook shows, it still prints
        assert printed <= _printed(cell.outputs), (cell.source, printed, _printed(cell.outputs))


def _printed(outputs) -> set[str]:
    """The lines a cell printed to stdout, without the libraries' log lines."""
    text = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    return {line for line in text.splitlines() if line and not line.startswith(("I0000", "W0000"))}
