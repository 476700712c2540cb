"""HW3P2 submission: predict every test utterance, write the CSV, check it, score it locally.

    test = UtteranceDataset(root, "test-clean")                    # file order, no labels
    preds = predict_ctc(model, test, beam_width=10)                # one string per utterance
    write_ctc_submission(preds, "submission.csv", sample=root / "sample_submission.csv")
    validate_ctc_submission("submission.csv", len(test), sample=root / "sample_submission.csv")
    score_ctc_submission("submission.csv", answers)                # mean Levenshtein distance
    frame_baseline("runs/cpu-demo/best.pt", root)                  # an HW1P2 model, scored the HW3P2 way
    kaggle_submit_ctc("submission.csv", "<competition>", "message", sample=root / "sample_submission.csv")

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

from .decode import beam_decode, frames_to_sequence, greedy_decode, mean_distance
from .phonemes import CLASSES, CTC_CHARS, to_string
from .sequences import SequenceLoader, UtteranceDataset
from .submit import EMPTY, _ids, _read_csv

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


def ctc_test_dataset(config, root=None, stats=None, with_labels=None, partition: str = "test-clean") -> UtteranceDataset:
    """The test utterances prepared as the config prepared training (normalisation; `stats`: the
    training statistics a checkpoint holds, ckpt["stats"], for normalize="global"). File order."""
    normalize = getattr(config, "normalize", "cepstral")
    if normalize == "global" and stats is None:
        raise ValueError("normalize='global' needs the training statistics: pass stats=ckpt['stats'] from the "
                         "checkpoint (load_checkpoint returns it), so test frames are scaled as in training")
    if stats is not None:
        stats = tuple(np.asarray(s, dtype=np.float32) for s in stats)
    return UtteranceDataset(root, partition, normalize=normalize, stats=stats, with_labels=with_labels)


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
    utterance, the ids 0..N-1 each once (in any row order: Kaggle matches rows by id; a note says
    so), no empty label, only characters of the phoneme map.
    """
    _check_ctc(path, n_utterances, sample, header)
    return True


def _check_ctc(path, n_utterances: int, sample=None, header=HEADER, quiet: bool = False):
    """validate_ctc_submission's checks; returns (the file, each row's id or None when in row order)."""
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
    # as Kaggle: rows are matched by id, so any order of the ids 0..N-1, each once, is valid
    ids = _ids(path, df[id_col], n_utterances, quiet, unit="test utterance", writer="write_ctc_submission")
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
    return df, ids


def score_ctc_submission(path, truth) -> float:
    """Mean Levenshtein distance of a submission CSV against the true strings (a list, or a
    labelled UtteranceDataset). The file is validated first, whatever its two column names."""
    if isinstance(truth, UtteranceDataset):
        truth = answers(truth)
    truth = [str(t) for t in truth]
    cols = tuple(_read_csv(path, nrows=1).columns)
    header = cols if len(cols) == 2 else cols[1:] if len(cols) == 3 else HEADER
    df, ids = _check_ctc(path, len(truth), header=header, quiet=True)
    predicted = df.iloc[:, 1].tolist()
    if ids is not None:  # scored by id, as Kaggle does
        predicted = [predicted[row] for row in np.argsort(ids)]
    return mean_distance(predicted, truth)


def has_ctc_answers(root, partition: str = "test-clean") -> bool:
    """True when `partition` ships its phoneme sequences (the demo's test set does; Kaggle's has none)."""
    from .sequences import transcript_folder

    return root is not None and transcript_folder(root, partition).is_dir()


# --------------------------------------------------------------------------------------------
# The frame-model baseline: an HW1P2 model scored with the HW3P2 metric


def frame_sequences(model, root=None, partition: str = "dev-clean", config=None, stats=None,
                    min_run: int = 1, device=None) -> tuple[list[str], list[str]]:
    """(one predicted string per utterance of `partition`, its utterance ids) from an HW1P2 frame
    model: each frame's class, runs collapsed, [SIL] kept (HW3P2's transcripts have it at the ends
    and at pauses). `model`: a checkpoint file or run folder, a FitResult, or an nn.Module with
    the `config` it was trained with. min_run: runs shorter than this many frames are dropped first.
    """
    from .checkpoint import load_checkpoint
    from .data import AudioDataset
    from .submit import predict

    if isinstance(model, (str, Path)):
        model, config, ckpt = load_checkpoint(model, device or "cpu")
        stats = ckpt.get("stats") if stats is None else stats
    elif hasattr(model, "model") and hasattr(model, "config"):  # a FitResult
        model, config = model.model, model.config if config is None else config
    if config is None:
        raise ValueError("frame_sequences(model, ...) needs the model's config (its context and normalisation): "
                         "pass config=, or a checkpoint path or fit()'s result instead of the bare model")
    if getattr(config, "task", "frames") != "frames":
        raise ValueError(f"the frame baseline takes an HW1P2 (task='frames') model, this one is task={config.task!r}")
    if isinstance(stats, dict):
        stats = (np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32))
    frames = AudioDataset(root, partition, context=config.context, normalize=config.normalize,
                          boundary=config.boundary, with_labels=False, stats=stats)
    classes = predict(model, frames, device=device)
    return frames_to_sequence(classes, frames.offsets, min_run=min_run), list(frames.utterances)


def frame_baseline(model, root=None, partition: str = "dev-clean", config=None, stats=None,
                   min_run: int = 1, device=None) -> float:
    """Mean Levenshtein distance of an HW1P2 frame model on `partition`, read as HW3P2 answers
    (frame_sequences): the number a CTC model should beat. `model` as in frame_sequences."""
    preds, utterances = frame_sequences(model, root, partition, config=config, stats=stats, min_run=min_run,
                                        device=device)
    truth = UtteranceDataset(root, partition, with_labels=True)
    if truth.utterances != utterances:
        raise ValueError(f"{partition} in {truth.root} lists other utterances for the sequences than for the "
                         "frames: mfcc/ and the transcript folders must hold the same files")
    return mean_distance(preds, answers(truth))


# --------------------------------------------------------------------------------------------
# Kaggle


def kaggle_submit_ctc(path, competition: str, message: str, n_utterances: int | None = None, sample=None):
    """Validate an HW3P2 CSV (validate_ctc_submission), then `kaggle competitions submit`.

    n_utterances (or the rows of `sample`, the competition's sample file) is the number of test
    utterances the file must have; without either, the row count is not checked.
    """
    from .submit import kaggle_submit

    return kaggle_submit(path, competition, message, n_utterances, sample, validate=validate_ctc_submission)


def submission_task(path) -> str:
    """"ctc" for an HW3P2 CSV (labels are phoneme strings in the one-character map), "frames" for an
    HW1P2 one (a class name or index per row). What the command line assumes without --task."""
    df = _read_csv(path)
    if df.shape[1] < 2 or len(df) == 0:
        return "frames"
    labels = df.iloc[:, -1].astype(str)
    frame_labels = set(CLASSES) | {str(i) for i in range(len(CLASSES))}
    if labels.isin(frame_labels).all():
        return "frames"
    return "ctc" if labels.map(lambda s: set(s) <= _ALLOWED).all() else "frames"
