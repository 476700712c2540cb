"""Search under the budget: ablations, random search, and wandb sweeps shared by a team.

    base = load_recipe("cpu-demo")
    table = ablation(base, {"dropout": [0.0, 0.1, 0.2], "activation": ["relu", "gelu"]}, epochs=2)
    space = {"lr": ("loguniform", 1e-4, 3e-3), "dropout": [0.0, 0.1, 0.2, 0.3],
             "context": ("int", 10, 40), "hidden": [[1024, 512], [2048, 1024, 512]]}
    table = random_search(space, base, trials=20, subset=0.1, epochs=3)  # ranked by val accuracy
    fit(Config.load("search/best.yaml"))                               # train the winner fully

A search space maps Config fields to a list of choices, or to a distribution:
("uniform", lo, hi), ("loguniform", lo, hi) (for learning rates) or ("int", lo, hi) (both
ends included). Every sampled config is counted before it is trained (nothing is allocated):
one over the parameter budget is skipped, and the skips are counted and reported.

sampler="fill-budget" draws an architecture the way the course's hackathon did: a random
shape, depth and activation, with the widths solved so the model fills the budget.

Team sweeps: write_sweep(space, "sweep.yaml"), `wandb sweep sweep.yaml` once, then everyone
runs `python -m phonemekit sweep-agent SWEEP_ID --base strong`: wandb's sweep
controller hands out the configs, each agent trains them with fit.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .model import BUDGET, SHAPES, build_mlp, count_params, solve_widths
from .train import Config, apply_overrides, fit, load_recipe, make_datasets, resolve_device

DISTRIBUTIONS = ("uniform", "loguniform", "int")
SAMPLERS = ("random", "fill-budget")
# fill-budget's architecture choices unless the space names its own
FILL_DEPTHS = ("int", 2, 8)
FILL_ACTIVATIONS = ["relu", "leakyrelu", "gelu", "silu"]
# knobs that say where and how a run happens, not what it learns: left out of a shared sweep
MACHINE_KEYS = ("root", "cache_dir", "device", "resident", "storage_dtype", "amp", "compile", "eval_batch_size",
                "checkpoint_dir", "log_every", "wandb_mode", "wandb_project", "wandb_run_name")


# --------------------------------------------------------------------------------------------
# Spaces and sampling


def _as_config(base) -> Config:
    from .task import task_of

    if base is None:
        config = Config()
    elif isinstance(base, Config):
        config = base
    elif isinstance(base, dict):
        config = Config.from_dict(base)
    else:
        config = load_recipe(base)  # a recipe name or a .yaml/.json path
    task_of(config).require("search", "the search (random_search, ablation, sweeps)")
    return config


def check_space(space: dict) -> dict:
    """The space, checked: Config fields only, non-empty choice lists, well-formed distributions."""
    if not isinstance(space, dict) or not space:
        raise ValueError("a search space is a non-empty dict: {config field: [choices] or (distribution, lo, hi)}")
    names = [f.name for f in dataclasses.fields(Config)]
    for key, spec in space.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=2, cutoff=0.5)
            raise ValueError(f"search space key {key!r} is not a Config field"
                             + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""))
        if isinstance(spec, list):
            if not spec:
                raise ValueError(f"search space {key!r}: the list of choices is empty")
        elif isinstance(spec, tuple):
            if len(spec) != 3 or spec[0] not in DISTRIBUTIONS:
                raise ValueError(f"search space {key!r}: {spec!r} is not (kind, lo, hi) with kind one of "
                                 f"{DISTRIBUTIONS}; a list gives choices")
            kind, lo, hi = spec
            if not (isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo <= hi):
                raise ValueError(f"search space {key!r}: {spec!r} needs numbers lo <= hi")
            if kind == "loguniform" and lo <= 0:
                raise ValueError(f"search space {key!r}: loguniform needs lo > 0, got {lo}")
            if kind == "int" and (int(lo) != lo or int(hi) != hi):
                raise ValueError(f"search space {key!r}: ('int', lo, hi) needs whole numbers, got {spec!r}")
        else:
            raise ValueError(f"search space {key!r}: give a list of choices or a tuple (kind, lo, hi), "
                             f"not {type(spec).__name__} {spec!r}")
    return space


def _draw(spec, rng: np.random.Generator):
    if isinstance(spec, list):
        return spec[int(rng.integers(len(spec)))]  # by index: choices may themselves be lists
    kind, lo, hi = spec
    if kind == "uniform":
        return float(rng.uniform(lo, hi))
    if kind == "loguniform":
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return int(rng.integers(int(lo), int(hi) + 1))


def sample(space: dict, rng: np.random.Generator, sampler="random", budget: int = BUDGET) -> dict:
    """One draw from the space: {field: value}.

    sampler="fill-budget" also draws shape, depth and activation (from the space when it names
    them, else every shape, depth 2-8 and relu/leakyrelu/gelu/silu) and sets hidden=None,
    budget=budget, so that fit solves the widths to fill the budget. A callable sampler is
    called as sampler(space, rng) and returns the dict itself.
    """
    if callable(sampler):
        return dict(sampler(space, rng))
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r}; choose one of {SAMPLERS} or pass a function (space, rng) -> dict")
    knobs = {key: _draw(spec, rng) for key, spec in space.items()}
    if sampler == "fill-budget":
        arch = {"shape": list(SHAPES), "depth": FILL_DEPTHS, "activation": FILL_ACTIVATIONS}
        for key, spec in arch.items():
            if key not in space:
                knobs[key] = _draw(spec, rng)
        knobs["hidden"], knobs["budget"] = None, int(budget)
    return knobs


# --------------------------------------------------------------------------------------------
# Counting a config's parameters without training it


@functools.cache
def _n_features_of(root: str, partition: str) -> int:
    from .data import utterance_shapes

    return utterance_shapes(root, partition, limit=1)[0][1]


def n_features(config: Config) -> int:
    """Feature dimension of the config's training data (read from one file's header)."""
    from .data import default_root

    root = config.root if config.root is not None else default_root(verbose=False)
    return _n_features_of(str(Path(root).expanduser().resolve()), config.train_partition)


def config_params(config: Config, features: int | None = None) -> int:
    """Parameters of the model `config` describes, counted on the meta device (no memory, no data)."""
    return config_arch(config, features)[0]


def config_arch(config: Config, features: int | None = None) -> tuple[int, list[int]]:
    """(parameters, hidden widths) of the model `config` describes, without building it for real."""
    features = n_features(config) if features is None else features
    in_features = (2 * config.context + 1) * features
    hidden = config.hidden
    if hidden is None:
        hidden = solve_widths(in_features, config.shape, config.depth, config.budget or BUDGET,
                              config.num_classes, config.norm, config.residual)
    with torch.device("meta"):  # shapes only: a 20M-parameter model costs nothing here
        model = build_mlp(in_features, num_classes=config.num_classes, hidden=hidden, activation=config.activation,
                          norm=config.norm, dropout=config.dropout, residual=config.residual)
    return count_params(model), list(hidden)


# --------------------------------------------------------------------------------------------
# Training one trial


class _DatasetCache:
    """The last couple of (train, val) dataset pairs: trials that share data settings share data."""

    KEYS = ("root", "train_partition", "val_partition", "context", "normalize", "boundary", "subset",
            "val_subset", "storage_dtype", "cache_dir", "device")

    def __init__(self, size: int = 2):
        self.size, self.items = size, {}

    def get(self, config: Config):
        key = tuple(str(getattr(config, k)) for k in self.KEYS)
        if key not in self.items:
            while len(self.items) >= self.size:
                self.items.pop(next(iter(self.items)))
            self.items[key] = make_datasets(config, resolve_device(config.device))
        return self.items[key]


def _train(config: Config, cache: _DatasetCache, verbose: bool) -> dict:
    """fit one config; a failed run (NaN loss at a wild lr, a bad combination) is recorded, not fatal."""
    t0 = time.perf_counter()
    try:
        result = fit(config, datasets=cache.get(config), progress=False, verbose=False)
    except (ValueError, FloatingPointError, RuntimeError) as e:
        if verbose:
            print(f"  failed: {type(e).__name__}: {e}")
        return {"val_acc": float("nan"), "best_epoch": 0, "seconds": time.perf_counter() - t0,
                "status": f"failed: {type(e).__name__}: {e}"}
    return {"val_acc": result.best_val_acc, "best_epoch": result.best_epoch,
            "train_acc": float(result.history["train_acc"].iloc[-1]), "seconds": time.perf_counter() - t0,
            "status": "ok"}


def _show(value):
    """A table cell for a knob: lists as text so CSV and pandas keep them whole."""
    return str(value) if isinstance(value, (list, tuple, dict)) else value


def _write_best(path: Path, config: Config, note: str) -> Path:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    header = "".join(f"# {line}\n" for line in note.splitlines())
    path.write_text(header + yaml.safe_dump(config.to_dict(), sort_keys=False))
    return path


# --------------------------------------------------------------------------------------------
# Random search


def random_search(space: dict, base=None, budget: int = BUDGET, trials: int = 10, subset: float = 0.1,
                  epochs: int = 3, seed: int = 0, out_dir="search", sampler="random",
                  max_draws: int | None = None, verbose: bool = True) -> pd.DataFrame:
    """Train `trials` configs drawn from `space` on a subset of the data; a table ranked by val acc.

    base:     the Config (or recipe name, .yaml path, dict) the sampled knobs change.
    budget:   a draw whose model has more parameters is skipped (counted before training).
    subset, epochs: each trial trains on this fraction of the training utterances for this
              many epochs (the full dev set validates it). Same seed for every trial.
    sampler:  "random" (each key of the space independently), "fill-budget" (a random
              architecture with its widths solved to fill `budget`), or a function (space, rng) -> dict.
    out_dir:  results.csv (the table), best.yaml (the winner, with base's epochs and subset, so
              `fit(Config.load(...))` or `python -m phonemekit train --config` trains it fully),
              and trial-NNN/ checkpoints.
    Draws over budget, duplicates and invalid combinations are skipped; after max_draws draws
    (default 20 x trials) the search ends with what it has. The skipped draws are in
    table.attrs["skipped"] (a list of dicts) and are summarised when the search ends.

    Columns: rank, trial, val_acc (best epoch), best_epoch, train_acc, params, widths (the
    hidden widths built), seconds, status, checkpoint_dir, then one column per sampled knob.
    """
    if not callable(sampler):
        check_space(space)
    base = _as_config(base)
    if trials < 1:
        raise ValueError(f"trials={trials} must be >= 1")
    base.replace(subset=subset, epochs=epochs)  # fails now, not once per draw (e.g. warmup_epochs >= epochs)
    out_dir = Path(out_dir).expanduser()
    rng = np.random.default_rng(seed)
    max_draws = 20 * trials if max_draws is None else max_draws
    cache, rows, skipped, seen, draws = _DatasetCache(), [], [], set(), 0
    sampled = {}  # trial -> its knobs as drawn (the table shows lists as text)
    features = n_features(base)
    while len(rows) < trials and draws < max_draws:
        draws += 1
        knobs = sample(space, rng, sampler, budget)
        key = repr(sorted(knobs.items()))
        if key in seen:
            skipped.append({**knobs, "reason": "duplicate"})
            continue
        seen.add(key)
        trial = len(rows) + 1  # numbered from 1, as printed
        try:
            # the short run: subset and epochs of the search, unless the space samples them too
            config = base.replace(**{"subset": subset, "epochs": epochs, **knobs,
                                     "checkpoint_dir": str(out_dir / f"trial-{trial:03d}")})
            params, widths = config_arch(config, features)
        except ValueError as e:
            skipped.append({**knobs, "reason": f"invalid: {e}"})
            continue
        if params > budget:
            skipped.append({**knobs, "params": params, "reason": "over budget"})
            continue
        if verbose:
            shown = ", ".join(f"{k}={_fmt(v)}" for k, v in knobs.items())
            print(f"trial {trial}/{trials}: {params:,} params | {shown}")
        res = _train(config, cache, verbose)
        if verbose and res["status"] == "ok":
            print(f"  val acc {res['val_acc']:.2%} in {res['seconds']:.1f} s")
        sampled[trial] = knobs
        rows.append({"trial": trial, **res, "params": params, "widths": str(widths),
                     "checkpoint_dir": config.checkpoint_dir,
                     **{k: _show(v) for k, v in knobs.items()}})

    table = _rank(pd.DataFrame(rows), ["trial", "val_acc", "best_epoch", "train_acc", "params", "widths",
                                       "seconds", "status", "checkpoint_dir"])
    table.attrs["skipped"] = skipped
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "results.csv", index=False)
    if skipped:
        pd.DataFrame([{k: _show(v) for k, v in s.items()} for s in skipped]).to_csv(out_dir / "skipped.csv", index=False)
    reasons = pd.Series([s["reason"].split(":")[0] for s in skipped], dtype=object).value_counts().to_dict()
    if verbose:
        why = ", ".join(f"{n} {r}" for r, n in reasons.items()) or "none"
        print(f"random search: {len(rows)} trained, {len(skipped)} draws skipped ({why}); table in {out_dir / 'results.csv'}")
    if len(rows) < trials and verbose:
        print(f"random search: only {len(rows)} of {trials} trials after {draws} draws: the space is small or "
              "mostly over budget (raise max_draws, widen the space or lower the widths)")
    ok = table[table["status"] == "ok"] if len(table) else table
    if len(ok):
        best = ok.iloc[0]
        # the winner at full scale: base's epochs and subset unless those were searched
        full = base.replace(**sampled[int(best["trial"])])
        table.attrs["best_config"] = full
        _write_best(out_dir / "best.yaml", full,
                    f"Best of a random search ({len(rows)} trials, subset={subset}, epochs={epochs}): "
                    f"val acc {best['val_acc']:.2%}, {int(best['params']):,} parameters.\n"
                    f"Trial checkpoint: {best['checkpoint_dir']}")
        if verbose:
            print(f"best: trial {int(best['trial'])}, val acc {best['val_acc']:.2%}; config in {out_dir / 'best.yaml'}")
    elif verbose:
        print("random search: no trial finished, so no best.yaml was written")
    return table


def _rank(table: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    if table.empty:
        return pd.DataFrame(columns=["rank", *first])
    table = table.sort_values("val_acc", ascending=False, na_position="last", kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table[["rank", *first, *[c for c in table.columns if c not in first and c != "rank"]]]


def _fmt(v):
    return f"{v:.3g}" if isinstance(v, float) else v


# --------------------------------------------------------------------------------------------
# Ablation


def ablation(base_config, knobs: dict, epochs: int | None = None, subset: float | None = None,
             out_dir="ablation", budget: int = BUDGET, verbose: bool = True) -> pd.DataFrame:
    """Change one knob at a time from base_config, with the same seed; a table of the results.

    knobs: {field: [values]}; every value is one run that differs from the base in that field
    only (a value equal to the base's reuses the base run). epochs / subset: override the
    base's for every run (None keeps them). A run over `budget` gets a row saying so.

    Columns: knob, value, val_acc, delta (val_acc - the base's), best_epoch, train_acc, params,
    seconds, status, checkpoint_dir. The first row is the base. Saved as out_dir/ablation.csv.
    """
    base = _as_config(base_config)
    check_space({k: list(v) if isinstance(v, (list, tuple)) else v for k, v in knobs.items()})
    changes = {k: v for k, v in (("epochs", epochs), ("subset", subset)) if v is not None}
    base = base.replace(**changes, checkpoint_dir=str(Path(out_dir).expanduser() / "base"))
    out_dir = Path(out_dir).expanduser()
    cache, features = _DatasetCache(), n_features(base)

    def run(config, label):
        params = config_params(config, features)
        if params > budget:
            if verbose:
                print(f"{label}: {params:,} params, over the budget of {budget:,}: not trained")
            return {"val_acc": float("nan"), "params": params, "status": "over budget"}
        if verbose:
            print(f"{label}: {params:,} params")
        res = _train(config, cache, verbose)
        if verbose and res["status"] == "ok":
            print(f"  val acc {res['val_acc']:.2%} in {res['seconds']:.1f} s")
        return {**res, "params": params}

    base_res = run(base, "base")
    rows = [{"knob": "(base)", "value": "", **base_res, "checkpoint_dir": base.checkpoint_dir}]
    for knob, values in knobs.items():
        for i, value in enumerate(values):
            if _same(getattr(base, knob), value, knob):
                rows.append({"knob": knob, "value": _show(value), **base_res, "checkpoint_dir": base.checkpoint_dir,
                             "status": base_res["status"] + " (the base)"})
                continue
            try:
                config = base.replace(**{knob: value}, checkpoint_dir=str(out_dir / f"{knob}-{i}"))
            except ValueError as e:
                rows.append({"knob": knob, "value": _show(value), "val_acc": float("nan"), "status": f"invalid: {e}"})
                continue
            rows.append({"knob": knob, "value": _show(value), **run(config, f"{knob}={_fmt(value)}"),
                         "checkpoint_dir": config.checkpoint_dir})
    table = pd.DataFrame(rows)
    table.insert(3, "delta", table["val_acc"] - base_res["val_acc"])
    cols = ["knob", "value", "val_acc", "delta", "best_epoch", "train_acc", "params", "seconds", "status", "checkpoint_dir"]
    table = table.reindex(columns=cols)
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "ablation.csv", index=False)
    if verbose:
        print(f"ablation: {len(table)} rows in {out_dir / 'ablation.csv'}")
    return table


def _same(current, value, knob) -> bool:
    try:
        return Config.from_dict({knob: value}).to_dict()[knob] == Config.from_dict({knob: current}).to_dict()[knob]
    except ValueError:
        return False


# --------------------------------------------------------------------------------------------
# Plotting a results table


def plot_results(table: pd.DataFrame, x: str | None = None, logx: bool = False, path=None):
    """Val accuracy of every row: bars per row, or a scatter against the column `x` ("lr" with
    logx=True, "params", "context", or a categorical knob such as "activation").

    Returns the matplotlib Figure (saved as PNG when path is given).
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    fig, ax = plt.subplots(figsize=(7, 3.5))
    if x is None:
        labels = [f"{k}={v}" if k != "(base)" else "base" for k, v in zip(table["knob"], table["value"])] \
            if "knob" in table else [f"trial {t}" for t in table["trial"]]
        colors = ["0.5" if lab == "base" else "C0" for lab in labels]
        ax.barh(range(len(table)), table["val_acc"], color=colors)
        ax.set_yticks(range(len(table)), labels)
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("best val accuracy")
    else:
        values = pd.to_numeric(table[x], errors="coerce")
        if values.isna().all():  # a categorical knob: one column of points per choice
            cats = list(dict.fromkeys(table[x].astype(str)))
            values = table[x].astype(str).map({c: i for i, c in enumerate(cats)})
            ax.set_xticks(range(len(cats)), cats)
        ax.scatter(values, table["val_acc"], color="C0")
        if "trial" in table:
            for t, vx, vy in zip(table["trial"], values, table["val_acc"]):
                ax.annotate(str(t), (vx, vy), textcoords="offset points", xytext=(4, 2), fontsize=8)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel(x)
        ax.set_ylabel("best val accuracy")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    return fig


# --------------------------------------------------------------------------------------------
# Team sweeps with wandb


def to_wandb_sweep(space: dict, method: str = "random", metric: str = "val_acc", base=None,
                   name: str | None = None, sampler: str = "random", budget: int = BUDGET) -> dict:
    """The space as a wandb sweep configuration (a dict; write_sweep saves it as YAML).

    lists -> {"values": [...]}; ("uniform", lo, hi) -> distribution uniform; ("loguniform",
    lo, hi) -> log_uniform_values (lo and hi are the values themselves); ("int", lo, hi) ->
    int_uniform. method "grid" takes lists only. base (a Config, recipe or path): its settings
    go in as fixed values, so every agent trains the same base whatever its own --base says
    (paths, devices, AMP and logging are left to each machine: MACHINE_KEYS).
    sampler="fill-budget": the sweep also draws shape, depth and activation (as random_search's
    sampler does, unless the space names them) and fixes hidden=None, budget=budget, so every
    run's widths are solved to fill the budget.
    """
    check_space(space)
    if method not in ("random", "bayes", "grid"):
        raise ValueError(f"method={method!r}; wandb sweeps use 'random', 'bayes' or 'grid'")
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r}; a sweep file takes one of {SAMPLERS}")
    if sampler == "fill-budget":
        arch = {"shape": list(SHAPES), "depth": FILL_DEPTHS, "activation": list(FILL_ACTIVATIONS)}
        if method == "grid":
            arch["depth"] = list(range(FILL_DEPTHS[1], FILL_DEPTHS[2] + 1))
        space = {**{k: v for k, v in arch.items() if k not in space}, **space}
    params = {}
    if base is not None:
        params = {k: {"value": v} for k, v in _as_config(base).to_dict().items()
                  if k not in MACHINE_KEYS and k not in space}
    for key, spec in space.items():
        if isinstance(spec, list):
            params[key] = {"values": list(spec)}
            continue
        if method == "grid":
            raise ValueError(f"method='grid' needs a list of values for every key; {key!r} is {spec!r}")
        kind, lo, hi = spec
        dist = {"uniform": "uniform", "loguniform": "log_uniform_values", "int": "int_uniform"}[kind]
        cast = int if kind == "int" else float
        params[key] = {"distribution": dist, "min": cast(lo), "max": cast(hi)}
    if sampler == "fill-budget":
        params["hidden"], params["budget"] = {"value": None}, {"value": int(budget)}
    sweep = {"method": method, "metric": {"name": metric, "goal": "maximize"}, "parameters": params}
    if name:
        sweep = {"name": name, **sweep}
    return sweep


def write_sweep(space: dict, path="sweep.yaml", **kwargs) -> Path:
    """Save to_wandb_sweep(space, **kwargs) as YAML for `wandb sweep PATH`."""
    import yaml

    sweep = to_wandb_sweep(space, **kwargs)
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Create the sweep once: wandb sweep " + path.name + "\n"
                    "# then on every machine: python -m phonemekit sweep-agent SWEEP_ID --base CONFIG\n"
                    + yaml.safe_dump(sweep, sort_keys=False))
    return path


