"""Benchmark of the data layer of both homeworks, and of HW1P2's against the course notebook's way.

    python benchmarks/bench_data.py                      # synthetic corpus of 3,000 utterances
    python benchmarks/bench_data.py --utterances 500 --task ctc --no-throughput
    python benchmarks/bench_data.py --frames 5000000     # or of about this many frames
    python benchmarks/bench_data.py --root data/11785-f24-hw1p2 --partition dev-clean

Reports, in one run, for AudioDataset (frames) and UtteranceDataset (ctc):
  - first load (reading every .npy, building the arrays, writing the cache) and a cached
    reload (memory-mapped), each in a fresh interpreter, as after a Colab restart; the reload
    checks a sample of the cache's blocks against their checksums, and once all of them
    (cache_verify="full"), which is the cost of verification;
  - peak resident memory while loading, above the interpreter with torch/numpy imported,
    against the size of the final arrays;
  - FrameLoader batches/s against the notebook's per-item Dataset + torch DataLoader (one
    window per __getitem__, default collate), same batch size and context. The two take turns
    in rounds (a busy machine slows both alike); the best and the median round are reported.
Targets: reload >= 10x faster than first load; FrameLoader >= 20x the per-item DataLoader;
peak <= 1.25x the arrays.

A synthetic corpus has just been written, so the first load reads it from the page cache: on a
fresh machine (files on disk, not in memory) the first load is slower and the ratio larger.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

# Run inside a fresh interpreter: import, note the resident memory, run the job, report.
CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {src!r})
import numpy as np, torch
from phonemekit import data

def rss():  # resident memory now, in bytes
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()

args = json.loads({args!r})
base = rss()
t = time.perf_counter()
out = run(args)  # defined below
out["seconds"] = time.perf_counter() - t
out["peak_above_base"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
print("RESULT " + json.dumps(out))
"""

JOBS = {
    # the kit: load (building and writing the cache, or reading it)
    "frames": r"""
def run(a):
    dt = torch.float16 if a["dtype"] == "float16" else torch.float32
    ds = data.AudioDataset(a["root"], a["partition"], context=a["context"], dtype=dt, cache_dir=a["cache"],
                           cache_verify=a["verify"])
    out = {"nbytes": ds.nbytes + ds.offsets.nbytes, "frames": len(ds), "utterances": len(ds.utterances),
           "features": ds.n_features, "mapped": "features.npy" in open("/proc/self/maps").read()}
    return out
""",
    "ctc": r"""
from phonemekit.sequences import UtteranceDataset

def run(a):
    dt = torch.float16 if a["dtype"] == "float16" else torch.float32
    ds = UtteranceDataset(a["root"], a["partition"], dtype=dt, cache_dir=a["cache"], cache_verify=a["verify"])
    out = {"nbytes": ds.nbytes + ds.offsets.nbytes + ds.label_offsets.nbytes, "frames": int(ds.offsets[-1]),
           "utterances": len(ds.utterances), "features": ds.n_features,
           "mapped": "features.npy" in open("/proc/self/maps").read()}
    return out
""",
    # the course notebook's dataset, as students write it
    "notebook": r"""
from phonemekit.bench import NotebookDataset  # the notebook's per-item dataset, kept in one place

def run(a):
    ds = NotebookDataset(a["root"], a["partition"], a["context"])
    return {"nbytes": ds.mfccs.nbytes + ds.transcripts.nbytes}
""",
}

