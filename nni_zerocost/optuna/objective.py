"""Zero-cost proxies as Optuna objectives: architectures as distributions, one checked job per
objective, scored by the runner (:func:`~nni_zerocost.runner.score_one`).

What a trial holds (user attributes): ``arch`` (the architecture, plain JSON), ``arch_hash``,
``status`` (the runner's: ``ok``, ``flagged``, ``no_score``, ``over_budget``), ``flag`` (why a
value is a fallback or missing; "" when none), ``computed`` (proxies computed now: 0 when the
results store answered) and ``metrics`` (the metric dict every host builds,
:func:`~nni_zerocost.search_report.record_metrics`, from which the search report is made).

How outcomes map onto Optuna's states:

* a score: the trial is COMPLETE with the main proxy's score (higher is better: the study
  maximises it), and with ``cost`` also the size (minimised);
* over the size budget: not scored (no model work); every trial carries one constraint per
  budget field, ``size / limit - 1`` (feasible when <= 0, Optuna's convention, from the sizes
  the runner counted), and an over-budget trial is PRUNED: it has no value to give.  TPE ranks
  pruned and infeasible trials below every feasible complete one, so it learns the budget;
  NSGA-II builds its populations and ``study.best_trials`` from complete trials only, so an
  over-budget candidate is never a parent or a pick;
* no score (a proxy's documented NaN, flagged): PRUNED as well, never NaN: TPE ranks it below
  every scored candidate, as NNI's ``NO_SCORE`` does.  (A FAIL trial would be invisible to every
  sampler, which would keep proposing its neighbours.)
* an unexpected error: raised (:class:`~nni_zerocost.runner.ScoringBugError`, with the
  traceback), so the trial FAILs and ``study.optimize`` stops, as Optuna does with any bug.
"""
from __future__ import annotations

import functools
import json
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

try:
    import optuna
except ImportError as e:  # pragma: no cover
    raise ImportError(f"nni_zerocost.optuna needs Optuna 5: pip install 'nni-zerocost[optuna]' ({e})") from e

from ..errors import BadInputError, arg
from ..job import ScoringJob, check_choice, check_counts, check_job
from ..nas.codec import get_codec
from ..runner import open_store, raise_for_error, score_one
from ..search_report import COST_MEASURES, SIZE_MEASURES, record_metrics
from ..threads import scoring_threads

#: what a multi-objective study minimises beside the proxy: sizes counted from the architecture
COSTS = SIZE_MEASURES + COST_MEASURES
#: values Optuna stores in a categorical distribution as they are
_PLAIN = (type(None), bool, int, float, str)


def _labels(space: str, **space_options: Any) -> "_Labels":
    """The labels of a registered space, or of the family ``space_options`` describe (the hf
    space's ``choices``), built once per space and family."""
    from ..errors import UnknownNameError
    from ..spaces import get_space

    try:
        sp = get_space(space)
    except UnknownNameError:
        get_codec(space)  # refuses it, naming the field
        raise
    if space_options:
        unknown = sorted(set(space_options) - set(sp.family_options()))
        if unknown:
            raise BadInputError(unknown[0], f"the {space!r} space takes no such option (its family options: "
                                            f"{', '.join(sp.family_options()) or 'none'})")
        sp = sp.family(**space_options)
    return _labels_of(sp)


@functools.lru_cache(maxsize=16)
def _labels_of(space_obj) -> "_Labels":
    return _Labels(space_obj)


class _Labels:
    """A space's codec labels as Optuna categorical choices: each label's values as they are, or
    their JSON text where Optuna cannot store them (a plugin's lists, say)."""

    def __init__(self, space_obj):
        self.codec = space_obj.codec()
        self.values = self.codec.choices()
        self.choices = {label: [v if isinstance(v, _PLAIN) else json.dumps(v) for v in values]
                        for label, values in self.values.items()}

    def sample(self, params: Mapping[str, Any]) -> Dict[str, Any]:
        """The codec sample of Optuna parameters."""
        return {label: self.values[label][self.choices[label].index(params[label])] for label in self.values}

    def params(self, sample: Mapping[str, Any]) -> Dict[str, Any]:
        """The Optuna parameters of a codec sample (what ``enqueue_trial`` takes)."""
        return {label: self.choices[label][self.values[label].index(sample[label])] for label in self.values}


def distributions(space: str, **space_options: Any) -> Dict[str, "optuna.distributions.CategoricalDistribution"]:
    """``{label: CategoricalDistribution}`` of a registered space (or of a family of it:
    ``choices="family.yaml"`` for the hf space): one per label of its codec
    (``get_space(space).codec().choices()``, what NNI's model spaces hold too)."""
    return {label: optuna.distributions.CategoricalDistribution(choices)
            for label, choices in _labels(space, **space_options).choices.items()}


