"""HW3P2 end to end through the kit's engine: exact resume, a checkpoint that predicts the test set
in file order, the HW1P2 frame model as a baseline, and what tells the two CSVs apart."""

import Levenshtein
import pandas as pd
import pytest
import torch

from ctc_corpus import write_corpus
from phonemekit.config import load_recipe
from phonemekit.ctc_submit import (
    answers, ctc_test_dataset, frame_baseline, frame_sequences, has_ctc_answers, predict_ctc, score_ctc_submission,
    submission_task, validate_ctc_submission, write_ctc_submission,
)
from phonemekit.data import DEMO_ROOT
from phonemekit.decode import greedy_decode, mean_distance
from phonemekit.sequences import UtteranceDataset
from phonemekit.submit import write_submission
from phonemekit.train import fit, load_checkpoint

TIMING = ["epoch_time", "utterances_per_s"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("hw3p2")
    write_corpus(root, counts={"train-clean-100": 24, "dev-clean": 6, "test-clean": 5})
    return root


def tiny(root, checkpoint_dir, **kw):
    # dropout, locked dropout and masking on: a resume must restore the random state too
    return load_recipe("ctc-smoke", root=str(root), checkpoint_dir=str(checkpoint_dir), subset=1.0, val_subset=1.0,
                       batch_size=8, dropout=0.1, locked_dropout=0.2, time_masks=1, time_mask_width=3,
                       log_every=2, **kw)


def same_run(a, b):
    pd.testing.assert_frame_equal(a.history.drop(columns=TIMING), b.history.drop(columns=TIMING))
    assert a.best == b.best and a.best_epoch == b.best_epoch
    for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()):
        assert torch.equal(x, y)


def test_a_ctc_run_interrupted_and_resumed_has_the_history_of_one_that_never_stopped(corpus, tmp_path):
    straight = fit(tiny(corpus, tmp_path / "a", epochs=3, scheduler="cosine", warmup_epochs=1), verbose=False)
    assert list(straight.history.columns) == ["epoch", "train_loss", "val_loss", "val_dist", "lr", *TIMING]

    def interrupt(run):
        if run.epoch == 1:
            raise KeyboardInterrupt  # Ctrl-C (or a Colab disconnect) right after epoch 1

    config = tiny(corpus, tmp_path / "b", epochs=3, scheduler="cosine", warmup_epochs=1)
    with pytest.raises(KeyboardInterrupt):
        fit(config, callbacks={"on_epoch_end": interrupt}, verbose=False)
    resumed = fit(config, resume=True, verbose=False)
    assert resumed.metric == "val_dist" and list(resumed.history.epoch) == [1, 2, 3]
    same_run(straight, resumed)


def test_a_finished_ctc_run_resumed_with_more_epochs_matches_the_longer_run(corpus, tmp_path):
    # a constant lr: the schedule of 1 epoch and of 3 epochs agree on epoch 1
    straight = fit(tiny(corpus, tmp_path / "a", epochs=3, scheduler="none"), verbose=False)
    fit(tiny(corpus, tmp_path / "b", epochs=1, scheduler="none"), verbose=False)
    longer = fit(tiny(corpus, tmp_path / "b", epochs=3, scheduler="none"), resume=True, verbose=False)
    same_run(straight, longer)


