"""HW3P2 as a Task: the phoneme string of every utterance, from a sequence model trained with CTC.

    from phonemekit.ctc import TASK                  # what phonemekit.task.task_of(config) gives for task="ctc"
    train_ds, val_ds = make_ctc_datasets(config, device)
    train_loader, val_loader = make_ctc_loaders(config, train_ds, val_ds, device)
    meta = ctc_meta(train_ds)                      # saved in the checkpoint: rebuilds the model
    model = make_ctc_model(config, meta).to(device)
    check_ctc_lengths(model, train_ds)             # can the model's T' hold every transcript?
    loss, n = ctc_loss(model, batch, config, amp_dtype)
    evaluate_ctc(model, val_loader, config)        # {"val_loss", "val_dist"}

A batch is (x (B,T,F), x_lengths, y (B,S), y_lengths) from phonemekit.sequences.SequenceLoader.
`config` is a phonemekit.config.Config with task="ctc": its defaults for HW3P2 live there
(TASK_DEFAULTS), with every other setting's.
"""

from __future__ import annotations

import torch

from .config import TASK_DEFAULTS, TASK_SETTINGS
from .ctc_model import MODEL_OPTIONS, build_ctc_model
from .corpus import check_compatible, default_root
from .augment import make_augment, mask
from .decode import beam_decode, greedy_decode, mean_distance
from .decode import min_ctc_frames
from .device import autocast, storage_dtype
from .phonemes import BLANK, CTC_PHONEMES, NUM_CTC_CLASSES, to_string
from .sequences import SequenceLoader, UtteranceDataset
from .task import Task

# what the HW3P2 notebook uses beside the engine (phonemekit's top level), importable from here in one line
from .ctc_model import count_params, ctc_summary  # noqa: E402,F401
from .ctc_submit import answers as strings_of, frame_baseline, sweep_widths  # noqa: E402,F401
from .decode import best_width  # noqa: E402,F401
from .sequences import padding_ratio  # noqa: E402,F401

# a batch where at least this share of utterances cannot be aligned is a model/data mismatch
MAX_UNALIGNABLE = 0.5
# before training: more than this share of the training (or dev) utterances unalignable is refused
MAX_UNALIGNABLE_BEFORE = 0.02


# --------------------------------------------------------------------------------------------
# Data and model


def make_ctc_datasets(config, device):
    """(train, val) UtteranceDatasets of config.train_partition and config.val_partition."""
    common = dict(root=config.root or default_root(), normalize=config.normalize, dtype=storage_dtype(config, device),
                  cache_dir=config.cache_dir, cache_verify=config.cache_verify)
    train = UtteranceDataset(partition=config.train_partition, subset=config.subset, **common)
    # global normalisation uses the training statistics for validation too
    val = UtteranceDataset(partition=config.val_partition, subset=config.val_subset, stats=train.stats, **common)
    check_compatible(train, val)
    return train, val


def make_ctc_loaders(config, train_ds, val_ds, device):
    """(train, val) SequenceLoaders: train shuffled by (seed, epoch), val in one fixed order."""
    bs = int(config.batch_size)
    eval_bs = config.eval_batch_size or 2 * bs
    bucketing, resident = bool(config.bucketing), config.resident
    train = SequenceLoader(train_ds, bs, shuffle=True, seed=config.seed, device=device,
                           bucketing=bucketing, resident=resident)
    # val sorted by length when bucketing: the mean distance does not depend on the order
    val = SequenceLoader(val_ds, eval_bs, shuffle=False, device=device, bucketing=bucketing, resident=resident)
    return train, val


def ctc_meta(train_ds: UtteranceDataset) -> dict:
    """What rebuilding the model and preparing test data the same way needs (JSON-able)."""
    stats = train_ds.stats
    return {
        "n_features": int(train_ds.n_features),
        "num_classes": NUM_CTC_CLASSES,
        "normalize": train_ds.normalize,
        "stats": None if stats is None else [[float(v) for v in s] for s in stats],
        "phonemes": list(CTC_PHONEMES),
        "train_partition": train_ds.partition,
    }