def grid(space: str, **values: Sequence[Any]) -> Dict[str, List[Any]]:
    """The ``optuna.samplers.GridSampler`` search space of a sub-grid: the labels given over the
    values given, every other label at its first value (a whole space is too large a grid:
    ``GridSampler`` lists every combination)."""
    labels = _labels(space)
    out = {}
    for label, given in values.items():
        if label not in labels.values:
            raise BadInputError(label, f"is not a label of the {space!r} space; its labels: {', '.join(labels.values)}")
        wrong = [v for v in given if v not in labels.values[label]]
        if wrong:
            raise BadInputError(label, f"{wrong[0]!r} is not one of {labels.values[label]}")
    for label, choices in labels.choices.items():
        given = values.get(label)
        out[label] = [choices[0]] if given is None else [choices[labels.values[label].index(v)] for v in given]
    return out


def suggest_architecture(trial, space: str, **space_options: Any):
    """The architecture a trial proposes: one categorical parameter per codec label, decoded by
    the space's codec, which repairs instead of rejecting, so every proposal of every sampler is
    a valid architecture.  ``space_options``: a family of the space (the hf space's
    ``choices``: a YAML file of the configs to search)."""
    return _suggest_labels(trial, _labels(space, **space_options))


def _suggest_labels(trial, labels: "_Labels"):
    params = {label: trial.suggest_categorical(label, choices) for label, choices in labels.choices.items()}
    return labels.codec.decode(labels.sample(params))


def _factory_path(factory: Union[str, Callable[..., Any]]) -> str:
    """``"pkg.module:function"`` of a model factory (a callable, or that text already), which the
    ``model`` space's recipes name; a callable no process could import again is refused."""
    if isinstance(factory, str):
        return factory
    module, name = getattr(factory, "__module__", None), getattr(factory, "__qualname__", "")
    if not module or not name or "<" in name:
        raise BadInputError("factory", "must be a module-level function or class (a recipe names it as "
                                       "'pkg.module:function'), not a lambda or a local function", repr(factory))
    return f"{module}:{name}"


def _check_params(params: Mapping[str, Any]) -> Dict[str, Any]:
    """A factory's searched keyword arguments: an Optuna distribution, a list (categorical) or
    a plain value (fixed), each checked now."""
    if not isinstance(params, Mapping):
        raise BadInputError("params", f"must map keyword arguments to distributions, lists or values, got "
                                      f"{type(params).__name__}")
    out = {}
    for name, spec in params.items():
        if isinstance(spec, (list, tuple)):
            if not spec or not all(isinstance(v, _PLAIN) for v in spec):
                raise BadInputError(f"params.{name}", "a list of choices must be non-empty plain values", repr(spec))
            spec = optuna.distributions.CategoricalDistribution(list(spec))
        elif not isinstance(spec, (*_PLAIN, optuna.distributions.BaseDistribution)):
            raise BadInputError(f"params.{name}", "must be an Optuna distribution, a list of choices or a plain "
                                                  "value", repr(spec))
        out[str(name)] = spec
    return out


def _suggest_params(trial, params: Mapping[str, Any]) -> Dict[str, Any]:
    """The factory's keyword arguments a trial proposes (fixed values as they are)."""
    out = {}
    for name, spec in params.items():
        if isinstance(spec, optuna.distributions.IntDistribution):
            out[name] = trial.suggest_int(name, spec.low, spec.high, step=spec.step, log=spec.log)
        elif isinstance(spec, optuna.distributions.FloatDistribution):
            out[name] = trial.suggest_float(name, spec.low, spec.high, step=spec.step, log=spec.log)
        elif isinstance(spec, optuna.distributions.CategoricalDistribution):
            out[name] = trial.suggest_categorical(name, list(spec.choices))
        else:
            out[name] = spec
    return out


def _first_params(params: Mapping[str, Any]) -> Dict[str, Any]:
    """The keyword arguments at each distribution's low end or first choice (the recipe the
    objective checks before any trial)."""
    first = {}
    for name, spec in params.items():
        if isinstance(spec, optuna.distributions.CategoricalDistribution):
            first[name] = spec.choices[0]
        elif isinstance(spec, optuna.distributions.BaseDistribution):
            first[name] = spec.low
        else:
            first[name] = spec
    return first


def _refuse_inapplicable(job: ScoringJob) -> None:
    """Fields of a job that a trial-by-trial objective cannot honour are refused, not ignored."""
    if job.source is not None:
        raise BadInputError(job.source.split("+")[0], "does not apply: the study proposes the architectures")
    if job.workers not in ("auto", 1):
        raise BadInputError("workers", "does not apply: a trial scores its architecture in its own process; start "
                                       f"several processes on one {arg('storage')} to score trials in parallel",
                            repr(job.workers))
    for field in ("ray", "shard", "out"):
        if getattr(job, field) is not None:
            raise BadInputError(field, "does not apply to Optuna trials (scored one at a time, in their own process)",
                                repr(getattr(job, field)))


