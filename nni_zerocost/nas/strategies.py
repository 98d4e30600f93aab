"""Zero-cost proxies inside NNI strategies: a pre-screen for any strategy, and proxy ranking.

* :class:`ProxyPrescreen` is an NNI strategy middleware (a :class:`~nni.nas.strategy.middleware.Filter`):
  chained behind any strategy it scores every submitted candidate in-process and lets through
  only those whose score ranks in the top ``top_fraction`` of all candidates seen so far; the
  rest never reach the (expensive) evaluator and are marked ``Invalid``::

      Chain(RegularizedEvolution(), ProxyPrescreen("hidden_covariance", top_fraction=0.25))

* :class:`ProxyRanking` is a strategy: it samples ``n_candidates`` architectures, ranks them by
  the proxy in-process, and submits only the ``top_k`` best to the experiment's evaluator
  (typically a real training evaluator).

Both score through :class:`~nni_zerocost.nas.evaluator.ProxyScorer` (the same numbers the
:class:`~nni_zerocost.nas.evaluator.ZeroCostEvaluator` reports), take the same request fields
(``seed``, ``corpus``, ``device``, any space's context options, ...), work on the model spaces
of every registered space and on a user's own NNI model space, and support NNI checkpoints
through ``state_dict``/``load_state_dict``.
"""
from __future__ import annotations

import json
import logging
import math
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from nni.nas.execution.event import FinalMetricEvent, ModelEventType
from nni.nas.strategy import Strategy
from nni.nas.strategy import TPE as _NNITPE
from nni.nas.strategy.middleware import Filter, StrategyMiddleware

from ..errors import BadInputError
from .evaluator import ProxyScorer
from .spaces import ZeroCostModelSpace, space_class_of, space_of

_logger = logging.getLogger(__name__)


class ProxyPrescreen(Filter):
    """Let a candidate through only if its proxy score is in the top ``top_fraction`` so far.

    The k-th candidate (counting itself) passes when fewer than ``ceil(top_fraction * k)``
    earlier candidates scored strictly higher; the first always passes.  With a size budget
    (``max_params`` / ``max_nonembedding_params`` / ``max_flops``) a candidate over it is dropped
    without being scored.  Rejected candidates get
    status ``Invalid`` and no metric (strategies skip them), so the pre-screen never mixes proxy
    values into the evaluator's metric.  ``last_metrics`` holds the proxy metric dict of the
    latest screened candidate (for logging).
    """

    def __init__(self, proxy: str = "hidden_covariance", *, top_fraction: float = 0.5,
                 extra_proxies: Sequence[str] = (), patience: int = 1000, store: Optional[str] = None,
                 **request_fields: Any):
        if isinstance(top_fraction, bool) or not isinstance(top_fraction, (int, float)) or not 0.0 < top_fraction <= 1.0:
            raise BadInputError("top_fraction", f"must be in (0, 1], got {top_fraction!r}")
        from ..job import check_counts

        check_counts(patience=patience)
        super().__init__(self._passes, metric_for_invalid=None, patience=patience)
        self.scorer = ProxyScorer(proxy, extra_proxies, store=store, **request_fields)
        self.top_fraction = float(top_fraction)
        self._seen: List[float] = []
        self.last_metrics: Optional[Dict[str, Any]] = None

    def extra_repr(self) -> str:
        return f"proxy={self.scorer.proxy!r}, top_fraction={self.top_fraction}"

    def _passes(self, model) -> bool:
        space, arch = space_of(model)
        self.last_metrics = self.scorer.metrics(space, arch)
        if self.last_metrics.get("over_budget"):  # never scored, never counted among the seen
            _logger.info("[prescreen] drop (%s)", self.last_metrics["flag"])
            return False
        score = self.last_metrics["default"]
        self._seen.append(score)
        better = sum(s > score for s in self._seen)
        keep = better < math.ceil(self.top_fraction * len(self._seen))
        _logger.info("[prescreen] %s %.6g (better so far: %d of %d)", "keep" if keep else "drop",
                     score, better, len(self._seen) - 1)
        return keep

    def state_dict(self) -> dict:
        return {**super().state_dict(), "seen_scores": list(self._seen)}

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._seen = [float(s) for s in state_dict.get("seen_scores", [])]


