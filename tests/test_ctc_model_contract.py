"""The own-model contract: check_ctc_model names each way a student's network can break what
CTC training needs, the kit's models pass it, and a new encoder is a class plus a registry line."""

import pytest
import torch
from torch import nn

from phonemekit.ctc_layers import conv_length, frames_mask
from phonemekit.ctc_model import ENCODERS, build_ctc_model, check_ctc_model, ctc_summary

F = 12


class Student(nn.Module):
    """A small network of one's own (strided Conv1d -> BatchNorm -> Linear), right unless `bug` says."""

    def __init__(self, bug=None, num_classes=41):
        super().__init__()
        self.bug = bug
        self.conv = nn.Conv1d(F, 16, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm1d(16)
        self.out = nn.Linear(16, num_classes)

    def forward(self, x, lengths):
        h = self.bn(self.conv(x.transpose(1, 2))).transpose(1, 2)
        logits = self.out(h)
        out_lengths = conv_length(lengths, self.conv)
        log_probs = logits.log_softmax(-1)
        bug = self.bug
        if bug == "bare tensor":
            return log_probs
        if bug == "dict":
            return {"log_probs": log_probs, "lengths": out_lengths}
        if bug == "three outputs":
            return log_probs, out_lengths, h
        if bug == "rank 2":
            return log_probs.flatten(0, 1), out_lengths
        if bug == "time-first":
            return log_probs.transpose(0, 1), out_lengths
        if bug == "classes first":
            return log_probs.transpose(1, 2), out_lengths
        if bug == "upsampled":
            return log_probs.repeat_interleave(3, dim=1), out_lengths * 3
        if bug == "no log_softmax":
            return logits, out_lengths
        if bug == "softmax":
            return logits.softmax(-1), out_lengths
        if bug == "lengths list":
            return log_probs, out_lengths.tolist()
        if bug == "lengths (B, 1)":
            return log_probs, out_lengths[:, None]
        if bug == "float lengths":
            return log_probs, out_lengths.float()
        if bug == "lengths not downsampled":
            return log_probs, lengths
        if bug == "padded length for all":
            return log_probs, torch.full_like(out_lengths, log_probs.shape[1])
        if bug == "crash":
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")
        return log_probs, out_lengths


class OneArgument(Student):
    def forward(self, x):
        return super().forward(x, torch.full((len(x),), x.shape[1]))


class NoParameters(nn.Module):
    def forward(self, x, lengths):
        return torch.zeros(len(x), x.shape[1], 41).log_softmax(-1), lengths


@pytest.mark.parametrize("model, message", [
    (Student("bare tensor"), r"returned one tensor of shape \(2, 100, 41\), not a tuple of two"),
    (Student("dict"), r"returned a dict with keys \['log_probs', 'lengths'\]"),
    (Student("three outputs"), "returned a tuple of 3"),
    (Student("rank 2"), r"log_probs is \(200, 41\), not a rank-3 tensor"),
    (Student("time-first"), r"time-first \(T', B, C\); return it batch-first"),
    (Student("classes first"), r"classes before time"),
    (Student("upsampled"), "T'=300 frames for inputs of 200: the time axis may only shrink"),
    (Student(num_classes=40), "40 classes in its last dimension, not 41"),
    (Student("no log_softmax"), r"not log-probabilities: logsumexp over the classes is .*log_softmax\(-1\)"),
    (Student("softmax"), "are probabilities .*use log_softmax, not softmax"),
    (Student("lengths list"), r"out_lengths is a list, not a tensor"),
    (Student("lengths (B, 1)"), r"out_lengths has shape \(2, 1\)"),
    (Student("float lengths"), "dtype torch.float32, not"),
    (Student("lengths not downsampled"), r"out_lengths \[200, 150\] for log_probs of T'=100: each must lie in 1..T'"),
    (Student("padded length for all"), r"out_lengths \[100, 100\] are equal for inputs of \[200, 150\] frames"),
    (Student("crash"), r"forward\(x of shape \(2, 200, 12\), lengths \[200, 150\]\) raised RuntimeError: mat1"),
    (OneArgument(), r"OneArgument.forward\(x\) does not take \(x, lengths\)"),
    (NoParameters(), "NoParameters has no parameters"),
])
def test_a_network_of_ones_own_that_breaks_the_contract_is_told_what_forward_must_return(model, message):
    with pytest.raises(ValueError, match=message) as error:
        check_ctc_model(model, F)
    text = str(error.value)
    assert "\n" not in text and "must return a tuple (log_probs (B, T', 41) log_softmax-ed" in text


class Recording(Student):
    """Counts its calls in a buffer and notes the mode it ran in."""

    def __init__(self, bug=None):
        super().__init__(bug)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x, lengths):
        self.calls += 1
        self.ran_in_training = self.training
        return super().forward(x, lengths)


