"""notebooks/experiments.ipynb: it runs top to bottom on the demo corpus and leaves its results where it ran."""

import json
import os
from pathlib import Path

import nbformat
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "experiments.ipynb"


def test_the_notebook_is_saved_clean_for_colab():
    nb = json.loads(NOTEBOOK.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code), "save it without outputs"
    params = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1 and "BUDGET" in "".join(params[0]["source"])
    text = "".join("".join(c["source"]) for c in code)
    assert "API_KEY =" not in text and "wandb.login(" not in text  # keys come from the environment


def demo_is_built() -> bool:
    return all(any((REPO / "data" / "demo" / p / "mfcc").glob("*.npy")) for p in ("train-clean-100", "dev-clean"))


def test_the_notebook_runs_an_ablation_a_search_and_an_ensemble(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("PHONEMEKIT_EXPERIMENTS", "tiny")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("PHONEMEKIT_OUT", raising=False)
    if demo_is_built():  # the notebook's default: no Kaggle data, so the demo corpus
        monkeypatch.delenv("PHONEMEKIT_DATA", raising=False)
    else:  # a checkout without data/demo: a small random corpus in the same layout
        from phonemekit.synthetic import make_corpus

        monkeypatch.setenv("PHONEMEKIT_DATA", str(make_corpus(tmp_path / "data", 40, mean_frames=300)))
    before = sorted(p.name for p in (REPO / "notebooks").iterdir())
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # cwd is the temporary folder: everything the notebook writes lands there
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    out = tmp_path / "experiments"
    ablation = pd.read_csv(out / "ablation" / "ablation.csv")
    assert ablation["knob"].iloc[0] == "(base)" and {"dropout", "activation"} <= set(ablation["knob"])
    search = pd.read_csv(out / "search" / "results.csv")
    assert len(search) == 3 and search["val_acc"].is_monotonic_decreasing
    assert (search["params"] <= 200_000 // 2).all()  # the tiny budget, shared by two members
    assert (out / "search" / "best.yaml").is_file()
    assert yaml.safe_load((out / "sweep.yaml").read_text())["method"] == "bayes"
    for png in ("ablation.png", "search.png", "ensemble.png"):
        assert (out / png).stat().st_size > 0
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "ensemble (mean)" in printed and "vs best member" in printed
    assert sorted(p.name for p in (REPO / "notebooks").iterdir()) == before  # nothing written beside it
