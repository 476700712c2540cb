"""Training: one Config drives data, model, optimiser, schedule, AMP, checkpoints and logging.

    from phonemekit.train import Config, fit, load_recipe
    result = fit(load_recipe("strong"))             # or fit(Config(context=20, hidden=[512]))
    result.history                                   # one row per epoch (a pandas DataFrame)
    fit(config, resume=True)                         # continue from checkpoint_dir/last.pt

The loop is written for speed as much as for reading: the data sit on the GPU (FrameLoader),
loss and accuracy are summed on the device, and the host waits for the GPU only every
`log_every` steps (to update the progress bar and to check that the loss is still finite)
and at the end of an epoch. Logging lives in callbacks, not in the loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import json
import math
import os
import random
import shutil
import time
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import distributed
from .augment import make_augment
from .averaging import Averaging
from .data import BOUNDARIES, NORMALIZATIONS, AudioDataset, FrameLoader, default_root
from .phonemes import NUM_CLASSES

OPTIMIZERS = ("sgd", "nesterov", "rmsprop", "adam", "adamw")
SCHEDULERS = ("none", "step", "multistep", "exponential", "cosine", "plateau", "onecycle")
AMP_MODES = ("auto", "fp16", "bf16", "off")
STORAGE_DTYPES = ("auto", "float32", "float16")
WANDB_MODES = ("online", "offline", "disabled")
HISTORY_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_time", "frames_per_s"]
PARAM_LIMIT = 20_000_000  # the course's budget, ensembles included


# --------------------------------------------------------------------------------------------
# Config


@dataclass
class Config:
    """Every knob of a training run. Saved as a plain dict in each checkpoint and sent to wandb."""

    # data
    root: str | None = None  # None: phonemekit.data.default_root() (Kaggle data, else the demo)
    train_partition: str = "train-clean-100"
    val_partition: str = "dev-clean"
    context: int = 30  # frames each side: the window is 2 * context + 1 frames
    normalize: str = "cepstral"  # cepstral | global | minmax | none
    boundary: str = "concat"  # concat (the official notebook) | utterance (zero-pad each)
    subset: float = 1.0  # fraction of training utterances (a fixed random choice)
    val_subset: float = 1.0
    storage_dtype: str = "auto"  # auto: float16 on a GPU (half the memory), float32 on CPU
    cache_dir: str | None = None  # keep the built arrays here (memory-mapped on the next run)
    resident: bool | None = None  # data on the GPU; None: yes on a GPU (False for train-clean-360 on a T4)
    # model (phonemekit.model.build_mlp)
    hidden: list[int] | None = None  # explicit widths; None: solve `shape` x `depth` for `budget`
    shape: str = "cylinder"  # cylinder | pyramid | inverse-pyramid | diamond
    depth: int = 4
    budget: int | None = 20_000_000
    activation: str = "gelu"
    norm: str = "before"  # BatchNorm before the activation | after | none
    dropout: float | list[float] | str = 0.0  # one rate, one per layer, or "alternate:0.2"
    init: str = "default"
    residual: str | None = None  # None | basic | bottleneck
    num_classes: int = NUM_CLASSES
    param_limit: int | None = PARAM_LIMIT  # refuse a model over this (None: no check)
    # optimisation
    epochs: int = 20
    batch_size: int = 1024
    eval_batch_size: int | None = None  # None: 4 x batch_size (no gradients to keep)
    lr: float = 1e-3
    optimizer: str = "adamw"  # sgd | nesterov | rmsprop | adam | adamw
    momentum: float = 0.9  # sgd, nesterov, rmsprop
    weight_decay: float = 1e-2
    scheduler: str = "cosine"  # none | step | multistep | exponential | cosine | plateau | onecycle
    step_size: int = 5  # step: epochs between cuts
    gamma: float = 0.5  # step / multistep: factor per cut; exponential: factor per epoch
    milestones: list[int] | None = None  # multistep; None: at 1/2 and 3/4 of the epochs
    min_lr: float = 0.0  # cosine floor, plateau floor
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    onecycle_pct_start: float = 0.3
    warmup_epochs: int = 0  # linear warm-up, per batch, before the scheduler takes over
    label_smoothing: float = 0.0
    grad_clip: float | None = None  # max gradient norm
    patience: int | None = None  # early stopping: epochs without a better val accuracy
    # augmentation of training batches (phonemekit.augment), never of validation or test
    freq_masks: int = 0  # frequency masks per window: bands of coefficients set to 0 in every frame
    freq_mask_width: int = 4  # widest band, in coefficients (each mask: 0..width)
    time_masks: int = 0  # time masks per window: runs of whole frames set to 0
    time_mask_width: int = 4  # longest run, in frames (each mask: 0..width)
    mask_prob: float = 0.5  # chance that a window is masked
    noise_std: float = 0.0  # std of Gaussian noise added to the (normalised) features; 0: off
    noise_prob: float = 0.5  # chance that a window gets noise
    mixup_alpha: float = 0.0  # mixup with lam ~ Beta(alpha, alpha) and soft targets; 0: off
    # weight averaging (phonemekit.averaging): each adds its val_acc_* column to the history
    average_last: int = 0  # mean of the weights after the last k epochs (avg.pt); 0: off
    ema_decay: float | None = None  # EMA of the weights after every step, e.g. 0.999 (ema.pt)
    swa_start: int | None = None  # SWA of the weights after epochs swa_start..epochs (swa.pt)
    swa_lr: float | None = None  # with SWA: SWALR anneals the lr to this constant from swa_start
    # running
    seed: int = 0
    device: str = "auto"  # auto: cuda, else mps, else cpu
    amp: str = "auto"  # auto: bf16 on GPUs with compute capability >= 8.0, fp16 below, off on CPU
    compile: bool = False  # torch.compile the model
    log_every: int = 100  # steps between host syncs (progress bar, NaN check)
    checkpoint_dir: str = "checkpoints"
    wandb_mode: str | None = "disabled"  # online | offline | disabled; None: $WANDB_MODE
    wandb_project: str = "hw1p2"
    wandb_run_name: str | None = None

    def __post_init__(self):
        hints = _hints()
        for f in dataclasses.fields(self):
            setattr(self, f.name, _coerce(f.name, getattr(self, f.name), hints[f.name]))
        if self.amp in ("on", "true"):  # YAML reads `amp: on` as True
            self.amp = "auto"
        if self.amp == "false":
            self.amp = "off"
        self.optimizer, self.scheduler = self.optimizer.lower(), self.scheduler.lower()
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("scheduler", self.scheduler, SCHEDULERS)
        _choice("amp", self.amp, AMP_MODES)
        _choice("storage_dtype", self.storage_dtype, STORAGE_DTYPES)
        _choice("normalize", self.normalize, NORMALIZATIONS)
        _choice("boundary", self.boundary, BOUNDARIES)
        if self.wandb_mode is not None:
            _choice("wandb_mode", self.wandb_mode, WANDB_MODES)
        if self.device != "auto":
            try:
                torch.device(self.device)
            except RuntimeError:
                raise ValueError(f"device={self.device!r}: use 'auto', 'cpu', 'cuda', 'cuda:1' or 'mps'") from None
        _check(self.epochs >= 1, f"epochs={self.epochs} must be >= 1")
        _check(self.batch_size >= 1, f"batch_size={self.batch_size} must be >= 1")
        _check(self.context >= 0, f"context={self.context} must be >= 0")
        _check(self.lr >= 0, f"lr={self.lr} must be >= 0")
        _check(self.log_every >= 1, f"log_every={self.log_every} must be >= 1")
        _check(0 <= self.label_smoothing < 1, f"label_smoothing={self.label_smoothing} must be in [0, 1)")
        _check(0 <= self.warmup_epochs < self.epochs or self.warmup_epochs == 0,
               f"warmup_epochs={self.warmup_epochs} must be below epochs={self.epochs}")
        _check(not (self.scheduler == "onecycle" and self.warmup_epochs),
               "scheduler='onecycle' warms up by itself (onecycle_pct_start): set warmup_epochs=0")
        drops = self.dropout if isinstance(self.dropout, list) else [self.dropout]
        if isinstance(self.dropout, str):
            head, _, rate = self.dropout.partition(":")
            _check(head == "alternate" and _is_number(rate),
                   f"dropout={self.dropout!r}: give a rate (0.2), a list ([0.1, 0.2]) or 'alternate:0.2'")
            drops = [float(rate)]
        _check(all(0 <= d < 1 for d in drops), f"dropout={self.dropout} must be in [0, 1)")
        for name in ("freq_masks", "freq_mask_width", "time_masks", "time_mask_width", "average_last"):
            _check(getattr(self, name) >= 0, f"{name}={getattr(self, name)} must be >= 0")
        for name in ("mask_prob", "noise_prob"):
            _check(0 <= getattr(self, name) <= 1, f"{name}={getattr(self, name)} must be a probability in [0, 1]")
        _check(self.noise_std >= 0, f"noise_std={self.noise_std} must be >= 0")
        _check(self.mixup_alpha >= 0, f"mixup_alpha={self.mixup_alpha} must be >= 0 (0: no mixup)")
        _check(self.ema_decay is None or 0 < self.ema_decay < 1,
               f"ema_decay={self.ema_decay} must be in (0, 1), e.g. 0.999 (None: no EMA)")
        _check(self.swa_start is None or 1 <= self.swa_start <= self.epochs,
               f"swa_start={self.swa_start} must be an epoch in 1..epochs={self.epochs} (None: no SWA)")
        _check(self.swa_lr is None or self.swa_start is not None, f"swa_lr={self.swa_lr} needs swa_start (the first SWA epoch)")
        _check(self.swa_lr is None or self.swa_lr > 0, f"swa_lr={self.swa_lr} must be > 0")
        _check(self.swa_lr is None or self.swa_start > self.warmup_epochs,
               f"swa_start={self.swa_start} must come after the warm-up (warmup_epochs={self.warmup_epochs}) when swa_lr is set")

    # conversions -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        """A Config from a (possibly partial) dict; unknown keys are an error, with suggestions."""
        if isinstance(d, Config):
            return dataclasses.replace(d)
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in d if k not in names]
        if unknown:
            hints = []
            for k in unknown:
                close = difflib.get_close_matches(k, names, n=3, cutoff=0.5)
                hints.append(f"{k!r}" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else ""))
            raise ValueError(f"unknown config key(s): {'; '.join(hints)}. Known keys: {', '.join(names)}")
        return cls(**d)

    def to_dict(self) -> dict:
        """Plain JSON-able dict (lists, numbers, strings, None)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def replace(self, **changes) -> Config:
        """A copy with some fields changed (validated; unknown names are an error)."""
        return Config.from_dict({**self.to_dict(), **changes})

    def save(self, path) -> Path:
        """Write the config as YAML (.yaml/.yml) or JSON (.json)."""
        path = Path(path)
        d = self.to_dict()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            text = yaml.safe_dump(d, sort_keys=False)
        elif path.suffix == ".json":
            text = json.dumps(d, indent=2) + "\n"
        else:
            raise ValueError(f"{path}: a config file ends in .yaml, .yml or .json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    @classmethod
    def load(cls, path) -> Config:
        """Read a YAML or JSON config (keys left out keep their defaults)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            d = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            d = json.loads(text)
        else:
            raise ValueError(f"{path}: a config file ends in .yaml, .yml or .json")
        if not isinstance(d, dict):
            raise ValueError(f"{path} must hold a mapping of config keys, not {type(d).__name__}")
        try:
            return cls.from_dict(d)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None


def apply_overrides(config: Config, overrides) -> Config:
    """A copy of config with "key=value" strings applied, as the command line passes them.

    Values are read as YAML and converted to the field's type: lr=1e-3, hidden=[1024,512]
    (or hidden=1024,512), amp=off, wandb_mode=null, dropout=0.2.
    """
    import yaml

    hints, changes = _hints(), {}
    for item in overrides:
        key, sep, raw = str(item).partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise ValueError(f"override {item!r} must look like key=value (e.g. lr=1e-3)")
        if key not in hints:
            Config.from_dict({key: None})  # raises the unknown-key error with suggestions
        raw = raw.strip()
        allowed = _union_args(hints[key])
        if raw.lower() in ("null", "~", "") or (raw.lower() == "none" and type(None) in allowed):
            value = None  # but normalize=none / scheduler=none stay the string "none"
        elif set(allowed) <= {str, type(None)}:  # keep text as typed: YAML would turn `off` into False
            value = raw
        else:
            value = yaml.safe_load(raw)
        changes[key] = value
    return config.replace(**changes)


def _choice(name, value, choices):
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        raise ValueError(f"{name}={value!r}; choose one of {', '.join(choices)}"
                         + (f" (did you mean {close[0]!r}?)" if close else ""))


def _is_number(s) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _check(ok, message):
    if not ok:
        raise ValueError(message)


@functools.cache
def _hints():
    return typing.get_type_hints(Config)


def _union_args(hint):
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _coerce(name, value, hint):
    """value converted to the declared type of field `name` (YAML and the CLI give strings)."""
    allowed = _union_args(hint)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")
                         and type(None) in allowed):
        if type(None) in allowed:
            return None
        raise ValueError(f"config field {name!r} cannot be None")
    for t in allowed:  # already the right type
        base = typing.get_origin(t) or t
        if base is list and isinstance(value, (list, tuple)):
            (inner,) = typing.get_args(t)
            return [_coerce(f"{name}[{i}]", v, inner) for i, v in enumerate(value)]
        if base in (int, float, str, bool) and type(value) is base:
            return value
    for t in allowed:  # convert
        base = typing.get_origin(t) or t
        try:
            if base is bool:
                s = str(value).strip().lower()
                if s in ("true", "yes", "on", "1"):
                    return True
                if s in ("false", "no", "off", "0"):
                    return False
            elif base is int and not isinstance(value, bool):
                f = float(value)
                if f.is_integer():
                    return int(f)
            elif base is float and not isinstance(value, bool):
                return float(value)
            elif base is str:
                if isinstance(value, bool):  # YAML's on/off
                    return "on" if value else "off"
                if isinstance(value, (str, os.PathLike, int, float)):
                    return str(value)
            elif base is list and isinstance(value, str) and "," in value:
                return _coerce(name, [v.strip() for v in value.strip("[]").split(",") if v.strip()], t)
            elif base is list and isinstance(value, (int, float)) and not isinstance(value, bool):
                return _coerce(name, [value], t)
        except (TypeError, ValueError):
            continue
    want = " or ".join("None" if t is type(None) else getattr(t, "__name__", str(t)) for t in allowed)
    raise ValueError(f"config field {name!r} expects {want}, got {value!r}")


# --------------------------------------------------------------------------------------------
# Recipes (configs/*.yaml hold the same settings, for the command line and for reading)

RECIPES: dict[str, dict] = {
    # The course's "very low cutoff" model: one hidden layer of 512, context 20, a few epochs.
    "baseline": dict(
        context=20, hidden=[512], activation="relu", norm="none", dropout=0.0,
        epochs=5, batch_size=1024, lr=1e-3, optimizer="adam", weight_decay=0.0, scheduler="none",
        checkpoint_dir="checkpoints/baseline",
    ),
    # What the best students used: ~20M parameters, context 30, GELU, BatchNorm, dropout,
    # AdamW, a warm-up then cosine decay, label smoothing, big batches.
    "strong": dict(
        context=30, shape="cylinder", depth=5, budget=20_000_000, activation="gelu", norm="before",
        dropout=0.2, epochs=25, batch_size=2048, lr=2e-3, optimizer="adamw", weight_decay=1e-2,
        scheduler="cosine", warmup_epochs=1, min_lr=1e-5, label_smoothing=0.1,
        checkpoint_dir="checkpoints/strong",
    ),
    # Seconds on any CPU: checks that everything runs, learns nothing worth keeping.
    "smoke": dict(
        context=3, hidden=[64], activation="gelu", norm="before", dropout=0.0,
        epochs=2, batch_size=256, lr=1e-3, optimizer="adamw", scheduler="none",
        subset=0.1, val_subset=0.25, device="cpu", amp="off", log_every=20,
        checkpoint_dir="checkpoints/smoke",
    ),
    # The demo corpus on a laptop CPU in a few minutes, learning visibly.
    "cpu-demo": dict(
        context=10, hidden=[1024, 512], activation="gelu", norm="before", dropout=0.4,
        epochs=10, batch_size=512, lr=2e-3, optimizer="adamw", weight_decay=5e-2,
        scheduler="cosine", warmup_epochs=1, label_smoothing=0.1, log_every=50,
        checkpoint_dir="checkpoints/cpu-demo",
    ),
}


def load_recipe(name, **changes) -> Config:
    """A Config from a recipe name (RECIPES) or a .yaml/.json path, with fields changed."""
    if name in RECIPES:
        config = Config.from_dict(RECIPES[name])
    elif Path(str(name)).suffix in (".yaml", ".yml", ".json"):
        config = Config.load(name)
    else:
        raise ValueError(f"unknown recipe {name!r}: choose one of {', '.join(RECIPES)}, or give a .yaml/.json path")
    return config.replace(**changes) if changes else config


# --------------------------------------------------------------------------------------------
# Building the pieces


def resolve_device(device="auto") -> torch.device:
    if device not in (None, "auto"):
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for this device, or None for full fp32."""
    if amp == "off":
        return None
    if device.type == "cuda":
        if amp == "auto":
            # a T4 (7.5) "supports" bf16 only by emulation, slowly: fp16 + GradScaler there
            return torch.bfloat16 if torch.cuda.get_device_capability(device) >= (8, 0) else torch.float16
        return torch.bfloat16 if amp == "bf16" else torch.float16
    if amp == "auto":
        return None  # CPU/MPS autocast rarely pays off for an MLP; ask for bf16 explicitly
    if amp == "fp16":
        raise ValueError(f"amp='fp16' needs a CUDA GPU (device is {device}); use amp='bf16' or 'off'")
    return torch.bfloat16


def make_datasets(config: Config, device=None) -> tuple[AudioDataset, AudioDataset]:
    """The training and validation AudioDatasets the config describes."""
    device = resolve_device(config.device) if device is None else torch.device(device)
    root = config.root if config.root is not None else default_root()
    common = dict(root=root, context=config.context, normalize=config.normalize, boundary=config.boundary,
                  dtype=_storage_dtype(config, device), cache_dir=config.cache_dir)
    train = AudioDataset(partition=config.train_partition, subset=config.subset, **common)
    # global normalisation uses the training statistics for validation too
    val = AudioDataset(partition=config.val_partition, subset=config.val_subset, stats=train.stats, **common)
    return train, val


def _storage_dtype(config, device):
    if config.storage_dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return torch.float16 if config.storage_dtype == "float16" else torch.float32


def make_loaders(config: Config, train_ds, val_ds, device) -> tuple[FrameLoader, FrameLoader]:
    dtype = _storage_dtype(config, device)
    # drop the last partial batch: a batch of 1 breaks BatchNorm, and the shuffle changes
    # which frames it holds every epoch
    train = FrameLoader(train_ds, config.batch_size, shuffle=True, drop_last=len(train_ds) > config.batch_size,
                        device=device, seed=config.seed, resident=config.resident, storage_dtype=dtype)
    val = FrameLoader(val_ds, config.eval_batch_size or 4 * config.batch_size, shuffle=False,
                      device=device, seed=config.seed, resident=config.resident, storage_dtype=dtype)
    return train, val


def make_model(config: Config, in_features: int) -> torch.nn.Module:
    """The MLP the config describes, checked against the parameter limit."""
    from .model import build_mlp, check_budget

    model = build_mlp(in_features, num_classes=config.num_classes, hidden=config.hidden, shape=config.shape,
                      depth=config.depth, budget=config.budget, activation=config.activation, norm=config.norm,
                      dropout=config.dropout, init=config.init, residual=config.residual)
    if config.param_limit:
        check_budget(model, budget=config.param_limit)
    return model


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


def make_scheduler(config: Config, optimizer, steps_per_epoch: int):
    """The lr scheduler, or None. OneCycle steps every batch; plateau steps on val accuracy;
    the others step once per epoch after the warm-up epochs."""
    S = torch.optim.lr_scheduler
    name, epochs = config.scheduler, config.epochs - config.warmup_epochs
    if name == "none":
        return None
    if name == "step":
        return S.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    if name == "multistep":
        milestones = config.milestones or [max(1, epochs // 2), max(2, 3 * epochs // 4)]
        return S.MultiStepLR(optimizer, milestones=sorted(set(milestones)), gamma=config.gamma)
    if name == "exponential":
        return S.ExponentialLR(optimizer, gamma=config.gamma)
    if name == "cosine":
        return S.CosineAnnealingLR(optimizer, T_max=max(1, epochs), eta_min=config.min_lr)
    if name == "plateau":
        # mode="max": it watches accuracy, which should rise (mode="min" would cut the lr
        # exactly when training goes well)
        return S.ReduceLROnPlateau(optimizer, mode="max", factor=config.plateau_factor,
                                   patience=config.plateau_patience, min_lr=config.min_lr)
    return S.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch,
                        pct_start=config.onecycle_pct_start,
                        cycle_momentum=config.optimizer != "sgd" or config.momentum > 0)


def per_batch(scheduler) -> bool:
    return isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR)


class LinearWarmup:
    """lr rises linearly to base_lr over `steps` batches: step() after every batch.

    Stateless apart from the step count, so a resumed run recreates it from the epoch.
    """

    def __init__(self, optimizer, base_lr: float, steps: int, start: int = 0):
        self.optimizer, self.base_lr, self.steps, self.n = optimizer, base_lr, max(1, steps), start
        self._apply()

    def _apply(self):
        lr = self.base_lr * min(1.0, (self.n + 1) / self.steps)
        for g in self.optimizer.param_groups:
            g["lr"] = lr

    def step(self):
        self.n += 1
        self._apply()


# --------------------------------------------------------------------------------------------
# One epoch of training, one pass of evaluation


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or Inf."""


def _autocast(device: torch.device, amp_dtype):
    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.amp.autocast(device.type, dtype=amp_dtype)


def train_epoch(model, loader, optimizer, scheduler=None, scaler=None, amp_dtype=None, *,
                label_smoothing: float = 0.0, grad_clip: float | None = None, augment=None,
                log_every: int = 100, epoch: int = 1, progress: bool = False, on_step=None) -> dict:
    """One pass over `loader` in train mode. Returns train_loss, train_acc, lr, frames, seconds.

    scheduler: stepped after every batch (OneCycle, LinearWarmup); per-epoch schedulers are
    stepped by the caller. scaler: a GradScaler for fp16. on_step() is called after every
    optimizer step (the EMA of the weights). augment(x, y) -> (x, y) transforms
    each training batch (on its device). Raises NonFiniteLossError when the loss is NaN/Inf.
    """
    model.train()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)  # summed on the device: no sync per step
    correct = torch.zeros((), dtype=torch.long, device=device)
    frames, steps, t0 = 0, len(loader), time.perf_counter()
    bar = tqdm(total=steps, desc=f"epoch {epoch}", leave=False, disable=not progress, dynamic_ncols=True)
    lr = optimizer.param_groups[0]["lr"]
    for step, (x, y) in enumerate(loader, 1):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if augment is not None:
            x, y = augment(x, y)
        lr = optimizer.param_groups[0]["lr"]
        with _autocast(device, amp_dtype):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
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
        if scheduler is not None:
            scheduler.step()
        if on_step is not None:
            on_step()
        n = y.shape[0]
        loss_sum += loss.detach() * n
        correct += (logits.detach().argmax(1) == (y if y.dim() == 1 else y.argmax(1))).sum()  # mixup: soft y
        frames += n
        bar.update()
        if step % log_every == 0 or step == steps:
            running = loss_sum.item() / frames  # the only host sync: every log_every steps
            if not math.isfinite(running):
                bar.close()
                raise NonFiniteLossError(
                    f"the training loss became {running} in epoch {epoch}, by step {step} of {steps} "
                    f"(checked every log_every={log_every} steps). Stopped instead of training on garbage; "
                    f"the checkpoint of the last complete epoch is kept. Try a lower lr (now {lr:.3g}), "
                    f"amp='off' for full fp32 (now {amp_dtype or 'off'}), grad_clip=1.0 (now {grad_clip}), "
                    "and check the features for NaN."
                )
            bar.set_postfix(loss=f"{running:.4f}", acc=f"{correct.item() / frames:.2%}", lr=f"{lr:.2e}")
    bar.close()
    if frames == 0:
        raise ValueError(f"the training loader gave no batch ({len(loader.dataset)} frames, batch_size={loader.batch_size})")
    return {"train_loss": loss_sum.item() / frames, "train_acc": correct.item() / frames, "lr": lr,
            "frames": frames, "seconds": time.perf_counter() - t0}


@torch.inference_mode()
def evaluate(model, loader, amp_dtype=None, return_predictions: bool = False, progress: bool = False):
    """(loss, accuracy) over a labelled loader in eval mode; with return_predictions, also the
    predicted class of every frame (a CPU tensor, in loader order).

    The loss is plain cross-entropy (no label smoothing), comparable across runs.
    """
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    frames, preds = 0, []
    for batch in tqdm(loader, desc="eval", leave=False, disable=not progress, dynamic_ncols=True):
        if not isinstance(batch, (tuple, list)):
            raise ValueError("evaluate needs labels; for an unlabelled set use phonemekit.submit.predict")
        x, y = (t.to(device, non_blocking=True) for t in batch)
        with _autocast(device, amp_dtype):
            logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        p = logits.argmax(1)
        correct += (p == y).sum()
        frames += y.shape[0]
        if return_predictions:
            preds.append(p)
    if frames == 0:
        raise ValueError("the evaluation loader gave no batch")
    loss, acc = loss_sum.item() / frames, correct.item() / frames
    if return_predictions:
        return loss, acc, torch.cat(preds).cpu()
    return loss, acc


# --------------------------------------------------------------------------------------------
# Checkpoints


def _rng_state(device) -> dict:
    """Every RNG the loop touches, as tensors and plain lists (loadable with weights_only=True)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
    }
    if device.type == "mps":
        state["mps"] = torch.mps.get_rng_state()
    return state


