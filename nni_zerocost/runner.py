"""Score many architectures with many proxies: store-backed, resumable, optionally parallel.

This is the one loop behind the CLI's ``score``/``benchmark`` and the search front end.  For
each architecture it opens one scoring context, computes only the proxies the store does not
already hold (so shared passes are shared), appends each result to the store as soon as it
exists, and never lets one bad architecture stop the run: invalid input and unexpected errors
become records with ``status`` and ``error``.
"""
from __future__ import annotations

import math
import multiprocessing
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from . import __version__
from .errors import InvalidArchitectureError, ProxyNotApplicableError, ProxyOptionError, ZeroCostError
from .proxies.base import compute_many, get_proxy, parse_proxy_spec
from .spaces import get_space
from .store import ResultStore, make_key


@dataclass
class ScoreJob:
    """What to compute: one space, proxy specs, one batch, seed and context options."""

    space: str
    proxies: Sequence[str]
    batch: Any
    seed: int = 0
    context_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        sp = get_space(self.space)
        self.parsed = []
        for spec in self.proxies:
            name, opts = parse_proxy_spec(spec)
            proxy = get_proxy(name)
            if not proxy.applies_to(self.space):
                raise ProxyNotApplicableError(
                    f"proxy {name!r} does not apply to the {self.space!r} space; proxies for it: "
                    + ", ".join(n for n in _names() if get_proxy(n).applies_to(self.space))
                )
            defaults = proxy.impl(self.space).defaults
            bad = set(opts) - set(defaults)
            if bad:
                raise ProxyOptionError(f"proxy {name!r} has no option(s) {sorted(bad)}; valid: {sorted(defaults) or 'none'}")
            self.parsed.append((spec, name, {**defaults, **opts}))
        self.data_fingerprint = self.batch.fingerprint if self.batch is not None else sp.default_batch(0).fingerprint

    def key(self, arch_hash: str, name: str, opts: Mapping[str, Any]) -> str:
        return make_key(self.space, arch_hash, name, opts, self.data_fingerprint, self.seed, self.context_options)


def _names():
    from .proxies.base import list_proxies

    return list_proxies()


@dataclass
class ArchRecord:
    """Result of one architecture: raw proxy values by spec (None when no score)."""

    id: Any
    arch_hash: Optional[str]
    values: Dict[str, Optional[float]]
    flags: Dict[str, str]
    status: str  # ok | flagged | failed | invalid | error
    seconds: float
    computed: int  # proxies computed now (0 = everything came from the store)
    error: Optional[str] = None
    proxy_seconds: Dict[str, float] = field(default_factory=dict)

    def to_json(self, id_field: str = "id") -> Dict[str, Any]:
        out: Dict[str, Any] = {id_field: self.id, "arch_hash": self.arch_hash}
        out.update(self.values)
        out["status"] = self.status
        if self.flags:
            out["flags"] = self.flags
        if self.error:
            out["error"] = self.error
        out["seconds"] = round(self.seconds, 6)
        return out


def _evaluate(job: ScoreJob, arch, todo: List[Tuple[str, str, dict]]) -> Dict[str, Dict[str, Any]]:
    """Compute ``todo`` proxies of one architecture in one context (runs in workers too)."""
    sp = get_space(job.space)
    out = {}
    with sp.context(arch, job.batch, seed=job.seed, **job.context_options) as ctx:
        for spec, r in compute_many(ctx, todo).items():
            out[spec] = {"raw": None if math.isnan(r.raw) else r.raw, "flag": r.flag, "seconds": r.seconds,
                         "higher_is_better": r.higher_is_better}
    return out


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, threads))


def _worker_eval(args):
    job, arch_obj, todo = args
    try:
        return "ok", _evaluate(job, get_space(job.space).parse(arch_obj), todo)
    except Exception as e:  # reported by the parent as an error record
        return "error", f"{type(e).__name__}: {e}"


