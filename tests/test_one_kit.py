"""One kit, two homeworks: each check below is written once and runs on HW1P2 (frames) and HW3P2
(ctc) alike: settings, reruns, resume, the best epoch's direction, a student's own network."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ctc_corpus import write_corpus
from phonemekit import checkpoint, schedule
from phonemekit.config import TASK_SETTINGS, Config, load_recipe
from phonemekit.synthetic import make_learnable_corpus
from phonemekit.task import get_task, higher_is_better, task_of
from phonemekit.train import fit, load_checkpoint

REPO = Path(__file__).resolve().parents[1]
HOMEWORKS = ["frames", "ctc"]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    frames = make_learnable_corpus(tmp_path_factory.mktemp("frames"), {"train-clean-100": 10, "dev-clean": 4,
                                                                       "test-clean": 3},
                                   frames=80, n_features=6, n_classes=6, spread=2, seed=1)
    ctc = tmp_path_factory.mktemp("ctc")
    write_corpus(ctc, {"train-clean-100": 16, "dev-clean": 6, "test-clean": 4}, n_features=6)
    return {"frames": frames, "ctc": ctc}


def small(homework, corpora, folder, **kw):
    """A seconds-long run of either homework on its tiny corpus."""
    base = dict(root=str(corpora[homework]), epochs=2, lr=3e-3, scheduler="none", checkpoint_dir=str(folder),
                log_every=2, device="cpu", task=homework)
    if homework == "frames":
        base.update(context=1, hidden=[16], batch_size=64)
    else:
        base.update(conv_channels=16, conv_layers=1, conv_stride=1, lstm_hidden=16, lstm_layers=1, pyramid=0,
                    head=[], dropout=0.0, locked_dropout=0.0, batch_size=4)
    return Config(**{**base, **kw})


def run(config, **kw):
    return fit(config, progress=False, verbose=False, **kw)


def patch_task(monkeypatch, homework, **steps):
    """The homework's Task with some steps replaced, for the rest of the test."""
    import dataclasses
    import importlib

    module = importlib.import_module(f"phonemekit.{homework}")
    monkeypatch.setattr(module, "TASK", dataclasses.replace(module.TASK, **steps))


# --------------------------------------------------------------------------------------------
# Settings: defaults per task in one place, the other homework's settings refused


@pytest.mark.parametrize("homework", HOMEWORKS)
def test_every_setting_of_the_other_homework_is_refused_by_name(homework):
    other = next(h for h in HOMEWORKS if h != homework)
    probe = {"context": 5, "boundary": "utterance", "hidden": [64], "shape": "pyramid", "depth": 2, "budget": 1000,
             "activation": "relu", "norm": "after", "init": "kaiming", "residual": "basic", "label_smoothing": 0.1,
             "class_weights": "sqrt", "mixup_alpha": 0.2, "bucketing": False, "conv_channels": 64, "conv_layers": 1,
             "conv_kernel": 5, "conv_stride": 1, "conv_residual": False, "lstm_hidden": 64, "lstm_layers": 1,
             "pyramid": 0, "locked_dropout": 0.1, "head": [64], "beam_width": 3, "encoder": "blstm2",
             "head_norm": "batch", "embed_time_masks": 1, "embed_time_mask_width": 5, "embed_freq_masks": 1,
             "embed_freq_mask_width": 4, "embed_noise_std": 0.1}
    assert set(probe) == set(TASK_SETTINGS["frames"]) | set(TASK_SETTINGS["ctc"])  # every one is probed
    for name in TASK_SETTINGS[other]:
        with pytest.raises(ValueError, match=rf"{name}=.*does not use"):
            Config(task=homework, **{name: probe[name]})
    for name in TASK_SETTINGS[homework]:  # its own settings are taken
        if name != "encoder":  # (no second encoder is registered)
            assert getattr(Config(task=homework, **{name: probe[name]}), name) == probe[name]


