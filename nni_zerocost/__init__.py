"""nni-zerocost: training-free NAS proxies for language models, for NNI, NASLib and Optuna.

The package root is lazy (as ``transformers``' is): ``import nni_zerocost`` loads no torch, no
model and no registry; each name below is imported on first use.  So a tool that only reads a
job, a store or a benchmark table starts in milliseconds.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .version import __version__  # noqa: E402,F401

#: public name -> the module that defines it
_EXPORTS = {
    "score": "api", "score_model": "api", "run": "api", "benchmark": "api", "search": "api",
    "BenchmarkResult": "api", "Scores": "api",
    "ScoringJob": "job", "CheckedJob": "job", "check_job": "job",
    "ScoringPlan": "plan", "ScoringRequest": "plan", "make_plan": "plan", "make_model_plan": "plan",
    "NO_SCORE": "proxies.base", "ProxyResult": "proxies.base", "get_proxy": "proxies.base",
    "list_proxies": "api", "register_proxy": "proxies.base",
    "get_space": "spaces", "list_spaces": "spaces", "register_space": "spaces",
    "ZeroCostError": "errors", "BadInputError": "errors", "InvalidArchitectureError": "errors",
    "UnknownNameError": "errors", "ProxyNotApplicableError": "errors", "DataError": "errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nni_zerocost' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .api import BenchmarkResult, Scores, benchmark, list_proxies, run, score, score_model, search  # noqa: F401
    from .errors import (  # noqa: F401
        BadInputError, DataError, InvalidArchitectureError, ProxyNotApplicableError, UnknownNameError, ZeroCostError,
    )
    from .job import CheckedJob, ScoringJob, check_job  # noqa: F401
    from .plan import ScoringPlan, ScoringRequest, make_model_plan, make_plan  # noqa: F401
    from .proxies.base import NO_SCORE, ProxyResult, get_proxy, register_proxy  # noqa: F401
    from .spaces import get_space, list_spaces, register_space  # noqa: F401