def test_a_ctc_checkpoint_loads_and_predicts_the_test_set_in_file_order(corpus, tmp_path):
    fit(tiny(corpus, tmp_path / "run", epochs=2), verbose=False)
    model, config, ckpt = load_checkpoint(tmp_path / "run" / "best.pt")
    assert ckpt["task"] == "ctc" and config.task == "ctc" and not model.training
    test = ctc_test_dataset(config, corpus, stats=ckpt["stats"])
    assert test.labels is None and test.utterances == sorted(test.utterances) and len(test) == 5
    preds = predict_ctc(model, test, batch_size=2)
    # each row is its own utterance, whatever batch it was decoded in
    assert preds == [predict_ctc(model, ctc_test_dataset(config, corpus), batch_size=1)[u] for u in range(5)]
    # row u is test file u: its own features, decoded alone, give the string of row u
    with torch.no_grad():
        for u in range(len(test)):
            log_probs, lengths = model(test[u][None], torch.tensor([len(test[u])]))
            assert greedy_decode(log_probs, lengths) == [preds[u]]
    csv = write_ctc_submission(preds, tmp_path / "submission.csv")
    assert validate_ctc_submission(csv, len(test)) and submission_task(csv) == "ctc"
    truth = answers(ctc_test_dataset(config, corpus, with_labels=True))
    assert has_ctc_answers(corpus)
    # the file scores what a plain loop over the utterances gives, row u against answer u (an empty
    # prediction is written as "-", silence, so that Kaggle does not read a missing cell)
    written = [p or "-" for p in preds]
    plain = sum(Levenshtein.distance(p, t) for p, t in zip(written, truth)) / len(truth)
    assert score_ctc_submission(csv, truth) == pytest.approx(plain)


def test_global_normalisation_needs_the_checkpoints_statistics(corpus):
    config = load_recipe("ctc-smoke", normalize="global")
    with pytest.raises(ValueError, match=r"stats=ckpt\['stats'\]"):
        ctc_test_dataset(config, corpus)


@pytest.fixture(scope="module")
def frame_run(tmp_path_factory):
    """A quick HW1P2 model on the demo corpus (which ships frame-aligned transcripts too)."""
    return fit(load_recipe("smoke", root=str(DEMO_ROOT), epochs=1, checkpoint_dir=str(tmp_path_factory.mktemp("f"))),
               verbose=False)


def test_the_frame_baseline_scores_an_hw1p2_model_with_the_hw3p2_metric(frame_run):
    best = frame_run.checkpoint_dir / "best.pt"
    from_file = frame_baseline(best, DEMO_ROOT)
    # a checkpoint, fit()'s result and a model with its config are the same model
    assert frame_baseline(frame_run, DEMO_ROOT) == pytest.approx(from_file)
    model, config, _ = load_checkpoint(best)
    assert frame_baseline(model, DEMO_ROOT, config=config) == pytest.approx(from_file)
    truth = UtteranceDataset(DEMO_ROOT, "dev-clean", with_labels=True)
    by_run = {}
    for m in range(1, 9):
        preds, utterances = frame_sequences(best, DEMO_ROOT, min_run=m)
        assert utterances == truth.utterances
        by_run[m] = mean_distance(preds, answers(truth))
    # min_run is chosen on dev by default: the best of 1..8, and it says which
    assert from_file.min_run == min(by_run, key=lambda m: (by_run[m], m)) and from_file.chosen_on == "dev-clean"
    assert from_file == pytest.approx(by_run[from_file.min_run]) and from_file <= by_run[1]
    empty = mean_distance([""] * len(truth), answers(truth))
    assert 0 < from_file < empty and frame_baseline(best, DEMO_ROOT, min_run=3) == pytest.approx(by_run[3])
    on_test = frame_baseline(best, DEMO_ROOT, "test-clean")  # chosen on dev, scored on test
    assert on_test.min_run == from_file.min_run and on_test.chosen_on == "dev-clean"
    with pytest.raises(ValueError, match="needs the model's config"):
        frame_baseline(model, DEMO_ROOT)


def test_the_frame_baseline_refuses_a_ctc_model(corpus, tmp_path):
    fit(tiny(corpus, tmp_path / "ctc", epochs=1), verbose=False)
    with pytest.raises(ValueError, match="HW1P2"):
        frame_baseline(tmp_path / "ctc" / "best.pt", DEMO_ROOT)


def test_an_hw1p2_csv_and_an_hw3p2_csv_are_told_apart_by_their_labels(tmp_path):
    assert submission_task(write_submission([0, 3, 3, 7], tmp_path / "frames.csv")) == "frames"
    assert submission_task(write_submission([0, 3], tmp_path / "ints.csv", label_format="int")) == "frames"
    assert submission_task(write_ctc_submission(["-Ab-", "bAb"], tmp_path / "ctc.csv")) == "ctc"
