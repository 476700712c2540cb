"""HW3P2 data: whole utterances with their phoneme sequences, and length-bucketed batches.

    train = UtteranceDataset(root, "train-clean-100")        # features + CTC label sequences
    loader = SequenceLoader(train, batch_size=64, shuffle=True, seed=0, device="cuda")
    for x, x_lengths, y, y_lengths in loader: ...            # (B,T,F) (B,) (B,S) (B,)
    test = UtteranceDataset(root, "test-clean")               # features only, in file order

The files are HW1P2's layout and reading rules (sorted names, per-utterance cepstral
normalisation, [SOS]/[EOS] stripped), but a transcript is the utterance's phoneme *sequence*
(L + 2 entries, L unrelated to the T frames), mapped to the 41 CTC classes (0 = blank).

Memory is kept as in phonemekit.data: one array of all frames plus utterance offsets, one
array of all labels plus label offsets, never a list of small tensors. A batch is one gather.
Finding, reading and checking the files is phonemekit.corpus and cache_dir is phonemekit.cache,
both shared with HW1P2.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from . import cache, corpus
from .corpus import NORMALIZATIONS, check_subset, default_root, find_root  # noqa: F401 (importable from here)
from .phonemes import CTC_INDEX, EOS, PHONEME_TO_INDEX, SOS

# The kit's generated corpora (data/demo) keep HW1P2's frame-aligned transcripts in transcript/
# and HW3P2's sequences beside them; Kaggle's HW3P2 data has its sequences in transcript/.
SEQUENCE_DIRS = ("transcript-hw3p2", "transcript")
BUCKET_BATCHES = 50  # a bucketing chunk holds this many batches: sorted inside, random across


# --------------------------------------------------------------------------------------------
# Reading


def transcript_folder(root, partition: str) -> Path:
    """Where a partition's sequence transcripts are: transcript-hw3p2/ if present, else transcript/."""
    part = Path(root) / partition
    for name in SEQUENCE_DIRS:
        if (part / name).is_dir():
            return part / name
    return part / "transcript"


def _read_sequence(path: Path, n_frames: int, mfcc_path: Path) -> np.ndarray:
    """Transcript [SOS] p1 .. pL [EOS] -> uint8 CTC class ids (1..40) of p1 .. pL, checked."""
    t = corpus.load_npy(path)
    if t.ndim != 1 or t.shape[0] < 2:
        raise ValueError(f"transcript {path} has shape {t.shape}; expected a 1-D phoneme sequence "
                         f"[SOS] ... [EOS]")
    t = t.astype(str)
    if PHONEME_TO_INDEX.get(t[0]) != PHONEME_TO_INDEX[SOS] or PHONEME_TO_INDEX.get(t[-1]) != PHONEME_TO_INDEX[EOS]:
        raise ValueError(f"transcript {path} must start with {SOS} and end with {EOS}; it has {t[0]!r} ... {t[-1]!r}")
    body = t[1:-1]
    # a frame-aligned (HW1P2) transcript has T+2 entries and mostly repeats its neighbour
    if len(t) == n_frames + 2 and n_frames >= 10 and (body[1:] == body[:-1]).mean() > 0.5:
        raise ValueError(
            f"transcript {path} is frame-aligned (T+2 = {n_frames + 2} entries for {mfcc_path.name}, "
            "runs of repeated phonemes): that is HW1P2's transcript. HW3P2 needs the phoneme sequence; "
            "point root= at the HW3P2 data (or write sequences with tools/make_demo_corpus.py --derive-sequences)"
        )
    names, inverse = np.unique(body, return_inverse=True)
    ids = np.array([CTC_INDEX.get(str(n), -1) for n in names], dtype=np.int64)
    bad = [str(n) for n, i in zip(names, ids) if i < 1]
    if bad:
        raise ValueError(f"transcript {path} has {bad}, not among the 40 HW3P2 phonemes "
                         "(phonemekit.phonemes.CTC_PHONEMES[1:]); fix or remove the transcript")
    return ids[inverse.reshape(-1)].astype(np.uint8)


def _offsets(lengths) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.asarray(lengths, dtype=np.int64))]).astype(np.int64)


