"""One-call zero-cost search on NNI's sequential (in-process) engine, for the CLI and scripts."""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

STRATEGIES = ("random", "evolution", "tpe", "ranking")


def check_search(space: str, proxy: str, strategy: str, budget: int, *, extra_proxies: Sequence[str] = (),
                 workers: int = 1, **request_fields: Any):
    """The checked door of a search (no NNI import, no work): the scoring request through
    :func:`~nni_zerocost.make_plan`, the strategy, budget, workers and size budget; returns the
    plan."""
    from ..budget import SizeBudget
    from ..errors import BadInputError
    from ..plan import ScoringRequest, check_count, make_plan

    request_fields = dict(request_fields)
    SizeBudget.pop_from(request_fields).check_space(space)
    plan = make_plan(ScoringRequest.of([proxy, *extra_proxies], space, **request_fields))
    if strategy not in STRATEGIES:
        from ..errors import suggest

        raise BadInputError("strategy", f"unknown strategy{suggest(strategy, STRATEGIES)}; valid: "
                                        f"{', '.join(STRATEGIES)}", repr(strategy))
    from ..threads import check_workers

    check_count("budget", budget)
    workers = check_workers(workers)
    if workers not in (1, "auto") and strategy != "ranking":
        raise BadInputError("workers", "applies to the 'ranking' strategy only (NNI's sequential engine scores "
                                       "the other strategies' candidates one at a time)", repr(workers))
    return plan


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
        population = min(max(budget // 4, 4), 50)
        return RegularizedEvolution(population_size=population, sample_size=max(2, population // 4), seed=seed)
    if name == "tpe":
        return TPE(seed=seed, tpe_args={"n_startup_jobs": min(max(budget // 4, 5), 20)})
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
    workers: int = 1,
    **request_fields: Any,
) -> List[Tuple[Any, Dict[str, Any]]]:
    """Search a registered ``space`` by ``proxy`` with an NNI strategy; no training.

    ``budget`` is the number of candidates scored (NNI trials; for ``ranking``, candidates
    scored in-process).  ``request_fields``: ``seed`` (seeds both the strategy and the weight
    initialisation), ``corpus``/``batch_size``/``seq_len`` (the input batch; default: the
    space's embedded batch), ``device`` and the space's context options.  ``on_trial(arch, metrics)`` is called as each candidate is scored.  NNI writes its
    logs and checkpoint under ``experiment_dir`` (default: NNI's ``~/nni-experiments``).
    ``store``: a results-store path; candidates already in it cost no model work.
    ``workers``: processes scoring ``ranking``'s candidates (the other strategies run on NNI's
    sequential engine, one candidate at a time).  ``max_params`` / ``max_nonembedding_params`` / ``max_flops``: a size budget;
    candidates over it cost no model work (``ranking`` never draws them; the other strategies
    get them reported as ``over_budget`` with no score, so they rank last).

    Returns ``[(architecture, metrics), ...]`` in evaluation order (for ``ranking``: every
    scored candidate, best first), where ``metrics`` is the dict the evaluator reported:
    ``default`` (main proxy, higher is better, :data:`~nni_zerocost.NO_SCORE` when it has no value),
    one entry per proxy spec and ``flag``.
    """
    # the whole request is checked before NNI starts
    plan = check_search(space, proxy, strategy, budget, extra_proxies=extra_proxies, workers=workers,
                        **request_fields)
    from ..budget import SizeBudget, size_note

    note = size_note(space, proxy, SizeBudget.pop_from(dict(request_fields)))
    if note:
        logging.getLogger(__name__).warning(note)
    seed = plan.seed

    from nni.nas.experiment import NasExperiment, NasExperimentConfig
    from nni.nas.strategy.middleware import Chain

    from .evaluator import ZeroCostEvaluator
    from .spaces import model_space
    from .strategies import TrialRecorder
    proxy_options = dict(extra_proxies=tuple(extra_proxies), store=None if store is None else str(store),
                         **{**request_fields, "seed": seed})
    ms = model_space(space)
    codec = ms.codec

    def report(sample, metrics):
        if on_trial is not None and strategy != "ranking":
            on_trial(codec.decode(sample), metrics)

    recorder = TrialRecorder(report)
    main = make_strategy(strategy, budget, seed, proxy=proxy, workers=workers, **proxy_options) \
        if strategy == "ranking" else make_strategy(strategy, budget, seed)
    config = NasExperimentConfig("sequential", "simplified")
    config.max_trial_number = 1 if strategy == "ranking" else budget
    if experiment_dir is not None:
        config.experiment_working_directory = str(experiment_dir)
    evaluator = ZeroCostEvaluator(proxy, **proxy_options)
    experiment = NasExperiment(ms, evaluator, Chain(main, recorder), config)
    nni_logger = logging.getLogger("nni")
    level = nni_logger.level
    nni_logger.setLevel(logging.WARNING)  # NNI logs every candidate at INFO
    try:
        experiment.run()
    finally:
        experiment.stop()
        nni_logger.setLevel(level)
    if strategy == "ranking":
        out = [(codec.decode(sample), metrics) for sample, metrics in main.ranking or []]
        if on_trial is not None:
            for arch, metrics in out:
                on_trial(arch, metrics)
        return out
    return [(codec.decode(sample), metrics) for sample, metrics in recorder.records]
