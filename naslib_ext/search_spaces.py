"""NASLib search spaces over nni-zerocost's spaces and benchmark tables.

* :class:`NasBenchNLPSpace` extends NASLib's ``NasBenchNLPSearchSpace`` (``get_type() == "nlp"``,
  so NASLib's NB-NLP encoders keep working).  Each architecture holds NASLib's *compact* form
  **and** our :class:`~nni_zerocost.spaces.rnn.Cell`, so it can build our
  ``RNNLanguageModel`` and be scored by our proxies; ``query`` answers from our NAS-Bench-NLP
  table instead of NASLib's pickle (which is not downloadable any more).
* :class:`NasBenchBERTSpace` does the same for the FlexiBERT-style BERT space
  (``get_space("bert")``, benchmark ``"nasbench-bert"``); it needs the core BERT space.

Upstream NB-NLP bugs fixed here (see ``tests/test_naslib_spaces.py``):

1. ``mutate``/``get_nbhd`` store the compact as a tuple of *lists* holding numpy ints, so
   ``get_hash()`` is unhashable and NASLib's de-duplication (``arch_hash_map[hash]``) crashes;
   here every compact is normalised to nested tuples of Python ints.
2. ``get_nbhd`` builds neighbours as ``NasBenchNLPSearchSpace()``, dropping the subclass (and
   with it model building and our ``query``); here neighbours have ``type(self)``.
3. The compact loses which node is which output: ``convert_compact_to_recipe`` names the
   hidden-state nodes ``h_new_0, h_new_1, ...`` in node-index order, swapping the cell output
   and the carried states whenever ``h_new_1`` is numbered before ``h_new_0``, and
   ``convert_recipe_to_compact`` detects outputs by the substring ``"h_new"`` (so the
   handcrafted LSTM's ``h_new_1_part1`` counts as an output).  NASLib's round trip changes 750
   of the 4,322 benchmark cells.  Here the compact's third field lists the index of ``h_new_j``
   at position ``j``; node numbering is NASLib's, so for every other benchmark cell the compact
   is exactly NASLib's.
4. Mutations that leave a node unable to reach any output are invalid cells (our model refuses
   them), and an edge "change" to the edge's current source returns the parent itself;
   ``mutate`` retries both, ``get_nbhd`` drops them (and duplicates).

The compact form (NASLib's): ``(edges, ops, hiddens)`` over node indices ``0 = x``,
``1..3 = h_prev_0..2`` (always reserved), then the cell's nodes in a topological order;
``edges`` are ``(source, target)`` pairs, grouped by target in input order (the order matters
for ``blend``); ``ops[i]`` indexes :data:`OP_CODES` (0 for the four inputs).
"""
from __future__ import annotations

import functools
import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .compat import import_naslib

import_naslib()

from naslib.search_spaces.core.graph import Graph  # noqa: E402
from naslib.search_spaces.core.query_metrics import Metric  # noqa: E402
from naslib.search_spaces.nasbenchnlp.encodings import encode_adj  # noqa: E402
from naslib.search_spaces.nasbenchnlp.graph import NasBenchNLPSearchSpace  # noqa: E402
from naslib.utils.encodings import EncodingType  # noqa: E402

from nni_zerocost.benchmarks.base import get_benchmark  # noqa: E402
from nni_zerocost.data import data_dir as default_data_dir  # noqa: E402
from nni_zerocost.errors import InvalidArchitectureError, UnknownNameError  # noqa: E402
from nni_zerocost.spaces import get_space  # noqa: E402
from nni_zerocost.spaces.rnn import Cell, RNNLanguageModel  # noqa: E402
from nni_zerocost.spaces.rnn.model import VOCAB  # noqa: E402

#: NASLib's NB-NLP op codes (the index is the code stored in a compact)
OP_CODES = ("in", "activation_sigm", "activation_tanh", "activation_leaky_relu",
            "elementwise_sum", "elementwise_prod", "linear", "blend")
INPUT_NODES = ("x", "h_prev_0", "h_prev_1", "h_prev_2")
#: largest node count NASLib's NB-NLP encodings accept (``encode_nlp`` default)
ENCODING_MAX_NODES = 25
MAX_MUTATION_TRIES = 100
#: NASLib's NLP convention: accuracy-like metrics are ``100 - loss``
LOSS_OFFSET = 100.0