def _set_rng_state(state: dict, device) -> None:
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
    if device.type == "cuda" and state.get("cuda"):
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if device.type == "mps" and "mps" in state:
        torch.mps.set_rng_state(state["mps"].cpu())


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _atomic_save(obj, path: Path) -> None:
    """torch.save to a temporary file, then rename: a crash mid-write keeps the old file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def load_checkpoint(path, device="cpu"):
    """(model, config, checkpoint) from a last.pt/best.pt: the model is rebuilt from the saved
    config, given its weights, moved to `device` and put in eval mode."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt" if (path / "best.pt").is_file() else path / "last.pt"
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist: train with fit(config) first, "
                                "or point at the checkpoint_dir of that run")
    ckpt = torch.load(path, map_location=device, weights_only=True)
    config = Config.from_dict(ckpt["config"])
    model = make_model(config.replace(param_limit=None), ckpt["in_features"])
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), config, ckpt


def _find_resume(resume, checkpoint_dir: Path, verbose: bool) -> Path | None:
    if resume is False or resume is None:
        return None
    path = checkpoint_dir / "last.pt" if resume is True else Path(resume)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        if resume is not True:  # a file asked for by name must exist
            raise FileNotFoundError(f"checkpoint {path} does not exist; pass resume=True to use "
                                    f"{checkpoint_dir / 'last.pt'} when there is one")
        print(f"phonemekit: no checkpoint at {path}, starting a fresh run")
        return None
    return path


