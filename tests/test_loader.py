"""FrameLoader: the batches a training loop sees."""

import gc
import threading
import time

import numpy as np
import pytest
import torch

from phonemekit.data import AudioDataset, FrameLoader
from phonemekit.synthetic import write_utterance


def numbered(root, lengths=(5, 1, 9, 3, 14, 2, 7), labels=True, partition="train-clean-100"):
    """A corpus whose feature 0 is the frame's global index, so a batch tells which frames it holds."""
    start = 0
    for u, t in enumerate(lengths):
        x = np.random.default_rng(u).standard_normal((t, 13)).astype(np.float32)
        x[:, 0] = np.arange(start, start + t)
        write_utterance(root, partition, f"{u:03d}-1-0000", x, np.arange(start, start + t) % 40 if labels else None)
        start += t
    return start


def frames_of(batch, context):
    x = batch[0] if isinstance(batch, tuple) else batch
    return x[:, context, 0].round().long()  # the window's centre row is the frame itself


@pytest.fixture
def ds(tmp_path):
    numbered(tmp_path)
    return AudioDataset(tmp_path, context=2, normalize="none")


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("batch_size", [1, 4, 7, 41, 1024])
def test_every_frame_exactly_once_per_epoch(ds, shuffle, batch_size):
    loader = FrameLoader(ds, batch_size=batch_size, shuffle=shuffle, seed=0)
    batches = list(loader)
    assert len(batches) == len(loader)
    assert all(len(b[0]) == batch_size for b in batches[:-1])
    seen = torch.cat([frames_of(b, 2) for b in batches])
    assert sorted(seen.tolist()) == list(range(len(ds)))
    if not shuffle:  # dev/test order preserved
        assert seen.tolist() == list(range(len(ds)))


def test_batches_equal_the_dataset_windows_and_labels(ds):
    for boundary in ["concat", "utterance"]:
        raw = AudioDataset(ds.root, context=3, boundary=boundary, normalize="none")
        for x, y in FrameLoader(raw, batch_size=8, seed=1):
            assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape[1:] == (7, 13)
            ref_x, ref_y = raw[frames_of((x, y), 3)]
            assert torch.equal(x, ref_x) and torch.equal(y, ref_y)


def test_shuffle_is_deterministic_for_seed_and_epoch(ds):
    def order(seed, epoch):
        loader = FrameLoader(ds, batch_size=4, seed=seed)
        loader.set_epoch(epoch)
        return torch.cat([frames_of(b, 2) for b in loader]).tolist()

    assert order(0, 0) == order(0, 0)
    assert order(0, 1) == order(0, 1)
    assert order(0, 0) != order(0, 1)
    assert order(0, 0) != order(1, 0)
    assert order(0, 0) != list(range(len(ds)))


def test_iterating_again_moves_on_to_the_next_epoch(ds):
    loader = FrameLoader(ds, batch_size=4, seed=3)
    first = torch.cat([frames_of(b, 2) for b in loader]).tolist()
    second = torch.cat([frames_of(b, 2) for b in loader]).tolist()
    assert first != second and sorted(first) == sorted(second)
    loader.set_epoch(0)
    assert torch.cat([frames_of(b, 2) for b in loader]).tolist() == first


def test_drop_last_gives_only_full_batches(ds):
    loader = FrameLoader(ds, batch_size=6, drop_last=True, seed=0)
    batches = list(loader)
    assert len(batches) == len(loader) == len(ds) // 6
    assert all(len(b[0]) == 6 for b in batches)
    seen = torch.cat([frames_of(b, 2) for b in batches]).tolist()
    assert len(set(seen)) == len(seen) == len(ds) // 6 * 6


def test_test_set_batches_are_windows_alone_in_file_order(tmp_path):
    n = numbered(tmp_path, labels=False, partition="test-clean")
    test = AudioDataset(tmp_path, "test-clean", context=2, normalize="none")
    batches = list(FrameLoader(test, batch_size=4, shuffle=False))
    assert all(torch.is_tensor(b) and b.shape[1:] == (5, 13) for b in batches)
    assert torch.cat([frames_of(b, 2) for b in batches]).tolist() == list(range(n))


def test_float16_storage_gives_float32_batches(tmp_path):
    numbered(tmp_path)
    half = AudioDataset(tmp_path, context=2, normalize="none", dtype=torch.float16)
    x, y = next(iter(FrameLoader(half, batch_size=5, shuffle=False)))
    assert x.dtype == torch.float32 and torch.equal(x, half[torch.arange(5)][0])