Compact = Tuple[Tuple[Tuple[int, int], ...], Tuple[int, ...], Tuple[int, ...]]


# -- compact <-> Cell --------------------------------------------------------------------------
def compact_from_cell(cell: Cell) -> Compact:
    """NASLib compact of a cell: NASLib's numbering, ``hiddens[j]`` = index of ``h_new_j``."""
    cell = Cell.parse(cell)
    nodes = cell.node_map
    order = _naslib_node_order(nodes)
    index = {name: i for i, name in enumerate(INPUT_NODES)}
    for name in order:
        index[name] = len(index)
    edges = tuple((index[src], index[name]) for name in order for src in nodes[name].inputs)
    ops = (0,) * len(INPUT_NODES) + tuple(OP_CODES.index(nodes[name].op) for name in order)
    hiddens = tuple(index[f"h_new_{j}"] for j in range(cell.hidden_tuple_size))
    return edges, ops, hiddens


def _naslib_node_order(nodes) -> List[str]:
    """The node numbering of NASLib's ``convert_recipe_to_compact``, so compacts match its data.

    Recipe order, except that a node with an input not yet numbered is moved to the end and
    the numbering restarts (a topological order; terminates because cells are acyclic).
    """
    order = list(nodes)
    while True:
        placed = set(INPUT_NODES)
        for i, name in enumerate(order):
            if any(src not in placed for src in nodes[name].inputs):
                order.append(order.pop(i))
                break
            placed.add(name)
        else:
            return order


def normalise_compact(compact) -> Compact:
    """Nested tuples of Python ints (hashable), whatever lists / numpy ints came in."""
    try:
        edges, ops, hiddens = compact
        return (
            tuple((int(a), int(b)) for a, b in edges),
            tuple(int(o) for o in ops),
            tuple(int(h) for h in hiddens),
        )
    except (TypeError, ValueError) as e:
        raise InvalidArchitectureError(f"not a NAS-Bench-NLP compact (edges, ops, hiddens): {e}") from None


def cell_from_compact(compact) -> Cell:
    """The cell a compact describes; ``hiddens[j]`` is the node that becomes ``h_new_j``."""
    edges, ops, hiddens = normalise_compact(compact)
    if not hiddens:
        raise InvalidArchitectureError("compact has no hidden-state outputs")
    if len(set(hiddens)) != len(hiddens):
        raise InvalidArchitectureError(f"compact lists a hidden-state node twice: {hiddens}")
    names = list(INPUT_NODES)
    out_of = {idx: j for j, idx in enumerate(hiddens)}
    plain = 0
    for i in range(len(INPUT_NODES), len(ops)):
        if i in out_of:
            names.append(f"h_new_{out_of[i]}")
        else:
            names.append(f"node_{plain}")
            plain += 1
    recipe: Dict[str, Dict[str, Any]] = {}
    for i in range(len(INPUT_NODES), len(ops)):
        if not 0 <= ops[i] < len(OP_CODES) or ops[i] == 0:
            raise InvalidArchitectureError(f"invalid op code {ops[i]}", node=names[i])
        recipe[names[i]] = {"op": OP_CODES[ops[i]], "input": []}
    for src, dst in edges:
        if not (0 <= src < len(names) and len(INPUT_NODES) <= dst < len(names)):
            raise InvalidArchitectureError(f"edge ({src}, {dst}) points outside the {len(ops)} nodes")
        recipe[names[dst]]["input"].append(names[src])
    for idx in hiddens:
        if not len(INPUT_NODES) <= idx < len(names):
            raise InvalidArchitectureError(f"hidden-state index {idx} is not a cell node")
    return Cell.parse(recipe)


def _looks_like_compact(spec) -> bool:
    return isinstance(spec, (tuple, list)) and len(spec) == 3 and all(isinstance(p, (tuple, list)) for p in spec)


