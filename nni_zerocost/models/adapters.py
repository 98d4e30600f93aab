"""The registry of readers of a user's own model: which context reads which model.

An adapter is ``make(model, batch, *, seed, device) -> ScoringContext`` registered with the
``matches(model) -> bool`` test of the models it reads; the latest registered is tried first, so a
plugin can refine a built-in adapter.  The built-in ones (:data:`nni_zerocost.builtin.MODEL_ADAPTERS`)
are loaded on first use."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

from .. import builtin
from ..registry import Registry


class Adapter(NamedTuple):
    name: str
    matches: Callable[[Any], bool]
    make: Callable[..., Any]


ADAPTERS: Registry[Adapter] = Registry("model adapter", builtin.MODEL_ADAPTERS)


def register_model_adapter(name: str, matches: Callable[[Any], bool]):
    """Decorator registering ``make(model, batch, *, seed, device) -> ScoringContext`` for the
    models ``matches`` accepts."""

    def deco(make):
        ADAPTERS.add(name, Adapter(name, matches, make))
        return make

    return deco
