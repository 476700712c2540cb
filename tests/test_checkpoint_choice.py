"""Loading from a run's folder takes its best checkpoint, and last.pt only when there is no best."""

from phonemekit.checkpoint import resolve


def test_a_run_folder_resolves_to_best_pt_and_to_last_pt_only_without_one(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"last")
    assert resolve(tmp_path) == tmp_path / "last.pt"
    (tmp_path / "best.pt").write_bytes(b"best")
    assert resolve(tmp_path) == tmp_path / "best.pt"
    assert resolve(tmp_path / "last.pt") == tmp_path / "last.pt"  # a file is taken as given


def test_a_best_pt_broken_by_a_kill_between_the_two_writes_is_repaired_on_resume(tmp_path):
    import torch

    from phonemekit.config import Config
    from phonemekit.synthetic import make_learnable_corpus
    from phonemekit.train import fit, load_checkpoint

    root = make_learnable_corpus(tmp_path / "data", {"train-clean-100": 4, "dev-clean": 2}, frames=60, n_features=4,
                                 n_classes=4, spread=2, seed=1)
    config = Config(root=str(root), context=1, hidden=[8], epochs=1, batch_size=32, scheduler="none", device="cpu",
                    checkpoint_dir=str(tmp_path / "run"))
    fit(config, progress=False, verbose=False)
    (tmp_path / "run" / "best.pt").write_bytes(b"half a file")  # killed while copying last.pt to best.pt
    fit(config, resume=True, progress=False, verbose=False)
    model, _, ckpt = load_checkpoint(tmp_path / "run" / "best.pt")
    assert ckpt["epoch"] == 1 and torch.equal(
        next(iter(model.state_dict().values())),
        next(iter(load_checkpoint(tmp_path / "run" / "last.pt")[0].state_dict().values())))


def test_a_config_whose_model_is_over_its_param_limit_is_refused_when_built():
    import pytest

    from phonemekit.checkpoint import make_model
    from phonemekit.config import Config

    with pytest.raises(ValueError, match="budget|param"):
        make_model(Config(context=1, hidden=[256, 256], param_limit=10_000), 12)
    assert make_model(Config(context=1, hidden=[256, 256], param_limit=None), 12) is not None
