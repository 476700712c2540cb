"""Checkpoints: what a run writes, how it writes it safely, and how a model comes back.

    from phonemekit.checkpoint import load_checkpoint
    model, config, ckpt = load_checkpoint("checkpoints/strong/best.pt", device="cuda")

Every file is one plain dict, loadable with torch.load(weights_only=True) (no code runs on
loading): the config as a dict, the model's weights, and for last.pt/best.pt all a resume
needs (optimizer, GradScaler, epoch, history, random state, the callbacks' states). There is
no scheduler state: the lr is a function of the step (phonemekit.schedule).

    last.pt   after every epoch            best.pt   a copy of last.pt at the best epoch
    avg.pt / ema.pt / swa.pt / epoch-NNN.pt      weight averaging (phonemekit.averaging)

Safety: a file is written under a unique temporary name and renamed into place, so a kill
mid-write keeps the previous file and two writers never share a temporary file; a run holds
a lock on its checkpoint_dir (released by the operating system when the process dies, so a
crashed run leaves nothing stuck); resume repairs best.pt when a kill came between last.pt and
its copy.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import random
import shutil
import socket
import time
import uuid
from pathlib import Path

import numpy as np
import torch

from .config import Config

FORMAT = 2
# keys that describe the model and its data, copied into every file a run writes
META_KEYS = ("format", "task", "config", "in_features", "n_features", "context", "stats", "input",
             "custom_model", "torch_version")


# --------------------------------------------------------------------------------------------
# Writing


def save(obj, path) -> Path:
    """torch.save to a unique temporary file, then rename: a crash mid-write keeps the old file."""
    return _write_atomically(Path(path), lambda tmp: torch.save(obj, tmp))


def copy(src, dst) -> Path:
    """An atomic copy (best.pt from last.pt)."""
    return _write_atomically(Path(dst), lambda tmp: shutil.copyfile(src, tmp))


def _write_atomically(path: Path, write) -> Path:
    # a name of this process and moment: two writers never share a temporary file
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, (OSError, RuntimeError)):
            _raise_write_error(e, path)
        raise
    return path


def _raise_write_error(e: BaseException, path: Path):
    """torch reports a full disk as "[enforce fail at inline_container.cc] ... file write failed"."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    full = getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or (free is not None and free < 64 << 20)
    if full:
        raise OSError(errno.ENOSPC, f"disk full while writing {path}; the previous checkpoint is intact. Free "
                                    f"some space (old runs, wandb/ folders) or set checkpoint_dir on another disk, "
                                    f"then resume") from None
    raise OSError(getattr(e, "errno", None) or errno.EIO,
                  f"writing {path} failed ({e}); the previous checkpoint is intact") from None


# --------------------------------------------------------------------------------------------
# Reading


def read(path, device="cpu") -> dict:
    """The dict in a phonemekit checkpoint; a clear error for anything else."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist: train with fit(config) first, "
                                "or point at the checkpoint_dir of that run")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as e:
        if "global" not in str(e).lower():  # no object refused: the bytes are not a pickle at all
            return _unreadable(path, e)
        # never load it unrestricted: unpickling arbitrary objects can run code
        raise ValueError(f"{path} holds Python objects other than tensors and plain values, so phonemekit did "
                         "not write it and will not load it; use a last.pt/best.pt written by the kit") from None
    except Exception as e:  # truncated zip, empty file, not a torch file at all
        return _unreadable(path, e)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{path} is not a phonemekit checkpoint (no 'model' and 'config'): pass a last.pt, "
                         "best.pt, epoch-NNN.pt, avg.pt, ema.pt or swa.pt that a run wrote")
    return ckpt


def _unreadable(path: Path, e: Exception):
    what = "an empty file" if path.stat().st_size == 0 else "truncated or not a PyTorch checkpoint"
    raise ValueError(f"{path} cannot be read: {what} ({type(e).__name__}). It may be an interrupted copy "
                     "or download: copy it again, or use the run's other checkpoint (last.pt or best.pt)") from None


def resolve(path) -> Path:
    """A checkpoint file from a file or a run's folder (its best.pt, else last.pt)."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / "best.pt" if (path / "best.pt").is_file() else path / "last.pt"
    return path


def make_model(config: Config, meta) -> torch.nn.Module:
    """The model a config describes (meta: a checkpoint's meta, or the frame model's in_features
    as an int), built by the config's task and checked against the parameter limit."""
    from .model import check_budget
    from .task import task_of

    model = task_of(config).build_model(config, meta)
    if config.param_limit:
        check_budget(model, budget=config.param_limit)
    return model


def load_checkpoint(path, device="cpu", model: torch.nn.Module | None = None):
    """(model, config, checkpoint) from a last.pt/best.pt (or a run's folder): the model is rebuilt
    from the saved config (or, for your own network class, pass an instance as `model`), given its
    weights, moved to `device` and put in eval mode."""
    from .model import FlatInput

    path = resolve(path)
    ckpt = read(path, device)
    config = Config.from_dict(ckpt["config"])
    if model is None:
        if ckpt.get("custom_model"):
            raise ValueError(f"{path} holds the weights of your own network ({ckpt['custom_model']}): build it as "
                             "you did for training and pass it, load_checkpoint(path, model=Network(...))")
        model = make_model(config.replace(param_limit=None), ckpt)
    elif ckpt.get("input") == "flat" and not isinstance(model, FlatInput):
        model = FlatInput(model)
    load_weights(model, ckpt["model"], path)
    return model.to(device).eval(), config, ckpt


