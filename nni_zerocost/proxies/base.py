"""Proxy registry, result type and the shared scoring context.

A proxy is a plain function ``fn(ctx, **options) -> float`` registered with
:func:`register_proxy`.  ``ctx`` is a :class:`ScoringContext` for one architecture and one input
batch; it builds the model lazily and caches the forward/backward passes that several proxies
share, so asking for many proxies of one model costs one pass where possible.

Sign convention: every proxy declares ``higher_is_better``.  :attr:`ProxyResult.score` is the
*normalised* value (``raw`` negated when lower is better) so that downstream code (rankings,
NNI metrics, NASLib predictions) can always maximise.

NaN policy: a proxy returns a finite float, or raises :class:`Flagged` with a reason.  A
non-finite return value is turned into a flagged result by :func:`compute`; NaN never leaves
the package unflagged.
"""
from __future__ import annotations

import abc
import dataclasses
import math
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ..errors import ProxyNotApplicableError, ProxyOptionError
from ..registry import Registry


class Flagged(Exception):
    """Raised by a proxy that cannot give a trustworthy value; ``value`` may still be finite.

    A finite ``value`` is a documented fallback (e.g. constant hidden units counted as zero
    eigenvalues) and stays usable in rankings; ``value=nan`` means "no score".
    """

    def __init__(self, reason: str, value: float = math.nan):
        super().__init__(reason)
        self.reason = reason
        self.value = float(value)


