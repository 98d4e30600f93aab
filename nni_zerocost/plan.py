"""The one checked door into scoring: a :class:`ScoringRequest` -> a :class:`ScoringPlan`.

A :class:`ScoringRequest` holds everything that decides a score as plain JSON values (space,
proxy specs, seed, data source, context options, device), so it crosses any process boundary:
NNI trials, worker pools, Ray tasks, configuration files.  Every front end (the CLI, the NNI
evaluator, strategies, tuner and trial, the NASLib predictor and driver,
:func:`nni_zerocost.score` and :func:`nni_zerocost.score_model`) builds one request and hands
it to :func:`make_plan`, and does nothing else with it.

:func:`make_plan` checks everything a request can get wrong -- the space, each proxy's name,
whether it applies (by the capabilities the space's contexts offer), each option's name, type
and allowed values, the context options, the seed, the device and the data source -- and raises
one :class:`~nni_zerocost.errors.BadInputError` naming the field and what is allowed.  It does
so before any model is built, so bad input never costs work.

A plan then answers everything downstream needs: the input batch, the store key of a result,
the scoring context of an architecture, and the scores themselves (``plan.score(arch)``).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import numbers
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import torch

from .devices import resolve_device
from .errors import BadInputError, DataError, ProxyOptionError, UnknownNameError, suggest
from .proxies.base import ProxyResult, compute_many, get_proxy, list_proxies, offers_of, parse_proxy_spec
from .spaces import get_space, list_spaces
from .store import make_key


@dataclasses.dataclass(frozen=True)
class ScoringRequest:
    """What to score, as plain JSON values; :func:`make_plan` checks it.

    ``space``: a registered search space; ``proxies``: specs (``"hidden_covariance:layer=2"``);
    ``corpus`` / ``batch_size`` / ``seq_len``: the input batch (default: the space's embedded
    one); ``device``: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; ``options``: the space's
    context options (``init``, ``as_trained``, ...; ``nni-zerocost list spaces`` shows them);
    ``space_options``: the space's family options (``choices`` of the hf space: a file path or
    the file's content), which choose what is searched and never change a score.
    """

    proxies: Tuple[str, ...]
    space: Optional[str] = None
    seed: int = 0
    corpus: Optional[str] = None
    batch_size: Optional[int] = None
    seq_len: Optional[int] = None
    device: str = "auto"
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    space_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        specs = (self.proxies,) if isinstance(self.proxies, str) else tuple(self.proxies or ())
        object.__setattr__(self, "proxies", specs)
        object.__setattr__(self, "options", {k: v for k, v in dict(self.options or {}).items() if v is not None})
        object.__setattr__(self, "space_options", {k: str(v) if hasattr(v, "__fspath__") else v
                                                   for k, v in dict(self.space_options or {}).items()
                                                   if v is not None})
        object.__setattr__(self, "device", "auto" if self.device is None else str(self.device))
        if self.corpus is not None:
            object.__setattr__(self, "corpus", str(self.corpus))

    @classmethod
    def of(cls, proxies, space: Optional[str] = None, **fields) -> "ScoringRequest":
        """A request from keyword arguments: the named fields, a space's family option by its
        name (``choices="family.yaml"``), and every other keyword as a context option
        (``init="compat"``, ``as_trained=True``)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"proxies", "space", "options", "space_options"}
        options = dict(fields.pop("options", None) or {})
        space_options = dict(fields.pop("space_options", None) or {})
        family = family_option_names()
        space_options.update({k: fields.pop(k) for k in list(fields) if k in family})
        options.update({k: fields.pop(k) for k in list(fields) if k not in names})
        return cls(proxies, space, options=options, space_options=space_options, **fields)

    def replace(self, **changes) -> "ScoringRequest":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> Dict[str, Any]:
        return {"proxies": list(self.proxies), "space": self.space, "seed": self.seed, "corpus": self.corpus,
                "batch_size": self.batch_size, "seq_len": self.seq_len, "device": self.device,
                "options": dict(self.options), "space_options": dict(self.space_options)}

    @classmethod
    def from_json(cls, obj: Union[str, Mapping[str, Any]]) -> "ScoringRequest":
        d = json.loads(obj) if isinstance(obj, str) else dict(obj)
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise BadInputError("request", f"unknown field(s) {', '.join(unknown)}")
        return cls(**d)


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
    stored before an option existed keep their keys.  ``device`` is the ``torch.device`` models
    and batches are built on (weights are drawn on the CPU and moved); an index-less ``cuda``
    means the current CUDA device of the process scoring (each worker has its own).
    ``scoring_request`` is the request the plan was made from, its family options made
    self-contained (a choices file read in: :attr:`SearchSpace.space_options`), so it makes the
    same plan in any process or machine.  ``family``: the space configured by those options
    (None: the space as registered); it is not part of any store key.
    """

    space: str
    requests: Tuple[ProxyRequest, ...]
    seed: int
    batch: Any
    context_options: Mapping[str, Any]
    device: torch.device = torch.device("cpu")
    scoring_request: Optional[ScoringRequest] = None
    family: Any = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def search_space(self):
        """The :class:`~nni_zerocost.spaces.SearchSpace` of the plan: the registered space, or
        the family its request configured (:meth:`SearchSpace.family`)."""
        return self.family if self.family is not None else get_space(self.space)

    @property
    def specs(self) -> Tuple[str, ...]:
        return tuple(r.spec for r in self.requests)

    @functools.cached_property
    def data_fingerprint(self) -> str:
        return self.batch.fingerprint

    def request(self, spec: str) -> ProxyRequest:
        return next(r for r in self.requests if r.spec == spec)

    # -- architectures: everything the space says of them ------------------------------------
    def parse(self, arch):
        return self.search_space.parse(arch)

    def to_dict(self, arch):
        return self.search_space.to_dict(arch)

    def arch_hash(self, arch) -> Optional[str]:
        return self.search_space.arch_hash(arch)

    def arch_key(self, arch) -> Optional[str]:
        """What identifies ``arch``'s scores under this plan (canonical or exact hash); None
        for an architecture whose scores cannot be stored (a model object without a recipe)."""
        return self.search_space.arch_key(arch, **self.context_options)

    @property
    def device_name(self) -> str:
        """What every record says computed it: ``"cpu"`` or ``"cuda:0"`` (an index-less CUDA
        device is named by the current device of the process that scores)."""
        if self.device.type == "cuda" and self.device.index is None:
            return f"cuda:{torch.cuda.current_device()}"
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
        return self.search_space.context(arch, self.batch, seed=self.seed, device=self.device,
                                         **self.context_options)

    def check_applies_to(self, arch) -> None:
        """Every proxy of the plan applies to ``arch``'s model, for spaces whose models offer
        different capabilities (your own models); BadInputError naming what it lacks."""
        if self.search_space.offers_vary:
            with self.context(arch) as ctx:
                check_applies(self.requests, ctx)

    def score(self, arch, requests: Optional[Sequence[ProxyRequest]] = None, progress=None) -> Dict[str, ProxyResult]:
        """``{spec: ProxyResult}`` of one architecture, in plan order, on one shared context
        (:func:`~nni_zerocost.proxies.base.compute_many` orders the passes).  Threads are the
        caller's (the runner applies the thread policy once per run).  ``progress``: a bar
        (``update(1)``) advanced after each proxy."""
        todo = self.requests if requests is None else requests
        with self.context(arch) as ctx:
            if self.search_space.offers_vary:
                check_applies(todo, ctx)
            return compute_many(ctx, [(r.spec, r.name, r.options) for r in todo], progress=progress)


def make_plan(
    space: Union[str, ScoringRequest, None] = None,
    proxies: Union[str, Sequence[str], None] = None,
    *,
    seed: int = 0,
    corpus: Optional[str] = None,
    batch: Any = None,
    batch_size: Optional[int] = None,
    seq_len: Optional[int] = None,
    device: Any = "auto",
    remote_gpus: bool = False,
    **context_options: Any,
) -> ScoringPlan:
    """Check a scoring request and return its plan; :class:`BadInputError` otherwise.

    Call it with a :class:`ScoringRequest`, or with its fields: ``space``, ``proxies`` (a spec
    or a list; duplicates are scored once), ``seed``, ``corpus`` / ``batch_size`` / ``seq_len``
    (the batch, through the space: :meth:`SearchSpace.batch`), ``device`` (``"auto"``: CUDA when
    available, else the CPU; ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; CUDA asked for where there is
    none is refused) and the space's context options as keywords (``init`` for rnn, ...).
    ``batch`` passes a ready batch object instead (not part of the request: it is no JSON).
    ``remote_gpus``: the work runs on GPUs elsewhere (Ray tasks with a GPU share), so the plan is
    a CUDA plan even where this machine has none.
    """
    if isinstance(space, ScoringRequest):
        if proxies is not None or context_options:
            raise TypeError("make_plan(request) takes no other request fields")
        request = space
    else:
        try:
            request = ScoringRequest(proxies, space, seed=seed, corpus=corpus, batch_size=batch_size,
                                     seq_len=seq_len, device=device, options=context_options)
        except TypeError as e:
            raise BadInputError("request", str(e)) from None
    return _plan(request, batch, remote_gpus)


def _plan(request: ScoringRequest, batch: Any, remote_gpus: bool = False) -> ScoringPlan:
    name = request.space
    if name is None:
        raise BadInputError("space", f"no search space given; valid spaces: {', '.join(list_spaces())}")
    try:
        sp = get_space(name)
    except UnknownNameError:
        raise BadInputError("space", f"unknown space{suggest(name, list_spaces())}; valid spaces: "
                                     f"{', '.join(list_spaces())}", repr(name)) from None
    sp = _family(name, sp, request.space_options)
    request = request.replace(space_options=dict(sp.space_options))
    specs = list(dict.fromkeys(request.proxies))
    if not specs:
        raise BadInputError("proxy", f"no proxy given; proxies for the {name!r} space: {', '.join(list_proxies(name))}")
    requests = tuple(_request(name, spec, sp.offers, sp.limits(), offers_vary=sp.offers_vary) for spec in specs)
    seed = _check_seed(request.seed)
    ctx_opts = _context_options(name, sp.context_options(), request.options)
    if remote_gpus:  # each task's own GPU: "cuda" resolves to it where the task runs
        dev = torch.device("cuda")
    else:
        dev = resolve_device(request.device)
    if ctx_opts.get("dtype") == "float16" and dev.type != "cuda":
        raise BadInputError("dtype", f"float16 is for CUDA devices only, not {dev.type}: use bfloat16 on the CPU")
    if batch is None:
        batch = _batch(sp, request.corpus, request.batch_size, request.seq_len)
    elif request.corpus is not None or request.batch_size is not None or request.seq_len is not None:
        raise BadInputError("batch", "give either a ready batch or corpus/batch_size/seq_len, not both")
    else:
        batch = sp.given_batch(batch)
    return ScoringPlan(name, requests, seed, batch, ctx_opts, dev, request, sp if sp.space_options else None)


def make_model_plan(model, proxies: Union[str, Sequence[str]], *, batch: Any = None, seed: int = 0,
                    device: Any = None, **context_options: Any) -> ScoringPlan:
    """The plan scoring a user's own language model object (:func:`nni_zerocost.score_model`):
    a plan of the ``model`` space, checked against what this model offers (one line naming what
    it lacks otherwise).  ``device``: None = where the model's parameters are; ``context_options``:
    the model space's (``dtype``, ``max_memory``)."""
    if device is None and isinstance(model, torch.nn.Module):
        p = next(model.parameters(), None)
        device = "cpu" if p is None else str(p.device)
    plan = make_plan("model", proxies, seed=seed, batch=batch, device="auto" if device is None else device,
                     **context_options)
    plan.check_applies_to(plan.parse(model))
    return plan


