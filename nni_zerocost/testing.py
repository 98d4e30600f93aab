"""The conformance kit: scikit-learn's ``check_estimator`` for training-free NAS.  It takes objects.

* :func:`check_proxy` -- a proxy (its name or :class:`~nni_zerocost.proxies.base.Proxy`) on every
  space it applies to (or the one given): documented, finite or flagged by itself, deterministic,
  the model left as it was, no pass run by a ``"weights"`` proxy, and nothing read beyond what it
  declares (it runs on a view of the context exposing only its capabilities);
* :func:`check_space` -- a space (its name or a :class:`~nni_zerocost.spaces.SearchSpace`):
  round trips, hashing, its NNI codec and NASLib form, its contexts' capabilities, then every
  proxy that applies to it;
* :func:`check_model` -- your own model object, through :func:`nni_zerocost.score_model`: every
  proxy that applies gives a value, twice the same, and the model keeps its weights, ``.grad``,
  hooks and train/eval flags;
* :func:`check_backend` -- an execution backend (local workers, Ray, your own scheduler): the
  runner with it gives the records of this process, in input order, none dropped;
* pytest: :func:`parametrize_with_checks` (one case per check, over the registries) and the test
  classes :class:`ProxyChecks`, :class:`SpaceChecks`, :class:`ModelChecks`,
  :class:`BackendChecks`, to subclass (optuna's ``pytest_storages`` pattern)::

      from nni_zerocost.testing import ProxyChecks

      class TestMyProxy(ProxyChecks):
          proxy = "my_proxy"

A failed check raises :class:`AssertionError` naming the proxy, the space or model and what is
wrong.  What a proxy declares chooses its checks: ``cost`` (a ``"weights"`` proxy must not run
the model), ``needs``/``option_needs`` (only contexts offering them, and only those members may
be read), the documentation fields, and the device (bit-identical repeats on the CPU, to
:data:`~nni_zerocost.reproducibility.CUDA_REL_TOL` on CUDA).
"""
from __future__ import annotations

import functools
import json
import math
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .proxies.base import Flagged, Proxy, compute, get_proxy, list_proxies
from .spaces import SearchSpace, get_space, list_spaces

#: architectures each proxy is tried on: the space's smoke architecture and this many samples
SAMPLES = 3
#: what every context gives every proxy besides the members of the capabilities it declares
CONTEXT_BASICS = ("seed", "device", "label", "cached", "offers")


# -- objects or names ----------------------------------------------------------------------------------
def _space(space) -> SearchSpace:
    return space if isinstance(space, SearchSpace) else get_space(space)


def _proxy(proxy) -> Proxy:
    return proxy if isinstance(proxy, Proxy) else get_proxy(proxy)


def _name(obj) -> str:
    return getattr(obj, "name", obj)


def hooks_left(model, baseline: Optional[Dict[str, int]] = None) -> List[str]:
    """Names of every hook still registered, globally or on the model's modules/parameters;
    given ``baseline`` (:func:`hook_counts` before scoring), only where there are more than
    there were (a model's class may register hooks of its own when it is built: Mamba's
    state-dict pre-hook)."""
    if baseline is not None:
        now = hook_counts(model)
        return [name for name, n in now.items() if n > baseline.get(name, 0)]
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


def hook_counts(model) -> Dict[str, int]:
    """How many hooks each place :func:`hooks_left` looks at holds."""
    out: Dict[str, int] = {}
    mod = torch.nn.modules.module
    for name in dir(mod):
        obj = getattr(mod, name)
        if name.startswith("_global_") and "hook" in name and isinstance(obj, dict) and obj:
            out[name] = len(obj)
    if model is not None:
        for mname, m in model.named_modules():
            for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
                         "_state_dict_hooks", "_load_state_dict_pre_hooks"):
                if getattr(m, attr, None):
                    out[f"{mname or 'model'}.{attr}"] = len(getattr(m, attr))
        for pname, p in model.named_parameters():
            if getattr(p, "_backward_hooks", None):
                out[f"{pname}._backward_hooks"] = len(p._backward_hooks)
    return out


