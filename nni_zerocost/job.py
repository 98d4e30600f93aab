"""One scoring job: everything a run needs, as plain JSON, checked in one place.

Every front end -- the CLI, :func:`nni_zerocost.score` / ``score_model`` / ``benchmark`` /
``search``, the NNI evaluator, strategies, tuner and trial, the NASLib predictor and driver, the
Optuna objective -- builds one :class:`ScoringJob` and hands it to :func:`check_job`; the checked
job (:class:`CheckedJob`, frozen) goes to the one runner (:func:`nni_zerocost.runner.run`).

:func:`check_job` is the only place where any field of a job is checked: what is scored, the
scoring request (through :func:`~nni_zerocost.make_plan`), where the work runs, the size budget,
the store, the output file and its resume policy.  A bad field raises
:class:`~nni_zerocost.errors.BadInputError` naming the field -- each field is spelled like its
command-line flag (``workers`` is ``--workers``) -- before any model is built.  Nothing edits a
checked job or its plan afterwards.

A job is plain JSON (:meth:`ScoringJob.to_json` / :meth:`ScoringJob.from_json`), so it crosses
process and machine boundaries as text: worker processes, Ray tasks and NNI trials rebuild the
plan from it.
"""
from __future__ import annotations

import dataclasses
import json
import math
import numbers
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .budget import SizeBudget
from .errors import BadInputError, InvalidArchitectureError, arg, suggest
from .plan import ScoringPlan, ScoringRequest

#: the ``store`` value that means the user's default results store (``$NNI_ZEROCOST_STORE``, else
#: ``~/.cache/nni-zerocost/results.jsonl``); None means no store
DEFAULT_STORE = "default"
#: the size-budget fields of a job, in the order reports name them
BUDGET_FIELDS = SizeBudget.FIELDS
#: the fields that choose what is scored (at most one of them)
SOURCES = ("benchmark", "cells", "sample", "models", "architectures")


