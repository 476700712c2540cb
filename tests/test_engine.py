"""The training engine as students use it: train longer, change a setting on resume, move a
checkpoint between machines, bring their own network, and get loud errors for nonsense."""

import errno
import multiprocessing
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace
from pathlib import Path

import numpy as np
import pytest
import torch

from phonemekit import checkpoint, distributed
from phonemekit.config import SCHEDULERS, Config
from phonemekit.data import AudioDataset, test_dataset
from phonemekit.submit import predict
from phonemekit.synthetic import make_learnable_corpus
from phonemekit.train import (
    evaluate, fit, load_checkpoint, load_optimizer_state, make_datasets, make_loaders, rate, resolve_amp,
    resolve_device,
)

REPO = Path(__file__).resolve().parents[1]
STEPS = 12 * 120 // 96  # training batches per epoch of the corpus below


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_learnable_corpus(tmp_path_factory.mktemp("corpus"), {"train-clean-100": 12, "dev-clean": 4},
                                 frames=120, n_features=6, n_classes=6, spread=2, seed=1)


def small(corpus, tmp_path, **kw):
    base = dict(root=str(corpus), context=1, hidden=[16], epochs=2, batch_size=96, lr=3e-3, scheduler="none",
                checkpoint_dir=str(tmp_path / "ckpt"), log_every=4, device="cpu")
    return Config(**{**base, **kw})


def run(config, **kw):
    return fit(config, progress=False, verbose=False, **kw)


# --------------------------------------------------------------------------------------------
# Train longer: resume with more epochs continues on the schedule of the new length


# onecycle warms up by itself: it takes no warm-up epochs
SCHEDULES = [(s, w) for s in SCHEDULERS for w in (0, 1) if not (s == "onecycle" and w)]


@pytest.mark.parametrize("scheduler, warmup", SCHEDULES)
def test_training_longer_follows_the_schedule_of_an_uninterrupted_run(scheduler, warmup, corpus, tmp_path):
    kw = dict(scheduler=scheduler, warmup_epochs=warmup, min_lr=1e-4, step_size=1, restart_epochs=2,
              plateau_patience=0, gamma=0.5)
    whole = run(small(corpus, tmp_path / "whole", epochs=4, **kw))
    short = small(corpus, tmp_path / "short", epochs=2, **kw)
    run(short)
    longer = run(short.replace(epochs=4), resume=True)
    assert list(longer.history.epoch) == [1, 2, 3, 4]
    assert longer.history.lr.iloc[2:].tolist() == pytest.approx(whole.history.lr.iloc[2:].tolist(), rel=1e-9)
    assert (longer.history.lr > 0).all()


def test_plateau_makes_the_same_cuts_from_the_same_history_after_resume(corpus, tmp_path):
    # a tiny lr and no BatchNorm: the accuracy stalls, so plateau cuts
    kw = dict(scheduler="plateau", plateau_patience=0, plateau_factor=0.5, lr=1e-8, norm="none")
    whole = run(small(corpus, tmp_path / "whole", epochs=4, **kw))
    short = small(corpus, tmp_path / "short", epochs=2, **kw)
    run(short)
    longer = run(short.replace(epochs=4), resume=True)
    assert longer.history.lr.tolist() == pytest.approx(whole.history.lr.tolist())
    assert longer.history.lr.iloc[-1] < longer.history.lr.iloc[0]  # it did cut


# --------------------------------------------------------------------------------------------
# A changed setting on resume is honoured (or refused), never ignored


def test_a_changed_lr_on_resume_is_the_lr_that_trains(corpus, tmp_path, capsys):
    config = small(corpus, tmp_path, epochs=2, lr=1e-3)
    run(config)
    result = fit(config.replace(epochs=3, lr=0.05), resume=True, progress=False)
    assert result.history.lr.tolist() == pytest.approx([1e-3, 1e-3, 0.05])
    assert "lr: 0.001 -> 0.05" in capsys.readouterr().out