def make_ctc_model(config, meta) -> torch.nn.Module:
    """The sequence model the config describes (phonemekit.ctc_model: embedding -> encoder -> head,
    every option of MODEL_OPTIONS read from the config). meta: a checkpoint's meta, or n_features."""
    if not isinstance(config.dropout, (int, float)):
        raise ValueError(f"dropout={config.dropout!r}: the CTC model takes one rate (a float)")
    n_features = meta if isinstance(meta, int) else meta["n_features"]
    return build_ctc_model(n_features, num_classes=NUM_CTC_CLASSES,
                           **{k: getattr(config, k) for k in MODEL_OPTIONS})


def _frames(model, dataset: UtteranceDataset):
    """(frames each transcript needs, frames the model gives each utterance), or None for a model
    without output_lengths(lengths) (a student's own: then each batch checks)."""
    if not hasattr(model, "output_lengths"):
        return None
    y, yl = dataset.batch(torch.arange(len(dataset)))[2:]
    return min_ctc_frames(y, yl), model.output_lengths(torch.from_numpy(dataset.lengths).long()).cpu()


def unalignable(model, dataset: UtteranceDataset) -> torch.Tensor | None:
    """A bool per utterance: the model's output (T' frames) is too short for its transcript.
    None for a model without output_lengths(lengths) (a student's own: then each batch checks)."""
    frames = _frames(model, dataset)
    return None if frames is None else frames[1] < frames[0]


def check_ctc_lengths(model, dataset: UtteranceDataset, limit: float = MAX_UNALIGNABLE, verbose: bool = True) -> int:
    """How many utterances the model cannot align (T' too short for the transcript); prints
    the worst. ValueError when more than `limit` of them are: downsample less."""
    frames = _frames(model, dataset)
    n = 0 if frames is None else int((frames[1] < frames[0]).sum())
    if n:
        need, have = frames
        u = int(torch.argmax((need - have).float()))
        msg = (f"{n} of {len(dataset)} {dataset.partition} utterances ({n / len(dataset):.1%}) cannot be aligned by "
               f"this model: e.g. {dataset.utterances[u]} has {int(dataset.lengths[u])} frames -> {int(have[u])} "
               f"after downsampling, but its transcript needs {int(need[u])}")
        if n > limit * len(dataset):
            raise ValueError(f"{msg}; lower conv_stride or pyramid (more than {limit:.0%} of a partition is refused)")
        if verbose:
            print(f"phonemekit: {msg}; they add nothing to the loss (zero_infinity) and are left out of the val loss")
    return n


def before_training(model, train_ds, val_ds, config, verbose: bool = True) -> None:
    """Refuse a model that cannot align more than a few percent of the training or dev utterances,
    and say how many it cannot (they are never counted as a loss of 0). Beam validation is checked
    before the first epoch, not after it."""
    for ds in (train_ds, val_ds):
        if ds.labels is not None:
            check_ctc_lengths(model, ds, limit=MAX_UNALIGNABLE_BEFORE, verbose=verbose)


# --------------------------------------------------------------------------------------------
# Loss and evaluation


def ctc_loss(model, batch, config, amp_dtype):
    """(mean CTC loss of the batch, a tensor on the device; the number of utterances).

    The forward runs under autocast when amp_dtype is given; the loss always gets float32
    log-probabilities (T, B, C) and the model's output lengths. An utterance whose output is
    too short for its transcript has an infinite loss: zero_infinity makes it 0 (no gradient),
    so one odd utterance does not wreck the run; a batch where most are like that raises.
    """
    x, xl, y, yl = batch
    with autocast(x.device, amp_dtype):
        log_probs, out_lengths = model(x, xl)
    need = min_ctc_frames(y, yl)
    # one small host sync; the LSTMs' packing syncs on the lengths anyway
    unaligned = int((out_lengths.to(need.device) < need).sum())
    if unaligned >= MAX_UNALIGNABLE * len(y) and unaligned:
        i = int(torch.argmax((need - out_lengths.to(need.device)).float()))
        raise ValueError(
            f"{unaligned} of {len(y)} utterances in this batch cannot be aligned: one has "
            f"{int(xl[i])} frames -> {int(out_lengths[i])} model frames, but its transcript of "
            f"{int(yl[i])} phonemes needs {int(need[i])}; lower conv_stride or pyramid"
        )
    loss = torch.nn.functional.ctc_loss(
        log_probs.float().transpose(0, 1), y, out_lengths, yl, blank=BLANK, reduction="mean", zero_infinity=True
    )
    return loss, len(y)


