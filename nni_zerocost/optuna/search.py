"""The search behind ``nni-zerocost search --engine optuna``: one study, new or continued, and
the same candidate records and report as NNI's search (:mod:`nni_zerocost.search_report`).

A study remembers the search that made it (user attribute ``nni_zerocost``: the scoring request,
the size budget and the objectives), so a study is continued only by the same search and never
mixes scores of different requests.  ``budget`` is the trials this run adds: the same command
run twice on one storage gives one study with twice the trials, and several processes started
on one storage share the study (Optuna's way to run in parallel).
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, List, Optional

import optuna

from ..errors import BadInputError, arg
from ..search_report import SearchResult, candidate_record
from .objective import ZeroCostObjective

#: the study's user attribute that says which search made it
IDENTITY = "nni_zerocost"


def make_sampler(name: str, seed: int, budget: int):
    """The Optuna sampler of a ``--sampler`` name, with the NNI strategies' rules for their
    like: TPE starts with :func:`~nni_zerocost.nas.search.tpe_startup` random trials, NSGA-II's
    population is :func:`~nni_zerocost.nas.search.evolution_population`."""
    from ..nas.search import evolution_population, tpe_startup

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=tpe_startup(budget))
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=evolution_population(budget))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    from ..errors import UnknownNameError
    from . import SAMPLERS

    raise UnknownNameError("sampler", name, list(SAMPLERS))


def _storage(url: Optional[str]):
    """Optuna's storage of a ``--storage``: a database URL (``sqlite:///study.db``, RDB) or the path
    of a journal file (``JournalFileBackend``); None: in memory."""
    if url is None:
        return None
    try:
        if "://" in url:
            # several processes write one SQLite file: wait for its lock rather than fail at 5 s
            kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url))
    except Exception as e:  # a bad URL, a missing driver, a folder that is not there: said in one line
        raise BadInputError("storage", f"cannot be opened ({type(e).__name__}: {str(e).splitlines()[0]})",
                            repr(url)) from None


def _identity(checked, directions: List[str], cost: Optional[str]) -> Dict[str, Any]:
    from ..score_file import request_of

    return json.loads(json.dumps({"request": request_of(checked.plan), "budget": checked.budget.limits(),
                                  "objectives": [f"{directions[0]} {checked.plan.specs[0]}"] +
                                                ([f"{directions[1]} {cost}"] if cost else [])}))


def open_study(checked, *, directions: List[str], cost: Optional[str] = None, storage: Optional[str] = None,
               study_name: Optional[str] = None):
    """The study of a checked search job, created or continued (see the module docstring);
    ``study_name`` defaults to ``<space>-<proxy spec>``.  One of another search is refused
    (``BadInputError`` naming ``study_name``, saying what differs)."""
    from ..score_file import request_diff

    name = study_name or f"{checked.plan.space}-{checked.plan.specs[0]}"
    study = optuna.create_study(storage=_storage(storage), study_name=name, directions=directions,
                                load_if_exists=True)
    mine = _identity(checked, directions, cost)
    had = study.user_attrs.get(IDENTITY)
    if had is None and study.trials:
        raise BadInputError("study_name", f"holds a study that nni-zerocost did not make; give another "
                                          f"{arg('study_name')}", repr(name))
    if had is None:
        study.set_user_attr(IDENTITY, mine)
        return study
    diff = [d.replace(" in the file, ", " in the study, ") for d in request_diff(had["request"], mine["request"])]
    for what in ("budget", "objectives"):
        if had.get(what) != mine[what]:
            diff.append(f"{'size budget' if what == 'budget' else what}: {had.get(what) or 'none'} in the study, "
                        f"{mine[what] or 'none'} asked")
    if diff:
        raise BadInputError("study_name", f"holds a study of another search ({'; '.join(diff)}); give another "
                                          f"{arg('study_name')} or {arg('storage')}", repr(name))
    return study


def candidate_of(checked, trial) -> Optional[Dict[str, Any]]:
    """The search's candidate record of a finished trial (None for a trial this package did not
    score, e.g. one your own objective ran)."""
    metrics, arch = trial.user_attrs.get("metrics"), trial.user_attrs.get("arch")
    if metrics is None or arch is None:
        return None
    return candidate_record(checked, trial.number, checked.plan.parse(arch), metrics)


def candidates_of(study, checked) -> List[Dict[str, Any]]:
    """Every scored trial's candidate record, by trial number (every process's, every run's)."""
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    found = (candidate_of(checked, t) for t in study.get_trials(deepcopy=False, states=states))
    return [rec for rec in found if rec is not None]


def search_checked(checked, sampler: str, budget: int, top: int, *, pareto: bool = False,
                   pareto_against: Optional[str] = None, storage: Optional[str] = None, study_name: Optional[str] = None,
                   on_candidate: Optional[Callable[[Dict[str, Any]], None]] = None) -> SearchResult:
    """:func:`nni_zerocost.search` on Optuna: ``budget`` trials of ``sampler`` added to the study,
    single-objective, or with ``pareto`` the proxy against the size the report's front counts;
    the result holds every scored trial of the study.  The sampler's seed is the job's seed plus
    the trials the study held, so a continued study draws anew and a run is reproducible."""
    result = SearchResult(checked, sampler, budget, top, pareto, [], 0.0, host="Optuna",
                          pareto_against=pareto_against)
    objective = ZeroCostObjective.of_checked(checked, cost=result.size_key if pareto else None)

    def report(study, trial):
        rec = candidate_of(checked, trial)
        if rec is not None and on_candidate is not None:
            on_candidate(rec)

    start = time.perf_counter()
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # Optuna logs the study and every trial at INFO
    try:
        study = open_study(checked, directions=objective.directions, cost=objective.cost, storage=storage,
                           study_name=study_name)
        study.sampler = make_sampler(sampler, checked.plan.seed + len(study.trials), budget)
        study.optimize(objective, n_trials=budget, callbacks=[report])
    finally:
        optuna.logging.set_verbosity(verbosity)
    result.candidates = candidates_of(study, checked)
    result.seconds = time.perf_counter() - start
    where = f"in {storage}: open it with `optuna-dashboard {storage}`" if storage else "in memory"
    result.host_detail = (f"{type(study.sampler).__name__}; study {study.study_name!r}, {len(study.trials)} trials, "
                          f"{where}")
    return result