# --------------------------------------------------------------------------------------------
# The dataset


class UtteranceDataset(torch.utils.data.Dataset):
    """The utterances of one partition: features and (unless test) CTC label sequences.

    ds[u] -> (x float32 (T, F), y int64 (L,)) for utterance u (x alone when unlabelled).
    ds.batch(idx) -> zero-padded (x (B,T,F), x_lengths, y (B,S), y_lengths) for utterance indices.

    root: the data folder (None: default_root(), the demo corpus when no Kaggle data is found).
    normalize: "cepstral" (per utterance over time, the course's), "global" (training
    statistics; pass stats=train.stats to dev/test), "minmax" or "none". subset: a fixed
    fraction of utterances, kept in sorted order (never on test). with_labels: None = all but
    test-*. dtype: storage, float32 or float16 (served as float32). cache_dir: write the arrays
    there once and memory-map them on later loads (phonemekit.cache, as AudioDataset).
    Attributes: utterances (ids, sorted), features (frames, F), offsets (U+1,), lengths (U,),
    labels uint8 (labels,) or None, label_offsets (U+1,), label_lengths (U,), n_features.
    """

    def __init__(self, root=None, partition: str = "train-clean-100", normalize: str = "cepstral",
                 subset: float = 1.0, with_labels: bool | None = None, dtype: torch.dtype = torch.float32,
                 stats=None, subset_seed: int = 0, cache_dir=None, verbose: bool = False,
                 cache_verify: str = "sample"):
        corpus.check_normalize(normalize)
        if dtype not in (torch.float32, torch.float16):
            raise ValueError(f"dtype={dtype}; storage is torch.float32 or torch.float16")
        subset = corpus.check_number("subset", subset)
        subset_seed = corpus.check_number("subset_seed", subset_seed, whole=True)
        is_test = partition.startswith("test")
        check_subset(subset, partition, "utterance")
        self.root = find_root(root) if root is not None else default_root()
        self.partition, self.normalize = partition, normalize
        self.with_labels = (not is_test) if with_labels is None else bool(with_labels)

        transcripts = transcript_folder(self.root, partition) if self.with_labels else None
        mfcc, tr, self.stats, self._stats_files, stats_key = corpus.partition_files(
            self.root, partition, transcripts, subset, subset_seed, normalize, stats)
        self.utterances = [p.stem for p in mfcc]

        key = cache_dir and cache.dataset_key(
            cache_dir, "utterances", self.root, partition, mfcc + (tr or []), self._stats_files,
            {"subset": subset, "subset_seed": subset_seed if subset < 1 else None, "normalize": normalize,
             "labels": self.with_labels, "dtype": str(dtype), "stats": stats_key})
        arrays = cache.load_or_build(cache_dir, key, lambda: self._build(mfcc, tr, dtype), verbose, cache_verify)
        if "stats" in arrays:
            self.stats = (np.array(arrays["stats"][0]), np.array(arrays["stats"][1]))
        self.features = torch.from_numpy(arrays["features"])
        self.offsets = np.asarray(arrays["offsets"])
        self.lengths = np.diff(self.offsets)
        self.n_features = int(self.features.shape[1])
        if "labels" in arrays:
            self.labels = torch.from_numpy(arrays["labels"])
            self.label_offsets = np.asarray(arrays["label_offsets"])
            self.label_lengths = np.diff(self.label_offsets)
        else:
            self.labels = self.label_offsets = self.label_lengths = None

    def _build(self, mfcc, tr, dtype) -> dict:
        # headers first, then one preallocated array each: no list-then-concatenate
        shapes = corpus.feature_shapes(mfcc)
        f = shapes[0][1]
        if self.normalize == "global":  # given, or of the training files (these, if training)
            self.stats = corpus.build_stats(self.stats, self._stats_files, f)
        offsets = _offsets([t for t, _ in shapes])
        features = np.empty((int(offsets[-1]), f), np.float16 if dtype == torch.float16 else np.float32)
        out = {"features": features, "offsets": offsets}
        if tr:
            label_lengths = []
            for p in tr:
                shape = corpus.npy_header(p)[0]
                label_lengths.append(max(0, shape[0] - 2) if len(shape) == 1 else 0)  # bad shapes: caught below
            out["label_offsets"] = label_offsets = _offsets(label_lengths)
            out["labels"] = labels = np.empty(int(label_offsets[-1]), np.uint8)
        for u, p in enumerate(mfcc):
            n = corpus.write_features(features[offsets[u] : offsets[u + 1]], p, self.normalize, self.stats)
            if tr:
                y = _read_sequence(tr[u], n, p)
                a, b = label_offsets[u], label_offsets[u + 1]
                if len(y) != b - a:
                    raise ValueError(f"{tr[u]} changed while loading; load again")
                labels[a:b] = y
        if self.normalize == "global":
            out["stats"] = np.stack(self.stats)
        return out

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, u):
        u = int(u)
        if not -len(self) <= u < len(self):
            raise IndexError(f"utterance {u} out of range for {len(self)} utterances")
        u %= len(self)
        x = self.features[self.offsets[u] : self.offsets[u + 1]].to(torch.float32, copy=True)
        if self.labels is None:
            return x
        return x, self.labels[self.label_offsets[u] : self.label_offsets[u + 1]].long()

    def batch(self, idx):
        """Zero-padded batch of the utterances idx: (x, x_lengths, y, y_lengths), or (x, x_lengths)."""
        idx = torch.as_tensor(np.asarray(idx), dtype=torch.long)
        x, xl = pad_gather(self.features, torch.from_numpy(self.offsets), idx)
        if self.labels is None:
            return x.float(), xl
        y, yl = pad_gather(self.labels, torch.from_numpy(self.label_offsets), idx)
        return x.float(), xl, y.long(), yl

    def transcript(self, u) -> list[str]:
        """The phonemes of utterance u (index or id) as strings, [SOS]/[EOS] stripped."""
        from .phonemes import CTC_PHONEMES

        if isinstance(u, str):
            u = self.utterances.index(u)
        return [CTC_PHONEMES[i] for i in self[u][1].tolist()]

    @property
    def nbytes(self) -> int:
        n = self.features.numel() * self.features.element_size()
        return n + (0 if self.labels is None else self.labels.numel())

    def __repr__(self) -> str:
        labels = "" if self.labels is None else f", {len(self.labels):,} labels"
        return (f"UtteranceDataset({self.partition}: {len(self)} utterances, {int(self.offsets[-1]):,} frames"
                f"{labels}, F={self.n_features}, normalize={self.normalize}, {self.nbytes / 2**20:.1f} MiB)")


