"""Weight averaging: the last k epochs' weights, an EMA of the weights, and SWA.

Each is one Config switch, evaluated on the validation set after every epoch and reported in
the history as its own column:

    average_last=5     val_acc_avg  mean of the weights after the last 5 epochs (the course's
                                    "self-ensemble" of checkpoints, at the cost of one model)
    ema_decay=0.999    val_acc_ema  exponential moving average, updated after every step
    swa_start=16       val_acc_swa  SWA (torch.optim.swa_utils): the mean of the weights after
                                    epochs 16, 17, ...; BatchNorm statistics recomputed over the
                                    training data before each evaluation. swa_lr (optional)
                                    anneals the lr to a constant with the SWA anneal.

Each is a callback of fit()'s loop (on_step, on_epoch_end), not a branch inside it. The
columns are named after the task's metric: val_acc_avg for HW1P2, val_dist_avg for HW3P2.

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

import contextlib
import copy
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel

from . import checkpoint, distributed
from .config import Config

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


def average_checkpoints(paths, out=None, device="cpu") -> torch.nn.Module:
    """A model whose weights are the mean of the checkpoints' weights (in eval mode, on device).

    paths: phonemekit checkpoints of one architecture (epoch-NNN.pt, last.pt, best.pt, ...),
    usually the last few epochs of one run. out: also write the average there as a checkpoint
    that load_checkpoint and `phonemekit predict` read.
    """
    paths = [Path(p).expanduser() for p in paths]
    if not paths:
        raise ValueError("average_checkpoints needs at least one checkpoint path")
    ckpts = [checkpoint.read(p) for p in paths]
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
    model = checkpoint.make_model(config.replace(param_limit=None), first)
    model.load_state_dict(state)
    if out is not None:
        out = Path(out).expanduser()
        out.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.save({**checkpoint.meta_of(first), "kind": "avg", "model": state,
                         "epoch": max(int(c.get("epoch", 0)) for c in ckpts),
                         "averaged_from": [str(p) for p in paths]}, out)
    return model.to(device).eval()


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


@torch.no_grad()
def update_bn(loader, model: torch.nn.Module, inputs: int = 1, amp=None) -> None:
    """BatchNorm statistics recomputed over one pass of the training data (no gradients):
    averaged weights need their own. inputs: how many leading batch tensors the model takes."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = {m: m.momentum for m in norms}
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the pass
    was_training = model.training
    model.train()
    device = next(model.parameters()).device
    with amp if amp is not None else contextlib.nullcontext():
        for batch in loader:
            model(*(t.to(device, non_blocking=True) for t in batch[:inputs]))
    for m in norms:
        m.momentum = momenta[m]
    model.train(was_training)


class _Averager:
    """The common part: validate the averaged model after each epoch, keep its best as <name>.pt."""

    name = "avg"

    def __init__(self, run):
        self.best = None

    def averaged(self):
        raise NotImplementedError

    def on_epoch_end(self, run) -> None:
        model = self.update_epoch(run)
        if model is None:
            return
        metric = run.task.metric
        score = run.validate(model)[metric]
        run.metrics[f"{metric}_{self.name}"] = score
        if run.task.better(score, self.best):
            self.best = score
            if run.main:
                checkpoint.save({**run.meta, "kind": self.name, "epoch": run.epoch, metric: score,
                                 "model": model.state_dict()}, run.dir / f"{self.name}.pt")

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state, run) -> None:
        self.best = (state or {}).get("best")