def load_weights(model: torch.nn.Module, state: dict, path) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise ValueError(f"{path} holds a different model than the one built here ({first[0] if first else e} ...): "
                         "use the settings it was trained with (its config is inside it), or a new checkpoint_dir"
                         ) from None


def meta_of(ckpt: dict) -> dict:
    return {k: ckpt[k] for k in META_KEYS if k in ckpt}


def best_in_history(ckpt: dict):
    """(best score, best epoch) of a checkpoint (older files name the score best_val_acc)."""
    return ckpt.get("best", ckpt.get("best_val_acc")), ckpt.get("best_epoch", 0)


def repair_best(directory: Path, ckpt: dict, verbose: bool = True) -> None:
    """Make best.pt hold the epoch last.pt names as best (a kill can come between the two writes)."""
    _, best_epoch = best_in_history(ckpt)
    if not best_epoch:
        return
    best = Path(directory) / "best.pt"
    try:
        holds = torch.load(best, map_location="cpu", weights_only=True, mmap=True).get("epoch")
    except Exception:
        holds = None  # missing or unreadable
    if holds == best_epoch:
        return
    if ckpt.get("epoch") == best_epoch:
        copy(Path(directory) / "last.pt", best)
        if verbose:
            print(f"phonemekit: {best} did not hold the best epoch {best_epoch} (the run stopped between writing "
                  "last.pt and best.pt); restored it from last.pt")
    elif verbose:
        print(f"phonemekit: {best} holds epoch {holds}, but the history's best is epoch {best_epoch}, which no "
              "checkpoint holds any more; best.pt is rewritten at the next better epoch")


# --------------------------------------------------------------------------------------------
# Random state


def rng_state(device) -> dict:
    """Every RNG the loop touches, as tensors and plain lists (loadable with weights_only=True).
    CUDA: the state of this run's GPU only, so the file resumes on a machine with fewer GPUs."""
    device = torch.device(device)
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }
    if device.type == "mps":
        state["mps"] = torch.mps.get_rng_state()
    return state


def set_rng_state(state: dict, device) -> None:
    device = torch.device(device)
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
    cuda = state.get("cuda")
    if isinstance(cuda, (list, tuple)):  # files of format 1 held one state per visible GPU
        cuda = cuda[0] if cuda else None
    if device.type == "cuda" and cuda is not None:
        torch.cuda.set_rng_state(cuda.cpu(), device)
    if device.type == "mps" and state.get("mps") is not None:
        torch.mps.set_rng_state(state["mps"].cpu())


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------
# One run per folder

RUN_FILES = ("last.pt", "best.pt", "avg.pt", "ema.pt", "swa.pt")


def holds_run(directory: Path) -> bool:
    """True when the folder holds a run's checkpoint (last.pt or best.pt)."""
    return any((Path(directory) / name).is_file() for name in ("last.pt", "best.pt"))


def guard_run_folder(directory: Path, resume, overwrite: bool, verbose: bool = True) -> None:
    """A fresh run (no resume) in a folder that holds a run is refused unless overwrite is asked
    for; then that run's checkpoints are deleted first (none of its files stays to mislead)."""
    directory = Path(directory)
    if resume or not holds_run(directory):
        return
    if not overwrite:
        epoch = _epoch_of(directory / "last.pt")
        held = f" (trained to epoch {epoch})" if epoch else ""
        raise FileExistsError(
            f"{directory} already holds a run{held}: resume it (resume=True, --resume, RESUME = True in the "
            "notebook), or replace it (overwrite=True, --overwrite), or train in another checkpoint_dir (a new "
            "RUN_NAME in the notebook)")
    for path in [*(directory / n for n in RUN_FILES), *directory.glob("epoch-*.pt")]:
        path.unlink(missing_ok=True)
    if verbose:
        print(f"phonemekit: overwrite: the run in {directory} was deleted; training a new one there")


def _epoch_of(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("epoch")
    except Exception:
        return None




@contextlib.contextmanager
def lock(directory: Path, enabled: bool = True):
    """Hold checkpoint_dir for this run: a second run on the same folder is refused.

    An flock on checkpoint_dir/.lock: the operating system releases it when the process ends,
    however it ends, so a crashed run never leaves the folder locked. On a file system without
    locks (some network drives) the run goes on unguarded.
    """
    if not enabled:
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    path = Path(directory) / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise RuntimeError(f"{directory} is in use by another training run ({holder}): two runs on one "
                               "checkpoint_dir would overwrite each other's checkpoints. Wait for it to end, stop "
                               "it, or give this run another checkpoint_dir") from None
        except OSError:
            pass
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}"
                  .encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
