"""One Config drives a run: data, model, optimiser, schedule, AMP, checkpoints and logging.

    from phonemekit.config import Config, load_recipe
    config = load_recipe("strong", lr=1e-3)          # a recipe (recipes/*.yaml) with changes
    config = Config(context=20, hidden=[512])        # or by hand; unknown keys are an error
    config.save("my.yaml"); Config.load("my.yaml")   # YAML or JSON, as the command line reads it

The recipes live in one place, the YAML files in `phonemekit/recipes/`: the notebook, the
command line (`--config strong`) and `load_recipe` all read them. A Config is saved as a plain
dict in every checkpoint and sent to wandb.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from .data import BOUNDARIES, NORMALIZATIONS
from .model import BUDGET
from .phonemes import NUM_CLASSES

TASKS = ("frames", "ctc")  # HW1P2: a class per frame | HW3P2: a phoneme sequence per utterance
# Per-task defaults, in one place: a field left at None takes its task's value here.
TASK_DEFAULTS = {
    "frames": {"num_classes": NUM_CLASSES, "batch_size": 1024, "dropout": 0.0, "time_mask_width": 4,
               "wandb_project": "hw1p2"},
    "ctc": {"num_classes": NUM_CLASSES + 1, "batch_size": 64, "dropout": 0.1, "time_mask_width": 20,
            "wandb_project": "hw3p2"},
}
# Settings one homework reads and the other does not: set away from its default on the other task,
# a setting is refused (by name) rather than silently ignored.
TASK_SETTINGS = {
    "frames": ("context", "boundary", "hidden", "shape", "depth", "budget", "activation", "norm", "init",
               "residual", "label_smoothing", "class_weights", "mixup_alpha"),
    "ctc": ("bucketing", "conv_channels", "conv_layers", "conv_kernel", "conv_stride", "conv_residual",
            "embed_time_masks", "embed_time_mask_width", "embed_freq_masks", "embed_freq_mask_width",
            "embed_noise_std", "encoder", "lstm_hidden", "lstm_layers", "pyramid", "locked_dropout", "head",
            "head_norm", "beam_width"),
}
OPTIMIZERS = ("sgd", "nesterov", "rmsprop", "adam", "adamw")
SCHEDULERS = ("none", "step", "multistep", "exponential", "cosine", "cosine-restarts", "plateau",
              "plateau-restarts", "onecycle")
AMP_MODES = ("auto", "fp16", "bf16", "off")
STORAGE_DTYPES = ("auto", "float32", "float16")
WANDB_MODES = ("online", "offline", "disabled")
WANDB_WATCH = ("gradients", "parameters", "all")
CLASS_WEIGHTS = ("balanced", "sqrt")
RECIPE_DIR = Path(__file__).resolve().parent / "recipes"


@dataclass
class Config:
    """Every knob of a training run. Saved as a plain dict in each checkpoint and sent to wandb."""

    task: str = "frames"  # frames (HW1P2: an MLP on context windows) | ctc (HW3P2: phoneme sequences)
    # data
    root: str | None = None  # None: phonemekit.data.default_root() (Kaggle data, else the demo)
    train_partition: str = "train-clean-100"
    val_partition: str = "dev-clean"
    context: int = 30  # frames each side: the window is 2 * context + 1 frames
    normalize: str = "cepstral"  # cepstral | global | minmax | none
    boundary: str = "concat"  # concat (the official notebook) | utterance (zero-pad each)
    subset: float = 1.0  # fraction of training utterances (a fixed random choice)
    val_subset: float = 1.0
    storage_dtype: str = "auto"  # auto: float16 on a GPU (half the memory), float32 on CPU
    cache_dir: str | None = None  # keep the built arrays here (memory-mapped on the next run), both homeworks
    cache_verify: str = "sample"  # checksums of a cached array checked at load: sample (16 blocks) | full
    resident: bool | None = None  # data on the GPU; None: when it fits in the GPU's free memory
    # model (phonemekit.model.build_mlp)
    hidden: list[int] | None = None  # explicit widths; None: solve `shape` x `depth` for `budget`
    shape: str = "cylinder"  # cylinder | pyramid | inverse-pyramid | diamond
    depth: int = 4
    budget: int | None = BUDGET  # the size `shape` x `depth` is solved for
    activation: str = "gelu"
    norm: str = "before"  # BatchNorm before the activation | after | none
    dropout: float | list[float] | str | None = None  # one rate, one per layer, or "alternate:0.2"; None: the task's
    init: str = "default"
    residual: str | None = None  # None | basic | bottleneck
    num_classes: int | None = None  # follows from the task: 40 frame classes (HW1P2), 41 with the CTC blank (HW3P2)
    param_limit: int | None = BUDGET  # refuse a model over this (None: no check)
    # HW3P2 (task="ctc"): the sequence model (phonemekit.ctc_model.build_ctc_model) and its data
    bucketing: bool = True  # batch utterances of similar length together (less padding)
    # (phonemekit.ctc_model.MODEL_OPTIONS holds the same defaults: a test keeps the two equal)
    conv_channels: int | list[int] = 256  # Conv1d embedding width, or one per block: [128, 256]
    conv_layers: int = 2  # residual conv blocks; 0: features straight into the encoder
    conv_kernel: int | list[int] = 3  # odd; one per block: [5, 3]
    conv_stride: int = 2  # total time stride of the embedding, 1..4 (lengths follow it)
    conv_residual: bool = True
    embed_time_masks: int = 0  # training only: runs of embedding frames set to 0 inside each utterance
    embed_time_mask_width: int = 10
    embed_freq_masks: int = 0  # training only: bands of embedding channels set to 0
    embed_freq_mask_width: int = 16
    embed_noise_std: float = 0.0  # training only: Gaussian noise on the embedding
    encoder: str = "blstm"  # phonemekit.ctc_model.ENCODERS: a new encoder is one class and one line there
    lstm_hidden: int = 256  # per direction
    lstm_layers: int = 2  # plain BiLSTM layers
    pyramid: int = 1  # pBLSTM layers after them, each halving the time axis
    locked_dropout: float = 0.2  # between LSTM layers, one mask per utterance
    head: list[int] = field(default_factory=lambda: [512])  # hidden widths of the MLP head before the 41 classes
    head_norm: str = "none"  # none | batch | layer, after each hidden layer of the head
    beam_width: int = 1  # validation decoding: 1 greedy, > 1 beam search
    # optimisation
    epochs: int = 20
    batch_size: int | None = None  # None: the task's (1024 frames | 64 utterances)
    eval_batch_size: int | None = None  # None: a multiple of batch_size (no gradients to keep): 4x frames, 2x utterances
    lr: float = 1e-3
    optimizer: str = "adamw"  # sgd | nesterov | rmsprop | adam | adamw
    momentum: float = 0.9  # sgd, nesterov, rmsprop
    weight_decay: float = 1e-2
    # the lr is a function of the step (phonemekit.schedule.lr_at): warm-up, then one of
    # none | step | multistep | exponential | cosine | cosine-restarts | plateau | plateau-restarts | onecycle
    scheduler: str = "cosine"
    step_size: int = 5  # step: epochs between cuts
    gamma: float = 0.5  # step / multistep: factor per cut; exponential: factor per epoch
    milestones: list[int] | None = None  # multistep; None: at 1/2 and 3/4 of the epochs after warm-up
    min_lr: float = 0.0  # cosine / cosine-restarts floor, plateau floor
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    onecycle_pct_start: float = 0.3
    restart_epochs: int = 10  # cosine-restarts, plateau-restarts: length of the first cycle, in epochs
    restart_mult: int = 1  # cosine-restarts, plateau-restarts: each cycle this many times longer than the last
    warmup_epochs: int = 0  # linear warm-up, per batch, before the schedule takes over
    label_smoothing: float = 0.0
    class_weights: str | None = None  # None | balanced (1 / frequency) | sqrt (1 / sqrt(frequency))
    grad_clip: float | None = None  # max gradient norm
    patience: int | None = None  # early stopping: epochs without a better validation score
    # augmentation of training batches (phonemekit.augment), never of validation or test
    freq_masks: int = 0  # frequency masks per window: bands of coefficients set to 0 in every frame
    freq_mask_width: int = 4  # widest band, in coefficients (each mask: 0..width)
    time_masks: int = 0  # time masks per window: runs of whole frames set to 0
    time_mask_width: int | None = None  # longest run, in frames (each mask: 0..width); None: the task's
    mask_prob: float = 0.5  # chance that a window is masked
    noise_std: float = 0.0  # std of Gaussian noise added to the (normalised) features; 0: off
    noise_prob: float = 0.5  # chance that a window gets noise
    mixup_alpha: float = 0.0  # mixup with lam ~ Beta(alpha, alpha) and soft targets; 0: off
    # weight averaging (phonemekit.averaging): each adds its val_<metric>_* column to the history
    average_last: int = 0  # mean of the weights after the last k epochs (avg.pt); 0: off
    ema_decay: float | None = None  # EMA of the weights after every step, e.g. 0.999 (ema.pt)
    swa_start: int | None = None  # SWA of the weights after epochs swa_start..epochs (swa.pt)
    swa_lr: float | None = None  # with SWA: the lr anneals to this constant from swa_start
    # running
    seed: int = 0
    device: str = "auto"  # auto: cuda, else mps, else cpu
    amp: str = "auto"  # auto: bf16 on GPUs with compute capability >= 8.0, fp16 below, off on CPU
    compile: bool = False  # torch.compile the model
    log_every: int = 100  # steps between host syncs (progress bar, NaN check)
    checkpoint_dir: str = "checkpoints"
    wandb_mode: str | None = "disabled"  # online | offline | disabled; None: $WANDB_MODE
    wandb_project: str | None = None  # None: the task's (hw1p2 | hw3p2)
    wandb_run_name: str | None = None
    wandb_watch: str | None = None  # wandb.watch the model: gradients | parameters | all
    wandb_artifacts: bool = False  # upload best.pt and the model's architecture at the end

    def __post_init__(self):
        hints = _hints()
        for f in dataclasses.fields(self):
            setattr(self, f.name, _coerce(f.name, getattr(self, f.name), hints[f.name]))
        if self.amp in ("on", "true"):  # YAML reads `amp: on` as True
            self.amp = "auto"
        if self.amp == "false":
            self.amp = "off"
        self.optimizer, self.scheduler = self.optimizer.lower(), self.scheduler.lower()
        _choice("task", self.task, TASKS)
        for name, value in TASK_DEFAULTS[self.task].items():
            if name == "num_classes" and self.num_classes not in (None, value):
                raise ValueError(f"num_classes={self.num_classes}: task={self.task!r} has exactly {value} classes "
                                 "(the course's phoneme list); leave num_classes out, it follows from the task")
            if getattr(self, name) is None:
                setattr(self, name, value)
        self._refuse_other_tasks_settings()
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("scheduler", self.scheduler, SCHEDULERS)
        _choice("amp", self.amp, AMP_MODES)
        _choice("storage_dtype", self.storage_dtype, STORAGE_DTYPES)
        _choice("normalize", self.normalize, NORMALIZATIONS)
        _choice("boundary", self.boundary, BOUNDARIES)
        _choice("cache_verify", self.cache_verify, ("sample", "full"))
        for name, choices in (("wandb_mode", WANDB_MODES), ("wandb_watch", WANDB_WATCH),
                              ("class_weights", CLASS_WEIGHTS)):
            if getattr(self, name) is not None:
                _choice(name, getattr(self, name), choices)
        if self.device != "auto":
            import torch

            try:
                torch.device(self.device)
            except RuntimeError:
                raise ValueError(f"device={self.device!r}: use 'auto', 'cpu', 'cuda', 'cuda:1' or 'mps'") from None
        self._check_ranges()

    def _refuse_other_tasks_settings(self):
        defaults = _field_defaults()
        for task, names in TASK_SETTINGS.items():
            if task == self.task:
                continue
            changed = [n for n in names if getattr(self, n) != defaults[n]]
            if changed:
                hw = {"frames": "HW1P2 (task='frames')", "ctc": "HW3P2 (task='ctc')"}[task]
                raise ValueError(f"{', '.join(f'{n}={getattr(self, n)!r}' for n in changed)}: "
                                 f"{'these are settings' if len(changed) > 1 else 'a setting'} of {hw}, which this "
                                 f"task={self.task!r} run does not use; remove {'them' if len(changed) > 1 else 'it'} "
                                 "(or set task)")

    def _check_ranges(self):
        """Each setting in its valid range: a nonsense value fails here, by name, not epochs later."""
        at_least = {"epochs": 1, "batch_size": 1, "context": 0, "log_every": 1, "depth": 1, "step_size": 1,
                    "plateau_patience": 0, "restart_epochs": 1, "restart_mult": 1, "seed": 0,
                    "freq_masks": 0, "freq_mask_width": 0, "time_masks": 0, "time_mask_width": 0,
                    "average_last": 0, "warmup_epochs": 0, "conv_layers": 0, "conv_stride": 1, "lstm_hidden": 1, "lstm_layers": 0, "pyramid": 0,
                    "beam_width": 1}
        for name, low in at_least.items():
            _check(getattr(self, name) >= low, f"{name}={getattr(self, name)} must be >= {low}")
        optional_positive = ("eval_batch_size", "budget", "param_limit", "grad_clip", "patience", "swa_lr")
        for name in optional_positive:
            v = getattr(self, name)
            _check(v is None or v > 0, f"{name}={v} must be > 0 (or None: off)")
        _check(self.lr >= 0, f"lr={self.lr} must be >= 0")
        _check(0 <= self.min_lr <= self.lr, f"min_lr={self.min_lr} must be in [0, lr={self.lr}]")
        _check(self.weight_decay >= 0, f"weight_decay={self.weight_decay} must be >= 0")
        _check(0 <= self.momentum < 1, f"momentum={self.momentum} must be in [0, 1)")
        _check(0 < self.gamma <= 1, f"gamma={self.gamma} must be in (0, 1]: the factor that cuts the lr")
        _check(0 < self.plateau_factor < 1, f"plateau_factor={self.plateau_factor} must be in (0, 1)")
        _check(0 < self.onecycle_pct_start < 1, f"onecycle_pct_start={self.onecycle_pct_start} must be in (0, 1)")
        _check(self.milestones is None or all(m >= 1 for m in self.milestones),
               f"milestones={self.milestones} must be epochs >= 1 (counted after the warm-up)")
        if self.task == "ctc":  # the model's options, by name, now rather than when it is built
            from .ctc_model import MODEL_OPTIONS, validate_model_options

            validate_model_options(**{k: getattr(self, k) for k in MODEL_OPTIONS})
        for name in ("train_partition", "val_partition"):
            _check(not str(getattr(self, name)).startswith("test"),
                   f"{name}={getattr(self, name)!r}: the test partition has no labels (Kaggle keeps them) to train "
                   "or validate on; use train-clean-100 / dev-clean")
        for name in ("subset", "val_subset"):
            _check(0 < getattr(self, name) <= 1, f"{name}={getattr(self, name)} must be a fraction in (0, 1]")
        _check(0 <= self.label_smoothing < 1, f"label_smoothing={self.label_smoothing} must be in [0, 1)")
        _check(self.warmup_epochs < self.epochs or self.warmup_epochs == 0,
               f"warmup_epochs={self.warmup_epochs} must be below epochs={self.epochs}")
        _check(not (self.scheduler == "onecycle" and self.warmup_epochs),
               "scheduler='onecycle' warms up by itself (onecycle_pct_start): set warmup_epochs=0")
        drops = self.dropout if isinstance(self.dropout, list) else [self.dropout]
        if isinstance(self.dropout, str):
            head, _, rate = self.dropout.partition(":")
            _check(head == "alternate" and _is_number(rate),
                   f"dropout={self.dropout!r}: give a rate (0.2), a list ([0.1, 0.2]) or 'alternate:0.2'")
            drops = [float(rate)]
        _check(all(0 <= d < 1 for d in drops), f"dropout={self.dropout} must be in [0, 1)")
        _check(self.conv_stride <= 4, f"conv_stride={self.conv_stride} must be in 1..4 (CTC needs frames)")
        _check(0 <= self.locked_dropout < 1, f"locked_dropout={self.locked_dropout} must be in [0, 1)")
        _check(self.task != "ctc" or isinstance(self.dropout, float),
               f"dropout={self.dropout!r}: the CTC model takes one rate (a float)")
        for name in ("mask_prob", "noise_prob"):
            _check(0 <= getattr(self, name) <= 1, f"{name}={getattr(self, name)} must be a probability in [0, 1]")
        _check(self.noise_std >= 0, f"noise_std={self.noise_std} must be >= 0")
        _check(self.mixup_alpha >= 0, f"mixup_alpha={self.mixup_alpha} must be >= 0 (0: no mixup)")
        _check(self.ema_decay is None or 0 < self.ema_decay < 1,
               f"ema_decay={self.ema_decay} must be in (0, 1), e.g. 0.999 (None: no EMA)")
        _check(self.swa_start is None or 1 <= self.swa_start <= self.epochs,
               f"swa_start={self.swa_start} must be an epoch in 1..epochs={self.epochs} (None: no SWA)")
        _check(self.swa_lr is None or self.swa_start is not None, f"swa_lr={self.swa_lr} needs swa_start (the first SWA epoch)")
        _check(self.swa_lr is None or self.swa_start > self.warmup_epochs,
               f"swa_start={self.swa_start} must come after the warm-up (warmup_epochs={self.warmup_epochs}) when swa_lr is set")

    # conversions -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        """A Config from a (possibly partial) dict; unknown keys are an error, with suggestions."""
        if isinstance(d, Config):
            return dataclasses.replace(d)
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in d if k not in names]
        if unknown:
            hints = []
            for k in unknown:
                close = difflib.get_close_matches(k, names, n=3, cutoff=0.5) or [n for n in names if n in k.split("_")]
                hints.append(f"{k!r}" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else ""))
            raise ValueError(f"unknown config key(s): {'; '.join(hints)}. Known keys: {', '.join(names)}")
        return cls(**d)

    def to_dict(self) -> dict:
        """Plain JSON-able dict (lists, numbers, strings, None)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def replace(self, **changes) -> Config:
        """A copy with some fields changed (validated; unknown names are an error). A changed task
        brings its own defaults for the fields still at the old task's."""
        d = self.to_dict()
        if changes.get("task", self.task) != self.task:
            d.update({k: None for k, v in TASK_DEFAULTS[self.task].items() if d.get(k) == v})
        return Config.from_dict({**d, **changes})

    def save(self, path) -> Path:
        """Write the config as YAML (.yaml/.yml) or JSON (.json)."""
        path = Path(path)
        d = self.to_dict()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            text = yaml.safe_dump(d, sort_keys=False)
        elif path.suffix == ".json":
            text = json.dumps(d, indent=2) + "\n"
        else:
            raise ValueError(f"{path}: a config file ends in .yaml, .yml or .json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    @classmethod
    def load(cls, path) -> Config:
        """Read a YAML or JSON config (keys left out keep their defaults)."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        d = _read_mapping(path)
        try:
            return cls.from_dict(d)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None


def _read_mapping(path: Path) -> dict:
    """The dict a .yaml/.json file holds; a syntax error names the file, line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a UTF-8 text file: save it as plain text (UTF-8)") from None
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            d = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            where = getattr(e, "problem_mark", None)
            at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
            raise ValueError(f"{path} is not valid YAML{at} ({getattr(e, 'problem', None) or e}): fix that line; "
                             "a config holds `key: value` lines, lists as [1024, 512]") from None
    elif path.suffix == ".json":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON at line {e.lineno}, column {e.colno} ({e.msg}): "
                             "fix that line (JSON needs double quotes and no trailing commas)") from None
    else:
        raise ValueError(f"{path}: a config file ends in .yaml, .yml or .json")
    if not isinstance(d, dict):
        raise ValueError(f"{path} must hold a mapping of config keys (key: value lines), not {type(d).__name__}")
    return d


