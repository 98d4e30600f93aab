"""The abstract search space every space implements (kept tiny on purpose, optuna-style)."""
from __future__ import annotations

import abc
from typing import Any, Generic, Mapping, TypeVar

import numpy as np

from ..registry import Registry

A = TypeVar("A")  # the architecture type of a space (Cell, BertConfig)


class SearchSpace(abc.ABC, Generic[A]):
    """A family of architectures: parse/validate, sample, hash and build scoring contexts.

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

    @abc.abstractmethod
    def default_batch(self, seed: int = 0):
        """The embedded default input batch (needs no file)."""

    @abc.abstractmethod
    def context(self, arch: A, batch, *, seed: int = 0, **options):
        """A :class:`~nni_zerocost.proxies.base.ScoringContext` for one architecture."""


SPACES: Registry[SearchSpace] = Registry("search space")


def register_space(space_cls):
    """Class decorator: instantiate the space and register it under ``space_cls.name``."""
    SPACES.add(space_cls.name, space_cls())
    return space_cls


def get_space(name: str) -> SearchSpace:
    return SPACES.get(name)


def list_spaces() -> list[str]:
    return SPACES.names()