def check_applies(requests: Sequence[ProxyRequest], ctx) -> None:
    """Every request's proxy has an implementation for ``ctx`` and its options fit the model
    (a model whose capabilities are known only once built); BadInputError naming what the model
    lacks otherwise."""
    from .proxies.base import context_limits

    for r in requests:
        proxy = get_proxy(r.name)
        impl = proxy.impl_for(ctx.offers)
        if impl is None:
            raise BadInputError("proxy", f"{r.name!r} does not apply to {ctx.label}: it needs "
                                         f"{proxy.missing_text(ctx.offers).replace('the model', 'it')}", repr(r.spec))
        try:
            impl.check_options(r.name, r.options, ctx.offers, context_limits(ctx))
        except ProxyOptionError as e:
            raise BadInputError("proxy", str(e).replace("this model", ctx.label), repr(r.spec)) from None


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise BadInputError("seed", f"must be an integer >= 0, got {seed!r}")
    return int(seed)


def _request(space: str, spec: Any, offers, limits, what: str = "space", offers_vary: bool = False) -> ProxyRequest:
    if not isinstance(spec, str) or not spec.strip():
        raise BadInputError("proxy", "a proxy spec is a non-empty string such as 'hidden_covariance:layer=2'",
                            repr(spec))
    try:
        name, given = parse_proxy_spec(spec)
    except ProxyOptionError as e:
        raise BadInputError("proxy", str(e), repr(spec)) from None
    valid = list_proxies(offers)
    where = f"the {space!r} space" if what == "space" else space
    if name not in list_proxies():
        raise BadInputError("proxy", f"unknown proxy {name!r}{suggest(name, list_proxies())}; proxies for {where}: "
                                     f"{', '.join(valid)}", repr(spec))
    proxy = get_proxy(name)
    impl = proxy.impl_for(offers)
    if impl is None:
        lacks = proxy.missing_text(offers).replace("the model", "it")
        raise BadInputError("proxy", f"{name!r} does not apply to {where}: it needs {lacks}; proxies for {where}: "
                                     f"{', '.join(valid)}", repr(spec))
    if offers_vary:  # which implementation runs depends on each model: keep the options as given,
        # checked by the first implementation that takes them; defaults are filled per model
        candidates = [i for i in proxy.impls if i.needs <= set(offers)]
        for i, candidate in enumerate(candidates):
            try:
                checked = candidate.check_options(name, given, None, limits)
            except ProxyOptionError as e:
                if i == len(candidates) - 1:
                    raise BadInputError("proxy", str(e).replace("this model", where), repr(spec)) from None
                continue
            return ProxyRequest(spec, name, {k: checked[k] for k in given}, proxy.higher_is_better)
    try:
        options = impl.check_options(name, given, offers, limits)
    except ProxyOptionError as e:
        raise BadInputError("proxy", str(e).replace("this model", where), repr(spec)) from None
    return ProxyRequest(spec, name, options, proxy.higher_is_better)