def test_resuming_with_another_optimizer_starts_its_state_fresh_and_says_so(corpus, tmp_path, capsys):
    config = small(corpus, tmp_path, epochs=2, optimizer="adamw")
    run(config)
    result = fit(config.replace(epochs=3, optimizer="sgd", lr=0.05), resume=True, progress=False)
    assert list(result.history.epoch) == [1, 2, 3]
    assert "optimizer changed from adamw to sgd" in capsys.readouterr().out


def test_a_run_resumed_with_another_weight_decay_uses_the_new_one(corpus, tmp_path):
    config = small(corpus, tmp_path, epochs=1, weight_decay=0.0)
    run(config)
    result = run(config.replace(epochs=2, weight_decay=0.3), resume=True)
    ckpt = torch.load(result.checkpoint_dir / "last.pt", weights_only=True)
    assert ckpt["optimizer"]["param_groups"][0]["weight_decay"] == 0.3


def test_a_raised_patience_on_resume_lets_a_stopped_run_train_on(corpus, tmp_path):
    config = small(corpus, tmp_path, epochs=8, lr=0.0, norm="none", patience=1)  # nothing improves
    assert list(run(config).history.epoch) == [1, 2]
    assert list(run(config.replace(patience=3), resume=True).history.epoch) == [1, 2, 3, 4]


# --------------------------------------------------------------------------------------------
# Checkpoints across machines


