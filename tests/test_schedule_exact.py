"""The lr schedule at the points a student checks by hand: onecycle's ends, multistep's default
milestones, plateau watching the metric it is given, and SWA continuing from the scheduled lr."""

import pytest

from phonemekit.config import Config
from phonemekit.schedule import lr_at

STEPS = 10


def test_onecycle_starts_at_lr_over_25_peaks_at_pct_start_and_ends_near_zero():
    c = Config(scheduler="onecycle", lr=1e-3, epochs=4, warmup_epochs=0, onecycle_pct_start=0.25)
    assert lr_at(c, 0, 0, STEPS) == pytest.approx(1e-3 / 25)
    assert lr_at(c, 1, 0, STEPS) == pytest.approx(1e-3)  # 25% of 4 epochs
    assert lr_at(c, 3, STEPS - 1, STEPS) < 1e-3 / 25
    assert all(0 < lr_at(c, e, s, STEPS) <= 1e-3 for e in range(4) for s in range(STEPS))


def test_multistep_without_milestones_cuts_at_half_and_three_quarters_of_the_epochs():
    c = Config(scheduler="multistep", lr=1.0, gamma=0.1, epochs=9, warmup_epochs=1, milestones=None)
    # 8 epochs after the warm-up: cuts after 4 and 6 of them
    got = [lr_at(c, e, 0, STEPS) for e in range(1, 9)]
    assert got == pytest.approx([1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01])


def test_plateau_watches_the_metric_it_is_given_not_the_tasks_default():
    c = Config(scheduler="plateau", lr=1.0, plateau_factor=0.5, plateau_patience=0, warmup_epochs=0, min_lr=0.0)
    # accuracy keeps improving while the distance gets worse every epoch
    history = [{"epoch": e, "val_acc": 0.5 + e / 100, "val_dist": 10.0 + e} for e in range(1, 5)]
    assert lr_at(c, 4, 0, STEPS, history=history) == 1.0  # the default metric (val_acc) improved
    assert lr_at(c, 4, 0, STEPS, history=history, metric="val_dist") < 1.0


def test_swa_anneals_from_the_scheduled_lr_to_swa_lr_and_holds_it():
    c = Config(scheduler="step", lr=1.0, gamma=0.5, step_size=1, epochs=8, warmup_epochs=0,
               swa_start=3, swa_lr=0.01)
    before = lr_at(c, 1, STEPS - 1, STEPS)
    assert before == pytest.approx(0.5)  # plain step schedule before SWA
    start = lr_at(c, 2, 0, STEPS)
    assert 0.01 < start <= 0.25  # from the scheduled 0.25 at epoch 3, down towards swa_lr
    assert start == pytest.approx(0.25, rel=0.05)
    assert [lr_at(c, e, 0, STEPS) for e in (5, 6, 7)] == pytest.approx([0.01] * 3)
