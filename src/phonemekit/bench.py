"""Speed: the kit's training pipeline against the course notebook's, and against the model alone.

    python -m phonemekit bench                                   # 2M-frame synthetic corpus, 20M model
    python -m phonemekit bench --model small --max-batches 100 --threads 1   # a CPU, in minutes
    python -m phonemekit bench --root data/11785-f24-hw1p2 --json bench.json
    python -m phonemekit bench --data-only                       # the loaders alone, no model

One run measures, side by side, with the same model, batch size and AMP mode:
  (a) notebook: the course notebook's per-item Dataset (one window per __getitem__) behind a
      torch DataLoader, and its training loop (loss.item() and accuracy .item() every step);
  (b) kit:      FrameLoader (the padded array on the GPU, one gather per batch; on a CPU, a
      prefetch thread) and phonemekit.train.train_epoch;
  (c) floor:    train_epoch on one batch, already on the device, repeated: the model's own cost.
It reports frames/s of each, the ratios (b)/(a) and (b)/(c), the epoch time projected to
train-clean-100 (36,091,157 frames), test-set inference (predict) projected to 1,934,138 frames,
peak host and device memory per phase, and the machine. Targets on a GPU: (b) within 1.3x of
(c) and >= 10x (a); on a CPU: FrameLoader >= 10x the per-item DataLoader in batches/s, and with
a small model (b) close to (c), i.e. the epoch is bounded by the model, not by the data.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from .data import AudioDataset, FrameLoader, find_root
from .phonemes import PHONEMES

TRAIN_FRAMES = 36_091_157  # train-clean-100
TEST_FRAMES = 1_934_138  # test-clean
MODELS = {  # --model presets; a list of widths ("1024,512") works too
    "small": [512, 256],  # ~1M parameters: on a CPU the data path shows next to the model
    "strong": None,  # the strong recipe's 20M cylinder (widths solved for the budget)
}


# --------------------------------------------------------------------------------------------
# The reference: the course notebook's dataset and training loop, as students write them


class NotebookDataset(torch.utils.data.Dataset):
    """The official notebook's AudioDataset: one (2C+1, F) window per __getitem__.

    Lists of per-utterance arrays, concatenated, padded with C zero frames at both ends; labels
    as int64 indices into PHONEMES. Same windows as phonemekit.data.AudioDataset (concat mode,
    cepstral normalisation), served one frame at a time.
    """

    def __init__(self, root, partition="train-clean-100", context=30):
        self.context = context
        mfcc_dir, tr_dir = f"{root}/{partition}/mfcc", f"{root}/{partition}/transcript"
        mfcc_names, tr_names = sorted(os.listdir(mfcc_dir)), sorted(os.listdir(tr_dir))
        assert len(mfcc_names) == len(tr_names)
        self.mfccs, self.transcripts = [], []
        for m, t in zip(mfcc_names, tr_names):
            mfcc = np.load(f"{mfcc_dir}/{m}")
            mfcc = (mfcc - np.mean(mfcc, axis=0)) / np.std(mfcc, axis=0)  # cepstral normalisation
            transcript = np.load(f"{tr_dir}/{t}")[1:-1]
            self.mfccs.append(mfcc)
            self.transcripts.append(transcript)
        self.mfccs = np.concatenate(self.mfccs)
        self.transcripts = np.concatenate(self.transcripts)
        self.length = len(self.mfccs)
        self.mfccs = np.pad(self.mfccs, ((context, context), (0, 0)), "constant", constant_values=0)
        self.transcripts = np.array([PHONEMES.index(p) for p in self.transcripts])

    def __len__(self):
        return self.length

    def __getitem__(self, ind):
        frames = self.mfccs[ind : ind + 2 * self.context + 1]
        frames = torch.FloatTensor(frames)
        phonemes = torch.tensor(self.transcripts[ind])
        return frames, phonemes


def _autocast(device, amp_dtype):
    from .train import autocast

    return autocast(device, amp_dtype)


def notebook_steps(model, batches, optimizer, scaler, amp_dtype, device, steps: int) -> dict:
    """`steps` training steps as the notebook's train() does them, host sync on every step."""
    model.train()
    criterion = torch.nn.CrossEntropyLoss()
    tloss, tacc, n = 0.0, 0.0, 0
    for _ in range(steps):
        frames, phonemes = next(batches)
        optimizer.zero_grad()
        frames, phonemes = frames.to(device), phonemes.to(device)
        with _autocast(device, amp_dtype):
            logits = model(frames)
            loss = criterion(logits, phonemes)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        tloss += loss.item()
        tacc += torch.sum(torch.argmax(logits, dim=1) == phonemes).item() / logits.shape[0]
        n += phonemes.shape[0]
    return {"train_loss": tloss / steps, "train_acc": tacc / steps, "frames": n}


