"""python -m phonemekit: what a student relies on when training on a remote box from a terminal."""

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from needs import beam_search

from phonemekit import kaggle
from phonemekit.cli import main
from phonemekit.config import pick_recipe
from phonemekit.data import DEMO_ROOT, AudioDataset
from phonemekit.model import count_params
from phonemekit.submit import validate_submission, write_submission
from phonemekit.synthetic import make_corpus
from phonemekit.config import recipes
from phonemekit.train import load_recipe, make_model

REPO = Path(__file__).resolve().parents[1]
TINY = ["--set", "context=2", "--set", "hidden=[16]", "--set", "batch_size=64", "--set", "log_every=2"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A tiny corpus in the Kaggle layout (Kaggle-like: no test answers)."""
    return make_corpus(tmp_path_factory.mktemp("corpus"), 12, mean_frames=60, n_dev=3, n_test=3)


@pytest.fixture(scope="module")
def answered(tmp_path_factory):
    """A tiny corpus that ships its test answers, as the demo corpus does."""
    return make_corpus(tmp_path_factory.mktemp("answered"), 12, mean_frames=60, n_dev=3, n_test=3,
                       test_transcripts=True)


@pytest.fixture
def trained(corpus, tmp_path):
    """A checkpoint folder of a one-epoch run on the tiny corpus."""
    ckpt = tmp_path / "ckpt"
    assert main(["train", "--config", "smoke", "--root", str(corpus), *TINY, "--set", "epochs=1",
                 "--set", f"checkpoint_dir={ckpt}"]) == 0
    return ckpt


def count_test_frames(root):
    return len(AudioDataset(root, "test-clean", context=0))


# --------------------------------------------------------------------------------------------
# help


@pytest.mark.parametrize("command, options", [
    ("train", ["--config", "--set", "--resume", "--dry-run", "--root"]),
    ("predict", ["--checkpoint", "--root", "--out", "--sample", "--device"]),
    ("validate", ["FILE", "--n-frames", "--root", "--sample"]),
    ("score", ["FILE", "--root"]),
    ("download", ["COMPETITION", "--dest"]),
    ("submit", ["FILE", "--message", "--competition", "--n-frames"]),
    ("summary", ["--config", "--set", "--features"]),
    ("recipes", ["--help"]),
])
def test_every_command_has_help_that_lists_its_options(command, options, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for option in options:
        assert option in out


def test_python_m_phonemekit_lists_every_command():
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, "-m", "phonemekit", "--help"], capture_output=True, text=True,
                          env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    for command in ("train", "predict", "validate", "score", "download", "submit", "summary", "recipes",
                    "bench", "sweep-agent"):
        assert command in proc.stdout


def test_recipes_lists_every_recipe(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    for name in [*recipes(), "auto"]:
        assert f"\n{name} " in "\n" + out


# --------------------------------------------------------------------------------------------
# train


def test_dry_run_trains_a_few_batches_and_leaves_no_checkpoint(corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the recipe's checkpoint_dir is relative: it would land here
    assert main(["train", "--config", "smoke", "--root", str(corpus), *TINY, "--dry-run"]) == 0
    assert "dry run OK" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_train_writes_checkpoints_history_and_curves(trained):
    for name in ("last.pt", "best.pt", "history.csv", "history.png", "config.yaml"):
        assert (trained / name).is_file(), name


def test_resume_continues_the_run_instead_of_starting_over(corpus, trained, capsys):
    capsys.readouterr()
    assert main(["train", "--config", "smoke", "--root", str(corpus), *TINY, "--set", "epochs=2",
                 "--set", f"checkpoint_dir={trained}", "--resume"]) == 0
    assert "resuming from" in capsys.readouterr().out
    assert len((trained / "history.csv").read_text().splitlines()) == 1 + 2  # header + epochs 1 and 2


def test_a_misspelt_setting_is_an_error_that_suggests_the_field(capsys):
    assert main(["summary", "--config", "smoke", "--features", "28", "--set", "contxt=5"]) == 1
    assert "did you mean 'context'" in capsys.readouterr().err


def test_summary_counts_parameters_against_the_budget(capsys):
    assert main(["summary", "--config", "smoke", "--features", "28"]) == 0
    config = load_recipe("smoke")
    n = count_params(make_model(config, (2 * config.context + 1) * 28))
    assert f"{n:,} parameters" in capsys.readouterr().out


def test_summary_of_a_model_over_the_budget_fails(capsys):
    assert main(["summary", "--config", "smoke", "--features", "28", "--set", "hidden=[8000,8000]"]) == 1
    assert "over the budget" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# predict, validate, score


def test_predict_writes_a_submission_that_validates(corpus, trained, tmp_path, capsys):
    out = tmp_path / "submission.csv"
    assert main(["predict", "--checkpoint", str(trained / "best.pt"), "--root", str(corpus), "--out", str(out)]) == 0
    n = count_test_frames(corpus)
    assert validate_submission(out, n)
    assert main(["validate", str(out), "--root", str(corpus)]) == 0
    assert main(["validate", str(out), "--n-frames", str(n)]) == 0
    assert "OK" in capsys.readouterr().out


def test_predict_copies_the_header_and_label_kind_of_the_sample_file(corpus, trained, tmp_path):
    sample = tmp_path / "sample_submission.csv"  # one row per test frame, as the competition's
    sample.write_text("Id,Label\n" + "".join(f"{i},3\n" for i in range(count_test_frames(corpus))))
    out = tmp_path / "submission.csv"
    assert main(["predict", "--checkpoint", str(trained), "--root", str(corpus), "--out", str(out),
                 "--sample", str(sample)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "Id,Label" and lines[1].split(",")[1].isdigit()


@pytest.mark.parametrize("text, reason", [
    ("id,label\n0,AH\n1,AH\n", "rows, expected 3"),
    ("id,label\n1,AH\n1,AH\n2,AH\n", "id 1 appears 2 times"),
    ("id,label\n0,AH\n1,XX\n2,AH\n", "'XX'"),
    (",id,label\n0,0,AH\n1,1,AH\n2,2,AH\n", "extra index column"),
])
def test_validate_rejects_a_bad_file_with_its_reason(text, reason, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    assert main(["validate", str(bad), "--n-frames", "3"]) == 1
    err = capsys.readouterr().err
    assert reason in err and "bad.csv" in err


def test_score_gives_the_accuracy_against_shipped_answers(answered, tmp_path, capsys):
    answers = AudioDataset(answered, "test-clean", context=0, with_labels=True).labels
    wrong = answers.clone()
    wrong[: len(wrong) // 4] = (wrong[: len(wrong) // 4] + 1) % 40  # a quarter of the frames wrong
    path = write_submission(wrong, tmp_path / "s.csv")
    assert main(["score", str(path), "--root", str(answered)]) == 0
    expected = (wrong == answers).float().mean().item()
    assert f"{expected:.2%}" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# Kaggle (no network)


@pytest.fixture
def no_kaggle(no_credentials, monkeypatch):
    """No credentials, and the kaggle command must never run."""
    def no_network(*args, **kwargs):
        raise AssertionError("the kaggle command must not run without credentials")

    monkeypatch.setattr(kaggle, "_stream", no_network)


def test_submit_and_download_without_credentials_say_where_to_put_them(no_kaggle, tmp_path, capsys):
    path = write_submission([3, 3, 3], tmp_path / "s.csv")
    assert main(["submit", str(path), "-m", "first try", "--competition", "11785-s25-hw1p2", "--n-frames", "3"]) == 1
    assert "no Kaggle credentials" in capsys.readouterr().err
    assert main(["download", "11785-s25-hw1p2", "--dest", str(tmp_path / "data")]) == 1
    assert "KAGGLE_API_TOKEN" in capsys.readouterr().err


def test_submit_validates_the_file_before_anything_else(no_kaggle, tmp_path, capsys):
    path = write_submission([3, 3], tmp_path / "s.csv")
    assert main(["submit", str(path), "-m", "x", "--competition", "c", "--n-frames", "3"]) == 1
    assert "expected 3" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# commands that live in other modules


@pytest.mark.parametrize("command, module, func", [
    ("bench", "phonemekit.bench", "main"), ("sweep-agent", "phonemekit.search", "sweep_agent_main"),
])
def test_delegated_commands_get_the_rest_of_the_command_line(command, module, func, monkeypatch):
    seen = []
    fake = types.ModuleType(module)
    setattr(fake, func, lambda argv: seen.append(argv) or 0)
    monkeypatch.setitem(sys.modules, module, fake)
    assert main([command, "abc123", "--count", "5", "--help"]) == 0
    assert seen == [["abc123", "--count", "5", "--help"]]


def test_a_delegated_command_that_is_missing_says_so(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "phonemekit.bench", None)  # importing it now fails
    assert main(["bench"]) == 2
    assert "phonemekit.bench is not part of this installation" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# RECIPE = "auto"


def test_auto_without_gpu_or_kaggle_data_picks_the_cpu_recipe_in_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config, line = pick_recipe("auto", DEMO_ROOT)
    assert config.to_dict() == load_recipe("cpu-demo", root=str(DEMO_ROOT)).to_dict()
    assert "no GPU" in line and "demo" in line and "\n" not in line


def test_auto_with_gpu_and_kaggle_data_picks_the_strong_recipe(corpus, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    config, line = pick_recipe("auto", corpus)
    assert config.to_dict() == load_recipe("strong", root=str(corpus)).to_dict()
    assert "strong" in line


def test_auto_with_kaggle_data_but_no_gpu_trains_a_small_share_of_it(corpus, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config, line = pick_recipe("auto", corpus)
    assert config.subset < 0.1 and config.root == str(corpus)
    assert "no GPU" in line


def test_a_named_recipe_is_taken_as_asked(corpus):
    config, line = pick_recipe("baseline", corpus)
    assert config.to_dict() == load_recipe("baseline", root=str(corpus)).to_dict()
    assert "'baseline'" in line


# --------------------------------------------------------------------------------------------
# HW3P2 (CTC): the same commands


@pytest.fixture(scope="module")
def ctc_corpus(tmp_path_factory):
    """A tiny HW3P2-layout corpus (sequence transcripts) that ships its test answers."""
    from ctc_corpus import write_corpus

    root = tmp_path_factory.mktemp("ctc")
    write_corpus(root, counts={"train-clean-100": 24, "dev-clean": 6, "test-clean": 5})
    return root


@pytest.fixture(scope="module")
def ctc_trained(ctc_corpus, tmp_path_factory):
    ckpt = tmp_path_factory.mktemp("ctc-run")
    assert main(["train", "--config", "ctc-smoke", "--root", str(ctc_corpus), "--set", "epochs=1",
                 "--set", "subset=1.0", "--set", f"checkpoint_dir={ckpt}"]) == 0
    return ckpt


def test_summary_of_a_ctc_recipe_shows_the_sequence_model(capsys):
    from phonemekit.ctc import make_ctc_model

    assert main(["summary", "--config", "ctc-smoke", "--features", "28"]) == 0
    out = capsys.readouterr().out
    n = count_params(make_ctc_model(load_recipe("ctc-smoke"), {"n_features": 28}))
    assert f"{n:,} parameters" in out and "LSTM" in out and "downsampled 2x" in out


def test_auto_with_task_ctc_picks_the_ctc_recipes(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config, line = pick_recipe("auto", DEMO_ROOT, task="ctc")
    assert config.to_dict() == load_recipe("ctc-demo", root=str(DEMO_ROOT)).to_dict() and "ctc-demo" in line


def test_train_of_a_ctc_recipe_writes_checkpoints_and_history(ctc_trained):
    for name in ("last.pt", "best.pt", "history.csv", "history.png", "config.yaml"):
        assert (ctc_trained / name).is_file(), name
    assert "val_dist" in (ctc_trained / "history.csv").read_text().splitlines()[0]


@pytest.mark.parametrize("beam", ["1", pytest.param("3", marks=beam_search)])
def test_predict_sees_a_ctc_checkpoint_and_writes_one_row_per_test_utterance(ctc_corpus, ctc_trained, tmp_path,
                                                                              beam, capsys):
    from phonemekit.ctc_submit import validate_ctc_submission

    out = tmp_path / "submission.csv"
    assert main(["predict", "--checkpoint", str(ctc_trained), "--root", str(ctc_corpus), "--out", str(out),
                 "--beam-width", beam]) == 0
    assert validate_ctc_submission(out, 5) and out.read_text().startswith("index,label\n")
    said = capsys.readouterr().out
    assert "5 test utterances" in said and "test mean Levenshtein distance" in said  # this corpus ships its answers
    assert main(["validate", str(out), "--root", str(ctc_corpus)]) == 0
    assert main(["validate", str(out), "--n-frames", "5", "--task", "ctc"]) == 0
    assert main(["score", str(out), "--root", str(ctc_corpus)]) == 0
    assert "mean Levenshtein distance" in capsys.readouterr().out


def test_predict_copies_the_header_of_the_hw3p2_sample_file(ctc_corpus, ctc_trained, tmp_path):
    sample = tmp_path / "sample_submission.csv"
    sample.write_text("id,predictions\n" + "".join(f"{i},-\n" for i in range(5)))
    out = tmp_path / "submission.csv"
    assert main(["predict", "--checkpoint", str(ctc_trained / "best.pt"), "--root", str(ctc_corpus),
                 "--out", str(out), "--sample", str(sample)]) == 0
    assert out.read_text().splitlines()[0] == "id,predictions"


def test_beam_width_on_an_hw1p2_checkpoint_is_refused(corpus, trained, tmp_path, capsys):
    assert main(["predict", "--checkpoint", str(trained), "--root", str(corpus), "--out", str(tmp_path / "s.csv"),
                 "--beam-width", "5"]) == 1
    assert "--beam-width is for HW3P2" in capsys.readouterr().err


def test_validate_rejects_an_hw3p2_csv_with_the_wrong_row_count(ctc_corpus, tmp_path, capsys):
    from phonemekit.ctc_submit import write_ctc_submission

    path = write_ctc_submission(["-Ab-", "bAb"], tmp_path / "short.csv")
    assert main(["validate", str(path), "--root", str(ctc_corpus)]) == 1
    assert "2 rows, expected 5 (one per test utterance)" in capsys.readouterr().err


@pytest.mark.parametrize("homework", ["frames", "ctc"])
@pytest.mark.parametrize("answers", ["missing", "empty folder"])
def test_score_without_answers_says_that_kaggle_scores_it_and_exits_0(homework, answers, corpus, ctc_corpus,
                                                                       tmp_path, capsys):
    import shutil

    from phonemekit.ctc_submit import write_ctc_submission

    source = ctc_corpus if homework == "ctc" else corpus
    kaggle_like = tmp_path / "kaggle"
    shutil.copytree(source, kaggle_like)
    folders = [p for p in (kaggle_like / "test-clean").iterdir() if p.name.startswith("transcript")]
    for folder in folders:
        shutil.rmtree(folder)
        if answers == "empty folder":
            folder.mkdir()
    path = (write_ctc_submission(["-"] * 5, tmp_path / "s.csv") if homework == "ctc"
            else write_submission([0] * count_test_frames(source), tmp_path / "s.csv"))
    assert main(["score", str(path), "--root", str(kaggle_like)]) == 0
    out = capsys.readouterr().out
    assert "no answers to score against" in out and "submit the file to be scored" in out


def test_submit_of_an_hw3p2_csv_validates_it_then_needs_credentials(no_kaggle, tmp_path, capsys):
    from phonemekit.ctc_submit import write_ctc_submission

    path = write_ctc_submission(["-Ab-", "bAb"], tmp_path / "s.csv")
    assert main(["submit", str(path), "-m", "x", "--competition", "c", "--n-frames", "3"]) == 1
    assert "2 rows, expected 3 (one per test utterance)" in capsys.readouterr().err
    assert main(["submit", str(path), "-m", "x", "--competition", "c", "--n-frames", "2"]) == 1
    assert "no Kaggle credentials" in capsys.readouterr().err
