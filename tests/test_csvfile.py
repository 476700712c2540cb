"""What both homeworks' CSVs share: a bad sample file or header named as such, ids written with
zeros, another separator, empty answer folders; and telling an HW1P2 file (or sample) from an
HW3P2 one, so that each is checked by its own rules."""

import pandas as pd
import pytest

from phonemekit.ctc_submit import (
    check_sample, has_ctc_answers, submission_task, validate_ctc_submission, write_ctc_submission,
)
from phonemekit.submit import has_test_answers, validate_submission, write_submission

HW1P2 = dict(write=lambda path, **kw: write_submission([0, 3], path, **kw), validate=validate_submission,
             header="id,label", rows=["0,[SIL]", "1,AH"])
HW3P2 = dict(write=lambda path, **kw: write_ctc_submission(["-Ab-", "bAb"], path, **kw),
             validate=validate_ctc_submission, header="index,label", rows=["0,-Ab-", "1,bAb"])
HOMEWORKS = pytest.mark.parametrize("hw", [HW1P2, HW3P2], ids=["hw1p2", "hw3p2"])


def csv(path, text):
    path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
    return path


@HOMEWORKS
@pytest.mark.parametrize("content,reason", [
    ("\n\n", "has no header line"),  # pandas: "No columns to parse from file"
    ("id,label\n0,AÄ\n".encode("latin-1"), r"is not UTF-8 text \(byte 0xc4 on line 2\)"),
    ("", r"is empty \(0 bytes\)"),
    ("id\n0\n", "has columns 'id': a submission has two"),
])
def test_a_bad_sample_file_is_named_as_the_sample_with_what_is_wrong(tmp_path, hw, content, reason):
    path = hw["write"](tmp_path / "s.csv")
    sample = csv(tmp_path / "sample_submission.csv", content)
    with pytest.raises(ValueError, match=rf"sample file .*sample_submission\.csv {reason}") as e:
        hw["validate"](path, 2, sample=sample)
    assert "\n" not in str(e.value)


@HOMEWORKS
@pytest.mark.parametrize("header", [("a", "b", "c"), ("a",), "ab", "id,label", ("id", "")])
def test_a_header_that_is_not_two_names_is_refused_when_writing(tmp_path, hw, header):
    with pytest.raises(ValueError, match=r"header=.*: give two column names"):
        hw["write"](tmp_path / "s.csv", header=header)
    assert not (tmp_path / "s.csv").exists()


def test_a_single_string_is_not_taken_for_one_prediction_per_character(tmp_path):
    with pytest.raises(ValueError, match="predictions is one string .*one string per test utterance"):
        write_ctc_submission("-Ab-", tmp_path / "s.csv")


@HOMEWORKS
def test_ids_written_with_leading_zeros_in_row_order_get_no_order_note(tmp_path, hw, capsys):
    path = csv(tmp_path / "s.csv", "\n".join([hw["header"], *("0" + r for r in hw["rows"])]) + "\n")
    assert hw["validate"](path, 2)
    assert "not in row order" not in capsys.readouterr().out


@HOMEWORKS
@pytest.mark.parametrize("sep,name", [("\t", "tabs"), (";", "semicolons")])
def test_a_file_with_another_separator_is_told_so_not_that_its_header_or_rows_are_wrong(tmp_path, hw, sep, name):
    text = "\n".join([hw["header"], *hw["rows"]]).replace(",", sep) + "\n"
    path = csv(tmp_path / "s.csv", text)
    assert submission_task(path) == ("frames" if hw is HW1P2 else "ctc")
    with pytest.raises(ValueError, match=f"separates its columns with {name}.*Kaggle reads commas"):
        hw["validate"](path, 2)


@pytest.mark.parametrize("has_answers,folder", [(has_test_answers, "transcript"), (has_ctc_answers, "transcript")])
def test_an_empty_answers_folder_is_no_answers(tmp_path, has_answers, folder):
    (tmp_path / "test-clean" / folder).mkdir(parents=True)
    assert not has_answers(tmp_path)
    (tmp_path / "test-clean" / folder / "x.npy").write_bytes(b"")
    assert has_answers(tmp_path)
    assert not has_answers(None)


