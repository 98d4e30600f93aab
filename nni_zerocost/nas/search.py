"""One-call zero-cost search on NNI's sequential (in-process) engine, for the CLI and scripts."""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

STRATEGIES = ("random", "evolution", "tpe", "ranking")


def make_strategy(name: str, budget: int, seed: int = 0, **proxy_options):
    """The NNI strategy behind a ``run_search`` strategy name.

    ``evolution``: RegularizedEvolution with a population of ``clip(budget // 4, 4, 50)`` and
    tournaments of a quarter of it; ``tpe``: TPE maximising, ``n_startup_jobs =
    clip(budget // 4, 5, 20)`` random candidates first; ``ranking``: :class:`ProxyRanking` of
    ``budget`` candidates scored in-process, the single best re-evaluated through the engine.
    """
    from nni.nas.strategy import Random, RegularizedEvolution

    from .strategies import TPE, ProxyRanking

    if name == "random":
        return Random(seed=seed)
    if name == "evolution":
        population = min(max(budget // 4, 4), 50)
        return RegularizedEvolution(population_size=population, sample_size=max(2, population // 4), seed=seed)
    if name == "tpe":
        return TPE(seed=seed, tpe_args={"n_startup_jobs": min(max(budget // 4, 5), 20)})
    if name == "ranking":
        return ProxyRanking(n_candidates=budget, top_k=1, seed=seed, **proxy_options)
    from ..errors import UnknownNameError

    raise UnknownNameError("search strategy", name, list(STRATEGIES))


def run_search(
    space: str,
    proxy: str = "hidden_covariance",
    strategy: str = "evolution",
    budget: int = 50,
    *,
    seed: int = 0,
    corpus: Optional[str] = None,
    batch_size: Optional[int] = None,
    seq_len: Optional[int] = None,
    extra_proxies: Sequence[str] = (),
    on_trial: Optional[Callable[[Any, Dict[str, Any]], None]] = None,
    experiment_dir: Optional[str] = None,
    store: Optional[str] = None,
    workers: int = 1,
    device: Optional[str] = "auto",
) -> List[Tuple[Any, Dict[str, Any]]]:
    """Search ``space`` ("rnn" | "bert") by ``proxy`` with an NNI strategy; no training.

    ``budget`` is the number of candidates scored (NNI trials; for ``ranking``, candidates
    scored in-process).  ``seed`` seeds both the strategy and the weight initialisation.
    ``corpus``/``batch_size``/``seq_len`` choose the input batch (default: the space's embedded
    batch).  ``on_trial(arch, metrics)`` is called as each candidate is scored.  NNI writes its
    logs and checkpoint under ``experiment_dir`` (default: NNI's ``~/nni-experiments``).
    ``store``: a results-store path; candidates already in it cost no model work.
    ``workers``: processes scoring ``ranking``'s candidates (the other strategies run on NNI's
    sequential engine, one candidate at a time).
    ``device``: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns ``[(architecture, metrics), ...]`` in evaluation order (for ``ranking``: every
    scored candidate, best first), where ``metrics`` is the dict the evaluator reported:
    ``default`` (main proxy, higher is better, :data:`FLAGGED_SCORE` when it has no value),
    one entry per proxy spec and ``flag``.
    """
    from ..errors import BadInputError
    from ..plan import make_plan

    # the whole request is checked before NNI starts
    make_plan(space, [proxy, *extra_proxies], seed=seed, corpus=corpus, batch_size=batch_size, seq_len=seq_len,
              device=device)
    if strategy not in STRATEGIES:
        raise BadInputError("strategy", f"unknown strategy; valid: {', '.join(STRATEGIES)}", repr(strategy))
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise BadInputError("budget", f"must be an integer >= 1, got {budget!r}")
    if workers != 1 and strategy != "ranking":
        raise BadInputError("workers", "applies to the 'ranking' strategy only", repr(workers))

    from nni.nas.experiment import NasExperiment, NasExperimentConfig
    from nni.nas.strategy.middleware import Chain

    from .evaluator import ZeroCostEvaluator
    from .spaces import model_space
    from .strategies import TrialRecorder
    proxy_options = dict(extra_proxies=tuple(extra_proxies), corpus=corpus, batch_size=batch_size, seq_len=seq_len,
                         store=None if store is None else str(store), device=device)
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
    evaluator = ZeroCostEvaluator(proxy, seed=seed, **proxy_options)
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
