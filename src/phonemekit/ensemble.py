"""Ensembles: several models' predictions combined into one, within the 20M budget in total.

    ids = ensemble_predict([model_a, model_b], test_ds)                    # probability average
    ids = ensemble_predict(["runs/a/best.pt", "runs/b/best.pt"], test_ds)  # checkpoints work too
    ids = ensemble_predict(models, test_ds, method="weighted", dev=dev_ds) # weights = dev accuracy
    compare(models, dev_ds)            # dev accuracy of each member and of every method, a table

Each member must see frames prepared as it was trained: at its context, with its normalisation,
boundary and (normalize="global") training statistics. A checkpoint records all of them; pass its
path, or a model from load_members, which carries them as `model.data_settings`. Pass one dataset
per member (`ensemble_predict(models, [test_c20, test_c30])`), or one dataset and let
`datasets_for(models, dataset)` prepare each member's frames from it; a dataset that does not
fit its member is refused. Members prepared alike share one dataset object, and members that
differ only in context share one copy of the frames (a smaller context is a view of the rows).

A model built in the session (an nn.Module not loaded from a checkpoint) records only its input
size: its context is read from that, and its normalisation, boundary and statistics cannot be
known, so they are assumed to be the dataset's.

The course counts an ensemble's parameters together: the members' total must stay within the
budget, and this is checked before anything is predicted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .data import AudioDataset, same_stats
from .model import BUDGET, check_budget, count_params
from .submit import predict

METHODS = ("mean", "weighted", "vote", "max")


# --------------------------------------------------------------------------------------------
# Members and their datasets


def load_members(models, device=None) -> list[torch.nn.Module]:
    """Models as given, with checkpoint paths (best.pt/last.pt or a run's folder) loaded; all
    moved to `device` when one is given. A model loaded from a checkpoint carries
    `data_settings`, how its frames were prepared: checkpoint, context, n_features, normalize,
    boundary, stats ((mean, std) for normalize="global"; None when the checkpoint holds none),
    train_partition, subset."""
    if isinstance(models, (torch.nn.Module, str, Path)):
        models = [models]
    out = []
    for m in models:
        if isinstance(m, (str, Path)):
            from .checkpoint import load_checkpoint

            path = m
            m, config, ckpt = load_checkpoint(path, device=device or "cpu")
            from .task import task_of

            task_of(config).require("ensemble", f"an ensemble ({path})")
            m.data_settings = _data_settings(config, ckpt, path)
        elif not isinstance(m, torch.nn.Module):
            raise TypeError(f"an ensemble member is a model or a checkpoint path, not {type(m).__name__}")
        out.append(m.to(device) if device is not None else m)
    if not out:
        raise ValueError("the ensemble has no members: pass a list of models or checkpoint paths")
    return out


def model_context(model: torch.nn.Module, n_features: int) -> int:
    """The context C a model was built for: in_features = (2C + 1) * n_features."""
    in_features = getattr(model, "in_features", None)
    if in_features is None:
        first = next((m for m in model.modules() if isinstance(m, torch.nn.Linear)), None)
        if first is None:
            raise ValueError("cannot tell the input size of this model: it has no Linear layer")
        in_features = first.in_features
    window, rest = divmod(in_features, n_features)
    if rest or window % 2 == 0:
        raise ValueError(f"the model takes {in_features} inputs, which is not (2C+1) x {n_features} features "
                         "for any context C: was it trained on features of another dimension?")
    return (window - 1) // 2


def _data_settings(config, ckpt: dict, path) -> dict:
    """How a checkpoint's model was fed in training: the data options saved with it."""
    stats = ckpt.get("stats") if config.normalize == "global" else None
    if stats is not None:
        stats = (np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32))
    return {"checkpoint": str(path), "context": int(ckpt.get("context", config.context)),
            "n_features": ckpt.get("n_features"), "normalize": config.normalize, "boundary": config.boundary,
            "stats": stats, "train_partition": config.train_partition, "subset": config.subset}


