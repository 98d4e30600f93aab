"""Proxy registry: ``list_proxies()``, ``get_proxy(name)``, ``register_proxy``."""
from .base import (
    Flagged,
    Proxy,
    ProxyResult,
    ScoringContext,
    compute,
    get_proxy,
    list_proxies,
    register_proxy,
    score_all,
)

__all__ = [
    "Flagged", "Proxy", "ProxyResult", "ScoringContext", "compute", "get_proxy",
    "list_proxies", "register_proxy", "score_all",
]
