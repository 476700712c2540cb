"""phonemekit.ensemble: what a student relies on when several models vote on the test frames."""

import numpy as np
import pytest
import torch

import phonemekit.ensemble as ensemble
from phonemekit.data import AudioDataset, FrameLoader
from phonemekit.ensemble import combine, compare, datasets_for, ensemble_predict, load_members
from phonemekit.model import build_mlp
from phonemekit.synthetic import make_learnable_corpus
from phonemekit.submit import predict
from phonemekit.train import Config, fit, load_checkpoint

F, K = 8, 8  # features per frame; classes used by the synthetic task


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A learnable task in the Kaggle layout: each frame's label decides its features' mean."""
    return make_learnable_corpus(tmp_path_factory.mktemp("corpus"), {"train-clean-100": 8, "dev-clean": 3},
                                 frames=(60, 140), n_features=F, n_classes=K, spread=2, seed=0)


@pytest.fixture(scope="module")
def dev(corpus):
    return AudioDataset(corpus, "dev-clean", context=2)


def mlp(context, width=16, seed=0):
    torch.manual_seed(seed)
    return build_mlp((2 * context + 1) * F, hidden=[width]).eval()


def test_mean_of_one_model_repeated_predicts_what_that_model_predicts(dev):
    m = mlp(2)
    assert torch.equal(ensemble_predict([m, m, m], dev), predict(m, dev))


def test_ensemble_predictions_are_class_ids_in_dataset_order(dev):
    a, b = mlp(2, seed=0), mlp(2, seed=1)
    ids = ensemble_predict([a, b], dev)
    assert ids.dtype == torch.int64 and ids.shape == (len(dev),)
    expected = (predict(a, dev, return_probs=True) + predict(b, dev, return_probs=True)).argmax(1)
    assert torch.equal(ids, expected)


def test_mean_averages_probabilities_not_votes():
    # member 0 is sure of class 0; members 1 and 2 lean weakly to class 1
    p0 = torch.tensor([[0.9, 0.1, 0.0]])
    p1 = torch.tensor([[0.4, 0.6, 0.0]])
    assert combine([p0, p1, p1], "mean").item() == 0  # (0.9+0.4+0.4)/3 > (0.1+0.6+0.6)/3
    assert combine([p0, p1, p1], "vote").item() == 1  # two votes against one


def test_vote_ties_go_to_the_class_with_the_higher_summed_probability():
    a = torch.tensor([[0.5, 0.3, 0.2], [0.3, 0.6, 0.1], [0.25, 0.75, 0.0]])
    b = torch.tensor([[0.1, 0.8, 0.1], [0.5, 0.1, 0.4], [0.75, 0.25, 0.0]])
    # every frame is a 1-1 tie in votes; frame 0: summed probability favours class 1 (1.1 vs
    # 0.6), frame 1 class 0 (0.8 vs 0.7); frame 2 ties in both, and goes to the lower id
    assert combine([a, b], "vote").tolist() == [1, 0, 0]


def test_max_takes_the_most_confident_member_per_frame():
    a = torch.tensor([[0.6, 0.4, 0.0], [0.2, 0.3, 0.5]])
    b = torch.tensor([[0.1, 0.0, 0.9], [0.4, 0.4, 0.2]])
    assert combine([a, b], "max").tolist() == [2, 2]  # frame 0 from b (0.9), frame 1 from a (0.5)


def test_weighted_with_a_zero_weight_ignores_that_member(dev):
    a, b = mlp(2, seed=0), mlp(2, seed=1)
    assert torch.equal(ensemble_predict([a, b], dev, method="weighted", weights=[0, 1]), predict(b, dev))
    assert torch.equal(ensemble_predict([a, b], dev, method="weighted", weights=[1, 0]), predict(a, dev))


def test_weighted_without_weights_uses_each_members_dev_accuracy(dev):
    a, b = mlp(2, seed=0), mlp(2, seed=1)
    accs = [(predict(m, dev) == dev.labels.long()).double().mean().item() for m in (a, b)]
    ids = ensemble_predict([a, b], dev, method="weighted", dev=dev)
    assert torch.equal(ids, ensemble_predict([a, b], dev, method="weighted", weights=accs))
    with pytest.raises(ValueError, match="dev="):
        ensemble_predict([a, b], dev, method="weighted")


def test_budget_is_checked_across_members_before_anything_is_predicted(dev, monkeypatch):
    a, b = mlp(2, width=64), mlp(2, width=64)  # (5*8)*64 + 64*2 + 64*40 + 40 = 5,288 each
    n = sum(p.numel() for p in a.parameters())
    calls = []
    monkeypatch.setattr(ensemble, "predict", lambda *a, **k: calls.append(1))
    with pytest.raises(ValueError, match="ensemble of 2 models"):
        ensemble_predict([a, b], dev, budget=2 * n - 1)
    assert calls == []
    monkeypatch.undo()
    assert len(ensemble_predict([a, b], dev, budget=2 * n)) == len(dev)


def test_members_trained_at_other_contexts_need_their_own_frames(dev):
    a, b = mlp(2), mlp(4, seed=1)
    with pytest.raises(ValueError, match="datasets_for"):
        ensemble_predict([a, b], dev)
    sets = datasets_for([a, b], dev)
    assert [d.context for d in sets] == [2, 4] and sets[0] is dev
    expected = (predict(a, sets[0], return_probs=True) + predict(b, sets[1], return_probs=True)).argmax(1)
    assert torch.equal(ensemble_predict([a, b], sets), expected)


@pytest.mark.parametrize("boundary", ["concat", "utterance"])
def test_a_dataset_at_another_context_equals_a_fresh_load(corpus, boundary):
    small = AudioDataset(corpus, "dev-clean", context=2, boundary=boundary)
    fresh = AudioDataset(corpus, "dev-clean", context=5, boundary=boundary)
    derived = small.with_context(5)
    idx = torch.arange(len(fresh))
    x, y = derived[idx]
    assert torch.equal(x, fresh[idx][0]) and torch.equal(y, fresh[idx][1])
    assert small.context == 2 and small[idx][0].shape[1] == 5  # the original is untouched
    assert torch.equal(derived.with_context(2)[idx][0], small[idx][0])


def test_datasets_of_different_frames_are_refused(corpus, dev):
    train = AudioDataset(corpus, "train-clean-100", context=2)
    with pytest.raises(ValueError, match="same frames"):
        ensemble_predict([mlp(2), mlp(2)], [dev, train])


def test_checkpoint_paths_are_members_too(corpus, dev, tmp_path):
    config = Config(root=str(corpus), context=2, hidden=[16], epochs=1, batch_size=128, scheduler="none",
                    device="cpu", amp="off", checkpoint_dir=str(tmp_path / "run"))
    result = fit(config, progress=False, verbose=False)
    by_path = ensemble_predict([tmp_path / "run" / "best.pt", str(tmp_path / "run")], dev)
    assert torch.equal(by_path, predict(result.model, dev))


def test_compare_reports_every_member_and_every_method(dev):
    a, b = mlp(2, seed=0), mlp(2, seed=1)
    table = compare([a, b], dev, names=["a", "b"])
    assert list(table["name"]) == ["a", "b", "ensemble (mean)", "ensemble (weighted)", "ensemble (vote)",
                                   "ensemble (max)"]
    acc_a = (predict(a, dev) == dev.labels.long()).double().mean().item()
    assert table["dev_acc"].iloc[0] == pytest.approx(acc_a)
    mean = (ensemble_predict([a, b], dev) == dev.labels.long()).double().mean().item()
    assert table["dev_acc"].iloc[2] == pytest.approx(mean)
    assert table["params"].iloc[2] == table["params"].iloc[0] + table["params"].iloc[1]


def test_unknown_method_and_stray_weights_are_errors(dev):
    with pytest.raises(ValueError, match="choose one of"):
        ensemble_predict([mlp(2)], dev, method="median")
    with pytest.raises(ValueError, match="weighted"):
        ensemble_predict([mlp(2)], dev, method="mean", weights=[1.0])
    with pytest.raises(ValueError, match="one per model"):
        ensemble_predict([mlp(2), mlp(2)], dev, method="weighted", weights=[1.0])


# ---------------------------------------------------------------------------------------------
# Each member's frames prepared as it was trained


def trained(corpus, folder, **options):
    """A checkpoint of one quick training run with these data options (best.pt)."""
    config = Config(root=str(corpus), hidden=[16], epochs=1, batch_size=128, scheduler="none", device="cpu",
                    amp="off", checkpoint_dir=str(folder), **{"context": 2, **options})
    fit(config, progress=False, verbose=False)
    return folder / "best.pt"


def with_stats(path, stats):
    """The checkpoint as the training engine writes it: the global statistics beside the config."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    ckpt["stats"] = None if stats is None else {"mean": [float(v) for v in stats[0]],
                                                "std": [float(v) for v in stats[1]]}
    torch.save(ckpt, path)
    return path


