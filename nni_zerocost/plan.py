"""The one checked door into scoring: ``(space, proxy specs, options) -> ScoringPlan``.

Every front end (the CLI, the NNI evaluator, strategies, tuner and trial, the NASLib predictor
and driver, :func:`nni_zerocost.score`) turns its input into a plan here and does nothing else
with it.  :func:`make_plan` checks everything a request can get wrong -- the space, each
proxy's name, whether it applies to the space, each option's name, type and allowed values,
the context options, the seed and the data source -- and raises one
:class:`~nni_zerocost.errors.BadInputError` naming the field and what is allowed.  It does so
before any model is built, so bad input never costs work.

A plan then answers everything downstream needs: the input batch, the store key of a result,
the scoring context of an architecture, and the scores themselves (``plan.score(arch)``).
"""
from __future__ import annotations

import dataclasses
import functools
import numbers
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import torch

from .devices import resolve_device
from .errors import BadInputError, DataError, ProxyOptionError, UnknownNameError
from .proxies.base import ProxyResult, compute_many, get_proxy, list_proxies, parse_proxy_spec
from .spaces import get_space, list_spaces
from .store import make_key


@dataclasses.dataclass(frozen=True)
class ProxyRequest:
    """One checked proxy spec: ``spec`` as written (the key of its results), the proxy's name and
    every option with its defaults filled in."""

    spec: str
    name: str
    options: Mapping[str, Any]
    higher_is_better: bool


@dataclasses.dataclass(frozen=True)
class ScoringPlan:
    """A checked scoring request; build with :func:`make_plan`.

    ``context_options`` holds only the options given with a non-default value, so results
    stored before an option existed keep their keys.  ``device`` is the resolved
    ``torch.device`` models and batches are built on (weights are drawn on the CPU and moved).
    """

    space: str
    requests: Tuple[ProxyRequest, ...]
    seed: int
    batch: Any
    context_options: Mapping[str, Any]
    device: torch.device = torch.device("cpu")

    @property
    def specs(self) -> Tuple[str, ...]:
        return tuple(r.spec for r in self.requests)

    @functools.cached_property
    def data_fingerprint(self) -> str:
        return self.batch.fingerprint

    def request(self, spec: str) -> ProxyRequest:
        return next(r for r in self.requests if r.spec == spec)

    def arch_key(self, arch) -> str:
        """What identifies ``arch``'s scores under this plan (canonical or exact hash)."""
        return get_space(self.space).arch_key(arch, **self.context_options)

    @property
    def device_name(self) -> str:
        """What every record says computed it: ``"cpu"`` or ``"cuda:0"``."""
        return str(self.device)

    @property
    def key_context(self) -> Dict[str, Any]:
        """The context part of store keys: the context options, plus the device *type* when it
        is not the CPU (devices differ in float rounding; CPU keys stay those stored before
        devices existed, and all CUDA devices of one kind share results)."""
        out = dict(self.context_options)
        if self.device.type != "cpu":
            out["device"] = self.device.type
        return out

    def key(self, arch_key: str, request: ProxyRequest) -> str:
        """Store key of one result (``arch_key`` from :meth:`arch_key`)."""
        return make_key(self.space, arch_key, request.name, request.options, self.data_fingerprint, self.seed,
                        self.key_context)

    def context(self, arch):
        return get_space(self.space).context(arch, self.batch, seed=self.seed, device=self.device,
                                             **self.context_options)

    def score(self, arch, requests: Optional[Sequence[ProxyRequest]] = None) -> Dict[str, ProxyResult]:
        """``{spec: ProxyResult}`` of one architecture, in plan order, on one shared context
        (:func:`~nni_zerocost.proxies.base.compute_many` orders the passes)."""
        todo = self.requests if requests is None else requests
        with self.context(arch) as ctx:
            return compute_many(ctx, [(r.spec, r.name, r.options) for r in todo])


