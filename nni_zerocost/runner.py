"""Score many architectures with one plan: store-backed, resumable, optionally parallel.

This is the one loop behind the CLI's ``score``/``benchmark``, the NNI adapters and the search
front end.  For each architecture it opens one scoring context, computes only the proxies the
store does not already hold (so shared passes are shared), appends each result to the store as
soon as it exists, and never lets one bad architecture stop the run: invalid input and
unexpected errors become records with ``status`` and ``error``.

Records keep the full :class:`~nni_zerocost.proxies.ProxyResult` of every proxy (raw value,
sign-normalised score, flag), so nothing downstream re-derives a sign.
"""
from __future__ import annotations

import contextlib
import functools
import json
import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import torch

from .version import __version__
from .errors import InvalidArchitectureError, ZeroCostError
from .plan import ProxyRequest, ScoringPlan
from .proxies.base import ProxyResult
from .score_file import request_of
from .worker import _worker_eval, _worker_init, counted_costs, evaluate, plan_job_text
from .store import ResultStore
from .threads import claim_threads, thread_env

#: record statuses: every proxy finite / some value a flagged fallback / some proxy has no
#: score (a documented case, flagged) / over the job's size budget (not scored) / the
#: architecture is not valid / an unexpected error
STATUSES = ("ok", "flagged", "no_score", "over_budget", "invalid", "error")


@dataclass
class ArchRecord:
    """Results of one architecture.  ``results[spec]`` is None only when nothing was computed
    (invalid architecture, error); ``seconds`` is the model work for it, start-up excluded."""

    id: Any
    arch: Optional[Mapping[str, Any]]
    arch_hash: Optional[str]
    results: Dict[str, Optional[ProxyResult]]
    status: str
    seconds: float
    computed: int  # proxies computed now (0 = everything came from the store)
    error: Optional[str] = None
    device: str = "cpu"  # the plan's device (store keys of other device types never match)
    #: the traceback when the error is a bug (an exception that is not a ZeroCostError), else None
    traceback: Optional[str] = None
    arch_key: Optional[str] = None  # what keys its scores under the plan (plan.arch_key)
    sizes: Optional[Dict[str, float]] = None  # params / nonembedding_params / flops, with a size budget
    costs: Optional[Dict[str, Dict[str, Any]]] = None  # name -> a CostResult's dict (value, unit, protocol, ...)

    @property
    def values(self) -> Dict[str, Optional[float]]:
        """Raw proxy values (None when there is no score)."""
        return {s: (r.raw if r is not None and r.ok else None) for s, r in self.results.items()}

    @property
    def scores(self) -> Dict[str, Optional[float]]:
        """Sign-normalised scores, higher = better (None when there is no score)."""
        return {s: (r.score if r is not None and r.ok else None) for s, r in self.results.items()}

    @property
    def flags(self) -> Dict[str, str]:
        return {s: r.flag for s, r in self.results.items() if r is not None and r.flag}

    @property
    def proxy_seconds(self) -> Dict[str, float]:
        return {s: r.seconds for s, r in self.results.items() if r is not None}

    def to_json(self, id_field: str = "id") -> Dict[str, Any]:
        out: Dict[str, Any] = {id_field: self.id, "arch_hash": self.arch_hash, "arch_key": self.arch_key}
        out.update(self.values)
        out["scores"] = self.scores
        out["status"] = self.status
        if self.flags:
            out["flags"] = self.flags
        if self.error:
            out["error"] = self.error
        out["seconds"] = round(self.seconds, 6)
        if self.results and any(r is not None for r in self.results.values()):
            out["proxy_seconds"] = {k: round(v, 6) for k, v in self.proxy_seconds.items()}
        out["device"] = self.device
        if self.sizes is not None:
            out["sizes"] = self.sizes
        if self.costs:
            out["costs"] = {name: c["value"] for name, c in self.costs.items()}
            out["cost_details"] = {name: {k: v for k, v in c.items() if k not in ("name", "value")}
                                   for name, c in self.costs.items()}
        out["arch"] = self.arch
        return out