@dataclasses.dataclass(frozen=True)
class ScoringJob:
    """Everything a scoring run needs, as plain JSON values (see the module docstring).

    What is scored (one of, or none for a job that scores candidates one at a time, as the NNI
    adapters do): ``benchmark`` (its architectures with a known ground truth; ``all_cells``: every
    architecture with all its training runs), ``cells`` (a JSONL file, ``.gz`` too, of
    ``{"id": ..., "arch" | "recipe" | "config": ...}``), ``sample`` (N random architectures of the
    space, drawn with the request's seed), ``models`` (your own models, for the ``model`` space:
    ``{"factory": "pkg.module:function", "kwargs": {...}}`` each) or ``architectures`` (``[id,
    architecture]`` pairs given directly); ``limit`` keeps a reproducible subset of a benchmark
    (a seeded permutation's prefix) or the first N cells; ``data_dir`` is where benchmark tables
    are read.

    Where it runs: ``workers`` (processes, or ``"auto"``), ``threads`` (per scoring process;
    None: the thread policy of :mod:`nni_zerocost.threads`), ``ray`` (``"local"``, ``"auto"`` or
    a cluster address: one Ray task per architecture), ``gpus_per_task`` (the GPU share of a Ray
    task), ``shard`` (``"K/N"``: the K-th of N shards of the architectures).

    The size budget: ``max_params``, ``max_nonembedding_params``, ``max_flops``, ``max_layers``
    (counted from the architecture: a candidate over it costs no model work).

    Costs (:mod:`nni_zerocost.costs`): ``costs`` names what each record reports beside the
    scores: ``latency_ms`` and ``peak_memory_mb`` measured on the job's device (batch 1, a row of
    ``cost_seq_len`` tokens, default the model's context; ``cost_threads`` threads), and
    ``n_layers`` and ``flops_per_token`` counted.  A measured budget, ``max_latency_ms`` /
    ``max_memory_mb``, measures a candidate before its proxies are scored and skips them over it.

    Results: ``store`` (a results-store path, :data:`DEFAULT_STORE`, or None), ``out`` (a score
    file, one JSON line per architecture), ``resume`` (continue an ``out`` file written by the
    same request; else start it anew).  ``plugins``: modules to import first (their proxies and
    spaces), also in every worker.
    """

    request: ScoringRequest
    benchmark: Optional[str] = None
    cells: Optional[str] = None
    sample: Optional[int] = None
    models: Tuple[Mapping[str, Any], ...] = ()
    architectures: Tuple[Tuple[Any, Any], ...] = ()
    limit: Optional[int] = None
    all_cells: bool = False
    data_dir: Optional[str] = None
    workers: Union[int, str] = "auto"
    threads: Optional[int] = None
    ray: Optional[str] = None
    gpus_per_task: Optional[float] = None
    shard: Optional[str] = None
    max_params: Optional[float] = None
    max_nonembedding_params: Optional[float] = None
    max_flops: Optional[float] = None
    max_layers: Optional[int] = None
    costs: Tuple[str, ...] = ()
    cost_seq_len: Optional[int] = None
    cost_threads: int = 1
    max_latency_ms: Optional[float] = None
    max_memory_mb: Optional[float] = None
    store: Optional[str] = DEFAULT_STORE
    out: Optional[str] = None
    resume: bool = True
    plugins: Tuple[str, ...] = ()

    def __post_init__(self):
        if isinstance(self.request, Mapping):
            object.__setattr__(self, "request", ScoringRequest.from_json(self.request))
        object.__setattr__(self, "models", tuple(dict(m) if isinstance(m, Mapping) else m for m in self.models or ()))
        object.__setattr__(self, "architectures", tuple(tuple(a) if isinstance(a, list) else a
                                                        for a in self.architectures or ()))
        object.__setattr__(self, "plugins", tuple(self.plugins or ()))
        object.__setattr__(self, "costs", tuple(dict.fromkeys(self.costs or ())))
        for name in ("cells", "data_dir", "out"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                object.__setattr__(self, name, str(value))
        if self.store is not None and not isinstance(self.store, str):
            object.__setattr__(self, "store", str(self.store))

    @classmethod
    def of(cls, proxies, space: Optional[str] = None, **fields) -> "ScoringJob":
        """A job from keyword arguments: the job's fields, the request's fields (``seed``,
        ``corpus``, ``batch_size``, ``seq_len``, ``device``) and every other keyword as a
        context option of the space (``init="compat"``)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"request"}
        own = {k: fields.pop(k) for k in list(fields) if k in names}
        return cls(ScoringRequest.of(proxies, space, **fields), **own)

    @property
    def source(self) -> Optional[str]:
        """Which field says what is scored (None: candidates come one at a time)."""
        given = [s for s in SOURCES if getattr(self, s) not in (None, (), [])]
        return given[0] if len(given) == 1 else None if not given else "+".join(given)

    def replace(self, **changes) -> "ScoringJob":
        return dataclasses.replace(self, **changes)

    def fields(self) -> Dict[str, Any]:
        """The keyword arguments of :meth:`of` that make this job again, besides the proxies
        and the space: every field not at its default (the request's, the context options and
        the family options included), as plain JSON values."""
        defaults = ScoringJob(ScoringRequest(()))
        out = {k: v for k, v in self.to_json().items()
               if k != "request" and v != defaults.to_json()[k]}
        base = ScoringRequest(()).to_json()
        for k, v in self.request.to_json().items():
            if k not in ("proxies", "space", "options", "space_options") and v != base[k]:
                out[k] = v
        out.update(self.request.options)
        out.update(self.request.space_options)
        return out

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "request":
                value = value.to_json()
            elif isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else v for v in value]
            out[f.name] = value
        return json.loads(json.dumps(out))

    @classmethod
    def from_json(cls, obj: Union[str, Mapping[str, Any]]) -> "ScoringJob":
        d = json.loads(obj) if isinstance(obj, str) else dict(obj)
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise BadInputError("job", f"unknown field(s) {', '.join(unknown)}")
        if "request" not in d:
            raise BadInputError("job", "has no 'request' (the proxies, space, seed, data and device)")
        return cls(**d)


@dataclasses.dataclass(frozen=True)
class CheckedJob:
    """A job that passed :func:`check_job`, with what checking it found out: the plan, the
    architectures to score (``(id, architecture)`` after ``limit`` and ``shard``), the name of
    the id field in records (``arch_id`` for a benchmark), the benchmark's entries (for its
    ground truth), the worker processes, the shard, the budget, the store path and, for an
    ``out`` file being resumed, the ids it already holds."""

    job: ScoringJob
    plan: Optional[ScoringPlan]  # None only for a job whose space comes with its candidates
    items: Tuple[Tuple[Any, Any], ...] = ()
    id_field: str = "id"
    entries: Tuple[Any, ...] = ()
    workers: int = 1
    shard: Optional[Tuple[int, int]] = None
    budget: SizeBudget = SizeBudget()
    store_path: Optional[str] = None
    cost_request: Optional[Mapping[str, Any]] = None  # the measured costs (names, row, threads, limits)
    done: frozenset = frozenset()
    notes: Tuple[str, ...] = ()
    n_before_shard: int = 0

    @property
    def todo(self) -> List[Tuple[Any, Any]]:
        """The items the output file does not hold yet (all of them without an ``out``)."""
        return [(i, a) for i, a in self.items if json.dumps(i) not in self.done]


# -- the checks ----------------------------------------------------------------------------------
def check_job(job: Union[ScoringJob, Mapping[str, Any], str], *, need_architectures: bool = True,
              batch: Any = None) -> CheckedJob:
    """Check every field of ``job`` and return it checked; :class:`BadInputError` naming the
    first bad field otherwise.  Nothing is scored and no model is built, except one model of a
    ``models`` job (what a model offers is read from the model itself).

    ``need_architectures=False``: a job without a source is fine (front ends that score
    candidates one at a time, :func:`nni_zerocost.runner.score_one`).  ``batch``: a ready batch
    object instead of the request's data (a NASLib data loader's batch); it is no JSON, so it
    cannot travel: such a job scores in this process (``workers`` 1, no Ray)."""
    if not isinstance(job, ScoringJob):
        job = ScoringJob.from_json(job)
    _load_plugins(job.plugins)
    workers = _check_execution(job)
    budget = _check_budget(job)
    costs = _check_costs(job)
    source = job.source
    if source is not None and "+" in source:
        a, b = source.split("+")[:2]
        raise BadInputError(a, f"give one thing to score, not {arg(a)} and {arg(b)} together")
    if source is None and need_architectures:
        raise BadInputError("space", f"needs what to score: {arg('benchmark')}, {arg('cells')}, {arg('sample')} "
                                     f"or {arg('model')}")
    _check_source_fields(job, source)
    out = _check_output_path("out", job.out)
    store_path = _check_store(job.store)
    from .plan import check_request, make_plan

    request = job.request
    if source == "models" and request.space is None:
        request = request.replace(space="model")
    if request.space is None and source == "benchmark":
        request = request.replace(space=_benchmark(job.benchmark).space)
    if request.space is None and source is None:
        # the NNI adapters learn the space from their first candidate: what any space would take
        check_request(request)
        return CheckedJob(job, None, workers=1 if workers == "auto" else int(workers), budget=budget,
                          store_path=store_path, cost_request=costs)
    if batch is not None and (job.ray is not None or workers not in ("auto", 1)):
        raise BadInputError("workers" if job.ray is None else "ray", "a ready batch object scores in this process "
                                                                     "only; give the data as a corpus path to spread "
                                                                     "the work")
    plan = make_plan(request, batch=batch, remote_gpus=job.gpus_per_task is not None)
    budget_space_check(plan, budget)
    items, id_field, entries = _items(job, source, plan)
    n_before = len(items)
    shard = _parse_shard(job.shard)
    if shard is not None:
        k, n = shard
        items = [item for i, item in enumerate(items) if i % n == k - 1]
    if source == "models" and items:  # what a model offers is read from the model: the first one, now
        try:
            plan.check_applies_to(plan.parse(items[0][1]))
        except InvalidArchitectureError as e:
            raise BadInputError("model", e.problem, repr(items[0][1]["factory"])) from None
    if batch is not None or job.ray is not None or (source is None and workers == "auto"):
        workers = 1  # one at a time here; Ray places its own tasks
    elif source is not None:
        from .threads import resolve_workers

        workers = resolve_workers(workers, len(items))
    done: frozenset = frozenset()
    notes: Tuple[str, ...] = ()
    if costs is not None and "latency_ms" in costs["names"]:
        _check_latency_cores(job, workers)
    if out is not None and job.resume:
        from .score_file import resume_output

        got, found = resume_output(out, plan, items, id_field)
        done, notes = frozenset(got), tuple(found)
    return CheckedJob(job, plan, tuple(items), id_field, tuple(entries), int(workers), shard, budget, store_path,
                      costs, done, notes, n_before)


def _load_plugins(modules: Sequence[str]) -> None:
    from .plugins import load_plugin

    for module in modules:
        load_plugin(module)


def _check_count(field: str, value: Any, minimum: int = 1) -> int:
    """A count (workers, sample, limit, budget, top): an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise BadInputError(field, f"must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise BadInputError(field, f"must be at least {minimum}, got {value!r}")
    return int(value)


def _check_workers(workers: Any) -> Union[int, str]:
    if isinstance(workers, str):
        if workers.strip().lower() == "auto":
            return "auto"
        try:
            workers = int(workers)
        except ValueError:
            raise BadInputError("workers", f"must be 'auto' or an integer >= 1, got {workers!r}") from None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise BadInputError("workers", f"must be 'auto' or an integer >= 1, got {workers!r}")
    return workers


def _check_execution(job: ScoringJob) -> Union[int, str]:
    """Where the work runs: workers, threads, Ray, the GPU share of a Ray task, the shard."""
    workers = _check_workers(job.workers)
    if job.threads is not None:
        _check_count("threads", job.threads)
    if job.ray is not None:
        if not isinstance(job.ray, str) or not job.ray.strip():
            raise BadInputError("ray", "must be 'local', 'auto' or a cluster address (ray://host:10001)", repr(job.ray))
        if workers not in ("auto", 1):
            raise BadInputError("workers", f"does not apply to {arg('ray')} (Ray places one task per architecture on "
                                           "the cluster's cores)", repr(job.workers))
    if job.gpus_per_task is not None:
        if job.ray is None:
            raise BadInputError("gpus_per_task", f"applies to Ray tasks only (give {arg('ray')} too)")
        g = job.gpus_per_task
        ok = isinstance(g, numbers.Real) and not isinstance(g, bool) and math.isfinite(float(g)) and \
            (0 < float(g) <= 1 or (float(g) > 1 and float(g).is_integer()))
        if not ok:  # 0 and negative counts are no request
            raise BadInputError("gpus_per_task", "must be a fraction in (0, 1] or a whole number of GPUs", repr(g))
        if job.request.device not in ("auto", "cuda"):
            raise BadInputError("device", f"{arg('gpus_per_task')} scores on the GPU Ray gives each task: leave "
                                          f"{arg('device')} out or say cuda", repr(job.request.device))
    _parse_shard(job.shard)
    return workers


def _parse_shard(text: Optional[str]) -> Optional[Tuple[int, int]]:
    """``"K/N"`` as ``(K, N)`` with 1 <= K <= N."""
    if text is None:
        return None
    try:
        k, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise BadInputError("shard", "must be K/N, e.g. 3/8 for the third of eight shards", repr(text)) from None
    if not 1 <= k <= n:
        raise BadInputError("shard", f"K/N needs 1 <= K <= N, got {k}/{n}", repr(text))
    return k, n


def _check_budget(job: ScoringJob) -> SizeBudget:
    for field in BUDGET_FIELDS:
        v = getattr(job, field)
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v <= 0):
            raise BadInputError(field, f"must be a positive number, got {v!r}")
    return SizeBudget(**{f: None if getattr(job, f) is None else float(getattr(job, f)) for f in BUDGET_FIELDS})


