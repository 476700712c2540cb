"""HW1P2 data: find the partitions, load them into one padded array, and serve context windows.

The official semantics (see the course notebook): files in sorted order, per-utterance cepstral
mean-variance normalisation over time, [SOS]/[EOS] stripped, all utterances concatenated, C zero
frames at both ends of the concatenation, and item i = padded[i : i + 2C + 1].

Windows are never materialised per frame: the padded array is stored once and a batch is one
gather through a strided view of it. With cache_dir the arrays are written once and memory-mapped
on later loads; the cache is found by the files' contents, so no edit is ever served stale (see
"The cache" below for how, and what it costs).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import numbers
import os
import shutil
import tempfile
import time
import uuid
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from .phonemes import CLASSES, EOS, NUM_CLASSES, PHONEME_TO_INDEX, SOS

PARTITIONS = ("train-clean-100", "train-clean-360", "dev-clean", "test-clean")
NORMALIZATIONS = ("cepstral", "global", "minmax", "none")
BOUNDARIES = ("concat", "utterance")
REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_ROOT = REPO_ROOT / "data" / "demo"
_CACHE_VERSION = 3
_FP16_MAX = 65504.0
_FP32_MAX = float(np.finfo(np.float32).max)
_SYSTEM_FILES = {"Thumbs.db", "desktop.ini"}  # left in folders by Windows (macOS's are hidden: .DS_Store)


# --------------------------------------------------------------------------------------------
# Finding the data


def _broken_link(path: Path) -> str:
    """' (a link to X, which does not exist or loops)' when path is such a link, else ''."""
    if path.is_symlink() and not path.exists():
        return f" (a symbolic link to {os.readlink(path)}, which does not exist or loops back on itself)"
    return ""


def _subdirs(d: Path) -> list[Path]:
    try:
        return [c for c in d.iterdir() if c.is_dir()]
    except OSError:  # an unreadable folder (permissions, a stale mount) holds no data for us
        return []


def find_root(path, skip=()) -> Path:
    """The folder that holds the partitions (train-clean-100/, dev-clean/, test-clean/).

    The Kaggle zip's top folder changes by semester (11785-f24-hw1p2, ...), so look below
    `path` (up to three levels) for a folder with a partition in it. Folders in `skip` are passed over.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"data folder {path} does not exist{_broken_link(path)}: pass the folder where the Kaggle zip was "
            "extracted (it holds train-clean-100/, dev-clean/, test-clean/)"
        )
    skip = {Path(s).resolve() for s in skip}
    if path.name in PARTITIONS and (path / "mfcc").is_dir() and path.resolve() not in skip:
        return path.parent  # given a partition folder itself: its parent holds the partitions
    frontier = [path]
    for _ in range(4):
        found = sorted(d for d in frontier if any((d / p).is_dir() for p in PARTITIONS)
                       and d.resolve() not in skip)
        if found:
            return found[0]
        frontier = sorted(c for d in frontier for c in _subdirs(d))
    raise FileNotFoundError(
        f"no HW1P2 partition ({', '.join(PARTITIONS)}) found in {path} or three levels below: "
        "download the data (phonemekit.submit.kaggle_download or `kaggle competitions download`) "
        "and extract it there"
    )


_demo_notice_given = False


def default_root(verbose: bool = True) -> Path:
    """Kaggle data when it can be found, else the shipped demo corpus (with a one-line notice).

    Looked for, in order: $PHONEMEKIT_DATA, ./data, <repo>/data, /content/data (Colab).
    """
    candidates = [os.environ.get("PHONEMEKIT_DATA"), "data", REPO_ROOT / "data", "/content/data"]
    for c in candidates:
        if not c or not Path(c).is_dir():
            continue
        try:
            return find_root(c, skip={DEMO_ROOT})
        except FileNotFoundError:
            continue
    if not DEMO_ROOT.is_dir():  # an installed package ships no demo corpus
        raise FileNotFoundError(
            "no HW1P2 data found in $PHONEMEKIT_DATA, ./data or /content/data, and no demo corpus "
            f"at {DEMO_ROOT}: pass root= (the folder holding train-clean-100/), set PHONEMEKIT_DATA, "
            "or run from a clone of the kit, which ships data/demo/"
        )
    global _demo_notice_given
    if verbose and not _demo_notice_given:  # once per process: a search builds many datasets
        _demo_notice_given = True
        print(f"phonemekit: no Kaggle data found (set PHONEMEKIT_DATA or pass root=), "
              f"using the demo corpus in {DEMO_ROOT}")
    return DEMO_ROOT


