"""How many processes and threads score: one policy for every front end.

(Jobs started together on one machine claim the cores they use, so that they share them:
:mod:`nni_zerocost.core_claims`.)

Why a policy at all: torch's default is one intra-op thread per core.  On a machine where some
other process is busy, a thread beyond the idle cores spin-waits at every parallel region, and
scoring gets several times slower (measured in docs/throughput.md: 2 threads on a 2-core
machine with one busy process took 2.4x the time of 1 thread for a recurrent cell).  On a quiet
machine the same second thread speeds a BERT scoring up 1.8x.  So:

- ``--threads N`` / :func:`pin_threads` / ``$NNI_ZEROCOST_THREADS``: exactly N threads per
  scoring process, always (what tests and bit-for-bit comparisons use).
- otherwise, a process that scores on its own uses the cores nobody else is using, measured
  from ``/proc/stat`` over 50 ms and re-measured at most every 30 seconds;
- worker processes share those idle cores out (at least one thread each).
- ``--workers auto``: one worker per usable core, but no more than one per
  :data:`ARCHS_PER_WORKER` architectures (starting a worker costs about as much as scoring a
  few architectures), and none at all (scoring in this process) for fewer.

"Usable" cores are this process's CPU affinity, capped by a cgroup CPU quota (containers,
Kubernetes, Slurm).  Thread counts change float rounding (about 1e-8 relative), which can
reorder only near-ties; the result store does not key on them.
"""
from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from typing import Iterator, Optional

from .errors import BadInputError

#: the environment variable that pins the threads of every scoring process
THREADS_ENV = "NNI_ZEROCOST_THREADS"
#: thread-count variables the BLAS/OpenMP libraries read when they load
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
#: ``--workers auto`` starts at most one worker per this many architectures
ARCHS_PER_WORKER = 8
#: how long a measurement of the other processes' load is trusted
LOAD_TTL_S = 30.0

_pinned: Optional[int] = None
_measured: Optional[tuple] = None  # (monotonic time, idle cores)
_scope = threading.local()  # the thread count of the scoring scope this thread is in, if any


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(n, quota)) if quota else max(1, n)


