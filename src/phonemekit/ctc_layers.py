"""The parts of the HW3P2 models (phonemekit.ctc_model puts them together by name).

Every part maps (x, lengths) -> (y, out_lengths) on zero-padded batches and never lets a
padded frame reach a valid one: whatever mixes time steps (a conv, a BatchNorm in training,
a recurrent layer) reads only the frames inside each utterance. So in eval mode an utterance
gives the same log-probabilities alone as inside any padded batch.

- ConvEmbedding: residual Conv1d blocks, channels first inside, (B, T, F) -> (B, T', C).
- EmbeddingAugment: time/frequency masks and Gaussian noise on the embedding, training only.
- BLSTMEncoder: BiLSTMs then pyramidal BiLSTMs on packed sequences, locked dropout between.
- MLPHead: Linear -> [BatchNorm | LayerNorm] -> GELU -> Dropout per width, then the classes.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .augment import band_mask


def conv_length(lengths: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """Output length of a Conv1d for input lengths, as PyTorch computes it."""
    k, s, p, d = conv.kernel_size[0], conv.stride[0], conv.padding[0], conv.dilation[0]
    return torch.div(lengths + 2 * p - d * (k - 1) - 1, s, rounding_mode="floor") + 1


def frames_mask(lengths: torch.Tensor, t: int) -> torch.Tensor:
    """(B, T) bool: True on the frames inside each utterance."""
    return torch.arange(t, device=lengths.device) < lengths[:, None]


def _mask(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x (B, C, T) with the frames past each length set to 0."""
    keep = frames_mask(lengths.to(x.device), x.shape[-1])
    return x * keep[:, None, :].to(x.dtype)


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d on (B, C, T) whose training statistics come from the valid frames only
    (padding would pull the mean towards 0 by the batch's padding share). Eval mode normalises
    each element with the running statistics, as nn.BatchNorm1d does; same state_dict keys."""

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        if keep is None or not self.training:
            return super().forward(x)
        x = x.transpose(1, 2)  # (B, T, C): the valid frames as rows
        out = torch.zeros_like(x)
        out[keep] = super().forward(x[keep]).to(out.dtype)
        return out.transpose(1, 2)


def _run(layers: nn.Sequential, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Apply layers to (B, C, T), zeroing the padding before every conv."""
    for layer in layers:
        if isinstance(layer, nn.Conv1d):
            h = h * keep[:, None, :].to(h.dtype)
        h = layer(h, keep) if isinstance(layer, MaskedBatchNorm1d) else layer(h)
    return h


class ConvBlock(nn.Module):
    """Residual Conv1d block: act(main(x) + skip(x)); the skip is a strided 1x1 conv where the
    shape changes. Odd kernels with padding k // 2 give main and skip the same length."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, residual: bool, dropout: float):
        super().__init__()
        p = kernel // 2
        self.conv1 = nn.Conv1d(cin, cout, kernel, stride, p, bias=False)
        self.main = nn.Sequential(
            MaskedBatchNorm1d(cout), nn.GELU(), nn.Dropout(dropout),
            nn.Conv1d(cout, cout, kernel, 1, p, bias=False), MaskedBatchNorm1d(cout),
        )
        if not residual:
            self.skip = None
        elif cin == cout and stride == 1:
            self.skip = nn.Identity()
        else:
            self.skip = nn.Sequential(nn.Conv1d(cin, cout, 1, stride, bias=False), MaskedBatchNorm1d(cout))
        self.act = nn.GELU()

    def forward(self, x, lengths):
        """x (B, C, T) zero past each length -> (B, C', T'), out lengths; zero past them too."""
        h = self.conv1(x)
        lengths = conv_length(lengths, self.conv1)
        keep = frames_mask(lengths.to(x.device), h.shape[-1])
        # BatchNorm(0) + GELU is not 0 at padded frames: the mask before main's conv drops them
        out = _run(self.main, h, keep)
        if isinstance(self.skip, nn.Sequential):  # x is zero past its lengths already
            conv, bn = self.skip
            out = out + bn(conv(x), keep)
        elif self.skip is not None:
            out = out + self.skip(x)
        return self.act(out) * keep[:, None, :].to(out.dtype), lengths


class ConvEmbedding(nn.Module):
    """Conv blocks of per-layer widths, kernels and strides: (B, T, F) -> (B, T', C).
    No blocks: the features go through unchanged."""

    def __init__(self, n_in: int, channels: list[int], kernels: list[int], strides: list[int],
                 residual: bool, dropout: float):
        super().__init__()
        blocks, prev = [], n_in
        for c, k, s in zip(channels, kernels, strides):
            blocks.append(ConvBlock(prev, c, k, s, residual, dropout))
            prev = c
        self.blocks = nn.ModuleList(blocks)
        self.out_features = prev

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            lengths = conv_length(lengths, block.conv1)
        return lengths

    def forward(self, x, lengths):
        if not len(self.blocks):
            return x, lengths
        h = _mask(x.transpose(1, 2), lengths)  # Conv1d wants (B, F, T); the padding may hold anything
        for block in self.blocks:
            h, lengths = block(h, lengths)
        return h.transpose(1, 2), lengths


def mask_utterances(x: torch.Tensor, lengths: torch.Tensor, freq_masks: int = 0, freq_mask_width: int = 0,
                    time_masks: int = 0, time_mask_width: int = 0) -> torch.Tensor:
    """Zero-padded (B, T, C) with `time_masks` runs of 0..width frames inside each utterance
    and `freq_masks` bands of 0..width channels over it set to 0 (a new tensor): the kit's one
    masking (phonemekit.augment.mask), here on the embedding."""
    from .augment import mask

    return mask(x, lengths, freq_masks, freq_mask_width, time_masks, time_mask_width)


class EmbeddingAugment(nn.Module):
    """SpecAugment-style masks and Gaussian noise on the embedding output, in training mode
    only (eval mode passes it through). Noise stays off the padding."""

    def __init__(self, time_masks: int = 0, time_mask_width: int = 0, freq_masks: int = 0,
                 freq_mask_width: int = 0, noise_std: float = 0.0):
        super().__init__()
        self.time_masks, self.time_mask_width = time_masks, time_mask_width
        self.freq_masks, self.freq_mask_width = freq_masks, freq_mask_width
        self.noise_std = noise_std

    def forward(self, x, lengths):
        if not self.training:
            return x
        x = mask_utterances(x, lengths, self.freq_masks, self.freq_mask_width, self.time_masks, self.time_mask_width)
        if self.noise_std > 0:
            keep = frames_mask(lengths.to(x.device), x.shape[1])[:, :, None].to(x.dtype)
            x = x + torch.randn_like(x) * self.noise_std * keep
        return x


class LockedDropout(nn.Module):
    """Dropout with one mask per sequence, shared over time (B, 1, H)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        mask = torch.empty(x.shape[0], 1, x.shape[2], device=x.device, dtype=x.dtype).bernoulli_(1 - self.p)
        return x * mask / (1 - self.p)


class BLSTM(nn.Module):
    """One bidirectional LSTM layer on a packed sequence; pyramid=True first halves T by
    concatenating frame pairs (B, T, H) -> (B, T // 2, 2H), lengths // 2."""

    def __init__(self, cin: int, hidden: int, pyramid: bool):
        super().__init__()
        self.pyramid = pyramid
        self.lstm = nn.LSTM(2 * cin if pyramid else cin, hidden, batch_first=True, bidirectional=True)

    def forward(self, x, lengths):
        if self.pyramid:
            b, t, h = x.shape
            t2 = t // 2  # an odd last frame is dropped
            x = x[:, : 2 * t2].reshape(b, t2, 2 * h)
            lengths = torch.div(lengths, 2, rounding_mode="floor")
        # packing needs lengths on the CPU; enforce_sorted=False keeps the batch in its order
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out, lengths


class BLSTMEncoder(nn.Module):
    """`lstm_layers` BiLSTMs, then `pyramid` pBLSTMs (each halves T), `lstm_hidden` per
    direction, locked dropout between layers: (B, T, C) -> (B, T // 2**pyramid, 2 * lstm_hidden)."""

    def __init__(self, n_in: int, options: dict):
        super().__init__()
        hidden, plain = options["lstm_hidden"], options["lstm_layers"]
        layers, prev = [], n_in
        for i in range(plain + options["pyramid"]):
            layers.append(BLSTM(prev, hidden, pyramid=i >= plain))
            prev = 2 * hidden
        self.layers = nn.ModuleList(layers)
        self.locked = LockedDropout(options["locked_dropout"])
        self.out_features = prev

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            if layer.pyramid:
                lengths = torch.div(lengths, 2, rounding_mode="floor")
        return lengths

    def forward(self, x, lengths):
        for i, layer in enumerate(self.layers):
            if i:
                x = self.locked(x)
            x, lengths = layer(x, lengths)
        return x, lengths


class MLPHead(nn.Module):
    """Linear -> norm -> GELU -> Dropout per hidden width, then Linear to the classes, frame by
    frame. norm: "batch" (statistics of the valid frames in training), "layer" or "none"."""

    def __init__(self, n_in: int, widths: list[int], num_classes: int, norm: str, dropout: float):
        super().__init__()
        layers, prev = [], n_in
        for w in widths:
            layers.append(nn.Linear(prev, w))
            if norm == "batch":
                layers.append(MaskedBatchNorm1d(w))
            elif norm == "layer":
                layers.append(nn.LayerNorm(w))
            layers += [nn.GELU(), nn.Dropout(dropout)]
            prev = w
        layers.append(nn.Linear(prev, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x, lengths):
        keep = None
        for layer in self.layers:
            if isinstance(layer, MaskedBatchNorm1d):
                if keep is None:
                    keep = frames_mask(lengths.to(x.device), x.shape[1])
                x = layer(x.transpose(1, 2), keep).transpose(1, 2)
            else:
                x = layer(x)
        return x
