"""Training: one loop for both homeworks, readable top to bottom.

    from phonemekit.train import fit
    from phonemekit.config import load_recipe
    result = fit(load_recipe("strong"))             # or fit(Config(context=20, hidden=[512]))
    result.history                                   # one row per epoch (a pandas DataFrame)
    fit(config, resume=True)                         # continue from checkpoint_dir/last.pt
    fit(config, model=Network())                     # your own nn.Module, the kit's loop

fit() builds the pieces, resumes, then for each epoch: train, validate, fire the callbacks,
checkpoint. The loop knows no homework: everything that differs between HW1P2 (a class per
frame, phonemekit.frames) and HW3P2 (a phoneme sequence per utterance, CTC, phonemekit.ctc)
is a step of their Task (phonemekit.task): data, model, loss, validation. The lr is a function of the
step (phonemekit.schedule), weight averaging and logging are callbacks (phonemekit.averaging,
WandbCallback), the checkpoint format is phonemekit.checkpoint's.

The loop is written for speed as much as for reading: the data sit on the GPU (FrameLoader),
loss and accuracy are summed on the device, and the loop itself waits for the GPU only every
`log_every` steps (to update the progress bar and to check that the loss is still finite)
and at the end of an epoch. (HW3P2's loss reads the batch's lengths on the host: its LSTMs'
packing needs them there anyway, so CTC steps sync every step.)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from tqdm.auto import tqdm

from . import checkpoint, distributed, schedule
from .averaging import averaging_callbacks
from .checkpoint import load_checkpoint, make_model, seed_everything  # noqa: F401  (the public names)
from .corpus import make_dir
from .config import (  # noqa: F401  (phonemekit.train.Config etc. keep working)
    AMP_MODES, OPTIMIZERS, SCHEDULERS, Config, apply_overrides, load_recipe, recipes,
)
from .device import autocast, resolve_amp, resolve_device, storage_dtype, tf32, use_idle_cores  # noqa: F401
from .frames import (  # noqa: F401  (HW1P2's steps, importable from here as before)
    class_weights, evaluate, evaluate_frames, frame_loss, frame_meta, make_datasets, make_loaders,
)
from .callbacks import (  # noqa: F401  (importable from here as before)
    EpochPrinter, FunctionCallbacks, WandbCallback, as_callbacks, default_progress, rate, wandb_callbacks,
    wandb_has_key,
)
from .task import Task, format_score, get_task, task_of  # noqa: F401

_fmt = format_score

# --------------------------------------------------------------------------------------------
# One epoch of training


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or Inf."""


def make_optimizer(config: Config, model: torch.nn.Module) -> torch.optim.Optimizer:
    params, name, lr, wd = list(model.parameters()), config.optimizer, config.lr, config.weight_decay
    # fused Adam(W) on a GPU: one kernel per step, and GradScaler needs no host sync with it
    fused = {"fused": True} if params and all(p.is_cuda for p in params) else {}
    if name in ("sgd", "nesterov"):
        return torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=wd,
                               nesterov=name == "nesterov" and config.momentum > 0)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=config.momentum, weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, **fused)
    return torch.optim.AdamW(params, lr=lr, weight_decay=wd, **fused)


def load_optimizer_state(optimizer, saved: dict, saved_config: dict, config: Config, verbose: bool = True) -> None:
    """The saved moments and step counts, under this run's settings: lr, weight decay, momentum and
    the fused flag come from the config and this device, never from the file (a checkpoint written
    on a CPU resumes on a GPU with fused AdamW and a GradScaler)."""
    if saved_config.get("optimizer", config.optimizer) != config.optimizer:
        if verbose:
            print(f"phonemekit: optimizer changed from {saved_config['optimizer']} to {config.optimizer}: "
                  "its state (momentum, moments) starts fresh")
        return
    groups = [{**old, **{k: v for k, v in new.items() if k != "params"}}
              for old, new in zip(saved["param_groups"], optimizer.state_dict()["param_groups"])]
    optimizer.load_state_dict({"state": saved["state"], "param_groups": groups})


