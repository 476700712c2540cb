"""HW1P2 data: the frames of a partition in one padded array, served as context windows.

The official semantics (see the course notebook): files in sorted order, per-utterance cepstral
mean-variance normalisation over time, [SOS]/[EOS] stripped, all utterances concatenated, C zero
frames at both ends of the concatenation, and item i = padded[i : i + 2C + 1].

Windows are never materialised per frame: the padded array is stored once and a batch is one
gather through a strided view of it. Finding, listing, reading and checking the files is
phonemekit.corpus (shared with HW3P2); with cache_dir the arrays are written once and
memory-mapped on later loads (phonemekit.cache, shared too).
"""

from __future__ import annotations

import copy
import math
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from . import cache, corpus
# the corpus layer's names, importable from here as they always were
from .corpus import (  # noqa: F401
    DEMO_ROOT, NORMALIZATIONS, PARTITIONS, REPO_ROOT, check_compatible, check_subset, compute_stats,
    count_frames, count_utterances, default_root, find_root, has_test_answers, is_demo, n_features,
    paired_transcripts, same_stats, utterance_shapes,
)
from .corpus import check_number as _number
from .phonemes import CLASSES, EOS, NUM_CLASSES, PHONEME_TO_INDEX, SOS

BOUNDARIES = ("concat", "utterance")


def _read_labels(path: Path, n_frames: int, mfcc_path: Path) -> np.ndarray:
    """Transcript -> uint8 class ids for its T frames, after checking [SOS] ... [EOS]."""
    t = corpus.load_npy(path)
    if t.ndim != 1 or t.shape[0] != n_frames + 2:
        raise ValueError(
            f"transcript {path} has {t.shape[0] if t.ndim == 1 else t.shape} entries, expected "
            f"T+2 = {n_frames + 2} for {mfcc_path.name} of {n_frames} frames"
        )
    t = t.astype(str)
    if PHONEME_TO_INDEX.get(t[0]) != PHONEME_TO_INDEX[SOS] or PHONEME_TO_INDEX.get(t[-1]) != PHONEME_TO_INDEX[EOS]:
        raise ValueError(f"transcript {path} must start with {SOS} and end with {EOS}; it has {t[0]!r} ... {t[-1]!r}")
    # map the few distinct strings, not every frame: np.unique + a lookup table
    names, inverse = np.unique(t[1:-1], return_inverse=True)
    ids = np.array([PHONEME_TO_INDEX.get(n, -1) for n in names], dtype=np.int64)
    bad = [str(n) for n, i in zip(names, ids) if not 0 <= i < NUM_CLASSES]
    if bad:
        raise ValueError(
            f"transcript {path} has phoneme(s) {bad} that are not one of the 40 frame classes "
            "(phonemekit.CLASSES); fix the transcript or add a spelling to phonemekit.phonemes.ALIASES"
        )
    return ids[inverse.reshape(-1)].astype(np.uint8)


# --------------------------------------------------------------------------------------------
# The dataset


def gather_windows(features: torch.Tensor, starts: torch.Tensor, window: int, dtype=None) -> torch.Tensor:
    """(B, window, F) windows of the padded (rows, F) array, starting at rows `starts`.

    A strided view makes every window a row without copying; one indexed copy then takes only
    the B windows asked for. On the GPU that is torch's index_select. On the CPU it is numpy's
    fancy indexing: one block copy per window on a single thread, which here is faster than
    index_select and never competes with the model's threads for the cores.
    """
    if not features.is_contiguous():
        raise ValueError("gather_windows needs a contiguous (rows, F) array")
    rows, f = features.shape
    shape = (rows - window + 1, window, f)
    if features.device.type == "cpu" and features.dtype != torch.bfloat16:  # numpy has no bfloat16
        a = features.numpy()
        view = np.lib.stride_tricks.as_strided(a, shape, (a.strides[0], a.strides[0], a.strides[1]), writeable=False)
        x = torch.from_numpy(view[starts.numpy()])
    else:
        x = features.as_strided(shape, (f, f, 1)).index_select(0, starts)
    return x if dtype is None else x.to(dtype)