def _wanted(model, dataset, stats) -> dict:
    """The preparation (context, normalize, boundary, stats) a member's frames need."""
    s = getattr(model, "data_settings", None)
    if s is None:  # built in the session: only the context is known; the rest is assumed
        return {"context": model_context(model, dataset.n_features), "normalize": dataset.normalize,
                "boundary": dataset.boundary, "stats": dataset.stats if dataset.normalize == "global" else None}
    if s["n_features"] is not None and s["n_features"] != dataset.n_features:
        raise ValueError(f"{s['checkpoint']} was trained on {s['n_features']} features per frame, but "
                         f"{dataset.partition} in {dataset.root} has {dataset.n_features}: predict on data "
                         "of the semester it was trained on")
    want = {k: s[k] for k in ("context", "normalize", "boundary", "stats")}
    if want["normalize"] == "global" and want["stats"] is None:
        if stats is None:
            subset = f", subset={s['subset']}" if s["subset"] < 1 else ""
            raise ValueError(
                f"{s['checkpoint']} was trained with normalize='global' but holds no statistics, so its "
                "frames cannot be normalised as in training: retrain it (training saves them), or pass "
                "the training statistics: datasets_for(models, dataset, "
                f"stats=AudioDataset(root, {s['train_partition']!r}, normalize='global'{subset}).stats)")
        want["stats"] = tuple(np.asarray(a, np.float32).reshape(-1) for a in stats)
    return want


def _preparation(want: dict) -> tuple:
    stats = None if want["stats"] is None else tuple(np.asarray(a, np.float32).tobytes() for a in want["stats"])
    return want["normalize"], want["boundary"], stats


def datasets_for(models, dataset, stats=None) -> list:
    """One dataset per member, its frames prepared as that member was trained (see the module's
    notes), made from `dataset`: the partition and utterances to predict.

    Members prepared alike get one dataset object. Where the dataset's own rows serve (its
    preparation, a context no larger) they are shared; otherwise one copy is made per
    preparation, at the largest context that needs it, and shared by the smaller ones.
    stats: (mean, std) of the training frames, for members trained with normalize="global" whose
    checkpoints hold none.
    """
    wants = [_wanted(m, dataset, stats) for m in load_members(models)]
    own = _preparation({"normalize": dataset.normalize, "boundary": dataset.boundary,
                        "stats": dataset.stats if dataset.normalize == "global" else None})

    def from_dataset(w):
        return _preparation(w) == own and w["context"] <= dataset.context

    widest = {}
    for w in wants:
        if not from_dataset(w):
            widest[_preparation(w)] = max(widest.get(_preparation(w), 0), w["context"])
    copies, made, out = {}, {}, []
    for w in wants:
        prep = _preparation(w)
        if (w["context"], prep) not in made:
            if from_dataset(w):
                made[w["context"], prep] = dataset.like(context=w["context"])
            else:
                if prep not in copies:
                    copies[prep] = dataset.like(context=widest[prep], normalize=w["normalize"],
                                                boundary=w["boundary"], stats=w["stats"])
                made[w["context"], prep] = copies[prep].like(context=w["context"])
        out.append(made[w["context"], prep])
    return out