def _result(request: ProxyRequest, stored: Mapping[str, Any]) -> ProxyResult:
    raw = stored.get("raw")
    return ProxyResult(request.name, math.nan if raw is None else float(raw), request.higher_is_better,
                       stored.get("flag"), float(stored.get("seconds") or 0.0))


class ScoringBugError(RuntimeError):
    """An unexpected exception while scoring (a bug, not bad input), carrying the traceback of
    where it happened, worker processes included; front ends show it as a bug (exit 1)."""

    def __init__(self, record: "ArchRecord"):
        self.record = record
        super().__init__(f"scoring architecture {record.id!r} failed with an unexpected error: {record.error}\n"
                         f"--- traceback where it happened ---\n{record.traceback}")


def raise_for_error(record: "ArchRecord") -> None:
    """Raise the record's error: :class:`ScoringBugError` for a bug, else a ZeroCostError."""
    if record.error is None or record.status == "over_budget":
        return
    if record.traceback is not None:
        raise ScoringBugError(record)
    raise ZeroCostError(record.error)


def worker_devices(plan: ScoringPlan, workers: int) -> Optional[List[str]]:
    """The device of each worker: round robin over every visible GPU when the plan asks for
    CUDA without naming an index (``auto`` or ``cuda``); None = every worker on the plan's."""
    asked = getattr(plan.scoring_request, "device", None)
    if plan.device.type != "cuda" or (asked not in (None, "auto", "cuda")):
        return None
    n = torch.cuda.device_count()
    return [f"cuda:{i % n}" for i in range(workers)] if n > 1 else None


class ProcessBackend:
    """Local worker processes (spawned, not forked: forking a process that already runs threads,
    torch's and BLAS's pools or NNI's engine, can leave a worker deadlocked on a copied lock).
    Workers start once each and get the job once, in the initializer."""

    def __init__(self, plan: ScoringPlan, job_text: str, workers: int, threads: Optional[int] = None):
        """``threads`` per worker (None: the policy's share of the cores this pool claims, held
        until :meth:`close`)."""
        self.capacity = workers
        threads, self._claim = claim_threads(workers, threads)
        ctx = multiprocessing.get_context("spawn")
        devices = worker_devices(plan, workers)
        self._manager = queue = None
        if devices is not None:
            self._manager = ctx.Manager()
            queue = self._manager.Queue()

        def start():  # every pool, the fresh one after a dead worker too, deals the devices out anew
            if queue is not None:
                while not queue.empty():
                    queue.get_nowait()
                for d in devices:
                    queue.put(d)
            return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                                       initargs=(threads, job_text, queue))

        self._env = thread_env(threads)
        self._env.__enter__()  # the environment holds while the pool spawns workers (on demand)
        self._start = start
        self.pool = self._start()

    def submit(self, arch_obj, specs, cost_request=None):
        args = (arch_obj, specs, cost_request)
        return _Retried(self, args, self._submit(args))

    def _submit(self, args):
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self.pool.submit(_worker_eval, args)
        except BrokenProcessPool:  # a worker died: a fresh pool takes the rest
            self.pool.shutdown(wait=True, cancel_futures=True)  # its workers gone before the next take a device
            self.pool = self._start()
            return self.pool.submit(_worker_eval, args)

    def close(self):
        try:
            self.pool.shutdown(wait=True, cancel_futures=True)
        finally:
            self._claim.release()
            self._env.__exit__()
            if self._manager is not None:
                self._manager.shutdown()


class _Retried:
    """A pool future that is tried once more when its pool broke.  A worker that dies breaks the
    whole pool and fails every architecture in flight, not only the one it was scoring; each of
    them is submitted again when the caller waits for it (in input order, to a fresh pool), so
    only an architecture that kills its worker a second time becomes an error record."""

    def __init__(self, backend: "ProcessBackend", args, future):
        self.backend, self.args, self.future = backend, args, future

    def result(self):
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self.future.result()
        except BrokenProcessPool:
            return self.backend._submit(self.args).result()