# -- benchmark tables ----------------------------------------------------------------------------
class BenchmarkTable:
    """One benchmark's entries, indexed for ``query`` and labeled sampling.

    Lookup is by exact architecture first, then by the space's canonical hash (an isomorphic
    cell trained separately); several canonical matches are pooled (mean of their results).
    ``labeled`` lists the entries with a finite primary result.
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
    return _table(benchmark_name, _folder(dataset_api, benchmark_name))


def _folder(dataset_api, benchmark_name=None) -> str:
    folder = dataset_api.get("data_dir") if isinstance(dataset_api, dict) else None
    return str(folder or default_data_dir(None, benchmark_name))


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _wrap(arch) -> torch.nn.Module:
    """NASLib's neighbour convention: a bare module carrying the architecture as ``.arch``."""
    m = torch.nn.Module()
    m.arch = arch
    return m


def is_core_graph(obj) -> bool:
    """True for architectures of this module's spaces (they carry a core architecture)."""
    return isinstance(obj, _CoreGraph)


class _CoreGraph:
    """What both spaces share: the core architecture next to the compact, table queries,
    labeled sampling and moves, and the fitness-predictor switch.

    Subclasses define ``benchmark_name``, ``core_space``, ``set_core_arch``, ``set_compact``,
    ``compact_of`` (core arch -> compact), ``one_hot`` (compact -> 0/1 list) and ``_metric``.
    """

    benchmark_name = ""
    core_space = ""
    #: table architectures offered as neighbours in labeled mode
    LABELED_NEIGHBOURS = 10

    def _init_core(self):
        self.compact = None
        self.core = None
        self.fitness_predictor = None
        self.load_labeled = False

    # -- representation ------------------------------------------------------------------
    def get_compact(self):
        if self.compact is None:
            raise ValueError("no architecture set (sample_random_architecture() or set_spec() first)")
        return self.compact

    def get_hash(self):
        """The compact: nested tuples of Python ints / strings, hashable."""
        return self.get_compact()

    def core_arch(self):
        """The nni-zerocost architecture (Cell / BertConfig) the proxies score."""
        self.get_compact()
        return self.core

    def set_fitness_predictor(self, predictor) -> None:
        """Make ``query(Metric.VAL_ACCURACY)`` answer ``predictor``'s score.

        NASLib's RegularizedEvolution and LocalSearch rank architectures by
        ``query(Metric.VAL_ACCURACY)`` only; with a zero-cost predictor set they run
        predictor-guided, and the other metrics still answer from the benchmark.  The predictor
        travels with clones, mutants and neighbours.  ``None`` switches it off.
        """
        self.fitness_predictor = predictor

    # -- queries -------------------------------------------------------------------------
    def query(self, metric=None, dataset=None, path=None, epoch=-1, full_lc=False, dataset_api=None):
        """Benchmark result of this architecture (see the class docstring for the metrics)."""
        if full_lc:
            raise NotImplementedError(f"{self.benchmark_name} holds final results only, no learning curves")
        if metric == Metric.VAL_ACCURACY and self.fitness_predictor is not None:
            return float(self.fitness_predictor.query(self))
        if metric == Metric.TRAIN_TIME:
            return 0.0  # not recorded in the table; NASLib only adds these up for its logs
        table = benchmark_table(self.benchmark_name, dataset_api)
        truth = table.truth(self.core_arch())
        if truth is None:
            raise LookupError(
                f"this architecture is not in {self.benchmark_name} ({len(table.entries)} "
                "architectures); only tabulated architectures have a trained result. Use "
                "set_load_labeled() to stay inside the table, or set_fitness_predictor() to "
                "search by a zero-cost proxy."
            )
        if metric == Metric.RAW:
            return truth
        if metric == Metric.PARAMETERS and "n_params" in truth:
            return truth["n_params"]
        primary = truth.get(table.benchmark.primary)
        if not _finite(primary):
            raise LookupError(f"every training run of this architecture in {self.benchmark_name} diverged")
        return self._metric(metric, float(primary))

    # -- sampling and moves --------------------------------------------------------------
    def _child(self):
        child = type(self)()
        child.load_labeled = self.load_labeled
        child.fitness_predictor = self.fitness_predictor
        return child

    def set_spec(self, spec, dataset_api=None) -> None:
        """A compact, or anything the core space parses."""
        if self._is_compact(spec):
            self.set_compact(spec)
        else:
            self.set_core_arch(spec)

    def sample_random_architecture(self, dataset_api=None, load_labeled=None):
        """From the whole space (core sampler seeded by NASLib's global numpy state), or from
        the table after ``set_load_labeled()``."""
        if load_labeled if load_labeled is not None else self.load_labeled:
            self.load_labeled_architecture(dataset_api)
        else:
            rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
            self.set_core_arch(get_space(self.core_space).sample(rng))
        return self.compact

    def load_labeled_architecture(self, dataset_api=None, max_nodes=None):
        """A table architecture with a finite result; switches this object to labeled mode."""
        self.load_labeled = True
        labeled = benchmark_table(self.benchmark_name, dataset_api).labeled
        self.set_core_arch(labeled[np.random.randint(len(labeled))].arch)

    def get_arch_iterator(self, dataset_api=None):
        """The table's architectures with a finite result, shuffled (feed them to ``set_spec``)."""
        archs = [e.arch for e in benchmark_table(self.benchmark_name, dataset_api).labeled]
        return [archs[i] for i in np.random.permutation(len(archs))]

    def _labeled_neighbours(self, parent, dataset_api) -> list:
        """The table architectures nearest to ``parent`` in the one-hot encoding (Hamming)."""
        archs, codes = _labeled_encodings(type(self), _folder(dataset_api, self.benchmark_name))
        me = np.asarray(self.one_hot(parent.get_compact()), dtype=np.int16)
        dist = np.abs(codes - me).sum(axis=1).astype(np.float64)
        dist[[i for i, a in enumerate(archs) if a == parent.core_arch()]] = np.inf
        dist += np.random.random(len(dist)) * 0.5  # random tie-breaking (distances are integers)
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
    codes = np.array([cls.one_hot(cls.compact_of(a)) for a in archs], dtype=np.int16)
    return archs, codes


