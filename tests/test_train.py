"""phonemekit.train: what a student relies on when a run trains, stops, resumes and logs."""

import copy
import json
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from phonemekit.synthetic import make_learnable_corpus
from phonemekit.config import RECIPE_DIR, SCHEDULERS, recipes
from phonemekit.schedule import lr_at
from phonemekit.train import (
    OPTIMIZERS, Config, NonFiniteLossError, apply_overrides, evaluate, fit, load_checkpoint, load_recipe,
    make_datasets, make_loaders, make_optimizer, resolve_amp, wandb_callbacks,
)

REPO = Path(__file__).resolve().parents[1]
K = 8  # classes used by the synthetic task: chance is 1/8


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A learnable task in the Kaggle layout: each frame's label decides its features' mean."""
    return make_learnable_corpus(tmp_path_factory.mktemp("corpus"), {"train-clean-100": 16, "dev-clean": 4},
                                 frames=200, n_features=8, n_classes=K, spread=2, seed=0)


def small(corpus, tmp_path, **kw):
    base = dict(root=str(corpus), context=2, hidden=[32], epochs=3, batch_size=128, lr=3e-3,
                scheduler="none", checkpoint_dir=str(tmp_path / "ckpt"), log_every=5, device="cpu")
    return Config(**{**base, **kw})


def run(config, **kw):
    return fit(config, progress=False, verbose=False, **kw)


def metrics(history):
    return history.drop(columns=["epoch_time", "frames_per_s"])


# --------------------------------------------------------------------------------------------
# Training


def test_fit_learns_the_task_and_torch_gives_no_warning_on_cpu(corpus, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run(small(corpus, tmp_path, epochs=4, scheduler="cosine", dropout=0.1, grad_clip=1.0))
    torch_warnings = [w for w in caught if "torch" in w.filename]
    assert not torch_warnings, [str(w.message) for w in torch_warnings]
    h = result.history
    assert list(h.columns) == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr",
                               "epoch_time", "frames_per_s"]
    assert list(h.epoch) == [1, 2, 3, 4]
    assert h.train_loss.iloc[-1] < 0.5 * h.train_loss.iloc[0]
    assert h.val_acc.iloc[-1] > 0.7  # chance is 1/8
    assert result.best_val_acc == h.val_acc.max()
    assert (tmp_path / "ckpt" / "last.pt").is_file() and (tmp_path / "ckpt" / "best.pt").is_file()


def test_evaluate_returns_one_prediction_per_frame_in_dataset_order(corpus, tmp_path):
    config = small(corpus, tmp_path, epochs=1)
    result = run(config)
    train_ds, val_ds = make_datasets(config)
    _, val_loader = make_loaders(config, train_ds, val_ds, torch.device("cpu"))
    loss, acc, preds = evaluate(result.model, val_loader, return_predictions=True)
    assert preds.shape == (len(val_ds),)
    assert acc == pytest.approx((preds == val_ds.labels.long()).float().mean().item())
    assert loss == pytest.approx(result.history.val_loss.iloc[-1])


def test_bf16_autocast_trains_on_cpu_when_asked(corpus, tmp_path):
    result = fit(small(corpus, tmp_path, epochs=2, amp="bf16"), progress=True, verbose=True)
    assert result.history.val_acc.iloc[-1] > 0.3


def test_amp_auto_is_off_on_cpu_and_fp16_needs_a_gpu():
    cpu = torch.device("cpu")
    assert resolve_amp("auto", cpu) is None
    assert resolve_amp("off", cpu) is None
    assert resolve_amp("bf16", cpu) is torch.bfloat16
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        resolve_amp("fp16", cpu)


def test_a_callback_sees_each_epochs_metrics_and_can_stop_the_run(corpus, tmp_path):
    seen = []

    def on_epoch_end(state):
        seen.append(dict(state.metrics))
        state.stop = state.epoch == 2

    result = run(small(corpus, tmp_path, epochs=5), callbacks={"on_epoch_end": on_epoch_end})
    assert [m["epoch"] for m in seen] == [1, 2]
    assert seen[-1]["val_acc"] == result.history.val_acc.iloc[-1]
    assert result.stopped_early


def test_augment_changes_only_training_batches(corpus, tmp_path):
    shapes = []

    def augment(x, y):
        shapes.append(x.shape)
        return x * 0, y  # blind the model: it can only learn the class prior

    result = run(small(corpus, tmp_path, epochs=2), augment=augment)
    assert len(shapes) == 2 * (16 * 200 // 128)  # every training batch, and nothing else
    assert result.history.train_acc.max() < 0.3


# --------------------------------------------------------------------------------------------
# Checkpoints and resuming


def test_resume_after_an_interruption_reproduces_the_uninterrupted_history(corpus, tmp_path):
    # dropout draws random masks, the warm-up spans the interruption, cosine follows it
    kw = dict(epochs=4, dropout=0.3, scheduler="cosine", warmup_epochs=2, label_smoothing=0.1)
    whole = run(small(corpus, tmp_path / "a", **kw))

    def interrupt(state):
        if state.epoch == 1:
            raise KeyboardInterrupt  # Ctrl-C (or a Colab disconnect) right after epoch 1

    config = small(corpus, tmp_path / "b", **kw)
    with pytest.raises(KeyboardInterrupt):
        run(config, callbacks={"on_epoch_end": interrupt})
    assert torch.load(tmp_path / "b" / "ckpt" / "last.pt", weights_only=True)["epoch"] == 1
    resumed = run(config, resume=True)
    assert list(resumed.history.epoch) == [1, 2, 3, 4]
    # the same numbers (only the timings differ)
    assert metrics(resumed.history).equals(metrics(whole.history)), (resumed.history, whole.history)
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


def test_checkpoint_loads_with_weights_only_and_rebuilds_the_model(corpus, tmp_path):
    result = run(small(corpus, tmp_path, epochs=2, scheduler="plateau"))
    for name in ("last.pt", "best.pt"):
        ckpt = torch.load(tmp_path / "ckpt" / name, weights_only=True)
        for key in ("model", "optimizer", "scaler", "epoch", "best", "metric", "history", "config", "rng"):
            assert key in ckpt
        assert ckpt["history"]["epoch"] == list(range(1, ckpt["epoch"] + 1))
        assert Config.from_dict(ckpt["config"]) == result.config
    model, config, ckpt = load_checkpoint(tmp_path / "ckpt" / "last.pt")
    assert config == result.config and not model.training
    x = torch.randn(16, 5, 8)
    result.model.eval()
    assert torch.equal(model(x), result.model(x))
    assert not list(tmp_path.glob("ckpt/*.tmp")) and not list(tmp_path.glob("ckpt/.*.tmp"))  # no temp files left


def test_resume_without_a_checkpoint_starts_fresh_and_says_so(corpus, tmp_path, capsys):
    result = run(small(corpus, tmp_path, epochs=1), resume=True)
    assert "starting a fresh run" in capsys.readouterr().out
    assert len(result.history) == 1
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run(small(corpus, tmp_path, epochs=1), resume=tmp_path / "missing.pt")


def test_a_finished_run_resumes_to_more_epochs(corpus, tmp_path):
    run(small(corpus, tmp_path, epochs=2))
    result = run(small(corpus, tmp_path, epochs=3), resume=True)
    assert list(result.history.epoch) == [1, 2, 3]


# --------------------------------------------------------------------------------------------
# Failing loudly


def test_nan_loss_stops_the_run_naming_epoch_step_and_what_to_try(corpus, tmp_path):
    calls = {"n": 0}
    steps = 16 * 200 // 128

    def poison(x, y):
        calls["n"] += 1
        return (x * float("nan"), y) if calls["n"] == steps + 3 else (x, y)  # epoch 2, step 3

    with pytest.raises(NonFiniteLossError) as err:
        run(small(corpus, tmp_path, epochs=3), augment=poison)
    msg = str(err.value)
    assert "epoch 2" in msg and "step 5" in msg  # found at the first check after step 3
    assert "lower lr" in msg and "amp='off'" in msg and "grad_clip" in msg
    assert torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)["epoch"] == 1


def test_a_model_over_the_parameter_limit_is_refused(corpus, tmp_path):
    with pytest.raises(ValueError, match="1,000"):
        run(small(corpus, tmp_path, hidden=[64], param_limit=1000, budget=None))


# --------------------------------------------------------------------------------------------
# Schedules and optimisers


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_steps_and_its_state_loads_with_weights_only(optimizer, tmp_path):
    config = Config(optimizer=optimizer, lr=0.1)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    start = [p.detach().clone() for p in model.parameters()]
    opt = make_optimizer(config, model)
    kind = {"sgd": "SGD", "nesterov": "SGD", "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW"}[optimizer]
    assert type(opt).__name__ == kind and opt.defaults.get("nesterov", False) == (optimizer == "nesterov")
    x = torch.randn(2, 4)

    def step(m, o):
        o.zero_grad()
        (m(x) ** 2).sum().backward()
        o.step()

    for _ in range(3):
        step(model, opt)
    assert all(not torch.equal(a, b) for a, b in zip(start, model.parameters()))  # it stepped
    torch.save({"optimizer": opt.state_dict()}, tmp_path / "s.pt")
    saved = torch.load(tmp_path / "s.pt", weights_only=True)["optimizer"]
    # a fresh optimizer given the saved state takes the same next step as the original one
    twin = copy.deepcopy(model)
    twin_opt = make_optimizer(config, twin)
    twin_opt.load_state_dict(saved)
    step(model, opt)
    step(twin, twin_opt)
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("scheduler, warmup",
                         [(s, w) for s in SCHEDULERS for w in (0, 1) if not (s == "onecycle" and w)])
def test_every_schedule_gives_a_positive_lr_no_higher_than_asked(scheduler, warmup):
    # (onecycle warms up by itself: it takes no warm-up epochs)
    config = Config(scheduler=scheduler, epochs=6, lr=0.1, warmup_epochs=warmup, restart_epochs=2)
    history = [{"epoch": e, "val_acc": 0.5} for e in range(1, 7)]
    lrs = [lr_at(config, e, s, 5, history[:e]) for e in range(6) for s in range(5)]
    assert all(0 < lr <= 0.1 + 1e-12 for lr in lrs), lrs


def test_warmup_raises_the_lr_linearly_per_batch():
    config = Config(lr=0.8, warmup_epochs=1, epochs=3, scheduler="none")
    assert [lr_at(config, 0, s, 4) for s in range(4)] + [lr_at(config, 1, 0, 4)] == pytest.approx(
        [0.2, 0.4, 0.6, 0.8, 0.8])


def test_warmup_epochs_then_the_scheduler_takes_over(corpus, tmp_path):
    result = run(small(corpus, tmp_path, epochs=4, warmup_epochs=2, scheduler="step", step_size=1, gamma=0.5))
    # lr of each epoch's last batch: half-way, full, then the step schedule's cuts
    assert list(result.history.lr) == pytest.approx([1.5e-3, 3e-3, 3e-3, 1.5e-3])


def test_plateau_watches_accuracy_in_max_mode():
    config = Config(scheduler="plateau", plateau_patience=1, plateau_factor=0.5, lr=1.0)
    rising = [{"epoch": e, "val_acc": a} for e, a in enumerate((0.5, 0.6, 0.7, 0.8), 1)]
    assert lr_at(config, 4, 0, 10, rising) == 1.0  # rising accuracy: keep the lr
    stalled = rising + [{"epoch": 5, "val_acc": 0.8}, {"epoch": 6, "val_acc": 0.8}]
    assert lr_at(config, 6, 0, 10, stalled) == 0.5  # stalled: cut it


def test_early_stopping_ends_the_run_after_patience_epochs_without_progress(corpus, tmp_path):
    # lr=0 and no BatchNorm: the model never changes, so val accuracy never improves
    config = small(corpus, tmp_path, epochs=10, lr=0.0, norm="none", patience=2)
    result = run(config)
    assert list(result.history.epoch) == [1, 2, 3]
    assert result.stopped_early and result.best_epoch == 1
    again = run(config, resume=True)  # a stopped run stays stopped
    assert len(again.history) == 3


# --------------------------------------------------------------------------------------------
# Config


def test_config_round_trips_through_dict_yaml_and_json(tmp_path):
    config = Config(hidden=[1024, 512], dropout=[0.1, 0.2], lr=3e-4, amp="off", scheduler="plateau",
                    milestones=[3, 6], wandb_mode=None, root=str(tmp_path))
    assert Config.from_dict(config.to_dict()) == config
    json.dumps(config.to_dict())  # plain types only
    for name in ("c.yaml", "c.json"):
        assert Config.load(config.save(tmp_path / name)) == config
    with pytest.raises(ValueError, match=r"\.yaml"):
        config.save(tmp_path / "c.txt")


def test_a_hand_written_yaml_file_gets_typed_values(tmp_path):
    (tmp_path / "r.yaml").write_text("lr: 1e-3\nbudget: 2e7\namp: off\nhidden: [512, 256]\nepochs: '7'\n")
    config = Config.load(tmp_path / "r.yaml")
    assert (config.lr, config.budget, config.amp, config.hidden, config.epochs) == (1e-3, 20_000_000, "off", [512, 256], 7)


def test_an_unknown_config_key_is_named_with_a_suggestion(tmp_path):
    with pytest.raises(ValueError, match=r"'batchsize' \(did you mean 'batch_size'"):
        Config.from_dict({"batchsize": 64})
    with pytest.raises(ValueError, match=r"'lr_rate' \(did you mean 'lr'\?\)"):  # the README's example
        Config.from_dict({"lr_rate": 1e-3})
    (tmp_path / "bad.yaml").write_text("contxt: 20\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*'contxt'.*'context'"):
        Config.load(tmp_path / "bad.yaml")


def test_bad_values_are_rejected_with_the_choices():
    with pytest.raises(ValueError, match="adamw"):
        Config(optimizer="adamx")
    with pytest.raises(ValueError, match="'lr' expects float"):
        Config(lr="fast")
    with pytest.raises(ValueError, match="warm"):
        Config(scheduler="onecycle", warmup_epochs=1)


def test_command_line_overrides_are_typed():
    config = apply_overrides(Config(), ["lr=1e-3", "hidden=[1024,512]", "amp=off", "wandb_mode=null",
                                        "epochs=3", "dropout=0.2", "compile=true", "grad_clip=none"])
    assert (config.lr, config.hidden, config.amp, config.wandb_mode) == (1e-3, [1024, 512], "off", None)
    assert (config.epochs, config.dropout, config.compile, config.grad_clip) == (3, 0.2, True, None)
    assert apply_overrides(config, ["hidden=1024,256"]).hidden == [1024, 256]
    assert apply_overrides(config, ["dropout=alternate:0.3"]).dropout == "alternate:0.3"
    with pytest.raises(ValueError, match="'batch_size'"):
        apply_overrides(config, ["batch-sise=64"])
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides(config, ["lr"])


def test_every_recipe_is_one_yaml_file_that_loads():
    files = {p.stem: p for p in RECIPE_DIR.glob("*.yaml")}
    assert set(files) == set(recipes()) >= {"baseline", "strong", "smoke", "cpu-demo"}
    for name in files:
        assert load_recipe(name) == Config.load(files[name]) == Config.from_dict(yaml.safe_load(files[name].read_text()))
    baseline = load_recipe("baseline")
    assert (baseline.hidden, baseline.context) == ([512], 20)
    assert load_recipe("strong", epochs=2).epochs == 2
    with pytest.raises(ValueError, match="strong"):
        load_recipe("strongest")


# --------------------------------------------------------------------------------------------
# wandb


def test_wandb_is_off_by_default_and_not_imported(monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert wandb_callbacks(Config()) == []
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_callbacks(Config(wandb_mode=None)) == []


def test_wandb_online_without_a_key_says_where_to_put_one(monkeypatch, tmp_path):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_MODE", "online")
    with pytest.raises(RuntimeError, match="WANDB_API_KEY.*wandb login"):
        wandb_callbacks(Config(wandb_mode=None))  # None: the mode comes from $WANDB_MODE


def test_wandb_offline_logs_the_run_locally(corpus, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    run(small(corpus, tmp_path, epochs=1, wandb_mode="offline", wandb_project="test"))
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))


def test_an_interrupt_mid_epoch_keeps_the_last_complete_epoch(corpus, tmp_path):
    calls = {"n": 0}

    def ctrl_c(x, y):
        calls["n"] += 1
        if calls["n"] == 16 * 200 // 128 + 4:  # during epoch 2
            raise KeyboardInterrupt
        return x, y

    config = small(corpus, tmp_path, epochs=3)
    with pytest.raises(KeyboardInterrupt):
        run(config, augment=ctrl_c)
    assert torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)["epoch"] == 1
    assert list(run(config, resume=True).history.epoch) == [1, 2, 3]


def test_override_none_keeps_the_word_none_for_fields_that_take_it_as_a_choice():
    c = apply_overrides(Config(), ["normalize=none", "scheduler=none", "wandb_mode=none"])
    assert c.normalize == "none" and c.scheduler == "none"
    assert c.wandb_mode is None  # a field that accepts None gets None