#: measured budgets and the cost each bounds
MEASURED_BUDGETS = {"max_latency_ms": "latency_ms", "max_memory_mb": "peak_memory_mb"}


def _check_costs(job: ScoringJob) -> Optional[Dict[str, Any]]:
    """The costs each record reports and the measured budgets: the measurement request the
    runner sends where the work runs (None when nothing is measured or counted)."""
    from .costs import list_costs

    for name in job.costs:
        if name not in list_costs():
            raise BadInputError("cost", f"unknown cost{suggest(str(name), list_costs())}; valid: {', '.join(list_costs())}",
                                repr(name))
    for field in ("cost_seq_len", "max_layers"):
        if getattr(job, field) is not None:
            _check_count(field, getattr(job, field))
    _check_count("cost_threads", job.cost_threads)
    limits = {}
    for field, cost in MEASURED_BUDGETS.items():
        v = getattr(job, field)
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v <= 0:
                raise BadInputError(field, f"must be a positive number, got {v!r}")
            limits[cost] = float(v)
    names = list(dict.fromkeys([*job.costs, *limits]))
    if not names:
        return None
    measured = [n for n in names if n in MEASURED_BUDGETS.values()]
    return {"names": names, "measured": measured, "seq_len": job.cost_seq_len, "threads": job.cost_threads,
            "limits": limits}


