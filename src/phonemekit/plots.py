"""Pictures of a run: learning curves, per-phoneme accuracy, a confusion matrix, a spectrogram,
the class distribution.

Every plot function returns its matplotlib Figure and, given `path`, also saves it as a PNG.
Closing the figure is the caller's business (`plt.close(fig)`); in a notebook end the line with
`;` so the figure is drawn once, not twice.

The backend is left to matplotlib: Jupyter and Colab keep their inline backend, MPLBACKEND is
respected, and a process with no display (a remote GPU box under nohup/tmux, CI) falls back to
Agg by itself, so saving PNGs works everywhere without a window.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
from matplotlib import colors
from matplotlib.ticker import MaxNLocator, PercentFormatter

from .phonemes import CLASSES, NUM_CLASSES, PHONEME_TO_INDEX, SOS, EOS

DPI = 120


# -----------------------------------------------------------------------------
# inputs: tensors or arrays in, flat numpy out, with errors that say what to pass

def _to_numpy(x):
    if hasattr(x, "detach"):  # a torch tensor, possibly on the GPU or requiring grad
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _class_ids(x, name, num_classes=NUM_CLASSES):
    """Class ids (N,) from ids, phoneme strings, or (N, num_classes) scores/logits (argmax)."""
    a = _to_numpy(x)
    if a.ndim == 2 and a.shape[1] == num_classes and a.dtype.kind == "f":
        a = a.argmax(axis=1)  # logits or probabilities: the predicted class is the argmax
    a = a.reshape(-1)
    if a.dtype.kind in "USO":  # phoneme strings, e.g. the label column of a submission
        unknown = sorted({str(p) for p in a} - set(PHONEME_TO_INDEX))
        if unknown:
            raise ValueError(f"{name} holds strings that are not phonemes: {unknown[:5]}; "
                             f"use the names in phonemekit.phonemes.CLASSES or class ids")
        a = np.array([PHONEME_TO_INDEX[str(p)] for p in a], dtype=np.int64)
    if a.dtype.kind == "f":
        if not np.all(a == np.round(a)):
            raise ValueError(f"{name} holds fractional values; pass class ids (integers) or "
                             f"(N, {num_classes}) scores to take the argmax of")
        a = a.astype(np.int64)
    if a.dtype.kind not in "iub":
        raise TypeError(f"{name} has dtype {a.dtype}; pass class ids, phoneme strings or scores")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() >= num_classes):
        raise ValueError(f"{name} holds class ids outside 0..{num_classes - 1} "
                         f"(min {a.min()}, max {a.max()}); [SOS]/[EOS] are not frame classes, "
                         f"strip them with transcript[1:-1]")
    return a


def _pair(predictions, labels, num_classes=NUM_CLASSES):
    p = _class_ids(predictions, "predictions", num_classes)
    y = _class_ids(labels, "labels", num_classes)
    if p.shape != y.shape:
        raise ValueError(f"predictions has {p.size} frames but labels has {y.size}; "
                         f"pass one prediction per labelled frame, in the same order")
    if y.size == 0:
        raise ValueError("predictions and labels are empty; pass at least one frame")
    return p, y


def _save(fig, path):
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return fig


# -----------------------------------------------------------------------------
# learning curves

def _history_frame(history):
    if isinstance(history, pd.DataFrame):
        df = history.copy()
    else:  # a list of per-epoch dicts or a dict of lists reads the same
        df = pd.DataFrame(history)
    if len(df) == 0:
        raise ValueError("history is empty: train for at least one epoch before plotting it")
    known = {"train_loss", "val_loss", "train_acc", "val_acc", "lr"}
    if not known & set(df.columns):
        raise ValueError(f"history has columns {list(df.columns)}; expected some of "
                         f"epoch, train_loss, train_acc, val_loss, val_acc, lr")
    if "epoch" not in df.columns:
        df["epoch"] = np.arange(1, len(df) + 1)
    return df.sort_values("epoch")


def _present(df, col):
    return col in df.columns and df[col].notna().any()


def plot_history(history, path=None):
    """Loss, accuracy (HW3P2: distance) and learning rate per epoch, train beside val.

    `history` is the per-epoch DataFrame of training (columns epoch, train_loss, train_acc,
    val_loss, val_acc, lr; missing ones are skipped), or a list of per-epoch dicts.
    Accuracies in 0..1 are shown as percentages. The best val accuracy is marked.
    """
    df = _history_frame(history)
    panels = [p for p, cols in [("loss", ("train_loss", "val_loss")),
                                ("accuracy", ("train_acc", "val_acc")),
                                ("distance", ("val_dist",)),  # HW3P2: mean Levenshtein distance
                                ("lr", ("lr",))]
              if any(_present(df, c) for c in cols)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6),
                             layout="constrained", squeeze=False)
    epoch = df["epoch"].to_numpy()
    # markers so that a single epoch still shows as a point, not an invisible line
    style = dict(marker="o", markersize=4 if len(df) <= 30 else 0, linewidth=1.8)
    for ax, panel in zip(axes[0], panels):
        if panel == "lr":
            lr = df["lr"].to_numpy(dtype=float)
            ax.plot(epoch, lr, color="tab:green", **style)
            finite = lr[np.isfinite(lr)]
            if finite.size and finite.min() > 0 and finite.max() / finite.min() > 20:
                ax.set_yscale("log")  # decays over orders of magnitude read better on a log axis
            else:
                ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
            ax.set_title("learning rate")
        elif panel == "distance":
            ax.plot(epoch, df["val_dist"].to_numpy(dtype=float), color="tab:orange", label="val", **style)
            best = df["val_dist"].idxmin()
            be, bv = df.loc[best, "epoch"], df.loc[best, "val_dist"]
            ax.plot([be], [bv], marker="*", markersize=13, color="tab:red", linestyle="none",
                    label=f"best val {bv:.2f} (epoch {be:g})")
            ax.set_title("distance (Levenshtein, lower is better)")
            ax.legend(fontsize=9)
        else:
            cols = ("train_loss", "val_loss") if panel == "loss" else ("train_acc", "val_acc")
            for col, color in zip(cols, ("tab:blue", "tab:orange")):
                if _present(df, col):
                    ax.plot(epoch, df[col].to_numpy(dtype=float), color=color,
                            label=col.split("_")[0], **style)
            if panel == "accuracy":
                accs = pd.concat([df[c] for c in cols if _present(df, c)])
                fraction = accs.max() <= 1.0  # fractions in 0..1, else already percent
                ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0 if fraction else 100.0))
                if _present(df, "val_acc"):
                    best = df["val_acc"].idxmax()
                    be, bv = df.loc[best, "epoch"], df.loc[best, "val_acc"]
                    ax.plot([be], [bv], marker="*", markersize=13, color="tab:red",
                            linestyle="none", label=f"best val {bv * (100 if fraction else 1):.2f}%"
                            f" (epoch {be:g})")
            ax.set_title(panel)
            ax.legend(fontsize=9)
        ax.set_xlabel("epoch")
        if len(df) == 1:  # one point: one tick at that epoch, not a fractional scale around it
            ax.set_xticks(epoch)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    return _save(fig, path)


# -----------------------------------------------------------------------------
# per-phoneme accuracy

def per_phoneme_accuracy(predictions, labels):
    """One row per frame class: phoneme, frames (support), correct, accuracy.

    `predictions` are class ids, phoneme strings or (N, 40) scores; `labels` class ids or
    strings. The row index is the class id. accuracy is NaN for a class with no frames.
    """
    p, y = _pair(predictions, labels)
    frames = np.bincount(y, minlength=NUM_CLASSES)
    correct = np.bincount(y[p == y], minlength=NUM_CLASSES)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(frames > 0, correct / np.maximum(frames, 1), np.nan)
    return pd.DataFrame({"phoneme": CLASSES, "frames": frames, "correct": correct,
                         "accuracy": acc})


def plot_per_phoneme_accuracy(predictions, labels, path=None, sort=True):
    """Horizontal accuracy bars, one per phoneme, each annotated with its frame count.

    sort=True puts the worst phonemes at the top (where the errors are); sort=False keeps the
    class order. Classes with no frames are listed with "no frames". The dashed line is the
    overall frame accuracy.
    """
    table = per_phoneme_accuracy(predictions, labels)
    if sort:
        table = table.sort_values(["accuracy", "frames"], na_position="last", kind="stable")
    overall = table["correct"].sum() / table["frames"].sum()
    fig, ax = plt.subplots(figsize=(8, 10), layout="constrained")
    pos = np.arange(len(table))
    acc = table["accuracy"].fillna(0).to_numpy()
    ax.barh(pos, acc, color=plt.get_cmap("RdYlGn")(acc * 0.9 + 0.05), height=0.75)
    for i, (a, n) in enumerate(zip(table["accuracy"], table["frames"])):
        text = "no frames" if n == 0 else f"{a:.1%}  n={n:,}"
        # a white backing keeps the text readable where it crosses the dashed overall line
        ax.text(min(a if n else 0, 1) + 0.01, i, text, va="center", fontsize=7.5, zorder=3,
                bbox=dict(facecolor="white", edgecolor="none", pad=0.6))
    ax.axvline(overall, color="0.3", linestyle="--", linewidth=1, zorder=1.5)
    ax.set_yticks(pos, table["phoneme"], fontsize=8.5)
    ax.set_ylim(len(table) - 0.5, -0.5)  # first row at the top
    ax.set_xlim(0, 1.28)  # room for the annotations right of a 100% bar
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set_xlabel("frame accuracy")
    ax.set_title(f"per-phoneme accuracy (overall {overall:.2%}, dashed)")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


# -----------------------------------------------------------------------------
# class distribution

def class_distribution(labels):
    """One row per frame class: phoneme, frames, share (of all frames). The row index is the class id."""
    y = _class_ids(labels, "labels")
    if y.size == 0:
        raise ValueError("labels is empty; pass the label of every frame, e.g. train_ds.labels")
    frames = np.bincount(y, minlength=NUM_CLASSES)
    return pd.DataFrame({"phoneme": CLASSES, "frames": frames, "share": frames / y.size})


def plot_class_distribution(labels, path=None, title=None):
    """The share of frames of each phoneme, as bars in class order, the most common one named.

    `labels` are the class ids (or phoneme strings) of every frame, e.g. `train_ds.labels`.
    The classes are far from balanced (silence alone is about a quarter of the frames), which
    is why overall accuracy hides how the rare phonemes do.
    """
    table = class_distribution(labels)
    top = table.loc[table["frames"].idxmax()]
    fig, ax = plt.subplots(figsize=(12, 3.4), layout="constrained")
    pos = np.arange(NUM_CLASSES)
    bars = ax.bar(pos, table["share"], color="tab:blue", width=0.75)
    bars[int(top.name)].set_color("tab:orange")
    ax.set_xticks(pos, CLASSES, rotation=90, fontsize=8.5)
    ax.set_xlim(-0.6, NUM_CLASSES - 0.4)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax.set_ylabel("share of frames")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title((title + ": " if title else "") + f"frames per phoneme ({int(table['frames'].sum()):,} frames; "
                 f"most common {top.phoneme}, {top.share:.1%})")
    return _save(fig, path)


# -----------------------------------------------------------------------------
# confusion matrix

def confusion_matrix(predictions, labels, num_classes=NUM_CLASSES, normalize=True):
    """(num_classes, num_classes) array: rows are the true class, columns the predicted one.

    normalize=True divides each row by its frame count (row i: where frames of class i went);
    rows of classes with no frames stay 0. normalize=False gives int64 counts.
    """
    p, y = _pair(predictions, labels, num_classes)
    cm = np.bincount(y * num_classes + p, minlength=num_classes * num_classes)
    cm = cm.reshape(num_classes, num_classes).astype(np.int64)
    if not normalize:
        return cm
    rows = cm.sum(axis=1, keepdims=True)
    return cm / np.maximum(rows, 1)  # empty rows divide 0 by 1: zeros, never NaN


def plot_confusion(predictions, labels, path=None, normalize=True):
    """The confusion matrix as a heat map, phoneme names on both axes.

    The colour scale is a square root so that confusions of a few percent stand out next to a
    diagonal near 100%. Off-diagonal cells of 10% or more carry their value.
    """
    cm = confusion_matrix(predictions, labels, NUM_CLASSES, normalize)
    fig, ax = plt.subplots(figsize=(10.5, 9.5), layout="constrained")
    vmax = 1.0 if normalize else max(cm.max(), 1)
    im = ax.imshow(cm, cmap="Blues", norm=colors.PowerNorm(0.5, vmin=0, vmax=vmax),
                   interpolation="nearest")
    cbar = fig.colorbar(im, ax=ax, shrink=0.8, pad=0.01)
    if normalize:
        cbar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
        # the biggest mistakes, written in the cell so they can be read without the colour bar
        for i, j in zip(*np.nonzero((cm >= 0.10) & ~np.eye(NUM_CLASSES, dtype=bool))):
            ax.text(j, i, f"{cm[i, j] * 100:.0f}", ha="center", va="center", fontsize=6,
                    color="white" if cm[i, j] > 0.45 else "black")
    ticks = np.arange(NUM_CLASSES)
    ax.set_xticks(ticks, CLASSES, rotation=90, fontsize=8)
    ax.set_yticks(ticks, CLASSES, fontsize=8)
    ax.tick_params(top=True, labeltop=True, bottom=True, labelbottom=True)
    plt.setp(ax.get_xticklabels(), rotation=90)
    # faint grid between cells helps follow a row across 40 columns
    ax.set_xticks(ticks[:-1] + 0.5, minor=True)
    ax.set_yticks(ticks[:-1] + 0.5, minor=True)
    ax.grid(which="minor", color="0.85", linewidth=0.4)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel("predicted phoneme")
    ax.set_ylabel("true phoneme")
    p, y = _pair(predictions, labels)
    kind = "row-normalised" if normalize else "frame counts"
    ax.set_title(f"confusion matrix ({kind}; accuracy {np.mean(p == y):.2%})")
    return _save(fig, path)


# -----------------------------------------------------------------------------
# spectrogram with phoneme segments

def _phoneme_names(labels, n_frames):
    a = _to_numpy(labels).reshape(-1)
    if a.dtype.kind in "USO":
        names = np.array([str(s) for s in a])
        if names.size == n_frames + 2 and names[0] == SOS and names[-1] == EOS:
            raise ValueError(f"labels has {names.size} entries for {n_frames} frames: it is a raw "
                             f"transcript; strip [SOS]/[EOS] with transcript[1:-1]")
    else:
        names = np.array(CLASSES)[_class_ids(a, "labels")] if a.size else a.astype(str)
    if names.size != n_frames:
        raise ValueError(f"labels has {names.size} entries but features has {n_frames} frames; "
                         f"pass one label per frame (a transcript without [SOS]/[EOS])")
    return names


def _segments(labels):
    """(start, end, label) for each run of equal labels; end is exclusive."""
    a = np.asarray(labels)
    if a.size == 0:
        return []
    cuts = np.flatnonzero(a[1:] != a[:-1]) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [a.size]])
    return [(int(s), int(e), a[s]) for s, e in zip(starts, ends)]


def plot_spectrogram(features, labels=None, path=None, title=None):
    """Features (T, F) as an image, time (frames) on x, with the phoneme segments marked.

    `labels` (T,) are class ids or phoneme strings. A vertical line is drawn at every frame
    where the phoneme changes (frame t spans x in [t, t+1)), and each segment wide enough to
    read carries its phoneme name above the image. Plot a slice (e.g. features[:300]) to read
    every name of a long utterance.
    """
    x = _to_numpy(features)
    if x.ndim != 2:
        raise ValueError(f"features has shape {x.shape}; pass one utterance as (T, F), "
                         f"e.g. np.load('mfcc/<utt>.npy')")
    x = x.astype(np.float32)
    T, F = x.shape
    fig, ax = plt.subplots(figsize=(12, 3.8), layout="constrained")
    im = ax.imshow(x.T, origin="lower", aspect="auto", cmap="magma", extent=(0, T, 0, F))
    fig.colorbar(im, ax=ax, pad=0.01, aspect=20)
    ax.set_xlabel("frame (10 ms)")
    ax.set_ylabel("feature")
    if labels is not None:
        names = _phoneme_names(labels, T)
        segs = _segments(names)
        fig.canvas.draw()  # the axes' width in pixels is known only after a layout pass
        px_per_frame = ax.get_window_extent().width / T
        # boundaries a few pixels apart would hatch the image over: draw them fainter there
        dense = T / len(segs) * px_per_frame < 12
        for start, _, _ in segs[1:]:
            ax.axvline(start, color="white", linewidth=0.4 if dense else 0.9,
                       alpha=0.45 if dense else 0.85, gid="phoneme-boundary")
        pt_per_px = 72 / fig.dpi
        for start, end, name in segs:
            # a name needs about 0.62 em per character plus a little margin at 8 pt
            need_px = (len(name) * 0.62 * 8 + 3) / pt_per_px
            if (end - start) * px_per_frame >= need_px:
                ax.text((start + end) / 2, 1.01, name, transform=ax.get_xaxis_transform(),
                        ha="center", va="bottom", fontsize=8, clip_on=False)
        title_pad = 16
    else:
        title_pad = 6
    ax.set_xlim(0, T)
    ax.set_title(title if title is not None else f"{T} frames × {F} features", pad=title_pad)
    return _save(fig, path)