def pad_gather(flat: torch.Tensor, offsets: torch.Tensor, idx: torch.Tensor):
    """Rows offsets[i]:offsets[i+1] of `flat` for each i in idx, zero-padded: ((B, S, ...), lengths (B,)).

    One indexed copy for the whole batch (on flat's device): position s of item b reads row
    start_b + s, clamped into range, and positions past the item's length are zeroed.
    """
    offsets = offsets.to(flat.device)
    idx = idx.to(flat.device)
    start, lengths = offsets[idx], offsets[idx + 1] - offsets[idx]
    s = int(lengths.max()) if len(idx) else 0
    pos = torch.arange(s, device=flat.device)
    rows = (start[:, None] + pos).clamp_(max=max(len(flat) - 1, 0))
    out = flat[rows]
    keep = pos < lengths[:, None]
    out = out * keep.view(*keep.shape, *([1] * (out.dim() - 2))).to(out.dtype)
    return out, lengths


def pad_batch(items):
    """collate_fn for a torch DataLoader over an UtteranceDataset: pads ds[u] items like ds.batch."""
    if isinstance(items[0], (tuple, list)):
        xs, ys = zip(*items)
    else:
        xs, ys = items, None
    xl = torch.tensor([len(x) for x in xs])
    x = torch.nn.utils.rnn.pad_sequence(list(xs), batch_first=True)
    if ys is None:
        return x, xl
    return x, xl, torch.nn.utils.rnn.pad_sequence(list(ys), batch_first=True), torch.tensor([len(y) for y in ys])


# --------------------------------------------------------------------------------------------
# Batches


