"""NASLib search spaces made from nni-zerocost's space plugins (one class per space).

:func:`naslib_space` turns a space's :class:`~nni_zerocost.spaces.base.NASLibForm` into a NASLib
graph class named ``form.class_name`` whose ``get_type()`` is ``form.type_name``; it extends
``form.base`` (e.g. NASLib's ``NasBenchNLPSearchSpace``, so NASLib code that switches on it keeps
working) or NASLib's plain ``Graph``.  The classes are also reachable by name
(``naslib_ext.search_spaces.NasBenchNLPSpace``).  Nothing here knows any particular space.

Each architecture holds the form's hashable *compact* (``get_hash()``, what NASLib's
zero-cost files key by) **and** the core architecture (``core_arch()``) the proxies score.

* ``query`` answers from the space's benchmark table (``form.benchmark``; ``form.metrics`` maps
  NASLib's metric names to functions of the benchmark's primary value; ``RAW`` is the truth
  dict, ``PARAMETERS`` the tabulated parameter count where there is one, ``TRAIN_TIME`` 0.0).
* Sampling follows NASLib's conventions: with ``load_labeled`` it draws from
  ``self.labeled_archs`` when NASLib set them (its zero-cost runners set them to the keys of the
  zero-cost file), removing each draw when ``sample_without_replacement`` is set, else from the
  benchmark's architectures with a finite result; without, from the whole space (the core
  sampler, seeded by NASLib's global numpy state).
* Moves: ``form.moves`` (every compact one change away); where it is None the base class's own
  ``mutate``/``get_nbhd`` are used, retried / filtered until the result is a valid, new
  architecture of this class with a plain hashable compact.  In labeled mode both move to the
  :attr:`LABELED_NEIGHBOURS` benchmark architectures nearest in the one-hot encoding.
* ``set_fitness_predictor``: ``query(VAL_ACCURACY)`` answers a zero-cost predictor's score, so
  NASLib's RegularizedEvolution and LocalSearch run predictor-guided.
"""
from __future__ import annotations

import functools
import importlib
import math
import random
from typing import Any, Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from .compat import import_naslib

import_naslib()

from naslib.search_spaces.core.graph import Graph  # noqa: E402
from naslib.search_spaces.core.query_metrics import Metric  # noqa: E402
from naslib.utils.encodings import EncodingType  # noqa: E402

from nni_zerocost.benchmarks.base import get_benchmark  # noqa: E402
from nni_zerocost.data import data_dir as default_data_dir  # noqa: E402
from nni_zerocost.errors import BadInputError, InvalidArchitectureError  # noqa: E402
from nni_zerocost.spaces import get_space, list_spaces  # noqa: E402

MAX_MUTATION_TRIES = 100


# -- which spaces NASLib sees ------------------------------------------------------------------
def naslib_types() -> Dict[str, str]:
    """``{NASLib type name: core space name}`` over every registered space (plugins included)."""
    return {get_space(s).naslib_form().type_name: s for s in list_spaces()}


def space_of_type(type_name: str) -> str:
    """The core space NASLib's ``type_name`` (``get_type()``, ``search_space`` in a config) names."""
    types = naslib_types()
    if type_name not in types:
        raise BadInputError("search_space", f"not a space of nni-zerocost; NASLib names ours: {', '.join(types)}",
                            repr(type_name))
    return types[type_name]


@functools.lru_cache(maxsize=None)
def naslib_space(name: str) -> type:
    """The NASLib graph class of core space ``name`` (one class per space, cached)."""
    sp = get_space(name)
    form = sp.naslib_form()
    base = Graph
    if form.base:
        module, _, attr = form.base.partition(":")
        base = getattr(importlib.import_module(module), attr)
    attrs = {"core_space": name, "form": form, "benchmark_name": form.benchmark, "num_classes": form.num_classes,
             "__module__": __name__, "__doc__": f"NASLib graph of nni-zerocost's {name!r} space "
                                                f"(benchmark {form.benchmark}); see naslib_ext.search_spaces."}
    return type(form.class_name, (CoreGraph, base), attrs)


def __getattr__(attr: str):
    """``NasBenchNLPSpace`` etc.: the class of the space whose form has that class name."""
    for s in list_spaces():
        if get_space(s).naslib_form().class_name == attr:
            return naslib_space(s)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def is_core_graph(obj) -> bool:
    """True for architectures of this module's spaces (they carry a core architecture)."""
    return isinstance(obj, CoreGraph)


