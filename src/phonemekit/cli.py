"""The command line: the notebook's steps for a remote GPU box (nohup, tmux, a lab server).

    python -m phonemekit recipes
    python -m phonemekit summary --config strong
    python -m phonemekit train --config strong --set lr=1e-3 --set context=35
    python -m phonemekit train --config strong --resume     # after a crash, or with more epochs
    python -m phonemekit predict --checkpoint checkpoints/strong/best.pt --out submission.csv
    python -m phonemekit submit submission.csv -m "pyramid, context 30" --competition 11785-s25-hw1p2

HW3P2 (CTC) takes the same commands: a ctc recipe or config trains the sequence model,
`predict` sees a ctc checkpoint and writes the utterance CSV (--beam-width), and validate,
score and submit tell the two kinds of CSV apart by their labels (or --task ctc):

    python -m phonemekit train --config ctc-demo              # or --config auto --task ctc
    python -m phonemekit predict --checkpoint checkpoints/ctc-demo/best.pt --beam-width 10

Every command calls the same functions as the notebook; `--help` on each says what it takes.
Only argparse and the cmd_* functions live here: each calls the module of its step.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from .task import TASK_MODULES, task_of

TASK_NAMES = tuple(TASK_MODULES)  # what --task takes: the config's task values
# subcommands whose options belong to another module: everything after the name goes there
DELEGATED = {
    "bench": ("phonemekit.bench", "main", "measure training/loading throughput on this machine"),
    "sweep-agent": ("phonemekit.search", "sweep_agent_main",
                    "run a wandb sweep agent: python -m phonemekit sweep-agent SWEEP_ID [options]"),
}


def _resolve_root(arg, config_root=None, verbose=True, trained_on=None):
    """--root if given, else the config's root when it exists on this machine, else default_root().

    trained_on: the checkpoint that names config_root. A checkpoint trained on other data than the
    demo never falls back to the demo: its own data, or --root."""
    from .data import default_root, find_root, is_demo

    if arg is not None:
        return find_root(arg)
    if config_root and Path(config_root).expanduser().is_dir():
        return find_root(config_root)
    if config_root and trained_on is not None and not is_demo(config_root):
        raise FileNotFoundError(f"{trained_on} was trained on the data in {config_root}, which is not on this machine: "
                                "pass --root with that data (its test-clean/ folder)")
    return default_root(verbose=verbose)


def _csv_task(args):
    """The task a CSV belongs to: --task, else told apart by the sample file, the test set's
    counts (with --root or data found) and its labels; said in one line."""
    from .ctc_submit import submission_task
    from .task import get_task, tasks

    if args.task:
        return get_task(args.task)
    counts = {}
    if getattr(args, "n_frames", None) is None:
        try:
            root = _resolve_root(getattr(args, "root", None), verbose=False)
            counts = {t.name: t.count_test(root) for t in tasks().values()}
        except (FileNotFoundError, ValueError):
            counts = {}
    task = get_task(submission_task(args.file, sample=getattr(args, "sample", None), counts=counts))
    print(f"phonemekit: {args.file} reads as an {task.homework} file (task={task.name!r}); --task to choose")
    return task


# --------------------------------------------------------------------------------------------
# The commands


def cmd_recipes(args) -> int:
    from .config import RECIPE_DIR, load_recipe, recipes
    from .task import tasks

    for name in recipes():
        c = load_recipe(name)
        schedule = "constant lr" if c.scheduler == "none" else f"{c.scheduler} schedule"
        print(f"{name:<11} {task_of(c).describe(c)}, {c.epochs} epochs, batch {c.batch_size}, {c.optimizer} "
              f"lr {c.lr:g}, {schedule}")
    picks = "; ".join(f"{t.homework} (--task {t.name}): {t.recipes[0]!r} with a GPU and the Kaggle data, else "
                      f"{t.recipes[1]!r}" for t in tasks().values())
    print(f"auto        {picks}")
    print(f"(the recipes are YAML files in {RECIPE_DIR}; copy one to change it and pass --config FILE)")
    return 0


def cmd_summary(args) -> int:
    from .config import load_config
    from .data import n_features
    from .model import BUDGET

    config, line = load_config(args.config, args.set, args.root, task=args.task)
    if line:
        print(line)
    if args.features:
        f = args.features
    else:
        try:
            f = n_features(_resolve_root(None, config.root, verbose=False), config.train_partition)
        except FileNotFoundError:
            f = 28
            print("phonemekit: no data found, assuming 28 features per frame (pass --features N)")
    text, n = task_of(config).summary(config, f)
    print(text)
    limit = config.param_limit or BUDGET
    print(f"{n:,} parameters: {n / limit:.1%} of the {limit:,} budget"
          + ("" if n <= limit else f"  -- OVER the budget by {n - limit:,}"))
    return 0 if n <= limit else 1


def cmd_train(args) -> int:
    from .config import config_changes, load_config
    from .distributed import env_world_size, is_main_process
    from .plots import plot_history
    from .train import dry_run, fit

    # under torchrun every process runs this command; process 0 alone prints and writes files
    main = is_main_process()
    config, line = load_config(args.config, args.set, args.root, task=args.task)
    if line and main:
        print(line)
    if args.dry_run:
        if env_world_size() > 1:
            raise ValueError("--dry-run runs in one process: start it with python -m phonemekit, not torchrun")
        dry_run(config, steps=args.steps)
        return 0
    if main:
        print(f"phonemekit: training with {config_changes(config)}"
              + (f" on {env_world_size()} processes" if env_world_size() > 1 else ""))
    try:
        result = fit(config, resume=args.resume, overwrite=args.overwrite)
    except KeyboardInterrupt:  # fit has saved last.pt and said how to continue
        return 130
    if not main:
        return 0
    out = result.checkpoint_dir
    config.save(out / "config.yaml")  # readable beside the checkpoints (they hold it too)
    result.history.to_csv(out / "history.csv", index=False)
    import matplotlib.pyplot as plt

    plt.close(plot_history(result.history, path=out / "history.png"))
    task = task_of(config)
    print(f"phonemekit: best {result.metric.replace('_', ' ')} {task.format(result.best)} at epoch {result.best_epoch}; "
          f"{out / 'best.pt'}, history.csv and history.png in {out}")
    print(f"next: python -m phonemekit predict --checkpoint {out / 'best.pt'} --out submission.csv")
    return 0


def cmd_predict(args) -> int:
    import time

    from .checkpoint import load_checkpoint
    from .device import resolve_device
    from .submit import find_sample

    device = resolve_device(args.device)
    model, config, ckpt = load_checkpoint(args.checkpoint, device=device)
    task = task_of(config)
    root = _resolve_root(args.root, config.root, trained_on=args.checkpoint)
    test = task.test_dataset(config, root, stats=ckpt.get("stats"))
    if test.n_features != ckpt.get("n_features", test.n_features):
        raise ValueError(f"{args.checkpoint} was trained on {ckpt.get('n_features')} features per frame, the "
                         f"test data in {root} has {test.n_features}: pass --root with the matching data")
    if args.sample:
        from .ctc_submit import check_sample

        sample = check_sample(args.sample, task.name, len(test))  # never the other homework's sample
    else:
        sample = find_sample(root)
    options = {k: v for k, v in (("beam_width", args.beam_width), ("label_format", args.label_format)) if v is not None}
    t0 = time.perf_counter()
    preds = task.predict(model, test, device=device, batch_size=args.batch_size, **options)
    seconds = time.perf_counter() - t0
    out = task.write_csv(preds, args.out, sample=sample, label_format=options.get("label_format"))
    task.validate_csv(out, len(test), sample=sample)
    print(f"phonemekit: wrote {out}: {len(test):,} {task.test_unit}s ({seconds:.1f} s), checked"
          + (f" against {sample.name}" if sample else "") + f" (epoch {ckpt['epoch']})")
    if task.has_answers(root):
        # the CSV is written and checked: a failure past this point is a warning, not a failed command
        try:
            score = task.score_csv(out, task.answers(config, root, stats=ckpt.get("stats")))
            print(f"phonemekit: test {task.score_name} against the answers shipped with this corpus: {task.format(score)}")
        except (ValueError, OSError) as e:
            print(f"phonemekit: warning: {out} is written and checked, but scoring it against the answers in "
                  f"{root / 'test-clean'} failed: {e}", file=sys.stderr)
    return 0


def cmd_decode(args) -> int:
    """Decode a labelled partition at several beam widths from one run of the model: distance and time each."""
    from .checkpoint import load_checkpoint
    from .ctc_submit import sweep_widths
    from .decode import best_width
    from .device import resolve_device

    device = resolve_device(args.device)
    model, config, ckpt = load_checkpoint(args.checkpoint, device=device)
    task = task_of(config)
    task.require("decode", "python -m phonemekit decode (a beam-width sweep)")
    root = _resolve_root(args.root, config.root, trained_on=args.checkpoint)
    data = task.test_dataset(config, root, stats=ckpt.get("stats"), with_labels=True, partition=args.partition)
    widths = [int(w) for w in args.beam_widths.replace(" ", "").split(",") if w]
    table = sweep_widths(model, data, widths, batch_size=args.batch_size or 32, device=device, workers=args.workers)
    print(f"{args.checkpoint} (epoch {ckpt['epoch']}) on {len(data):,} utterances of {root / args.partition}, "
          "the model run once:")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}" if v < 100 else f"{v:,.1f}"))
    best = best_width(table)
    print(f"best width: {best} (lowest distance; a tie goes to the faster): predict with --beam-width {best}")
    return 0


def _expected_rows(args, task, sample):
    """(rows a CSV must have, where that number comes from, the sample file) for validate and submit."""
    from .data import default_root, find_root, is_demo
    from .submit import find_sample

    if args.n_frames is not None:
        return args.n_frames, "--n-frames", sample
    if args.root is None and sample is not None:
        from .csvfile import count_rows

        return count_rows(sample, "sample"), sample.name, sample
    root = Path(args.root) if args.root else default_root(verbose=False)
    if args.command == "submit" and not args.root and is_demo(root):
        return None, None, sample  # the demo's test set is not Kaggle's: never count rows against it
    root = find_root(root)
    return task.count_test(root), f"{root / 'test-clean'}", sample or find_sample(root)


def cmd_validate(args) -> int:
    task = _csv_task(args)
    n, source, sample = _expected_rows(args, task, Path(args.sample) if args.sample else None)
    task.validate_csv(args.file, n, sample=sample, header=args.header.split(",") if args.header else None)
    print(f"{args.file}: OK ({n:,} rows as in {source}, one per {task.test_unit}, labels valid, ids 0..N-1 each once"
          + (f", header as in {sample.name}" if sample else "") + ")")
    return 0


def cmd_score(args) -> int:
    root = _resolve_root(args.root)
    task = _csv_task(args)
    if not task.has_answers(root, args.partition):
        print(f"phonemekit: {root / args.partition} has no answers to score against (Kaggle's test set has none: "
              "submit the file to be scored; the demo corpus ships them)")
        return 0
    from .config import Config

    truth = task.answers(Config(task=task.name), root, args.partition)
    score = task.score_csv(args.file, truth)
    print(f"{args.file}: {task.score_name} {task.format(score)} on {len(truth):,} {task.test_unit}s of "
          f"{root / args.partition}")
    return 0


def cmd_download(args) -> int:
    from .submit import kaggle_download

    root = kaggle_download(args.competition, dest=args.dest, force=args.force)
    print(f"phonemekit: the data is in {root}; train on it with --root {root} (or set PHONEMEKIT_DATA={root})")
    return 0


def cmd_submit(args) -> int:
    from .submit import kaggle_submit

    task = _csv_task(args)
    n, _, sample = _expected_rows(args, task, Path(args.sample) if args.sample else None)
    kaggle_submit(args.file, args.competition, args.message, n, sample, validate=task.validate_csv)
    print(f"phonemekit: submitted {args.file} to {args.competition}; see its Submissions page for the score")
    return 0


def run_delegated(name: str, argv: list[str]) -> int:
    """bench / sweep-agent: import the module only now, and hand it the rest of the command line."""
    module_name, func, _ = DELEGATED[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name and not (e.name is None and module_name in str(e)):
            raise  # the module exists but one of its own imports is missing: show that
        print(f"phonemekit {name}: {module_name} is not part of this installation of phonemekit; "
              "update the repository (git pull) to get it", file=sys.stderr)
        return 2
    result = getattr(module, func)(argv)
    return int(result or 0)


# --------------------------------------------------------------------------------------------
# argparse


def _positive(text: str) -> int:
    """argparse type: a whole number >= 1 (0 or -3 rows, frames or beams are a typo, not a request)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} must be at least 1")
    return n


