"""Which beam search runs (torchaudio's CUDA decoder or pyctcdecode), the kit's side of the
CUDA decoder's interface, check_beam before training, and the beam-width sweep."""

import sys
from typing import NamedTuple

import pandas as pd
import pytest
import torch

from phonemekit import decode
from phonemekit.decode import beam_decode, beam_sweep, best_width, check_beam, greedy_decode, mean_distance
from phonemekit.phonemes import CTC_CHARS

pytest.importorskip("pyctcdecode")


class Hypothesis(NamedTuple):  # torchaudio's CUCTCHypothesis
    tokens: list
    words: list
    score: float


class StandInCudaDecoder:
    """Follows torchaudio's documented CUCTCDecoder: built by cuda_ctc_decoder(tokens, nbest,
    beam_size, blank_skip_threshold) with the blank at index 0; called with float32 (B, T, C)
    log-probs and int32 (B,) lengths on the same device; returns per utterance a list of nbest
    hypotheses, best first, whose tokens hold no blanks. Its search here is the best path."""

    built, calls = [], []

    def __init__(self, tokens, nbest=1, beam_size=10, blank_skip_threshold=0.95):
        assert isinstance(tokens, list) and len(tokens) == 41 and all(isinstance(t, str) for t in tokens)
        assert 0 <= blank_skip_threshold <= 1
        self.tokens, self.nbest = tokens, nbest
        self.built.append({"nbest": nbest, "beam_size": beam_size, "blank_skip_threshold": blank_skip_threshold})

    def __call__(self, log_prob, lengths):
        assert log_prob.dtype == torch.float32 and log_prob.dim() == 3 and log_prob.shape[-1] == len(self.tokens)
        assert log_prob.is_contiguous()
        assert torch.allclose(log_prob.exp().sum(-1), torch.ones(log_prob.shape[:2]), atol=1e-4)  # log-softmaxed
        assert lengths.dtype == torch.int32 and lengths.device == log_prob.device
        assert lengths.shape == log_prob.shape[:1]
        self.calls.append(len(lengths))
        out = []
        for lp, n in zip(log_prob, lengths.tolist()):
            path = lp[:n].argmax(-1).tolist()
            tokens = [p for k, p in enumerate(path) if p != 0 and (k == 0 or p != path[k - 1])]
            out.append([Hypothesis(tokens, [self.tokens[t] for t in tokens], -1.0 - j) for j in range(self.nbest)])
        return out


@pytest.fixture
def gpu(monkeypatch):
    """The kit sees a CUDA device and torchaudio's decoder (the stand-in); the tensors stay here."""
    StandInCudaDecoder.built, StandInCudaDecoder.calls = [], []
    monkeypatch.setattr(decode, "_cuda_factory", lambda: StandInCudaDecoder)
    monkeypatch.setattr(decode, "_is_gpu", lambda device: True)
    monkeypatch.setattr(decode, "_cuda_decoders", {})
    monkeypatch.setattr(decode, "_announced", set())
    return StandInCudaDecoder


def peaky(b, t, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, t, 41, generator=g)
    logits[..., 0] += 3
    logits.scatter_add_(2, torch.randint(1, 41, (b, t, 1), generator=g), 6.0 * (torch.rand(b, t, 1, generator=g) < 0.3))
    return logits  # logits, not log-probs: the kit normalises


def test_on_the_gpu_the_whole_batch_goes_to_torchaudios_decoder_in_one_call(gpu, capsys):
    lp, lengths = peaky(6, 20), torch.tensor([20, 0, 7, 1, 20, 13])
    expected = greedy_decode(lp, lengths)  # the stand-in's search is the best path
    assert beam_decode(lp, lengths, beam_width=20) == expected
    assert beam_decode(lp, lengths, beam_width=20, strings=False) == [[CTC_CHARS.index(c) for c in s] for s in expected]
    assert gpu.calls == [6, 6] and expected[1] == ""  # an empty utterance decodes to ""
    assert gpu.built == [{"nbest": 1, "beam_size": 20, "blank_skip_threshold": decode.CUDA_BLANK_SKIP}]
    said = capsys.readouterr().out
    assert said.count("cuda_ctc_decoder") == 1  # one line, once


def test_auto_decodes_on_the_cpu_when_the_log_probs_are_there_or_torchaudio_is_missing(gpu, monkeypatch, capsys):
    lp, lengths = peaky(3, 15), torch.tensor([15, 9, 4])
    on_cpu = beam_decode(lp, lengths, beam_width=6, backend="cpu")
    assert gpu.calls == [] and capsys.readouterr().out.count("pyctcdecode") == 1
    monkeypatch.setattr(decode, "_is_gpu", lambda device: torch.device(device).type == "cuda")
    assert beam_decode(lp, lengths, beam_width=6) == on_cpu and gpu.calls == []  # CPU tensors
    monkeypatch.setattr(decode, "_is_gpu", lambda device: True)
    monkeypatch.setattr(decode, "_cuda_factory", lambda: None)
    assert beam_decode(lp, lengths, beam_width=6) == on_cpu
    assert "cuda_ctc_decoder cannot load" in capsys.readouterr().out