def test_resident_cpu_loader_matches_the_prefetching_one(ds):
    a = [b[0] for b in FrameLoader(ds, batch_size=4, seed=5)]
    b = [b[0] for b in FrameLoader(ds, batch_size=4, seed=5, resident=True)]
    assert len(a) == len(b) and all(torch.equal(u, v) for u, v in zip(a, b))


def prefetch_threads():
    return [t for t in threading.enumerate() if t.name.startswith("phonemekit-prefetch") and t.is_alive()]


@pytest.mark.parametrize("stop_after", [0, 1, 8, 9])
def test_breaking_out_early_stops_the_prefetch_threads(ds, stop_after):
    loader = FrameLoader(ds, batch_size=4, prefetch=2, workers=2, seed=0)  # 11 batches
    for i, _ in enumerate(loader):
        if i == stop_after:
            time.sleep(0.2)  # let the workers run ahead: at 8 and 9 they have gathered the last batches
            break
    gc.collect()
    for t in prefetch_threads():
        t.join(timeout=10)
    assert not prefetch_threads()
    assert len(list(loader)) == len(loader)  # and the loader still works


def test_an_error_while_gathering_reaches_the_training_loop(ds, monkeypatch):
    loader = FrameLoader(ds, batch_size=4, seed=0)
    real, calls = loader._batch, []

    def failing(idx):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("gather failed")
        return real(idx)

    monkeypatch.setattr(loader, "_batch", failing)
    got = []
    with pytest.raises(RuntimeError, match="gather failed"):
        for b in loader:
            got.append(b)
    assert len(got) == 2
    for t in prefetch_threads():
        t.join(timeout=10)
    assert not prefetch_threads()


@pytest.mark.parametrize("world_size", [2, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("batch_size", [2, 5, 10])
def test_ranks_share_one_permutation_in_disjoint_shards(ds, world_size, drop_last, batch_size):
    one = FrameLoader(ds, batch_size=batch_size, seed=7)
    one.set_epoch(2)
    perm = one.order().tolist()
    shards = []
    for rank in range(world_size):
        loader = FrameLoader(ds, batch_size=batch_size, seed=7, rank=rank, world_size=world_size, drop_last=drop_last)
        loader.set_epoch(2)
        batches = list(loader)
        assert len(batches) == len(loader) == len(FrameLoader(ds, batch_size=batch_size, seed=0, world_size=world_size, drop_last=drop_last))
        assert all(len(b[0]) <= batch_size + 1 for b in batches)
        if drop_last:
            assert all(len(b[0]) == batch_size for b in batches)
        shards.append(torch.cat([frames_of(b, 2) for b in batches]).tolist() if batches else [])
    flat = [i for s in shards for i in s]
    assert len(set(flat)) == len(flat)  # disjoint
    if not drop_last:
        assert flat == perm  # the same permutation on every rank, cut into contiguous shards
    else:
        assert set(flat) <= set(perm)
        q = len(ds) // world_size
        assert len(flat) == world_size * (q // batch_size * batch_size)


def test_bad_rank_or_batch_size_is_refused(ds):
    with pytest.raises(ValueError, match="rank"):
        FrameLoader(ds, rank=2, world_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        FrameLoader(ds, batch_size=0)
    with pytest.raises(ValueError, match="seed"):  # ranks must agree on the permutation
        FrameLoader(ds, rank=0, world_size=2)


def test_ranks_of_an_unshuffled_set_concatenate_back_to_frame_order(tmp_path):
    n = numbered(tmp_path, labels=False, partition="test-clean")
    test = AudioDataset(tmp_path, "test-clean", context=1, normalize="none")
    parts = [torch.cat([frames_of(b, 1) for b in FrameLoader(test, 4, shuffle=False, rank=r, world_size=3)])
             for r in range(3)]
    assert torch.cat(parts).tolist() == list(range(n))


@pytest.mark.parametrize("arg, value", [("batch_size", "64"), ("seed", "0"), ("rank", "0"), ("workers", 2.5)])
def test_numbers_given_as_text_are_refused_naming_the_argument(ds, arg, value):
    with pytest.raises(ValueError, match=f"{arg}={value!r}.*(number|whole)"):
        FrameLoader(ds, **{"batch_size": 8, arg: value})
