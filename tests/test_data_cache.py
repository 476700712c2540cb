"""The cache (cache_dir) of both datasets, AudioDataset (HW1P2) and UtteranceDataset (HW3P2):
reused and memory-mapped, rebuilt when any input changes, shared by processes, never served
damaged or stale. Every test runs for both homeworks."""

import hashlib
import multiprocessing
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from phonemekit import cache, corpus
from phonemekit.data import AudioDataset
from phonemekit.phonemes import CLASSES, EOS, SOS
from phonemekit.sequences import UtteranceDataset
from phonemekit.synthetic import write_utterance
from test_data import write_corpus

KINDS = {"frames": AudioDataset, "ctc": UtteranceDataset}
HOMEWORKS = list(KINDS)


def load(hw, root, partition="train-clean-100", **opts):
    """The dataset of a homework; HW1P2's with context 3 unless given."""
    if hw == "frames":
        opts.setdefault("context", 3)
    return KINDS[hw](root, partition, **opts)


def digest(ds) -> str:
    """One hash of everything a dataset serves."""
    h = hashlib.sha1()
    arrays = [ds.features, ds.labels, torch.from_numpy(ds.offsets)]
    arrays += [torch.from_numpy(ds.label_offsets)] if getattr(ds, "label_offsets", None) is not None else []
    for a in arrays:
        h.update(b"-" if a is None else a.numpy().tobytes())
    h.update(repr(ds.utterances).encode())
    return h.hexdigest()