def sweep_train(config_overrides: dict | None = None, base=None, budget: int = BUDGET,
                project: str | None = None, mode: str | None = None) -> dict:
    """One sweep run: read the run's config from wandb, merge it into `base`, train, log val_acc.

    wandb.agent calls this with no arguments (sweep_agent_main binds base and budget). Called
    directly, config_overrides stand in for the sweep's choices (with mode="disabled" or
    "offline" nothing leaves the machine). A config over the budget is logged as such and not
    trained. The run's summary val_acc is the best epoch's (what best.pt holds).
    Returns {"val_acc", "params", "status", "checkpoint_dir"}.
    """
    import wandb

    base = _as_config(base)
    # read WANDB_MODE here: wandb reads its environment once per process, at the first init
    mode = mode or os.environ.get("WANDB_MODE") or None
    if project is None and not os.environ.get("WANDB_SWEEP_ID"):  # in a sweep, its project is the run's
        project = base.wandb_project
    run = wandb.init(project=project, config=config_overrides or {}, mode=mode)
    try:
        chosen = {k: v for k, v in dict(run.config).items() if not k.startswith("_")}
        config = base.replace(**chosen, wandb_mode="disabled")  # this run logs, not fit's own
        config = config.replace(checkpoint_dir=str(Path(config.checkpoint_dir) / f"sweep-{run.id}"))
        params = config_params(config)
        run.summary["params"] = params
        if params > budget:
            print(f"phonemekit: {params:,} parameters, over the budget of {budget:,}: not trained")
            run.summary["status"] = "over budget"
            return {"val_acc": None, "params": params, "status": "over budget", "checkpoint_dir": None}

        def log_epoch(state):
            run.log({k: v for k, v in state.metrics.items() if k != "epoch"}, step=state.metrics["epoch"])

        result = fit(config, callbacks={"on_epoch_end": log_epoch}, progress=False)
        run.summary["val_acc"] = result.best_val_acc
        run.summary["best_epoch"] = result.best_epoch
        run.summary["status"] = "ok"
        return {"val_acc": result.best_val_acc, "params": params, "status": "ok",
                "checkpoint_dir": str(result.checkpoint_dir)}
    finally:
        run.finish()


