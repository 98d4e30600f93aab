import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nni_zerocost.spaces import get_space
from nni_zerocost.spaces.rnn import Cell, RNNLanguageModel
from nni_zerocost.spaces.rnn.model import _wkey

from conftest import GRU, LSTM, RNN

ACT = {"activation_tanh": torch.tanh, "activation_sigm": torch.sigmoid, "activation_leaky_relu": F.leaky_relu}


def naive_layer(layer, xs):
    """Step-by-step reference: evaluate the recipe node by node, one F.linear per input."""
    cell = layer.cell
    nodes = cell.node_map
    T, B, _ = xs.shape
    state = [torch.zeros(B, layer.hidden_size) for _ in range(cell.hidden_tuple_size)]
    incoming, outs = [], []
    for t in range(T):
        incoming.append(state[0])
        vals = {"x": xs[t], **{f"h_prev_{i}": s for i, s in enumerate(state)}}
        for name in cell.order:
            op, ins = nodes[name].op, nodes[name].inputs
            if op == "linear":
                v = layer.biases[name].clone()
                for i, s in enumerate(ins):
                    v = v + F.linear(vals[s], layer.weights[_wkey(name, i)])
            elif op == "blend":
                v = vals[ins[0]] * vals[ins[1]] + (1 - vals[ins[0]]) * vals[ins[2]]
            elif op == "elementwise_prod":
                v = vals[ins[0]] * vals[ins[1]]
                for s in ins[2:]:
                    v = v * vals[s]
            elif op == "elementwise_sum":
                v = sum(vals[s] for s in ins)
            else:
                v = ACT[op](vals[ins[0]])
            vals[name] = v
        state = [vals[f"h_new_{i}"] for i in range(cell.hidden_tuple_size)]
        outs.append(state[0])
    return torch.stack(outs), torch.stack(incoming)


@pytest.mark.parametrize("recipe", [RNN, LSTM, GRU, "sampled"])
def test_fast_engine_matches_naive_reference(recipe):
    cell = get_space("rnn").sample(np.random.default_rng(3)) if recipe == "sampled" else Cell.parse(recipe)
    model = RNNLanguageModel(cell, vocab_size=50, emsize=16, nhid=24, seed=1)
    xs = model.embed(torch.randint(0, 50, (9, 4)))
    with torch.no_grad():
        for layer in model.layers:
            out, _, inc = layer(xs, record_inputs=True)
            ref_out, ref_inc = naive_layer(layer, xs)
            torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(inc, ref_inc, rtol=1e-5, atol=1e-6)
            assert torch.equal(inc[0], torch.zeros_like(inc[0]))  # first incoming state is zero
            xs = out
    # the autograd path computes the same values
    out_grad, _, _ = model.layers[0](model.embed(torch.randint(0, 50, (9, 4), generator=torch.Generator().manual_seed(0))))
    with torch.no_grad():
        out_ng, _, _ = model.layers[0](model.embed(torch.randint(0, 50, (9, 4), generator=torch.Generator().manual_seed(0))))
    torch.testing.assert_close(out_grad.detach(), out_ng, rtol=1e-5, atol=1e-6)


def test_official_architecture_sizes_and_init_ranges():
    m = RNNLanguageModel(Cell.parse(RNN), seed=0)
    assert [(l.input_size, l.hidden_size) for l in m.layers] == [(400, 600), (600, 600), (600, 400)]
    assert sum(p.numel() for p in m.parameters()) == 5_731_600  # n_params_ptb of the RNN cell
    assert m.encoder.weight.abs().max() <= 0.1
    for layer in m.layers:
        bound = 1 / math.sqrt(layer.hidden_size)
        for p in layer.parameters():
            assert p.abs().max() <= bound + 1e-7
            assert p.abs().max() > 0.9 * bound  # really drawn from the full range
    assert torch.equal(m.decoder_bias, torch.zeros_like(m.decoder_bias))
    logits = m(torch.randint(0, 10_000, (5, 2)))
    assert logits.shape == (5, 2, 10_000)