def is_demo(root) -> bool:
    return Path(root).resolve() == DEMO_ROOT.resolve()


# --------------------------------------------------------------------------------------------
# Reading and checking one utterance


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:  # a truncated file, a pickle, not numpy at all
        raise ValueError(
            f"{path} is not a readable .npy file ({type(e).__name__}: {e}); re-extract it "
            "from the Kaggle zip"
        ) from None


def _npy_header(path: Path) -> tuple[tuple, np.dtype]:
    """Shape and dtype from the .npy header alone (a few hundred bytes, not the array)."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
        return shape, dtype
    except Exception as e:
        raise ValueError(
            f"{path} is not a readable .npy file ({type(e).__name__}: {e}); re-extract it "
            "from the Kaggle zip"
        ) from None


def _feature_shape(path: Path) -> tuple[int, int]:
    shape, dtype = _npy_header(path)
    if len(shape) != 2:
        raise ValueError(f"{path} has shape {shape}; expected (frames, features)")
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise ValueError(f"{path} holds {dtype} values; features must be numbers (frames, features)")
    if shape[0] == 0:
        raise ValueError(f"{path} is an empty utterance (0 frames); remove it together with its transcript")
    if shape[1] == 0:
        raise ValueError(f"{path} has 0 features per frame (shape {shape}); re-extract it from the Kaggle zip")
    return int(shape[0]), int(shape[1])


def _load_features(path: Path) -> np.ndarray:
    x = _load_npy(path)
    if x.ndim != 2 or x.size == 0:
        _feature_shape(path)  # raises the matching error
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).any(axis=1).argmax())
        raise ValueError(f"{path} has NaN or Inf features (first at frame {bad}); re-extract the file "
                         "or remove this utterance together with its transcript")
    return x


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


def _over_time(x: np.ndarray, how: str) -> np.ndarray | None:
    """Cepstral (each coefficient mean 0, std 1) or min-max ([0, 1]) normalisation over time (axis 0)
    of one utterance, in x's dtype; None when a statistic overflows it."""
    with np.errstate(over="ignore", invalid="ignore"):
        if how == "cepstral":
            shift, spread = x.mean(axis=0), x.std(axis=0)
        else:
            shift = x.min(axis=0)
            spread = x.max(axis=0) - shift
    if not (np.isfinite(shift).all() and np.isfinite(spread).all()):
        return None
    return (x - shift) / np.where(spread > 0, spread, 1)  # a constant coefficient -> 0, not NaN


def _normalize(x: np.ndarray, how: str, stats) -> np.ndarray:
    """One utterance normalised; the caller casts it to the storage dtype and checks that it fits."""
    if how == "none":
        return x
    if how == "global":
        return (x - stats[0]) / stats[1]
    out = _over_time(x.astype(np.float32, copy=False), how)  # float32: fast, and right for real data
    if out is None:
        # squares of float32 values beyond ~1e19 overflow, and float64 ones may not fit float32 at
        # all: both normalisations ignore a coefficient's scale, so scale each into [-1, 1] first
        x = x.astype(np.float64)
        scale = np.abs(x).max(axis=0)
        out = _over_time(x / np.where(scale > 0, scale, 1), how)
    return out


