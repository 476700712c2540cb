"""Row i of a submission is test item i, through prediction, the CSV writer, validation and
scoring: a model whose output names its own input (HW1P2: the frame's index, written into its
features; HW3P2: the utterance's index) scores perfectly only when every row is in its place."""

import Levenshtein
import numpy as np
import pytest
import torch
from torch import nn

from phonemekit.ctc_submit import predict_ctc, score_ctc_submission, validate_ctc_submission, write_ctc_submission
from phonemekit.data import AudioDataset
from phonemekit.phonemes import CTC_CHARS, NUM_CLASSES, NUM_CTC_CLASSES
from phonemekit.sequences import UtteranceDataset
from phonemekit.submit import predict, score_submission, validate_submission, write_submission

# lengths out of order (and two equal), so that length order is not file order
LENGTHS = [7, 1, 12, 5, 5, 3, 4]


def write_test_set(root, lengths, first_index):
    """test-clean/mfcc/<id>.npy, sorted ids; feature 0 of each frame is first_index(utterance, frame)."""
    (root / "test-clean" / "mfcc").mkdir(parents=True)
    frame = 0
    for u, t in enumerate(lengths):
        x = np.zeros((t, 3), np.float32)
        x[:, 0] = [first_index(u, frame + k) for k in range(t)]
        x[:, 1] = 1.0  # any other features
        np.save(root / "test-clean" / "mfcc" / f"{1000 + u}-{9 - u}-0000.npy", x)
        frame += t


class NameTheFrame(nn.Module):
    """HW1P2: the class of a window is the index written into its centre frame (mod 40)."""

    def __init__(self, context):
        super().__init__()
        self.context = context
        self.w = nn.Parameter(torch.zeros(()))  # a parameter, so that predict finds the device

    def forward(self, x):
        index = x[:, self.context, 0].round().long()
        return nn.functional.one_hot(index % NUM_CLASSES, NUM_CLASSES).float() + self.w


@pytest.mark.parametrize("batch_size", [1, 3, 8, 4096])
def test_hw1p2_row_i_is_test_frame_i_through_predict_write_validate_and_score(tmp_path, batch_size):
    n = sum(LENGTHS)
    assert n < NUM_CLASSES  # each frame its own class: any row out of place scores below 100%
    write_test_set(tmp_path, LENGTHS, lambda u, i: i)
    test = AudioDataset(tmp_path, "test-clean", context=2, normalize="none")
    ids = predict(NameTheFrame(context=2), test, batch_size=batch_size)
    path = write_submission(ids, tmp_path / "submission.csv")
    assert validate_submission(path, n)
    assert score_submission(path, np.arange(n)) == 1.0
    # the same labels one row off are scored as wrong: the score sees where each row is
    header, *body = path.read_text().splitlines()
    labels = [r.split(",")[1] for r in body]
    shifted = [f"{i},{labels[(i + 1) % n]}" for i in range(n)]
    (tmp_path / "shifted.csv").write_text("\n".join([header, *shifted]) + "\n")
    assert score_submission(tmp_path / "shifted.csv", np.arange(n)) == 0.0


def name(u: int) -> str:
    """The string utterance u is predicted as: two characters of the map, u in base 40."""
    return CTC_CHARS[1 + u % 40] + CTC_CHARS[1 + u // 40 % 40]


class NameTheUtterance(nn.Module):
    """HW3P2: emits the two characters of name(u) at frames 0 and 2 (blank elsewhere), u read from
    feature 0 of the utterance's first frame."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x, lengths):
        b, t, _ = x.shape
        u = x[:, 0, 0].round().long()
        classes = torch.zeros(b, t, dtype=torch.long)  # blank
        classes[:, 0] = 1 + u % 40
        classes[:, 2] = 1 + u // 40 % 40
        log_probs = nn.functional.one_hot(classes, NUM_CTC_CLASSES).float().log_softmax(-1) + self.w
        return log_probs, lengths


@pytest.mark.parametrize("bucketing", [False, True])
@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_hw3p2_row_i_is_test_utterance_i_through_predict_write_validate_and_score(tmp_path, batch_size, bucketing):
    lengths = [max(t, 3) + 1 for t in LENGTHS]  # room for frames 0 and 2
    write_test_set(tmp_path, lengths, lambda u, i: u)
    test = UtteranceDataset(tmp_path, "test-clean", normalize="none")
    assert sorted(test.lengths.tolist()) != test.lengths.tolist()
    preds = predict_ctc(NameTheUtterance(), test, batch_size=batch_size, bucketing=bucketing)
    truth = [name(u) for u in range(len(test))]
    assert preds == truth
    path = write_ctc_submission(preds, tmp_path / "submission.csv")
    assert validate_ctc_submission(path, len(test))
    assert score_ctc_submission(path, truth) == 0
    # one row off: every utterance scored against another's answer
    assert score_ctc_submission(path, truth[1:] + truth[:1]) > 0
    # the ids of two rows swapped (their strings stay): scored by id, so no longer perfect
    header, *body = path.read_text().splitlines()
    body[0], body[1] = f"1,{body[0].split(',')[1]}", f"0,{body[1].split(',')[1]}"
    (tmp_path / "swapped.csv").write_text("\n".join([header, *body]) + "\n")
    assert validate_ctc_submission(tmp_path / "swapped.csv", len(test))
    wrong = 2 * Levenshtein.distance(truth[0], truth[1]) / len(test)
    assert wrong > 0 and score_ctc_submission(tmp_path / "swapped.csv", truth) == pytest.approx(wrong)