def make_plan(
    space: str,
    proxies: Union[str, Sequence[str]],
    *,
    seed: int = 0,
    corpus: Optional[str] = None,
    batch: Any = None,
    batch_size: Optional[int] = None,
    seq_len: Optional[int] = None,
    device: Any = "auto",
    **context_options: Any,
) -> ScoringPlan:
    """Check a scoring request and return its plan; :class:`BadInputError` otherwise.

    ``proxies``: a spec (``"hidden_covariance:layer=2"``) or a list of them; duplicates are
    scored once.  ``corpus`` / ``batch_size`` / ``seq_len`` choose the input batch through the
    space (:meth:`SearchSpace.batch`); ``batch`` passes a ready one instead.
    ``device``: ``"auto"`` (default: CUDA when available, else the CPU), ``"cpu"``, ``"cuda"``
    or ``"cuda:N"``; CUDA asked for where there is none is refused.
    ``context_options``: the space's own (``init`` for rnn, ``as_trained``/``loss`` for bert).
    """
    try:
        sp = get_space(space)
    except UnknownNameError:
        raise BadInputError("space", f"unknown space; valid spaces: {', '.join(list_spaces())}", repr(space)) from None
    if isinstance(proxies, str):
        proxies = [proxies]
    specs = list(dict.fromkeys(proxies or ()))
    if not specs:
        raise BadInputError("proxy", f"no proxy given; proxies for the {space!r} space: {', '.join(list_proxies(space))}")
    requests = tuple(_request(space, spec) for spec in specs)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise BadInputError("seed", f"must be an integer >= 0, got {seed!r}")
    ctx_opts = _context_options(space, sp.context_options(), context_options)
    dev = resolve_device(device)
    if batch is None:
        batch = _batch(space, sp, corpus, batch_size, seq_len)
    elif corpus is not None or batch_size is not None or seq_len is not None:
        raise BadInputError("batch", "give either a ready batch or corpus/batch_size/seq_len, not both")
    return ScoringPlan(space, requests, int(seed), batch, ctx_opts, dev)


def _request(space: str, spec: Any) -> ProxyRequest:
    if not isinstance(spec, str) or not spec.strip():
        raise BadInputError("proxy", "a proxy spec is a non-empty string such as 'hidden_covariance:layer=2'",
                            repr(spec))
    try:
        name, given = parse_proxy_spec(spec)
    except ProxyOptionError as e:
        raise BadInputError("proxy", str(e), repr(spec)) from None
    valid = list_proxies(space)
    if name not in list_proxies():
        raise BadInputError("proxy", f"unknown proxy {name!r}; proxies for the {space!r} space: {', '.join(valid)}",
                            repr(spec))
    proxy = get_proxy(name)
    if not proxy.applies_to(space):
        raise BadInputError("proxy", f"{name!r} does not apply to the {space!r} space (it applies to "
                            f"{', '.join(proxy.spaces)}); proxies for {space!r}: {', '.join(valid)}", repr(spec))
    try:
        options = proxy.impl(space).check_options(name, given)
    except ProxyOptionError as e:
        raise BadInputError("proxy", str(e), repr(spec)) from None
    return ProxyRequest(spec, name, options, proxy.higher_is_better)


def _context_options(space: str, allowed: Mapping[str, Any], given: Mapping[str, Any]) -> Dict[str, Any]:
    out = {}
    for name, value in given.items():
        if value is None:
            continue
        if name not in allowed:
            takes = ", ".join(allowed) or "none"
            raise BadInputError(name, f"the {space!r} space takes no such option (its options: {takes})")
        values = allowed[name]
        if isinstance(values, type):
            ok = isinstance(value, values) and not isinstance(value, bool) and value > 0
            if not ok:
                raise BadInputError(name, f"must be a positive {values.__name__}, got {value!r}")
        elif value not in values or type(value) is not type(values[0]):
            raise BadInputError(name, f"must be one of {', '.join(map(repr, values))}, got {value!r}")
        if isinstance(values, type) or value != values[0]:  # defaults stay out of store keys
            out[name] = value
    return out


def _batch(space: str, sp, corpus, batch_size, seq_len):
    for field, v in (("batch_size", batch_size), ("seq_len", seq_len)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1):
            raise BadInputError(field, f"must be a positive integer, got {v!r}")
    try:
        return sp.batch(None if corpus is None else str(corpus), batch_size=None if batch_size is None else int(batch_size),
                        seq_len=None if seq_len is None else int(seq_len))
    except DataError as e:  # its message names the path already
        raise BadInputError("corpus", str(e)) from None
    except ValueError as e:
        raise BadInputError("corpus" if corpus is not None else "batch_size", str(e)) from None


def plans_for_any_space(proxies: Union[str, Sequence[str]], **options: Any) -> Dict[str, ScoringPlan]:
    """Plans for every space that takes the whole request (adapters that learn the space only
    from their first candidate check here at construction); the most relevant error when no
    space does: that of a space the first proxy applies to."""
    specs = [proxies] if isinstance(proxies, str) else list(proxies)
    for spec in specs:  # a name no space knows: list every proxy, not one space's
        name = parse_proxy_spec(spec)[0] if isinstance(spec, str) and spec.strip() else None
        if name is not None and name not in list_proxies():
            raise BadInputError("proxy", f"unknown proxy {name!r}; valid proxies: {', '.join(list_proxies())}",
                                repr(spec))
    plans: Dict[str, ScoringPlan] = {}
    errors = []
    for space in list_spaces():
        try:
            plans[space] = make_plan(space, specs, **options)
        except BadInputError as e:
            name = parse_proxy_spec(specs[0])[0] if specs and isinstance(specs[0], str) else None
            first_applies = name in list_proxies(space)
            errors.append((not first_applies, e))
    if not plans:
        raise sorted(errors, key=lambda t: t[0])[0][1]
    return plans