def _check_latency_cores(job: ScoringJob, workers: int) -> None:
    """A latency measured by more threads than the machine has cores times the contention,
    not the model: refused in one line."""
    from .threads import usable_cpus

    cores = usable_cpus()
    if job.ray is not None:
        return  # Ray places each task on a node with the CPUs it asks for
    if job.cost_threads > cores:
        raise BadInputError("cost_threads", f"{job.cost_threads} measuring threads exceed the {cores} usable cores")
    if int(workers) * job.cost_threads > cores:
        raise BadInputError("workers", f"measuring latency in {workers} processes x {job.cost_threads} thread(s) needs "
                                       f"{int(workers) * job.cost_threads} cores, this machine has {cores}: the timings "
                                       f"would measure the contention; use {arg('workers')} "
                                       f"{max(1, cores // job.cost_threads)} or fewer", repr(job.workers))


def budget_space_check(plan: ScoringPlan, budget: SizeBudget) -> None:
    """A budget on a size the space does not count is refused (before any work)."""
    sp = plan.search_space
    if budget.max_flops is None and budget.max_nonembedding_params is None:
        return
    arch = sp.smoke_architecture()
    if budget.max_layers is not None and sp.layer_count(arch) is None:
        raise BadInputError("max_layers", f"the {plan.space!r} space does not count layers")
    if budget.max_flops is not None and sp.flops(arch) is None:
        raise BadInputError("max_flops", f"the {plan.space!r} space does not count FLOPs; use max_params")
    if budget.max_nonembedding_params is not None and sp.nonembedding_param_count(arch) is None:
        raise BadInputError("max_nonembedding_params", f"the {plan.space!r} space does not count non-embedding "
                                                       "parameters; use max_params")