# --------------------------------------------------------------------------------------------
# wandb, as callbacks


def wandb_has_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    import netrc
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_callbacks(config: Config, run_id: str | None = None) -> dict:
    """on_fit_start/on_epoch_end/on_fit_end callbacks that log to wandb; {} when disabled."""
    mode = config.wandb_mode or os.environ.get("WANDB_MODE") or "disabled"
    mode = {"dryrun": "offline", "run": "online"}.get(mode, mode)  # wandb's older spellings
    if mode not in WANDB_MODES:
        raise ValueError(f"WANDB_MODE={mode!r}; use online, offline or disabled")
    if mode == "disabled":
        return {}
    try:
        import wandb  # only when asked for: it is an optional dependency
    except ImportError:
        raise ImportError("wandb_mode is set but wandb is not installed: pip install wandb "
                          "(or set wandb_mode='disabled')") from None
    if mode == "online" and not wandb_has_key():
        raise RuntimeError(
            "wandb_mode='online' needs an API key: set WANDB_API_KEY in the environment "
            "(on Colab: add it as a secret and run os.environ['WANDB_API_KEY'] = "
            "google.colab.userdata.get('WANDB_API_KEY')), or run `wandb login` once; "
            "or use wandb_mode='offline' and `wandb sync` later"
        )
    run = None

    def start(state):
        nonlocal run
        run = wandb.init(project=config.wandb_project, name=config.wandb_run_name, config=config.to_dict(),
                         mode=mode, id=run_id, resume="allow" if run_id else None)
        state.wandb_id = run.id

    def epoch_end(state):
        run.log({k: v for k, v in state.metrics.items() if k != "epoch"}, step=state.metrics["epoch"])
        run.summary["best_val_acc"] = state.best_val_acc

    def end(state):
        if run is not None:
            run.finish()

    return {"on_fit_start": start, "on_epoch_end": epoch_end, "on_fit_end": end}