# --------------------------------------------------------------------------------------------
# HW1P2 or HW3P2?


@pytest.mark.parametrize("text", [
    "index,label\n0,-Ab-\n1,bAXb\n2,AAb\n",  # one bad character
    "index,label\n0,S\n1,T\n",  # one-letter labels that are also HW1P2 classes
    "id,predictions\n0,S\n1,-\n",
    "index,label\n0,-A b-\n1,b A b\n",  # phonemes separated by spaces
])
def test_an_hw3p2_csv_with_a_mistake_is_still_checked_as_hw3p2(tmp_path, text):
    path = csv(tmp_path / "s.csv", text)
    assert submission_task(path) == "ctc"


def test_the_hw3p2_check_names_the_bad_character_and_its_row(tmp_path):
    path = csv(tmp_path / "s.csv", "index,label\n0,-Ab-\n1,bAXb\n2,AAb\n")
    with pytest.raises(ValueError, match=r"row 1 has characters \['X'\] outside the phoneme map"):
        validate_ctc_submission(path, 3)


@pytest.mark.parametrize("text", [
    "id,label\n0,[SIL]\n1,AH\n2,ah\n",  # one miscased label
    "id,label\n0,AA\n1,S\n",  # labels either homework could hold, an HW1P2 header
    "Id,Label\n0,3\n1,39\n",
])
def test_an_hw1p2_csv_is_checked_as_hw1p2(tmp_path, text):
    assert submission_task(csv(tmp_path / "s.csv", text)) == "frames"


def test_the_sample_file_or_the_row_count_decides_when_the_labels_cannot(tmp_path):
    path = csv(tmp_path / "s.csv", "id,label\n0,S\n1,T\n")
    assert submission_task(path) == "frames"
    assert submission_task(path, sample=csv(tmp_path / "sample.csv", "id,label\n0,-\n")) == "ctc"
    assert submission_task(path, n_frames=1_937_496, n_utterances=2) == "ctc"
    assert submission_task(path, n_frames=2, n_utterances=2_620) == "frames"


def test_a_sample_file_of_the_other_homework_or_test_set_is_refused(tmp_path):
    frames = csv(tmp_path / "hw1p2_sample.csv", "id,label\n0,[SIL]\n1,[SIL]\n")
    ctc = csv(tmp_path / "hw3p2_sample.csv", "index,label\n0,-A\n1,-\n")
    assert check_sample(frames, "frames", 2) == frames and check_sample(ctc, "ctc", 2) == ctc
    with pytest.raises(ValueError, match=r"hw1p2_sample\.csv is an HW1P2 .* sample, and this prediction is HW3P2"):
        check_sample(frames, "ctc", 2)
    with pytest.raises(ValueError, match=r"hw3p2_sample\.csv is an HW3P2 .* sample, and this prediction is HW1P2"):
        check_sample(ctc, "frames")
    with pytest.raises(ValueError, match=r"hw3p2_sample\.csv has 2 rows and the test set 3 test utterances"):
        check_sample(ctc, "ctc", 3)
    with pytest.raises(ValueError, match="task='hw3p2'"):
        check_sample(ctc, "hw3p2")


def test_hw3p2_predictions_that_pandas_reads_as_missing_are_written_so_that_they_survive(tmp_path):
    preds = ["nan", "null", "-nan", "", "nan-"]  # N AA N, N UW L L, [SIL] N AA N, nothing
    path = write_ctc_submission(preds, tmp_path / "s.csv")
    assert pd.read_csv(path).iloc[:, 1].tolist() == ["nan-", "null-", "-nan-", "-", "nan-"]  # Kaggle's view
    assert validate_ctc_submission(path, 5)
    for cell in ("nan", '"null"', "-nan", '""'):  # quoted or not: NaN to Kaggle
        bad = csv(tmp_path / "bad.csv", f"index,label\n0,-A\n1,{cell}\n")
        with pytest.raises(ValueError, match=r"row 1 has .*(empty or NaN label|an empty label).*"
                                             r"write_ctc_submission, which appends '-'"):
            validate_ctc_submission(bad, 2)