def train_epoch(model, loader, optimizer, scaler=None, amp_dtype=None, *, loss_fn=None, config=None,
                lr_at=None, grad_clip: float | None = None, augment=None, log_every: int = 100, epoch: int = 1,
                progress: bool = False, on_step=None, unit: str = "items") -> dict:
    """One pass over `loader` in train mode. Returns train_loss, train_acc (None when the task
    counts no correct items), lr, count, seconds.

    loss_fn(model, batch, config, amp_dtype) -> (mean loss, count, correct or None); default:
    cross-entropy on frame batches. lr_at(step, steps) -> the lr for that batch (set on the
    optimizer before it). scaler: a GradScaler for fp16. augment(*batch) -> batch transforms each
    training batch on its device. on_step() runs after every optimizer step (the EMA of the
    weights). Raises NonFiniteLossError when the loss is NaN/Inf.
    """
    model.train()
    device = next(model.parameters()).device
    loss_fn = loss_fn or frame_loss
    config = config or Config()
    loss_sum = torch.zeros((), device=device)  # summed on the device: no sync per step
    correct = torch.zeros((), dtype=torch.long, device=device)
    count, steps, counted, t0 = 0, len(loader), False, time.perf_counter()
    bar = tqdm(total=steps, desc=f"epoch {epoch}", leave=False, disable=not progress, dynamic_ncols=True)
    lr = optimizer.param_groups[0]["lr"]
    with tf32():
        for step, batch in enumerate(loader):
            if lr_at is not None:
                lr = lr_at(step, steps)
                for g in optimizer.param_groups:
                    g["lr"] = lr
            batch = tuple(t.to(device, non_blocking=True) for t in batch)
            if augment is not None:
                batch = augment(*batch)
            loss, n, right = loss_fn(model, batch, config, amp_dtype)
            optimizer.zero_grad(set_to_none=True)
            _backward_step(loss, model, optimizer, scaler, grad_clip)
            if on_step is not None:
                on_step()
            loss_sum += loss.detach() * n
            if right is not None:
                correct += right
                counted = True
            count += n
            bar.update()
            if (step + 1) % log_every == 0 or step + 1 == steps:
                running = loss_sum.item() / count  # the only host sync: every log_every steps
                if not math.isfinite(running):
                    bar.close()
                    raise NonFiniteLossError(
                        f"the training loss became {running} in epoch {epoch}, by step {step + 1} of {steps} "
                        f"(checked every log_every={log_every} steps). Stopped instead of training on garbage; "
                        f"the checkpoint of the last complete epoch is kept. Try a lower lr (now {lr:.3g}), "
                        f"amp='off' for full fp32 (now {amp_dtype or 'off'}), grad_clip=1.0 (now {grad_clip}), "
                        "and check the features for NaN.")
                bar.set_postfix(loss=f"{running:.4f}", lr=f"{lr:.2e}",
                                **({"acc": f"{correct.item() / count:.2%}"} if counted else {}))
    bar.close()
    if count == 0:
        raise ValueError(f"the training loader gave no batch ({len(loader.dataset)} {unit}, "
                         f"batch_size={loader.batch_size})")
    return {"train_loss": loss_sum.item() / count, "train_acc": correct.item() / count if counted else None,
            "lr": lr, "count": count, "seconds": time.perf_counter() - t0}


def _backward_step(loss, model, optimizer, scaler, grad_clip):
    if scaler is not None:
        scaler.scale(loss).backward()
        if grad_clip:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()


# --------------------------------------------------------------------------------------------
# The run: everything fit() builds, in one place


@dataclass
class FitResult:
    model: torch.nn.Module  # the model after the last epoch (best.pt holds the best one)
    history: pd.DataFrame
    best: float  # the best validation score (metric), at best_epoch
    best_epoch: int
    config: Config
    checkpoint_dir: Path
    metric: str = "val_acc"
    stopped_early: bool = False
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    # {"avg" | "ema" | "swa": model} after the last epoch, for the averaging switched on
    # (avg.pt, ema.pt, swa.pt hold each one at its best epoch)
    averaged: dict = field(default_factory=dict)

    @property
    def best_val_acc(self) -> float:
        """HW1P2's name for `best`: an accuracy only (an HW3P2 run's best is a distance, in .best)."""
        return _accuracy_only(self.metric, self.best)


def _accuracy_only(metric: str, best):
    if metric != "val_acc":
        raise AttributeError(f"best_val_acc is the best dev accuracy, and this run scores {metric}: read .best "
                             f"({format_score(metric, best)}) and .metric")
    return best


