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
from typing import Any, Dict, Mapping, Optional, Sequence

import nni
import numpy as np
import torch
from nni.nas.evaluator import Evaluator

from ..budget import SizeBudget
from ..plan import ScoringPlan, ScoringRequest, check_request, make_model_plan, make_plan
from ..proxies.base import NO_SCORE, ProxyResult


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


def metric_dict(results: Mapping[str, ProxyResult], main: str, arch_hash: Optional[str] = None,
                device: Optional[str] = None) -> Dict[str, Any]:
    """NNI metric dict from core results (see the module docstring)."""
    out: Dict[str, Any] = {"default": float(results[main].finite_score)}
    flags = []
    for spec, res in results.items():
        out[spec] = float(res.score) if res.ok else None
        if res.flag:
            flags.append(f"{spec}: {res.flag}")
    out["flag"] = "; ".join(flags)
    out["seconds"] = float(sum(res.seconds for res in results.values()))  # model work for this candidate
    if arch_hash is not None:
        out["arch"] = arch_hash
    if device is not None:
        out["device"] = device
    return out


def proxy_metrics(plan: ScoringPlan, arch, *, store: Optional[str] = None) -> Dict[str, Any]:
    """Score one architecture with a checked plan and return the NNI metric dict (the main
    proxy is the plan's first).

    With ``store`` (a results-store path) the core's store-backed runner answers: a candidate
    scored before (same space, architecture, proxy, data, seed, version) costs no model work,
    which is what makes an interrupted search cheap to re-run.  An unexpected error is raised
    as a bug (:class:`~nni_zerocost.runner.ScoringBugError`, with its traceback), bad input as
    a ZeroCostError.
    """
    from ..runner import raise_for_error, score_many

    parsed = plan.parse(arch)
    with seeded(plan.seed):
        if store is None:
            results = plan.score(parsed)
        else:
            (rec,) = score_many(plan, [(0, parsed)], _open_store(str(store)), progress=False)
            raise_for_error(rec)
            metrics = metric_dict(rec.results, plan.specs[0], plan.arch_hash(parsed), plan.device_name)
            metrics["seconds"] = rec.seconds  # work done now: nothing when the store answered
            return metrics
    return metric_dict(results, plan.specs[0], plan.arch_hash(parsed), plan.device_name)


@functools.lru_cache(maxsize=4)
def _open_store(path: str):
    from ..store import ResultStore

    return ResultStore(path)


class ProxyScorer:
    """The scoring every NNI adapter shares: one request, checked once through the core's door.

    ``proxy`` is optimised, ``extra_proxies`` reported beside it; ``request_fields`` are the
    :class:`~nni_zerocost.ScoringRequest` fields (``seed``, ``corpus``, ``batch_size``,
    ``seq_len``, ``device``) and any space's context options (``init="compat"``,
    ``as_trained=True``, ...), all plain values, so NNI can ship an adapter to a trial as its
    arguments.  The space is known only when a candidate arrives (it is read from the model):
    what can be checked without it is checked here, and the plan of a space is made on first
    use.  Candidates of a user's own NNI model space are scored as models
    (:func:`~nni_zerocost.score_model`), keyed by the space class and the frozen sample.
    """

    def __init__(self, proxy: str, extra_proxies: Sequence[str] = (), *, store: Optional[str] = None,
                 **request_fields: Any):
        request_fields = dict(request_fields)
        self.budget = SizeBudget.pop_from(request_fields)  # max_params / max_nonembedding_params / max_flops
        self.request = ScoringRequest.of([proxy, *extra_proxies], **request_fields)
        check_request(self.request)
        self.store = None if store is None else str(store)
        self._plans: Dict[str, ScoringPlan] = {}

    @property
    def proxy(self) -> str:
        return self.request.proxies[0]

    @property
    def seed(self) -> int:
        return self.request.seed

    def plan(self, space: str) -> ScoringPlan:
        if space not in self._plans:  # make_plan says why a space does not take the request
            self._plans[space] = make_plan(self.request.replace(space=space))
        return self._plans[space]

    def model_plan(self, sample) -> ScoringPlan:
        """The plan of a candidate of a user's model space (a model of its own)."""
        req = self.request
        if req.options:
            from ..errors import BadInputError

            raise BadInputError(next(iter(req.options)), "a user's own model space takes no space context options")
        batch = req.corpus
        return make_model_plan(sample, list(req.proxies), batch=batch, seed=req.seed,
                               device=None if req.device == "auto" else req.device, label=sample.space)

    def sizes(self, space: Optional[str], arch) -> Dict[str, float]:
        """The candidate's size (parameters, and FLOPs where the space counts them)."""
        return self.budget.sizes(space, arch, self.request.options if space is not None else None)

    def over_budget(self, space: Optional[str], arch) -> Optional[Dict[str, Any]]:
        """The metric dict of a candidate over the size budget (no model work), or None."""
        if not self.budget.active:
            return None
        sizes = self.sizes(space, arch)
        reason = self.budget.over(sizes)
        if reason is None:
            return None
        plan_hash = self.plan(space).arch_hash(arch) if space is not None else arch.key
        out = {"default": NO_SCORE, **{spec: None for spec in self.request.proxies}, "flag": reason,
               "seconds": 0.0, "arch": plan_hash, "over_budget": True}
        out.update({f"size_{k}": v for k, v in sizes.items()})
        return out

    def metrics(self, space: Optional[str], arch) -> Dict[str, Any]:
        over = self.over_budget(space, arch)
        if over is not None:
            return over
        plan = self.plan(space) if space is not None else self.model_plan(arch)
        out = proxy_metrics(plan, arch, store=self.store)
        if self.budget.active:
            out.update({f"size_{k}": v for k, v in self.sizes(space, arch).items()})
        return out


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
