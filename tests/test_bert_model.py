"""The BERT encoder: parameter counts, every field honoured, as_trained, masks, transforms."""
import numpy as np
import pytest
import scipy.fft
import torch

from nni_zerocost.spaces import get_space
from nni_zerocost.spaces.bert import BertBatch, BertConfig, BertModel, LayerConfig, param_count
from nni_zerocost.spaces.bert.model import (
    DynamicConvAttention, LinearTransform, SelfAttention, dct_matrix, dft_matrices,
    embedding_param_count,
)

OPS = [("SA", "SDP"), ("SA", "WMA"), ("LT", "DFT"), ("LT", "DCT"), ("DSC", 5), ("DSC", 9)]


def make(hidden=128, ops=(("SA", "SDP"), ("SA", "SDP")), heads=2, ffd=512, nff=1):
    return BertConfig(hidden, tuple(LayerConfig(t, p, heads, ffd, nff) for t, p in ops))


def n_params(model):
    return sum(p.numel() for n, p in model.named_parameters() if not n.split(".")[0].endswith("_head"))


@pytest.mark.parametrize("as_trained", [False, True])
def test_analytic_param_count_matches_the_built_model(as_trained):
    rng = np.random.default_rng(3)
    configs = [get_space("bert").sample(rng) for _ in range(3)]
    settings = [(128, 2, 512, 3), (256, 4, 1024, 1)]
    configs += [make(*settings[i % 2][:1], (op, op), *settings[i % 2][1:]) for i, op in enumerate(OPS)]
    for cfg in configs:
        assert param_count(cfg, as_trained) == n_params(BertModel(cfg, as_trained=as_trained)), cfg


def test_hidden_size_and_feed_forward_width_change_the_parameter_count():
    # the paper's proxy model ignored both fields; ours must not
    for op in OPS:
        small = param_count(make(128, (op, op), ffd=512))
        assert param_count(make(256, (op, op), ffd=512)) > small, op
        assert param_count(make(128, (op, op), ffd=1024)) > small, op
        assert param_count(make(128, (op, op), ffd=512, nff=3)) > small, op
        assert param_count(make(128, (op, op), heads=4)) >= small  # heads only re-split SA/LT widths
    # exact: a 512 -> 1024 feed-forward on 2 layers of hidden 128 adds 2 * (2 * 128 * 512 + 512) weights
    assert param_count(make(128, ffd=1024)) - param_count(make(128, ffd=512)) == 2 * (2 * 128 * 512 + 512)
    # and the total includes ELECTRA-small's embeddings (no projection at hidden 128)
    assert param_count(make(128)) > embedding_param_count() == (30522 + 512 + 2) * 128 + 256


def test_every_operation_builds_its_own_mixer():
    kinds = {("SA", "SDP"): SelfAttention, ("SA", "WMA"): SelfAttention, ("LT", "DFT"): LinearTransform,
             ("LT", "DCT"): LinearTransform, ("DSC", 5): DynamicConvAttention, ("DSC", 9): DynamicConvAttention}
    for op, cls in kinds.items():
        model = BertModel(make(128, (op, op), heads=4))
        assert all(type(l.mix) is cls for l in model.layers)
    wma = BertModel(make(128, (("SA", "WMA"),) * 2))
    assert wma.layers[0].mix.weight is not None
    assert BertModel(make(128, (("DSC", 9),) * 2)).layers[0].mix.depthwise.kernel_size == (9,)
    assert BertModel(make(128, (("DSC", 5),) * 2), as_trained=False).layers[0].mix.head_count() == 2


