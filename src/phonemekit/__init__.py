"""phonemekit: a notebook-first kit for CMU 11-785 HW1P2 (frame-level phoneme classification with
an MLP) and HW3P2 (phoneme sequences with CTC), on one training engine.

    import phonemekit as pk
    config, why = pk.pick_recipe("auto", task="ctc")   # or pk.load_recipe("strong", lr=1e-3)
    result = pk.fit(config, resume=True)               # checkpoints every epoch; resumes after a crash
    task = pk.task_of(config)                          # every step from the files to the CSV
    model, config, ckpt = pk.load_checkpoint(result.checkpoint_dir / "best.pt")

The names here are the engine's, shared by both homeworks; each homework's own steps are in
phonemekit.frames (HW1P2) and phonemekit.ctc (HW3P2). Importing phonemekit loads none of them
until first used.
"""

import importlib

from .phonemes import CLASSES, NUM_CLASSES, PHONEMES

__version__ = "0.1.0"

# name -> the module that defines it, imported on first use (torch and pandas load only then)
_ENGINE = {
    "Config": "config", "load_recipe": "config", "pick_recipe": "config", "config_changes": "config",
    "fit": "train", "dry_run": "train",
    "load_checkpoint": "checkpoint",
    "resolve_device": "device",
    "task_of": "task", "get_task": "task",
    "default_root": "data", "find_root": "data", "is_demo": "data",
    "plot_history": "plots",
    "find_sample": "submit", "kaggle_download": "submit", "kaggle_submit": "submit",
}
__all__ = ["PHONEMES", "CLASSES", "NUM_CLASSES", "__version__", *_ENGINE]


def __getattr__(name):
    if name in _ENGINE:
        value = getattr(importlib.import_module(f"{__name__}.{_ENGINE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'phonemekit' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