def _print_epoch(state):
    m = state.metrics
    star = " *" if m["epoch"] == state.best_epoch else ""
    tqdm.write(f"epoch {m['epoch']:>3}/{state.config.epochs} | train loss {m['train_loss']:.4f} acc "
               f"{m['train_acc']:.2%} | val loss {m['val_loss']:.4f} acc {m['val_acc']:.2%} | lr "
               f"{m['lr']:.2e} | {m['epoch_time']:.1f} s, {m['frames_per_s'] / 1e3:,.0f}k frames/s{star}"
               + "".join(f" | {k[8:]} {m[k]:.2%}" for k in m if k.startswith("val_acc_")))  # avg, ema, swa


# --------------------------------------------------------------------------------------------
# fit


@dataclass
class FitResult:
    model: torch.nn.Module  # the model after the last epoch (best.pt holds the best one)
    history: pd.DataFrame
    best_val_acc: float
    best_epoch: int
    config: Config
    checkpoint_dir: Path
    stopped_early: bool = False
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    # {"avg" | "ema" | "swa": model} after the last epoch, for the averaging switched on
    # (avg.pt, ema.pt, swa.pt hold each one at its best epoch)
    averaged: dict = field(default_factory=dict)


SWA_ANNEAL_EPOCHS = 2  # SWALR: epochs over which the lr moves (cosine) to swa_lr