def apply_overrides(config: Config, overrides) -> Config:
    """A copy of config with "key=value" strings applied, as the command line passes them.

    Values are read as YAML and converted to the field's type: lr=1e-3, hidden=[1024,512]
    (or hidden=1024,512), amp=off, wandb_mode=null, dropout=0.2.
    """
    import yaml

    hints, changes = _hints(), {}
    for item in overrides:
        key, sep, raw = str(item).partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise ValueError(f"override {item!r} must look like key=value (e.g. lr=1e-3)")
        if key not in hints:
            Config.from_dict({key: None})  # raises the unknown-key error with suggestions
        raw = raw.strip()
        allowed = _union_args(hints[key])
        if raw.lower() in ("null", "~", "") or (raw.lower() == "none" and type(None) in allowed):
            value = None  # but normalize=none / scheduler=none stay the string "none"
        elif set(allowed) <= {str, type(None)}:  # keep text as typed: YAML would turn `off` into False
            value = raw
        else:
            try:
                value = yaml.safe_load(raw)
            except yaml.YAMLError as e:
                raise ValueError(f"override {item!r}: {raw!r} is not a value ({getattr(e, 'problem', None) or e}); "
                                 "write numbers as 1e-3, lists as [1024,512] with both brackets") from None
        changes[key] = value
    return config.replace(**changes)