def test_a_checkpoint_of_a_plain_adamw_resumes_into_fused_adamw_with_a_grad_scaler():
    """A CPU/Mac checkpoint (AdamW without fused) resumed on a GPU with fp16: the file's param
    groups must not replace this device's (fused=True with a GradScaler)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 4)
    plain = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(8, 6)).sum().backward()
    plain.step()
    saved = plain.state_dict()
    fused = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    load_optimizer_state(fused, saved, {"optimizer": "adamw"}, Config(optimizer="adamw"), verbose=False)
    assert fused.param_groups[0]["fused"] is True
    scaler = torch.amp.GradScaler("cpu", init_scale=1.0)
    with torch.autocast("cpu", dtype=torch.float16):
        loss = model(torch.randn(8, 6)).float().sum()
    scaler.scale(loss).backward()
    scaler.step(fused)  # raised "Expected grad_scale and found_inf to be None" with the file's groups
    scaler.update()
    assert fused.state[model.weight]["step"].item() == 2


def test_the_random_state_of_one_gpu_is_saved_and_a_many_gpu_file_resumes_on_one(monkeypatch):
    asked, restored = [], []

    def get_rng_state(device="cuda"):
        asked.append(torch.device(device))
        return torch.full((3,), 7, dtype=torch.uint8)

    monkeypatch.setattr(torch.cuda, "get_rng_state", get_rng_state)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device="cuda": restored.append((state, device)))
    gpu = torch.device("cuda", 1)
    state = checkpoint.rng_state(gpu)
    assert asked == [gpu]  # this run's GPU alone is read, not the current or every visible one
    assert torch.equal(state["cuda"], torch.full((3,), 7, dtype=torch.uint8))
    four_gpus = {**state, "cuda": [torch.full((3,), i, dtype=torch.uint8) for i in range(4)]}  # an older file
    checkpoint.set_rng_state(four_gpus, gpu)
    # one state reaches one device: the file's first GPU's, restored on the GPU this run uses
    assert len(restored) == 1
    assert torch.equal(restored[0][0], torch.zeros(3, dtype=torch.uint8)) and torch.device(restored[0][1]) == gpu


def test_validation_and_prediction_agree_on_every_frame_under_bf16_training(corpus, tmp_path):
    config = small(corpus, tmp_path, epochs=2, amp="bf16")
    result = run(config)
    model, _, ckpt = load_checkpoint(result.checkpoint_dir / "best.pt")
    dev = AudioDataset(corpus, "dev-clean", context=1)
    accuracy = (predict(model, dev) == dev.labels.long()).sum().item() / len(dev)
    assert accuracy == result.best_val_acc


def test_global_statistics_travel_in_the_checkpoint_to_the_test_set(corpus, tmp_path):
    config = small(corpus, tmp_path, epochs=1, normalize="global")
    run(config)
    _, _, ckpt = load_checkpoint(tmp_path / "ckpt" / "last.pt")
    train = AudioDataset(corpus, "train-clean-100", context=1, normalize="global")
    assert np.allclose(ckpt["stats"]["mean"], train.stats[0]) and np.allclose(ckpt["stats"]["std"], train.stats[1])
    other = make_learnable_corpus(tmp_path / "other", {"train-clean-100": 3, "test-clean": 2}, frames=50,
                                  n_features=6, n_classes=6, spread=9, seed=5)  # other training statistics
    test = test_dataset(config, other, stats=ckpt["stats"])
    raw = np.concatenate([np.load(f) for f in sorted((other / "test-clean" / "mfcc").glob("*.npy"))])
    expect = (raw - np.array(ckpt["stats"]["mean"])) / np.array(ckpt["stats"]["std"])
    assert np.allclose(test.features[1:-1].numpy(), expect, atol=1e-5)
    with pytest.raises(ValueError, match="stats"):
        test_dataset(config, other)


# --------------------------------------------------------------------------------------------
# Nonsense settings are refused by name


@pytest.mark.parametrize("field, value", [
    ("grad_clip", -1), ("min_lr", -1), ("gamma", -1), ("gamma", 0), ("step_size", 0), ("patience", 0),
    ("patience", -1), ("param_limit", 0), ("num_classes", 10), ("plateau_factor", 1.5), ("restart_epochs", 0),
    ("momentum", 1.5), ("weight_decay", -0.1), ("subset", 0), ("milestones", [0]), ("eval_batch_size", 0),
])
def test_a_nonsense_setting_is_a_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        Config(**{field: value})


def test_a_device_this_machine_lacks_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device='cuda'.*'auto' or 'cpu'"):
        resolve_device("cuda")


def test_bf16_on_a_gpu_that_only_emulates_it_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    with pytest.raises(ValueError, match="T4.*emulates bf16.*'fp16'"):
        resolve_amp("bf16", torch.device("cuda"))
    assert resolve_amp("auto", torch.device("cuda")) is torch.float16


def test_processes_started_without_local_rank_spread_over_the_gpus(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    ranks = []
    for r in range(4):
        monkeypatch.setenv("RANK", str(r))
        ranks.append(distributed.local_rank_of())
    assert ranks == [0, 1, 2, 3]


def test_the_epoch_line_never_says_0k_frames_per_second():
    assert rate(512, "frames") == "512 frames/s"
    assert rate(25_300, "frames") == "25,300 frames/s"
    assert rate(2.5e6, "frames") == "2.5M frames/s"


# --------------------------------------------------------------------------------------------
# Checkpoint safety


def test_a_kill_between_last_and_best_is_repaired_on_resume(corpus, tmp_path, monkeypatch):
    config = small(corpus, tmp_path, epochs=2)
    run(config.replace(epochs=1))
    copies = []
    monkeypatch.setattr(checkpoint, "copy", lambda src, dst: copies.append(dst))  # killed before the copy
    run(config, resume=True)
    monkeypatch.undo()
    last = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)
    best = torch.load(tmp_path / "ckpt" / "best.pt", weights_only=True)
    if last["best_epoch"] != 2:
        pytest.skip("epoch 2 did not improve on this corpus")
    assert copies and best["epoch"] == 1  # the state a kill leaves
    run(config.replace(epochs=2), resume=True)  # nothing left to train; resume repairs best.pt
    assert torch.load(tmp_path / "ckpt" / "best.pt", weights_only=True)["epoch"] == 2


def _hold_lock(folder, ready, release):
    with checkpoint.lock(Path(folder)):
        ready.set()
        release.wait(30)


def test_a_second_run_on_a_folder_in_use_is_refused_and_a_crashed_run_leaves_no_lock(corpus, tmp_path):
    config = small(corpus, tmp_path, epochs=1)
    (tmp_path / "ckpt").mkdir()
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(tmp_path / "ckpt"), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(RuntimeError, match="in use by another training run.*pid"):
            run(config)
    finally:
        holder.kill()  # a crash: no clean-up code runs
        holder.join()
    assert list(run(config).history.epoch) == [1]  # the operating system released the lock


def test_a_full_disk_names_the_file_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    good = checkpoint.save({"model": {}, "config": {}, "epoch": 1}, tmp_path / "last.pt")

    def full(obj, f):
        Path(f).write_bytes(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing "
                           "file data/0: file write failed")

    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda p: SimpleNamespace(free=1024))
    with pytest.raises(OSError, match=r"disk full while writing .*last\.pt; the previous checkpoint is intact") as e:
        checkpoint.save({"epoch": 2}, tmp_path / "last.pt")
    assert e.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert torch.load(good, weights_only=True)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


@pytest.mark.parametrize("content, words", [
    (b"", "empty file"), (b"PK\x03\x04 broken", "truncated or not a PyTorch checkpoint"),
    (b"hello, not a checkpoint", "truncated or not a PyTorch checkpoint"),
])
def test_a_damaged_checkpoint_is_named_with_a_fix_never_weights_only_false(tmp_path, content, words):
    bad = tmp_path / "best.pt"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match=words) as e:
        load_checkpoint(bad)
    assert str(bad) in str(e.value) and "weights_only" not in str(e.value)


def test_a_truncated_last_pt_is_named_on_resume(corpus, tmp_path):
    config = small(corpus, tmp_path, epochs=1)
    run(config)
    last = tmp_path / "ckpt" / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"last\.pt cannot be read: truncated"):
        run(config.replace(epochs=2), resume=True)


def test_a_pickled_object_is_never_loaded_and_the_advice_is_not_weights_only_false(tmp_path):

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned > " + str(tmp_path / "owned"),))

    torch.save({"model": Evil(), "config": {}}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="will not load it") as e:
        load_checkpoint(tmp_path / "evil.pt")
    assert "weights_only=False" not in str(e.value) and not (tmp_path / "owned").exists()


# --------------------------------------------------------------------------------------------
# Your own network in the kit's loop


class Windows(torch.nn.Module):
    """Takes (B, 2C+1, F) windows, as the kit gives them."""

    def __init__(self, window=3, features=6, classes=40):
        super().__init__()
        self.conv = torch.nn.Conv1d(features, 16, window)
        self.head = torch.nn.Linear(16, classes)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x.transpose(1, 2))).mean(2))


def test_your_own_network_trains_checkpoints_and_resumes_in_the_kits_loop(corpus, tmp_path):
    config = small(corpus, tmp_path, epochs=3, lr=1e-2)
    torch.manual_seed(0)
    first = run(config.replace(epochs=1), model=Windows())
    assert first.history.val_acc.iloc[0] > 0
    result = run(config, model=Windows(), resume=True)
    assert list(result.history.epoch) == [1, 2, 3] and result.history.val_acc.iloc[-1] > 0.5  # 6 classes
    with pytest.raises(ValueError, match="your own network.*model=Network"):
        load_checkpoint(tmp_path / "ckpt" / "best.pt")
    model, _, _ = load_checkpoint(tmp_path / "ckpt" / "best.pt", model=Windows())
    dev = AudioDataset(corpus, "dev-clean", context=1)
    assert (predict(model, dev) == dev.labels.long()).sum().item() / len(dev) == result.best_val_acc


def test_a_network_on_flattened_windows_is_fed_flat_batches_everywhere(corpus, tmp_path):
    flat = torch.nn.Sequential(torch.nn.Linear(18, 32), torch.nn.ReLU(), torch.nn.Linear(32, 40))
    result = run(small(corpus, tmp_path, epochs=3, lr=1e-2), model=flat)
    assert result.history.val_acc.iloc[-1] > 0.5
    net = torch.nn.Sequential(torch.nn.Linear(18, 32), torch.nn.ReLU(), torch.nn.Linear(32, 40))
    model, _, _ = load_checkpoint(tmp_path / "ckpt" / "best.pt", model=net)
    dev = AudioDataset(corpus, "dev-clean", context=1)
    assert (predict(model, dev) == dev.labels.long()).sum().item() / len(dev) == result.best_val_acc


def test_your_own_network_is_held_to_the_parameter_budget(corpus, tmp_path):
    big = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(18, 5000), torch.nn.Linear(5000, 40))
    with pytest.raises(ValueError, match="over the budget of 1,000"):
        run(small(corpus, tmp_path, param_limit=1000), model=big)


def test_a_network_with_the_wrong_input_size_is_told_what_to_take(corpus, tmp_path):
    wrong = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(99, 40))
    with pytest.raises(ValueError, match="first layer must take 18 inputs"):
        run(small(corpus, tmp_path), model=wrong)


# --------------------------------------------------------------------------------------------
# What students add: warm restarts, class weights, wandb extras, quiet logs


def test_cosine_with_warm_restarts_returns_to_the_full_lr_at_each_restart(corpus, tmp_path):
    result = run(small(corpus, tmp_path, epochs=6, scheduler="cosine-restarts", restart_epochs=2, lr=4e-3,
                       min_lr=0.0))
    from phonemekit.schedule import lr_at

    config = result.config
    starts = [lr_at(config, e, 0, STEPS) for e in (0, 2, 4)]
    assert starts == pytest.approx([4e-3] * 3)
    ends = result.history.lr.tolist()
    assert ends[1] < 1e-4 and ends[3] < 1e-4 and ends[0] > ends[1]  # down to the floor within each cycle


def test_class_weights_up_weight_the_rare_classes_in_the_training_loss(corpus, tmp_path):
    from phonemekit.train import class_weights

    train, _ = make_datasets(small(corpus, tmp_path))
    w = class_weights(Config(class_weights="balanced"), train)
    counts = torch.bincount(train.labels.long(), minlength=40)
    seen = counts > 0
    assert (w[seen] * counts[seen]).std() / (w[seen] * counts[seen]).mean() < 1e-5  # each class weighs the same
    assert (w[seen] * counts[seen]).sum() == pytest.approx(counts.sum().item(), rel=1e-5)  # average frame: 1


class FixedLogits(torch.nn.Module):
    """The same logits for every frame, favouring class 0: each frame's loss depends on its class alone."""

    def __init__(self):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.linspace(4.0, -4.0, 40))

    def forward(self, x):
        return self.logits.expand(x.shape[0], 40)


