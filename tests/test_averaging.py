"""phonemekit.averaging: the last k epochs' mean, EMA and SWA, each one switch and one history column."""

import math

import pytest
import torch
from torch.optim.swa_utils import update_bn

from phonemekit.averaging import EMA, average_checkpoints, average_states
from phonemekit.synthetic import make_learnable_corpus
from phonemekit.train import Config, evaluate, fit, load_checkpoint, make_datasets, make_loaders

K = 8


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A learnable task in the Kaggle layout: each label shifts its frames' mean."""
    return make_learnable_corpus(tmp_path_factory.mktemp("corpus"), {"train-clean-100": 8, "dev-clean": 2},
                                 frames=150, n_features=8, n_classes=K, spread=1.5, seed=1, first_speaker=200)


def small(corpus, tmp_path, **kw):
    base = dict(root=str(corpus), context=2, hidden=[32, 32], epochs=4, batch_size=100, lr=3e-3, scheduler="none",
                checkpoint_dir=str(tmp_path / "ckpt"), log_every=5, device="cpu")
    return Config(**{**base, **kw})


def run(config, **kw):
    return fit(config, progress=False, verbose=False, **kw)


def same_weights(a: dict, b: dict, **tol) -> bool:
    return a.keys() == b.keys() and all(
        torch.allclose(a[k].double(), b[k].double(), **tol) if a[k].is_floating_point() else torch.equal(a[k], b[k])
        for k in a)


# --------------------------------------------------------------------------------------------
# The pieces


def test_average_states_averages_weights_and_batchnorm_statistics_and_keeps_the_last_counter():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(7)}
    out = average_states([a, b])
    assert torch.equal(out["w"], torch.tensor([2.0, 4.0])) and out["n"].item() == 7
    with pytest.raises(ValueError):
        average_states([])