def test_official_init_of_a_layer_does_not_depend_on_depth():
    cell = Cell.parse(LSTM)
    full = RNNLanguageModel(cell, seed=7)
    one = RNNLanguageModel(cell, seed=7, depth=1)
    assert torch.equal(full.encoder.weight, one.encoder.weight)
    for a, b in zip(full.layers[0].parameters(), one.layers[0].parameters()):
        assert torch.equal(a, b)
    other = RNNLanguageModel(cell, seed=8, depth=1)
    assert not torch.equal(other.encoder.weight, one.encoder.weight)


def test_compat_init_consumes_the_official_stream():
    """The compat embedding is the 2nd U(-0.1,0.1) draw after the official constructor's draws."""
    cell = Cell.parse(RNN)
    m = RNNLanguageModel(cell, seed=0, init="compat", depth=1)
    g = torch.Generator().manual_seed(0)
    torch.empty(10_000, 400).normal_(generator=g)
    for inp, hid in [(400, 600), (600, 600), (600, 400)]:
        for shape in [(hid, inp), (hid, hid), (hid,)]:  # MultiLinear init: weights then bias
            torch.empty(shape).uniform_(generator=g)
        b = torch.empty(hid).uniform_(-1 / math.sqrt(hid), 1 / math.sqrt(hid), generator=g)  # reset: bias first
        wx = torch.empty(hid, inp).uniform_(-1 / math.sqrt(hid), 1 / math.sqrt(hid), generator=g)
        wh = torch.empty(hid, hid).uniform_(-1 / math.sqrt(hid), 1 / math.sqrt(hid), generator=g)
        if inp == 400:
            torch.testing.assert_close(m.layers[0].biases["f"].data, b, rtol=0, atol=0)
            torch.testing.assert_close(m.layers[0].weights["f__w0"].data, wx, rtol=0, atol=0)
            torch.testing.assert_close(m.layers[0].weights["f__w1"].data, wh, rtol=0, atol=0)
    torch.empty(10_000, 600).uniform_(generator=g)
    torch.empty(10_000).uniform_(generator=g)
    torch.empty(10_000, 400).uniform_(generator=g)
    emb = torch.empty(10_000, 400).uniform_(-0.1, 0.1, generator=g)
    assert torch.equal(m.encoder.weight.data, emb)


def test_depth_errors():
    with pytest.raises(ValueError, match="depth"):
        RNNLanguageModel(Cell.parse(RNN), depth=4)
    m = RNNLanguageModel(Cell.parse(RNN), depth=1)
    with pytest.raises(RuntimeError, match="all layers"):
        m(torch.zeros(2, 2, dtype=torch.long))


def test_grown_model_equals_model_built_at_full_depth():
    cell = Cell.parse(GRU)
    grown = RNNLanguageModel(cell, seed=4, depth=1)
    grown.grow(3)
    full = RNNLanguageModel(cell, seed=4)
    for a, b in zip(grown.state_dict().values(), full.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(RuntimeError, match="official"):
        RNNLanguageModel(cell, seed=4, depth=1, init="compat").grow(2)


def test_layers_are_run_once_across_hidden_covariance_layers():
    from nni_zerocost.data import zipf_batch

    sp = get_space("rnn")
    batch = zipf_batch(4, 6)
    ctx = sp.context(LSTM, batch, emsize=8, nhid=8)
    calls = []
    nz_score(ctx, 1)
    model = ctx.model()
    for layer in model.layers:
        layer.register_forward_pre_hook(lambda m, a: calls.append(m))
    r3 = nz_score(ctx, 3)
    assert len(calls) == 2  # layers 2 and 3 only; layer 1 came from the cache
    fresh = nz_score(sp.context(LSTM, batch, emsize=8, nhid=8), 3)
    assert r3 == fresh


def nz_score(ctx, layer):
    from nni_zerocost.proxies import get_proxy

    return get_proxy("hidden_covariance")(ctx, layer=layer).raw
