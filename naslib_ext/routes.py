"""NASLib's own routes on our spaces: what :func:`naslib_ext.enable` patches at run time.

NASLib Develop looks spaces, data and encodings up in fixed tables of its own image benchmarks,
so its zero-cost runners (``naslib/runners/zc/runner.py``, ``naslib/runners/zc/bbo/xgb_runner.py``)
and ``PredictorEvaluator`` stop on our spaces with ``KeyError: 'nlp'``, a missing
``data/nbnlp_v01``, ``Unknown dataset: ptb`` or "No implementation found for encoding".
:func:`enable` wraps exactly these NASLib functions, for our spaces only (every other name goes
to NASLib's original, unchanged); every space registered with nni-zerocost, plugins included,
is served through its :class:`~nni_zerocost.spaces.base.NASLibForm`:

1. ``naslib.search_spaces.get_search_space(name, dataset)`` -- our graph class for the form's
   ``type_name`` (also listed in ``supported_search_spaces``);
2. ``get_dataset_api(search_space, dataset)`` -- a dict saying no NASLib data file is needed
   (``query`` answers from nni-zerocost's own benchmark table);
3. ``get_train_val_loaders(config)`` -- for the form's ``dataset``: three one-batch loaders of
   :data:`~naslib_ext.predictors.NO_DATA` ("no data needed": our measures score the space's
   default batch);
4. ``encode_spec(spec, encoding_type, ss_type)`` -- the form's ``encode`` (NASLib's own NB-NLP
   one-hot encoding where the space is NAS-Bench-NLP), also where NASLib imported it by name;
5. ``get_zc_benchmark_api(search_space, dataset)`` -- NASLib's ``data/zc_<type>.json`` when it
   is there, else the shipped tables, as a :class:`~naslib_ext.zc_benchmark.ZeroCostTable`
   (an architecture it lacks is scored on the fly);
6. ``ZCEnsembleEvaluator.__init__`` and ``ZeroCostPredictorEvaluator.__init__`` -- a ``zc_names``
   (or predictor) the table lacks fails at once with one line listing what it holds, instead of
   NASLib's ``KeyError: 'key not found'`` mid-run;
7. ``PredictorEvaluator.adapt_search_space`` -- takes our spaces outside its own type list
   (final results only: no learning curves, no hyperparameters).

Sampling that honours ``labeled_archs`` / ``sample_without_replacement`` lives in the graph
classes themselves (:mod:`naslib_ext.search_spaces`).  Every wrapper carries
:data:`MARKER`, so :func:`enable` is idempotent; nothing of NASLib is copied here.
"""
from __future__ import annotations

import functools
import importlib
import json
import logging
import os
from typing import Callable, FrozenSet, Set

from .compat import enable as enable_compat
from .compat import import_naslib

MARKER = "__nni_zerocost_route__"
logger = logging.getLogger(__name__)
_applied: Set[str] = set()


def enable() -> FrozenSet[str]:
    """Make NASLib importable (:func:`naslib_ext.compat.enable`), register our measures and
    apply the routes above; returns the names of the patches applied now (empty the second time)."""
    import_naslib()
    now = set(enable_compat())
    from . import predictors  # noqa: F401  (registers our measures)
    from .search_spaces import naslib_space, naslib_types, space_of_type

    ss = importlib.import_module("naslib.search_spaces")
    for type_name, space in naslib_types().items():
        ss.supported_search_spaces.setdefault(type_name, naslib_space(space))

    def get_search_space(original, name, dataset=None, *args, **kwargs):
        if isinstance(name, str) and name.lower() in naslib_types():
            return naslib_space(space_of_type(name.lower()))()
        return original(name, dataset, *args, **kwargs)

    def get_dataset_api(original, search_space=None, dataset=None):
        if search_space in naslib_types():
            space = space_of_type(search_space)
            return {"search_space": search_space, "space": space, "dataset": dataset, "data_dir": None,
                    "note": "no NASLib data file needed: nni-zerocost answers query() from its own benchmark table"}
        return original(search_space=search_space, dataset=dataset)

    def get_zc_benchmark_api(original, search_space, dataset):
        if search_space not in naslib_types():
            return original(search_space, dataset)
        from .zc_benchmark import load_zc_api, shipped_zc_api

        root = importlib.import_module("naslib.utils.get_dataset_api").get_project_root()
        path = os.path.join(root, "data", f"zc_{search_space}.json")
        if os.path.exists(path):
            with open(path) as f:
                return load_zc_api(json.load(f), dataset, path)
        logger.info("no %s: the zero-cost table comes from nni-zerocost's shipped tables", path)
        table = shipped_zc_api(space_of_type(search_space))
        if dataset != table.meta["dataset"]:
            return load_zc_api({}, dataset, table.source)  # refused: names the dataset it has
        return table

    def get_train_val_loaders(original, config, mode="train"):
        space = _space_of_config(config)
        if space is None:
            return original(config, mode)
        loader = no_data_loader()
        return loader, loader, loader, None, None

    def encode_spec(original, spec, encoding_type=None, ss_type=None):
        if ss_type in naslib_types():
            form = naslib_space(space_of_type(ss_type)).form
            from naslib.utils.encodings import EncodingType

            return form.encode(form.compact(form.arch(spec)),
                               getattr(encoding_type or EncodingType.ADJACENCY_ONE_HOT, "value", encoding_type))
        return original(spec, encoding_type=encoding_type, ss_type=ss_type)

    for module, attr, body in (
        ("naslib.search_spaces", "get_search_space", get_search_space),
        ("naslib.utils.get_dataset_api", "get_dataset_api", get_dataset_api),
        ("naslib.utils", "get_dataset_api", get_dataset_api),
        ("naslib.utils.get_dataset_api", "get_zc_benchmark_api", get_zc_benchmark_api),
        ("naslib.utils", "get_zc_benchmark_api", get_zc_benchmark_api),
        ("naslib.utils.dataset", "get_train_val_loaders", get_train_val_loaders),
        ("naslib.utils", "get_train_val_loaders", get_train_val_loaders),
        ("naslib.predictors.utils.encodings", "encode_spec", encode_spec),
        ("naslib.evaluators.zc_ensemble_evaluator", "encode_spec", encode_spec),
        ("naslib.optimizers.discrete.npenas.optimizer", "encode_spec", encode_spec),
        ("naslib.optimizers.discrete.bananas.optimizer", "encode_spec", encode_spec),
    ):
        if _wrap(module, attr, body):
            now.add(f"{module}.{attr}")
    for module, cls, field, names in (
        ("naslib.evaluators.zc_ensemble_evaluator", "ZCEnsembleEvaluator", "zc_names", lambda self: self.zc_names or []),
        ("naslib.evaluators.zc_evaluator", "ZeroCostPredictorEvaluator", "predictor",
         lambda self: [self.predictor.method_type] if self.use_zc_api else []),
    ):
        if _check_names_on_init(module, cls, field, names):
            now.add(f"{module}.{cls}.__init__")
    if _route_predictor_evaluator():
        now.add("naslib.defaults.predictor_evaluator.PredictorEvaluator.adapt_search_space")
    _applied.update(now)
    return frozenset(now)