def ctc_train_loss(config, train_ds, device):
    return lambda model, batch, config, amp_dtype: (*ctc_loss(model, batch, config, amp_dtype), None)


def _targets(y: torch.Tensor, yl: torch.Tensor) -> list[str]:
    y, yl = y.cpu(), yl.cpu()
    return [to_string(y[i, : int(n)].tolist()) for i, n in enumerate(yl)]


def evaluate_ctc(model, loader, config=None, amp_dtype=None, beam_width: int | None = None) -> dict:
    """{"val_loss": mean CTC loss per alignable utterance, "val_dist": mean Levenshtein distance}
    over the loader, in eval mode and fp32 (greedy decoding; beam search when beam_width, else
    config.beam_width, is > 1: on the GPU a batch at a time where torchaudio's decoder can, else
    once for the whole set on every CPU core). An utterance the model cannot align is scored by its
    distance but left out of the loss (its loss is not 0: it is undefined); with none alignable
    the loss is NaN."""
    from . import beam_cpu
    from .decode import check_beam

    beam = int(beam_width or getattr(config, "beam_width", 1) or 1)
    was_training = model.training
    model.eval()
    loss_sum, scored, n, dist_sum = 0.0, 0, 0, 0.0
    pending, truths = [], []  # the CPU beam's inputs, decoded once after the model has run
    cpu_beam = None  # decided at the first batch, from where the log-probs are
    try:
        with torch.inference_mode():
            for x, xl, y, yl in loader:
                log_probs, out_lengths = model(x, xl)
                ok = out_lengths.to(y.device) >= min_ctc_frames(y, yl)
                if ok.any():
                    loss = torch.nn.functional.ctc_loss(
                        log_probs.float()[ok].transpose(0, 1), y[ok], out_lengths[ok], yl[ok], blank=BLANK,
                        reduction="sum")
                    loss_sum += float(loss)
                    scored += int(ok.sum())
                n += len(y)
                if cpu_beam is None:
                    cpu_beam = beam > 1 and check_beam(beam, "auto", log_probs.device) == "cpu"
                if cpu_beam:
                    lp = log_probs.float().log_softmax(-1).cpu().numpy()
                    pending += [lp[i, :t] for i, t in enumerate(out_lengths.cpu().tolist())]
                    truths += _targets(y, yl)
                    continue
                preds = beam_decode(log_probs, out_lengths, beam) if beam > 1 else greedy_decode(log_probs, out_lengths)
                dist_sum += mean_distance(preds, _targets(y, yl)) * len(y)
    finally:
        model.train(was_training)
    if pending:
        preds = beam_cpu.decode_arrays(pending, beam, workers=beam_cpu.resolve_workers(None, len(pending)))
        dist_sum += mean_distance(preds, truths) * len(truths)
    if n == 0:
        raise ValueError("the validation loader served no utterances")
    return {"val_loss": loss_sum / scored if scored else float("nan"), "val_dist": dist_sum / n}


# --------------------------------------------------------------------------------------------
# Augmentation: the kit's masks and noise, inside each utterance (phonemekit.augment)


def mask_sequences(x: torch.Tensor, lengths: torch.Tensor, freq_masks: int = 1, freq_mask_width: int = 4,
                   time_masks: int = 1, time_mask_width: int = 20, prob: float = 1.0) -> torch.Tensor:
    """Frequency and time masking of zero-padded utterances (B, T, F): masked entries become 0.
    A time mask lies inside its utterance, never in the padding only (phonemekit.augment.mask)."""
    return mask(x, lengths, freq_masks, freq_mask_width, time_masks, time_mask_width, prob)


def make_ctc_augment(config):
    """augment(x, x_lengths, y, y_lengths) -> the batch with masked (and noisy) features, as the config asks;
    None when both are off."""
    return make_augment(config)


def check_config(config) -> None:
    """Settings that fail only later otherwise: beam validation without its decoder."""
    from .decode import check_beam

    check_beam(config.beam_width, device=None if config.device == "auto" else config.device)


# --------------------------------------------------------------------------------------------
# Test set, prediction and the CSV (phonemekit.ctc_submit)


def test_dataset(config, root=None, stats=None, with_labels=None, partition: str = "test-clean"):
    from .ctc_submit import ctc_test_dataset

    return ctc_test_dataset(config, root, stats=stats, with_labels=with_labels, partition=partition)


