"""Kaggle from Python without a network: credentials read from variables and files only, the
kaggle command replaced by a recorder or by a stand-in script that prints as kaggle 2.x does."""

import os
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from phonemekit import kaggle
from phonemekit.kaggle import kaggle_credentials, kaggle_download, kaggle_submit
from phonemekit.submit import write_submission

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------
# Kaggle (no network: the kaggle command is replaced by a recorder or by a stand-in script)


@pytest.fixture
def kaggle_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(kaggle, "_kaggle_cli", lambda: ["kaggle"])

    def fake_stream(cmd):
        calls.append(cmd)
        return 0, ""

    monkeypatch.setattr(kaggle, "_stream", fake_stream)
    return calls


def test_without_credentials_the_error_lists_every_way_to_give_them(no_credentials, kaggle_calls, tmp_path):
    with pytest.raises(RuntimeError) as e:
        kaggle_credentials()
    message = str(e.value)
    for way in ("KAGGLE_API_TOKEN", "~/.kaggle/access_token", "kaggle auth login", "~/.kaggle/kaggle.json",
                "KAGGLE_CONFIG_DIR", "KAGGLE_USERNAME and KAGGLE_KEY", "Colab"):
        assert way in message, way
    assert message.index("KAGGLE_API_TOKEN") < message.index("~/.kaggle/kaggle.json")
    with pytest.raises(RuntimeError, match="no Kaggle credentials"):
        kaggle_download("11785-s25-hw1p2", tmp_path / "data")
    path = write_submission([1, 2], tmp_path / "s.csv")
    with pytest.raises(RuntimeError, match="no Kaggle credentials"):
        kaggle_submit(path, "11785-s25-hw1p2", "first try", n_frames=2)
    assert kaggle_calls == []  # nothing was run


def test_credentials_are_found_in_each_documented_place(no_credentials, monkeypatch, tmp_path):
    home = no_credentials
    monkeypatch.setenv("KAGGLE_API_TOKEN", "x")
    assert kaggle_credentials() == "$KAGGLE_API_TOKEN"
    (tmp_path / "token").write_text("x\n")  # kaggle also takes the path of a file holding the token
    monkeypatch.setenv("KAGGLE_API_TOKEN", str(tmp_path / "token"))
    assert kaggle_credentials() == f"$KAGGLE_API_TOKEN (the file {tmp_path / 'token'})"
    monkeypatch.delenv("KAGGLE_API_TOKEN")
    monkeypatch.setenv("KAGGLE_USERNAME", "u")
    monkeypatch.setenv("KAGGLE_KEY", "k")
    assert "KAGGLE_KEY" in kaggle_credentials()
    monkeypatch.delenv("KAGGLE_KEY")
    with pytest.raises(RuntimeError, match="only one of"):
        kaggle_credentials()  # a username alone is not enough
    monkeypatch.delenv("KAGGLE_USERNAME")
    (home / ".kaggle").mkdir()
    (home / ".kaggle" / "kaggle.json").write_text('{"username": "u", "key": "k"}')
    assert kaggle_credentials() == str(home / ".kaggle" / "kaggle.json")
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(cfg))
    (cfg / "kaggle.json").write_text('{"username": "u"}')
    with pytest.raises(RuntimeError, match="needs both"):
        kaggle_credentials()
    monkeypatch.setenv("KAGGLE_KEY", "k")  # as the kaggle package does: the variables fill in the file
    assert kaggle_credentials().startswith(str(cfg / "kaggle.json"))


def test_the_api_token_file_and_the_oauth_login_are_found_without_any_other(no_credentials):
    kaggle_dir = no_credentials / ".kaggle"
    kaggle_dir.mkdir()
    (kaggle_dir / "access_token").write_text("KGAT_x\n")  # where Kaggle's settings page says to save a token
    assert kaggle_credentials() == str(kaggle_dir / "access_token")
    (kaggle_dir / "access_token").unlink()
    # what `kaggle auth login` saves
    (kaggle_dir / "credentials.json").write_text('{"refresh_token": "r", "access_token": "", "username": "u"}')
    assert kaggle_credentials() == f"{kaggle_dir / 'credentials.json'} (kaggle auth login)"
    (kaggle_dir / "credentials.json").write_text('{"access_token": ""}')
    with pytest.raises(RuntimeError, match="credentials.json holds no login .*run `kaggle auth login` again"):
        kaggle_credentials()


