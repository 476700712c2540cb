"""phonemekit.ensemble: what a student relies on when several models vote on the test frames."""

import pytest
import torch

import phonemekit.ensemble as ensemble
from phonemekit.data import AudioDataset
from phonemekit.ensemble import combine, compare, datasets_for, ensemble_predict
from phonemekit.model import build_mlp
from phonemekit.synthetic import make_learnable_corpus
from phonemekit.submit import predict
from phonemekit.train import Config, fit

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
