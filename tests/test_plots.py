import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from phonemekit import plots
from phonemekit.phonemes import CLASSES, PHONEME_TO_INDEX

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def assert_png(path):
    data = Path(path).read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000


def history(epochs=4, val=True):
    e = np.arange(1, epochs + 1)
    d = {"epoch": e, "train_loss": 2.0 / e, "train_acc": 0.5 + 0.05 * e, "lr": 1e-3 / e,
         "epoch_time": 12.0, "frames_per_s": 3e5}
    if val:
        d.update(val_loss=2.1 / e, val_acc=0.48 + 0.05 * e)
    return pd.DataFrame(d)


def correlated(n=5000, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 40, n)
    p = np.where(rng.random(n) < 0.7, y, rng.integers(0, 40, n))
    return p, y


# ---- confusion matrix -------------------------------------------------------

def test_confusion_matrix_counts_true_class_by_row_and_prediction_by_column():
    labels = [0, 0, 0, 3, 3, 5]
    preds = [0, 3, 3, 3, 0, 5]
    cm = plots.confusion_matrix(preds, labels, normalize=False)
    assert cm.shape == (40, 40)
    assert cm[0, 0] == 1 and cm[0, 3] == 2   # two [SIL] frames taken for AH
    assert cm[3, 3] == 1 and cm[3, 0] == 1
    assert cm[5, 5] == 1
    assert cm.sum() == 6


def test_normalised_confusion_rows_sum_to_one_and_absent_classes_stay_zero():
    labels = [0, 0, 0, 3, 3, 5]
    preds = [0, 3, 3, 3, 0, 5]
    cm = plots.confusion_matrix(preds, labels)
    assert not np.isnan(cm).any()
    np.testing.assert_allclose(cm.sum(axis=1)[[0, 3, 5]], 1.0)
    absent = [i for i in range(40) if i not in (0, 3, 5)]
    assert (cm[absent] == 0).all()
    assert cm[0, 3] == pytest.approx(2 / 3)


def test_confusion_matrix_takes_tensors_logits_and_phoneme_strings_alike():
    p, y = correlated(500)
    expected = plots.confusion_matrix(p, y, normalize=False)
    logits = torch.nn.functional.one_hot(torch.tensor(p), 40).float() + 0.1
    as_tensor = plots.confusion_matrix(logits, torch.tensor(y, dtype=torch.uint8),
                                       normalize=False)
    as_strings = plots.confusion_matrix(np.array(CLASSES)[p], y, normalize=False)
    np.testing.assert_array_equal(as_tensor, expected)
    np.testing.assert_array_equal(as_strings, expected)


