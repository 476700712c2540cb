"""Synthetic corpora in the Kaggle layout, for tests and benchmarks (random numbers, real shapes).

    root/train-clean-100/{mfcc,transcript}/<speaker>-<chapter>-<nnnn>.npy
    root/dev-clean/{mfcc,transcript}/...
    root/test-clean/mfcc/...                 (and transcript/ when test_transcripts=True)

Utterance lengths follow a Beta distribution stretched over 1 to 24.5 s, which matches
train-clean-100's mean of ~1,265 frames (28,539 utterances, 36,091,157 frames); `mean_frames`
scales it down for fast tests. Labels come in runs of a few frames, as phonemes do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .phonemes import CLASSES, EOS, SOS

MEAN_FRAMES = 1265  # train-clean-100: 36,091,157 frames / 28,539 utterances
MAX_FRAMES = 2450   # LibriSpeech training segments are at most ~24.5 s at a 10 ms hop


def utterance_lengths(n: int, mean_frames: float = MEAN_FRAMES, seed: int = 0) -> np.ndarray:
    """n lengths >= 1 with the given mean, spread like LibriSpeech segments (1 to 24.5 s scaled)."""
    rng = np.random.default_rng(seed)
    lo, hi = mean_frames * 100 / MEAN_FRAMES, mean_frames * MAX_FRAMES / MEAN_FRAMES
    m = (mean_frames - lo) / (hi - lo)
    a = 3.5  # shape: most segments 8-17 s, a tail of short ones
    return np.maximum(1, np.rint(lo + (hi - lo) * rng.beta(a, a * (1 - m) / m, size=n))).astype(np.int64)


def write_utterance(root, partition: str, name: str, features: np.ndarray, labels=None) -> None:
    """Save one utterance in the Kaggle layout; labels are class ids or phoneme strings (no [SOS]/[EOS])."""
    part = Path(root) / partition
    (part / "mfcc").mkdir(parents=True, exist_ok=True)
    np.save(part / "mfcc" / f"{name}.npy", np.asarray(features, dtype=np.float32))
    if labels is not None:
        labels = np.asarray(labels)
        if labels.dtype.kind in "iu":
            labels = np.array(CLASSES)[labels]
        (part / "transcript").mkdir(parents=True, exist_ok=True)
        np.save(part / "transcript" / f"{name}.npy", np.concatenate([[SOS], labels.astype(str), [EOS]]))


def make_corpus(root, n_utterances: int, n_features: int = 28, seed: int = 0,
                mean_frames: float = MEAN_FRAMES, n_dev: int | None = None, n_test: int | None = None,
                test_transcripts: bool = False) -> Path:
    """Write a random corpus in the Kaggle layout under root and return root.

    n_utterances go to train-clean-100; dev-clean and test-clean get n_dev / n_test (default a
    tenth of that, at least one). Utterance ids are random LibriSpeech-like names, so the order
    they are written in is not their sorted order.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    n_dev = max(1, n_utterances // 10) if n_dev is None else n_dev
    n_test = max(1, n_utterances // 10) if n_test is None else n_test
    phones = np.array(CLASSES)
    used = set()
    for k, (partition, n) in enumerate([("train-clean-100", n_utterances), ("dev-clean", n_dev), ("test-clean", n_test)]):
        labelled = partition != "test-clean" or test_transcripts
        for t in utterance_lengths(n, mean_frames, seed=seed * 7 + k):
            name = None
            while name is None or name in used:
                name = f"{rng.integers(19, 9000)}-{rng.integers(100, 200000)}-{rng.integers(0, 150):04d}"
            used.add(name)
            # a per-utterance offset and scale per coefficient, as real recordings have
            x = rng.standard_normal((t, n_features), dtype=np.float32) * rng.uniform(0.5, 3, n_features).astype(np.float32)
            x += rng.uniform(-10, 10, n_features).astype(np.float32)
            labels = None
            if labelled:  # phoneme runs of ~8 frames
                runs = rng.geometric(1 / 8, size=t)
                ids = np.repeat(rng.integers(0, len(phones), size=t), runs)[:t]
                labels = phones[ids]
            write_utterance(root, partition, name, x, labels)
    return root


def make_learnable_corpus(root, partitions=None, frames=200, n_features: int = 8, n_classes: int = 8,
                          spread: float = 2.0, seed: int = 0, first_speaker: int = 100) -> Path:
    """A corpus a small model can learn: each frame's label (one of n_classes) sets its features' mean.

    partitions maps a partition to its number of utterances (default 16 train, 4 dev); frames is
    a count per utterance or a (low, high) range. Every partition has transcripts, test included.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    centroids = rng.normal(0, spread, (n_classes, n_features)).astype(np.float32)
    for part, n in (partitions or {"train-clean-100": 16, "dev-clean": 4}).items():
        for u in range(n):
            t = frames if isinstance(frames, int) else int(rng.integers(*frames))
            y = rng.integers(0, n_classes, t)
            x = centroids[y] + rng.normal(0, 1, (t, n_features)).astype(np.float32)
            write_utterance(root, part, f"{first_speaker + u}-{len(part)}-{u:04d}", x, y)
    return root
