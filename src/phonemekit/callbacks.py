"""Callbacks of fit()'s loop: the epoch line, wandb, and the student's own.

A callback is any object with some of on_fit_start(run), on_step(run), on_epoch_end(run) and
on_fit_end(run) (phonemekit.train.Run); weight averaging's are in phonemekit.averaging. The loop
itself knows none of them: it fires the events in order.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from .task import format_score as _fmt

if TYPE_CHECKING:  # annotations only: train imports this module
    from .config import Config
    from .train import Run



def default_progress() -> bool:
    """Progress bars on a terminal or in an interactive notebook; off when output goes to a file
    (nohup, CI, a headless notebook run), where they would fill the log with redraws."""
    env = os.environ.get("PHONEMEKIT_PROGRESS")
    if env is not None:
        return env.strip().lower() not in ("0", "false", "no", "off", "")
    if sys.stderr is not None and sys.stderr.isatty():
        return True
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"  # Jupyter, Colab




def rate(per_s: float, unit: str) -> str:
    """1,234 frames/s or 1.2M frames/s: never "0k"."""
    if per_s >= 1e6:
        return f"{per_s / 1e6:.1f}M {unit}/s"
    return f"{per_s:,.0f} {unit}/s"


class EpochPrinter:
    """One line per epoch: losses, scores, lr, time, throughput; * marks the best epoch so far."""

    name = "print"

    def on_epoch_end(self, run: Run):
        if not run.verbose:
            return
        m, metric = run.metrics, run.task.metric
        score = metric[4:]  # acc | dist
        train = f"train loss {m['train_loss']:.4f}" + (f" acc {m['train_acc']:.2%}" if "train_acc" in m else "")
        extra = "".join(f" | {k[len(metric) + 1:]} {_fmt(metric, v)}" for k, v in m.items()
                        if k.startswith(metric + "_"))  # avg, ema, swa
        tqdm.write(f"epoch {m['epoch']:>3}/{run.config.epochs} | {train} | val loss {m['val_loss']:.4f} {score} "
                   f"{_fmt(metric, m[metric])} | lr {m['lr']:.2e} | {m['epoch_time']:.1f} s, "
                   f"{rate(m[f'{run.task.unit}_per_s'], run.task.unit)}"
                   + (" *" if m["epoch"] == run.best_epoch else "") + extra)


class FunctionCallbacks:
    """A dict {"on_epoch_end": fn or [fn, ...], ...} as a callback object."""

    name = "user"
    EVENTS = ("on_fit_start", "on_step", "on_epoch_end", "on_fit_end")

    def __init__(self, table: dict):
        for event, fns in table.items():
            if event not in self.EVENTS:
                raise ValueError(f"unknown callback event {event!r}: use {', '.join(self.EVENTS)}")
            fns = list(fns) if isinstance(fns, (list, tuple)) else [fns]
            setattr(self, event, lambda run, fns=fns: [fn(run) for fn in fns])


def as_callbacks(callbacks) -> list:
    if not callbacks:
        return []
    if isinstance(callbacks, dict):
        return [FunctionCallbacks(callbacks)]
    return [FunctionCallbacks(c) if isinstance(c, dict) else c for c in callbacks]


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


def wandb_callbacks(config: Config) -> list:
    """[WandbCallback] when wandb logging is on (config.wandb_mode, else $WANDB_MODE), else []."""
    mode = config.wandb_mode or os.environ.get("WANDB_MODE") or "disabled"
    mode = {"dryrun": "offline", "run": "online"}.get(mode, mode)  # wandb's older spellings
    if mode not in ("online", "offline", "disabled"):
        raise ValueError(f"WANDB_MODE={mode!r}; use online, offline or disabled")
    if mode == "disabled":
        return []
    try:
        import wandb  # noqa: F401  (only when asked for: it is an optional dependency)
    except ImportError:
        raise ImportError("wandb_mode is set but wandb is not installed: pip install wandb "
                          "(or set wandb_mode='disabled')") from None
    if mode == "online" and not wandb_has_key():
        raise RuntimeError(
            "wandb_mode='online' needs an API key: set WANDB_API_KEY in the environment "
            "(on Colab: add it as a secret and run os.environ['WANDB_API_KEY'] = "
            "google.colab.userdata.get('WANDB_API_KEY')), or run `wandb login` once; "
            "or use wandb_mode='offline' and `wandb sync` later")
    return [WandbCallback(config, mode)]


class WandbCallback:
    """Logs every epoch's row; optionally watches the model and uploads best.pt and the architecture."""

    name = "wandb"

    def __init__(self, config: Config, mode: str):
        self.config, self.mode, self.wandb_run = config, mode, None

    def on_fit_start(self, run: Run):
        import wandb

        c = self.config
        self.wandb_run = wandb.init(project=c.wandb_project, name=c.wandb_run_name, config=c.to_dict(),
                                    mode=self.mode, id=run.wandb_id, resume="allow" if run.wandb_id else None)
        run.wandb_id = self.wandb_run.id
        if c.wandb_watch:
            self.wandb_run.watch(run.model, log=c.wandb_watch, log_freq=max(c.log_every, 100))

    def on_epoch_end(self, run: Run):
        self.wandb_run.log({k: v for k, v in run.metrics.items() if k != "epoch"}, step=run.metrics["epoch"])
        self.wandb_run.summary[f"best_{run.task.metric}"] = run.best

    def on_fit_end(self, run: Run):
        if self.wandb_run is None:
            return
        if self.config.wandb_artifacts and (run.dir / "best.pt").is_file():
            import wandb

            (run.dir / "model.txt").write_text(f"{run.model}\n")  # the architecture, readable
            art = wandb.Artifact(f"{self.config.wandb_run_name or run.wandb_id}-model", type="model",
                                 metadata={"best_epoch": run.best_epoch, run.task.metric: run.best})
            art.add_file(str(run.dir / "best.pt"))
            art.add_file(str(run.dir / "model.txt"))
            self.wandb_run.log_artifact(art)
        self.wandb_run.finish()


