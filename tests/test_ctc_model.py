"""The CTC model family: lengths after every stride and pBLSTM (against the real tensor shapes),
float32 log-probabilities, padding that changes nothing, the summary, bad options, the options
of the best public solutions, the parameter count, checkpoints."""

import pytest
import torch
from torch import nn

from phonemekit.ctc_layers import EmbeddingAugment, MaskedBatchNorm1d, mask_utterances
from phonemekit.ctc_model import MODEL_OPTIONS, build_ctc_model, ctc_summary, min_input_frames
from phonemekit.model import BUDGET, count_params

F = 12


def tiny(**kw):
    args = dict(conv_channels=16, conv_layers=2, lstm_hidden=8, lstm_layers=1, pyramid=0, head=[16])
    args.update(kw)
    return build_ctc_model(F, **args)


def naive_lengths(model, t):
    """Each utterance run alone, unpadded: its output length is the tensor's own size."""
    with torch.no_grad():
        return model(torch.randn(1, t, F), torch.tensor([t]))[0].shape[1]


@pytest.mark.parametrize("conv_stride, conv_layers, pyramid, kernel", [
    (1, 0, 0, 3), (1, 2, 0, 5), (2, 1, 0, 3), (3, 2, 1, 3), (4, 2, 0, 3), (4, 3, 2, 5), (2, 2, 3, 3),
])
def test_output_lengths_follow_every_stride_and_pblstm_exactly(conv_stride, conv_layers, pyramid, kernel):
    torch.manual_seed(0)
    model = tiny(conv_stride=conv_stride, conv_layers=conv_layers, pyramid=pyramid, conv_kernel=kernel).eval()
    lengths = torch.tensor([97, 64, 33, 50, 41])
    x = torch.randn(len(lengths), int(lengths.max()), F)
    log_probs, out = model(x, lengths)
    assert log_probs.shape[1] == int(out.max())  # the padded output is as long as the longest
    assert out.tolist() == model.output_lengths(lengths).tolist()
    assert out.tolist() == [naive_lengths(model, int(t)) for t in lengths]
    # and equal to the arithmetic: conv floor((T - 1) / s) + 1 per strided block, then T // 2 per pBLSTM
    expected = lengths.clone()
    for s in {1: [], 2: [2], 3: [3], 4: [2, 2]}[conv_stride]:
        expected = (expected - 1) // s + 1
    expected = expected // 2**pyramid
    assert out.tolist() == expected.tolist()


def test_log_probs_are_float32_log_softmax_even_under_autocast():
    model = tiny().eval()
    x, lengths = torch.randn(2, 30, F), torch.tensor([30, 20])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        log_probs, _ = model(x, lengths)
    assert log_probs.dtype == torch.float32 and log_probs.shape[-1] == 41
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(2, log_probs.shape[1]))