@pytest.mark.parametrize("homework, batch, classes, project", [("frames", 1024, 40, "hw1p2"), ("ctc", 64, 41, "hw3p2")])
def test_each_task_brings_its_own_defaults_and_class_count(homework, batch, classes, project):
    config = Config(task=homework)
    assert (config.batch_size, config.num_classes, config.wandb_project) == (batch, classes, project)
    with pytest.raises(ValueError, match="follows from the task"):
        Config(task=homework, num_classes=classes - 1)
    other = next(h for h in HOMEWORKS if h != homework)
    assert config.replace(task=other).batch_size == Config(task=other).batch_size  # defaults follow the task


@pytest.mark.parametrize("partition", ["train_partition", "val_partition"])
def test_a_test_partition_for_training_or_validation_is_named_as_unlabelled(partition):
    with pytest.raises(ValueError, match=f"{partition}='test-clean'.*no labels"):
        Config(**{partition: "test-clean"})


# --------------------------------------------------------------------------------------------
# Reruns: a finished run is never overwritten by a forgotten flag


@pytest.mark.parametrize("homework", HOMEWORKS)
def test_a_folder_that_holds_a_run_is_refused_unless_resumed_or_overwritten(homework, corpora, tmp_path):
    folder = tmp_path / "run"
    first = run(small(homework, corpora, folder, epochs=2))
    before = (folder / "best.pt").read_bytes()
    with pytest.raises(FileExistsError, match=r"already holds a run \(trained to epoch 2\).*resume.*overwrite"):
        run(small(homework, corpora, folder, epochs=1))
    assert (folder / "best.pt").read_bytes() == before  # untouched
    resumed = run(small(homework, corpora, folder, epochs=2), resume=True)  # the notebook's RESUME = True
    assert resumed.best_epoch == first.best_epoch
    again = run(small(homework, corpora, folder, epochs=1), overwrite=True)
    assert len(again.history) == 1 and load_checkpoint(folder / "last.pt")[2]["epoch"] == 1


def test_a_ctc_run_in_a_frame_runs_folder_is_refused(corpora, tmp_path):
    run(small("frames", corpora, tmp_path / "run", epochs=1))
    with pytest.raises(FileExistsError, match="already holds a run"):
        run(small("ctc", corpora, tmp_path / "run", epochs=1))
    with pytest.raises(ValueError, match="is an HW1P2 run"):
        run(small("ctc", corpora, tmp_path / "run", epochs=1), resume=True)


def test_the_command_line_refuses_a_rerun_and_overwrites_when_asked(corpora, tmp_path, capsys):
    from phonemekit.cli import main

    args = ["train", "--config", "ctc-smoke", "--root", str(corpora["ctc"]), "--set", f"checkpoint_dir={tmp_path}",
            "--set", "epochs=1", "--set", "subset=1.0", "--set", "val_subset=1.0"]
    assert main(args) == 0
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert main(args + ["--overwrite"]) == 0
    assert main(args + ["--resume", "True"]) == 0  # the word, not a file named True


# --------------------------------------------------------------------------------------------
# Resume: a changed model is an error, for both homeworks


@pytest.mark.parametrize("homework, change", [("frames", {"activation": "relu"}), ("ctc", {"conv_stride": 2}),
                                              ("ctc", {"conv_kernel": 5})])
def test_resuming_with_another_model_is_refused_even_when_the_shapes_match(homework, change, corpora, tmp_path):
    run(small(homework, corpora, tmp_path, epochs=1))
    name = next(iter(change))
    with pytest.raises(ValueError, match=rf"another model.*{name}"):
        run(small(homework, corpora, tmp_path, epochs=2, **change), resume=True)


# --------------------------------------------------------------------------------------------
# "Is this better?": one home, the task's direction everywhere