def test_a_forced_backend_that_cannot_run_says_what_is_missing(gpu, monkeypatch):
    lp, lengths = peaky(2, 10), torch.tensor([10, 10])
    with pytest.raises(ValueError, match="backend='gpu'; choose one of auto, cuda, cpu"):
        beam_decode(lp, lengths, beam_width=5, backend="gpu")
    monkeypatch.setattr(decode, "_is_gpu", lambda device: torch.device(device).type == "cuda")
    with pytest.raises(ValueError, match="needs the log-probs on a CUDA device"):
        beam_decode(lp, lengths, beam_width=5, backend="cuda")
    monkeypatch.setattr(decode, "_cuda_factory", lambda: None)
    with pytest.raises(ImportError, match="torchaudio"):
        beam_decode(lp, lengths, beam_width=5, backend="cuda")


@pytest.mark.parametrize("width", [0, -3, 2.5, "5"])
def test_check_beam_refuses_a_width_that_would_not_search(width):
    with pytest.raises(ValueError, match=f"beam_width={width!r}: give a whole number >= 1"):
        check_beam(width)
    with pytest.raises(ValueError, match="beam_width"):
        beam_decode(peaky(1, 4), torch.tensor([4]), beam_width=width)


def test_check_beam_names_the_decoder_or_the_missing_package(gpu, monkeypatch):
    assert check_beam(1) == "greedy"
    assert check_beam(10, device="cuda") == "cuda"
    monkeypatch.setitem(sys.modules, "pyctcdecode", None)  # as if not installed
    assert check_beam(10, device="cuda") == "cuda"  # the GPU needs no pyctcdecode
    assert check_beam(1, backend="cpu") == "greedy"
    with pytest.raises(ImportError, match="pip install --no-deps pyctcdecode pygtrie"):
        check_beam(10, backend="cpu")


def test_a_beam_sweep_scores_each_width_on_the_same_log_probs(monkeypatch):
    # utterance 0: blank 0.6 / G 0.4 on 2 frames; greedy says "", a beam finds "G" (p 0.64)
    p = torch.full((1, 2, 41), 1e-6)
    p[0, :, 0], p[0, :, 2] = 0.6, 0.4
    lp = torch.cat([(p / p.sum(-1, keepdim=True)).log(), peaky(3, 2, seed=4).log_softmax(-1)])
    lengths = torch.tensor([2, 2, 1, 2])
    truth = ["G", "f", "", "mm"]
    searched = []
    monkeypatch.setattr(decode, "beam_decode", lambda *a, **k: searched.append(a[2]) or beam_decode(*a, **k))
    sweep = beam_sweep(lp, lengths, truth, widths=(1, 4), workers=1)
    assert searched == [4]  # width 1 is the greedy path, not a beam search of width 1
    assert list(sweep.columns) == ["beam_width", "decoder", "distance", "seconds", "utterances_per_s"]
    assert list(sweep.beam_width) == [1, 4] and list(sweep.decoder) == ["greedy", "beam, CPU x1"]
    assert sweep.distance[0] == mean_distance(greedy_decode(lp, lengths), truth)
    assert sweep.distance[1] == mean_distance(beam_decode(lp, lengths, 4), truth) < sweep.distance[0]
    assert list(sweep.utterances_per_s) == pytest.approx(list(4 / sweep.seconds))
    assert best_width(sweep) == 4
    # batches as the model gave them (different T) sweep the same as one padded tensor
    parts = beam_sweep([lp[:2], lp[2:, :1]], [lengths[:2], lengths[2:].clamp(max=1)], truth, widths=(1, 4), workers=1)
    again = beam_sweep(lp, lengths.clamp(max=torch.tensor([2, 2, 1, 1])), truth, widths=(1, 4), workers=1)
    assert list(parts.distance) == list(again.distance)


def test_a_beam_sweep_refuses_bad_widths_and_truth_before_decoding():
    lp, lengths = peaky(2, 5), torch.tensor([5, 5])
    with pytest.raises(ValueError, match="beam_width=0"):
        beam_sweep(lp, lengths, ["a", "b"], widths=(1, 5, 0))
    with pytest.raises(ValueError, match="1 true strings for 2 utterances"):
        beam_sweep(lp, lengths, ["a"], widths=(1,))


def test_the_best_width_has_the_lowest_distance_and_a_tie_goes_to_the_faster():
    # 50's distance differs from 5's and 20's by float noise only: a three-way tie
    sweep = pd.DataFrame({"beam_width": [1, 5, 20, 50], "distance": [9.5, 9.25, 9.25, 9.25 + 1e-12],
                          "seconds": [0.1, 30.0, 12.0, 15.0]})
    assert best_width(sweep) == 20
    slower_but_better = pd.concat([sweep, pd.DataFrame({"beam_width": [100], "distance": [9.0], "seconds": [60.0]})])
    assert best_width(slower_but_better) == 100