@pytest.mark.parametrize("kind, power", [(None, 0.0), ("sqrt", 0.5), ("balanced", 1.0)])
def test_class_weights_reach_the_training_loss(kind, power, corpus, tmp_path):
    # one batch holds every training frame, so the epoch's train loss is the weighted mean
    # sum_c w_c n_c l_c / sum_c w_c n_c with w_c = n_c ** -power
    config = small(corpus, tmp_path, epochs=1, batch_size=4096, lr=1e-12, class_weights=kind)
    train, _ = make_datasets(config)
    n = torch.bincount(train.labels.long(), minlength=40).double()
    per_class = -torch.log_softmax(FixedLogits().logits.detach().double(), 0)
    w = torch.where(n > 0, n.clamp(min=1) ** -power, torch.zeros_like(n))
    expected = (w * n * per_class).sum() / (w * n).sum()
    result = run(config, model=FixedLogits())
    assert result.history.train_loss.iloc[0] == pytest.approx(expected.item(), rel=1e-5)


class FakeWandb:
    """What the kit asks of wandb, recorded (the real package writes its records asynchronously)."""

    def __init__(self):
        self.calls, self.artifacts = [], []
        test = self

        class Artifact:
            def __init__(self, name, type, metadata=None):
                self.name, self.type, self.metadata, self.files = name, type, metadata, []
                test.artifacts.append(self)

            def add_file(self, path):
                self.files.append(Path(path).name)

        class Run:
            id, summary = "run1", {}

            def watch(self, model, log, log_freq):
                test.calls.append(("watch", type(model).__name__, log))

            def log(self, row, step):
                test.calls.append(("log", step))

            def log_artifact(self, artifact):
                test.calls.append(("log_artifact", artifact.name))

            def finish(self):
                test.calls.append(("finish",))

        self.Artifact = Artifact
        self.init = lambda **kw: (self.calls.append(("init", kw["mode"])), Run())[1]


