"""Proxy registry, options and result type.

A proxy is a plain function ``fn(ctx, **options) -> float`` registered with
:func:`register_proxy` together with the capabilities it needs
(:mod:`nni_zerocost.capabilities`).  ``ctx`` is a
:class:`~nni_zerocost.spaces.base.ScoringContext` for one model and one input batch, offering
capabilities; it builds the model lazily and caches the forward/backward passes that several
proxies share, so asking for many proxies of one model costs one pass where possible.

Sign convention: every proxy declares ``higher_is_better``.  :attr:`ProxyResult.score` is the
*normalised* value (``raw`` negated when lower is better) so that downstream code (rankings,
NNI metrics, NASLib predictions) can always maximise.

NaN policy: a proxy returns a finite float, or raises :class:`Flagged` with a reason.  A
non-finite return value is turned into a flagged result by :func:`compute`; NaN never leaves
the package unflagged.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import re
import time
import typing
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Tuple

from ..capabilities import check_names, missing
from ..errors import ProxyNotApplicableError, ProxyOptionError
from .. import builtin
from ..registry import Registry
from ..spaces.base import ScoringContext


#: the one value that stands for "no score" where a host framework needs a finite number (NNI's
#: ``default`` metric, NASLib predictions, exported zero-cost tables): below any real proxy value,
#: so every search ranks such an architecture last.  Inside the package a missing score is NaN
#: with a flag (:class:`ProxyResult`), never this number.
NO_SCORE = -1e100


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

    @property
    def finite_score(self) -> float:
        """:attr:`score`, or :data:`NO_SCORE` when there is none (for hosts that need a number)."""
        return self.score if self.ok else NO_SCORE


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of a proxy, read from the proxy function's signature.

    ``type`` is the annotation (int, float, str or bool); ``optional`` when it also admits
    None (``Optional[int] = None`` means "off").  ``choices`` (allowed values) and ``bounds``
    (inclusive ``(low, high)``, None = open) come from :func:`register_proxy`; ``limit`` names
    a model property bounding an integer option from above (``"recurrent_layers"``: a layer
    index), known from a space before any work or from a context.
    """

    name: str
    type: type
    default: Any
    optional: bool = False
    choices: Optional[Tuple[Any, ...]] = None
    bounds: Optional[Tuple[Any, Any]] = None
    limit: Optional[str] = None

    def bounded(self, limits: Optional[Mapping[str, int]]) -> "Option":
        """This option with its ``limit`` resolved from ``limits`` (small ranges become choices)."""
        if self.limit is None or not limits or self.limit not in limits:
            return self
        low = (self.bounds or (1, None))[0]
        high = int(limits[self.limit])
        if high - low < 10:
            return dataclasses.replace(self, choices=tuple(range(low, high + 1)), bounds=None, limit=None)
        return dataclasses.replace(self, bounds=(low, high), limit=None)

    def allowed(self) -> str:
        """What values are allowed, in words (for errors and ``list proxies``)."""
        if self.limit is not None and self.choices is None:
            low = (self.bounds or (1, None))[0]
            text = f"{_TYPE_NAMES[self.type]} in {low}..(the model's {self.limit.replace('_', ' ')})"
        elif self.choices is not None:
            text = "one of " + ", ".join(_show(c) for c in self.choices)
        elif self.bounds is not None:
            lo, hi = self.bounds
            rng = f"in {lo}..{hi}" if lo is not None and hi is not None else f">= {lo}" if lo is not None else f"<= {hi}"
            text = f"{_TYPE_NAMES[self.type]} {rng}"
        else:
            text = _TYPE_NAMES[self.type]
        return text + (" or null (off)" if self.optional else "")

    def check(self, value: Any) -> Any:
        """``value`` converted to the option's type, or OptionValueError saying what is allowed."""
        if value is None:
            if self.optional:
                return None
            raise OptionValueError(self, value)
        if self.type is bool:
            ok = isinstance(value, bool)
        elif self.type is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.type is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        else:  # str: numbers given in a spec ("kernel=5") are compared as their text
            ok = isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool))
            value = str(value) if ok else value
        if not ok:
            raise OptionValueError(self, value)
        if self.choices is not None and value not in self.choices:
            raise OptionValueError(self, value)
        if self.bounds is not None:
            lo, hi = self.bounds
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                raise OptionValueError(self, value)
        return value