# batches/s of a loader over an already loaded dataset (no model: the loader alone). The two
# loaders take turns in rounds, so a change in machine load hits both; best and median reported.
THROUGHPUT = r"""
import statistics

def endless(loader):  # epoch after epoch, for corpora smaller than the batches timed
    while True:
        yield from loader

def timed(it, batches):
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches / (time.perf_counter() - t)

def run(a):
    torch.manual_seed(0)
    dt = torch.float16 if a["dtype"] == "float16" else torch.float32
    ds = data.AudioDataset(a["root"], a["partition"], context=a["context"], dtype=dt, cache_dir=a["cache"])
    nb = NotebookDataset(a["root"], a["partition"], a["context"])
    kit = endless(data.FrameLoader(ds, a["batch_size"], shuffle=True, seed=0))
    item = endless(torch.utils.data.DataLoader(nb, batch_size=a["batch_size"], shuffle=True))
    timed(kit, 3), timed(item, 1)  # warm up
    rounds = {"kit": [], "notebook_w0": []}
    for _ in range(a["rounds"]):
        rounds["kit"].append(timed(kit, a["batches"]))
        rounds["notebook_w0"].append(timed(item, a["notebook_batches"]))
    kit.close(), item.close()
    for w in a["workers"]:  # worker processes: timed on their own, after a warm-up of their start
        if w:
            it = endless(torch.utils.data.DataLoader(nb, batch_size=a["batch_size"], shuffle=True, num_workers=w))
            timed(it, 2 * w + 1)
            rounds[f"notebook_w{w}"] = [timed(it, a["notebook_batches"]) for _ in range(a["rounds"])]
            it.close()
    out = {k: {"best": max(v), "median": statistics.median(v)} for k, v in rounds.items()}
    x_kit = next(iter(data.FrameLoader(ds, 8, shuffle=False)))[0]
    x_nb = torch.stack([nb[i][0] for i in range(8)])
    out["max_abs_difference"] = float((x_kit - x_nb).abs().max())  # same windows (fp16: rounding)
    return out
"""


