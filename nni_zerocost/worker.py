"""What runs where the work runs -- a worker process, a Ray task or this process: the plan of a
job made once per process from the job's JSON, and the scoring of one architecture under it."""
from __future__ import annotations

import json
import math
import traceback
from typing import Any, Dict, Mapping, Optional

import torch

from .errors import ZeroCostError
from .plan import ScoringPlan
from .proxies.base import ProxyResult
from .threads import pin_threads


def _results_json(results: Mapping[str, ProxyResult]) -> Dict[str, Dict[str, Any]]:
    return {s: {"raw": None if math.isnan(r.raw) else r.raw, "flag": r.flag, "seconds": r.seconds,
                "higher_is_better": r.higher_is_better} for s, r in results.items()}


_PLANS: Dict[str, ScoringPlan] = {}  # this process's plans, by the job's JSON text


def plan_of(job_text: str) -> ScoringPlan:
    """The plan of a job sent as JSON to a worker process or Ray task: its plugins loaded and its
    request made into a plan once per process (the job was checked where it was made; only the
    plan is rebuilt here, no architecture is read)."""
    if job_text not in _PLANS:
        from .job import ScoringJob
        from .plan import make_plan
        from .plugins import load_plugin

        job = ScoringJob.from_json(job_text)
        for module in job.plugins:
            load_plugin(module)
        request = job.request
        if request.space is None and job.models:
            request = request.replace(space="model")
        _PLANS.clear()
        _PLANS[job_text] = make_plan(request, remote_gpus=job.gpus_per_task is not None)
    return _PLANS[job_text]


def plan_job_text(checked) -> str:
    """The JSON text workers rebuild the plan from: the job without its architecture list (the
    request, plugins and GPU share are what the plan depends on)."""
    from .job import ScoringJob

    j = checked.job
    slim = ScoringJob(checked.plan.scoring_request, gpus_per_task=j.gpus_per_task, plugins=j.plugins)
    return json.dumps(slim.to_json(), sort_keys=True)


_WORKER_JOB: Optional[str] = None
_WORKER_LIMITS: Any = None  # threadpoolctl's limiter, kept alive for the worker's lifetime


def _worker_init(threads: int, job_text: str, devices: Any = None) -> None:
    """Pin the worker's threads (once, for its lifetime), take the next GPU of the round robin
    and make the job's plan."""
    from threadpoolctl import threadpool_limits

    global _WORKER_JOB, _WORKER_LIMITS
    pin_threads(max(1, threads))
    _WORKER_LIMITS = threadpool_limits(limits=max(1, threads))  # numpy's and scipy's BLAS pools too
    if devices is not None:  # a queue of device names: one per worker, round robin over the GPUs
        device = torch.device(devices.get())
        if device.type == "cuda":
            torch.cuda.set_device(device)  # "cuda" and "auto" now resolve to it
    _WORKER_JOB = job_text
    plan_of(job_text)


def measure_costs(plan: ScoringPlan, arch, names, seq_len: Optional[int] = None,
                  threads: int = 1) -> Dict[str, Dict[str, Any]]:
    """The measured costs ``names`` of ``arch``'s model, here, on the plan's device
    (:mod:`nni_zerocost.costs`): weights drawn with the plan's seed on the CPU and moved; the
    inputs the space states (``cost_inputs``), the row length ``seq_len`` when given."""
    from .costs import measure

    sp = plan.search_space
    inputs = dict(sp.cost_inputs(arch, **plan.context_options))
    if seq_len is not None:
        inputs["seq_len"] = int(seq_len)
    model = sp.build_model(arch, seed=plan.seed, **plan.context_options)
    device = plan.device if plan.device.index is not None or plan.device.type != "cuda" else torch.device("cuda")
    return {name: measure(name, model, device=device, threads=int(threads), **inputs).to_dict() for name in names}


def counted_costs(plan: ScoringPlan, arch, names) -> Dict[str, Dict[str, Any]]:
    """The analytic costs among ``names`` (layers, FLOPs per token) of a parsed architecture,
    counted by its space with no model; a count the space does not have is left out."""
    sp, options = plan.search_space, plan.context_options
    counts = {"n_layers": (sp.layer_count, "blocks"), "flops_per_token": (sp.flops, "FLOP/token")}
    out: Dict[str, Dict[str, Any]] = {}
    for name in names:
        if name in counts:
            value = counts[name][0](arch, **options)
            if value is not None:
                out[name] = {"name": name, "value": float(value), "unit": counts[name][1], "runs": 0,
                             "protocol": {"analytic": "counted from the architecture"}, "fingerprint": None}
    return out


def evaluate(plan: ScoringPlan, arch_obj, specs, cost_request: Optional[Mapping[str, Any]] = None):
    """Score one architecture where the work runs: ``(status, payload, traceback, device, costs)``.

    ``cost_request`` (``names``, ``seq_len``, ``threads``, ``limits``): the costs to measure
    first; a measured cost over its limit gives ``"over_budget"`` and the proxies are not scored."""
    costs: Dict[str, Dict[str, Any]] = {}
    try:
        arch = plan.parse(arch_obj)
        if cost_request and cost_request.get("names"):
            costs = measure_costs(plan, arch, cost_request["names"], cost_request.get("seq_len"),
                                  cost_request.get("threads", 1))
            over = [f"{name} {costs[name]['value']:.4g} > {limit:.4g}"
                    for name, limit in (cost_request.get("limits") or {}).items()
                    if name in costs and costs[name]["value"] > limit]
            if over:
                return "over_budget", "over budget: " + "; ".join(over), None, plan.device_name, costs
        results = _results_json(plan.score(arch, [plan.request(s) for s in specs])) if specs else {}
        return "ok", results, None, plan.device_name, costs
    except Exception as e:  # reported by the parent as an error record
        return "error", f"{type(e).__name__}: {e}", _bug_traceback(e), plan.device_name, costs


def _worker_eval(args):
    arch_obj, specs, cost_request = args
    return evaluate(plan_of(_WORKER_JOB), arch_obj, specs, cost_request)



def _bug_traceback(e: BaseException) -> Optional[str]:
    """The traceback of an exception that is a bug (not a ZeroCostError about the input)."""
    return None if isinstance(e, ZeroCostError) else "".join(traceback.format_exception(e))
