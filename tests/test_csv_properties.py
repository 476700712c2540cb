"""Properties of the submission CSV of both homeworks, against references written here: what is
written validates and scores exactly what a plain loop computes; Kaggle matches rows by id, so
any row order scores the same; a row dropped or repeated is refused, naming the id."""

import io
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from phonemekit.ctc_submit import score_ctc_submission, validate_ctc_submission, write_ctc_submission
from phonemekit.phonemes import CLASSES, CTC_CHARS
from phonemekit.submit import score_submission, validate_submission, write_submission

PANDAS_NA = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
             "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}  # pandas' documented defaults


def levenshtein(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


# one homework each: what a prediction is, how the kit writes/validates/scores it, the plain metric
FRAMES = dict(
    item=st.integers(0, len(CLASSES) - 1),
    write=lambda preds, path: write_submission(preds, path),
    validate=validate_submission,
    score=score_submission,
    metric=lambda preds, truth: sum(p == t for p, t in zip(preds, truth)) / len(truth),
)
CTC_STRING = st.text(alphabet=CTC_CHARS[1:], min_size=1, max_size=8).filter(lambda s: s not in PANDAS_NA)
CTC = dict(
    item=CTC_STRING,
    write=lambda preds, path: write_ctc_submission(preds, path),
    validate=validate_ctc_submission,
    score=score_ctc_submission,
    metric=lambda preds, truth: sum(levenshtein(p, t) for p, t in zip(preds, truth)) / len(truth),
)
HOMEWORKS = pytest.mark.parametrize("hw", [FRAMES, CTC], ids=["hw1p2", "hw3p2"])


@st.composite
def predictions_and_answers(draw, item):
    n = draw(st.integers(1, 30))
    preds = draw(st.lists(item, min_size=n, max_size=n))
    # answers that agree with some predictions, so that scores are not all 0 or all 1
    truth = [p if draw(st.booleans()) else draw(item) for p in preds]
    return preds, truth


def rows(path: Path) -> tuple[str, list[str]]:
    header, *body = path.read_text().splitlines()
    return header, body


def rewrite(path: Path, header: str, body: list[str]) -> Path:
    path.write_text("\n".join([header, *body]) + "\n")
    return path


@HOMEWORKS
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_written_files_validate_and_score_what_a_plain_loop_computes(hw, data):
    preds, truth = data.draw(predictions_and_answers(hw["item"]))
    with tempfile.TemporaryDirectory() as d:
        path = hw["write"](preds, Path(d) / "s.csv")
        assert hw["validate"](path, len(preds))
        assert hw["score"](path, truth) == pytest.approx(hw["metric"](preds, truth))


@HOMEWORKS
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_rows_in_any_order_stay_valid_and_score_the_same_as_kaggle_matches_by_id(hw, data):
    preds, truth = data.draw(predictions_and_answers(hw["item"]))
    order = data.draw(st.permutations(range(len(preds))))
    with tempfile.TemporaryDirectory() as d:
        header, body = rows(hw["write"](preds, Path(d) / "s.csv"))
        path = rewrite(Path(d) / "shuffled.csv", header, [body[i] for i in order])
        assert hw["validate"](path, len(preds))
        assert hw["score"](path, truth) == pytest.approx(hw["metric"](preds, truth))


@HOMEWORKS
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_a_row_dropped_or_repeated_is_refused_naming_the_id(hw, data):
    preds, _ = data.draw(predictions_and_answers(hw["item"]))
    n = len(preds)
    k = data.draw(st.integers(0, n - 1))
    with tempfile.TemporaryDirectory() as d:
        header, body = rows(hw["write"](preds, Path(d) / "s.csv"))
        dropped = rewrite(Path(d) / "dropped.csv", header, body[:k] + body[k + 1:])
        with pytest.raises(ValueError, match=rf"id {k} is missing"):
            hw["validate"](dropped, n)
        repeated = rewrite(Path(d) / "repeated.csv", header, body + [body[k]])
        with pytest.raises(ValueError, match=rf"id {k} appears 2 times"):
            hw["validate"](repeated, n)
        if n > 1:  # the right length, one id twice and another one missing
            j = data.draw(st.integers(0, n - 1).filter(lambda j: j != k))
            swapped = rewrite(Path(d) / "swapped.csv", header, [body[j] if i == k else r for i, r in enumerate(body)])
            with pytest.raises(ValueError, match=rf"id {j} appears 2 times .* id {k} is missing"):
                hw["validate"](swapped, n)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=CTC_CHARS[1:], max_size=6) | st.sampled_from(["", "nan", "null", "-nan"]),
                min_size=1, max_size=20))
def test_every_hw3p2_prediction_reaches_kaggle_as_a_string_at_most_one_edit_away(preds):
    with tempfile.TemporaryDirectory() as d:
        path = write_ctc_submission(preds, Path(d) / "s.csv")
        # Kaggle reads as pandas does by default: "nan", "null", "-nan" and "" would be NaN there
        kaggle = pd.read_csv(path).iloc[:, 1]
        assert not kaggle.isna().any()
        for p, got in zip(preds, kaggle):
            assert got == p or (p in PANDAS_NA and got == p + "-")
        assert validate_ctc_submission(path, len(preds))
        # scored as Kaggle reads it
        assert score_ctc_submission(path, list(kaggle)) == 0
        assert score_ctc_submission(path, preds) <= 1


def test_the_cells_the_kit_calls_missing_are_exactly_those_pandas_reads_as_nan():
    from phonemekit.csvfile import MISSING

    assert MISSING == PANDAS_NA
    try:  # the installed pandas' own list, where it can be imported
        from pandas._libs.parsers import STR_NA_VALUES
    except ImportError:
        STR_NA_VALUES = PANDAS_NA - {""}
    assert MISSING == set(STR_NA_VALUES) | {""}
    cells = sorted(MISSING - {""}) + ["nan-", "-", "null-"]
    df = pd.read_csv(io.StringIO("a\n" + "\n".join(f'"{c}"' for c in cells) + "\n"))
    # quoted or not, each of MISSING is NaN to pandas; the kit's rewrites are not
    assert df["a"].isna().tolist() == [c in MISSING for c in cells]
