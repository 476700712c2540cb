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


def frames_configs(params: int) -> dict:
    """The kit's strong recipe (and variants) solved to `params` parameters."""
    strong = load_recipe("strong").to_dict()
    for k in ("root", "checkpoint_dir", "epochs", "seed", "device", "amp", "log_every", "wandb_mode"):
        strong.pop(k, None)
    strong.update(budget=params, param_limit=None)
    mask = dict(freq_masks=1, freq_mask_width=4, time_masks=1, time_mask_width=4, mask_prob=0.5)
    return {
        "student": dict(STUDENT_FRAMES),
        "strong": strong,
        "strong+mask": {**strong, **mask},
        "strong+mask+noise": {**strong, **mask, "noise_std": 0.1, "noise_prob": 0.5},
        "strong+mask, batch 1024": {**strong, **mask, "batch_size": 1024},
        "strong+mask, warm-up 1": {**strong, **mask, "warmup_epochs": 1},
        "strong+mixup": {**strong, "mixup_alpha": 0.2},
        "strong+mask+ema": {**strong, **mask, "ema_decay": 0.999},
    }


# ---- HW3P2 -------------------------------------------------------------------------------------

STARTER_CTC = dict(task="ctc", conv_channels=128, conv_layers=1, conv_kernel=3, conv_stride=1, conv_residual=False,
                   lstm_hidden=112, lstm_layers=0, pyramid=2, locked_dropout=0.0, head=[], dropout=0.1,
                   optimizer="adamw", lr=2e-3, weight_decay=1e-2, scheduler="cosine", batch_size=16, grad_clip=None)


def ctc_configs(params: int) -> dict:
    demo = load_recipe("ctc-demo").to_dict()
    for k in ("root", "checkpoint_dir", "epochs", "seed", "device", "amp", "log_every", "wandb_mode"):
        demo.pop(k, None)
    mask = dict(freq_masks=1, freq_mask_width=4, time_masks=2, time_mask_width=10, mask_prob=0.7)
    return {
        "starter": dict(STARTER_CTC),
        "ctc-demo": demo,
        "ctc-demo+mask": {**demo, **mask},
        "ctc-demo+mask+headnorm": {**demo, **mask, "head_norm": "batch"},
        "ctc-demo+mask+noise": {**demo, **mask, "noise_std": 0.1},
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
    return {"best": result.best, "seconds_per_epoch": (time.perf_counter() - t0) / len(result.history),
            "metric": result.metric}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="the corpus (train-clean-100/, dev-clean/)")
    p.add_argument("--task", choices=("frames", "ctc"), default="frames")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--configs", nargs="+", help="which named configs (default: all of the task's)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from phonemekit.corpus import n_features

    f = n_features(args.root)
    base = STUDENT_FRAMES if args.task == "frames" else STARTER_CTC
    target = parameters(base, args.root, f)
    table = (frames_configs if args.task == "frames" else ctc_configs)(target)
    names = args.configs or list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise SystemExit(f"unknown config(s) {unknown}; choose from {list(table)}")
    print(f"corpus {args.root}, {f} features; {args.task}; {args.epochs} epochs; seeds {args.seeds}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; baseline {target:,} parameters")
    data_cache = {}
    rows = []
    with tempfile.TemporaryDirectory(prefix="phonemekit-recipes-") as tmp:
        for name in names:
            settings = table[name]
            params = parameters(settings, args.root, f)
            config = Config(**{**settings, "root": args.root, "param_limit": None, "device": "cpu"})
            key = (config.context if args.task == "frames" else 0, config.normalize)
            if key not in data_cache:
                data_cache = {key: task_of(config).datasets(config, torch.device("cpu"))}  # one pair in memory
            scores, secs = [], []
            for seed in args.seeds:
                r = train_one(settings, args.root, args.epochs, seed, data_cache[key], Path(tmp) / name.replace(" ", "_"))
                scores.append(r["best"])
                secs.append(r["seconds_per_epoch"])
                print(f"  {name} seed {seed}: {r['metric']} {r['best']:.4f} ({r['seconds_per_epoch']:.1f} s/epoch)",
                      flush=True)
            sd = statistics.stdev(scores) if len(scores) > 1 else 0.0
            rows.append((name, params, statistics.mean(scores), sd, statistics.mean(secs), r["metric"]))
    print()
    print(f"| config | parameters | dev {'accuracy' if args.task == 'frames' else 'distance'} (mean ± sd, "
          f"{len(args.seeds)} seeds) | s/epoch |")
    print("|---|---|---|---|")
    for name, params, mean, sd, sec, metric in rows:
        shown = f"{mean:.2%} ± {sd:.2%}" if metric == "val_acc" else f"{mean:.2f} ± {sd:.2f}"
        print(f"| {name} | {params:,} | {shown} | {sec:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