def _listing(folder: Path) -> list[Path]:
    """The <utterance>.npy files of mfcc/ or transcript/, sorted by name (os.listdir's order is
    arbitrary, and the test ids follow this order).

    Hidden files (.DS_Store, ._<id>.npy from a macOS zip) and Windows' Thumbs.db/desktop.ini are
    skipped. Anything else is an error: a skipped utterance would shift every later test id.
    """
    files = []
    with os.scandir(folder) as entries:
        for e in entries:
            p = folder / e.name
            if e.name.startswith(".") or e.name in _SYSTEM_FILES:
                continue
            if p.suffix != ".npy":
                fix = (f"rename it to {p.stem}.npy" if p.suffix.lower() == ".npy" else
                       f"move it out of {folder}, which holds only <utterance>.npy files")
                raise ValueError(f"{p} is not an utterance file: {fix} (skipping it would drop an utterance)")
            try:
                regular = e.is_file()  # follows a link; no system call for a plain file
            except OSError:  # a link that loops
                regular = False
            if not regular:  # a folder, or a link to nothing
                if _broken_link(p):
                    raise FileNotFoundError(f"{p} cannot be read{_broken_link(p)}: link it to the file, "
                                            "or copy the file there")
                raise ValueError(f"{p} is not a file: move it out of {folder}, which holds only <utterance>.npy files")
            files.append(p)
    return sorted(files, key=lambda p: p.name)


def _partition_files(root: Path, partition: str, with_labels: bool):
    part = root / partition
    mfcc_dir, tr_dir = part / "mfcc", part / "transcript"
    if not part.is_dir():
        have = sorted(d.name for d in _subdirs(root))
        raise FileNotFoundError(f"partition folder {part} is missing{_broken_link(part)} (found {have}); "
                                "check `partition` and `root`")
    if not mfcc_dir.is_dir():
        raise FileNotFoundError(f"{mfcc_dir} is missing{_broken_link(mfcc_dir)}: each partition holds mfcc/ "
                                "(and transcript/ except test)")
    mfcc = _listing(mfcc_dir)
    if not mfcc:
        raise FileNotFoundError(f"{mfcc_dir} holds no .npy files; re-extract {partition} from the Kaggle zip")
    if not with_labels:
        return mfcc, None
    if not tr_dir.is_dir():
        raise FileNotFoundError(
            f"{tr_dir} is missing{_broken_link(tr_dir)}: labels are needed for {partition} "
            "(pass with_labels=False to load features only)"
        )
    return mfcc, paired_transcripts(mfcc, mfcc_dir, tr_dir)


def paired_transcripts(mfcc: list[Path], mfcc_dir: Path, tr_dir: Path) -> list[Path]:
    """The transcript files of tr_dir, one per mfcc file with the same name, in the same order."""
    tr = _listing(tr_dir)
    a, b = [p.name for p in mfcc], [p.name for p in tr]
    if a != b:
        only_m, only_t = sorted(set(a) - set(b))[:3], sorted(set(b) - set(a))[:3]
        raise ValueError(
            f"{mfcc_dir} has {len(a)} files and {tr_dir} has {len(b)}, and their names differ "
            f"(only in mfcc: {only_m}, only in transcripts: {only_t}); each utterance needs both files"
        )
    return tr


def _train_partition(root: Path) -> str:
    for p in PARTITIONS:
        if p.startswith("train") and (root / p / "mfcc").is_dir():
            return p
    raise FileNotFoundError(
        f"normalize='global' needs statistics of a training partition, and {root} has none: "
        "pass stats=train_dataset.stats (or stats=compute_stats(root_with_train))"
    )


def utterance_shapes(root, partition: str, limit: int | None = None) -> list[tuple[int, int]]:
    """(frames, features) of each utterance of a partition, in sorted order, from the .npy headers
    alone (nothing is loaded); only the first `limit` files when given."""
    files = _partition_files(find_root(root), partition, with_labels=False)[0]
    return [_feature_shape(f) for f in files[:limit]]


