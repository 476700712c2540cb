"""Mutation score of the kit's core: mutmut 3 over each core module, against that module's own tests.

    python3 tools/mutation.py                    # every core module, every mutant (several hours on 2 cores)
    python3 tools/mutation.py decode schedule    # some of them
    python3 tools/mutation.py --sample 10        # every tenth mutant of each module (a quick estimate)
    python3 tools/mutation.py --list             # the modules, their files and tests

Each module runs in its own scratch copy of src/ and tests/ (under --workdir), so the checkout is never
touched and each module's mutants run only its own fast test files. One worker process: the machine is
shared. Prints a table (module, mutants, killed, survived, timeout, score, seconds) and the survivors;
see one with `cd WORKDIR/MODULE && python3 -m mutmut show NAME`.
Needs mutmut>=3.8 (pip install -r requirements-dev.txt); not part of the pytest run.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module: (files to mutate, pytest selection, mutant globs or None for every mutant of the files)
MODULES = {
    "decode": (["decode.py"],
               ["tests/test_decode_properties.py", "tests/test_ctc_decode.py", "tests/test_beam_backends.py",
                "tests/test_decode_edges.py"], None),
    "csvfile": (["csvfile.py"],
                ["tests/test_csvfile.py", "tests/test_csv_properties.py", "tests/test_submit.py",
                 "tests/test_ctc_submit.py", "tests/test_order.py", "tests/test_csv_scoring_edges.py"], None),
    "corpus+data": (["corpus.py", "data.py"],
                    ["tests/test_corpus.py", "tests/test_data.py", "tests/test_loader.py",
                     "tests/test_normalize_and_windows_edges.py"], None),
    "cache": (["cache.py"], ["tests/test_data_cache.py", "tests/test_cache_folder.py",
                            "tests/test_cache_sampled_blocks.py"], None),
    "schedule": (["schedule.py"], ["tests/test_schedule_exact.py", "tests/test_engine.py", "tests/test_train.py"], None),
    "checkpoint": (["checkpoint.py"], ["tests/test_checkpoint_choice.py", "tests/test_engine.py", "tests/test_one_kit.py"], None),
    # the CTC loss and the length checks only: the rest of ctc.py is wiring covered end to end
    "ctc-loss": (["ctc.py", "decode.py"], ["tests/test_ctc_train.py", "tests/test_one_kit.py",
                                           "tests/test_ctc_scoring_exact.py", "-k", "ctc"],
                 ["phonemekit.ctc.x_ctc_loss__mutmut_*", "phonemekit.ctc.x_check_ctc_lengths__mutmut_*",
                  "phonemekit.ctc.x_unalignable__mutmut_*", "phonemekit.ctc.x_evaluate_ctc__mutmut_*",
                  "phonemekit.decode.x_min_ctc_frames__mutmut_*"]),
}

# mutmut's exit codes, as its own report reads them
KILLED, SURVIVED, TIMEOUT = {1, 3, 37}, {0, 5, 33}, {24, -24, 36, 152, 255}
# what the tests read besides src/ (the demo corpus, the tools they run)
COPIED = ["src", "tests", "data", "tools", "benchmarks"]
SAMPLE_DIGITS = {2: "[02468]", 5: "[05]", 10: "0"}


def _config(files: list[str], tests: list[str]) -> str:
    quoted = lambda items: "[" + ", ".join(json.dumps(i) for i in items) + "]"
    return ("[tool.mutmut]\n"
            'source_paths = ["src"]\n'
            'also_copy = ["data", "tools", "benchmarks"]\n'
            f"only_mutate = {quoted(['src/phonemekit/' + f for f in files])}\n"
            f"pytest_add_cli_args_test_selection = {quoted(tests)}\n"
            'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n'
            # torch is not fork-safe after a test run: fork each mutant from a clean server
            'process_isolation = "forkserver"\n')


def _globs(name: str, sample: int | None) -> list[str]:
    files, _, globs = MODULES[name]
    globs = globs or [f"phonemekit.{Path(f).stem}.*__mutmut_*" for f in files]
    return [g + SAMPLE_DIGITS[sample] for g in globs] if sample else globs


def run_module(name: str, workdir: Path, sample: int | None, verbose: bool) -> dict:
    files, tests, _ = MODULES[name]
    for f in files:
        if not (ROOT / "src/phonemekit" / f).is_file():
            raise FileNotFoundError(f"src/phonemekit/{f} is missing: update MODULES in tools/mutation.py")
    for t in tests:
        if t.startswith("tests/") and not (ROOT / t).is_file():
            raise FileNotFoundError(f"{t} is missing: update MODULES in tools/mutation.py")
    here = workdir / name
    shutil.rmtree(here, ignore_errors=True)  # a fresh run: cached verdicts would hide new tests
    here.mkdir(parents=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for folder in COPIED:
        shutil.copytree(ROOT / folder, here / folder, ignore=skip)
    (here / "pyproject.toml").write_text(_config(files, tests))
    globs = _globs(name, sample)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.time()
    with open(here / "mutmut.log", "w") as log:
        done = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", "1", *globs], cwd=here,
                              env=env, stdout=None if verbose else log, stderr=subprocess.STDOUT if not verbose else None)
    seconds = time.time() - start
    if done.returncode != 0:
        raise RuntimeError(f"mutmut failed on {name} (exit {done.returncode}): see {here / 'mutmut.log'}")
    codes = {}
    for f in files:
        meta = here / "mutants/src/phonemekit" / (f + ".meta")
        codes.update(json.loads(meta.read_text())["exit_code_by_key"])
    codes = {k: v for k, v in codes.items() if any(fnmatch.fnmatch(k, g) for g in globs)}
    row = {"module": name, "mutants": len(codes),
           "killed": sum(v in KILLED for v in codes.values()),
           "survived": sum(v in SURVIVED for v in codes.values()),
           "timeout": sum(v in TIMEOUT for v in codes.values()),
           "seconds": round(seconds), "survivors": sorted(k for k, v in codes.items() if v in SURVIVED),
           "workdir": str(here)}
    # a timeout is a kill: the mutant hung the tests
    row["score"] = (row["killed"] + row["timeout"]) / max(row["mutants"], 1)
    return row


def table(rows: list[dict], sample: int | None) -> str:
    head = f"{'module':<12} {'mutants':>7} {'killed':>6} {'survived':>8} {'timeout':>7} {'score':>6} {'seconds':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['module']:<12} {r['mutants']:>7} {r['killed']:>6} {r['survived']:>8} {r['timeout']:>7} "
                     f"{r['score']:>6.1%} {r['seconds']:>7}")
    if sample:
        lines.append(f"(every {sample}th mutant only: --sample {sample})")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("modules", nargs="*", help=f"some of: {', '.join(MODULES)} (default: all)")
    p.add_argument("--sample", type=int, choices=sorted(SAMPLE_DIGITS), help="run every Nth mutant only")
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "phonemekit-mutation",
                   help="scratch folder for the mutated copies (default: %(default)s)")
    p.add_argument("--json", type=Path, help="also write the rows (with survivor names) to this file")
    p.add_argument("--list", action="store_true", help="print the modules, files and tests, and exit")
    p.add_argument("-v", "--verbose", action="store_true", help="show mutmut's progress")
    args = p.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        p.error(f"unknown module(s) {unknown}: choose from {', '.join(MODULES)}")
    if args.list:
        for name, (files, tests, globs) in MODULES.items():
            print(f"{name}: src/phonemekit/{', '.join(files)} <- {' '.join(tests)}" + (f" [{', '.join(globs)}]" if globs else ""))
        return 0
    try:
        import mutmut  # noqa: F401
    except ImportError:
        p.error("mutmut is not installed: pip install -r requirements-dev.txt")
    rows, failed = [], []
    for name in args.modules or list(MODULES):
        print(f"mutating {name} ...", flush=True)
        try:
            rows.append(run_module(name, args.workdir, args.sample, args.verbose))
        except RuntimeError as e:  # one module's broken run should not cost the others
            print(e, flush=True)
            failed.append(name)
            continue
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
    print(table(rows, args.sample))
    if failed:
        print(f"not scored (mutmut failed): {', '.join(failed)}")
    for r in rows:
        if r["survivors"]:
            print(f"\nsurvivors in {r['module']} (cd {r['workdir']} && python3 -m mutmut show NAME):")
            print("\n".join("  " + s for s in r["survivors"]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
