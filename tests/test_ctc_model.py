"""The CTC model family: lengths after every stride and pBLSTM (against the real tensor shapes),
float32 log-probabilities, padding that changes nothing, the summary, bad options."""

import pytest
import torch

from phonemekit.ctc_model import build_ctc_model, ctc_summary
from phonemekit.model import count_params

F = 12


def tiny(**kw):
    args = dict(conv_channels=16, conv_layers=2, lstm_hidden=8, lstm_layers=1, pyramid=0, head=[16])
    args.update(kw)
    return build_ctc_model(F, **args)


def naive_lengths(model, t):
    """Each utterance run alone, unpadded: its output length is the tensor's own size."""
    with torch.no_grad():
        return model(torch.randn(1, t, F), torch.tensor([t]))[0].shape[1]


@pytest.mark.parametrize("conv_stride, conv_layers, pyramid, kernel", [
    (1, 0, 0, 3), (1, 2, 0, 5), (2, 1, 0, 3), (3, 2, 1, 3), (4, 2, 0, 3), (4, 3, 2, 5), (2, 2, 3, 3),
])
def test_output_lengths_follow_every_stride_and_pblstm_exactly(conv_stride, conv_layers, pyramid, kernel):
    torch.manual_seed(0)
    model = tiny(conv_stride=conv_stride, conv_layers=conv_layers, pyramid=pyramid, conv_kernel=kernel).eval()
    lengths = torch.tensor([97, 64, 33, 50, 41])
    x = torch.randn(len(lengths), int(lengths.max()), F)
    log_probs, out = model(x, lengths)
    assert log_probs.shape[1] == int(out.max())  # the padded output is as long as the longest
    assert out.tolist() == model.output_lengths(lengths).tolist()
    assert out.tolist() == [naive_lengths(model, int(t)) for t in lengths]
    # and equal to the arithmetic: conv floor((T - 1) / s) + 1 per strided block, then T // 2 per pBLSTM
    expected = lengths.clone()
    for s in {1: [], 2: [2], 3: [3], 4: [2, 2]}[conv_stride]:
        expected = (expected - 1) // s + 1
    expected = expected // 2**pyramid
    assert out.tolist() == expected.tolist()


def test_log_probs_are_float32_log_softmax_even_under_autocast():
    model = tiny().eval()
    x, lengths = torch.randn(2, 30, F), torch.tensor([30, 20])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        log_probs, _ = model(x, lengths)
    assert log_probs.dtype == torch.float32 and log_probs.shape[-1] == 41
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(2, log_probs.shape[1]))


def test_in_eval_mode_an_utterance_does_not_depend_on_the_padding_of_its_batch():
    torch.manual_seed(0)
    model = tiny(conv_stride=2, pyramid=1).eval()
    short = torch.randn(1, 40, F)
    alone, n_alone = model(short, torch.tensor([40]))
    batch = torch.zeros(2, 90, F)
    batch[0, :40], batch[1] = short[0], torch.randn(90, F)
    together, n = model(batch, torch.tensor([40, 90]))
    assert int(n[0]) == int(n_alone[0])
    torch.testing.assert_close(together[0, : int(n[0])], alone[0], atol=2e-3, rtol=1e-3)  # float noise only


def test_locked_dropout_uses_one_mask_per_utterance_over_time():
    model = tiny(lstm_layers=2, locked_dropout=0.5).train()
    h = torch.ones(3, 20, 8)
    out = model.encoder.locked(h)
    assert torch.equal(out, out[:, :1].expand_as(out))  # the same at every time step
    assert set(out.unique().tolist()) <= {0.0, 2.0}
    assert torch.equal(model.eval().encoder.locked(h), h)


def test_summary_runs_in_eval_mode_and_leaves_the_modes_alone():
    model = tiny(lstm_layers=1, pyramid=1).train()
    bn = model.embedding.blocks[0].main[0]
    before = bn.running_mean.clone()
    text = str(ctc_summary(model, F, frames=64))
    assert "BLSTM" in text and f"{count_params(model):,}" in text
    assert model.training and torch.equal(bn.running_mean, before)


def test_config_rebuilds_the_same_architecture():
    model = tiny(conv_stride=4, pyramid=2, head=[32, 16])
    again = build_ctc_model(**model.config)
    assert count_params(again) == count_params(model)
    assert [p.shape for p in again.parameters()] == [p.shape for p in model.parameters()]


def test_bad_options_and_too_short_utterances_are_named():
    with pytest.raises(ValueError, match="conv_stride=8"):
        tiny(conv_stride=8)
    with pytest.raises(ValueError, match="at least 2 conv layer"):
        tiny(conv_stride=4, conv_layers=1)
    with pytest.raises(ValueError, match="odd"):
        tiny(conv_kernel=4)
    model = tiny(conv_stride=4, pyramid=2)
    with pytest.raises(ValueError, match="10 frames has no frame left"):
        model(torch.randn(2, 50, F), torch.tensor([50, 10]))
