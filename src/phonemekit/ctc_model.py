"""The HW3P2 model family: Conv1d embedding -> (pyramidal) BiLSTMs -> MLP head -> log-softmax.

    model = build_ctc_model(n_features=28, conv_channels=256, conv_layers=2, conv_stride=2,
                            lstm_hidden=256, lstm_layers=2, pyramid=1, locked_dropout=0.2,
                            head=[512])
    log_probs, out_lengths = model(x, lengths)   # (B, T', 41) float32, T' = model.output_lengths(T)
    print(ctc_summary(model, n_features=28))     # torchinfo's table, in eval mode
    count_params(model)

- Embedding: `conv_layers` residual blocks (Conv1d k -> BN -> GELU -> Conv1d k -> BN, plus a
  skip, then GELU). The total stride `conv_stride` (1..4) is spread over the first blocks
  (4 = 2 x 2). Lengths follow the conv arithmetic exactly: floor((T + 2p - k) / s) + 1.
- `lstm_layers` BiLSTM layers, then `pyramid` pBLSTM layers, each of which concatenates pairs
  of frames (an odd last frame is dropped) before its BiLSTM: T -> T // 2. Every LSTM runs on a
  packed sequence, so padding never enters its state.
- Locked (variational) dropout between LSTM layers: one mask per utterance, the same at every
  time step, as recurrent nets want.
- Head: Linear -> GELU -> Dropout per width in `head`, then Linear to the classes; log-softmax
  in float32 (CTC must not see fp16 log-probabilities).
Padding frames are zeroed after every conv block, so in eval mode an utterance's output does
not depend on the batch it was padded into.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .model import count_params  # noqa: F401  (the parameter count of these models too)
from .phonemes import NUM_CTC_CLASSES

MAX_STRIDE = 4


def conv_length(lengths: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """Output length of a Conv1d for input lengths, as PyTorch computes it."""
    k, s, p, d = conv.kernel_size[0], conv.stride[0], conv.padding[0], conv.dilation[0]
    return torch.div(lengths + 2 * p - d * (k - 1) - 1, s, rounding_mode="floor") + 1


def _mask(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x (B, C, T) with the frames past each length set to 0."""
    keep = torch.arange(x.shape[-1], device=x.device) < lengths.to(x.device)[:, None]
    return x * keep[:, None, :].to(x.dtype)


