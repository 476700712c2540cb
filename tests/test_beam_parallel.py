"""The CPU beam search over worker processes: the same strings in the same order as one
process, errors that surface, and no process left behind."""

import os
from pathlib import Path

import pytest
import torch

from phonemekit import beam_cpu
from phonemekit.decode import beam_decode

pytest.importorskip("pyctcdecode")


def peaky(b, t, seed=0):
    """(b, t, 41) log-probs like a trained model's: mostly blank, a confident phoneme now and then."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, t, 41, generator=g)
    logits[..., 0] += 3
    spikes = torch.rand(b, t, generator=g) < 0.3
    phones = torch.randint(1, 41, (b, t), generator=g)
    logits.scatter_add_(2, phones[..., None], 6.0 * spikes[..., None].float())
    return logits.log_softmax(-1), torch.randint(0, t + 1, (b,), generator=g)


def pool_workers() -> list[int]:
    """Live child processes of this one that are multiprocessing workers (Linux /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            cmdline = (status.parent / "cmdline").read_bytes()
        except OSError:  # it ended while we looked
            continue
        if int(fields.get("PPid", "0").strip()) == os.getpid() and b"spawn_main" in cmdline:
            found.append(int(status.parent.name))
    return found


class CountingBar:
    """Stands in for the tqdm bar: records its total and every update."""

    def __init__(self, total, desc, progress, fail_after=None):
        self.total, self.desc, self.progress, self.updates, self.fail_after = total, desc, progress, [], fail_after

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        self.updates.append(n)
        if self.fail_after is not None and len(self.updates) >= self.fail_after:
            raise KeyboardInterrupt  # as Ctrl-C would, while the workers are busy


needs_proc = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")


def test_worker_processes_give_one_process_strings_in_input_order_with_a_progress_bar(monkeypatch):
    # 25 utterances: chunks of 4 for 2 workers leave a short last chunk
    lp, lengths = peaky(25, 40)
    alone = beam_decode(lp, lengths, beam_width=8, workers=1)
    bars = []
    monkeypatch.setattr(beam_cpu, "_bar", lambda *a: bars.append(CountingBar(*a)) or bars[-1])
    shared = beam_decode(lp, lengths, beam_width=8, workers=2, progress=True)
    assert shared == alone
    assert any(alone) and len(set(alone)) > 10  # the strings differ: a reordering would show
    bar = bars[-1]
    assert bar.progress and bar.total == 25 and sum(bar.updates) == 25 and "2 processes" in bar.desc


@needs_proc
def test_an_error_in_a_worker_surfaces_and_no_worker_outlives_it():
    lp, lengths = peaky(12, 30, seed=1)
    lengths[7] = 30
    lp[7, 5, 3] = float("nan")  # a diverged model's output
    with pytest.raises(ValueError, match="utterance 7: its log-probabilities contain NaN"):
        beam_decode(lp, lengths, beam_width=4, workers=2)
    assert pool_workers() == []


@needs_proc
def test_ctrl_c_while_decoding_stops_every_worker(monkeypatch):
    lp, lengths = peaky(40, 30, seed=2)
    monkeypatch.setattr(beam_cpu, "_bar", lambda *a: CountingBar(*a, fail_after=1))
    with pytest.raises(KeyboardInterrupt):
        beam_decode(lp, lengths, beam_width=4, workers=2)
    assert pool_workers() == []


def test_workers_none_means_every_core_and_a_bad_count_is_refused():
    assert beam_cpu.resolve_workers(None, 10_000) == len(os.sched_getaffinity(0))
    assert beam_cpu.resolve_workers(16, 3) == 3  # never more processes than utterances
    lp, lengths = peaky(2, 5)
    for bad in (0, -2, 1.5):
        with pytest.raises(ValueError, match=f"workers={bad}"):
            beam_decode(lp, lengths, beam_width=3, workers=bad)