def same(a: float, b: float, device="cpu") -> bool:
    """Bit-identical on the CPU; on CUDA to ``CUDA_REL_TOL`` relative (backward passes accumulate
    with atomic adds whose order varies, and eigen-scores amplify rounding by 1/(l + k))."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if torch.device(device).type == "cpu":
        return a == b
    from .reproducibility import CUDA_REL_TOL

    return math.isclose(a, b, rel_tol=CUDA_REL_TOL, abs_tol=1e-6)


@functools.lru_cache(maxsize=64)
def _architectures_of(space: SearchSpace) -> Tuple[Any, ...]:
    return tuple(space.smoke_architectures(SAMPLES))


def _context(space, arch=None, seed: int = 0, device="cpu"):
    sp = _space(space)
    return sp.context(sp.smoke_architecture() if arch is None else arch, sp.smoke_batch(), seed=seed, device=device)


@functools.lru_cache(maxsize=256)
def _offers_of(space: SearchSpace, index: int) -> frozenset:
    with _context(space, _architectures_of(space)[index]) as ctx:
        return frozenset(ctx.offers)


def _tried(proxy: Proxy, space: SearchSpace, device) -> List[Any]:
    """The smoke architectures of ``space`` whose models the proxy applies to (every one for a
    space whose models all offer the same; each model's own offers otherwise)."""
    archs = list(_architectures_of(space))
    if device != "cpu":
        archs = archs[:2]
    if not space.offers_vary:
        return archs if proxy.applies_to(space.offers) else []
    return [a for i, a in enumerate(archs) if proxy.impl_for(_offers_of(space, i)) is not None]


def _model_of(ctx):
    model = getattr(ctx, "model", None)
    return model() if callable(model) else None


def _fail(proxy, space, what: str):
    raise AssertionError(f"proxy {_name(proxy)!r} on the {_name(space)!r} space: {what}")


def _first(proxy, space, device):
    archs = _tried(_proxy(proxy), _space(space), device)
    if not archs:
        _fail(proxy, space, "applies to none of the space's smoke architectures")
    return archs[0]


# -- proxy checks ------------------------------------------------------------------------------
def check_documented(proxy, space, device="cpu") -> None:
    """Sign, input (docstring), mode, NaN policy and size behaviour are documented."""
    p, sp = _proxy(proxy), _space(space)
    with _context(sp, _first(p, sp, device)) as ctx:
        impl = p.impl(ctx)
    if not isinstance(p.higher_is_better, bool):
        _fail(proxy, space, "higher_is_better must be True or False")
    for field in ("description", "mode", "nan_policy", "size"):
        if not str(getattr(impl, field) or "").strip():
            _fail(proxy, space, f"its {field} is not documented")


def check_finite_or_flagged(proxy, space, device="cpu") -> None:
    """On the first architecture it applies to, the result is finite, or flagged by the proxy
    itself (not rescued by the package's NaN guard); on at least one of the tried architectures
    it is a finite value without a flag (a proxy that always flags scores nothing)."""
    p, sp = _proxy(proxy), _space(space)
    archs = _tried(p, sp, device)
    clean = 0
    for i, arch in enumerate(archs):
        with _context(sp, arch, device=device) as ctx:
            r = compute(p, ctx)
        if i == 0 and not (r.ok or (r.flag and not r.flag.startswith("non-finite value"))):
            _fail(proxy, space, f"non-finite value without a reason of its own: {r}")
        if r.flag is not None and not (isinstance(r.flag, str) and r.flag.strip()):
            _fail(proxy, space, f"an empty flag: {r}")
        clean += int(r.ok and r.flag is None)
        if clean:
            return
    _fail(proxy, space, f"flagged or without a score on every one of {len(archs)} architectures")


def check_leaves_model_unchanged(proxy, space, device="cpu") -> None:
    """The model is the same object with bit-identical weights, on the device asked for, and no
    hook is left behind."""
    p, sp = _proxy(proxy), _space(space)
    ctx = _context(sp, _first(p, sp, device), device=device)
    model = _model_of(ctx)
    if model is not None:
        types = {q.device.type for q in model.parameters()}
        if types and types != {torch.device(device).type}:
            _fail(proxy, space, f"model built on {types}, asked for {device}")
    before = {k: v.detach().clone() for k, v in model.state_dict().items()} if model is not None else None
    hooks_before = hook_counts(model)
    compute(p, ctx)
    if model is not None:
        if _model_of(ctx) is not model:
            _fail(proxy, space, "replaced the context's model")
        after = model.state_dict()
        changed = [k for k in before if k not in after or not torch.equal(before[k], after[k])]
        if changed or before.keys() != after.keys():
            _fail(proxy, space, f"modified weights: {changed[:5]}")
    left = hooks_left(model, hooks_before)
    if left:
        _fail(proxy, space, f"left hooks behind: {left[:5]}")
    ctx.close()


def check_deterministic(proxy, space, device="cpu") -> None:
    """Two fresh contexts with the same seed give the same value and flag."""
    p, sp = _proxy(proxy), _space(space)
    arch = _first(p, sp, device)
    with _context(sp, arch, device=device) as a:
        first = compute(p, a)
    with _context(sp, arch, device=device) as b:
        again = compute(p, b)
    if not same(first.raw, again.raw, device) or first.flag != again.flag:
        _fail(proxy, space, f"not deterministic: {first} then {again}")


def check_weights_cost_runs_no_model(proxy, space, device="cpu") -> None:
    """A proxy declared ``cost="weights"`` reads weights or counts only: it leaves no forward
    or gradient pass in the context's cache."""
    p, sp = _proxy(proxy), _space(space)
    with _context(sp, _first(p, sp, device), device=device) as ctx:
        if p.impl(ctx).cost != "weights":
            return
        compute(p, ctx)
        passes = [k for k in ctx.cache if (k if isinstance(k, str) else k[0]) in
                  ("gradients", "stats", "spectra", "activation_kernel", "incoming", "output")]
    if passes:
        _fail(proxy, space, f"declared cost='weights' but ran passes {passes}")


class UndeclaredMemberError(AttributeError):
    """A proxy read a context member that no capability it declares provides."""


class DeclaredView:
    """A context as a proxy declaring ``needs`` may see it: the members of those capabilities'
    protocols and :data:`CONTEXT_BASICS`; anything else raises :class:`UndeclaredMemberError`
    naming the member."""

    def __init__(self, ctx, needs: Iterable[str]):
        from .capabilities import CAPABILITIES

        allowed = set(CONTEXT_BASICS)
        for cap in needs:
            allowed.update(CAPABILITIES[cap].methods)
        object.__setattr__(self, "_ctx", ctx)
        object.__setattr__(self, "_allowed", frozenset(allowed))
        object.__setattr__(self, "_needs", tuple(sorted(needs)))

    def __getattr__(self, name: str):
        if name in self._allowed:
            return getattr(self._ctx, name)
        raise UndeclaredMemberError(f"reads ctx.{name}, which none of its declared capabilities "
                                    f"({', '.join(self._needs)}) provides")

    def __setattr__(self, name, value):
        raise UndeclaredMemberError(f"sets ctx.{name}: proxies read a context, they do not change it")


def _option_cases(impl) -> List[Tuple[Dict[str, Any], frozenset]]:
    """The options a declared-members check tries: the defaults, and each option value that
    needs capabilities beyond ``needs`` (with those capabilities)."""
    cases = [({}, frozenset(impl.needs))]
    for key, extra in impl.option_needs.items():
        name, _, value = key.partition("=")
        opt = impl.options[name]
        if value:
            given = {"true": True, "false": False}.get(value, value)
            if opt.type is int:
                given = int(value)
        elif opt.choices:
            given = next(c for c in opt.choices if c != opt.default)
        elif opt.bounds is not None and opt.bounds[0] is not None:
            given = opt.bounds[0]
        else:
            given = 1 if opt.type in (int, float) else True
        cases.append(({name: given}, frozenset(impl.needs) | frozenset(extra)))
    return cases


def check_uses_only_declared(proxy, space, device="cpu") -> None:
    """The proxy reads only the members of the capabilities it declares (and of those its
    options declare), on every architecture it applies to: what it needs is what it says."""
    from .proxies.base import context_limits

    p, sp = _proxy(proxy), _space(space)
    for arch in _tried(p, sp, device)[:2]:
        with _context(sp, arch, device=device) as ctx:
            impl = p.impl(ctx)
            for given, needs in _option_cases(impl):
                if not needs <= set(ctx.offers):
                    continue
                opts = impl.check_options(p.name, given, ctx.offers, context_limits(ctx))
                try:
                    impl.fn(DeclaredView(ctx, needs), **opts)
                except UndeclaredMemberError as e:
                    _fail(proxy, space, f"{e}" + (f" (options {given})" if given else ""))
                except Flagged:
                    pass


PROXY_CHECKS: Tuple[Callable[..., None], ...] = (
    check_documented, check_finite_or_flagged, check_leaves_model_unchanged, check_deterministic,
    check_weights_cost_runs_no_model, check_uses_only_declared,
)


def check_shared_context(space, device="cpu", proxies: Optional[Sequence[str]] = None) -> None:
    """Every applicable proxy gives the same value alone and after all the others on one shared
    context (cached passes must not change numbers), in reverse registry order; on each smoke
    architecture of a space whose models differ."""
    sp = _space(space)
    archs = [sp.smoke_architecture()] if not sp.offers_vary else list(_architectures_of(sp))
    for index, arch in enumerate(archs):
        offers = sp.offers if not sp.offers_vary else _offers_of(sp, index)
        names = [n for n in (proxies if proxies is not None else list_proxies(offers)) if get_proxy(n).applies_to(offers)]
        alone = {}
        for n in names:
            with _context(sp, arch, device=device) as ctx:
                alone[n] = compute(get_proxy(n), ctx)
        with _context(sp, arch, device=device) as shared:
            hooks_before = hook_counts(_model_of(shared))
            for n in reversed(names):
                r = compute(get_proxy(n), shared)
                if not same(r.raw, alone[n].raw, device) or r.flag != alone[n].flag:
                    _fail(n, space, f"differs on a shared context: {r} alone {alone[n]}")
            left = hooks_left(_model_of(shared), hooks_before)
        if left:
            raise AssertionError(f"the {_name(space)!r} space's shared context left hooks: {left[:5]}")


def _spaces_of(p: Proxy) -> List[str]:
    return [s for s in list_spaces() if _tried(p, get_space(s), "cpu")]


def check_proxy(proxy, space=None, device="cpu") -> None:
    """Run every proxy check on ``space`` (default: every registered space the proxy applies to)."""
    p = _proxy(proxy)
    spaces = [space] if space is not None else _spaces_of(p)
    if not spaces:
        raise AssertionError(f"proxy {p.name!r} applies to no registered space")
    for s in spaces:
        for check in PROXY_CHECKS:
            check(p, s, device)


# -- space checks --------------------------------------------------------------------------------
def check_space_architectures(space, device="cpu") -> None:
    """``parse(to_dict(a))`` and ``parse`` of its JSON give the same architecture and hash;
    samples are seeded; ``summary`` is one line; the sizes, where counted, are positive."""
    sp = _space(space)
    archs = list(_architectures_of(sp))
    if sp.searchable:
        again = sp.sample(np.random.default_rng(0))
        if sp.arch_hash(again) != sp.arch_hash(archs[1]):
            raise AssertionError(f"space {sp.name!r}: sample(rng) is not reproducible for a seeded rng")
    for a in archs:
        d = sp.to_dict(a)
        b = sp.parse(json.loads(json.dumps(d)))
        if sp.arch_hash(b) != sp.arch_hash(a) or sp.to_dict(b) != d:
            raise AssertionError(f"space {sp.name!r}: to_dict/parse do not round-trip {d}")
        text = sp.summary(a)
        if not isinstance(text, str) or "\n" in text or not text.strip():
            raise AssertionError(f"space {sp.name!r}: summary must be one non-empty line, got {text!r}")
        n = sp.param_count(a)
        if n is not None and not (isinstance(n, int) and n > 0):
            raise AssertionError(f"space {sp.name!r}: param_count must be a positive int or None, got {n!r}")


def check_space_codec(space, device="cpu") -> None:
    """The NNI codec's samples decode to valid architectures; architectures encode and decode
    back to the same hash (searchable spaces)."""
    sp = _space(space)
    if not sp.searchable:
        return
    codec = sp.codec()
    choices = codec.choices()
    rng = np.random.default_rng(1)
    for _ in range(5):
        sample = {label: values[int(rng.integers(len(values)))] for label, values in choices.items()}
        sp.parse(sp.to_dict(codec.decode(sample)))
    for a in _architectures_of(sp):
        if sp.arch_hash(codec.decode(codec.encode(a))) != sp.arch_hash(a):
            raise AssertionError(f"space {sp.name!r}: the NNI codec does not round-trip {sp.to_dict(a)}")


def check_space_naslib_form(space, device="cpu") -> None:
    """The NASLib compact round-trips, is hashable, its moves are valid and new, and the
    encoding has one length (searchable spaces)."""
    sp = _space(space)
    if not sp.searchable:
        return
    form = sp.naslib_form()
    lengths = set()
    for a in _architectures_of(sp):
        c = form.compact(a)
        hash(c)
        if not form.is_compact(c) or sp.arch_hash(form.arch(c)) != sp.arch_hash(a):
            raise AssertionError(f"space {sp.name!r}: the NASLib compact does not round-trip")
        try:
            lengths.add(len(form.encode(c, "adjacency_one_hot")))
        except ImportError:  # the space reuses NASLib's own encoder and NASLib is not installed
            lengths.add(-1)
        if form.moves is not None:
            for m in form.moves(c)[:20]:
                if m == c:
                    raise AssertionError(f"space {sp.name!r}: a NASLib move returns the compact itself")
                form.arch(m)
    if len(lengths) != 1:
        raise AssertionError(f"space {sp.name!r}: NASLib encodings of different lengths {sorted(lengths)}")


def check_space_contexts(space, device="cpu") -> None:
    """Every capability a context offers is implemented (every method of its protocol exists);
    a space whose models all offer the same declares exactly what its contexts offer, one whose
    models differ declares at least what each offers."""
    from .capabilities import CAPABILITIES

    sp = _space(space)
    archs = [sp.smoke_architecture()] if not sp.offers_vary else list(_architectures_of(sp))
    for arch in archs:
        with _context(sp, arch, device=device) as ctx:
            offers = frozenset(ctx.offers)
            if not sp.offers_vary and offers != frozenset(sp.offers):
                raise AssertionError(f"space {sp.name!r}: declares {sorted(sp.offers)}, its context offers "
                                     f"{sorted(offers)}")
            if sp.offers_vary and not offers <= frozenset(sp.offers):
                raise AssertionError(f"space {sp.name!r}: a context offers {sorted(offers - set(sp.offers))}, "
                                     "which the space does not declare")
            for cap in offers:
                lacking = [m for m in CAPABILITIES[cap].methods if not callable(getattr(ctx, m, None))]
                if lacking:
                    raise AssertionError(f"space {sp.name!r}: offers {cap!r} but its context lacks {lacking}")


SPACE_CHECKS: Tuple[Callable[..., None], ...] = (
    check_space_architectures, check_space_codec, check_space_naslib_form, check_space_contexts,
)


def check_space(space, device="cpu", proxies: bool = True) -> None:
    """Every space check, then (``proxies``) every check of every proxy that applies to it."""
    sp = _space(space)
    for check in SPACE_CHECKS:
        check(sp, device)
    if proxies:
        for name in list_proxies(sp.offers):
            if _tried(get_proxy(name), sp, device):
                for check in PROXY_CHECKS:
                    check(name, sp, device)
        check_shared_context(sp, device)


# -- your own model ------------------------------------------------------------------------------
def check_model(model: torch.nn.Module, batch: Any = None, proxies: Optional[Sequence[str]] = None,
                expect_flags: Sequence[str] = ()) -> Dict[str, Any]:
    """Every proxy that applies to ``model`` (or ``proxies``), through
    :func:`nni_zerocost.score_model`: a value without a flag (the proxies named in
    ``expect_flags`` may flag, with a reason), bit-identical twice and in eval mode; every proxy reads
    only what it declares; and the model keeps its weights, its train/eval flags, no ``.grad``
    and no hook.  Returns the scores."""
    from . import score_model
    from .models import model_batch, model_context
    from .proxies.base import context_limits

    label = type(model).__name__
    ctx = model_context(model, model_batch(model, batch))
    names = list(proxies) if proxies is not None else list_proxies(ctx)
    if not names:
        raise AssertionError(f"model {label}: no proxy applies (it offers {sorted(ctx.offers)})")
    model.train()  # scoring must run in eval mode and give this mode back
    modes = [m.training for m in model.modules()]
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    hooks_before = hook_counts(model)
    first = score_model(model, names, batch=batch)
    second = score_model(model, names, batch=batch)
    for name in names:
        r = first[name]
        if name in expect_flags:  # may flag (a documented case), but never a NaN without a reason
            if not (r.ok or r.flag):
                raise AssertionError(f"model {label}: proxy {name!r} gave no value and no reason: {r}")
        elif not r.ok or r.flag:
            raise AssertionError(f"model {label}: proxy {name!r} gave no clean value: {r}")
        if not same(r.raw, second[name].raw) or r.flag != second[name].flag:
            raise AssertionError(f"model {label}: proxy {name!r} is not deterministic: {r.raw} then {second[name].raw}")
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    if changed:
        raise AssertionError(f"model {label}: scoring modified weights {changed[:5]}")
    if hooks_left(model, hooks_before):
        raise AssertionError(f"model {label}: scoring left hooks behind: {hooks_left(model, hooks_before)[:5]}")
    if [m.training for m in model.modules()] != modes:
        raise AssertionError(f"model {label}: scoring changed train/eval flags")
    if any(p.grad is not None for p in model.parameters()):
        raise AssertionError(f"model {label}: scoring wrote .grad")
    model.eval()  # eval mode: the same values (dropout is off while scoring either way)
    third = score_model(model, names, batch=batch)
    if not all(same(first[n].raw, third[n].raw) for n in names):
        raise AssertionError(f"model {label}: scores differ between train and eval mode")
    for name in names:
        impl = get_proxy(name).impl(ctx)
        opts = impl.check_options(name, {}, ctx.offers, context_limits(ctx))
        try:
            impl.fn(DeclaredView(ctx, impl.needs), **opts)
        except UndeclaredMemberError as e:
            raise AssertionError(f"model {label}: proxy {name!r} {e}") from None
        except Flagged:
            pass
    ctx.close()
    return first


# -- execution backends --------------------------------------------------------------------------
def check_backend(backend: Callable[[Any], Any], space: Optional[str] = None, n: int = 6) -> None:
    """An execution backend gives the records of this process: ``backend(checked_job)`` makes
    one (it ``submit(arch_json, specs)``s one architecture and returns a future, has a
    ``capacity`` and ``close()``); the runner with it must give, for ``n`` architectures of
    ``space`` (default: the first built-in space), every record, in input order, with the
    values of an in-process run."""
    from .job import ScoringJob, check_job
    from .runner import run
    from .spaces.base import SPACES

    sp = get_space(space) if space is not None else SPACES.latest_first()[-1]
    space = sp.name
    rng = np.random.default_rng(7)
    archs = [(f"a{i}", sp.to_dict(sp.sample(rng))) for i in range(n)]
    job = check_job(ScoringJob.of(["params", sp.default_proxy or "params"], space, architectures=archs, store=None,
                                  workers=1, **sp.smoke_options()))
    here = list(run(job, progress=False))
    there = list(run(job, progress=False, backend=backend(job)))
    if [r.id for r in there] != [r.id for r in here]:
        raise AssertionError(f"backend {backend!r}: records {[r.id for r in there]}, expected {[r.id for r in here]} "
                             "(dropped or reordered)")
    for a, b in zip(here, there):
        if (a.values, a.status, a.arch_hash) != (b.values, b.status, b.arch_hash):
            raise AssertionError(f"backend {backend!r}: architecture {a.id!r} got {b.values} ({b.status}), this "
                                 f"process {a.values} ({a.status})")


# -- pytest ----------------------------------------------------------------------------------------
def checks(proxies: Optional[Iterable[str]] = None, spaces: Optional[Iterable[str]] = None,
           device="cpu") -> List[Tuple[str, Callable[[], None]]]:
    """``(id, check)`` pairs: every proxy check for each (proxy, space) it applies to, every
    space check, and each space's shared-context check."""
    space_names = list(spaces) if spaces is not None else list_spaces()
    names = list(proxies) if proxies is not None else list_proxies()
    out: List[Tuple[str, Callable[[], None]]] = []
    for s in space_names:
        sp = get_space(s)
        for n in names:
            if get_proxy(n).applies_to(sp.offers) and _tried(get_proxy(n), sp, device):
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


class ProxyChecks:
    """Subclass with ``proxy = "name"`` (a registered proxy or a Proxy object; ``space``: one
    space, default every registered space it applies to): pytest runs each proxy check."""

    proxy: Any = None
    space: Any = None
    device = "cpu"

    def _each(self, check):
        spaces = [self.space] if self.space is not None else _spaces_of(_proxy(self.proxy))
        assert spaces, f"proxy {_name(self.proxy)!r} applies to no registered space"
        for s in spaces:
            check(self.proxy, s, self.device)

    def test_documented(self):
        self._each(check_documented)

    def test_finite_or_flagged(self):
        self._each(check_finite_or_flagged)

    def test_leaves_model_unchanged(self):
        self._each(check_leaves_model_unchanged)

    def test_deterministic(self):
        self._each(check_deterministic)

    def test_weights_cost_runs_no_model(self):
        self._each(check_weights_cost_runs_no_model)

    def test_uses_only_declared(self):
        self._each(check_uses_only_declared)


class SpaceChecks:
    """Subclass with ``space = "name"`` or a SearchSpace object: pytest runs each space check
    (the proxies' checks on it too with ``proxies = True``)."""

    space: Any = None
    device = "cpu"
    proxies = False

    def test_architectures(self):
        check_space_architectures(self.space, self.device)

    def test_codec(self):
        check_space_codec(self.space, self.device)

    def test_naslib_form(self):
        check_space_naslib_form(self.space, self.device)

    def test_contexts(self):
        check_space_contexts(self.space, self.device)

    def test_proxies(self):
        if self.proxies:
            check_space(self.space, self.device, proxies=True)


class ModelChecks:
    """Subclass with ``make_model()`` (a fresh model object), optionally ``batch`` and
    ``expect_flags``: pytest runs :func:`check_model` on it."""

    batch: Any = None
    expect_flags: Sequence[str] = ()

    def make_model(self) -> torch.nn.Module:  # pragma: no cover - to override
        raise NotImplementedError("define make_model() returning your model")

    def test_model(self):
        check_model(self.make_model(), self.batch, expect_flags=self.expect_flags)


class BackendChecks:
    """Subclass with ``make_backend(checked_job)``: pytest runs :func:`check_backend` on it."""

    space: Optional[str] = None  # the first built-in space

    def make_backend(self, checked):  # pragma: no cover - to override
        raise NotImplementedError("define make_backend(checked_job) returning your backend")

    def test_backend(self):
        check_backend(self.make_backend, self.space)