def _resume(text: str):
    """--resume alone: True; --resume true/false as words, not as file names; else a checkpoint path."""
    word = text.strip().lower()
    if word in ("true", "yes", "1", "on"):
        return True
    if word in ("false", "no", "0", "off"):
        return False
    return text


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows a default only where there is one worth reading (not None, False or [])."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, False, [], argparse.SUPPRESS) and "default" not in text:
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="phonemekit", formatter_class=_Formatter,
        description="HW1P2 (frame-level phoneme classification) and HW3P2 (phoneme sequences with CTC) from "
                    "the command line: the notebooks' steps for a GPU box under nohup or tmux.",
        epilog="examples:\n"
               "  python -m phonemekit train --config strong --dry-run\n"
               "  nohup python -m phonemekit train --config strong --root data > train.log &\n"
               "  python -m phonemekit train --config strong --resume\n"
               "  python -m phonemekit predict --checkpoint checkpoints/strong/best.pt --out submission.csv\n"
               "  python -m phonemekit submit submission.csv -m 'strong, 25 epochs' --competition 11785-s25-hw1p2\n"
               "  python -m phonemekit train --config ctc-demo            # HW3P2; --config auto --task ctc\n"
               "  python -m phonemekit predict --checkpoint checkpoints/ctc-demo/best.pt --beam-width 10\n"
               "  python -m phonemekit bench --help\n",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name, help_, **kw):
        return sub.add_parser(name, help=help_, description=help_, formatter_class=_Formatter, **kw)

    def csv_task(q):
        q.add_argument("--task", choices=TASK_NAMES,
                       help="frames (HW1P2: a class per test frame) or ctc (HW3P2: a phoneme string per test "
                            "utterance); default: told apart by the sample file, the test set's row counts and the "
                            "file's labels")

    def config_args(q):
        q.add_argument("--config", required=True, metavar="FILE",
                       help="a recipe name (python -m phonemekit recipes lists them), a .yaml/.json config "
                            "file, or 'auto'")
        q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="change one config field, e.g. --set lr=1e-3 --set hidden=[1024,512] (repeatable)")
        q.add_argument("--root", metavar="DIR", help="the data folder (holds train-clean-100/, dev-clean/, "
                       "test-clean/); default: the config's root, else Kaggle data in ./data, else the demo")
        q.add_argument("--task", choices=TASK_NAMES, default=TASK_NAMES[0],
                       help="which homework --config auto picks for: frames (HW1P2: strong / cpu-demo) or ctc "
                            "(HW3P2: ctc-strong / ctc-demo); a named recipe carries its own task")

    add("recipes", "list the shipped recipes").set_defaults(func=cmd_recipes)

    q = add("summary", "build the model of a config and print its layers and parameter count against the 20M budget")
    config_args(q)
    q.add_argument("--features", type=_positive, metavar="N", help="features per frame (default: read from the data)")
    q.set_defaults(func=cmd_summary)

    q = add("train", "train a config; checkpoints (last.pt, best.pt) go to its checkpoint_dir")
    config_args(q)
    q.add_argument("--resume", nargs="?", const=True, default=False, type=_resume, metavar="CHECKPOINT",
                   help="continue from checkpoint_dir/last.pt (or from the CHECKPOINT given) after a crash "
                        "or to train more epochs; a fresh run when there is none")
    q.add_argument("--overwrite", action="store_true",
                   help="delete the run already in checkpoint_dir and train a new one there (without it, and "
                        "without --resume, a folder that holds a run is refused)")
    q.add_argument("--dry-run", action="store_true",
                   help="run a few batches of training and validation through the same code, save and reload "
                        "a checkpoint in a temporary folder, and leave nothing behind")
    q.add_argument("--steps", type=_positive, default=3, help="training batches of a --dry-run")
    q.set_defaults(func=cmd_train)

    q = add("predict", "predict every test frame (HW1P2) or utterance (HW3P2, a ctc checkpoint) with a "
                       "checkpoint, write the submission CSV and validate it")
    q.add_argument("--checkpoint", required=True, metavar="FILE", help="best.pt or last.pt (or the folder holding them)")
    q.add_argument("--root", metavar="DIR", help="the data folder with test-clean/ (default: the checkpoint's, "
                   "else Kaggle data in ./data, else the demo)")
    q.add_argument("--out", default="submission.csv", metavar="CSV", help="where to write the submission")
    q.add_argument("--sample", metavar="CSV", help="the competition's sample_submission.csv: its header and label "
                   "kind are copied (default: the one beside the data, if any)")
    q.add_argument("--label-format", choices=("string", "int"),
                   help="phoneme strings (AH) or class indices (3); default: as the sample, else string")
    q.add_argument("--batch-size", type=_positive, metavar="N",
                   help="frames per forward pass (HW1P2, default 8192) or utterances (HW3P2, default 32)")
    q.add_argument("--beam-width", type=_positive, metavar="K",
                   help="HW3P2 (CTC) checkpoints: 1 decodes greedily, K > 1 runs a beam search of width K "
                        "(pyctcdecode; slower, usually a little better)")
    q.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 or mps")
    q.set_defaults(func=cmd_predict)

    q = add("decode", "HW3P2: decode a labelled partition (dev) at several beam widths from one run of a ctc "
                      "checkpoint; prints the distance, time and utterances/s of each width, and the best")
    q.add_argument("--checkpoint", required=True, metavar="FILE", help="best.pt or last.pt (or the folder holding them)")
    q.add_argument("--beam-widths", default="1,5,20,50", metavar="K,K,...", help="the widths to try; 1 is greedy")
    q.add_argument("--partition", default="dev-clean", help="a partition with its transcripts (default dev-clean)")
    q.add_argument("--root", metavar="DIR", help="the data folder (default: the checkpoint's, else the data found)")
    q.add_argument("--batch-size", type=_positive, metavar="N", help="utterances per forward pass (default 32)")
    q.add_argument("--workers", type=_positive, metavar="N", help="CPU beam processes (default: every core)")
    q.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 or mps")
    q.set_defaults(func=cmd_decode)

    q = add("validate", "check a submission CSV the way Kaggle would (header, row count, id order, labels)")
    q.add_argument("file", metavar="FILE", help="the submission CSV")
    g = q.add_mutually_exclusive_group()
    g.add_argument("--n-frames", type=_positive, metavar="N", help="the number of rows expected: test frames (HW1P2) or test utterances (HW3P2)")
    g.add_argument("--root", metavar="DIR", help="count the test frames in DIR/test-clean (default: the data found)")
    q.add_argument("--sample", metavar="CSV", help="sample_submission.csv: the header must match it")
    q.add_argument("--header", metavar="ID,LABEL", help="the expected header when there is no sample (default "
                   "id,label; HW3P2 index,label)")
    csv_task(q)
    q.set_defaults(func=cmd_validate)

    q = add("score", "frame accuracy (HW1P2) or mean Levenshtein distance (HW3P2) of a submission CSV against "
                     "known answers (the demo corpus ships its test answers)")
    q.add_argument("file", metavar="FILE", help="the submission CSV")
    q.add_argument("--root", metavar="DIR", help="a corpus with <partition>/transcript/ (default: the data found)")
    q.add_argument("--partition", default="test-clean", help="the partition the CSV predicts")
    csv_task(q)
    q.set_defaults(func=cmd_score)

    q = add("download", "download and unzip a Kaggle competition's data (needs Kaggle credentials)")
    q.add_argument("competition", metavar="COMPETITION", help="the slug in the competition's URL, e.g. 11785-s25-hw1p2")
    q.add_argument("--dest", default="data", metavar="DIR", help="where to put and unzip it")
    q.add_argument("--force", action="store_true", help="download again even if it was extracted before")
    q.set_defaults(func=cmd_download)

    q = add("submit", "validate a submission CSV, then submit it to Kaggle (needs Kaggle credentials)")
    q.add_argument("file", metavar="FILE", help="the submission CSV")
    q.add_argument("-m", "--message", required=True, help="the submission's description (Kaggle requires one)")
    q.add_argument("--competition", required=True, metavar="NAME", help="the slug in the competition's URL")
    g = q.add_mutually_exclusive_group()
    g.add_argument("--n-frames", type=_positive, metavar="N", help="the number of rows expected: test frames (HW1P2) or test utterances (HW3P2)")
    g.add_argument("--root", metavar="DIR", help="count the test frames in DIR/test-clean (default: Kaggle data in ./data)")
    q.add_argument("--sample", metavar="CSV", help="sample_submission.csv: the header must match it")
    csv_task(q)
    q.set_defaults(func=cmd_submit)

    for name, (module, func, help_) in DELEGATED.items():
        q = add(name, f"{help_} (options: python -m phonemekit {name} --help; implemented in {module})",
                add_help=False)
        q.add_argument("args", nargs=argparse.REMAINDER, help="passed to " + module)
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:  # their own parsers own every option, --help included
        return run_delegated(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError, RuntimeError, ImportError, ArithmeticError) as e:
        # the kit's errors name the file and the fix: the message is the useful part, not the stack
        print(f"phonemekit {args.command}: error: {e}", file=sys.stderr)
        if os.environ.get("PHONEMEKIT_TRACEBACK"):
            raise
        return 1