# --------------------------------------------------------------------------------------------
# Helpers


def scale_lr(lr: float, batch_size: int, base_batch: int = 1024, rule: str = "sqrt") -> float:
    """The learning rate for batch_size, given one that works at base_batch.

    rule="sqrt" (lr * sqrt(batch_size / base_batch)) suits Adam/AdamW; "linear" (lr * ratio)
    is the SGD rule (Goyal et al. 2017). Larger batches feed the GPU better; this keeps the
    update per epoch comparable. Pair a large scale-up with a warm-up epoch.
    """
    if rule not in ("sqrt", "linear"):
        raise ValueError(f"rule={rule!r}; choose 'sqrt' (Adam/AdamW) or 'linear' (SGD)")
    if batch_size < 1 or base_batch < 1:
        raise ValueError(f"batch_size={batch_size} and base_batch={base_batch} must be >= 1")
    ratio = batch_size / base_batch
    return lr * (math.sqrt(ratio) if rule == "sqrt" else ratio)


def machine() -> dict:
    """CPU model, cores, memory, GPU, versions and the load average: what the figures ran on."""
    cpu = platform.processor() or "unknown CPU"
    try:
        cpu = next(x.split(":", 1)[1].strip() for x in open("/proc/cpuinfo") if x.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        mem_gib = int(next(x for x in open("/proc/meminfo") if x.startswith("MemTotal")).split()[1]) / 2**20
    except (OSError, StopIteration):
        mem_gib = None
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": None if mem_gib is None else round(mem_gib, 1),
        "gpu": gpu,
        "gpu_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if gpu else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if gpu else None,
        "numpy": np.__version__,
        "threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def _reset_peak_rss() -> None:
    # Linux: writing 5 to clear_refs resets VmHWM, so each phase gets its own peak
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_rss() -> int:
    try:
        kb = next(x for x in open("/proc/self/status") if x.startswith("VmHWM")).split()[1]
        return int(kb) * 1024
    except (OSError, StopIteration):  # not Linux: the process's peak so far
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Phase:
    """Times one phase: syncs the device, resets host and device peaks, reads them at the end."""

    def __init__(self, device):
        self.device = device

    def __enter__(self):
        _sync(self.device)
        _reset_peak_rss()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        _sync(self.device)
        self.seconds = time.perf_counter() - self.t0
        self.peak_rss = _peak_rss()
        self.peak_device = torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" else None


class Cycle:
    """The first n batches of a loader, over as many epochs as it takes (len() == n)."""

    def __init__(self, loader, n: int):
        self.loader, self.n = loader, n
        self.dataset, self.batch_size = getattr(loader, "dataset", None), getattr(loader, "batch_size", None)

    def __len__(self):
        return self.n

    def __iter__(self):
        done = 0
        while done < self.n:
            it, empty = iter(self.loader), True
            try:
                for b in it:
                    empty = False
                    yield b
                    done += 1
                    if done == self.n:
                        return
            finally:
                if hasattr(it, "close"):
                    it.close()  # stops FrameLoader's prefetch thread at once
            if empty:
                raise ValueError("the loader gives no batch: use a smaller --batch-size or a larger corpus")


class Repeat:
    """The same batch n times: the model's cost with no data cost at all."""

    def __init__(self, batch, n: int):
        self.batch, self.n, self.dataset, self.batch_size = batch, n, None, len(batch[1])

    def __len__(self):
        return self.n

    def __iter__(self):
        for _ in range(self.n):
            yield self.batch


class _Head:
    """The first n frames of a dataset, indexable by a tensor of frame indices."""

    def __init__(self, ds, n: int):
        self.ds, self.n = ds, n

    def __len__(self):
        return self.n

    def __getitem__(self, idx):
        return self.ds[idx]


def _rate(it, warmup: int, batches: int, device) -> float:
    """Batches/s of an iterator after `warmup` batches (the loaders alone, no model)."""
    for _ in range(warmup):
        next(it)
    _sync(device)
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    _sync(device)  # a GPU gather is asynchronous: count it done only when it is
    return batches / (time.perf_counter() - t)


def _phase_result(phase: Phase, frames: int, batches: int, warmup_seconds: float) -> dict:
    fps = frames / phase.seconds
    return {"batches": batches, "frames": frames, "seconds": phase.seconds, "frames_per_s": fps,
            "epoch_seconds_projected": TRAIN_FRAMES / fps, "warmup_seconds": warmup_seconds,
            "peak_rss_bytes": phase.peak_rss, "peak_device_bytes": phase.peak_device}


def _notebook_loader(nb, batch_size, workers, device, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(nb, batch_size=batch_size, shuffle=True, num_workers=workers,
                                       pin_memory=device.type == "cuda", drop_last=len(nb) >= batch_size,
                                       generator=g)


# --------------------------------------------------------------------------------------------
# The benchmark


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m phonemekit bench", description=__doc__.split("\n\n")[0].strip(),
        epilog="\n".join(__doc__.split("\n")[1:6]), formatter_class=argparse.RawDescriptionHelpFormatter)
    add = p.add_argument
    add("--root", default=None,
        help="existing data in the Kaggle layout instead of a synthetic corpus (both pipelines load it: "
             "train-clean-100 needs about 2 x 4 GB of memory)")
    add("--frames", type=int, default=2_000_000,
        help="synthetic training frames (rounded to whole utterances; default 2,000,000)")
    add("--mean-frames", type=float, default=None,
        help="mean utterance length of the synthetic corpus in frames (default 1265, as train-clean-100)")
    add("--features", type=int, default=28, help="feature dimension of the synthetic corpus (default 28)")
    add("--test-frames", type=int, default=None,
        help="synthetic test-clean frames for the inference timing (default: 5%% of --frames)")
    add("--partition", default="train-clean-100",
        help="partition to train on (with --root, dev-clean loads faster and needs less memory)")
    add("--workdir", default=None, help="where to write the synthetic corpus (default: a temporary folder, removed after)")
    add("--context", type=int, default=30, help="context C: windows of 2C+1 frames (default 30)")
    add("--model", default="strong",
        help="strong (the strong recipe's 20M cylinder), small (512,256) or widths such as 1024,512 (default strong)")
    add("--batch-size", type=int, default=1024, help="batch size of all pipelines (default 1024, the notebook's)")
    add("--lr-rule", choices=["sqrt", "linear"], default="sqrt",
        help="how the lr (1e-3 at batch 1024) follows --batch-size (default sqrt)")
    add("--eval-batch-size", type=int, default=8192, help="batch size of test-set inference (default 8192)")
    add("--max-batches", type=int, default=None,
        help="timed batches of the kit and of the floor (default: one pass over the corpus)")
    add("--notebook-batches", type=int, default=100,
        help="timed batches of the per-item pipeline, at most --max-batches (default 100)")
    add("--warmup", type=int, default=5, help="untimed batches before each timing (default 5)")
    add("--repeats", type=int, default=3,
        help="time each pipeline this many times, in turn, and keep the fastest: a shared machine's "
             "load then slows all alike (default 3)")
    add("--workers", type=int, nargs="+", default=[0],
        help="num_workers of the per-item DataLoader; several values are each measured, and the "
             "fastest is the reference (default 0; the course notebook uses 4 on Colab)")
    add("--device", default="auto", help="auto (cuda, else cpu), cpu or cuda (default auto)")
    add("--amp", default="auto", choices=["auto", "fp16", "bf16", "off"],
        help="autocast for all pipelines: auto is bf16 on Ampere and newer, fp16 on older GPUs, off on CPU")
    add("--compile", action="store_true", help="torch.compile the model (all pipelines; compile time is in the warm-up)")
    add("--streaming", action="store_true",
        help="the kit keeps the data in host memory and streams pinned batches (the train-clean-360 mode)")
    add("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    add("--data-only", action="store_true", help="time the loaders alone (batches/s), no model")
    add("--no-inference", action="store_true", help="skip the test-set inference timing")
    add("--seed", type=int, default=0, help="seed of the corpus, the model and the batch order (default 0)")
    add("--json", default=None, metavar="FILE", help="also write the results to this JSON file")
    return p


def _model(args, in_features, device):
    from .checkpoint import make_model
    from .config import Config, load_recipe

    if args.model == "strong":
        config = load_recipe("strong", context=args.context)
    else:
        try:
            hidden = MODELS[args.model] if args.model in MODELS else [int(w) for w in args.model.split(",") if w.strip()]
        except ValueError:
            raise SystemExit(f"bench: --model {args.model!r}: use strong, small or widths such as 1024,512") from None
        config = Config(context=args.context, hidden=hidden, dropout=0.2, param_limit=None)
    torch.manual_seed(args.seed)
    return make_model(config, in_features).to(device), config


def run(args) -> dict:
    """Write the corpus (unless --root), measure, clean up; the results as a dict."""
    from . import train

    if args.threads:
        torch.set_num_threads(args.threads)
    device = train.resolve_device(args.device)
    amp_dtype = train.resolve_amp(args.amp, device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    out = {"machine": machine(), "device": str(device), "amp": str(amp_dtype).replace("torch.", "") if amp_dtype else "off",
           "compile": args.compile, "batch_size": args.batch_size, "context": args.context,
           "streaming": args.streaming, "workers": args.workers}
    log = print

    # the corpus ---------------------------------------------------------------------------
    work = Path(args.workdir or tempfile.mkdtemp(prefix="phonemekit-bench-"))
    try:
        if args.root:
            root = find_root(args.root)
        else:
            from .synthetic import MEAN_FRAMES, make_corpus

            mean = args.mean_frames or MEAN_FRAMES
            n = max(1, round(args.frames / mean))
            n_test = max(1, round((args.test_frames or 0.05 * args.frames) / mean))
            root = work / "corpus"
            shutil.rmtree(root, ignore_errors=True)
            t = time.perf_counter()
            make_corpus(root, n, n_features=args.features, seed=args.seed, mean_frames=mean, n_dev=1, n_test=n_test)
            log(f"bench: synthetic corpus of {n:,} utterances written in {time.perf_counter() - t:.1f} s")
        out["root"] = str(root) if args.root else None
        out.update(_measure(args, root, device, amp_dtype, log))
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return out


def _measure(args, root, device, amp_dtype, log) -> dict:
    from . import train
    from .model import count_params
    from .submit import predict

    res = {}
    storage = torch.float16 if device.type == "cuda" else torch.float32  # as train.make_datasets does
    t = time.perf_counter()
    ds = AudioDataset(root, args.partition, context=args.context, dtype=storage)
    kit_load = time.perf_counter() - t
    t = time.perf_counter()
    nb = NotebookDataset(root, args.partition, args.context)
    nb_load = time.perf_counter() - t
    res["corpus"] = {"partition": args.partition, "frames": len(ds), "utterances": len(ds.utterances), "features": ds.n_features,
                     "synthetic": args.root is None, "load_seconds": {"kit": kit_load, "notebook": nb_load}}
    log(f"bench: {len(ds):,} frames in {len(ds.utterances):,} utterances, F={ds.n_features}, context "
        f"{args.context}; loaded in {kit_load:.1f} s (kit) and {nb_load:.1f} s (notebook)")
    bs = args.batch_size
    if len(ds) < bs:
        raise SystemExit(f"bench: the corpus has {len(ds):,} frames, fewer than one batch of {bs}: "
                         "use a smaller --batch-size or a larger --frames")

    def kit_loader():
        return FrameLoader(ds, bs, shuffle=True, drop_last=True, device=device, seed=args.seed,
                           resident=False if args.streaming else None, storage_dtype=storage)

    epoch_batches = len(ds) // bs
    n_kit = args.max_batches or epoch_batches
    n_nb = max(1, min(args.notebook_batches, n_kit))

    # data only: batches/s of the loaders, no model (best of --repeats, interleaved) ----------
    n_data = min(n_kit, 300) if not args.data_only else n_kit
    rates = {"kit": []} | {str(w): [] for w in args.workers}
    for _ in range(args.repeats):
        rates["kit"].append(_rate(iter(Cycle(kit_loader(), n_data + args.warmup)), args.warmup, n_data, device))
        for w in args.workers:  # workers start slowly: a longer warm-up
            it = iter(Cycle(_notebook_loader(nb, bs, w, device, args.seed), n_nb + args.warmup + 2 * w))
            rates[str(w)].append(_rate(it, args.warmup + 2 * w, n_nb, device))
            del it
    data = {"kit_batches_per_s": max(rates["kit"]),
            "notebook_batches_per_s": {str(w): max(rates[str(w)]) for w in args.workers}, "all": rates}
    best_w = max(data["notebook_batches_per_s"], key=data["notebook_batches_per_s"].get)
    data["notebook_workers"] = int(best_w)
    data["ratio"] = data["kit_batches_per_s"] / data["notebook_batches_per_s"][best_w]
    res["data_only"] = data
    log(f"bench: data only, batches of {bs}: FrameLoader {data['kit_batches_per_s']:,.1f}/s, per-item DataLoader "
        + ", ".join(f"{r:,.1f}/s (num_workers={w})" for w, r in data["notebook_batches_per_s"].items())
        + f": {data['ratio']:.1f}x")
    if args.data_only:
        return res

    # the model -----------------------------------------------------------------------------
    in_features = ds.window * ds.n_features
    model0, config = _model(args, in_features, device)
    lr = scale_lr(1e-3, bs, rule=args.lr_rule)
    config = config.replace(lr=lr, batch_size=bs)
    res["model"] = {"name": args.model, "hidden": list(model0.hidden), "params": count_params(model0),
                    "lr": lr, "optimizer": config.optimizer}
    log(f"bench: model {args.model} {model0.hidden}, {count_params(model0):,} parameters; device {device}, "
        f"AMP {amp_dtype or 'off'}, compile {args.compile}, lr {lr:.2e}")

    def fresh():  # the same initial weights for every pipeline
        m = copy.deepcopy(model0)
        return m, (torch.compile(m) if args.compile else m)

    def scaler():
        return torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None

    # set up all three, warmed up; then time them in turn, --repeats times (noise hits all alike)
    # (a) the notebook: per-item DataLoader + its loop (plain AdamW, as the notebook builds it)
    w = data["notebook_workers"]
    a_model, a_step = fresh()
    a_opt, a_scaler = torch.optim.AdamW(a_model.parameters(), lr=lr, weight_decay=config.weight_decay), scaler()
    a_batches = iter(Cycle(_notebook_loader(nb, bs, w, device, args.seed), args.warmup + 2 * w + n_nb * args.repeats))
    t = time.perf_counter()
    notebook_steps(a_step, a_batches, a_opt, a_scaler, amp_dtype, device, args.warmup + 2 * w)
    a_warm = time.perf_counter() - t
    # (b) the kit: FrameLoader (the data go to the device here) + train_epoch
    b_model, b_step = fresh()
    b_opt, b_scaler = train.make_optimizer(config, b_model), scaler()
    with Phase(device) as to_device:
        loader = kit_loader()
    t = time.perf_counter()
    train.train_epoch(b_step, Cycle(loader, args.warmup), b_opt, b_scaler, amp_dtype)
    b_warm = time.perf_counter() - t
    # (c) the floor: the kit's loop on one batch already on the device
    batch = tuple(x.to(device) for x in next(iter(Cycle(loader, 1))))
    c_model, c_step = fresh()
    c_opt, c_scaler = train.make_optimizer(config, c_model), scaler()
    t = time.perf_counter()
    train.train_epoch(c_step, Repeat(batch, args.warmup), c_opt, c_scaler, amp_dtype)
    c_warm = time.perf_counter() - t

    runs = {"notebook": [], "kit": [], "floor": []}
    for _ in range(args.repeats):
        with Phase(device) as ph:
            r = notebook_steps(a_step, a_batches, a_opt, a_scaler, amp_dtype, device, n_nb)
        runs["notebook"].append(_phase_result(ph, r["frames"], n_nb, a_warm))
        with Phase(device) as ph:
            r = train.train_epoch(b_step, Cycle(loader, n_kit), b_opt, b_scaler, amp_dtype,
                                  log_every=config.log_every)
        runs["kit"].append(_phase_result(ph, r["count"], n_kit, b_warm))
        with Phase(device) as ph:
            r = train.train_epoch(c_step, Repeat(batch, n_kit), c_opt, c_scaler, amp_dtype,
                                  log_every=config.log_every)
        runs["floor"].append(_phase_result(ph, r["count"], n_kit, c_warm))
    del a_batches
    for k, rs in runs.items():  # the fastest repeat; peaks over all repeats
        best = max(rs, key=lambda r: r["frames_per_s"])
        res[k] = {**best, "peak_rss_bytes": max(r["peak_rss_bytes"] for r in rs),
                  "peak_device_bytes": None if device.type != "cuda" else max(r["peak_device_bytes"] for r in rs),
                  "all_frames_per_s": [r["frames_per_s"] for r in rs]}
    res["notebook"]["workers"] = w
    # the kit's device peak includes the resident data: allocated before its phases, held during them
    res["kit"].update(resident=loader.resident, to_device_seconds=to_device.seconds)
    res["kit_over_notebook"] = res["kit"]["frames_per_s"] / res["notebook"]["frames_per_s"]
    res["kit_over_floor"] = res["kit"]["frames_per_s"] / res["floor"]["frames_per_s"]
    step_model = b_step
    del loader, a_model, a_step, a_opt, c_model, c_step, c_opt

    # test-set inference with the kit's predict (FrameLoader, shuffle=False, big batches)
    if not args.no_inference:
        test = AudioDataset(root, "test-clean", context=args.context, dtype=storage)
        predict(step_model, _Head(test, min(len(test), args.eval_batch_size)), args.eval_batch_size, device)  # warm-up
        with Phase(device) as ph:
            p = predict(step_model, test, batch_size=args.eval_batch_size, device=device)
        fps = len(p) / ph.seconds
        res["inference"] = {"frames": len(p), "seconds": ph.seconds, "frames_per_s": fps,
                            "test_seconds_projected": TEST_FRAMES / fps, "batch_size": args.eval_batch_size,
                            "peak_rss_bytes": ph.peak_rss, "peak_device_bytes": ph.peak_device}
    return res


def report(res: dict) -> str:
    """The results as a few readable lines."""
    m = res["machine"]
    gib = 2**30
    lines = [f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM, "
             f"{m['gpu'] or 'no GPU'}; torch {m['torch']}, {m['threads']} threads; load average "
             f"{m['load_average']} at the start, {m.get('load_average_end')} at the end",
             f"device {res['device']}, AMP {res['amp']}, compile {res['compile']}, batch {res['batch_size']}, "
             f"context {res['context']}"]
    d = res["data_only"]
    lines.append(f"data only: FrameLoader {d['kit_batches_per_s']:,.1f} batches/s vs per-item DataLoader "
                 f"{d['notebook_batches_per_s'][str(d['notebook_workers'])]:,.1f} (num_workers="
                 f"{d['notebook_workers']}): {d['ratio']:.1f}x (target >= 10x)")
    if "kit" not in res:
        return "\n".join(lines)
    lines.append(f"model {res['model']['name']} {res['model']['hidden']}, {res['model']['params']:,} parameters")
    lines.append(f"{'pipeline':34s} {'frames/s':>11s} {'epoch of 36.1M':>15s} {'peak RSS':>9s} {'peak GPU':>9s}")
    names = {"notebook": f"(a) per-item DataLoader (w={res['notebook']['workers']})",
             "kit": "(b) FrameLoader + train_epoch" + (" (streaming)" if res["streaming"] else ""),
             "floor": "(c) model alone (one batch)"}
    for k, name in names.items():
        r = res[k]
        dev = f"{r['peak_device_bytes'] / gib:8.2f}G" if r["peak_device_bytes"] is not None else f"{'-':>9s}"
        lines.append(f"{name:34s} {r['frames_per_s']:11,.0f} {_duration(r['epoch_seconds_projected']):>15s} "
                     f"{r['peak_rss_bytes'] / gib:8.2f}G {dev}")
    lines.append(f"(b)/(a) = {res['kit_over_notebook']:.1f}x faster than the notebook's pipeline (GPU target >= 10x)")
    lines.append(f"(b)/(c) = {res['kit_over_floor']:.2f} of the compute floor's speed; the epoch takes "
                 f"{1 / res['kit_over_floor']:.2f}x the floor's time (GPU target <= 1.3x)")
    if "inference" in res:
        i = res["inference"]
        lines.append(f"test inference: {i['frames']:,} frames in {i['seconds']:.2f} s, {i['frames_per_s']:,.0f} "
                     f"frames/s: {_duration(i['test_seconds_projected'])} for test-clean's 1.93M frames")
    return "\n".join(lines)


def _duration(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("frames", "batch_size", "eval_batch_size", "notebook_batches", "features", "max_batches", "repeats"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise SystemExit(f"bench: --{name.replace('_', '-')}={v} must be >= 1")
    if args.warmup < 0 or args.context < 0 or min(args.workers) < 0:
        raise SystemExit("bench: --warmup, --context and --workers must be >= 0")
    res = run(args)
    res["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    print(report(res))
    if args.json:
        path = Path(args.json).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(res, indent=2) + "\n")
        print(f"bench: results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
