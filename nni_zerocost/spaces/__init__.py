"""Search-space registry: ``list_spaces()``, ``get_space(name)``."""
from .base import SPACES, SearchSpace, get_space as _get_space, list_spaces as _list_spaces, register_space


def _load_builtin_spaces() -> None:
    from . import rnn  # noqa: F401
    try:
        from . import bert  # noqa: F401
    except ImportError:  # the BERT space is optional while it is being built
        pass


def get_space(name: str) -> SearchSpace:
    _load_builtin_spaces()
    return _get_space(name)


def list_spaces() -> list:
    _load_builtin_spaces()
    return _list_spaces()


__all__ = ["SearchSpace", "get_space", "list_spaces", "register_space", "SPACES"]
