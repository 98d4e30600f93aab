"""Proxy registry: ``list_proxies()``, ``get_proxy(name)``, ``register_proxy``."""
from .base import NO_SCORE, Flagged, Option, Proxy, ProxyResult, compute, get_proxy, list_proxies, register_proxy

__all__ = ["NO_SCORE", "Flagged", "Option", "Proxy", "ProxyResult", "compute", "get_proxy", "list_proxies",
           "register_proxy"]