class ProxyRanking(Strategy):
    """Rank ``n_candidates`` architectures by proxy in-process; submit the ``top_k`` best.

    Candidates are, in order of precedence: ``candidates`` (samples or architectures of the
    space, e.g. benchmark cells), else ``n_candidates`` distinct architectures drawn with
    ``sampler="labels"`` (NNI's uniform draw over the labels, like Random) or
    ``sampler="space"`` (the core space's own sampler; for RNNs the NAS-Bench-NLP generator).
    Ties keep sampling order.  ``ranking`` holds ``[(sample, metric dict), ...]`` best first.
    With a size budget (``max_params`` / ``max_nonembedding_params`` / ``max_flops``), given or
    sampled candidates over it are skipped before any model work (counted in ``n_over_budget``);
    the metric dicts of those scored carry their sizes (``size_params``, ...).
    """

    def __init__(self, proxy: str = "hidden_covariance", *, n_candidates: int = 100, top_k: int = 5,
                 candidates: Optional[Sequence[Any]] = None, sampler: str = "labels",
                 extra_proxies: Sequence[str] = (), store: Optional[str] = None, workers: int = 1,
                 **request_fields: Any):
        super().__init__()
        from ..job import check_choice, check_counts

        check_choice("sampler", sampler, ("labels", "space"))
        check_counts(top_k=top_k, n_candidates=n_candidates)
        self.scorer = ProxyScorer(proxy, extra_proxies, store=store, workers=workers, **request_fields)
        self.workers = self.scorer.job.workers
        self.n_candidates = int(n_candidates) if candidates is None else len(candidates)
        self.top_k = int(top_k)
        self.candidates = None if candidates is None else list(candidates)
        self.sampler = sampler
        self._random_state = np.random.RandomState(self.scorer.seed)
        self.n_over_budget = 0
        self.ranking: Optional[List[Tuple[Dict[str, Any], Dict[str, Any]]]] = None
        self._submitted = 0

    def extra_repr(self) -> str:
        return f"proxy={self.scorer.proxy!r}, n_candidates={self.n_candidates}, top_k={self.top_k}"

    # -- candidates ---------------------------------------------------------------------------
    def _our_space(self):
        """``(space name, codec)`` when the model space is a registered space's, else None."""
        cls, options = space_class_of(self.model_space)
        if cls is None or not issubclass(cls, ZeroCostModelSpace):
            return None
        return cls.space_name, cls.make_codec(**options)

    def _candidate_samples(self) -> List[Dict[str, Any]]:
        ours = self._our_space()
        if self.candidates is not None:
            if ours is None:
                given = [dict(c) for c in self.candidates]
            else:
                labels = ours[1].choices()
                given = [dict(c) if isinstance(c, Mapping) and all(k in c for k in labels) else ours[1].encode(c)
                         for c in self.candidates]
            if not self.scorer.budget.active:
                return given
            kept = [c for c in given if self.scorer.over_budget(*self._candidate(c, ours)) is None]
            self.n_over_budget = len(given) - len(kept)
            return kept
        if self.sampler == "space" and ours is None:
            raise BadInputError("sampler", "'space' needs the model space of a registered space (a user's own "
                                           "model space samples its labels)")
        from ..spaces import get_space

        samples, seen = [], set()
        rng = np.random.default_rng(self._random_state.randint(2**31))
        for _ in range(50 * self.n_candidates):
            if len(samples) == self.n_candidates:
                break
            if self.sampler == "space":
                sample = ours[1].encode(get_space(ours[0]).sample(rng))
            else:
                sample = self.model_space.random(random_state=self._random_state).sample
            key = get_space(ours[0]).arch_hash(ours[1].decode(sample)) if ours else json.dumps(sample, sort_keys=True,
                                                                                                 default=str)
            if key not in seen and self.scorer.budget.active:
                if self.scorer.over_budget(*self._candidate(sample, ours)) is not None:
                    seen.add(key)
                    self.n_over_budget += 1
                    continue
            if key not in seen:
                seen.add(key)
                samples.append(sample)
        if len(samples) < self.n_candidates:
            _logger.warning("only %d distinct architectures found (asked for %d)", len(samples), self.n_candidates)
        return samples

    # -- run ----------------------------------------------------------------------------------
    def _run(self) -> None:
        if self.ranking is None:  # not restored from a checkpoint
            start = time.perf_counter()
            samples = self._candidate_samples()
            scored = list(zip(samples, self._score(samples, start)))
            order = sorted(range(len(scored)), key=lambda i: -scored[i][1]["default"])
            self.ranking = [scored[i] for i in order]
            _logger.info("[ranking] scored %d candidates in %.1f s; submitting the top %d",
                         len(scored), time.perf_counter() - start, min(self.top_k, len(scored)))
        while self._submitted < min(self.top_k, len(self.ranking)):
            if not self.wait_for_resource():
                _logger.info("[ranking] budget exhausted after %d submissions", self._submitted)
                break
            sample, _ = self.ranking[self._submitted]
            self._submitted += 1
            self.engine.submit_models(self.model_space.freeze(sample))
        self.engine.wait_models()

    def _score(self, samples, start: float) -> List[Dict[str, Any]]:
        """Metric dicts of the samples, in order: in-process, or over ``workers`` processes
        through the core's runner (the same job, the same numbers)."""
        from ..threads import resolve_workers

        ours = self._our_space()
        workers = resolve_workers(self.workers, len(samples))
        if workers == 1 or ours is None:
            out = []
            for i, sample in enumerate(samples, start=1):
                space, arch = self._candidate(sample, ours)
                out.append(self.scorer.metrics(space, arch))
                if i % max(1, len(samples) // 10) == 0:
                    _logger.info("[ranking] %d/%d candidates scored (%.1f s)", i, len(samples),
                                 time.perf_counter() - start)
            return out
        from ..job import check_job
        from ..runner import raise_for_error, run
        from .evaluator import record_metrics

        space, codec = ours
        plan = self.scorer.plan(space)
        archs = tuple((i, plan.to_dict(codec.decode(s))) for i, s in enumerate(samples))
        checked = check_job(self.scorer.job.replace(request=self.scorer.job.request.replace(space=space),
                                                    architectures=archs, workers=workers))
        out = []
        for rec in run(checked, progress=False):
            raise_for_error(rec)
            out.append(record_metrics(rec, plan.specs[0]))
        return out

    def _candidate(self, sample, ours):
        """``(space, architecture)`` of a sample: decoded for a registered space (no weights are
        built), the frozen sample of a user's model space."""
        if ours is not None:
            return ours[0], ours[1].decode(sample)
        return space_of(self.model_space.freeze(sample))

    def state_dict(self) -> dict:
        return {"ranking": self.ranking, "submitted": self._submitted,
                "random_state": self._random_state.get_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.ranking = state_dict.get("ranking")
        self._submitted = int(state_dict.get("submitted", 0))
        if "random_state" in state_dict:
            self._random_state.set_state(state_dict["random_state"])


class TrialRecorder(StrategyMiddleware):
    """Pass-through middleware that records every final metric *dict* (NNI keeps only
    ``default`` on the model) and calls ``on_trial(sample, metrics)`` as trials finish.

    It holds the models it forwards: the training-service engine delivers metrics only to
    models somebody still references (NNI keeps weak references), and strategies like Random
    drop theirs.  Records pair each metric with the sample of the parameter id that reported it,
    which stays right even when NNI 3.0's local training service hands concurrent trials each
    other's parameters (microsoft/nni#5726): NNI's own trial listing is wrong then.
    """

    def __init__(self, on_trial: Optional[Callable[[Dict[str, Any], Dict[str, Any]], None]] = None):
        super().__init__()
        self.on_trial = on_trial
        self.records: List[Tuple[Dict[str, Any], Dict[str, Any]]] = []
        self._submitted: list = []

    def _initialize_engine(self, engine) -> None:
        # kept registered after the strategy returns: strategies like Random do not wait for
        # their last trials, whose metrics arrive while the experiment waits for completion
        engine.register_model_event_callback(ModelEventType.FinalMetric, self._on_final)

    def _on_final(self, event: FinalMetricEvent) -> None:
        if not any(event.model is m for m in self._submitted):
            return  # not one of ours
        metrics = dict(event.metric) if isinstance(event.metric, Mapping) else {"default": float(event.metric)}
        sample = dict(event.model.sample or {})
        self.records.append((sample, metrics))
        if self.on_trial is not None:
            self.on_trial(sample, metrics)

    def submit_models(self, *models) -> None:
        self._submitted.extend(models)
        self.engine.submit_models(*models)

    def list_models(self, status=None):
        return self.engine.list_models(status)

    def register_model_event_callback(self, event_type, callback) -> None:
        super().register_model_event_callback(event_type, callback)
        self.engine.register_model_event_callback(event_type, callback)

    def unregister_model_event_callback(self, event_type, callback) -> None:
        super().unregister_model_event_callback(event_type, callback)
        self.engine.unregister_model_event_callback(event_type, callback)

    def state_dict(self) -> dict:
        return {"n_records": len(self.records)}

    def load_state_dict(self, state_dict: dict) -> None:
        pass  # records of a previous run are not replayed


class TPE(_NNITPE):
    """NNI's TPE strategy, maximising by default, without NNI's fixed 1 s pause per candidate.

    NNI's loop sleeps one second after every submission to let training-service workers free
    up; with the in-process sequential engine a worker is always idle, so here it only sleeps
    while no worker is idle.  Everything else is NNI's TPE.
    """

    def __init__(self, optimize_mode: str = "maximize", seed: Optional[int] = None, tpe_args: Optional[dict] = None):
        super().__init__(optimize_mode=optimize_mode, seed=seed, tpe_args=tpe_args)

    def _run(self) -> None:
        import nni

        space = {label: m.as_legacy_dict() for label, m in self.model_space.simplify().items()}
        with self._thread_lock:
            self.tuner.update_search_space(space)
        while self.engine.budget_available():
            if not self.engine.idle_worker_available():
                time.sleep(1.0)
                continue
            with self._thread_lock:
                try:
                    param = self.tuner.generate_parameters(self._model_count)
                except nni.NoMoreTrialError:
                    _logger.warning("No more trial generated by tuner. Stopping.")
                    break
                model = self.model_space.freeze(param)
                self._model_to_id[model] = self._model_count
                self._model_count += 1
            self.engine.submit_models(model)