def _route_predictor_evaluator() -> bool:
    """``PredictorEvaluator.adapt_search_space`` refuses every type outside its own list after
    setting everything up; for our spaces (final results only) it goes on without learning
    curves or hyperparameters."""
    from .search_spaces import is_core_graph

    cls = importlib.import_module("naslib.defaults.predictor_evaluator").PredictorEvaluator
    original = cls.adapt_search_space
    if getattr(original, MARKER, False):
        return False

    @functools.wraps(original)
    def adapt_search_space(self, search_space, *args, **kwargs):
        try:
            return original(self, search_space, *args, **kwargs)
        except NotImplementedError:
            if not is_core_graph(search_space):
                raise
            self.full_lc = False
            self.hyperparameters = False

    setattr(adapt_search_space, MARKER, True)
    cls.adapt_search_space = adapt_search_space
    return True


def applied() -> FrozenSet[str]:
    """Every route :func:`enable` has applied in this process (compat patches included)."""
    return frozenset(_applied)


def _wrap(module: str, attr: str, body: Callable) -> bool:
    try:
        mod = importlib.import_module(module)
    except ImportError:  # an optional NASLib module whose dependencies are missing: nothing to route
        return False
    original = getattr(mod, attr, None)
    if original is None or getattr(original, MARKER, False):
        return False

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        return body(original, *args, **kwargs)

    setattr(wrapper, MARKER, True)
    setattr(mod, attr, wrapper)
    return True


def _check_names_on_init(module: str, cls_name: str, field: str, names: Callable) -> bool:
    cls = getattr(importlib.import_module(module), cls_name)
    original = cls.__init__
    if getattr(original, MARKER, False):
        return False

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        from .zc_benchmark import ZeroCostTable

        if isinstance(getattr(self, "zc_api", None), ZeroCostTable):
            self.zc_api.check_names(list(names(self)), field)

    setattr(__init__, MARKER, True)
    cls.__init__ = __init__
    return True


def _space_of_config(config):
    """Our space a NASLib config names (``search_space``, else its ``dataset``), or None."""
    from .search_spaces import naslib_types

    types = naslib_types()
    name = getattr(config, "search_space", None)
    if name in types:
        return types[name]
    dataset = getattr(config, "dataset", None)
    from nni_zerocost.spaces import get_space

    for space in types.values():
        if get_space(space).naslib_form().dataset == dataset:
            return space
    return None


class NoDataLoader:
    """A NASLib data loader that says "no data needed": one ``(NO_DATA, NO_DATA)`` pair; our
    measures then score on the space's default batch.  ``len`` 1, iterable any number of times."""

    def __iter__(self):
        from .predictors import NO_DATA

        return iter([(NO_DATA.clone(), NO_DATA.clone())])

    def __len__(self):
        return 1

    def __repr__(self):
        return "NoDataLoader()  # no data needed: nni-zerocost scores on the space's own batch"


def no_data_loader() -> NoDataLoader:
    return NoDataLoader()

