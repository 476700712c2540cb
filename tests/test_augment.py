"""phonemekit.augment: masking, noise and mixup change training batches, and only those."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from phonemekit.augment import add_noise, make_augment, mask_windows, mixup
from phonemekit.data import AudioDataset
from phonemekit.synthetic import make_learnable_corpus
from phonemekit.submit import predict
from phonemekit.train import Config, evaluate, fit, make_datasets, make_loaders

K = 8  # classes of the synthetic task


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A learnable task in the Kaggle layout (each label shifts its frames' mean), with test answers."""
    return make_learnable_corpus(tmp_path_factory.mktemp("corpus"),
                                 {"train-clean-100": 8, "dev-clean": 2, "test-clean": 2},
                                 frames=150, n_features=8, n_classes=K, spread=2, seed=0)


def small(corpus, tmp_path, **kw):
    base = dict(root=str(corpus), context=2, hidden=[32], epochs=2, batch_size=100, lr=3e-3, scheduler="none",
                checkpoint_dir=str(tmp_path / "ckpt"), log_every=5, device="cpu")
    return Config(**{**base, **kw})


# --------------------------------------------------------------------------------------------
# The transforms


def test_frequency_masks_zero_a_band_of_coefficients_in_every_frame_of_the_window():
    torch.manual_seed(0)
    x = torch.ones(500, 7, 20)
    out = mask_windows(x, freq_masks=1, freq_mask_width=5, time_masks=0, prob=1.0)
    zero = out == 0
    # a masked coefficient is masked in all 7 frames, and nothing else is touched
    assert torch.equal(zero.all(dim=1), zero.any(dim=1))
    assert torch.equal(out[~zero], x[~zero])
    bands = zero.all(dim=1)  # (500, 20)
    widths = bands.sum(1)
    assert widths.max() == 5 and widths.min() == 0
    for row in bands[widths > 0][:50]:  # one contiguous band per window
        idx = row.nonzero().flatten()
        assert idx[-1] - idx[0] + 1 == len(idx)
    assert 0.7 < (widths > 0).float().mean() < 0.9  # width 0..5 uniformly: 5/6 of the windows masked


def test_time_masks_zero_runs_of_whole_frames():
    torch.manual_seed(0)
    x = torch.randn(300, 11, 6) + 10  # no zero anywhere
    out = mask_windows(x, freq_masks=0, time_masks=2, time_mask_width=3, prob=1.0)
    zero = out == 0
    assert torch.equal(zero.all(dim=2), zero.any(dim=2))  # whole frames
    frames = zero.all(dim=2).sum(1)
    assert frames.max() <= 6 and frames.max() >= 4  # two runs of at most 3 frames
    assert torch.equal(out[~zero], x[~zero])


def test_mask_prob_is_the_share_of_windows_masked():
    torch.manual_seed(0)
    x = torch.ones(4000, 5, 28)
    out = mask_windows(x, freq_masks=1, freq_mask_width=4, time_masks=1, time_mask_width=2, prob=0.3)
    masked = (out == 0).flatten(1).any(1).float().mean().item()
    # a window drawn for masking stays whole only if both widths come out 0 (1/5 * 1/3)
    assert abs(masked - 0.3 * (1 - 1 / 15)) < 0.03


def test_noise_reaches_a_random_subset_of_windows_with_the_std_asked_for():
    torch.manual_seed(0)
    x = torch.randn(2000, 5, 28)
    out = add_noise(x, std=0.2, prob=0.4)
    changed = (out != x).flatten(1).any(1)
    assert abs(changed.float().mean().item() - 0.4) < 0.04
    assert torch.equal(out[~changed], x[~changed])
    assert abs((out - x)[changed].std().item() - 0.2) < 0.01


def test_mixup_blends_pairs_of_windows_and_gives_soft_targets_that_sum_to_one():
    torch.manual_seed(0)
    x, y = torch.randn(64, 5, 8), torch.randint(0, 40, (64,))
    mixed, soft = mixup(x, y, alpha=0.4, num_classes=40)
    assert soft.shape == (64, 40) and soft.dtype == torch.float32
    assert torch.allclose(soft.sum(1), torch.ones(64))
    assert ((soft > 0).sum(1) <= 2).all()  # two labels at most
    # every mixed window is lam * itself + (1 - lam) * one other window of the batch
    rows = soft[torch.arange(64), y]
    same = (rows - 1).abs() < 1e-6  # paired with a window of the same label: weights add up
    for i in torch.nonzero(~same).flatten()[:10]:
        lam_i = rows[i].item()
        other = (mixed[i] - lam_i * x[i]) / (1 - lam_i)
        assert any(torch.allclose(other, x[j], atol=1e-4) for j in range(64))
    loss = F.cross_entropy(torch.randn(64, 40), soft)  # cross_entropy takes the soft targets as they are
    assert torch.isfinite(loss)