class ConvBlock(nn.Module):
    """Residual Conv1d block: act(main(x) + skip(x)); the skip is a strided 1x1 conv where the
    shape changes. Odd kernels with padding k // 2 give main and skip the same length."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, residual: bool, dropout: float):
        super().__init__()
        p = kernel // 2
        self.conv1 = nn.Conv1d(cin, cout, kernel, stride, p, bias=False)
        self.main = nn.Sequential(
            nn.BatchNorm1d(cout), nn.GELU(), nn.Dropout(dropout),
            nn.Conv1d(cout, cout, kernel, 1, p, bias=False), nn.BatchNorm1d(cout),
        )
        if not residual:
            self.skip = None
        elif cin == cout and stride == 1:
            self.skip = nn.Identity()
        else:
            self.skip = nn.Sequential(nn.Conv1d(cin, cout, 1, stride, bias=False), nn.BatchNorm1d(cout))
        self.act = nn.GELU()

    def forward(self, x, lengths):
        out = self.main(self.conv1(x))
        if self.skip is not None:
            out = out + self.skip(x)
        lengths = conv_length(lengths, self.conv1)
        return _mask(self.act(out), lengths), lengths


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


class CTCModel(nn.Module):
    def __init__(self, convs: nn.ModuleList, lstms: nn.ModuleList, locked: LockedDropout,
                 head: nn.Sequential, config: dict):
        super().__init__()
        self.convs, self.lstms, self.locked, self.head = convs, lstms, locked, head
        # everything build_ctc_model was given: build_ctc_model(**model.config) rebuilds it
        self.config = config

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """The lengths forward() returns for these input lengths (no forward pass)."""
        lengths = torch.as_tensor(lengths)
        for block in self.convs:
            lengths = conv_length(lengths, block.conv1)
        for lstm in self.lstms:
            if lstm.pyramid:
                lengths = torch.div(lengths, 2, rounding_mode="floor")
        return lengths

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        """x (B, T, F) zero-padded, lengths (B,) -> (log_probs (B, T', C) float32, out_lengths (B,))."""
        lengths = torch.as_tensor(lengths, device=x.device)
        out_lengths = self.output_lengths(lengths)
        if len(lengths) and int(out_lengths.min()) < 1:
            short = int(lengths[out_lengths < 1].max())
            raise ValueError(f"an utterance of {short} frames has no frame left after the model's "
                             f"downsampling (conv_stride={self.config['conv_stride']}, "
                             f"pyramid={self.config['pyramid']}): drop it or downsample less")
        h = x.transpose(1, 2)  # Conv1d wants (B, F, T)
        for block in self.convs:
            h, lengths = block(h, lengths)
        h = h.transpose(1, 2)
        for i, lstm in enumerate(self.lstms):
            if i:
                h = self.locked(h)
            h, lengths = lstm(h, lengths)
        logits = self.head(h)
        return logits.float().log_softmax(-1), lengths


def _strides(total: int, layers: int) -> list[int]:
    if total not in (1, 2, 3, 4):
        raise ValueError(f"conv_stride={total}: the embedding downsamples by 1, 2, 3 or 4 in total")
    factors = {1: [], 2: [2], 3: [3], 4: [2, 2]}[total]
    if len(factors) > layers:
        raise ValueError(f"conv_stride={total} needs at least {len(factors)} conv layer(s), got conv_layers={layers}")
    return factors + [1] * (layers - len(factors))


def build_ctc_model(n_features: int, num_classes: int = NUM_CTC_CLASSES, conv_channels: int = 256,
                    conv_layers: int = 2, conv_kernel: int = 3, conv_stride: int = 1, residual: bool = True,
                    lstm_hidden: int = 256, lstm_layers: int = 2, pyramid: int = 0, dropout: float = 0.1,
                    locked_dropout: float = 0.2, head=(512,)) -> CTCModel:
    """The course's model family (see the module's docstring). forward(x, lengths) ->
    (log_probs (B, T', num_classes), out_lengths); model.output_lengths(T) gives T' alone.

    conv_layers=0 feeds the features straight to the LSTMs (conv_stride must then be 1).
    lstm_layers plain BiLSTM layers come first, then `pyramid` pBLSTM layers, each halving T:
    the total downsampling is conv_stride * 2**pyramid. CTC needs T' >= the phoneme count
    (plus one per repeated neighbour); LibriSpeech speaks ~8 frames per phoneme.
    """
    if conv_kernel % 2 == 0:
        raise ValueError(f"conv_kernel={conv_kernel} must be odd (padding k // 2 keeps the lengths exact)")
    if lstm_layers + pyramid < 1:
        raise ValueError("the model needs at least one LSTM layer (lstm_layers + pyramid >= 1)")
    for name, p in (("dropout", dropout), ("locked_dropout", locked_dropout)):
        if not 0 <= p < 1:
            raise ValueError(f"{name}={p} must be in [0, 1)")
    head = [int(head)] if isinstance(head, int) else [int(w) for w in head or []]
    convs, prev = [], int(n_features)
    for s in _strides(int(conv_stride), int(conv_layers)):
        convs.append(ConvBlock(prev, conv_channels, conv_kernel, s, residual, dropout))
        prev = conv_channels
    lstms = []
    for i in range(lstm_layers + pyramid):
        lstms.append(BLSTM(prev, lstm_hidden, pyramid=i >= lstm_layers))
        prev = 2 * lstm_hidden
    layers = []
    for w in head:
        layers += [nn.Linear(prev, w), nn.GELU(), nn.Dropout(dropout)]
        prev = w
    layers.append(nn.Linear(prev, num_classes))
    config = dict(n_features=int(n_features), num_classes=num_classes, conv_channels=conv_channels,
                  conv_layers=conv_layers, conv_kernel=conv_kernel, conv_stride=conv_stride,
                  residual=residual, lstm_hidden=lstm_hidden, lstm_layers=lstm_layers, pyramid=pyramid,
                  dropout=dropout, locked_dropout=locked_dropout, head=head)
    return CTCModel(nn.ModuleList(convs), nn.ModuleList(lstms), LockedDropout(locked_dropout),
                    nn.Sequential(*layers), config)


def ctc_summary(model: nn.Module, n_features: int, frames: int = 1000, batch_size: int = 2, depth: int = 3):
    """torchinfo's layer table for a (batch_size, frames, n_features) batch of full-length
    utterances. Runs one forward pass in eval mode and leaves every module's mode as it was."""
    from torchinfo import summary as torchinfo_summary

    modes = {m: m.training for m in model.modules()}
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.zeros(batch_size, frames, n_features, device=device)
    lengths = torch.full((batch_size,), frames, dtype=torch.long, device=device)
    try:
        return torchinfo_summary(model, input_data=[x, lengths], device=device, mode="eval", depth=depth,
                                 col_names=("output_size", "num_params"), verbose=0)
    finally:
        for m, training in modes.items():
            m.training = training
