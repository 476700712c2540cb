"""Where and in what precision the kit computes: one home for device, AMP, storage and threads.

    device = resolve_device("auto")                 # cuda, else mps, else cpu
    amp_dtype = resolve_amp("auto", device)         # bf16 / fp16 on a GPU, None (fp32) on a CPU
    with autocast(device, amp_dtype): ...           # a no-op when amp_dtype is None
    dtype = storage_dtype("auto", device)           # float16 on a GPU, float32 on a CPU
    use_idle_cores(device)                          # fewer torch threads on a busy CPU

Both homeworks and every step (training, validation, prediction, benchmarks) ask here.
"""

from __future__ import annotations

import contextlib
import os

import torch


def resolve_device(device="auto") -> torch.device:
    """auto: cuda, else mps, else cpu. Asking for a device this machine lacks is a ValueError."""
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device={device!r}: use 'auto', 'cpu', 'cuda', 'cuda:1' or 'mps'") from None
    if d.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={device!r}: the kit runs on 'cpu', 'cuda' ('cuda:1', ...) or 'mps'; 'auto' picks one")
    if d.type == "cuda" and not torch.cuda.is_available():
        build = "a CPU-only build of torch" if torch.version.cuda is None else "no GPU visible"
        raise ValueError(f"device={device!r}, but this machine has {build}: use device='auto' or 'cpu' (on "
                         "Colab: Runtime > Change runtime type > GPU)")
    if d.type == "cuda" and d.index is not None and d.index >= torch.cuda.device_count():
        raise ValueError(f"device={device!r}: there are {torch.cuda.device_count()} GPU(s), cuda:0.."
                         f"cuda:{torch.cuda.device_count() - 1}")
    if d.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device={device!r}, but MPS (Apple GPU) is not available here: use device='auto' or 'cpu'")
    return d


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for this device, or None for full fp32."""
    if amp == "off":
        return None
    if device.type == "cuda":
        native_bf16 = torch.cuda.get_device_capability(device) >= (8, 0)
        if amp == "auto":  # a T4 (7.5) "supports" bf16 only by emulation, slowly: fp16 + GradScaler there
            return torch.bfloat16 if native_bf16 else torch.float16
        if amp == "bf16" and not native_bf16:
            raise ValueError(f"amp='bf16': {torch.cuda.get_device_name(device)} (compute capability "
                             f"{'.'.join(map(str, torch.cuda.get_device_capability(device)))}) only emulates bf16, "
                             "slowly; use amp='auto' or 'fp16' (with a GradScaler) on it")
        return torch.bfloat16 if amp == "bf16" else torch.float16
    if amp == "auto":
        return None  # CPU/MPS autocast rarely pays off for these models; ask for bf16 explicitly
    if amp == "fp16":
        raise ValueError(f"amp='fp16' needs a CUDA GPU (device is {device}); use amp='bf16' or 'off'")
    return torch.bfloat16


def autocast(device, amp_dtype):
    """torch.autocast for `amp_dtype` on `device`'s type, or a no-op for None."""
    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.amp.autocast(torch.device(device).type, dtype=amp_dtype)


@contextlib.contextmanager
def tf32(enabled: bool = True):
    """TF32 matmuls (Ampere and newer) for training steps only: validation and prediction run in
    plain fp32 in every process, so best.pt is chosen on the numbers the submission gets."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def storage_dtype(setting, device) -> torch.dtype:
    """How the features are stored: float16 on a GPU for "auto" (half the memory), else float32.
    `setting` is the config's storage_dtype (or a Config)."""
    setting = getattr(setting, "storage_dtype", setting)
    if setting == "auto":
        return torch.float16 if torch.device(device).type == "cuda" else torch.float32
    if setting not in ("float16", "float32"):
        raise ValueError(f"storage_dtype={setting!r}; choose auto, float16 or float32")
    return getattr(torch, setting)


def idle_cores() -> int | None:
    """Cores no other program keeps busy (from the 1-minute load average), or None where unknown."""
    if not hasattr(os, "getloadavg"):
        return None
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, round(cores - os.getloadavg()[0]))


def use_idle_cores(device, verbose: bool = True) -> int:
    """On a CPU that other programs keep busy, train with one torch thread per idle core: a thread
    waiting for a busy core stalls every step (an LSTM backward pass by 10-30 s on a busy 2-core
    machine). Returns the thread count in use; says so when it lowered it. A GPU is left alone."""
    n = torch.get_num_threads()
    if torch.device(device).type != "cpu" or os.environ.get("PHONEMEKIT_THREADS"):
        if os.environ.get("PHONEMEKIT_THREADS"):
            torch.set_num_threads(max(1, int(os.environ["PHONEMEKIT_THREADS"])))
        return torch.get_num_threads()
    idle = idle_cores()
    if idle is not None and idle < n:
        torch.set_num_threads(idle)
        if verbose:
            print(f"phonemekit: the CPU is busy with other work (load average {os.getloadavg()[0]:.1f}): training "
                  f"with {idle} thread{'s' if idle > 1 else ''} instead of {n} (PHONEMEKIT_THREADS=N to choose)")
        return idle
    return n
