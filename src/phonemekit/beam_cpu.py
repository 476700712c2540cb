"""CTC prefix beam search on the CPU (pyctcdecode), one utterance at a time, over every core.

    decode_arrays([lp0, lp1, ...], beam_width=20, workers=None)   # one string per (T_i, 41) array

phonemekit.decode.beam_decode is the front door; this module holds its CPU half. It imports no
torch, so a worker process starts in a fraction of a second: workers are spawned (safe beside
CUDA and threads), each builds its decoder once, and utterances go to them in chunks. Results
come back in input order and equal one process's (the search is deterministic).
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import signal

import numpy as np

from .phonemes import CTC_CHARS

INSTALL_HINT = ("pip install --no-deps pyctcdecode pygtrie (without --no-deps its numpy<2 pin "
                "downgrades numpy and restarts Colab's runtime)")
_decoder = None  # this process's decoder, built on first use


def build_decoder():
    """A pyctcdecode decoder over the 41 classes: the blank is "", each phoneme one character."""
    # pyctcdecode warns at import that kenlm (a language model) is missing: none is used here
    log = logging.getLogger("pyctcdecode")
    log.setLevel(max(log.level, logging.ERROR))
    try:
        from pyctcdecode import build_ctcdecoder
    except ImportError:
        raise ImportError(f"beam search on the CPU needs pyctcdecode: {INSTALL_HINT}") from None
    # no space in the alphabet: pyctcdecode would treat it as a word boundary
    return build_ctcdecoder([""] + CTC_CHARS[1:])


def available() -> bool:
    try:
        build_decoder()
        return True
    except ImportError:
        return False


def resolve_workers(workers, n_items: int) -> int:
    """workers=None: every core this process may use; never more processes than utterances."""
    if workers is None:
        try:
            workers = len(os.sched_getaffinity(0))
        except AttributeError:  # macOS, Windows
            workers = os.cpu_count() or 1
    if isinstance(workers, bool) or int(workers) != workers or workers < 1:
        raise ValueError(f"workers={workers!r}: give a number of processes >= 1 (1: in this process), "
                         "or None for every core")
    return max(1, min(int(workers), n_items))


def _decode_one(decoder, index: int, lp: np.ndarray, beam_width: int) -> str:
    if len(lp) == 0:
        return ""
    if np.isnan(lp).any():
        raise ValueError(f"utterance {index}: its log-probabilities contain NaN (a diverged model, or fp16 "
                         "overflow in the forward pass); check the model's output before decoding")
    return decoder.decode(lp, beam_width=beam_width)


def _init_worker():
    global _decoder
    # Ctrl-C goes to the parent, which ends the pool; a worker dying on it would only add noise
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _decoder = build_decoder()


def _decode_chunk(job):
    beam_width, items = job
    return [_decode_one(_decoder, i, lp, beam_width) for i, lp in items]


def _bar(total, desc, progress):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="utt", disable=not progress, dynamic_ncols=True, leave=False)


def decode_arrays(arrays, beam_width: int, workers=1, progress: bool = False) -> list[str]:
    """The beam search's string for each (T_i, 41) float32 log-prob array, in input order.

    workers: processes (None: every core; 1: this process). progress: a tqdm bar. An error in a
    worker is raised here, and no worker outlives the call (error and Ctrl-C included).
    """
    global _decoder
    arrays = list(arrays)
    n = resolve_workers(workers, len(arrays))
    desc = f"beam {beam_width}" + (f", {n} processes" if n > 1 else "")
    if n == 1:
        if _decoder is None:
            _decoder = build_decoder()
        out = []
        with _bar(len(arrays), desc, progress) as bar:
            for i, lp in enumerate(arrays):
                out.append(_decode_one(_decoder, i, lp, beam_width))
                bar.update(1)
        return out
    build_decoder()  # a missing pyctcdecode fails here, before any process starts
    # a few chunks per worker balance uneven lengths; small chunks keep the bar moving
    size = max(1, min(32, math.ceil(len(arrays) / (4 * n))))
    items = list(enumerate(arrays))
    jobs = [(beam_width, items[s : s + size]) for s in range(0, len(items), size)]
    pool = multiprocessing.get_context("spawn").Pool(n, initializer=_init_worker)
    out = []
    try:
        with _bar(len(arrays), desc, progress) as bar:
            for strings in pool.imap(_decode_chunk, jobs):  # imap keeps the input order
                out += strings
                bar.update(len(strings))
        pool.close()
    except BaseException:  # a worker's error, or Ctrl-C here: stop every worker now
        pool.terminate()
        raise
    finally:
        pool.join()
    return out