# -- benchmark tables ----------------------------------------------------------------------------
class BenchmarkTable:
    """One benchmark's entries, indexed for ``query`` and labeled sampling.

    Lookup is by exact architecture first, then by the space's canonical hash (an isomorphic
    architecture trained separately); several canonical matches are pooled (mean of their
    results).  ``labeled`` lists the entries with a finite primary result.
    """

    def __init__(self, benchmark_name: str, folder):
        self.benchmark = get_benchmark(benchmark_name)
        self.space = get_space(self.benchmark.space)
        self.entries = self.benchmark.load(folder)
        self.by_arch: Dict[Any, Any] = {}
        self.by_hash: Dict[str, List[Any]] = {}
        for e in self.entries:
            self.by_arch.setdefault(e.arch, e)
            self.by_hash.setdefault(self.space.arch_hash(e.arch), []).append(e)
        self.labeled = [e for e in self.entries if _finite(e.truth.get(self.benchmark.primary))]

    def truth(self, arch) -> Optional[Dict[str, Any]]:
        """Ground-truth dict of ``arch`` (None when the benchmark does not hold it)."""
        e = self.by_arch.get(arch)
        matches = [e] if e is not None else self.by_hash.get(self.space.arch_hash(arch))
        if not matches:
            return None
        out: Dict[str, Any] = {}
        for key in matches[0].truth:
            vals = [m.truth.get(key) for m in matches if _finite(m.truth.get(key))]
            out[key] = sum(vals) / len(vals) if vals else None
        if matches[0].extra.get("n_params") is not None:  # isomorphic cells: same parameter count
            out["n_params"] = matches[0].extra["n_params"]
        return out


@functools.lru_cache(maxsize=4)
def _table(benchmark_name: str, folder: str) -> BenchmarkTable:
    return BenchmarkTable(benchmark_name, folder)


def benchmark_table(benchmark_name: str, dataset_api=None) -> BenchmarkTable:
    """The (cached) table; ``dataset_api`` may be ``{"data_dir": path}``, else ``data_dir()``."""
    if not benchmark_name:
        raise LookupError("this space has no benchmark: nothing answers query()")
    return _table(benchmark_name, _folder(dataset_api, benchmark_name))


def _folder(dataset_api, benchmark_name=None) -> str:
    folder = dataset_api.get("data_dir") if isinstance(dataset_api, dict) else None
    return str(folder or default_data_dir(None, get_benchmark(benchmark_name) if benchmark_name else None))


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _wrap(arch) -> torch.nn.Module:
    """NASLib's neighbour convention: a bare module carrying the architecture as ``.arch``."""
    m = torch.nn.Module()
    m.arch = arch
    return m


def _encoding_name(encoding_type) -> str:
    return getattr(encoding_type, "value", encoding_type)