def test_wandb_watches_the_model_and_uploads_best_pt_and_the_architecture(corpus, tmp_path, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    run(small(corpus, tmp_path, epochs=2, wandb_mode="offline", wandb_watch="all", wandb_artifacts=True,
              wandb_run_name="arch"))
    assert fake.calls[:2] == [("init", "offline"), ("watch", "MLP", "all")]
    assert ("log", 1) in fake.calls and ("log", 2) in fake.calls
    assert fake.calls[-2:] == [("log_artifact", "arch-model"), ("finish",)]
    assert fake.artifacts[0].files == ["best.pt", "model.txt"] and fake.artifacts[0].type == "model"
    assert (tmp_path / "ckpt" / "model.txt").read_text().startswith("MLP(")


def test_a_run_logged_to_a_file_has_no_progress_bar_redraws(corpus, tmp_path):
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(REPO / 'src')!r})
        from phonemekit.config import Config
        from phonemekit.train import fit
        fit(Config(root={str(corpus)!r}, context=1, hidden=[16], epochs=2, batch_size=96, scheduler="none",
                   checkpoint_dir={str(tmp_path / 'ckpt')!r}, log_every=1, device="cpu"))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PHONEMEKIT_PROGRESS"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    log = out.stdout + out.stderr
    assert "\r" not in log and log.count("epoch   ") == 2, log  # one line per epoch, nothing else


