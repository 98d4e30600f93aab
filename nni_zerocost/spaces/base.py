"""The abstract search space every space implements, and the scoring context it hands out.

Kept tiny on purpose (optuna-style).  Spaces sit *below* proxies in the data flow
space -> model -> batch -> proxy -> score, so nothing here (or anywhere under ``spaces/``)
imports :mod:`nni_zerocost.proxies`; proxies read what a context offers.
"""
from __future__ import annotations

import abc
from typing import Any, Callable, Dict, Generic, Mapping, Optional, Sequence, TypeVar

import numpy as np
import torch

from ..devices import resolve_device
from ..registry import Registry

A = TypeVar("A")  # the architecture type of a space (Cell, BertConfig)


class ScoringContext(abc.ABC):
    """One architecture + one batch + one seed; caches the passes several proxies share.

    Subclasses (one per space) expose the model and the passes their proxies need.  ``cache``
    holds derived tensors keyed by what produced them; :meth:`close` drops everything so no
    tensor, graph or hook outlives a scoring call.

    ``device``: where the model and the batch live (the CPU by default; ``"auto"``, ``"cuda"``,
    ``"cuda:N"`` or a ``torch.device``, checked as by :func:`~nni_zerocost.make_plan`).
    Weights are drawn on the CPU and moved, so the initialisation does not depend on it.
    """

    space: str = ""

    def __init__(self, arch, batch, *, seed: int = 0, device=None):
        self.arch = arch
        self.batch = batch
        self.seed = int(seed)
        self.device = torch.device("cpu") if device is None else resolve_device(device)
        self.cache: Dict[Any, Any] = {}

    def cached(self, key, compute: Callable[[], Any]):
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    def close(self) -> None:
        self.cache.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SearchSpace(abc.ABC, Generic[A]):
    """A family of architectures: parse/validate, sample, hash, batches and scoring contexts.

    Architectures are immutable value objects; ``to_dict``/``parse`` round-trip them through
    plain JSON so they can cross process boundaries (NNI trials, worker pools, result stores).
    """

    name: str = ""

    @abc.abstractmethod
    def parse(self, obj: Any) -> A:
        """Validate a dict / JSON string / architecture object; raise InvalidArchitectureError."""

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> A:
        """Draw one valid architecture from the space."""

    @abc.abstractmethod
    def to_dict(self, arch: A) -> Mapping[str, Any]:
        """JSON-serialisable form accepted back by :meth:`parse`."""

    @abc.abstractmethod
    def arch_hash(self, arch: A) -> str:
        """Canonical hash: equal for architectures that compute the same function family."""

    def arch_key(self, arch: A, **context_options) -> str:
        """What identifies an architecture's *scores* under ``context_options``: the canonical
        hash wherever isomorphic architectures build identical models (the default)."""
        return self.arch_hash(arch)

    @abc.abstractmethod
    def choices(self) -> Dict[str, Sequence[Any]]:
        """The space's own categorical choices (what adapters encode), e.g. ``hidden_size``."""

    @abc.abstractmethod
    def default_batch(self, seed: int = 0):
        """The embedded default input batch (needs no file)."""

    @abc.abstractmethod
    def batch(self, corpus: Optional[str] = None, *, batch_size: Optional[int] = None,
              seq_len: Optional[int] = None):
        """The input batch for a corpus path and/or shape; the embedded default when all are None.

        Raises :class:`~nni_zerocost.errors.DataError` (a missing or unreadable corpus) or
        ``ValueError`` (an option the space does not take) before any model is built.
        """

    @abc.abstractmethod
    def context_options(self) -> Dict[str, Any]:
        """Context options the space takes: their allowed values (first = default), or a type
        for a free positive number."""

    @abc.abstractmethod
    def context(self, arch: A, batch, *, seed: int = 0, device=None, **options) -> ScoringContext:
        """A :class:`ScoringContext` for one architecture on ``device`` (a ``torch.device`` or
        a string; None = the CPU; front ends resolve ``"auto"`` through :func:`make_plan`)."""


SPACES: Registry[SearchSpace] = Registry("search space")


def register_space(space_cls):
    """Class decorator: instantiate the space and register it under ``space_cls.name``."""
    SPACES.add(space_cls.name, space_cls())
    return space_cls


def get_space(name: str) -> SearchSpace:
    return SPACES.get(name)


def list_spaces() -> list[str]:
    return SPACES.names()