# -- the graph ------------------------------------------------------------------------------------
class CoreGraph:
    """What every space's NASLib class shares; :func:`naslib_space` sets ``core_space``, ``form``,
    ``benchmark_name`` and ``num_classes``."""

    core_space = ""
    form = None
    benchmark_name = None
    num_classes = None
    QUERYABLE = True
    #: benchmark architectures offered as neighbours in labeled mode
    LABELED_NEIGHBOURS = 10

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.compact = None
        self.core = None
        self.fitness_predictor = None
        self.load_labeled = False
        # NASLib's labeled-sampling convention (its zero-cost runners set both)
        self.labeled_archs = None
        self.sample_without_replacement = False
        self.instantiate_model = False

    # -- representation ------------------------------------------------------------------
    def get_type(self) -> str:
        return self.form.type_name

    def get_compact(self):
        if self.compact is None:
            raise ValueError("no architecture set (sample_random_architecture() or set_spec() first)")
        return self.compact

    def get_hash(self):
        """The compact: nested tuples of plain Python values, hashable; ``str`` of it is the
        key of NASLib's zero-cost files."""
        return self.get_compact()

    def core_arch(self):
        """The nni-zerocost architecture the proxies score."""
        self.get_compact()
        return self.core

    def set_core_arch(self, arch) -> None:
        """Set the architecture from anything the core space parses."""
        self.core = get_space(self.core_space).parse(arch)
        self.compact = self.form.compact(self.core)

    def set_compact(self, compact) -> None:
        """Set the architecture from a compact (lists and numpy values accepted); raises
        InvalidArchitectureError.  The stored compact is the canonical one of its architecture."""
        self.core = self.form.arch(compact)
        self.compact = self.form.compact(self.core)

    def set_spec(self, spec, dataset_api=None) -> None:
        """A compact (or its ``str``, as NASLib's zero-cost files key it), or a core architecture."""
        if isinstance(spec, str):
            try:
                import ast

                parsed = ast.literal_eval(spec)
            except (ValueError, SyntaxError):
                parsed = None
            if parsed is not None and self.form.is_compact(parsed):
                spec = parsed
        if self.form.is_compact(spec):
            self.set_compact(spec)
        else:
            self.set_core_arch(spec)

    def encode(self, encoding_type=EncodingType.ADJACENCY_ONE_HOT):
        return self.form.encode(self.get_compact(), _encoding_name(encoding_type))

    def one_hot(self, compact) -> List[int]:
        return self.form.encode(compact, "adjacency_one_hot")

    def get_loss_fn(self):
        return F.cross_entropy

    def build_model(self, seed: int = 0, **options) -> torch.nn.Module:
        """The core space's model of this architecture (the one the proxies score)."""
        return get_space(self.core_space).build_model(self.core_arch(), seed=seed, **options)

    def parse(self, *args, **kwargs):
        """Nothing to build: proxies build the core model themselves."""
        return None

    def set_fitness_predictor(self, predictor) -> None:
        """Make ``query(Metric.VAL_ACCURACY)`` answer ``predictor``'s score (None switches it
        off); the predictor travels with clones, mutants and neighbours."""
        self.fitness_predictor = predictor

    # -- queries -------------------------------------------------------------------------
    def query(self, metric=None, dataset=None, path=None, epoch=-1, full_lc=False, dataset_api=None):
        """Benchmark result of this architecture (see the module docstring for the metrics)."""
        if full_lc:
            raise NotImplementedError(f"{self.benchmark_name} holds final results only, no learning curves")
        if metric == Metric.VAL_ACCURACY and self.fitness_predictor is not None:
            return float(self.fitness_predictor.query(self))
        if metric == Metric.TRAIN_TIME:
            return 0.0  # not recorded in the tables; NASLib only adds these up for its logs
        table = benchmark_table(self.benchmark_name, dataset_api)
        truth = table.truth(self.core_arch())
        if truth is None:
            raise LookupError(
                f"this architecture is not in {self.benchmark_name} ({len(table.entries)} architectures); "
                "only tabulated architectures have a trained result. Use set_load_labeled() to stay "
                "inside the table, or set_fitness_predictor() to search by a zero-cost proxy."
            )
        if metric == Metric.RAW:
            return truth
        if metric == Metric.PARAMETERS and "n_params" in truth:
            return truth["n_params"]
        name = getattr(metric, "name", str(metric))
        if name not in self.form.metrics:
            raise NotImplementedError(
                f"{name} is not in {self.benchmark_name}; supported: "
                f"{', '.join(list(self.form.metrics) + ['PARAMETERS', 'RAW', 'TRAIN_TIME'])}")
        primary = truth.get(table.benchmark.primary)
        if not _finite(primary):
            raise LookupError(f"every training run of this architecture in {self.benchmark_name} diverged")
        return float(self.form.metrics[name](float(primary)))

    # -- sampling ------------------------------------------------------------------------
    def _child(self):
        child = type(self)()
        child.load_labeled = self.load_labeled
        child.fitness_predictor = self.fitness_predictor
        return child

    def sample_random_architecture(self, dataset_api=None, load_labeled=None):
        """See the module docstring: ``labeled_archs`` (without replacement when asked), the
        benchmark's labelled architectures, or the whole space."""
        if load_labeled if load_labeled is not None else self.load_labeled:
            if self.labeled_archs is not None:
                self._sample_from_labeled_archs()
            else:
                self.load_labeled_architecture(dataset_api)
        else:
            rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
            self.set_core_arch(get_space(self.core_space).sample(rng))
        return self.compact

    def _sample_from_labeled_archs(self) -> None:
        if not self.labeled_archs:
            raise ValueError("every architecture of labeled_archs has been drawn (sample_without_replacement); "
                             "ask for fewer architectures or give more labeled_archs")
        i = random.randrange(len(self.labeled_archs))
        spec = self.labeled_archs.pop(i) if self.sample_without_replacement else self.labeled_archs[i]
        self.set_spec(spec)

    def load_labeled_architecture(self, dataset_api=None, max_nodes=None):
        """A benchmark architecture with a finite result; switches this object to labeled mode."""
        self.load_labeled = True
        labeled = benchmark_table(self.benchmark_name, dataset_api).labeled
        self.set_core_arch(labeled[np.random.randint(len(labeled))].arch)

    def get_arch_iterator(self, dataset_api=None):
        """The benchmark's architectures with a finite result, shuffled (feed them to ``set_spec``)."""
        archs = [e.arch for e in benchmark_table(self.benchmark_name, dataset_api).labeled]
        return [archs[i] for i in np.random.permutation(len(archs))]

    # -- moves ---------------------------------------------------------------------------
    def mutate(self, parent, mutation_rate=1, dataset_api=None):
        """One change of ``parent`` (``mutation_rate`` changes with the form's moves), valid and new."""
        if self.load_labeled:
            return self._labeled_mutate(parent, dataset_api)
        if self.form.moves is None:
            return self._base_mutate(parent, mutation_rate, dataset_api)
        compact = parent.get_compact()
        for _ in range(max(1, int(mutation_rate))):
            moves = self.form.moves(compact)
            compact = moves[np.random.randint(len(moves))]
        self.set_compact(compact)

    def _base_mutate(self, parent, mutation_rate, dataset_api):
        for _ in range(MAX_MUTATION_TRIES):
            try:
                super().mutate(parent, mutation_rate=mutation_rate, dataset_api=dataset_api)
                self.set_compact(self.compact)  # canonical, plain and validated
            except InvalidArchitectureError:
                continue
            if self.compact != parent.get_compact():
                return
        raise RuntimeError(f"no valid mutation of {parent.get_compact()} in {MAX_MUTATION_TRIES} tries")

    def get_nbhd(self, dataset_api=None) -> List[torch.nn.Module]:
        """Every valid architecture one change away, distinct and other than this one, of this class."""
        if self.load_labeled:
            return self._labeled_nbhd(dataset_api)
        if self.form.moves is None:
            candidates = [n.arch.compact for n in super().get_nbhd(dataset_api=dataset_api)]
        else:
            candidates = self.form.moves(self.get_compact())
        out, seen = [], {self.get_compact()}
        for compact in candidates:
            child = self._child()
            try:
                child.set_compact(compact)
            except InvalidArchitectureError:
                continue
            if child.compact not in seen:
                seen.add(child.compact)
                out.append(_wrap(child))
        return out

    def _labeled_neighbours(self, parent, dataset_api) -> list:
        """The benchmark architectures nearest to ``parent`` in the one-hot encoding (L1)."""
        archs, codes = _labeled_encodings(type(self), _folder(dataset_api, self.benchmark_name))
        me = np.asarray(self.one_hot(parent.get_compact()), dtype=np.float32)
        dist = np.abs(codes - me).sum(axis=1).astype(np.float64)
        dist[[i for i, a in enumerate(archs) if a == parent.core_arch()]] = np.inf
        dist += np.random.random(len(dist)) * 1e-3  # random tie-breaking
        return [archs[i] for i in np.argsort(dist)[: self.LABELED_NEIGHBOURS]]

    def _labeled_mutate(self, parent, dataset_api) -> None:
        near = self._labeled_neighbours(parent, dataset_api)
        self.set_core_arch(near[np.random.randint(len(near))])

    def _labeled_nbhd(self, dataset_api) -> List[torch.nn.Module]:
        out = []
        for arch in self._labeled_neighbours(self, dataset_api):
            child = self._child()
            child.set_core_arch(arch)
            out.append(_wrap(child))
        return out


@functools.lru_cache(maxsize=4)
def _labeled_encodings(cls, folder: str):
    archs = [e.arch for e in _table(cls.benchmark_name, folder).labeled]
    codes = np.array([cls.form.encode(cls.form.compact(a), "adjacency_one_hot") for a in archs], dtype=np.float32)
    return archs, codes