class AudioDataset(torch.utils.data.Dataset):
    """Frames of one HW1P2 partition with their (2C+1)-frame context windows.

    ds[i] -> (x, y): x float (2C+1, F), y int64 scalar; x alone for an unlabelled partition.
    ds[idx] with a 1-D integer tensor/array -> the batch (B, 2C+1, F) and (B,) labels.

    root: the data folder (found with find_root; None: default_root()). normalize: "cepstral"
    (official), "global" (training statistics; pass stats=train.stats to dev/test, or they are
    computed from the training partition), "minmax" or "none". boundary: "concat" (official) or
    "utterance" (zeros between utterances). subset: a fixed fraction of utterances (not on test).
    dtype: storage, float32 or float16; windows come out as out_dtype (float32). cache_dir: write
    the arrays there once and memory-map them on later loads (phonemekit.cache; cache_verify="full"
    checks every block of them, not a sample). with_labels: None = all but test-*.
    Attributes: features (rows, F) padded storage, labels uint8 (T,) or None, utterances (ids in
    sorted order), offsets (U+1,) first frame of each utterance, n_features, context, window.
    """

    def __init__(
        self,
        root=None,
        partition: str = "train-clean-100",
        context: int = 30,
        normalize: str = "cepstral",
        boundary: str = "concat",
        subset: float = 1.0,
        dtype: torch.dtype = torch.float32,
        cache_dir=None,
        stats=None,
        with_labels: bool | None = None,
        out_dtype: torch.dtype = torch.float32,
        subset_seed: int = 0,
        verbose: bool = False,
        cache_verify: str = "sample",
    ):
        corpus.check_normalize(normalize)
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary={boundary!r}; choose one of {BOUNDARIES}")
        if dtype not in (torch.float32, torch.float16):
            raise ValueError(f"dtype={dtype}; storage is torch.float32 or torch.float16")
        context, subset = _number("context", context, whole=True), _number("subset", subset)
        subset_seed = _number("subset_seed", subset_seed, whole=True)
        if context < 0:
            raise ValueError(f"context={context} must be a whole number >= 0")
        is_test = partition.startswith("test")
        check_subset(subset, partition, "frame")

        self.root = find_root(root) if root is not None else default_root()
        self.partition, self.context, self.window = partition, int(context), 2 * int(context) + 1
        self.normalize, self.boundary, self.out_dtype = normalize, boundary, out_dtype
        self.with_labels = (not is_test) if with_labels is None else bool(with_labels)
        # what `like` needs to load these utterances again, prepared another way
        self._options = dict(root=self.root, partition=partition, subset=subset, subset_seed=subset_seed,
                             dtype=dtype, cache_dir=cache_dir, with_labels=self.with_labels,
                             out_dtype=out_dtype, verbose=verbose, cache_verify=cache_verify)

        transcripts = self.root / partition / "transcript" if self.with_labels else None
        mfcc, tr, self.stats, self._stats_files, stats_key = corpus.partition_files(
            self.root, partition, transcripts, subset, subset_seed, normalize, stats)
        self.utterances = [p.stem for p in mfcc]

        key = cache_dir and cache.dataset_key(
            cache_dir, "frames", self.root, partition, mfcc + (tr or []), self._stats_files,
            {"subset": subset, "subset_seed": subset_seed if subset < 1 else None, "context": self.context,
             "normalize": normalize, "boundary": boundary, "labels": self.with_labels, "dtype": str(dtype),
             "stats": stats_key})
        arrays = cache.load_or_build(cache_dir, key, lambda: self._build(mfcc, tr, dtype), verbose, cache_verify)
        features, labels, self.offsets = arrays["features"], arrays.get("labels"), np.asarray(arrays["offsets"])
        if "stats" in arrays:
            self.stats = (np.array(arrays["stats"][0]), np.array(arrays["stats"][1]))
        self.features = torch.from_numpy(features)
        self.labels = torch.from_numpy(labels) if labels is not None else None
        self.n_features = int(self.features.shape[1])
        self.lengths = np.diff(self.offsets)
        # the rows are padded for context _pad: _pad zero rows at both ends (and, in utterance mode,
        # after every utterance), so frame i of utterance u is at row _pad + i (+ _pad*u): row
        # offsets are derived, never stored per frame. A dataset derived at a smaller context
        # (like) shares these rows: its windows start _pad - context rows later.
        self._pad = self.context
        self._row_offset = self._pad if boundary == "utterance" else 0
        self._offsets_t = torch.from_numpy(self.offsets[1:-1])

    # building ----------------------------------------------------------------------------

    def _build(self, mfcc, tr, dtype):
        c = self.context
        # count first (headers only), then preallocate and fill: no list-then-concatenate
        shapes = corpus.feature_shapes(mfcc)
        f = shapes[0][1]
        if self.normalize == "global":  # given, or of the training files (these, if training)
            self.stats = corpus.build_stats(self.stats, self._stats_files, f)
        lengths = np.array([t for t, _ in shapes], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        total = int(offsets[-1])
        gap = c if self.boundary == "utterance" else 0  # C zeros after each utterance
        np_dtype = np.float16 if dtype == torch.float16 else np.float32
        # zeros: the C padding rows (and the gaps between utterances) need no separate step
        features = np.zeros((total + 2 * c + (len(mfcc) - 1) * gap, f), dtype=np_dtype)
        labels = np.empty(total, dtype=np.uint8) if tr else None
        rows = c + offsets[:-1] + np.arange(len(mfcc)) * gap  # first row of each utterance
        for u, p in enumerate(mfcc):
            corpus.write_features(features[rows[u] : rows[u] + lengths[u]], p, self.normalize, self.stats)
            if tr:
                labels[offsets[u] : offsets[u + 1]] = _read_labels(tr[u], int(lengths[u]), p)
        out = {"features": features, "offsets": offsets}
        if self.normalize == "global":
            out["stats"] = np.stack(self.stats)
        if labels is not None:
            out["labels"] = labels
        return out

    # indexing ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def window_starts(self, idx: torch.Tensor, offsets: torch.Tensor | None = None) -> torch.Tensor:
        """Row in the padded array where the window of frame idx begins."""
        start = idx if self._pad == self.context else idx + (self._pad - self.context)
        if self._row_offset == 0:
            return start
        offsets = self._offsets_t if offsets is None else offsets
        utt = torch.searchsorted(offsets.to(idx.device), idx, right=True)
        return start + self._row_offset * utt

    def with_context(self, context: int) -> "AudioDataset":
        """The same frames (utterances, normalisation, labels) with windows of another context:
        like(context=context)."""
        return self.like(context=context)

    def like(self, context=None, normalize=None, boundary=None, stats=None) -> "AudioDataset":
        """These utterances (partition, subset, labels, storage) prepared another way; what is not
        given stays as it is. Only what changes is redone, and frames are shared where they can be.

        The same normalisation is laid out again from the stored rows, without reading a file: a
        smaller context (same boundary) is a view of these rows, a larger one or the other
        boundary a new padded copy. Another normalisation, or other global statistics, reads the
        files again (through cache_dir if this dataset had one); normalize="global" without
        stats takes them from the training partition, as AudioDataset does.
        """
        context = self.context if context is None else _number("context", context, whole=True)
        normalize, boundary = normalize or self.normalize, boundary or self.boundary
        if normalize != self.normalize or (normalize == "global" and stats is not None
                                            and not same_stats(stats, self.stats)):
            return AudioDataset(**self._options, context=context, normalize=normalize, boundary=boundary,
                                stats=stats)
        if context < 0:
            raise ValueError(f"context={context} must be >= 0")
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary={boundary!r}; choose one of {BOUNDARIES}")
        if boundary == self.boundary and context == self.context:
            return self
        out = copy.copy(self)  # labels, offsets and utterances are shared, never changed
        out.context, out.window, out.boundary = context, 2 * context + 1, boundary
        if boundary == self.boundary and context <= self._pad:
            return out  # a view of the same rows
        gap = context if boundary == "utterance" else 0
        out._pad, out._row_offset = context, gap
        out.features = self.features.new_zeros(
            (len(self) + 2 * context + (len(self.utterances) - 1) * gap, self.n_features))
        frames = torch.arange(len(self))  # a frame's row is its window's start + C
        out.features[out.window_starts(frames) + context] = self.features[self.window_starts(frames) + self.context]
        return out

    def __getitem__(self, i):
        if torch.is_tensor(i) and i.ndim == 0 and not i.dtype.is_floating_point:
            i = int(i)
        if isinstance(i, (int, np.integer)) and not isinstance(i, bool):
            n = len(self)
            if not -n <= i < n:
                raise IndexError(f"frame {i} out of range for {n} frames")
            i = int(i) % n
            s = int(self.window_starts(torch.tensor([i]))[0])
            # one slice of the padded array, copied so that in-place edits never reach the data
            x = self.features[s : s + self.window].to(self.out_dtype, copy=True)
            return (x, self.labels[i].long()) if self.labels is not None else x
        idx = torch.as_tensor(np.asarray(i) if not torch.is_tensor(i) else i)
        if idx.ndim != 1 or idx.dtype.is_floating_point or idx.dtype == torch.bool:
            raise TypeError("index with an int or a 1-D integer tensor/array of frame indices")
        idx = idx.long()
        if len(idx):
            lo, hi = int(idx.min()), int(idx.max())
            if lo < -len(self) or hi >= len(self):
                raise IndexError(f"frame {lo if lo < -len(self) else hi} out of range for {len(self)} frames")
            if lo < 0:
                idx = idx % len(self)
        return self.gather(idx)

    def gather(self, idx: torch.Tensor):
        """Batch of windows (and int64 labels) for a 1-D tensor of frame indices."""
        x = gather_windows(self.features, self.window_starts(idx), self.window, self.out_dtype)
        if self.labels is None:
            return x
        return x, self.labels[idx].long()

    # utterances --------------------------------------------------------------------------

    def utterance_of(self, i) -> int:
        """Index (into .utterances) of the utterance that frame i belongs to."""
        return int(np.searchsorted(self.offsets, i, side="right") - 1)

    def utterance_frames(self, u) -> slice:
        """Frame range of utterance u (an index or an id like '103-1240-0000')."""
        if isinstance(u, str):
            u = self.utterances.index(u)
        return slice(int(self.offsets[u]), int(self.offsets[u + 1]))

    @property
    def nbytes(self) -> int:
        return self.features.numel() * self.features.element_size() + (0 if self.labels is None else self.labels.numel())

    def __repr__(self) -> str:
        return (
            f"AudioDataset({self.partition}: {len(self.utterances)} utterances, {len(self):,} frames, "
            f"F={self.n_features}, context={self.context}, normalize={self.normalize}, "
            f"boundary={self.boundary}, {self.features.dtype}, {self.nbytes / 2**20:.1f} MiB)"
        )


# --------------------------------------------------------------------------------------------
# Batches


class FrameLoader:
    """Batches of (x, y) (or x for an unlabelled set), each frame exactly once per epoch.

    device="cuda": the padded array and labels are copied to the GPU once and every batch is
    one gather there. Otherwise `workers` background threads gather the next `prefetch` batches
    while the model computes (the copy releases the GIL), in pinned memory when they go on to a GPU.

    The order of an epoch is a permutation fixed by (seed, epoch); call set_epoch(e) before each
    epoch (iterating to the end also moves on to the next epoch).

    Several GPUs (rank, world_size): every rank, given the same seed, draws the same permutation
    and takes its own contiguous shard of it; shards differ by at most one frame and together
    hold every frame exactly once (with shuffle=False the ranks' outputs concatenate back to
    frame order). Every rank gets the same number of batches, counted from the smallest shard:
    a rank whose shard is one frame longer puts that frame into its last batch, which can then
    hold batch_size + 1 frames. With drop_last=True the frames past each rank's last full batch
    are dropped instead, as on one rank.
    """

    def __init__(self, dataset: AudioDataset, batch_size: int = 1024, shuffle: bool = True,
                 drop_last: bool = False, device=None, seed: int | None = None,
                 resident: bool | None = None, prefetch: int = 4, workers: int = 2,
                 storage_dtype=None, rank: int = 0, world_size: int = 1):
        batch_size, rank, world_size, prefetch, workers = (
            _number(name, value, whole=True) for name, value in [("batch_size", batch_size), ("rank", rank),
                                                                 ("world_size", world_size), ("prefetch", prefetch),
                                                                 ("workers", workers)])
        seed = None if seed is None else _number("seed", seed, whole=True)
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank={rank} must be in [0, world_size={world_size})")
        if len(dataset) < world_size:
            raise ValueError(f"{len(dataset)} frames cannot be shared by world_size={world_size} ranks")
        if world_size > 1 and shuffle and seed is None:  # each process has its own default seed
            raise ValueError("with world_size > 1 pass the same seed= on every rank, so all ranks draw one permutation")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, int(batch_size), shuffle, drop_last
        self.rank, self.world_size = int(rank), int(world_size)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.seed = seed if seed is not None else int(torch.initial_seed() % 2**31)
        self.epoch, self.prefetch, self.workers = 0, prefetch, max(1, int(workers))
        # resident: keep the data on the target device (by default when it fits); else gather on
        # the host and stream the batches
        dt = storage_dtype or dataset.features.dtype
        nbytes = dataset.features.shape[0] * dataset.features.shape[1] * dt.itemsize
        self.resident = fits_on_device(self.device, nbytes, dataset) if resident is None else resident
        self._features = dataset.features
        self._labels = dataset.labels
        if self.resident and self.device.type != "cpu":
            try:
                self._features = dataset.features.to(self.device, dt).contiguous()
                self._labels = None if dataset.labels is None else dataset.labels.to(self.device)
            except torch.OutOfMemoryError:
                raise RuntimeError(
                    f"the frames of {dataset.partition} ({nbytes / 2**30:.1f} GiB as {dt}) do not fit on "
                    f"{self.device}: use resident=False (batches stream from pinned host memory) or "
                    "storage_dtype='float16'") from None
        self._offsets = dataset._offsets_t.to(self._features.device)  # once, not per batch

    def shard(self) -> tuple[int, int, int]:
        """(start, length, smallest length) of this rank's shard of the epoch's order."""
        q, r = divmod(len(self.dataset), self.world_size)
        start = self.rank * q + min(self.rank, r)
        return start, q + (self.rank < r), q

    def __len__(self) -> int:
        q = self.shard()[2]
        return q // self.batch_size if self.drop_last else math.ceil(q / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> torch.Tensor:
        """Frame order of the whole epoch (all ranks): the same for the same (seed, epoch)."""
        n = len(self.dataset)
        if not self.shuffle:
            return torch.arange(n)
        g = torch.Generator().manual_seed(corpus.epoch_seed(self.seed, self.epoch))
        return torch.randperm(n, generator=g)

    def _batch(self, idx: torch.Tensor, dtype=None):
        ds = self.dataset
        x = gather_windows(self._features, ds.window_starts(idx, self._offsets), ds.window, dtype or ds.out_dtype)
        if self._labels is None:
            return x
        y = self._labels[idx]
        return x, (y if dtype is not None else y.long())  # streamed: uint8 until on the GPU

    def _index_batches(self):
        start, length, _ = self.shard()
        mine = self.order()[start : start + length]
        if self.resident:
            mine = mine.to(self.device)
        nb, bs = len(self), self.batch_size
        for b in range(nb):
            last = b == nb - 1 and not self.drop_last
            yield mine[b * bs :] if last else mine[b * bs : (b + 1) * bs]

    def __iter__(self):
        if self.resident:
            for idx in self._index_batches():
                yield self._batch(idx)
        else:
            yield from self._prefetched()
        self.epoch += 1

    def _host_batch(self, idx):
        if self.device.type != "cuda":
            return self._batch(idx)
        # in the storage dtype (half the bytes for float16) into pinned pages, which let the copy
        # to the GPU run asynchronously; the cast to out_dtype happens on the GPU
        b = self._batch(idx, dtype=self._features.dtype)
        return tuple(a.pin_memory() for a in b) if isinstance(b, tuple) else b.pin_memory()

    def _to_device(self, b):
        """A host batch on the device: features cast to out_dtype, labels to int64, both there."""
        x, *rest = b if isinstance(b, tuple) else (b,)
        x = x.to(self.device, non_blocking=True).to(self.dataset.out_dtype)
        rest = [a.to(self.device, non_blocking=True).long() for a in rest]
        return (x, *rest) if rest else x

    def _prefetched(self):
        # `workers` threads gather the next `prefetch` batches while the consumer computes;
        # futures are taken in submission order, so the batch order is the epoch's order
        batches = self._index_batches()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="phonemekit-prefetch") as pool:
            pending = deque(pool.submit(self._host_batch, idx) for idx in islice(batches, max(1, self.prefetch)))
            try:
                while pending:
                    b = pending.popleft().result()  # an error in a worker is raised here
                    idx = next(batches, None)
                    if idx is not None:
                        pending.append(pool.submit(self._host_batch, idx))
                    yield self._to_device(b) if self.device.type != "cpu" else b
            finally:  # finished, broke out early or raised: drop what is queued, let running ones end
                for f in pending:
                    f.cancel()


