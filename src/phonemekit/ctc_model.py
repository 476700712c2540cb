"""The HW3P2 models: a Conv1d embedding -> an encoder chosen by name -> an MLP head -> log-softmax.

    model = build_ctc_model(n_features=28, conv_channels=[128, 256], conv_kernel=[5, 3], conv_stride=2,
                            encoder="blstm", lstm_hidden=256, lstm_layers=2, pyramid=1,
                            head=[512], head_norm="batch")
    log_probs, out_lengths = model(x, lengths)   # (B, T', 41) float32, T' = model.output_lengths(T)
    print(ctc_summary(model, n_features=28))     # torchinfo's table, in eval mode
    check_ctc_model(my_model, n_features=28)     # your own network, probed against the contract
    min_input_frames(**model.config)             # fewest input frames that give one output frame

Every option and its default is in MODEL_OPTIONS; build_ctc_model refuses an unknown or
impossible one with a ValueError naming it.

- Embedding (phonemekit.ctc_layers.ConvEmbedding): `conv_layers` residual blocks (Conv1d k ->
  BN -> GELU -> Conv1d k -> BN, plus a skip, then GELU) of `conv_channels` widths and
  `conv_kernel` kernels, each an int for every layer or a list with one per layer. The total
  stride `conv_stride` (1..4) is spread over the first blocks (4 = 2 x 2). Lengths follow the
  conv arithmetic exactly: floor((T + 2p - k) / s) + 1.
- Training only: `embed_time_masks` / `embed_freq_masks` masks and `embed_noise_std` Gaussian
  noise on the embedding output (eval mode never sees them).
- Encoder, by name from ENCODERS: "blstm" is `lstm_layers` BiLSTMs, then `pyramid` pBLSTMs that
  each concatenate frame pairs (an odd last frame is dropped): T -> T // 2, all on packed
  sequences, with locked dropout (one mask per utterance) between the layers.
- Head: Linear -> [BatchNorm | LayerNorm (`head_norm`)] -> GELU -> Dropout per width in `head`,
  then Linear to the classes; log-softmax in float32 (CTC must not see fp16 log-probabilities).
Nothing reads a padded frame: in eval mode an utterance's output does not depend on the batch.

Your own encoder (a conformer, say) is one class and one line: a module built as
`MyEncoder(n_in, options)` (options: the full dict of build_ctc_model's options) with
`out_features`, `output_lengths(lengths)` and `forward(x (B, T, C), lengths) -> (y, out_lengths)`;
then `ENCODERS["conformer"] = MyEncoder`, its own options added to MODEL_OPTIONS, and
build_ctc_model(..., encoder="conformer"). A whole network of your own instead: see check_ctc_model.
"""

from __future__ import annotations

import difflib
import inspect
import operator

import torch
from torch import nn

from .ctc_layers import (  # noqa: F401  (BLSTM, ConvBlock, LockedDropout, conv_length: importable from here too)
    BLSTM, BLSTMEncoder, ConvBlock, ConvEmbedding, EmbeddingAugment, LockedDropout, MLPHead, conv_length,
    frames_mask,
)
from .model import count_params  # noqa: F401  (the parameter count of these models too)
from .phonemes import NUM_CTC_CLASSES

MAX_STRIDE = 4
LONGEST_UTTERANCE = 3500  # frames: LibriSpeech's segments last at most 35 s (10 ms per frame)

