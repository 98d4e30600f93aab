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
     "arch": "<canonical hash of the architecture>"}

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
import math
import random
from typing import Any, Dict, Mapping, Optional, Sequence

import nni
import numpy as np
import torch
from nni.nas.evaluator import Evaluator

from ..proxies.base import ProxyResult, get_proxy, parse_proxy_spec

#: the ``default`` metric of a candidate whose main proxy has no value (NaN)
FLAGGED_SCORE = -1e100


def check_proxy_specs(space: Optional[str], specs: Sequence[str]) -> None:
    """Fail early (at construction, not in trial 1) on unknown proxies or wrong spaces."""
    for spec in specs:
        proxy = get_proxy(parse_proxy_spec(spec)[0])
        if space is not None and not proxy.applies_to(space):
            from ..errors import ProxyNotApplicableError

            raise ProxyNotApplicableError(
                f"proxy {proxy.name!r} does not apply to the {space!r} space (it applies to: {', '.join(proxy.spaces)})"
            )


@functools.lru_cache(maxsize=8)
def token_batch(space: str, corpus: Optional[str] = None, batch_size: Optional[int] = None,
                seq_len: Optional[int] = None):
    """The input batch: the space's default, a PTB-style corpus (rnn), or a zipf batch of
    another shape (rnn: 50 x 70 by default, bert: 128 x 128).

    Cached per process (reading PTB once, not once per candidate); batches are immutable.
    """
    if corpus is None and batch_size is None and seq_len is None:
        return None  # the space's embedded default batch
    if space == "bert":
        if corpus is not None:
            raise ValueError("a corpus is supported for the 'rnn' space only; the bert space scores on zipf word pieces")
        from ..spaces.bert import zipf_bert_batch

        return zipf_bert_batch(batch_size or 128, seq_len or 128, seed=0)
    from ..data import corpus_batch, zipf_batch

    bs, sl = batch_size or 50, seq_len or 70
    return corpus_batch(corpus, bs, sl) if corpus is not None else zipf_batch(bs, sl, seed=0)


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


def metric_dict(results: Mapping[str, ProxyResult], main: str, arch_hash: Optional[str] = None) -> Dict[str, Any]:
    """NNI metric dict from core results (see the module docstring)."""
    r = results[main]
    out: Dict[str, Any] = {"default": float(r.score) if r.ok else FLAGGED_SCORE}
    flags = []
    for spec, res in results.items():
        out[spec] = float(res.score) if res.ok else None
        if res.flag:
            flags.append(f"{spec}: {res.flag}")
    out["flag"] = "; ".join(flags)
    if arch_hash is not None:
        out["arch"] = arch_hash
    return out


def proxy_metrics(space: str, arch, proxy: str, *, extra_proxies: Sequence[str] = (), seed: int = 0,
                  corpus: Optional[str] = None, batch_size: Optional[int] = None,
                  seq_len: Optional[int] = None, store: Optional[str] = None) -> Dict[str, Any]:
    """Score one architecture with the core and return the NNI metric dict.

    With ``store`` (a results-store path) the core's store-backed runner answers: a candidate
    scored before (same space, architecture, proxy, data, seed, version) costs no model work,
    which is what makes an interrupted search cheap to re-run.
    """
    from .. import get_space, score

    specs = list(dict.fromkeys([proxy, *extra_proxies]))
    batch = token_batch(space, None if corpus is None else str(corpus), batch_size, seq_len)
    sp = get_space(space)
    parsed = sp.parse(arch)
    with seeded(seed):
        if store is None:
            results = score(space, parsed, specs, batch=batch, seed=seed)
        else:
            results = _stored_results(space, parsed, specs, batch, seed, store)
    return metric_dict(results, proxy, sp.arch_hash(parsed))


@functools.lru_cache(maxsize=4)
def _open_store(path: str):
    from ..store import ResultStore

    return ResultStore(path)


def _stored_results(space, arch, specs, batch, seed, store_path) -> Dict[str, ProxyResult]:
    from ..errors import ZeroCostError
    from ..runner import ScoreJob, score_many

    job = ScoreJob(space, specs, batch, seed)
    (rec,) = score_many(job, [(0, arch)], _open_store(str(store_path)), progress=False)
    if rec.error:
        raise ZeroCostError(rec.error)
    return {
        spec: ProxyResult(name, math.nan if rec.values[spec] is None else rec.values[spec],
                          get_proxy(name).higher_is_better, rec.flags.get(spec))
        for spec, name, _ in job.parsed
    }


@nni.trace
class ZeroCostEvaluator(Evaluator):
    """Scores each candidate with a training-free proxy and reports it as its final metric.

    ``proxy``: a proxy spec (``"hidden_covariance"``, ``"hidden_covariance:layer=2"``);
    ``extra_proxies``: more specs reported beside it (not optimised); ``seed``: weight
    initialisation seed; ``corpus``: a PTB-style folder or text file (a *path*: NNI ships
    evaluators to trials as their arguments, so pass no tensors); ``batch_size``/``seq_len``:
    batch shape (default: the space's embedded batch, 50 x 70 zipf tokens for RNNs).

    The evaluator keeps no per-model state; the space is read from the model.
    """

    def __init__(self, proxy: str = "hidden_covariance", *, extra_proxies: Sequence[str] = (), seed: int = 0,
                 corpus: Optional[str] = None, batch_size: Optional[int] = None, seq_len: Optional[int] = None,
                 store: Optional[str] = None):
        check_proxy_specs(None, [proxy, *extra_proxies])
        self.store = None if store is None else str(store)
        self.proxy = proxy
        self.extra_proxies = tuple(extra_proxies)
        self.seed = int(seed)
        self.corpus = None if corpus is None else str(corpus)
        self.batch_size = batch_size
        self.seq_len = seq_len

    def extra_repr(self) -> str:
        return f"proxy={self.proxy!r}, extra_proxies={self.extra_proxies!r}, seed={self.seed}"

    def score(self, model) -> Dict[str, Any]:
        """Metric dict of an ExecutableModelSpace, a frozen module of ours, or ``(space, arch)``."""
        from .spaces import space_of

        with seeded(self.seed):  # the seed is set before the candidate is frozen
            space, arch = model if isinstance(model, tuple) else space_of(model)
            return proxy_metrics(space, arch, self.proxy, extra_proxies=self.extra_proxies, seed=self.seed,
                                 corpus=self.corpus, batch_size=self.batch_size, seq_len=self.seq_len,
                                 store=self.store)

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
