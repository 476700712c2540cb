"""Data edges a student meets: a subset never repeats an utterance, huge features with a silent
(all-zero) coefficient still normalise to finite values, a context is a whole number >= 0, and an
out-of-range batch index names the offending frame."""

import numpy as np
import pytest
import torch
from test_data import write_corpus

from phonemekit.corpus import normalize, subset_indices
from phonemekit.data import AudioDataset


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_subset_takes_each_utterance_at_most_once(seed):
    picked = subset_indices(20, 0.9, seed=seed)
    assert len(picked) == 18 and len(set(picked.tolist())) == 18


@pytest.mark.parametrize("how", ["cepstral", "minmax"])
def test_huge_features_with_an_all_zero_coefficient_normalise_to_finite_values(how):
    # values whose squares overflow float32 take the rescaling path; the zero coefficient must stay 0
    x = np.random.default_rng(0).standard_normal((30, 3)) * 1e30
    x[:, 1] = 0.0
    out = normalize(x, how)
    assert np.isfinite(out).all()
    assert np.all(out[:, 1] == 0)


def test_a_context_is_a_whole_number_and_zero_means_the_frame_alone(tmp_path):
    write_corpus(tmp_path)
    ds = AudioDataset(tmp_path, context=2)
    alone = ds.like(context=0)
    assert alone.window == 1 and torch.equal(alone[3][0], ds[3][0][2:3])
    with pytest.raises(ValueError, match="context"):
        ds.like(context=2.5)
    with pytest.raises(ValueError, match="context=-1 must be >= 0"):
        ds.like(context=-1)


def test_an_out_of_range_batch_index_names_the_frame_below_or_above(tmp_path):
    write_corpus(tmp_path)
    ds = AudioDataset(tmp_path, context=2)
    n = len(ds)
    with pytest.raises(IndexError, match=f"frame {-n - 1} out of range for {n} frames"):
        ds[torch.tensor([0, -n - 1])]
    with pytest.raises(IndexError, match=f"frame {n} out of range for {n} frames"):
        ds[np.array([n, 0])]