def _choice(name, value, choices):
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        raise ValueError(f"{name}={value!r}; choose one of {', '.join(choices)}"
                         + (f" (did you mean {close[0]!r}?)" if close else ""))


def _is_number(s) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _check(ok, message):
    if not ok:
        raise ValueError(message)


@functools.cache
def _field_defaults() -> dict:
    return {f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            for f in dataclasses.fields(Config)}


@functools.cache
def _hints():
    return typing.get_type_hints(Config)


def _union_args(hint):
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _coerce(name, value, hint):
    """value converted to the declared type of field `name` (YAML and the CLI give strings)."""
    allowed = _union_args(hint)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")
                         and type(None) in allowed):
        if type(None) in allowed:
            return None
        raise ValueError(f"config field {name!r} cannot be None")
    for t in allowed:  # already the right type
        base = typing.get_origin(t) or t
        if base is list and isinstance(value, (list, tuple)):
            (inner,) = typing.get_args(t)
            return [_coerce(f"{name}[{i}]", v, inner) for i, v in enumerate(value)]
        if base in (int, float, str, bool) and type(value) is base:
            return value
    for t in allowed:  # convert
        base = typing.get_origin(t) or t
        try:
            if base is bool:
                s = str(value).strip().lower()
                if s in ("true", "yes", "on", "1"):
                    return True
                if s in ("false", "no", "off", "0"):
                    return False
            elif base is int and not isinstance(value, bool):
                f = float(value)
                if f.is_integer():
                    return int(f)
            elif base is float and not isinstance(value, bool):
                return float(value)
            elif base is str:
                if isinstance(value, bool):  # YAML's on/off
                    return "on" if value else "off"
                if isinstance(value, (str, os.PathLike, int, float)):
                    return str(value)
            elif base is list and isinstance(value, str) and "," in value:
                return _coerce(name, [v.strip() for v in value.strip("[]").split(",") if v.strip()], t)
            elif base is list and isinstance(value, (int, float)) and not isinstance(value, bool):
                return _coerce(name, [value], t)
        except (TypeError, ValueError):
            continue
    want = " or ".join("None" if t is type(None) else getattr(t, "__name__", str(t)) for t in allowed)
    raise ValueError(f"config field {name!r} expects {want}, got {value!r}")



