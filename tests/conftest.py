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
