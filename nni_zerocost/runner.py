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

import json
import math
import multiprocessing
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Set, Tuple

from . import __version__
from .errors import BadInputError, InvalidArchitectureError, ZeroCostError
from .plan import ProxyRequest, ScoringPlan
from .proxies.base import ProxyResult
from .store import ResultStore

#: record statuses: every proxy finite / some value a flagged fallback / some proxy has no
#: score (a documented case, flagged) / the architecture is not valid / an unexpected error
STATUSES = ("ok", "flagged", "no_score", "invalid", "error")


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
        out["arch"] = self.arch
        return out


def _results_json(results: Mapping[str, ProxyResult]) -> Dict[str, Dict[str, Any]]:
    return {s: {"raw": None if math.isnan(r.raw) else r.raw, "flag": r.flag, "seconds": r.seconds,
                "higher_is_better": r.higher_is_better} for s, r in results.items()}


def _result(request: ProxyRequest, stored: Mapping[str, Any]) -> ProxyResult:
    raw = stored.get("raw")
    return ProxyResult(request.name, math.nan if raw is None else float(raw), request.higher_is_better,
                       stored.get("flag"), float(stored.get("seconds") or 0.0))


# -- worker processes ------------------------------------------------------------------------
_WORKER_PLAN: Optional[ScoringPlan] = None
_WORKER_LIMITS: Any = None  # threadpoolctl's limiter, kept alive for the worker's lifetime

#: thread-count variables the BLAS/OpenMP libraries read when they load (before our initializer)
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def worker_threads(workers: int, threads: Optional[int] = None) -> int:
    """Threads per worker process: ``threads`` when given, else the usable CPUs shared out
    between the ``workers`` (at least one each), so that workers never oversubscribe the
    machine: on a loaded machine a thread beyond the cores spin-waits and costs many times
    the CPU time (measured: docs/devices.md)."""
    if threads is not None:
        return max(1, int(threads))
    return max(1, usable_cpus() // max(1, int(workers)))


def _worker_init(threads: int, plan: ScoringPlan) -> None:
    import torch

    global _WORKER_PLAN, _WORKER_LIMITS
    torch.set_num_threads(max(1, threads))
    try:  # numpy's and scipy's BLAS pools too (the environment variables cover them otherwise)
        from threadpoolctl import threadpool_limits

        _WORKER_LIMITS = threadpool_limits(limits=max(1, threads))
    except ImportError:
        pass
    _WORKER_PLAN = plan


class _thread_env:
    """Set the BLAS/OpenMP thread variables while worker processes are spawned (each worker
    loads its libraries with them), restoring the parent's environment afterwards."""

    def __init__(self, threads: int):
        self.threads = str(max(1, threads))
        self.saved: Dict[str, Optional[str]] = {}

    def __enter__(self):
        for name in THREAD_ENV:
            self.saved[name] = os.environ.get(name)
            os.environ[name] = self.threads
        return self

    def __exit__(self, *exc):
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _worker_eval(args):
    arch_obj, specs = args
    plan = _WORKER_PLAN
    try:
        arch = plan.parse(arch_obj)
        return "ok", _results_json(plan.score(arch, [plan.request(s) for s in specs])), None
    except Exception as e:  # reported by the parent as an error record
        return "error", f"{type(e).__name__}: {e}", _bug_traceback(e)


def _bug_traceback(e: BaseException) -> Optional[str]:
    """The traceback of an exception that is a bug (not a ZeroCostError about the input)."""
    return None if isinstance(e, ZeroCostError) else "".join(traceback.format_exception(e))


class ScoringBugError(RuntimeError):
    """An unexpected exception while scoring (a bug, not bad input), carrying the traceback of
    where it happened, worker processes included; front ends show it as a bug (exit 1)."""

    def __init__(self, record: "ArchRecord"):
        self.record = record
        super().__init__(f"scoring architecture {record.id!r} failed with an unexpected error: {record.error}\n"
                         f"--- traceback where it happened ---\n{record.traceback}")


def raise_for_error(record: "ArchRecord") -> None:
    """Raise the record's error: :class:`ScoringBugError` for a bug, else a ZeroCostError."""
    if record.error is None:
        return
    if record.traceback is not None:
        raise ScoringBugError(record)
    raise ZeroCostError(record.error)


def score_many(
    plan: ScoringPlan,
    items: Iterable[Tuple[Any, Any]],
    store: Optional[ResultStore] = None,
    *,
    workers: int = 1,
    threads: Optional[int] = None,
    progress: bool = True,
    total: Optional[int] = None,
    desc: str = "scoring",
) -> Iterator[ArchRecord]:
    """Yield one :class:`ArchRecord` per ``(id, arch)`` item, in input order.

    An item whose ``arch`` is an :class:`InvalidArchitectureError` (e.g. an unreadable input
    line) becomes an ``invalid`` record carrying that error.  ``threads``: per worker process
    (default: :func:`worker_threads`).
    """
    from .plan import check_count

    check_count("workers", workers)
    sp = plan
    pbar = _progress(progress, total, desc)
    counts: Dict[str, int] = {}
    try:
        if workers == 1:
            for item_id, arch in items:
                rec = _score_one(plan, sp, item_id, arch, store, None)
                _tick(pbar, rec, counts)
                yield rec
        else:
            threads = worker_threads(workers, threads)
            # spawn, not fork: forking a process that already runs threads (torch's and BLAS's
            # pools, NNI's engine) can leave a worker deadlocked on a lock copied mid-use.
            # Workers start once each (the pool keeps them), and get the plan once, in the
            # initializer; the environment holds while the pool spawns them (on demand).
            ctx = multiprocessing.get_context("spawn")
            with _thread_env(threads), ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                                                           initargs=(threads, plan)) as pool:
                window: List = []
                it = iter(items)
                exhausted = False
                while window or not exhausted:
                    while not exhausted and len(window) < 4 * workers:
                        try:
                            item_id, arch = next(it)
                        except StopIteration:
                            exhausted = True
                            break
                        window.append(_submit(plan, sp, item_id, arch, store, pool))
                    if window:
                        item_id, parsed, pending = window.pop(0)
                        rec = _score_one(plan, sp, item_id, parsed, store, pending)
                        _tick(pbar, rec, counts)
                        yield rec
    finally:
        if pbar is not None:
            pbar.close()


