"""HW3P2 costs: padding with and without length bucketing, epoch throughput, decoding speed.

    python3 benchmarks/bench_ctc.py                        # all three parts (10+ minutes on 2 CPU cores)
    python3 benchmarks/bench_ctc.py --only decoding        # part 3 alone
    python3 benchmarks/bench_ctc.py --only decoding --checkpoint checkpoints/ctc-demo/best.pt
    python3 benchmarks/bench_ctc.py --quick                # smaller, for a smoke run

1. Padding ratio (frames in padded batches / real frames) of one training epoch, on the demo
   and on utterance lengths spread like LibriSpeech train-clean-100 (28,539 utterances,
   1-35 s, mean ~12.7 s at 100 frames/s; only the lengths are needed, nothing is loaded).
2. Training throughput (utterances/s, one epoch, a small model) with and without bucketing,
   on the demo and on a synthetic corpus with LibriSpeech's length spread.
3. Decoding the test set's size (2,620 utterances of ~317 output frames) from a trained model's
   log-probabilities: ctc-demo trained a few epochs here (or --checkpoint), its output on dev
   tiled to that size and length. Greedy, and beam 5/20/50 in one process and on every core,
   side by side; and what each width scores on dev (beam_sweep). Made-up emissions keep all 41
   classes above the search's pruning threshold and time the beam ~17x too slow.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from phonemekit import beam_cpu  # noqa: E402
from phonemekit.config import Config  # noqa: E402
from phonemekit.ctc import ctc_loss, ctc_meta, make_ctc_model  # noqa: E402
from phonemekit.data import DEMO_ROOT  # noqa: E402
from phonemekit.decode import beam_decode, beam_sweep, greedy_decode  # noqa: E402
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
    cfg = Config(task="ctc", **SMALL)
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


def trained_log_probs(epochs, checkpoint=None):
    """(dev log-probs as a list of (T_i, 41) tensors, dev's true strings, a description):
    ctc-demo trained `epochs` epochs on the demo corpus, or the model of `checkpoint`."""
    from phonemekit.checkpoint import load_checkpoint
    from phonemekit.config import load_recipe
    from phonemekit.ctc_submit import answers, ctc_test_dataset
    from phonemekit.train import fit

    with tempfile.TemporaryDirectory() as tmp:
        if checkpoint is None:
            config = load_recipe("ctc-demo").replace(root=str(DEMO_ROOT), epochs=epochs, device="cpu",
                                                     checkpoint_dir=tmp, wandb_mode="disabled")
            r = fit(config, progress=False, verbose=False)
            checkpoint = Path(tmp) / "best.pt"
            what = f"ctc-demo after {epochs} epochs (best epoch {r.best_epoch})"
        else:
            what = str(checkpoint)
        model, config, ckpt = load_checkpoint(checkpoint)
    dev = ctc_test_dataset(config, DEMO_ROOT, stats=ckpt.get("stats"), with_labels=True, partition="dev-clean")
    out = []
    with torch.inference_mode():
        for x, xl, *_ in SequenceLoader(dev, 16, shuffle=False, bucketing=False):
            lp, ol = model(x, xl)
            out += [lp[i, : int(n)].float() for i, n in enumerate(ol)]
    return out, answers(dev), what


def tile(utterances, n, frames):
    """n utterances of `frames` frames each, cut from the given ones laid end to end (cycling)."""
    stream = torch.cat(utterances)
    reps = -(-n * frames // len(stream))
    return stream.repeat(reps, 1)[: n * frames].reshape(n, frames, -1)


def decoding(args):
    lps, truth, what = trained_log_probs(args.epochs, args.checkpoint)
    lengths = torch.tensor([len(x) for x in lps])
    padded = torch.nn.utils.rnn.pad_sequence(lps, batch_first=True)
    sweep = beam_sweep(padded, lengths, truth, widths=(1,) + tuple(args.widths), workers=None)
    blank = float(sum(int((x.argmax(-1) == 0).sum()) for x in lps) / lengths.sum())
    print(f"   {what}: dev distance " + ", ".join(
        f"{'greedy' if w == 1 else f'beam {w}'} {d:.2f}" for w, d in zip(sweep.beam_width, sweep.distance))
        + f"; {blank:.0%} of frames blank")
    n, frames = args.utterances, 1270 // 4  # a 12.7 s utterance after 4x downsampling
    lp = tile(lps, n, frames)
    lengths = torch.full((n,), frames)
    cores = beam_cpu.resolve_workers(None, n)
    print(f"   {n} utterances x {frames} frames (dev's output tiled); {cores} cores; time for the "
          f"{TEST_UTTERANCES} of the test set in brackets (worker start-up included)")
    print(f"   {'decoder':<10} {'1 process':>26} {f'{cores} processes':>26}")

    def timed(fn):
        t0 = time.perf_counter()
        fn()
        s = time.perf_counter() - t0
        return f"{n / s:9,.1f} utt/s ({TEST_UTTERANCES * s / n:7.1f} s)"

    print(f"   {'greedy':<10} {timed(lambda: [greedy_decode(lp[i : i + 64], lengths[i : i + 64]) for i in range(0, n, 64)]):>26} {'-':>26}")
    for w in args.widths:
        one = timed(lambda: beam_decode(lp, lengths, w, backend="cpu", workers=1))
        every = timed(lambda: beam_decode(lp, lengths, w, backend="cpu", workers=None))
        print(f"   {f'beam {w}':<10} {one:>26} {every:>26}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: steady numbers on a shared machine)")
    ap.add_argument("--only", nargs="+", choices=["padding", "training", "decoding"],
                    help="run these parts only (default: all)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="epochs of ctc-demo to train for part 3 (default 15; --quick: 3)")
    ap.add_argument("--checkpoint", help="part 3: decode this ctc model's dev output instead of training one")
    ap.add_argument("--utterances", type=int, default=None,
                    help=f"part 3: utterances to decode (default {TEST_UTTERANCES}, the test set; --quick: 32)")
    ap.add_argument("--widths", type=int, nargs="+", default=None, help="part 3: beam widths (default 5 20 50; --quick: 5)")
    args = ap.parse_args()
    args.epochs = args.epochs or (3 if args.quick else 15)
    args.utterances = args.utterances or (32 if args.quick else TEST_UTTERANCES)
    args.widths = args.widths or ([5] if args.quick else [5, 20, 50])
    parts = args.only or ["padding", "training", "decoding"]
    torch.set_num_threads(args.threads)
    bs = 32
    demo = UtteranceDataset(DEMO_ROOT, "train-clean-100")

    if "padding" in parts:
        print("1. padding ratio of an epoch (padded frames / real frames), batch size", bs)
        libri = LengthsOnly(librispeech_lengths(28539))
        for name, ds in (("demo train (260 utt)", demo), ("LibriSpeech spread (28,539 utt)", libri)):
            off = padding_ratio(SequenceLoader(ds, bs, seed=0, bucketing=False))
            on = padding_ratio(SequenceLoader(ds, bs, seed=0, bucketing=True))
            print(f"   {name:34s} without bucketing {off:.3f}   with bucketing {on:.3f}")

    if "training" in parts:
        print("2. training throughput, one epoch, small model "
              f"({sum(p.numel() for p in make_ctc_model(Config(task='ctc', **SMALL), ctc_meta(demo)).parameters()):,} parameters), "
              f"{torch.get_num_threads()} threads, batch size 16")
        with tempfile.TemporaryDirectory() as tmp:
            synth = write_synthetic(tmp, 64 if args.quick else 192)
            for name, ds, limit in (("demo train", demo, 4 if args.quick else None),
                                    (f"LibriSpeech spread ({len(synth)} utt)", synth, None)):
                for bucketing in (False, True):
                    rate, ratio = epoch_throughput(ds, bucketing, 16, limit)
                    print(f"   {name:34s} bucketing={str(bucketing):5s} {rate:7.1f} utterances/s (padding {ratio:.2f})")

    if "decoding" in parts:
        print(f"3. decoding the test set's size from a trained model's output, {torch.get_num_threads()} torch threads")
        decoding(args)


if __name__ == "__main__":
    main()