def family_option_names() -> frozenset:
    """The family options any registered space declares (``choices``): keywords that
    :meth:`ScoringRequest.of` files under ``space_options``."""
    return frozenset(n for s in list_spaces() for n in get_space(s).family_options())


def _family(space: str, sp, given: Mapping[str, Any]):
    """The space configured by the request's family options: names checked here, values by
    the space (:meth:`SearchSpace.family`, BadInputError naming the option)."""
    allowed = sp.family_options()
    for name in given:
        if name not in allowed:
            takes = ", ".join(allowed) or "none"
            raise BadInputError(name, f"the {space!r} space takes no such option (its family options: {takes})")
    return sp.family(**given) if given else sp


def _context_options(space: str, allowed: Mapping[str, Any], given: Mapping[str, Any]) -> Dict[str, Any]:
    out = {}
    for name, value in given.items():
        if value is None:
            continue
        if name not in allowed:
            takes = ", ".join(allowed) or "none"
            raise BadInputError(name, f"the {space!r} space takes no such option (its options: {takes})")
        values = allowed[name].values
        if allowed[name].parse is not None:
            out[name] = allowed[name].parse(value)
            continue
        if isinstance(values, type):
            ok = isinstance(value, values) and not isinstance(value, bool) and value > 0
            if not ok:
                raise BadInputError(name, f"must be a positive {values.__name__}, got {value!r}")
        elif value not in values or type(value) is not type(values[0]):
            raise BadInputError(name, f"must be one of {', '.join(map(repr, values))}, got {value!r}")
        if isinstance(values, type) or value != values[0]:  # defaults stay out of store keys
            out[name] = value
    return out


