"""notebooks/starter.ipynb: saved clean, Colab cells fenced off, and it runs top to bottom."""

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from notebook_cells import code_cells, tags

from phonemekit.data import DEMO_ROOT, AudioDataset
from phonemekit.submit import validate_submission

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "starter.ipynb"
RUNNER = REPO / "tools" / "run_notebook.py"
PLOTS = ("spectrogram.png", "class_distribution.png", "history.png", "per_phoneme.png", "confusion.png")
# what only Colab (or a Kaggle account) can do: mount Drive, read secrets, clone, pip, download, submit
COLAB_ONLY = ("drive.mount(", "userdata.get(", '"clone"', '"pip"', "kaggle_download(", "kaggle_submit(")


@pytest.fixture(scope="module")
def nb():
    return nbformat.read(NOTEBOOK, as_version=4)


def test_one_parameters_cell_holds_the_settings_a_student_changes(nb):
    params = [c for c in nb.cells if "parameters" in tags(c)]
    assert len(params) == 1
    for name in ("RECIPE", "OVERRIDES", "RESUME", "COMPETITION", "DATA_ROOT", "OUT_DIR", "WANDB_MODE", "PROGRESS",
                 "SUBMIT"):
        assert f"\n{name} = " in "\n" + params[0].source, name
    assert 'RECIPE = "auto"' in params[0].source


def test_colab_and_kaggle_cells_are_skipped_outside_colab_and_do_nothing_there(nb):
    fenced = [c for c in code_cells(nb) if "skip-execution" in tags(c)]
    assert len(fenced) >= 3  # set-up, credentials/Drive/download, submit
    for cell in code_cells(nb):
        if any(call in cell.source for call in COLAB_ONLY):
            assert "skip-execution" in tags(cell), cell.source[:80]
    for cell in fenced:  # Jupyter and Colab ignore the tag: a guard keeps them inert elsewhere
        first = next(line for line in cell.source.splitlines() if line.strip() and not line.startswith("#"))
        assert first.startswith(("if IN_COLAB", "if SUBMIT")), first


def test_no_credential_is_typed_into_the_notebook(nb):
    text = json.dumps(nb.cells)
    for pattern in ('KAGGLE_KEY"] =', 'WANDB_API_KEY"] =', "wandb.login(key", '"key":'):
        assert pattern not in text


def execute(nb, tmp_path, monkeypatch, recipe="smoke"):
    """Run as CI does: a fresh kernel in notebooks/, skip-execution cells skipped, outputs elsewhere."""
    from nbclient import NotebookClient

    monkeypatch.setenv("PHONEMEKIT_RECIPE", recipe)
    monkeypatch.setenv("PHONEMEKIT_OUT", str(tmp_path / "runs"))
    monkeypatch.delenv("PHONEMEKIT_DATA", raising=False)
    nb = copy.deepcopy(nb)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    return nb


def stdout(nb):
    return "".join(o.get("text", "") for c in code_cells(nb) for o in c.get("outputs", []) if o.output_type == "stream")


def run_headless(tmp_path, *args, recipe="smoke"):
    """The README's main job: tools/run_notebook.py, as a student runs it in a terminal."""
    env = {**os.environ, "PHONEMEKIT_OUT": str(tmp_path / "runs")}
    env.pop("PHONEMEKIT_DATA", None)
    env.pop("PHONEMEKIT_RECIPE", None)
    if recipe:
        env["PHONEMEKIT_RECIPE"] = recipe
    return subprocess.run([sys.executable, str(RUNNER), "-o", str(tmp_path / "starter.out.ipynb"), *args],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)


@pytest.mark.slow
def test_notebook_runs_headless_with_its_output_in_the_terminal_and_ends_with_a_valid_submission(
        nb, tmp_path, monkeypatch):
    proc = run_headless(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    run = tmp_path / "runs" / "smoke"
    test = AudioDataset(DEMO_ROOT, "test-clean", context=0)
    assert validate_submission(run / "submission.csv", len(test))
    for plot in PLOTS:
        assert (run / plot).stat().st_size > 10_000, plot
    # the cells' output as it ran, under the notebook's section headings, one line per epoch
    assert out.index("== 1. Data ==") < out.index("== 3. Train ==") < out.index("epoch   2/2 |")
    assert "recipe 'smoke'" in out and "demo test accuracy" in out
    assert "\r" not in out and not re.search(r"\d+/\d+ \[\d\d:\d\d", out)  # no progress bars in a terminal log
    assert "Kernel is running over TCP" not in proc.stderr
    # it ends with the accuracies and where the files are
    summary = out[out.index("== The run in short =="):]
    assert "run 'smoke': dev accuracy" in summary and "test accuracy:" in summary
    assert f"submission: {run / 'submission.csv'}" in summary
    assert all(plot in summary for plot in PLOTS) and str(run) in summary
    # the executed notebook is kept, with the outputs
    executed = nbformat.read(tmp_path / "starter.out.ipynb", as_version=4)
    assert "run 'smoke': dev accuracy" in stdout(executed)
    assert str(tmp_path / "starter.out.ipynb") in out.splitlines()[-1]

    # a second run (after a crash, a disconnect) resumes the same run instead of starting over
    upto = next(i for i, c in enumerate(nb.cells) if "result = fit(" in c.source)
    again = copy.deepcopy(nb)
    again.cells = again.cells[: upto + 1]
    out = stdout(execute(again, tmp_path, monkeypatch))
    assert "resuming from" in out and "starting a fresh run" not in out


def test_a_failing_cell_is_named_and_the_executed_notebook_kept(tmp_path):
    proc = run_headless(tmp_path, "-p", "RECIPE", "no-such-recipe", recipe=None)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert "the notebook stopped at cell" in last and "in section '0. Set-up'" in last
    assert "ValueError: unknown recipe 'no-such-recipe'" in last
    assert str(tmp_path / "starter.out.ipynb") in last
    assert (tmp_path / "starter.out.ipynb").is_file()


def test_the_executed_notebook_and_the_runs_are_git_ignored():
    if subprocess.run(["git", "rev-parse"], cwd=REPO, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    for path in ("notebooks/runs/starter.out.ipynb", "notebooks/runs/cpu-demo/submission.csv"):
        assert subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO).returncode == 0, path