def compute_stats(root, partition: str = "train-clean-100", files=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-coefficient mean and std over every frame of a partition (for normalize="global")."""
    files = files or _partition_files(find_root(root), partition, with_labels=False)[0]
    n, s, ss = 0, 0.0, 0.0
    for p in files:
        x = _load_features(p).astype(np.float64)
        if np.abs(x).max() > _FP32_MAX:  # its statistics would not fit float32 either
            raise ValueError(_range_error(p, "float32", "global"))
        n, s, ss = n + len(x), s + x.sum(0), ss + (x * x).sum(0)
    mean = s / n
    with np.errstate(over="ignore", invalid="ignore"):
        std = np.sqrt(np.maximum(ss / n - mean * mean, 0))
    if not (np.isfinite(std).all() and np.abs(std).max() <= _FP32_MAX):  # squares beyond float64's range
        raise ValueError(f"the features of {files[0].parent} are too large for global statistics "
                         "(their squares overflow); use normalize='cepstral', which handles them")
    return mean.astype(np.float32), np.where(std > 0, std, 1).astype(np.float32)


def _range_error(path: Path, dtype: str, normalize: str) -> str:
    if dtype == "float16":
        return (f"{path} has values beyond float16's range ({_FP16_MAX:g}) after normalize={normalize!r}; "
                "use dtype=torch.float32 or a normalisation")
    return (f"{path} has values beyond float32's range ({_FP32_MAX:.3g}) after normalize={normalize!r}; "
            "use normalize='cepstral' or 'minmax', which scale each utterance, or rescale the file")


def _check_stats(stats, f=None):
    mean, std = (np.asarray(s, np.float32).reshape(-1) for s in stats)
    if len(mean) != len(std) or (f is not None and len(mean) != f):
        raise ValueError(f"stats hold {len(mean)} means and {len(std)} stds; the data has {f} coefficients")
    if not (np.isfinite(mean).all() and np.isfinite(std).all()):
        raise ValueError("stats hold NaN or Inf; pass the statistics of a training set (train.stats)")
    return mean, np.where(std > 0, std, 1).astype(np.float32)  # a constant coefficient -> no Inf


def same_stats(a, b) -> bool:
    """Whether two (mean, std) pairs (or None) are the same statistics, as stored (float32)."""
    if a is None or b is None:
        return a is None and b is None
    return all(np.array_equal(np.asarray(x, np.float32).reshape(-1), np.asarray(y, np.float32).reshape(-1))
               for x, y in zip(a, b))


def _number(name: str, value, whole: bool = False):
    """A numeric argument as given: text is refused, not parsed (phonemekit.config.Config parses
    the text of YAML files and the command line)."""
    if isinstance(value, (str, bytes, bool)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}={value!r} must be a number, not {type(value).__name__}: "
                         f"pass e.g. {name}={1 if whole else 0.5}")
    if whole and int(value) != value:
        raise ValueError(f"{name}={value!r} must be a whole number")
    return int(value) if whole else float(value)


def check_subset(subset: float, partition: str, unit: str) -> None:
    """A fraction in (0, 1], and all of a test partition: Kaggle scores every test item."""
    if not 0 < subset <= 1:
        raise ValueError(f"subset={subset} must be a fraction in (0, 1]")
    if partition.startswith("test") and subset < 1:
        raise ValueError(f"subset={subset} on {partition}: Kaggle scores every test {unit}, so test is never subset")


def check_compatible(train: "AudioDataset", val: "AudioDataset") -> None:
    """A ValueError naming both sets when val's frames are not prepared like train's: the feature
    dimension, the context, the boundary, the normalisation and its statistics. Call it before
    training: a model sized for train's frames would fail on val only after a whole epoch."""
    a, b = f"{train.partition} in {train.root}", f"{val.partition} in {val.root}"
    problems = []
    if train.n_features != val.n_features:
        problems.append(f"{train.n_features} features per frame in {a} but {val.n_features} in {b} "
                        "(use one semester's data for both)")
    for name in ("context", "boundary", "normalize"):
        if getattr(train, name) != getattr(val, name):
            problems.append(f"{name}={getattr(train, name)!r} for {a} but {name}={getattr(val, name)!r} for {b}")
    if train.normalize == val.normalize == "global" and not same_stats(train.stats, val.stats):
        problems.append(f"{b} is normalised with other global statistics than {a} (pass stats=train.stats)")
    if problems:
        raise ValueError("the training and validation sets do not fit together: " + "; ".join(problems))


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
    the arrays there once and memory-map them on later loads. with_labels: None = all but test-*.
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
    ):
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize={normalize!r}; choose one of {NORMALIZATIONS}")
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
                             out_dtype=out_dtype, verbose=verbose)

        mfcc, tr = _partition_files(self.root, partition, self.with_labels)
        if subset < 1:  # a random but fixed choice of utterances, kept in sorted order
            keep = max(1, round(subset * len(mfcc)))
            pick = np.sort(np.random.default_rng(subset_seed).choice(len(mfcc), keep, replace=False))
            mfcc = [mfcc[i] for i in pick]
            tr = [tr[i] for i in pick] if tr else None
        self.utterances = [p.stem for p in mfcc]

        # global statistics come from training data, never from dev/test: from the frames being
        # loaded when this is a training partition, else from the training partition's files
        stats_key, self._stats_files = None, None
        if normalize == "global":
            if stats is not None:
                stats = _check_stats(stats)
                stats_key = [stats[0].tolist(), stats[1].tolist()]
            elif partition.startswith("train"):
                stats_key = "own frames"
            else:
                stats_key = _train_partition(self.root)
                self._stats_files = _partition_files(self.root, stats_key, with_labels=False)[0]
        self.stats = stats

        cached = None
        if cache_dir:
            cache_dir = Path(cache_dir).expanduser()
            options = {"version": _CACHE_VERSION, "root": str(self.root.resolve()), "partition": partition,
                       "subset": subset, "subset_seed": subset_seed if subset < 1 else None,
                       "context": self.context, "normalize": normalize, "boundary": boundary,
                       "labels": self.with_labels, "dtype": str(dtype), "stats": stats_key}
            contents = {"files": _fingerprint(mfcc + (tr or []), cache_dir),
                        "stats files": _fingerprint(self._stats_files, cache_dir) if self._stats_files else None}
            key = {"options": options, "contents": contents}
            cached = _cache_load(cache_dir, key, verbose)
        if cached is None:
            arrays = self._build(mfcc, tr, dtype)
            if cache_dir:  # serve the memory-mapped copy, not two in RAM
                arrays = _cache_save(cache_dir, key, arrays) or arrays
        else:
            arrays = cached
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
        shapes = [_feature_shape(p) for p in mfcc]
        f = shapes[0][1]
        odd = next((p for p, (_, g) in zip(mfcc, shapes) if g != f), None)
        if odd is not None:
            raise ValueError(
                f"feature dimension differs between files: {mfcc[0].name} has {f}, "
                f"{odd} has {_feature_shape(odd)[1]}; all files of a partition must match"
            )
        stats = self.stats
        if self.normalize == "global" and stats is None:  # of the training files (these, if training)
            stats = self.stats = compute_stats(self.root, files=self._stats_files or mfcc)
        if stats is not None and len(stats[0]) != f:
            raise ValueError(f"stats have {len(stats[0])} coefficients but {mfcc[0]} has {f}; "
                             "pass the stats of a training set with the same features")
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
            x = _load_features(p)
            if x.shape != shapes[u]:
                raise ValueError(f"{p} changed while loading (shape {x.shape}, was {shapes[u]}); load again")
            stored = features[rows[u] : rows[u] + len(x)]
            with np.errstate(over="ignore", invalid="ignore"):  # checked on the stored values, just below
                stored[...] = _normalize(x, self.normalize, stats)
            if not np.isfinite(stored).all():
                raise ValueError(_range_error(p, np.dtype(np_dtype).name, self.normalize))
            if tr:
                labels[offsets[u] : offsets[u + 1]] = _read_labels(tr[u], len(x), p)
        out = {"features": features, "offsets": offsets}
        if self.normalize == "global":
            out["stats"] = np.stack(stats)
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
# The cache: one .npy per array, memory-mapped on reload
#
# A cache folder is named <partition>-<options>-<contents>: digests of the options (root, context,
# normalisation, ...) and of the files' contents. It is written under a hidden, unique name and
# renamed into place in one step, with manifest.json (the key; each array's shape, dtype and size)
# written last. A folder whose manifest does not match its files is rebuilt, with a notice, never
# served. Processes that build the same cache at once (a notebook and a command-line run, DDP
# ranks) all succeed: the first rename wins and the others use that folder, which holds the same
# arrays. A new build removes the older caches of its partition and options (their files have
# changed since); a process that has one memory-mapped keeps its arrays (POSIX frees the space
# when it is done), and hidden folders, builds in progress, are left alone unless an hour old.
#
# The contents fingerprint: name, size and modification time miss a same-size edit whose mtime
# was restored (cp -p, rsync -a and unzip all restore it), and a sample of each file (its first and
# last blocks) misses an edit in between. So it is a CRC-32 of every byte of every file. That
# reads all the files (about 1 GB/s on a 2-core VM, a tenth of a build), so it is done
# only when the files' metadata (size, mtime, ctime, inode) changed since it was last computed,
# and otherwise taken from cache_dir/fingerprints.json: the system sets ctime on every write,
# copy or timestamp change and no tool can set it back, so unchanged metadata means unchanged
# bytes. A reload costs one stat per file, as before; after a re-extraction, one read of the files,
# and the cache is reused when the bytes are the same. (On Windows st_ctime is the creation time:
# an in-place rewrite that restores the mtime goes unseen there.)

