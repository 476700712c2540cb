import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from phonemekit import submit
from phonemekit.model import build_mlp
from phonemekit.phonemes import CLASSES, NUM_CLASSES
from phonemekit.submit import (
    kaggle_credentials, kaggle_download, kaggle_submit, predict, score_submission, validate_submission,
    write_submission,
)

REPO = Path(__file__).resolve().parents[1]


class WindowSet:
    """The dataset protocol predict relies on: len() frames, ds[index_tensor] -> batch."""

    def __init__(self, x, y=None):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, idx):
        return self.x[idx] if self.y is None else (self.x[idx], self.y[idx])


class Pick(nn.Module):
    """Logits that single out the class stored in the window: the expected prediction is known."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(1)  # to see that predict runs in eval mode

    def forward(self, x):
        self.bn(x[:, :1, 0])
        return nn.functional.one_hot(x[:, 0, 0].long(), NUM_CLASSES).float()


# --------------------------------------------------------------------------------------------
# predict


@pytest.mark.parametrize("labelled", [False, True])
def test_predict_returns_one_class_per_frame_in_dataset_order(labelled):
    classes = torch.randint(0, NUM_CLASSES, (103,))
    x = classes.float()[:, None, None].expand(103, 3, 2).clone()
    ds = WindowSet(x, classes if labelled else None)
    model = Pick().train()
    ids = predict(model, ds, batch_size=10)  # 103 frames: the last batch is partial
    assert ids.dtype == torch.int64 and torch.equal(ids, classes)
    assert model.training  # put back in the mode it was in
    assert model.bn.num_batches_tracked == 0  # ran in eval mode


def test_predict_can_return_probabilities_for_ensembling():
    torch.manual_seed(0)
    model = build_mlp(3 * 2, hidden=[16])
    ds = WindowSet(torch.randn(50, 3, 2))
    probs = predict(model, ds, batch_size=16, return_probs=True)
    assert probs.shape == (50, NUM_CLASSES)
    assert torch.allclose(probs.sum(1), torch.ones(50))
    assert torch.equal(probs.argmax(1), predict(model, ds))


def test_predict_is_deterministic_with_dropout_and_batchnorm():
    model = build_mlp(3 * 2, hidden=[32, 32], dropout=0.5).train()
    ds = WindowSet(torch.randn(40, 3, 2))
    assert torch.equal(predict(model, ds, batch_size=7), predict(model, ds, batch_size=40))


def _write_partition(root, partition, lengths, f=4, labels=True, seed=0):
    rng = np.random.default_rng(seed)
    (root / partition / "mfcc").mkdir(parents=True)
    if labels:
        (root / partition / "transcript").mkdir(parents=True)
    out = []
    for u, t in enumerate(lengths):
        name = f"19-198-{u:04d}.npy"
        np.save(root / partition / "mfcc" / name, rng.normal(size=(t, f)).astype(np.float32))
        y = rng.integers(0, NUM_CLASSES, t)
        out.append(y)
        if labels:
            np.save(root / partition / "transcript" / name, np.array(["[SOS]"] + [CLASSES[i] for i in y] + ["[EOS]"]))
    return np.concatenate(out)


def test_predict_on_a_real_test_partition_and_its_submission_validates(tmp_path):
    from phonemekit.data import AudioDataset

    _write_partition(tmp_path, "test-clean", [7, 5, 9], labels=False)
    ds = AudioDataset(tmp_path, "test-clean", context=2)
    model = build_mlp(5 * 4, hidden=[16])
    ids = predict(model, ds, batch_size=4)
    assert ids.shape == (21,)
    # each frame predicted from its own window: the same as running the model on ds[i]
    model.eval()
    with torch.no_grad():
        assert torch.equal(ids, torch.stack([model(ds[i][None]).argmax(1)[0] for i in range(len(ds))]))
    path = write_submission(ids, tmp_path / "out" / "submission.csv")
    assert validate_submission(path, len(ds))


def test_predict_ignores_the_labels_of_a_labelled_audio_dataset(tmp_path):
    from phonemekit.data import AudioDataset

    y = _write_partition(tmp_path, "dev-clean", [6, 8])
    ds = AudioDataset(tmp_path, "dev-clean", context=1)
    model = build_mlp(3 * 4, hidden=[8])
    ids = predict(model, ds, batch_size=5)
    assert ids.shape == (14,)
    write_submission(ids, tmp_path / "s.csv")
    assert score_submission(tmp_path / "s.csv", ds.labels) == pytest.approx((ids.numpy() == y).mean())


# --------------------------------------------------------------------------------------------
# write, validate, score


def test_submission_round_trips_ids_and_phoneme_labels(tmp_path):
    ids = torch.tensor([0, 3, 39, 17, 3])
    path = write_submission(ids, tmp_path / "submission.csv")
    lines = path.read_text().splitlines()
    assert lines == ["id,label", "0,[SIL]", "1,AH", "2,ZH", "3,IH", "4,AH"]
    assert validate_submission(path, 5) is True
    assert score_submission(path, ids) == 1.0
    assert score_submission(path, [CLASSES[i] for i in ids]) == 1.0
    assert score_submission(path, torch.tensor([0, 3, 39, 0, 0], dtype=torch.uint8)) == pytest.approx(0.6)


def test_integer_labels_and_other_headers_for_other_semesters(tmp_path):
    path = write_submission(np.array([5, 0, 12]), tmp_path / "s.csv", header=("Id", "Label"), label_format="int")
    assert path.read_text().splitlines() == ["Id,Label", "0,5", "1,0", "2,12"]
    assert validate_submission(path, 3, header=("Id", "Label"))
    assert score_submission(path, [5, 0, 0]) == pytest.approx(2 / 3)


def test_write_rejects_probabilities_and_out_of_range_classes(tmp_path):
    with pytest.raises(ValueError, match="argmax"):
        write_submission(torch.rand(4, NUM_CLASSES), tmp_path / "s.csv")
    with pytest.raises(ValueError, match="class 40"):
        write_submission([1, 40], tmp_path / "s.csv")
    with pytest.raises(ValueError, match="label_format"):
        write_submission([1], tmp_path / "s.csv", label_format="phoneme")


def _csv(tmp_path, text, name="s.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("text,n,reason", [
    ("Id,Label\n0,AA\n1,AE\n", 2, "header 'Id,Label'"),
    ("ID,label\n0,AA\n1,AE\n", 2, r"header 'ID,label', .*case included"),
    (",id,label\n0,0,AA\n1,1,AE\n", 2, "extra index column"),
    ("id,label\n0,AA\n1,AE\n", 3, "has 2 rows, expected 3"),
    ("id,label\n0,AA\n1,AE\n2,B\n", 2, "has 3 rows, expected 2"),
    ("id,label\n0,AA\n2,AE\n", 2, r"row 1 has id 2, outside 0\.\.1"),
    ("id,label\n1,AA\n1,AE\n", 2, "id 1 appears 2 times .rows 0 and 1. and id 0 is missing"),
    ("id,label\n0,AA\nx,AE\n", 2, "row 1 has id 'x', not an integer"),
    ("id,label\n0,AA\n-1,AE\n", 2, "row 1 has id '-1', not an integer"),
    ("id,label\n0,AA\n1.0,AE\n", 2, "row 1 has id '1.0', not an integer"),
    ("id,label\n0,AA\n1,[SOS]\n", 2, r"row 1 has label '\[SOS\]'"),
    ("id,label\n0,AA\n1,ah\n", 2, "row 1 has label 'ah'"),
    ("id,label\n0,AA\n1,40\n", 2, "row 1 has label '40'"),
    ("id,label\n0,AA\n1,\n", 2, "row 1 .* empty or NaN label"),
    ("id,label\n0,AA\n1,NaN\n", 2, "row 1 .* empty or NaN label"),
    ("id,label\n0,AA\n,AE\n", 2, "row 1 .* empty or NaN id"),
    ("id,label\n0,AA\n1,3\n", 2, "mixes phoneme strings and class indices"),
    ("", 2, r"s\.csv is empty \(0 bytes\): write it with write_submission"),
    ("\n\n", 2, r"s\.csv has no header line"),
])
def test_each_malformed_submission_is_rejected_with_its_reason(tmp_path, text, n, reason):
    with pytest.raises(ValueError, match=reason):
        validate_submission(_csv(tmp_path, text), n)


def test_ids_out_of_row_order_are_valid_and_scored_by_id_as_kaggle_does(tmp_path, capsys):
    # Kaggle joins the file to its answers on the id column: the row order does not matter
    path = _csv(tmp_path, "id,label\n2,ZH\n0,[SIL]\n1,AH\n")
    assert validate_submission(path, 3)
    assert "not in row order (row 0 has id 2)" in capsys.readouterr().out
    assert score_submission(path, [0, 3, 39]) == 1.0
    assert score_submission(path, ["[SIL]", "AH", "AA"]) == pytest.approx(2 / 3)
    # the same predictions in id order score the same
    assert score_submission(write_submission([0, 3, 39], tmp_path / "ordered.csv"), [0, 3, 39]) == 1.0


@pytest.mark.parametrize("content,reason", [
    ("id,label\n0,AÄ\n".encode("latin-1"), r"bad\.csv is not UTF-8 text \(byte 0xc4 on line 2\): save it as UTF-8"),
    ("id,label\n0,AA\n".encode("utf-16"), r"bad\.csv is not UTF-8 text \(it is UTF-16\): save it as UTF-8"),
])
def test_a_csv_that_is_not_utf8_gets_one_line_naming_the_file_and_the_fix(tmp_path, content, reason):
    (tmp_path / "bad.csv").write_bytes(content)
    with pytest.raises(ValueError, match=reason) as e:
        validate_submission(tmp_path / "bad.csv", 1)
    assert "\n" not in str(e.value)


def test_a_folder_passed_as_the_csv_says_to_pass_the_file_inside_it(tmp_path):
    run = tmp_path / "cpu-demo"
    run.mkdir()
    with pytest.raises(ValueError, match=r"cpu-demo is a folder, not a CSV file: pass the file inside it, "
                                         r"e\.g\. .*cpu-demo/submission\.csv"):
        validate_submission(run, 3)
    with pytest.raises(ValueError, match="is a folder"):
        score_submission(run, [1, 2, 3])


def test_a_utf8_file_with_a_byte_order_mark_is_read_as_utf8(tmp_path):
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfid,label\n0,AA\n")  # Excel's "CSV UTF-8"
    assert validate_submission(tmp_path / "bom.csv", 1)


def test_missing_submission_file_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        validate_submission(tmp_path / "nope.csv", 3)


def test_header_is_checked_against_the_sample_file(tmp_path):
    sample = _csv(tmp_path, "Id,Label\n0,0\n1,0\n", "sample_submission.csv")
    ours = write_submission([1, 2], tmp_path / "s.csv")
    with pytest.raises(ValueError, match="header of sample_submission.csv is 'Id,Label'"):
        validate_submission(ours, 2, sample=sample)
    ints = write_submission([1, 2], tmp_path / "i.csv", header=("Id", "Label"), label_format="int")
    assert validate_submission(ints, 2, sample=sample)
    # exactly the sample's header, case included
    lower = _csv(tmp_path, "id,label\n0,0\n1,0\n", "sample_submission.csv")
    with pytest.raises(ValueError, match="header 'Id,Label', the header of sample_submission.csv is 'id,label'"):
        validate_submission(ints, 2, sample=lower)


def test_an_unreadable_sample_file_is_named_as_the_sample(tmp_path):
    ours = write_submission([1, 2], tmp_path / "s.csv")
    with pytest.raises(FileNotFoundError, match="sample file .*sample_submission.csv does not exist"):
        validate_submission(ours, 2, sample=tmp_path / "sample_submission.csv")
    with pytest.raises(ValueError, match="sample file .*sample_submission.csv is empty"):
        validate_submission(ours, 2, sample=_csv(tmp_path, "", "sample_submission.csv"))


def test_label_kind_must_match_the_sample_file(tmp_path):
    sample = _csv(tmp_path, "id,label\n0,[SIL]\n1,[SIL]\n", "sample_submission.csv")
    ints = write_submission([1, 2], tmp_path / "s.csv", label_format="int")
    with pytest.raises(ValueError, match="int labels but sample_submission.csv has string labels"):
        validate_submission(ints, 2, sample=sample)
    assert validate_submission(write_submission([1, 2], tmp_path / "t.csv"), 2, sample=sample)


def test_score_rejects_a_file_of_the_wrong_length(tmp_path):
    path = write_submission([1, 2, 3], tmp_path / "s.csv")
    with pytest.raises(ValueError, match="has 3 rows, expected 4"):
        score_submission(path, [1, 2, 3, 4])


def test_score_names_an_extra_index_column(tmp_path):
    with pytest.raises(ValueError, match="extra index column"):
        score_submission(_csv(tmp_path, ",Id,Label\n0,0,AA\n1,1,AE\n"), [1, 2])


# --------------------------------------------------------------------------------------------
# Kaggle (no network: the kaggle command is replaced by a recorder or by a stand-in script)


@pytest.fixture
def kaggle_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(submit, "_kaggle_cli", lambda: ["kaggle"])

    def fake_stream(cmd):
        calls.append(cmd)
        return 0, ""

    monkeypatch.setattr(submit, "_stream", fake_stream)
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
    monkeypatch.setattr(submit, "_installed_kaggle_version", lambda: "1.7.4.5")
    with pytest.raises(RuntimeError, match=r"kaggle 1\.7\.4\.5 is installed; the kit needs kaggle >= 2\.1\.1.*"
                                           r"pip install -U 'kaggle>=2\.1\.1' six"):
        submit._kaggle_cli()


def _requirement(text, name):
    import re

    return re.search(rf"(?<![\w-]){name}>=([\d.]+)", text).group(1)


def test_the_declared_kaggle_lower_bound_is_the_version_the_kit_needs():
    need = ".".join(map(str, submit.KAGGLE_MIN_VERSION))
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

    monkeypatch.setattr(submit, "_stream", fake_stream)
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
    monkeypatch.setattr(submit, "_kaggle_cli", lambda: [sys.executable, str(script)])
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
    code, output = submit._stream(submit._kaggle_cli() + ["competitions", "download", "c", "-p", str(tmp_path)])
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
    assert submit._relay(Pipe(bars.encode()), term) == bars
    assert term.getvalue() == bars
    log = io.StringIO()
    submit._relay(Pipe(bars.encode()), log, every=3600)
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
    cmd = submit._kaggle_cli()
    assert "kaggle" not in sys.modules
    assert Path(cmd[0]).is_file()
    assert cmd[0].endswith(("kaggle", "kaggle.exe")) or cmd[:2] == [sys.executable, "-c"]
    # the fallback (no script beside this Python, none on PATH) runs kaggle's own entry point in a child
    monkeypatch.setattr(submit.sys, "executable", str(tmp_path / "python3"))
    monkeypatch.setattr(submit.shutil, "which", lambda name: None)
    if importlib.util.find_spec("kaggle") is not None:
        assert submit._kaggle_cli() == [str(tmp_path / "python3"), "-c", submit.KAGGLE_MAIN]


def test_kaggle_failure_is_reported_with_its_output(no_credentials, monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "x")
    monkeypatch.setattr(submit, "_kaggle_cli", lambda: ["kaggle"])
    monkeypatch.setattr(submit, "_stream", lambda cmd: (1, "Submitting\n403 Forbidden\n"))
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
    monkeypatch.setattr(submit, "_kaggle_cli", lambda: ["kaggle"])
    monkeypatch.setattr(submit, "_stream", lambda cmd: (1, said + "\n"))
    with pytest.raises(RuntimeError, match=f"(?s)kaggle download failed \\(exit 1\\): .*{fix}"):
        kaggle_download("c", tmp_path / "data")