@pytest.mark.parametrize("homework", HOMEWORKS)
def test_best_epoch_plateau_and_early_stop_follow_the_tasks_direction(homework, corpora, tmp_path, monkeypatch):
    task = get_task(homework)
    sign = 1 if task.higher_is_better else -1
    scores = [0.5, 0.5 + sign * 0.2, 0.5 + sign * 0.1, 0.5 + sign * 0.1]  # epoch 2 is the best, then worse
    calls = iter(scores)

    def fake_evaluate(model, loader, config):
        return {"val_loss": 1.0, task.metric: next(calls)}

    patch_task(monkeypatch, homework, evaluate=fake_evaluate)
    result = run(small(homework, corpora, tmp_path, epochs=4, patience=2))
    assert result.best_epoch == 2 and result.best == pytest.approx(scores[1]) and result.stopped_early
    assert higher_is_better(task.metric) is task.higher_is_better
    assert higher_is_better(task.metric + "_ema") is task.higher_is_better
    config = small(homework, corpora, tmp_path, scheduler="plateau", plateau_patience=1, epochs=5)
    improving = [{"epoch": e + 1, task.metric: 0.5 + sign * 0.1 * e} for e in range(4)]
    assert schedule.lr_at(config, 4, 0, 10, improving, None) == pytest.approx(config.lr)  # never cut
    stuck = [{"epoch": e + 1, task.metric: 0.5 - sign * 0.1 * e} for e in range(4)]
    assert schedule.lr_at(config, 4, 0, 10, stuck, None) == pytest.approx(config.lr * config.plateau_factor)


# --------------------------------------------------------------------------------------------
# The threads rule, in fit itself


def test_a_busy_cpu_trains_with_one_thread_per_idle_core(monkeypatch, capsys):
    from phonemekit.device import use_idle_cores

    monkeypatch.delenv("PHONEMEKIT_THREADS", raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (7.2, 7.0, 7.0))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    torch.set_num_threads(4)
    assert use_idle_cores(torch.device("cpu")) == 1 and torch.get_num_threads() == 1
    assert "busy" in capsys.readouterr().out
    torch.set_num_threads(4)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert use_idle_cores(torch.device("cpu")) == 4  # an idle machine keeps its threads


# --------------------------------------------------------------------------------------------
# Settings of the command line that were silently wrong


@pytest.mark.parametrize("args, message", [
    (["predict", "--checkpoint", "x.pt", "--beam-width", "0"], "--beam-width: 0 must be at least 1"),
    (["predict", "--checkpoint", "x.pt", "--beam-width", "-3"], "must be at least 1"),
    (["validate", "s.csv", "--n-frames", "0"], "--n-frames: 0 must be at least 1"),
    (["summary", "--config", "smoke", "--features", "-3"], "--features: -3 must be at least 1"),
])
def test_nonsense_numbers_on_the_command_line_are_refused(args, message, capsys):
    from phonemekit.cli import main

    with pytest.raises(SystemExit):
        main(args)
    assert message in capsys.readouterr().err


def test_a_device_the_kit_cannot_use_is_named_with_the_choices():
    from phonemekit.device import resolve_device

    with pytest.raises(ValueError, match="'tpu'.*'cpu', 'cuda'"):
        resolve_device("tpu")


@pytest.mark.parametrize("homework", HOMEWORKS)
def test_a_checkpoint_dir_below_a_file_names_the_setting(homework, corpora, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="checkpoint_dir=.*is a file"):
        run(small(homework, corpora, tmp_path / "file" / "run", epochs=1))