def _check_source_fields(job: ScoringJob, source: Optional[str]) -> None:
    if job.sample is not None:
        _check_count("sample", job.sample)
        if job.limit is not None:
            raise BadInputError("limit", f"does not apply to {arg('sample')} (ask for fewer samples instead)")
    if job.limit is not None:
        _check_count("limit", job.limit)
        if source not in ("benchmark", "cells", "architectures", "models"):
            raise BadInputError("limit", "applies to a benchmark or a cells file")
    if job.all_cells and source != "benchmark":
        raise BadInputError("all_cells", "applies to a benchmark only")
    if job.cells is not None and Path(job.cells).is_dir():
        raise BadInputError("cells", "is a folder; give a JSONL file", repr(job.cells))
    if job.cells is not None and not Path(job.cells).is_file():
        raise BadInputError("cells", "no such file (a JSONL file of {\"id\": ..., \"arch\": ...} lines)",
                            repr(job.cells))
    if source == "models":
        for m in job.models:
            if not isinstance(m, Mapping) or not isinstance(m.get("factory"), str) or \
                    set(m) - {"factory", "kwargs", "id"}:
                raise BadInputError("model", 'each model is {"factory": "pkg.module:function", "kwargs": {...}}',
                                    repr(m))


def _check_output_path(field: str, value: Optional[str], folder: bool = False) -> Optional[Path]:
    """An output path, checked before any work.  ``folder``: a folder the command fills (created
    if missing); otherwise a file.  Its folder must exist or lie inside the current folder
    (where missing folders are created), so a typo such as ``/nonexistent/o.jsonl`` is refused
    instead of creating folders elsewhere."""
    if value is None:
        return None
    p = Path(value).expanduser()
    if folder and p.exists() and not p.is_dir():
        raise BadInputError(field, "is a file; give a folder", repr(value))
    if not folder and p.is_dir():
        raise BadInputError(field, "is a folder; give a file name in it", repr(value))
    parent = p.absolute().parent
    if not parent.is_dir():
        missing = parent
        while not missing.parent.is_dir() and missing.parent != missing:
            missing = missing.parent
        if missing.exists():
            raise BadInputError(field, f"{missing} is a file, not a folder", repr(value))
        try:
            missing.resolve().relative_to(Path.cwd().resolve())
        except ValueError:
            raise BadInputError(field, f"folder {missing} does not exist (nni-zerocost creates missing folders "
                                       "only inside the current folder)", repr(value)) from None
    return p