def _cgroup_quota() -> Optional[int]:
    """Whole CPUs a cgroup quota allows (v2 ``cpu.max`` or v1 ``cfs_quota_us``), None if unlimited."""
    for path, split in (("/sys/fs/cgroup/cpu.max", None),
                        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")):
        try:
            with open(path) as f:
                text = f.read().split()
            if split is None:
                quota, period = text[0], text[1]
            else:
                with open(split) as f:
                    quota, period = text[0], f.read().split()[0]
            if quota in ("max", "-1"):
                return None
            return max(1, math.ceil(int(quota) / int(period)))
        except (OSError, ValueError, IndexError):
            continue
    return None


def resolve_workers(workers, n_items: Optional[int]) -> int:
    """The number of worker processes for ``n_items`` architectures (1 = score in this process);
    ``workers`` is a checked count or ``"auto"`` (:func:`nni_zerocost.job.check_job`)."""
    if workers != "auto":
        return int(workers)
    if n_items is None:
        return usable_cpus()
    return max(1, min(usable_cpus(), n_items // ARCHS_PER_WORKER))


def _env_threads() -> Optional[int]:
    env = os.environ.get(THREADS_ENV)
    if not env:
        return None
    try:
        value = int(env)
    except ValueError:
        value = 0
    if value < 1:
        raise BadInputError("threads", f"${THREADS_ENV} must be an integer >= 1, got {env!r}")
    return value


def pinned_threads() -> Optional[int]:
    """The pinned thread count (:func:`pin_threads` or ``$NNI_ZEROCOST_THREADS``), else None."""
    if _pinned is not None:
        return _pinned
    return _env_threads()


def pin_threads(threads: Optional[int]) -> None:
    """Pin this process's scoring threads (None un-pins); sets torch's thread count now."""
    global _pinned
    _pinned = None if threads is None else int(threads)
    if _pinned is not None:
        import torch

        if torch.get_num_threads() != _pinned:
            torch.set_num_threads(_pinned)


@contextlib.contextmanager
def pinned_for_run(threads: Optional[int]) -> Iterator[None]:
    """A front end's ``--threads`` for the block: this process pinned, and through
    ``$NNI_ZEROCOST_THREADS`` every process started from it (workers, NNI trials); the
    environment, the pin and torch's thread count are put back after.  None: the policy decides."""
    global _pinned
    if threads is None:
        yield
        return
    import torch

    saved = (os.environ.get(THREADS_ENV), _pinned, torch.get_num_threads())
    os.environ[THREADS_ENV] = str(threads)
    pin_threads(threads)
    try:
        yield
    finally:
        env, _pinned, count = saved
        if env is None:
            os.environ.pop(THREADS_ENV, None)
        else:
            os.environ[THREADS_ENV] = env
        torch.set_num_threads(count)


def busy_cores(window_s: float = 0.05) -> float:
    """Cores other processes kept busy over the last ``window_s`` seconds (``/proc/stat``; this
    process's own CPU time is left out); 0.0 where the OS does not say."""
    def snapshot():
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]) - idle, time.monotonic(), time.process_time()

    try:
        b0, t0, p0 = snapshot()
        time.sleep(window_s)
        b1, t1, p1 = snapshot()
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    others = (b1 - b0) / ticks - (p1 - p0)
    return max(0.0, others / max(t1 - t0, 1e-6))


def idle_cores() -> int:
    """Usable cores nobody else is using (at least 1), re-measured at most every LOAD_TTL_S."""
    global _measured
    now = time.monotonic()
    if _measured is None or now - _measured[0] > LOAD_TTL_S:
        _measured = (now, max(1, usable_cpus() - int(round(busy_cores()))))
    return _measured[1]


def claim_threads(workers: int = 1, threads: Optional[int] = None):
    """``(threads for each of workers processes, the claim holding their cores)``.

    An explicit or pinned count is taken as it is (and claimed as far as cores are free, so that
    jobs started beside it see them taken).  Otherwise this process first claims one core, then
    measures the idle cores, then claims up to that many (:mod:`nni_zerocost.core_claims`): jobs
    that start together split the machine; a job alone gets every idle core.  The claim is held
    until the caller releases it (the end of a run, the closing of a worker pool)."""
    from .core_claims import CoreClaim

    fixed = threads if threads is not None else pinned_threads()
    claim = CoreClaim(usable_cpus())
    if fixed is not None:
        claim.take(int(fixed) * max(1, int(workers)))
        return int(fixed), claim
    claim.take(1)
    idle = idle_cores()
    if not claim.available:
        return max(1, idle // max(1, int(workers))), claim
    claim.take(idle)
    return max(1, claim.count // max(1, int(workers))), claim


def threads_per_process(workers: int = 1, threads: Optional[int] = None) -> int:
    """Threads for each of ``workers`` scoring processes: ``threads``, else the pinned count,
    else the idle cores shared out (at least one each), ignoring other jobs' claims."""
    if threads is not None:
        return int(threads)
    pinned = pinned_threads()
    if pinned is not None:
        return pinned
    return max(1, idle_cores() // max(1, int(workers)))


@contextlib.contextmanager
def scoring_threads(threads: Optional[int] = None) -> Iterator[int]:
    """torch's intra-op threads set by the policy while scoring in this process, restored after
    (a user's own ``torch.set_num_threads`` holds again outside).  Inside an outer scope (the
    runner's loop, with its ``--threads``), a nested call without ``threads`` keeps the outer
    count: the scope's choice holds for every architecture it scores."""
    import torch
    from threadpoolctl import threadpool_limits

    if threads is None and getattr(_scope, "threads", None) is not None:
        yield _scope.threads
        return
    n, claim = claim_threads(1, threads)
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    outer, _scope.threads = getattr(_scope, "threads", None), n
    try:
        with claim, threadpool_limits(limits=n):  # numpy's and scipy's BLAS pools: same count, same rounding
            yield n
    finally:
        _scope.threads = outer
        if n != before and _pinned is None:
            torch.set_num_threads(before)


class thread_env:
    """Set the BLAS/OpenMP thread variables while worker processes start (each loads its
    libraries with them), restoring this process's environment afterwards."""

    def __init__(self, threads: int):
        self.threads = str(max(1, threads))
        self.saved = {}

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