@dataclasses.dataclass(frozen=True)
class ProxyResult:
    """One proxy value for one architecture."""

    name: str
    raw: float
    higher_is_better: bool
    flag: Optional[str] = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the value is finite (flagged fallbacks included)."""
        return math.isfinite(self.raw)

    @property
    def score(self) -> float:
        """Normalised value: higher is better.  NaN only when :attr:`ok` is False."""
        return self.raw if self.higher_is_better else -self.raw


@dataclasses.dataclass(frozen=True)
class ProxyImpl:
    """How a proxy is computed on one space: function, needs, mode, NaN policy, options."""

    fn: Callable[..., float]
    needs: str  # "forward" | "gradients" | "labels" | "none"
    mode: str  # e.g. "eval (no dropout)"
    nan_policy: str
    description: str
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Proxy:
    """One registered proxy name: its sign and one implementation per search space.

    A name such as ``activation_distance`` means the same idea on every space it applies to,
    so it is one proxy with per-space implementations (the BERT and RNN passes differ); the
    sign must agree across spaces.  ``needs``/``mode``/``nan_policy``/``description``/
    ``defaults`` describe the first implementation; use :meth:`impl` for a given space.
    """

    name: str
    higher_is_better: bool
    impls: Mapping[str, ProxyImpl]

    @property
    def spaces(self) -> Tuple[str, ...]:
        return tuple(self.impls)

    def applies_to(self, space: str) -> bool:
        return space in self.impls

    def impl(self, space: str) -> ProxyImpl:
        try:
            return self.impls[space]
        except KeyError:
            raise ProxyNotApplicableError(
                f"proxy {self.name!r} does not apply to the {space!r} space "
                f"(it applies to: {', '.join(self.spaces)})"
            ) from None

    def _first(self) -> ProxyImpl:
        return next(iter(self.impls.values()))

    needs = property(lambda self: self._first().needs)
    mode = property(lambda self: self._first().mode)
    nan_policy = property(lambda self: self._first().nan_policy)
    description = property(lambda self: self._first().description)
    defaults = property(lambda self: self._first().defaults)
    fn = property(lambda self: self._first().fn)

    def __call__(self, ctx: "ScoringContext", **options) -> "ProxyResult":
        return compute(self, ctx, **options)


NEEDS = ("forward", "gradients", "labels", "none")
PROXIES: Registry[Proxy] = Registry("proxy")


def register_proxy(
    name: str,
    *,
    spaces: Sequence[str],
    higher_is_better: bool,
    needs: str,
    mode: str,
    nan_policy: str,
    **defaults,
):
    """Decorator registering ``fn(ctx, **options) -> float`` as the proxy ``name`` on ``spaces``.

    The docstring of ``fn`` becomes the description; ``defaults`` are its options.  A name may
    be registered again for *other* spaces (same sign), adding a per-space implementation.
    """
    if needs not in NEEDS:
        raise ValueError(f"needs must be one of {NEEDS}, got {needs!r}")

    def deco(fn):
        impl = ProxyImpl(fn, needs, mode, nan_policy, (fn.__doc__ or "").strip(), dict(defaults))
        if name in PROXIES:
            old = PROXIES.get(name)
            clash = set(old.impls) & set(spaces)
            if clash:
                raise ValueError(f"proxy {name!r} is already registered for {sorted(clash)}")
            if old.higher_is_better != higher_is_better:
                raise ValueError(f"proxy {name!r}: the sign must agree across spaces")
            PROXIES._items[name] = Proxy(name, higher_is_better, {**old.impls, **{s: impl for s in spaces}})
        else:
            PROXIES.add(name, Proxy(name, higher_is_better, {s: impl for s in spaces}))
        return fn

    return deco


def get_proxy(name: str) -> Proxy:
    _load_builtin_proxies()
    return PROXIES.get(name)


def list_proxies(space: Optional[str] = None) -> List[str]:
    """Registered proxy names, optionally only those applicable to ``space``."""
    _load_builtin_proxies()
    return [n for n in PROXIES.names() if space is None or PROXIES.get(n).applies_to(space)]


def _load_builtin_proxies() -> None:
    from . import _builtin  # noqa: F401  (import registers the built-in proxies)


class ScoringContext(abc.ABC):
    """One architecture + one batch + one seed; caches shared passes.

    Subclasses (one per space) expose the model and the passes their proxies need.  ``cache``
    holds derived tensors keyed by what produced them; :meth:`close` drops everything so no
    tensor, graph or hook outlives a scoring call.
    """

    space: str = ""

    def __init__(self, arch, batch, *, seed: int = 0):
        self.arch = arch
        self.batch = batch
        self.seed = int(seed)
        self.cache: Dict[Any, Any] = {}

    def cached(self, key, compute: Callable[[], Any]):
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    def close(self) -> None:
        self.cache.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def compute(proxy: Proxy, ctx: ScoringContext, **options) -> ProxyResult:
    """Run one proxy on a context, applying its defaults and the package-wide NaN policy."""
    impl = proxy.impl(ctx.space)
    unknown = set(options) - set(impl.defaults)
    if unknown:
        raise ProxyOptionError(
            f"proxy {proxy.name!r} got unknown option(s) {sorted(unknown)} on the {ctx.space!r} space; "
            f"valid options: {sorted(impl.defaults) or 'none'}"
        )
    opts = {**impl.defaults, **options}
    start = time.perf_counter()
    flag = None
    try:
        raw = float(impl.fn(ctx, **opts))
    except Flagged as f:
        raw, flag = f.value, f.reason
    if not math.isfinite(raw):
        flag = flag or f"non-finite value ({raw})"
        raw = math.nan
    return ProxyResult(proxy.name, raw, proxy.higher_is_better, flag, time.perf_counter() - start)


def compute_many(ctx: ScoringContext, parsed: Sequence[Tuple[str, str, Mapping[str, Any]]]) -> Dict[str, ProxyResult]:
    """Compute ``(key, proxy name, options)`` triples on one context; ``{key: result}`` in input
    order.  Gradient proxies run first: a backward pass records its forward statistics too
    (BERT), so forward-only proxies asked after it cost nothing, while asked before it they
    pay for a forward pass of their own (measured on the BERT benchmark: 0.9 of 3.6 s per
    architecture).  Values do not depend on the order (conformance test)."""
    order = sorted(range(len(parsed)), key=lambda i: get_proxy(parsed[i][1]).impl(ctx.space).needs != "gradients")
    done = {parsed[i][0]: compute(get_proxy(parsed[i][1]), ctx, **parsed[i][2]) for i in order}
    return {key: done[key] for key, _, _ in parsed}


def score_all(
    ctx: ScoringContext, proxies: Iterable[str], options: Optional[Mapping[str, Mapping]] = None
) -> Dict[str, ProxyResult]:
    """Compute several proxies on one context (passes are shared through ``ctx.cache``)."""
    options = options or {}
    return compute_many(ctx, [(name, name, options.get(name, {})) for name in proxies])


def parse_proxy_spec(spec: str) -> Tuple[str, Dict[str, Any]]:
    """``"name"`` or ``"name:key=value,key=value"`` -> (name, options); values parsed as JSON
    scalars when possible (``layer=2`` -> int)."""
    import json

    name, _, rest = spec.partition(":")
    opts: Dict[str, Any] = {}
    if rest:
        for part in rest.split(","):
            key, eq, val = part.partition("=")
            if not eq or not key:
                raise ProxyOptionError(f"bad proxy option {part!r} in {spec!r}; expected key=value")
            try:
                opts[key.strip()] = json.loads(val)
            except json.JSONDecodeError:
                opts[key.strip()] = val
    return name.strip(), opts