def make_backend(checked, threads: Optional[int] = None):
    """Where the checked job's architectures are scored: None (this process), local workers, or
    Ray tasks."""
    job = checked.job
    if job.ray is not None:
        from .ray_backend import RayBackend

        return RayBackend(checked.plan, plan_job_text(checked), job.ray, threads=job.threads or 1,
                          gpus_per_task=job.gpus_per_task)
    if checked.workers > 1:
        return ProcessBackend(checked.plan, plan_job_text(checked), checked.workers, job.threads)
    return None


# -- the loop ------------------------------------------------------------------------------------
def open_store(path: Optional[str]) -> Optional[ResultStore]:
    return None if path is None else ResultStore(path)


def run(checked, *, progress: bool = True, desc: str = "scoring", backend=None) -> Iterator[ArchRecord]:
    """Score a checked job (:func:`nni_zerocost.job.check_job`): one :class:`ArchRecord` per
    architecture, in input order.

    Only what the results store does not hold is computed; every fresh result is stored as soon
    as it exists, and with the job's ``out`` every record is appended to that file (fsync'd)
    with the request that wrote it, so a killed run loses nothing and a re-run resumes.  An
    architecture over the job's size budget becomes an ``over_budget`` record with no model
    work; an invalid one an ``invalid`` record; an unexpected error an ``error`` record with its
    traceback.  Where the work runs (this process, local workers, Ray tasks) does not change
    the records.  The thread policy is applied once for the run.  ``backend``: where the work
    runs, instead of the job's (:func:`make_backend`; :func:`nni_zerocost.testing.check_backend`
    checks your own)."""
    from .threads import scoring_threads

    job, plan = checked.job, checked.plan
    todo = checked.todo
    store = open_store(checked.store_path)
    out = _open_output(checked)
    request = request_of(plan) if out is not None else None
    pbar = _progress(progress, len(todo), desc)
    counts: Dict[str, int] = {}
    try:
        if backend is None:
            backend = make_backend(checked)
        with (scoring_threads(job.threads) if backend is None else contextlib.nullcontext()):
            for rec in _records(checked, todo, store, backend):
                if out is not None:
                    out.write(json.dumps({**rec.to_json(checked.id_field), "request": request}) + "\n")
                    out.flush()
                    os.fsync(out.fileno())
                _tick(pbar, rec, counts)
                yield rec
    finally:
        if backend is not None:
            backend.close()
        if out is not None:
            out.close()
        if pbar is not None:
            pbar.close()


def score_one(checked, arch, item_id: Any = 0, store: Optional[ResultStore] = None) -> ArchRecord:
    """One architecture of a checked job, in this process, through the job's results store (or
    ``store``): what the NNI adapters and Optuna trials call per candidate.  It scores under the
    thread policy of a run (the same numbers as :func:`run`), put back when it returns."""
    from .threads import scoring_threads

    if store is None:
        store = _shared_store(checked.store_path)
    with scoring_threads(checked.job.threads):
        return next(_records(checked, [(item_id, arch)], store, None))


@functools.lru_cache(maxsize=4)
def _shared_store(path: Optional[str]) -> Optional[ResultStore]:
    return open_store(path)


def _open_output(checked):
    if checked.job.out is None:
        return None
    path = Path(checked.job.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "a" if checked.job.resume else "w", encoding="utf-8")


def _records(checked, items, store, backend) -> Iterator[ArchRecord]:
    if backend is None:
        for item_id, arch in items:
            yield _score_one(checked, item_id, arch, store, None)
        return
    window: List = []
    it = iter(items)
    exhausted = False
    while window or not exhausted:
        while not exhausted and len(window) < 4 * backend.capacity:
            try:
                item_id, arch = next(it)
            except StopIteration:
                exhausted = True
                break
            window.append(_submit(checked, item_id, arch, store, backend))
        if window:
            item_id, parsed, pending = window.pop(0)
            yield _score_one(checked, item_id, parsed, store, pending)


