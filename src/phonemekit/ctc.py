"""HW3P2's training pieces: data, model, loss, evaluation and augmentation for the training loop.

    train_ds, val_ds = make_ctc_datasets(config, device)
    train_loader, val_loader = make_ctc_loaders(config, train_ds, val_ds, device)
    meta = ctc_meta(train_ds)                      # saved in the checkpoint: rebuilds the model
    model = make_ctc_model(config, meta).to(device)
    check_ctc_lengths(model, train_ds)             # can the model's T' hold every transcript?
    augment = make_ctc_augment(config)             # None when masking is off
    loss, n = ctc_loss(model, augment(batch), config, amp_dtype)
    evaluate_ctc(model, val_loader, amp_dtype, config)   # {"val_loss", "val_dist"}

A batch is (x (B,T,F), x_lengths, y (B,S), y_lengths) from phonemekit.sequences.SequenceLoader.
`config` is any object with the fields of CTC_DEFAULTS (the kit's Config, a SimpleNamespace).
"""

from __future__ import annotations

import contextlib

import torch

from .augment import band_mask
from .ctc_model import build_ctc_model
from .data import default_root
from .decode import beam_decode, greedy_decode, mean_distance
from .decode import min_ctc_frames
from .phonemes import BLANK, CTC_PHONEMES, NUM_CTC_CLASSES, to_string
from .sequences import SequenceLoader, UtteranceDataset

# The config fields read here, with their defaults for HW3P2.
CTC_DEFAULTS = {
    # data
    "root": None,                      # None: phonemekit.data.default_root() (Kaggle data, else the demo)
    "train_partition": "train-clean-100",
    "val_partition": "dev-clean",
    "normalize": "cepstral",           # cepstral (per utterance, the course's) | global | minmax | none
    "subset": 1.0,                     # fraction of training utterances (a fixed random choice)
    "val_subset": 1.0,
    "storage_dtype": "auto",           # auto: float16 on a GPU (half the memory), float32 on CPU
    "resident": None,                  # frames on the GPU; None: yes on a GPU
    "batch_size": 64,                  # utterances per step
    "eval_batch_size": None,           # None: 2 x batch_size
    "bucketing": True,                 # batch utterances of similar length (less padding, faster)
    "seed": 0,
    # model (phonemekit.ctc_model.build_ctc_model)
    "conv_channels": 256,              # Conv1d embedding width
    "conv_layers": 2,                  # residual conv blocks; 0: features straight into the LSTMs
    "conv_kernel": 3,                  # odd
    "conv_stride": 2,                  # total stride of the embedding, 1..4
    "conv_residual": True,             # skip connections in the conv blocks
    "lstm_hidden": 256,                # per direction
    "lstm_layers": 2,                  # plain BiLSTM layers
    "pyramid": 1,                      # pBLSTM layers after them, each halving T
    "dropout": 0.1,                    # in the conv blocks and the head (a float here)
    "locked_dropout": 0.2,             # between LSTM layers, one mask per utterance
    "head": [512],                     # hidden widths of the MLP head
    # evaluation
    "beam_width": 1,                   # 1: greedy decoding; >1: beam search (pyctcdecode)
    # augmentation (names shared with HW1P2; here over whole utterances)
    "freq_masks": 0,                   # bands of coefficients set to 0 over the utterance
    "freq_mask_width": 4,              # widest band (each: 0..width coefficients)
    "time_masks": 0,                   # runs of frames set to 0, inside the utterance
    "time_mask_width": 20,             # longest run in frames (each: 0..width)
    "mask_prob": 0.5,                  # chance that an utterance is masked
}
# a batch where at least this share of utterances cannot be aligned is a model/data mismatch
MAX_UNALIGNABLE = 0.5


def _get(config, name):
    return getattr(config, name, CTC_DEFAULTS[name])


def _storage_dtype(config, device) -> torch.dtype:
    s = str(_get(config, "storage_dtype"))
    if s == "auto":
        return torch.float16 if torch.device(device).type == "cuda" else torch.float32
    if s not in ("float16", "float32"):
        raise ValueError(f"storage_dtype={s!r}; choose auto, float16 or float32")
    return getattr(torch, s)


# --------------------------------------------------------------------------------------------
# Data and model


