"""Ray tasks as the runner's workers: one architecture per task, on any machine of a cluster.

Why Ray (and not a scheduler of our own): it already places tasks by CPU and GPU fractions,
retries a task whose worker died, and runs the same on a laptop and a cluster.  The runner keeps
everything else: the job is checked once, by the front end, before any task starts; every task
runs its plan (the job's JSON shipped once with ``ray.put``, the plan made once per Ray worker)
on one architecture with pinned threads; records and the
store are written by the caller, in input order.  So a Ray run gives the same records, bit for
bit, as a local run with as many threads per worker.

``address``: ``"local"`` starts a private Ray instance on this machine (the usable cores, no
dashboard; Ray's own processes listen as Ray sets them up, with its token authentication) and
stops it afterwards; ``"auto"`` joins the cluster this machine
belongs to (``ray start`` ran here); anything else is a cluster address
(``ray://head:10001`` or ``head:6379``).  Every node needs ``nni-zerocost`` (and any plugin
module, named in ``$NNI_ZEROCOST_PLUGINS``) installed.
"""
from __future__ import annotations

import os
from typing import Any, Optional

from .errors import BadInputError
from .plugins import ENV as PLUGINS_ENV
from .threads import pin_threads, usable_cpus

#: retries of a task whose worker process or node died (exceptions in scoring are not retried:
#: they are deterministic, and become error records)
MAX_RETRIES = 3


def import_ray():
    try:
        import ray
    except ImportError:
        raise BadInputError("ray", "needs Ray, an optional extra: pip install 'nni-zerocost[ray]'") from None
    return ray


def _score_task(job_holder, arch_obj, specs, threads: int, cost_request=None):
    """Run in a Ray worker: the runner's evaluation of one architecture under the job's plan
    (made once per worker process from the job's JSON, which Ray fetches once: ``job_holder``
    is a one-element list holding its object ref), with pinned threads, on the GPU Ray gave
    this task (if any)."""
    import ray

    from .worker import evaluate, plan_of

    pin_threads(threads)
    plan = plan_of(ray.get(job_holder[0]))
    status, payload, bug, device, costs = evaluate(plan, arch_obj, specs, cost_request)
    if plan.device.type == "cuda":
        # Ray limits CUDA_VISIBLE_DEVICES to the task's GPUs: the first visible one is ours;
        # the record names the GPU by its node-wide id
        ids = ray.get_gpu_ids()
        device = f"cuda:{int(ids[0]) if ids else 0}"
    return status, payload, bug, device, costs


class RayBackend:
    """Submit one Ray task per architecture; ``submit`` returns a concurrent future."""

    def __init__(self, plan, job_text: str, address: str, *, threads: int = 1, gpus_per_task: Optional[float] = None,
                 max_retries: int = MAX_RETRIES):
        ray = import_ray()  # every field was checked by the job (nni_zerocost.job.check_job)
        self.ray = ray
        self.started = False
        env = {k: os.environ[k] for k in (PLUGINS_ENV,) if os.environ.get(k)}
        if not ray.is_initialized():
            try:
                if address == "local":
                    ray.init(num_cpus=usable_cpus(), include_dashboard=False, log_to_driver=False,
                             _node_ip_address="127.0.0.1", configure_logging=False,
                             runtime_env={"env_vars": env} if env else None)
                else:
                    ray.init(address=address, log_to_driver=False, configure_logging=False,
                             runtime_env={"env_vars": env} if env else None)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise BadInputError("ray", f"cannot connect to a Ray cluster at {address!r}: {e}") from None
            self.started = True
        self.threads = max(1, int(threads))
        try:
            self.capacity = self._capacity(gpus_per_task)
        except BaseException:  # a private Ray started here is stopped here: nobody else will
            self.close()
            raise
        options = dict(num_cpus=self.threads, max_retries=max_retries, retry_exceptions=False)
        if gpus_per_task:
            options["num_gpus"] = float(gpus_per_task)
        self._task = ray.remote(_score_task).options(**options)
        self._job = ray.put(job_text)

    def _capacity(self, gpus_per_task: Optional[float]) -> int:
        """Tasks the cluster runs at once; BadInputError where no node can run one at all (Ray
        would keep such a task pending forever)."""
        resources = self.ray.cluster_resources()
        largest = max((n.get("Resources", {}).get("CPU", 0) for n in self.ray.nodes() if n.get("Alive")), default=0)
        if largest < self.threads:
            raise BadInputError("threads", f"each Ray task asks for {self.threads} CPUs, but no node of the Ray "
                                           f"cluster has that many (the largest has {largest:g})")
        slots = int(resources.get("CPU", 1) // self.threads)
        if gpus_per_task:
            slots = min(slots, int(resources.get("GPU", 0) / float(gpus_per_task)))
            if slots < 1:
                raise BadInputError("gpus_per_task", f"the Ray cluster has {resources.get('GPU', 0):g} GPUs: no "
                                                     f"task asking for {gpus_per_task} can run")
        return max(1, slots)

    def submit(self, arch_obj: Any, specs, cost_request=None):
        return self._task.remote([self._job], arch_obj, list(specs), self.threads, cost_request).future()

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


__all__ = ["RayBackend", "MAX_RETRIES", "import_ray"]
