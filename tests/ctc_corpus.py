"""A tiny HW3P2-layout corpus written to a temporary folder, for the test_ctc_* tests.

Each phoneme has its own mean feature vector; an utterance is a random phoneme sequence, each
phoneme held for a few frames, plus noise. A small CTC model learns it in seconds.
"""

from pathlib import Path

import numpy as np

from phonemekit.phonemes import CTC_PHONEMES, EOS, SOS

INVENTORY = CTC_PHONEMES[1:9]  # [SIL] and 7 phonemes: enough to learn, small enough to learn fast


def utterance(rng, means, n_phones, min_frames=3, max_frames=6, noise=0.3):
    ids = rng.integers(0, len(INVENTORY), n_phones)
    ids[1:] = np.where(ids[1:] == ids[:-1], (ids[1:] + 1) % len(INVENTORY), ids[1:])  # no equal neighbours
    durations = rng.integers(min_frames, max_frames + 1, n_phones)
    x = np.concatenate([np.repeat(means[i][None], d, 0) for i, d in zip(ids, durations)])
    x = x + noise * rng.standard_normal(x.shape)
    return x.astype(np.float32), [INVENTORY[i] for i in ids]


def write_corpus(root, counts=None, n_features=12, seed=0, phones=(4, 12), partitions=None):
    """root/<partition>/{mfcc,transcript}/<id>.npy; transcripts are [SOS] phonemes [EOS].
    Returns {partition: [(id, features, phonemes), ...]} in sorted order."""
    root = Path(root)
    counts = counts or {"train-clean-100": 48, "dev-clean": 12, "test-clean": 8}
    rng = np.random.default_rng(seed)
    means = 2.0 * np.random.default_rng(1234).standard_normal((len(INVENTORY), n_features))
    out = {}
    for partition, n in counts.items():
        (root / partition / "mfcc").mkdir(parents=True, exist_ok=True)
        (root / partition / "transcript").mkdir(parents=True, exist_ok=True)
        items = []
        for k in range(n):
            x, seq = utterance(rng, means, int(rng.integers(*phones)))
            uid = f"{100 + k % 3}-{7 + k}-{k:04d}"
            np.save(root / partition / "mfcc" / f"{uid}.npy", x)
            np.save(root / partition / "transcript" / f"{uid}.npy", np.array([SOS, *seq, EOS]))
            items.append((uid, x, seq))
        out[partition] = sorted(items, key=lambda t: t[0])
    return out
