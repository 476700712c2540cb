"""A large cache (more blocks than a load checks) is verified on a sample at every load: a clean one is
served without a rebuild, and damage at its ends (the header, the last rows) is found at once, named
by its bytes."""

import numpy as np
import pytest

from phonemekit import cache


@pytest.fixture
def big(tmp_path):
    """A cache of one array of 20 MiB: 20 one-MiB blocks, more than the 16 a load checks."""
    key = {"options": {"partition": "train-clean-100"}, "contents": "test"}
    built = []

    def build():
        built.append(1)
        return {"features": np.arange(5 * 2 ** 20, dtype=np.float32)}

    return tmp_path / "cache", key, build, built


def test_a_clean_large_cache_is_served_from_its_sample_without_a_rebuild(big, capsys):
    where, key, build, built = big
    cache.load_or_build(where, key, build)
    for _ in range(3):
        arrays = cache.load_or_build(where, key, build, verbose=True)
        assert arrays["features"][-1] == 5 * 2 ** 20 - 1
    assert len(built) == 1 and "rebuilding" not in capsys.readouterr().out


@pytest.mark.parametrize("end", ["first", "last"])  # the header's block, the last rows' block
def test_damage_at_either_end_of_a_large_cache_is_found_by_the_sample_and_rebuilt(big, end, capsys):
    where, key, build, built = big
    cache.load_or_build(where, key, build)
    path = next(where.rglob("features.npy"))
    assert path.stat().st_size > cache.SAMPLE_BLOCKS * cache.BLOCK  # a sample, not every block
    size = path.stat().st_size
    block = 0 if end == "first" else (size - 1) // cache.BLOCK
    offset = 4096 if end == "first" else block * cache.BLOCK
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * min(64, size - offset))
    arrays = cache.load_or_build(where, key, build)
    assert len(built) == 2 and arrays["features"][1000] == 1000
    said = capsys.readouterr().out
    assert f"at bytes {block * cache.BLOCK}-{(block + 1) * cache.BLOCK}" in said and "rebuilding" in said
