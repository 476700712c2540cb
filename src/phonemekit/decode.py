"""From CTC log-probabilities to phoneme strings, and the HW3P2 metric.

    preds = greedy_decode(log_probs, out_lengths)          # ['-Aba-', ...] one-char strings
    preds = beam_decode(log_probs, out_lengths, beam_width=5)
    mean_distance(preds, targets)                          # the leaderboard's number
    frames_to_sequence(frame_classes, ds.offsets)          # an HW1P2 frame model, in HW3P2 terms

Strings use the course's one-character map (phonemekit.phonemes.CTC_CHARS): the distance is
counted in phonemes, and the CSV holds these strings.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from .phonemes import BLANK, CTC_CHARS, HW1_TO_CTC, NUM_CTC_CLASSES, to_string

_CHARS = np.array(CTC_CHARS)


def _split(values: np.ndarray, counts: np.ndarray, strings: bool):
    ends = np.cumsum(counts)
    if strings:
        chars = _CHARS[values]
        return ["".join(chars[e - c : e]) for c, e in zip(counts, ends)]
    return [values[e - c : e].tolist() for c, e in zip(counts, ends)]


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, strings: bool = True):
    """Best path of each utterance: argmax per frame, repeats collapsed, blanks dropped.

    log_probs (B, T, C) (log-probabilities or logits: the argmax is the same), lengths (B,):
    frames past an utterance's length are ignored. Runs where the tensors are, with one copy to
    the host for the whole batch. Returns one-character strings, or lists of class indices.
    """
    best = log_probs.argmax(-1)  # (B, T)
    t = best.shape[1]
    valid = torch.arange(t, device=best.device) < torch.as_tensor(lengths, device=best.device)[:, None]
    # a frame starts a new symbol when it differs from the frame before it (blanks included)
    new = torch.ones_like(best, dtype=torch.bool)
    new[:, 1:] = best[:, 1:] != best[:, :-1]
    keep = new & valid & (best != BLANK)
    # counts and the kept symbols in one tensor: a single device -> host transfer
    both = torch.cat([keep.sum(1), best[keep]]).cpu().numpy()
    b = best.shape[0]
    return _split(both[b:], both[:b], strings)


def collapse(path) -> list[int]:
    """CTC's many-to-one map for one frame path: [0, 3, 3, 0, 3, 5] -> [3, 3, 5]."""
    out, prev = [], None
    for p in (int(p) for p in path):
        if p != prev and p != BLANK:
            out.append(p)
        prev = p
    return out


_decoders = {}


def _beam_backend():
    try:
        # pyctcdecode logs a warning about kenlm (an optional language model) at import: not needed here
        logging.getLogger("pyctcdecode").setLevel(max(logging.getLogger("pyctcdecode").level, logging.ERROR))
        from pyctcdecode import build_ctcdecoder
        return "pyctcdecode", build_ctcdecoder
    except ImportError:
        pass
    try:
        from torchaudio.models.decoder import ctc_decoder
        return "torchaudio", ctc_decoder
    except (ImportError, OSError, RuntimeError):
        pass
    raise ImportError(
        "beam search needs pyctcdecode (or torchaudio with flashlight-text). Install it without its "
        "numpy<2 pin, which would downgrade numpy and restart Colab's runtime: "
        "pip install --no-deps pyctcdecode pygtrie"
    )


