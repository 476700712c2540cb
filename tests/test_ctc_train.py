"""HW3P2 training pieces: masking inside the lengths, the CTC loss in float32, alignability,
the datasets/loaders/model from a config, and a tiny corpus a small model must learn."""

import json

import pytest
import torch

from ctc_corpus import write_corpus
from needs import skip_without_beam_search
from phonemekit.ctc import (
    check_ctc_lengths, ctc_loss, ctc_meta, evaluate_ctc, make_ctc_augment, make_ctc_datasets,
    make_ctc_loaders, make_ctc_model, mask_sequences,
)
from phonemekit.config import Config
from phonemekit.data import DEMO_ROOT

SMALL = dict(conv_channels=32, conv_layers=1, conv_stride=1, lstm_hidden=32, lstm_layers=1, pyramid=0,
             head=[], dropout=0.0, locked_dropout=0.0, batch_size=8)


def config(**kw):
    """The kit's own Config for HW3P2: the tests train with the defaults a student gets."""
    return Config(task="ctc", **{**SMALL, **kw})


# ---- masking ---------------------------------------------------------------------------------


def test_time_masks_stay_inside_each_utterance_and_within_their_width():
    torch.manual_seed(0)
    lengths = torch.tensor([50, 7, 30, 1, 64])
    x = torch.ones(5, 64, 6)  # ones in the padding too, so a mask there would show
    for _ in range(50):
        out = mask_sequences(x, lengths, freq_masks=0, time_masks=2, time_mask_width=10)
        masked = out[..., 0] == 0  # (B, T): a time mask zeroes whole frames
        assert (out == 0).any(-1).eq(masked).all()
        for b, n in enumerate(lengths.tolist()):
            assert not masked[b, n:].any(), "a time mask ran into the padding"
            assert masked[b].sum() <= min(2 * 10, n)


def test_frequency_masks_zero_whole_bands_and_mask_prob_spares_utterances():
    torch.manual_seed(0)
    x = torch.ones(200, 20, 16)
    out = mask_sequences(x, torch.full((200,), 20), freq_masks=1, freq_mask_width=4, time_masks=0)
    cols = out == 0
    assert torch.equal(cols, cols[:, :1].expand_as(cols))  # the same coefficients in every frame
    assert cols[:, 0].sum(-1).max() <= 4
    spared = mask_sequences(x, torch.full((200,), 20), freq_masks=1, freq_mask_width=4, time_masks=0, prob=0.5)
    untouched = (spared == 1).all(-1).all(-1).float().mean()
    assert 0.3 < untouched < 0.8


def test_augment_masks_only_x_and_is_none_when_off():
    assert make_ctc_augment(config()) is None
    assert make_ctc_augment(config(time_masks=1, mask_prob=0.0)) is None
    augment = make_ctc_augment(config(time_masks=1, time_mask_width=5, mask_prob=1.0))
    batch = (torch.ones(2, 10, 3), torch.tensor([10, 6]), torch.tensor([[1, 2], [3, 0]]), torch.tensor([2, 1]))
    out = augment(batch)
    assert len(out) == 4 and all(torch.equal(a, b) for a, b in zip(out[1:], batch[1:]))


# ---- the loss -----------------------------------------------------------------------------------


def test_ctc_loss_is_float32_ctc_on_the_models_output_lengths_even_under_autocast(tmp_path):
    write_corpus(tmp_path)
    cfg = config(root=tmp_path, conv_stride=2, conv_layers=1)
    train, val = make_ctc_datasets(cfg, "cpu")
    model = make_ctc_model(cfg, ctc_meta(train)).eval()
    batch = train.batch(range(6))
    loss, n = ctc_loss(model, batch, cfg, torch.bfloat16)
    assert n == 6 and loss.dtype == torch.float32 and loss.ndim == 0 and torch.isfinite(loss)
    x, xl, y, yl = batch
    lp, ol = model(x, xl)
    ref = torch.nn.functional.ctc_loss(lp.transpose(0, 1), y, ol, yl, blank=0, zero_infinity=True)
    torch.testing.assert_close(ctc_loss(model, batch, cfg, None)[0], ref)


def test_a_model_that_downsamples_too_much_for_the_transcripts_is_refused(tmp_path):
    write_corpus(tmp_path)  # 3-6 frames per phoneme
    cfg = config(root=tmp_path, conv_stride=4, conv_layers=2, pyramid=1)
    train, _ = make_ctc_datasets(cfg, "cpu")
    model = make_ctc_model(cfg, ctc_meta(train))
    with pytest.raises(ValueError, match="cannot be aligned.*lower conv_stride or pyramid"):
        ctc_loss(model, train.batch(range(8)), cfg, None)
    with pytest.raises(ValueError, match="cannot be aligned"):
        check_ctc_lengths(model, train)
    assert check_ctc_lengths(make_ctc_model(config(root=tmp_path), ctc_meta(train)), train) == 0


# ---- from a config ------------------------------------------------------------------------------


def test_datasets_loaders_and_model_come_from_the_config_and_the_meta_rebuilds_the_model():
    cfg = config(root=str(DEMO_ROOT), subset=0.1, val_subset=0.5, batch_size=4, eval_batch_size=None)
    train, val = make_ctc_datasets(cfg, torch.device("cpu"))
    assert len(train) == 26 and len(val) == 15 and train.features.dtype == torch.float32
    train_loader, val_loader = make_ctc_loaders(cfg, train, val, torch.device("cpu"))
    assert train_loader.batch_size == 4 and val_loader.batch_size == 8 and train_loader.shuffle
    assert not val_loader.shuffle and train_loader.dataset is train
    meta = json.loads(json.dumps(ctc_meta(train)))  # JSON-able, as a checkpoint stores it
    assert meta["n_features"] == 28 and meta["num_classes"] == 41
    a, b = make_ctc_model(cfg, meta), make_ctc_model(cfg, meta)
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]
    x, xl, y, yl = next(iter(train_loader))
    assert x.shape[0] == 4 and x.shape[2] == 28 and y.dtype == torch.int64 and xl.dtype == torch.int64


# ---- learning -----------------------------------------------------------------------------------


def test_a_small_model_learns_a_tiny_corpus_in_seconds(tmp_path):
    write_corpus(tmp_path)
    torch.manual_seed(0)
    cfg = config(root=tmp_path)
    train, val = make_ctc_datasets(cfg, "cpu")
    train_loader, val_loader = make_ctc_loaders(cfg, train, val, "cpu")
    model = make_ctc_model(cfg, ctc_meta(train))
    opt = torch.optim.AdamW(model.parameters(), 1e-2)
    trivial = sum(len(val[u][1]) for u in range(len(val))) / len(val)  # predicting nothing
    start = evaluate_ctc(model, val_loader, cfg)
    for _ in range(15):
        for batch in train_loader:
            loss, _ = ctc_loss(model, batch, cfg, None)
            opt.zero_grad()
            loss.backward()
            opt.step()
    end = evaluate_ctc(model, val_loader, cfg)
    assert end["val_loss"] < start["val_loss"] / 5
    assert end["val_dist"] < 0.3 * trivial, (end, trivial)
    skip_without_beam_search()
    beam = evaluate_ctc(model, val_loader, config(root=tmp_path, beam_width=4))
    assert beam["val_loss"] == pytest.approx(end["val_loss"]) and beam["val_dist"] < 0.3 * trivial
    assert model.training  # evaluation puts the model back in its mode