@dataclass
class Run:
    config: Config
    task: Task
    device: torch.device
    amp_dtype: torch.dtype | None
    ddp: object
    model: torch.nn.Module
    step_model: torch.nn.Module  # compiled / DDP-wrapped for training steps
    eval_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: object
    train_loader: object
    val_loader: object
    meta: dict
    dir: Path
    loss: Callable
    augment: Callable | None
    callbacks: list
    verbose: bool
    progress: bool
    history: list = field(default_factory=list)
    epoch: int = 0  # epochs complete
    best: float | None = None
    best_epoch: int = 0
    stopped: str | None = None  # why the run stopped early: "patience" | "callback" | None
    metrics: dict | None = None
    stop: bool = False  # a callback sets this to end training after the epoch
    wandb_id: str | None = None
    unsaved: bool = False  # a complete epoch not yet in last.pt

    @property
    def main(self) -> bool:  # the process that writes files and prints
        return self.ddp is None or self.ddp.rank == 0

    @property
    def best_val_acc(self):  # what callbacks written for HW1P2 read; an accuracy only
        return _accuracy_only(self.task.metric, self.best)

    def improves(self, score: float) -> bool:
        return self.task.better(score, self.best)

    def validate(self, model) -> dict:
        """The task's validation scores; over all processes' shards when distributed."""
        scores = self.task.evaluate(model, self.val_loader, self.config)
        return distributed.mean_over_processes(scores, self.val_loader, self.ddp)

    def on_step(self):
        """One call for the callbacks that act after every optimizer step (the EMA), or None:
        the training step then pays nothing for callbacks that do not."""
        fns = [cb.on_step for cb in self.callbacks if getattr(cb, "on_step", None) is not None]
        return (lambda: [fn(self) for fn in fns]) if fns else None

    def lr_at(self, epoch: int):
        return lambda step, steps: schedule.lr_at(self.config, epoch, step, steps, self.history, self.task.metric)

    def state(self, rng_ranks=None) -> dict:
        """last.pt: the model and everything a resume needs."""
        return {**self.meta, "epoch": self.epoch, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "best": self.best, "best_epoch": self.best_epoch, "metric": self.task.metric,
                "stopped_early": bool(self.stopped), "stop_reason": self.stopped,
                "history": pd.DataFrame(self.history).to_dict("list"),
                "rng": checkpoint.rng_state(self.device), "rng_ranks": rng_ranks, "wandb_id": self.wandb_id,
                "callbacks": {cb.name: cb.state_dict() for cb in self.callbacks if hasattr(cb, "state_dict")}}

    def result(self) -> FitResult:
        averaged = {cb.name: cb.averaged().eval() for cb in self.callbacks
                    if hasattr(cb, "averaged") and cb.averaged() is not None}
        return FitResult(model=self.model, history=pd.DataFrame(self.history), best=self.best,
                         best_epoch=self.best_epoch, config=self.config, checkpoint_dir=self.dir,
                         metric=self.task.metric, stopped_early=bool(self.stopped), device=self.device,
                         averaged=averaged)


def fire(run: Run, event: str) -> None:
    for cb in run.callbacks:
        fn = getattr(cb, event, None)
        if fn is not None:
            fn(run)


# --------------------------------------------------------------------------------------------
# fit


