"""Search-space registry: ``list_spaces()``, ``get_space(name)``, ``register_space``.

Built-in spaces are imported on first use; third-party spaces register through entry points or
``--plugin`` modules (:mod:`nni_zerocost.plugins`).  An import error in a space is raised as
is, never turned into "unknown space".
"""
from .base import SPACES, ScoringContext, SearchSpace, get_space, list_spaces, register_space

__all__ = ["SearchSpace", "ScoringContext", "get_space", "list_spaces", "register_space", "SPACES"]
