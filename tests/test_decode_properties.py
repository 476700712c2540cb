"""The HW3P2 metric, greedy decoding and CTC's length rule, each against a plain reference
written here, on random input (hypothesis)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from phonemekit.ctc import ctc_loss
from phonemekit.decode import greedy_decode, mean_distance, min_ctc_frames
from phonemekit.phonemes import CTC_CHARS, NUM_CTC_CLASSES

SETTINGS = settings(max_examples=150, deadline=None)
phoneme_strings = st.text(alphabet=st.sampled_from(CTC_CHARS), max_size=14)


def levenshtein(a: str, b: str) -> int:
    """Textbook dynamic programme: fewest insertions, deletions and substitutions."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return d[len(a)][len(b)]


@SETTINGS
@given(st.lists(st.tuples(phoneme_strings, phoneme_strings), min_size=1, max_size=6))
@example([("ab", "b")])  # one deletion, not a substitution plus a length difference
def test_mean_distance_is_the_mean_edit_distance_over_the_41_characters(pairs):
    preds, truth = zip(*pairs)
    assert mean_distance(preds, truth) == pytest.approx(sum(levenshtein(p, t) for p, t in pairs) / len(pairs))


def best_path_then_collapse(frames) -> list[int]:
    """Per frame the first class with the highest score, then repeats merged and blanks dropped."""
    out, prev = [], None
    for row in frames:
        k = max(range(len(row)), key=lambda c: row[c])
        if k != prev and k != 0:
            out.append(k)
        prev = k
    return out


@st.composite
def emissions(draw):
    b, t = draw(st.integers(1, 4)), draw(st.integers(1, 12))
    noise = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).uniform(-12, -1, (b, t, NUM_CTC_CLASSES))
    # a winning class per frame from a few (blank runs and repeats are common, as in a peaky
    # model's output), sometimes tied with a second class
    for i in range(b):
        for j in range(t):
            noise[i, j, draw(st.sampled_from([0, 0, 1, 2, 40]))] = 0.0
            if draw(st.booleans()):
                noise[i, j, draw(st.integers(0, NUM_CTC_CLASSES - 1))] = 0.0
    lengths = draw(st.lists(st.integers(0, t), min_size=b, max_size=b))
    return torch.from_numpy(noise.astype(np.float32)), torch.tensor(lengths)


@SETTINGS
@given(emissions())
def test_greedy_decoding_is_the_collapsed_best_path_of_each_utterance_within_its_length(batch):
    lp, lengths = batch
    expected = [best_path_then_collapse(lp[i, :n].tolist()) for i, n in enumerate(lengths.tolist())]
    assert greedy_decode(lp, lengths, strings=False) == expected
    assert greedy_decode(lp, lengths) == ["".join(CTC_CHARS[k] for k in e) for e in expected]


def fewest_frames_by_ctc(target: list[int]) -> int:
    """The definition: the fewest frames T with at least one CTC path of T frames that collapses
    to the target, i.e. a finite CTC loss (any log-probs without zeros will do)."""
    if not target:
        return 0  # the path of no frames
    longest = 2 * len(target) + 1
    lp = torch.zeros(longest, longest, NUM_CTC_CLASSES).log_softmax(-1)  # (T, N, C): one try per T
    loss = torch.nn.functional.ctc_loss(
        lp, torch.tensor([target] * longest), torch.arange(1, longest + 1),
        torch.full((longest,), len(target)), reduction="none", zero_infinity=False)
    return int(torch.isfinite(loss).nonzero()[0]) + 1


@st.composite
def padded_targets(draw):
    # three phonemes only: equal neighbours are frequent
    targets = draw(st.lists(st.lists(st.integers(1, 3), max_size=8), min_size=1, max_size=5))
    width = max(map(len, targets)) + draw(st.integers(0, 2))
    # padding of any value (0, or a copy of the last phoneme) must not count
    pad = draw(st.integers(0, 3))
    y = torch.tensor([t + [pad] * (width - len(t)) for t in targets], dtype=torch.long).reshape(len(targets), width)
    return targets, y, torch.tensor([len(t) for t in targets])


@SETTINGS
@given(padded_targets())
@example(([[]], torch.zeros(1, 0, dtype=torch.long), torch.tensor([0])))  # [SOS][EOS] alone
def test_min_ctc_frames_is_the_fewest_frames_any_ctc_path_needs(batch):
    targets, y, y_lengths = batch
    assert min_ctc_frames(y, y_lengths).tolist() == [fewest_frames_by_ctc(t) for t in targets]


def test_a_batch_of_empty_transcripts_trains_with_a_zero_loss():
    # a batch of one utterance whose transcript is [SOS][EOS]: y is (1, 0)
    class Silent(torch.nn.Module):
        def forward(self, x, xl):
            return torch.zeros(*x.shape[:2], NUM_CTC_CLASSES).log_softmax(-1), xl

    batch = (torch.zeros(1, 5, 28), torch.tensor([5]), torch.zeros(1, 0, dtype=torch.long), torch.tensor([0]))
    loss, n = ctc_loss(Silent(), batch, SimpleNamespace(), None)
    # all-blank path: 5 frames of log(1/41)
    assert n == 1 and float(loss) == pytest.approx(5 * np.log(NUM_CTC_CLASSES), rel=1e-5)
