import pytest
import torch
from torch import nn

from phonemekit.model import (
    SHAPES, Residual, build_mlp, check_budget, count_params, shape_ratios, solve_widths, summary,
)
from phonemekit.phonemes import NUM_CLASSES


def linears(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


# --------------------------------------------------------------------------------------------
# Budget


@pytest.mark.parametrize("in_features", [61 * 28, 41 * 28, 21 * 27])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("depth,budget", [(3, 20_000_000), (5, 8_000_000), (8, 1_000_000), (1, 300_000)])
def test_every_preset_lands_within_two_percent_under_its_budget(in_features, shape, depth, budget):
    model = build_mlp(in_features, shape=shape, depth=depth, budget=budget)
    n = count_params(model)
    assert 0.98 * budget <= n <= budget, (shape, depth, model.hidden, n)
    assert len(model.hidden) == depth


@pytest.mark.parametrize("norm", ["before", "after", None])
@pytest.mark.parametrize("residual", [None, "basic", "bottleneck"])
def test_budget_holds_with_every_norm_placement_and_residual_block(norm, residual):
    model = build_mlp(41 * 28, shape="cylinder", depth=6, budget=4_000_000, norm=norm, residual=residual)
    assert 0.98 * 4_000_000 <= count_params(model) <= 4_000_000
    assert model(torch.randn(2, 41, 28)).shape == (2, NUM_CLASSES)
    if residual:  # a residual cylinder stays a cylinder: no width change, no projected skip
        assert len(set(model.hidden)) == 1


def test_solved_widths_are_multiples_of_64_at_the_course_budget():
    for shape in SHAPES:
        widths = solve_widths(61 * 28, shape, depth=4, budget=20_000_000)
        assert all(w % 64 == 0 for w in widths), (shape, widths)


def test_presets_have_their_shape():
    assert shape_ratios("pyramid", 4) == [1.0, 0.5, 0.25, 0.125]
    assert shape_ratios("inverse-pyramid", 4) == [0.125, 0.25, 0.5, 1.0]
    d = shape_ratios("diamond", 5)
    assert d == [0.25, 0.5, 1.0, 0.5, 0.25]
    pyr = build_mlp(61 * 28, shape="pyramid", depth=4, budget=5_000_000).hidden
    assert pyr == sorted(pyr, reverse=True) and pyr[0] > 4 * pyr[-1]
    dia = build_mlp(61 * 28, shape="diamond", depth=5, budget=5_000_000).hidden
    assert dia[2] == max(dia) and dia[0] < dia[2] and dia[4] < dia[2]
    cyl = build_mlp(61 * 28, shape="cylinder", depth=4, budget=5_000_000).hidden
    assert len(set(cyl)) <= 2  # equal, up to one rounding step


def test_without_budget_or_widths_the_model_fills_the_course_budget():
    model = build_mlp(21 * 27)
    assert 0.98 * 20_000_000 <= count_params(model) <= 20_000_000


def test_budget_too_small_for_the_depth_says_so():
    with pytest.raises(ValueError, match="too small"):
        build_mlp(61 * 28, depth=4, budget=1_000)


def test_explicit_widths_over_a_given_budget_are_rejected():
    with pytest.raises(ValueError, match="over the budget"):
        build_mlp(61 * 28, hidden=[4096, 4096], budget=20_000_000)


def test_budget_check_rejects_an_ensemble_over_20M_and_reports_the_count():
    a = build_mlp(21 * 27, budget=12_000_000)
    b = build_mlp(21 * 27, budget=9_000_000)
    assert check_budget(a) == count_params(a)
    with pytest.raises(ValueError) as e:
        check_budget(a, b)
    total = count_params(a, b)
    assert total == count_params(a) + count_params(b) > 20_000_000
    assert f"{total:,}" in str(e.value) and "20,000,000" in str(e.value) and "ensemble of 2" in str(e.value)
    assert check_budget(a, b, budget=24_000_000) == total  # S24 allowed 24M


# --------------------------------------------------------------------------------------------
# Forward and options


def test_model_takes_window_batches_and_returns_logits():
    model = build_mlp(7 * 5, hidden=[32, 16])
    assert model.hidden == [32, 16]
    assert model(torch.randn(3, 7, 5)).shape == (3, NUM_CLASSES)
    assert build_mlp(7 * 5, num_classes=42, hidden=[8])(torch.randn(2, 7, 5)).shape == (2, 42)


def test_wrong_window_size_names_the_fix():
    model = build_mlp(7 * 5, hidden=[16])
    with pytest.raises(ValueError, match=r"in_features=\(2\*context\+1\)\*n_features"):
        model(torch.randn(2, 9, 5))


def test_config_rebuilds_the_same_architecture():
    model = build_mlp(9 * 4, shape="pyramid", depth=3, budget=50_000, dropout=0.1, activation="silu")
    again = build_mlp(**model.config)
    assert again.hidden == model.hidden
    again.load_state_dict(model.state_dict())  # same parameter names and shapes


@pytest.mark.parametrize("name,cls", [("relu", nn.ReLU), ("leakyrelu", nn.LeakyReLU), ("gelu", nn.GELU),
                                      ("silu", nn.SiLU), ("softplus", nn.Softplus), ("tanh", nn.Tanh),
                                      ("sigmoid", nn.Sigmoid)])
def test_activation_option_sets_the_activation_of_every_layer(name, cls):
    model = build_mlp(5 * 3, hidden=[16, 16, 8], activation=name)
    acts = [m for m in model.layers if not isinstance(m, (nn.Linear, nn.BatchNorm1d, nn.Dropout))]
    assert len(acts) == 3 and all(type(a) is cls for a in acts)


def test_unknown_activation_lists_the_choices():
    with pytest.raises(ValueError, match="gelu"):
        build_mlp(15, hidden=[8], activation="mish")


def test_norm_before_is_linear_without_bias_then_batchnorm_then_activation():
    layers = list(build_mlp(15, hidden=[16, 8], norm="before", activation="relu").layers)
    assert [type(m) for m in layers] == [nn.Linear, nn.BatchNorm1d, nn.ReLU] * 2
    assert layers[0].bias is None and layers[3].bias is None


def test_norm_after_is_linear_with_bias_then_activation_then_batchnorm():
    layers = list(build_mlp(15, hidden=[16, 8], norm="after", activation="relu").layers)
    assert [type(m) for m in layers] == [nn.Linear, nn.ReLU, nn.BatchNorm1d] * 2
    assert layers[0].bias is not None


@pytest.mark.parametrize("norm", [None, "none"])
def test_norm_none_has_no_batchnorm_and_keeps_biases(norm):
    model = build_mlp(15, hidden=[16, 8], norm=norm)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in model.modules())
    assert all(m.bias is not None for m in linears(model))


