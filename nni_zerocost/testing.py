"""The conformance kit every proxy and every space must pass (scikit-learn's ``check_estimator``
for training-free NAS).

* :func:`check_proxy` runs every check a proxy's declared properties call for, on every
  registered space it applies to (or the space given);
* :func:`check_space` checks a search space: round trips, hashing, its NNI codec and NASLib
  form, sizes, batches, and every proxy that applies to it;
* :func:`parametrize_with_checks` makes each (check, proxy, space) a pytest case::

      from nni_zerocost.testing import parametrize_with_checks

      @parametrize_with_checks(["my_proxy"])
      def test_my_proxy(check):
          check()

A failed check raises :class:`AssertionError` naming the proxy, the space and what is wrong.
What a proxy declares chooses its checks: ``cost`` (a ``"weights"`` proxy must not run the
model), ``needs``/``option_needs`` (only spaces offering them), the documentation fields, and the
device (bit-identical repeats on the CPU, 1e-4 relative on CUDA, where atomic adds reorder sums).
"""
from __future__ import annotations

import functools
import json
import math
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .proxies.base import compute, get_proxy, list_proxies
from .spaces import get_space, list_spaces

#: architectures each proxy is tried on: the space's smoke architecture and this many samples
SAMPLES = 3


def hooks_left(model) -> List[str]:
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


