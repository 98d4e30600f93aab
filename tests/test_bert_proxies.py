"""BERT proxies: finite, deterministic, one shared pass, no hooks or weight changes left behind."""
import math

import pytest
import torch

from nni_zerocost import score
from nni_zerocost.errors import ProxyNotApplicableError
from nni_zerocost.proxies import compute, get_proxy, list_proxies
from nni_zerocost.spaces import get_space
from nni_zerocost.spaces.bert import BertConfig, LayerConfig, zipf_bert_batch
from nni_zerocost.spaces.bert.model import embedding_param_count

BERT_PROXIES = ["activation_distance", "head_confidence", "head_importance", "head_softmax_confidence",
                "jacobian_covariance", "nonembedding_params", "params", "synaptic_diversity", "synaptic_saliency"]
VARIANTS = [("head_confidence", {"axis": "paper"}), ("head_softmax_confidence", {"axis": "paper"}),
            ("activation_distance", {"form": "paper"}), ("jacobian_covariance", {"form": "paper"}),
            ("head_importance", {"normalize": True}), ("synaptic_diversity", {"normalize": True}),
            ("synaptic_saliency", {"normalize": True}), ("head_confidence", {"normalize": True}),
            ("activation_distance", {"normalize": True})]
MIXED = BertConfig(128, (LayerConfig("SA", "WMA", 4, 512, 3), LayerConfig("LT", "DFT", 2, 512, 1),
                         LayerConfig("DSC", 9, 4, 1024, 1), LayerConfig("LT", "DCT", 4, 512, 1)))
ALL_LT = BertConfig(128, (LayerConfig("LT", "DFT", 2, 512, 1), LayerConfig("LT", "DCT", 4, 512, 1)))


@pytest.fixture(scope="module")
def batch():
    return zipf_bert_batch(batch_size=12, seq_len=32, seed=0)


def _scores(cfg, batch, seed=0, **opts):
    with get_space("bert").context(cfg, batch, seed=seed, **opts) as ctx:
        out = {n: compute(get_proxy(n), ctx) for n in BERT_PROXIES}
        out.update({f"{n}:{o}": compute(get_proxy(n), ctx, **o) for n, o in VARIANTS})
    return out


def test_the_bert_proxies_are_registered_with_their_documentation():
    research = {"wpca", "zerolm", "attention_rank", "ffn_rank", "representation_rank", "subspace_rank", "balanced_rank",
                "zico"}
    assert sorted(set(list_proxies("bert")) - research) == sorted(BERT_PROXIES)  # tested in test_dynamics_and_capacity_proxies.py
    for name in BERT_PROXIES:
        p = get_proxy(name)
        assert p.description and p.mode and p.nan_policy and p.higher_is_better is True
    assert get_proxy("params").applies_to("rnn") and get_proxy("params").applies_to("bert")


@pytest.mark.parametrize("as_trained", [False, True])
def test_every_proxy_is_finite_and_deterministic_under_a_seed(batch, as_trained):
    a = _scores(MIXED, batch, seed=0, as_trained=as_trained)
    b = _scores(MIXED, batch, seed=0, as_trained=as_trained)
    c = _scores(MIXED, batch, seed=1, as_trained=as_trained)
    for key, r in a.items():
        assert r.ok and r.flag is None, (key, r)
        assert r.raw == b[key].raw, key
    weight_based = [k for k in a if not k.startswith(("params", "nonembedding"))]
    assert sum(a[k].raw != c[k].raw for k in weight_based) == len(weight_based)


def test_values_have_the_documented_ranges(batch):
    s = _scores(MIXED, batch)
    heads = 4 + 2  # SA heads + DSC attention heads
    assert 1 / 32 < s["head_confidence:{'normalize': True}"].raw <= 1
    assert s["head_confidence"].raw == pytest.approx(heads * s["head_confidence:{'normalize': True}"].raw)
    # softmax confidence adds the two dynamic-convolution kernels (softmax over a span of 9)
    assert s["head_softmax_confidence"].raw > s["head_confidence"].raw
    assert s["nonembedding_params"].raw == s["params"].raw - embedding_param_count()
    assert s["head_importance:{'normalize': True}"].raw == pytest.approx(s["head_importance"].raw / (4 + 2 + 4 + 4))
    n_ffn = 3 + 1 + 1 + 1
    assert s["activation_distance:{'normalize': True}"].raw == pytest.approx(s["activation_distance"].raw / n_ffn)


