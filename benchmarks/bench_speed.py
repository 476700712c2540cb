"""Training and inference speed: the kit against the course notebook's pipeline and the model alone.

The same as `python -m phonemekit bench` (see phonemekit/bench.py for what it measures):

    python benchmarks/bench_speed.py                                  # 20M model, 2M synthetic frames
    python benchmarks/bench_speed.py --model small --max-batches 100  # a CPU in a few minutes
    python benchmarks/bench_speed.py --help
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from phonemekit.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