def make_ctc_datasets(config, device):
    """(train, val) UtteranceDatasets of config.train_partition and config.val_partition."""
    root = _get(config, "root") or default_root()
    dtype = _storage_dtype(config, device)
    normalize = _get(config, "normalize")
    train = UtteranceDataset(root, _get(config, "train_partition"), normalize=normalize,
                             subset=_get(config, "subset"), dtype=dtype)
    val = UtteranceDataset(root, _get(config, "val_partition"), normalize=normalize,
                           subset=_get(config, "val_subset"), dtype=dtype, stats=train.stats)
    return train, val


def make_ctc_loaders(config, train_ds, val_ds, device):
    """(train, val) SequenceLoaders: train shuffled by (seed, epoch), val in one fixed order."""
    bs = int(_get(config, "batch_size"))
    eval_bs = _get(config, "eval_batch_size") or 2 * bs
    bucketing, resident = bool(_get(config, "bucketing")), _get(config, "resident")
    train = SequenceLoader(train_ds, bs, shuffle=True, seed=_get(config, "seed"), device=device,
                           bucketing=bucketing, resident=resident)
    # val sorted by length when bucketing: the mean distance does not depend on the order
    val = SequenceLoader(val_ds, eval_bs, shuffle=False, device=device, bucketing=bucketing, resident=resident)
    return train, val


def ctc_meta(train_ds: UtteranceDataset) -> dict:
    """What rebuilding the model and preparing test data the same way needs (JSON-able)."""
    stats = train_ds.stats
    return {
        "task": "hw3p2",
        "n_features": int(train_ds.n_features),
        "num_classes": NUM_CTC_CLASSES,
        "normalize": train_ds.normalize,
        "stats": None if stats is None else [[float(v) for v in s] for s in stats],
        "phonemes": list(CTC_PHONEMES),
        "train_partition": train_ds.partition,
    }


def make_ctc_model(config, meta: dict) -> torch.nn.Module:
    dropout = _get(config, "dropout")
    if not isinstance(dropout, (int, float)):
        raise ValueError(f"dropout={dropout!r}: the CTC model takes one rate (a float)")
    return build_ctc_model(
        meta["n_features"], num_classes=meta.get("num_classes", NUM_CTC_CLASSES),
        conv_channels=_get(config, "conv_channels"), conv_layers=_get(config, "conv_layers"),
        conv_kernel=_get(config, "conv_kernel"), conv_stride=_get(config, "conv_stride"),
        residual=_get(config, "conv_residual"), lstm_hidden=_get(config, "lstm_hidden"),
        lstm_layers=_get(config, "lstm_layers"), pyramid=_get(config, "pyramid"), dropout=float(dropout),
        locked_dropout=_get(config, "locked_dropout"), head=_get(config, "head"),
    )


def check_ctc_lengths(model, dataset: UtteranceDataset) -> int:
    """How many utterances the model cannot align (T' too short for the transcript); prints
    the worst. ValueError when that is at least MAX_UNALIGNABLE of them: downsample less."""
    y, yl = dataset.batch(torch.arange(len(dataset)))[2:]
    need = min_ctc_frames(y, yl)
    have = model.output_lengths(torch.from_numpy(dataset.lengths))
    bad = have < need
    n = int(bad.sum())
    if n:
        u = int(torch.argmax((need - have).float()))
        msg = (f"{n} of {len(dataset)} utterances cannot be aligned by this model: e.g. "
               f"{dataset.utterances[u]} has {int(dataset.lengths[u])} frames -> {int(have[u])} after "
               f"downsampling, but its transcript needs {int(need[u])}; lower conv_stride or pyramid")
        if n >= MAX_UNALIGNABLE * len(dataset):
            raise ValueError(msg)
        print(f"phonemekit: {msg} (their CTC loss is 0: zero_infinity)")
    return n


# --------------------------------------------------------------------------------------------
# Loss and evaluation


def _autocast(device, amp_dtype):
    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.amp.autocast(torch.device(device).type, dtype=amp_dtype)


