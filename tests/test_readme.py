"""README.md and the notebooks' prose run as written: every ```python and ```bash block of the README,
and every `python -m phonemekit ...` command of the notebooks' markdown that is cheap, on the demo corpus.

A README block that needs a GPU, Kaggle or the network has `<!-- not run: why -->` on the line before
it, and is reported skipped with that reason. Notebook commands that would train for long are checked
through `summary` with the same recipe and settings (the recipe resolves, every --set key exists).
The README's demo accuracies are checked against a fresh run (tools/demo_figures.py).
"""

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


@dataclass
class Block:
    lang: str
    code: str
    line: int  # of the opening fence
    not_run: str | None  # the reason in <!-- not run: ... -->, if any


def fenced_blocks(text: str) -> list[Block]:
    lines, blocks, i = text.splitlines(), [], 0
    while i < len(lines):
        m = re.match(r"^```(\S*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        marker = re.fullmatch(r"<!-- not run: (.*) -->", lines[k].strip()) if k >= 0 else None
        blocks.append(Block(m.group(1), "\n".join(lines[i + 1 : end]), i + 1, marker and marker.group(1)))
        i = end + 1
    return blocks


def params(lang: str) -> list:
    return [pytest.param(b, id=f"README.md:{b.line}",
                         marks=[pytest.mark.skip(reason=b.not_run)] if b.not_run else [])
            for b in fenced_blocks(README.read_text(encoding="utf-8")) if b.lang == lang]


@pytest.fixture
def shell(tmp_path):
    """A fresh folder as the repository root would look to a student: data/ (the demo), `python` on PATH."""
    (tmp_path / "data").symlink_to(REPO / "data")
    bin_dir = tmp_path / ".bin"
    bin_dir.mkdir()
    for name in ("python", "python3"):
        (bin_dir / name).symlink_to(sys.executable)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(REPO / "src"),
           "OMP_NUM_THREADS": "1", "PHONEMEKIT_PROGRESS": "0", "MPLBACKEND": "Agg"}
    env.pop("PHONEMEKIT_DATA", None)

    def run(args, **kw):
        return subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, **kw)

    return run


def test_the_readme_has_blocks_to_run_and_marks_the_others():
    blocks = fenced_blocks(README.read_text(encoding="utf-8"))
    assert sum(b.lang == "python" and not b.not_run for b in blocks) >= 2
    assert sum(b.lang == "bash" and not b.not_run for b in blocks) >= 1
    assert all(b.not_run.strip() for b in blocks if b.not_run is not None)


@pytest.mark.parametrize("block", params("python"))
def test_readme_python_block_runs_as_written_on_the_demo_corpus(block, shell):
    out = shell([sys.executable, "-c", block.code])
    assert out.returncode == 0, f"README.md line {block.line}:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"


@pytest.mark.parametrize("block", params("bash"))
def test_readme_shell_block_runs_as_written_on_the_demo_corpus(block, shell):
    out = shell(["bash", "-e", "-o", "pipefail", "-c", block.code])
    assert out.returncode == 0, f"README.md line {block.line}:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"


# ---- the notebooks' markdown ------------------------------------------------------------------------

COMMAND = re.compile(r"^(?:python3? -m phonemekit|python3? tools/|wandb |pip |nohup |torchrun )")
NOT_RUN = [  # (pattern, why): what a notebook's prose asks for that the suite cannot or need not do
    (r"\b(submit|download)\b", "needs Kaggle credentials"),
    (r"^wandb |\bsweep-agent\b", "needs a wandb account"),
    (r"^pip ", "installs packages"),
    (r"tools/run_notebook\.py", "runs a whole notebook (the notebook tests do)"),
]


def notebook_commands() -> list:
    found, seen = [], set()
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "markdown":
                continue
            spans = re.findall(r"`([^`\n]+)`", cell.source) + [
                line.split("  #")[0].strip() for block in re.findall(r"```\w*\n(.*?)```", cell.source, re.S)
                for line in block.splitlines()]
            for span in spans:
                if COMMAND.match(span) and span not in seen:
                    seen.add(span)
                    found.append(pytest.param(span, id=f"{path.name}[{i}]: {span[:60]}"))
    return found


def test_the_notebooks_name_commands_to_check():
    assert len(notebook_commands()) >= 5


@pytest.mark.parametrize("command", notebook_commands())
def test_a_notebooks_command_works_as_written(command, shell):
    for pattern, why in NOT_RUN:
        if re.search(pattern, command):
            # still: every repository path it names exists
            for word in shlex.split(command.split("&&")[-1]):
                if re.fullmatch(r"tools/\S+\.py|notebooks/\S+\.ipynb", word):
                    assert (REPO / word).exists(), f"{command!r} names {word}, which does not exist"
            pytest.skip(why)
    args = shlex.split(command)
    assert args[:3] in (["python", "-m", "phonemekit"], ["python3", "-m", "phonemekit"]), command
    if args[3] == "train" and "--dry-run" not in args:
        # training takes long: check the recipe and every setting through `summary` instead
        config = args[args.index("--config") + 1]
        if config.startswith("notebooks/") and not (REPO / config).exists():
            pytest.skip(f"{config} is written by that notebook's run")
        keep = [a for i, a in enumerate(args[4:], 4) if a in ("--config", "--set") or args[i - 1] in ("--config", "--set")]
        args = args[:3] + ["summary"] + keep
    out = shell(args)
    assert out.returncode == 0, f"{command}:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"


# ---- the README's figures ---------------------------------------------------------------------------


def demo_figures():
    spec = importlib.util.spec_from_file_location("demo_figures", REPO / "tools" / "demo_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_states_figures_for_every_demo_recipe():
    said = demo_figures().readme_figures(README.read_text(encoding="utf-8"))
    assert set(said) == {"smoke", "baseline", "cpu-demo", "cpu-demo (sample output)"}
    assert all(said.values())


@pytest.mark.parametrize("recipe", ["smoke", pytest.param("baseline", marks=pytest.mark.slow),
                                    pytest.param("cpu-demo", marks=pytest.mark.slow)])
def test_the_readmes_demo_accuracies_are_those_of_a_fresh_run(recipe, tmp_path):
    figures = demo_figures()
    measured = figures.measure(recipe, tmp_path)
    wrong = figures.disagreements({recipe: measured}, figures.readme_figures(README.read_text(encoding="utf-8")))
    assert not wrong, "\n".join(wrong) + "\n(python3 tools/demo_figures.py prints the table to copy)"