def child(job: str, args: dict) -> dict:
    body = JOBS[job] if job in JOBS else JOBS["notebook"] + THROUGHPUT
    code = CHILD.format(src=str(SRC), args=json.dumps(args)).replace("out = run(args)  # defined below",
                                                                      body + "\nout = run(args)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"{job} failed:\n{p.stdout}\n{p.stderr}")
    line = next(x for x in p.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def machine() -> str:
    import torch

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem = ""
    try:
        kb = int(next(x for x in open("/proc/meminfo") if x.startswith("MemTotal")).split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {cores} cores{mem}, {gpu}; Python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), numpy {__import__('numpy').__version__}")


def sequences(part: Path) -> None:
    """HW3P2 transcripts beside the synthetic frame labels: each run of a phoneme once, in transcript-hw3p2/."""
    import numpy as np

    (part / "transcript-hw3p2").mkdir(exist_ok=True)
    for f in (part / "transcript").iterdir():
        t = np.load(f)
        body = t[1:-1]
        runs = body[np.r_[True, body[1:] != body[:-1]]]
        np.save(part / "transcript-hw3p2" / f.name, np.concatenate([t[:1], runs, t[-1:]]))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--utterances", type=int, default=3000, help="synthetic corpus size in utterances (mean 1,265 frames)")
    p.add_argument("--frames", type=int, default=None, help="synthetic corpus size in frames instead (rounded to utterances)")
    p.add_argument("--features", type=int, default=28, help="feature dimension of the synthetic corpus")
    p.add_argument("--context", type=int, default=30, help="context C (windows of 2C+1 frames)")
    p.add_argument("--batch-size", type=int, default=1024, help="batch size for both loaders")
    p.add_argument("--dtype", choices=["float32", "float16"], default="float32", help="storage dtype of the kit")
    p.add_argument("--batches", type=int, default=150, help="FrameLoader batches to time per round")
    p.add_argument("--notebook-batches", type=int, default=10, help="per-item DataLoader batches to time per round")
    p.add_argument("--rounds", type=int, default=5, help="rounds in which the loaders take turns")
    p.add_argument("--workers", type=int, nargs="*", default=[0], help="num_workers values for the per-item DataLoader")
    p.add_argument("--root", default=None, help="use this existing data (Kaggle layout) instead of a synthetic corpus")
    p.add_argument("--partition", default="train-clean-100", help="partition to load")
    p.add_argument("--workdir", default=None, help="where to write the synthetic corpus and the cache (default: a temp dir)")
    p.add_argument("--task", choices=["frames", "ctc", "both"], default="both",
                   help="which dataset to load: AudioDataset (HW1P2), UtteranceDataset (HW3P2) or both")
    p.add_argument("--no-throughput", dest="throughput", action="store_false",
                   help="skip the loader throughput and the notebook comparison (HW1P2)")
    p.add_argument("--dry-run", action="store_true", help="a tiny corpus and few batches: checks that the script runs")
    a = p.parse_args()
    if a.dry_run:
        a.utterances, a.frames, a.batches, a.notebook_batches, a.rounds = 20, None, 5, 2, 2

    tasks = ["frames", "ctc"] if a.task == "both" else [a.task]
    work = Path(a.workdir or tempfile.mkdtemp(prefix="phonemekit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print("machine:", machine())
    try:
        if a.root:
            root = a.root
        else:
            from phonemekit.synthetic import MEAN_FRAMES, make_corpus

            n = max(1, round(a.frames / MEAN_FRAMES)) if a.frames else a.utterances
            root = work / "corpus"
            shutil.rmtree(root, ignore_errors=True)
            t = time.perf_counter()
            make_corpus(root, n, n_features=a.features, seed=0, n_dev=1, n_test=1,
                        mean_frames=MEAN_FRAMES if not a.dry_run else 50)
            if "ctc" in tasks:
                sequences(root / a.partition)
            print(f"synthetic corpus: {n:,} utterances written in {time.perf_counter() - t:.1f} s")
        cache = work / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        args = {"root": str(root), "partition": a.partition, "context": a.context, "dtype": a.dtype,
                "batch_size": a.batch_size, "batches": a.batches, "notebook_batches": a.notebook_batches,
                "workers": a.workers, "rounds": a.rounds, "verify": "sample"}

        loads = {}
        for task in tasks:
            loads[task] = [child(task, {**args, "cache": None}), child(task, {**args, "cache": str(cache)}),
                           child(task, {**args, "cache": str(cache)}),
                           child(task, {**args, "cache": str(cache), "verify": "full"})]
        if a.throughput and "frames" in tasks:
            nb = child("notebook", {**args, "cache": None})
            rates = child("throughput", {**args, "cache": None})
    finally:
        if not a.workdir:
            shutil.rmtree(work, ignore_errors=True)

    gib = 2**30
    for task, (first, first_cached, reload, full) in loads.items():
        print(f"\n{task} ({'AudioDataset, context ' + str(a.context) if task == 'frames' else 'UtteranceDataset'}): "
              f"{first['utterances']:,} utterances, {first['frames']:,} frames, F={first['features']}, "
              f"{a.dtype} storage: arrays {first['nbytes'] / gib:.3f} GiB")
        rows = [("first load, no cache", first), ("first load, writing the cache", first_cached),
                ("cached reload (memory-mapped)", reload), ("cached reload, cache_verify='full'", full)]
        if task == "frames" and a.throughput:
            rows.append(("notebook Dataset (list + concatenate)", nb))
        print(f"{'load':40s} {'seconds':>9s} {'peak RSS / arrays':>18s}")
        for name, r in rows:
            print(f"{name:40s} {r['seconds']:9.2f} {r['peak_above_base'] / r.get('nbytes', first['nbytes']):17.2f}x")
        extra = full["seconds"] - reload["seconds"]
        print(f"reload speed-up: {first_cached['seconds'] / reload['seconds']:.0f}x over the first load "
              f"(target >= 10x; reload memory-mapped: {reload['mapped']}); checking every block: "
              f"{extra:+.2f} s ({first['nbytes'] / gib / max(extra, 1e-9):.1f} GiB/s)")
        print(f"peak memory while loading: {first['peak_above_base'] / first['nbytes']:.2f}x the arrays (target <= 1.25x)")
    if not (a.throughput and "frames" in tasks):
        return
    print()
    print(f"{'loader (batch ' + str(a.batch_size) + ', context ' + str(a.context) + ')':40s} "
          f"{'batches/s best':>15s} {'median':>8s} {'ratio best':>11s} {'median':>7s}")
    kit = rates["kit"]
    print(f"{'FrameLoader':40s} {kit['best']:15.1f} {kit['median']:8.1f}")
    for w in a.workers:
        r = rates[f"notebook_w{w}"]
        print(f"{'per-item DataLoader, num_workers=' + str(w):40s} {r['best']:15.1f} {r['median']:8.1f} "
              f"{kit['best'] / r['best']:10.1f}x {kit['median'] / r['median']:6.1f}x")
    print(f"FrameLoader vs per-item DataLoader: {kit['best'] / rates['notebook_w0']['best']:.0f}x "
          f"(median {kit['median'] / rates['notebook_w0']['median']:.0f}x; target >= 20x); "
          f"same windows: max |difference| {rates['max_abs_difference']:.2g}")


if __name__ == "__main__":
    main()
