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