class OptionValueError(ProxyOptionError):
    """An option value of the wrong type or outside the allowed values."""

    def __init__(self, option: Option, value: Any):
        self.option, self.value = option, value
        super().__init__(f"option {option.name!r} must be {option.allowed()}, got {_show(value)}")


def _show(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    return repr(v) if isinstance(v, str) else str(v)


def options_from_signature(fn: Callable, choices: Mapping[str, Sequence[Any]],
                           bounds: Mapping[str, Tuple[Any, Any]], limits: Mapping[str, str] = {}) -> Dict[str, Option]:
    """``{name: Option}`` for every keyword parameter of ``fn`` after the context."""
    hints = typing.get_type_hints(fn)
    params = list(inspect.signature(fn).parameters.values())[1:]
    out: Dict[str, Option] = {}
    for p in params:
        if p.default is inspect.Parameter.empty:
            raise TypeError(f"{fn.__qualname__}: option {p.name!r} needs a default value")
        tp, optional = hints.get(p.name), False
        if typing.get_origin(tp) is typing.Union:
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            optional = len(args) < len(typing.get_args(tp))
            tp = args[0] if len(args) == 1 else None
        if tp not in _TYPE_NAMES:
            raise TypeError(f"{fn.__qualname__}: annotate option {p.name!r} as int, float, str or bool "
                            f"(or Optional[...] of one), got {hints.get(p.name)!r}")
        out[p.name] = Option(p.name, tp, p.default, optional,
                             tuple(choices[p.name]) if p.name in choices else None, bounds.get(p.name),
                             limits.get(p.name))
    unknown = (set(choices) | set(bounds) | set(limits)) - set(out)
    if unknown:
        raise TypeError(f"{fn.__qualname__}: choices/bounds/limits given for unknown option(s) {sorted(unknown)}")
    for opt in out.values():  # the defaults themselves must be allowed
        opt.check(opt.default)
    return out


@dataclasses.dataclass(frozen=True)
class ProxyImpl:
    """How a proxy is computed on contexts offering ``needs``: function, cost, mode, NaN
    policy, size behaviour, options (and the capabilities some option values need)."""

    fn: Callable[..., float]
    needs: FrozenSet[str]  # capabilities (nni_zerocost.capabilities) the context must offer
    cost: str  # "weights" | "forward" | "gradients": what the proxy runs (gradient passes go first)
    mode: str  # e.g. "eval (no dropout)"
    nan_policy: str
    description: str
    options: Mapping[str, Option] = dataclasses.field(default_factory=dict)
    size: str = ""  # how the value behaves with model size (documentation)
    scales_with_size: bool = False  # True: it ranks bigger models higher by construction
    option_needs: Mapping[str, FrozenSet[str]] = dataclasses.field(default_factory=dict)

    @property
    def defaults(self) -> Dict[str, Any]:
        return {name: opt.default for name, opt in self.options.items()}

    @property
    def summary(self) -> str:
        """The first sentence of the description (``list proxies`` prints it)."""
        first = " ".join(self.description.split("\n\n")[0].split())
        return re.split(r"(?<!\bal)(?<!e\.g)\.\s+(?=[A-Z`(])", first)[0].rstrip(".") + "."

    def applies_to(self, offers: Iterable[str]) -> bool:
        return self.needs <= set(offers)

    def check_options(self, proxy: str, given: Mapping[str, Any], offers: Optional[Iterable[str]] = None,
                      limits: Optional[Mapping[str, int]] = None) -> Dict[str, Any]:
        """Every option, defaults filled in, each value checked; ProxyOptionError otherwise.

        With ``offers`` (the context's capabilities), an option value that needs a capability
        the context lacks (``option_needs``) is refused too; ``limits`` (a space's or a
        context's :meth:`limits`) bound the options that declare a ``limit``."""
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            raise ProxyOptionError(
                f"proxy {proxy!r} has no option {', '.join(map(repr, unknown))}; its options: "
                + (", ".join(f"{o.name} ({o.allowed()})" for o in self.options.values()) or "none")
            )
        out = {name: opt.bounded(limits).check(given[name]) if name in given else opt.default
               for name, opt in self.options.items()}
        if offers is not None:
            have = set(offers)
            for key, needs in self.option_needs.items():
                name, _, value = key.partition("=")
                v = out.get(name)
                plain = str(v).lower() if isinstance(v, bool) else str(v)
                hit = (v is not None and v != self.options[name].default) if not value else plain == value
                lack = sorted(needs - have)
                if hit and lack:
                    shown = f"{name}={_show(v)}"
                    raise ProxyOptionError(f"option {shown} needs {', '.join(lack)}, which this model does not offer")
        return out


@dataclasses.dataclass(frozen=True)
class Proxy:
    """One registered proxy name: its sign and its implementations, each for the contexts that
    offer the capabilities it needs (tried in registration order).

    A name such as ``activation_distance`` means the same idea on every model it applies to, so
    it is one proxy with an implementation per kind of model (the passes of a recurrent cell and
    of a transformer differ); the sign agrees across them.  ``needs``/``mode``/``nan_policy``/
    ``description``/``defaults`` describe the first implementation; use :meth:`impl` for a
    given context.
    """

    name: str
    higher_is_better: bool
    impls: Tuple[ProxyImpl, ...]

    def impl_for(self, offers: Iterable[str]) -> Optional[ProxyImpl]:
        """The first implementation whose needs ``offers`` covers, or None."""
        have = set(offers)
        return next((i for i in self.impls if i.needs <= have), None)

    def applies_to(self, target) -> bool:
        """True for a space name, a context or a set of capabilities it has an implementation for."""
        return self.impl_for(offers_of(target)) is not None

    def impl(self, target) -> ProxyImpl:
        """The implementation for a space name, a context or a set of capabilities;
        ProxyNotApplicableError naming what is missing otherwise."""
        offers = offers_of(target)
        found = self.impl_for(offers)
        if found is None:
            raise ProxyNotApplicableError(f"proxy {self.name!r} needs {self.missing_text(offers)}")
        return found

    def missing_text(self, offers: Iterable[str]) -> str:
        """What the closest implementation needs and ``offers`` lacks, in words."""
        lacks = [missing(i.needs, offers) for i in self.impls]
        return " or ".join(", ".join(m) for m in sorted(lacks, key=len)[:2]) + ", which the model does not offer"

    @property
    def spaces(self) -> Tuple[str, ...]:
        """Registered search spaces it applies to (derived from their capabilities)."""
        from ..spaces import get_space, list_spaces

        return tuple(s for s in list_spaces() if self.impl_for(get_space(s).offers) is not None)

    def _first(self) -> ProxyImpl:
        return self.impls[0]

    needs = property(lambda self: self._first().needs)
    cost = property(lambda self: self._first().cost)
    mode = property(lambda self: self._first().mode)
    nan_policy = property(lambda self: self._first().nan_policy)
    description = property(lambda self: self._first().description)
    defaults = property(lambda self: self._first().defaults)
    fn = property(lambda self: self._first().fn)

    def __call__(self, ctx: ScoringContext, **options) -> "ProxyResult":
        return compute(self, ctx, **options)


def offers_of(target) -> FrozenSet[str]:
    """Capabilities of a space name, a space, a context, or an iterable of capability names."""
    if isinstance(target, str):
        from ..spaces import get_space

        return frozenset(get_space(target).offers)
    offers = getattr(target, "offers", None)
    if offers is not None:
        return frozenset(offers)
    return frozenset(target)


def context_limits(ctx) -> Dict[str, int]:
    """The values a context gives the options' ``limit`` names (cached on the context)."""
    if "option_limits" not in ctx.cache:
        out = {}
        if "recurrent_states" in ctx.offers:
            out["recurrent_layers"] = int(ctx.recurrent_layers())
        ctx.cache["option_limits"] = out
    return ctx.cache["option_limits"]


COSTS = ("weights", "forward", "gradients")
PROXIES: Registry[Proxy] = Registry("proxy", builtin.PROXIES)


def register_proxy(
    name: str,
    *,
    needs: Sequence[str],
    higher_is_better: bool,
    cost: str,
    mode: str,
    nan_policy: str,
    size: str = "",
    scales_with_size: bool = False,
    choices: Optional[Mapping[str, Sequence[Any]]] = None,
    bounds: Optional[Mapping[str, Tuple[Any, Any]]] = None,
    option_needs: Optional[Mapping[str, Sequence[str]]] = None,
    limits: Optional[Mapping[str, str]] = None,
):
    """Decorator registering ``fn(ctx, **options) -> float`` as the proxy ``name``.

    The one way to add a proxy.  ``needs``: the capabilities (:mod:`nni_zerocost.capabilities`)
    a context must offer; the proxy applies to every space and model that offers them.
    ``cost``: ``"weights"`` (reads weights or counts only), ``"forward"`` or ``"gradients"``.
    ``size``: how the value behaves with model size, and ``scales_with_size=True`` when it ranks
    bigger models higher by construction (searches that vary width or depth warn).

    Its options are ``fn``'s keyword parameters after ``ctx``: name, annotated type (int, float,
    str, bool, or Optional of one) and default, so ``def f(ctx, layer: int = 1)`` has the option
    ``layer``; ``choices`` / ``bounds`` name the allowed values of an option, and
    ``option_needs`` the capabilities an option (``"max_degree"``: any non-default value) or one
    value of it (``"axis=paper"``) needs beyond ``needs``; ``limits`` bounds an integer option by
    a model property (``{"layer": "recurrent_layers"}``).  The docstring of ``fn`` becomes the
    description.  A name may be registered again for other capabilities (same sign), adding an
    implementation for another kind of model.
    """
    if cost not in COSTS:
        raise ValueError(f"cost must be one of {COSTS}, got {cost!r}")
    needed = check_names(needs)
    if not needed:
        raise ValueError(f"proxy {name!r}: needs must name at least one capability")
    extra = {k: check_names(v) for k, v in dict(option_needs or {}).items()}

    def deco(fn):
        options = options_from_signature(fn, dict(choices or {}), dict(bounds or {}), dict(limits or {}))
        for key in extra:
            if key.partition("=")[0] not in options:
                raise TypeError(f"{fn.__qualname__}: option_needs names unknown option {key!r}")
        impl = ProxyImpl(fn, needed, cost, mode, nan_policy, inspect.cleandoc(fn.__doc__ or ""), options,
                         size, scales_with_size, extra)
        if name in PROXIES:
            old = PROXIES.get(name)
            if any(i.needs == needed for i in old.impls):
                raise ValueError(f"proxy {name!r} is already registered for contexts offering {sorted(needed)}")
            if old.higher_is_better != higher_is_better:
                raise ValueError(f"proxy {name!r}: the sign must agree across implementations")
            PROXIES.replace(name, Proxy(name, higher_is_better, old.impls + (impl,)))
        else:
            PROXIES.add(name, Proxy(name, higher_is_better, (impl,)))
        return fn

    return deco


def get_proxy(name: str) -> Proxy:
    return PROXIES.get(name)


def list_proxies(space: Optional[str] = None) -> List[str]:
    """Registered proxy names, optionally only those applicable to ``space`` (a space name, a
    context or a set of capabilities)."""
    if space is None:
        return PROXIES.names()
    offers = offers_of(space)
    return [n for n in PROXIES.names() if PROXIES.get(n).impl_for(offers) is not None]


def compute(proxy: Proxy, ctx: ScoringContext, **options) -> ProxyResult:
    """Run one proxy on a context, applying its defaults and the package-wide NaN policy."""
    impl = proxy.impl(ctx)
    opts = impl.check_options(proxy.name, options, ctx.offers, context_limits(ctx))
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


def compute_many(ctx: ScoringContext, parsed: Sequence[Tuple[str, str, Mapping[str, Any]]],
                 progress=None) -> Dict[str, ProxyResult]:
    """Compute ``(key, proxy name, options)`` triples on one context; ``{key: result}`` in input
    order.  Gradient proxies run first: a backward pass records its forward statistics too
    (BERT), so forward-only proxies asked after it cost nothing, while asked before it they
    pay for a forward pass of their own.  Values do not depend on the order (conformance
    test).  ``progress``: a bar whose ``update(1)`` is called after each proxy."""
    order = sorted(range(len(parsed)), key=lambda i: get_proxy(parsed[i][1]).impl(ctx).cost != "gradients")
    done = {}
    for i in order:
        done[parsed[i][0]] = compute(get_proxy(parsed[i][1]), ctx, **parsed[i][2])
        if progress is not None:
            progress.update(1)
    return {key: done[key] for key, _, _ in parsed}


def parse_proxy_spec(spec: str) -> Tuple[str, Dict[str, Any]]:
    """``"name"`` or ``"name:key=value,key=value"`` -> (name, options); values parsed as JSON
    scalars when possible (``layer=2`` -> int)."""
    import json

    name, colon, rest = spec.partition(":")
    if colon and not rest.strip():  # else 'name:' would score under a column of its own
        raise ProxyOptionError(f"nothing after ':'; write {name.strip()!r} alone or {name.strip() + ':key=value'!r}")
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