class LastK(_Averager):
    """The mean of the weights after the last k epochs; epoch-NNN.pt keeps each of them."""

    name = "avg"

    def __init__(self, run, k: int):
        super().__init__(run)
        self.k, self.model = k, run.model
        self.recent: list[dict] = []  # CPU state_dicts after each of the last k epochs
        self.avg_model = copy.deepcopy(run.model).requires_grad_(False)

    def update_epoch(self, run):
        state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
        self.recent = (self.recent + [state])[-self.k:]
        if run.main:
            checkpoint.save({**run.meta, "kind": "epoch", "epoch": run.epoch, "model": state},
                            run.dir / f"epoch-{run.epoch:03d}.pt")
            for p in run.dir.glob("epoch-*.pt"):  # only the last k are needed
                n = p.stem.partition("-")[2]
                if n.isdigit() and int(n) <= run.epoch - self.k:
                    p.unlink(missing_ok=True)
        self.avg_model.load_state_dict(average_states(self.recent))
        return self.avg_model

    def averaged(self):
        if not self.recent:
            return None
        self.avg_model.load_state_dict(average_states(self.recent))
        return self.avg_model

    def load_state_dict(self, state, run) -> None:
        """The last k weights come back from the epoch-NNN.pt files."""
        super().load_state_dict(state, run)
        wanted = range(max(1, run.epoch - self.k + 1), run.epoch + 1)
        files = [run.dir / f"epoch-{e:03d}.pt" for e in wanted]
        found = [f for f in files if f.is_file()]
        self.recent = [checkpoint.read(f)["model"] for f in found]
        if len(found) < len(files) and run.verbose:
            print(f"phonemekit: average_last={self.k}: {len(files) - len(found)} of the epoch files "
                  f"{files[0].name}..{files[-1].name} are missing in {run.dir}; the average starts "
                  f"from the {len(found)} found")


class EMACallback(_Averager):
    """The EMA of the weights, updated after every optimizer step."""

    name = "ema"

    def __init__(self, run, decay: float):
        super().__init__(run)
        self.ema = EMA(run.model, decay)

    def on_step(self, run) -> None:
        self.ema.update()

    def update_epoch(self, run):
        distributed.broadcast_buffers(self.ema.model, run.ddp)
        return self.ema.model

    def averaged(self):
        return self.ema.model

    def state_dict(self) -> dict:
        return {**super().state_dict(), "model": self.ema.model.state_dict()}

    def load_state_dict(self, state, run) -> None:
        super().load_state_dict(state, run)
        if state and state.get("model") is not None:
            self.ema.model.load_state_dict(state["model"])
        elif run.epoch and run.verbose:
            print(f"phonemekit: the checkpoint has no EMA of the weights; it starts from the weights of epoch {run.epoch}")


class SWACallback(_Averager):
    """SWA: the mean of the weights after epochs swa_start, swa_start + 1, ... (the lr schedule's
    SWA phase is phonemekit.schedule's)."""

    name = "swa"

    def __init__(self, run, start: int):
        super().__init__(run)
        self.start, self.swa = start, AveragedModel(run.model)

    def update_epoch(self, run):
        if run.epoch < self.start:
            return None
        self.swa.update_parameters(run.model)
        if _has_batchnorm(self.swa.module):
            amp = torch.amp.autocast(run.device.type, dtype=run.amp_dtype) if run.amp_dtype is not None else None
            update_bn(run.train_loader, self.swa.module, run.task.inputs, amp)
            distributed.average_buffers(self.swa.module, run.ddp)
        return self.swa.module

    def averaged(self):
        return self.swa.module if int(self.swa.n_averaged) > 0 else None

    def state_dict(self) -> dict:
        return {**super().state_dict(), "swa": self.swa.state_dict()}

    def load_state_dict(self, state, run) -> None:
        super().load_state_dict(state, run)
        if state and state.get("swa") is not None:
            self.swa.load_state_dict(state["swa"])
        elif run.epoch >= self.start and run.verbose:
            print(f"phonemekit: the checkpoint has no SWA average; it starts at epoch {run.epoch + 1}")


def averaging_callbacks(config, run) -> list:
    """The averaging the config switches on (average_last, ema_decay, swa_start), as callbacks."""
    out = []
    if config.average_last:
        out.append(LastK(run, config.average_last))
    if config.ema_decay:
        out.append(EMACallback(run, config.ema_decay))
    if config.swa_start:
        out.append(SWACallback(run, config.swa_start))
    return out
