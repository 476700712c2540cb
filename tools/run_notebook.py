#!/usr/bin/env python3
"""Run a notebook headless, its cells' output streamed to this terminal, and keep the executed copy.

    python3 tools/run_notebook.py                                   # notebooks/starter.ipynb
    python3 tools/run_notebook.py -p RECIPE smoke -p OVERRIDES '{"epochs": 2}'
    nohup python3 tools/run_notebook.py > starter.log 2>&1 &        # the log reads like the notebook

Papermill executes it (the same as `papermill IN OUT --cwd DIR --log-output`, without the cell
banners): the kernel starts in the notebook's folder, `-p NAME VALUE` sets a variable of the cell
tagged `parameters` (VALUE is read as Python or JSON when it parses, else taken as text), and each
cell's printed output appears here as it is produced, under the notebook's section headings. The
executed notebook, with all outputs and plots, is saved to notebooks/runs/<name>.out.ipynb
(git-ignored), also when a cell fails. Progress bars are off (PROGRESS = False): a terminal or a
log gets one line per epoch instead. Cells tagged `skip-execution` (Colab-only ones) are not run.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "notebooks" / "starter.ipynb"


def parse_value(text: str):
    """-p VALUE as Python (True, 3, [512], {"epochs": 2}) or JSON (true, null), else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    try:
        return json.loads(text)
    except ValueError:
        return text


def heading(cell) -> str | None:
    """A markdown cell's '#' or '##' heading line, if it has one."""
    for line in cell.source.splitlines():
        m = re.match(r"#{1,2}\s+(.*)", line)
        if m:
            return m.group(1).strip()
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("notebook", nargs="?", default=str(DEFAULT), help="the notebook to run (default: %(default)s)")
    p.add_argument("-o", "--output", help="where to save the executed notebook "
                                          "(default: runs/<name>.out.ipynb beside the notebook)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="set a variable of the notebook's `parameters` cell (repeatable)")
    p.add_argument("--progress", action="store_true", help="keep the progress bars (PROGRESS = True)")
    p.add_argument("--timeout", type=int, default=None, help="seconds one cell may run (default: no limit)")
    args = p.parse_args(argv)

    try:
        import papermill
        from papermill.engines import NBClientEngine, papermill_engines
        from papermill.exceptions import PapermillExecutionError
    except ImportError:
        print("run_notebook: papermill is not installed: pip install -r requirements.txt", file=sys.stderr)
        return 2

    notebook = Path(args.notebook).expanduser().resolve()
    if not notebook.is_file():
        print(f"run_notebook: {notebook} does not exist: give the path of a .ipynb file", file=sys.stderr)
        return 2
    out = Path(args.output).expanduser().resolve() if args.output else \
        notebook.parent / "runs" / f"{notebook.stem}.out.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    parameters = {"PROGRESS": args.progress}
    # the kernel inherits this: fit() then prints one line per epoch and no bars, whatever the notebook passes
    os.environ.setdefault("PHONEMEKIT_PROGRESS", "1" if args.progress else "0")
    parameters.update({name: parse_value(value) for name, value in args.parameter})

    section = [None]

    class Engine(NBClientEngine):
        """Papermill's own engine, which also prints each section heading as its cells start."""

        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
            start = nb_man.cell_start

            def cell_start(cell, cell_index=None, **kw):
                title = heading(cell) if cell.cell_type == "markdown" else None
                if title:
                    section[0] = title
                    print(f"\n== {title} ==", flush=True)
                return start(cell, cell_index, **kw)

            nb_man.cell_start = cell_start
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register("phonemekit-terminal", Engine)
    print(f"run_notebook: running {notebook} headless; the executed copy goes to {out}", flush=True)
    t0 = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(notebook), str(out), parameters=parameters, cwd=str(notebook.parent),
            engine_name="phonemekit-terminal", progress_bar=False, log_output=False,
            stdout_file=sys.stdout, stderr_file=sys.stderr, execution_timeout=args.timeout,
            # the kernel's own start-up chatter (not the cells' output) stays out of the terminal
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except PapermillExecutionError as e:
        trace = "".join(line if line.endswith("\n") else line + "\n" for line in e.traceback)
        if not sys.stderr.isatty():  # a log file: without the terminal's colour codes
            trace = re.sub(r"\x1b\[[0-9;]*m", "", trace)
        print(trace, file=sys.stderr)
        where = f" in section {section[0]!r}" if section[0] else ""
        print(f"run_notebook: the notebook stopped at cell {e.cell_index + 1}{where} ({e.ename}: {e.evalue}); "
              f"the executed notebook, with this traceback, is {out}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nrun_notebook: interrupted; the cells run so far are in {out}", file=sys.stderr)
        return 130
    print(f"\nrun_notebook: done in {time.perf_counter() - t0:.0f} s; the executed notebook is {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