def test_each_member_gets_frames_normalised_and_padded_as_it_was_trained(corpus, dev, tmp_path):
    raw = trained(corpus, tmp_path / "raw", normalize="none")
    scaled = trained(corpus, tmp_path / "scaled", normalize="minmax", boundary="utterance", context=3)
    fresh = [AudioDataset(corpus, "dev-clean", context=2, normalize="none"),
             AudioDataset(corpus, "dev-clean", context=3, normalize="minmax", boundary="utterance")]
    models = [load_checkpoint(p)[0] for p in (raw, scaled)]
    expected = combine([predict(m, d, return_probs=True) for m, d in zip(models, fresh)])
    with pytest.raises(ValueError, match="normalize='none'.*datasets_for"):
        ensemble_predict([raw], dev)  # dev is cepstral, at the member's context: refused, not fed
    for members in ([raw, scaled], load_members([raw, scaled])):  # paths, or models loaded from them
        sets = datasets_for(members, dev)
        for ds, want in zip(sets, fresh):
            assert (ds.normalize, ds.boundary, ds.context) == (want.normalize, want.boundary, want.context)
            idx = torch.arange(len(want))
            assert torch.equal(ds[idx][0], want[idx][0])
        assert torch.equal(ensemble_predict(members, sets), expected)


def test_a_member_trained_with_global_statistics_gets_those_from_its_checkpoint(corpus, dev, tmp_path):
    stats = (np.full(F, 0.5, np.float32), np.full(F, 2.0, np.float32))  # not the training set's own
    path = with_stats(trained(corpus, tmp_path / "run", normalize="global"), stats)
    (ds,) = datasets_for([path], dev)
    fresh = AudioDataset(corpus, "dev-clean", context=2, normalize="global", stats=stats)
    assert ds.normalize == "global" and torch.equal(ds.features, fresh.features)
    assert torch.equal(ensemble_predict([path], [ds]), predict(load_checkpoint(path)[0], fresh))
    other = AudioDataset(corpus, "dev-clean", context=2, normalize="global")  # the training set's statistics
    with pytest.raises(ValueError, match="statistics.*datasets_for"):
        ensemble_predict([path], other)


