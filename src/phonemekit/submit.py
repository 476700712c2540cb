"""Predict the test frames, write the Kaggle CSV, check it before Kaggle does, and submit it.

    ids = predict(model, test_ds)                      # one class id per frame, in test order
    write_submission(ids, "submission.csv")            # id,label with phoneme strings
    validate_submission("submission.csv", len(test_ds), sample=root / "sample_submission.csv")
    kaggle_submit("submission.csv", "11785-s25-hw1p2", "gelu pyramid, context 30")

Kaggle scores a file whose rows are out of order or whose labels are in the wrong vocabulary
without complaint (and ~0% accuracy), so validate_submission checks all of it locally.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .phonemes import CLASSES, NUM_CLASSES

HEADER = ("id", "label")  # the official notebooks' header; pass header=("Id", "Label") etc. for others
LABEL_FORMATS = ("string", "int")
INDICES = [str(i) for i in range(NUM_CLASSES)]  # labels as written by label_format="int"
EMPTY = ["", "nan", "NaN", "NA", "None", "null"]  # what a missing prediction looks like in a CSV


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


def predict(model: torch.nn.Module, dataset, batch_size: int = 8192, device=None,
            return_probs: bool = False) -> torch.Tensor:
    """Predicted class id (int64, on the CPU) of every frame, in dataset order.

    The model runs in eval mode (BatchNorm uses its running statistics, dropout is off) under
    torch.inference_mode, and is put back in the mode it was in. return_probs=True returns the
    (N, classes) softmax probabilities instead: average them over the models of an ensemble,
    then take .argmax(1).
    """
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.inference_mode():
            for x in _batches(dataset, batch_size, device):
                logits = model(x.to(device, non_blocking=True))
                out.append(logits.float().softmax(1).cpu() if return_probs else logits.argmax(1).cpu())
    finally:
        model.train(was_training)
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


def write_submission(predictions, path="submission.csv", header=HEADER, label_format: str = "string") -> Path:
    """Write `header[0],header[1]` then one row per frame: id 0..N-1 and its label.

    label_format="string" writes phoneme strings (AH, [SIL], ...) as the official notebooks
    did; "int" writes the class index, for semesters whose sample file has integers.
    """
    if label_format not in LABEL_FORMATS:
        raise ValueError(f"label_format={label_format!r}; choose one of {LABEL_FORMATS}")
    if len(header) != 2:
        raise ValueError(f"header={header!r}: give two column names, e.g. ('id', 'label')")
    ids = _class_ids(predictions)
    labels = np.asarray(CLASSES, dtype=object)[ids] if label_format == "string" else ids
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    # index=False: pandas' own index column is the classic extra-column rejection
    pd.DataFrame({header[0]: np.arange(len(ids)), header[1]: labels}).to_csv(path, index=False)
    return path


def _read_csv(path) -> pd.DataFrame:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"submission file {path} does not exist: write it with write_submission(predictions, path)")
    try:
        # every cell as text: nothing gets converted or silently turned into NaN
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty: write it with write_submission(predictions, path)") from None
    except pd.errors.ParserError as e:
        raise ValueError(f"{path} is not a well-formed CSV ({e}); rewrite it with write_submission") from None


def label_kind(values) -> str | None:
    """'string' if all are phoneme classes, 'int' if all are class indices, else None."""
    v = pd.Series(values, dtype=str)
    if v.isin(CLASSES).all():
        return "string"
    if v.isin(INDICES).all():
        return "int"
    return None


def validate_submission(path, n_frames: int, sample=None, header=HEADER) -> bool:
    """Check a submission CSV the way Kaggle would, and more; ValueError saying what is wrong.

    Checked: the header (equal to sample_submission.csv's when `sample` is given, else to
    `header`), no extra index column, n_frames rows, ids 0..n_frames-1 in order, no empty
    cells, labels all phoneme strings or all class indices 0..39 (and the same kind as the
    sample's). Returns True when the file is fine.
    """
    path = Path(path).expanduser()
    df = _read_csv(path)
    cols = tuple(df.columns)
    if sample is not None:
        sample = Path(sample).expanduser()
        if not sample.is_file():
            raise FileNotFoundError(f"sample file {sample} does not exist: it ships with the Kaggle data (sample_submission.csv)")
        sample_df = pd.read_csv(sample, dtype=str, keep_default_na=False, na_filter=False, nrows=100)
        expected, where = tuple(sample_df.columns), f"the header of {sample.name}"
    else:
        sample_df, expected, where = None, tuple(header), "the expected header"
    if len(expected) != 2:
        raise ValueError(f"the expected header {expected!r} must name two columns (id and label)")

    if len(cols) == len(expected) + 1 and (cols[0] == "" or cols[0].startswith("Unnamed")) and cols[1:] == expected:
        raise ValueError(
            f"{path} has an extra index column before {','.join(expected)} (DataFrame.to_csv "
            "without index=False): rewrite it with index=False or with write_submission"
        )
    if cols != expected:
        raise ValueError(f"{path} has header {','.join(cols)!r}, {where} is {','.join(expected)!r}: "
                         f"write it with write_submission(..., header={expected!r})")
    if len(df) != n_frames:
        raise ValueError(f"{path} has {len(df):,} rows, expected {n_frames:,} (one per test frame): "
                         "predict every frame of the full, unshuffled test set")

    id_col, label_col = expected
    for col in (id_col, label_col):
        empty = df[col].isin(EMPTY)
        if empty.any():
            row = int(empty.to_numpy().argmax())
            raise ValueError(f"{path}: row {row} (id {df[id_col].iloc[row]!r}) has an empty or NaN {col}: "
                             "every frame needs a prediction")

    ids = df[id_col].to_numpy(dtype=object)
    # compared as text: "0", "1", ... is what Kaggle expects, and it is fast on 2M rows
    wrong = ids != np.arange(n_frames).astype(str).astype(object)
    if wrong.any():
        row = int(wrong.argmax())
        if not str(ids[row]).isdigit():
            raise ValueError(f"{path}: row {row} has id {ids[row]!r}, not an integer: ids are 0..{n_frames - 1}")
        raise ValueError(
            f"{path}: row {row} has id {ids[row]!r}, expected {row}: ids must be 0..{n_frames - 1} "
            "in order, frames in sorted-file test order (never shuffle the test set)"
        )

    labels = df[label_col]
    kind = label_kind(labels)
    if kind is None:
        known = labels.isin(CLASSES) | labels.isin(INDICES)
        if known.all():
            raise ValueError(f"{path} mixes phoneme strings and class indices in {label_col}: use one kind")
        row = int((~known).to_numpy().argmax())
        raise ValueError(
            f"{path}: row {row} has label {labels.iloc[row]!r}, not one of the {NUM_CLASSES} classes "
            f"({CLASSES[0]}, {CLASSES[1]}, ..., {CLASSES[-1]}) or indices 0..{NUM_CLASSES - 1}"
        )
    if sample_df is not None and len(sample_df):
        sample_kind = label_kind(sample_df[label_col])
        if sample_kind is not None and sample_kind != kind:
            fmt = "string" if sample_kind == "string" else "int"
            raise ValueError(
                f"{path} has {kind} labels but {sample.name} has {sample_kind} labels: "
                f"Kaggle would score them as wrong; write it with write_submission(..., label_format={fmt!r})"
            )
    return True


def score_submission(path, labels) -> float:
    """Frame accuracy of a submission CSV against known labels (class ids or phoneme strings).

    The file is validated first (whatever its header), so a misaligned file fails loudly
    instead of scoring near zero.
    """
    labels = labels.detach().cpu().numpy() if torch.is_tensor(labels) else np.asarray(labels)
    df = _read_csv(path)
    cols = tuple(df.columns)
    # any two column names are fine here; an extra index column is still caught and named
    header = cols if len(cols) == 2 else cols[1:] if len(cols) == 3 else HEADER
    validate_submission(path, len(labels), header=header)
    got = df.iloc[:, 1]
    got = (got.map({c: i for i, c in enumerate(CLASSES)}) if label_kind(got) == "string"
           else got.astype(np.int64)).to_numpy(np.int64)
    if labels.dtype.kind in "OUS":
        index = {c: i for i, c in enumerate(CLASSES)}
        unknown = [x for x in labels if x not in index]
        if unknown:
            raise ValueError(f"label {unknown[0]!r} is not one of the {NUM_CLASSES} classes")
        labels = np.array([index[x] for x in labels])
    return float((got == labels.astype(np.int64)).mean())


# --------------------------------------------------------------------------------------------
# Kaggle


def kaggle_credentials() -> str:
    """Where the Kaggle credentials will come from; RuntimeError saying where to put them if nowhere.

    Looked for (as the kaggle package does): $KAGGLE_API_TOKEN, ~/.kaggle/access_token,
    $KAGGLE_USERNAME with $KAGGLE_KEY, kaggle.json in $KAGGLE_CONFIG_DIR, ~/.kaggle or
    ~/.config/kaggle. Nothing is read over the network, and no credential is printed.
    """
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "$KAGGLE_API_TOKEN"
    home = Path.home()
    for f in (home / ".kaggle" / "access_token", home / ".kaggle" / "access_token.txt"):
        if f.is_file() and f.stat().st_size > 0:
            return str(f)
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return "$KAGGLE_USERNAME and $KAGGLE_KEY"
    config_dir = os.environ.get("KAGGLE_CONFIG_DIR")
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle"
    dirs = [Path(config_dir).expanduser()] if config_dir else [home / ".kaggle", xdg]
    for d in dirs:
        f = d / "kaggle.json"
        if f.is_file():
            try:
                keys = json.loads(f.read_text())
            except ValueError:
                raise RuntimeError(f"{f} is not valid JSON: download a fresh kaggle.json from "
                                   "https://www.kaggle.com/settings (API, Create New Token)") from None
            if not isinstance(keys, dict) or not {"username", "key"} <= set(keys):
                raise RuntimeError(f"{f} needs both \"username\" and \"key\": download a fresh one from "
                                   "https://www.kaggle.com/settings (API, Create New Token)")
            return str(f)
    raise RuntimeError(
        "no Kaggle credentials found. Create a token at https://www.kaggle.com/settings (API section), "
        "then either set the environment variable KAGGLE_API_TOKEN (in Colab: store it as a secret and "
        "run os.environ['KAGGLE_API_TOKEN'] = google.colab.userdata.get('KAGGLE_API_TOKEN')), or save "
        "kaggle.json to ~/.kaggle/kaggle.json (chmod 600; or to $KAGGLE_CONFIG_DIR/kaggle.json), or set "
        "KAGGLE_USERNAME and KAGGLE_KEY. Never paste a key into a notebook cell that you share."
    )


def _kaggle_cli() -> list[str]:
    """The kaggle command, preferably the one installed beside this Python (same environment)."""
    import importlib.util

    beside = Path(sys.executable).parent / ("kaggle.exe" if os.name == "nt" else "kaggle")
    if beside.is_file():
        return [str(beside)]
    exe = shutil.which("kaggle")
    if exe:
        return [exe]
    if importlib.util.find_spec("kaggle") is not None:  # kaggle >= 2 also runs as python -m kaggle
        return [sys.executable, "-m", "kaggle"]
    raise RuntimeError("the kaggle command is not installed: pip install kaggle six")


def _run_kaggle(args: list[str], what: str) -> subprocess.CompletedProcess:
    cmd = _kaggle_cli() + args
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.stdout:
        print(proc.stdout, end="")
    if proc.returncode != 0:
        raise RuntimeError(
            f"kaggle {what} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()}\n"
            "If it is a 403, accept the competition's rules on its Kaggle page first."
        )
    return proc


def kaggle_download(competition: str, dest="data", force: bool = False) -> Path:
    """Download a competition's data into `dest`, unzip it there, and return the data root.

    A second call finds the extracted data and downloads nothing (Colab restarts), unless
    force=True.
    """
    from .data import find_root

    dest = Path(dest).expanduser()
    marker = dest / f".{competition}.extracted"
    if marker.is_file() and not force:
        return find_root(dest)
    kaggle_credentials()
    dest.mkdir(parents=True, exist_ok=True)
    args = ["competitions", "download", competition, "-p", str(dest)] + (["--force"] if force else [])
    _run_kaggle(args, "download")
    archive = dest / f"{competition}.zip"
    if not archive.is_file():
        zips = sorted(dest.glob("*.zip"))
        if len(zips) != 1:
            raise FileNotFoundError(f"the download left no {archive.name} in {dest} (found {[z.name for z in zips]})")
        archive = zips[0]
    with zipfile.ZipFile(archive) as z:
        z.extractall(dest)  # zipfile strips absolute paths and '..' from member names
    marker.write_text(archive.name + "\n")
    return find_root(dest)


def kaggle_submit(path, competition: str, message: str, n_frames: int | None = None, sample=None):
    """Validate the CSV, then `kaggle competitions submit COMPETITION -f PATH -m MESSAGE`.

    n_frames (or the rows of `sample`, the competition's sample_submission.csv) is the number
    of test frames the file must have; without either, the row count is not checked.
    """
    path = Path(path).expanduser()
    if not message:
        raise ValueError("give a message: Kaggle requires one for every submission (-m)")
    if n_frames is None and sample is not None:
        n_frames = len(pd.read_csv(sample, usecols=[0]))
    if n_frames is None:
        warnings.warn("kaggle_submit: no n_frames or sample given, so the row count is not checked", stacklevel=2)
        n_frames = len(_read_csv(path))
    validate_submission(path, n_frames, sample=sample)
    kaggle_credentials()
    return _run_kaggle(["competitions", "submit", competition, "-f", str(path), "-m", message], "submit")


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
    df = pd.read_csv(sample, dtype=str, keep_default_na=False, nrows=100)
    kind = label_kind(df.iloc[:, 1]) if df.shape[1] == 2 and len(df) else None
    return tuple(df.columns), kind or "string"
