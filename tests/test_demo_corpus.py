"""The shipped demo corpus (data/demo): Kaggle's layout and formats, loadable, and aligned."""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from phonemekit.data import AudioDataset
from phonemekit.phonemes import CLASSES, EOS, SOS

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo"
LABELLED = ("train-clean-100", "dev-clean")
PARTITIONS = LABELLED + ("test-clean",)


def load_generator():
    spec = importlib.util.spec_from_file_location("make_demo_corpus", REPO / "tools" / "make_demo_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def names(partition, kind):
    return sorted(p.name for p in (DEMO / partition / kind).glob("*.npy"))


def speakers(partition):
    return {n.split("-")[0] for n in names(partition, "mfcc")}


def test_demo_has_the_kaggle_layout_with_matching_file_names():
    for partition in PARTITIONS:
        mfcc = names(partition, "mfcc")
        assert mfcc == names(partition, "transcript"), f"{partition}: mfcc/ and transcript/ differ"
        assert all(re.fullmatch(r"\d+-\d+-\d{4}\.npy", n) for n in mfcc), "LibriSpeech-style ids"
    assert len(names("train-clean-100", "mfcc")) >= 200  # a few hundred
    assert 20 <= len(names("dev-clean", "mfcc")) <= 100  # a few dozen
    assert 20 <= len(names("test-clean", "mfcc")) <= 100
    assert (DEMO / "README.md").is_file()


def test_demo_fits_in_15_mb():
    total = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert total <= 15 * 2**20, f"data/demo holds {total / 2**20:.1f} MB"


def test_demo_files_have_the_course_formats_and_load_without_pickle():
    for partition in PARTITIONS:
        for name in names(partition, "mfcc"):
            x = np.load(DEMO / partition / "mfcc" / name, allow_pickle=False)
            y = np.load(DEMO / partition / "transcript" / name, allow_pickle=False)
            assert x.dtype == np.float32 and x.ndim == 2 and x.shape[1] == 28, name
            assert np.isfinite(x).all(), name
            assert y.dtype == np.dtype("<U5") and y.shape == (len(x) + 2,), name
            assert y[0] == SOS and y[-1] == EOS, name
            assert set(y[1:-1].tolist()) <= set(CLASSES), name


def test_dev_and_test_are_spoken_by_voices_absent_from_train():
    train, dev, test = (speakers(p) for p in PARTITIONS)
    assert dev and test and not (train & dev) and not (train & test) and not (dev & test)


def test_the_demo_uses_every_one_of_the_40_classes():
    seen = set()
    for name in names("train-clean-100", "transcript"):
        seen |= set(np.load(DEMO / "train-clean-100" / "transcript" / name)[1:-1].tolist())
    assert seen == set(CLASSES), f"missing: {sorted(set(CLASSES) - seen)}"


def test_every_phone_the_generator_maps_lands_in_the_40_classes():
    gen = load_generator()
    for phone in list(gen.RADIO) + ["aa", "ae", "ch", "zh", "ng", "th", "dh", "oy", "uh"]:
        assert gen.radio_to_class(phone) in CLASSES, phone
    for symbols in gen.IPA.values():
        assert set(symbols) <= set(CLASSES)
    assert gen.ipa_to_classes("ɑːɹ") == ["AA", "R"]
    assert gen.ipa_to_classes("ˈaɪɚ") == ["AY", "ER"]
    assert gen.ipa_to_classes("") == ["[SIL]"]
    with pytest.raises(KeyError, match="add it to IPA"):
        gen.ipa_to_classes("ʘ")
    with pytest.raises(KeyError, match="add it to RADIO"):
        gen.radio_to_class("xx")


@pytest.mark.parametrize("partition", PARTITIONS)
def test_audio_dataset_loads_every_demo_partition(partition):
    ds = AudioDataset(root=DEMO, partition=partition, context=5)
    frames = sum(len(np.load(DEMO / partition / "mfcc" / n, mmap_mode="r")) for n in names(partition, "mfcc"))
    assert len(ds) == frames and ds.n_features == 28
    if partition == "test-clean":
        assert ds.labels is None  # test answers are held back unless asked for
        answers = AudioDataset(root=DEMO, partition=partition, context=5, with_labels=True)
        assert answers.labels is not None and len(answers.labels) == frames
    else:
        x, y = ds[torch.arange(4)]
        assert x.shape == (4, 11, 28) and y.dtype == torch.int64


def shifted_pairs(ds, shift):
    """Frame indices t and labels of t + shift, both inside one utterance."""
    idx = []
    for u in range(len(ds.utterances)):
        lo, hi = int(ds.offsets[u]), int(ds.offsets[u + 1])
        idx.append(torch.arange(max(lo, lo - shift), min(hi, hi - shift)))
    idx = torch.cat(idx)
    return idx, ds.labels[idx + shift].long()


def frame_classifier_accuracy(train, dev, shift):
    """Dev accuracy of a small MLP on single frames, trained with labels shifted by `shift`."""
    torch.manual_seed(0)
    ti, ty = shifted_pairs(train, shift)
    di, dy = shifted_pairs(dev, shift)
    tx, dx = train[ti][0].flatten(1), dev[di][0].flatten(1)
    model = torch.nn.Sequential(torch.nn.Linear(tx.shape[1], 128), torch.nn.ReLU(), torch.nn.Linear(128, 40))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(2):
        for b in torch.randperm(len(tx), generator=g).split(1024):
            loss = torch.nn.functional.cross_entropy(model(tx[b]), ty[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return (model(dx).argmax(1) == dy).float().mean().item()


def test_labels_are_aligned_a_frame_classifier_does_best_unshifted():
    # If the labels were early or late, a classifier would fit labels shifted the other way
    # better. It sees one frame (context 0), so a shift of 2 frames (20 ms) must cost accuracy.
    train = AudioDataset(root=DEMO, partition="train-clean-100", context=0)
    dev = AudioDataset(root=DEMO, partition="dev-clean", context=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small only loses time to thread hand-offs
    try:
        acc = {s: frame_classifier_accuracy(train, dev, s) for s in (-2, 0, 2)}
    finally:
        torch.set_num_threads(threads)
    sil = (dev.labels == 0).float().mean().item()
    assert acc[0] > max(acc[-2], acc[2]), acc
    assert acc[0] > sil + 0.1, f"unshifted accuracy {acc[0]:.3f} barely beats [SIL]'s share {sil:.3f}"
