"""The corpus layer both homeworks read through (phonemekit.corpus): one set of rules for finding,
listing, reading and checking the files, checked once for AudioDataset (HW1P2) and once for
UtteranceDataset (HW3P2) by the same tests."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phonemekit import corpus
from phonemekit.data import AudioDataset
from phonemekit.sequences import UtteranceDataset
from phonemekit.synthetic import write_utterance
from test_data import BAD_INPUTS, LENGTHS, corrupt, reversed_scandir, write_corpus

# Both datasets, as a student builds them. write_corpus's transcripts are valid for both: one
# phoneme per frame for HW1P2, and for HW3P2 a sequence (random phonemes, not runs of one).
LOADERS = {
    "frames": lambda root, partition="train-clean-100", **k: AudioDataset(root, partition, context=2, **k),
    "ctc": lambda root, partition="train-clean-100", **k: UtteranceDataset(root, partition, **k),
}
HOMEWORKS = list(LOADERS)


def frames_of(ds) -> np.ndarray:
    """The stored (unpadded) frames of either dataset, in order, as float64."""
    if isinstance(ds, AudioDataset):  # each window's centre is its frame
        x = ds[torch.arange(len(ds))]
        return (x[0] if isinstance(x, tuple) else x)[:, ds.context].numpy().astype(np.float64)
    return ds.features.numpy().astype(np.float64)


# ---------------------------------------------------------------------------------------------
# Bad input: one set of cases, both homeworks

# where HW3P2's rule differs: a sequence transcript has any length (L is unrelated to T)
LOADS_FOR_CTC = {"transcript too long": 13, "transcript too short": 11}  # phonemes of the victim's sequence


@pytest.mark.parametrize("how", BAD_INPUTS)
@pytest.mark.parametrize("hw", HOMEWORKS)
def test_bad_input_raises_an_error_naming_the_file(tmp_path, hw, how):
    named = corrupt(tmp_path, how)
    if hw == "ctc" and how in LOADS_FOR_CTC:
        ds = LOADERS[hw](tmp_path)
        assert len(ds.transcript("103-1240-0000")) == LOADS_FOR_CTC[how]
        return
    with pytest.raises((ValueError, FileNotFoundError)) as err:
        LOADERS[hw](tmp_path)
    msg = str(err.value)
    assert all(n in msg for n in (named if isinstance(named, tuple) else (named,)))
    assert any(w in msg for w in ["re-extract", "remove", "fix", "check", "expected", "needs", "pass",
                                  "must", "each", "classes", "rename", "move", "copy"])  # and says what to do


@pytest.mark.parametrize("normalize", ["none", "global"])
@pytest.mark.parametrize("hw", HOMEWORKS)
def test_values_the_storage_cannot_hold_are_an_error_naming_the_file(tmp_path, hw, normalize):
    write_corpus(tmp_path, {"1-1-0000": 20, "1-1-0001": 20})
    x = np.random.default_rng(0).standard_normal((20, 28)) * 1e300  # float64, finite, beyond float32
    np.save(tmp_path / "train-clean-100" / "mfcc" / "1-1-0001.npy", x)
    with pytest.raises(ValueError, match=r"1-1-0001\.npy.*float32"):
        LOADERS[hw](tmp_path, normalize=normalize)


@pytest.mark.parametrize("hw", HOMEWORKS)
def test_a_dev_set_with_other_features_than_train_is_refused_when_it_is_built(tmp_path, hw):
    write_corpus(tmp_path, f=28)
    write_corpus(tmp_path, {"5-5-0000": 9}, f=27, partition="dev-clean")
    LOADERS[hw](tmp_path)  # train alone is fine
    with pytest.raises(ValueError) as err:  # not after an epoch, in the model
        LOADERS[hw](tmp_path, "dev-clean")
    msg = str(err.value)
    assert "train-clean-100" in msg and "dev-clean" in msg and "28" in msg and "27" in msg


@pytest.mark.parametrize("hw", HOMEWORKS)
def test_check_compatible_takes_either_homeworks_datasets(tmp_path, hw):
    write_corpus(tmp_path / "a", f=28)
    write_corpus(tmp_path / "b", {"5-5-0000": 9}, f=27, partition="dev-clean")
    train = LOADERS[hw](tmp_path / "a")
    corpus.check_compatible(train, LOADERS[hw](tmp_path / "a", with_labels=False))
    with pytest.raises(ValueError, match="28.*27"):
        corpus.check_compatible(train, LOADERS[hw](tmp_path / "b", "dev-clean"))
    with pytest.raises(ValueError, match="normalize"):
        corpus.check_compatible(train, LOADERS[hw](tmp_path / "a", normalize="minmax"))
    other = LOADERS["ctc" if hw == "frames" else "frames"](tmp_path / "a")
    with pytest.raises(ValueError, match="same homework"):
        corpus.check_compatible(train, other)


# ---------------------------------------------------------------------------------------------
# Counting what the loader loads


@pytest.mark.parametrize("hw", HOMEWORKS)
def test_counting_test_utterances_and_frames_skips_hidden_files_like_the_loader(tmp_path, hw):
    write_corpus(tmp_path, partition="test-clean", labels=False)
    mfcc = tmp_path / "test-clean" / "mfcc"
    (mfcc / "._84-121-0003.npy").write_bytes(b"\0\5\26\7")  # macOS metadata from a zip
    (mfcc / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (mfcc / "Thumbs.db").write_bytes(b"\xd0\xcf")
    ds = LOADERS[hw](tmp_path, "test-clean")
    assert corpus.count_utterances(tmp_path, "test-clean") == len(ds.utterances) == len(LENGTHS)
    assert corpus.count_frames(tmp_path, "test-clean") == int(ds.offsets[-1]) == sum(LENGTHS.values())


def test_counting_an_empty_partition_says_what_to_pass(tmp_path):
    (tmp_path / "test-clean" / "mfcc").mkdir(parents=True)
    for count in (corpus.count_utterances, corpus.count_frames):
        with pytest.raises(FileNotFoundError, match="n-frames"):
            count(tmp_path, "test-clean")


# ---------------------------------------------------------------------------------------------
# Global statistics: the training frames', for dev and test of both homeworks


@pytest.mark.parametrize("partition", ["dev-clean", "test-clean"])
@pytest.mark.parametrize("hw", HOMEWORKS)
def test_global_statistics_of_dev_and_test_are_the_training_frames(tmp_path, hw, partition):
    train = write_corpus(tmp_path, seed=1)
    other = write_corpus(tmp_path, {"5-5-0000": 9, "6-6-0000": 4}, seed=2, partition=partition)
    for name in other:  # shifted and scaled: their own statistics are far from train's
        f = tmp_path / partition / "mfcc" / f"{name}.npy"
        np.save(f, np.load(f) * 3 + 10)
    frames = np.concatenate([x for x, _ in train.values()]).astype(np.float64)
    mean, std = frames.mean(axis=0), frames.std(axis=0)
    ds = LOADERS[hw](tmp_path, partition, normalize="global", with_labels=False)
    np.testing.assert_allclose(ds.stats[0], mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ds.stats[1], std, rtol=1e-5)
    raw = np.concatenate([np.load(tmp_path / partition / "mfcc" / f"{n}.npy") for n in sorted(other)])
    np.testing.assert_allclose(frames_of(ds), (raw - mean) / std, rtol=1e-4, atol=1e-4)
    tr = LOADERS[hw](tmp_path, normalize="global")
    given = LOADERS[hw](tmp_path, partition, normalize="global", with_labels=False, stats=tr.stats)
    np.testing.assert_allclose(frames_of(given), frames_of(ds), rtol=1e-5, atol=1e-5)


def test_without_a_training_partition_global_statistics_must_be_given(tmp_path):
    write_corpus(tmp_path, partition="dev-clean")
    with pytest.raises(FileNotFoundError, match="stats=train_dataset.stats"):
        AudioDataset(tmp_path, "dev-clean", normalize="global")


# ---------------------------------------------------------------------------------------------
# Listing and subsets


@pytest.mark.parametrize("hw", HOMEWORKS)
def test_both_homeworks_read_files_in_sorted_order_whatever_the_file_system_lists(tmp_path, monkeypatch, hw):
    utts = write_corpus(tmp_path)
    listed = reversed_scandir(monkeypatch)
    ds = LOADERS[hw](tmp_path, normalize="none")
    assert listed  # the loader listed the folders through os.scandir, reversed
    assert ds.utterances == sorted(LENGTHS)
    np.testing.assert_array_equal(frames_of(ds), np.concatenate([utts[n][0] for n in sorted(utts)]))


@settings(max_examples=40, deadline=None)
@given(names=st.lists(st.from_regex(r"[0-9]{1,4}-[0-9]{1,3}-[0-9]{4}", fullmatch=True), min_size=1,
                      max_size=12, unique=True),
       hidden=st.lists(st.sampled_from(["._x.npy", ".DS_Store", "Thumbs.db", "desktop.ini", ".ipynb_checkpoints"]),
                       unique=True))
def test_listing_is_the_sorted_utterance_files_without_hidden_or_system_files(names, hidden):
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        for n in names:
            (d / f"{n}.npy").write_bytes(b"")
        for h in hidden:
            (d / h).mkdir() if h.startswith(".ipynb") else (d / h).write_bytes(b"?")
        assert [p.name for p in corpus.listing(d)] == sorted(f"{n}.npy" for n in names)


@pytest.mark.parametrize("hw", HOMEWORKS)
def test_both_homeworks_take_the_same_subset_of_utterances(tmp_path, hw):
    lengths = {f"{100 + k}-1-{k:04d}": 2 + k % 5 for k in range(40)}
    write_corpus(tmp_path, lengths)
    for seed in (0, 1):
        ds = LOADERS[hw](tmp_path, subset=0.25, subset_seed=seed)
        pick = corpus.subset_indices(40, 0.25, seed)
        assert ds.utterances == [sorted(lengths)[i] for i in pick] and len(pick) == 10


# ---------------------------------------------------------------------------------------------
# Context windows (HW1P2), against the plainest reading: pad the concatenation, slice


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lengths=st.lists(st.integers(1, 12), min_size=1, max_size=5), context=st.integers(0, 8),
       boundary=st.sampled_from(["concat", "utterance"]), f=st.integers(1, 4), data=st.data())
def test_the_window_of_any_frame_is_a_slice_of_the_zero_padded_concatenation(lengths, context, boundary, f, data):
    rng = np.random.default_rng(len(lengths) * 100 + context)
    xs = [rng.standard_normal((t, f)).astype(np.float32) for t in lengths]
    with tempfile.TemporaryDirectory() as d:
        for u, x in enumerate(xs):
            write_utterance(d, "train-clean-100", f"{u}-1-0000", x, np.zeros(len(x), int))
        ds = AudioDataset(d, context=context, boundary=boundary, normalize="none")
        idx = data.draw(st.lists(st.integers(0, sum(lengths) - 1), min_size=1, max_size=20))
        got = ds[torch.tensor(idx)][0].numpy()
    if boundary == "concat":  # the course's: C zeros at both ends of all utterances together
        padded = np.pad(np.concatenate(xs), ((context, context), (0, 0)))
        want = [padded[i : i + 2 * context + 1] for i in idx]
    else:  # each utterance padded on its own
        per = [np.pad(x, ((context, context), (0, 0))) for x in xs]
        where = [(u, j) for u, x in enumerate(xs) for j in range(len(x))]
        want = [per[where[i][0]][where[i][1] : where[i][1] + 2 * context + 1] for i in idx]
    np.testing.assert_array_equal(got, np.stack(want))