def _parse(sp, arch):
    if isinstance(arch, InvalidArchitectureError):
        return arch
    try:
        return sp.parse(arch)
    except InvalidArchitectureError as e:
        return e


def _submit(plan, sp, item_id, arch, store, pool):
    parsed = _parse(sp, arch)
    if isinstance(parsed, InvalidArchitectureError):
        return item_id, parsed, None
    todo = _todo(plan, plan.arch_key(parsed), store)
    fut = pool.submit(_worker_eval, (sp.to_dict(parsed), [r.spec for r in todo])) if todo else None
    return item_id, parsed, fut


def _todo(plan: ScoringPlan, arch_key: str, store: Optional[ResultStore]) -> List[ProxyRequest]:
    if store is None:
        return list(plan.requests)
    return [r for r in plan.requests if plan.key(arch_key, r) not in store]


def _score_one(plan: ScoringPlan, sp, item_id, arch, store, pending) -> ArchRecord:
    start = time.perf_counter()
    parsed = _parse(sp, arch)
    if isinstance(parsed, InvalidArchitectureError):
        return ArchRecord(item_id, None, None, {s: None for s in plan.specs}, "invalid", 0.0, 0, str(parsed),
                          plan.device_name)
    akey = plan.arch_key(parsed)
    todo = _todo(plan, akey, store)
    fresh: Dict[str, Dict[str, Any]] = {}
    error = bug = None
    if todo and pending is None:
        try:
            fresh = _results_json(plan.score(parsed, todo))
        except Exception as e:  # one bad architecture must not stop the run
            error, bug = f"{type(e).__name__}: {e}", _bug_traceback(e)
    elif todo:
        status, payload, bug = pending.result()
        fresh, error = (payload, None) if status == "ok" else ({}, payload)
    if store is not None:
        for r in todo:
            if r.spec in fresh:
                store.put(plan.key(akey, r), {
                    "space": plan.space, "arch_hash": akey, "proxy": r.name, "options": dict(r.options),
                    "spec": r.spec, "data": plan.data_fingerprint, "seed": plan.seed,
                    "context": dict(plan.context_options), "device": plan.device_name, "version": __version__,
                    **fresh[r.spec],
                })
    results: Dict[str, Optional[ProxyResult]] = {}
    for r in plan.requests:
        stored = fresh.get(r.spec)
        if stored is None and store is not None:
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
    return ArchRecord(item_id, sp.to_dict(parsed), sp.arch_hash(parsed), results, status, seconds, len(fresh), error,
                      plan.device_name, bug, akey)


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


# -- resuming a score file ----------------------------------------------------------------------
#: what a refused resume tells the user to do instead
START_OVER = "start over with --no-resume, or write to another --out"


