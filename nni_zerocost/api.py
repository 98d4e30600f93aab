"""The Python API: score one architecture or model, run a job, benchmark proxies, search a space.

Each function is a front end like the CLI's commands (which call these): it builds one job
(:class:`~nni_zerocost.job.ScoringJob`), checks it (:func:`~nni_zerocost.job.check_job`) and
hands it to the one runner (:func:`~nni_zerocost.runner.run`); the results come back as data.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from .job import CheckedJob, ScoringJob, check_job


class Scores(dict):
    """``{spec: ProxyResult}`` as :func:`score` and :func:`score_model` return it; ``costs``:
    ``{name: CostResult}`` of the costs asked for with ``costs=`` (empty when none were)."""

    def __init__(self, results: Mapping[str, Any], costs: Optional[Mapping[str, Any]] = None):
        super().__init__(results)
        self.costs: Dict[str, Any] = dict(costs or {})


def _cost_names(costs) -> List[str]:
    from .costs import get_cost

    names = [costs] if isinstance(costs, str) else list(costs or ())
    for name in names:
        get_cost(name)  # UnknownNameError naming the valid costs
    return list(dict.fromkeys(names))


def score(space: str, arch, proxies, *, batch=None, seed: int = 0, costs: Sequence[str] = (),
          cost_seq_len: Optional[int] = None, cost_threads: int = 1, **options) -> Scores:
    """Score one architecture of a registered space; returns ``{spec: ProxyResult}``.

    ``proxies`` is a name, a spec string like ``"hidden_covariance:layer=2"``, or a list;
    ``options`` are :func:`~nni_zerocost.make_plan`'s (``corpus``, ``device`` = "auto" | "cpu" |
    "cuda" | "cuda:N", and the space's context options such as ``init`` or ``as_trained``).
    ``costs``: names of :mod:`nni_zerocost.costs` (``latency_ms``, ``peak_memory_mb`` measured on
    the plan's device with a row of ``cost_seq_len`` tokens and ``cost_threads`` threads, as the
    CLI's ``--cost``; ``n_layers``, ``flops_per_token`` counted), returned as ``.costs``.
    The call runs under the thread policy the runner applies (:mod:`nni_zerocost.threads`), so
    its numbers are the CLI's bit for bit; torch's and BLAS's thread counts are put back after.
    Nothing is stored.
    """
    from .costs import CostResult, get_cost
    from .plan import make_plan
    from .threads import scoring_threads
    from .worker import counted_costs, measure_costs

    names = _cost_names(costs)
    plan = make_plan(space, proxies, seed=seed, batch=batch, **options)
    parsed = plan.parse(arch)
    with scoring_threads():
        results = plan.score(parsed)
    measured = [n for n in names if get_cost(n).kind == "measured"]
    found = {**counted_costs(plan, parsed, names),
             **(measure_costs(plan, parsed, measured, cost_seq_len, cost_threads) if measured else {})}
    return Scores(results, {n: CostResult(**found[n]) for n in names if n in found})


def list_proxies(target=None) -> List[str]:
    """Registered proxy names; with ``target`` (a space name, a scoring context, a set of
    capabilities, or your own ``torch.nn.Module`` model) only those that apply to it.  A model is
    read as :func:`score_model` reads it (on its default batch); one that cannot be read is
    refused with the :class:`~nni_zerocost.errors.BadInputError` saying why."""
    from .proxies.base import list_proxies as registered

    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and isinstance(target, torch.nn.Module):
        from .models import model_batch, model_context

        with model_context(target, model_batch(target, None)) as ctx:
            return registered(ctx)
    return registered(target)


def score_model(model, proxies, *, batch=None, seed: int = 0, device=None, dtype: Optional[str] = None,
                max_memory=None, progress: Optional[bool] = None, costs: Sequence[str] = (),
                cost_seq_len: Optional[int] = None, cost_threads: int = 1) -> Scores:
    """Score your own language model object; returns ``{spec: ProxyResult}`` like :func:`score`.

    ``model``: any ``torch.nn.Module`` that maps token ids ``(B, T)`` to logits (or an output
    with ``.logits``, or ``.last_hidden_state`` for an encoder): an ``nn.LSTM``/``nn.GRU``/
    ``nn.RNN`` LM, a Hugging Face model built from a config, torch transformer layers, or a model
    of a registered space.  The proxies that apply follow from what the model offers; one that
    does not apply is refused before any work, naming what the model lacks.  ``batch``: token
    ids ``(B, T)``, a corpus path (``.npy``/``.pt`` ids), ``(texts, tokenizer)``, or None (the
    embedded Zipf batch over the model's vocabulary).  ``seed`` seeds every random draw of the
    scoring (the model's weights are yours: to score many models reproducibly, seeded, in
    workers or with a store, give recipes to :func:`run` or ``score --model``).  ``device``:
    None = where the model is.  ``dtype``: ``"bfloat16"`` (or ``"float16"`` on CUDA) scores the
    model in that precision and gives it back with its own float32 weights; ``max_memory``
    (``"8GiB"`` or bytes; default: half the machine's memory, at most what is free) bounds the
    gradient pass, which splits a batch over it into row chunks (docs/your-own-model.md).
    ``progress``: a bar over the proxies on stderr (tqdm, as the
    runner's over architectures); None = only when stderr is a terminal.  ``costs``:
    ``latency_ms``, ``peak_memory_mb`` (measured on the model where it is, a row of
    ``cost_seq_len`` tokens, default its context) and ``n_layers`` (its repeated blocks),
    returned as ``.costs``; ``flops_per_token`` needs a space's count.
    """
    import sys

    from .costs import get_cost, measure, n_layers
    from .errors import BadInputError
    from .plan import make_model_plan
    from .threads import scoring_threads

    names = _cost_names(costs)
    if "flops_per_token" in names:
        raise BadInputError("costs", "flops_per_token is counted by a space from an architecture; for your own "
                                     "model give the count to nni_zerocost.costs.flops_per_token(model, count)")
    options = {k: v for k, v in (("dtype", dtype), ("max_memory", max_memory)) if v is not None}
    plan = make_model_plan(model, proxies, batch=batch, seed=seed, device=device, **options)
    if progress is None:
        progress = bool(getattr(sys.stderr, "isatty", lambda: False)())
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(plan.requests), desc=f"scoring {type(model).__name__}", unit="proxy",
                   dynamic_ncols=True, leave=False)
    try:
        with scoring_threads():  # as score(): the runner's thread policy for the call, put back after
            results = plan.score(plan.parse(model), progress=bar)
    finally:
        if bar is not None:
            bar.close()
    found = {}
    for name in names:
        if get_cost(name).kind == "measured":
            found[name] = measure(name, model, threads=cost_threads,
                                  **({} if cost_seq_len is None else {"seq_len": int(cost_seq_len)}))
        else:
            found[name] = n_layers(model)
    return Scores(results, found)


def run(job: Union[ScoringJob, CheckedJob, Mapping[str, Any]], *, progress: bool = False) -> Iterator:
    """Score a job's architectures (checking it first); yields one
    :class:`~nni_zerocost.runner.ArchRecord` per architecture, in input order."""
    from .runner import run as run_checked

    checked = job if isinstance(job, CheckedJob) else check_job(job)
    return run_checked(checked, progress=progress)


# -- benchmark -----------------------------------------------------------------------------------
@dataclasses.dataclass
class BenchmarkResult:
    """What :func:`benchmark` found: ``table`` (the correlations and everything the CLI prints,
    as a JSON-ready dict; ``format()`` gives the printed table), the benchmark's ``entries``
    scored, and each proxy spec's ``scores`` (sign-normalised, None = no score) and ``flags``."""

    table: Dict[str, Any]
    entries: List[Any]
    scores: Dict[str, List[Optional[float]]]
    flags: Dict[str, List[bool]]
    benchmark: Any

    def format(self) -> str:
        from .benchmarks.study import format_table

        return format_table(self.table)


def benchmark(name: str, proxies, *, rank_averages: Sequence[str] = (), progress: bool = False,
              **fields: Any) -> BenchmarkResult:
    """Score a benchmark's architectures and correlate each proxy with its ground truth.

    ``fields``: the job's (``limit``, ``all_cells``, ``data_dir``, ``workers``, ``threads``,
    ``ray``, ``store``, ...) and the request's (``seed``, ``corpus``, ``device``, the space's
    context options).  ``rank_averages``: ``"A+B"`` specs, each part one of ``proxies``: their
    label-free rank average is correlated too."""
    from .benchmarks.extra import augment
    from .benchmarks.study import study
    from .errors import BadInputError, arg, suggest
    from .runner import run as run_checked

    job = ScoringJob.of(proxies, None, benchmark=name, **fields)
    checked = check_job(job)
    plan = checked.plan
    for combo in rank_averages:
        parts = [c for c in combo.split("+") if c]
        if len(parts) < 2:
            raise BadInputError("rank_average", f"give 2 or more {arg('proxy')} specs joined by '+', e.g. "
                                                f"{'+'.join(list(plan.specs)[:2]) if len(plan.specs) > 1 else 'A+B'}",
                                repr(combo))
        for part in parts:
            if part not in plan.specs:
                raise BadInputError("rank_average", f"{part!r}{suggest(part, plan.specs)} is not one of the "
                                                    f"{arg('proxy')} specs ({', '.join(plan.specs)}); give each part "
                                                    f"with {arg('proxy')} too",
                                    repr(combo))
    bench = _bench(name)
    entries = list(checked.entries)
    scores: Dict[str, List[Optional[float]]] = {s: [] for s in plan.specs}
    seconds: Dict[str, List[Optional[float]]] = {s: [] for s in plan.specs}
    flags: Dict[str, List[bool]] = {s: [] for s in plan.specs}
    results = from_store = 0
    start = time.perf_counter()
    for rec in run_checked(checked, progress=progress, desc=bench.name):
        for s in plan.specs:
            scores[s].append(rec.scores.get(s))
            seconds[s].append(rec.proxy_seconds.get(s))
            flags[s].append(s in rec.flags)
        had = sum(r is not None for r in rec.results.values())
        results += had
        from_store += max(had - rec.computed, 0)
    wall = time.perf_counter() - start
    sizes, measure = size_of(plan.search_space, [e.arch for e in entries], plan.context_options)
    table = study(bench, entries, scores, seconds, flags, sizes)
    table["size_measure"] = measure
    augment(table, bench, entries, scores, all_cells=job.all_cells, rank_averages=rank_averages, sizes=sizes)
    table["device"] = plan.device_name
    table["workers"] = "Ray" if job.ray else checked.workers  # the processes that scored
    table["wall_seconds"] = round(wall, 3)  # the scoring loop: worker start-up included, data loading not
    # s/arch is each result's model work as recorded when it was computed; say how much of it the
    # store answered (a warm run's wall time is then far below s/arch x architectures)
    table["results"] = results
    table["results_from_store"] = from_store
    return BenchmarkResult(table, entries, scores, flags, bench)


def _bench(name: str):
    from .benchmarks.base import get_benchmark

    return get_benchmark(name)


def size_of(space, archs, options):
    """``(sizes, what they count)`` for the within-budget ranking: the non-embedding parameters
    where the space counts them (what grows with depth and width, and what the strongest size
    baselines measure), else every parameter; counted from the architectures, never built."""
    sizes = [space.nonembedding_param_count(a, **options) for a in archs]
    if all(n is not None for n in sizes):
        return sizes, "non-embedding parameters"
    return [space.param_count(a, **options) for a in archs], "parameters"


# -- search --------------------------------------------------------------------------------------
#: the hosts that run a search's loop (``search(engine=...)``, ``search --engine``)
ENGINES = ("nni", "optuna")


def search(space: str, proxy: str, *, strategy: Optional[str] = None, budget: int = 50, top: int = 5,
           extra_proxies: Sequence[str] = (), pareto: bool = False, pareto_against: Optional[str] = None,
           experiment_dir: Optional[str] = None, on_candidate: Optional[Callable[[Dict[str, Any]], None]] = None,
           engine: str = "nni", sampler: Optional[str] = None, storage: Optional[str] = None,
           study_name: Optional[str] = None,
           **fields: Any):
    """Search a registered space for the architectures the proxy scores best; no training.

    ``engine``: ``nni`` (the default) or ``optuna``.  NNI: ``strategy`` ``random``,
    ``evolution`` (the default), ``tpe`` (NNI strategies on NNI's sequential engine) or
    ``ranking`` (score ``budget`` candidates, keep the best); ``experiment_dir``: NNI's own
    experiment files (replaced).  Optuna: ``sampler`` ``tpe`` (the default), ``nsga2`` or
    ``random``; ``storage`` (a database URL such as ``sqlite:///study.db``, or a journal file)
    and ``study_name`` (default ``<space>-<proxy>``) keep the study, so a re-run continues it and
    several processes share it; ``pareto`` makes it multi-objective (the proxy against size).
    ``budget``: candidates scored (Optuna: trials this run adds); ``top``: how many to keep;
    ``fields``: the job's (``store``, ``workers`` for ranking,
    ``threads``, ``max_params``, ``max_nonembedding_params``, ``max_flops``, ``plugins``) and the
    request's (``seed`` seeds the strategy and the weights, ``corpus``, ``device``, context
    options).  ``on_candidate(record)`` sees each candidate's record as it is scored.  Returns a
    :class:`~nni_zerocost.search_report.SearchResult` (``write(folder)`` writes the report)."""
    from .errors import BadInputError, arg
    from .job import check_choice, check_counts
    from .nas.search import STRATEGIES
    from .optuna import SAMPLERS
    from .search_report import SearchResult, candidate_record

    from .search_report import COST_MEASURES, SIZE_MEASURES

    job = ScoringJob.of([proxy, *extra_proxies], space, **fields)
    counts = check_counts(budget=budget, top=top)
    check_choice("engine", engine, ENGINES)
    if pareto_against is not None:
        check_choice("pareto_against", pareto_against, SIZE_MEASURES + COST_MEASURES)
        if pareto_against in COST_MEASURES and pareto_against not in job.costs:  # measured for every candidate
            job = job.replace(costs=job.costs + (pareto_against,))
    if engine == "optuna":
        if strategy is not None or experiment_dir is not None:
            field = "strategy" if strategy is not None else "experiment_dir"
            raise BadInputError(field, f"is NNI's; the Optuna engine takes {arg('sampler')} ({', '.join(SAMPLERS)})",
                                repr(strategy if strategy is not None else experiment_dir))
        sampler = check_choice("sampler", "tpe" if sampler is None else sampler, SAMPLERS)
        if job.workers not in ("auto", 1):
            raise BadInputError("workers", f"does not apply to the Optuna engine: start several processes on one "
                                           f"{arg('storage')} to share a study", repr(job.workers))
    else:
        for field, value in (("sampler", sampler), ("storage", storage), ("study_name", study_name)):
            if value is not None:
                raise BadInputError(field, f"applies to {arg('engine', 'optuna')} only (NNI's search takes "
                                           f"{arg('strategy')})", repr(value))
        strategy = check_choice("strategy", "evolution" if strategy is None else strategy, STRATEGIES)
        if job.workers not in ("auto", 1) and strategy != "ranking":
            raise BadInputError("workers", "applies to the 'ranking' strategy only (NNI's sequential engine scores "
                                           "the other strategies' candidates one at a time)", repr(job.workers))
    checked = check_job(job, need_architectures=False)
    sp = checked.plan.search_space
    if not sp.searchable:
        if sp.family_options():  # a space that searches the family it is given
            raise BadInputError("space", f"the {space!r} space searches a family you describe: give "
                                         f"{' or '.join(arg(o) for o in sp.family_options())}", repr(space))
        raise BadInputError("space", f"the {space!r} space has no choices to search; score its architectures "
                                     "with 'score' instead", repr(space))
    from .threads import pinned_for_run

    if engine == "optuna":
        try:
            from .optuna.search import search_checked as search_optuna
        except ImportError as e:  # pragma: no cover
            from .errors import ZeroCostError

            raise ZeroCostError(f"--engine optuna runs on Optuna: pip install 'nni-zerocost[optuna]' ({e})") from None
        with pinned_for_run(job.threads):
            return search_optuna(checked, sampler, counts["budget"], counts["top"], pareto=pareto,
                                 pareto_against=pareto_against, storage=storage,
                                 study_name=study_name, on_candidate=on_candidate)
    try:
        from .nas.search import search_checked
    except ImportError as e:  # pragma: no cover
        from .errors import ZeroCostError

        raise ZeroCostError(f"search runs on NNI: pip install 'nni-zerocost[nni]' ({e})") from None
    candidates: List[Dict[str, Any]] = []

    def on_trial(arch, metrics):
        rec = candidate_record(checked, len(candidates), arch, metrics)
        candidates.append(rec)
        if on_candidate is not None:
            on_candidate(rec)

    if experiment_dir is not None:  # one NNI experiment per folder: a re-run replaces it
        import shutil
        from pathlib import Path

        shutil.rmtree(experiment_dir, ignore_errors=True)
        Path(experiment_dir).parent.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    with pinned_for_run(job.threads):  # this process and every process NNI starts from it, for the search
        search_checked(checked, strategy, counts["budget"], on_trial=on_trial, experiment_dir=experiment_dir)
    elapsed = time.perf_counter() - start
    return SearchResult(checked, strategy, counts["budget"], counts["top"], pareto, candidates, elapsed,
                        pareto_against=pareto_against)


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)