@pytest.mark.parametrize("bug", [None, "softmax"])
def test_the_probe_runs_in_eval_mode_and_gives_back_the_mode_and_every_buffer(bug):
    model = Recording(bug).train()
    model.bn.running_mean.fill_(0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    if bug is None:
        check_ctc_model(model, F)  # a correct network of one's own passes
    else:
        with pytest.raises(ValueError, match="softmax"):
            check_ctc_model(model, F)
    assert model.ran_in_training is False
    assert model.training and model.bn.training
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # BatchNorm statistics too


@pytest.mark.parametrize("options", [
    dict(), dict(conv_stride=4, pyramid=2, conv_channels=[8, 16], conv_kernel=[5, 3]),
    dict(conv_layers=0, conv_stride=1, pyramid=0, head=[], head_norm="batch"),
    dict(head=[16, 16], head_norm="layer", embed_time_masks=2, embed_noise_std=0.1),
])
def test_the_kits_own_models_pass_the_contract(options):
    model = build_ctc_model(F, **{"conv_channels": 16, "lstm_hidden": 8, "head": [16], **options}).train()
    check_ctc_model(model, F)
    assert model.training


class ConvEncoder(nn.Module):
    """A student's encoder: `layers` Conv1d + GELU, halving time once (what a registry entry needs:
    built as Cls(n_in, options), out_features, output_lengths, forward(x, lengths))."""

    def __init__(self, n_in, options):
        super().__init__()
        hidden = options["lstm_hidden"]
        self.down = nn.Conv1d(n_in, hidden, 3, stride=2, padding=1)
        self.convs = nn.ModuleList(nn.Conv1d(hidden, hidden, 3, padding=1) for _ in range(options["lstm_layers"]))
        self.out_features = hidden

    def output_lengths(self, lengths):
        return conv_length(lengths, self.down)

    def forward(self, x, lengths):
        lengths = self.output_lengths(lengths)
        h = self.down(x.transpose(1, 2))
        for conv in self.convs:
            h = nn.functional.gelu(conv(h * frames_mask(lengths, h.shape[-1])[:, None]))
        return h.transpose(1, 2), lengths


def test_a_new_encoder_is_one_class_and_one_registry_line(monkeypatch):
    monkeypatch.setitem(ENCODERS, "conv", ConvEncoder)
    model = build_ctc_model(F, encoder="conv", conv_channels=16, conv_stride=2, lstm_hidden=24, lstm_layers=2,
                            head=[16]).eval()
    assert isinstance(model.encoder, ConvEncoder)
    check_ctc_model(model, F)
    lengths = torch.tensor([90, 41])
    log_probs, out = model(torch.randn(2, 90, F), lengths)
    assert out.tolist() == model.output_lengths(lengths).tolist() == [23, 11]  # stride 2, then 2 again
    assert "ConvEncoder" in str(ctc_summary(model, F, frames=64))
    with pytest.raises(ValueError, match=r"encoder='conformer' is not in ENCODERS; known: blstm, conv"):
        build_ctc_model(F, encoder="conformer")