def fit(config: Config, resume=False, callbacks=None, *, model: torch.nn.Module | None = None, augment=None,
        datasets=None, progress: bool | None = None, verbose: bool = True, overwrite: bool = False) -> FitResult:
    """Train and validate every epoch; checkpoint to config.checkpoint_dir (last.pt, best.pt).

    resume: True continues from checkpoint_dir/last.pt (a fresh run when there is none), a path
    continues from that file; training goes on up to config.epochs, under the settings of
    `config` (a changed lr, schedule or epoch count takes effect; a changed model is an error).
    A checkpoint_dir that already holds a run is refused unless you resume it or pass
    overwrite=True (which deletes that run's checkpoints first): one forgotten flag never
    replaces a finished run's best.pt.
    callbacks: objects with any of on_fit_start(run), on_step(run), on_epoch_end(run),
    on_fit_end(run), or a dict {"on_epoch_end": fn or [fn, ...], ...}; run.metrics is the epoch's
    history row, and setting run.stop = True ends training after that epoch.
    model: your own nn.Module instead of the config's (frames: (B, 2C+1, F) windows, or their
    flattened form, to num_classes logits); it trains, checkpoints and resumes the same way.
    augment: a transform of every training batch; None: the config's (phonemekit.augment);
    False: none. datasets: (train, val) already built. progress: tqdm bars; None: on a terminal
    or in a notebook, off when the output goes to a file (one line per epoch either way).
    Under torchrun each process trains on its shard (phonemekit.distributed); Ctrl-C keeps the
    last complete epoch in last.pt and raises again.
    """
    config = config if isinstance(config, Config) else Config.from_dict(config)
    ddp = distributed.setup(config.device)
    try:
        run = build_run(config, ddp, model, datasets, augment, callbacks, progress, verbose)
        with checkpoint.lock(run.dir, enabled=run.main):
            if run.main:
                checkpoint.guard_run_folder(run.dir, resume, overwrite, run.verbose)
            if resume:
                restore(run, resume)
            if run.stopped or run.epoch >= config.epochs:
                if run.verbose:
                    why = "stopped early" if run.stopped else f"reached epochs={config.epochs}"
                    print(f"phonemekit: the run in {run.dir} already {why}; raise `epochs` to train on")
                return run.result()
            fire(run, "on_fit_start")
            try:
                for epoch in range(run.epoch, config.epochs):
                    t0 = time.perf_counter()
                    run.train_loader.set_epoch(epoch)  # the order depends only on (seed, epoch)
                    m = train_epoch(run.step_model, run.train_loader, run.optimizer, run.scaler, run.amp_dtype,
                                    loss_fn=run.loss, config=config, lr_at=run.lr_at(epoch),
                                    grad_clip=config.grad_clip, augment=run.augment, log_every=config.log_every,
                                    epoch=epoch + 1, progress=run.progress, unit=run.task.unit,
                                    on_step=run.on_step())
                    m = distributed.reduce_epoch(m, run.model, run.ddp)
                    row = {"epoch": epoch + 1, "train_loss": m["train_loss"], "train_acc": m["train_acc"],
                           **run.validate(run.eval_model), "lr": m["lr"], "epoch_time": 0.0,
                           f"{run.task.unit}_per_s": m["count"] / m["seconds"]}
                    if m["train_acc"] is None:
                        del row["train_acc"]
                    improved = run.improves(row[run.task.metric])
                    if improved:
                        run.best, run.best_epoch = row[run.task.metric], epoch + 1
                    run.epoch, run.metrics, run.unsaved = epoch + 1, row, True
                    run.history.append(row)
                    row["epoch_time"] = time.perf_counter() - t0
                    fire(run, "on_epoch_end")  # averaging adds its columns, then the log lines
                    run.stopped = stop_reason(run)
                    save_epoch(run, improved)
                    if run.stopped:
                        break
            except KeyboardInterrupt:
                if run.unsaved and run.main:  # interrupted between the end of an epoch and its checkpoint
                    checkpoint.save(run.state(), run.dir / "last.pt")
                if run.main:
                    print(f"phonemekit: interrupted; {run.dir / 'last.pt'} holds epoch {run.epoch}. "
                          "Continue with fit(config, resume=True).")
                raise
            finally:
                fire(run, "on_fit_end")
        return run.result()
    finally:
        distributed.cleanup(ddp)


def build_run(config, ddp, model, datasets, augment, callbacks, progress, verbose) -> Run:
    """Data, model, optimiser, precision and callbacks, as the config describes them."""
    main = ddp is None or ddp.rank == 0
    device = ddp.device if ddp is not None else resolve_device(config.device)
    amp_dtype = resolve_amp(config.amp, device)
    task = task_of(config)
    task.check_config(config)
    if ddp is None:
        use_idle_cores(device, verbose=verbose)
    seed_everything(config.seed)
    train_ds, val_ds = datasets if datasets is not None else task.datasets(config, device)
    train_loader, val_loader = task.loaders(config, train_ds, val_ds, device)
    distributed.shard(train_loader, ddp)  # each process sees its own shard of every epoch
    distributed.shard(val_loader, ddp)
    meta = {**task.meta(train_ds), "format": checkpoint.FORMAT, "task": config.task, "config": config.to_dict(),
            "torch_version": str(torch.__version__)}
    model = own_model(model, config, meta, train_loader) if model is not None else make_model(config, meta)
    task.before_training(model, train_ds, val_ds, config, verbose and main)
    model = model.to(device)  # the same seed: the same weights in every process
    if ddp is not None and ddp.rank > 0:
        seed_everything(config.seed + ddp.rank)  # but each process its own dropout masks and augmentation
    step_model = distributed.wrap(model, ddp)
    if config.compile:
        step_model = torch.compile(step_model)
    loss = task.loss(config, train_ds, device)
    augment = task.augment(config) if augment is None else (augment or None)
    ckpt_dir = Path(config.checkpoint_dir).expanduser()
    make_dir(ckpt_dir, "checkpoint_dir")
    progress = default_progress() if progress is None else progress
    run = Run(config=config, task=task, device=device, amp_dtype=amp_dtype, ddp=ddp, model=model,
              step_model=step_model, eval_model=model if ddp is not None else step_model,
              optimizer=make_optimizer(config, model),
              scaler=torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None,
              train_loader=train_loader, val_loader=val_loader, meta=meta, dir=ckpt_dir, loss=loss,
              augment=augment, callbacks=[], verbose=verbose and main, progress=progress and main)
    run.callbacks = averaging_callbacks(config, run) + (
        [EpochPrinter(), *wandb_callbacks(config), *as_callbacks(callbacks)] if main else [])
    return run