def same(a: float, b: float, device="cpu") -> bool:
    """Bit-identical on the CPU; on CUDA to 1e-4 relative (backward passes accumulate with atomic
    adds whose order varies, and eigen-scores amplify rounding by 1/(l + k))."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if torch.device(device).type == "cpu":
        return a == b
    from .reproducibility import CUDA_REL_TOL

    return math.isclose(a, b, rel_tol=CUDA_REL_TOL, abs_tol=1e-6)


def _context(space: str, arch=None, seed: int = 0, device="cpu"):
    sp = get_space(space)
    return sp.context(sp.smoke_architecture() if arch is None else arch, sp.smoke_batch(), seed=seed, device=device)


def _model_of(ctx):
    model = getattr(ctx, "model", None)
    return model() if callable(model) else None


def _architectures(space: str) -> list:
    sp = get_space(space)
    rng = np.random.default_rng(0)
    return [sp.smoke_architecture()] + [sp.sample(rng) for _ in range(SAMPLES)]


def _fail(proxy: str, space: str, what: str):
    raise AssertionError(f"proxy {proxy!r} on the {space!r} space: {what}")


# -- proxy checks ------------------------------------------------------------------------------
def check_documented(proxy: str, space: str, device="cpu") -> None:
    """Sign, input (docstring), mode, NaN policy and size behaviour are documented."""
    impl = get_proxy(proxy).impl(space)
    p = get_proxy(proxy)
    if not isinstance(p.higher_is_better, bool):
        _fail(proxy, space, "higher_is_better must be True or False")
    for field in ("description", "mode", "nan_policy", "size"):
        if not str(getattr(impl, field) or "").strip():
            _fail(proxy, space, f"its {field} is not documented")


def check_finite_or_flagged(proxy: str, space: str, device="cpu") -> None:
    """On the smoke architecture the result is finite, or flagged by the proxy itself (not
    rescued by the package's NaN guard); on at least one of the tried architectures it is a
    finite value without a flag (a proxy that always flags scores nothing)."""
    p = get_proxy(proxy)
    clean = 0
    for i, arch in enumerate(_architectures(space)[:2] if device != "cpu" else _architectures(space)):
        with _context(space, arch, device=device) as ctx:
            r = compute(p, ctx)
        if i == 0 and not (r.ok or (r.flag and not r.flag.startswith("non-finite value"))):
            _fail(proxy, space, f"non-finite value without a reason of its own: {r}")
        if r.flag is not None and not (isinstance(r.flag, str) and r.flag.strip()):
            _fail(proxy, space, f"an empty flag: {r}")
        clean += int(r.ok and r.flag is None)
        if clean:
            return
    _fail(proxy, space, f"flagged or without a score on every one of {SAMPLES + 1} architectures")


def check_leaves_model_unchanged(proxy: str, space: str, device="cpu") -> None:
    """The model is the same object with bit-identical weights, on the device asked for, and no
    hook is left behind."""
    p = get_proxy(proxy)
    ctx = _context(space, device=device)
    model = _model_of(ctx)
    if model is not None:
        types = {q.device.type for q in model.parameters()}
        if types != {torch.device(device).type}:
            _fail(proxy, space, f"model built on {types}, asked for {device}")
    before = {k: v.detach().clone() for k, v in model.state_dict().items()} if model is not None else None
    compute(p, ctx)
    if model is not None:
        if _model_of(ctx) is not model:
            _fail(proxy, space, "replaced the context's model")
        after = model.state_dict()
        changed = [k for k in before if k not in after or not torch.equal(before[k], after[k])]
        if changed or before.keys() != after.keys():
            _fail(proxy, space, f"modified weights: {changed[:5]}")
    left = hooks_left(model)
    if left:
        _fail(proxy, space, f"left hooks behind: {left[:5]}")
    ctx.close()


def check_deterministic(proxy: str, space: str, device="cpu") -> None:
    """Two fresh contexts with the same seed give the same value and flag."""
    p = get_proxy(proxy)
    with _context(space, device=device) as a:
        first = compute(p, a)
    with _context(space, device=device) as b:
        again = compute(p, b)
    if not same(first.raw, again.raw, device) or first.flag != again.flag:
        _fail(proxy, space, f"not deterministic: {first} then {again}")


def check_weights_cost_runs_no_model(proxy: str, space: str, device="cpu") -> None:
    """A proxy declared ``cost="weights"`` reads weights or counts only: it leaves no forward
    or gradient pass in the context's cache."""
    impl = get_proxy(proxy).impl(space)
    if impl.cost != "weights":
        return
    with _context(space, device=device) as ctx:
        compute(get_proxy(proxy), ctx)
        passes = [k for k in ctx.cache if (k if isinstance(k, str) else k[0]) in
                  ("gradients", "stats", "spectra", "activation_kernel", "incoming", "output")]
    if passes:
        _fail(proxy, space, f"declared cost='weights' but ran passes {passes}")


PROXY_CHECKS: Tuple[Callable[..., None], ...] = (
    check_documented, check_finite_or_flagged, check_leaves_model_unchanged, check_deterministic,
    check_weights_cost_runs_no_model,
)


def check_shared_context(space: str, device="cpu", proxies: Optional[Sequence[str]] = None) -> None:
    """Every applicable proxy gives the same value alone and after all the others on one shared
    context (cached passes must not change numbers), in reverse registry order."""
    names = list(proxies) if proxies is not None else list_proxies(space)
    alone = {}
    for n in names:
        with _context(space, device=device) as ctx:
            alone[n] = compute(get_proxy(n), ctx)
    with _context(space, device=device) as shared:
        for n in reversed(names):
            r = compute(get_proxy(n), shared)
            if not same(r.raw, alone[n].raw, device) or r.flag != alone[n].flag:
                _fail(n, space, f"differs on a shared context: {r} alone {alone[n]}")
        left = hooks_left(_model_of(shared))
    if left:
        raise AssertionError(f"the {space!r} space's shared context left hooks: {left[:5]}")


def check_proxy(name: str, space: Optional[str] = None, device="cpu") -> None:
    """Run every proxy check on ``space`` (default: every registered space the proxy applies to)."""
    spaces = [space] if space is not None else list(get_proxy(name).spaces)
    if not spaces:
        raise AssertionError(f"proxy {name!r} applies to no registered space")
    for s in spaces:
        for check in PROXY_CHECKS:
            check(name, s, device)


# -- space checks --------------------------------------------------------------------------------
def check_space_architectures(space: str, device="cpu") -> None:
    """``parse(to_dict(a))`` and ``parse`` of its JSON give the same architecture and hash;
    samples are seeded; ``summary`` is one line; the sizes, where counted, are positive."""
    sp = get_space(space)
    archs = _architectures(space)
    again = [sp.sample(np.random.default_rng(0)) for _ in range(1)]
    if sp.arch_hash(again[0]) != sp.arch_hash(archs[1]):
        raise AssertionError(f"space {space!r}: sample(rng) is not reproducible for a seeded rng")
    for a in archs:
        d = sp.to_dict(a)
        b = sp.parse(json.loads(json.dumps(d)))
        if sp.arch_hash(b) != sp.arch_hash(a) or sp.to_dict(b) != d:
            raise AssertionError(f"space {space!r}: to_dict/parse do not round-trip {d}")
        text = sp.summary(a)
        if not isinstance(text, str) or "\n" in text or not text.strip():
            raise AssertionError(f"space {space!r}: summary must be one non-empty line, got {text!r}")
        n = sp.param_count(a)
        if n is not None and not (isinstance(n, int) and n > 0):
            raise AssertionError(f"space {space!r}: param_count must be a positive int or None, got {n!r}")


def check_space_codec(space: str, device="cpu") -> None:
    """The NNI codec's samples decode to valid architectures; architectures encode and decode
    back to the same hash."""
    sp = get_space(space)
    codec = sp.codec()
    choices = codec.choices()
    rng = np.random.default_rng(1)
    for _ in range(5):
        sample = {label: values[int(rng.integers(len(values)))] for label, values in choices.items()}
        sp.parse(sp.to_dict(codec.decode(sample)))
    for a in _architectures(space):
        if sp.arch_hash(codec.decode(codec.encode(a))) != sp.arch_hash(a):
            raise AssertionError(f"space {space!r}: the NNI codec does not round-trip {sp.to_dict(a)}")


def check_space_naslib_form(space: str, device="cpu") -> None:
    """The NASLib compact round-trips, is hashable, its moves are valid and new, and the
    encoding has one length."""
    sp = get_space(space)
    form = sp.naslib_form()
    lengths = set()
    for a in _architectures(space):
        c = form.compact(a)
        hash(c)
        if not form.is_compact(c) or sp.arch_hash(form.arch(c)) != sp.arch_hash(a):
            raise AssertionError(f"space {space!r}: the NASLib compact does not round-trip")
        try:
            lengths.add(len(form.encode(c, "adjacency_one_hot")))
        except ImportError:  # the space reuses NASLib's own encoder and NASLib is not installed
            lengths.add(-1)
        if form.moves is not None:
            for m in form.moves(c)[:20]:
                if m == c:
                    raise AssertionError(f"space {space!r}: a NASLib move returns the compact itself")
                form.arch(m)
    if len(lengths) != 1:
        raise AssertionError(f"space {space!r}: NASLib encodings of different lengths {sorted(lengths)}")


def check_space_contexts(space: str, device="cpu") -> None:
    """Every capability the space declares is implemented by its contexts (every method of the
    capability's protocol exists)."""
    from .capabilities import CAPABILITIES

    sp = get_space(space)
    with _context(space, device=device) as ctx:
        if frozenset(ctx.offers) != frozenset(sp.offers):
            raise AssertionError(f"space {space!r}: declares {sorted(sp.offers)}, its context offers "
                                 f"{sorted(ctx.offers)}")
        for cap in ctx.offers:
            lacking = [m for m in CAPABILITIES[cap].methods if not callable(getattr(ctx, m, None))]
            if lacking:
                raise AssertionError(f"space {space!r}: offers {cap!r} but its context lacks {lacking}")


SPACE_CHECKS: Tuple[Callable[..., None], ...] = (
    check_space_architectures, check_space_codec, check_space_naslib_form, check_space_contexts,
)


def check_space(space: str, device="cpu", proxies: bool = True) -> None:
    """Every space check, then (``proxies``) every check of every proxy that applies to it."""
    for check in SPACE_CHECKS:
        check(space, device)
    if proxies:
        for name in list_proxies(space):
            check_proxy(name, space, device)
        check_shared_context(space, device)


# -- pytest -----------------------------------------------------------------------------------
def checks(proxies: Optional[Iterable[str]] = None, spaces: Optional[Iterable[str]] = None,
           device="cpu") -> List[Tuple[str, Callable[[], None]]]:
    """``(id, check)`` pairs: every proxy check for each (proxy, space) it applies to, every
    space check, and each space's shared-context check."""
    space_names = list(spaces) if spaces is not None else list_spaces()
    names = list(proxies) if proxies is not None else list_proxies()
    out: List[Tuple[str, Callable[[], None]]] = []
    for s in space_names:
        for n in names:
            if get_proxy(n).applies_to(s):
                for check in PROXY_CHECKS:
                    out.append((f"{check.__name__}-{n}-{s}", functools.partial(check, n, s, device)))
    if proxies is None:
        for s in space_names:
            for check in SPACE_CHECKS:
                out.append((f"{check.__name__}-{s}", functools.partial(check, s, device)))
            out.append((f"check_shared_context-{s}", functools.partial(check_shared_context, s, device)))
    return out


def parametrize_with_checks(proxies: Optional[Iterable[str]] = None, spaces: Optional[Iterable[str]] = None,
                            device="cpu"):
    """``pytest.mark.parametrize("check", ...)`` over :func:`checks` (one test per check)."""
    import pytest

    pairs = checks(proxies, spaces, device)
    return pytest.mark.parametrize("check", [c for _, c in pairs], ids=[i for i, _ in pairs])
