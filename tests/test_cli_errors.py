"""A user error on the command line is one line naming the file (or value) and the fix: no traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def phonemekit(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    env.pop("PHONEMEKIT_TRACEBACK", None)
    return subprocess.run([sys.executable, "-m", "phonemekit", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


@pytest.mark.parametrize("make, args, words", [
    (None, ["summary", "--config", "smoke", "--set", "hidden=[1,2,3"], "is not a value"),
    (None, ["summary", "--config", "smoke", "--set", "grad_clip=-1"], "grad_clip=-1.0 must be > 0"),
    (("bad.yaml", "context: [1, 2\nlr: 1e-3\n"), ["summary", "--config", "bad.yaml"], r"bad.yaml is not valid YAML at line"),
    (("bad.json", '{"lr": 1e-3,}'), ["summary", "--config", "bad.json"], "bad.json is not valid JSON at line 1"),
    (("best.pt", "not a checkpoint"), ["predict", "--checkpoint", "best.pt"], "best.pt cannot be read"),
    (("empty.pt", ""), ["predict", "--checkpoint", "empty.pt"], "empty file"),
])
def test_a_user_error_is_one_line_naming_the_file_and_no_traceback(tmp_path, make, args, words):
    if make:
        (tmp_path / make[0]).write_text(make[1])
    out = phonemekit(*args, cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and words.split(" is")[0] in out.stderr, out.stderr
    import re

    assert re.search(words, out.stderr), out.stderr
    assert "weights_only=False" not in out.stderr
