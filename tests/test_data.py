"""The data layer: what a student relies on when loading HW1P2 with phonemekit.data."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from phonemekit import corpus, data
from phonemekit.data import AudioDataset, compute_stats, default_root, find_root
from phonemekit.phonemes import CLASSES, EOS, SOS
from phonemekit.synthetic import make_corpus, write_utterance

# Names chosen so that the order they are written in is not their sorted order.
LENGTHS = {"84-121-0003": 7, "1272-128104-0000": 1, "103-1240-0000": 12, "2428-83705-0012": 1,
           "19-198-0001": 40, "174-50561-0005": 3}


def write_corpus(root, lengths=LENGTHS, f=28, seed=0, partition="train-clean-100", labels=True):
    """Random utterances (raw features, class ids) keyed by name, written in the Kaggle layout."""
    rng = np.random.default_rng(seed)
    utts = {}
    for name, t in lengths.items():
        x = (rng.standard_normal((t, f)) * rng.uniform(0.5, 3, f) + rng.uniform(-5, 5, f)).astype(np.float32)
        y = rng.integers(0, len(CLASSES), t)
        write_utterance(root, partition, name, x, y if labels else None)
        utts[name] = (x, y)
    return utts


def cepstral(x):
    std = x.std(axis=0)
    std[std == 0] = 1  # a one-frame utterance: the official code divides by zero here
    return (x - x.mean(axis=0)) / std


def naive_windows(utts, c, boundary):
    """The course notebook's way, written plainly: normalise, concatenate, pad, slice."""
    names = sorted(utts)
    xs = [cepstral(utts[n][0]) for n in names]
    ys = np.concatenate([utts[n][1] for n in names])
    windows = []
    if boundary == "concat":
        padded = np.pad(np.concatenate(xs), ((c, c), (0, 0)))
        for i in range(len(ys)):
            windows.append(padded[i : i + 2 * c + 1])
    else:
        for x in xs:
            padded = np.pad(x, ((c, c), (0, 0)))
            for j in range(len(x)):
                windows.append(padded[j : j + 2 * c + 1])
    return np.stack(windows), ys


# ---------------------------------------------------------------------------------------------
# Official semantics