def sweep_agent_main(argv=None) -> int:
    """`python -m phonemekit sweep-agent SWEEP_ID --base CONFIG [--count N] [--set key=value ...]`."""
    p = argparse.ArgumentParser(
        prog="phonemekit sweep-agent",
        description="Train configs handed out by a wandb sweep (create it with `wandb sweep sweep.yaml`).")
    p.add_argument("sweep_id", help="the id `wandb sweep` printed (or entity/project/id)")
    p.add_argument("--base", default=None, help="base config: a recipe name (strong, cpu-demo, ...) or a .yaml path; "
                   "the sweep's values are merged into it (default: the Config defaults)")
    p.add_argument("--count", type=int, default=None, help="runs this agent trains before exiting (default: until the sweep ends)")
    p.add_argument("--project", default=None, help="wandb project of the sweep (default: from the sweep id, else the base's)")
    p.add_argument("--entity", default=None, help="wandb entity (user or team) of the sweep")
    p.add_argument("--budget", type=int, default=BUDGET, help="skip configs with more parameters (default 20,000,000)")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="change the base on this machine, e.g. root=/content/data device=cuda")
    args = p.parse_args(argv)
    from .train import wandb_has_key

    if not wandb_has_key():
        raise SystemExit(
            "phonemekit sweep-agent: wandb needs an API key to talk to the sweep controller. Set "
            "WANDB_API_KEY in the environment (on Colab: add it under Secrets, then "
            "os.environ['WANDB_API_KEY'] = google.colab.userdata.get('WANDB_API_KEY')), or run "
            "`wandb login` once on this machine. Never write the key into code or a notebook."
        )
    import wandb

    base = apply_overrides(_as_config(args.base), args.set)
    train = functools.partial(sweep_train, base=base, budget=args.budget, project=args.project)
    wandb.agent(args.sweep_id, function=train, count=args.count, project=args.project, entity=args.entity)
    return 0


def main(argv=None) -> int:  # python -m phonemekit.search SWEEP_ID ... (the CLI's sweep-agent)
    return sweep_agent_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