_MANIFEST = "manifest.json"
_FINGERPRINTS = "fingerprints.json"
_LEFTOVER_AGE = 3600  # seconds: a hidden folder this old is a crashed build's, not one in progress


def _read_json(path: Path) -> dict:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _fingerprint(files, cache_dir: Path) -> str:
    """A digest of the files' contents (each name, size and CRC-32), recomputed only when their
    metadata changed (see above)."""
    h = hashlib.sha1()
    for p in files:
        s = p.stat()
        h.update(f"{p.parent.name}/{p.name}:{s.st_size}:{s.st_mtime_ns}:{s.st_ctime_ns}:{s.st_ino};".encode())
    stamp, known = h.hexdigest(), _read_json(cache_dir / _FINGERPRINTS)
    if stamp not in known:
        h = hashlib.sha1()
        for p in files:
            data = p.read_bytes()
            h.update(f"{p.parent.name}/{p.name}:{len(data)}:{zlib.crc32(data)};".encode())
        known = {**dict(list(known.items())[-99:]), stamp: h.hexdigest()}  # the 100 latest
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_dir / f".{_FINGERPRINTS}.{uuid.uuid4().hex}"
        tmp.write_text(json.dumps(known))
        os.replace(tmp, cache_dir / _FINGERPRINTS)  # in one step: another process may be reading it
    return known[stamp]