# -- NAS-Bench-NLP -------------------------------------------------------------------------------
class NasBenchNLPSpace(_CoreGraph, NasBenchNLPSearchSpace):
    """NAS-Bench-NLP cells for NASLib, backed by nni-zerocost's cell, model and table.

    ``query`` metrics (from the PTB table, mean over the finished training runs):
    ``TEST_LOSS`` -- the final PTB test cross-entropy; ``VAL_ACCURACY`` and ``TEST_ACCURACY`` --
    NASLib's NLP convention ``100 - loss`` (the table has no separate validation loss, so both
    answer from the test loss); ``PARAMETERS`` -- parameters of the official PTB model;
    ``RAW`` -- the truth dict; ``TRAIN_TIME`` -- 0.0 (not recorded).  A cell outside the table
    raises ``LookupError``.

    Sampling: ``sample_random_architecture`` draws from the whole NB-NLP generator space; after
    ``set_load_labeled()`` (or ``load_labeled_architecture()``) it draws table cells with a
    finite result, and ``mutate``/``get_nbhd`` move to the :attr:`LABELED_NEIGHBOURS` table
    cells nearest to the parent in NASLib's one-hot adjacency encoding (an upstream mutation
    almost never lands on one of the 4,322 tabulated cells).
    """

    benchmark_name = "nasbench-nlp"
    core_space = "rnn"
    num_classes = VOCAB  # read by NASLib's ZeroCost (the vocabulary size here)

    def __init__(self):
        super().__init__()
        self._init_core()

    @property
    def cell(self) -> Optional[Cell]:
        return self.core

    def set_core_arch(self, cell) -> None:
        """Set the architecture from a Cell / recipe dict / JSON string (node order kept)."""
        self.core = Cell.parse(cell)
        self.compact = compact_from_cell(self.core)


    def set_compact(self, compact) -> None:
        """Set the architecture from a NASLib compact; raises InvalidArchitectureError."""
        self.core = cell_from_compact(compact)
        self.compact = normalise_compact(compact)

    _is_compact = staticmethod(_looks_like_compact)
    compact_of = staticmethod(compact_from_cell)

    @staticmethod
    def one_hot(compact) -> List[int]:
        return encode_adj(compact=compact, max_nodes=ENCODING_MAX_NODES, one_hot=True)

    def get_type(self) -> str:
        return "nlp"

    def get_loss_fn(self):
        return F.cross_entropy

    def build_model(self, seed: int = 0, init: str = "official") -> RNNLanguageModel:
        """Our AWD-RNN language model of this cell (the one the proxies score)."""
        return RNNLanguageModel(self.core_arch(), seed=seed, init=init)

    def encode(self, encoding_type=EncodingType.ADJACENCY_ONE_HOT):
        from naslib.search_spaces.nasbenchnlp.encodings import encode_nlp

        return encode_nlp(self, encoding_type=encoding_type, max_nodes=ENCODING_MAX_NODES)

    def _metric(self, metric, loss: float) -> float:
        if metric == Metric.TEST_LOSS:
            return loss
        if metric in (Metric.VAL_ACCURACY, Metric.TEST_ACCURACY):
            return LOSS_OFFSET - loss
        raise NotImplementedError(
            f"{metric} is not in the NAS-Bench-NLP table; supported: TEST_LOSS, VAL_ACCURACY, "
            "TEST_ACCURACY (100 - test loss), PARAMETERS, RAW, TRAIN_TIME"
        )

    def mutate(self, parent, mutation_rate=1, dataset_api=None):
        """Upstream mutation (one edge or op change), retried until the cell is valid and new."""
        if self.load_labeled:
            return self._labeled_mutate(parent, dataset_api)
        for _ in range(MAX_MUTATION_TRIES):
            try:
                super().mutate(parent, mutation_rate=mutation_rate, dataset_api=dataset_api)
            except InvalidArchitectureError:
                continue
            if self.compact != parent.get_compact():
                return
        raise RuntimeError(f"no valid mutation of {parent.get_compact()} in {MAX_MUTATION_TRIES} tries")

    def get_nbhd(self, dataset_api=None) -> List[torch.nn.Module]:
        """Upstream neighbourhood (every single op / edge change): valid, distinct cells other
        than this one, of this class."""
        if self.load_labeled:
            return self._labeled_nbhd(dataset_api)
        out, seen = [], {self.get_compact()}
        for nbr in super().get_nbhd(dataset_api=dataset_api):
            child = self._child()
            try:
                child.set_compact(nbr.arch.compact)
            except InvalidArchitectureError:
                continue
            if child.compact not in seen:
                seen.add(child.compact)
                out.append(_wrap(child))
        return out


