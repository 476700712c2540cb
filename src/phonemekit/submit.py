"""HW1P2: predict the test frames, write the Kaggle CSV, check it before Kaggle does, and submit it.

    ids = predict(model, test_ds)                      # one class id per frame, in test order
    write_submission(ids, "submission.csv")            # id,label with phoneme strings
    validate_submission("submission.csv", len(test_ds), sample=root / "sample_submission.csv")
    kaggle_submit("submission.csv", "11785-s25-hw1p2", "gelu pyramid, context 30")

Kaggle rejects a file whose header differs from sample_submission.csv's, whose row count is
wrong or whose ids are missing or repeated; it matches rows to test frames by id (any row order
scores the same), and it scores labels in the wrong vocabulary ("ah", or class numbers where
the sample has phoneme strings) as wrong without complaint. validate_submission checks all of
that locally, in a second. The CSV itself (reading, ids, writing, scoring by id) is
phonemekit.csvfile's, shared with HW3P2; the Kaggle commands are phonemekit.kaggle's.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import csvfile
from .corpus import has_test_answers  # noqa: F401  (importable from here too)
from .csvfile import Spec, header_names, read_sample
from .kaggle import (  # noqa: F401  (importable from here too, as the notebooks do)
    KAGGLE_MAIN, KAGGLE_MIN_VERSION, KAGGLE_SETTINGS, kaggle_credentials, kaggle_download, kaggle_submit,
)
from .phonemes import CLASSES, NUM_CLASSES

HEADER = ("id", "label")  # the official notebooks' header; pass header=("Id", "Label") etc. for others
LABEL_FORMATS = ("string", "int")
INDICES = [str(i) for i in range(NUM_CLASSES)]  # labels as written by label_format="int"
INDEX = {c: i for i, c in enumerate(CLASSES)}


# --------------------------------------------------------------------------------------------
# Prediction


def _batches(dataset, batch_size: int, device):
    """Batches of inputs in dataset order (labels, if the dataset has them, are dropped)."""
    from .data import AudioDataset, FrameLoader

    if isinstance(dataset, AudioDataset):  # gathers on the GPU when device is one
        yield from (b[0] if isinstance(b, (tuple, list)) else b
                    for b in FrameLoader(dataset, batch_size=batch_size, shuffle=False, device=device))
        return
    n = len(dataset)  # anything indexable with a 1-D index tensor: a dataset, a tensor of windows
    for start in range(0, n, batch_size):
        b = dataset[torch.arange(start, min(start + batch_size, n))]
        yield b[0] if isinstance(b, (tuple, list)) else b


def model_device(model: torch.nn.Module, device=None) -> torch.device:
    """`device`, else where the model's parameters are (the CPU for a model without any)."""
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    return torch.device(device)