def request_of(plan: ScoringPlan) -> Dict[str, Any]:
    """What, besides the architecture, identifies the results in a score file: the space, each
    proxy spec with its options, the seed, the input data, the context options (with the device
    type) and the package version -- the fields of the store key (:meth:`ScoringPlan.key`).
    ``score`` writes it into every record, so that a file is resumed only by the request that
    wrote it.  ``data_source`` only names the data for messages; ``data`` (the batch's
    fingerprint) is what is compared."""
    return json.loads(json.dumps({
        "space": plan.space,
        "proxies": {r.spec: {"name": r.name, "options": dict(r.options)} for r in plan.requests},
        "seed": plan.seed,
        "data": plan.data_fingerprint,
        "data_source": getattr(plan.batch, "source", None),
        "context": plan.key_context,
        "version": __version__,
    }))


def request_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> List[str]:
    """What differs between two :func:`request_of` dicts, one phrase per field ("seed: 0 in the
    file, 1 asked"); empty when a file written by ``old`` may be resumed by ``new``."""
    out: List[str] = []

    def differ(what: str, a: Any, b: Any) -> None:
        out.append(f"{what}: {a} in the file, {b} asked")

    if old.get("space") != new["space"]:
        differ("space", old.get("space"), new["space"])
    o, n = old.get("proxies") or {}, new["proxies"]
    if set(o) != set(n):
        differ("proxy", ", ".join(o) or "none", ", ".join(n))
    elif o != n:
        changed = [s for s in n if o[s] != n[s]]
        differ("options of " + ", ".join(changed), "; ".join(json.dumps(o[s]["options"]) for s in changed),
               "; ".join(json.dumps(n[s]["options"]) for s in changed))
    if old.get("seed") != new["seed"]:
        differ("seed", old.get("seed"), new["seed"])
    if old.get("data") != new["data"]:
        a, b = old.get("data_source"), new["data_source"]
        same_name = a == b or a is None or b is None
        differ("data", f"{a or 'batch'} {old.get('data')}" if same_name else a,
               f"{b or 'batch'} {new['data']}" if same_name else b)
    from .spaces import get_space

    oc, nc = old.get("context") or {}, new["context"]
    allowed = get_space(new["space"]).context_options()
    for key in sorted(set(oc) | set(nc)):
        if oc.get(key) != nc.get(key):
            values = getattr(allowed.get(key), "values", None)
            default = f"{values[0]} (the default)" if isinstance(values, (tuple, list)) else "the default"
            differ(key, oc.get(key, default), nc.get(key, default))
    if old.get("version") != new["version"]:
        differ("nni-zerocost version", old.get("version"), new["version"])
    return out


def resume_output(path: str | os.PathLike, plan: ScoringPlan, items: Iterable[Tuple[Any, Any]],
                  id_field: str = "id") -> Tuple[Set[str], List[str]]:
    """The ids (``json.dumps``'d) of ``items`` whose results the score file at ``path`` already
    holds, and notes for the user.

    A file is resumed only when every record carries this plan's request (:func:`request_of`)
    and, for every id it shares with ``items``, the same architecture (its ``arch_key``):
    otherwise its results are not the ones asked for, and :class:`BadInputError` (field ``out``)
    says what differs.  A torn last line (a run killed mid-write) is cut off, with a note.
    """
    p = Path(path)
    notes: List[str] = []
    if not p.exists():
        return set(), notes
    subject = repr(str(path))
    request = request_of(plan)
    data = p.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1].strip():  # unterminated last line: kept if whole, cut if torn
        try:
            json.loads(lines[-1])
            with open(p, "ab") as f:  # whole: end it, so the next record starts a line of its own
                f.write(b"\n")
        except ValueError:
            with open(p, "r+b") as f:
                f.truncate(len(data) - len(lines[-1]))
            notes.append(f"{path}: cut a torn last line (line {len(lines)}, a write interrupted); it is re-scored")
            lines = lines[:-1]
    keys: Dict[str, Tuple[int, Optional[str]]] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise BadInputError("out", f"line {lineno} is not a JSON object ({e}); {START_OVER}", subject) from None
        if not isinstance(row, dict) or not isinstance(row.get("request"), dict):
            raise BadInputError("out", f"line {lineno} does not say which request wrote it (a file of an older "
                                       f"version or of another program); {START_OVER}", subject)
        diff = request_diff(row["request"], request)
        if diff:
            raise BadInputError("out", f"holds results of another request ({'; '.join(diff)}); {START_OVER}",
                                subject)
        keys[json.dumps(row.get(id_field))] = (lineno, row.get("arch_key"))
    done: Set[str] = set()
    for item_id, arch in items:
        k = json.dumps(item_id)
        if k not in keys:
            continue
        parsed = _parse(plan, arch)
        key = None if isinstance(parsed, InvalidArchitectureError) else plan.arch_key(parsed)
        lineno, had = keys[k]
        if key != had:
            raise BadInputError("out", f"line {lineno} holds another architecture under {id_field} {item_id!r} "
                                       f"than the input now gives (edited since?); {START_OVER}", subject)
        done.add(k)
    return done, notes