def fits_on_device(device: torch.device, nbytes: int, dataset=None, share: float = 0.6) -> bool:
    """Whether frames of nbytes should live on the device: on a GPU when they take at most `share`
    of its free memory (the rest is for the model, its activations and the optimizer); on a CPU
    there is nothing to move. Says so in one line when they do not fit."""
    if device.type != "cuda":
        return device.type != "cpu"
    free, _ = torch.cuda.mem_get_info(device)
    if nbytes <= share * free:
        return True
    what = f"the frames of {dataset.partition}" if dataset is not None else "the frames"
    print(f"phonemekit: {what} ({nbytes / 2**30:.1f} GiB) would take more than {share:.0%} of the GPU's free "
          f"memory ({free / 2**30:.1f} GiB): batches stream from pinned host memory instead (resident=False)")
    return False


def describe(ds: AudioDataset) -> str:
    """One paragraph a student can read: sizes, memory, label balance."""
    s = repr(ds)
    if ds.labels is not None:
        counts = torch.bincount(ds.labels.long(), minlength=NUM_CLASSES)
        s += f"\n  most common class: {CLASSES[int(counts.argmax())]} ({counts.max().item() / len(ds):.1%} of frames)"
    return s


# --------------------------------------------------------------------------------------------
# What the notebooks and the command line ask of a corpus


def test_dataset(config, root=None, with_labels=None, stats=None) -> AudioDataset:
    """The test partition prepared exactly as the config prepared training (context, normalisation,
    boundary; `stats`: the global statistics a checkpoint holds, for normalize="global").
    HW1P2's step of its Task: phonemekit.frames.test_dataset."""
    from .frames import test_dataset as frames_test_dataset

    return frames_test_dataset(config, root, stats=stats, with_labels=with_labels)


test_dataset.__test__ = False  # a helper, not a test: pytest must not collect it where it is imported

