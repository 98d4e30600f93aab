"""NASLib integration of nni-zerocost (thin adapters over the core, generic over the space plugins).

* :func:`enable` -- NASLib's own routes on our spaces (:mod:`naslib_ext.routes`): its search-space,
  dataset-API, data-loader, encoding and zero-cost-table look-ups, so its zero-cost runners and
  ``PredictorEvaluator`` run on every registered space.  Idempotent.
* :mod:`naslib_ext.run` -- ``python -m naslib_ext.run RUNNER.py ...``: one of NASLib's runner
  scripts with the routes enabled.
* :mod:`naslib_ext.compat` -- makes NASLib Develop importable on Python >= 3.10 without
  torchvision (imports without NASLib).
* :mod:`naslib_ext.search_spaces` -- one NASLib graph class per space (``naslib_space(name)``).
* :mod:`naslib_ext.predictors` -- ``ZeroCostProxyPredictor`` and our proxies as NASLib
  ``ZeroCost`` measures.
* :mod:`naslib_ext.zc_benchmark` -- the shipped tables as NASLib zero-cost files.
* :mod:`naslib_ext.driver` -- ``python -m naslib_ext.driver``: predictor benchmark with NASLib's
  metric names.

Importing this package imports nothing from NASLib; :func:`enable` and every module but
``compat``, ``zc_benchmark`` and ``run`` need it (not on PyPI; see the README, section NASLib).
"""


def enable():
    """Apply :mod:`naslib_ext.routes` (and the compat patches); returns the names applied now."""
    from .routes import enable as _enable

    return _enable()
