"""phonemekit.search: what a student relies on when searching under the budget, alone or as a team."""

import numpy as np
import pandas as pd
import pytest
import yaml

from phonemekit.model import SHAPES, count_params
from phonemekit.synthetic import make_learnable_corpus
from phonemekit.search import (
    ablation, check_space, config_params, plot_results, random_search, sample, sweep_agent_main, sweep_train,
    to_wandb_sweep, write_sweep,
)
from phonemekit.train import Config, fit, load_checkpoint, load_recipe, make_model

F, K = 8, 8


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A learnable task in the Kaggle layout: each frame's label decides its features' mean."""
    return make_learnable_corpus(tmp_path_factory.mktemp("corpus"), {"train-clean-100": 10, "dev-clean": 3},
                                 frames=(80, 160), n_features=F, n_classes=K, spread=2, seed=0)


@pytest.fixture
def fresh_wandb():
    """wandb reads its environment once per process: start and end each test with a fresh setup."""
    wandb = pytest.importorskip("wandb")
    wandb.teardown()
    yield wandb
    wandb.teardown()


@pytest.fixture
def base(corpus, tmp_path):
    return Config(root=str(corpus), context=2, hidden=[16], epochs=7, batch_size=128, lr=3e-3, scheduler="none",
                  device="cpu", amp="off", checkpoint_dir=str(tmp_path / "ckpt"), log_every=5)


# --------------------------------------------------------------------------------------------
# spaces


def test_a_misspelt_knob_is_refused_with_a_suggestion():
    with pytest.raises(ValueError, match="did you mean 'dropout'"):
        check_space({"droput": [0.1]})
    with pytest.raises(ValueError, match="kind one of"):
        check_space({"lr": ("log", 1e-4, 1e-2)})
    with pytest.raises(ValueError, match="lo > 0"):
        check_space({"lr": ("loguniform", 0, 1e-2)})
    with pytest.raises(ValueError, match="empty"):
        check_space({"lr": []})


def test_draws_stay_in_the_declared_ranges_and_repeat_with_the_seed():
    space = {"lr": ("loguniform", 1e-4, 1e-2), "dropout": ("uniform", 0.0, 0.5), "context": ("int", 3, 5),
             "hidden": [[64], [128, 64]]}
    rng = np.random.default_rng(1)
    draws = [sample(space, rng) for _ in range(300)]
    assert all(1e-4 <= d["lr"] <= 1e-2 and 0 <= d["dropout"] <= 0.5 for d in draws)
    assert {d["context"] for d in draws} == {3, 5, 4}  # both ends included
    assert all(isinstance(d["context"], int) for d in draws)
    assert {tuple(d["hidden"]) for d in draws} == {(64,), (128, 64)}
    # loguniform: as many draws below 1e-3 as above (uniform would put 9 in 10 above)
    assert 0.4 < np.mean([d["lr"] < 1e-3 for d in draws]) < 0.6
    again = np.random.default_rng(1)
    assert [sample(space, again) for _ in range(300)] == draws


def test_config_params_counts_what_fit_would_build(corpus):
    for config in (Config(root=str(corpus), context=3, hidden=[64, 32], dropout=0.1),
                   Config(root=str(corpus), context=4, shape="pyramid", depth=3, budget=50_000, norm="after"),
                   Config(root=str(corpus), context=1, hidden=[32, 32, 32], residual="basic")):
        assert config_params(config) == count_params(make_model(config, (2 * config.context + 1) * F))


def test_fill_budget_draws_an_architecture_that_fills_the_budget(corpus):
    rng = np.random.default_rng(0)
    base = Config(root=str(corpus), context=4)
    shapes = set()
    for _ in range(10):
        knobs = sample({"dropout": [0.0, 0.2]}, rng, sampler="fill-budget", budget=200_000)
        assert knobs["hidden"] is None and knobs["budget"] == 200_000
        shapes.add(knobs["shape"])
        n = config_params(base.replace(**knobs))
        assert 0.98 * 200_000 <= n <= 200_000
    assert len(shapes) > 1


# --------------------------------------------------------------------------------------------
# random search and ablation


def test_random_search_ranks_its_trials_and_saves_the_table(base, tmp_path):
    space = {"hidden": [[8], [16], [24]], "lr": ("loguniform", 1e-3, 1e-2)}
    table = random_search(space, base, budget=10_000, trials=3, subset=0.5, epochs=1, out_dir=tmp_path / "s",
                          verbose=False)
    assert len(table) == 3 and list(table["rank"]) == [1, 2, 3]
    assert table["val_acc"].is_monotonic_decreasing and (table["status"] == "ok").all()
    assert {"trial", "val_acc", "params", "widths", "seconds", "lr", "hidden"} <= set(table.columns)
    saved = pd.read_csv(tmp_path / "s" / "results.csv")
    assert list(saved["trial"]) == list(table["trial"]) and list(saved["lr"]) == pytest.approx(list(table["lr"]))
    # each trial trained on the subset for the search's epochs, with the base's seed
    for d, lr in zip(table["checkpoint_dir"], table["lr"]):
        _, config, _ = load_checkpoint(d)
        assert (config.epochs, config.subset, config.seed, config.lr) == (1, 0.5, base.seed, lr)


def test_draws_over_budget_are_skipped_before_training_and_counted(base, tmp_path):
    draws = iter([[2048, 2048], [8], [8], [4096], [16]])
    table = random_search({}, base, budget=10_000, trials=2, epochs=1, out_dir=tmp_path / "s", verbose=False,
                          sampler=lambda space, rng: {"hidden": next(draws)})
    assert list(table.sort_values("trial")["hidden"]) == ["[8]", "[16]"] and (table["params"] <= 10_000).all()
    assert [s["reason"] for s in table.attrs["skipped"]] == ["over budget", "duplicate", "over budget"]
    assert pd.read_csv(tmp_path / "s" / "skipped.csv")["reason"].tolist() == ["over budget", "duplicate", "over budget"]
    assert sorted(d.name for d in (tmp_path / "s").glob("trial-*")) == ["trial-001", "trial-002"]  # none for a skipped draw


def test_the_best_config_file_trains_the_winner_at_full_scale(base, tmp_path):
    space = {"hidden": [[8], [24]], "dropout": [0.0, 0.1]}
    table = random_search(space, base, budget=10_000, trials=2, subset=0.5, epochs=1, out_dir=tmp_path / "s",
                          verbose=False)
    best = Config.load(tmp_path / "s" / "best.yaml")
    winner = table.iloc[0]
    assert str(best.hidden) == winner["hidden"] and best.dropout == winner["dropout"]
    assert (best.epochs, best.subset) == (base.epochs, base.subset)  # the base's, not the search's
    result = fit(best.replace(epochs=1, checkpoint_dir=str(tmp_path / "full")), progress=False, verbose=False)
    assert result.model.hidden == best.hidden


def test_a_search_where_nothing_fits_says_so_and_writes_no_best_config(base, tmp_path, capsys):
    table = random_search({"hidden": [[4096], [2048]]}, base, budget=1_000, trials=2, out_dir=tmp_path / "s")
    assert table.empty and len(table.attrs["skipped"]) == 40  # max_draws = 20 x trials
    out = capsys.readouterr().out
    assert "0 trained" in out and "over budget" in out and "no best.yaml" in out
    assert not (tmp_path / "s" / "best.yaml").exists()


def test_a_base_whose_warmup_outlasts_the_short_runs_is_refused_up_front(base, tmp_path):
    with pytest.raises(ValueError, match="warmup_epochs"):
        random_search({"dropout": [0.0, 0.1]}, base.replace(warmup_epochs=1), trials=1, epochs=1, out_dir=tmp_path)


def test_ablation_changes_one_knob_at_a_time_with_the_same_seed(base, tmp_path):
    table = ablation(base, {"dropout": [0.0, 0.3], "hidden": [[8], [4096, 4096]]}, epochs=1, subset=0.5,
                     out_dir=tmp_path / "ab", budget=10_000, verbose=False)
    assert list(table["knob"]) == ["(base)", "dropout", "dropout", "hidden", "hidden"]
    assert table["delta"].iloc[0] == 0
    assert table["status"].iloc[1] == "ok (the base)" and table["val_acc"].iloc[1] == table["val_acc"].iloc[0]
    assert table["status"].iloc[4] == "over budget" and np.isnan(table["val_acc"].iloc[4])
    _, base_cfg, _ = load_checkpoint(table["checkpoint_dir"].iloc[0])
    assert (base_cfg.epochs, base_cfg.subset) == (1, 0.5)
    for row, knob in ((2, "dropout"), (3, "hidden")):
        _, cfg, _ = load_checkpoint(table["checkpoint_dir"].iloc[row])
        a, b = base_cfg.to_dict(), cfg.to_dict()
        assert {k for k in a if a[k] != b[k]} == {knob, "checkpoint_dir"}
    assert (tmp_path / "ab" / "ablation.csv").is_file()
    fig = plot_results(table)
    assert len(fig.axes[0].patches) == len(table)


# --------------------------------------------------------------------------------------------
# team sweeps


def test_the_sweep_file_is_a_wandb_sweep_configuration(tmp_path):
    space = {"lr": ("loguniform", 1e-4, 1e-2), "dropout": ("uniform", 0.0, 0.3), "depth": ("int", 2, 6),
             "activation": ["relu", "gelu"], "hidden": [[1024, 512], [2048]]}
    sweep = yaml.safe_load(write_sweep(space, tmp_path / "sweep.yaml", method="bayes", base="strong").read_text())
    assert sweep["method"] == "bayes" and sweep["metric"] == {"name": "val_acc", "goal": "maximize"}
    p = sweep["parameters"]
    assert p["lr"] == {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2}
    assert p["dropout"] == {"distribution": "uniform", "min": 0.0, "max": 0.3}
    assert p["depth"] == {"distribution": "int_uniform", "min": 2, "max": 6}
    assert p["activation"] == {"values": ["relu", "gelu"]} and p["hidden"] == {"values": [[1024, 512], [2048]]}
    # the base's settings ride along as fixed values; where and how each machine runs does not
    strong = load_recipe("strong")
    assert p["context"] == {"value": strong.context} and p["label_smoothing"] == {"value": strong.label_smoothing}
    assert "checkpoint_dir" not in p and "device" not in p
    fixed = Config.from_dict({k: v["value"] for k, v in p.items() if "value" in v})  # valid Config values
    assert (fixed.shape, fixed.budget, fixed.epochs) == (strong.shape, strong.budget, strong.epochs)


def test_a_grid_sweep_needs_lists_only():
    assert to_wandb_sweep({"dropout": [0.1, 0.2]}, method="grid")["parameters"] == {"dropout": {"values": [0.1, 0.2]}}
    with pytest.raises(ValueError, match="grid"):
        to_wandb_sweep({"lr": ("loguniform", 1e-4, 1e-2)}, method="grid")


def test_the_agents_training_function_merges_the_sweep_choice_into_the_base(base, tmp_path, monkeypatch, fresh_wandb):
    monkeypatch.chdir(tmp_path)
    out = sweep_train({"dropout": 0.2, "hidden": [12, 12], "epochs": 1}, base=base, mode="disabled")
    assert out["status"] == "ok" and 0 <= out["val_acc"] <= 1
    model, config, _ = load_checkpoint(out["checkpoint_dir"])
    assert (config.dropout, config.hidden, config.epochs, config.lr) == (0.2, [12, 12], 1, base.lr)
    assert out["params"] == count_params(model)
    assert str(tmp_path / "ckpt") in out["checkpoint_dir"]  # under the base's checkpoint_dir


def test_a_fill_budget_sweep_draws_the_architecture_and_solves_the_widths(base, tmp_path, monkeypatch, fresh_wandb):
    p = to_wandb_sweep({"lr": [1e-3, 3e-3]}, sampler="fill-budget", budget=6_000)["parameters"]
    assert p["hidden"] == {"value": None} and p["budget"] == {"value": 6_000}
    assert set(p["shape"]["values"]) == set(SHAPES) and p["depth"]["distribution"] == "int_uniform"
    # one run as the controller would hand it out
    monkeypatch.chdir(tmp_path)
    choice = {"lr": 1e-3, "shape": "pyramid", "depth": 3, "activation": "silu", "hidden": None, "budget": 6_000}
    out = sweep_train({**choice, "epochs": 1}, base=base, mode="disabled")
    assert 0.98 * 6_000 <= out["params"] <= 6_000


def test_the_agents_training_function_skips_a_config_over_budget(base, tmp_path, monkeypatch, fresh_wandb):
    monkeypatch.chdir(tmp_path)
    out = sweep_train({"hidden": [4096]}, base=base, budget=10_000, mode="disabled")
    assert out["status"] == "over budget" and out["val_acc"] is None and out["params"] > 10_000
    assert not (tmp_path / "ckpt").exists()


def test_the_agent_without_an_api_key_says_where_the_key_goes(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    with pytest.raises(SystemExit, match="WANDB_API_KEY") as e:
        sweep_agent_main(["abc123"])
    assert "wandb login" in str(e.value)


def test_the_agent_runs_the_sweeps_configs_on_the_given_base(base, tmp_path, monkeypatch, fresh_wandb):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)  # never used: the controller is stood in for below
    monkeypatch.setenv("WANDB_MODE", "disabled")
    base.replace(epochs=1).save(tmp_path / "base.yaml")
    seen = {}

    def fake_agent(sweep_id, function=None, count=None, project=None, entity=None):
        seen.update(sweep_id=sweep_id, count=count, project=project, result=function())

    monkeypatch.setattr(fresh_wandb, "agent", fake_agent)
    assert sweep_agent_main(["team/hw1p2/abc123", "--base", str(tmp_path / "base.yaml"), "--count", "3",
                             "--project", "hw1p2", "--set", "dropout=0.1"]) == 0
    assert (seen["sweep_id"], seen["count"], seen["project"]) == ("team/hw1p2/abc123", 3, "hw1p2")
    _, config, _ = load_checkpoint(seen["result"]["checkpoint_dir"])
    assert (config.epochs, config.dropout, config.hidden) == (1, 0.1, [16])