class ZeroCostObjective:
    """An Optuna objective: scores each trial's architecture with zero-cost proxies (no training).

    ``proxies``: a spec or a list of specs, the first optimised (maximised), the others kept in
    the trial's ``metrics``; ``cost``: one of :data:`COSTS` for a multi-objective study (the
    proxy against that size, counted from the architecture, minimised; see :attr:`directions`);
    ``candidates``: architectures to choose from instead of the whole space (one categorical
    parameter ``candidate``, their index: a benchmark's architectures, say).

    ``space`` may be your own model factory instead (a module-level callable, or
    ``"pkg.module:function"``) with ``params``: its searched keyword arguments, each an Optuna
    distribution (``IntDistribution(2, 12)``), a list (categorical) or a fixed value; each trial
    scores the recipe ``{"factory": ..., "kwargs": {...}}`` of the ``model`` space, built under
    the job's seed, so the results store answers a repeated recipe in any process.  A space's
    family goes in ``job_fields`` (the hf space's ``choices="family.yaml"``).  ``job_fields``:
    the job's and the request's (``seed``, ``corpus``, ``device``, the space's context options,
    ``max_params`` / ``max_nonembedding_params`` / ``max_flops``, ``store``, ``threads``,
    ``plugins``), checked once, here.  See the module docstring for what each outcome becomes.
    """

    def __init__(self, space: Union[str, Callable[..., Any]], proxies: Union[str, Sequence[str]], *,
                 params: Optional[Mapping[str, Any]] = None, cost: Optional[str] = None,
                 candidates: Optional[Sequence[Any]] = None, **job_fields: Any):
        factory = None
        if callable(space) or (isinstance(space, str) and ":" in space):  # your own models: the model space
            factory, space = _factory_path(space), "model"
            params = _check_params(params if params is not None else {})
        elif params is not None:
            raise BadInputError("params", "applies to a model factory (a space proposes its own architectures)")
        job = ScoringJob.of([proxies] if isinstance(proxies, str) else list(proxies), space, **job_fields)
        _refuse_inapplicable(job)
        self._setup(check_job(job, need_architectures=False), cost, candidates, factory, params)

    @classmethod
    def of_checked(cls, checked, *, cost: Optional[str] = None, candidates=None) -> "ZeroCostObjective":
        """The objective of a job checked already (:func:`nni_zerocost.search`)."""
        _refuse_inapplicable(checked.job)
        self = cls.__new__(cls)
        self._setup(checked, cost, candidates)
        return self

    def _setup(self, checked, cost, candidates, factory: Optional[str] = None,
               params: Optional[Mapping[str, Any]] = None) -> None:
        plan = checked.plan
        sp = plan.search_space
        self.factory, self.params, self._labels = factory, params, None
        if factory is not None:  # the first recipe builds, or the objective fails here, naming why
            first = plan.parse({"factory": factory, "kwargs": _first_params(params)})
            first.function()
            example = first
        elif not sp.searchable:
            raise BadInputError("space", f"the {plan.space!r} space has no choices to search", repr(plan.space))
        else:
            self._labels = _labels_of(sp)  # the plan's space: the family, where the job names one
            example = sp.smoke_architecture()
        if cost is not None:
            check_choice("cost", cost, COSTS)
            if cost in COST_MEASURES:
                if cost not in checked.job.costs:  # a measured cost of every trial's model
                    raise BadInputError("cost", f"is measured only when the job asks for it: give "
                                                f"costs=({cost!r},)", repr(cost))
            elif self._sizes_of(plan, example).get(cost) is None:
                raise BadInputError("cost", f"the {plan.space!r} space does not count {cost.replace('_', ' ')}",
                                    repr(cost))
        self.checked, self.cost = checked, cost
        self.candidates = None if candidates is None else [plan.to_dict(plan.parse(c)) for c in candidates]
        self._store = None

    @property
    def space(self) -> str:
        return self.checked.plan.space

    @property
    def proxy(self) -> str:
        """The optimised proxy spec."""
        return self.checked.plan.specs[0]

    @property
    def directions(self) -> List[str]:
        """``create_study(directions=...)``: the proxy maximised, the cost minimised."""
        return ["maximize"] + (["minimize"] if self.cost is not None else [])

    def suggest(self, trial):
        """The trial's architecture: one of the candidates, a recipe of the factory, or any of the
        space (of its family, where the job names one)."""
        if self.candidates is not None:
            return self.candidates[trial.suggest_categorical("candidate", list(range(len(self.candidates))))]
        if self.factory is not None:
            return {"factory": self.factory, "kwargs": _suggest_params(trial, self.params)}
        return _suggest_labels(trial, self._labels)

    def __call__(self, trial) -> Union[float, Tuple[float, float]]:
        return self.record(trial, self.score(self.suggest(trial), trial.number))

    def score(self, arch, item_id: Any = 0):
        """The runner's record of one architecture, in this process with the job's ``threads``,
        through the job's results store, read again first for what other processes stored since
        (no second model work)."""
        if self._store is None and self.checked.store_path is not None:
            self._store = open_store(self.checked.store_path)
        elif self._store is not None:
            self._store.refresh()
        with scoring_threads(self.checked.job.threads):  # the job's threads, else the policy's, as the runner's
            rec = score_one(self.checked, arch, item_id, store=self._store)
        raise_for_error(rec)  # a bug raises (the trial FAILs); over budget and no score do not
        return rec

    def record(self, trial, rec) -> Union[float, Tuple[float, float]]:
        """Put a runner record on the trial (user attributes, constraints) and return its values;
        ``optuna.TrialPruned`` for a candidate without a score (see the module docstring)."""
        plan = self.checked.plan
        metrics = record_metrics(rec, self.proxy)
        for key, value in (("arch", rec.arch), ("arch_hash", rec.arch_hash), ("status", rec.status),
                           ("flag", metrics.get("flag") or ""), ("computed", rec.computed), ("metrics", metrics)):
            trial.set_user_attr(key, value)
        limits = self.checked.budget.limits()
        sizes = rec.sizes if rec.sizes is not None else \
            self._sizes_of(plan, plan.parse(rec.arch)) if (limits or self.cost in SIZE_MEASURES) else {}
        for field, limit in limits.items():  # relative, so that budgets on different sizes weigh alike
            trial.set_constraint(field, sizes[field[len("max_"):]] / limit - 1.0)
        if rec.status == "over_budget":
            raise optuna.TrialPruned(rec.error)
        score = rec.scores[self.proxy]
        if score is None:
            raise optuna.TrialPruned(f"no score: {metrics.get('flag') or rec.status}")
        if self.cost is None:
            return score
        if self.cost in SIZE_MEASURES:
            return score, float(sizes[self.cost])
        cost = (rec.costs or {}).get(self.cost)
        if cost is None:
            raise optuna.TrialPruned(f"no {self.cost}: {metrics.get('flag') or rec.status}")
        return score, float(cost["value"])

    @staticmethod
    def _sizes_of(plan, arch) -> Dict[str, float]:
        from ..budget import sizes

        return sizes(plan.search_space, arch, plan.context_options)


