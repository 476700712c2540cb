"""HW1P2 data: find the partitions, load them into one padded array, and serve context windows.

The official semantics (see the course notebook): files in sorted order, per-utterance cepstral
mean-variance normalisation over time, [SOS]/[EOS] stripped, all utterances concatenated, C zero
frames at both ends of the concatenation, and item i = padded[i : i + 2C + 1].

Windows are never materialised per frame: the padded array is stored once and a batch is one
gather through a strided view of it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import queue
import shutil
import threading
from pathlib import Path

import numpy as np
import torch

from .phonemes import EOS, NUM_CLASSES, PHONEME_TO_INDEX, SOS

PARTITIONS = ("train-clean-100", "train-clean-360", "dev-clean", "test-clean")
NORMALIZATIONS = ("cepstral", "global", "minmax", "none")
BOUNDARIES = ("concat", "utterance")
REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_ROOT = REPO_ROOT / "data" / "demo"
_CACHE_VERSION = 1


# --------------------------------------------------------------------------------------------
# Finding the data


def find_root(path, skip=()) -> Path:
    """The folder that holds the partitions (train-clean-100/, dev-clean/, test-clean/).

    The Kaggle zip's top folder changes by semester (11785-f24-hw1p2, ...), so look below
    `path` (up to three levels) for a folder with a partition in it.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"data folder {path} does not exist: pass the folder where the Kaggle zip was "
            "extracted (it holds train-clean-100/, dev-clean/, test-clean/)"
        )
    frontier = [path]
    for _ in range(4):
        found = sorted(d for d in frontier if any((d / p).is_dir() for p in PARTITIONS)
                       and d.resolve() not in skip)
        if found:
            return found[0]
        frontier = sorted(c for d in frontier for c in d.iterdir() if c.is_dir())
    raise FileNotFoundError(
        f"no HW1P2 partition ({', '.join(PARTITIONS)}) found in {path} or three levels below: "
        "download the data (phonemekit.submit.kaggle_download or `kaggle competitions download`) "
        "and extract it there"
    )


def default_root(verbose: bool = True) -> Path:
    """Kaggle data when it can be found, else the shipped demo corpus (with a one-line notice).

    Looked for, in order: $PHONEMEKIT_DATA, ./data, <repo>/data, /content/data (Colab).
    """
    candidates = [os.environ.get("PHONEMEKIT_DATA"), "data", REPO_ROOT / "data", "/content/data"]
    for c in candidates:
        if not c or not Path(c).is_dir():
            continue
        try:
            return find_root(c, skip={DEMO_ROOT.resolve()})
        except FileNotFoundError:
            continue
    if verbose:
        print(f"phonemekit: no Kaggle data found, using the demo corpus in {DEMO_ROOT}")
    return DEMO_ROOT


def is_demo(root) -> bool:
    return Path(root).resolve() == DEMO_ROOT.resolve()


# --------------------------------------------------------------------------------------------
# Reading and checking one utterance


def _load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as e:  # a truncated file, a pickle, not numpy at all
        raise ValueError(
            f"{path} is not a readable .npy file ({type(e).__name__}: {e}); re-extract it "
            "from the Kaggle zip"
        ) from None


def _feature_shape(path: Path) -> tuple[int, int]:
    x = _load_npy(path, mmap=True)  # reads the header only
    if x.ndim != 2:
        raise ValueError(f"{path} has shape {x.shape}; expected (frames, features)")
    if x.shape[0] == 0:
        raise ValueError(f"{path} is an empty utterance (0 frames); remove it together with its transcript")
    return int(x.shape[0]), int(x.shape[1])


