"""Weight averaging: the last k epochs' weights, an EMA of the weights, and SWA.

Each is one Config switch, evaluated on the validation set after every epoch and reported in
the history as its own column:

    average_last=5     val_acc_avg  mean of the weights after the last 5 epochs (the course's
                                    "self-ensemble" of checkpoints, at the cost of one model)
    ema_decay=0.999    val_acc_ema  exponential moving average, updated after every step
    swa_start=16       val_acc_swa  SWA (torch.optim.swa_utils): the mean of the weights after
                                    epochs 16, 17, ...; BatchNorm statistics recomputed over the
                                    training data before each evaluation. swa_lr (optional)
                                    anneals the lr to a constant with SWALR.

Files in checkpoint_dir, each loadable with load_checkpoint (and `phonemekit predict`):
    avg.pt, ema.pt, swa.pt   that averaged model at the epoch where its val accuracy was best
    epoch-NNN.pt             the weights after epoch NNN, the last k kept (average_last=k)
last.pt holds the EMA and SWA states, so fit(config, resume=True) carries on exactly; the
average of the last k epochs is rebuilt from the epoch-NNN.pt files.

    from phonemekit.averaging import average_checkpoints
    model = average_checkpoints(["ckpt/epoch-018.pt", "ckpt/epoch-019.pt", "ckpt/epoch-020.pt"],
                                out="ckpt/avg-18-20.pt")
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, update_bn

KINDS = ("avg", "ema", "swa")


def average_states(states: list[dict]) -> dict:
    """The mean of several state_dicts of one model. Floating tensors (weights, BatchNorm's
    running mean and variance) are averaged; integer ones (num_batches_tracked) come from the
    last state."""
    if not states:
        raise ValueError("average_states needs at least one state_dict")
    out = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            total = sum(s[key].double() for s in states)  # float64: no rounding drift over k terms
            out[key] = (total / len(states)).to(last.dtype)
        else:
            out[key] = last.clone()
    return out


def _load(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{path} is not a phonemekit checkpoint (no 'model' and 'config'): pass "
                         "last.pt, best.pt, epoch-NNN.pt, avg.pt, ema.pt or swa.pt files")
    return ckpt


def average_checkpoints(paths, out=None, device="cpu") -> torch.nn.Module:
    """A model whose weights are the mean of the checkpoints' weights (in eval mode, on device).

    paths: phonemekit checkpoints of one architecture (epoch-NNN.pt, last.pt, best.pt, ...),
    usually the last few epochs of one run. out: also write the average there as a checkpoint
    that load_checkpoint and `phonemekit predict` read.
    """
    from .train import Config, make_model

    paths = [Path(p).expanduser() for p in paths]
    if not paths:
        raise ValueError("average_checkpoints needs at least one checkpoint path")
    ckpts = [_load(p) for p in paths]
    first = ckpts[0]
    shapes = {k: tuple(v.shape) for k, v in first["model"].items()}
    for p, c in zip(paths[1:], ckpts[1:]):
        other = {k: tuple(v.shape) for k, v in c["model"].items()}
        if other != shapes:
            diff = sorted(set(other.items()) ^ set(shapes.items()))[:3]
            raise ValueError(f"{p} holds a different model than {paths[0]} (e.g. {diff}); average "
                             "checkpoints of one architecture only (the same run's epochs)")
    state = average_states([c["model"] for c in ckpts])
    config = Config.from_dict(first["config"])
    model = make_model(config.replace(param_limit=None), first["in_features"])
    model.load_state_dict(state)
    if out is not None:
        meta = {k: v for k, v in first.items() if k in _META_KEYS}
        _atomic_save({**meta, "kind": "avg", "model": state, "epoch": max(int(c.get("epoch", 0)) for c in ckpts),
                      "averaged_from": [str(p) for p in paths]}, Path(out).expanduser())
    return model.to(device).eval()


_META_KEYS = ("format", "config", "in_features", "n_features", "context", "torch_version")


def _atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class EMA:
    """An exponential moving average of a model's weights, updated after every optimizer step:
    ema = decay * ema + (1 - decay) * weights. It averages over roughly the last 1 / (1 - decay)
    steps (1,000 for 0.999). BatchNorm's running statistics are averaged the same way."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).requires_grad_(False).eval()
        src = [*model.parameters(), *model.buffers()]
        dst = [*self.model.parameters(), *self.model.buffers()]
        # the optimiser updates the tensors in place, so these lists stay valid for the whole run
        self._dst = [d for d in dst if d.is_floating_point()]
        self._src = [s for d, s in zip(dst, src) if d.is_floating_point()]
        self._others = [(d, s) for d, s in zip(dst, src) if not d.is_floating_point()]

    @torch.no_grad()
    def update(self) -> None:
        if self._dst:
            # a fused multi-tensor kernel for all weights, and no wait for the GPU
            torch._foreach_lerp_(self._dst, self._src, 1 - self.decay)
        for d, s in self._others:  # BatchNorm's num_batches_tracked
            d.copy_(s)


def _has_batchnorm(model) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


