"""Several processes (torchrun / DistributedDataParallel), tested on CPU with gloo and 2 processes."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp

from phonemekit.phonemes import CLASSES
from phonemekit.train import Config, evaluate, fit, load_checkpoint, make_datasets, make_loaders

REPO = Path(__file__).resolve().parents[1]
CONTEXT = 1
UTTERANCES, FRAMES = 6, 100  # 600 training frames: 300 per process, 5 batches of 60


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Feature 0 of every training frame is its own index, so a batch tells which frames it holds."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    centroids = rng.normal(0, 2, (8, 6)).astype(np.float32)
    for part, n in (("train-clean-100", UTTERANCES), ("dev-clean", 2)):
        for sub in ("mfcc", "transcript"):
            (root / part / sub).mkdir(parents=True)
        for u in range(n):  # names sort in the order written: frame ids run across utterances
            y = rng.integers(0, 8, FRAMES)
            x = centroids[y] + rng.normal(0, 1, (FRAMES, 6)).astype(np.float32)
            x[:, 0] = np.arange(u * FRAMES, (u + 1) * FRAMES)
            name = f"{100 + u}-100-{u:04d}.npy"
            np.save(root / part / "mfcc" / name, x)
            np.save(root / part / "transcript" / name, np.array(["[SOS]", *(CLASSES[i] for i in y), "[EOS]"]))
    return root


def config_for(root, ckpt_dir, **kw):
    return Config(**{**dict(root=str(root), context=CONTEXT, normalize="none", hidden=[16], norm="before",
                            dropout=0.1, epochs=2, batch_size=60, lr=1e-2, scheduler="none", device="cpu",
                            log_every=2, checkpoint_dir=str(ckpt_dir), ema_decay=0.9, swa_start=2), **kw})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, root, out):
    # what torchrun sets for every process it starts
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    seen = []

    def spy(x, y):  # sees every training batch of this process
        seen.append(x[:, CONTEXT, 0].round().long().clone())
        return x, y

    result = fit(config_for(root, Path(out) / "ckpt"), augment=spy, progress=False, verbose=False)
    torch.save({"seen": seen, "model": result.model.state_dict(), "history": result.history.to_dict("list"),
                "averaged": {k: m.state_dict() for k, m in result.averaged.items()}}, Path(out) / f"rank{rank}.pt")


def test_two_processes_see_every_frame_once_per_epoch_and_end_with_the_same_model(corpus, tmp_path):
    mp.spawn(_worker, args=(2, free_port(), str(corpus), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    epochs, n = 2, UTTERANCES * FRAMES
    for epoch in range(epochs):
        shards = []
        for r in ranks:
            per_epoch = len(r["seen"]) // epochs
            shards.append(torch.cat(r["seen"][epoch * per_epoch:(epoch + 1) * per_epoch]))
        a, b = shards
        assert len(a) == len(b) == n // 2
        assert not set(a.tolist()) & set(b.tolist())  # disjoint
        assert sorted(a.tolist() + b.tolist()) == list(range(n))  # together: every frame once
    # the same weights, BatchNorm statistics and averaged models in both processes
    for name, p in ranks[0]["model"].items():
        assert torch.equal(p, ranks[1]["model"][name]), name
    for kind in ("ema", "swa"):
        for name, p in ranks[0]["averaged"][kind].items():
            assert torch.equal(p, ranks[1]["averaged"][kind][name]), (kind, name)
    # one history for the run: the numbers are summed over both processes' frames
    h0, h1 = (pd.DataFrame(r["history"]).drop(columns=["epoch_time", "frames_per_s"]) for r in ranks)
    assert h0.equals(h1), (h0, h1)
    model, config, ckpt = load_checkpoint(tmp_path / "ckpt" / "last.pt")
    for name, p in model.state_dict().items():
        assert torch.equal(p, ranks[0]["model"][name])
    train_ds, val_ds = make_datasets(config, "cpu")
    _, val_loader = make_loaders(config, train_ds, val_ds, torch.device("cpu"))
    loss, acc = evaluate(model, val_loader)  # one process, the whole dev set
    assert ranks[0]["history"]["val_acc"][-1] == pytest.approx(acc, abs=1e-12)
    assert ranks[0]["history"]["val_loss"][-1] == pytest.approx(loss, rel=1e-5)


def test_torchrun_trains_from_the_command_line_and_only_process_0_prints_and_writes(corpus, tmp_path):
    ckpt = tmp_path / "ckpt"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "phonemekit", "train", "--config", "smoke", "--root", str(corpus),
           "--set", "subset=1", "--set", "val_subset=1", "--set", "epochs=1", "--set", "batch_size=100",
           "--set", f"checkpoint_dir={ckpt}", "--set", "average_last=1"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert out.count("best val acc") == 1 and out.count("on 2 processes") == 1, out
    assert {"last.pt", "best.pt", "avg.pt", "epoch-001.pt", "history.csv", "config.yaml"} <= {p.name for p in ckpt.iterdir()}
    assert not list(ckpt.glob("*.tmp"))
    history = torch.load(ckpt / "last.pt", weights_only=True)["history"]
    assert history["epoch"] == [1]


def test_dry_run_under_torchrun_is_refused_with_the_fix(monkeypatch, capsys):
    from phonemekit.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(["train", "--config", "smoke", "--dry-run"]) == 1
    assert "--dry-run runs in one process" in capsys.readouterr().err
