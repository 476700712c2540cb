"""Several GPUs: one process per GPU with DistributedDataParallel, started by torchrun.

    torchrun --nproc_per_node=4 -m phonemekit train --config strong

fit() notices torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) and
then: joins the process group (nccl on GPUs, gloo on CPU), puts process r on cuda:r, gives
each process its own shard of the epoch's frame order (FrameLoader rank/world_size: every
frame is seen once per epoch), averages the gradients (DDP), sums loss, correct frames and
frame counts over the processes for the history, and lets process 0 alone write checkpoints,
history files, wandb and the console. batch_size is per process: N GPUs train on N x
batch_size frames per step (raise lr accordingly, or keep the product the same).
Without torchrun nothing here is used.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owned: bool  # this module started the process group, so it ends it too


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """True in a single process, and in process 0 of a distributed run (before, during or after it)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def local_rank_of() -> int:
    """This process's GPU on its node: LOCAL_RANK (torchrun sets it), else the global rank modulo
    the node's GPUs (a process group started by hand), never cuda:0 for every process."""
    local_rank = os.environ.get("LOCAL_RANK")
    if local_rank is not None:
        return int(local_rank)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else int(os.environ.get("RANK", "0"))
    return rank % gpus if gpus else 0  # nodes of equal size: rank r sits on GPU r mod gpus


def setup(device: str = "auto") -> Dist | None:
    """Join the process group that torchrun describes (None when running as one process).

    device: the config's device. auto/cuda -> cuda:LOCAL_RANK when there is a GPU, else cpu.
    """
    if not (dist.is_available() and (dist.is_initialized() or env_world_size() > 1)):
        return None
    local_rank = local_rank_of()
    name = str(device)
    if name in ("auto", "cuda") and torch.cuda.is_available():
        dev = torch.device("cuda", local_rank)
    elif name == "auto" or name == "cpu":
        dev = torch.device("cpu")
    elif name == "cuda":
        raise RuntimeError("device='cuda' but this machine has no CUDA GPU; use device='cpu' to test the "
                           "distributed run with the gloo backend")
    else:
        raise ValueError(f"device={name!r} cannot be shared by several processes: use device='auto' "
                         "(process r gets cuda:r) or 'cpu'")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)  # nccl collectives and all_gather_object use the current device
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", timeout=datetime.timedelta(minutes=30))
    return Dist(dist.get_rank(), dist.get_world_size(), local_rank, dev, owned)


def cleanup(d: Dist | None) -> None:
    if d is not None and d.owned and dist.is_initialized():
        dist.destroy_process_group()


def shard(loader, d: Dist | None) -> None:
    """Make a loader deliver only this process's shard of every epoch (nothing for one process)."""
    if d is None:
        return
    if not hasattr(loader, "shard"):
        raise ValueError(f"{type(loader).__name__} cannot be shared by several processes: train this task on one GPU")
    if len(loader.dataset) < d.world_size:
        raise ValueError(f"{len(loader.dataset)} frames cannot be shared by {d.world_size} processes")
    loader.rank, loader.world_size = d.rank, d.world_size
    if len(loader) == 0:  # a shard smaller than one batch: keep its frames rather than none
        loader.drop_last = False


def shard_frames(loader) -> int:
    """Frames this process's shard holds in one pass (with drop_last=False)."""
    return loader.shard()[1]


def all_sum(values, d: Dist | None) -> list[float]:
    """The sums of a few numbers over all processes (the numbers themselves for one process)."""
    if d is None:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=d.device)
    dist.all_reduce(t)
    return t.tolist()


def broadcast_flag(flag: bool, d: Dist | None) -> bool:
    """Process 0's value of flag, on every process."""
    if d is None:
        return flag
    t = torch.tensor([int(flag)], device=d.device)
    dist.broadcast(t, 0)
    return bool(t.item())


@torch.no_grad()
def broadcast_buffers(model: torch.nn.Module, d: Dist | None) -> None:
    """Process 0's buffers (BatchNorm statistics) on every process: the same model everywhere."""
    if d is None:
        return
    for b in model.buffers():
        dist.broadcast(b, 0)


@torch.no_grad()
def average_buffers(model: torch.nn.Module, d: Dist | None) -> None:
    """BatchNorm statistics averaged over the processes (each computed them on its own shard)."""
    if d is None:
        return
    for b in model.buffers():
        if b.is_floating_point():
            dist.all_reduce(b)
            b /= d.world_size
        else:
            dist.broadcast(b, 0)


def gather(obj, d: Dist | None) -> list:
    """[obj of process 0, obj of process 1, ...] on every process."""
    if d is None:
        return [obj]
    out = [None] * d.world_size
    dist.all_gather_object(out, obj)
    return out


def wrap(model: torch.nn.Module, d: Dist | None) -> torch.nn.Module:
    """The model for training steps: DistributedDataParallel (gradients averaged) across processes."""
    if d is None:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[d.device.index] if d.device.type == "cuda" else None)


def reduce_epoch(m: dict, model: torch.nn.Module, d: Dist | None) -> dict:
    """An epoch's training figures over every process's items; process 0's BatchNorm statistics
    everywhere (each process saw only its own batches)."""
    if d is None:
        return m
    acc = m["train_acc"] if m["train_acc"] is not None else 0.0
    loss_sum, correct, count = all_sum([m["train_loss"] * m["count"], acc * m["count"], m["count"]], d)
    broadcast_buffers(model, d)
    return {**m, "train_loss": loss_sum / count, "count": count,
            "train_acc": round(correct) / count if m["train_acc"] is not None else None}


def mean_over_processes(scores: dict, loader, d: Dist | None) -> dict:
    """Validation means of each process's shard, combined into the means over the whole set."""
    if d is None:
        return scores
    n = shard_frames(loader)
    names = list(scores)
    sums = all_sum([scores[k] * n for k in names] + [n], d)
    return {k: v / sums[-1] for k, v in zip(names, sums[:-1])}


def rank_rng(ckpt: dict, d: Dist | None) -> dict:
    """This process's random state from a checkpoint (process 0's in a single-process run)."""
    from .checkpoint import rng_state, seed_everything

    ranks = ckpt.get("rng_ranks")
    if d is None or d.rank == 0:
        return ckpt["rng"]
    if ranks and len(ranks) == d.world_size:
        return ranks[d.rank]
    if d.rank == 1:  # process 0 says nothing about the others' random numbers: say it once here
        print(f"phonemekit: the checkpoint holds the random state of {len(ranks) if ranks else 1} process(es), "
              f"this run has {d.world_size}: dropout and augmentation draw new random numbers from here on")
    seed_everything(int(ckpt["config"].get("seed", 0)) + 7919 * ckpt["epoch"] + d.rank)
    return rng_state(torch.device("cpu"))