def test_a_nan_loss_on_the_command_line_is_one_line_without_a_traceback(corpora, tmp_path):
    code = ("import sys, torch\n"
            "from phonemekit import frames\n"
            "import dataclasses\n"
            "nan = lambda *a, **k: (torch.tensor(float('nan'), requires_grad=True), 1, None)\n"
            "frames.TASK = dataclasses.replace(frames.TASK, loss=lambda config, train_ds, device: nan)\n"
            "from phonemekit.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", code, "train", "--config", "smoke", "--root", str(corpora["frames"]),
                           "--set", f"checkpoint_dir={tmp_path}", "--set", "context=1"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "training loss became nan" in proc.stderr


# --------------------------------------------------------------------------------------------
# Prediction: a checkpoint never predicts data it was not trained for


@pytest.mark.parametrize("homework", HOMEWORKS)
def test_predict_refuses_to_fall_back_to_the_demo_when_the_checkpoints_data_is_gone(homework, corpora, tmp_path,
                                                                                   capsys):
    import shutil

    from phonemekit.cli import main

    data = tmp_path / "data"
    shutil.copytree(corpora[homework], data)
    run(small(homework, corpora, tmp_path / "run", epochs=1, root=str(data)))
    shutil.rmtree(data)
    assert main(["predict", "--checkpoint", str(tmp_path / "run"), "--out", str(tmp_path / "s.csv")]) == 1
    assert "which is not on this machine: pass --root" in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()


@pytest.mark.parametrize("homework", HOMEWORKS)
def test_predict_exits_0_when_the_csv_is_written_but_the_optional_scoring_fails(homework, corpora, tmp_path, capsys,
                                                                               monkeypatch):
    from phonemekit.cli import main

    run(small(homework, corpora, tmp_path / "run", epochs=1))

    def broken(*a, **k):
        raise ValueError("answers unreadable")

    patch_task(monkeypatch, homework, answers=broken)
    assert main(["predict", "--checkpoint", str(tmp_path / "run"), "--root", str(corpora[homework]),
                 "--out", str(tmp_path / "s.csv")]) == 0
    captured = capsys.readouterr()
    assert (tmp_path / "s.csv").is_file() and "warning" in captured.err and "answers unreadable" in captured.err


# --------------------------------------------------------------------------------------------
# Experiment tools built for one homework refuse the other clearly


def test_search_and_ensembles_refuse_an_hw3p2_run_with_a_clear_message(corpora, tmp_path):
    from phonemekit.ensemble import ensemble_predict
    from phonemekit.search import ablation, random_search

    config = small("ctc", corpora, tmp_path / "run", epochs=1)
    with pytest.raises(ValueError, match="search.*built for HW1P2.*HW3P2 run"):
        random_search({"lr": [1e-3, 1e-2]}, base=config, trials=1)
    with pytest.raises(ValueError, match="search.*built for HW1P2.*HW3P2 run"):
        ablation(config, {"lr": [1e-2]})
    run(config)
    with pytest.raises(ValueError, match="ensemble.*built for HW1P2.*HW3P2 run"):
        ensemble_predict([tmp_path / "run" / "best.pt"], None)


# --------------------------------------------------------------------------------------------
# HW3P2: utterances CTC cannot align are counted before training, never scored as a loss of 0


def test_a_model_that_cannot_align_the_utterances_is_refused_before_training_with_the_count(corpora, tmp_path):
    config = small("ctc", corpora, tmp_path, conv_layers=2, conv_stride=4, pyramid=1)  # 8x: fewer frames than phonemes
    with pytest.raises(ValueError, match=r"\d+ of 16 train-clean-100 utterances \(\d+\.\d%\) cannot be aligned"):
        run(config)
    assert not (tmp_path / "last.pt").exists()


def test_validation_never_reports_a_loss_of_0_for_utterances_it_could_not_score(corpora):
    from phonemekit.ctc import evaluate_ctc, make_ctc_datasets, make_ctc_loaders, make_ctc_model, ctc_meta

    config = small("ctc", corpora, "unused", conv_layers=2, conv_stride=4, pyramid=1)
    train_ds, val_ds = make_ctc_datasets(config, "cpu")
    model = make_ctc_model(config, ctc_meta(train_ds))
    _, val_loader = make_ctc_loaders(config, train_ds, val_ds, "cpu")
    scores = evaluate_ctc(model, val_loader, config)
    assert math.isnan(scores["val_loss"]) and scores["val_dist"] > 0


def test_the_config_and_the_model_builder_share_every_hw3p2_default():
    from phonemekit.ctc_model import MODEL_OPTIONS

    config = Config(task="ctc")
    assert {k: getattr(config, k) for k in MODEL_OPTIONS} == MODEL_OPTIONS
    with pytest.raises(ValueError, match="head"):
        Config(task="ctc", head=[64, 0])  # refused when the config is made, not when the model is built


# --------------------------------------------------------------------------------------------
# A student's own network: checked once before training, one line saying what forward must return


class _Tuple(torch.nn.Module):  # a frame model that returns (logits, something)
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(18, 40)

    def forward(self, x):
        return self.lin(x.flatten(1)), None


class _NoLogSoftmax(torch.nn.Module):  # a CTC model that forgot log_softmax
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(6, 41)

    def forward(self, x, lengths):
        return self.lin(x), lengths


class _FortyClasses(_NoLogSoftmax):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(6, 40)

    def forward(self, x, lengths):
        return self.lin(x).log_softmax(-1), lengths


class _NoParameters(torch.nn.Module):
    def forward(self, x, lengths=None):
        return x


@pytest.mark.parametrize("homework, network, message", [
    ("frames", _Tuple, "must take .* and return \\(B, 40\\) logits"),
    ("frames", _NoParameters, "no trainable parameters"),
    ("ctc", _NoLogSoftmax, "log"),
    ("ctc", _FortyClasses, "41"),
    ("ctc", _NoParameters, "no trainable parameters"),
])
def test_an_own_network_that_returns_the_wrong_thing_is_told_in_one_line(homework, network, message, corpora,
                                                                          tmp_path):
    with pytest.raises(ValueError, match=message) as caught:
        run(small(homework, corpora, tmp_path, epochs=1, param_limit=None), model=network())
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "last.pt").exists()  # refused before the first step


