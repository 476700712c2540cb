"""HW1P2 as a Task: a phoneme class for every frame, from an MLP on its context window.

    from phonemekit.frames import TASK               # what phonemekit.task.task_of(config) gives for task="frames"
    train_ds, val_ds = make_datasets(config)         # AudioDatasets, checked to agree
    loss, acc = evaluate(model, val_loader)          # eval mode, plain fp32, as predict() runs

The steps the training loop, the command line and the notebooks ask for, in the order of the
homework: data, model, loss, validation, test set, prediction and the CSV (phonemekit.submit).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .config import TASK_DEFAULTS, TASK_SETTINGS
from .data import AudioDataset, FrameLoader, check_compatible, default_root
from .device import autocast, resolve_device, storage_dtype
from .phonemes import NUM_CLASSES
from .task import Task

# --------------------------------------------------------------------------------------------
# Data


def make_datasets(config, device=None) -> tuple[AudioDataset, AudioDataset]:
    """The training and validation AudioDatasets the config describes (checked to agree)."""
    device = resolve_device(config.device) if device is None else torch.device(device)
    root = config.root if config.root is not None else default_root()
    common = dict(root=root, context=config.context, normalize=config.normalize, boundary=config.boundary,
                  dtype=storage_dtype(config, device), cache_dir=config.cache_dir, cache_verify=config.cache_verify)
    train = AudioDataset(partition=config.train_partition, subset=config.subset, **common)
    # global normalisation uses the training statistics for validation too
    val = AudioDataset(partition=config.val_partition, subset=config.val_subset, stats=train.stats, **common)
    check_compatible(train, val)
    return train, val


def make_loaders(config, train_ds, val_ds, device) -> tuple[FrameLoader, FrameLoader]:
    dtype = storage_dtype(config, device)
    if train_ds.context != config.context or val_ds.context != config.context:
        raise ValueError(f"the datasets passed have context {train_ds.context}/{val_ds.context} but the config "
                         f"asks for {config.context}: rebuild them with make_datasets(config)")
    # drop the last partial batch: a batch of 1 breaks BatchNorm, and the shuffle changes
    # which frames it holds every epoch
    train = FrameLoader(train_ds, config.batch_size, shuffle=True, drop_last=len(train_ds) > config.batch_size,
                        device=device, seed=config.seed, resident=config.resident, storage_dtype=dtype)
    val = FrameLoader(val_ds, config.eval_batch_size or 4 * config.batch_size, shuffle=False,
                      device=device, seed=config.seed, resident=config.resident, storage_dtype=dtype)
    return train, val


def frame_meta(train_ds: AudioDataset) -> dict:
    """What a checkpoint needs to rebuild the model and prepare test frames the same way."""
    stats = train_ds.stats
    return {"in_features": train_ds.window * train_ds.n_features, "n_features": train_ds.n_features,
            "context": train_ds.context,
            "stats": None if stats is None else {"mean": [float(v) for v in stats[0]],
                                                 "std": [float(v) for v in stats[1]]}}


# --------------------------------------------------------------------------------------------
# Model


def build_model(config, meta) -> torch.nn.Module:
    """The MLP a config describes (meta: a checkpoint's meta, or in_features as an int)."""
    from .model import build_mlp

    meta = {"in_features": meta} if isinstance(meta, int) else meta
    return build_mlp(meta["in_features"], num_classes=config.num_classes, hidden=config.hidden, shape=config.shape,
                     depth=config.depth, budget=config.budget, activation=config.activation, norm=config.norm,
                     dropout=config.dropout, init=config.init, residual=config.residual)


def own_model(model: torch.nn.Module, config, meta: dict, loader) -> torch.nn.Module:
    """A student's own network: it must take (B, 2C+1, F) windows, or their flattened form (then
    it is wrapped), and return (B, 40) logits. One line saying so when it does neither."""
    from .model import FlatInput

    if isinstance(model, FlatInput):
        return model
    x = next(iter(loader))[0][:2].float().cpu()
    need = (f"forward(x) must take (B, {x.shape[1]}, {x.shape[2]}) windows or flattened (B, {x.shape[1] * x.shape[2]}) "
            f"ones (context {config.context}, {x.shape[2]} features: a flat model's first layer must take "
            f"{x.shape[1] * x.shape[2]} inputs) and return (B, {NUM_CLASSES}) logits, one per phoneme class")
    windows = _probe(model, x)
    if windows is True:
        return model
    flat = _probe(model, x.flatten(1))  # only when windows did not fit: one probe is enough otherwise
    if flat is True:
        meta["input"] = "flat"
        return FlatInput(model)
    got = next((r for r in (windows, flat) if r is not False), None)
    raise ValueError(f"your model does not fit HW1P2: {need}" + (f"; it returned {got}" if got else ""))


def _probe(model, x):
    """True when model(x) gives (B, 40) logits; else what it gave (a description), or False on an error."""
    modes = {m: m.training for m in model.modules()}
    model.eval()  # a probe must not move BatchNorm's running statistics
    try:
        with torch.no_grad():
            out = model(x)
    except Exception:  # any error: it does not take this shape
        return False
    finally:
        for m, training in modes.items():
            m.training = training
    if isinstance(out, torch.Tensor) and tuple(out.shape) == (x.shape[0], NUM_CLASSES):
        return True
    return f"a tensor of shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else f"a {type(out).__name__}"


def before_training(model, train_ds, val_ds, config, verbose: bool = True) -> None:
    """Nothing to check for frames beyond the datasets and the model's output."""


# --------------------------------------------------------------------------------------------
# Loss and validation


def frame_loss(model, batch, config, amp_dtype, weight=None):
    """(mean cross-entropy, frames, correct frames) of one training batch."""
    x, y = batch
    with autocast(x.device, amp_dtype):
        logits = model(x)
    loss = F.cross_entropy(logits.float(), y, weight=weight, label_smoothing=config.label_smoothing)
    correct = (logits.detach().argmax(1) == (y if y.dim() == 1 else y.argmax(1))).sum()  # mixup: soft y
    return loss, y.shape[0], correct


def class_weights(config, train_ds) -> torch.Tensor | None:
    """Per-class loss weights from the training labels' frequencies (config.class_weights)."""
    if config.class_weights is None:
        return None
    counts = torch.bincount(torch.as_tensor(train_ds.labels).long(), minlength=config.num_classes)
    w = 1.0 / counts.clamp(min=1).double()
    if config.class_weights == "sqrt":
        w = w.sqrt()
    return (w * counts.sum() / (w * counts).sum()).float()  # the average frame keeps weight 1


def make_loss(config, train_ds, device):
    """The training loss: cross-entropy, with the config's class weights and label smoothing."""
    weight = class_weights(config, train_ds)
    if weight is None:
        return frame_loss
    weight = weight.to(device)
    return lambda model, batch, config, amp_dtype: frame_loss(model, batch, config, amp_dtype, weight=weight)


@torch.inference_mode()
def evaluate(model, loader, amp_dtype=None, return_predictions: bool = False, progress: bool = False):
    """(loss, accuracy) over a labelled loader in eval mode, in plain fp32 (as predict() runs);
    with return_predictions, also the predicted class of every frame (a CPU tensor, in order).

    amp_dtype is accepted for older callers and ignored: validation and the submission must
    agree. The loss is plain cross-entropy (no label smoothing, no class weights), comparable
    across runs.
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
        logits = model(x).float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
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


def evaluate_frames(model, loader, config=None) -> dict:
    loss, acc = evaluate(model, loader)
    return {"val_loss": loss, "val_acc": acc}


def make_augment(config):
    from .augment import make_augment as augment_of

    return augment_of(config)


def check_config(config) -> None:
    """Nothing beyond Config's own checks."""


# --------------------------------------------------------------------------------------------
# Test set, prediction and the CSV (phonemekit.submit)


def test_dataset(config, root=None, stats=None, with_labels=None, partition: str = "test-clean") -> AudioDataset:
    """The test partition prepared exactly as the config prepared training (context, normalisation,
    boundary; `stats`: the global statistics a checkpoint holds, for normalize="global")."""
    from .corpus import training_stats

    stats = training_stats(config.normalize, stats)
    return AudioDataset(root, partition, context=config.context, normalize=config.normalize,
                        boundary=config.boundary, with_labels=with_labels, stats=stats)


test_dataset.__test__ = False  # a helper, not a test: pytest must not collect it where it is imported


def predict(model, dataset, device=None, batch_size=None, label_format=None, beam_width=None, **options):
    """The predicted class index of every frame, in order (phonemekit.submit.predict)."""
    from .submit import predict as predict_frames

    if beam_width not in (None, 1):
        raise ValueError("--beam-width is for HW3P2 (CTC) checkpoints (beam_width); this is an HW1P2 frame model")
    return predict_frames(model, dataset, batch_size=batch_size or 8192, device=device, **options)


def write_csv(predictions, path, sample=None, label_format=None, header=None):
    """The HW1P2 CSV in the sample file's header and label kind (class names unless it has indices)."""
    from .submit import submission_format, write_submission

    found_header, found_format = submission_format(sample)
    return write_submission(predictions, path, header=header or found_header,
                            label_format=label_format or found_format)


def validate_csv(path, n_rows, sample=None, header=None):
    from .submit import validate_submission

    return validate_submission(path, n_rows, sample=sample, **({"header": tuple(header)} if header else {}))


def score_csv(path, truth):
    from .submit import score_submission

    return score_submission(path, truth)


def count_test(root, partition: str = "test-clean") -> int:
    """Frames in a partition, as the loader reads them."""
    from .corpus import count_frames

    return count_frames(root, partition)


def has_answers(root, partition: str = "test-clean") -> bool:
    """True when `partition` ships its frame labels (the demo's test set); an empty folder is no answers."""
    from .corpus import has_test_answers

    return has_test_answers(root, partition)


def answers(config, root, partition: str = "test-clean", stats=None):
    """The true class of every frame of a labelled partition, in order."""
    return test_dataset(config.replace(context=0), root, stats=stats, with_labels=True, partition=partition).labels


def describe(config) -> str:
    arch = f"hidden {config.hidden}" if config.hidden else f"{config.shape} x{config.depth} for {config.budget:,} params"
    return f"context {config.context}, {arch}, {config.activation}"


def summary(config, n_features: int):
    """(the torchinfo table of the config's MLP, its parameter count)."""
    from .model import count_params, summary as mlp_summary

    model = build_model(config, (2 * config.context + 1) * n_features)
    return str(mlp_summary(model, config.context, n_features)), count_params(model)


TASK = Task(
    name="frames", homework="HW1P2", metric="val_acc", higher_is_better=True, unit="frames", test_unit="test frame", score_name="frame accuracy",
    num_classes=NUM_CLASSES, recipes=("strong", "cpu-demo"), cpu_share=0.02, defaults=TASK_DEFAULTS["frames"],
    settings=frozenset(TASK_SETTINGS["frames"]),
    model_settings=("context", "hidden", "shape", "depth", "budget", "activation", "norm", "init", "residual"),
    inputs=1, datasets=make_datasets, loaders=make_loaders, meta=frame_meta, build_model=build_model,
    own_model=own_model, before_training=before_training, loss=make_loss, evaluate=evaluate_frames,
    augment=make_augment, check_config=check_config, test_dataset=test_dataset, predict=predict,
    write_csv=write_csv, validate_csv=validate_csv, score_csv=score_csv, count_test=count_test,
    has_answers=has_answers, answers=answers, describe=describe, summary=summary,
    tools=frozenset({"search", "ensemble"}),
)