def check_output_folder(field: str, value: Optional[str]) -> Optional[Path]:
    """An output folder a command fills (``search --out DIR``, ``--plot DIR``)."""
    return _check_output_path(field, value, folder=True)


def check_output_file(field: str, value: Optional[str], formats: Mapping[str, str] = {}) -> Optional[Path]:
    """An output file of a command (``--report FILE.md``); ``formats``: the suffixes it may have,
    with what each writes (``{".md": "Markdown"}``)."""
    p = _check_output_path(field, value)
    if p is not None and formats and p.suffix.lower() not in formats:
        shown = " or ".join(f"{what} ({suffix})" for suffix, what in formats.items())
        raise BadInputError(field, f"writes {shown}, not {p.suffix or 'a file without suffix'}", repr(value))
    return p


def _check_store(store: Optional[str]) -> Optional[str]:
    if store is None:
        return None
    if store == DEFAULT_STORE:
        from .store import default_store_path

        return str(default_store_path())
    _check_output_path("store", store)
    return str(Path(store).expanduser())


def check_counts(**counts: Any) -> Dict[str, int]:
    """Counts a front end takes beside the job (``top``, ``budget``): each an integer >= 1."""
    return {k: _check_count(k, v) for k, v in counts.items()}


def check_choice(field: str, value: Any, choices: Sequence[str]) -> str:
    """One of ``choices``, with a "did you mean" for a typo."""
    if value not in choices:
        raise BadInputError(field, f"unknown {field.replace('_', ' ')}{suggest(str(value), choices)}; valid: "
                                   f"{', '.join(choices)}", repr(value))
    return value


# -- what is scored ------------------------------------------------------------------------------
def _benchmark(name: str):
    from .benchmarks.base import get_benchmark, list_benchmarks
    from .errors import UnknownNameError

    try:
        return get_benchmark(name)
    except UnknownNameError:
        raise BadInputError("benchmark", f"unknown benchmark{suggest(name, list_benchmarks())}; valid: "
                                         f"{', '.join(list_benchmarks())}", repr(name)) from None


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word if n == 1 else word + 's'}"


def _check_limit(limit: Optional[int], available: int, what: str, which: str = "") -> None:
    """A limit above what exists is refused, saying how many exist (it would silently mean all)."""
    if limit is not None and limit > available:
        raise BadInputError("limit", f"{what} {_plural(available, 'architecture')}{which}; got {limit:,} "
                                     "(leave --limit out to use all of them)")