def _read_labels(path: Path, n_frames: int, mfcc_path: Path) -> np.ndarray:
    """Transcript -> uint8 class ids for its T frames, after checking [SOS] ... [EOS]."""
    t = _load_npy(path)
    if t.ndim != 1 or t.shape[0] != n_frames + 2:
        raise ValueError(
            f"transcript {path} has {t.shape[0] if t.ndim == 1 else t.shape} entries, expected "
            f"T+2 = {n_frames + 2} for {mfcc_path.name} of {n_frames} frames"
        )
    t = t.astype(str)
    if PHONEME_TO_INDEX.get(t[0]) != PHONEME_TO_INDEX[SOS] or PHONEME_TO_INDEX.get(t[-1]) != PHONEME_TO_INDEX[EOS]:
        raise ValueError(f"transcript {path} must start with {SOS} and end with {EOS}; it has {t[0]!r} ... {t[-1]!r}")
    names, inverse = np.unique(t[1:-1], return_inverse=True)
    ids = np.array([PHONEME_TO_INDEX.get(n, -1) for n in names], dtype=np.int64)
    bad = [n for n, i in zip(names, ids) if not 0 <= i < NUM_CLASSES]
    if bad:
        raise ValueError(f"transcript {path} has unknown phoneme(s) {bad}; the 40 classes are phonemekit.CLASSES")
    return ids[inverse].astype(np.uint8)


def _normalize(x: np.ndarray, how: str, stats) -> np.ndarray:
    x = x.astype(np.float32, copy=False)
    if how == "cepstral":  # over time (axis 0): each coefficient zero mean, unit std per utterance
        std = x.std(axis=0)
        return (x - x.mean(axis=0)) / np.where(std > 0, std, 1)  # a constant coefficient -> 0, not NaN
    if how == "minmax":  # per utterance and coefficient, to [0, 1]
        lo, hi = x.min(axis=0), x.max(axis=0)
        return (x - lo) / np.where(hi > lo, hi - lo, 1)
    if how == "global":
        return (x - stats[0]) / stats[1]
    return x


def _partition_files(root: Path, partition: str, with_labels: bool):
    part = root / partition
    mfcc_dir, tr_dir = part / "mfcc", part / "transcript"
    if not part.is_dir():
        have = sorted(d.name for d in root.iterdir() if d.is_dir())
        raise FileNotFoundError(f"partition folder {part} is missing (found {have}); check `partition` and `root`")
    if not mfcc_dir.is_dir():
        raise FileNotFoundError(f"{mfcc_dir} is missing: each partition holds mfcc/ (and transcript/ except test)")
    # sorted(): os.listdir order is arbitrary, and the test ids depend on this order
    mfcc = sorted(p for p in mfcc_dir.iterdir() if p.suffix == ".npy")
    if not mfcc:
        raise FileNotFoundError(f"{mfcc_dir} holds no .npy files")
    if not with_labels:
        return mfcc, None
    if not tr_dir.is_dir():
        raise FileNotFoundError(
            f"{tr_dir} is missing: labels are needed for {partition} (pass with_labels=False to load features only)"
        )
    tr = sorted(p for p in tr_dir.iterdir() if p.suffix == ".npy")
    a, b = {p.name for p in mfcc}, {p.name for p in tr}
    if a != b:
        only_m, only_t = sorted(a - b)[:3], sorted(b - a)[:3]
        raise ValueError(
            f"{mfcc_dir} has {len(a)} files and {tr_dir} has {len(b)}, and their names differ "
            f"(only in mfcc: {only_m}, only in transcript: {only_t}); each utterance needs both files"
        )
    return mfcc, tr


def _fingerprint(files) -> str:
    h = hashlib.sha1()
    for p in files:
        s = p.stat()
        h.update(f"{p.parent.name}/{p.name}:{s.st_size}:{s.st_mtime_ns};".encode())
    return h.hexdigest()