class _OwnCTC(torch.nn.Module):  # a correct own HW3P2 network, without output_lengths()
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(6, 8, batch_first=True)
        self.lin = torch.nn.Linear(8, 41)

    def forward(self, x, lengths):
        return self.lin(self.lstm(x)[0]).log_softmax(-1), lengths


def test_a_correct_own_hw3p2_network_trains_checkpoints_and_resumes(corpora, tmp_path):
    result = run(small("ctc", corpora, tmp_path, epochs=1), model=_OwnCTC())
    assert len(result.history) == 1 and (tmp_path / "best.pt").is_file()
    resumed = run(small("ctc", corpora, tmp_path, epochs=2), model=_OwnCTC(), resume=True)
    assert len(resumed.history) == 2


@pytest.mark.parametrize("homework", HOMEWORKS)
def test_predict_refuses_the_other_homeworks_sample_file(homework, corpora, tmp_path, capsys):
    from phonemekit.cli import main

    run(small(homework, corpora, tmp_path / "run", epochs=1))
    other_rows = "0,AH\n1,AH\n" if homework == "ctc" else "0,-AHAH\n1,SIL\n"  # HW1P2 classes | HW3P2 strings
    sample = tmp_path / "sample_submission.csv"
    sample.write_text("id,label\n" + other_rows)
    assert main(["predict", "--checkpoint", str(tmp_path / "run"), "--root", str(corpora[homework]),
                 "--out", str(tmp_path / "s.csv"), "--sample", str(sample)]) == 1
    assert f"sample file {sample}" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# HW3P2 prediction: every test row, every core


def test_a_one_frame_test_utterance_is_padded_so_a_pyramid_model_still_predicts_it(corpora, tmp_path, capsys):
    import shutil

    from phonemekit.ctc_submit import predict_ctc, validate_ctc_submission, write_ctc_submission
    from phonemekit.ctc_model import min_input_frames

    data = tmp_path / "data"
    shutil.copytree(corpora["ctc"], data)
    first = sorted((data / "test-clean" / "mfcc").glob("*.npy"))[0]
    np.save(first, np.load(first)[:1])  # one frame
    config = small("ctc", corpora, tmp_path / "run", epochs=1, root=str(data), conv_layers=2, conv_stride=2,
                   pyramid=1)
    result = run(config)
    model = result.model.eval()
    assert min_input_frames(**model.config) > 1
    test = get_task("ctc").test_dataset(config, data)
    preds = predict_ctc(model, test, batch_size=2)
    assert len(preds) == len(test) and "padded with zero frames" in capsys.readouterr().out
    csv = write_ctc_submission(preds, tmp_path / "s.csv")
    assert validate_ctc_submission(csv, len(test))


@pytest.mark.skipif(not __import__("phonemekit.beam_cpu", fromlist=["available"]).available(),
                    reason="needs pyctcdecode (pip install --no-deps pyctcdecode pygtrie)")
def test_a_beam_over_every_core_predicts_the_same_strings_in_file_order(corpora, tmp_path):
    from phonemekit.ctc_submit import predict_ctc

    result = run(small("ctc", corpora, tmp_path, epochs=2))
    test = get_task("ctc").test_dataset(result.config, corpora["ctc"])
    one = predict_ctc(result.model, test, batch_size=3, beam_width=4, workers=1)
    two = predict_ctc(result.model, test, batch_size=3, beam_width=4, workers=2, bucketing=True)
    assert one == two and len(one) == len(test)


