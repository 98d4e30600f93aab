"""nni-zerocost: training-free NAS proxies for language models, for NNI and NASLib."""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    BadInputError,
    DataError,
    InvalidArchitectureError,
    ProxyNotApplicableError,
    UnknownNameError,
    ZeroCostError,
)
from .plan import ScoringPlan, make_plan  # noqa: E402
from .proxies import ProxyResult, get_proxy, list_proxies, register_proxy  # noqa: E402
from .spaces import get_space, list_spaces  # noqa: E402


def score(space: str, arch, proxies, *, batch=None, seed: int = 0, **options):
    """Score one architecture with one or several proxies; returns ``{spec: ProxyResult}``.

    ``proxies`` is a name, a spec string like ``"hidden_covariance:layer=2"``, or a list;
    ``options`` are :func:`make_plan`'s (``corpus``, ``init``, ``as_trained``, ``device`` = "auto"
    | "cpu" | "cuda" | "cuda:N", ...).
    """
    plan = make_plan(space, proxies, seed=seed, batch=batch, **options)
    return plan.score(get_space(space).parse(arch))


__all__ = [
    "__version__", "score", "make_plan", "ScoringPlan", "get_space", "list_spaces", "get_proxy",
    "list_proxies", "register_proxy", "ProxyResult", "ZeroCostError", "BadInputError",
    "InvalidArchitectureError", "UnknownNameError", "ProxyNotApplicableError", "DataError",
]