def cache_folders(cache_dir):
    """The published cache folders (hidden ones are builds in progress or leftovers)."""
    return sorted(p.name for p in cache_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def later(path, seconds=5):
    """Move a file's modification time on (file systems with coarse clocks would not)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 1_000_000_000))


@pytest.fixture
def builds(monkeypatch):
    """Counts how often the arrays are built from the .npy files (not read from the cache)."""
    calls = []
    for cls in KINDS.values():
        def counting(self, *a, _real=cls._build, **k):
            calls.append(self.partition)
            return _real(self, *a, **k)

        monkeypatch.setattr(cls, "_build", counting)
    return calls


@pytest.fixture(params=HOMEWORKS)
def hw(request):
    return request.param


# ---------------------------------------------------------------------------------------------
# Reuse


def test_cache_is_reused_and_memory_mapped_on_reload(tmp_path, builds, monkeypatch, hw):
    root, cache_dir = tmp_path / "data", tmp_path / "cache"
    write_corpus(root)
    first = load(hw, root, cache_dir=cache_dir)
    assert len(builds) == 1
    mapped = []
    real_load = np.load
    monkeypatch.setattr(np, "load", lambda *a, **k: mapped.append(k.get("mmap_mode")) or real_load(*a, **k))
    again = load(hw, root, cache_dir=cache_dir)
    assert len(builds) == 1  # not rebuilt
    assert mapped and all(m is not None for m in mapped)  # every array memory-mapped, none read whole
    monkeypatch.setattr(np, "load", real_load)
    assert digest(again) == digest(first) == digest(load(hw, root))


def test_global_stats_of_dev_come_from_the_cache_without_reading_train(tmp_path, builds, monkeypatch, hw):
    root, cache_dir = tmp_path / "data", tmp_path / "cache"
    write_corpus(root)
    write_corpus(root, {"5-5-0000": 9}, seed=2, partition="dev-clean")
    first = load(hw, root, "dev-clean", normalize="global", cache_dir=cache_dir)
    monkeypatch.setattr(corpus, "compute_stats", lambda *a, **k: pytest.fail("recomputed the statistics"))
    again = load(hw, root, "dev-clean", normalize="global", cache_dir=cache_dir)
    assert len(builds) == 1
    np.testing.assert_array_equal(again.stats[0], first.stats[0])
    assert digest(again) == digest(first)


# ---------------------------------------------------------------------------------------------
# The key: every input the arrays are made of


def edit_mfcc(root, opts):
    f = root / "train-clean-100" / "mfcc" / "19-198-0001.npy"
    np.save(f, np.load(f) + 100)  # same size
    later(f, 2)
    return opts


def edit_transcript(root, opts):
    f = root / "train-clean-100" / "transcript" / "19-198-0001.npy"
    t = np.load(f)
    t[5] = CLASSES[(CLASSES.index(str(t[5])) + 1) % len(CLASSES)]  # one phoneme changed, same size
    np.save(f, t)
    later(f, 2)
    return opts


def edit_training_frames(root, opts):  # dev's global statistics are the training frames'
    edit_mfcc(root, opts)
    return opts


def sequences_beside(root, opts):  # HW3P2 reads transcript-hw3p2/ when there is one
    seq = root / "train-clean-100" / "transcript-hw3p2"
    seq.mkdir()
    for f in (root / "train-clean-100" / "transcript").iterdir():
        np.save(seq / f.name, np.array([SOS, "AH", "B", EOS]))
    return opts


DEV_GLOBAL = {"partition": "dev-clean", "normalize": "global"}
STATS = (np.zeros(28, np.float32), np.ones(28, np.float32))
# (what changes, options before, how it changes: a function of (root, options) -> options after, homeworks)
CHANGES = [
    ("mfcc contents", {}, edit_mfcc, HOMEWORKS),
    ("transcript contents", {}, edit_transcript, HOMEWORKS),
    ("training frames of dev's statistics", DEV_GLOBAL, edit_training_frames, HOMEWORKS),
    ("statistics given", {**DEV_GLOBAL, "stats": STATS}, lambda r, o: {**o, "stats": (STATS[0] + 1, STATS[1])},
     HOMEWORKS),
    ("normalize", {}, lambda r, o: {**o, "normalize": "minmax"}, HOMEWORKS),
    ("dtype", {}, lambda r, o: {**o, "dtype": torch.float16}, HOMEWORKS),
    ("subset", {"subset": 0.5}, lambda r, o: {**o, "subset": 0.75}, HOMEWORKS),
    ("subset_seed", {"subset": 0.5}, lambda r, o: {**o, "subset_seed": 1}, HOMEWORKS),
    ("with_labels", {}, lambda r, o: {**o, "with_labels": False}, HOMEWORKS),
    ("context", {}, lambda r, o: {**o, "context": 4}, ["frames"]),
    ("boundary", {}, lambda r, o: {**o, "boundary": "utterance"}, ["frames"]),
    ("sequence folder", {}, sequences_beside, ["ctc"]),
]


@pytest.mark.parametrize("hw, before, change", [pytest.param(h, b, c, id=f"{h}-{name}")
                                                for name, b, c, hws in CHANGES for h in hws])
def test_the_cache_is_rebuilt_when_any_input_changes(tmp_path, builds, hw, before, change):
    root, cache_dir = tmp_path / "data", tmp_path / "cache"
    write_corpus(root)
    write_corpus(root, {"5-5-0000": 9, "6-6-0000": 4}, seed=2, partition="dev-clean")
    load(hw, root, cache_dir=cache_dir, **before)
    load(hw, root, cache_dir=cache_dir, **before)
    assert len(builds) == 1
    after = change(root, dict(before))
    ds = load(hw, root, cache_dir=cache_dir, **after)
    assert len(builds) == 2
    assert digest(ds) == digest(load(hw, root, **after))  # what an uncached load gives


def test_a_touched_file_with_the_same_bytes_keeps_the_cache(tmp_path, builds, hw):
    root, cache_dir = tmp_path / "data", tmp_path / "cache"
    write_corpus(root)
    load(hw, root, cache_dir=cache_dir)
    later(root / "train-clean-100" / "mfcc" / "19-198-0001.npy")
    later(root / "train-clean-100" / "transcript" / "19-198-0001.npy")
    load(hw, root, cache_dir=cache_dir)
    assert len(builds) == 1
    write_utterance(root, "train-clean-100", "0-0-0000", np.ones((3, 28), np.float32), np.zeros(3, int))  # added
    assert "0-0-0000" in load(hw, root, cache_dir=cache_dir).utterances and len(builds) == 2


@pytest.mark.parametrize("how", ["rewritten in place, mtime restored", "cp -p of an edited copy"])
def test_a_same_size_edit_is_seen_whatever_the_modification_time_says(tmp_path, builds, hw, how):
    root, cache_dir = tmp_path / "data", tmp_path / "cache"
    write_corpus(root)
    labels = np.random.default_rng(0).integers(0, len(CLASSES), 400)  # not runs: valid for HW3P2 too
    write_utterance(root, "train-clean-100", "500-1-0000", np.zeros((400, 28), np.float32), labels)
    f = root / "train-clean-100" / "mfcc" / "500-1-0000.npy"  # 45 KB: the edit is far from both ends
    load(hw, root, normalize="none", cache_dir=cache_dir)
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
    ds = load(hw, root, normalize="none", cache_dir=cache_dir)
    assert len(builds) == 2
    assert digest(ds) == digest(load(hw, root, normalize="none"))  # (a third build, uncached)
    # the same bytes extracted again: the cache stays valid (the content decides, not the metadata)
    data, st = f.read_bytes(), f.stat()
    f.unlink()
    f.write_bytes(data)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    load(hw, root, normalize="none", cache_dir=cache_dir)
    assert len(builds) == 3


def test_bad_input_in_a_cached_load_is_still_caught(tmp_path, hw):
    root, cache_dir = tmp_path / "data", tmp_path / "cache"
    write_corpus(root)
    load(hw, root, cache_dir=cache_dir)
    f = root / "train-clean-100" / "mfcc" / "84-121-0003.npy"
    x = np.load(f)
    x[0, 0] = np.nan
    np.save(f, x)
    later(f)
    with pytest.raises(ValueError, match="84-121-0003.npy"):
        load(hw, root, cache_dir=cache_dir)


def test_both_homeworks_share_a_cache_folder_without_mixing_their_arrays(tmp_path):
    root, cache_dir = tmp_path / "data", tmp_path / "cache"
    write_corpus(root)
    frames, ctc = load("frames", root, cache_dir=cache_dir), load("ctc", root, cache_dir=cache_dir)
    assert len(cache_folders(cache_dir)) == 2
    assert digest(load("frames", root, cache_dir=cache_dir)) == digest(frames)
    assert digest(load("ctc", root, cache_dir=cache_dir)) == digest(ctc)


# ---------------------------------------------------------------------------------------------
# Damage, crashes, concurrent builders


def overwrite_middle(f, n=200):
    with open(f, "r+b") as fh:  # same size, same header: only the checksums can tell
        fh.seek(f.stat().st_size // 2)
        fh.write(os.urandom(n))


DAMAGES = ["labels.npy missing", "features.npy missing", "offsets.npy missing", "features.npy empty",
           "features.npy truncated", "labels.npy empty", "features.npy overwritten", "labels.npy overwritten",
           "manifest.json missing"]


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_cache_is_rebuilt_with_a_notice_never_served(tmp_path, builds, capsys, hw, damage):
    root, cache_dir = tmp_path / "data", tmp_path / "cache"
    write_corpus(root)
    fresh = load(hw, root)
    load(hw, root, cache_dir=cache_dir)
    (folder,) = cache_folders(cache_dir)
    name, how = damage.split()
    f = cache_dir / folder / name
    if how == "missing":
        f.unlink()
    elif how == "empty":
        f.write_bytes(b"")
    elif how == "overwritten":
        overwrite_middle(f)
    else:
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    capsys.readouterr()
    n = len(builds)
    ds = load(hw, root, cache_dir=cache_dir)
    assert len(builds) == n + 1
    assert "rebuil" in capsys.readouterr().out  # one line says so
    assert digest(ds) == digest(fresh)
    again = load(hw, root, cache_dir=cache_dir)  # and the rebuilt cache is used
    assert len(builds) == n + 1 and digest(again) == digest(fresh)


def test_full_verification_finds_damage_anywhere_in_a_large_cache(tmp_path, builds, capsys, monkeypatch, hw):
    # blocks of 128 bytes and 4 of them checked per load: a sample would likely miss one block
    monkeypatch.setattr(cache, "BLOCK", 128)
    monkeypatch.setattr(cache, "SAMPLE_BLOCKS", 4)
    root, cache_dir = tmp_path / "data", tmp_path / "cache"
    write_corpus(root)
    fresh = load(hw, root)
    load(hw, root, cache_dir=cache_dir)
    (folder,) = cache_folders(cache_dir)
    f = cache_dir / folder / "features.npy"
    assert f.stat().st_size > 40 * 128
    overwrite_middle(f)
    capsys.readouterr()
    ds = load(hw, root, cache_dir=cache_dir, cache_verify="full")
    assert len(builds) == 3 and "checksum" in capsys.readouterr().out  # fresh, cached, rebuilt
    assert digest(ds) == digest(fresh)
    with pytest.raises(ValueError, match="cache_verify"):
        load(hw, root, cache_dir=cache_dir, cache_verify="every")


def test_a_half_written_cache_is_never_used(tmp_path, builds, monkeypatch, hw):
    root, cache_dir = tmp_path / "data", tmp_path / "cache"
    write_corpus(root)
    real_save = np.save

    def crash(path, arr, *a, **k):
        if Path(path).name == "labels.npy":
            raise KeyboardInterrupt  # the runtime disconnects mid-write
        return real_save(path, arr, *a, **k)

    fresh = digest(load(hw, root))
    monkeypatch.setattr(np, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        load(hw, root, cache_dir=cache_dir)
    monkeypatch.setattr(np, "save", real_save)
    ds = load(hw, root, cache_dir=cache_dir)
    assert len(builds) == 3
    assert digest(ds) == digest(load(hw, root, cache_dir=cache_dir)) == fresh
    assert len(builds) == 3  # the complete cache is reused


def test_a_new_build_replaces_the_older_cache_of_the_same_partition_and_options(tmp_path, hw):
    root, cache_dir = tmp_path / "data", tmp_path / "cache"
    write_corpus(root)
    write_corpus(root, {"5-5-0000": 9}, seed=2, partition="dev-clean")
    load(hw, root, cache_dir=cache_dir)
    load(hw, root, normalize="minmax", cache_dir=cache_dir)  # other options: kept
    load(hw, root, "dev-clean", cache_dir=cache_dir)  # another partition: kept
    before = cache_folders(cache_dir)
    assert len(before) == 3
    write_utterance(root, "train-clean-100", "0-0-0000", np.ones((3, 28), np.float32), np.zeros(3, int))
    ds = load(hw, root, cache_dir=cache_dir)
    after = cache_folders(cache_dir)
    assert len(after) == 3 and len(set(after) - set(before)) == 1  # the old train cache is gone
    assert "0-0-0000" in ds.utterances
    assert len(load(hw, root, normalize="minmax", cache_dir=cache_dir).utterances) == len(ds.utterances)
    assert len(cache_folders(cache_dir)) == 3


def _load_in_rounds(hw, root, cache_dir, rounds, barrier, results):
    """One of several processes loading the same dataset at the same moment, round after round."""
    for r in range(rounds):
        barrier.wait(timeout=120)  # the test has prepared this round: all processes start together
        try:
            results.put((r, digest(load(hw, root, cache_dir=cache_dir)), cache.__file__))
        except Exception as e:  # reported, so that the test shows what went wrong
            results.put((r, f"{type(e).__name__}: {e}", cache.__file__))
        barrier.wait(timeout=120)  # raises BrokenBarrierError, ending this process, when the test failed


def test_processes_building_one_cache_at_once_all_get_the_same_arrays(tmp_path, monkeypatch, hw):
    # a notebook and a CLI run, or DDP ranks: each round all three load at once, from no cache,
    # after the data changed, and over a damaged cache; every one must get the right arrays
    root, cache_dir = tmp_path / "data", tmp_path / "cache"
    write_corpus(root, {f"{100 + k}-1-{k:04d}": 30 + 7 * k for k in range(12)})
    victim = root / "train-clean-100" / "mfcc" / "105-1-0005.npy"
    rounds = ["no cache", "data changed", "cache damaged", "data changed", "cache overwritten", "cache complete"]
    # the fork server is a fresh interpreter: give it this tree's src/ and tests/, not an installed copy
    here = Path(__file__).resolve().parent
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(here.parent / "src"), str(here),
                                                      os.environ.get("PYTHONPATH", "")]))
    ctx = multiprocessing.get_context("forkserver")  # fresh processes, forked from one that imported torch once
    ctx.set_forkserver_preload(["phonemekit.data", "phonemekit.sequences", "test_data_cache"])
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_load_in_rounds, args=(hw, root, cache_dir, len(rounds), barrier, results))
             for _ in range(3)]
    for p in procs:
        p.start()
    try:
        for r, what in enumerate(rounds):
            if what == "data changed":
                np.save(victim, np.load(victim) + 1)
            if what == "cache damaged":
                (cache_dir / cache_folders(cache_dir)[0] / "labels.npy").unlink()
            if what == "cache overwritten":
                overwrite_middle(cache_dir / cache_folders(cache_dir)[0] / "features.npy")
            expected = digest(load(hw, root))
            barrier.wait(timeout=120)
            barrier.wait(timeout=120)
            got = [results.get(timeout=60) for _ in procs]
            assert [g for _, g, _ in got] == [expected] * 3, f"round {r} ({what})"
            assert {m for _, _, m in got} == {cache.__file__}  # the code under test, not an installed copy
            assert len(cache_folders(cache_dir)) == 1, f"round {r} ({what}): {cache_folders(cache_dir)}"
    finally:
        barrier.abort()  # a failed round: the processes stop waiting for the next one
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
