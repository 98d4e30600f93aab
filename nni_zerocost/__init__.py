"""nni-zerocost: training-free NAS proxies for language models, for NNI and NASLib."""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    DataError,
    InvalidArchitectureError,
    ProxyNotApplicableError,
    UnknownNameError,
    ZeroCostError,
)
from .proxies import ProxyResult, get_proxy, list_proxies, register_proxy  # noqa: E402
from .spaces import get_space, list_spaces  # noqa: E402


def score(space: str, arch, proxies, *, batch=None, seed: int = 0, **context_options):
    """Score one architecture with one or several proxies; returns ``{spec: ProxyResult}``.

    ``proxies`` is a name, a spec string like ``"hidden_covariance:layer=2"``, or a list.
    """
    from .proxies.base import compute_many, parse_proxy_spec

    sp = get_space(space)
    if isinstance(proxies, str):
        proxies = [proxies]
    parsed = [(spec, *parse_proxy_spec(spec)) for spec in proxies]
    with sp.context(arch, batch, seed=seed, **context_options) as ctx:
        return compute_many(ctx, parsed)


__all__ = [
    "__version__", "score", "get_space", "list_spaces", "get_proxy", "list_proxies",
    "register_proxy", "ProxyResult", "ZeroCostError", "InvalidArchitectureError",
    "UnknownNameError", "ProxyNotApplicableError", "DataError",
]