def test_mismatched_lengths_and_out_of_range_ids_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="same order"):
        plots.confusion_matrix([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match=r"\[SOS\]/\[EOS\]"):
        plots.confusion_matrix([0, 40], [0, 1])
    with pytest.raises(ValueError, match="not phonemes"):
        plots.per_phoneme_accuracy(["AH", "XX"], [3, 3])


# ---- per-phoneme accuracy ---------------------------------------------------

def test_per_phoneme_accuracy_counts_frames_and_correct_ones_per_class():
    labels = [1, 1, 1, 1, 2, 2, 7]
    preds = [1, 1, 1, 2, 2, 1, 0]
    table = plots.per_phoneme_accuracy(preds, labels)
    assert list(table.columns) == ["phoneme", "frames", "correct", "accuracy"]
    assert list(table["phoneme"]) == CLASSES
    aa, ae, b = table.loc[1], table.loc[2], table.loc[7]
    assert (aa.phoneme, aa.frames, aa.correct, aa.accuracy) == ("AA", 4, 3, 0.75)
    assert (ae.frames, ae.correct, ae.accuracy) == (2, 1, 0.5)
    assert (b.frames, b.correct, b.accuracy) == (1, 0, 0.0)
    # a class with no frames has no accuracy, rather than a made-up 0
    assert table.loc[PHONEME_TO_INDEX["ZH"], "frames"] == 0
    assert np.isnan(table.loc[PHONEME_TO_INDEX["ZH"], "accuracy"])
    assert table["frames"].sum() == len(labels)


# ---- class distribution -----------------------------------------------------

def test_class_distribution_counts_frames_and_shares_per_phoneme():
    labels = [0, 0, 0, 3, 3, 39, 0, 0]
    table = plots.class_distribution(torch.tensor(labels, dtype=torch.uint8))
    assert list(table["phoneme"]) == CLASSES
    assert table.loc[0, "frames"] == 5 and table.loc[3, "frames"] == 2 and table.loc[39, "frames"] == 1
    assert table["share"].sum() == pytest.approx(1.0)
    assert table.loc[0, "share"] == pytest.approx(5 / 8)


def test_class_distribution_plot_names_phonemes_not_numbers_and_saves_a_png(tmp_path):
    labels = np.repeat([0, 3, 17], [50, 30, 20])
    fig = plots.plot_class_distribution(labels, path=tmp_path / "class_distribution.png", title="train-clean-100")
    assert_png(tmp_path / "class_distribution.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES
    np.testing.assert_allclose([b.get_height() for b in ax.patches][:4], [0.5, 0, 0, 0.3])
    assert "most common [SIL], 50.0%" in ax.get_title() and "train-clean-100" in ax.get_title()


# ---- figures ------------------------------------------------------------------

def test_every_plot_returns_a_figure_and_saves_a_png(tmp_path):
    p, y = correlated()
    feats = torch.randn(120, 28)
    labels = torch.repeat_interleave(torch.tensor([0, 3, 17, 0]), torch.tensor([30, 40, 20, 30]))
    made = {
        "history.png": lambda f: plots.plot_history(history(), path=f),
        "bars.png": lambda f: plots.plot_per_phoneme_accuracy(p, y, path=f),
        "confusion.png": lambda f: plots.plot_confusion(torch.tensor(p), torch.tensor(y), path=f),
        "spec.png": lambda f: plots.plot_spectrogram(feats, labels, path=f, title="utt"),
        "classes.png": lambda f: plots.plot_class_distribution(y, path=f),
    }
    for name, make in made.items():
        fig = make(tmp_path / "out" / name)
        assert isinstance(fig, Figure), name
        assert_png(tmp_path / "out" / name)


def test_plots_without_a_path_write_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plots.plot_history(history())
    plots.plot_spectrogram(np.zeros((50, 28)))
    assert list(tmp_path.iterdir()) == []


def test_history_plot_shows_loss_accuracy_and_lr_panels():
    fig = plots.plot_history(history())
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "accuracy", "learning rate"]
    loss_ax = fig.axes[0]
    assert [line.get_label() for line in loss_ax.get_lines()] == ["train", "val"]
    np.testing.assert_allclose(loss_ax.get_lines()[1].get_ydata(), history()["val_loss"])


def test_history_plot_copes_with_one_epoch_and_no_validation(tmp_path):
    fig = plots.plot_history(history(epochs=1, val=False), path=tmp_path / "h.png")
    assert_png(tmp_path / "h.png")
    labels = [line.get_label() for ax in fig.axes for line in ax.get_lines()]
    assert "val" not in labels
    # a list of per-epoch dicts, as a training loop might keep it, reads the same
    fig = plots.plot_history(history(epochs=3).to_dict("records"))
    assert len(fig.axes) == 3


def test_empty_or_unrecognised_history_says_what_it_expects():
    with pytest.raises(ValueError, match="at least one epoch"):
        plots.plot_history(pd.DataFrame(columns=["epoch", "train_loss"]))
    with pytest.raises(ValueError, match="train_loss"):
        plots.plot_history(pd.DataFrame({"epoch": [1], "loss": [0.3]}))


def test_spectrogram_draws_boundaries_at_the_frames_where_the_phoneme_changes():
    lengths = [40, 1, 40, 3, 60, 600]
    ids = [0, 3, 17, 20, 29, 0]
    labels = np.repeat(ids, lengths)
    fig = plots.plot_spectrogram(np.random.rand(labels.size, 28), labels)
    ax = fig.axes[0]
    xs = [line.get_xdata()[0] for line in ax.get_lines() if line.get_gid() == "phoneme-boundary"]
    assert xs == list(np.cumsum(lengths)[:-1])  # 40, 41, 81, 84, 144
    names = [t.get_text() for t in ax.texts]
    # wide segments are named in order; the 1- and 3-frame ones are too narrow to read
    assert names == ["[SIL]", "IH", "S", "[SIL]"]
    assert ax.get_xlim() == (0, labels.size)


def test_spectrogram_accepts_phoneme_strings_and_refuses_a_raw_transcript():
    names = np.array(["[SIL]"] * 30 + ["AH"] * 30 + ["T"] * 30)
    fig = plots.plot_spectrogram(torch.randn(90, 28), names)
    xs = [line.get_xdata()[0] for line in fig.axes[0].get_lines()]
    assert xs == [30, 60]
    transcript = np.concatenate([["[SOS]"], names, ["[EOS]"]])
    with pytest.raises(ValueError, match=r"transcript\[1:-1\]"):
        plots.plot_spectrogram(torch.randn(90, 28), transcript)
    with pytest.raises(ValueError, match=r"\(T, F\)"):
        plots.plot_spectrogram(torch.randn(90), names)


def test_importing_plots_keeps_a_chosen_backend_and_falls_back_to_agg_headless(tmp_path):
    code = ("import matplotlib.pyplot as plt, numpy as np; from phonemekit import plots; "
            "plots.plot_spectrogram(np.zeros((20, 4))); print(plt.get_backend().lower())")
    src = str(Path(__file__).resolve().parents[1] / "src")
    base = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY",
                                                             "MPLBACKEND")}
    base["PYTHONPATH"] = src
    base["MPLCONFIGDIR"] = str(tmp_path)
    for env, expected in [({}, "agg"), ({"MPLBACKEND": "svg"}, "svg")]:
        out = subprocess.run([sys.executable, "-c", code], env={**base, **env},
                             capture_output=True, text=True, check=True)
        assert out.stdout.strip().splitlines()[-1] == expected


def test_an_hw3p2_history_gets_a_distance_panel_with_its_best_epoch(tmp_path):
    from phonemekit.plots import plot_history

    history = [{"epoch": e, "train_loss": 3 / e, "val_loss": 3.2 / e, "val_dist": d, "lr": 1e-3}
               for e, d in zip((1, 2, 3), (30.0, 18.5, 19.0))]
    fig = plot_history(history, path=tmp_path / "h.png")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[1].startswith("distance") and len(titles) == 3
    assert "best val 18.50 (epoch 2)" in [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert (tmp_path / "h.png").stat().st_size > 0