def test_the_gpu_check_says_it_needs_a_gpu_on_a_machine_without_one():
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py")], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert out.returncode == 2 and "no CUDA GPU here" in out.stdout, out.stdout + out.stderr


# --------------------------------------------------------------------------------------------
# Data on the GPU: what fits stays there, what does not streams, and streams lean


def test_frames_that_would_crowd_the_gpu_stream_from_host_memory_instead(monkeypatch, capsys):
    from phonemekit.data import fits_on_device

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (15 * 2**30, 16 * 2**30))
    gpu = torch.device("cuda")
    assert fits_on_device(gpu, 2 * 2**30)  # train-clean-100 in fp16 on a T4
    assert not fits_on_device(gpu, 14 * 2**30)  # would leave no room for the model
    assert "stream from pinned host memory" in capsys.readouterr().out
    assert not fits_on_device(torch.device("cpu"), 1)


def test_streamed_batches_cross_to_the_gpu_in_the_storage_dtype(corpus, monkeypatch):
    from phonemekit.data import FrameLoader

    ds = AudioDataset(corpus, "dev-clean", context=1, dtype=torch.float16)
    pinned, crossed = [], []
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: pinned.append(self.dtype) or self)
    to = torch.Tensor.to

    def to_device(self, *args, **kw):  # no CUDA in this build: record what would cross, keep it here
        target = args[0] if args else kw.get("device")
        if isinstance(target, (str, torch.device)) and torch.device(target).type == "cuda":
            crossed.append(self.dtype)
            return self
        return to(self, *args, **kw)

    monkeypatch.setattr(torch.Tensor, "to", to_device)
    loader = FrameLoader(ds, 64, shuffle=False, device="cuda", resident=False)
    batches = list(loader)
    # every batch crosses as fp16 features and uint8 labels (half and an eighth of the bytes),
    # from pinned memory, and arrives cast to what the model takes
    assert crossed == [torch.float16, torch.uint8] * len(batches) and pinned == crossed
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    assert x.dtype == ds.out_dtype and y.dtype == torch.int64
    assert torch.equal(x, ds[torch.arange(len(ds))][0]) and torch.equal(y, ds.labels.long())
