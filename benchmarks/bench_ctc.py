"""HW3P2 costs: padding with and without length bucketing, epoch throughput, decoding speed.

    python3 benchmarks/bench_ctc.py            # a few minutes on 2 CPU cores
    python3 benchmarks/bench_ctc.py --quick    # smaller, for a smoke run

1. Padding ratio (frames in padded batches / real frames) of one training epoch, on the demo
   and on utterance lengths spread like LibriSpeech train-clean-100 (28,539 utterances,
   1-35 s, mean ~12.7 s at 100 frames/s; only the lengths are needed, nothing is loaded).
2. Training throughput (utterances/s, one epoch, a small model) with and without bucketing,
   on the demo and on a synthetic corpus with LibriSpeech's length spread.
3. Decoding throughput on the test set's size (2,620 utterances), greedy vs beam search, on
   peaky CTC output like a trained model's (mostly blank, a spike per phoneme).
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from phonemekit.ctc import CTC_DEFAULTS, ctc_loss, ctc_meta, make_ctc_model  # noqa: E402
from phonemekit.data import DEMO_ROOT  # noqa: E402
from phonemekit.decode import beam_decode, greedy_decode  # noqa: E402
from phonemekit.phonemes import CTC_PHONEMES, EOS, SOS  # noqa: E402
from phonemekit.sequences import SequenceLoader, UtteranceDataset, padding_ratio  # noqa: E402

TEST_UTTERANCES = 2620
SMALL = dict(conv_channels=64, conv_layers=1, conv_stride=2, lstm_hidden=64, lstm_layers=1, pyramid=1,
             head=[], dropout=0.1, locked_dropout=0.1)


def librispeech_lengths(n, seed=0):
    """Frame counts spread like train-clean-100: 1-35 s, mean ~12.7 s, most of them 10-17 s."""
    rng = np.random.default_rng(seed)
    seconds = 1 + 34 * rng.beta(2.5, 4.77, n)  # mean 1 + 34 * 2.5 / 7.27 = 12.7 s
    return np.round(seconds * 100).astype(np.int64)


class LengthsOnly:
    """Stands in for an UtteranceDataset where only the lengths matter (padding_ratio)."""

    def __init__(self, lengths):
        self.lengths = lengths
        self.offsets = np.concatenate([[0], np.cumsum(lengths)])
        self.features, self.labels = torch.zeros(1, 1), torch.zeros(1, dtype=torch.uint8)
        self.label_offsets = np.zeros(len(lengths) + 1, dtype=np.int64)

    def __len__(self):
        return len(self.lengths)


def write_synthetic(root, n, seed=0):
    """n utterances with LibriSpeech's length spread, random features, ~8 frames per phoneme."""
    rng = np.random.default_rng(seed)
    part = Path(root) / "train-clean-100"
    (part / "mfcc").mkdir(parents=True)
    (part / "transcript").mkdir()
    for k, t in enumerate(librispeech_lengths(n, seed)):
        np.save(part / "mfcc" / f"1-1-{k:04d}.npy", rng.standard_normal((t, 28)).astype(np.float32))
        phones = rng.choice(CTC_PHONEMES[1:], max(1, t // 8))
        np.save(part / "transcript" / f"1-1-{k:04d}.npy", np.array([SOS, *phones, EOS]))
    return UtteranceDataset(root, "train-clean-100")


def epoch_throughput(ds, bucketing, batch_size, max_batches=None):
    torch.manual_seed(0)
    cfg = SimpleNamespace(**{**CTC_DEFAULTS, **SMALL})
    model = make_ctc_model(cfg, ctc_meta(ds))
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    loader = SequenceLoader(ds, batch_size, shuffle=True, seed=0, bucketing=bucketing)
    n, t0 = 0, None
    for i, batch in enumerate(loader):
        if max_batches and i == max_batches:
            break
        loss, b = ctc_loss(model, batch, cfg, None)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if t0 is None:  # the first step warms up (allocations, one-time setup): not timed
            t0 = time.perf_counter()
        else:
            n += b
    loader.set_epoch(0)
    return n / (time.perf_counter() - t0), padding_ratio(loader)


def peaky_log_probs(n, t, seed=0):
    """(n, t, 41) log-probs: blank with p ~0.9 except a confident phoneme every ~4 frames."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, t, 41, generator=g)
    logits[..., 0] += 4
    spikes = torch.rand(n, t, generator=g) < 0.25
    phones = torch.randint(1, 41, (n, t), generator=g)
    logits.scatter_add_(2, phones[..., None], 8.0 * spikes[..., None].float())
    return logits.log_softmax(-1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: steady numbers on a shared machine)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    bs = 32

    print("1. padding ratio of an epoch (padded frames / real frames), batch size", bs)
    demo = UtteranceDataset(DEMO_ROOT, "train-clean-100")
    libri = LengthsOnly(librispeech_lengths(28539))
    for name, ds in (("demo train (260 utt)", demo), ("LibriSpeech spread (28,539 utt)", libri)):
        off = padding_ratio(SequenceLoader(ds, bs, seed=0, bucketing=False))
        on = padding_ratio(SequenceLoader(ds, bs, seed=0, bucketing=True))
        print(f"   {name:34s} without bucketing {off:.3f}   with bucketing {on:.3f}")

    print("2. training throughput, one epoch, small model "
          f"({sum(p.numel() for p in make_ctc_model(SimpleNamespace(**{**CTC_DEFAULTS, **SMALL}), ctc_meta(demo)).parameters()):,} parameters), "
          f"{torch.get_num_threads()} threads, batch size 16")
    with tempfile.TemporaryDirectory() as tmp:
        synth = write_synthetic(tmp, 64 if args.quick else 192)
        for name, ds, limit in (("demo train", demo, 4 if args.quick else None),
                                (f"LibriSpeech spread ({len(synth)} utt)", synth, None)):
            for bucketing in (False, True):
                rate, ratio = epoch_throughput(ds, bucketing, 16, limit)
                print(f"   {name:34s} bucketing={str(bucketing):5s} {rate:7.1f} utterances/s (padding {ratio:.2f})")

    frames = 1270 // 4  # a 12.7 s utterance after 4x downsampling
    print(f"3. decoding {TEST_UTTERANCES} utterances of {frames} output frames (peaky CTC output)")
    lp = peaky_log_probs(TEST_UTTERANCES, frames)
    lengths = torch.full((TEST_UTTERANCES,), frames)
    t0 = time.perf_counter()
    for i in range(0, TEST_UTTERANCES, 64):
        greedy_decode(lp[i : i + 64], lengths[i : i + 64])
    greedy = time.perf_counter() - t0
    print(f"   greedy (CPU tensors)      {TEST_UTTERANCES / greedy:9.0f} utterances/s   ({greedy:.2f} s for the test set)")
    sample = 32 if args.quick else 200
    for width in (2, 5, 10, 25):
        t0 = time.perf_counter()
        for i in range(0, sample, 64):
            beam_decode(lp[i : min(i + 64, sample)], lengths[i : min(i + 64, sample)], beam_width=width)
        rate = sample / (time.perf_counter() - t0)
        print(f"   beam width {width:2d} (pyctcdecode) {rate:9.1f} utterances/s   "
              f"(~{TEST_UTTERANCES / rate:.0f} s for the test set, from {sample} utterances)")


if __name__ == "__main__":
    main()
