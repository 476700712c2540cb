"""The MLP: a window of frames in, 40 phoneme logits out, sized to the 20M-parameter budget.

    model = build_mlp(in_features=(2 * context + 1) * n_features, shape="pyramid", depth=5,
                      budget=20_000_000, activation="gelu", norm="before", dropout=0.2)
    model.hidden        # the widths chosen: [3840, 2304, 1344, 768, 512] for context 30, F=28
    check_budget(model) # raises if the course's 20M limit is exceeded (ensembles: several models)
    print(summary(model, context, n_features))

A hidden layer is Linear -> BatchNorm -> activation -> Dropout (norm="before"), or
Linear -> activation -> BatchNorm -> Dropout (norm="after"), or without BatchNorm (norm=None).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .phonemes import NUM_CLASSES

BUDGET = 20_000_000  # the course's limit, ensembles included
SHAPES = ("cylinder", "pyramid", "inverse-pyramid", "diamond")
NORMS = ("before", "after", None)
RESIDUALS = (None, "basic", "bottleneck")
INITS = ("default", "xavier_normal", "xavier_uniform", "kaiming_normal", "kaiming_uniform", "normal", "uniform")
ACTIVATIONS = {
    "relu": nn.ReLU,
    "leakyrelu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}
_ACTIVATION_ALIASES = {"leaky_relu": "leakyrelu", "leaky-relu": "leakyrelu", "swish": "silu"}
TOLERANCE = 0.02  # a solved model lands within 2% under its budget
BOTTLENECK = 4    # a bottleneck block narrows to width // 4 inside


# --------------------------------------------------------------------------------------------
# Building blocks


class Residual(nn.Module):
    """out = act(main(x) + skip(x)): the skip is added before the block's last activation.

    basic:      Linear(in, w) -> BN -> act -> Linear(w, w) -> BN
    bottleneck: Linear(in, w/4) -> BN -> act -> Linear(w/4, w/4) -> BN -> act -> Linear(w/4, w) -> BN
    skip:       identity when in == w, else a projection Linear(in, w) -> BN.
    """

    def __init__(self, main: nn.Sequential, skip: nn.Module, act: nn.Module):
        super().__init__()
        self.main, self.skip, self.act = main, skip, act

    def forward(self, x):
        return self.act(self.main(x) + self.skip(x))


class MLP(nn.Module):
    """Flattens the (B, 2C+1, F) window batch, runs the hidden layers, returns (B, classes) logits."""

    def __init__(self, in_features: int, layers: nn.Sequential, head: nn.Linear, config: dict):
        super().__init__()
        self.in_features = in_features
        self.layers, self.head = layers, head
        self.hidden = list(config["hidden"])
        # everything build_mlp was given: build_mlp(**model.config) makes the same architecture
        self.config = config

    def forward(self, x):
        x = x.flatten(1)
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"the model takes {self.in_features} inputs per frame but got a batch of shape "
                f"{tuple(x.shape)} after flattening: build it with in_features=(2*context+1)*n_features "
                "for the dataset's context and feature dimension"
            )
        return self.head(self.layers(x))


class FlatInput(nn.Module):
    """Your own network that takes flattened windows (B, (2C+1)*F): fit() wraps it in this so that
    it is fed the kit's (B, 2C+1, F) batches, in training, validation and prediction alike."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x.flatten(1))


def _activation(name) -> nn.Module:
    key = str(name).lower()
    key = _ACTIVATION_ALIASES.get(key, key)
    if key not in ACTIVATIONS:
        raise ValueError(f"activation={name!r}; choose one of {list(ACTIVATIONS)}")
    return ACTIVATIONS[key]()


def _norm_name(norm):
    norm = None if norm in (None, False, "none", "None") else norm
    if norm not in NORMS:
        raise ValueError(f"norm={norm!r}; choose 'before' (Linear->BN->act), 'after' (Linear->act->BN) or None")
    return norm


def _unit(i: int, o: int, norm, activation) -> list[nn.Module]:
    """One hidden layer. A Linear followed by BatchNorm has no bias: BN's shift replaces it."""
    if norm == "before":
        return [nn.Linear(i, o, bias=False), nn.BatchNorm1d(o), _activation(activation)]
    if norm == "after":
        return [nn.Linear(i, o), _activation(activation), nn.BatchNorm1d(o)]
    return [nn.Linear(i, o), _activation(activation)]