def test_a_global_member_without_statistics_says_how_to_fix_it(corpus, dev, tmp_path):
    path = with_stats(trained(corpus, tmp_path / "run", normalize="global"), None)
    with pytest.raises(ValueError, match="no statistics") as err:
        datasets_for([path], dev)
    assert "retrain" in str(err.value) and "stats=" in str(err.value)
    stats = AudioDataset(corpus, context=0, normalize="global").stats
    (ds,) = datasets_for([path], dev, stats=stats)
    fresh = AudioDataset(corpus, "dev-clean", context=2, normalize="global", stats=stats)
    assert torch.equal(ds.features, fresh.features)


@pytest.mark.parametrize("boundary", ["concat", "utterance"])
def test_members_prepared_alike_share_one_dataset_and_one_copy_of_the_frames(corpus, boundary):
    dev = AudioDataset(corpus, "dev-clean", context=2, boundary=boundary)
    sets = datasets_for([mlp(2), mlp(1, seed=1), mlp(2, seed=2), mlp(4, seed=3), mlp(3, seed=4)], dev)
    assert sets[0] is dev and sets[2] is dev
    assert sets[1].features.data_ptr() == dev.features.data_ptr()  # a smaller context reads the same rows
    assert sets[3].features.data_ptr() == sets[4].features.data_ptr()  # one new copy for the larger contexts
    for ds in sets:  # the same windows as a fresh load, item by item and through the loader
        fresh = AudioDataset(corpus, "dev-clean", context=ds.context, boundary=boundary)
        idx = torch.arange(len(fresh))
        assert torch.equal(ds[idx][0], fresh[idx][0])
        assert torch.equal(torch.cat([x for x, _ in FrameLoader(ds, 64, shuffle=False)]), fresh[idx][0])
