"""Search-space registry: ``list_spaces()``, ``get_space(name)``, ``register_space``.

Built-in spaces are imported on first use; third-party spaces register through entry points or
``--plugin`` modules (:mod:`nni_zerocost.plugins`).  An import error in a space is raised as
is, never turned into "unknown space".
"""
from .base import SPACES, ScoringContext, SearchSpace, get_space as _get_space, list_spaces as _list_spaces, register_space

BUILTIN = ("rnn", "bert", "gpt2", "model")


def _load_builtin_spaces() -> None:
    from importlib import import_module

    from ..plugins import load_plugins

    for name in BUILTIN:
        import_module(f"{__name__}.{name}")
    load_plugins()


def get_space(name: str) -> SearchSpace:
    _load_builtin_spaces()
    return _get_space(name)


def list_spaces() -> list:
    _load_builtin_spaces()
    return _list_spaces()


__all__ = ["SearchSpace", "ScoringContext", "get_space", "list_spaces", "register_space", "SPACES"]
