"""The one registry type behind proxies, search spaces, benchmarks and model adapters.

A registry is filled by the modules that define its entries (their decorators call
:meth:`Registry.add`).  It loads those modules itself on first use -- the built-in ones it is
given by name, then the plugins (:func:`nni_zerocost.plugins.load_plugins`) -- so importing a
registry costs nothing and no module imports the modules that register into it.
"""
from __future__ import annotations

import importlib
from typing import Dict, Generic, Iterator, List, Sequence, TypeVar

from .errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Ordered mapping of unique names to objects, with errors that list the valid names.

    ``builtin``: the modules (``"pkg.module"``) whose import registers the built-in entries,
    loaded with the plugins the first time the registry is read."""

    def __init__(self, kind: str, builtin: Sequence[str] = ()):
        self.kind = kind
        self.builtin = tuple(builtin)
        self._items: Dict[str, T] = {}
        self._state = "empty"  # "empty" -> "loading" -> "loaded"

    def load(self) -> None:
        """Import the built-in modules (once; a read during the loading itself, by a module
        being imported, sees what is registered so far) and the plugins (modules named in
        ``$NNI_ZEROCOST_PLUGINS`` since the last read too)."""
        from .plugins import load_plugins

        if self._state == "loading":
            return
        if self._state == "empty":
            self._state = "loading"
            try:
                for module in self.builtin:
                    importlib.import_module(module)
            except BaseException:
                self._state = "empty"
                raise
            self._state = "loaded"
        load_plugins()

    def add(self, name: str, obj: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj
        return obj

    def replace(self, name: str, obj: T) -> T:
        """Put ``obj`` under a registered ``name`` (a proxy gaining an implementation)."""
        self._items[name] = obj
        return obj

    def get(self, name: str) -> T:
        self.load()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, sorted(self._items)) from None

    def names(self) -> List[str]:
        self.load()
        return sorted(self._items)

    def latest_first(self) -> List[T]:
        """The entries, the last registered first (a plugin refines a built-in entry)."""
        self.load()
        return list(reversed(list(self._items.values())))

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self.load()
        return len(self._items)
