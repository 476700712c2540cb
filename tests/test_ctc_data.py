"""HW3P2 data: the 41-class map, UtteranceDataset against a plain reading of the files, the
sequence loader's order, padding and bucketing, the demo's sequence transcripts, bad input."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from ctc_corpus import write_corpus
from phonemekit.data import DEMO_ROOT
from phonemekit.phonemes import (
    CLASSES, CTC_CHARS, CTC_PHONEMES, EOS, HW1_TO_CTC, SOS, from_string, to_ctc_indices, to_string,
)
from phonemekit.sequences import SequenceLoader, UtteranceDataset, pad_batch, padding_ratio

REPO = Path(__file__).resolve().parents[1]


# ---- labels ---------------------------------------------------------------------------------


def test_ctc_classes_are_the_starter_notebooks_41_with_the_blank_first():
    assert len(CTC_PHONEMES) == len(CTC_CHARS) == 41
    assert CTC_PHONEMES[0] == "" and CTC_CHARS[0] == " " and CTC_PHONEMES[1] == "[SIL]"
    assert CTC_PHONEMES[2:6] == ["NG", "F", "M", "AE"] and CTC_PHONEMES[-1] == "IH"
    assert CTC_CHARS[1:6] == ["-", "G", "f", "m", "@"] and CTC_CHARS[-1] == "I"
    assert set(CTC_PHONEMES[1:]) == set(CLASSES) and len(set(CTC_CHARS)) == 41


def test_phonemes_map_to_indices_and_one_character_strings_and_back():
    idx = to_ctc_indices(["[SIL]", "AH", "B", "SIL"])
    assert idx == [1, 26, 27, 1]
    assert to_string(idx) == "-Ab-" and from_string("-Ab-") == idx
    assert [CTC_PHONEMES[HW1_TO_CTC[i]] for i in range(40)] == CLASSES
    with pytest.raises(KeyError, match="XX"):
        to_ctc_indices(["AH", "XX"])
    with pytest.raises(ValueError, match="phoneme characters"):
        from_string("A b")


# ---- the dataset against a plain reading ------------------------------------------------------


def plain_reading(root, partition):
    """The reference semantics, written the obvious way."""
    out = []
    for f in sorted((Path(root) / partition / "mfcc").iterdir()):
        x = np.load(f)
        x = (x - x.mean(0)) / x.std(0)
        t = Path(root) / partition / "transcript" / f.name
        y = [CTC_PHONEMES.index(p) for p in np.load(t)[1:-1]] if t.exists() else None
        out.append((f.stem, x, y))
    return out


def test_dataset_equals_a_plain_reading_of_the_files(tmp_path):
    write_corpus(tmp_path)
    for partition in ("train-clean-100", "dev-clean"):
        ds = UtteranceDataset(tmp_path, partition)
        ref = plain_reading(tmp_path, partition)
        assert ds.utterances == [r[0] for r in ref] == sorted(ds.utterances)
        for u, (_, x, y) in enumerate(ref):
            got_x, got_y = ds[u]
            np.testing.assert_allclose(got_x.numpy(), x, atol=1e-5)
            assert got_x.dtype == torch.float32 and got_y.dtype == torch.int64
            assert got_y.tolist() == y
        # one array of frames and one of labels, with offsets: no per-utterance tensors
        assert ds.features.shape == (sum(len(r[1]) for r in ref), ds.n_features)
        assert ds.labels.dtype == torch.uint8 and len(ds.labels) == sum(len(r[2]) for r in ref)
        assert ds.offsets[-1] == len(ds.features) and ds.label_offsets[-1] == len(ds.labels)


def test_test_partition_is_unlabelled_in_file_order_and_never_subset(tmp_path):
    write_corpus(tmp_path)
    test = UtteranceDataset(tmp_path, "test-clean")
    assert test.labels is None and test.utterances == sorted(test.utterances)
    assert isinstance(test[0], torch.Tensor)
    assert UtteranceDataset(tmp_path, "test-clean", with_labels=True).labels is not None
    with pytest.raises(ValueError, match="never subset"):
        UtteranceDataset(tmp_path, "test-clean", subset=0.5)


def test_subset_is_a_fixed_choice_of_whole_utterances_in_sorted_order(tmp_path):
    write_corpus(tmp_path)
    a = UtteranceDataset(tmp_path, "train-clean-100", subset=0.25)
    b = UtteranceDataset(tmp_path, "train-clean-100", subset=0.25)
    full = UtteranceDataset(tmp_path, "train-clean-100")
    assert a.utterances == b.utterances == sorted(a.utterances) and len(a) == 12
    u = full.utterances.index(a.utterances[3])
    assert torch.equal(a[3][1], full[u][1])


def test_batch_pads_with_zeros_and_reports_lengths(tmp_path):
    write_corpus(tmp_path)
    ds = UtteranceDataset(tmp_path, "dev-clean")
    x, xl, y, yl = ds.batch([2, 0, 5])
    for row, u in enumerate([2, 0, 5]):
        fx, fy = ds[u]
        assert xl[row] == len(fx) and yl[row] == len(fy)
        assert torch.equal(x[row, : len(fx)], fx) and not x[row, len(fx):].any()
        assert torch.equal(y[row, : len(fy)], fy) and not y[row, len(fy):].any()
    # the same as a torch DataLoader with pad_batch
    ref = pad_batch([ds[2], ds[0], ds[5]])
    for a, b in zip((x, xl, y, yl), ref):
        assert torch.equal(a, b)


# ---- the loader -------------------------------------------------------------------------------


@pytest.mark.parametrize("bucketing", [True, False])
def test_every_utterance_once_per_epoch_and_the_order_is_a_function_of_seed_and_epoch(tmp_path, bucketing):
    write_corpus(tmp_path)
    ds = UtteranceDataset(tmp_path, "train-clean-100")
    a = SequenceLoader(ds, 5, shuffle=True, seed=3, bucketing=bucketing)
    b = SequenceLoader(ds, 5, shuffle=True, seed=3, bucketing=bucketing)
    assert sorted(a.order().tolist()) == list(range(len(ds)))
    assert torch.equal(a.order(), b.order())
    first = a.order()
    list(a)  # an epoch moves on
    assert a.epoch == 1 and not torch.equal(a.order(), first)
    b.set_epoch(1)
    assert torch.equal(a.order(), b.order())
    assert len(a) == len(list(a)) == 10  # 48 utterances in batches of 5


def test_batches_map_back_to_their_utterances(tmp_path):
    write_corpus(tmp_path)
    ds = UtteranceDataset(tmp_path, "train-clean-100")
    loader = SequenceLoader(ds, 7, shuffle=True, seed=0)
    for idx, (x, xl, y, yl) in zip(loader.batches(), loader):
        for row, u in enumerate(idx.tolist()):
            fx, fy = ds[u]
            assert torch.equal(x[row, : len(fx)], fx) and torch.equal(y[row, : yl[row]], fy)


def test_unlabelled_sets_are_served_in_file_order_only(tmp_path):
    write_corpus(tmp_path)
    test = UtteranceDataset(tmp_path, "test-clean")
    loader = SequenceLoader(test, 3, shuffle=False)
    assert loader.order().tolist() == list(range(len(test)))
    x, xl = next(iter(loader))
    assert torch.equal(x[0, : xl[0]], test[0])
    for kwargs in ({"shuffle": True}, {"shuffle": False, "bucketing": True}):
        with pytest.raises(ValueError, match="file order"):
            SequenceLoader(test, 3, **kwargs)


def test_bucketing_cuts_padding_and_drop_last_drops_the_short_batch(tmp_path):
    write_corpus(tmp_path, counts={"train-clean-100": 200}, phones=(2, 40))
    ds = UtteranceDataset(tmp_path, "train-clean-100")
    plain = padding_ratio(SequenceLoader(ds, 8, seed=0, bucketing=False))
    bucketed = padding_ratio(SequenceLoader(ds, 8, seed=0, bucketing=True))
    assert bucketed < 1.1 < plain
    loader = SequenceLoader(ds, 16, seed=0, drop_last=True)
    assert len(loader) == 12 and all(len(b) == 16 for b in loader.batches())
    # unshuffled with bucketing: sorted by length, for a faster validation
    val = SequenceLoader(ds, 16, shuffle=False, bucketing=True)
    assert (np.diff(ds.lengths[val.order().numpy()]) >= 0).all()


# ---- the demo ---------------------------------------------------------------------------------


def test_the_demo_serves_hw3p2_sequences_without_any_option():
    ds = UtteranceDataset(DEMO_ROOT, "dev-clean")
    assert len(ds) == 30 and ds.n_features == 28
    for u in range(len(ds)):
        frames = np.load(DEMO_ROOT / "dev-clean" / "transcript" / f"{ds.utterances[u]}.npy")[1:-1]
        seq = ds.transcript(u)
        # not time-aligned: far fewer phonemes than frames, starting and ending in silence
        assert len(seq) < len(frames) / 3 and seq[0] == seq[-1] == "[SIL]"
        assert all(a != b for a, b in zip(seq, seq[1:]))  # derived by collapsing runs
    test = UtteranceDataset(DEMO_ROOT, "test-clean", with_labels=True)  # the test answers
    assert test.labels is not None and len(test) == 30


def test_demo_sequence_files_have_hw3p2s_format():
    for partition in ("train-clean-100", "dev-clean", "test-clean"):
        seq_dir = DEMO_ROOT / partition / "transcript-hw3p2"
        names = sorted(p.name for p in seq_dir.glob("*.npy"))
        assert names == sorted(p.name for p in (DEMO_ROOT / partition / "mfcc").glob("*.npy"))
        t = np.load(seq_dir / names[0], allow_pickle=False)
        assert t.dtype == np.dtype("<U5") and t[0] == SOS and t[-1] == EOS


def load_generator():
    spec = importlib.util.spec_from_file_location("make_demo_corpus", REPO / "tools" / "make_demo_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generator_writes_the_exact_sequence_and_can_derive_one_from_frames():
    gen = load_generator()
    intervals = [("[SIL]", 0.1, 0.2), ("S", 0.2, 0.3), ("S", 0.3, 0.35), ("T", 0.35, 0.4), ("[SIL]", 0.4, 0.5)]
    # two S spoken in a row stay two; the padding is silence, merged with the synthesizer's pauses
    assert gen.phone_sequence(intervals) == ["[SIL]", "S", "S", "T", "[SIL]"]
    assert gen.phone_sequence([("AA", 0.1, 0.2)]) == ["[SIL]", "AA", "[SIL]"]
    # from frames, runs collapse: the two S become one (the README says so)
    frames = ["[SIL]", "[SIL]", "S", "S", "S", "T", "[SIL]"]
    assert gen.sequence_from_frames(frames) == ["[SIL]", "S", "T", "[SIL]"]


# ---- bad input ----------------------------------------------------------------------------------


def test_a_missing_transcript_folder_is_named(tmp_path):
    write_corpus(tmp_path, counts={"dev-clean": 3})
    for f in (tmp_path / "dev-clean" / "transcript").iterdir():
        f.unlink()
    (tmp_path / "dev-clean" / "transcript").rmdir()
    with pytest.raises(FileNotFoundError, match="transcript.*with_labels=False"):
        UtteranceDataset(tmp_path, "dev-clean")
    assert UtteranceDataset(tmp_path, "dev-clean", with_labels=False).labels is None
    with pytest.raises(FileNotFoundError, match="partition folder .*train-clean-100 is missing"):
        UtteranceDataset(tmp_path, "train-clean-100")


def test_mismatched_file_names_are_named(tmp_path):
    write_corpus(tmp_path, counts={"dev-clean": 3})
    f = sorted((tmp_path / "dev-clean" / "transcript").iterdir())[1]
    f.rename(f.with_name("999-1-0001.npy"))
    with pytest.raises(ValueError, match="999-1-0001.npy"):
        UtteranceDataset(tmp_path, "dev-clean")


@pytest.mark.parametrize("transcript, match", [
    (["AH", "B", EOS], r"must start with \[SOS\]"),
    ([SOS, "AH", "XX", EOS], r"\['XX'\], not among the 40"),
    ([SOS, "AH", "[SOS]", EOS], r"not among the 40"),
])
def test_a_bad_transcript_raises_an_error_naming_the_file(tmp_path, transcript, match):
    write_corpus(tmp_path, counts={"dev-clean": 3})
    f = sorted((tmp_path / "dev-clean" / "transcript").iterdir())[2]
    np.save(f, np.array(transcript))
    with pytest.raises(ValueError, match=match) as e:
        UtteranceDataset(tmp_path, "dev-clean")
    assert f.name in str(e.value)


def test_a_frame_aligned_hw1p2_transcript_is_recognised(tmp_path):
    write_corpus(tmp_path, counts={"dev-clean": 2})
    mfcc = sorted((tmp_path / "dev-clean" / "mfcc").iterdir())[0]
    t = len(np.load(mfcc))
    np.save(tmp_path / "dev-clean" / "transcript" / mfcc.name, np.array([SOS] + ["AH"] * t + [EOS]))
    with pytest.raises(ValueError, match=f"{mfcc.name}.*frame-aligned|frame-aligned.*{mfcc.name}"):
        UtteranceDataset(tmp_path, "dev-clean")


def test_a_subset_given_as_text_is_refused_naming_the_argument():
    from phonemekit.data import DEMO_ROOT
    from phonemekit.sequences import UtteranceDataset

    with pytest.raises(ValueError, match="subset='0.5' must be a number"):
        UtteranceDataset(DEMO_ROOT, "dev-clean", subset="0.5")
