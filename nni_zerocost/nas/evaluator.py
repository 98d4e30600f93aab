"""Zero-cost proxies as an NNI evaluator, and the one scoring function every adapter shares.

:func:`proxy_metrics` is the only place where the NNI adapters score an architecture (the
evaluator, the pre-screen and ranking strategies, the HPO trial and :func:`run_search` all call
it), and it only calls the core :func:`nni_zerocost.score`.  So a candidate gets the same value
in every route: the sequential engine, a training-service trial process, a strategy scoring
in-process, or a standalone call.

Metric reported to NNI (a dict, as ``nni.report_final_result`` accepts)::

    {"default": <score of the main proxy, higher is better>,
     "<proxy spec>": <score or None>, ...,      # the main proxy and every extra proxy
     "flag": "<spec>: <reason>; ...",           # "" when no proxy flagged its value
     "arch": "<canonical hash of the architecture>",
     "device": "cpu" | "cuda:0" ...}            # where the scores were computed

Scores are :attr:`ProxyResult.score` (sign-normalised, higher is better).  NNI needs a finite
``default``: a proxy that has no value (flagged NaN, e.g. an exploding cell) reports
:data:`FLAGGED_SCORE` = -1e100, below any real proxy value, so every strategy ranks such a
candidate last; its named entry is ``None`` and ``flag`` says why.  A flagged but finite value
(a documented fallback) is reported as is, with its flag.  ``arch`` identifies what was scored:
NNI 3.0's local training service can hand concurrent trials each other's parameters while its
web UI and ``export_data`` keep the original pairing (microsoft/nni#5726), so join results on it.
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

from ..plan import ScoringPlan, make_plan, plans_for_any_space
from ..proxies.base import ProxyResult

#: the ``default`` metric of a candidate whose main proxy has no value (NaN)
FLAGGED_SCORE = -1e100


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
    r = results[main]
    out: Dict[str, Any] = {"default": float(r.score) if r.ok else FLAGGED_SCORE}
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
    which is what makes an interrupted search cheap to re-run.
    """
    from .. import get_space
    from ..errors import ZeroCostError
    from ..runner import score_many

    sp = get_space(plan.space)
    parsed = sp.parse(arch)
    with seeded(plan.seed):
        if store is None:
            results = plan.score(parsed)
        else:
            (rec,) = score_many(plan, [(0, parsed)], _open_store(str(store)), progress=False)
            if rec.error:
                raise ZeroCostError(rec.error)
            metrics = metric_dict(rec.results, plan.specs[0], sp.arch_hash(parsed), plan.device_name)
            metrics["seconds"] = rec.seconds  # work done now: nothing when the store answered
            return metrics
    return metric_dict(results, plan.specs[0], sp.arch_hash(parsed), plan.device_name)


@functools.lru_cache(maxsize=4)
def _open_store(path: str):
    from ..store import ResultStore

    return ResultStore(path)


class ProxySettings:
    """The scoring keywords every NNI adapter takes, checked once through the core's door.

    The space is known only when a candidate arrives (it is read from the model), so the specs
    are checked against every space they could apply to at construction, and the plan of a
    space is made on first use.  Its arguments are plain values (paths, not tensors), so NNI
    can ship an adapter to a trial as its arguments.
    """

    def __init__(self, proxy: str, extra_proxies: Sequence[str] = (), seed: int = 0, corpus: Optional[str] = None,
                 batch_size: Optional[int] = None, seq_len: Optional[int] = None, store: Optional[str] = None,
                 space: Optional[str] = None, device: Optional[str] = "auto"):
        self.proxy, self.extra_proxies, self.seed = proxy, tuple(extra_proxies), seed
        # kept as given ("auto" resolves wherever a trial runs); checked here
        self.device = "auto" if device is None else str(device)
        self.corpus = None if corpus is None else str(corpus)
        self.batch_size, self.seq_len = batch_size, seq_len
        self.store = None if store is None else str(store)
        self._specs = [proxy, *self.extra_proxies]
        self._plan_options = dict(seed=seed, corpus=self.corpus, batch_size=batch_size, seq_len=seq_len,
                                  device=self.device)
        self._plans: Dict[str, ScoringPlan] = (
            {space: make_plan(space, self._specs, **self._plan_options)} if space is not None
            else plans_for_any_space(self._specs, **self._plan_options)
        )

    def plan(self, space: str) -> ScoringPlan:
        if space not in self._plans:  # a space the specs do not apply to: make_plan says why
            self._plans[space] = make_plan(space, self._specs, **self._plan_options)
        return self._plans[space]

    def metrics(self, space: str, arch) -> Dict[str, Any]:
        return proxy_metrics(self.plan(space), arch, store=self.store)


@nni.trace
class ZeroCostEvaluator(Evaluator):
    """Scores each candidate with a training-free proxy and reports it as its final metric.

    ``proxy``: a proxy spec (``"hidden_covariance"``, ``"hidden_covariance:layer=2"``);
    ``extra_proxies``: more specs reported beside it (not optimised); ``seed``: weight
    initialisation seed; ``corpus``: a PTB-style folder or text file (a *path*: NNI ships
    evaluators to trials as their arguments, so pass no tensors); ``batch_size``/``seq_len``:
    batch shape (default: the space's embedded batch, 50 x 70 zipf tokens for RNNs);
    ``device``: ``"auto"`` (CUDA when the trial's machine has it), ``"cpu"``, ``"cuda"``,
    ``"cuda:N"`` (a string, resolved where the candidate is scored).

    The evaluator keeps no per-model state; the space is read from the model.
    """

    def __init__(self, proxy: str = "hidden_covariance", *, extra_proxies: Sequence[str] = (), seed: int = 0,
                 corpus: Optional[str] = None, batch_size: Optional[int] = None, seq_len: Optional[int] = None,
                 store: Optional[str] = None, device: Optional[str] = "auto"):
        self.settings = ProxySettings(proxy, extra_proxies, seed, corpus, batch_size, seq_len, store, device=device)

    def extra_repr(self) -> str:
        s = self.settings
        return f"proxy={s.proxy!r}, extra_proxies={s.extra_proxies!r}, seed={s.seed}"

    def score(self, model) -> Dict[str, Any]:
        """Metric dict of an ExecutableModelSpace, a frozen module of ours, or ``(space, arch)``."""
        from .spaces import space_of

        with seeded(self.settings.seed):  # the seed is set before the candidate is frozen
            space, arch = model if isinstance(model, tuple) else space_of(model)
            return self.settings.metrics(space, arch)

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