def test_an_old_kaggle_package_is_named_with_the_upgrade(monkeypatch):
    # kaggle 1.7.4.5 (which Colab had preinstalled) ignores KAGGLE_API_TOKEN and `kaggle auth login`
    monkeypatch.setattr(kaggle, "_installed_kaggle_version", lambda: "1.7.4.5")
    with pytest.raises(RuntimeError, match=r"kaggle 1\.7\.4\.5 is installed; the kit needs kaggle >= 2\.1\.1.*"
                                           r"pip install -U 'kaggle>=2\.1\.1' six"):
        kaggle._kaggle_cli()


def _requirement(text, name):
    import re

    return re.search(rf"(?<![\w-]){name}>=([\d.]+)", text).group(1)


def test_the_declared_kaggle_lower_bound_is_the_version_the_kit_needs():
    need = ".".join(map(str, kaggle.KAGGLE_MIN_VERSION))
    assert _requirement((REPO / "requirements.txt").read_text(), "kaggle") == need
    assert _requirement((REPO / "pyproject.toml").read_text(), "kaggle") == need


def test_kaggle_download_runs_the_cli_then_unzips_and_finds_the_root(no_credentials, monkeypatch, kaggle_calls, tmp_path):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "x")
    dest = tmp_path / "data"
    competition = "11785-s25-hw1p2"

    def fake_stream(cmd):  # what the kaggle CLI leaves behind: <competition>.zip in -p DIR
        kaggle_calls.append(cmd)
        with zipfile.ZipFile(dest / f"{competition}.zip", "w") as z:
            z.writestr("11785-s25-hw1p2/test-clean/mfcc/a.npy", b"")
        return 0, ""

    monkeypatch.setattr(kaggle, "_stream", fake_stream)
    root = kaggle_download(competition, dest)
    assert root == dest / "11785-s25-hw1p2"
    assert kaggle_calls == [["kaggle", "competitions", "download", competition, "-p", str(dest)]]
    assert kaggle_download(competition, dest) == root and len(kaggle_calls) == 1  # extracted already: no download


def test_kaggle_submit_validates_then_runs_the_submit_command(no_credentials, monkeypatch, kaggle_calls, tmp_path):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "x")
    path = write_submission([1, 2, 3], tmp_path / "s.csv")
    with pytest.raises(ValueError, match="has 3 rows, expected 4"):
        kaggle_submit(path, "11785-s25-hw1p2", "m", n_frames=4)
    assert kaggle_calls == []
    kaggle_submit(path, "11785-s25-hw1p2", "gelu pyramid", n_frames=3)
    assert kaggle_calls == [["kaggle", "competitions", "submit", "11785-s25-hw1p2",
                             "-f", str(path), "-m", "gelu pyramid"]]


# A stand-in for the kaggle command: prints as kaggle 2.x does (a line on stdout, a tqdm bar
# redrawn with '\r' on stderr), writes the zip, or fails as a 403 does.
FAKE_KAGGLE = r"""
import os, sys, time, zipfile
args = sys.argv[1:]
if os.environ.get("FAKE_KAGGLE_FAIL"):
    print("Downloading 11785-s25-hw1p2.zip to data")
    print("403 Client Error: Forbidden for url: https://www.kaggle.com/api/v1/competitions/data/download-all/c",
          file=sys.stderr)
    sys.exit(1)
if os.environ.get("FAKE_KAGGLE_WAIT"):  # says something, then waits to hear that it was shown
    print("started")
    for _ in range(200):
        if os.path.exists(os.environ["FAKE_KAGGLE_WAIT"]):
            print("seen while running")
            break
        time.sleep(0.05)
    else:
        print("not seen while running")
    sys.exit(0)
comp, dest = args[2], args[args.index("-p") + 1]
print(f"Downloading {comp}.zip to {dest}")
for i in range(0, 101):
    sys.stderr.write(f"\r{i:3d}%|{'#' * (i // 10):<10}| {i * 41}M/4.0G")
    sys.stderr.flush()
sys.stderr.write("\n")
with zipfile.ZipFile(os.path.join(dest, comp + ".zip"), "w") as z:
    z.writestr(comp + "/test-clean/mfcc/a.npy", b"")
"""


@pytest.fixture
def fake_kaggle(no_credentials, monkeypatch, tmp_path):
    script = tmp_path / "kaggle_stand_in.py"
    script.write_text(FAKE_KAGGLE)
    monkeypatch.setattr(kaggle, "_kaggle_cli", lambda: [sys.executable, str(script)])
    monkeypatch.setenv("KAGGLE_API_TOKEN", "x")
    return script