def _parse(plan: ScoringPlan, arch):
    if isinstance(arch, InvalidArchitectureError):
        return arch
    try:
        return plan.parse(arch)
    except InvalidArchitectureError as e:
        return e


def _over_budget(checked, parsed) -> Tuple[Optional[str], Optional[Dict[str, float]]]:
    """Why ``parsed`` is over the job's size budget (no model work), and its sizes."""
    if not checked.budget.active:
        return None, None
    from .budget import sizes

    found = sizes(checked.plan.search_space, parsed, checked.plan.context_options)
    return checked.budget.over(found), found


def _submit(checked, item_id, arch, store, backend):
    plan = checked.plan
    parsed = _parse(plan, arch)
    if isinstance(parsed, InvalidArchitectureError) or _over_budget(checked, parsed)[0] is not None:
        return item_id, parsed, None
    akey = plan.arch_key(parsed)
    todo = _todo(plan, akey, store)
    known, cost_request = _costs_todo(checked, akey, store)
    if _over_measured_budget(checked, known):
        return item_id, parsed, None
    if not todo and not cost_request:
        return item_id, parsed, None
    args = (plan.to_dict(parsed), [r.spec for r in todo]) + ((cost_request,) if cost_request else ())
    return item_id, parsed, backend.submit(*args)


# -- costs ---------------------------------------------------------------------------------------
def _cost_key(checked, akey: str, name: str, fingerprint: str) -> str:
    """Store key of one measured cost: the architecture, the cost and its protocol (row length,
    threads), and the machine it was measured on (results of other machines never mix)."""
    from .store import make_key

    plan, req = checked.plan, checked.cost_request
    return make_key(plan.space, akey, f"cost:{name}", {"seq_len": req["seq_len"], "threads": req["threads"]},
                    fingerprint, plan.seed, plan.key_context)


def _here_fingerprint(checked) -> str:
    from .costs import device_fingerprint, fingerprint_key

    device = checked.plan.device
    return fingerprint_key(device_fingerprint(device if device.type != "cuda" or device.index is not None
                                              else torch.device("cuda", 0), checked.cost_request["threads"]))


def _costs_todo(checked, akey: Optional[str], store: Optional[ResultStore]):
    """``(costs the store holds, the request for the measured costs still to measure or None)``."""
    req = checked.cost_request
    if req is None or not req["measured"]:
        return {}, None
    known: Dict[str, Dict[str, Any]] = {}
    if store is not None and akey is not None:
        here = _here_fingerprint(checked)
        for name in req["measured"]:
            stored = store.get(_cost_key(checked, akey, name, here))
            if stored is not None:
                known[name] = stored["cost"]
    missing = [n for n in req["measured"] if n not in known]
    if not missing:
        return known, None
    limits = {n: v for n, v in req["limits"].items() if n in missing}
    return known, {"names": missing, "seq_len": req["seq_len"], "threads": req["threads"], "limits": limits}


def _over_measured_budget(checked, costs: Mapping[str, Mapping[str, Any]]) -> Optional[str]:
    req = checked.cost_request
    if req is None:
        return None
    over = [f"{n} {costs[n]['value']:.4g} > {limit:.4g}" for n, limit in req["limits"].items()
            if n in costs and costs[n]["value"] > limit]
    return "over budget: " + "; ".join(over) if over else None


def _counted_costs(checked, parsed) -> Dict[str, Dict[str, Any]]:
    """The analytic costs asked for (layers, FLOPs per token), from the architecture alone."""
    req = checked.cost_request
    return {} if req is None else counted_costs(checked.plan, parsed, req["names"])


def _todo(plan: ScoringPlan, arch_key: Optional[str], store: Optional[ResultStore]) -> List[ProxyRequest]:
    if store is None or arch_key is None:
        return list(plan.requests)
    return [r for r in plan.requests if plan.key(arch_key, r) not in store]