def test_output_layer_keeps_its_bias():
    assert build_mlp(15, hidden=[16], norm="before").head.bias is not None


def test_dropout_one_rate_follows_every_hidden_layer():
    model = build_mlp(15, hidden=[16, 16, 16], dropout=0.25)
    layers = list(model.layers)
    drops = [m for m in layers if isinstance(m, nn.Dropout)]
    assert [d.p for d in drops] == [0.25] * 3
    assert isinstance(layers[3], nn.Dropout)  # after Linear, BN, activation


def test_dropout_per_layer_rates():
    model = build_mlp(15, hidden=[16, 16, 16], dropout=[0.1, 0.0, 0.3])
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.1, 0.3]
    with pytest.raises(ValueError, match="one per layer"):
        build_mlp(15, hidden=[16, 16, 16], dropout=[0.1, 0.2])


def test_dropout_alternate_drops_after_every_other_layer():
    layers = list(build_mlp(15, hidden=[16] * 4, dropout="alternate:0.2").layers)
    after = [isinstance(layers[i + 1], nn.Dropout) if i + 1 < len(layers) else False
             for i, m in enumerate(layers) if isinstance(m, nn.GELU)]
    assert after == [True, False, True, False]
    with pytest.raises(ValueError, match="alternate:0.2"):
        build_mlp(15, hidden=[16], dropout="every:0.2")