def test_the_download_progress_reaches_the_user_and_a_log_gets_few_lines(fake_kaggle, tmp_path, capsys):
    root = kaggle_download("11785-s25-hw1p2", tmp_path / "data")
    assert root == tmp_path / "data" / "11785-s25-hw1p2"
    out = capsys.readouterr().out
    assert "Downloading 11785-s25-hw1p2.zip to" in out
    assert "100%|##########| 4100M/4.0G" in out  # the bar (kaggle draws it on stderr) is shown
    assert "extracting" in out
    # captured output is not a terminal: of the 101 redraws, the first and the last are written as lines
    assert "\r" not in out and out.count("%|") <= 3


def test_the_progress_is_shown_while_the_command_runs(fake_kaggle, monkeypatch, tmp_path):
    sentinel = tmp_path / "shown"

    class Screen:  # a terminal that tells the command when it has shown its first line
        text = ""

        def write(self, s):
            self.text += s
            if "started" in self.text:
                sentinel.touch()

        def flush(self):
            pass

        def isatty(self):
            return True

    screen = Screen()
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setenv("FAKE_KAGGLE_WAIT", str(sentinel))
    code, output = kaggle._stream(kaggle._kaggle_cli() + ["competitions", "download", "c", "-p", str(tmp_path)])
    assert code == 0 and "seen while running" in screen.text and "seen while running" in output


def test_a_failed_download_names_the_error_and_the_fix(fake_kaggle, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("FAKE_KAGGLE_FAIL", "1")
    with pytest.raises(RuntimeError, match=r"(?s)kaggle download failed \(exit 1\): .*403 Client Error: Forbidden.*"
                                           r"accept the competition's rules on https://www.kaggle.com/"
                                           r"competitions/11785-s25-hw1p2/rules"):
        kaggle_download("11785-s25-hw1p2", tmp_path / "data")
    assert "403 Client Error" in capsys.readouterr().out  # shown as it happened, too
    assert not (tmp_path / "data" / ".11785-s25-hw1p2.extracted").exists()


def test_a_terminal_gets_the_redraws_unchanged_and_a_log_one_line_per_interval():
    import io

    class Pipe:
        def __init__(self, data):
            self.r, w = os.pipe()
            os.write(w, data)
            os.close(w)

        def fileno(self):
            return self.r

    bars = "".join(f"\r{i:3d}%|" for i in range(0, 101, 10)) + "\ndone\n"

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    assert kaggle._relay(Pipe(bars.encode()), term) == bars
    assert term.getvalue() == bars
    log = io.StringIO()
    kaggle._relay(Pipe(bars.encode()), log, every=3600)
    assert log.getvalue() == "  0%|\n100%|\ndone\n"


def test_the_kit_never_imports_the_kaggle_package(no_credentials, monkeypatch, kaggle_calls, tmp_path):
    # kaggle 2.x checks credentials when imported, and some versions call exit(1) when there are none:
    # that would end a notebook's kernel. A stand-in that does just that must never be imported.
    fake = tmp_path / "site" / "kaggle"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise SystemExit(1)\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "kaggle", raising=False)
    monkeypatch.setenv("KAGGLE_API_TOKEN", "x")
    kaggle_credentials()
    path = write_submission([1, 2], tmp_path / "s.csv")
    kaggle_submit(path, "11785-s25-hw1p2", "m", n_frames=2)
    assert "kaggle" not in sys.modules


def test_the_kaggle_command_is_found_without_importing_kaggle(monkeypatch, tmp_path):
    import importlib.util

    if importlib.util.find_spec("kaggle") is None and shutil.which("kaggle") is None:
        pytest.skip("kaggle is not installed")
    monkeypatch.delitem(sys.modules, "kaggle", raising=False)
    cmd = kaggle._kaggle_cli()
    assert "kaggle" not in sys.modules
    assert Path(cmd[0]).is_file()
    assert cmd[0].endswith(("kaggle", "kaggle.exe")) or cmd[:2] == [sys.executable, "-c"]
    # the fallback (no script beside this Python, none on PATH) runs kaggle's own entry point in a child
    monkeypatch.setattr(kaggle.sys, "executable", str(tmp_path / "python3"))
    monkeypatch.setattr(kaggle.shutil, "which", lambda name: None)
    if importlib.util.find_spec("kaggle") is not None:
        assert kaggle._kaggle_cli() == [str(tmp_path / "python3"), "-c", kaggle.KAGGLE_MAIN]


def test_kaggle_failure_is_reported_with_its_output(no_credentials, monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "x")
    monkeypatch.setattr(kaggle, "_kaggle_cli", lambda: ["kaggle"])
    monkeypatch.setattr(kaggle, "_stream", lambda cmd: (1, "Submitting\n403 Forbidden\n"))
    path = write_submission([1], tmp_path / "s.csv")
    with pytest.raises(RuntimeError, match="(?s)403 Forbidden.*accept the competition's rules"):
        kaggle_submit(path, "c", "m", n_frames=1)