def _digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _cache_path(cache_dir: Path, key) -> Path:
    options = key["options"]
    return cache_dir / f"{options['partition']}-{_digest(options)}-{_digest(key['contents'])}"


def _cache_read(d: Path, key) -> dict:
    """The arrays of cache folder d, memory-mapped; an error unless it is a complete cache of key."""
    manifest = json.loads((d / _MANIFEST).read_text())
    if manifest["key"] != json.loads(json.dumps(key)):
        raise ValueError("its manifest is of other files or options")
    arrays = {}
    for name, meta in manifest["arrays"].items():
        path = d / f"{name}.npy"
        size = path.stat().st_size
        if size != meta["bytes"]:
            raise ValueError(f"{path.name} has {size} bytes, not {meta['bytes']}")
        # mmap "c" (copy-on-write) so torch.from_numpy gets a writable array and copies nothing
        a = np.load(path, mmap_mode="c", allow_pickle=False)
        if [list(a.shape), str(a.dtype)] != [meta["shape"], meta["dtype"]]:
            raise ValueError(f"{path.name} holds {a.dtype} {a.shape}, not {meta['dtype']} {meta['shape']}")
        arrays[name] = a
    needed = {"features", "offsets"}
    needed |= {"labels"} if key["options"]["labels"] else set()
    needed |= {"stats"} if key["options"]["normalize"] == "global" else set()
    if needed - arrays.keys():
        raise ValueError(f"it lacks {sorted(needed - arrays.keys())}")
    return arrays


def _cache_load(cache_dir: Path, key, verbose: bool = False) -> dict | None:
    """The cached arrays; None when there are none, or (with a notice) when they cannot be served."""
    d = _cache_path(cache_dir, key)
    if not d.exists():
        return None
    try:
        arrays = _cache_read(d, key)
    except Exception as e:  # whatever is wrong (a file missing, truncated, unreadable): rebuild
        why = f"{Path(e.filename).name}: {e.strerror}" if isinstance(e, OSError) and e.filename else e
        print(f"phonemekit: the cache {d} is incomplete or unreadable ({why}); rebuilding it")
        return None
    if verbose:
        print(f"phonemekit: loaded {key['options']['partition']} from cache {d}")
    return arrays