def beam_decode(log_probs: torch.Tensor, lengths: torch.Tensor, beam_width: int = 5, strings: bool = True):
    """CTC prefix beam search (no language model) of each utterance, on the CPU.

    Through pyctcdecode (pip install --no-deps pyctcdecode pygtrie), else torchaudio's
    ctc_decoder. beam_width=1 is the greedy path. Returns one-character strings or index lists.
    """
    if beam_width < 1:
        raise ValueError(f"beam_width={beam_width} must be >= 1")
    lp = log_probs.detach().float().log_softmax(-1).cpu()  # one transfer; log_softmax: logits are fine too
    lengths = torch.as_tensor(lengths).cpu()
    if lp.shape[-1] != NUM_CTC_CLASSES:
        raise ValueError(f"log_probs have {lp.shape[-1]} classes; the HW3P2 map has {NUM_CTC_CLASSES}")
    name, factory = _beam_backend()
    if name == "pyctcdecode":
        if name not in _decoders:
            # the blank is "" for pyctcdecode; no space in the alphabet: each phoneme is one "character"
            _decoders[name] = factory([""] + CTC_CHARS[1:])
        dec = _decoders[name]
        out = [dec.decode(lp[i, : int(n)].numpy(), beam_width=beam_width) for i, n in enumerate(lengths)]
        return out if strings else [[CTC_CHARS.index(c) for c in s] for s in out]
    # torchaudio (flashlight): it wants a silence token; a never-emitted extra class plays it
    key = (name, beam_width)
    if key not in _decoders:
        tokens = [f"t{i}" for i in range(NUM_CTC_CLASSES)] + ["|"]
        _decoders[key] = factory(lexicon=None, tokens=tokens, lm=None, nbest=1, beam_size=beam_width,
                                 blank_token="t0", sil_token="|", unk_word="<unk>")
    emissions = torch.cat([lp, torch.full((*lp.shape[:2], 1), -1e4)], dim=-1).contiguous()
    hyps = _decoders[key](emissions, lengths.to(torch.int32))
    paths = [[int(t) for t in h[0].tokens if 0 < int(t) < NUM_CTC_CLASSES] for h in hyps]
    return [to_string(p) for p in paths] if strings else paths


def mean_distance(preds, targets) -> float:
    """Mean Levenshtein distance between predicted and true one-character strings (the metric)."""
    import Levenshtein

    preds, targets = list(preds), list(targets)
    if len(preds) != len(targets):
        raise ValueError(f"{len(preds)} predictions for {len(targets)} targets: one string per utterance")
    if not preds:
        raise ValueError("no utterances to compare")
    return sum(Levenshtein.distance(p, t) for p, t in zip(preds, targets)) / len(preds)


def frames_to_sequence(frame_classes, offsets, min_run: int = 1) -> list[str]:
    """Per-frame HW1P2 predictions (class ids in phonemekit.CLASSES order) -> one HW3P2 string
    per utterance, to score an HW1P2 frame model with the HW3P2 metric.

    offsets (U+1,): first frame of each utterance (AudioDataset.offsets). Runs of one class
    become one phoneme; [SIL] stays, as in HW3P2's transcripts ([SIL] at the ends and at
    pauses). Runs shorter than min_run frames are dropped first (frame models flicker) and the
    neighbours they separated merge when equal.
    """
    c = np.asarray(HW1_TO_CTC)[np.asarray(frame_classes.cpu() if torch.is_tensor(frame_classes) else frame_classes)]
    offsets = np.asarray(offsets, dtype=np.int64)
    n = len(c)
    if offsets[-1] != n:
        raise ValueError(f"offsets end at frame {offsets[-1]} but there are {n} frame predictions")
    starts_mask = np.ones(n, dtype=bool)
    starts_mask[1:] = c[1:] != c[:-1]
    starts_mask[offsets[:-1][offsets[:-1] < n]] = True  # a run never crosses an utterance boundary
    starts = np.flatnonzero(starts_mask)
    runs = np.diff(np.append(starts, n))
    cls = c[starts]
    utt = np.searchsorted(offsets, starts, side="right") - 1
    keep = runs >= min_run
    cls, utt = cls[keep], utt[keep]
    # dropping a short run can leave two equal neighbours: merge them
    first = np.ones(len(cls), dtype=bool)
    first[1:] = (cls[1:] != cls[:-1]) | (utt[1:] != utt[:-1])
    cls, utt = cls[first], utt[first]
    counts = np.bincount(utt, minlength=len(offsets) - 1)
    return _split(cls, counts, strings=True)
