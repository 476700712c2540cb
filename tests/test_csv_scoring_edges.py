"""Scoring and sample files at their edges, for both homeworks: a shuffled file scores quietly
by id, a sample with the wrong columns is named with them, and a third column that is not an
index is reported as a wrong header."""

import pytest

from phonemekit.ctc_submit import score_ctc_submission, validate_ctc_submission
from phonemekit.csvfile import read_sample
from phonemekit.submit import score_submission, validate_submission

HOMEWORKS = pytest.mark.parametrize("score,validate,header,rows,truth,perfect", [
    (score_submission, validate_submission, "id,label", ["0,[SIL]", "1,AH", "2,B"], [0, 3, 0], 2 / 3),
    (score_ctc_submission, validate_ctc_submission, "index,label", ["0,-Ab-", "1,bAb", "2,A"], ["-Ab-", "bA", "A"], 1 / 3),
], ids=["hw1p2", "hw3p2"])


@HOMEWORKS
def test_a_shuffled_submission_scores_by_id_and_scoring_prints_nothing(tmp_path, capsys, score, validate, header,
                                                                       rows, truth, perfect):
    path = tmp_path / "sub.csv"
    path.write_text("\n".join([header, rows[2], rows[0], rows[1]]) + "\n")
    assert score(path, truth) == pytest.approx(perfect)
    assert capsys.readouterr().out == ""  # scoring many files in a loop: no note per file


@HOMEWORKS
def test_a_third_column_that_is_not_an_index_is_reported_as_the_wrong_header(tmp_path, score, validate, header,
                                                                             rows, truth, perfect):
    path = tmp_path / "sub.csv"
    path.write_text("\n".join(["extra," + header] + ["x," + r for r in rows]) + "\n")
    with pytest.raises(ValueError, match=f"has header 'extra,{header}'"):
        validate(path, len(rows))


def test_a_sample_file_without_two_columns_is_named_with_its_columns(tmp_path):
    path = tmp_path / "sample.csv"
    path.write_text("id,label,extra\n0,a,b\n")
    with pytest.raises(ValueError, match=f"sample file {path} has columns 'id,label,extra': a submission has two"):
        read_sample(path)