def fit(config: Config, resume=False, callbacks: dict | None = None, *, augment=None, datasets=None,
        progress: bool = True, verbose: bool = True) -> FitResult:
    """Train and validate every epoch; checkpoint to config.checkpoint_dir (last.pt, best.pt).

    resume: True continues from checkpoint_dir/last.pt (a fresh run when there is none), a path
    continues from that file; training goes on up to config.epochs.
    callbacks: {"on_fit_start" | "on_epoch_end" | "on_fit_end": fn or [fn, ...]}, each called
    with a state namespace (config, model, optimizer, epoch, metrics, history, best_val_acc,
    best_epoch); setting state.stop = True ends training after that epoch.
    augment: (x, y) -> (x, y) applied to every training batch; None: the config's augmentation
    (phonemekit.augment.make_augment: masking, noise, mixup); False: none at all.
    datasets: (train, val) AudioDatasets already built (skips loading them again).
    Weight averaging (average_last, ema_decay, swa_start): see phonemekit.averaging.
    Under torchrun (several GPUs) each process trains on its shard of the frames with
    DistributedDataParallel; process 0 alone checkpoints, logs and calls the callbacks
    (phonemekit.distributed).
    Ctrl-C / KeyboardInterrupt: last.pt keeps the last complete epoch and the interrupt is
    raised again; fit(config, resume=True) carries on from there.
    """
    config = Config.from_dict(config) if not isinstance(config, Config) else config
    ddp = distributed.setup(config.device)
    try:
        return _fit(config, ddp, resume, callbacks, augment, datasets, progress, verbose)
    finally:
        distributed.cleanup(ddp)


