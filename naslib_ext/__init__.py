"""NASLib integration of nni-zerocost (thin adapters over the core).

* :mod:`naslib_ext.compat` -- makes NASLib Develop importable on Python >= 3.10 without
  torchvision (imports without NASLib).
* :mod:`naslib_ext.search_spaces` -- ``NasBenchNLPSpace`` / ``NasBenchBERTSpace``: NASLib graphs
  backed by our cells/configs, models and benchmark tables.
* :mod:`naslib_ext.predictors` -- ``ZeroCostProxyPredictor`` and our proxies as NASLib
  ``ZeroCost`` measures.
* :mod:`naslib_ext.driver` -- ``python -m naslib_ext.driver``: predictor benchmark with NASLib's
  metric names.

Every module but ``compat`` needs NASLib (not on PyPI; see the README, section NASLib); this
package itself imports nothing from NASLib.
"""