# -- BERT ------------------------------------------------------------------------------------------
#: per-layer fields of the benchmark's config form, in compact order
BERT_LAYER_FIELDS = ("operation_type", "operation_parameter", "num_operation_heads",
                     "feed_forward_dimension", "num_feed_forward")


def _bert_space():
    try:
        return get_space("bert")
    except UnknownNameError:
        raise ImportError("the BERT search space of nni-zerocost is not available in this installation") from None


def bert_compact(config) -> tuple:
    """``(hidden_size, ((op_type, op_param, heads, ff_dim, n_ff), ...))`` of a BERT config."""
    sp = _bert_space()
    d = sp.to_dict(sp.parse(config))
    layers = tuple(tuple(layer[f] for f in BERT_LAYER_FIELDS) for layer in d["nas_config"]["encoder_layers"])
    return (int(d["hidden_size"]), layers)


def bert_config_from_compact(compact):
    """The core BertConfig of a compact (validated by the core space)."""
    try:
        hidden, layers = compact
        d = {"hidden_size": hidden, "nas_config": {"encoder_layers": [dict(zip(BERT_LAYER_FIELDS, l)) for l in layers]}}
    except (TypeError, ValueError) as e:
        raise InvalidArchitectureError(f"not a BERT compact (hidden_size, layers): {e}") from None
    return _bert_space().parse(d)


def bert_options() -> Dict[str, list]:
    """Every value of every choice, from the core space's :meth:`choices` (this adapter never
    restates the space): hidden_size, num_layers, operation (type, parameter), heads, widths,
    depths."""
    c = _bert_space().choices()
    ops = sorted(((t, p) for t, ps in c["operation"].items() for p in ps), key=lambda x: tuple(map(str, x)))
    out = {"hidden_size": sorted(c["hidden_size"]), "num_layers": sorted(c["num_layers"]), "operation": ops}
    out.update({f: sorted(c[f]) for f in BERT_LAYER_FIELDS[2:]})
    return out