def _check_prepared(k: int, s: dict, ds: AudioDataset) -> None:
    """A ValueError when dataset ds does not give frames prepared as member k was trained."""
    want = {"context": s["context"], "normalize": s["normalize"], "boundary": s["boundary"],
            "n_features": s["n_features"]}
    have = {"context": ds.context, "normalize": ds.normalize, "boundary": ds.boundary, "n_features": ds.n_features}
    differ = [name for name in want if want[name] is not None and want[name] != have[name]]
    if not differ and s["normalize"] == "global":
        if s["stats"] is None:
            print(f"phonemekit: {s['checkpoint']} holds no global statistics; its frames use the dataset's, "
                  "which cannot be checked against the training ones")
        elif not same_stats(s["stats"], ds.stats):
            raise ValueError(f"member {k} ({s['checkpoint']}) was trained with other global statistics than "
                             "its dataset's: pass datasets_for(models, dataset), which normalises its frames "
                             "with the statistics saved in the checkpoint")
    if differ:
        trained = ", ".join(f"{n}={want[n]!r}" for n in differ)
        given = ", ".join(f"{n}={have[n]!r}" for n in differ)
        raise ValueError(f"member {k} ({s['checkpoint']}) was trained on frames with {trained}, but its "
                         f"dataset gives {given}: pass datasets_for(models, dataset) to prepare each "
                         "member's frames as it was trained")


def _pair_datasets(models, dataset) -> list:
    """A dataset per member: one given for all, or a list of them; checked against each model."""
    datasets = list(dataset) if isinstance(dataset, (list, tuple)) else [dataset] * len(models)
    if len(datasets) != len(models):
        raise ValueError(f"{len(models)} models but {len(datasets)} datasets: pass one dataset for all, "
                         "or one per model in the same order")
    n = len(datasets[0])
    for k, (m, ds) in enumerate(zip(models, datasets)):
        if len(ds) != n:
            raise ValueError(f"dataset {k} has {len(ds):,} frames, dataset 0 has {n:,}: every member must "
                             "predict the same frames (the same partition, the same subset)")
        settings = getattr(m, "data_settings", None)
        if settings is not None and isinstance(ds, AudioDataset):
            _check_prepared(k, settings, ds)
        want = getattr(m, "in_features", None)
        have = getattr(ds, "window", None), getattr(ds, "n_features", None)
        if want is not None and None not in have and want != have[0] * have[1]:
            raise ValueError(
                f"member {k} takes {want} inputs per frame but its dataset gives {have[0]} x {have[1]} "
                f"(context {ds.context}): it was trained at another context. Pass "
                "datasets_for(models, dataset) to get each member's frames at its own context"
            )
    return datasets


# --------------------------------------------------------------------------------------------
# Predicting


def accuracy(predictions: torch.Tensor, dataset) -> float:
    """Fraction of frames whose predicted class equals the dataset's label."""
    labels = getattr(dataset, "labels", None)
    if labels is None:
        raise ValueError("accuracy needs a labelled dataset (dev-clean, or test-clean with with_labels=True)")
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions):,} predictions for {len(labels):,} labelled frames")
    return (predictions.cpu() == labels.long().cpu()).double().mean().item()


def dev_weights(models, dev, batch_size: int = 8192, device=None) -> list[float]:
    """Each member's accuracy on a labelled dataset (or one per member), for method="weighted"."""
    models = load_members(models, device)
    devs = _pair_datasets(models, dev)
    return [accuracy(predict(m, d, batch_size=batch_size, device=device), d) for m, d in zip(models, devs)]


