"""The HW3P2 CSV: one row per test utterance in file order, round trip, and every way it can be wrong."""

import pandas as pd
import pytest
import torch

from ctc_corpus import write_corpus
from phonemekit.ctc_model import build_ctc_model
from phonemekit.ctc_submit import (
    answers, predict_ctc, score_ctc_submission, validate_ctc_submission, write_ctc_submission,
)
from phonemekit.data import DEMO_ROOT
from phonemekit.sequences import UtteranceDataset

PREDS = ["-Ab-", "bAb", "", "Ggf"]


def test_write_validate_and_score_round_trip(tmp_path):
    path = write_ctc_submission(PREDS, tmp_path / "sub.csv")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(df.columns) == ["index", "label"]
    assert df["index"].tolist() == ["0", "1", "2", "3"]
    assert df["label"].tolist() == ["-Ab-", "bAb", "-", "Ggf"]  # an empty prediction is written as silence
    assert validate_ctc_submission(path, 4)
    assert score_ctc_submission(path, ["-Ab-", "bA", "-", "Ggf"]) == pytest.approx(1 / 4)


def test_the_sample_files_header_wins(tmp_path):
    sample = tmp_path / "sample_submission.csv"
    sample.write_text("id,predictions\n0,-\n")
    path = write_ctc_submission(PREDS, tmp_path / "sub.csv", sample=sample)
    assert path.read_text().splitlines()[0] == "id,predictions"
    assert validate_ctc_submission(path, 4, sample=sample)
    with pytest.raises(ValueError, match="header 'id,predictions', expected 'index,label'"):
        validate_ctc_submission(path, 4)


@pytest.mark.parametrize("text, n, match", [
    ("index,label\n0,-A\n1,b\n", 3, "2 rows, expected 3"),
    ("index,label\n1,-A\n1,b\n", 2, "id 1 appears 2 times .* id 0 is missing: each test utterance"),
    ("index,label\n0,-A\nx,b\n", 2, "row 1 has id 'x', not an integer"),
    ("index,label\n0,-A\n1,\n", 2, "row 1 has an empty label"),
    ("index,label\n0,-A\n1,A b\n", 2, r"row 1 has characters \[' '\] outside the phoneme map"),
    ("index,label\n0,AH B\n1,b\n", 2, "outside the phoneme map"),
    (",index,label\n0,0,-A\n1,1,b\n", 2, "extra index column"),
    ("id,label\n0,-A\n1,b\n", 2, "header 'id,label'"),
])
def test_validation_names_what_is_wrong(tmp_path, text, n, match):
    path = tmp_path / "sub.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        validate_ctc_submission(path, n)


def test_writing_refuses_strings_outside_the_map(tmp_path):
    with pytest.raises(ValueError, match="prediction 1"):
        write_ctc_submission(["-A", "A B"], tmp_path / "sub.csv")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        validate_ctc_submission(tmp_path / "missing.csv", 2)


def test_predictions_come_in_file_order_and_score_against_the_demo_answers(tmp_path):
    torch.manual_seed(0)
    test = UtteranceDataset(DEMO_ROOT, "test-clean")
    model = build_ctc_model(28, conv_channels=8, conv_layers=1, lstm_hidden=8, lstm_layers=1, head=[]).train()
    preds = predict_ctc(model, test, batch_size=7)
    assert len(preds) == len(test) and model.training
    # each row is its own utterance, whatever batch it was decoded in
    alone = predict_ctc(model, test, batch_size=1)
    assert preds == alone
    path = write_ctc_submission(preds, tmp_path / "submission.csv")
    truth = answers(UtteranceDataset(DEMO_ROOT, "test-clean", with_labels=True))
    assert score_ctc_submission(path, truth) > 0
    assert score_ctc_submission(write_ctc_submission(truth, tmp_path / "perfect.csv"), truth) == 0


def test_ids_out_of_row_order_are_valid_and_scored_by_id_as_kaggle_does(tmp_path, capsys):
    path = tmp_path / "sub.csv"
    path.write_text("index,label\n1,bA\n0,-A\n")
    assert validate_ctc_submission(path, 2)
    assert "scored by id" in capsys.readouterr().out
    assert score_ctc_submission(path, ["-A", "bA"]) == 0
