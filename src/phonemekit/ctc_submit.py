"""HW3P2 submission: predict every test utterance, write the CSV, check it, score it locally.

    test = UtteranceDataset(root, "test-clean")                    # file order, no labels
    preds = predict_ctc(model, test, beam_width=10)                # one string per utterance
    write_ctc_submission(preds, "submission.csv", sample=root / "sample_submission.csv")
    validate_ctc_submission("submission.csv", len(test), sample=root / "sample_submission.csv")
    score_ctc_submission("submission.csv", answers)                # mean Levenshtein distance

The file has one row per test utterance in sorted file order: an integer id 0..N-1 and the
predicted phoneme string in the one-character map. The header follows the competition's
sample file when given (F24: index,label; older: id,predictions).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .decode import beam_decode, greedy_decode, mean_distance
from .phonemes import CTC_CHARS, to_string
from .sequences import SequenceLoader, UtteranceDataset
from .submit import EMPTY, _read_csv

HEADER = ("index", "label")  # the F24 starter's; a competition's sample file overrides it
SILENCE = CTC_CHARS[1]  # written for an empty prediction: an empty cell reads as a missing value
_ALLOWED = set(CTC_CHARS[1:])  # every phoneme character; the blank (" ") never appears


def predict_ctc(model, dataset: UtteranceDataset, batch_size: int = 32, device=None, beam_width: int = 1,
                amp_dtype=None) -> list[str]:
    """The predicted string of every utterance of `dataset`, in its (sorted file) order.

    Eval mode, inference mode, the model put back in the mode it was in. beam_width=1: greedy.
    """
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    loader = SequenceLoader(dataset, batch_size, shuffle=False, bucketing=False, device=device)
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.inference_mode():
            for batch in loader:
                x, xl = batch[0], batch[1]
                amp = torch.amp.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()
                with amp:
                    log_probs, out_lengths = model(x, xl)
                out += (beam_decode(log_probs, out_lengths, beam_width) if beam_width > 1
                        else greedy_decode(log_probs, out_lengths))
    finally:
        model.train(was_training)
    if len(out) != len(dataset):
        raise RuntimeError(f"predicted {len(out)} utterances for a dataset of {len(dataset)}")
    return out


def answers(dataset: UtteranceDataset) -> list[str]:
    """The true strings of a labelled dataset (the demo's test set: with_labels=True), in order."""
    if dataset.labels is None:
        raise ValueError(f"{dataset.partition} was loaded without transcripts: pass with_labels=True")
    return [to_string(dataset[u][1].tolist()) for u in range(len(dataset))]


def _sample_header(sample) -> tuple[str, str]:
    sample = Path(sample).expanduser()
    if not sample.is_file():
        raise FileNotFoundError(f"sample file {sample} does not exist: it ships with the Kaggle data")
    cols = tuple(pd.read_csv(sample, dtype=str, nrows=1).columns)
    if len(cols) != 2:
        raise ValueError(f"{sample} has columns {cols}; expected two (an id and the label)")
    return cols


def write_ctc_submission(predictions, path="submission.csv", header=HEADER, sample=None) -> Path:
    """Write `header` (the sample file's when given) and one row per utterance: id 0..N-1 and its
    string. An empty prediction is written as '-' ([SIL]) so that no cell is empty."""
    preds = [str(p) for p in predictions]
    if not preds:
        raise ValueError("no predictions: pass one string per test utterance")
    bad = next((i for i, p in enumerate(preds) if set(p) - _ALLOWED), None)
    if bad is not None:
        raise ValueError(f"prediction {bad} ({preds[bad][:40]!r}) has characters outside the phoneme map "
                         f"{sorted(set(preds[bad]) - _ALLOWED)}: decode with phonemekit.decode (blanks removed)")
    header = _sample_header(sample) if sample is not None else tuple(header)
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({header[0]: np.arange(len(preds)), header[1]: [p or SILENCE for p in preds]}).to_csv(path, index=False)
    return path


def validate_ctc_submission(path, n_utterances: int, sample=None, header=HEADER) -> bool:
    """Check an HW3P2 CSV; ValueError saying what is wrong and how to fix it, True when fine.

    Checked: the header (the sample's when given), no extra index column, one row per test
    utterance, ids 0..N-1 in order, no empty label, only characters of the phoneme map.
    """
    path = Path(path).expanduser()
    df = _read_csv(path)
    expected = _sample_header(sample) if sample is not None else tuple(header)
    cols = tuple(df.columns)
    if len(cols) == 3 and (cols[0] == "" or cols[0].startswith("Unnamed")) and cols[1:] == expected:
        raise ValueError(f"{path} has an extra index column before {','.join(expected)} (DataFrame.to_csv "
                         "without index=False): rewrite it with write_ctc_submission")
    if cols != expected:
        raise ValueError(f"{path} has header {','.join(cols)!r}, expected {','.join(expected)!r}: "
                         f"write it with write_ctc_submission(..., header={expected!r}) or sample=")
    if len(df) != n_utterances:
        raise ValueError(f"{path} has {len(df):,} rows, expected {n_utterances:,} (one per test utterance): "
                         "predict every utterance of the full test set")
    id_col, label_col = expected
    ids = df[id_col].to_numpy(dtype=object)
    wrong = ids != np.arange(n_utterances).astype(str).astype(object)
    if wrong.any():
        row = int(wrong.argmax())
        raise ValueError(f"{path}: row {row} has id {ids[row]!r}, expected {row}: ids are 0..{n_utterances - 1} "
                         "in sorted-file test order (never shuffle or sort the test set)")
    labels = df[label_col]
    empty = labels.isin(EMPTY)
    if empty.any():
        row = int(empty.to_numpy().argmax())
        raise ValueError(f"{path}: row {row} has an empty label, which Kaggle reads as missing: "
                         "write_ctc_submission writes '-' for an empty prediction")
    for row, s in enumerate(labels):
        extra = set(s) - _ALLOWED
        if extra:
            raise ValueError(
                f"{path}: row {row} has characters {sorted(extra)} outside the phoneme map "
                "(phonemekit.phonemes.CTC_CHARS[1:]): write one-character phonemes, blanks removed, "
                "no separators (phonemekit.decode gives such strings)")
    return True


def score_ctc_submission(path, truth) -> float:
    """Mean Levenshtein distance of a submission CSV against the true strings (a list, or a
    labelled UtteranceDataset). The file is validated first, whatever its two column names."""
    if isinstance(truth, UtteranceDataset):
        truth = answers(truth)
    truth = [str(t) for t in truth]
    df = _read_csv(path)
    cols = tuple(df.columns)
    header = cols if len(cols) == 2 else cols[1:] if len(cols) == 3 else HEADER
    validate_ctc_submission(path, len(truth), header=header)
    return mean_distance(df.iloc[:, 1].tolist(), truth)