def own_model(model: torch.nn.Module, config: Config, meta: dict, loader) -> torch.nn.Module:
    """A student's own network: checked against its task's contract (what forward must return)
    and the budget before the first step; wrapped when the task needs it."""
    from .model import check_budget

    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model= takes your network, an nn.Module; got a {type(model).__name__}")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"your model {type(model).__name__} has no trainable parameters: build its layers in "
                         "__init__ (self.layer = nn.Linear(...)) so that the optimizer finds them")
    meta["custom_model"] = f"{type(model).__module__}.{type(model).__qualname__}"
    model = task_of(config).own_model(model, config, meta, loader)
    if config.param_limit:
        check_budget(model, budget=config.param_limit)
    return model


def restore(run: Run, resume) -> None:
    """Continue from a checkpoint: weights, optimizer moments, history, random state, callbacks."""
    path = find_resume(resume, run.dir, run.main)  # said even when quiet: a typo in the folder shows here
    if path is None:
        return
    ckpt = checkpoint.read(path, run.device)
    saved_task = task_of(ckpt)
    if saved_task is not run.task:
        raise ValueError(f"{path} is an {saved_task.homework} run (task={saved_task.name!r}) and this config trains "
                         f"task={run.config.task!r}: use another checkpoint_dir")
    changed = [f"{k}: {ckpt['config'].get(k)!r} -> {getattr(run.config, k)!r}" for k in run.task.model_settings
               if k in ckpt["config"] and ckpt["config"][k] != getattr(run.config, k)]
    if changed:
        raise ValueError(f"{path} holds another model than this config builds ({'; '.join(changed)}): resume with "
                         "the settings it was trained with, or train the new model in a new checkpoint_dir")
    explain_changes(ckpt["config"], run.config, path, run.verbose)
    checkpoint.load_weights(run.model, ckpt["model"], path)
    load_optimizer_state(run.optimizer, ckpt["optimizer"], ckpt["config"], run.config, run.verbose)
    if run.scaler is not None and ckpt.get("scaler") is not None:
        run.scaler.load_state_dict(ckpt["scaler"])
    run.epoch, run.wandb_id = ckpt["epoch"], ckpt.get("wandb_id")
    run.best, run.best_epoch = checkpoint.best_in_history(ckpt)
    run.history = pd.DataFrame(ckpt["history"]).to_dict("records")
    reason = ckpt.get("stop_reason") or ("patience" if ckpt.get("stopped_early") else None)
    run.stopped = stop_reason(run) if reason == "patience" else reason  # a changed patience takes effect
    checkpoint.set_rng_state(distributed.rank_rng(ckpt, run.ddp), run.device)
    for cb in run.callbacks:
        if hasattr(cb, "load_state_dict"):
            cb.load_state_dict((ckpt.get("callbacks") or {}).get(cb.name), run)
    if run.main:
        checkpoint.repair_best(run.dir, ckpt, run.verbose)
    if run.verbose:
        print(f"phonemekit: resuming from {path} after epoch {run.epoch} (best {run.task.metric} "
              f"{_fmt(run.task.metric, run.best)} at epoch {run.best_epoch})")