def _bert_moves(compact) -> List[tuple]:
    """Every compact one choice away: hidden size, layer count (truncate, or repeat the last
    layer), or one field of one layer (operation type+parameter count as one choice)."""
    opts = bert_options()
    hidden, layers = compact
    out = [(h, layers) for h in opts["hidden_size"] if h != hidden]
    for n in opts["num_layers"]:
        if n < len(layers):
            out.append((hidden, layers[:n]))
        elif n > len(layers):
            out.append((hidden, layers + (layers[-1],) * (n - len(layers))))
    for i, layer in enumerate(layers):
        def with_layer(new):
            return (hidden, layers[:i] + (tuple(new),) + layers[i + 1:])
        out += [with_layer(op + layer[2:]) for op in opts["operation"] if op != layer[:2]]
        for j, f in enumerate(BERT_LAYER_FIELDS[2:], start=2):
            out += [with_layer(layer[:j] + (v,) + layer[j + 1:]) for v in opts[f] if v != layer[j]]
    return out


class NasBenchBERTSpace(_CoreGraph, Graph):
    """FlexiBERT-style BERT configurations for NASLib (core space ``"bert"``).

    ``query`` metrics (from the ``nasbench-bert`` table): ``VAL_ACCURACY`` and ``TEST_ACCURACY``
    -- the benchmark's primary result (GLUE score, higher is better); ``RAW`` -- the truth dict;
    ``TRAIN_TIME`` -- 0.0 (not recorded).  Sampling and labeled mode as in
    :class:`NasBenchNLPSpace`; ``mutate`` changes one choice, ``get_nbhd`` lists every
    one-choice change.
    """

    QUERYABLE = True
    benchmark_name = "nasbench-bert"
    core_space = "bert"
    num_classes = None  # a language model has no class count; NASLib's ZeroCost reads the attribute

    def __init__(self):
        super().__init__()
        self._init_core()

    @property
    def config(self):
        return self.core

    def set_core_arch(self, config) -> None:
        self.core = _bert_space().parse(config)
        self.compact = bert_compact(self.core)

    def set_compact(self, compact) -> None:
        self.core = bert_config_from_compact(compact)
        self.compact = bert_compact(self.core)

    @staticmethod
    def _is_compact(spec) -> bool:
        return isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[1], (tuple, list))

    compact_of = staticmethod(bert_compact)

    @staticmethod
    def one_hot(compact) -> List[int]:
        """One-hot of every choice; layers beyond the layer count are all zeros."""
        opts = bert_options()
        hidden, layers = compact
        code = [int(h == hidden) for h in opts["hidden_size"]] + [int(n == len(layers)) for n in opts["num_layers"]]
        for i in range(max(opts["num_layers"])):
            layer = layers[i] if i < len(layers) else None
            code += [int(layer is not None and op == layer[:2]) for op in opts["operation"]]
            for j, f in enumerate(BERT_LAYER_FIELDS[2:], start=2):
                code += [int(layer is not None and v == layer[j]) for v in opts[f]]
        return code

    def get_type(self) -> str:
        return "bert"

    def get_loss_fn(self):
        return F.cross_entropy

    def encode(self, encoding_type=EncodingType.ADJACENCY_ONE_HOT):
        if encoding_type == EncodingType.COMPACT:
            return self.get_compact()
        if encoding_type == EncodingType.ADJACENCY_ONE_HOT:
            return self.one_hot(self.get_compact())
        raise NotImplementedError(f"{encoding_type} is not implemented for the BERT space (use ADJACENCY_ONE_HOT)")

    def _metric(self, metric, value: float) -> float:
        if metric in (Metric.VAL_ACCURACY, Metric.TEST_ACCURACY):
            return value
        raise NotImplementedError(f"{metric} is not in the BERT benchmark; supported: VAL_ACCURACY, TEST_ACCURACY, RAW, TRAIN_TIME")

    def mutate(self, parent, mutation_rate=1, dataset_api=None):
        """``mutation_rate`` random one-choice changes of ``parent``."""
        if self.load_labeled:
            return self._labeled_mutate(parent, dataset_api)
        compact = parent.get_compact()
        for _ in range(max(1, int(mutation_rate))):
            moves = _bert_moves(compact)
            compact = moves[np.random.randint(len(moves))]
        self.set_compact(compact)

    def get_nbhd(self, dataset_api=None) -> List[torch.nn.Module]:
        if self.load_labeled:
            return self._labeled_nbhd(dataset_api)
        out = []
        for compact in _bert_moves(self.get_compact()):
            child = self._child()
            child.set_compact(compact)
            out.append(_wrap(child))
        return out