def _cache_save(cache_dir: Path, key, arrays) -> dict | None:
    """Write the arrays as the cache of key; return them memory-mapped from it (None if that fails)."""
    d = _cache_path(cache_dir, key)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{d.name}.build-", dir=cache_dir))
    try:
        manifest = {"key": key, "arrays": {}}
        for name, a in arrays.items():
            np.save(tmp / f"{name}.npy", a)
            manifest["arrays"][name] = {"shape": list(a.shape), "dtype": str(a.dtype),
                                        "bytes": (tmp / f"{name}.npy").stat().st_size}
        (tmp / _MANIFEST).write_text(json.dumps(manifest))  # last: a folder without it is never served
        _publish(tmp, d, key)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # already gone when it was renamed into place
    _prune(d)
    try:
        return _cache_read(d, key)
    except Exception:  # replaced by another process in between: the caller serves its own arrays
        return None


def _publish(tmp: Path, d: Path, key) -> None:
    """Rename the finished build tmp to d in one step. A complete cache already at d (another
    process finished first, with the same arrays) is kept; a damaged one is moved aside first."""
    for _ in range(5):
        try:
            os.rename(tmp, d)  # atomic, and refused while d exists
            return
        except OSError:
            pass
        try:
            _cache_read(d, key)
            return
        except FileNotFoundError:  # d itself is gone (moved aside by another process): try again
            if not d.exists():
                continue
        except Exception:
            pass
        aside = d.with_name(f".{d.name}.damaged-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(d, aside)  # of several processes, one moves it
        except OSError:
            continue
        try:
            _cache_read(aside, key)  # complete after all: another process replaced the damaged one
        except Exception:  # just now, and may be opening it; _prune removes it in an hour
            shutil.rmtree(aside, ignore_errors=True)


def _prune(d: Path) -> None:
    """Remove the older caches of d's partition and options, and hidden leftovers of crashed builds."""
    prefix = d.name.rsplit("-", 1)[0] + "-"  # <partition>-<options>-
    for p in d.parent.iterdir():
        try:
            if p.name.startswith(prefix) and p != d:
                shutil.rmtree(p)
            elif p.name.startswith("." + prefix) and time.time() - p.stat().st_mtime > _LEFTOVER_AGE:
                shutil.rmtree(p)
        except OSError:  # removed by another process meanwhile, or in use (Windows)
            pass


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
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % 2**63)
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
    boundary; `stats`: the global statistics a checkpoint holds, for normalize="global")."""
    if config.normalize == "global" and stats is None:
        raise ValueError("normalize='global' needs the training statistics: pass stats=ckpt['stats'] from the "
                         "checkpoint (load_checkpoint returns it), so test frames are scaled as in training")
    if isinstance(stats, dict):
        stats = (np.asarray(stats["mean"], dtype=np.float32), np.asarray(stats["std"], dtype=np.float32))
    return AudioDataset(root, "test-clean", context=config.context, normalize=config.normalize,
                        boundary=config.boundary, with_labels=with_labels, stats=stats)


test_dataset.__test__ = False  # a helper, not a test: pytest must not collect it where it is imported


def count_frames(root, partition: str = "test-clean") -> int:
    """Frames in a partition, from the .npy headers (nothing is loaded)."""
    try:
        return sum(t for t, _ in utterance_shapes(root, partition))
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{e}; or give --n-frames") from None


def n_features(root, partition: str = "train-clean-100") -> int:
    """The feature dimension of the data (28 today, 27 or fewer in older semesters)."""
    for part in (partition, "dev-clean", "test-clean"):
        try:
            return utterance_shapes(root, part, limit=1)[0][1]
        except FileNotFoundError:
            continue
    raise FileNotFoundError(f"no mfcc/*.npy under {root}: pass --features N")


def has_test_answers(root) -> bool:
    """True for a corpus that ships test transcripts (the demo corpus), which Kaggle's data does not."""
    return root is not None and (Path(root) / "test-clean" / "transcript").is_dir()