def test_dropout_is_active_in_train_mode_only():
    torch.manual_seed(0)
    model = build_mlp(15, hidden=[64], dropout=0.5, norm=None)
    x = torch.randn(4, 5, 3)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("init", ["xavier_normal", "xavier_uniform", "kaiming_normal", "kaiming_uniform",
                                  "normal", "uniform"])
def test_init_option_changes_the_weights(init):
    torch.manual_seed(0)
    default = build_mlp(200, hidden=[256], norm=None)
    torch.manual_seed(0)
    other = build_mlp(200, hidden=[256], norm=None, init=init)
    w0, w1 = default.layers[0].weight, other.layers[0].weight
    assert not torch.allclose(w0, w1)
    assert torch.count_nonzero(other.layers[0].bias) == 0
    expected_std = {"xavier_normal": (2 / (200 + 256)) ** 0.5, "xavier_uniform": (2 / (200 + 256)) ** 0.5,
                    "kaiming_normal": (2 / 200) ** 0.5, "kaiming_uniform": (2 / 200) ** 0.5,
                    "normal": 0.01, "uniform": 0.1 / 12 ** 0.5}[init]
    assert w1.std().item() == pytest.approx(expected_std, rel=0.05)


def test_unknown_init_lists_the_choices():
    with pytest.raises(ValueError, match="xavier_normal"):
        build_mlp(15, hidden=[8], init="orthogonal")


@pytest.mark.parametrize("kind", ["basic", "bottleneck"])
def test_residual_blocks_run_and_use_their_skip(kind):
    torch.manual_seed(0)
    model = build_mlp(5 * 4, hidden=[32, 32, 32], residual=kind, activation="relu")
    blocks = [m for m in model.layers if isinstance(m, Residual)]
    assert len(blocks) == 2  # the first width maps the input, each further one is a block
    linears_per_block = sum(isinstance(m, nn.Linear) for m in blocks[0].main)
    assert linears_per_block == (2 if kind == "basic" else 3)
    if kind == "bottleneck":
        assert blocks[0].main[0].out_features == 8
    x = torch.randn(6, 5, 4)
    model.train()
    model(x).sum().backward()  # gradients reach the first layer through the blocks
    assert model.layers[0].weight.grad.abs().sum() > 0
    model.eval()
    h = torch.randn(6, 32)
    # zero the main path's last BatchNorm: the block then returns act(x) through the skip alone
    bn = blocks[0].main[-1]
    with torch.no_grad():
        bn.weight.zero_(), bn.bias.zero_()
    assert torch.allclose(blocks[0](h), torch.relu(h))


def test_residual_block_projects_the_skip_when_the_width_changes():
    model = build_mlp(20, hidden=[32, 64, 64], residual="basic")
    blocks = [m for m in model.layers if isinstance(m, Residual)]
    assert isinstance(blocks[0].skip, nn.Sequential) and blocks[0].skip[0].in_features == 32
    assert isinstance(blocks[1].skip, nn.Identity)
    assert model(torch.randn(3, 20)).shape == (3, NUM_CLASSES)


# --------------------------------------------------------------------------------------------
# Summary


def test_summary_leaves_batchnorm_statistics_and_train_mode_untouched():
    model = build_mlp(9 * 6, hidden=[32, 16])
    model.train()
    model(torch.randn(8, 9, 6) * 3 + 1)  # some non-trivial running statistics
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stats = summary(model, context=4, features=6, batch_size=4)
    assert model.training and all(m.training for m in model.modules())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k  # running_mean/var, num_batches_tracked, weights
    text = str(stats)
    assert "[4, 40]" in text and f"{count_params(model):,}" in text


def test_summary_keeps_eval_mode_too():
    model = build_mlp(3 * 2, hidden=[8]).eval()
    summary(model, context=1, features=2)
    assert not model.training
