"""How closely a recomputed score must agree with one computed elsewhere, and what the machine is.

Scores are deterministic on one machine with one thread count: the same process, or worker
processes pinned to the same thread count, give bit-identical floats, and the tests hold them to
that.  A score computed on *another* CPU model, or with *another* thread count, rounds
differently:

* the BLAS and vector kernels differ by CPU (numpy's OpenBLAS picks a kernel per CPU,
  ``OPENBLAS_CORETYPE`` overrides it; torch's MKL and its own ATen kernels pick AVX2 or AVX-512),
  and sum in another order;
* a reduction split over another number of threads adds its parts in another order.

Measured (docs/reproducibility.md): 2.7e-9 relative between an Intel Xeon and the machine that
built the shipped tables, up to 7e-9 on an AMD EPYC, up to 2.5e-7 between thread counts, and up
to 1.8e-6 with torch's scalar kernels (``ATEN_CPU_CAPABILITY=default``: a CPU without AVX2, or a
VM that hides it).  A changed proxy, model or batch moves a value by far more (1e-3 and up), so
one tolerance,
:data:`REL_TOL`, separates rounding from a real change with a wide margin on both sides.  It is
the tolerance of the tests that compare with shipped or published-by-us numbers, and the default
of ``store merge --rel-tol``.
"""
from __future__ import annotations

import math
import os
import platform
from typing import Any, Dict, Optional

#: relative difference allowed between two computations of one score that ran on different CPU
#: models or with different thread counts (rounding only); see the module docstring
REL_TOL = 1e-5
#: the same on CUDA, between runs and against the CPU: backward passes accumulate with atomic adds
#: whose order varies from run to run, and eigenvalue scores amplify rounding by 1/(l + k)
CUDA_REL_TOL = 1e-4


def agree(a: Optional[float], b: Optional[float], rel_tol: float = REL_TOL) -> bool:
    """True when two scores are the same up to rounding: both missing (None or NaN), or finite
    and within ``rel_tol`` of each other (relative to the larger magnitude)."""
    missing_a = a is None or (isinstance(a, float) and math.isnan(a))
    missing_b = b is None or (isinstance(b, float) and math.isnan(b))
    if missing_a or missing_b:
        return missing_a and missing_b
    return math.isclose(float(a), float(b), rel_tol=rel_tol, abs_tol=0.0) or a == b


def relative_difference(a: float, b: float) -> float:
    """``|a - b| / max(|a|, |b|)`` (0 when both are 0)."""
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what the platform says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover - not Linux
        pass
    return platform.processor() or platform.machine()


def describe() -> Dict[str, Any]:
    """What decides the rounding of a score on this machine: the CPU, the kernels numpy's and
    torch's libraries chose, the thread counts and the variables that override them."""
    import numpy  # noqa: F401  (loads numpy's BLAS, so threadpoolctl sees it)
    import torch
    from threadpoolctl import threadpool_info

    pools = [{"library": p.get("internal_api"), "kernel": p.get("architecture"), "threads": p.get("num_threads"),
              "version": p.get("version")} for p in threadpool_info()]
    return {
        "cpu": cpu_model(),
        "cores usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch threads": torch.get_num_threads(),
        "torch cpu capability": torch.backends.cpu.get_cpu_capability(),
        "numpy": numpy.__version__,
        "thread pools": pools,
        "environment": {k: os.environ[k] for k in sorted(os.environ)
                        if k in ("OPENBLAS_CORETYPE", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS",
                                 "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                 "NNI_ZEROCOST_THREADS")},
    }


def format_description(info: Dict[str, Any]) -> str:
    lines = []
    for key, value in info.items():
        if key == "thread pools":
            for p in value:
                lines.append(f"{'thread pool':<22} {p['library']} kernel={p['kernel']} threads={p['threads']} "
                             f"version={p['version']}")
        elif key == "environment":
            lines.append(f"{'environment':<22} " + (" ".join(f"{k}={v}" for k, v in value.items()) or "(none set)"))
        else:
            lines.append(f"{key:<22} {value}")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m nni_zerocost.reproducibility: what .ci/run prints first
    print(format_description(describe()))
