"""Zero-cost proxies as an NNI evaluator, and the one scoring path every NNI adapter shares.

:class:`ProxyScorer` is the only place where the NNI adapters score an architecture (the
evaluator, the pre-screen and ranking strategies, the HPO trial and :func:`run_search` all use
it): it holds one :class:`~nni_zerocost.ScoringRequest` and asks the core for a plan per space
(:func:`~nni_zerocost.make_plan`) or per model of a user's own NNI model space
(:func:`~nni_zerocost.make_model_plan`).  So a candidate gets the same value in every route: the
sequential engine, a training-service trial process, a strategy scoring in-process, or a
standalone call.

Metric reported to NNI (a dict, as ``nni.report_final_result`` accepts)::

    {"default": <score of the main proxy, higher is better>,
     "<proxy spec>": <score or None>, ...,      # the main proxy and every extra proxy
     "flag": "<spec>: <reason>; ...",           # "" when no proxy flagged its value
     "arch": "<canonical hash of the architecture>",
     "device": "cpu" | "cuda:0" ...,            # where the scores were computed
     "size_params": n, "size_flops": f}         # with a size budget: the candidate's size

With a size budget (``max_params`` / ``max_flops``), a candidate over it is not scored: it
reports ``default`` = NO_SCORE, ``over_budget`` = True and the reason in ``flag``, so every
strategy ranks it last and no model work is spent on it.

Scores are :attr:`ProxyResult.score` (sign-normalised, higher is better).  NNI needs a finite
``default``: a proxy that has no value (flagged NaN, e.g. an exploding cell) reports
:data:`~nni_zerocost.NO_SCORE` = -1e100, below any real proxy value, so every strategy ranks
such a candidate last; its named entry is ``None`` and ``flag`` says why.  A flagged but finite
value (a documented fallback) is reported as is, with its flag.  ``arch`` identifies what was
scored: NNI 3.0's local training service can hand concurrent trials each other's parameters
while its web UI and ``export_data`` keep the original pairing (microsoft/nni#5726), so join
results on it.
"""
from __future__ import annotations

import contextlib
import functools
import random
from typing import Any, Dict, Optional, Sequence

import nni
import numpy as np
import torch
from nni.nas.evaluator import Evaluator

from ..plan import ScoringPlan, ScoringRequest
from ..search_report import metric_dict, record_metrics  # noqa: F401 (the NNI metric dict)


