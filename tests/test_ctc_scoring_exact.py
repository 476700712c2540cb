"""HW3P2's validation score and loss, against plain references: the number that picks best.pt."""

import pytest
import torch

from ctc_corpus import write_corpus
from phonemekit import beam_cpu
from phonemekit.config import Config
from phonemekit.ctc import ctc_loss, ctc_meta, evaluate_ctc, make_ctc_datasets, make_ctc_loaders, make_ctc_model
from phonemekit.ctc_submit import answers, predict_ctc
from phonemekit.decode import mean_distance, min_ctc_frames
from phonemekit.phonemes import BLANK


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ctc")
    write_corpus(root, {"train-clean-100": 6, "dev-clean": 5, "test-clean": 2}, n_features=6)
    config = Config(task="ctc", root=str(root), conv_channels=8, conv_layers=1, conv_stride=1, lstm_hidden=8,
                    lstm_layers=1, pyramid=0, head=[], dropout=0.0, locked_dropout=0.0, batch_size=2,
                    eval_batch_size=2)
    train, dev = make_ctc_datasets(config, "cpu")
    torch.manual_seed(0)
    model = make_ctc_model(config, ctc_meta(train)).eval()
    return config, train, dev, model


def test_the_validation_distance_and_loss_are_the_plain_means_over_utterances(setup):
    config, train, dev, model = setup
    _, loader = make_ctc_loaders(config, train, dev, "cpu")
    scores = evaluate_ctc(model, loader, config)
    strings = predict_ctc(model, dev, batch_size=1)  # one utterance at a time, nothing shared
    assert scores["val_dist"] == pytest.approx(mean_distance(strings, answers(dev)))
    losses = []
    with torch.inference_mode():
        for u in range(len(dev)):
            x, xl, y, yl = dev.batch(torch.tensor([u]))
            lp, ol = model(x, xl)
            losses.append(float(torch.nn.functional.ctc_loss(lp.transpose(0, 1), y, ol, yl, blank=BLANK,
                                                             reduction="sum")))
    assert scores["val_loss"] == pytest.approx(sum(losses) / len(losses), rel=1e-5)


def test_a_dev_set_of_one_utterance_is_scored(setup):
    config, train, dev, model = setup
    one = [dev.batch(torch.tensor([0]))]
    assert evaluate_ctc(model, one, config)["val_dist"] >= 0


def test_beam_width_2_really_runs_the_beam(setup, monkeypatch):
    config, train, dev, model = setup
    calls = []
    monkeypatch.setattr(beam_cpu, "available", lambda: True)
    monkeypatch.setattr(beam_cpu, "decode_arrays", lambda arrays, width, **kw: calls.append(width) or [""] * len(arrays))
    _, loader = make_ctc_loaders(config, train, dev, "cpu")
    evaluate_ctc(model, loader, config, beam_width=2)
    assert calls == [2]


def test_one_unalignable_utterance_in_a_batch_trains_and_most_of_a_batch_is_refused(setup):
    config, train, dev, model = setup
    x, xl, y, yl = train.batch(torch.arange(4))
    short = xl.clone()
    short[0] = 1  # one utterance of 1 frame: too short for its transcript
    assert int((short < min_ctc_frames(y, yl)).sum()) == 1
    loss, n = ctc_loss(model.train(), (x, short, y, yl), config, None)
    assert n == 4 and torch.isfinite(loss)
    short[:3] = 1
    with pytest.raises(ValueError, match="3 of 4 utterances in this batch cannot be aligned"):
        ctc_loss(model, (x, short, y, yl), config, None)


@pytest.mark.skipif(not beam_cpu.available(), reason="needs pyctcdecode (pip install --no-deps pyctcdecode pygtrie)")
def test_beam_validation_scores_what_the_beam_predicts_for_every_utterance(setup):
    config, train, dev, model = setup
    _, loader = make_ctc_loaders(config, train, dev, "cpu")  # batches of 2: the set spans several
    scores = evaluate_ctc(model, loader, config, beam_width=3)
    strings = predict_ctc(model, dev, batch_size=1, beam_width=3, workers=1)
    assert scores["val_dist"] == pytest.approx(mean_distance(strings, answers(dev)))


def test_greedy_validation_never_runs_a_beam(setup, monkeypatch):
    import phonemekit.ctc as ctc

    config, train, dev, model = setup

    def no_beam(*a, **k):
        raise AssertionError("beam search ran for beam_width=1")

    monkeypatch.setattr(ctc, "beam_decode", no_beam)
    monkeypatch.setattr(beam_cpu, "decode_arrays", no_beam)
    _, loader = make_ctc_loaders(config, train, dev, "cpu")
    assert evaluate_ctc(model, loader, config)["val_dist"] >= 0


def test_the_alignability_count_is_exact_and_a_model_without_output_lengths_is_not_counted(setup):
    from phonemekit.ctc import check_ctc_lengths

    config, train, dev, model = setup

    class Squeezed(torch.nn.Module):  # the kit's model, its output lengths cut to 1 frame for two utterances
        def __init__(self):
            super().__init__()
            self.inner = model

        def output_lengths(self, lengths):
            out = model.output_lengths(lengths).clone()
            out[:2] = 1
            return out

    assert check_ctc_lengths(Squeezed(), dev, limit=1.0, verbose=False) == 2
    with pytest.raises(ValueError, match=rf"2 of {len(dev)} dev-clean utterances \({2 / len(dev):.1%}\)"):
        check_ctc_lengths(Squeezed(), dev, limit=0.1)

    class Own(torch.nn.Module):  # a student's network: no output_lengths, checked batch by batch instead
        def forward(self, x, lengths):
            return x, lengths

    assert check_ctc_lengths(Own(), dev, verbose=False) == 0