def test_ema_moves_the_averaged_weights_a_fraction_toward_the_model_each_step():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = EMA(model, decay=0.75)
    before = {k: v.clone() for k, v in ema.model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        model[1].running_mean.fill_(4.0)
        model[1].num_batches_tracked.fill_(5)
    ema.update()
    after = ema.model.state_dict()
    for name, p in model.state_dict().items():
        if p.is_floating_point():
            assert torch.allclose(after[name], 0.75 * before[name] + 0.25 * p)
        else:
            assert torch.equal(after[name], p)
    assert not any(p.requires_grad for p in ema.model.parameters())


def test_average_checkpoints_gives_the_mean_of_the_weights_and_writes_a_loadable_checkpoint(corpus, tmp_path):
    result = run(small(corpus, tmp_path, average_last=3))
    ckpt_dir = tmp_path / "ckpt"
    # only the last 3 epochs' weights are kept
    assert sorted(p.name for p in ckpt_dir.glob("epoch-*.pt")) == ["epoch-002.pt", "epoch-003.pt", "epoch-004.pt"]
    paths = sorted(ckpt_dir.glob("epoch-*.pt"))
    model = average_checkpoints(paths, out=tmp_path / "mean.pt")
    states = [torch.load(p, weights_only=True)["model"] for p in paths]
    for name, p in model.state_dict().items():
        if p.is_floating_point():
            assert torch.allclose(p, sum(s[name] for s in states) / 3, atol=1e-6)
    loaded, config, ckpt = load_checkpoint(tmp_path / "mean.pt")
    assert same_weights(loaded.state_dict(), model.state_dict())
    assert ckpt["epoch"] == 4 and config.hidden == [32, 32]
    # the average the run computed after its last epoch is the same thing
    assert same_weights(result.averaged["avg"].state_dict(), model.state_dict(), atol=1e-6)


def test_average_checkpoints_refuses_different_architectures_naming_the_file(corpus, tmp_path):
    run(small(corpus, tmp_path / "a", epochs=1))
    run(small(corpus, tmp_path / "b", epochs=1, hidden=[16]))
    b = tmp_path / "b" / "ckpt" / "last.pt"
    with pytest.raises(ValueError, match="b/ckpt/last.pt holds a different model"):
        average_checkpoints([tmp_path / "a" / "ckpt" / "last.pt", b])
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        average_checkpoints([tmp_path / "missing.pt"])


@pytest.mark.parametrize("field, value", [("ema_decay", 1.0), ("average_last", -1), ("swa_start", 9),
                                          ("swa_lr", 0.01)])
def test_bad_averaging_settings_are_refused_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        Config(epochs=5, **{field: value})


# --------------------------------------------------------------------------------------------
# In fit


def test_each_switch_adds_its_column_and_saves_its_best_model_loadable_for_prediction(corpus, tmp_path):
    config = small(corpus, tmp_path, average_last=2, ema_decay=0.9, swa_start=3, dropout=0.0)
    result = run(config)
    h = result.history
    assert list(h.columns[-3:]) == ["val_acc_avg", "val_acc_ema", "val_acc_swa"]
    assert h.val_acc_avg.notna().all() and h.val_acc_ema.notna().all()
    assert h.val_acc_swa.isna().tolist() == [True, True, False, False]  # SWA from epoch 3 on
    assert h.val_acc_ema.iloc[-1] > 0.4  # learns (chance is 1/8)
    assert set(result.averaged) == {"avg", "ema", "swa"}

    train_ds, val_ds = make_datasets(config, "cpu")
    _, val_loader = make_loaders(config, train_ds, val_ds, torch.device("cpu"))
    for kind in ("avg", "ema", "swa"):
        model, _, ckpt = load_checkpoint(tmp_path / "ckpt" / f"{kind}.pt")
        column = h[f"val_acc_{kind}"]
        assert ckpt["epoch"] == int(h.epoch[column.idxmax()])  # saved at its best epoch
        assert evaluate(model, val_loader)[1] == pytest.approx(column.max())
    # the last k epochs' mean, after the last epoch, is what FitResult.averaged holds
    last = [torch.load(tmp_path / "ckpt" / f"epoch-00{e}.pt", weights_only=True)["model"] for e in (3, 4)]
    assert same_weights(result.averaged["avg"].state_dict(), average_states(last), atol=1e-6)


def test_swa_averages_the_epochs_from_swa_start_and_recomputes_batchnorm_over_the_training_frames(corpus, tmp_path):
    config = small(corpus, tmp_path, swa_start=2, average_last=3, norm="before", dropout=0.0)
    result = run(config)
    swa, avg = result.averaged["swa"], result.averaged["avg"]
    # SWA over epochs 2..4 and the mean of the last 3 epochs are the same weights...
    for (name, p), q in zip(swa.named_parameters(), avg.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name
    # ...but SWA's BatchNorm statistics were measured anew with those weights on the training data
    train_ds, val_ds = make_datasets(config, "cpu")
    loader, _ = make_loaders(config, train_ds, val_ds, torch.device("cpu"))
    fresh = load_checkpoint(tmp_path / "ckpt" / "swa.pt")[0]
    update_bn(loader, fresh)
    # the first BatchNorm sees the same inputs in any batch order: its mean is the training frames' mean
    first = next(n for n, _ in fresh.named_buffers() if n.endswith("running_mean"))
    recomputed, in_swa, in_avg = (dict(m.named_buffers())[first] for m in (fresh, swa, avg))
    assert torch.allclose(recomputed, in_swa, atol=1e-5)
    assert not torch.allclose(in_avg, in_swa, atol=1e-3)  # not simply the averaged statistics


def test_swa_lr_takes_the_learning_rate_to_the_constant_asked_for(corpus, tmp_path):
    result = run(small(corpus, tmp_path, epochs=5, lr=4e-3, scheduler="cosine", swa_start=2, swa_lr=1e-3))
    lr = result.history.lr.tolist()
    assert 3e-3 < lr[0] < 4e-3  # the cosine decay of epoch 1, before SWA
    assert lr[-1] == pytest.approx(1e-3) and lr[-2] == pytest.approx(1e-3)


def test_resume_with_ema_swa_and_averaging_reproduces_the_uninterrupted_run(corpus, tmp_path):
    kw = dict(epochs=4, dropout=0.2, ema_decay=0.9, swa_start=2, swa_lr=1e-3, average_last=2,
              scheduler="cosine", freq_masks=1, noise_std=0.1)
    whole = run(small(corpus, tmp_path / "a", **kw))

    def interrupt(state):
        if state.epoch == 2:
            raise KeyboardInterrupt

    config = small(corpus, tmp_path / "b", **kw)
    with pytest.raises(KeyboardInterrupt):
        run(config, callbacks={"on_epoch_end": interrupt})
    resumed = run(config, resume=True)
    cols = [c for c in whole.history.columns if c not in ("epoch_time", "frames_per_s")]
    assert resumed.history[cols].equals(whole.history[cols]), (resumed.history[cols], whole.history[cols])
    for kind in ("avg", "ema", "swa"):
        assert same_weights(resumed.averaged[kind].state_dict(), whole.averaged[kind].state_dict(), rtol=0, atol=0)
    a = torch.load(tmp_path / "a" / "ckpt" / "ema.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "ckpt" / "ema.pt", weights_only=True)["model"]
    assert same_weights(a, b, rtol=0, atol=0)


def test_a_finished_run_with_averaging_returns_its_averaged_models_on_resume(corpus, tmp_path):
    config = small(corpus, tmp_path, epochs=2, ema_decay=0.9, average_last=2)
    first = run(config)
    again = run(config, resume=True)
    assert math.isclose(first.history.val_acc_ema.iloc[-1], again.history.val_acc_ema.iloc[-1])
    for kind in ("avg", "ema"):
        assert same_weights(first.averaged[kind].state_dict(), again.averaged[kind].state_dict(), rtol=0, atol=0)
