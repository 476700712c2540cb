"""From CTC log-probabilities to phoneme strings, and the HW3P2 metric.

    preds = greedy_decode(log_probs, out_lengths)          # ['-Aba-', ...] one-char strings
    preds = beam_decode(log_probs, out_lengths, beam_width=20, workers=None)  # GPU, or every CPU core
    mean_distance(preds, targets)                          # the leaderboard's number
    sweep = beam_sweep(log_probs, out_lengths, targets)    # distance and time per beam width
    best_width(sweep)                                      # the width to submit with
    check_beam(config.beam_width)                          # before training: can that decoding run?
    min_ctc_frames(y, y_lengths)                           # frames each transcript needs under CTC
    frames_to_sequence(frame_classes, ds.offsets)          # an HW1P2 frame model, in HW3P2 terms

Strings use the course's one-character map (phonemekit.phonemes.CTC_CHARS): the distance is
counted in phonemes, and the CSV holds these strings.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from . import beam_cpu
from .phonemes import BLANK, CHAR_TO_CTC, CTC_CHARS, HW1_TO_CTC, NUM_CTC_CLASSES, to_string

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


def min_ctc_frames(y: torch.Tensor, y_lengths: torch.Tensor) -> torch.Tensor:
    """Fewest model frames that can emit each target: its length plus one blank between each
    pair of equal neighbours (y (B, S) padded, y_lengths (B,)). An empty target needs 0."""
    y_lengths = torch.as_tensor(y_lengths, device=y.device)
    # max(S, 1): a batch of empty transcripts has S = 0, and arange(1, 0) is an error
    valid = torch.arange(1, max(y.shape[1], 1), device=y.device) < y_lengths[:, None]
    repeats = ((y[:, 1:] == y[:, :-1]) & valid).sum(1)
    return y_lengths + repeats


# --------------------------------------------------------------------------------------------
# Beam search: torchaudio's CUDA decoder for a batch on the GPU, else pyctcdecode on the CPU

BACKENDS = ("auto", "cuda", "cpu")
# the course starter's setting: frames whose blank probability exceeds it are skipped (faster)
CUDA_BLANK_SKIP = 0.95
_cuda_decoders = {}
_announced = set()


def _cuda_factory():
    """torchaudio's cuda_ctc_decoder, or None where torchaudio (a CUDA build) cannot give it."""
    try:
        from torchaudio.models.decoder import cuda_ctc_decoder
        return cuda_ctc_decoder
    except Exception:  # not installed, a CPU-only torch, a missing CUDA library: all mean "no"
        return None


def _is_gpu(device) -> bool:
    return torch.device(device).type == "cuda"


def _announce(message: str) -> None:
    if message not in _announced:  # once per process: decoding runs once per batch
        _announced.add(message)
        print(f"phonemekit: {message}")


def _check_width(beam_width) -> int:
    try:
        whole = int(beam_width) == beam_width and not isinstance(beam_width, bool)
    except (TypeError, ValueError):
        whole = False
    if not whole or beam_width < 1:
        raise ValueError(f"beam_width={beam_width!r}: give a whole number >= 1 (1: greedy decoding; "
                         "5-50: beam search)")
    return int(beam_width)


def _choose_backend(backend: str, device) -> str:
    """'cuda' or 'cpu' for log-probs on `device`, or an error saying what is missing."""
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "cpu":
        return "cpu"
    has_cuda_decoder = _cuda_factory() is not None
    if backend == "auto":
        if _is_gpu(device) and not has_cuda_decoder:
            _announce("log-probs on the GPU, but torchaudio's cuda_ctc_decoder cannot load (torchaudio "
                      "missing, or not built for this torch): beam search runs on the CPU")
        return "cuda" if _is_gpu(device) and has_cuda_decoder else "cpu"
    if not has_cuda_decoder:
        raise ImportError("backend='cuda' needs torchaudio's cuda_ctc_decoder: install the torchaudio "
                          "that matches your CUDA torch (Colab ships one), or use backend='cpu'")
    if not _is_gpu(device):
        raise ValueError(f"backend='cuda' needs the log-probs on a CUDA device, not {device}: "
                         "pass log_probs.cuda() (and a GPU runtime)")
    return "cuda"


