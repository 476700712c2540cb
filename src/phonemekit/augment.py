"""Augmentation of training batches: frequency and time masking, Gaussian noise, mixup.

    from phonemekit.augment import make_augment
    augment = make_augment(config)            # None when every switch is off
    x, y = augment(x, y)                      # x (B, 2C+1, F) windows, y (B,) class ids
    x, xl, y, yl = augment(x, xl, y, yl)      # HW3P2: (B, T, F) utterances and their lengths

fit() builds this from the config by itself and applies it to training batches only:
evaluate() and predict() never see it. Everything runs on the batch, on its device, with a
handful of tensor operations per batch (no loop over the samples), so it costs next to
nothing beside the model.

- Frequency masking (SpecAugment): `freq_masks` bands of up to `freq_mask_width` adjacent
  coefficients are set to 0 across every frame of the window.
- Time masking: `time_masks` runs of up to `time_mask_width` adjacent frames of the window
  are set to 0 (all coefficients).
  A mask's width is drawn uniformly from 0..width, its position uniformly; each sample is
  masked with probability `mask_prob`. 0 is the mean of normalised features, so a masked
  value reads as "no information" rather than as a loud outlier.
- HW3P2's utterances take the same masks and noise, inside each utterance's length.
- Noise: Gaussian noise of std `noise_std` added to a random subset of the samples (each with
  probability `noise_prob`).
- Mixup (`mixup_alpha` > 0): every batch is blended with a shuffled copy of itself,
  x = lam * x + (1 - lam) * x[perm], lam ~ Beta(alpha, alpha), one lam per batch. The labels
  become soft targets, a (B, num_classes) float tensor lam * onehot(y) + (1 - lam) *
  onehot(y[perm]); F.cross_entropy takes such probability targets directly (label smoothing
  included), and training accuracy is counted against the larger of the two labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def band_mask(n: int, length: int, count: int, max_width: int, device) -> torch.Tensor:
    """(n, length) bool: per row, `count` runs of random width 0..max_width at random positions."""
    max_width = min(max_width, length)
    width = torch.randint(0, max_width + 1, (n, count, 1), device=device)
    # a start such that the run fits: uniform in [0, length - width]
    start = (torch.rand(n, count, 1, device=device) * (length - width + 1)).long()
    pos = torch.arange(length, device=device)
    return ((pos >= start) & (pos < start + width)).any(dim=1)


def mask(x: torch.Tensor, lengths=None, freq_masks: int = 1, freq_mask_width: int = 4, time_masks: int = 0,
         time_mask_width: int = 4, prob: float = 1.0) -> torch.Tensor:
    """Frequency and time masking of (B, T, F) windows or zero-padded utterances: masked entries
    become 0 (a new tensor). With `lengths`, a time mask lies inside its utterance (start and
    width drawn within its length), never in the padding only; a frequency mask covers it whole."""
    b, t, f = x.shape
    keep = torch.ones(b, t, f, dtype=torch.bool, device=x.device)
    if freq_masks > 0 and freq_mask_width > 0:
        keep &= ~band_mask(b, f, freq_masks, freq_mask_width, x.device)[:, None, :]
    if time_masks > 0 and time_mask_width > 0:
        if lengths is None:
            keep &= ~band_mask(b, t, time_masks, time_mask_width, x.device)[:, :, None]
        else:
            n = torch.as_tensor(lengths, device=x.device)[:, None, None]
            width = torch.minimum(torch.randint(0, time_mask_width + 1, (b, time_masks, 1), device=x.device), n)
            start = (torch.rand(b, time_masks, 1, device=x.device) * (n - width + 1)).long()
            pos = torch.arange(t, device=x.device)
            keep &= ~((pos >= start) & (pos < start + width)).any(dim=1)[:, :, None]
    if prob < 1:  # samples left alone keep every entry
        keep |= (torch.rand(b, 1, 1, device=x.device) >= prob)
    return x * keep


def mask_windows(x: torch.Tensor, freq_masks: int = 1, freq_mask_width: int = 4, time_masks: int = 0,
                 time_mask_width: int = 4, prob: float = 1.0) -> torch.Tensor:
    """Frequency and time masking of (B, 2C+1, F) windows: masked entries become 0 (a new tensor)."""
    return mask(x, None, freq_masks, freq_mask_width, time_masks, time_mask_width, prob)


def add_noise(x: torch.Tensor, std: float, prob: float = 1.0, lengths=None) -> torch.Tensor:
    """x plus Gaussian noise of standard deviation `std` on each sample with probability `prob`
    (with `lengths`: inside each utterance only, the padding stays 0)."""
    noise = torch.randn_like(x) * std
    if prob < 1:
        noise = noise * (torch.rand(x.shape[0], *([1] * (x.dim() - 1)), device=x.device) < prob)
    if lengths is not None:
        valid = torch.arange(x.shape[1], device=x.device) < torch.as_tensor(lengths, device=x.device)[:, None]
        noise = noise * valid[:, :, None]
    return x + noise


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float, num_classes: int):
    """(mixed x, soft targets (B, num_classes)): x blended with a shuffled copy of the batch."""
    lam = float(torch.distributions.Beta(alpha, alpha).sample())  # one number per batch, on the CPU
    perm = torch.randperm(x.shape[0], device=x.device)
    soft = F.one_hot(y, num_classes).to(torch.float32)
    return lam * x + (1 - lam) * x[perm], lam * soft + (1 - lam) * soft[perm]


def make_augment(config):
    """The training-batch augmentation a Config asks for; None when every switch is off.

    Frame batches: augment(x, y) -> (x, y). Utterance batches (HW3P2): augment(x, x_lengths, y,
    y_lengths) -> the same four, masks and noise inside each utterance. Reads freq_masks,
    freq_mask_width, time_masks, time_mask_width, mask_prob, noise_std, noise_prob, mixup_alpha
    and num_classes from the config (any object with those attributes).
    """
    masking = (config.freq_masks > 0 and config.freq_mask_width > 0) or (
        config.time_masks > 0 and config.time_mask_width > 0)
    masking = masking and config.mask_prob > 0
    noise = config.noise_std > 0 and config.noise_prob > 0
    mix = getattr(config, "mixup_alpha", 0) > 0
    if not (masking or noise or mix):
        return None

    def augment(*batch):
        if len(batch) == 1:  # augment(batch) works too
            batch = tuple(batch[0])
        x, *rest = batch
        lengths = rest[0] if len(rest) == 3 else None  # (x, y) | (x, x_lengths, y, y_lengths)
        if masking:
            x = mask(x, lengths, config.freq_masks, config.freq_mask_width, config.time_masks,
                     config.time_mask_width, config.mask_prob)
        if noise:
            x = add_noise(x, config.noise_std, config.noise_prob, lengths)
        if mix and lengths is None:
            x, y = mixup(x, rest[0], config.mixup_alpha, config.num_classes)
            return x, y
        return (x, *rest)

    return augment