# --------------------------------------------------------------------------------------------
# Recipes: the YAML files in phonemekit/recipes/ are the one source


@functools.cache
def _recipe_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(RECIPE_DIR.glob("*.yaml"))}


def recipes() -> dict[str, dict]:
    """{name: the settings its YAML file holds} for every shipped recipe."""
    return {name: _read_mapping(path) for name, path in _recipe_files().items()}


def load_recipe(name, **changes) -> Config:
    """A Config from a recipe name (phonemekit/recipes/NAME.yaml) or a .yaml/.json path, with fields changed."""
    if name in _recipe_files():
        config = Config.load(_recipe_files()[name])
    elif Path(str(name)).suffix in (".yaml", ".yml", ".json"):
        config = Config.load(name)
    else:
        close = difflib.get_close_matches(str(name), list(_recipe_files()), n=1)
        raise ValueError(f"unknown recipe {name!r}: choose one of {', '.join(_recipe_files())}, or give a "
                         ".yaml/.json path" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return config.replace(**changes) if changes else config


def pick_recipe(name: str = "auto", root=None, task: str = "frames"):
    """(Config, one line saying what was picked and why) for a recipe name, a .yaml/.json file or "auto".

    "auto": the GPU recipe with a GPU and the Kaggle data; otherwise the CPU-sized one (on 2% of
    the training utterances when the Kaggle data is there but no GPU, so that it still ends in
    minutes). task: "frames" (HW1P2: strong / cpu-demo) or "ctc" (HW3P2: ctc-strong / ctc-demo).
    The config's root is set to the data found.
    """
    import torch

    from .data import default_root, find_root, is_demo

    from .task import get_task

    task = get_task(task)
    gpu_recipe, cpu_recipe = task.recipes
    root = find_root(root) if root is not None else default_root(verbose=False)
    demo, gpu = is_demo(root), torch.cuda.is_available()
    where = "the demo corpus" if demo else f"the data in {root}"
    if name != "auto":
        config = load_recipe(name, root=str(root))
        return config, f"phonemekit: recipe {name!r} on {where}"
    if gpu and not demo:
        return (load_recipe(gpu_recipe, root=str(root)),
                f"phonemekit: GPU and Kaggle data found: recipe {gpu_recipe!r} on {where}")
    if demo:
        why = ("no Kaggle data found (only the demo corpus)" if gpu
               else "no GPU and no Kaggle data (only the demo corpus)")
        return (load_recipe(cpu_recipe, root=str(root)),
                f"phonemekit: {why}, so RECIPE='auto' picks the CPU-sized recipe {cpu_recipe!r} on it")
    share = task.cpu_share
    config = load_recipe(cpu_recipe, root=str(root), subset=share, val_subset=0.1)
    return config, (f"phonemekit: no GPU, so RECIPE='auto' picks the CPU-sized recipe {cpu_recipe!r} on {share:.1%} of "
                    f"{where}; choose RECIPE={gpu_recipe!r} on a GPU for a real run")


def load_config(spec: str, overrides=(), root=None, task: str = "frames"):
    """(Config, line or None) from a recipe name / .yaml / .json / "auto", then root, then key=value overrides."""
    config, line = pick_recipe(spec, root, task) if spec == "auto" else (_named_config(spec), None)
    if root is not None:
        config = config.replace(root=str(Path(root).expanduser()))
    return apply_overrides(config, list(overrides or [])), line


def _named_config(spec):
    path = Path(spec).expanduser()
    if spec not in _recipe_files() and not path.is_file():
        near = [str(path.parent / n) for n in difflib.get_close_matches(
            path.name, [p.name for p in path.parent.glob("*.y*ml")] + [p.name for p in path.parent.glob("*.json")], n=1)]
        near += difflib.get_close_matches(spec, list(_recipe_files()), n=1)
        raise FileNotFoundError(f"config {spec!r} is neither a file nor a recipe ({', '.join(_recipe_files())}, auto)"
                                + (f": did you mean {near[0]!r}?" if near else ""))
    return load_recipe(spec)


def config_changes(config: Config) -> str:
    """The settings that differ from the defaults, on one line."""
    default = Config(task=config.task).to_dict()
    return ", ".join(f"{k}={v}" for k, v in config.to_dict().items() if default.get(k) != v) or "defaults"