def ctc_loss(model, batch, config, amp_dtype):
    """(mean CTC loss of the batch, a tensor on the device; the number of utterances).

    The forward runs under autocast when amp_dtype is given; the loss always gets float32
    log-probabilities (T, B, C) and the model's output lengths. An utterance whose output is
    too short for its transcript has an infinite loss: zero_infinity makes it 0 (no gradient),
    so one odd utterance does not wreck the run; a batch where most are like that raises.
    """
    x, xl, y, yl = batch
    with _autocast(x.device, amp_dtype):
        log_probs, out_lengths = model(x, xl)
    need = min_ctc_frames(y, yl)
    # one small host sync; the LSTMs' packing syncs on the lengths anyway
    unalignable = int((out_lengths.to(need.device) < need).sum())
    if unalignable >= MAX_UNALIGNABLE * len(y) and unalignable:
        i = int(torch.argmax((need - out_lengths.to(need.device)).float()))
        raise ValueError(
            f"{unalignable} of {len(y)} utterances in this batch cannot be aligned: one has "
            f"{int(xl[i])} frames -> {int(out_lengths[i])} model frames, but its transcript of "
            f"{int(yl[i])} phonemes needs {int(need[i])}; lower conv_stride or pyramid"
        )
    loss = torch.nn.functional.ctc_loss(
        log_probs.float().transpose(0, 1), y, out_lengths, yl, blank=BLANK, reduction="mean", zero_infinity=True
    )
    return loss, len(y)


def _targets(y: torch.Tensor, yl: torch.Tensor) -> list[str]:
    y, yl = y.cpu(), yl.cpu()
    return [to_string(y[i, : int(n)].tolist()) for i, n in enumerate(yl)]


def evaluate_ctc(model, loader, amp_dtype, config) -> dict:
    """{"val_loss": mean CTC loss per utterance, "val_dist": mean Levenshtein distance} over
    the loader, in eval mode (greedy decoding; beam search when config.beam_width > 1)."""
    beam = int(_get(config, "beam_width"))
    was_training = model.training
    model.eval()
    loss_sum, n, dist_sum = 0.0, 0, 0.0
    try:
        with torch.inference_mode():
            for x, xl, y, yl in loader:
                with _autocast(x.device, amp_dtype):
                    log_probs, out_lengths = model(x, xl)
                loss = torch.nn.functional.ctc_loss(
                    log_probs.float().transpose(0, 1), y, out_lengths, yl, blank=BLANK,
                    reduction="mean", zero_infinity=True)
                preds = beam_decode(log_probs, out_lengths, beam) if beam > 1 else greedy_decode(log_probs, out_lengths)
                loss_sum += float(loss) * len(y)
                dist_sum += mean_distance(preds, _targets(y, yl)) * len(y)
                n += len(y)
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("the validation loader served no utterances")
    return {"val_loss": loss_sum / n, "val_dist": dist_sum / n}


# --------------------------------------------------------------------------------------------
# Augmentation


def mask_sequences(x: torch.Tensor, lengths: torch.Tensor, freq_masks: int = 1, freq_mask_width: int = 4,
                   time_masks: int = 1, time_mask_width: int = 20, prob: float = 1.0) -> torch.Tensor:
    """Frequency and time masking of zero-padded utterances (B, T, F): masked entries become 0.

    A time mask lies inside its utterance (start and width drawn within its length), never in
    the padding only; a frequency mask covers the whole utterance. A new tensor.
    """
    b, t, f = x.shape
    keep = torch.ones(b, t, f, dtype=torch.bool, device=x.device)
    if freq_masks > 0 and freq_mask_width > 0:
        keep &= ~band_mask(b, f, freq_masks, freq_mask_width, x.device)[:, None, :]
    if time_masks > 0 and time_mask_width > 0:
        n = torch.as_tensor(lengths, device=x.device)[:, None, None]
        width = torch.minimum(torch.randint(0, time_mask_width + 1, (b, time_masks, 1), device=x.device), n)
        start = (torch.rand(b, time_masks, 1, device=x.device) * (n - width + 1)).long()
        pos = torch.arange(t, device=x.device)
        keep &= ~((pos >= start) & (pos < start + width)).any(dim=1)[:, :, None]
    if prob < 1:  # utterances left alone keep every entry
        keep |= torch.rand(b, 1, 1, device=x.device) >= prob
    return x * keep


def make_ctc_augment(config):
    """augment(x, x_lengths, y, y_lengths) -> the batch with masked features, as config asks; None when masking is off."""
    fm, fw = _get(config, "freq_masks"), _get(config, "freq_mask_width")
    tm, tw = _get(config, "time_masks"), _get(config, "time_mask_width")
    prob = _get(config, "mask_prob")
    if not ((fm > 0 and fw > 0) or (tm > 0 and tw > 0)) or prob <= 0:
        return None

    def augment(*batch):
        # the training loop calls augment(*batch), as HW1P2's augment(x, y); augment(batch) works too
        x, xl, *rest = batch[0] if len(batch) == 1 else batch
        return (mask_sequences(x, xl, fm, fw, tm, tw, prob), xl, *rest)

    return augment