def test_make_augment_is_none_when_every_switch_is_off_and_reads_the_config():
    assert make_augment(Config()) is None
    assert make_augment(Config(freq_masks=2, freq_mask_width=0)) is None  # zero width masks nothing
    torch.manual_seed(0)
    x, y = torch.randn(64, 5, 8), torch.randint(0, 40, (64,))  # no exact zeros in x

    # frequency masks alone: entries are kept or zeroed, the zeros whole bands of coefficients
    ax, ay = make_augment(Config(freq_masks=1, freq_mask_width=4, mask_prob=1.0))(x, y)
    zero = ax == 0
    assert torch.equal(ay, y) and torch.equal(ax[~zero], x[~zero])
    assert torch.equal(zero, zero[:, :1, :].expand_as(zero))  # the same coefficients in every frame
    assert (zero.any(dim=(1, 2)).float().mean() > 0.5)  # most windows masked (width 0 masks nothing)
    # time masks alone: the zeros are whole frames
    ax, _ = make_augment(Config(freq_masks=0, time_masks=1, time_mask_width=3, mask_prob=1.0))(x, y)
    zero = ax == 0
    assert torch.equal(ax[~zero], x[~zero]) and torch.equal(zero, zero[:, :, :1].expand_as(zero))
    assert zero.any(dim=(1, 2)).float().mean() > 0.5
    # noise alone: every entry moved, by about noise_std
    ax, ay = make_augment(Config(noise_std=0.1, noise_prob=1.0))(x, y)
    assert torch.equal(ay, y) and (ax != x).all() and (ax - x).std().item() == pytest.approx(0.1, rel=0.1)
    # mixup alone: soft targets over num_classes
    ax, ay = make_augment(Config(mixup_alpha=0.2))(x, y)
    assert ay.shape == (64, 40) and torch.allclose(ay.sum(1), torch.ones(64))


@pytest.mark.parametrize("field, value", [("freq_masks", -1), ("mask_prob", 1.5), ("noise_std", -0.1),
                                          ("noise_prob", -0.2), ("mixup_alpha", -1.0)])
def test_bad_augmentation_settings_are_refused_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        Config(**{field: value})


# --------------------------------------------------------------------------------------------
# Training only


def _record_inputs(seen):
    def start(state):
        state.model.register_forward_pre_hook(lambda m, args: seen.append((m.training, args[0].detach().clone())))
    return {"on_fit_start": start}


def test_configured_augmentation_changes_training_batches_but_never_validation_or_prediction(corpus, tmp_path):
    config = small(corpus, tmp_path, freq_masks=2, freq_mask_width=3, time_masks=1, time_mask_width=2, mask_prob=1.0,
                   noise_std=0.5, noise_prob=1.0)
    train_ds, val_ds = make_datasets(config, "cpu")
    seen = []
    result = fit(config, callbacks=_record_inputs(seen), datasets=(train_ds, val_ds), progress=False, verbose=False)

    # training: every batch the model saw differs from the frames the loader gave for that epoch
    raw_loader, val_loader = make_loaders(config, train_ds, val_ds, torch.device("cpu"))
    train_inputs = [x for training, x in seen if training]
    raw = []
    for epoch in range(config.epochs):
        raw_loader.set_epoch(epoch)
        raw += [x for x, _ in raw_loader]
    assert len(train_inputs) == len(raw)
    assert all(a.shape == b.shape and not torch.equal(a, b) for a, b in zip(train_inputs, raw))

    # validation: exactly the dev windows, in order, once per epoch
    eval_inputs = torch.cat([x for training, x in seen if not training])
    windows = val_ds[torch.arange(len(val_ds))][0]
    assert torch.equal(eval_inputs, torch.cat([windows] * config.epochs))
    loss, acc = evaluate(result.model, val_loader)
    assert acc == result.history.val_acc.iloc[-1]

    # prediction: exactly the test windows
    test = AudioDataset(corpus, "test-clean", context=config.context)
    seen.clear()  # the hook set at the start of fit still records
    ids = predict(result.model, test, batch_size=64, device="cpu")
    assert not any(training for training, _ in seen)
    assert torch.equal(torch.cat([x for _, x in seen]), test[torch.arange(len(test))])
    with torch.no_grad():
        direct = result.model.eval()(test[torch.arange(len(test))]).argmax(1)
    assert np.array_equal(np.asarray(ids), direct.numpy())


def test_augment_false_trains_on_the_plain_frames_even_when_the_config_asks_for_masking(corpus, tmp_path):
    config = small(corpus, tmp_path, epochs=1, freq_masks=2, mask_prob=1.0, noise_std=0.5, noise_prob=1.0)
    train_ds, val_ds = make_datasets(config, "cpu")
    seen = []
    fit(config, augment=False, callbacks=_record_inputs(seen), datasets=(train_ds, val_ds), progress=False, verbose=False)
    raw_loader, _ = make_loaders(config, train_ds, val_ds, torch.device("cpu"))
    raw_loader.set_epoch(0)
    assert all(torch.equal(a, b) for a, (b, _) in zip([x for t, x in seen if t], raw_loader))


def test_mixup_trains_with_soft_targets_and_still_learns(corpus, tmp_path):
    result = fit(small(corpus, tmp_path, epochs=3, mixup_alpha=0.4, label_smoothing=0.1), progress=False, verbose=False)
    h = result.history
    assert h.train_acc.between(0, 1).all()
    assert h.val_acc.iloc[-1] > 0.5  # chance is 1/8
