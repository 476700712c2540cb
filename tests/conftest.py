import sys
from pathlib import Path

import pytest
import torch

# Tests run against the source tree, installed or not (as the notebook does on Colab).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


@pytest.fixture(autouse=True)
def one_thread():
    # the tests' models are tiny: one thread is fastest, and two busy threads on a shared
    # 2-core machine can slow a step a hundredfold
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def no_credentials(tmp_path, monkeypatch):
    """No Kaggle credentials anywhere: a clean environment and an empty home folder (returned)."""
    for var in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home
