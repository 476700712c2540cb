"""Every benchmark script imports the kit as it is today and answers --help: a renamed function in
src/ breaks the script here, not on the GPU box where it is finally run."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script", sorted(p.name for p in (REPO / "benchmarks").glob("*.py")))
def test_each_benchmark_script_imports_the_kit_and_answers_help(script):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout


def test_the_recipe_benchmark_sizes_every_config_like_its_baseline():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import recipes
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    from phonemekit.data import DEMO_ROOT

    for base, table in ((recipes.STUDENT_FRAMES, recipes.frames_configs), (recipes.STARTER_CTC, recipes.ctc_configs)):
        target = recipes.parameters(base, str(DEMO_ROOT), 28)
        for name, settings in table(target).items():
            assert abs(recipes.parameters(settings, str(DEMO_ROOT), 28) / target - 1) < 0.03, name


def test_the_recipe_benchmark_tables_exactly_the_runs_it_made(tmp_path):
    """Runs split over processes append to one file; --table gives each config's mean and sd of the
    best dev score over its seeds, the score being the best of the run's own curve."""
    import json
    import statistics

    from phonemekit.data import DEMO_ROOT

    out = tmp_path / "runs.jsonl"
    base = [sys.executable, str(REPO / "benchmarks" / "recipes.py"), "--root", str(DEMO_ROOT), "--task", "frames",
            "--width", "0.02", "--epochs", "1", "--threads", "1", "--out", str(out), "--configs", "student"]
    for seed in ("0", "1"):  # two processes, one file
        proc = subprocess.run(base + ["--seeds", seed], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    runs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["config"], r["seed"], r["epochs"]) for r in runs] == [("student", 0, 1), ("student", 1, 1)]
    for r in runs:
        assert r["metric"] == "val_acc" and r["best"] == max(r["curve"]) and 0 < r["best"] < 1
        assert r["parameters"] < 100_000  # the widths were scaled
    table = subprocess.run([sys.executable, str(REPO / "benchmarks" / "recipes.py"), "--root", str(DEMO_ROOT),
                            "--task", "frames", "--table", str(out)], capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr[-2000:]
    row = [line for line in table.stdout.splitlines() if line.startswith("| student |")]
    scores = [r["best"] for r in runs]
    assert len(row) == 1
    assert f"{statistics.mean(scores):.2%} ± {statistics.stdev(scores):.2%}" in row[0]
    assert "| 2 | 1 |" in row[0]  # seeds, epochs
