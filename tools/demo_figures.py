#!/usr/bin/env python3
"""The README's demo-corpus figures, measured afresh: each recipe trained on data/demo, its dev and test accuracy.

    python3 tools/demo_figures.py                      # smoke, baseline, cpu-demo: a table (a few minutes)
    python3 tools/demo_figures.py smoke --check        # and exit 1 where README.md says otherwise

Every run is seeded and uses one CPU thread, so the accuracies are the same on every run of the same
torch build (the seconds are not: they depend on the machine and its load, and are never checked).
The README states each recipe's figures in its Recipes table (first epoch's dev accuracy -> best, and
for cpu-demo the demo test accuracy) and cpu-demo's again in the main job's sample output.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPES = ("smoke", "baseline", "cpu-demo")


def measure(recipe: str, out_dir: Path) -> dict:
    """Train `recipe` on the demo corpus into out_dir: its first and best dev accuracy, best epoch, test accuracy."""
    import torch

    from phonemekit.config import load_recipe
    from phonemekit.data import DEMO_ROOT, AudioDataset
    from phonemekit.submit import predict
    from phonemekit.train import fit, load_checkpoint

    torch.set_num_threads(1)  # the same sums in the same order on every machine
    config = load_recipe(recipe, root=str(DEMO_ROOT), checkpoint_dir=str(out_dir / recipe), device="cpu")
    start = time.perf_counter()
    result = fit(config, progress=False, verbose=False)
    seconds = time.perf_counter() - start
    model, _, ckpt = load_checkpoint(out_dir / recipe / "best.pt", "cpu")
    test = AudioDataset(DEMO_ROOT, "test-clean", context=config.context, with_labels=True)
    test_acc = (predict(model, test, device="cpu") == test.labels.long()).float().mean().item()
    h = result.history
    return {"recipe": recipe, "epochs": len(h), "first_dev": 100 * h.val_acc.iloc[0],
            "best_dev": 100 * h.val_acc.max(), "best_epoch": int(ckpt["epoch"]), "test": 100 * test_acc,
            "seconds": seconds}


def readme_figures(text: str) -> dict:
    """What README.md states for each recipe: {recipe: {"first_dev", "best_dev", "test"} (those it states)}."""
    found = {}
    for recipe in RECIPES:
        row = re.search(rf"^\| `{re.escape(recipe)}` \|.*\|(.*)\|\s*$", text, re.M)
        if not row:
            continue
        measured, figures = row.group(1), {}
        m = re.search(r"(\d+\.\d+)% → (\d+\.\d+)% dev", measured) or re.search(r"()(\d+\.\d+)% dev", measured)
        if m:
            if m.group(1):
                figures["first_dev"] = float(m.group(1))
            figures["best_dev"] = float(m.group(2))
        m = re.search(r"(\d+\.\d+)% demo test", measured)
        if m:
            figures["test"] = float(m.group(1))
        found[recipe] = figures
    # the main job's sample output (RECIPE = "auto" on a CPU: cpu-demo)
    m = re.search(r"run 'cpu-demo': dev accuracy (\d+\.\d+)% \(best\.pt, epoch (\d+) of (\d+)\)\n"
                  r"test accuracy: (\d+\.\d+)%", text)
    if m:
        found["cpu-demo (sample output)"] = {"best_dev": float(m.group(1)), "best_epoch": int(m.group(2)),
                                            "epochs": int(m.group(3)), "test": float(m.group(4))}
    return found


def disagreements(measured: dict, readme: dict) -> list[str]:
    """One line per figure the README states differently from the measurement, at the README's precision."""
    lines = []
    for name, figures in readme.items():
        recipe = name.split(" ")[0]
        if recipe not in measured:
            continue
        for key, said in figures.items():
            got = measured[recipe][key]
            if isinstance(said, int):
                ok = got == said
            else:
                decimals = len(f"{said}".split(".")[1])
                ok = round(got, decimals) == said or f"{got:.{decimals}f}" == f"{said:.{decimals}f}"
            if not ok:
                lines.append(f"README.md, {name}: {key} is {said}, a fresh run gives {got:.2f}")
    return lines


def table(rows: list[dict]) -> str:
    out = ["| recipe | epochs | dev, epoch 1 | dev, best (epoch) | demo test | seconds |", "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| `{r['recipe']}` | {r['epochs']} | {r['first_dev']:.2f}% | {r['best_dev']:.2f}% "
                   f"({r['best_epoch']}) | {r['test']:.2f}% | {r['seconds']:.0f} |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("recipes", nargs="*", metavar="RECIPE",
                   help=f"the recipes to run, of {', '.join(RECIPES)} (default: all)")
    p.add_argument("--check", action="store_true", help="compare with README.md; exit 1 where it disagrees")
    p.add_argument("--readme", default=str(REPO / "README.md"), help="the README to check (default: %(default)s)")
    args = p.parse_args(argv)
    unknown = [r for r in args.recipes if r not in RECIPES]
    if unknown:
        p.error(f"unknown recipe {', '.join(unknown)}: the README's demo figures are of {', '.join(RECIPES)}")
    args.recipes = args.recipes or list(RECIPES)
    sys.path.insert(0, str(REPO / "src"))
    import platform

    import torch

    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(r, Path(tmp)) for r in args.recipes]
    print(f"demo corpus, 1 CPU thread, torch {torch.__version__}, Python {platform.python_version()}, "
          f"{platform.machine()}")
    print(table(rows))
    if not args.check:
        return 0
    readme = Path(args.readme)
    if not readme.is_file():
        print(f"demo_figures: {readme} does not exist: give --readme the README's path", file=sys.stderr)
        return 2
    wrong = disagreements({r["recipe"]: r for r in rows}, readme_figures(readme.read_text(encoding="utf-8")))
    for line in wrong:
        print(line)
    print("README.md agrees" if not wrong else f"{len(wrong)} figure(s) to update in README.md")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
