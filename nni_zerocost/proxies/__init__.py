"""Proxy registry: ``list_proxies()``, ``get_proxy(name)``, ``register_proxy``."""
from .base import Flagged, Option, Proxy, ProxyResult, compute, get_proxy, list_proxies, register_proxy

__all__ = ["Flagged", "Option", "Proxy", "ProxyResult", "compute", "get_proxy", "list_proxies", "register_proxy"]