@contextlib.contextmanager
def evaluating(model: torch.nn.Module):
    """Eval mode under torch.inference_mode inside; the model put back in the mode it was in after."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield model
    finally:
        model.train(was_training)


def predict(model: torch.nn.Module, dataset, batch_size: int = 8192, device=None,
            return_probs: bool = False) -> torch.Tensor:
    """Predicted class id (int64, on the CPU) of every frame, in dataset order.

    The model runs in eval mode (BatchNorm uses its running statistics, dropout is off) under
    torch.inference_mode, and is put back in the mode it was in. return_probs=True returns the
    (N, classes) softmax probabilities instead: average them over the models of an ensemble,
    then take .argmax(1).
    """
    device = model_device(model, device)
    out = []
    with evaluating(model):
        for x in _batches(dataset, batch_size, device):
            logits = model(x.to(device, non_blocking=True))
            out.append(logits.float().softmax(1).cpu() if return_probs else logits.argmax(1).cpu())
    if not out:
        raise ValueError("the dataset has no frames to predict")
    result = torch.cat(out)
    if len(result) != len(dataset):
        raise RuntimeError(f"predicted {len(result)} frames for a dataset of {len(dataset)}")
    return result


# --------------------------------------------------------------------------------------------
# Writing and checking the CSV


def _class_ids(predictions) -> np.ndarray:
    p = predictions.detach().cpu().numpy() if torch.is_tensor(predictions) else np.asarray(predictions)
    if p.ndim == 2:
        raise ValueError(
            f"predictions have shape {p.shape}: pass one class id per frame, e.g. probs.argmax(1)"
        )
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"predictions must be a non-empty 1-D sequence of class ids, got shape {p.shape}")
    if p.dtype.kind not in "iu":
        if p.dtype.kind == "f" and np.isfinite(p).all() and (p == np.round(p)).all():
            p = p.astype(np.int64)
        else:
            raise ValueError(f"predictions must be integer class ids 0..{NUM_CLASSES - 1}, got dtype {p.dtype}")
    bad = (p < 0) | (p >= NUM_CLASSES)
    if bad.any():
        i = int(bad.argmax())
        raise ValueError(f"prediction {i} is class {p[i]}, outside 0..{NUM_CLASSES - 1}")
    return p.astype(np.int64)


def _check_frame_labels(path, labels: pd.Series, sample, sample_labels) -> None:
    """HW1P2's label rule: all phoneme classes or all class indices, of the sample's kind."""
    kind = label_kind(labels)
    if kind is None:
        known = labels.isin(CLASSES) | labels.isin(INDICES)
        if known.all():
            raise ValueError(f"{path} mixes phoneme strings and class indices in {labels.name}: use one kind")
        row = int((~known).to_numpy().argmax())
        raise ValueError(
            f"{path}: row {row} has label {labels.iloc[row]!r}, not one of the {NUM_CLASSES} classes "
            f"({CLASSES[0]}, {CLASSES[1]}, ..., {CLASSES[-1]}) or indices 0..{NUM_CLASSES - 1}"
        )
    sample_kind = label_kind(sample_labels) if sample_labels is not None and len(sample_labels) else None
    if sample_kind is not None and sample_kind != kind:
        raise ValueError(f"{path} has {kind} labels but {sample.name} has {sample_kind} labels: Kaggle would "
                         f"score them as wrong; write it with write_submission(..., label_format={sample_kind!r})")


FRAMES = Spec(unit="test frame", writer="write_submission", header=HEADER, check_labels=_check_frame_labels,
              missing_fix="every test frame needs a prediction: write it with write_submission")


def write_submission(predictions, path="submission.csv", header=HEADER, label_format: str = "string") -> Path:
    """Write `header[0],header[1]` then one row per frame: id 0..N-1 and its label.

    label_format="string" writes phoneme strings (AH, [SIL], ...) as the official notebooks
    did; "int" writes the class index, for semesters whose sample file has integers.
    """
    if label_format not in LABEL_FORMATS:
        raise ValueError(f"label_format={label_format!r}; choose one of {LABEL_FORMATS}")
    header = header_names(header)
    ids = _class_ids(predictions)
    return csvfile.write(path, np.asarray(CLASSES, dtype=object)[ids] if label_format == "string" else ids, header)


def label_kind(values) -> str | None:
    """'string' if all are phoneme classes, 'int' if all are class indices, else None."""
    v = pd.Series(values, dtype=str)
    if v.isin(CLASSES).all():
        return "string"
    if v.isin(INDICES).all():
        return "int"
    return None


def validate_submission(path, n_frames: int, sample=None, header=HEADER) -> bool:
    """Check a submission CSV as Kaggle would; ValueError (or FileNotFoundError) saying what is wrong.

    Checked: the header (exactly that of sample_submission.csv when `sample` is given, else
    `header`), no extra index column, comma-separated, n_frames rows, the ids 0..n_frames-1 each
    exactly once, no empty cells, labels all phoneme strings or all class indices 0..39 (and the
    same kind as the sample's). Kaggle matches rows by id, so ids out of row order are valid (a
    note says so). Returns True when the file is fine.
    """
    csvfile.check(path, n_frames, FRAMES, sample, header)
    return True


def score_submission(path, labels) -> float:
    """Frame accuracy of a submission CSV against known labels (class ids or phoneme strings).

    The file is validated first (whatever its header), so a broken file fails loudly instead of
    scoring near zero. Rows are matched to frames by id, as Kaggle does: the label of id i is
    compared with labels[i], wherever its row is.
    """
    labels = labels.detach().cpu().numpy() if torch.is_tensor(labels) else np.asarray(labels)
    got = pd.Series(csvfile.labels_by_id(path, len(labels), FRAMES), dtype=str)
    got = (got.map(INDEX) if label_kind(got) == "string" else got.astype(np.int64)).to_numpy(np.int64)
    if labels.dtype.kind in "OUS":
        unknown = [x for x in labels if x not in INDEX]
        if unknown:
            raise ValueError(f"label {unknown[0]!r} is not one of the {NUM_CLASSES} classes")
        labels = np.array([INDEX[x] for x in labels])
    return float((got == labels.astype(np.int64)).mean())


# --------------------------------------------------------------------------------------------
# The competition's sample file


def find_sample(root) -> Path | None:
    """The competition's sample_submission.csv beside the partitions (or one folder up)."""
    if root is None:
        return None
    root = Path(root)
    for d in (root, root.parent):
        f = d / "sample_submission.csv"
        if f.is_file():
            return f
    return None


def submission_format(sample) -> tuple[tuple, str]:
    """(header, label_format) to write so that a file matches the sample's columns and label kind."""
    if sample is None:
        return HEADER, "string"
    df = read_sample(sample)
    return tuple(df.columns), (label_kind(df.iloc[:, 1]) if len(df) else None) or "string"
