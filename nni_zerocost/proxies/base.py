"""Proxy registry, options and result type.

A proxy is a plain function ``fn(ctx, **options) -> float`` registered with
:func:`register_proxy`.  ``ctx`` is a :class:`~nni_zerocost.spaces.base.ScoringContext` (its
space's context) for one architecture and one input
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

import dataclasses
import inspect
import math
import re
import time
import typing
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ..errors import ProxyNotApplicableError, ProxyOptionError
from ..registry import Registry
from ..spaces.base import ScoringContext


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


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of a proxy, read from the proxy function's signature.

    ``type`` is the annotation (int, float, str or bool); ``optional`` when it also admits
    None (``Optional[int] = None`` means "off").  ``choices`` (allowed values) and ``bounds``
    (inclusive ``(low, high)``, None = open) come from :func:`register_proxy`.
    """

    name: str
    type: type
    default: Any
    optional: bool = False
    choices: Optional[Tuple[Any, ...]] = None
    bounds: Optional[Tuple[Any, Any]] = None

    def allowed(self) -> str:
        """What values are allowed, in words (for errors and ``list proxies``)."""
        if self.choices is not None:
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
                           bounds: Mapping[str, Tuple[Any, Any]]) -> Dict[str, Option]:
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
                             tuple(choices[p.name]) if p.name in choices else None, bounds.get(p.name))
    unknown = (set(choices) | set(bounds)) - set(out)
    if unknown:
        raise TypeError(f"{fn.__qualname__}: choices/bounds given for unknown option(s) {sorted(unknown)}")
    for opt in out.values():  # the defaults themselves must be allowed
        opt.check(opt.default)
    return out


@dataclasses.dataclass(frozen=True)
class ProxyImpl:
    """How a proxy is computed on one space: function, needs, mode, NaN policy, options."""

    fn: Callable[..., float]
    needs: str  # "forward" | "gradients" | "labels" | "none"
    mode: str  # e.g. "eval (no dropout)"
    nan_policy: str
    description: str
    options: Mapping[str, Option] = dataclasses.field(default_factory=dict)

    @property
    def defaults(self) -> Dict[str, Any]:
        return {name: opt.default for name, opt in self.options.items()}

    @property
    def summary(self) -> str:
        """The first sentence of the description (``list proxies`` prints it)."""
        first = " ".join(self.description.split("\n\n")[0].split())
        return re.split(r"(?<!\bal)(?<!e\.g)\.\s+(?=[A-Z`(])", first)[0].rstrip(".") + "."

    def check_options(self, proxy: str, given: Mapping[str, Any]) -> Dict[str, Any]:
        """Every option, defaults filled in, each value checked; ProxyOptionError otherwise."""
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            raise ProxyOptionError(
                f"proxy {proxy!r} has no option {', '.join(map(repr, unknown))}; its options: "
                + (", ".join(f"{o.name} ({o.allowed()})" for o in self.options.values()) or "none")
            )
        return {name: opt.check(given[name]) if name in given else opt.default for name, opt in self.options.items()}


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

    def __call__(self, ctx: ScoringContext, **options) -> "ProxyResult":
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
    choices: Optional[Mapping[str, Sequence[Any]]] = None,
    bounds: Optional[Mapping[str, Tuple[Any, Any]]] = None,
):
    """Decorator registering ``fn(ctx, **options) -> float`` as the proxy ``name`` on ``spaces``.

    The one way to add a proxy.  Its options are ``fn``'s keyword parameters after ``ctx``:
    name, annotated type (int, float, str, bool, or Optional of one) and default, so
    ``def f(ctx, layer: int = 1)`` has the option ``layer``; ``choices`` / ``bounds`` name the
    allowed values of an option.  The docstring of ``fn`` becomes the description.  A name may
    be registered again for *other* spaces (same sign), adding a per-space implementation.
    """
    if needs not in NEEDS:
        raise ValueError(f"needs must be one of {NEEDS}, got {needs!r}")

    def deco(fn):
        options = options_from_signature(fn, dict(choices or {}), dict(bounds or {}))
        impl = ProxyImpl(fn, needs, mode, nan_policy, inspect.cleandoc(fn.__doc__ or ""), options)
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


def compute(proxy: Proxy, ctx: ScoringContext, **options) -> ProxyResult:
    """Run one proxy on a context, applying its defaults and the package-wide NaN policy."""
    impl = proxy.impl(ctx.space)
    opts = impl.check_options(proxy.name, options)
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
    pay for a forward pass of their own.  Values do not depend on the order (conformance
    test)."""
    order = sorted(range(len(parsed)), key=lambda i: get_proxy(parsed[i][1]).impl(ctx.space).needs != "gradients")
    done = {parsed[i][0]: compute(get_proxy(parsed[i][1]), ctx, **parsed[i][2]) for i in order}
    return {key: done[key] for key, _, _ in parsed}


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
