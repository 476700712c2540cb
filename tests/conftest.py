import sys
from pathlib import Path

# Tests run against the source tree, installed or not (as the notebook does on Colab).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