def prescreen(study, space: str, proxy: str, n_candidates: int, top_k: int, **job_fields: Any) -> List[Any]:
    """Rank ``n_candidates`` architectures of the space by ``proxy`` and enqueue the best
    ``top_k`` in ``study`` (as :func:`suggest_architecture`'s parameters), for your own
    (training) objective to evaluate first; returns their runner records, best first.

    The candidates are drawn uniformly over the distributions (what ``RandomSampler`` proposes)
    with the job's ``seed``, which also seeds the weights; they are scored by the runner as one
    job (``workers``, ``threads``, ``store``, the size budget: a candidate over it is never
    enqueued).  Each enqueued trial carries ``prescreen_proxy``, ``prescreen_score`` and
    ``arch_hash`` as user attributes."""
    from ..runner import run

    import numpy as np

    counts = check_counts(n_candidates=n_candidates, top_k=top_k)
    job = ScoringJob.of([proxy], space, **job_fields)
    plan = check_job(job, need_architectures=False).plan  # every field, before anything is drawn
    if not plan.search_space.searchable:
        raise BadInputError("space", f"the {plan.space!r} space has no choices to search", repr(plan.space))
    labels = _labels_of(plan.search_space)  # the family, where the job names one
    rng = np.random.default_rng(job.request.seed)
    samples = [{label: values[rng.integers(len(values))] for label, values in labels.values.items()}
               for _ in range(counts["n_candidates"])]
    archs = tuple((i, plan.to_dict(labels.codec.decode(s))) for i, s in enumerate(samples))
    checked = check_job(job.replace(architectures=archs))
    main = checked.plan.specs[0]
    scored = []
    for rec in run(checked, progress=False):
        raise_for_error(rec)
        if rec.scores[main] is not None:
            scored.append(rec)
    best, seen = [], set()
    for rec in sorted(scored, key=lambda r: -r.scores[main]):
        if rec.arch_hash not in seen and len(best) < counts["top_k"]:
            seen.add(rec.arch_hash)
            best.append(rec)
    for rec in best:
        study.enqueue_trial(labels.params(samples[rec.id]), user_attrs={
            "prescreen_proxy": main, "prescreen_score": rec.scores[main], "arch_hash": rec.arch_hash})
    return best
