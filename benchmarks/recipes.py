"""Recipes chosen by measurement: named configs at equal parameters and epochs, over seeds, in one table.

    python3 benchmarks/recipes.py --root CORPUS --task frames --epochs 4 --seeds 0 1 2
    python3 benchmarks/recipes.py --root CORPUS --task ctc --epochs 15 --seeds 0 1 2 --configs starter ctc-demo

CORPUS: a corpus the kit has never seen, larger than the demo, e.g. made with
`python3 tools/make_demo_corpus.py --out CORPUS --train 1200 --dev 150 --test 150` (other voices for
dev and test than for train). Kept out of the repository.

The baselines are re-implementations of the best public student recipes, written here from their
published settings (not from the kit's recipes):
- HW1P2 "student": context 30, 1024-1024-1024-768-512 GELU with BatchNorm, dropout 0.2, AdamW lr 2e-3
  weight decay 1e-2, one-cycle, label smoothing 0.1, batch 1024.
- HW3P2 "starter": the course starter's shape, a Conv1d embedding then two pyramidal BiLSTMs (each
  halving time) and a linear classifier, AdamW, cosine.
Every other config is a kit recipe sized to the baseline's parameter count (within a few percent),
trained for the same epochs. Printed: one row per config, mean +- sd over the seeds of the best dev
score (what best.pt holds), the parameters, and the seconds per epoch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from phonemekit.config import Config, load_recipe  # noqa: E402
from phonemekit.model import count_params  # noqa: E402
from phonemekit.task import task_of  # noqa: E402
from phonemekit.train import fit, make_model  # noqa: E402

# ---- HW1P2 -------------------------------------------------------------------------------------

STUDENT_FRAMES = dict(task="frames", context=30, hidden=[1024, 1024, 1024, 768, 512], activation="gelu",
                      norm="before", dropout=0.2, optimizer="adamw", lr=2e-3, weight_decay=1e-2,
                      scheduler="onecycle", label_smoothing=0.1, batch_size=1024)


def student_frames(width: float = 1.0) -> dict:
    """The student recipe, its hidden widths scaled by `width` (1: as published, 5.06M parameters)."""
    return {**STUDENT_FRAMES, "hidden": [max(1, round(h * width)) for h in STUDENT_FRAMES["hidden"]]}


def recipe_settings(name: str) -> dict:
    """A shipped recipe's model and training settings, without what each run sets itself."""
    settings = load_recipe(name).to_dict()
    for k in ("root", "checkpoint_dir", "epochs", "seed", "device", "amp", "log_every", "wandb_mode"):
        settings.pop(k, None)
    return settings


def frames_configs(params: int, student: dict | None = None) -> dict:
    """The student recipe, and the kit's strong recipe (and variants of it) solved to `params` parameters."""
    strong = {**recipe_settings("strong"), "budget": params, "param_limit": None}
    bare = {"freq_masks": 0, "time_masks": 0}  # strong without its masks
    old = {"dropout": 0.2, "batch_size": 2048}  # strong until this table chose otherwise
    return {
        "student": dict(student or STUDENT_FRAMES),
        "strong": strong,
        "strong, no masks": {**strong, **bare},
        "strong, no masks, dropout 0.2, batch 2048 (before)": {**strong, **bare, **old},
        "strong, dropout 0.2, batch 2048": {**strong, **old},
        "strong, no masks, dropout 0.2": {**strong, **bare, "dropout": 0.2},
        "strong, no masks, dropout 0.2, pyramid": {**strong, **bare, "dropout": 0.2, "shape": "pyramid"},
        "strong, no masks, batch 512": {**strong, **bare, "batch_size": 512},
        "strong, no masks, lr 4e-3": {**strong, **bare, "lr": 4e-3},
        "strong, no masks, one-cycle": {**strong, **bare, "scheduler": "onecycle", "warmup_epochs": 0},
        "strong, no masks, no warm-up": {**strong, **bare, "warmup_epochs": 0},
        "strong, noise instead of masks": {**strong, **bare, "noise_std": 0.1, "noise_prob": 0.5},
        "strong, mixup instead of masks": {**strong, **bare, "mixup_alpha": 0.2},
        "strong, no masks, +EMA": {**strong, **bare, "ema_decay": 0.999},
    }


# ---- HW3P2 -------------------------------------------------------------------------------------

STARTER_CTC = dict(task="ctc", conv_channels=128, conv_layers=1, conv_kernel=3, conv_stride=1, conv_residual=False,
                   lstm_hidden=112, lstm_layers=0, pyramid=2, locked_dropout=0.0, head=[], dropout=0.1,
                   optimizer="adamw", lr=2e-3, weight_decay=1e-2, scheduler="cosine", batch_size=16, grad_clip=None)


def ctc_configs(params: int) -> dict:
    """The starter-style model, and the kit's ctc-demo (and variants of it); all near `params` parameters."""
    demo = recipe_settings("ctc-demo")
    mask = dict(freq_masks=1, freq_mask_width=4, time_masks=2, time_mask_width=10, mask_prob=0.7)
    before = {"head_norm": "none"}  # ctc-demo until this table chose otherwise
    return {
        "starter": dict(STARTER_CTC),
        "ctc-demo": demo,
        "ctc-demo, no head norm (before)": {**demo, **before},
        "ctc-demo, no head norm, +mask": {**demo, **before, **mask},
        "ctc-demo+mask": {**demo, **mask},
        "ctc-demo+noise": {**demo, "noise_std": 0.1},
    }