class Averaging:
    """The averaged models a Config switches on, kept up to date by fit().

    on_step() after every optimizer step; end_epoch() after every epoch returns the models to
    validate; record() saves the best of each kind; state_dict()/load_state_dict() go in last.pt.
    """

    def __init__(self, config, model: torch.nn.Module, checkpoint_dir: Path, meta: dict, main: bool = True,
                 verbose: bool = True):
        self.config, self.model, self.dir, self.meta, self.main = config, model, Path(checkpoint_dir), meta, main
        self.verbose = verbose and main
        self.k = config.average_last or 0
        self.recent: list[dict] = []  # CPU state_dicts after each of the last k epochs
        self.avg_model = copy.deepcopy(model).requires_grad_(False) if self.k else None
        self.ema = EMA(model, config.ema_decay) if config.ema_decay else None
        self.swa = AveragedModel(model) if config.swa_start else None
        self.kinds = [k for k, on in zip(KINDS, (self.k, self.ema, self.swa)) if on]
        self.best = {k: -1.0 for k in self.kinds}
        self.latest: dict[str, torch.nn.Module] = {}

    @property
    def columns(self) -> list[str]:
        return [f"val_acc_{k}" for k in self.kinds]

    def on_step(self) -> None:
        if self.ema is not None:
            self.ema.update()

    def end_epoch(self, epoch: int, train_loader, autocast, reduce_buffers=None) -> dict:
        """{kind: model} to validate after `epoch` (1-based). autocast: a context manager factory
        for the BatchNorm pass of SWA; reduce_buffers(model) averages BatchNorm statistics
        across processes (several GPUs)."""
        models = {}
        if self.k:
            state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
            self.recent = (self.recent + [state])[-self.k:]
            if self.main:
                self._write_epoch_file(epoch, state)
            self.avg_model.load_state_dict(average_states(self.recent))
            models["avg"] = self.avg_model
        if self.ema is not None:
            models["ema"] = self.ema.model
        if self.swa is not None and epoch >= self.config.swa_start:
            self.swa.update_parameters(self.model)
            if _has_batchnorm(self.swa.module):
                # the averaged weights need their own BatchNorm statistics: one forward pass
                # over the training data (no gradients) recomputes them
                with autocast():
                    update_bn(train_loader, self.swa.module)
                if reduce_buffers is not None:
                    reduce_buffers(self.swa.module)
            models["swa"] = self.swa.module
        self.latest = models
        return models

    def models(self) -> dict:
        """{kind: model} as they stand now (after the last epoch trained or loaded)."""
        out = {}
        if self.k and self.recent:
            if "avg" not in self.latest:
                self.avg_model.load_state_dict(average_states(self.recent))
            out["avg"] = self.avg_model
        if self.ema is not None:
            out["ema"] = self.ema.model
        if self.swa is not None and int(self.swa.n_averaged) > 0:
            out["swa"] = self.swa.module
        return out

    def record(self, epoch: int, accs: dict) -> None:
        """Keep the best model of each kind as <kind>.pt (avg.pt, ema.pt, swa.pt)."""
        for kind, acc in accs.items():
            if acc > self.best[kind]:
                self.best[kind] = acc
                if self.main:
                    state = self.latest[kind].state_dict()
                    _atomic_save({**self.meta, "kind": kind, "epoch": epoch, "val_acc": acc, "model": state},
                                 self.dir / f"{kind}.pt")

    def _write_epoch_file(self, epoch: int, state: dict) -> None:
        _atomic_save({**self.meta, "kind": "epoch", "epoch": epoch, "model": state}, self.dir / f"epoch-{epoch:03d}.pt")
        for p in self.dir.glob("epoch-*.pt"):  # only the last k are needed
            n = p.stem.partition("-")[2]
            if n.isdigit() and int(n) <= epoch - self.k:
                p.unlink(missing_ok=True)

    def state_dict(self) -> dict:
        return {"ema": self.ema.model.state_dict() if self.ema is not None else None,
                "swa": self.swa.state_dict() if self.swa is not None else None,
                "best": dict(self.best)}

    def load_state_dict(self, state: dict | None, epoch: int) -> None:
        """Continue after `epoch` from last.pt's state; the last k weights come from epoch-NNN.pt."""
        state = state or {}
        self.best.update({k: v for k, v in (state.get("best") or {}).items() if k in self.best})
        if self.ema is not None and state.get("ema") is not None:
            self.ema.model.load_state_dict(state["ema"])
        elif self.ema is not None and self.verbose and epoch:
            print(f"phonemekit: the checkpoint has no EMA of the weights; it starts from the weights of epoch {epoch}")
        if self.swa is not None and state.get("swa") is not None:
            self.swa.load_state_dict(state["swa"])
        elif self.swa is not None and self.verbose and epoch >= self.config.swa_start:
            print(f"phonemekit: the checkpoint has no SWA average; it starts at epoch {epoch + 1}")
        if self.k:
            wanted = range(max(1, epoch - self.k + 1), epoch + 1)
            files = [self.dir / f"epoch-{e:03d}.pt" for e in wanted]
            found = [f for f in files if f.is_file()]
            self.recent = [_load(f)["model"] for f in found]
            if len(found) < len(files) and self.verbose:
                print(f"phonemekit: average_last={self.k}: {len(files) - len(found)} of the epoch files "
                      f"{files[0].name}..{files[-1].name} are missing in {self.dir}; the average starts "
                      f"from the {len(found)} found")
