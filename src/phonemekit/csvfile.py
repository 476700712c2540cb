"""The Kaggle submission CSV of either homework: read it, check it, write it, score it by id.

A submission is a header of two column names (exactly those of the competition's sample file),
then one row per test item (a frame in HW1P2, an utterance in HW3P2): an integer id 0..N-1 and
a label. Kaggle matches rows to items by id, so any row order scores the same. What a valid
label is belongs to the homework: submit.py and ctc_submit.py each pass theirs in a Spec.

Kaggle reads the file as pandas does by default: a cell in MISSING ("", "nan", "null", "NA", ...)
becomes NaN there, quoted or not, so such a label never reaches the metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .corpus import make_dir

# pandas.read_csv's default na_values (the same from pandas 1.x to 3.x) and the empty cell
MISSING = frozenset(["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                     "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"])
SEPARATORS = {"\t": "tabs", ";": "semicolons", "|": "vertical bars"}
SAMPLE_FIX = "it ships with the competition's data (sample_submission.csv): download it again"


@dataclass(frozen=True)
class Spec:
    """One homework's CSV. check_labels(path, labels, sample, sample_labels) raises ValueError naming
    the first bad label (labels: the label column as text; sample_labels: the sample file's first
    rows, or None without a sample)."""

    unit: str  # what one row is: "test frame", "test utterance"
    writer: str  # what writes the file, named in every fix
    header: tuple  # the header when there is no sample file
    check_labels: Callable
    missing_fix: str  # what to do about a label that Kaggle reads as missing


# --------------------------------------------------------------------------------------------
# Reading


def read_csv(path, what: str = "submission", fix: str = "write it with the kit's writer",
             nrows: int | None = None, sep: str = ",") -> pd.DataFrame:
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
        # every cell as text: nothing converted, nothing silently turned into NaN (MISSING is checked instead)
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8", nrows=nrows,
                           sep=sep)
    except UnicodeDecodeError:
        raise ValueError(f"{what} file {path} is not UTF-8 text ({_where_not_utf8(path.read_bytes())}): save it "
                         "as UTF-8 CSV (the kit's writers do; in Excel: CSV UTF-8)") from None
    except pd.errors.EmptyDataError:  # pandas: "No columns to parse from file"
        raise ValueError(f"{what} file {path} has no header line (only blank lines): {fix}") from None
    except pd.errors.ParserError as e:
        raise ValueError(f"{what} file {path} is not a well-formed CSV ({str(e).strip()}): {fix}") from None
    except OSError as e:
        raise ValueError(f"{what} file {path} cannot be read ({e.strerror or e}): check its permissions") from None


def _where_not_utf8(data: bytes) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "it is UTF-16"
    try:
        data.decode("utf-8")
        return "an invalid byte"
    except UnicodeDecodeError as e:  # where in the whole file, not in pandas' chunk
        line = data.count(b"\n", 0, e.start) + 1
        return f"byte 0x{data[e.start]:02x} on line {line}"


def read_any_separator(path, what: str = "submission") -> pd.DataFrame:
    """read_csv, and when the one column's name shows another separator (a tab, ';'), read with that:
    to tell what a file holds; the check itself still refuses the separator and names it."""
    df = read_csv(path, what=what)
    sep = next((s for s in SEPARATORS if df.shape[1] == 1 and s in df.columns[0]), None)
    return df if sep is None else read_csv(path, what=what, sep=sep)


def read_sample(sample, nrows: int | None = 100) -> pd.DataFrame:
    """The first rows of a competition's sample file; ValueError naming it unless it has two columns."""
    sample = Path(sample).expanduser()
    df = read_csv(sample, what="sample", fix=SAMPLE_FIX, nrows=nrows)
    if df.shape[1] != 2:
        raise ValueError(f"sample file {sample} has columns {','.join(df.columns)!r}: a submission has two "
                         f"(an id and the label); {SAMPLE_FIX}")
    return df


def sample_header(sample) -> tuple[str, str]:
    """The header of a competition's sample file, read as the submission is."""
    return tuple(read_sample(sample, nrows=0).columns)


def header_names(header) -> tuple[str, str]:
    """header as two column names; ValueError for a single string, one name, or three."""
    if isinstance(header, str) or not hasattr(header, "__len__") or len(header) != 2 \
            or not all(isinstance(h, str) and h for h in header):
        raise ValueError(f"header={header!r}: give two column names, e.g. ('id', 'label'), or sample= the "
                         "competition's sample_submission.csv")
    return tuple(header)


def count_rows(path, what: str = "sample") -> int:
    """The rows of a CSV (its header aside)."""
    return len(read_csv(path, what=what, fix=SAMPLE_FIX if what == "sample" else "write it again"))


# --------------------------------------------------------------------------------------------
# Checking


def check(path, n: int, spec: Spec, sample=None, header=None, quiet: bool = False):
    """Every check of a submission, as Kaggle makes them; ValueError naming the file, the row and the
    fix. Returns (the file as text, each row's id as int64, or None when the ids are 0..n-1 in row order)."""
    path = Path(path).expanduser()
    df = read_csv(path, fix=f"write it with {spec.writer}")
    if sample is not None:
        sample = Path(sample).expanduser()
        sample_df = read_sample(sample)
        expected, where = tuple(sample_df.columns), f"the header of {sample.name} is"
    else:
        sample_df, expected, where = None, header_names(header or spec.header), "expected"
    _check_header(path, tuple(df.columns), expected, where, spec)
    if len(df) != n:
        raise ValueError(f"{path} has {len(df):,} rows, expected {n:,} (one per {spec.unit}){_id_detail(df, n)}: "
                         f"predict every {spec.unit} of the full, unshuffled test set")
    id_col, label_col = expected
    for col, fix in ((id_col, f"write the ids with {spec.writer}"), (label_col, spec.missing_fix)):
        missing = df[col].isin(MISSING).to_numpy()
        if missing.any():
            row = int(missing.argmax())
            cell = df[col].iloc[row]
            said = (f"an empty {col} (Kaggle reads an empty or NaN {col} as missing)" if cell == "" else
                    f"{col} {cell!r}, which Kaggle (reading as pandas does) takes for an empty or NaN {col}, "
                    "quoted or not")
            raise ValueError(f"{path}: row {row} has {said}: {fix}")
    ids = row_ids(path, df[id_col], n, spec, quiet)
    spec.check_labels(path, df[label_col], sample, None if sample_df is None else sample_df[label_col])
    return df, ids


