"""Benchmarks with ground truth, and the precomputed per-architecture proxy tables."""
from __future__ import annotations


def precomputed(benchmark: str, proxy=None, **filters):
    """The shipped precomputed table of ``benchmark`` (see :mod:`.tables`): the one with column
    ``proxy`` (any when None) whose settings match ``filters`` (``init``, ``batch``, ``seed``,
    ``device``, ``as_trained``, ``name``)."""
    from .tables import precomputed as _precomputed

    return _precomputed(benchmark, proxy, **filters)


def list_precomputed():
    """Names of the shipped precomputed tables."""
    from .tables import list_precomputed as _list

    return _list()