def compute_stats(root, partition: str = "train-clean-100", files=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-coefficient mean and std over every frame of a partition (for normalize="global")."""
    files = files or _partition_files(find_root(root), partition, with_labels=False)[0]
    n, s, ss = 0, 0.0, 0.0
    for p in files:
        x = _load_npy(p).astype(np.float64)
        n, s, ss = n + len(x), s + x.sum(0), ss + (x * x).sum(0)
    mean = s / n
    std = np.sqrt(np.maximum(ss / n - mean * mean, 0))
    return mean.astype(np.float32), np.where(std > 0, std, 1).astype(np.float32)


# --------------------------------------------------------------------------------------------
# The dataset


def gather_windows(features: torch.Tensor, starts: torch.Tensor, window: int) -> torch.Tensor:
    """(B, window, F) windows of the padded (rows, F) array, starting at rows `starts`.

    A strided view makes every window a row without copying; index_select then copies only
    the B windows asked for. The same two calls run on CPU and GPU.
    """
    rows, f = features.shape
    view = features.as_strided((rows - window + 1, window, f), (f, f, 1))
    return view.index_select(0, starts)


class AudioDataset(torch.utils.data.Dataset):
    """Frames of one HW1P2 partition with their (2C+1)-frame context windows.

    ds[i] -> (x, y): x float (2C+1, F), y int64 scalar; x alone for an unlabelled partition.
    ds[idx] with a 1-D integer tensor/array -> the batch (B, 2C+1, F) and (B,) labels.
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
    ):
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize={normalize!r}; choose one of {NORMALIZATIONS}")
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary={boundary!r}; choose one of {BOUNDARIES}")
        if dtype not in (torch.float32, torch.float16):
            raise ValueError(f"dtype={dtype}; storage is torch.float32 or torch.float16")
        if context < 0:
            raise ValueError(f"context={context} must be >= 0")
        is_test = partition.startswith("test")
        if not 0 < subset <= 1:
            raise ValueError(f"subset={subset} must be a fraction in (0, 1]")
        if is_test and subset < 1:
            raise ValueError(f"subset={subset} on {partition}: Kaggle scores every test frame, so test is never subset")

        self.root = find_root(root) if root is not None else default_root()
        self.partition, self.context, self.window = partition, int(context), 2 * int(context) + 1
        self.normalize, self.boundary, self.out_dtype = normalize, boundary, out_dtype
        self.with_labels = (not is_test) if with_labels is None else bool(with_labels)

        mfcc, tr = _partition_files(self.root, partition, self.with_labels)
        if subset < 1:  # a random but fixed choice of utterances, kept in sorted order
            keep = max(1, round(subset * len(mfcc)))
            pick = np.sort(np.random.default_rng(subset_seed).choice(len(mfcc), keep, replace=False))
            mfcc = [mfcc[i] for i in pick]
            tr = [tr[i] for i in pick] if tr else None
        self.utterances = [p.stem for p in mfcc]

        if normalize == "global":
            if stats is None:  # statistics of the training partition, never of dev/test
                stats = compute_stats(self.root, files=mfcc if partition.startswith("train") else None)
            stats = (np.asarray(stats[0], np.float32), np.asarray(stats[1], np.float32))
        self.stats = stats

        key = {
            "version": _CACHE_VERSION, "root": str(self.root.resolve()), "partition": partition,
            "files": _fingerprint(mfcc + (tr or [])), "context": self.context, "normalize": normalize,
            "boundary": boundary, "labels": self.with_labels, "dtype": str(dtype),
            "stats": None if stats is None else [stats[0].tolist(), stats[1].tolist()],
        }
        cached = _cache_load(cache_dir, key) if cache_dir else None
        if cached is None:
            arrays = self._build(mfcc, tr, dtype)
            if cache_dir:
                _cache_save(cache_dir, key, arrays)
                arrays = _cache_load(cache_dir, key)  # serve the memory-mapped copy, not two in RAM
        else:
            arrays = cached
            if verbose:
                print(f"phonemekit: loaded {partition} from cache {cache_dir}")
        features, labels, self.offsets = arrays["features"], arrays.get("labels"), arrays["offsets"]
        self.features = torch.from_numpy(features)
        self.labels = torch.from_numpy(labels) if labels is not None else None
        self.n_features = int(self.features.shape[1])
        self.lengths = np.diff(self.offsets)
        # utterance mode pads C zeros after every utterance: frame i of utterance u starts its
        # window at row i + C*u, so the row offsets are derived, never stored per frame
        self._row_offset = self.context if boundary == "utterance" else 0
        self._offsets_t = torch.from_numpy(self.offsets[1:-1])

    # building ----------------------------------------------------------------------------

    def _build(self, mfcc, tr, dtype):
        c = self.context
        # count first (headers only), then preallocate and fill: no list-then-concatenate
        shapes = [_feature_shape(p) for p in mfcc]
        dims = {f for _, f in shapes}
        if len(dims) > 1:
            first = mfcc[0]
            odd = next(p for p, (_, f) in zip(mfcc, shapes) if f != shapes[0][1])
            raise ValueError(
                f"feature dimension differs between files: {first.name} has {shapes[0][1]}, "
                f"{odd} has {_feature_shape(odd)[1]}; all files of a partition must match"
            )
        f = shapes[0][1]
        if self.stats is not None and len(self.stats[0]) != f:
            raise ValueError(f"stats have {len(self.stats[0])} coefficients but {mfcc[0]} has {f}")
        lengths = np.array([t for t, _ in shapes], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        total = int(offsets[-1])
        gaps = len(mfcc) if self.boundary == "utterance" else 0  # C zeros after each utterance
        np_dtype = np.float16 if dtype == torch.float16 else np.float32
        features = np.zeros((total + 2 * c + (gaps - 1 if gaps else 0) * c, f), dtype=np_dtype)
        labels = np.empty(total, dtype=np.uint8) if tr else None
        for u, p in enumerate(mfcc):
            x = _load_npy(p)
            if not np.isfinite(x).all():
                bad = int((~np.isfinite(x)).any(axis=1).argmax())
                raise ValueError(f"{p} has NaN or Inf features (first at frame {bad}); re-extract the file or drop this utterance and its transcript")
            row = c + offsets[u] + (u * c if gaps else 0)
            features[row : row + len(x)] = _normalize(x, self.normalize, self.stats)
            if tr:
                labels[offsets[u] : offsets[u + 1]] = _read_labels(tr[u], len(x), p)
        out = {"features": features, "offsets": offsets}
        if labels is not None:
            out["labels"] = labels
        return out

    # indexing ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def window_starts(self, idx: torch.Tensor) -> torch.Tensor:
        """Row in the padded array where the window of frame idx begins."""
        if self._row_offset == 0:
            return idx
        utt = torch.searchsorted(self._offsets_t.to(idx.device), idx, right=True)
        return idx + self._row_offset * utt

    def __getitem__(self, i):
        if isinstance(i, (int, np.integer)):
            n = len(self)
            if not -n <= i < n:
                raise IndexError(f"frame {i} out of range for {n} frames")
            idx = torch.tensor([i % n])
            out = self.gather(idx)
            return (out[0][0], out[1][0]) if self.labels is not None else out[0]
        idx = torch.as_tensor(np.asarray(i) if not torch.is_tensor(i) else i)
        if idx.ndim != 1 or idx.dtype.is_floating_point or idx.dtype == torch.bool:
            raise TypeError("index with an int or a 1-D integer tensor/array of frame indices")
        return self.gather(idx.long() % len(self) if len(idx) and idx.min() < 0 else idx.long())

    def gather(self, idx: torch.Tensor):
        """Batch of windows (and int64 labels) for a 1-D tensor of frame indices."""
        x = gather_windows(self.features, self.window_starts(idx), self.window).to(self.out_dtype)
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
# The cache: one .npy per array, memory-mapped on reload


def _cache_path(cache_dir, key) -> Path:
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir).expanduser() / f"{key['partition']}-{digest}"