def trained_looking(model):
    """Random BatchNorm statistics and affine parameters, as after training: a fresh BatchNorm maps
    0 to 0 and would hide a padded frame leaking into a conv."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.LayerNorm)):
            with torch.no_grad():
                m.weight.copy_(1 + 0.5 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(torch.randn(m.bias.shape, generator=g))
                if isinstance(m, nn.BatchNorm1d):
                    m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g))
                    m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    return model


@pytest.mark.parametrize("options", [
    dict(conv_stride=2, pyramid=1),
    dict(conv_stride=1, pyramid=0, conv_residual=False),
    dict(conv_stride=3, pyramid=0, conv_kernel=[5, 3]),
    dict(conv_stride=4, pyramid=2, conv_kernel=7, conv_channels=[8, 24]),
    dict(conv_layers=3, conv_stride=2, conv_channels=[8, 16, 16], conv_kernel=[5, 3, 3], pyramid=1),
    dict(conv_layers=0, conv_stride=1, pyramid=1),
    dict(head=[16, 12], head_norm="batch"),
    dict(head=[16], head_norm="layer", conv_residual=False, conv_stride=4),
    dict(embed_time_masks=2, embed_freq_masks=2, embed_noise_std=0.5, head_norm="batch"),  # training-only
])
def test_in_eval_mode_an_utterance_gives_the_same_log_probs_alone_as_in_a_padded_batch(options):
    torch.manual_seed(0)
    model = trained_looking(tiny(**options)).eval()
    utt = torch.randn(1, 40, F)
    alone, n_alone = model(utt, torch.tensor([40]))
    # batch-mates longer and shorter; the padding holds garbage, which nothing may read
    batch = torch.randn(3, 90, F)
    batch[1, :40] = utt[0]
    together, n = model(batch, torch.tensor([90, 40, 25]))
    assert int(n[1]) == int(n_alone[0]) == alone.shape[1]
    torch.testing.assert_close(together[1, : int(n[1])], alone[0], atol=1e-5, rtol=1e-5)


def test_in_training_batchnorm_statistics_come_from_the_utterances_not_their_padding():
    torch.manual_seed(0)
    bn = MaskedBatchNorm1d(4, momentum=1.0).train()  # momentum 1: the running stats are the batch's
    x = torch.randn(2, 4, 30) + 3
    lengths = torch.tensor([30, 10])
    keep = torch.arange(30) < lengths[:, None]
    out = bn(x * keep[:, None], keep)
    frames = x.transpose(1, 2)[keep]  # (40, 4): the valid frames only
    torch.testing.assert_close(bn.running_mean, frames.mean(0))
    assert torch.all(out[1, :, 10:] == 0)  # the padding stays 0
    torch.testing.assert_close(out.transpose(1, 2)[keep].mean(0), torch.zeros(4), atol=1e-5, rtol=0)


def test_locked_dropout_uses_one_mask_per_utterance_over_time():
    model = tiny(lstm_layers=2, locked_dropout=0.5).train()
    h = torch.ones(3, 20, 8)
    out = model.encoder.locked(h)
    assert torch.equal(out, out[:, :1].expand_as(out))  # the same at every time step
    assert set(out.unique().tolist()) <= {0.0, 2.0}
    assert torch.equal(model.eval().encoder.locked(h), h)


def test_summary_runs_in_eval_mode_and_leaves_the_modes_alone():
    model = tiny(lstm_layers=1, pyramid=1).train()
    bn = model.embedding.blocks[0].main[0]
    before = bn.running_mean.clone()
    text = str(ctc_summary(model, F, frames=64))
    assert "BLSTM" in text and f"{count_params(model):,}" in text
    assert model.training and torch.equal(bn.running_mean, before)


def test_config_rebuilds_the_same_architecture():
    model = tiny(conv_stride=4, pyramid=2, head=[32, 16])
    again = build_ctc_model(**model.config)
    assert count_params(again) == count_params(model)
    assert [p.shape for p in again.parameters()] == [p.shape for p in model.parameters()]


def lstm_params(n_in, hidden):
    return 2 * (4 * hidden * (n_in + hidden) + 8 * hidden)  # two directions, two bias vectors each


def block_params(cin, cout, k, stride, residual=True):
    n = cin * cout * k + cout * cout * k + 4 * cout  # two convs (no bias), two BatchNorms
    if residual and (cin != cout or stride != 1):
        n += cin * cout + 2 * cout  # the 1x1 skip conv and its BatchNorm
    return n


def test_the_default_model_is_the_course_architecture_with_its_parameter_count():
    model = build_ctc_model(28)
    assert MODEL_OPTIONS["conv_stride"] == 2 and MODEL_OPTIONS["pyramid"] == 1 and MODEL_OPTIONS["head"] == [512]
    expected = (block_params(28, 256, 3, 2) + block_params(256, 256, 3, 1)
                + lstm_params(256, 256) + lstm_params(512, 256) + lstm_params(2 * 512, 256)  # 2 BiLSTM + 1 pBLSTM
                + 512 * 512 + 512 + 512 * 41 + 41)
    assert count_params(model) == expected
    assert model.output_lengths(torch.tensor([1000])).tolist() == [250]  # 4x: stride 2, one pBLSTM


def test_per_layer_conv_widths_and_kernels_and_head_norm_as_the_best_public_solutions_use():
    options = dict(conv_layers=3, conv_channels=[128, 256, 256], conv_kernel=[5, 3, 3], conv_stride=2,
                   lstm_hidden=384, lstm_layers=1, pyramid=2, head=[768], head_norm="batch", dropout=0.2)
    model = build_ctc_model(28, **options)
    blocks = model.embedding.blocks
    assert [b.conv1.out_channels for b in blocks] == [128, 256, 256]
    assert [b.conv1.kernel_size[0] for b in blocks] == [5, 3, 3]
    assert [b.conv1.stride[0] for b in blocks] == [2, 1, 1]
    bn = [m for m in model.head.modules() if isinstance(m, nn.BatchNorm1d)]
    assert len(bn) == 1 and bn[0].num_features == 768
    expected = (block_params(28, 128, 5, 2) + block_params(128, 256, 3, 1) + block_params(256, 256, 3, 1)
                + lstm_params(256, 384) + lstm_params(2 * 768, 384) + lstm_params(2 * 768, 384)
                + 768 * 768 + 768 + 2 * 768 + 768 * 41 + 41)
    assert count_params(model) == expected < BUDGET
    x, lengths = torch.randn(2, 100, 28), torch.tensor([100, 61])
    log_probs, out = build_ctc_model(28, **{**options, "lstm_hidden": 8, "conv_channels": [8, 16, 16],
                                            "head": [16]}).eval()(x, lengths)
    assert out.tolist() == [12, 7] and log_probs.shape == (2, 12, 41)  # ceil(T / 2) // 4
    layer_norm = build_ctc_model(28, **{**options, "head_norm": "layer"})
    assert count_params(layer_norm) == expected  # LayerNorm: the same 2 x 768 parameters
    assert any(isinstance(m, nn.LayerNorm) for m in layer_norm.head.modules())


def test_training_only_options_change_training_batches_and_leave_eval_mode_alone():
    torch.manual_seed(0)
    quiet = dict(dropout=0.0, locked_dropout=0.0, lstm_layers=2)
    plain = tiny(**quiet)
    noisy = tiny(**quiet, embed_time_masks=2, embed_time_mask_width=5, embed_freq_masks=2, embed_noise_std=0.3)
    noisy.load_state_dict(plain.state_dict())  # the options add no parameters
    x, lengths = torch.randn(3, 50, F), torch.tensor([50, 31, 12])
    torch.testing.assert_close(noisy.eval()(x, lengths)[0], plain.eval()(x, lengths)[0], atol=0, rtol=0)
    plain.train(), noisy.train()
    torch.testing.assert_close(plain(x, lengths)[0], plain(x, lengths)[0], atol=0, rtol=0)
    assert not torch.allclose(noisy(x, lengths)[0], plain(x, lengths)[0], atol=1e-3)


def test_embedding_masks_and_noise_stay_inside_each_utterance():
    torch.manual_seed(0)
    lengths = torch.tensor([40, 9, 25])
    x = (torch.arange(40) < lengths[:, None])[:, :, None].float().expand(3, 40, 32).contiguous()
    for _ in range(20):
        out = mask_utterances(x, lengths, freq_masks=1, freq_mask_width=6, time_masks=1, time_mask_width=7)
        assert torch.all(out <= x)  # only zeros are written
        for b, n in enumerate(lengths.tolist()):
            masked_frames = (out[b, :n] == 0).all(1).sum()
            assert masked_frames <= 7 and torch.all(out[b, n:] == 0)
            masked_channels = (out[b, :n] == 0).all(0).sum()
            assert masked_channels <= 6 or masked_frames == n
    # every run lies inside its utterance: a 9-frame one loses 3.5 frames on average (width 0..7),
    # where runs placed anywhere in the padded 40 would mostly miss it
    short = torch.stack([(mask_utterances(x, lengths, time_masks=1, time_mask_width=7)[1, :9] == 0).all(1).sum()
                         for _ in range(200)])
    assert short.float().mean() > 2.5
    noise = EmbeddingAugment(noise_std=1.0).train()(x, lengths)
    assert torch.all(noise[x == 0] == 0) and not torch.equal(noise, x)


@pytest.mark.parametrize("options", [
    dict(conv_stride=1, pyramid=0), dict(conv_stride=2, pyramid=1), dict(conv_stride=3, pyramid=1),
    dict(conv_stride=4, pyramid=2, conv_kernel=[5, 7]), dict(conv_layers=0, conv_stride=1, pyramid=3),
])
def test_min_input_frames_is_the_shortest_utterance_the_model_takes(options):
    model = tiny(**options).eval()
    need = min_input_frames(**model.config)
    assert need == min_input_frames(**options, conv_channels=16, lstm_hidden=8)
    log_probs, out = model(torch.randn(1, need, F), torch.tensor([need]))
    assert out.tolist() == [1] and log_probs.shape[1] == 1
    if need > 1:
        with pytest.raises(ValueError, match=f"{need - 1} frames has no frame left.*needs {need} frames"):
            model(torch.randn(1, need - 1, F), torch.tensor([need - 1]))


@pytest.mark.parametrize("options, message", [
    (dict(head=[0]), r"head=\[0\]: every hidden width must be a positive integer"),
    (dict(head=[64, 0]), r"head=\[64, 0\]: every hidden width"),
    (dict(head=[-5]), r"head=\[-5\]: every hidden width"),
    (dict(conv_stride=4, pyramid=10), "conv_stride=4 with pyramid=10 leaves fewer than 1 frame"),
    (dict(encoder="blstn"), r"encoder='blstn' is not in ENCODERS \(did you mean 'blstm'\?\)"),
    (dict(lstm_hiden=64), r"unknown model option 'lstm_hiden' \(did you mean 'lstm_hidden'\?\)"),
    (dict(conv_channels=[64, 128, 256]), r"conv_channels=\[64, 128, 256\] has 3 entries for conv_layers=2"),
    (dict(conv_kernel=[5, 4]), r"conv_kernel\[1\]=4 must be odd"),
    (dict(head_norm="batchnorm"), r"head_norm='batchnorm' \(did you mean 'batch'\?\)"),
    (dict(dropout=1.0), r"dropout=1.0 must be a number in \[0, 1\)"),
    (dict(conv_channels=0), "conv_channels=0 must be an integer >= 1"),
    (dict(embed_noise_std=-1.0), "embed_noise_std=-1.0 must be a number >= 0"),
])
def test_an_impossible_option_is_a_value_error_naming_the_setting(options, message):
    with pytest.raises(ValueError, match=message):
        build_ctc_model(F, **options)


def test_the_summary_says_what_is_wrong_instead_of_torchinfos_error():
    model = tiny(conv_stride=4, pyramid=2)
    need = min_input_frames(**model.config)
    with pytest.raises(ValueError, match=f"frames=8.*needs at least {need} input frames"):
        ctc_summary(model, F, frames=8)

    class Picky(nn.Module):  # a network of one's own that refuses its input
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(F, 41)

        def forward(self, x, lengths):
            raise ValueError("Picky wants lengths on the GPU")

    with pytest.raises(ValueError, match="Picky wants"):
        ctc_summary(Picky(), F)


def test_checkpoints_with_the_older_part_names_still_load():
    model = tiny(conv_stride=2, pyramid=1, head=[16, 12])
    renamed = {k.replace("embedding.blocks.", "convs.").replace("encoder.layers.", "lstms.")
               .replace("head.layers.", "head."): v for k, v in model.state_dict().items()}
    assert any(k.startswith("convs.") for k in renamed) and any(k.startswith("lstms.") for k in renamed)
    again = tiny(conv_stride=2, pyramid=1, head=[16, 12])
    again.load_state_dict(renamed)
    x, lengths = torch.randn(2, 30, F), torch.tensor([30, 22])
    torch.testing.assert_close(again.eval()(x, lengths)[0], model.eval()(x, lengths)[0])


def test_bad_options_and_too_short_utterances_are_named():
    with pytest.raises(ValueError, match="conv_stride=8"):
        tiny(conv_stride=8)
    with pytest.raises(ValueError, match="at least 2 conv layer"):
        tiny(conv_stride=4, conv_layers=1)
    with pytest.raises(ValueError, match="odd"):
        tiny(conv_kernel=4)
    model = tiny(conv_stride=4, pyramid=2)
    with pytest.raises(ValueError, match="10 frames has no frame left"):
        model(torch.randn(2, 50, F), torch.tensor([50, 10]))
