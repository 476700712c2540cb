"""A homework is a Task: every step from the files to the CSV, so that the training loop, the
checkpoints, the command line, search and ensembles ask the task and never name a homework.

    from phonemekit.task import task_of, TASKS
    task = task_of(config)                           # TASKS[config.task]: HW1P2 "frames", HW3P2 "ctc"
    train_ds, val_ds = task.datasets(config, device)
    model = task.build_model(config, task.meta(train_ds))
    ...
    test = task.test_dataset(config, root, stats=ckpt["stats"])
    predictions = task.predict(model, test, device=device)
    task.write_csv(predictions, "submission.csv", sample=sample)
    task.validate_csv("submission.csv", len(test), sample=sample)

The two homeworks fill the same fields: phonemekit.frames (HW1P2: a class per frame, an MLP on
context windows) and phonemekit.ctc (HW3P2: a phoneme string per utterance, CTC). A third task is
one more module that builds a Task and one line in TASKS.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

# the config's task value -> the module that defines it (imported when first asked for)
TASK_MODULES = {"frames": "phonemekit.frames", "ctc": "phonemekit.ctc"}


@dataclass(frozen=True)
class Task:
    """What one homework plugs into the kit. Every callable takes the config where it needs one."""

    name: str  # the config's `task` value
    homework: str  # HW1P2 | HW3P2, in messages
    metric: str  # the history column that picks best.pt: val_acc | val_dist
    higher_is_better: bool
    unit: str  # what a training batch counts: frames | utterances
    test_unit: str  # what one CSV row is: test frame | test utterance
    score_name: str  # what the metric is called in messages: accuracy | distance
    num_classes: int
    recipes: tuple  # ("auto" picks) (recipe with a GPU and the Kaggle data, CPU-sized recipe)
    cpu_share: float  # the share of the Kaggle training data "auto" trains on without a GPU
    defaults: dict  # config defaults of this task where the two homeworks differ
    settings: frozenset  # config fields only this task reads (the other task refuses them)
    model_settings: tuple  # config fields that define the model: changing one on resume is an error
    inputs: int  # leading batch tensors the model takes: (x,) | (x, lengths)
    # the steps
    datasets: Callable  # (config, device) -> (train_ds, val_ds), checked to agree
    loaders: Callable  # (config, train_ds, val_ds, device) -> (train_loader, val_loader)
    meta: Callable  # train_ds -> dict saved in every checkpoint (rebuilds the model, prepares test data)
    build_model: Callable  # (config, meta) -> nn.Module, the config's model
    own_model: Callable  # (model, config, meta, loader) -> the student's model, checked (and maybe wrapped)
    before_training: Callable  # (model, train_ds, val_ds, config, verbose) -> None: checks that need the model
    loss: Callable  # (config, train_ds, device) -> fn(model, batch, config, amp_dtype) -> (loss, count, correct|None)
    evaluate: Callable  # (model, loader, config) -> {"val_loss": .., metric: ..}, eval mode, fp32
    augment: Callable  # config -> a batch transform, or None
    check_config: Callable  # config -> None; ValueError for settings this task cannot run
    test_dataset: Callable  # (config, root, stats=None, with_labels=None, partition="test-clean") -> dataset
    predict: Callable  # (model, dataset, device=None, batch_size=None, **options) -> one prediction per CSV row
    write_csv: Callable  # (predictions, path, sample=None, **options) -> Path
    validate_csv: Callable  # (path, n_rows, sample=None, header=None) -> True, else ValueError
    score_csv: Callable  # (path, truth) -> accuracy | mean distance
    count_test: Callable  # (root, partition="test-clean") -> rows a CSV needs
    has_answers: Callable  # (root, partition) -> bool: the partition ships its labels (the demo's test set)
    answers: Callable  # (config, root, partition, stats=None) -> the truth score_csv takes
    describe: Callable  # config -> one line about the model (recipes)
    summary: Callable  # (config, n_features) -> (text, parameters)
    tools: frozenset = frozenset()  # the experiment tools built for this task: "search", "ensemble"

    def better(self, score, than) -> bool:
        """Is `score` better than `than` (None: nothing yet) on this task's metric?"""
        if than is None:
            return score is not None
        return score > than if self.higher_is_better else score < than

    def require(self, tool: str, what: str) -> None:
        """A clear refusal when an experiment tool is not built for this task."""
        if tool not in self.tools:
            able = [t.homework for t in tasks().values() if tool in t.tools]
            raise ValueError(f"{what} is built for {', '.join(able) or 'no task'} runs; this is an {self.homework} run "
                             f"(task={self.name!r}): train its variants one by one with fit(), or compare their "
                             "best.pt files by their validation scores")

    def format(self, value) -> str:
        """A score as the epoch line and the messages print it."""
        return format_score(self.metric, value)


def format_score(metric: str, value) -> str:
    """An accuracy as a percentage, a distance or a loss with four decimals; None as '-'."""
    if value is None:
        return "-"
    return f"{value:.2%}" if metric.endswith("acc") else f"{value:.4f}"


def higher_is_better(metric: str) -> bool:
    """For any history column: accuracies go up, losses and distances go down."""
    for task in tasks().values():
        if metric == task.metric or metric.startswith(task.metric + "_"):
            return task.higher_is_better
    return not metric.endswith(("loss", "dist"))


def get_task(name: str) -> Task:
    if name not in TASK_MODULES:
        import difflib

        close = difflib.get_close_matches(str(name), list(TASK_MODULES), n=1)
        raise ValueError(f"task={name!r}; choose one of {', '.join(TASK_MODULES)}"
                         + (f" (did you mean {close[0]!r}?)" if close else ""))
    return importlib.import_module(TASK_MODULES[name]).TASK


def task_of(config) -> Task:
    """The Task of a Config (or of a checkpoint's dict, or a task name)."""
    if isinstance(config, str):
        return get_task(config)
    if isinstance(config, dict):
        return get_task(config.get("task", "frames") or "frames")
    return get_task(getattr(config, "task", "frames"))


def tasks() -> dict[str, Task]:
    return {name: get_task(name) for name in TASK_MODULES}
