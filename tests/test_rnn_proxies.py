"""Numbers of the RNN baseline proxies against direct, independent computations.

Every test uses the full-size model (emb 400, hidden 600/600/400) on a tiny token batch, so a
pass takes milliseconds; the reference computations below re-implement the cell by hand instead
of calling the package's forward.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nni_zerocost.data import zipf_batch
from nni_zerocost.proxies import compute, get_proxy
from nni_zerocost.spaces.rnn import passes as rnn_passes
from nni_zerocost.spaces import get_space

@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread is faster, and immune to oversubscribed shared machines."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


TANH_CELL = {
    "node_0": {"op": "linear", "input": ["x", "h_prev_0"]},
    "h_new_0": {"op": "activation_tanh", "input": ["node_0"]},
}
# three activation kinds; the sigmoid's codes are all 1, the product mixes two branches
MIXED_CELL = {
    "node_0": {"op": "linear", "input": ["x", "h_prev_0"]},
    "node_1": {"op": "activation_sigm", "input": ["node_0"]},
    "node_2": {"op": "activation_leaky_relu", "input": ["node_0"]},
    "node_3": {"op": "elementwise_prod", "input": ["node_1", "node_2"]},
    "h_new_0": {"op": "activation_tanh", "input": ["node_3"]},
}
LINEAR_CELL = {"h_new_0": {"op": "linear", "input": ["x", "h_prev_0"]}}


def ctx_for(recipe, T=6, B=5, seed=0):
    batch = zipf_batch(batch_size=B, seq_len=T, seed=3)
    return get_space("rnn").context(recipe, batch, seed=seed)


def run(name, ctx, **opts):
    return compute(get_proxy(name), ctx, **opts)


def weights(layer):
    """{official name: tensor} of one layer, e.g. 'node_0.w1', 'node_0.b'."""
    return {n: p.detach() for n, p in layer.official_parameter_order()}


def manual_forward(model, x, recipe=TANH_CELL, keep_states=False):
    """Hand-written forward of TANH_CELL / MIXED_CELL through all layers.

    Returns the last layer's outputs, the activation outputs per layer and step, and (when
    ``keep_states``) the states entering steps 1..T-1 of every layer, as autograd tensors.
    """
    acts, states = [], []
    out = x
    for layer in model.layers:
        w = {n: p for n, p in layer.official_parameter_order()}
        h = out.new_zeros(out.shape[1], layer.hidden_size)
        outs = []
        for t in range(out.shape[0]):
            if t > 0 and keep_states:
                states.append(h)
            pre = out[t] @ w["node_0.w0"].T + h @ w["node_0.w1"].T + w["node_0.b"]
            if recipe is TANH_CELL:
                h = torch.tanh(pre)
                acts.append(h)
            else:
                s, r = torch.sigmoid(pre), F.leaky_relu(pre)
                h = torch.tanh(s * r)
                acts += [s, r, h]
            outs.append(h)
        out = torch.stack(outs)
    return out, acts, states


# -- activation distance ----------------------------------------------------------------


@pytest.mark.parametrize("recipe", [TANH_CELL, MIXED_CELL], ids=["tanh", "mixed"])
def test_activation_distance_equals_direct_hamming_kernel(recipe):
    ctx = ctx_for(recipe)
    model = ctx.model()
    with torch.no_grad():
        _, acts, _ = manual_forward(model, model.embed(ctx.tokens), recipe)
    codes = np.concatenate([(a > 0).numpy() for a in acts], axis=1)  # (B, all codes)
    B = codes.shape[0]
    K = np.array([[np.sum(codes[i] == codes[j]) for j in range(B)] for i in range(B)], dtype=float)
    expected = np.linalg.slogdet(K)[1]
    r = run("activation_distance", ctx)
    assert r.flag is None
    assert r.raw == pytest.approx(expected, rel=1e-12)
    assert ctx.activation_kernel()[1] == codes.shape[1]


def test_activation_distance_flags_cell_without_activations():
    r = run("activation_distance", ctx_for(LINEAR_CELL))
    assert not r.ok and "no activation node" in r.flag


def test_activation_distance_flags_identical_sequences():
    batch = zipf_batch(batch_size=4, seq_len=6, seed=3)
    tokens = batch.tokens.clone()
    tokens[:, 1] = tokens[:, 0]  # two identical columns: identical codes, singular kernel
    batch = type(batch)(tokens, batch.vocab_size, "dup")
    r = run("activation_distance", get_space("rnn").context(TANH_CELL, batch))
    assert not r.ok and "singular" in r.flag


def test_activation_kernel_forward_feeds_hidden_covariance(monkeypatch):
    ctx = ctx_for(TANH_CELL)
    run("activation_distance", ctx)
    calls = []
    monkeypatch.setattr(type(ctx.model()), "run_layers", lambda *a, **k: calls.append(1))
    values = [run("hidden_covariance", ctx, layer=k) for k in (1, 2, 3)]
    assert calls == [] and all(v.ok for v in values)


# -- Jacobian proxies -------------------------------------------------------------------


def test_jacobian_matches_autograd_functional_jacobian():
    ctx = ctx_for(TANH_CELL, T=4, B=3)
    model = ctx.model()
    emb = model.embed(ctx.tokens).detach()
    ours = ctx.gradients("sum").input_grad
    ref = torch.autograd.functional.jacobian(lambda e: manual_forward(model, e)[0].sum(), emb)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-6)


def _rows(J):
    return J.transpose(0, 1).reshape(J.shape[1], -1).double().numpy()


def _cov_score(rows):
    v = np.linalg.eigvalsh(np.corrcoef(rows))
    return -np.sum(np.log(v + 1e-5) + 1 / (v + 1e-5))


def _cos_score(rows):
    u = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    B = len(rows)
    off = ~np.eye(B, dtype=bool)
    summed = np.sum(np.abs((u @ u.T)[off]) ** (1 / 20)) / 2
    return 1 - summed / (B * B - B)


def _noised_jacobian(model, tokens, amplitude, seed):
    emb = model.embed(tokens).detach()
    e = emb.numpy()
    noise = np.random.RandomState(seed).normal(size=e.shape)
    x = torch.from_numpy((e + amplitude * np.var(e, axis=1, keepdims=True) * noise).astype(np.float32))
    x.requires_grad_(True)
    (g,) = torch.autograd.grad(manual_forward(model, x)[0].sum(), x)
    return g


def test_jacobian_scores_and_noise_variants_equal_direct_computation():
    ctx = ctx_for(TANH_CELL, T=5, B=6, seed=2)
    model = ctx.model()
    J = {a: _rows(_noised_jacobian(model, ctx.tokens, a, seed=2) if a else ctx.gradients("sum").input_grad)
         for a in (0.0, 0.1, 10.0, 100.0)}
    cov = {a: _cov_score(r) for a, r in J.items()}
    cos = {a: _cos_score(r) for a, r in J.items()}
    assert run("jacobian_covariance", ctx).raw == pytest.approx(cov[0.0], rel=1e-6)
    assert run("jacobian_cosine", ctx).raw == pytest.approx(cos[0.0], rel=1e-9)
    assert run("jacobian_covariance", ctx, noise="large").raw == pytest.approx(1 - abs(cov[0.0] - cov[10.0]), rel=1e-5)
    assert run("jacobian_cosine", ctx, noise="small").raw == pytest.approx(1 - abs(cos[0.0] - cos[0.1]), rel=1e-9)
    more = math.prod(cov.values())
    assert run("jacobian_covariance", ctx, noise="more").raw == pytest.approx(-more, rel=1e-5)
    assert run("jacobian_cosine", ctx, noise="more").raw == pytest.approx(math.prod(cos.values()), rel=1e-9)


def test_noise_draw_depends_on_seed_only():
    a, b, c = ctx_for(TANH_CELL, seed=0), ctx_for(TANH_CELL, seed=0), ctx_for(TANH_CELL, seed=1)
    assert torch.equal(a.layer_input(10.0), b.layer_input(10.0))
    assert not torch.equal(a.layer_input(10.0) - a.layer_input(), c.layer_input(10.0) - c.layer_input())


def test_jacobian_cosine_flags_zero_jacobian():
    # output independent of x: h = tanh(U h + b) never sees the input, so every Jacobian is zero
    cell = {"node_0": {"op": "linear", "input": ["h_prev_0"]}, "h_new_0": {"op": "activation_tanh", "input": ["node_0"]}}
    r = run("jacobian_cosine", ctx_for(cell))
    assert not r.ok and "zero Jacobian" in r.flag


def test_bad_noise_option_names_valid_values():
    with pytest.raises(ValueError, match="must be one of 'none', 'small', 'large', 'more', got 'loud'"):
        run("jacobian_cosine", ctx_for(TANH_CELL), noise="loud")


# -- gradient proxies -------------------------------------------------------------------


def _hand_gradients(ctx, loss):
    """Loss, parameter gradients and state gradients of TANH_CELL, computed by hand."""
    model = ctx.model()
    params = [p for layer in model.layers for _, p in layer.official_parameter_order()]
    x = model.embed(ctx.tokens)
    out, _, states = manual_forward(model, x, keep_states=True)
    if loss == "lm":
        logits = out[:-1] @ model.encoder.weight.T + model.decoder_bias
        value = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ctx.tokens[1:].reshape(-1))
    else:
        value = out.sum()
    grads = torch.autograd.grad(value, params + states, create_graph=True)
    return model, value, params, grads[: len(params)], states, grads[len(params):]


@pytest.mark.parametrize("loss", ["lm", "sum"])
def test_gradient_proxies_equal_hand_computation(loss):
    ctx = ctx_for(TANH_CELL, T=5, B=4)
    model, value, params, graph_g, states, sg = _hand_gradients(ctx, loss)
    g = [gi.detach() for gi in graph_g]
    snip = sum(float((p.detach() * gi).abs().sum()) for p, gi in zip(params, g))
    norm = sum(float(gi.norm()) for gi in g)
    T1 = ctx.tokens.shape[0] - 1
    fisher = 0.0
    for layer in range(3):
        h = torch.stack(states[layer * T1:(layer + 1) * T1]).detach()
        gh = torch.stack(sg[layer * T1:(layer + 1) * T1]).detach()
        s = (h * gh).sum(0)
        fisher += float(0.5 * (s * s).mean(0).sum())
    hidden = sum(float((h.detach() * gh.detach()).abs().sum()) for h, gh in zip(states, sg))
    z = sum((gi * gi.detach()).sum() for gi in graph_g)
    hg = torch.autograd.grad(z, params)
    grasp = sum(float((-p.detach() * h).sum()) for p, h in zip(params, hg))
    assert run("snip", ctx, loss=loss).raw == pytest.approx(snip, rel=1e-5)
    assert run("grad_norm", ctx, loss=loss).raw == pytest.approx(norm, rel=1e-5)
    assert run("fisher", ctx, loss=loss).raw == pytest.approx(fisher, rel=1e-4)
    assert run("hidden_synaptic_saliency", ctx, loss=loss).raw == pytest.approx(hidden, rel=1e-5)
    assert run("grasp", ctx, loss=loss).raw == pytest.approx(grasp, rel=1e-3)
    assert ctx.gradients(loss).value == pytest.approx(float(value.detach()), rel=1e-6)


def test_synaptic_saliency_parameter_sets():
    ctx = ctx_for(MIXED_CELL, T=5, B=4)
    model = ctx.model()
    g = ctx.gradients("sum").param_grads
    named = dict(model.named_parameters())
    by_id = {id(p): n for n, p in named.items()}
    sal = {n: float((named[n].detach().double() * g[n].double()).abs().sum()) for n in named}
    cell = sum(sal[n] for n in named if n.startswith("layers."))
    # the paper's selection: weights of inputs 1.. of every linear node (here node_0's h weight)
    paper = sum(sal[by_id[id(w["node_0.w1"])]] for w in (dict(l.official_parameter_order()) for l in model.layers))
    paper += sal["encoder.weight"]
    assert run("synaptic_saliency", ctx).raw == pytest.approx(cell, rel=1e-9)
    assert run("synaptic_saliency", ctx, params="paper").raw == pytest.approx(paper, rel=1e-9)
    assert sal["encoder.weight"] > 0 and paper != pytest.approx(cell)


def test_loss_option_changes_the_value_and_lm_saliency_is_snip():
    ctx = ctx_for(MIXED_CELL)
    lm, total = run("snip", ctx, loss="lm").raw, run("snip", ctx, loss="sum").raw
    square = run("synaptic_saliency", ctx, loss="square").raw
    assert len({lm, total, square}) == 3
    assert run("synaptic_saliency", ctx, loss="lm").raw == lm


def test_bad_loss_and_params_options_name_valid_values():
    ctx = ctx_for(TANH_CELL)
    with pytest.raises(ValueError, match="must be one of 'lm', 'sum', 'square', got 'mse'"):
        run("snip", ctx, loss="mse")
    with pytest.raises(ValueError, match="must be one of 'cell', 'paper', got 'all'"):
        run("synaptic_saliency", ctx, params="all")


def test_exploding_cell_is_flagged_not_nan():
    ctx = ctx_for(TANH_CELL)
    ctx.cache["gradients", "lm", 0.0] = rnn_passes.GradientPass(
        "lm", 0.0, math.inf, torch.zeros(1), (), (), {})
    r = run("grad_norm", ctx)
    assert not r.ok and "not finite" in r.flag


# -- sharing ----------------------------------------------------------------------------


def test_passes_are_shared_between_proxies(monkeypatch):
    counted = {"gradient_pass": [], "activation_kernel": [], "hessian_gradient": []}
    for name, calls in counted.items():
        real = getattr(rnn_passes, name)
        monkeypatch.setattr(rnn_passes, name, lambda *a, _real=real, _calls=calls, **k: _calls.append(a) or _real(*a, **k))
    ctx = ctx_for(MIXED_CELL)
    for name in ("snip", "grad_norm", "fisher", "grasp"):
        run(name, ctx)
    assert len(counted["gradient_pass"]) == 1 and len(counted["hessian_gradient"]) == 1
    for name in ("synaptic_saliency", "hidden_synaptic_saliency", "jacobian_covariance", "jacobian_cosine"):
        run(name, ctx)
    assert len(counted["gradient_pass"]) == 2  # one more: the label-free "sum" loss
    run("jacobian_cosine", ctx, noise="large")
    run("jacobian_covariance", ctx, noise="large")
    assert len(counted["gradient_pass"]) == 3  # the noised input (a = 10), shared by both
    run("activation_distance", ctx)
    run("activation_distance", ctx)
    assert len(counted["activation_kernel"]) == 1


def test_gradient_passes_leave_no_grad_and_weights_untouched():
    ctx = ctx_for(MIXED_CELL)
    model = ctx.model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for name in ("snip", "grasp", "jacobian_cosine", "hidden_synaptic_saliency"):
        run(name, ctx)
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_grasp_hessian_chunks_add_up_to_the_whole_batch():
    ctx = ctx_for(MIXED_CELL, T=5, B=4)
    names = [n for n, _ in ctx.model().named_parameters() if n.startswith("layers.")]
    g = ctx.gradients("lm").param_grads
    whole = rnn_passes.hessian_gradient(ctx.model(), ctx.tokens, "lm", names, g, chunk=4)
    pieces = rnn_passes.hessian_gradient(ctx.model(), ctx.tokens, "lm", names, g, chunk=1)
    for n in names:
        torch.testing.assert_close(pieces[n], whole[n], rtol=1e-4, atol=1e-9)
    assert any(float(whole[n].abs().max()) > 0 for n in names)
