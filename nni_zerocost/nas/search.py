"""One-call zero-cost search on NNI's sequential (in-process) engine, for the CLI and scripts."""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

STRATEGIES = ("random", "evolution", "tpe", "ranking")


def evolution_population(budget: int) -> int:
    """The population of an evolutionary search of ``budget`` candidates (NNI's evolution,
    Optuna's NSGA-II): a quarter of the budget, 4 to 50, so that a few generations fit in it."""
    return min(max(budget // 4, 4), 50)


def tpe_startup(budget: int) -> int:
    """The random candidates before TPE models the rest (NNI's TPE, Optuna's): a quarter of the
    budget, 5 to 20."""
    return min(max(budget // 4, 5), 20)


def make_strategy(name: str, budget: int, strategy_seed: int = 0, **proxy_options):
    """The NNI strategy behind a ``run_search`` strategy name.

    ``evolution``: RegularizedEvolution with a population of ``clip(budget // 4, 4, 50)`` and
    tournaments of a quarter of it; ``tpe``: TPE maximising, ``n_startup_jobs =
    clip(budget // 4, 5, 20)`` random candidates first; ``ranking``: :class:`ProxyRanking` of
    ``budget`` candidates scored in-process, the single best re-evaluated through the engine.
    """
    from nni.nas.strategy import Random, RegularizedEvolution

    from .strategies import TPE, ProxyRanking

    seed = strategy_seed
    if name == "random":
        return Random(seed=seed)
    if name == "evolution":
        population = evolution_population(budget)
        return RegularizedEvolution(population_size=population, sample_size=max(2, population // 4), seed=seed)
    if name == "tpe":
        return TPE(seed=seed, tpe_args={"n_startup_jobs": tpe_startup(budget)})
    if name == "ranking":
        return ProxyRanking(n_candidates=budget, top_k=1, **{"seed": seed, **proxy_options})
    from ..errors import UnknownNameError

    raise UnknownNameError("search strategy", name, list(STRATEGIES))


def run_search(
    space: str,
    proxy: str = "hidden_covariance",
    strategy: str = "evolution",
    budget: int = 50,
    *,
    extra_proxies: Sequence[str] = (),
    on_trial: Optional[Callable[[Any, Dict[str, Any]], None]] = None,
    experiment_dir: Optional[str] = None,
    store: Optional[str] = None,
    **fields: Any,
) -> List[Tuple[Any, Dict[str, Any]]]:
    """Search a registered ``space`` by ``proxy`` with an NNI strategy; no training.

    ``budget`` is the number of candidates scored (NNI trials; for ``ranking``, candidates
    scored in-process).  ``fields``: the job's and the request's -- ``seed`` (seeds both the
    strategy and the weight initialisation), ``corpus``/``batch_size``/``seq_len`` (the input
    batch; default: the space's embedded batch), ``device``, the space's context options,
    ``workers`` (processes scoring ``ranking``'s candidates; the other strategies run on NNI's
    sequential engine, one candidate at a time), ``max_params`` / ``max_nonembedding_params`` /
    ``max_flops`` (a size budget: candidates over it cost no model work; ``ranking`` never draws
    them, the other strategies get them reported as ``over_budget`` with no score, so they rank
    last).  ``on_trial(arch, metrics)`` is called as each candidate is scored.  NNI writes its
    logs and checkpoint under ``experiment_dir`` (default: NNI's ``~/nni-experiments``).
    ``store``: a results-store path; candidates already in it cost no model work.

    Returns ``[(architecture, metrics), ...]`` in evaluation order (for ``ranking``: every
    scored candidate, best first), where ``metrics`` is the dict the evaluator reported:
    ``default`` (main proxy, higher is better, :data:`~nni_zerocost.NO_SCORE` when it has no value),
    one entry per proxy spec and ``flag``.
    """
    from ..job import ScoringJob, check_choice, check_counts, check_job

    job = ScoringJob.of([proxy, *extra_proxies], space, store=store, **fields)
    checked = check_job(job, need_architectures=False)  # the whole job is checked before NNI starts
    check_choice("strategy", strategy, STRATEGIES)
    check_counts(budget=budget)
    if job.workers not in ("auto", 1) and strategy != "ranking":
        from ..errors import BadInputError

        raise BadInputError("workers", "applies to the 'ranking' strategy only (NNI's sequential engine scores "
                                       "the other strategies' candidates one at a time)", repr(job.workers))
    return search_checked(checked, strategy, budget, on_trial=on_trial, experiment_dir=experiment_dir)


def search_checked(checked, strategy: str, budget: int, *, on_trial=None,
                   experiment_dir: Optional[str] = None) -> List[Tuple[Any, Dict[str, Any]]]:
    """:func:`run_search` of a checked job (:func:`nni_zerocost.search`)."""
    import warnings

    with warnings.catch_warnings():
        # NNI 3.0 warns on every import/trace with torch 2.x (torch.nn.Buffer, non-Module traces): harmless,
        # and silenced only while NNI is imported and the experiment runs
        warnings.filterwarnings("ignore", message=r".*(nn\.Buffer|not a nn\.Module).*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        return _search(checked, strategy, budget, on_trial, experiment_dir)


def _search(checked, strategy: str, budget: int, on_trial, experiment_dir):
    from nni.nas.experiment import NasExperiment, NasExperimentConfig
    from nni.nas.strategy.middleware import Chain

    from .evaluator import ZeroCostEvaluator
    from .spaces import model_space
    from .strategies import TrialRecorder

    job, plan = checked.job, checked.plan
    space, seed = plan.space, plan.seed
    fields = job.fields()
    for k in ("store", "workers"):
        fields.pop(k, None)
    fields.update(plan.search_space.space_options)  # a family's file read in: nothing to find elsewhere
    proxy, extra_proxies = job.request.proxies[0], tuple(job.request.proxies[1:])
    store = checked.store_path
    ms = model_space(space, **plan.search_space.space_options)  # the family searched (files read in)
    codec = ms.codec

    def report(sample, metrics):
        if on_trial is not None and strategy != "ranking":
            on_trial(codec.decode(sample), metrics)

    recorder = TrialRecorder(report)
    if strategy == "ranking":
        main = make_strategy(strategy, budget, seed, proxy=proxy, extra_proxies=extra_proxies, store=store,
                             workers=job.workers, **fields)
    else:
        main = make_strategy(strategy, budget, seed)
    config = NasExperimentConfig("sequential", "simplified")
    config.max_trial_number = 1 if strategy == "ranking" else budget
    if experiment_dir is not None:
        config.experiment_working_directory = str(experiment_dir)
    evaluator = ZeroCostEvaluator(proxy, extra_proxies=extra_proxies, store=store, **fields)
    nni_logger = logging.getLogger("nni")
    level = nni_logger.level
    nni_logger.setLevel(logging.WARNING)  # NNI logs every candidate at INFO
    try:
        experiment = NasExperiment(ms, evaluator, Chain(main, recorder), config)
        try:
            experiment.run()
        finally:
            experiment.stop()
    finally:
        nni_logger.setLevel(level)
    if strategy == "ranking":
        out = [(codec.decode(sample), metrics) for sample, metrics in main.ranking or []]
        if on_trial is not None:
            for arch, metrics in out:
                on_trial(arch, metrics)
        return out
    return [(codec.decode(sample), metrics) for sample, metrics in recorder.records]