@pytest.mark.parametrize("said,fix", [
    ("401 Client Error: Unauthorized for url", "credentials are wrong or expired: make a new token"),
    ("404 Client Error: Not Found for url", r"check the competition's name \('c', as in its URL\)"),
    ("requests.exceptions.ConnectionError: Failed to resolve 'api.kaggle.com'", "check the internet connection"),
])
def test_a_failed_kaggle_command_says_what_to_do_about_it(no_credentials, monkeypatch, tmp_path, said, fix):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "x")
    monkeypatch.setattr(kaggle, "_kaggle_cli", lambda: ["kaggle"])
    monkeypatch.setattr(kaggle, "_stream", lambda cmd: (1, said + "\n"))
    with pytest.raises(RuntimeError, match=f"(?s)kaggle download failed \\(exit 1\\): .*{fix}"):
        kaggle_download("c", tmp_path / "data")


def test_the_kaggle_names_still_import_from_submit():
    from phonemekit import submit

    for name in ("kaggle_credentials", "kaggle_download", "kaggle_submit", "KAGGLE_MIN_VERSION"):
        assert getattr(submit, name) is getattr(kaggle, name)


def test_a_whitespace_only_api_token_is_refused_before_any_other_credentials(no_credentials, monkeypatch):
    (no_credentials / ".kaggle").mkdir()
    (no_credentials / ".kaggle" / "access_token").write_text("KGAT_x\n")
    monkeypatch.setenv("KAGGLE_API_TOKEN", " \t")  # kaggle would send it ahead of the file
    with pytest.raises(RuntimeError, match=r"\$KAGGLE_API_TOKEN is set to ' \\t', only whitespace: set it to the "
                                           r"token .* or unset it"):
        kaggle_credentials()


def _unreadable(monkeypatch, path):
    """path raises PermissionError when read (chmod does not stop root, who runs some CI)."""
    read_text = Path.read_text

    def guarded(self, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", guarded)


@pytest.mark.parametrize("defect,reason", [
    ("list", r"kaggle\.json holds a list, not an object with \"username\" and \"key\""),
    ("folder", r"kaggle\.json is a folder, not a file"),
    ("unreadable", r"kaggle\.json cannot be read \(Permission denied\)"),
    ("bad json", r"kaggle\.json is not valid JSON \(Expecting"),
])
def test_a_broken_kaggle_json_is_named_with_its_actual_problem(no_credentials, monkeypatch, defect, reason):
    config = no_credentials / ".kaggle" / "kaggle.json"
    config.parent.mkdir()
    if defect == "folder":
        config.mkdir()
    else:
        config.write_text({"list": '[{"username": "u", "key": "k"}]', "bad json": "{username: u}"}.get(
            defect, '{"username": "u", "key": "k"}'))
    if defect == "unreadable":
        _unreadable(monkeypatch, config)
    with pytest.raises(RuntimeError, match=f"no Kaggle credentials found \\(.*{reason}") as e:
        kaggle_credentials()
    assert defect == "bad json" or "not valid JSON" not in str(e.value)


@pytest.mark.parametrize("defect,reason", [
    ("empty", r"access_token is empty"),
    ("unreadable", r"access_token cannot be read \(Permission denied\)"),
    ("folder", r"access_token is a folder, not a file"),
])
def test_an_empty_or_unreadable_access_token_is_named(no_credentials, monkeypatch, defect, reason):
    token = no_credentials / ".kaggle" / "access_token"
    token.parent.mkdir()
    if defect == "folder":
        token.mkdir()
    else:
        token.write_text("  \n" if defect == "empty" else "KGAT_x")
    if defect == "unreadable":
        _unreadable(monkeypatch, token)
    with pytest.raises(RuntimeError, match=f"no Kaggle credentials found \\(.*{reason}: save the token"):
        kaggle_credentials()


def test_an_empty_api_token_file_is_named(no_credentials, monkeypatch, tmp_path):
    (tmp_path / "token").write_text("")
    monkeypatch.setenv("KAGGLE_API_TOKEN", str(tmp_path / "token"))
    with pytest.raises(RuntimeError, match=r"\$KAGGLE_API_TOKEN names a file, but .*token is empty"):
        kaggle_credentials()


def test_a_kaggle_config_dir_that_does_not_exist_is_named(no_credentials, monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(RuntimeError, match=r"\$KAGGLE_CONFIG_DIR is .*nowhere, which does not exist: point it at "
                                           r"the folder holding kaggle\.json"):
        kaggle_credentials()