@contextlib.contextmanager
def seeded(seed: int):
    """Seed Python, NumPy and torch for the block, then restore the caller's RNG states.

    The core builds weights from explicit per-seed generators already; global seeding makes any
    proxy that does touch a global RNG reproducible too, without disturbing the host process.
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def proxy_metrics(plan_or_job, arch) -> Dict[str, Any]:
    """Score one architecture and return the NNI metric dict (the main proxy is the plan's
    first); ``plan_or_job``: a :class:`~nni_zerocost.ScoringPlan` (no store) or a checked job
    (its store and size budget).  An unexpected error is raised as a bug
    (:class:`~nni_zerocost.runner.ScoringBugError`, with its traceback), bad input as a
    ZeroCostError."""
    from ..job import CheckedJob, ScoringJob
    from ..runner import raise_for_error, score_one

    checked = plan_or_job
    if not isinstance(checked, CheckedJob):
        plan = plan_or_job
        checked = CheckedJob(ScoringJob(plan.scoring_request, store=None), plan)
    with seeded(checked.plan.seed):
        rec = score_one(checked, arch)
    raise_for_error(rec)
    return record_metrics(rec, checked.plan.specs[0])


class ProxyScorer:
    """The scoring every NNI adapter shares: one job, checked once, scored one candidate at a
    time through the runner (:func:`~nni_zerocost.runner.score_one`).

    ``proxy`` is optimised, ``extra_proxies`` reported beside it; ``fields`` are the job's and
    the request's (``seed``, ``corpus``, ``batch_size``, ``seq_len``, ``device``, any space's
    context options, ``max_params`` / ``max_nonembedding_params`` / ``max_flops``, ``workers``,
    ``plugins``), all plain values, so NNI can ship an adapter to a trial as its arguments.
    ``store``: a results-store path (None: no store).  The space is known only when a candidate
    arrives (it is read from the model): what can be checked without it is checked here, and the
    job of a space is checked on first use.  Candidates of a user's own NNI model space are
    scored by the ``model`` space, keyed by the space class and the frozen sample.
    """

    def __init__(self, proxy: str, extra_proxies: Sequence[str] = (), *, store: Optional[str] = None,
                 **fields: Any):
        from ..job import ScoringJob, check_job

        self.job = ScoringJob.of([proxy, *extra_proxies], None, store=None if store is None else str(store), **fields)
        check_job(self.job, need_architectures=False)  # the space is not known yet: what any space takes
        self._checked: Dict[str, Any] = {}

    @property
    def request(self) -> ScoringRequest:
        return self.job.request

    @property
    def proxy(self) -> str:
        return self.job.request.proxies[0]

    @property
    def seed(self) -> int:
        return self.job.request.seed

    @property
    def store(self) -> Optional[str]:
        return self.job.store

    def checked(self, space: Optional[str]):
        """The checked job of a space (None: a user's own model space, the ``model`` space)."""
        from ..job import check_job

        space = space or "model"
        if space not in self._checked:  # check_job says why a space does not take the request
            self._checked[space] = check_job(self.job.replace(request=self.job.request.replace(space=space)),
                                             need_architectures=False)
        return self._checked[space]

    def plan(self, space: Optional[str]) -> ScoringPlan:
        return self.checked(space).plan

    @property
    def budget(self):
        return self.checked_any.budget

    @functools.cached_property
    def checked_any(self):
        from ..job import check_job

        return check_job(self.job, need_architectures=False)

    def over_budget(self, space: Optional[str], arch) -> Optional[str]:
        """Why a candidate is over the size budget (no model work), or None."""
        checked = self.checked(space)
        if not checked.budget.active:
            return None
        from ..budget import sizes

        plan = checked.plan
        return checked.budget.over(sizes(plan.search_space, plan.parse(arch), plan.context_options))

    def metrics(self, space: Optional[str], arch) -> Dict[str, Any]:
        return proxy_metrics(self.checked(space), arch)


@nni.trace
class ZeroCostEvaluator(Evaluator):
    """Scores each candidate with a training-free proxy and reports it as its final metric.

    ``proxy``: a proxy spec (``"hidden_covariance"``, ``"hidden_covariance:layer=2"``);
    ``extra_proxies``: more specs reported beside it (not optimised); ``store``: a results-store
    path; ``request_fields``: ``seed`` (weight initialisation), ``corpus`` (a PTB-style folder or
    text file: a *path*, NNI ships evaluators to trials as their arguments), ``batch_size`` /
    ``seq_len``, ``device`` (``"auto"``: CUDA when the trial's machine has it, ``"cpu"``,
    ``"cuda"``, ``"cuda:N"``) and any space's context options (``init="compat"``, ...);
    ``max_params`` / ``max_nonembedding_params`` / ``max_flops``: a size budget (candidates over it
    are not scored).

    Works on the model spaces of every registered space, and on any NNI ``ModelSpace`` whose
    model is a language model :func:`~nni_zerocost.score_model` can read.  The evaluator keeps
    no per-model state; the space is read from the model.
    """

    def __init__(self, proxy: str = "hidden_covariance", *, extra_proxies: Sequence[str] = (),
                 store: Optional[str] = None, **request_fields: Any):
        self.scorer = ProxyScorer(proxy, extra_proxies, store=store, **request_fields)

    def extra_repr(self) -> str:
        r = self.scorer.request
        return f"proxy={r.proxies[0]!r}, extra_proxies={r.proxies[1:]!r}, seed={r.seed}"

    def score(self, model) -> Dict[str, Any]:
        """Metric dict of an ExecutableModelSpace, a frozen module, or ``(space, arch)``."""
        from .spaces import space_of

        with seeded(self.scorer.seed):  # the seed is set before the candidate is frozen
            space, arch = model if isinstance(model, tuple) else space_of(model)
            return self.scorer.metrics(space, arch)

    def _execute(self, model) -> Dict[str, Any]:
        # NNI's default would build the full network first (executable_model) only for us to
        # read its architecture; decoding the sample gives the same architecture for free.
        metrics = self.score(model)
        nni.report_final_result(metrics)
        return metrics

    def evaluate(self, model) -> Dict[str, Any]:
        """Score a frozen module (``space.freeze(sample)``) outside or inside an NNI trial."""
        metrics = self.score(model)
        if nni.get_current_parameter() is not None:
            nni.report_final_result(metrics)
        return metrics