def ensemble_predict(models, dataset, method: str = "mean", weights=None, dev=None, batch_size: int = 8192,
                     device=None, budget: int | None = BUDGET) -> torch.Tensor:
    """The ensemble's class id (int64, CPU) for every frame, in dataset order.

    models:  nn.Modules or checkpoint paths (loaded with phonemekit.train.load_checkpoint).
    dataset: one dataset for all members, or a list with one per member, each prepared as its
             member was trained (datasets_for(models, dataset) makes that list).
    method:  "mean"     average of the members' softmax probabilities, then argmax;
             "weighted" the same with weights: `weights` when given, else each member's
                        accuracy on `dev` (a labelled dataset, or a list with one per member);
             "vote"     each member votes for its argmax; ties go to the tied class with the
                        highest summed probability (then to the lower class id);
             "max"      per frame, the prediction of the member most confident in it (highest
                        max-probability; ties to the earlier member).
    budget:  the members' parameters together must not exceed it (the course's 20M); checked
             before predicting. None: no check.
    device:  where the models run (they are moved there); None: where each model is.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}; choose one of {METHODS}")
    models = load_members(models, device)
    if budget is not None:
        check_budget(*models, budget=budget)
    datasets = _pair_datasets(models, dataset)
    if method == "weighted":
        if weights is None:
            if dev is None:
                raise ValueError('method="weighted" needs weights=[...] or dev=<labelled dataset> to weight '
                                 "each member by its dev accuracy")
            weights = dev_weights(models, dev, batch_size, device)
        weights = [float(w) for w in weights]
        if len(weights) != len(models):
            raise ValueError(f"{len(weights)} weights for {len(models)} models: give one per model")
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"weights={weights} must be >= 0 with a positive sum")
    elif weights is not None:
        raise ValueError(f'weights are used by method="weighted" only, not method={method!r}')

    probs = (predict(m, ds, batch_size=batch_size, device=device, return_probs=True)
             for m, ds in zip(models, datasets))
    return combine(probs, method, weights)


def combine(probs, method: str = "mean", weights=None) -> torch.Tensor:
    """Class ids from the members' (frames, classes) probabilities, an iterable consumed once.

    The rules of ensemble_predict's methods. Only running sums are kept, so a generator holds
    one member's probabilities in memory at a time (~300 MB each on the full test set); the
    given tensors are not changed.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}; choose one of {METHODS}")
    total = votes = best_conf = best_class = None
    n = 0
    for k, p in enumerate(probs):
        w = float(weights[k]) if method == "weighted" else 1.0
        total = p * w if total is None else total.add_(p, alpha=w)
        if method == "vote":
            ballot = torch.zeros_like(p).scatter_(1, p.argmax(1, keepdim=True), 1.0)
            votes = ballot if votes is None else votes.add_(ballot)
        elif method == "max":
            conf, cls = p.max(1)
            if best_conf is None:
                best_conf, best_class = conf, cls
            else:
                better = conf > best_conf  # strict: a tie stays with the earlier member
                best_conf, best_class = torch.where(better, conf, best_conf), torch.where(better, cls, best_class)
        n += 1
    if n == 0:
        raise ValueError("no member probabilities to combine")
    if method == "max":
        return best_class
    if method == "vote":
        # summed probabilities are at most n: scaled below 1 they only break ties between
        # classes with equal votes (a remaining tie goes to the lower class id)
        return (votes + total / (n + 1)).argmax(1)
    return total.argmax(1)


def compare(models, dev, methods=METHODS, names=None, batch_size: int = 8192, device=None,
            budget: int | None = BUDGET) -> pd.DataFrame:
    """Dev accuracy of each member and of the ensemble by each method, as a table.

    dev: a labelled dataset, or one per member (datasets_for). "weighted" takes its weights
    from this same dev set, so its number is a little optimistic.
    """
    models = load_members(models, device)
    if budget is not None:
        check_budget(*models, budget=budget)
    devs = _pair_datasets(models, dev)
    names = list(names) if names is not None else [f"model {k}" for k in range(len(models))]
    if len(names) != len(models):
        raise ValueError(f"{len(names)} names for {len(models)} models: give one per model")
    rows, accs, probs = [], [], []
    for name, m, d in zip(names, models, devs):
        probs.append(predict(m, d, batch_size=batch_size, device=device, return_probs=True))
        accs.append(accuracy(probs[-1].argmax(1), d))
        rows.append({"name": name, "kind": "member", "params": count_params(m), "dev_acc": accs[-1]})
    n = count_params(*models)
    for method in methods:
        ids = combine(probs, method, accs if method == "weighted" else None)
        rows.append({"name": f"ensemble ({method})", "kind": "ensemble", "params": n,
                     "dev_acc": accuracy(ids, devs[0])})
    return pd.DataFrame(rows)
