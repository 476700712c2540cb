"""The cache folder a student names need not exist yet: it is created, parents included, and the
arrays come back equal from it."""

import numpy as np

from phonemekit.cache import load, save


def test_a_new_nested_cache_folder_is_created_and_serves_the_arrays_back(tmp_path):
    cache_dir = tmp_path / "drive" / "MyDrive" / "hw1p2-cache"
    key = {"options": {"partition": "dev-clean"}, "contents": {"files": []}}
    arrays = {"features": np.arange(12, dtype=np.float32).reshape(4, 3), "labels": np.arange(4, dtype=np.uint8)}
    assert save(cache_dir, key, arrays) is not None
    back = load(cache_dir, key, verify="full")
    assert set(back) == set(arrays)
    for name, a in arrays.items():
        np.testing.assert_array_equal(back[name], a)