def test_scoring_leaves_no_hook_no_grad_and_no_changed_weight(batch):
    ctx = get_space("bert").context(MIXED, batch)
    model = ctx.model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for name in BERT_PROXIES:
        compute(get_proxy(name), ctx)
    for m in model.modules():
        assert not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks)
    from torch.nn.modules import module as torch_module
    assert not torch_module._global_forward_hooks and not torch_module._global_backward_hooks
    assert all(p.grad is None for p in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    ctx.close()
    assert ctx.cache == {}


def test_all_proxies_share_one_forward_and_one_backward(batch, monkeypatch):
    ctx = get_space("bert").context(MIXED, batch)
    model = ctx.model()
    calls = []
    original = model.encode
    monkeypatch.setattr(model, "encode", lambda *a, **k: calls.append(torch.is_grad_enabled()) or original(*a, **k))
    for name in ["head_importance"] + BERT_PROXIES:
        compute(get_proxy(name), ctx)
    assert calls == [True]


def test_forward_statistics_do_not_depend_on_whether_the_gradient_pass_ran(batch):
    space = get_space("bert")
    with space.context(MIXED, batch) as forward_only, space.context(MIXED, batch) as after_grad:
        after_grad.gradients()
        for name, opts in [("head_confidence", {}), ("head_softmax_confidence", {"axis": "paper"}),
                           ("activation_distance", {})]:
            a = compute(get_proxy(name), forward_only, **opts).raw
            b = compute(get_proxy(name), after_grad, **opts).raw
            assert a == pytest.approx(b, rel=1e-5), name
        assert "gradients" not in forward_only.cache


def test_the_papers_sum_loss_is_degenerate(batch):
    """Sum of the final LayerNorm outputs is identically zero: its gradients are rounding noise."""
    space = get_space("bert")
    with space.context(MIXED, batch, loss="sum") as s, space.context(MIXED, batch, loss="rtd") as r:
        assert abs(s.gradients().loss) < 1e-3 * batch.attention_mask.sum().item()
        noise = compute(get_proxy("head_importance"), s).raw
        signal = compute(get_proxy("head_importance"), r).raw
        assert noise < 1e-2 * signal


def test_mlm_loss_is_available_and_starts_near_log_vocabulary(batch):
    with get_space("bert").context(MIXED, batch, loss="mlm") as ctx:
        assert ctx.gradients().loss == pytest.approx(math.log(30522), rel=0.05)
        assert compute(get_proxy("synaptic_saliency"), ctx).ok


def test_rtd_corrupts_fifteen_percent_of_ordinary_tokens(batch):
    ctx = get_space("bert").context(MIXED, batch, seed=3)
    ids = ctx._input_ids()
    changed = (ids != batch.input_ids)
    assert changed[batch.attention_mask == 0].sum() == 0
    ordinary = int(batch.attention_mask.sum()) - 2 * batch.shape[0] - int(((batch.input_ids == 102).sum(1) - 1).sum())
    assert 0.08 * ordinary < int(changed.sum()) <= 0.2 * ordinary
    assert torch.equal(ids, get_space("bert").context(MIXED, batch, seed=3)._input_ids())


def test_attention_free_architectures_are_flagged_not_silently_nan(batch):
    s = _scores(ALL_LT, batch)
    for key in ("head_confidence", "head_softmax_confidence"):
        assert not s[key].ok and "LT" in s[key].flag
    assert s["head_confidence:{'axis': 'paper'}"].ok and s["head_softmax_confidence:{'axis': 'paper'}"].ok
    assert s["head_importance"].ok and s["activation_distance"].ok


def test_bad_options_and_foreign_proxies_are_rejected(batch):
    ctx = get_space("bert").context(MIXED, batch)
    with pytest.raises(ValueError, match="axis"):
        compute(get_proxy("head_confidence"), ctx, axis="heads")
    with pytest.raises(ValueError, match="form"):
        compute(get_proxy("activation_distance"), ctx, form="cosine")
    with pytest.raises(ValueError, match="rows"):
        compute(get_proxy("activation_distance"), ctx, rows=9)
    with pytest.raises(ProxyNotApplicableError):
        compute(get_proxy("hidden_covariance"), ctx)
    with pytest.raises(ValueError, match="loss"):
        get_space("bert").context(MIXED, batch, loss="ce")


def test_top_level_score_runs_on_the_default_batch():
    out = score("bert", MIXED.to_dict(), ["params", "head_confidence:axis=paper"])
    assert out["params"].raw == get_space("bert").context(MIXED).param_count()
    assert out["head_confidence:axis=paper"].ok
