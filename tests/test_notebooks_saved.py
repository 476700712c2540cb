"""Every notebook is committed as a student should receive it: valid, without outputs, on python3."""

from pathlib import Path

import nbformat
import pytest

from notebook_cells import code_cells

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_saved_without_outputs_and_with_the_python3_kernel(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in code_cells(nb):
        assert cell.outputs == [], cell.source[:60]
        assert cell.execution_count is None, cell.source[:60]


def test_every_notebook_is_checked():
    assert {p.name for p in NOTEBOOKS} >= {"starter.ipynb", "hw3p2.ipynb", "experiments.ipynb"}
