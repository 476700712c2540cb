"""The cache of AudioDataset (cache_dir): shared by processes, never served damaged or stale."""

import hashlib
import multiprocessing
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from phonemekit.data import AudioDataset
from phonemekit.synthetic import write_utterance
from test_data import builds, write_corpus  # noqa: F401 (builds is a fixture)


def digest(ds) -> str:
    """One hash of everything a dataset serves."""
    h = hashlib.sha1()
    for a in (ds.features, ds.labels if ds.labels is not None else torch.empty(0), torch.from_numpy(ds.offsets)):
        h.update(a.numpy().tobytes())
    return h.hexdigest()


def cache_folders(cache):
    """The published cache folders (hidden ones are builds in progress or leftovers)."""
    return sorted(p.name for p in cache.iterdir() if p.is_dir() and not p.name.startswith("."))


def _load_in_rounds(root, cache, rounds, barrier, results):
    """One of several processes loading the same dataset at the same moment, round after round."""
    for r in range(rounds):
        barrier.wait(timeout=120)  # the test has prepared this round: all processes start together
        try:
            results.put((r, digest(AudioDataset(root, context=2, cache_dir=cache))))
        except Exception as e:  # reported, so that the test shows what went wrong
            results.put((r, f"{type(e).__name__}: {e}"))
        barrier.wait(timeout=120)  # raises BrokenBarrierError, ending this process, when the test failed


def test_processes_building_one_cache_at_once_all_get_the_same_arrays(tmp_path, monkeypatch):
    # a notebook and a CLI run, or DDP ranks: each round all three load at once, from no cache,
    # after the data changed, and over a damaged cache; every one must get the right arrays
    root, cache = tmp_path / "data", tmp_path / "cache"
    write_corpus(root, {f"{100 + k}-1-{k:04d}": 30 + 7 * k for k in range(12)})
    victim = root / "train-clean-100" / "mfcc" / "105-1-0005.npy"
    rounds = ["no cache", "data changed", "cache damaged", "data changed", "cache complete"]
    # the fork server starts a fresh interpreter: give it this tree's src/ and tests/, not an installed copy
    here = Path(__file__).resolve().parent
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(here.parent / "src"), str(here), os.environ.get("PYTHONPATH", "")]))
    ctx = multiprocessing.get_context("forkserver")  # fresh processes, forked from one that imported torch once
    ctx.set_forkserver_preload(["phonemekit.data", "test_data_cache"])
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_load_in_rounds, args=(root, cache, len(rounds), barrier, results))
             for _ in range(3)]
    for p in procs:
        p.start()
    try:
        for r, what in enumerate(rounds):
            if what == "data changed":
                np.save(victim, np.load(victim) + 1)
            if what == "cache damaged":
                (cache / cache_folders(cache)[0] / "labels.npy").unlink()
            expected = digest(AudioDataset(root, context=2))
            barrier.wait(timeout=120)
            barrier.wait(timeout=120)
            got = [results.get(timeout=60) for _ in procs]
            assert [g for _, g in got] == [expected] * 3, f"round {r} ({what})"
            assert len(cache_folders(cache)) == 1, f"round {r} ({what}): {cache_folders(cache)}"
    finally:
        barrier.abort()  # a failed round: the processes stop waiting for the next one
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()


DAMAGES = ["labels.npy missing", "features.npy missing", "offsets.npy missing", "features.npy empty",
           "features.npy truncated", "labels.npy empty"]


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_cache_is_rebuilt_with_a_notice_never_served(tmp_path, builds, capsys, damage):  # noqa: F811
    root, cache = tmp_path / "data", tmp_path / "cache"
    write_corpus(root)
    fresh = AudioDataset(root, context=3)
    AudioDataset(root, context=3, cache_dir=cache)
    (folder,) = cache_folders(cache)
    name, how = damage.split()
    f = cache / folder / name
    if how == "missing":
        f.unlink()
    elif how == "empty":
        f.write_bytes(b"")
    else:
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    capsys.readouterr()
    n = len(builds)
    ds = AudioDataset(root, context=3, cache_dir=cache)
    assert len(builds) == n + 1
    assert "rebuil" in capsys.readouterr().out  # one line says so
    assert digest(ds) == digest(fresh)
    again = AudioDataset(root, context=3, cache_dir=cache)  # and the rebuilt cache is used
    assert len(builds) == n + 1 and digest(again) == digest(fresh)


@pytest.mark.parametrize("how", ["rewritten in place, mtime restored", "cp -p of an edited copy"])
def test_a_same_size_edit_is_seen_whatever_the_modification_time_says(tmp_path, builds, how):  # noqa: F811
    root, cache = tmp_path / "data", tmp_path / "cache"
    write_corpus(root)
    write_utterance(root, "train-clean-100", "500-1-0000", np.zeros((400, 28), np.float32), np.zeros(400, int))
    f = root / "train-clean-100" / "mfcc" / "500-1-0000.npy"  # 45 KB: the edit is far from both ends
    AudioDataset(root, context=0, normalize="none", cache_dir=cache)
    old = f.stat()
    x = np.load(f)
    x[200, 5] = 1.0
    if how.startswith("rewritten"):
        np.save(f, x)
        os.utime(f, ns=(old.st_atime_ns, old.st_mtime_ns))
    else:  # cp -p, rsync -a and unzip all give the copy the original's modification time
        edited = tmp_path / "edited.npy"
        np.save(edited, x)
        os.utime(edited, ns=(old.st_atime_ns, old.st_mtime_ns))
        shutil.copy2(edited, f)
    assert f.stat().st_size == old.st_size and f.stat().st_mtime_ns == old.st_mtime_ns
    ds = AudioDataset(root, context=0, normalize="none", cache_dir=cache)
    assert len(builds) == 2
    assert ds.features[ds.utterance_frames("500-1-0000")][200, 5] == 1.0
    # the same bytes extracted again: the cache stays valid (the content decides, not the metadata)
    data, st = f.read_bytes(), f.stat()
    f.unlink()
    f.write_bytes(data)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    AudioDataset(root, context=0, normalize="none", cache_dir=cache)
    assert len(builds) == 2


def test_a_new_build_replaces_the_older_cache_of_the_same_partition_and_options(tmp_path):
    root, cache = tmp_path / "data", tmp_path / "cache"
    write_corpus(root)
    write_corpus(root, {"5-5-0000": 9}, seed=2, partition="dev-clean")
    AudioDataset(root, context=2, cache_dir=cache)
    AudioDataset(root, context=3, cache_dir=cache)  # other options: kept
    AudioDataset(root, "dev-clean", context=2, cache_dir=cache)  # another partition: kept
    before = cache_folders(cache)
    assert len(before) == 3
    write_utterance(root, "train-clean-100", "0-0-0000", np.ones((3, 28), np.float32), np.zeros(3, int))
    ds = AudioDataset(root, context=2, cache_dir=cache)
    after = cache_folders(cache)
    assert len(after) == 3 and len(set(after) - set(before)) == 1  # the old context-2 train cache is gone
    assert "0-0-0000" in ds.utterances
    assert len(AudioDataset(root, context=3, cache_dir=cache).utterances) == len(ds.utterances)  # rebuilt too
    assert len(cache_folders(cache)) == 3