def check_beam(beam_width, backend: str = "auto", device=None) -> str:
    """Fail before training, not after it, when the evaluation's decoding cannot run.

    ValueError for a width below 1 (or not whole); ImportError when beam_width > 1 and no beam
    search can run (pyctcdecode missing, and no torchaudio CUDA decoder for a GPU run). device:
    where the log-probs will be (None: the GPU when there is one). Returns the decoder that will
    run: "greedy", "cuda" or "cpu".
    """
    if _check_width(beam_width) == 1:
        return "greedy"
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    name = _choose_backend(backend, device)
    if name == "cpu" and not beam_cpu.available():
        raise ImportError(f"beam_width={beam_width} needs pyctcdecode for a beam search on the CPU: "
                          f"{beam_cpu.INSTALL_HINT}; or set beam_width: 1 (greedy decoding)")
    return name


def _cuda_beam(lp: torch.Tensor, lengths: torch.Tensor, beam_width: int) -> list[list[int]]:
    """The whole batch in one call of torchaudio's CUCTCDecoder (the course's own path)."""
    key = (beam_width, str(lp.device))
    if key not in _cuda_decoders:
        # blank at index 0 (the only blank it supports); at most 41 prefixes survive a step:
        # torchaudio caps the beam at the number of classes
        _cuda_decoders[key] = _cuda_factory()(list(CTC_CHARS), nbest=1, beam_size=beam_width,
                                              blank_skip_threshold=CUDA_BLANK_SKIP)
    # float32 (B, T, C) and int32 (B,) lengths, both on the GPU; an empty utterance is given one
    # frame and answered "" below
    hyps = _cuda_decoders[key](lp.contiguous(), lengths.clamp(min=1).to(device=lp.device, dtype=torch.int32))
    if len(hyps) != len(lengths):
        raise RuntimeError(f"torchaudio's decoder returned {len(hyps)} results for {len(lengths)} utterances")
    return [[int(t) for t in h[0].tokens if 0 < int(t) < NUM_CTC_CLASSES] if n > 0 else []
            for h, n in zip(hyps, lengths.tolist())]


def beam_decode(log_probs: torch.Tensor, lengths: torch.Tensor, beam_width: int = 5, strings: bool = True, *,
                backend: str = "auto", workers=1, progress: bool = False):
    """CTC prefix beam search (no language model) of each utterance.

    backend="auto": torchaudio's cuda_ctc_decoder when the log-probs are on a CUDA device and
    torchaudio provides it (the whole batch in one call), else pyctcdecode on the CPU (pip
    install --no-deps pyctcdecode pygtrie); "cuda" or "cpu" forces one. One line says which
    ran, once. On the CPU, workers processes share the utterances (None: every core; 1: this
    process): decode the whole test set in one call, the pool starts once per call. progress:
    a tqdm bar. log_probs (B, T, 41) (logits are fine too), lengths (B,). Returns one-character
    strings or lists of class indices.
    """
    beam_width = _check_width(beam_width)
    lengths = torch.as_tensor(lengths)
    if log_probs.dim() != 3 or log_probs.shape[-1] != NUM_CTC_CLASSES:
        raise ValueError(f"log_probs have shape {tuple(log_probs.shape)}; expected (B, T, {NUM_CTC_CLASSES})")
    if lengths.shape != log_probs.shape[:1] or (len(lengths) and not 0 <= int(lengths.min()) <= int(lengths.max())
                                                 <= log_probs.shape[1]):
        raise ValueError(f"lengths {tuple(lengths.shape)} must give 0..T={log_probs.shape[1]} frames for each of "
                         f"the {log_probs.shape[0]} utterances")
    name = _choose_backend(backend, log_probs.device)
    lp = log_probs.detach().float().log_softmax(-1)  # log_softmax: logits are fine too
    if name == "cuda":
        _announce(f"beam search on {lp.device} with torchaudio's cuda_ctc_decoder, a batch per call")
        paths = _cuda_beam(lp, lengths, beam_width)
        return [to_string(p) for p in paths] if strings else paths
    lp, lengths = lp.cpu().numpy(), lengths.cpu().tolist()  # one transfer for the batch
    n = beam_cpu.resolve_workers(workers, len(lengths))
    _announce(f"beam search on the CPU with pyctcdecode, {f'{n} worker processes' if n > 1 else 'in this process'}")
    out = beam_cpu.decode_arrays([lp[i, :t] for i, t in enumerate(lengths)], beam_width, workers=n, progress=progress)
    return out if strings else [[CHAR_TO_CTC[c] for c in s] for s in out]