@pytest.mark.skipif(not __import__("phonemekit.beam_cpu", fromlist=["available"]).available(),
                    reason="needs pyctcdecode (pip install --no-deps pyctcdecode pygtrie)")
def test_the_decode_command_prints_every_width_with_its_distance_and_the_best(corpora, tmp_path, capsys):
    from phonemekit.cli import main

    result = run(small("ctc", corpora, tmp_path, epochs=2))
    assert main(["decode", "--checkpoint", str(tmp_path), "--beam-widths", "1,5", "--root", str(corpora["ctc"]),
                 "--workers", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.strip().split(" ")[0] in ("1", "5")]
    assert [r[0] for r in rows] == ["1", "5"] and "best width:" in out and "6 utterances" in out
    from phonemekit.ctc import evaluate_ctc, make_ctc_loaders

    greedy = float(rows[0][rows[0].index("greedy") + 1])
    model = load_checkpoint(tmp_path)[0]  # the folder's best.pt, as the command read it
    _, val = make_ctc_loaders(result.config, *get_task("ctc").datasets(result.config, "cpu"), "cpu")
    assert greedy == pytest.approx(evaluate_ctc(model, val, result.config)["val_dist"], abs=1e-4)


def test_the_decode_command_refuses_an_hw1p2_checkpoint(corpora, tmp_path, capsys):
    from phonemekit.cli import main

    run(small("frames", corpora, tmp_path, epochs=1))
    assert main(["decode", "--checkpoint", str(tmp_path), "--root", str(corpora["frames"])]) == 1
    assert "built for HW3P2" in capsys.readouterr().err


@pytest.mark.parametrize("homework", HOMEWORKS)
def test_best_val_acc_is_an_accuracy_or_says_where_the_score_is(homework, corpora, tmp_path):
    result = run(small(homework, corpora, tmp_path, epochs=1))
    assert result.metric == get_task(homework).metric
    if result.metric == "val_acc":
        assert result.best_val_acc == result.best
    else:  # a distance is never handed out under an accuracy's name
        with pytest.raises(AttributeError, match="read .best"):
            result.best_val_acc


@pytest.mark.parametrize("homework", HOMEWORKS)
def test_plateau_with_restarts_cuts_on_a_plateau_and_restarts_each_cycle(homework, corpora, tmp_path):
    task = get_task(homework)
    sign = 1 if task.higher_is_better else -1
    config = small(homework, corpora, tmp_path, scheduler="plateau-restarts", plateau_patience=0, restart_epochs=3,
                   epochs=9)
    flat = [{"epoch": e + 1, task.metric: 0.5 - sign * 0.01 * e} for e in range(8)]  # never better after epoch 1
    lrs = [schedule.lr_at(config, e, 0, 10, flat[:e], None) for e in range(8)]
    f = config.plateau_factor
    # cycle 1 (epochs 0-2): cut after epoch 2's worse score; cycle 2 (3-5) and 3 (6-8) start at lr again
    assert lrs == pytest.approx([config.lr, config.lr, config.lr * f, config.lr, config.lr, config.lr * f,
                                 config.lr, config.lr])


@pytest.mark.parametrize("homework", HOMEWORKS)
def test_a_cache_dir_or_a_csv_below_a_file_names_the_setting(homework, corpora, tmp_path):
    (tmp_path / "file").write_text("x")
    config = small(homework, corpora, tmp_path / "run", cache_dir=str(tmp_path / "file" / "cache"))
    with pytest.raises(ValueError, match="cache_dir=.*is a file"):
        get_task(homework).datasets(config, "cpu")
    with pytest.raises(ValueError, match="is a file, not a folder.*--out"):
        get_task(homework).write_csv(["-"] * 3 if homework == "ctc" else [0, 1, 2], tmp_path / "file" / "s.csv")


def test_beam_validation_without_its_decoder_fails_before_the_first_epoch(corpora, tmp_path, monkeypatch):
    from phonemekit import beam_cpu

    monkeypatch.setattr(beam_cpu, "available", lambda: False)
    with pytest.raises(ImportError, match="beam_width=3 needs pyctcdecode"):
        run(small("ctc", corpora, tmp_path, beam_width=3))
    assert not (tmp_path / "last.pt").exists()  # not one epoch trained for nothing
