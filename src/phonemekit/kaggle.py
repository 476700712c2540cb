"""Kaggle from Python: credentials, download, submit.

    kaggle_credentials()                                   # where the kaggle command finds them, or why not
    root = kaggle_download("11785-s25-hw1p2", "data")      # download, unzip, return the data root
    kaggle_submit("submission.csv", "11785-s25-hw1p2", "gelu pyramid, context 30", sample=root / "sample_submission.csv")

The Kaggle command line (the `kaggle` package) runs as a separate process, never imported here:
importing it looks for credentials at once and, in some versions, exits the process (a notebook's
kernel with it) when there are none.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

from .csvfile import count_rows

KAGGLE_MIN_VERSION = (2, 1, 1)  # the first kaggle that reads KAGGLE_API_TOKEN, access_token and `kaggle auth login`
KAGGLE_SETTINGS = "https://www.kaggle.com/settings"
KAGGLE_MAIN = "import sys; sys.argv[0] = 'kaggle'; from kaggle.cli import main; sys.exit(main())"
PROGRESS_EVERY = 10.0  # seconds between the progress lines written to a log file (not a terminal or notebook)


def _kaggle_config_dir() -> Path:
    """Where the kaggle package looks for kaggle.json: $KAGGLE_CONFIG_DIR, else ~/.kaggle, else (on
    Linux, when ~/.kaggle does not exist) $XDG_CONFIG_HOME/kaggle or ~/.config/kaggle."""
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return Path(os.environ["KAGGLE_CONFIG_DIR"]).expanduser()
    home = Path.home() / ".kaggle"
    if sys.platform.startswith("linux") and not home.exists():
        return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kaggle"
    return home


def _read_text(path: Path) -> tuple[str | None, str | None]:
    """(the file's text, None), or (None, what is wrong with it: a folder, unreadable, empty)."""
    if path.is_dir():
        return None, f"{path} is a folder, not a file"
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return None, f"{path} cannot be read ({e.strerror or e})"
    if not text.strip():
        return None, f"{path} is empty"
    return text, None


def _json_kind(value) -> str:
    return {list: "a list", str: "a string", bool: "true or false", type(None): "null"}.get(type(value), "a number")


def kaggle_credentials() -> str:
    """Where the Kaggle command will find credentials; RuntimeError listing every way to give them,
    and what is wrong with those it found (a folder, an empty or unreadable file, a JSON list ...).

    Looked for in the kaggle package's own order (kaggle >= 2.1.1), by reading environment
    variables and files only (no network call, nothing printed):
    1. an API token: $KAGGLE_API_TOKEN (the token, or the path of a file holding it), else the
       file ~/.kaggle/access_token (or access_token.txt);
    2. a legacy API key: "username" and "key" from kaggle.json (in $KAGGLE_CONFIG_DIR, else
       ~/.kaggle), each overridden by $KAGGLE_USERNAME / $KAGGLE_KEY;
    3. the OAuth login that `kaggle auth login` saves: ~/.kaggle/credentials.json.
    Whether a token is still valid only Kaggle can say: the command then fails with 401.
    """
    home = Path.home() / ".kaggle"
    problems = []
    token = os.environ.get("KAGGLE_API_TOKEN", "")
    if token and not token.strip():  # kaggle would send it as the token, ahead of any other credentials
        raise RuntimeError(f"$KAGGLE_API_TOKEN is set to {token!r}, only whitespace: set it to the token from "
                           f"{KAGGLE_SETTINGS} (API, Generate New Token), or unset it")
    if token:
        if not Path(token).exists():  # kaggle reads the variable as a path first, then as the token
            return "$KAGGLE_API_TOKEN"
        text, problem = _read_text(Path(token))
        if text:
            return f"$KAGGLE_API_TOKEN (the file {token})"
        problems.append(f"$KAGGLE_API_TOKEN names a file, but {problem}: put the token in it, or set the "
                        "variable to the token itself")
    for f in (home / "access_token", home / "access_token.txt"):
        if f.exists() or f.is_symlink():
            text, problem = _read_text(f)
            if text:
                return str(f)
            problems.append(f"{problem}: save the token from {KAGGLE_SETTINGS} in it, or delete it")

    fresh = f"download a fresh kaggle.json from {KAGGLE_SETTINGS} (API section)"
    config_dir = _kaggle_config_dir()
    if os.environ.get("KAGGLE_CONFIG_DIR") and not config_dir.is_dir():
        problems.append(f"$KAGGLE_CONFIG_DIR is {config_dir}, which "
                        + ("is a file, not a folder" if config_dir.exists() else "does not exist")
                        + ": point it at the folder holding kaggle.json, or unset it")
    config = config_dir / "kaggle.json"
    keys, from_file = {}, False
    if config.exists() or config.is_symlink():
        text, problem = _read_text(config)
        if problem:
            problems.append(f"{problem}: {fresh}")
        else:
            try:
                saved = json.loads(text)
            except ValueError as e:
                problems.append(f"{config} is not valid JSON ({e}): {fresh}")
            else:
                if isinstance(saved, dict):
                    keys, from_file = dict(saved), True
                else:
                    problems.append(f"{config} holds {_json_kind(saved)}, not an object with \"username\" and "
                                    f"\"key\": {fresh}")
    env = {k: os.environ.get(f"KAGGLE_{k.upper()}") for k in ("username", "key")}
    keys.update({k: v for k, v in env.items() if v})
    if keys.get("username") and keys.get("key"):
        if not from_file:
            return "$KAGGLE_USERNAME and $KAGGLE_KEY"
        return str(config) + (" with $KAGGLE_USERNAME/$KAGGLE_KEY" if any(env.values()) else "")
    if from_file:
        problems.append(f"{config} needs both \"username\" and \"key\": {fresh}")
    elif any(env.values()):
        problems.append("only one of $KAGGLE_USERNAME and $KAGGLE_KEY is set: set both")

    oauth = home / "credentials.json"
    if oauth.exists() or oauth.is_symlink():
        text, problem = _read_text(oauth)
        try:
            saved = json.loads(text) if text else None
        except ValueError:
            saved = None
        if isinstance(saved, dict) and saved.get("refresh_token"):
            return f"{oauth} (kaggle auth login)"
        problems.append(f"{problem or f'{oauth} holds no login (no refresh_token)'}: run `kaggle auth login` again")

    raise RuntimeError(
        "no Kaggle credentials found" + (f" ({'; '.join(problems)})" if problems else "") + ". Give them in "
        f"any one of these ways: (1) create an API token at {KAGGLE_SETTINGS} (API, Generate New Token) and set "
        "the environment variable KAGGLE_API_TOKEN to it (in Colab: a secret named KAGGLE_API_TOKEN), or save it "
        "in the file ~/.kaggle/access_token; (2) run `kaggle auth login` once, on a machine with a browser "
        "(saves ~/.kaggle/credentials.json); (3) a legacy key: ~/.kaggle/kaggle.json (chmod 600; or "
        "$KAGGLE_CONFIG_DIR/kaggle.json), or the variables KAGGLE_USERNAME and KAGGLE_KEY. Never paste a key "
        "into a notebook cell that you share."
    )


def _installed_kaggle_version() -> str | None:
    """The version of the kaggle package in this Python environment (read from its metadata, not imported)."""
    from importlib import metadata

    try:
        return metadata.version("kaggle")
    except metadata.PackageNotFoundError:
        return None


def _version_tuple(version: str) -> tuple:
    return tuple(int(p) for p in re.findall(r"\d+", version.split("+")[0])[:3])


def _kaggle_cli() -> list[str]:
    """The kaggle command of this Python environment, run as its own process (never imported here)."""
    import importlib.util

    need = ".".join(map(str, KAGGLE_MIN_VERSION))
    version = _installed_kaggle_version()
    if version is not None and _version_tuple(version) < KAGGLE_MIN_VERSION:
        raise RuntimeError(f"kaggle {version} is installed; the kit needs kaggle >= {need} (older ones ignore "
                           f"KAGGLE_API_TOKEN and `kaggle auth login`): pip install -U 'kaggle>={need}' six")
    beside = Path(sys.executable).parent / ("kaggle.exe" if os.name == "nt" else "kaggle")
    if beside.is_file():
        return [str(beside)]
    if importlib.util.find_spec("kaggle") is not None:  # finds the package without importing it
        # its command-line entry point in a child process (`python -m kaggle` needs kaggle >= 2.2)
        return [sys.executable, "-c", KAGGLE_MAIN]
    exe = shutil.which("kaggle")
    if exe:
        return [exe]
    raise RuntimeError(f"the kaggle command is not installed: pip install 'kaggle>={need}' six")


def _is_live(out) -> bool:
    """True for a terminal or a notebook's output area, which redraw a progress bar in place."""
    try:
        if out.isatty():
            return True
    except (AttributeError, ValueError):
        pass
    return type(out).__module__.split(".")[0] in ("ipykernel", "google")


def _relay(pipe, out=None, keep: int = 20_000, every: float | None = None) -> str:
    """Copy a child process's output to `out` (sys.stdout) as it arrives; return its last `keep` characters.

    A terminal or a notebook gets it unchanged (progress bars redraw in place). A file (a nohup
    log, a CI log) gets whole lines, and of a progress bar's redraws ('\\r') one line every
    `every` seconds and the last one, instead of thousands.
    """
    import codecs
    import time

    out = out if out is not None else sys.stdout
    every = PROGRESS_EVERY if every is None else every
    live = _is_live(out)
    decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
    tail, pending, bar, last = "", "", None, -float("inf")

    def emit(text):
        out.write(text)
        out.flush()

    fd = pipe.fileno()
    while True:
        chunk = os.read(fd, 1 << 16)
        text = decode(chunk, final=not chunk)
        tail = (tail + text)[-keep:]
        if live:
            if text:
                emit(text)
        else:
            pending += text
            while True:
                m = re.search(r"\r\n|\n|\r", pending)
                if m is None or (m.group() == "\r" and m.end() == len(pending) and chunk):
                    break  # a lone '\r' at the end may be the first half of '\r\n'
                segment, pending = pending[:m.start()], pending[m.end():]
                if m.group() == "\r":  # a redraw: keep the newest, write one now and then
                    bar = segment if segment.strip() else bar
                    if bar is not None and time.monotonic() - last >= every:
                        emit(bar + "\n")
                        bar, last = None, time.monotonic()
                else:
                    emit(segment + "\n")
                    bar = None
        if not chunk:
            break
    if not live:
        rest = pending if pending.strip() else bar
        if rest:
            emit(rest.strip("\r") + "\n")
    return tail


def _stream(cmd: list[str]) -> tuple[int, str]:
    """Run a command with its output shown as it comes; (exit code, the last part of its output)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # the child's prints come at once, not at its exit
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    except OSError as e:
        raise RuntimeError(f"could not run {cmd[0]} ({e}): pip install "
                           f"'kaggle>={'.'.join(map(str, KAGGLE_MIN_VERSION))}' six") from None
    with proc:
        try:
            output = _relay(proc.stdout)
        except BaseException:  # Ctrl-C, a closed output: stop the child too
            proc.kill()
            raise
        return proc.wait(), output


def _kaggle_hint(output: str, competition: str) -> str:
    """What to do about a failed kaggle command, from what it printed."""
    rules = f"accept the competition's rules on https://www.kaggle.com/competitions/{competition}/rules"
    if re.search(r"\b403\b|Forbidden", output):
        return f"403: {rules} (with the account of these credentials)"
    if re.search(r"\b401\b|Unauthorized", output):
        return f"401: the credentials are wrong or expired: make a new token at {KAGGLE_SETTINGS}"
    if re.search(r"\b404\b|Not Found", output):
        return f"404: check the competition's name ({competition!r}, as in its URL)"
    if re.search(r"ConnectionError|Failed to resolve|Name or service not known|timed out", output):
        return "Kaggle could not be reached: check the internet connection (and a proxy, if you need one)"
    return (f"if it is a 403, {rules}; a 401: the credentials are wrong or expired; a 404: check the "
            f"competition's name ({competition!r})")


def _run_kaggle(args: list[str], what: str, competition: str) -> subprocess.CompletedProcess:
    cmd = _kaggle_cli() + args
    code, output = _stream(cmd)
    if code != 0:
        lines = [line.strip() for line in output.replace("\r", "\n").splitlines() if line.strip()]
        said = " / ".join(lines[-3:]) or "no output"
        hint = _kaggle_hint("\n".join(lines[-10:]), competition)  # its last words, not a progress bar's numbers
        raise RuntimeError(f"kaggle {what} failed (exit {code}): {said}. {hint}")
    return subprocess.CompletedProcess(cmd, code, stdout=output, stderr="")


def kaggle_download(competition: str, dest="data", force: bool = False) -> Path:
    """Download a competition's data into `dest` (its progress shown as it goes), unzip it there,
    and return the data root.

    A second call finds the extracted data and downloads nothing (Colab restarts), unless
    force=True. An interrupted download resumes where it stopped.
    """
    from .data import find_root

    dest = Path(dest).expanduser()
    marker = dest / f".{competition}.extracted"
    if marker.is_file() and not force:
        return find_root(dest)
    kaggle_credentials()
    dest.mkdir(parents=True, exist_ok=True)
    args = ["competitions", "download", competition, "-p", str(dest)] + (["--force"] if force else [])
    _run_kaggle(args, "download", competition)
    archive = dest / f"{competition}.zip"
    if not archive.is_file():
        zips = sorted(dest.glob("*.zip"))
        if len(zips) != 1:
            raise FileNotFoundError(f"the download left no {archive.name} in {dest} (found {[z.name for z in zips]}): "
                                    "run it again")
        archive = zips[0]
    print(f"phonemekit: extracting {archive} into {dest} ...", flush=True)
    try:
        with zipfile.ZipFile(archive) as z:
            z.extractall(dest)  # zipfile strips absolute paths and '..' from member names
    except zipfile.BadZipFile as e:
        raise RuntimeError(f"{archive} is not a complete zip ({e}): run the download again (it resumes), "
                           "or with force=True (--force) to start over") from None
    marker.write_text(archive.name + "\n")
    return find_root(dest)


def kaggle_submit(path, competition: str, message: str, n_frames: int | None = None, sample=None,
                  validate=None):
    """Validate the CSV, then `kaggle competitions submit COMPETITION -f PATH -m MESSAGE`.

    n_frames (or the rows of `sample`, the competition's sample_submission.csv) is the number
    of rows the file must have (test frames for HW1P2, test utterances for HW3P2); without
    either, the row count is not checked. validate(path, n, sample=...): the check of the CSV,
    validate_submission by default (HW3P2: phonemekit.ctc_submit.validate_ctc_submission).
    """
    path = Path(path).expanduser()
    if not message:
        raise ValueError("give a message: Kaggle requires one for every submission (-m)")
    if n_frames is None and sample is not None:
        n_frames = count_rows(sample)
    if n_frames is None:
        warnings.warn("kaggle_submit: no n_frames or sample given, so the row count is not checked", stacklevel=2)
        n_frames = count_rows(path, what="submission")
    if validate is None:
        from .submit import validate_submission as validate
    validate(path, n_frames, sample=sample)
    kaggle_credentials()
    return _run_kaggle(["competitions", "submit", competition, "-f", str(path), "-m", message], "submit",
                       competition)