def _check_header(path, cols: tuple, expected: tuple, where: str, spec: Spec) -> None:
    shown = ",".join(expected)
    if len(cols) == 3 and (cols[0] == "" or cols[0].startswith("Unnamed")) and cols[1:] == expected:
        raise ValueError(f"{path} has an extra index column before {shown} (DataFrame.to_csv without "
                         f"index=False): rewrite it with index=False, or with {spec.writer}")
    sep = next((s for s in SEPARATORS if len(cols) == 1 and s in cols[0]), None)
    if sep is not None:
        raise ValueError(f"{path} separates its columns with {SEPARATORS[sep]} (header {cols[0]!r}); Kaggle "
                         f"reads commas: write it with {spec.writer} (or to_csv without sep=)")
    if cols != expected:
        raise ValueError(f"{path} has header {','.join(cols)!r}, {where} {shown!r} (exactly, case included): "
                         f"write it with {spec.writer}(..., header={expected!r}) or sample=")


def _id_detail(df: pd.DataFrame, n: int) -> str:
    """Which ids a file of the wrong length lacks or repeats (when its ids are integers)."""
    if df.shape[1] < 1 or not df.iloc[:, 0].str.fullmatch(r"\d{1,18}").all():
        return ""
    ids = df.iloc[:, 0].astype(np.int64).to_numpy()
    counts = np.bincount(ids[ids < n], minlength=n)
    said = []
    if (counts == 0).any():
        said.append(f"id {int((counts == 0).argmax())} is missing")
    if (counts > 1).any():
        dup = int((counts > 1).argmax())
        said.append(f"id {dup} appears {counts[dup]} times")
    if (ids >= n).any():
        said.append(f"id {ids[ids >= n][0]} is past {n - 1}")
    return f"; {', '.join(said)}" if said else ""


def row_ids(path, column: pd.Series, n: int, spec: Spec, quiet: bool = False):
    """Each row's id as int64, or None when the ids are 0..n-1 in row order (the usual case).

    Kaggle matches rows to test items by id, so any order of the ids 0..n-1, each once, is
    scored the same (a note says so); a missing, repeated, negative or non-integer id is rejected.
    """
    ids = column.to_numpy(dtype=object)
    # compared as text first: "0", "1", ... in order is what the writers write, and it is fast on 2M rows
    if (ids == np.arange(n).astype(str).astype(object)).all():
        return None
    digits = column.str.fullmatch(r"\d{1,18}").to_numpy()
    if not digits.all():
        row = int((~digits).argmax())
        raise ValueError(f"{path}: row {row} has id {ids[row]!r}, not an integer: ids are 0..{n - 1}, "
                         f"one per {spec.unit}")
    ids = column.astype(np.int64).to_numpy()
    outside = ids >= n
    if outside.any():
        row = int(outside.argmax())
        raise ValueError(f"{path}: row {row} has id {ids[row]}, outside 0..{n - 1} (one id per {spec.unit}): "
                         f"write the ids with {spec.writer}")
    counts = np.bincount(ids, minlength=n)
    if (counts != 1).any():
        dup = int((counts > 1).argmax())
        rows = np.flatnonzero(ids == dup)[:2]
        missing = int((counts == 0).argmax())
        raise ValueError(f"{path}: id {dup} appears {counts[dup]} times (rows {rows[0]} and {rows[1]}) and id "
                         f"{missing} is missing: each {spec.unit} needs exactly one row; write the ids with "
                         f"{spec.writer}")
    if (ids == np.arange(n)).all():  # in order, written with leading zeros ("007")
        return None
    if not quiet:
        row = int((ids != np.arange(n)).argmax())
        print(f"note: {path}: the ids are not in row order (row {row} has id {ids[row]}); Kaggle matches rows "
              "by id, so the file is valid and is scored by id")
    return ids


# --------------------------------------------------------------------------------------------
# Writing and scoring


def write(path, labels, header) -> Path:
    """header, then row i: the id i and labels[i]."""
    header = header_names(header)
    path = Path(path).expanduser()
    make_dir(path.parent, "the CSV's folder", f"write {path.name} somewhere else (--out on the command line)")
    # index=False: pandas' own index column is the classic extra-column rejection
    pd.DataFrame({header[0]: np.arange(len(labels)), header[1]: labels}).to_csv(path, index=False)
    return path


def labels_by_id(path, n: int, spec: Spec) -> np.ndarray:
    """The labels of a submission (checked first), the label of id i at position i, as Kaggle
    matches them. Any two column names are fine here; an extra index column is still named."""
    cols = tuple(read_csv(path, nrows=0, fix=f"write it with {spec.writer}").columns)
    header = cols if len(cols) == 2 else cols[1:] if len(cols) == 3 else spec.header
    df, ids = check(path, n, spec, header=header, quiet=True)
    got = df.iloc[:, 1].to_numpy(dtype=object)
    if ids is None:
        return got
    by_id = np.empty_like(got)
    by_id[ids] = got
    return by_id
