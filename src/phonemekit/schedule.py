"""The learning rate as a pure function of where training is.

    from phonemekit.schedule import lr_at
    lr = lr_at(config, epoch, step, steps)     # epoch 0-based, step 0-based within the epoch
    lr = lr_at(config, epoch, step, steps, history=rows)   # plateau reads the validation history

fit() sets this lr on the optimizer before every step, so a checkpoint needs no scheduler
state: resuming, even with more `epochs` or another `lr`, simply continues on the schedule
the config now describes (a 2-epoch run resumed with epochs=4 trains epochs 3 and 4 exactly as
an uninterrupted 4-epoch run would). "plateau" is a function of the validation history, which
every checkpoint holds.

Shape of the schedule:
- warm-up (warmup_epochs > 0): the lr rises linearly per batch to `lr`;
- then, over the remaining epochs (`progress` counts epochs after the warm-up, in fractions):
  none          lr
  step          lr * gamma ** (whole epochs // step_size)
  multistep     lr * gamma ** (milestones passed; default at 1/2 and 3/4 of the epochs)
  exponential   lr * gamma ** whole epochs
  cosine        min_lr + (lr - min_lr) * (1 + cos(pi * progress / epochs)) / 2, per batch
  cosine-restarts  the same within cycles of restart_epochs, each restart_mult times longer
  plateau       lr * plateau_factor ** (cuts): a cut after plateau_patience epochs without a
                better validation score (as ReduceLROnPlateau, watching the right direction)
  plateau-restarts  plateau within cycles of restart_epochs (each restart_mult times longer): at
                each restart the lr goes back to lr and the plateau starts watching afresh, as the
                best public HW3P2 solutions restart it
  onecycle      up from lr/25 to lr over onecycle_pct_start of the run, then down to lr/25e4
- SWA (swa_start with swa_lr): from epoch swa_start on the lr anneals (cosine, over
  SWA_ANNEAL_EPOCHS) from the scheduled value to swa_lr, then stays there.
"""

from __future__ import annotations

import math

SWA_ANNEAL_EPOCHS = 2
PLATEAU_THRESHOLD = 1e-4  # a relative improvement below this is no improvement (as ReduceLROnPlateau)


def lr_at(config, epoch: int, step: int, steps: int, history=(), metric: str | None = None) -> float:
    """The lr for batch `step` (0-based) of `epoch` (0-based) of an epoch of `steps` batches.

    history: the rows of the epochs before (dicts with "epoch" and the metric), for plateau.
    metric: the column plateau watches and whether higher is better, e.g. "val_acc" (higher)
    or "val_dist" (lower); default: the config's task's.
    """
    steps = max(1, steps)
    if config.swa_lr is not None and config.swa_start is not None and epoch + 1 >= config.swa_start:
        return _swa(config, epoch, step, steps, history, metric)
    return _scheduled(config, epoch, step, steps, history, metric)


def _scheduled(config, epoch, step, steps, history, metric) -> float:
    lr, warm = config.lr, config.warmup_epochs
    if epoch < warm:
        return lr * min(1.0, (epoch * steps + step + 1) / (warm * steps))
    progress = epoch - warm + step / steps  # epochs since the warm-up, with fractions
    whole, span = epoch - warm, config.epochs - warm
    name = config.scheduler
    if name == "none":
        return lr
    if name == "step":
        return lr * config.gamma ** (whole // config.step_size)
    if name == "multistep":
        milestones = config.milestones or [max(1, span // 2), max(2, 3 * span // 4)]
        return lr * config.gamma ** sum(whole >= m for m in set(milestones))
    if name == "exponential":
        return lr * config.gamma ** whole
    if name == "cosine":
        return _cosine(config.min_lr, lr, progress / max(1, span))
    if name == "cosine-restarts":
        length, start = config.restart_epochs, 0.0
        while progress >= start + length:  # find the cycle `progress` falls in
            start, length = start + length, length * config.restart_mult
        return _cosine(config.min_lr, lr, (progress - start) / length)
    if name == "plateau":
        return max(config.min_lr, lr * config.plateau_factor ** plateau_cuts(config, history, metric))
    if name == "plateau-restarts":
        length, start = config.restart_epochs, 0
        while whole >= start + length:  # the cycle this epoch is in
            start, length = start + length, length * config.restart_mult
        cycle = [r for r in history if r["epoch"] > warm + start]
        return max(config.min_lr, lr * config.plateau_factor ** plateau_cuts(config, cycle, metric))
    if name == "onecycle":
        return _onecycle(lr, (epoch * steps + step) / (config.epochs * steps), config.onecycle_pct_start)
    raise ValueError(f"scheduler={name!r} has no lr formula")


def _cosine(low: float, high: float, fraction: float) -> float:
    return low + (high - low) * (1 + math.cos(math.pi * min(1.0, fraction))) / 2


def _onecycle(lr: float, fraction: float, pct_start: float, div: float = 25.0, final_div: float = 1e4) -> float:
    """torch's OneCycleLR (cosine annealing, its default factors) as a function of the run's fraction."""
    start, end = lr / div, lr / div / final_div
    if fraction < pct_start:
        return _cosine(lr, start, fraction / pct_start)
    return _cosine(end, lr, (fraction - pct_start) / (1 - pct_start))


def plateau_cuts(config, history, metric: str | None = None) -> int:
    """How many times ReduceLROnPlateau would have cut the lr after these epochs' scores."""
    name, higher = _metric(config, metric)
    best, bad, cuts = None, 0, 0
    for row in history:
        if row["epoch"] <= config.warmup_epochs or row.get(name) is None:
            continue  # the warm-up epochs do not count
        score = row[name]
        better = best is None or (score > best * (1 + PLATEAU_THRESHOLD) if higher
                                  else score < best * (1 - PLATEAU_THRESHOLD))
        if better:
            best, bad = score, 0
        else:
            bad += 1
            if bad > config.plateau_patience:
                cuts, bad = cuts + 1, 0
    return cuts


def _metric(config, metric):
    """(the history column plateau watches, whether higher is better): the task's, one home for both."""
    from .task import higher_is_better, task_of

    metric = metric if metric is not None else task_of(config).metric
    return metric, higher_is_better(metric)


def _swa(config, epoch, step, steps, history, metric) -> float:
    """From swa_start on: anneal from the scheduled lr at that point to swa_lr, then hold it."""
    first = config.swa_start - 1  # 0-based epoch where SWA begins
    begin = _scheduled(config, first, 0, steps, [r for r in history if r["epoch"] <= first], metric)
    fraction = ((epoch - first) * steps + step + 1) / (SWA_ANNEAL_EPOCHS * steps)
    return _cosine(config.swa_lr, begin, fraction)