def _score_one(checked, item_id, arch, store, pending) -> ArchRecord:
    plan = checked.plan
    start = time.perf_counter()
    parsed = _parse(plan, arch)
    if isinstance(parsed, InvalidArchitectureError):
        return ArchRecord(item_id, None, None, {s: None for s in plan.specs}, "invalid", 0.0, 0, str(parsed),
                          plan.device_name)
    reason, found = _over_budget(checked, parsed)
    if reason is not None:
        return ArchRecord(item_id, plan.to_dict(parsed), plan.arch_hash(parsed), {s: None for s in plan.specs},
                          "over_budget", 0.0, 0, reason, plan.device_name, None, plan.arch_key(parsed), found)
    akey = plan.arch_key(parsed)
    todo = _todo(plan, akey, store)
    known, cost_request = _costs_todo(checked, akey, store)
    fresh: Dict[str, Dict[str, Any]] = {}
    measured: Dict[str, Dict[str, Any]] = {}
    error = bug = over = None
    device = plan.device_name
    over = _over_measured_budget(checked, known)
    if over is None and (todo or cost_request) and pending is None:
        status, payload, bug, device, measured = evaluate(plan, parsed, [r.spec for r in todo], cost_request)
    elif over is None and (todo or cost_request):
        try:
            status, payload, bug, device, *rest = pending.result()
            measured = rest[0] if rest else {}
        except Exception as e:  # the worker itself died (killed, lost node): an error record
            status, payload, bug = "error", _lost_worker(e), None
    if over is None and (todo or cost_request):
        if status == "ok":
            fresh = payload
        elif status == "over_budget":
            over = payload
        else:
            error = payload
    if store is not None and akey is not None:
        for name, cost in measured.items():
            store.put(_cost_key(checked, akey, name, cost["fingerprint"]), {
                "space": plan.space, "arch_hash": akey, "cost": cost, "seed": plan.seed, "device": device,
                "version": __version__})
    costs = {**_counted_costs(checked, parsed), **known, **measured}
    if over is not None:
        return ArchRecord(item_id, plan.to_dict(parsed), plan.arch_hash(parsed), {s: None for s in plan.specs},
                          "over_budget", 0.0, 0, over, device, None, akey, found, costs or None)
    if store is not None and akey is not None:
        for r in todo:
            if r.spec in fresh:
                store.put(plan.key(akey, r), {
                    "space": plan.space, "arch_hash": akey, "proxy": r.name, "options": dict(r.options),
                    "spec": r.spec, "data": plan.data_fingerprint, "seed": plan.seed,
                    "context": dict(plan.context_options), "device": device, "version": __version__,
                    **fresh[r.spec],
                })
    results: Dict[str, Optional[ProxyResult]] = {}
    for r in plan.requests:
        stored = fresh.get(r.spec)
        if stored is None and store is not None and akey is not None:
            stored = store.get(plan.key(akey, r))
        results[r.spec] = None if stored is None else _result(r, stored)
    if error:
        status = "error"
    elif any(res is None or not res.ok for res in results.values()):
        status = "no_score"
    elif any(res.flag for res in results.values()):
        status = "flagged"
    else:
        status = "ok"
    seconds = sum(float(v.get("seconds") or 0.0) for v in fresh.values()) if pending is not None \
        else time.perf_counter() - start
    return ArchRecord(item_id, plan.to_dict(parsed), plan.arch_hash(parsed), results, status, seconds, len(fresh),
                      error, device, bug, akey, found, costs or None)


def _lost_worker(e: BaseException) -> str:
    """What an error record says when the process scoring an architecture died."""
    from concurrent.futures.process import BrokenProcessPool

    if isinstance(e, BrokenProcessPool):
        return "the worker process died (killed, or out of memory); the architecture was not scored"
    return f"the worker scoring it was lost ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"


def _progress(enabled: bool, total, desc):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="arch", dynamic_ncols=True, leave=False)


def _tick(pbar, rec: ArchRecord, counts: Dict[str, int]) -> None:
    counts[rec.status] = counts.get(rec.status, 0) + 1
    if pbar is not None:
        pbar.update(1)
        pbar.set_postfix_str(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(counts.items())), refresh=False)