def stop_reason(run: Run) -> str | None:
    if run.stop:
        return "callback"
    p = run.config.patience
    if p and run.epoch - run.best_epoch >= p:
        if run.verbose and run.metrics is not None:
            print(f"phonemekit: early stop after epoch {run.epoch}: no better {run.task.metric} for {p} epochs "
                  f"(best {_fmt(run.task.metric, run.best)} at epoch {run.best_epoch})")
        return "patience"
    return None


def save_epoch(run: Run, improved: bool) -> None:
    """last.pt after every epoch, best.pt a copy of it when the epoch was the best so far."""
    run.stopped = distributed.broadcast_flag(bool(run.stopped), run.ddp) and (run.stopped or "callback")
    rng_ranks = distributed.gather(checkpoint.rng_state(run.device), run.ddp) if run.ddp is not None else None
    if run.main:
        checkpoint.save(run.state(rng_ranks), run.dir / "last.pt")
        if improved:
            checkpoint.copy(run.dir / "last.pt", run.dir / "best.pt")
    run.unsaved = False


def find_resume(resume, checkpoint_dir: Path, verbose: bool) -> Path | None:
    if resume is False or resume is None:
        return None
    path = checkpoint_dir / "last.pt" if resume is True else Path(resume).expanduser()
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        if resume is not True:  # a file asked for by name must exist
            raise FileNotFoundError(f"checkpoint {path} does not exist; pass resume=True to use "
                                    f"{checkpoint_dir / 'last.pt'} when there is one")
        if verbose:
            print(f"phonemekit: no checkpoint at {path}, starting a fresh run")
        return None
    return path


def explain_changes(saved: dict, config: Config, path, verbose: bool) -> None:
    """Say which settings differ from the checkpoint's: each takes effect from the next epoch."""
    if not verbose:
        return
    diff = [f"{k}: {saved.get(k)!r} -> {v!r}" for k, v in config.to_dict().items() if k in saved and saved[k] != v]
    if diff:
        print(f"phonemekit: resuming {path} with changed settings, in effect from here on: {'; '.join(diff)}")


# --------------------------------------------------------------------------------------------
# Dry run: the real fit() on a few batches, checkpoints into a temporary folder

DRY_RUN_STEPS = 3


def dry_run(config: Config, steps: int = DRY_RUN_STEPS, verbose: bool = True) -> FitResult:
    """Train and validate on about `steps` batches through fit(), save and reload the checkpoint,
    and delete it again. Checks data, model, budget, optimiser, AMP and checkpointing in seconds."""
    import shutil
    import tempfile

    import numpy as np

    from .corpus import default_root, find_root, utterance_shapes

    root = find_root(config.root) if config.root else default_root(verbose=verbose)
    train_files = sorted((root / config.train_partition / "mfcc").glob("*.npy"))
    val_files = sorted((root / config.val_partition / "mfcc").glob("*.npy"))
    if not train_files or not val_files:
        raise FileNotFoundError(f"{root} lacks {config.train_partition}/mfcc or {config.val_partition}/mfcc .npy files")
    # enough utterances for `steps` training batches, judged from the first files' lengths
    per_item = 1.0 if task_of(config).unit == "utterances" else max(1.0, float(np.mean(
        [t for t, _ in utterance_shapes(root, config.train_partition, limit=64)])))
    need = math.ceil(steps * config.batch_size / per_item) + 1
    eval_bs = config.eval_batch_size or 4 * config.batch_size
    subset = min(config.subset, need / len(train_files))
    val_subset = min(config.val_subset, (math.ceil(eval_bs / per_item) + 1) / len(val_files))
    tmp = Path(tempfile.mkdtemp(prefix="phonemekit-dry-run-"))
    try:
        small = config.replace(root=str(root), epochs=1, warmup_epochs=0, subset=subset, val_subset=val_subset,
                               checkpoint_dir=str(tmp), wandb_mode="disabled", patience=None, cache_dir=None,
                               swa_start=None, swa_lr=None)
        result = fit(small, verbose=False, progress=False, overwrite=True)
        load_checkpoint(tmp / "last.pt")  # the checkpoint must load back into the same model
        row = result.history.iloc[-1]
        if verbose:
            print(f"phonemekit: dry run OK: {row.train_loss:.4f} train loss, {result.metric.replace('_', ' ')} "
                  f"{_fmt(result.metric, row[result.metric])} on {subset:.3%} of the training utterances; the "
                  f"checkpoint saved and loaded back (and was deleted). The real run writes to {config.checkpoint_dir}")
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