def _fit(config: Config, ddp, resume, callbacks, augment, datasets, progress, verbose) -> FitResult:
    main = ddp is None or ddp.rank == 0  # the process that writes files and prints
    verbose, progress = verbose and main, progress and main
    device = ddp.device if ddp is not None else resolve_device(config.device)
    amp_dtype = resolve_amp(config.amp, device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls on tensor cores (Ampere+)
        torch.backends.cudnn.allow_tf32 = True
    seed_everything(config.seed)
    train_ds, val_ds = datasets if datasets is not None else make_datasets(config, device)
    if train_ds.context != config.context or val_ds.context != config.context:
        raise ValueError(f"the datasets passed have context {train_ds.context}/{val_ds.context} but the config "
                         f"asks for {config.context}: rebuild them with make_datasets(config)")
    train_loader, val_loader = make_loaders(config, train_ds, val_ds, device)
    if ddp is not None:  # each process sees its own shard of every epoch
        distributed.shard(train_loader, ddp)
        distributed.shard(val_loader, ddp)
    in_features = train_ds.window * train_ds.n_features
    model = make_model(config, in_features).to(device)  # the same seed: the same weights everywhere
    if ddp is not None and ddp.rank > 0:
        seed_everything(config.seed + ddp.rank)  # but each process its own dropout masks and augmentation
    optimizer = make_optimizer(config, model)
    scheduler = make_scheduler(config, optimizer, len(train_loader))
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    augment = make_augment(config) if augment is None else (augment or None)
    ckpt_dir = Path(config.checkpoint_dir).expanduser()
    ckpt_dir.mkdir(parents=True, exist_ok=True)

    start, history, best, best_epoch, stopped, run_id, ckpt = 0, [], -1.0, 0, False, None, None
    resume_path = _find_resume(resume, ckpt_dir, verbose)
    if resume_path is not None:
        ckpt = torch.load(resume_path, map_location=device, weights_only=True)
        _explain_config_change(ckpt["config"], config, resume_path, verbose)
        try:
            model.load_state_dict(ckpt["model"])
        except RuntimeError as e:
            raise RuntimeError(f"{resume_path} holds a different model than this config builds ({e}); "
                               "resume with the model settings it was trained with, or use a new checkpoint_dir") from None
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and ckpt["scheduler"] is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt["scaler"] is not None:
            scaler.load_state_dict(ckpt["scaler"])
        start, best, best_epoch = ckpt["epoch"], ckpt["best_val_acc"], ckpt["best_epoch"]
        stopped, run_id = ckpt["stopped_early"], ckpt.get("wandb_id")
        history = ckpt["history"]
        _set_rng_state(_rank_rng(ckpt, ddp), device)  # the same dropout masks as an uninterrupted run
        if verbose:
            print(f"phonemekit: resuming from {resume_path} after epoch {start} (best val acc {best:.2%})")

    meta = {"format": 1, "config": config.to_dict(), "in_features": in_features, "n_features": train_ds.n_features,
            "context": train_ds.context, "torch_version": str(torch.__version__)}
    averaging = Averaging(config, model, ckpt_dir, meta, main=main, verbose=verbose)
    swa_sched = None  # SWALR, from epoch swa_start on when swa_lr is set
    if ckpt is not None:
        averaging.load_state_dict(ckpt.get("averaging"), start)
        if ckpt.get("swa_scheduler") is not None and config.swa_lr is not None:
            swa_sched = _make_swalr(config, optimizer)
            for group, saved in zip(optimizer.param_groups, ckpt["optimizer"]["param_groups"]):
                group["lr"] = saved["lr"]  # creating SWALR set the lr; the checkpoint's is the true one
            swa_sched.load_state_dict(ckpt["swa_scheduler"])
    columns = HISTORY_COLUMNS + averaging.columns
    columns += [c for c in (ckpt["history"] if ckpt is not None else {}) if c not in columns]  # drop nothing
    history = pd.DataFrame(history, columns=columns).to_dict("records")

    step_model = model
    if ddp is not None:
        from torch.nn.parallel import DistributedDataParallel

        step_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        step_model = torch.compile(step_model)
    eval_model = model if ddp is not None else step_model  # evaluation needs no gradient averaging
    state = types.SimpleNamespace(config=config, model=model, optimizer=optimizer, scheduler=scheduler,
                                  epoch=start, metrics=None, history=history, best_val_acc=best,
                                  best_epoch=best_epoch, checkpoint_dir=ckpt_dir, stop=False, wandb_id=run_id)
    events = {}
    if main:
        events = _merge_callbacks(wandb_callbacks(config, run_id), {"on_epoch_end": _print_epoch} if verbose else {},
                                  callbacks or {})

    def checkpoint(rng_ranks=None):
        return {
            "format": 1, "epoch": state.epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "best_val_acc": state.best_val_acc, "best_epoch": state.best_epoch, "stopped_early": stopped,
            "history": pd.DataFrame(history, columns=columns).to_dict("list"),
            "config": config.to_dict(), "in_features": in_features, "n_features": train_ds.n_features,
            "context": train_ds.context, "rng": _rng_state(device), "rng_ranks": rng_ranks,
            "wandb_id": state.wandb_id, "torch_version": str(torch.__version__),
            "averaging": averaging.state_dict(),
            "swa_scheduler": swa_sched.state_dict() if swa_sched is not None else None,
        }

    def result():
        return FitResult(model=model, history=pd.DataFrame(history, columns=columns),
                         best_val_acc=state.best_val_acc, best_epoch=state.best_epoch, config=config,
                         checkpoint_dir=ckpt_dir, stopped_early=stopped, device=device,
                         averaged={k: m.eval() for k, m in averaging.models().items()})

    def validate(m):
        """(loss, accuracy) on the validation set; over all processes' shards when distributed."""
        loss, acc = evaluate(m, val_loader, amp_dtype)
        if ddp is None:
            return loss, acc
        n = distributed.shard_frames(val_loader)
        total_loss, total_correct, frames = distributed.all_sum([loss * n, acc * n, n], ddp)
        return total_loss / frames, round(total_correct) / frames

    if resume_path is not None and (stopped or start >= config.epochs):
        if verbose:
            why = "stopped early" if stopped else f"reached epochs={config.epochs}"
            print(f"phonemekit: the run in {ckpt_dir} already {why}; raise `epochs` to train on")
        return result()

    unsaved = False  # the state of a complete epoch not yet written to last.pt
    _fire(events, "on_fit_start", state)
    try:
        for epoch in range(start, config.epochs):
            t0 = time.perf_counter()
            train_loader.set_epoch(epoch)  # the frame order depends only on (seed, epoch)
            if swa_sched is None and config.swa_lr is not None and epoch + 1 >= config.swa_start:
                swa_sched = _make_swalr(config, optimizer)  # takes over the lr from here
            batch_sched = scheduler if per_batch(scheduler) and swa_sched is None else None
            if epoch < config.warmup_epochs:
                steps = len(train_loader)
                batch_sched = LinearWarmup(optimizer, config.lr, config.warmup_epochs * steps, epoch * steps)
            m = train_epoch(step_model, train_loader, optimizer, batch_sched, scaler, amp_dtype,
                            label_smoothing=config.label_smoothing, grad_clip=config.grad_clip, augment=augment,
                            log_every=config.log_every, epoch=epoch + 1, progress=progress,
                            on_step=averaging.on_step if averaging.ema is not None else None)
            if ddp is not None:  # the history counts every process's frames
                loss_sum, correct, frames = distributed.all_sum(
                    [m["train_loss"] * m["frames"], m["train_acc"] * m["frames"], m["frames"]], ddp)
                m = {**m, "train_loss": loss_sum / frames, "train_acc": round(correct) / frames, "frames": frames}
                # BatchNorm statistics saw only this process's batches: take process 0's everywhere
                distributed.broadcast_buffers(model, ddp)
                if averaging.ema is not None:
                    distributed.broadcast_buffers(averaging.ema.model, ddp)
            val_loss, val_acc = validate(eval_model)
            if swa_sched is not None:
                swa_sched.step()
            elif scheduler is not None and not per_batch(scheduler) and epoch >= config.warmup_epochs:
                if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    scheduler.step(val_acc)
                else:
                    scheduler.step()
            averaged = averaging.end_epoch(epoch + 1, train_loader, lambda: _autocast(device, amp_dtype),
                                           reduce_buffers=lambda mod: distributed.average_buffers(mod, ddp))
            accs = {kind: validate(averaged_model)[1] for kind, averaged_model in averaged.items()}
            row = {"epoch": epoch + 1, "train_loss": m["train_loss"], "train_acc": m["train_acc"],
                   "val_loss": val_loss, "val_acc": val_acc, "lr": m["lr"],
                   "epoch_time": time.perf_counter() - t0, "frames_per_s": m["frames"] / m["seconds"],
                   **{f"val_acc_{kind}": acc for kind, acc in accs.items()}}
            averaging.record(epoch + 1, accs)  # avg.pt / ema.pt / swa.pt at their best
            improved = val_acc > state.best_val_acc
            if improved:
                state.best_val_acc, state.best_epoch = val_acc, epoch + 1
            history.append(row)
            state.epoch, state.metrics, unsaved = epoch + 1, row, True
            _fire(events, "on_epoch_end", state)
            stopped = bool(state.stop or (config.patience and epoch + 1 - state.best_epoch >= config.patience))
            stopped = distributed.broadcast_flag(stopped, ddp)  # a callback on process 0 may stop them all
            rng_ranks = distributed.gather(_rng_state(device), ddp) if ddp is not None else None
            if main:
                _atomic_save(checkpoint(rng_ranks), ckpt_dir / "last.pt")
                if improved:
                    _atomic_copy(ckpt_dir / "last.pt", ckpt_dir / "best.pt")
            unsaved = False
            if stopped:
                if verbose and not state.stop:
                    print(f"phonemekit: early stop after epoch {epoch + 1}: no better val acc for "
                          f"{config.patience} epochs (best {state.best_val_acc:.2%} at epoch {state.best_epoch})")
                break
    except KeyboardInterrupt:
        if unsaved and main:  # interrupted between the end of an epoch and its checkpoint
            _atomic_save(checkpoint(), ckpt_dir / "last.pt")
        if main:
            print(f"phonemekit: interrupted; {ckpt_dir / 'last.pt'} holds epoch {state.epoch}. "
                  "Continue with fit(config, resume=True).")
        raise
    finally:
        _fire(events, "on_fit_end", state)
    return result()


def _make_swalr(config: Config, optimizer):
    from torch.optim.swa_utils import SWALR

    return SWALR(optimizer, swa_lr=config.swa_lr, anneal_epochs=SWA_ANNEAL_EPOCHS, anneal_strategy="cos")


def _rank_rng(ckpt: dict, ddp) -> dict:
    """This process's RNG state from a checkpoint (process 0's in a single-process run)."""
    ranks = ckpt.get("rng_ranks")
    if ddp is None or ddp.rank == 0:
        return ckpt["rng"]
    if ranks and len(ranks) == ddp.world_size:
        return ranks[ddp.rank]
    if ddp.rank == 1:  # process 0 says nothing about the others' random numbers: say it once here
        print(f"phonemekit: the checkpoint holds the random state of {len(ranks) if ranks else 1} process(es), "
              f"this run has {ddp.world_size}: dropout and augmentation draw new random numbers from here on")
    seed_everything(int(ckpt["config"].get("seed", 0)) + 7919 * ckpt["epoch"] + ddp.rank)
    return _rng_state(torch.device("cpu"))


def _merge_callbacks(*dicts) -> dict:
    out: dict[str, list] = {}
    for d in dicts:
        for event, fns in d.items():
            if event not in ("on_fit_start", "on_epoch_end", "on_fit_end"):
                raise ValueError(f"unknown callback event {event!r}: use on_fit_start, on_epoch_end or on_fit_end")
            out.setdefault(event, []).extend(fns if isinstance(fns, (list, tuple)) else [fns])
    return out


def _fire(events, name, state):
    for fn in events.get(name, []):
        fn(state)


def _explain_config_change(saved: dict, config: Config, path, verbose):
    """Say which settings differ from the checkpoint's (more epochs is the usual reason)."""
    if not verbose:
        return
    now = config.to_dict()
    diff = [f"{k}: {saved.get(k)!r} -> {v!r}" for k, v in now.items() if k in saved and saved[k] != v]
    if diff:
        print(f"phonemekit: resuming {path} with changed settings: {'; '.join(diff)}")
