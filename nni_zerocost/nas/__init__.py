"""NNI 3.0 integration: model spaces, a zero-cost evaluator, proxy strategies, HPO route.

Needs the ``nni`` extra (``pip install "nni-zerocost[nni]"``).  Names are imported lazily so
that ``nni_zerocost.nas.codec`` (pure Python: search-space JSON, sample <-> architecture) works
without importing NNI.

* spaces: :func:`model_space` (the NNI model space of any registered space; its class is
  ``<Title>ModelSpace``, e.g. ``RNNModelSpace``), :func:`space_of`;
* evaluation: :class:`ZeroCostEvaluator`, :class:`ProxyScorer`, :func:`proxy_metrics`;
* strategies: :class:`ProxyPrescreen` (middleware for ``Chain``), :class:`ProxyRanking`,
  :class:`TPE` (maximising, no idle pauses);
* :func:`run_search` (sequential engine, one call), :func:`search_space_json`.
"""
from __future__ import annotations

_EXPORTS = {
    "model_space": "spaces", "model_space_class": "spaces", "space_of": "spaces", "ZeroCostModelSpace": "spaces",
    "ZeroCostEvaluator": "evaluator", "ProxyScorer": "evaluator", "proxy_metrics": "evaluator",
    "ProxyPrescreen": "strategies", "ProxyRanking": "strategies", "TPE": "strategies",
    "TrialRecorder": "strategies",
    "run_search": "search", "check_search": "search", "STRATEGIES": "search",
    "search_space_json": "codec", "write_search_space": "codec", "get_codec": "codec",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name) or ("spaces" if name.endswith("ModelSpace") else None)
    if module is None:
        raise AttributeError(f"module 'nni_zerocost.nas' has no attribute {name!r}")
    try:
        mod = __import__(f"{__name__}.{module}", fromlist=[name])
    except ImportError as e:
        if getattr(e, "name", "") and e.name.split(".")[0] in ("nni", "pytorch_lightning"):
            raise ImportError(
                f"nni_zerocost.nas.{name} needs NNI 3.0: pip install 'nni-zerocost[nni]' ({e})"
            ) from e
        raise
    return getattr(mod, name)