def mean_distance(preds, targets) -> float:
    """Mean Levenshtein distance between predicted and true one-character strings (the metric)."""
    import Levenshtein

    preds, targets = list(preds), list(targets)
    if len(preds) != len(targets):
        raise ValueError(f"{len(preds)} predictions for {len(targets)} targets: one string per utterance")
    if not preds:
        raise ValueError("no utterances to compare")
    return sum(Levenshtein.distance(p, t) for p, t in zip(preds, targets)) / len(preds)


def _one_batch(log_probs, lengths):
    """A list of padded batches (B_i, T_i, C) and their lengths -> one (B, T, C) tensor, lengths."""
    if torch.is_tensor(log_probs):
        return log_probs, torch.as_tensor(lengths)
    log_probs = list(log_probs)
    t = max(x.shape[1] for x in log_probs)
    padded = [torch.nn.functional.pad(x, (0, 0, 0, t - x.shape[1])) for x in log_probs]
    return torch.cat(padded), torch.cat([torch.as_tensor(n).reshape(-1) for n in lengths])


def beam_sweep(log_probs, lengths, truth, widths=(1, 5, 20, 50), workers=None, backend: str = "auto",
               progress: bool = False):
    """Decode the same log-probs at each beam width and score each: what a wider beam buys.

    log_probs (B, T, 41), as the model produced them once (or a list of such batches, with a
    list of their lengths); truth: the B true strings. Width 1 is greedy decoding. Returns a
    pandas DataFrame, a row per width: beam_width, decoder, distance (mean Levenshtein),
    seconds, utterances_per_s. best_width(sweep) picks the width to use.
    """
    import pandas as pd

    log_probs, lengths = _one_batch(log_probs, lengths)
    truth = list(truth)
    if len(truth) != len(lengths):
        raise ValueError(f"{len(truth)} true strings for {len(lengths)} utterances: one per utterance")
    widths = [_check_width(w) for w in widths]
    if not widths:
        raise ValueError("widths is empty: give at least one beam width, e.g. (1, 5, 20)")
    # every width checked before the first (slow) one runs
    names = {w: check_beam(w, backend, log_probs.device) for w in widths}
    n = beam_cpu.resolve_workers(workers, len(lengths))
    rows = []
    for w in widths:
        t0 = time.perf_counter()
        if w == 1:
            preds = greedy_decode(log_probs, lengths)
        else:
            preds = beam_decode(log_probs, lengths, w, backend=backend, workers=n, progress=progress)
        seconds = time.perf_counter() - t0
        decoder = {"greedy": "greedy", "cuda": "beam, GPU"}.get(names[w], f"beam, CPU x{n}")
        rows.append({"beam_width": w, "decoder": decoder, "distance": mean_distance(preds, truth),
                     "seconds": seconds, "utterances_per_s": len(preds) / max(seconds, 1e-9)})
    return pd.DataFrame(rows)


def best_width(sweep) -> int:
    """The beam width of a beam_sweep with the lowest distance; a tie goes to the faster."""
    if len(sweep) == 0:
        raise ValueError("the sweep has no rows")
    # rounded: the same strings give the same mean, but float sums need not be bit-equal
    best = sweep.assign(_d=sweep["distance"].round(9)).sort_values(["_d", "seconds"], kind="stable")
    return int(best["beam_width"].iloc[0])


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