# Every option of build_ctc_model with its default.
MODEL_OPTIONS = {
    # embedding: residual Conv1d blocks
    "conv_channels": 256,          # width of every block, or one per block: [128, 256]
    "conv_layers": 2,              # blocks; 0: features straight into the encoder
    "conv_kernel": 3,              # odd; one for every block or one per block: [5, 3]
    "conv_stride": 2,              # total time stride of the embedding, 1..4
    "conv_residual": True,         # skip connections in the blocks
    # on the embedding output, training mode only
    "embed_time_masks": 0,         # runs of frames set to 0 inside each utterance
    "embed_time_mask_width": 10,   # longest run, in embedding frames (each: 0..width)
    "embed_freq_masks": 0,         # bands of channels set to 0 over the utterance
    "embed_freq_mask_width": 16,   # widest band, in channels (each: 0..width)
    "embed_noise_std": 0.0,        # Gaussian noise added to the embedding
    # encoder (ENCODERS)
    "encoder": "blstm",
    "lstm_hidden": 256,            # per direction
    "lstm_layers": 2,              # plain BiLSTM layers
    "pyramid": 1,                  # pBLSTM layers after them, each halving T
    "locked_dropout": 0.2,         # between LSTM layers, one mask per utterance
    # head
    "head": [512],                 # hidden widths of the MLP; []: one Linear to the classes
    "head_norm": "none",           # none | batch | layer, after each hidden Linear
    "dropout": 0.1,                # in the conv blocks and the head
}
ENCODERS = {"blstm": BLSTMEncoder}
HEAD_NORMS = ("none", "batch", "layer")
_ALIASES = {"residual": "conv_residual"}  # build_ctc_model's older keyword


def _suggest(name, names) -> str:
    close = difflib.get_close_matches(str(name), list(names), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _int(name, value, low: int) -> int:
    try:
        ok = not isinstance(value, bool) and operator.index(value) >= low  # numpy ints too
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"{name}={value!r} must be an integer >= {low}")
    return operator.index(value)


def _per_layer(name, value, layers: int, low: int = 1) -> list[int]:
    """An int for every layer, or a list with one per layer, as a list of `layers` ints."""
    if isinstance(value, (list, tuple)):
        if len(value) != layers:
            raise ValueError(f"{name}={list(value)} has {len(value)} entries for conv_layers={layers}: "
                             f"give one per layer, or one int for all")
        return [_int(f"{name}[{i}]", v, low) for i, v in enumerate(value)]
    return [_int(name, value, low)] * layers


def _strides(total: int, layers: int) -> list[int]:
    if isinstance(total, bool) or total not in (1, 2, 3, 4):
        raise ValueError(f"conv_stride={total}: the embedding downsamples by 1, 2, 3 or 4 in total")
    factors = {1: [], 2: [2], 3: [3], 4: [2, 2]}[total]
    if len(factors) > layers:
        raise ValueError(f"conv_stride={total} needs at least {len(factors)} conv layer(s), got conv_layers={layers}")
    return factors + [1] * (layers - len(factors))


def validate_model_options(**options) -> dict:
    """Every option of MODEL_OPTIONS, defaults filled in, checked: ValueError naming the
    setting and the fix for an unknown or impossible one. `head` comes back as a list of ints."""
    for old, new in _ALIASES.items():
        if old in options:
            if new in options:
                raise ValueError(f"both {old}= and {new}= given: {old} is the older name of {new}; keep one")
            options[new] = options.pop(old)
    unknown = [k for k in options if k not in MODEL_OPTIONS]
    if unknown:
        raise ValueError(f"unknown model option {unknown[0]!r}{_suggest(unknown[0], MODEL_OPTIONS)}; "
                         f"the options are {', '.join(MODEL_OPTIONS)}")
    o = {**MODEL_OPTIONS, **options}
    if o["encoder"] not in ENCODERS:
        raise ValueError(f"encoder={o['encoder']!r} is not in ENCODERS{_suggest(o['encoder'], ENCODERS)}; "
                         f"known: {', '.join(ENCODERS)} (a new encoder is a class plus a line in ENCODERS)")
    layers = _int("conv_layers", o["conv_layers"], 0)
    _strides(o["conv_stride"], layers)
    _per_layer("conv_channels", o["conv_channels"], layers)
    for i, k in enumerate(_per_layer("conv_kernel", o["conv_kernel"], layers)):
        if k % 2 == 0:
            where = f"[{i}]" if isinstance(o["conv_kernel"], (list, tuple)) else ""
            raise ValueError(f"conv_kernel{where}={k} must be odd (padding k // 2 keeps the lengths exact)")
    for name in ("lstm_layers", "pyramid", "embed_time_masks", "embed_time_mask_width", "embed_freq_masks",
                 "embed_freq_mask_width"):
        _int(name, o[name], 0)
    _int("lstm_hidden", o["lstm_hidden"], 1)
    if o["encoder"] == "blstm" and o["lstm_layers"] + o["pyramid"] < 1:
        raise ValueError("the model needs at least one LSTM layer (lstm_layers + pyramid >= 1)")
    for name in ("dropout", "locked_dropout"):
        p = o[name]
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"{name}={p!r} must be a number in [0, 1)")
    noise = o["embed_noise_std"]
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or noise < 0:
        raise ValueError(f"embed_noise_std={noise!r} must be a number >= 0 (0: no noise)")
    head = o["head"]
    widths = [] if head is None else [head] if isinstance(head, int) else list(head)
    for w in widths:
        if isinstance(w, bool) or not isinstance(w, int) or w < 1:
            raise ValueError(f"head={head!r}: every hidden width must be a positive integer "
                             f"(head=[] for a single Linear to the classes)")
    o["head"] = widths
    norm = "none" if o["head_norm"] in (None, False) else o["head_norm"]
    if norm not in HEAD_NORMS:
        raise ValueError(f"head_norm={o['head_norm']!r}{_suggest(norm, HEAD_NORMS)}; choose {' | '.join(HEAD_NORMS)}")
    o["head_norm"] = norm
    if not isinstance(o["conv_residual"], bool):
        raise ValueError(f"conv_residual={o['conv_residual']!r} must be true or false")
    return o


