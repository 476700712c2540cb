"""Predict the test frames, write the Kaggle CSV, check it before Kaggle does, and submit it.

    ids = predict(model, test_ds)                      # one class id per frame, in test order
    write_submission(ids, "submission.csv")            # id,label with phoneme strings
    validate_submission("submission.csv", len(test_ds), sample=root / "sample_submission.csv")
    kaggle_submit("submission.csv", "11785-s25-hw1p2", "gelu pyramid, context 30")

Kaggle rejects a file whose header differs from sample_submission.csv's, whose row count is
wrong or whose ids are missing or repeated; it matches rows to test frames by id (any row order
scores the same), and it scores labels in the wrong vocabulary ("ah", or class numbers where
the sample has phoneme strings) as wrong without complaint. validate_submission checks all of
that locally, in a second.

The Kaggle command line (the `kaggle` package) runs as a separate process, never imported here:
importing it looks for credentials at once and, in some versions, exits the process (a notebook's
kernel with it) when there are none.
"""

from __future__ import annotations

import json
import os
import re
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


def _read_csv(path, what: str = "submission", fix: str = "write it with write_submission(predictions, path)",
              nrows: int | None = None) -> pd.DataFrame:
    """A CSV with every cell as text; ValueError naming the file and the fix when it cannot be read."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder, not a CSV file: pass the file inside it, "
                         f"e.g. {path / 'submission.csv'}")
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} does not exist: {fix}")
    if path.stat().st_size == 0:
        raise ValueError(f"{what} file {path} is empty (0 bytes): {fix}")
    try:
        # every cell as text: nothing gets converted or silently turned into NaN
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8", nrows=nrows)
    except UnicodeDecodeError:
        data = path.read_bytes()
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            where = "it is UTF-16"
        else:
            try:
                data.decode("utf-8")
                where = "an invalid byte"
            except UnicodeDecodeError as e:  # where in the whole file, not in pandas' chunk
                line = data.count(b"\n", 0, e.start) + 1
                where = f"byte 0x{data[e.start]:02x} on line {line}"
        raise ValueError(f"{what} file {path} is not UTF-8 text ({where}): save it as UTF-8 CSV "
                         "(write_submission does; in Excel: CSV UTF-8)") from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"{what} file {path} has no header line (only blank lines): {fix}") from None
    except pd.errors.ParserError as e:
        raise ValueError(f"{what} file {path} is not a well-formed CSV ({str(e).strip()}): {fix}") from None


def label_kind(values) -> str | None:
    """'string' if all are phoneme classes, 'int' if all are class indices, else None."""
    v = pd.Series(values, dtype=str)
    if v.isin(CLASSES).all():
        return "string"
    if v.isin(INDICES).all():
        return "int"
    return None


def _check(path, n_frames: int, sample=None, header=HEADER, quiet: bool = False):
    """validate_submission's checks. Returns (the file as text, each row's id as int64 or None when the
    ids are exactly 0..n_frames-1 in row order)."""
    path = Path(path).expanduser()
    df = _read_csv(path)
    cols = tuple(df.columns)
    if sample is not None:
        sample = Path(sample).expanduser()
        sample_df = _read_csv(sample, what="sample", nrows=100,
                              fix="it ships with the competition's data (sample_submission.csv): download it again")
        expected, where = tuple(sample_df.columns), f"the header of {sample.name}"
    else:
        sample_df, expected, where = None, tuple(header), "the expected header"
    if len(expected) != 2:
        raise ValueError(f"{where} is {','.join(expected)!r}: a submission has two columns (id and label)")

    if len(cols) == len(expected) + 1 and (cols[0] == "" or cols[0].startswith("Unnamed")) and cols[1:] == expected:
        raise ValueError(
            f"{path} has an extra index column before {','.join(expected)} (DataFrame.to_csv "
            "without index=False): rewrite it with index=False or with write_submission"
        )
    if cols != expected:
        raise ValueError(f"{path} has header {','.join(cols)!r}, {where} is {','.join(expected)!r} "
                         f"(exactly, case included): write it with write_submission(..., header={expected!r})")
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

    ids = _ids(path, df[id_col], n_frames, quiet)

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
    return df, ids


def _ids(path, column: pd.Series, n_frames: int, quiet: bool, unit: str = "test frame", writer: str = "write_submission"):
    """Each row's id as int64, or None when the ids are 0..n_frames-1 in row order (the usual case).
    unit / writer: what a row is and what writes the file (HW3P2: a test utterance, write_ctc_submission).

    Kaggle matches rows to test frames by id, so any order of the ids 0..n_frames-1, each once,
    is scored the same; a missing, repeated, negative or non-integer id is rejected.
    """
    ids = column.to_numpy(dtype=object)
    # compared as text first: "0", "1", ... in order is what write_submission writes, and it is fast on 2M rows
    if (ids == np.arange(n_frames).astype(str).astype(object)).all():
        return None
    digits = column.str.fullmatch(r"\d{1,18}").to_numpy()
    if not digits.all():
        row = int((~digits).argmax())
        raise ValueError(f"{path}: row {row} has id {ids[row]!r}, not an integer: ids are 0..{n_frames - 1}, "
                         f"one per {unit}")
    ids = column.astype(np.int64).to_numpy()
    outside = ids >= n_frames
    if outside.any():
        row = int(outside.argmax())
        raise ValueError(f"{path}: row {row} has id {ids[row]}, outside 0..{n_frames - 1} (one id per {unit}): "
                         f"write the ids with {writer}")
    counts = np.bincount(ids, minlength=n_frames)
    if (counts != 1).any():
        dup = int((counts > 1).argmax())
        rows = np.flatnonzero(ids == dup)[:2]
        missing = int((counts == 0).argmax())
        raise ValueError(f"{path}: id {dup} appears {counts[dup]} times (rows {rows[0]} and {rows[1]}) and id "
                         f"{missing} is missing: each {unit} needs exactly one row; write the ids with "
                         f"{writer}")
    if not quiet:
        row = int((ids != np.arange(n_frames)).argmax())
        print(f"note: {path}: the ids are not in row order (row {row} has id {ids[row]}); Kaggle matches rows "
              "by id, so the file is valid and is scored by id")
    return ids


def validate_submission(path, n_frames: int, sample=None, header=HEADER) -> bool:
    """Check a submission CSV as Kaggle would; ValueError (or FileNotFoundError) saying what is wrong.

    Checked: the header (exactly that of sample_submission.csv when `sample` is given, else
    `header`), no extra index column, n_frames rows, the ids 0..n_frames-1 each exactly once, no
    empty cells, labels all phoneme strings or all class indices 0..39 (and the same kind as the
    sample's). Kaggle matches rows by id, so ids out of row order are valid (a note says so).
    Returns True when the file is fine.
    """
    _check(path, n_frames, sample, header)
    return True


def score_submission(path, labels) -> float:
    """Frame accuracy of a submission CSV against known labels (class ids or phoneme strings).

    The file is validated first (whatever its header), so a broken file fails loudly instead of
    scoring near zero. Rows are matched to frames by id, as Kaggle does: the label of id i is
    compared with labels[i], wherever its row is.
    """
    labels = labels.detach().cpu().numpy() if torch.is_tensor(labels) else np.asarray(labels)
    cols = tuple(_read_csv(path, nrows=0).columns)
    # any two column names are fine here; an extra index column is still caught and named
    header = cols if len(cols) == 2 else cols[1:] if len(cols) == 3 else HEADER
    df, ids = _check(path, len(labels), header=header)
    got = df.iloc[:, 1]
    got = (got.map({c: i for i, c in enumerate(CLASSES)}) if label_kind(got) == "string"
           else got.astype(np.int64)).to_numpy(np.int64)
    if ids is not None:  # put each row's label at its id
        by_id = np.empty_like(got)
        by_id[ids] = got
        got = by_id
    if labels.dtype.kind in "OUS":
        index = {c: i for i, c in enumerate(CLASSES)}
        unknown = [x for x in labels if x not in index]
        if unknown:
            raise ValueError(f"label {unknown[0]!r} is not one of the {NUM_CLASSES} classes")
        labels = np.array([index[x] for x in labels])
    return float((got == labels.astype(np.int64)).mean())


# --------------------------------------------------------------------------------------------
# Kaggle


KAGGLE_MIN_VERSION = (2, 1, 1)  # the first kaggle that reads KAGGLE_API_TOKEN, access_token and `kaggle auth login`
KAGGLE_SETTINGS = "https://www.kaggle.com/settings"
KAGGLE_MAIN = "import sys; sys.argv[0] = 'kaggle'; from kaggle.cli import main; sys.exit(main())"
PROGRESS_EVERY = 10.0  # seconds between the progress lines written to a log file (not a terminal or notebook)


def _kaggle_config_dir() -> Path:
    """Where the kaggle package looks for kaggle.json: $KAGGLE_CONFIG_DIR, else ~/.kaggle, else (on
    Linux, when ~/.kaggle does not exist) $XDG_CONFIG_HOME/kaggle or ~/.config/kaggle."""
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return Path(os.environ["KAGGLE_CONFIG_DIR"]).expanduser()
    home = Path.home() / ".kaggle"
    if sys.platform.startswith("linux") and not home.exists():
        return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kaggle"
    return home


def _nonempty(path: Path) -> bool:
    try:
        return path.is_file() and bool(path.read_text(errors="replace").strip())
    except OSError:
        return False


def kaggle_credentials() -> str:
    """Where the Kaggle command will find credentials; RuntimeError listing every way to give them.

    Looked for in the kaggle package's own order (kaggle >= 2.1.1), by reading environment
    variables and files only (no network call, nothing printed):
    1. an API token: $KAGGLE_API_TOKEN (the token, or the path of a file holding it), else the
       file ~/.kaggle/access_token (or access_token.txt);
    2. a legacy API key: "username" and "key" from kaggle.json (in $KAGGLE_CONFIG_DIR, else
       ~/.kaggle), each overridden by $KAGGLE_USERNAME / $KAGGLE_KEY;
    3. the OAuth login that `kaggle auth login` saves: ~/.kaggle/credentials.json.
    Whether a token is still valid only Kaggle can say: the command then fails with 401.
    """
    home = Path.home() / ".kaggle"
    problems = []
    token = os.environ.get("KAGGLE_API_TOKEN", "")
    if token:
        if not Path(token).exists():  # kaggle reads the variable as a path first, then as the token
            return "$KAGGLE_API_TOKEN"
        if _nonempty(Path(token)):
            return f"$KAGGLE_API_TOKEN (the file {token})"
        problems.append(f"$KAGGLE_API_TOKEN names the file {token}, which is empty: put the token in it, "
                        "or set the variable to the token itself")
    for f in (home / "access_token", home / "access_token.txt"):
        if _nonempty(f):
            return str(f)

    config = _kaggle_config_dir() / "kaggle.json"
    keys, from_file = {}, False
    if config.is_file():
        try:
            keys = json.loads(config.read_text())
            from_file = isinstance(keys, dict)
            keys = keys if from_file else {}
        except (ValueError, OSError):
            problems.append(f"{config} is not valid JSON: download a fresh kaggle.json from {KAGGLE_SETTINGS} "
                            "(API section)")
    env = {k: os.environ.get(f"KAGGLE_{k.upper()}") for k in ("username", "key")}
    keys.update({k: v for k, v in env.items() if v})
    if keys.get("username") and keys.get("key"):
        if not from_file:
            return "$KAGGLE_USERNAME and $KAGGLE_KEY"
        return str(config) + (" with $KAGGLE_USERNAME/$KAGGLE_KEY" if any(env.values()) else "")
    if from_file:
        problems.append(f"{config} needs both \"username\" and \"key\": download a fresh one from "
                        f"{KAGGLE_SETTINGS} (API section)")
    elif any(env.values()):
        problems.append("only one of $KAGGLE_USERNAME and $KAGGLE_KEY is set: set both")

    oauth = home / "credentials.json"
    if oauth.is_file():
        try:
            saved = json.loads(oauth.read_text())
        except (ValueError, OSError):
            saved = None
        if isinstance(saved, dict) and saved.get("refresh_token"):
            return f"{oauth} (kaggle auth login)"
        problems.append(f"{oauth} holds no login (no refresh_token): run `kaggle auth login` again")

    raise RuntimeError(
        "no Kaggle credentials found" + (f" ({'; '.join(problems)})" if problems else "") + ". Give them in "
        f"any one of these ways: (1) create an API token at {KAGGLE_SETTINGS} (API, Generate New Token) and set "
        "the environment variable KAGGLE_API_TOKEN to it (in Colab: a secret named KAGGLE_API_TOKEN), or save it "
        "in the file ~/.kaggle/access_token; (2) run `kaggle auth login` once, on a machine with a browser "
        "(saves ~/.kaggle/credentials.json); (3) a legacy key: ~/.kaggle/kaggle.json (chmod 600; or "
        "$KAGGLE_CONFIG_DIR/kaggle.json), or the variables KAGGLE_USERNAME and KAGGLE_KEY. Never paste a key "
        "into a notebook cell that you share."
    )


def _installed_kaggle_version() -> str | None:
    """The version of the kaggle package in this Python environment (read from its metadata, not imported)."""
    from importlib import metadata

    try:
        return metadata.version("kaggle")
    except metadata.PackageNotFoundError:
        return None


def _version_tuple(version: str) -> tuple:
    return tuple(int(p) for p in re.findall(r"\d+", version.split("+")[0])[:3])


def _kaggle_cli() -> list[str]:
    """The kaggle command of this Python environment, run as its own process (never imported here)."""
    import importlib.util

    need = ".".join(map(str, KAGGLE_MIN_VERSION))
    version = _installed_kaggle_version()
    if version is not None and _version_tuple(version) < KAGGLE_MIN_VERSION:
        raise RuntimeError(f"kaggle {version} is installed; the kit needs kaggle >= {need} (older ones ignore "
                           f"KAGGLE_API_TOKEN and `kaggle auth login`): pip install -U 'kaggle>={need}' six")
    beside = Path(sys.executable).parent / ("kaggle.exe" if os.name == "nt" else "kaggle")
    if beside.is_file():
        return [str(beside)]
    if importlib.util.find_spec("kaggle") is not None:  # finds the package without importing it
        # its command-line entry point in a child process (`python -m kaggle` needs kaggle >= 2.2)
        return [sys.executable, "-c", KAGGLE_MAIN]
    exe = shutil.which("kaggle")
    if exe:
        return [exe]
    raise RuntimeError(f"the kaggle command is not installed: pip install 'kaggle>={need}' six")


def _is_live(out) -> bool:
    """True for a terminal or a notebook's output area, which redraw a progress bar in place."""
    try:
        if out.isatty():
            return True
    except (AttributeError, ValueError):
        pass
    return type(out).__module__.split(".")[0] in ("ipykernel", "google")


def _relay(pipe, out=None, keep: int = 20_000, every: float | None = None) -> str:
    """Copy a child process's output to `out` (sys.stdout) as it arrives; return its last `keep` characters.

    A terminal or a notebook gets it unchanged (progress bars redraw in place). A file (a nohup
    log, a CI log) gets whole lines, and of a progress bar's redraws ('\\r') one line every
    `every` seconds and the last one, instead of thousands.
    """
    import codecs
    import time

    out = out if out is not None else sys.stdout
    every = PROGRESS_EVERY if every is None else every
    live = _is_live(out)
    decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
    tail, pending, bar, last = "", "", None, -float("inf")

    def emit(text):
        out.write(text)
        out.flush()

    fd = pipe.fileno()
    while True:
        chunk = os.read(fd, 1 << 16)
        text = decode(chunk, final=not chunk)
        tail = (tail + text)[-keep:]
        if live:
            if text:
                emit(text)
        else:
            pending += text
            while True:
                m = re.search(r"\r\n|\n|\r", pending)
                if m is None or (m.group() == "\r" and m.end() == len(pending) and chunk):
                    break  # a lone '\r' at the end may be the first half of '\r\n'
                segment, pending = pending[:m.start()], pending[m.end():]
                if m.group() == "\r":  # a redraw: keep the newest, write one now and then
                    bar = segment if segment.strip() else bar
                    if bar is not None and time.monotonic() - last >= every:
                        emit(bar + "\n")
                        bar, last = None, time.monotonic()
                else:
                    emit(segment + "\n")
                    bar = None
        if not chunk:
            break
    if not live:
        rest = pending if pending.strip() else bar
        if rest:
            emit(rest.strip("\r") + "\n")
    return tail


def _stream(cmd: list[str]) -> tuple[int, str]:
    """Run a command with its output shown as it comes; (exit code, the last part of its output)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # the child's prints come at once, not at its exit
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    except OSError as e:
        raise RuntimeError(f"could not run {cmd[0]} ({e}): pip install "
                           f"'kaggle>={'.'.join(map(str, KAGGLE_MIN_VERSION))}' six") from None
    with proc:
        try:
            output = _relay(proc.stdout)
        except BaseException:  # Ctrl-C, a closed output: stop the child too
            proc.kill()
            raise
        return proc.wait(), output


def _kaggle_hint(output: str, competition: str) -> str:
    """What to do about a failed kaggle command, from what it printed."""
    rules = f"accept the competition's rules on https://www.kaggle.com/competitions/{competition}/rules"
    if re.search(r"\b403\b|Forbidden", output):
        return f"403: {rules} (with the account of these credentials)"
    if re.search(r"\b401\b|Unauthorized", output):
        return f"401: the credentials are wrong or expired: make a new token at {KAGGLE_SETTINGS}"
    if re.search(r"\b404\b|Not Found", output):
        return f"404: check the competition's name ({competition!r}, as in its URL)"
    if re.search(r"ConnectionError|Failed to resolve|Name or service not known|timed out", output):
        return "Kaggle could not be reached: check the internet connection (and a proxy, if you need one)"
    return (f"if it is a 403, {rules}; a 401: the credentials are wrong or expired; a 404: check the "
            f"competition's name ({competition!r})")


def _run_kaggle(args: list[str], what: str, competition: str) -> subprocess.CompletedProcess:
    cmd = _kaggle_cli() + args
    code, output = _stream(cmd)
    if code != 0:
        lines = [line.strip() for line in output.replace("\r", "\n").splitlines() if line.strip()]
        said = " / ".join(lines[-3:]) or "no output"
        hint = _kaggle_hint("\n".join(lines[-10:]), competition)  # its last words, not a progress bar's numbers
        raise RuntimeError(f"kaggle {what} failed (exit {code}): {said}. {hint}")
    return subprocess.CompletedProcess(cmd, code, stdout=output, stderr="")


def kaggle_download(competition: str, dest="data", force: bool = False) -> Path:
    """Download a competition's data into `dest` (its progress shown as it goes), unzip it there,
    and return the data root.

    A second call finds the extracted data and downloads nothing (Colab restarts), unless
    force=True. An interrupted download resumes where it stopped.
    """
    from .data import find_root

    dest = Path(dest).expanduser()
    marker = dest / f".{competition}.extracted"
    if marker.is_file() and not force:
        return find_root(dest)
    kaggle_credentials()
    dest.mkdir(parents=True, exist_ok=True)
    args = ["competitions", "download", competition, "-p", str(dest)] + (["--force"] if force else [])
    _run_kaggle(args, "download", competition)
    archive = dest / f"{competition}.zip"
    if not archive.is_file():
        zips = sorted(dest.glob("*.zip"))
        if len(zips) != 1:
            raise FileNotFoundError(f"the download left no {archive.name} in {dest} (found {[z.name for z in zips]}): "
                                    "run it again")
        archive = zips[0]
    print(f"phonemekit: extracting {archive} into {dest} ...", flush=True)
    try:
        with zipfile.ZipFile(archive) as z:
            z.extractall(dest)  # zipfile strips absolute paths and '..' from member names
    except zipfile.BadZipFile as e:
        raise RuntimeError(f"{archive} is not a complete zip ({e}): run the download again (it resumes), "
                           "or with force=True (--force) to start over") from None
    marker.write_text(archive.name + "\n")
    return find_root(dest)


def kaggle_submit(path, competition: str, message: str, n_frames: int | None = None, sample=None,
                  validate=None):
    """Validate the CSV, then `kaggle competitions submit COMPETITION -f PATH -m MESSAGE`.

    n_frames (or the rows of `sample`, the competition's sample_submission.csv) is the number
    of rows the file must have (test frames for HW1P2, test utterances for HW3P2); without
    either, the row count is not checked. validate(path, n, sample=...): the check of the CSV,
    validate_submission by default (HW3P2: phonemekit.ctc_submit.validate_ctc_submission).
    """
    path = Path(path).expanduser()
    if not message:
        raise ValueError("give a message: Kaggle requires one for every submission (-m)")
    if n_frames is None and sample is not None:
        n_frames = len(_read_csv(sample, what="sample", fix="download the competition's data again"))
    if n_frames is None:
        warnings.warn("kaggle_submit: no n_frames or sample given, so the row count is not checked", stacklevel=2)
        n_frames = len(_read_csv(path))
    (validate or validate_submission)(path, n_frames, sample=sample)
    kaggle_credentials()
    return _run_kaggle(["competitions", "submit", competition, "-f", str(path), "-m", message], "submit",
                       competition)



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
    df = _read_csv(sample, what="sample", nrows=100)
    kind = label_kind(df.iloc[:, 1]) if df.shape[1] == 2 and len(df) else None
    return tuple(df.columns), kind or "string"
