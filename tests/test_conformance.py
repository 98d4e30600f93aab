"""Registry conformance: every registered proxy, on every registered space it applies to.

Parametrized from the live registries, so proxies and spaces added later (BERT) are checked
without editing this file.  For each (proxy, space): a result that is finite or explicitly
flagged by the proxy itself, bit-identical values from two fresh contexts with the same seed,
the model's weights unchanged, no hook left behind, and the same value whether the proxy runs
alone or after every other proxy on a shared context (cached passes must not change numbers).

Every check runs on every device: the CPU, and CUDA where there is a GPU (skipped, with the
reason, where there is none, so CI on CPU stays green).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nni_zerocost.data import TokenBatch
from nni_zerocost.proxies import compute, get_proxy, list_proxies
from nni_zerocost.spaces import get_space, list_spaces

@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread is faster, and immune to oversubscribed shared machines."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


CASES = [(p, s) for p in list_proxies() for s in list_spaces() if get_proxy(p).applies_to(s)]
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="no CUDA device here (torch.cuda.is_available() is False)")),
]


def small_batch(space):
    """The space's default batch, cut down where we know its layout (speed only)."""
    batch = space.default_batch(0)
    if space.name == "rnn" and isinstance(batch, TokenBatch):
        return TokenBatch(batch.tokens[:12, :6].clone(), batch.vocab_size, batch.source + ":12x6")
    return batch


def make_context(space_name, seed=0, device="cpu"):
    space = get_space(space_name)
    arch = space.sample(np.random.default_rng(0))
    return space.context(arch, small_batch(space), seed=seed, device=device)


def model_of(ctx):
    model = getattr(ctx, "model", None)
    return model() if callable(model) else None


def hooks_left(model):
    """Names of every hook still registered, globally or on the model's modules/parameters."""
    left = []
    mod = torch.nn.modules.module
    for name in dir(mod):
        obj = getattr(mod, name)
        if name.startswith("_global_") and "hook" in name and isinstance(obj, dict) and obj:
            left.append(name)
    if model is not None:
        for mname, m in model.named_modules():
            for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
                         "_state_dict_hooks", "_load_state_dict_pre_hooks"):
                if getattr(m, attr, None):
                    left.append(f"{mname or 'model'}.{attr}")
        for pname, p in model.named_parameters():
            if getattr(p, "_backward_hooks", None):
                left.append(f"{pname}._backward_hooks")
    return left


def same(a, b, device="cpu") -> bool:
    """Bit-identical on the CPU.  On CUDA, backward passes accumulate with atomic adds
    (index_select/embedding backward) whose order varies from run to run, so two runs agree
    to float rounding only: 1e-4 relative (the eigen-scores amplify rounding by 1/(l + k))."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if torch.device(device).type == "cpu":
        return a == b
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)


def test_registry_is_not_empty():
    assert CASES, "no (proxy, space) pair registered"
    assert "rnn" in list_spaces()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("proxy,space", CASES, ids=[f"{p}-{s}" for p, s in CASES])
def test_proxy_conforms(proxy, space, device):
    p = get_proxy(proxy)
    assert p.description and p.mode and p.nan_policy, "sign, mode and NaN policy must be documented"
    assert isinstance(p.higher_is_better, bool)

    ctx = make_context(space, device=device)
    model = model_of(ctx)
    if model is not None:  # built on the device asked for
        assert {p.device.type for p in model.parameters()} == {torch.device(device).type}
    before = {k: v.detach().clone() for k, v in model.state_dict().items()} if model is not None else None
    first = compute(p, ctx)
    # finite, or flagged by the proxy itself (not rescued by the package's NaN guard)
    assert first.ok or (first.flag and not first.flag.startswith("non-finite value")), first
    if first.flag:
        assert isinstance(first.flag, str) and first.flag.strip()
    # the model is the same object with bit-identical weights
    if model is not None:
        assert model_of(ctx) is model
        after = model.state_dict()
        assert before.keys() == after.keys()
        changed = [k for k in before if not torch.equal(before[k], after[k])]
        assert not changed, f"{proxy} modified weights: {changed[:5]}"
    assert hooks_left(model) == [], f"{proxy} left hooks behind"
    ctx.close()

    # deterministic under a seed: a fresh context gives the bit-identical value
    again = compute(p, make_context(space, device=device))
    assert same(first.raw, again.raw, device), (first.raw, again.raw)
    assert first.flag == again.flag


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("space", sorted({s for _, s in CASES}))
def test_shared_context_gives_the_same_values_as_fresh_ones(space, device):
    names = [p for p, s in CASES if s == space]
    alone = {n: compute(get_proxy(n), make_context(space, device=device)) for n in names}
    shared = make_context(space, device=device)
    for n in reversed(names):  # another order than the registry's
        r = compute(get_proxy(n), shared)
        assert same(r.raw, alone[n].raw, device), (n, r.raw, alone[n].raw)
        assert r.flag == alone[n].flag
    assert hooks_left(model_of(shared)) == []