class CTCModel(nn.Module):
    def __init__(self, embedding: nn.Module, augment: EmbeddingAugment, encoder: nn.Module, head: MLPHead,
                 config: dict):
        super().__init__()
        self.embedding, self.augment, self.encoder, self.head = embedding, augment, encoder, head
        # everything build_ctc_model was given: build_ctc_model(**model.config) rebuilds it
        self.config = config

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """The lengths forward() returns for these input lengths (no forward pass)."""
        return self.encoder.output_lengths(self.embedding.output_lengths(torch.as_tensor(lengths)))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        """x (B, T, F) padded, lengths (B,) -> (log_probs (B, T', C) float32, out_lengths (B,))."""
        lengths = torch.as_tensor(lengths, device=x.device)
        out_lengths = self.output_lengths(lengths)
        if len(lengths) and int(out_lengths.min()) < 1:
            short = int(lengths[out_lengths < 1].max())
            raise ValueError(f"an utterance of {short} frames has no frame left after the model's "
                             f"downsampling (conv_stride={self.config['conv_stride']}, "
                             f"pyramid={self.config['pyramid']}): it needs {_min_frames(self)} frames; "
                             f"drop it, pad it to min_input_frames(**model.config) or downsample less")
        h, lengths = self.embedding(x, lengths)
        h = self.augment(h, lengths)
        h, lengths = self.encoder(h, lengths)
        return self.head(h, lengths).float().log_softmax(-1), lengths

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints of kit versions that named the parts convs.<i>, lstms.<i>, head.<i>
        for old, new in (("convs.", "embedding.blocks."), ("lstms.", "encoder.layers."), ("head.", "head.layers.")):
            for key in [k for k in state_dict if k.startswith(prefix + old) and not k.startswith(prefix + new)]:
                state_dict[prefix + new + key[len(prefix + old):]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _min_frames(model) -> int | None:
    """Fewest input frames for which model.output_lengths gives 1 frame (None: over 65,536)."""
    with torch.device("cpu"):  # arithmetic on lengths, also while min_input_frames builds on "meta"
        ok = torch.nonzero(model.output_lengths(torch.arange(1, 2**16 + 1)) >= 1)
    return int(ok[0]) + 1 if len(ok) else None


def build_ctc_model(n_features: int, num_classes: int = NUM_CTC_CLASSES, **options) -> CTCModel:
    """The model MODEL_OPTIONS describes (see the module's docstring). forward(x, lengths) ->
    (log_probs (B, T', num_classes), out_lengths); model.output_lengths(T) gives T' alone.

    The total downsampling of the "blstm" encoder is conv_stride * 2**pyramid. CTC needs T' >=
    the phoneme count (plus one per repeated neighbour); LibriSpeech speaks ~8 frames per phoneme.
    """
    o = validate_model_options(**options)
    n_features, num_classes = _int("n_features", n_features, 1), _int("num_classes", num_classes, 2)
    layers = o["conv_layers"]
    embedding = ConvEmbedding(n_features, _per_layer("conv_channels", o["conv_channels"], layers),
                              _per_layer("conv_kernel", o["conv_kernel"], layers),
                              _strides(o["conv_stride"], layers), o["conv_residual"], o["dropout"])
    augment = EmbeddingAugment(o["embed_time_masks"], o["embed_time_mask_width"], o["embed_freq_masks"],
                               o["embed_freq_mask_width"], o["embed_noise_std"])
    encoder = ENCODERS[o["encoder"]](embedding.out_features, o)
    head = MLPHead(encoder.out_features, o["head"], num_classes, o["head_norm"], o["dropout"])
    model = CTCModel(embedding, augment, encoder, head, dict(n_features=n_features, num_classes=num_classes, **o))
    need = _min_frames(model)
    if need is None or need > LONGEST_UTTERANCE:
        raise ValueError(f"conv_stride={o['conv_stride']} with pyramid={o['pyramid']} leaves fewer than 1 frame "
                         f"of even a {LONGEST_UTTERANCE}-frame utterance (35 s, LibriSpeech's longest): "
                         f"lower conv_stride or pyramid")
    return model


def min_input_frames(**options) -> int:
    """The fewest input frames for which the model of these options (MODEL_OPTIONS, or
    model.config) gives one output frame: pad shorter test utterances to this many."""
    options.pop("num_classes", None)
    n_features = options.pop("n_features", 1)
    with torch.device("meta"):  # the lengths arithmetic only: no weights allocated
        model = build_ctc_model(n_features, **options)
    return _min_frames(model)


def ctc_summary(model: nn.Module, n_features: int, frames: int = 1000, batch_size: int = 2, depth: int = 3):
    """torchinfo's layer table for a (batch_size, frames, n_features) batch of full-length
    utterances. Runs one forward pass in eval mode and leaves every module's mode as it was.
    A bad option or too few frames is a ValueError before torchinfo runs."""
    from torchinfo import summary as torchinfo_summary

    if isinstance(getattr(model, "config", None), dict):
        validate_model_options(**{k: v for k, v in model.config.items() if k not in ("n_features", "num_classes")})
    if hasattr(model, "output_lengths") and int(model.output_lengths(torch.tensor([frames]))[0]) < 1:
        raise ValueError(f"ctc_summary(frames={frames}): the model needs at least {_min_frames(model)} "
                         f"input frames for one output frame; pass more frames")
    modes = {m: m.training for m in model.modules()}
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.zeros(batch_size, frames, n_features, device=device)
    lengths = torch.full((batch_size,), frames, dtype=torch.long, device=device)
    try:
        return torchinfo_summary(model, input_data=[x, lengths], device=device, mode="eval", depth=depth,
                                 col_names=("output_size", "num_params"), verbose=0)
    except RuntimeError as e:
        # torchinfo wraps the model's own error in "Failed to run torchinfo": show the model's
        if isinstance(e.__cause__, ValueError):
            raise e.__cause__ from None
        raise
    finally:
        for m, training in modes.items():
            m.training = training


def check_ctc_model(model: nn.Module, n_features: int, num_classes: int = NUM_CTC_CLASSES, frames: int = 200) -> None:
    """Probe a network (the kit's or your own) once before training; ValueError on the first
    breach of the contract every HW3P2 step relies on:

        forward(x (B, T, F) float, lengths (B,) long) -> (log_probs, out_lengths)
        log_probs   (B, T', num_classes), T' <= T, log_softmax-ed over the last dim (class 0: blank)
        out_lengths (B,) integer tensor, 1 <= out_lengths <= T', following each utterance's length

    Runs a batch of 2 utterances (frames and 3/4 of it) in eval mode without gradients, then
    restores every module's mode and every buffer (BatchNorm statistics)."""
    contract = (f"forward(x (B, T, F), lengths (B,)) must return a tuple (log_probs (B, T', {num_classes}) "
                f"log_softmax-ed over the classes, out_lengths (B,) integer tensor <= T')")

    def fail(problem: str):
        raise ValueError(f"check_ctc_model: {problem}; {contract}")

    params = list(model.parameters())
    if not params:
        fail(f"{type(model).__name__} has no parameters (layers kept in a plain list instead of nn.ModuleList?)")
    try:
        inspect.signature(model.forward).bind(None, None)
    except TypeError:
        fail(f"{type(model).__name__}.forward{inspect.signature(model.forward)} does not take (x, lengths)")
    device = params[0].device
    lengths = torch.tensor([frames, frames * 3 // 4], device=device)
    x = torch.randn(2, frames, n_features, device=device) * frames_mask(lengths, frames)[:, :, None]
    modes = {m: m.training for m in model.modules()}
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    model.eval()
    try:
        with torch.no_grad():
            out = model(x, lengths)
    except Exception as e:  # the student's forward: say what it was given
        raise ValueError(f"check_ctc_model: forward(x of shape {tuple(x.shape)}, lengths {lengths.tolist()}) raised "
                         f"{type(e).__name__}: {e}; {contract}") from e
    finally:
        for m, training in modes.items():
            m.training = training
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])
    if isinstance(out, torch.Tensor):
        fail(f"forward returned one tensor of shape {tuple(out.shape)}, not a tuple of two")
    if isinstance(out, dict):
        fail(f"forward returned a dict with keys {list(out)}, not a tuple of two")
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        fail(f"forward returned a {type(out).__name__}" + (f" of {len(out)}" if isinstance(out, (tuple, list)) else ""))
    log_probs, out_lengths = out
    if not isinstance(log_probs, torch.Tensor) or log_probs.dim() != 3:
        shape = tuple(log_probs.shape) if isinstance(log_probs, torch.Tensor) else type(log_probs).__name__
        fail(f"log_probs is {shape}, not a rank-3 tensor (B, T', C)")
    b, t, c = log_probs.shape
    if b != 2:
        if t == 2:
            fail(f"log_probs has shape {tuple(log_probs.shape)} for a batch of 2: time-first (T', B, C); "
                 f"return it batch-first (log_probs.transpose(0, 1))")
        fail(f"log_probs has shape {tuple(log_probs.shape)}: its first dimension is not the batch of 2")
    if c != num_classes:
        if t == num_classes:
            fail(f"log_probs has shape {tuple(log_probs.shape)}: classes before time; return (B, T', C)")
        fail(f"log_probs has {c} classes in its last dimension, not {num_classes} (class 0 the blank, then the phonemes)")
    if t > frames:
        fail(f"log_probs has T'={t} frames for inputs of {frames}: the time axis may only shrink")
    if not isinstance(out_lengths, torch.Tensor):
        fail(f"out_lengths is a {type(out_lengths).__name__}, not a tensor (torch.as_tensor(...))")
    if out_lengths.shape != (2,) or out_lengths.is_floating_point() or out_lengths.dtype == torch.bool:
        fail(f"out_lengths has shape {tuple(out_lengths.shape)} and dtype {out_lengths.dtype}, not (B,) = (2,) integers")
    n = out_lengths.tolist()
    if max(n) > t or min(n) < 1:
        fail(f"out_lengths {n} for log_probs of T'={t}: each must lie in 1..T' (lengths after the downsampling)")
    if t >= 4 and n[0] == n[1]:
        fail(f"out_lengths {n} are equal for inputs of {lengths.tolist()} frames: follow each utterance's length")
    valid = log_probs[frames_mask(out_lengths, t)].float()
    lse = valid.logsumexp(-1)
    if not torch.allclose(lse, torch.zeros_like(lse), atol=1e-3):
        if bool((valid >= 0).all()) and torch.allclose(valid.sum(-1), torch.ones_like(lse), atol=1e-3):
            fail("log_probs are probabilities (they sum to 1 over the classes): use log_softmax, not softmax")
        fail(f"log_probs are not log-probabilities: logsumexp over the classes is {float(lse.nan_to_num().mean()):.3g}, "
             f"not 0 (end forward with .log_softmax(-1))")