@pytest.mark.parametrize("boundary", ["concat", "utterance"])
@pytest.mark.parametrize("context", [0, 1, 5, 30])
def test_windows_equal_naive_per_frame_slicing(tmp_path, context, boundary):
    utts = write_corpus(tmp_path)
    ds = AudioDataset(tmp_path, context=context, boundary=boundary)
    ref_x, ref_y = naive_windows(utts, context, boundary)
    assert len(ds) == len(ref_y) == sum(LENGTHS.values())
    for i in [0, 1, len(ds) - 2, len(ds) - 1]:  # first and last frames, item by item
        x, y = ds[i]
        assert x.shape == (2 * context + 1, 28) and x.dtype == torch.float32
        assert y.dtype == torch.int64 and y.ndim == 0
        np.testing.assert_allclose(x.numpy(), ref_x[i], rtol=1e-5, atol=1e-5)
        assert int(y) == ref_y[i]
    x, y = ds[torch.arange(len(ds))]  # every frame, one-frame utterances included
    np.testing.assert_allclose(x.numpy(), ref_x, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(y.numpy(), ref_y)


def test_utterance_boundary_windows_never_see_another_utterance(tmp_path):
    utts = write_corpus(tmp_path)
    ds = AudioDataset(tmp_path, context=5, boundary="utterance", normalize="none")
    u = ds.utterances.index("1272-128104-0000")  # a one-frame utterance between two others
    x, _ = ds[ds.utterance_frames(u).start]
    assert torch.count_nonzero(x[:5]) == 0 and torch.count_nonzero(x[6:]) == 0
    np.testing.assert_array_equal(x[5].numpy(), utts["1272-128104-0000"][0][0])


def test_batch_indexing_equals_stacked_items(tmp_path):
    write_corpus(tmp_path)
    for boundary in ["concat", "utterance"]:
        ds = AudioDataset(tmp_path, context=4, boundary=boundary)
        idx = torch.tensor([5, 0, len(ds) - 1, 17, 17, -1, -len(ds)])
        x, y = ds[idx]
        assert x.shape == (len(idx), 9, 28) and y.shape == (len(idx),) and y.dtype == torch.int64
        assert torch.equal(x, torch.stack([ds[int(i)][0] for i in idx]))
        assert torch.equal(y, torch.stack([ds[int(i)][1] for i in idx]))
        x2, y2 = ds[idx.numpy()]  # numpy indices and lists work the same way
        assert torch.equal(x2, x) and torch.equal(y2, y)
        assert torch.equal(ds[idx.tolist()][0], x)
        assert torch.equal(ds[torch.tensor(3)][0], ds[3][0])


def test_out_of_range_index_raises_index_error(tmp_path):
    write_corpus(tmp_path)
    ds = AudioDataset(tmp_path, context=2)
    with pytest.raises(IndexError):
        ds[len(ds)]
    with pytest.raises(IndexError):
        ds[torch.tensor([0, len(ds)])]


def test_items_are_copies_so_in_place_augmentation_leaves_the_data_alone(tmp_path):
    write_corpus(tmp_path)
    ds = AudioDataset(tmp_path, context=2)
    before = ds[3][0].clone()
    ds[3][0].zero_()
    ds[torch.tensor([3])][0].zero_()
    assert torch.equal(ds[3][0], before)


def test_plain_torch_dataloader_with_default_collate_works(tmp_path):
    write_corpus(tmp_path)
    ds = AudioDataset(tmp_path, context=3)
    batches = list(torch.utils.data.DataLoader(ds, batch_size=8, shuffle=False))
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    ref_x, ref_y = ds[torch.arange(len(ds))]
    assert torch.equal(x, ref_x) and torch.equal(y, ref_y)


def reversed_scandir(monkeypatch):
    """os.scandir (what the loader lists folders with) yields the entries in reverse order; returns
    the names of every listing made, so a test can see the loader went through it."""
    real, listed = os.scandir, []

    class Reversed:
        def __init__(self, path):
            with real(path) as it:
                self.entries = sorted(it, key=lambda e: e.name, reverse=True)
            listed.append([e.name for e in self.entries])

        def __enter__(self):
            return iter(self.entries)

        def __exit__(self, *exc):
            return False

        def __iter__(self):
            return iter(self.entries)

    monkeypatch.setattr(os, "scandir", Reversed)
    return listed


def test_files_are_read_in_sorted_order_whatever_the_file_system_lists(tmp_path, monkeypatch):
    utts = write_corpus(tmp_path)
    write_corpus(tmp_path, partition="test-clean", labels=False)
    listed = reversed_scandir(monkeypatch)
    ds = AudioDataset(tmp_path, context=2)
    assert listed and all(names == sorted(names, reverse=True) for names in listed)  # the loader saw them reversed
    assert ds.utterances == sorted(LENGTHS)
    ref_x, ref_y = naive_windows(utts, 2, "concat")
    x, y = ds[torch.arange(len(ds))]
    np.testing.assert_allclose(x.numpy(), ref_x, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(y.numpy(), ref_y)
    test = AudioDataset(tmp_path, "test-clean", context=2)  # test ids 0..N-1 follow this order
    assert test.utterances == sorted(LENGTHS)
    np.testing.assert_array_equal(test.offsets, np.concatenate([[0], np.cumsum([LENGTHS[n] for n in sorted(LENGTHS)])]))


def test_utterance_ids_and_offsets_map_frames_back_to_utterances(tmp_path):
    write_corpus(tmp_path)
    ds = AudioDataset(tmp_path, context=1)
    assert ds.offsets.dtype == np.int64 and ds.offsets[0] == 0 and ds.offsets[-1] == len(ds)
    for u, name in enumerate(ds.utterances):
        frames = ds.utterance_frames(name)
        assert frames.stop - frames.start == LENGTHS[name]
        assert ds.utterance_of(frames.start) == u and ds.utterance_of(frames.stop - 1) == u


def test_cepstral_normalisation_is_per_utterance_over_time(tmp_path):
    write_corpus(tmp_path)
    ds = AudioDataset(tmp_path, context=0)
    for name in ds.utterances:
        if LENGTHS[name] < 3:
            continue
        x = ds.features[ds.utterance_frames(name)].numpy()  # context 0: rows are frames
        np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(x.std(axis=0), 1, atol=1e-4)


def test_labels_are_stored_as_uint8_and_served_as_int64(tmp_path):
    write_corpus(tmp_path)
    ds = AudioDataset(tmp_path, context=1)
    assert ds.labels.dtype == torch.uint8 and ds.labels.shape == (len(ds),)
    assert ds[0][1].dtype == torch.int64


# ---------------------------------------------------------------------------------------------
# Options


@pytest.mark.parametrize("normalize", ["cepstral", "global", "minmax", "none"])
def test_a_constant_coefficient_gives_no_nan_or_inf(tmp_path, normalize):
    x = np.random.default_rng(0).standard_normal((20, 13)).astype(np.float32)
    x[:, 4] = 7.5  # constant within the utterance (and the whole corpus)
    write_utterance(tmp_path, "train-clean-100", "1-1-0000", x, np.zeros(20, int))
    write_utterance(tmp_path, "train-clean-100", "1-1-0001", x[:1], np.zeros(1, int))
    ds = AudioDataset(tmp_path, context=2, normalize=normalize)
    assert torch.isfinite(ds.features).all()
    if normalize in ("cepstral", "global"):
        assert torch.all(ds.features[:, 4] == 0)


def test_global_normalisation_uses_training_statistics_for_dev_and_test(tmp_path):
    train = write_corpus(tmp_path, seed=1)
    dev = write_corpus(tmp_path, {"5-5-0000": 9, "6-6-0000": 4}, seed=2, partition="dev-clean")
    write_corpus(tmp_path, {"7-7-0000": 5}, seed=3, partition="test-clean", labels=False)
    frames = np.concatenate([x for x, _ in train.values()]).astype(np.float64)
    mean, std = frames.mean(axis=0), frames.std(axis=0)

    tr = AudioDataset(tmp_path, context=0, normalize="global")
    np.testing.assert_allclose(tr.stats[0], mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tr.stats[1], std, rtol=1e-5)
    dv = AudioDataset(tmp_path, "dev-clean", context=0, normalize="global")  # computed from train
    np.testing.assert_allclose(dv.stats[0], mean, rtol=1e-5, atol=1e-5)
    ref = np.concatenate([dev[n][0] for n in sorted(dev)])
    np.testing.assert_allclose(dv.features.numpy(), (ref - mean) / std, rtol=1e-4, atol=1e-4)
    dv2 = AudioDataset(tmp_path, "dev-clean", context=0, normalize="global", stats=tr.stats)  # passed
    np.testing.assert_allclose(dv2.features.numpy(), dv.features.numpy(), rtol=1e-5, atol=1e-5)
    te = AudioDataset(tmp_path, "test-clean", context=0, normalize="global", stats=tr.stats)
    assert torch.isfinite(te.features).all()
    assert torch.allclose(te.features, AudioDataset(tmp_path, "test-clean", context=0, normalize="global").features)
    assert torch.allclose(torch.from_numpy(compute_stats(tmp_path)[0]), torch.from_numpy(tr.stats[0]))


def test_minmax_scales_each_utterance_to_0_1_and_none_keeps_raw_values(tmp_path):
    utts = write_corpus(tmp_path)
    mm = AudioDataset(tmp_path, context=0, normalize="minmax")
    raw = AudioDataset(tmp_path, context=0, normalize="none")
    name = "19-198-0001"
    x = mm.features[mm.utterance_frames(name)].numpy()
    np.testing.assert_allclose(x.min(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(x.max(axis=0), 1, atol=1e-6)
    np.testing.assert_array_equal(raw.features[raw.utterance_frames(name)].numpy(), utts[name][0])


def test_float16_storage_halves_memory_and_serves_float32(tmp_path):
    write_corpus(tmp_path)
    full = AudioDataset(tmp_path, context=3)
    half = AudioDataset(tmp_path, context=3, dtype=torch.float16)
    assert half.features.dtype == torch.float16
    assert half.nbytes - half.labels.numel() == (full.nbytes - full.labels.numel()) // 2
    x, y = half[torch.arange(len(half))]
    assert x.dtype == torch.float32 and half[0][0].dtype == torch.float32
    torch.testing.assert_close(x, full[torch.arange(len(full))][0], rtol=1e-3, atol=2e-3)
    assert half[0][0].dtype == torch.float32
    as_half = AudioDataset(tmp_path, context=3, dtype=torch.float16, out_dtype=torch.float16)
    assert as_half[0][0].dtype == torch.float16  # "unless asked otherwise"


def test_float16_storage_refuses_values_it_cannot_hold(tmp_path):
    write_utterance(tmp_path, "train-clean-100", "1-1-0000", np.full((4, 13), 1e6, np.float32), np.zeros(4, int))
    with pytest.raises(ValueError, match="1-1-0000.npy.*float16"):
        AudioDataset(tmp_path, context=1, normalize="none", dtype=torch.float16)


def write_huge(root, x):
    """Two utterances with the values of x (any dtype), written as they are."""
    for k, part in enumerate((x, x[::-1] * 0.5)):
        write_utterance(root, "train-clean-100", f"1-1-000{k}", np.zeros(len(part)), np.zeros(len(part), int))
        np.save(root / "train-clean-100" / "mfcc" / f"1-1-000{k}.npy", part)


@pytest.mark.parametrize("normalize, dtype, scale", [
    ("cepstral", np.float64, 1e300), ("minmax", np.float64, 1e300),  # float64 beyond float32's range
    ("cepstral", np.float32, 1e19),  # float32 whose squares overflow
    ("cepstral", np.float32, 3e38), ("minmax", np.float32, 3e38)])  # float32 whose differences overflow
def test_huge_but_finite_values_normalise_correctly_per_utterance(tmp_path, normalize, dtype, scale):
    x = (np.random.default_rng(0).uniform(-1, 1, (50, 6)) * scale).astype(dtype)
    x[:, 2] = dtype(scale)  # constant: 0 after normalisation
    write_huge(tmp_path, x)
    ds = AudioDataset(tmp_path, context=0, normalize=normalize)
    got = ds.features[ds.utterance_frames("1-1-0000")].numpy().astype(np.float64)
    y = x.astype(np.float64) / scale  # the same frames at a size float64 computes with exactly
    with np.errstate(invalid="ignore"):  # the constant coefficient: 0/0, set below
        if normalize == "cepstral":
            want = (y - y.mean(axis=0)) / y.std(axis=0)
        else:
            want = (y - y.min(axis=0)) / (y.max(axis=0) - y.min(axis=0))
    want[:, 2] = 0
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("normalize", ["none", "global"])
def test_values_that_do_not_fit_float32_are_refused_naming_the_file(tmp_path, normalize):
    x = np.random.default_rng(0).standard_normal((20, 6)) * 1e300  # float64, finite
    write_huge(tmp_path, x)
    with pytest.raises(ValueError, match=r"1-1-000\d\.npy.*float32.*cepstral"):
        AudioDataset(tmp_path, context=0, normalize=normalize)


@pytest.mark.parametrize("f", [13, 15, 27, 28])
def test_feature_dimension_is_read_from_the_data(tmp_path, f):
    utts = write_corpus(tmp_path, f=f)
    ds = AudioDataset(tmp_path, context=2)
    assert ds.n_features == f and ds[0][0].shape == (5, f)
    ref_x, _ = naive_windows(utts, 2, "concat")
    np.testing.assert_allclose(ds[torch.arange(len(ds))][0].numpy(), ref_x, rtol=1e-5, atol=1e-5)


def test_test_partition_is_unlabelled_unless_transcripts_are_asked_for(tmp_path):
    utts = write_corpus(tmp_path, partition="test-clean")  # the demo corpus ships test answers
    ds = AudioDataset(tmp_path, "test-clean", context=2)
    assert ds.labels is None
    x = ds[0]
    assert torch.is_tensor(x) and x.shape == (5, 28)
    assert ds[torch.arange(4)].shape == (4, 5, 28)
    scored = AudioDataset(tmp_path, "test-clean", context=2, with_labels=True)
    np.testing.assert_array_equal(scored.labels.numpy(), np.concatenate([utts[n][1] for n in sorted(utts)]))
    shutil.rmtree(tmp_path / "test-clean" / "transcript")  # Kaggle's test set: no answers
    assert AudioDataset(tmp_path, "test-clean", context=2).labels is None
    with pytest.raises(FileNotFoundError, match="transcript"):
        AudioDataset(tmp_path, "test-clean", context=2, with_labels=True)


def test_features_only_for_a_labelled_partition(tmp_path):
    write_corpus(tmp_path)
    ds = AudioDataset(tmp_path, context=2, with_labels=False)
    assert ds.labels is None and torch.is_tensor(ds[0])


def test_subset_takes_a_fixed_fraction_of_whole_utterances_in_sorted_order(tmp_path):
    lengths = {f"{100 + k}-1-{k:04d}": 2 + k % 5 for k in range(40)}
    write_corpus(tmp_path, lengths)
    a = AudioDataset(tmp_path, context=1, subset=0.25)
    b = AudioDataset(tmp_path, context=1, subset=0.25)
    assert len(a.utterances) == 10 and a.utterances == b.utterances == sorted(a.utterances)
    assert len(a) == sum(lengths[n] for n in a.utterances)
    assert torch.equal(a.features, b.features)
    c = AudioDataset(tmp_path, context=1, subset=0.25, subset_seed=1)
    assert c.utterances != a.utterances
    part, full = AudioDataset(tmp_path, context=0, subset=0.25), AudioDataset(tmp_path, context=0)
    for u in part.utterances:  # whole utterances, unchanged
        assert torch.equal(part.features[part.utterance_frames(u)], full.features[full.utterance_frames(u)])


def test_subset_of_the_test_set_is_an_error(tmp_path):
    write_corpus(tmp_path, partition="test-clean", labels=False)
    with pytest.raises(ValueError, match="test"):
        AudioDataset(tmp_path, "test-clean", subset=0.5)
    with pytest.raises(ValueError, match="subset"):
        AudioDataset(tmp_path, subset=0)


def test_bad_options_are_named(tmp_path):
    write_corpus(tmp_path)
    for kwargs, word in [({"normalize": "cmvn"}, "normalize"), ({"boundary": "edge"}, "boundary"),
                         ({"dtype": torch.int8}, "dtype"), ({"context": -1}, "context")]:
        with pytest.raises(ValueError, match=word):
            AudioDataset(tmp_path, **kwargs)


# ---------------------------------------------------------------------------------------------
# Bad input: a clear error that names the file and the fix; nothing dropped silently


def corrupt(tmp_path, how):
    """A good corpus with one thing wrong; returns the file or folder the error must name."""
    write_corpus(tmp_path)
    part = tmp_path / "train-clean-100"
    victim = "103-1240-0000"  # 12 frames
    m, t = part / "mfcc" / f"{victim}.npy", part / "transcript" / f"{victim}.npy"
    good_t = np.load(t)
    if how == "missing partition":
        write_corpus(tmp_path, {"5-5-0000": 3}, partition="dev-clean")
        shutil.rmtree(part)
        return "train-clean-100"
    if how == "missing mfcc folder":
        shutil.rmtree(part / "mfcc")
        return "mfcc"
    if how == "missing transcript folder":
        shutil.rmtree(part / "transcript")
        return "transcript"
    if how == "transcript without mfcc":
        m.unlink()
        return victim
    if how == "mfcc without transcript":
        t.unlink()
        return victim
    if how == "differing names":
        t.rename(t.with_name("999-1-0000.npy"))
        return "999-1-0000"
    if how == "transcript too long":
        np.save(t, np.concatenate([good_t[:-1], ["AA", EOS]]))
        return t.name
    if how == "transcript too short":
        np.save(t, np.concatenate([good_t[:-2], [EOS]]))
        return t.name
    if how == "no [SOS]":
        np.save(t, np.concatenate([["AA"], good_t[1:]]))
        return t.name
    if how == "no [EOS]":
        np.save(t, np.concatenate([good_t[:-1], ["AA"]]))
        return t.name
    if how == "unknown phoneme":
        bad = good_t.astype("<U8")
        bad[3] = "XX"
        np.save(t, bad)
        return t.name, "XX"
    if how == "[SOS] inside":
        bad = good_t.copy()
        bad[3] = SOS
        np.save(t, bad)
        return t.name
    if how == "feature dimension differs":
        np.save(m, np.zeros((12, 27), np.float32))
        return m.name
    if how in ("nan", "inf"):
        x = np.load(m)
        x[5, 3] = np.nan if how == "nan" else np.inf
        np.save(m, x)
        return m.name
    if how == "empty utterance":
        np.save(m, np.zeros((0, 28), np.float32))
        np.save(t, np.array([SOS, EOS]))
        return m.name
    if how == "not an npy file":
        m.write_bytes(b"PK\x03\x04 this is a zip, not numpy")
        return m.name
    if how == "truncated npy file":
        m.write_bytes(m.read_bytes()[:200])
        return m.name
    if how == "pickled transcript":
        np.save(t, good_t.astype(object), allow_pickle=True)
        return t.name
    if how == "1-D features":
        np.save(m, np.zeros(12, np.float32))
        return m.name
    if how == "dangling symlink":
        m.unlink()
        m.symlink_to(part / "elsewhere" / m.name)
        return m.name
    if how == "symlink loop":
        m.unlink()
        m.symlink_to(m)
        return m.name
    if how == "upper-case .NPY":
        m.rename(m.with_suffix(".NPY"))
        t.rename(t.with_suffix(".NPY"))
        return f"{victim}.NPY", "rename"
    if how == "text instead of numbers":
        np.save(m, np.full((12, 28), "0.5"))
        return m.name
    if how == "3-D features":
        np.save(m, np.zeros((12, 28, 1), np.float32))
        return m.name
    if how == "empty mfcc folder":
        for f in (part / "mfcc").iterdir():
            f.unlink()
        return "mfcc"
    if how == "stray file":
        (part / "mfcc" / "notes.txt").write_text("features of 103-1240-0000 redone")
        return "notes.txt"
    raise AssertionError(how)


BAD_INPUTS = ["missing partition", "missing mfcc folder", "missing transcript folder",
              "transcript without mfcc", "mfcc without transcript", "differing names",
              "transcript too long", "transcript too short", "no [SOS]", "no [EOS]",
              "unknown phoneme", "[SOS] inside", "feature dimension differs", "nan", "inf",
              "empty utterance", "not an npy file", "truncated npy file", "pickled transcript",
              "1-D features", "3-D features", "text instead of numbers", "empty mfcc folder",
              "dangling symlink", "symlink loop", "upper-case .NPY", "stray file"]


# test_bad_input_raises_an_error_naming_the_file: in tests/test_corpus.py, for both homeworks


def test_zero_features_per_frame_is_refused_naming_the_file(tmp_path):
    for name in ("1-1-0000", "1-1-0001"):
        write_utterance(tmp_path, "train-clean-100", name, np.zeros((5, 0), np.float32), np.zeros(5, int))
    with pytest.raises(ValueError, match=r"1-1-0000\.npy.*0 features"):
        AudioDataset(tmp_path, context=2)


def test_hidden_and_system_files_beside_the_utterances_are_ignored(tmp_path):
    utts = write_corpus(tmp_path)
    for folder in ("mfcc", "transcript"):
        d = tmp_path / "train-clean-100" / folder
        (d / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
        (d / "._84-121-0003.npy").write_bytes(b"\0\5\26\7")  # macOS metadata from a zip
        (d / "Thumbs.db").write_bytes(b"\xd0\xcf")
        (d / ".ipynb_checkpoints").mkdir()
    (tmp_path / "train-clean-100" / "mfcc" / "stray.bak").write_text("?")
    with pytest.raises(ValueError, match="stray.bak"):  # not hidden: it could be data, so it is not skipped
        AudioDataset(tmp_path, context=2)
    (tmp_path / "train-clean-100" / "mfcc" / "stray.bak").unlink()
    ds = AudioDataset(tmp_path, context=2)
    assert ds.utterances == sorted(utts)


@pytest.mark.parametrize("arg, value", [("subset", "0.5"), ("context", "3"), ("subset_seed", "1"),
                                        ("context", True), ("subset", None)])
def test_numbers_given_as_text_are_refused_naming_the_argument(tmp_path, arg, value):
    write_corpus(tmp_path)
    kwargs = {"subset": 0.5, arg: value}
    with pytest.raises(ValueError, match=f"{arg}={value!r}.*number"):
        AudioDataset(tmp_path, **kwargs)


def test_transcript_length_error_gives_the_expected_count(tmp_path):
    corrupt(tmp_path, "transcript too long")
    with pytest.raises(ValueError, match=r"has 15 entries, expected T\+2 = 14 .*12 frames"):
        AudioDataset(tmp_path, context=2)


# The cache (cache_dir): tests/test_data_cache.py, for both homeworks


# ---------------------------------------------------------------------------------------------
# Finding the data


def test_find_root_finds_the_partitions_in_a_nested_kaggle_folder(tmp_path):
    root = tmp_path / "downloads" / "11785-f24-hw1p2"
    write_corpus(root, {"1-1-0000": 3})
    (tmp_path / "downloads" / "unrelated").mkdir()
    assert find_root(tmp_path) == root
    assert find_root(root) == root
    assert find_root(root / "train-clean-100") == root  # given a partition folder itself
    assert AudioDataset(tmp_path, context=1).root == root


def test_find_root_says_what_to_do_when_there_is_no_data(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="download"):
        find_root(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_root(tmp_path / "nowhere")


@pytest.fixture
def fake_repo(tmp_path, monkeypatch):
    """A repository whose data/ holds only the demo corpus, and an empty working directory."""
    repo = tmp_path / "repo"
    demo = repo / "data" / "demo"
    write_corpus(demo, {"1-1-0000": 3})
    monkeypatch.setattr(corpus, "REPO_ROOT", repo)
    monkeypatch.setattr(corpus, "DEMO_ROOT", demo)
    monkeypatch.setattr(corpus, "_demo_notice_given", False)
    monkeypatch.delenv("PHONEMEKIT_DATA", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return repo


def test_default_root_falls_back_to_the_demo_corpus_with_a_notice(fake_repo, capsys):
    assert default_root() == fake_repo / "data" / "demo"
    assert "demo" in capsys.readouterr().out
    assert AudioDataset(context=1).root == fake_repo / "data" / "demo"


def test_default_root_without_data_or_demo_says_where_to_point_it(fake_repo, monkeypatch):
    installed = fake_repo / "site-packages"  # an installed package: no data/ beside it
    monkeypatch.setattr(corpus, "REPO_ROOT", installed)
    monkeypatch.setattr(corpus, "DEMO_ROOT", installed / "data" / "demo")
    with pytest.raises(FileNotFoundError, match="PHONEMEKIT_DATA"):
        default_root()


def test_the_demo_notice_is_printed_once_per_process(fake_repo, capsys):
    default_root(), default_root()
    assert capsys.readouterr().out.count("no Kaggle data found") == 1


def test_default_root_prefers_kaggle_data_over_the_demo(fake_repo, tmp_path, monkeypatch, capsys):
    kaggle = fake_repo / "data" / "11785-s25-hw1p2"
    write_corpus(kaggle, {"1-1-0000": 3})
    assert default_root() == kaggle
    elsewhere = tmp_path / "mnt" / "hw1p2"
    write_corpus(elsewhere, {"1-1-0000": 3})
    monkeypatch.setenv("PHONEMEKIT_DATA", str(tmp_path / "mnt"))
    assert default_root() == elsewhere
    assert "demo" not in capsys.readouterr().out


def test_synthetic_corpus_has_the_kaggle_layout_and_loads(tmp_path):
    make_corpus(tmp_path, 6, n_features=15, mean_frames=20, test_transcripts=False)
    assert sorted(d.name for d in tmp_path.iterdir()) == ["dev-clean", "test-clean", "train-clean-100"]
    assert not (tmp_path / "test-clean" / "transcript").exists()
    ds = AudioDataset(tmp_path, context=2)
    assert len(ds.utterances) == 6 and ds.n_features == 15
    assert AudioDataset(tmp_path, "test-clean", context=2).labels is None


def test_utterance_shapes_reads_headers_in_sorted_order(tmp_path):
    write_corpus(tmp_path, {"b-1-0001": 4, "a-1-0000": 7}, f=15)
    assert data.utterance_shapes(tmp_path, "train-clean-100") == [(7, 15), (4, 15)]
    assert data.utterance_shapes(tmp_path, "train-clean-100", limit=1) == [(7, 15)]


# ---------------------------------------------------------------------------------------------
# Training and validation sets that do not fit together: found before the first epoch


def test_check_compatible_names_both_partitions_and_their_feature_dimensions(tmp_path):
    # dev from another folder (in one folder the dataset itself refuses it: tests/test_corpus.py)
    write_corpus(tmp_path / "a", f=28)
    write_corpus(tmp_path / "b", {"5-5-0000": 9}, f=27, partition="dev-clean")
    train, dev = AudioDataset(tmp_path / "a", context=2), AudioDataset(tmp_path / "b", "dev-clean", context=2)
    with pytest.raises(ValueError) as err:
        data.check_compatible(train, dev)
    msg = str(err.value)
    assert "train-clean-100" in msg and "dev-clean" in msg and "28" in msg and "27" in msg


def test_check_compatible_compares_how_the_frames_are_prepared(tmp_path):
    write_corpus(tmp_path)
    write_corpus(tmp_path, {"5-5-0000": 9, "6-6-0000": 4}, seed=2, partition="dev-clean")
    train = AudioDataset(tmp_path, context=2, normalize="global")
    data.check_compatible(train, AudioDataset(tmp_path, "dev-clean", context=2, normalize="global", stats=train.stats))
    for other, word in [({"context": 3}, "context"), ({"boundary": "utterance"}, "boundary"),
                        ({"normalize": "cepstral"}, "normalize"),
                        ({"stats": (train.stats[0] + 1, train.stats[1])}, "stats")]:
        opts = {"context": 2, "normalize": "global", "stats": train.stats, **other}
        with pytest.raises(ValueError, match=word):
            data.check_compatible(train, AudioDataset(tmp_path, "dev-clean", **opts))


def test_the_summary_names_the_most_common_class_as_a_phoneme():
    from phonemekit.data import DEMO_ROOT, describe

    assert "most common class: [SIL]" in describe(AudioDataset(DEMO_ROOT, "dev-clean", context=0))