class SequenceLoader:
    """Padded batches (x, x_lengths, y, y_lengths) on `device`; (x, x_lengths) when unlabelled.

    shuffle=True: each epoch's order is fixed by (seed, epoch) (call set_epoch, or iterate to the
    end, which moves on). bucketing (default: on when shuffling): the shuffled order is cut into
    chunks of BUCKET_BATCHES batches, each chunk sorted by length and cut into batches, and the
    batches shuffled, so a batch holds utterances of similar length (little padding) while the
    epoch stays random. Unshuffled with bucketing: batches in order of length, for a faster
    validation. Unshuffled without bucketing: file order.

    Batch b holds the utterances loader.batches()[b] (order() concatenates them): that is how a
    prediction maps back to its utterance. An unlabelled (test) set is always in file order.
    On a GPU the frames are copied there once and every batch is one gather there.
    """

    def __init__(self, dataset: UtteranceDataset, batch_size: int = 32, shuffle: bool = True,
                 seed: int | None = None, device=None, bucketing: bool | None = None,
                 drop_last: bool = False, resident: bool | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        bucketing = shuffle if bucketing is None else bool(bucketing)
        if dataset.labels is None and (shuffle or bucketing):
            raise ValueError("an unlabelled (test) set is served in file order, the order of the "
                             "submission's rows: pass shuffle=False, bucketing=False")
        self.dataset, self.batch_size, self.shuffle = dataset, int(batch_size), bool(shuffle)
        self.bucketing, self.drop_last = bucketing, bool(drop_last)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.seed = seed if seed is not None else int(torch.initial_seed() % 2**31)
        self.epoch = 0
        self.resident = (self.device.type != "cpu") if resident is None else bool(resident)
        where = self.device if self.resident else torch.device("cpu")
        self._features = dataset.features.to(where)
        self._offsets = torch.from_numpy(dataset.offsets).to(where)
        self._labels = None if dataset.labels is None else dataset.labels.to(where)
        self._label_offsets = None if dataset.labels is None else torch.from_numpy(dataset.label_offsets).to(where)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def batches(self) -> list[torch.Tensor]:
        """The utterance indices of each batch of the current epoch, in the order served."""
        n, bs = len(self.dataset), self.batch_size
        lengths = torch.from_numpy(self.dataset.lengths)
        g = torch.Generator().manual_seed(corpus.epoch_seed(self.seed, self.epoch))
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        if self.bucketing:
            chunk = bs * BUCKET_BATCHES if self.shuffle else n
            # stable sort: equal lengths keep the (random or file) order they had
            order = torch.cat([c[torch.sort(lengths[c], stable=True).indices] for c in order.split(chunk)])
        out = list(order.split(bs))
        if self.drop_last and out and len(out[-1]) < bs:
            out.pop()
        if self.shuffle and self.bucketing:  # sorted chunks would otherwise run short-to-long
            out = [out[i] for i in torch.randperm(len(out), generator=g).tolist()]
        return out

    def order(self) -> torch.Tensor:
        """Utterance index of every item served this epoch, in order (the batches concatenated)."""
        b = self.batches()
        return torch.cat(b) if b else torch.zeros(0, dtype=torch.long)

    def __iter__(self):
        for idx in self.batches():
            x, xl = pad_gather(self._features, self._offsets, idx)
            out = [x.to(torch.float32), xl]
            if self._labels is not None:
                y, yl = pad_gather(self._labels, self._label_offsets, idx)
                out += [y.long(), yl]
            if not self.resident and self.device.type != "cpu":
                out = [a.pin_memory().to(self.device, non_blocking=True) if self.device.type == "cuda"
                       else a.to(self.device) for a in out]
            yield tuple(out)
        self.epoch += 1


def padding_ratio(loader: SequenceLoader) -> float:
    """Frames in the padded batches of an epoch / real frames: 1.0 is no padding at all."""
    lengths = torch.from_numpy(loader.dataset.lengths)
    batches = loader.batches()
    padded = sum(len(b) * int(lengths[b].max()) for b in batches)
    real = sum(int(lengths[b].sum()) for b in batches)
    return padded / real
