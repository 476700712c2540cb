"""The fast paths change nothing but the speed: same accuracy, same batches, same predictions."""

import pytest
import torch
import torch.nn.functional as F

from phonemekit import bench
from phonemekit.data import DEMO_ROOT, AudioDataset, FrameLoader
from phonemekit.model import build_mlp
from phonemekit.submit import predict
from phonemekit.synthetic import make_corpus
from phonemekit.train import evaluate, train_epoch

CONTEXT = 4


@pytest.fixture(scope="module")
def demo():
    train = AudioDataset(DEMO_ROOT, "train-clean-100", context=CONTEXT, subset=0.5)
    val = AudioDataset(DEMO_ROOT, "dev-clean", context=CONTEXT)
    return train, val


def tiny_model(ds, seed=0):
    torch.manual_seed(seed)
    return build_mlp(ds.window * ds.n_features, hidden=[128], norm="before", dropout=0.0)


def plain_fit(model, train, val, epochs, batch_size, lr, seed):
    """The textbook way: a per-item DataLoader over the dataset, the usual loop, .item() per step."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True, generator=g, drop_last=True)
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            loss.item()
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in torch.utils.data.DataLoader(val, batch_size=1024):
            correct += (model(x).argmax(1) == y).sum().item()
            total += len(y)
    return correct / total


def fast_fit(model, train, val, epochs, batch_size, lr, seed):
    """The kit's way: FrameLoader (one gather per batch) and train_epoch / evaluate."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loader = FrameLoader(train, batch_size, shuffle=True, drop_last=True, seed=seed)
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        train_epoch(model, loader, opt, log_every=50)
    return evaluate(model, FrameLoader(val, 4096, shuffle=False))[1]


def test_the_fast_path_reaches_the_plain_loops_validation_accuracy_on_the_demo_corpus(demo):
    train, val = demo
    kw = dict(epochs=2, batch_size=256, lr=2e-3, seed=0)
    plain = plain_fit(tiny_model(train), train, val, **kw)
    fast = fast_fit(tiny_model(train), train, val, **kw)
    chance = 1 / 40
    assert plain > 10 * chance and fast > 10 * chance  # both learned
    # same model, same seed, another shuffle: equal up to the noise of the batch order
    assert abs(fast - plain) < 0.025, (plain, fast)


def test_the_notebooks_per_item_dataset_serves_the_same_windows_as_the_kit():
    ds = AudioDataset(DEMO_ROOT, "dev-clean", context=CONTEXT)
    nb = bench.NotebookDataset(DEMO_ROOT, "dev-clean", CONTEXT)
    assert len(nb) == len(ds)
    for i in (0, 1, len(ds) // 2, len(ds) - 1):  # the padded ends and the middle
        (x, y), (xn, yn) = ds[i], nb[i]
        torch.testing.assert_close(x, xn, rtol=0, atol=1e-4)
        assert int(y) == int(yn)


# --------------------------------------------------------------------------------------------
# The CPU-resident streaming mode (train-clean-360 on a small GPU) is the resident mode, streamed


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return make_corpus(root, 12, n_features=6, mean_frames=60, n_dev=1, n_test=2, seed=3)


@pytest.mark.parametrize("boundary", ["concat", "utterance"])
@pytest.mark.parametrize("drop_last", [False, True])
def test_streaming_gives_exactly_the_resident_batches_for_each_seed_and_epoch(corpus, boundary, drop_last):
    ds = AudioDataset(corpus, context=3, boundary=boundary)
    resident = FrameLoader(ds, 50, seed=7, drop_last=drop_last, resident=True)
    streaming = FrameLoader(ds, 50, seed=7, drop_last=drop_last, resident=False, prefetch=3)
    for epoch in (0, 1, 5):
        resident.set_epoch(epoch)
        streaming.set_epoch(epoch)
        a, b = list(resident), list(streaming)
        assert len(a) == len(b) == len(resident)
        for (xa, ya), (xb, yb) in zip(a, b):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_streaming_trains_the_very_same_weights_as_the_resident_mode(corpus):
    ds = AudioDataset(corpus, context=3)
    models = []
    for resident in (True, False):
        model = tiny_model(ds, seed=1)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        loader = FrameLoader(ds, 64, seed=2, drop_last=True, resident=resident)
        for epoch in range(2):
            loader.set_epoch(epoch)
            train_epoch(model, loader, opt, log_every=3)
        models.append(model.state_dict())
    for k in models[0]:
        assert torch.equal(models[0][k], models[1][k]), k


# --------------------------------------------------------------------------------------------
# No host sync per step, and inference in a few large batches


def test_train_epoch_waits_for_the_device_only_every_log_every_steps(corpus, monkeypatch):
    ds = AudioDataset(corpus, context=3)
    loader = FrameLoader(ds, 16, seed=0, drop_last=True)
    model = tiny_model(ds)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    calls = []
    item = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda self: calls.append(1) or item(self))
    steps, log_every = len(loader), 10
    assert steps >= 3 * log_every
    train_epoch(model, loader, opt, log_every=log_every)
    # loss and accuracy at each log point and at the end: not two per step
    assert len(calls) <= 2 * (steps // log_every + 2) < steps


def test_predict_runs_the_test_set_in_order_in_a_few_large_batches_under_inference_mode(corpus):
    test = AudioDataset(corpus, "test-clean", context=3)
    model = tiny_model(test)
    seen = []

    def spy(module, inputs):
        seen.append((inputs[0].shape[0], torch.is_inference_mode_enabled(), module.training))

    model.register_forward_pre_hook(spy)
    ids = predict(model, test, batch_size=64)
    assert len(seen) == -(-len(test) // 64)  # ceil: every batch full but the last
    assert all(inference and not training for _, inference, training in seen)
    model.eval()
    with torch.no_grad():
        one_by_one = torch.stack([model(test[i][None]).argmax(1)[0] for i in range(len(test))])
    assert torch.equal(ids, one_by_one)