# ---- running -----------------------------------------------------------------------------------


def parameters(settings: dict, root: str, n_features: int) -> int:
    config = Config(**{**settings, "root": root, "param_limit": None})
    task = task_of(config)
    meta = (2 * config.context + 1) * n_features if task.inputs == 1 else n_features
    with torch.device("meta"):
        return count_params(make_model(config, meta))


def train_one(settings: dict, root: str, epochs: int, seed: int, datasets, workdir: Path) -> dict:
    config = Config(**{**settings, "root": root, "epochs": epochs, "seed": seed, "device": "cpu", "amp": "off",
                       "checkpoint_dir": str(workdir), "log_every": 50, "param_limit": None,
                       "wandb_mode": "disabled"})
    t0 = time.perf_counter()
    result = fit(config, datasets=datasets, progress=False, verbose=False, overwrite=True)
    return {"best": result.best, "best_epoch": result.best_epoch,
            "seconds_per_epoch": (time.perf_counter() - t0) / len(result.history), "metric": result.metric,
            "curve": [float(v) for v in result.history[result.metric]]}


def print_table(runs: list[dict], task: str, names=None) -> None:
    """One row per config (in the order given, else first seen): mean +- sd over its seeds."""
    order = list(names or dict.fromkeys(r["config"] for r in runs))
    print(f"| config | parameters | dev {'accuracy' if task == 'frames' else 'distance'} (mean ± sd) | seeds "
          f"| epochs | s/epoch |")
    print("|---|---|---|---|---|---|")
    for name in order:
        mine = [r for r in runs if r["config"] == name]
        if not mine:
            continue
        scores = [r["best"] for r in mine]
        mean = statistics.mean(scores)
        sd = statistics.stdev(scores) if len(scores) > 1 else 0.0
        shown = f"{mean:.2%} ± {sd:.2%}" if mine[0]["metric"] == "val_acc" else f"{mean:.2f} ± {sd:.2f}"
        epochs = sorted({r["epochs"] for r in mine})
        print(f"| {name} | {mine[0]['parameters']:,} | {shown} | {len(mine)} | {'/'.join(map(str, epochs))} "
              f"| {statistics.mean(r['seconds_per_epoch'] for r in mine):.1f} |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="the corpus (train-clean-100/, dev-clean/)")
    p.add_argument("--task", choices=("frames", "ctc"), default="frames")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--configs", nargs="+", help="which named configs (default: all of the task's)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--out", help="also append each run to this JSON-lines file (runs split over processes "
                                 "or machines: give each the same file, then --table)")
    p.add_argument("--table", metavar="JSONL", help="print the table of the runs in this file and exit")
    p.add_argument("--width", type=float, default=1.0,
                   help="HW1P2: scale the student's hidden widths by this (every config follows its parameter "
                        "count), to fit a CPU; default 1 (5.06M parameters)")
    args = p.parse_args(argv)
    if args.table:
        runs = [json.loads(line) for line in Path(args.table).read_text().splitlines() if line.strip()]
        print_table(runs, task=args.task, names=args.configs)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    from phonemekit.corpus import n_features

    f = n_features(args.root)
    base = student_frames(args.width) if args.task == "frames" else STARTER_CTC
    target = parameters(base, args.root, f)
    table = frames_configs(target, base) if args.task == "frames" else ctc_configs(target)
    names = args.configs or list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise SystemExit(f"unknown config(s) {unknown}; choose from {list(table)}")
    print(f"corpus {args.root}, {f} features; {args.task}; {args.epochs} epochs; seeds {args.seeds}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; baseline {target:,} parameters"
          + (f" (student widths x{args.width})" if args.task == "frames" and args.width != 1.0 else ""))
    data_cache = {}
    runs = []
    with tempfile.TemporaryDirectory(prefix="phonemekit-recipes-") as tmp:
        for name in names:
            settings = table[name]
            params = parameters(settings, args.root, f)
            config = Config(**{**settings, "root": args.root, "param_limit": None, "device": "cpu"})
            key = (config.context if args.task == "frames" else 0, config.normalize)
            if key not in data_cache:
                data_cache = {key: task_of(config).datasets(config, torch.device("cpu"))}  # one pair in memory
            for seed in args.seeds:
                r = train_one(settings, args.root, args.epochs, seed, data_cache[key], Path(tmp) / name.replace(" ", "_"))
                run = {"config": name, "seed": seed, "epochs": args.epochs, "parameters": params, **r}
                runs.append(run)
                if args.out:
                    with open(args.out, "a") as fh:
                        fh.write(json.dumps(run) + "\n")
                print(f"  {name} seed {seed}: {r['metric']} {r['best']:.4f} ({r['seconds_per_epoch']:.1f} s/epoch)",
                      flush=True)
    print()
    print_table(runs, task=args.task, names=names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