def _cache_load(cache_dir, key):
    d = _cache_path(cache_dir, key)
    try:
        if json.loads((d / "key.json").read_text()) != key:
            return None
    except (OSError, ValueError):
        return None
    # mmap "c" (copy-on-write) so torch.from_numpy gets a writable array and copies nothing
    return {p.stem: np.load(p, mmap_mode="c") for p in d.glob("*.npy")}


def _cache_save(cache_dir, key, arrays) -> None:
    d = _cache_path(cache_dir, key)
    tmp = d.with_name(d.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, a in arrays.items():
        np.save(tmp / f"{name}.npy", a)
    (tmp / "key.json").write_text(json.dumps(key, sort_keys=True))  # written last: marks it complete
    shutil.rmtree(d, ignore_errors=True)
    os.replace(tmp, d)  # a crash mid-write leaves a .tmp folder, never a half cache


# --------------------------------------------------------------------------------------------
# Batches


class FrameLoader:
    """Batches of (x, y) (or x for an unlabelled set), each frame exactly once per epoch.

    device="cuda": the padded array and labels are copied to the GPU once and every batch is
    one gather there. On CPU a background thread gathers the next batches while the model
    computes (torch's gather releases the GIL).
    """

    def __init__(self, dataset: AudioDataset, batch_size: int = 1024, shuffle: bool = True,
                 drop_last: bool = False, device=None, seed: int | None = None,
                 resident: bool | None = None, prefetch: int = 2, storage_dtype=None):
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, int(batch_size), shuffle, drop_last
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.seed = seed if seed is not None else int(torch.initial_seed() % 2**31)
        self.epoch, self.prefetch = 0, prefetch
        # resident: keep the data on the target device (GPU default); else gather on the host
        self.resident = (self.device.type != "cpu") if resident is None else resident
        self._features = dataset.features
        self._labels = dataset.labels
        if self.resident and self.device.type != "cpu":
            dt = storage_dtype or dataset.features.dtype
            self._features = dataset.features.to(self.device, dt)
            self._labels = None if dataset.labels is None else dataset.labels.to(self.device)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> torch.Tensor:
        """Frame order of the current epoch: the same for the same (seed, epoch)."""
        n = len(self.dataset)
        if not self.shuffle:
            return torch.arange(n)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(n, generator=g)

    def _batch(self, idx: torch.Tensor):
        ds = self.dataset
        x = gather_windows(self._features, ds.window_starts(idx), ds.window).to(ds.out_dtype)
        if self._labels is None:
            return x
        return x, self._labels[idx].long()

    def _index_batches(self):
        order = self.order()
        if self.resident:
            order = order.to(self.device)
        stop = len(self) * self.batch_size
        for b in range(0, min(stop, len(order)), self.batch_size):
            yield order[b : b + self.batch_size]

    def __iter__(self):
        if self.resident:
            for idx in self._index_batches():
                yield self._batch(idx)
        else:
            yield from self._prefetched()
        self.epoch += 1

    def _prefetched(self):
        pin = self.device.type == "cuda"
        q: queue.Queue = queue.Queue(maxsize=max(1, self.prefetch))
        stop = threading.Event()

        def work():
            try:
                for idx in self._index_batches():
                    b = self._batch(idx)
                    if pin:
                        b = tuple(t.pin_memory() for t in b) if isinstance(b, tuple) else b.pin_memory()
                    while not stop.is_set():
                        try:
                            q.put(b, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                q.put(None)
            except BaseException as e:  # hand errors to the consumer instead of hanging it
                q.put(e)

        t = threading.Thread(target=work, daemon=True)
        t.start()
        try:
            while (b := q.get()) is not None:
                if isinstance(b, BaseException):
                    raise b
                if self.device.type != "cpu":
                    b = tuple(t.to(self.device, non_blocking=True) for t in b) if isinstance(b, tuple) else b.to(self.device, non_blocking=True)
                yield b
        finally:
            stop.set()
            t.join(timeout=5)


def describe(ds: AudioDataset) -> str:
    """One paragraph a student can read: sizes, memory, label balance."""
    s = repr(ds)
    if ds.labels is not None:
        counts = torch.bincount(ds.labels.long(), minlength=NUM_CLASSES)
        s += f"\n  most common class: {int(counts.argmax())} ({counts.max().item() / len(ds):.1%} of frames)"
    return s