def _batch(sp, corpus, batch_size, seq_len):
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


def check_request(request: ScoringRequest) -> None:
    """What can be checked of a request before its space is known (an NNI adapter learns the
    space from its first candidate): proxy names and spec syntax, seed, device, and that some
    space takes each context option.  The full check runs per space in :func:`make_plan`."""
    for spec in request.proxies or ():
        if not isinstance(spec, str) or not spec.strip():
            raise BadInputError("proxy", "a proxy spec is a non-empty string such as 'hidden_covariance:layer=2'",
                                repr(spec))
        try:
            name, _ = parse_proxy_spec(spec)
        except ProxyOptionError as e:
            raise BadInputError("proxy", str(e), repr(spec)) from None
        if name not in list_proxies():
            raise BadInputError("proxy", f"unknown proxy {name!r}{suggest(name, list_proxies())}; valid proxies: "
                                         f"{', '.join(list_proxies())}", repr(spec))
    if not request.proxies:
        raise BadInputError("proxy", "no proxy given")
    _check_seed(request.seed)
    resolve_device(request.device)
    for option in request.options:
        if not any(option in get_space(s).context_options() for s in list_spaces()):
            raise BadInputError(option, "no search space takes such an option")
    for option in request.space_options:
        if option not in family_option_names():
            raise BadInputError(option, "no search space takes such a family option")


def plans_for_any_space(request: ScoringRequest) -> Dict[str, ScoringPlan]:
    """Plans for every registered searchable space that takes the whole request (adapters that
    learn the space only from their first candidate); the most relevant error when no space does."""
    check_request(request)
    plans: Dict[str, ScoringPlan] = {}
    errors = []
    first = parse_proxy_spec(request.proxies[0])[0]
    for space in (s for s in list_spaces() if get_space(s).searchable):
        try:
            plans[space] = make_plan(request.replace(space=space))
        except BadInputError as e:
            errors.append((first not in list_proxies(space), e))
    if not plans:
        raise sorted(errors, key=lambda t: t[0])[0][1]
    return plans


def offers_text(space: str) -> str:
    """The capabilities a registered space's contexts offer, for ``list spaces``."""
    return ", ".join(sorted(offers_of(space)))