def test_as_trained_is_all_sdp_attention_and_keeps_the_config():
    cfg = make(256, (("LT", "DFT"), ("DSC", 9), ("SA", "WMA"), ("LT", "DCT")), heads=4, ffd=512, nff=3)
    trained = BertModel(cfg, as_trained=True)
    for layer in trained.layers:
        assert type(layer.mix) is SelfAttention and layer.mix.weight is None and layer.mix.heads == 4
        widths = [lin.out_features for lin in layer.ffn.dense]
        assert widths == [4 * 256, 512, 512]  # the benchmark's intermediate_size, then the declared width
    declared = BertModel(cfg)
    assert [type(l.mix) for l in declared.layers] == [LinearTransform, DynamicConvAttention, SelfAttention, LinearTransform]
    ctx = get_space("bert").context(cfg, _batch(), as_trained=True)
    assert ctx.config == cfg and ctx.config.layers[0].operation_type == "LT"
    assert ctx.param_count() == n_params(ctx.model()) != param_count(cfg)


def _batch(lengths=(9, 16, 5, 12), width=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1996, 30522, (len(lengths), width), generator=g)
    mask = (torch.arange(width)[None] < torch.tensor(lengths)[:, None]).long()
    types = torch.zeros_like(ids)
    types[:, 3:] = 1
    return BertBatch(ids * mask, mask, types * mask)


@pytest.mark.parametrize("op", OPS)
def test_padding_never_reaches_a_real_token(op):
    model = BertModel(make(128, (op, op), heads=4), seed=1)
    batch = _batch()
    out = model(batch.input_ids, batch.attention_mask, batch.token_type_ids)
    # change every padded id and type: real outputs must not move
    noisy = torch.where(batch.attention_mask.bool(), batch.input_ids, torch.full_like(batch.input_ids, 4242))
    out2 = model(noisy, batch.attention_mask, batch.token_type_ids)
    real = batch.attention_mask.bool()
    torch.testing.assert_close(out[real], out2[real], rtol=0, atol=1e-5)
    # a row scored alone, without any padding, gives the same states
    alone = model(batch.input_ids[2:3, :5], batch.attention_mask[2:3, :5], batch.token_type_ids[2:3, :5])
    torch.testing.assert_close(out[2, :5], alone[0], rtol=1e-4, atol=1e-4)
    assert (out[~real] == 0).all()


def test_the_mask_matters_for_attention():
    model = BertModel(make(128), seed=1)
    b = _batch(lengths=(16, 16, 16, 16))
    full = model(b.input_ids, b.attention_mask)
    short = model(b.input_ids, torch.cat([torch.ones(4, 8), torch.zeros(4, 8)], 1).long())
    assert not torch.allclose(full[:, :8], short[:, :8], atol=1e-3)


def test_transforms_are_the_unnormalised_dft_and_dct():
    x = torch.randn(23, 16)
    c, s = dft_matrices(23)
    cd, sd = dft_matrices(16)
    torch.testing.assert_close(c @ x @ cd - s @ x @ sd, torch.fft.fft2(x).real, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose((dct_matrix(23) @ x @ dct_matrix(16).T).numpy(),
                               scipy.fft.dctn(x.numpy(), type=2), rtol=1e-4, atol=1e-3)


def test_initialisation_is_seeded_and_shared_parts_are_identical():
    cfg = make(256, (("SA", "SDP"), ("LT", "DCT")))
    a, b, c = BertModel(cfg, seed=0), BertModel(cfg, seed=0), BertModel(cfg, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.layers[0].mix.query.weight, c.layers[0].mix.query.weight)
    other = BertModel(make(256, (("SA", "SDP"), ("DSC", 9))), seed=0)  # same first layer
    assert torch.equal(a.layers[0].mix.query.weight, other.layers[0].mix.query.weight)
    w = a.layers[0].ffn.dense[0].weight.detach()
    assert abs(float(w.std()) - 0.02) < 0.002 and float(a.layers[0].ffn.dense[0].bias.detach().abs().max()) == 0
    assert float(a.word_embeddings.weight.detach()[0].abs().max()) == 0  # [PAD]


def test_model_is_in_eval_form_and_deterministic():
    model = BertModel(make(128, (("DSC", 9), ("SA", "WMA"))))
    assert not any(isinstance(m, torch.nn.Dropout) for m in model.modules()) and not model.training
    b = _batch()
    with torch.no_grad():
        assert torch.equal(model(b.input_ids, b.attention_mask), model(b.input_ids, b.attention_mask))