def predict(model, dataset, device=None, batch_size=None, beam_width=None, label_format=None, **options):
    """The predicted string of every utterance, in file order (phonemekit.ctc_submit.predict_ctc)."""
    from .ctc_submit import predict_ctc

    _no_label_format(label_format)
    return predict_ctc(model, dataset, batch_size=batch_size or 32, device=device,
                       beam_width=1 if beam_width is None else beam_width, **options)  # it checks the width


def _no_label_format(label_format) -> None:
    if label_format is not None:
        raise ValueError("a label format is for HW1P2 CSVs; an HW3P2 CSV holds one phoneme string per utterance")


def write_csv(predictions, path, sample=None, label_format=None, header=None):
    from .ctc_submit import HEADER, write_ctc_submission

    _no_label_format(label_format)
    return write_ctc_submission(predictions, path, header=tuple(header) if header else HEADER, sample=sample)


def validate_csv(path, n_rows, sample=None, header=None):
    from .ctc_submit import validate_ctc_submission

    return validate_ctc_submission(path, n_rows, sample=sample, **({"header": tuple(header)} if header else {}))


def score_csv(path, truth):
    from .ctc_submit import score_ctc_submission

    return score_ctc_submission(path, truth)


def count_test(root, partition: str = "test-clean") -> int:
    """Utterances in a partition: what the loader lists (hidden files such as macOS's ._x.npy skipped)."""
    from .corpus import count_utterances

    return count_utterances(root, partition)


def has_answers(root, partition: str = "test-clean") -> bool:
    """True when `partition` ships its phoneme sequences; an empty folder is no answers."""
    from .ctc_submit import has_ctc_answers

    return has_ctc_answers(root, partition)


def answers(config, root, partition: str = "test-clean", stats=None):
    """The true strings of a labelled partition, in file order."""
    return strings_of(test_dataset(config, root, stats=stats, with_labels=True, partition=partition))


def describe(config) -> str:
    conv = f"conv {config.conv_channels} x{config.conv_layers} stride {config.conv_stride}, " if config.conv_layers else ""
    return (f"CTC: {conv}{config.lstm_layers} BiLSTM" + (f" + {config.pyramid} pBLSTM" if config.pyramid else "")
            + f" of {config.lstm_hidden}")


def summary(config, n_features: int):
    """(the layer table of the config's model and its downsampling, its parameter count)."""
    model = make_ctc_model(config, n_features)
    down = config.conv_stride * 2 ** config.pyramid
    text = (f"{ctc_summary(model, n_features)}\ntime downsampled {down}x (conv_stride {config.conv_stride}, pyramid "
            f"{config.pyramid}): an utterance of T frames gives T/{down} CTC frames")
    return text, count_params(model)


def own_model(model, config, meta: dict, loader) -> torch.nn.Module:
    """A student's own network, probed once: forward(x, lengths) -> (log_probs (B, T', 41), out_lengths (B,))."""
    from .ctc_model import check_ctc_model

    check_ctc_model(model, meta["n_features"], NUM_CTC_CLASSES)
    return model


TASK = Task(
    name="ctc", homework="HW3P2", metric="val_dist", higher_is_better=False, unit="utterances",
    test_unit="test utterance", score_name="mean Levenshtein distance", num_classes=NUM_CTC_CLASSES, recipes=("ctc-strong", "ctc-demo"),
    # a CPU trains ~1,000 utterances' frames a second for the MLP but only a few whole utterances for CTC
    cpu_share=0.005, defaults=TASK_DEFAULTS["ctc"], settings=frozenset(TASK_SETTINGS["ctc"]),
    model_settings=("conv_channels", "conv_layers", "conv_kernel", "conv_stride", "conv_residual", "encoder",
                    "lstm_hidden", "lstm_layers", "pyramid", "head", "head_norm"),
    inputs=2, datasets=make_ctc_datasets, loaders=make_ctc_loaders, meta=ctc_meta, build_model=make_ctc_model,
    own_model=own_model, before_training=before_training, loss=ctc_train_loss, evaluate=evaluate_ctc,
    augment=make_ctc_augment, check_config=check_config, test_dataset=test_dataset, predict=predict,
    write_csv=write_csv, validate_csv=validate_csv, score_csv=score_csv, count_test=count_test,
    has_answers=has_answers, answers=answers, describe=describe, summary=summary, tools=frozenset({"decode"}),
)