def score_many(
    job: ScoreJob,
    items: Iterable[Tuple[Any, Any]],
    store: Optional[ResultStore] = None,
    *,
    workers: int = 1,
    progress: bool = True,
    total: Optional[int] = None,
    desc: str = "scoring",
) -> Iterator[ArchRecord]:
    """Yield one :class:`ArchRecord` per ``(id, arch)`` item, in input order."""
    sp = get_space(job.space)
    pbar = _progress(progress, total, desc)
    try:
        if workers <= 1:
            for item_id, arch in items:
                rec = _score_one(job, sp, item_id, arch, store, None)
                _tick(pbar, rec)
                yield rec
        else:
            threads = max(1, (os.cpu_count() or 1) // workers)
            # spawn, not fork: forking a process that already runs threads (torch's and BLAS's
            # pools, NNI's engine) can leave a worker deadlocked on a lock copied mid-use
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=(threads,)) as pool:
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
                        window.append(_submit(job, sp, item_id, arch, store, pool))
                    if window:
                        item_id, parsed, pending = window.pop(0)
                        rec = _score_one(job, sp, item_id, parsed, store, pending)
                        _tick(pbar, rec)
                        yield rec
    finally:
        if pbar is not None:
            pbar.close()


def _submit(job, sp, item_id, arch, store, pool):
    try:
        parsed = sp.parse(arch)
    except InvalidArchitectureError as e:
        return item_id, e, None
    todo = _todo(job, sp.arch_hash(parsed), store)
    fut = pool.submit(_worker_eval, (job, sp.to_dict(parsed), todo)) if todo else None
    return item_id, parsed, fut


def _todo(job: ScoreJob, arch_hash: str, store: Optional[ResultStore]):
    if store is None:
        return list(job.parsed)
    return [(s, n, o) for s, n, o in job.parsed if job.key(arch_hash, n, o) not in store]


def _score_one(job: ScoreJob, sp, item_id, arch, store, pending) -> ArchRecord:
    start = time.perf_counter()
    if isinstance(arch, InvalidArchitectureError):
        return ArchRecord(item_id, None, {s: None for s, _, _ in job.parsed}, {}, "invalid", 0.0, 0, str(arch))
    try:
        parsed = sp.parse(arch)
    except InvalidArchitectureError as e:
        return ArchRecord(item_id, None, {s: None for s, _, _ in job.parsed}, {}, "invalid", 0.0, 0, str(e))
    h = sp.arch_hash(parsed)
    todo = _todo(job, h, store)
    fresh: Dict[str, Dict[str, Any]] = {}
    error = None
    if todo:
        if pending is None:
            try:
                fresh = _evaluate(job, parsed, todo)
            except Exception as e:  # one bad architecture must not stop the run
                error = f"{type(e).__name__}: {e}"
                if not isinstance(e, ZeroCostError) and os.environ.get("NNI_ZEROCOST_DEBUG"):
                    traceback.print_exc()
        else:
            status, payload = pending.result() if pending is not None else ("ok", {})
            if status == "ok":
                fresh = payload
            else:
                error = payload
        if store is not None:
            for spec, name, opts in todo:
                if spec in fresh:
                    r = fresh[spec]
                    store.put(job.key(h, name, opts), {
                        "space": job.space, "arch_hash": h, "proxy": name, "options": opts, "spec": spec,
                        "data": job.data_fingerprint, "seed": job.seed, "context": dict(job.context_options),
                        "version": __version__, **r,
                    })
    values, flags, secs = {}, {}, {}
    for spec, name, opts in job.parsed:
        r = fresh.get(spec)
        if r is None and store is not None:
            r = store.get(job.key(h, name, opts))
        if r is None:
            values[spec] = None
            continue
        values[spec] = r["raw"]
        secs[spec] = r.get("seconds", 0.0)
        if r.get("flag"):
            flags[spec] = r["flag"]
    if error:
        status = "error"
    elif any(v is None for v in values.values()):
        status = "failed"
    elif flags:
        status = "flagged"
    else:
        status = "ok"
    return ArchRecord(item_id, h, values, flags, status, time.perf_counter() - start, len(fresh), error, secs)


def _progress(enabled: bool, total, desc):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="arch", dynamic_ncols=True, leave=False)


def _tick(pbar, rec: ArchRecord) -> None:
    if pbar is not None:
        pbar.update(1)
        pbar.set_postfix_str(rec.status, refresh=False)