def _items(job: ScoringJob, source: Optional[str], plan: ScoringPlan):
    """``(items, id field, benchmark entries)`` of the job's source, ``limit`` applied."""
    if source is None:
        return [], "id", []
    if source == "benchmark":
        from .data import data_dir

        bench = _benchmark(job.benchmark)
        if bench.space != plan.space:
            raise BadInputError("benchmark", f"is for the {bench.space!r} space, not {plan.space!r}", repr(bench.name))
        entries = bench.load(data_dir(job.data_dir, bench))
        seed = job.request.seed
        if job.all_cells:
            from .benchmarks.extra import N_RUNS, select_all_cells

            if not getattr(bench, "has_runs", bench.name == "nasbench-nlp"):
                raise BadInputError("all_cells", f"applies to benchmarks with several training runs, not {bench.name}")
            entries = select_all_cells(entries, None, seed)
            _check_limit(job.limit, len(entries), f"{bench.name} has", f" with {N_RUNS} training runs")
            entries = select_all_cells(entries, job.limit, seed)
        else:
            from .benchmarks.study import select_entries

            entries = select_entries(entries, bench, None, seed)
            _check_limit(job.limit, len(entries), f"{bench.name} has", f" with a known {bench.primary}")
            entries = select_entries(entries, bench, job.limit, seed)
        return [(e.arch_id, e.arch) for e in entries], "arch_id", entries
    if source == "cells":
        items = list(read_cells(job.cells))
        if not items:
            raise BadInputError("cells", "holds no architectures (expected one JSON object per line: "
                                         '{"id": ..., "arch": ...})', repr(job.cells))
        _check_limit(job.limit, len(items), "the file has")
        return items[: job.limit] if job.limit is not None else items, "id", []
    if source == "sample":
        import numpy as np

        sp = plan.search_space
        if not sp.searchable:
            given = "".join(f" (give {arg(o)})" for o in sp.family_options())
            raise BadInputError("sample", f"the {plan.space!r} space has nothing to sample from{given}")
        rng = np.random.default_rng(job.request.seed)
        return [(i, sp.to_dict(sp.sample(rng))) for i in range(job.sample)], "id", []
    if source == "models":
        items = [(m.get("id", i), {"factory": m["factory"], "kwargs": dict(m.get("kwargs") or {})})
                 for i, m in enumerate(job.models)]
        _check_limit(job.limit, len(items), "the job has")
        return items[: job.limit] if job.limit is not None else items, "id", []
    items = [tuple(a) for a in job.architectures]
    if any(len(a) != 2 for a in items):
        raise BadInputError("architectures", "each is an [id, architecture] pair")
    _check_limit(job.limit, len(items), "the job has")
    return items[: job.limit] if job.limit is not None else items, "id", []


def read_cells(path: str):
    """``(id, architecture)`` per line of a JSONL file (``.gz`` too).  A line holds the
    architecture under ``arch``, ``recipe`` (NAS-Bench-NLP) or ``config`` (BERT, GPT-2, Hugging
    Face), and its id under ``id`` or ``arch_id`` (default: the line number).  An unreadable line
    becomes an :class:`InvalidArchitectureError` item carrying its line number, so the rest is
    still scored."""
    from .store import read_jsonl

    for lineno, obj in read_jsonl(path, on_error="yield"):
        if isinstance(obj, json.JSONDecodeError):
            yield f"line {lineno}", InvalidArchitectureError(f"line {lineno}: not a JSON object ({obj.msg})")
            continue
        arch = None
        if isinstance(obj, dict):
            arch = next((obj[k] for k in ("arch", "recipe", "config") if k in obj), None)
        if arch is None:
            yield (obj.get("id", obj.get("arch_id", f"line {lineno}")) if isinstance(obj, dict) else f"line {lineno}",
                   InvalidArchitectureError(f"line {lineno}: expected an object with 'id' and 'arch' (or 'recipe', "
                                            "'config')"))
        else:
            yield obj.get("id", obj.get("arch_id", lineno)), arch


__all__ = ["ScoringJob", "CheckedJob", "check_job", "check_output_folder", "check_output_file",
           "check_counts", "check_choice", "read_cells", "DEFAULT_STORE", "BUDGET_FIELDS", "SOURCES"]
