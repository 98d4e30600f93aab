"""Optuna 5 as a host: zero-cost proxies as Optuna objectives, and the CLI's ``--engine optuna``.

Needs the ``optuna`` extra (``pip install 'nni-zerocost[optuna]'``); names load lazily, so
:data:`SAMPLERS` needs no Optuna.  Optuna keeps the search loop (samplers, studies, storages,
the dashboard); this package supplies the evaluation, through the one job and the one runner
every host uses (:mod:`nni_zerocost.job`, :func:`nni_zerocost.runner.score_one`).

* :func:`suggest_architecture` (``trial, space, **family``): an architecture of any registered
  space or of a family of it (the hf space's ``choices``),
  proposed as one categorical parameter per label of the space's codec, so every sampler
  proposes and every proposal decodes to a valid architecture; :func:`distributions` gives
  those distributions, :func:`grid` a ``GridSampler`` search space over a sub-grid;
* :class:`ZeroCostObjective` (``space_or_factory, proxies, *, params=None, cost=None,
  **job_fields``): a study's objective over a space or your own model factory, single (the
  proxy, maximised) or multi-objective (the proxy against a size or a measured cost,
  minimised), with the size budget as Optuna constraints;
* :func:`prescreen`: rank N proposals by a proxy and enqueue the best k for your own (training)
  objective;
* :func:`search_checked`: the search behind ``nni-zerocost search --engine optuna``
  (:func:`nni_zerocost.search` with ``engine="optuna"``).
"""
from __future__ import annotations

#: the samplers ``search --engine optuna --sampler`` names
SAMPLERS = ("tpe", "nsga2", "random")

_EXPORTS = {
    "distributions": "objective", "grid": "objective", "suggest_architecture": "objective",
    "ZeroCostObjective": "objective", "prescreen": "objective", "COSTS": "objective",
    "search_checked": "search", "open_study": "search", "make_sampler": "search", "candidates_of": "search",
}

__all__ = sorted([*_EXPORTS, "SAMPLERS"])


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nni_zerocost.optuna' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)