def _last_unit(i: int, o: int, norm) -> list[nn.Module]:
    """The last Linear of a residual block: its BatchNorm (if any) comes before the sum."""
    if norm is None:
        return [nn.Linear(i, o)]
    return [nn.Linear(i, o, bias=False), nn.BatchNorm1d(o)]


def _residual_block(i: int, o: int, kind: str, norm, activation) -> Residual:
    if kind == "basic":
        main = _unit(i, o, norm, activation) + _last_unit(o, o, norm)
    else:
        m = max(1, o // BOTTLENECK)
        main = _unit(i, m, norm, activation) + _unit(m, m, norm, activation) + _last_unit(m, o, norm)
    skip = nn.Identity() if i == o else nn.Sequential(*_last_unit(i, o, norm))
    return Residual(nn.Sequential(*main), skip, _activation(activation))


# --------------------------------------------------------------------------------------------
# Counting parameters without building (the width solver calls this thousands of times)


def _count(in_features, widths, num_classes, norm, residual) -> float:
    def linear(i, o, bias):
        return i * o + (o if bias else 0)

    def unit(i, o):  # matches _unit
        return linear(i, o, norm != "before") + (2 * o if norm else 0)

    def last(i, o):  # matches _last_unit
        return linear(i, o, norm is None) + (2 * o if norm else 0)

    n, prev = 0, in_features
    for k, w in enumerate(widths):
        if residual is None or k == 0:
            n += unit(prev, w)
        elif residual == "basic":
            n += unit(prev, w) + last(w, w) + (last(prev, w) if prev != w else 0)
        else:
            m = max(1, w // BOTTLENECK) if isinstance(w, int) else max(1.0, w / BOTTLENECK)
            n += unit(prev, m) + unit(m, m) + last(m, w) + (last(prev, w) if prev != w else 0)
        prev = w
    return n + linear(prev, num_classes, True)


# --------------------------------------------------------------------------------------------
# Shapes: relative widths per layer, solved for the budget


def shape_ratios(shape: str, depth: int) -> list[float]:
    """Relative widths (widest = 1) of the hidden layers for a shape preset.

    pyramid halves the width layer by layer (2048-1024-512-256), narrowing to at most 1/8 of
    the widest layer for deep pyramids; inverse-pyramid is its mirror; diamond widens to the
    middle and narrows again, its ends 1/4 of the middle (512-1024-2048-1024-512).
    """
    if shape not in SHAPES:
        raise ValueError(f"shape={shape!r}; choose one of {SHAPES} or pass hidden=[...] widths")
    if depth < 1:
        raise ValueError(f"depth={depth} must be at least 1 hidden layer")
    if shape == "cylinder" or depth == 1:
        return [1.0] * depth
    if shape in ("pyramid", "inverse-pyramid"):
        narrowest = 2.0 ** -min(depth - 1, 3)
        r = [narrowest ** (i / (depth - 1)) for i in range(depth)]
        return r if shape == "pyramid" else r[::-1]
    mid = (depth - 1) / 2
    return [0.25 ** (abs(i - mid) / mid) for i in range(depth)]


def solve_widths(in_features: int, shape: str = "cylinder", depth: int = 4, budget: int = BUDGET,
                 num_classes: int = NUM_CLASSES, norm="before", residual=None) -> list[int]:
    """Hidden widths of the given shape with the most parameters not above `budget`.

    Widths are multiples of 64 (tensor cores work in tiles of 8-64), each layer either rounded
    down or up from its ideal width; where multiples of 64 cannot land within 2% under the
    budget (small budgets, residual nets whose equal layers round together), multiples of 8,
    then any width.
    """
    norm = _norm_name(norm)
    ratios = shape_ratios(shape, depth)

    def count(widths):
        return _count(in_features, widths, num_classes, norm, residual)

    if count([1] * depth) > budget:
        raise ValueError(
            f"budget={budget:,} is too small for {depth} hidden layers on {in_features} inputs "
            f"(even width 1 needs {int(count([1] * depth)):,} parameters): raise the budget or lower the depth"
        )
    # the largest scale whose ideal (unrounded) widths fit the budget: bisection, count is monotone
    lo, hi = 0.0, 1.0
    while count([hi * r for r in ratios]) <= budget:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if count([mid * r for r in ratios]) <= budget else (lo, mid)
    ideal = [lo * r for r in ratios]

    best = None
    for step in (64, 8, 1):
        widths = [max(step, math.floor(w / step) * step) for w in ideal]
        if count(widths) > budget:
            continue  # the minimum width of this step is already too wide
        # round up the layers that lost the most to rounding, as long as the budget allows;
        # residual nets round equal layers together: a width change would need a projected skip
        groups = [[k] for k in range(depth)] if residual is None else \
            [[k for k in range(depth) if ratios[k] == r] for r in dict.fromkeys(ratios)]
        for g in sorted(groups, key=lambda g: ideal[g[0]] - widths[g[0]], reverse=True):
            trial = [w + step if k in g else w for k, w in enumerate(widths)]
            if count(trial) <= budget:
                widths = trial
        if best is None or count(widths) > count(best):
            best = widths
        if count(widths) >= (1 - TOLERANCE) * budget:
            return widths
    return best


# --------------------------------------------------------------------------------------------
# The model


def _dropout_rates(dropout, depth: int) -> list[float]:
    """One rate per hidden layer from a float, a list, or "alternate:RATE"."""
    if isinstance(dropout, str):
        kind, _, rate = dropout.partition(":")
        if kind != "alternate" or not rate:
            raise ValueError(f"dropout={dropout!r}; use a rate (0.2), a list of rates, or 'alternate:0.2'")
        # layers 1, 3, 5, ... (counting from 1) get the rate, the others none
        return [float(rate) if k % 2 == 0 else 0.0 for k in range(depth)]
    if isinstance(dropout, (list, tuple)):
        if len(dropout) != depth:
            raise ValueError(f"dropout has {len(dropout)} rates for {depth} hidden layers: give one per layer")
        rates = [float(p) for p in dropout]
    else:
        rates = [float(dropout)] * depth
    for p in rates:
        if not 0 <= p < 1:
            raise ValueError(f"dropout rate {p} must be in [0, 1)")
    return rates


def _init_weights(model: nn.Module, init: str, activation: str) -> None:
    if init == "default":
        return  # PyTorch's own: Kaiming-uniform weights with a=sqrt(5), uniform biases
    act = _ACTIVATION_ALIASES.get(str(activation).lower(), str(activation).lower())
    # the gain Kaiming init corrects for; GELU/SiLU/Softplus behave like ReLU for this purpose
    nonlinearity = {"leakyrelu": "leaky_relu", "tanh": "tanh", "sigmoid": "sigmoid"}.get(act, "relu")
    for m in model.modules():
        if not isinstance(m, nn.Linear):
            continue
        w = m.weight
        if init == "xavier_normal":
            nn.init.xavier_normal_(w)
        elif init == "xavier_uniform":
            nn.init.xavier_uniform_(w)
        elif init == "kaiming_normal":
            nn.init.kaiming_normal_(w, a=0.01, nonlinearity=nonlinearity)
        elif init == "kaiming_uniform":
            nn.init.kaiming_uniform_(w, a=0.01, nonlinearity=nonlinearity)
        elif init == "normal":
            nn.init.normal_(w, mean=0.0, std=0.01)
        elif init == "uniform":
            nn.init.uniform_(w, -0.05, 0.05)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def build_mlp(in_features: int, num_classes: int = NUM_CLASSES, hidden=None, shape: str = "cylinder",
              depth: int = 4, budget: int | None = None, activation: str = "gelu", norm="before",
              dropout=0.0, init: str = "default", residual=None) -> MLP:
    """An MLP for (B, 2C+1, F) windows, in_features = (2C+1) * F, returning (B, num_classes) logits.

    hidden:     widths, e.g. [2048, 2048, 1024, 512]; when given, shape and depth are not used,
                and a budget, if given, is checked (ValueError when over).
    shape, depth, budget: otherwise the widths are solved so the model has the most parameters
                within `budget` (20,000,000 when None): at most the budget and within 2% of it.
                shape: cylinder | pyramid | inverse-pyramid | diamond (see shape_ratios).
    activation: relu | leakyrelu | gelu | silu | softplus | tanh | sigmoid.
    norm:       "before" Linear -> BN -> act (the Linear has no bias), "after" Linear -> act -> BN,
                None/"none" no BatchNorm.
    dropout:    a rate after every hidden layer (0.2), one rate per layer ([0.1, 0.2, 0.2, 0.3]),
                or "alternate:0.2" for the 1st, 3rd, 5th ... layer only.
    init:       default | xavier_normal | xavier_uniform | kaiming_normal | kaiming_uniform |
                normal (std 0.01) | uniform (+-0.05), for every Linear (biases zeroed).
    residual:   None, "basic" or "bottleneck": the first hidden layer maps the input to
                hidden[0], each further width is one residual block (see Residual), so a
                residual cylinder of depth 4 has 1 + 3 blocks. Meant for deep cylinders.

    The widths chosen are in model.hidden; model.config holds all arguments.
    """
    norm = _norm_name(norm)
    if residual not in RESIDUALS:
        raise ValueError(f"residual={residual!r}; choose one of {RESIDUALS}")
    if init not in INITS:
        raise ValueError(f"init={init!r}; choose one of {INITS}")
    _activation(activation)  # fail early on a misspelt name
    in_features = int(in_features)
    if hidden is None:
        hidden = solve_widths(in_features, shape, depth, BUDGET if budget is None else budget,
                              num_classes, norm, residual)
    else:
        hidden = [int(hidden)] if isinstance(hidden, int) else [int(w) for w in hidden]
        if not hidden or min(hidden) < 1:
            raise ValueError(f"hidden={hidden}: give at least one width, each at least 1")
    rates = _dropout_rates(dropout, len(hidden))

    layers, prev = [], in_features
    for k, (w, p) in enumerate(zip(hidden, rates)):
        if residual is None or k == 0:
            layers += _unit(prev, w, norm, activation)
        else:
            layers.append(_residual_block(prev, w, residual, norm, activation))
        if p > 0:
            layers.append(nn.Dropout(p))
        prev = w
    config = dict(in_features=in_features, num_classes=num_classes, hidden=list(hidden), shape=shape,
                  depth=len(hidden), budget=budget, activation=activation, norm=norm, dropout=dropout,
                  init=init, residual=residual)
    model = MLP(in_features, nn.Sequential(*layers), nn.Linear(prev, num_classes), config)
    _init_weights(model, init, activation)
    if budget is not None:
        check_budget(model, budget=budget)
    return model


# --------------------------------------------------------------------------------------------
# Budget and summary


def count_params(*models: nn.Module) -> int:
    """Trainable parameters of one model or of all models of an ensemble together."""
    return sum(p.numel() for m in models for p in m.parameters() if p.requires_grad)


def check_budget(*models: nn.Module, budget: int = BUDGET) -> int:
    """The parameter count of the model(s); ValueError if it is over the budget."""
    n = count_params(*models)
    if n > budget:
        what = "model has" if len(models) == 1 else f"ensemble of {len(models)} models has"
        raise ValueError(
            f"the {what} {n:,} parameters, over the budget of {budget:,} by {n - budget:,}: "
            "use narrower or fewer layers (build_mlp(..., budget=...) solves the widths for you)"
        )
    return n


def summary(model: nn.Module, context: int, features: int, batch_size: int = 1, depth: int = 3):
    """torchinfo's layer table (output shapes, parameter counts) for a (2C+1, F) window input.

    Runs one forward pass in eval mode, so BatchNorm's running statistics are untouched, and
    leaves every module in the train/eval mode it was in. print() the result.
    """
    from torchinfo import summary as torchinfo_summary

    modes = {m: m.training for m in model.modules()}
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        return torchinfo_summary(
            model, input_size=(batch_size, 2 * context + 1, features), device=device, mode="eval",
            depth=depth, col_names=("output_size", "num_params"), verbose=0,
        )
    finally:
        for m, training in modes.items():
            m.training = training
