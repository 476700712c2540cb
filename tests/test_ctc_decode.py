"""Decoding against hand-worked examples, the metric, and HW1P2 frame predictions in HW3P2 terms."""

import math

import numpy as np
import pytest
import torch
from needs import beam_search

from phonemekit.decode import beam_decode, collapse, frames_to_sequence, greedy_decode, mean_distance
from phonemekit.phonemes import CLASSES


def one_hot_log_probs(paths, t=None, c=41):
    """log-probs (B, T, C) whose best path is each given path (padded with blanks)."""
    t = t or max(len(p) for p in paths)
    lp = torch.full((len(paths), t, c), math.log(1e-4))
    for b, p in enumerate(paths):
        for i in range(t):
            lp[b, i, p[i] if i < len(p) else 0] = 0.0
    return lp.log_softmax(-1)


def test_greedy_collapses_repeats_drops_blanks_and_respects_lengths():
    paths = [[0, 3, 3, 0, 3, 5, 5, 0], [2, 2, 2, 0, 0, 9, 9, 9], [1, 0, 1, 1, 4, 4, 7, 7]]
    lp = one_hot_log_probs(paths)
    # a repeat separated by a blank is two symbols; frames past the length are ignored
    assert greedy_decode(lp, torch.tensor([8, 8, 4]), strings=False) == [[3, 3, 5], [2, 9], [1, 1]]
    assert greedy_decode(lp, torch.tensor([8, 8, 4])) == ["ff@", "Gi", "--"]
    assert greedy_decode(lp, torch.tensor([0, 1, 8]), strings=False) == [[], [2], [1, 1, 4, 7]]
    assert [collapse(p) for p in paths] == [[3, 3, 5], [2, 9], [1, 1, 4, 7]]


def test_greedy_equals_collapsing_the_argmax_path_on_random_input():
    torch.manual_seed(0)
    lp = torch.randn(6, 40, 41).log_softmax(-1)
    lengths = torch.tensor([40, 1, 17, 33, 0, 25])
    got = greedy_decode(lp, lengths, strings=False)
    assert got == [collapse(lp[b, : int(n)].argmax(-1)) for b, n in enumerate(lengths)]


@beam_search
def test_beam_search_finds_the_labelling_greedy_misses():
    # Two frames, each blank 0.6 / G 0.4: the best path is blank-blank ("", p = 0.36), but
    # "G" has paths G-blank, blank-G and G-G: p = 0.24 + 0.24 + 0.16 = 0.64.
    p = torch.full((1, 2, 41), 1e-6)
    p[0, :, 0], p[0, :, 2] = 0.6, 0.4
    lp = (p / p.sum(-1, keepdim=True)).log()
    assert greedy_decode(lp, torch.tensor([2])) == [""]
    assert beam_decode(lp, torch.tensor([2]), beam_width=4) == ["G"]
    assert beam_decode(lp, torch.tensor([2]), beam_width=4, strings=False) == [[2]]


@beam_search
def test_beam_search_agrees_with_greedy_on_confident_paths_and_respects_lengths():
    paths = [[0, 3, 3, 0, 3, 5, 5, 0], [2, 2, 2, 0, 0, 9, 9, 9]]
    lp = one_hot_log_probs(paths)
    lengths = torch.tensor([8, 3])
    assert beam_decode(lp, lengths, beam_width=5) == greedy_decode(lp, lengths) == ["ff@", "G"]
    with pytest.raises(ValueError, match="beam_width"):
        beam_decode(lp, lengths, beam_width=0)


def test_mean_distance_is_the_mean_levenshtein_distance_per_utterance():
    assert mean_distance(["abc", "a", ""], ["abd", "a", "xy"]) == pytest.approx((1 + 0 + 2) / 3)
    with pytest.raises(ValueError, match="2 predictions for 1 targets"):
        mean_distance(["a", "b"], ["a"])


def test_frame_predictions_become_one_string_per_utterance_with_runs_collapsed():
    sil, ah, b = CLASSES.index("[SIL]"), CLASSES.index("AH"), CLASSES.index("B")
    frames = [sil, sil, ah, ah, b, b, b, sil] + [b, ah, b, b]
    offsets = [0, 8, 12]
    assert frames_to_sequence(np.array(frames), offsets) == ["-Ab-", "bAb"]
    # runs shorter than 2 frames are dropped, and the neighbours they split merge
    assert frames_to_sequence(torch.tensor(frames), offsets, min_run=2) == ["-Ab", "b"]
    # a run never crosses an utterance boundary
    assert frames_to_sequence(np.array([b, b, b, b]), [0, 2, 4]) == ["b", "b"]
    with pytest.raises(ValueError, match="offsets end at frame 5"):
        frames_to_sequence(np.array(frames), [0, 5])
