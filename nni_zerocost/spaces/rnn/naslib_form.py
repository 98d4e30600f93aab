"""How NASLib sees NAS-Bench-NLP cells: NASLib's own compact form, its encoding and its metrics.

The compact form (NASLib's): ``(edges, ops, hiddens)`` over node indices ``0 = x``,
``1..3 = h_prev_0..2`` (always reserved), then the cell's nodes in a topological order; ``edges``
are ``(source, target)`` pairs, grouped by target in input order (the order matters for
``blend``); ``ops[i]`` indexes :data:`OP_CODES` (0 for the four inputs).

Upstream's round trip loses which node is which output (``convert_compact_to_recipe`` names the
hidden-state nodes ``h_new_0, h_new_1, ...`` in node-index order, and
``convert_recipe_to_compact`` detects outputs by the substring ``"h_new"``), which changes 750 of
the 4,322 benchmark cells.  Here the compact's third field lists the index of ``h_new_j`` at
position ``j``; node numbering is NASLib's, so for every other benchmark cell the compact is
exactly NASLib's.  Moves are NASLib's own NB-NLP mutations (:mod:`naslib_ext.search_spaces`
extends ``NasBenchNLPSearchSpace``), and the encoding is NASLib's NB-NLP one-hot adjacency
encoding (NASLib imported when an encoding is asked for).
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from ...errors import InvalidArchitectureError
from ..base import NASLibForm
from .cell import Cell

#: NASLib's NB-NLP op codes (the index is the code stored in a compact)
OP_CODES = ("in", "activation_sigm", "activation_tanh", "activation_leaky_relu",
            "elementwise_sum", "elementwise_prod", "linear", "blend")
INPUT_NODES = ("x", "h_prev_0", "h_prev_1", "h_prev_2")
#: largest node count NASLib's NB-NLP encodings accept (``encode_nlp`` default)
ENCODING_MAX_NODES = 25
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


def encode(compact, encoding: str = "adjacency_one_hot"):
    """NASLib's NB-NLP encodings of a compact (``adjacency_one_hot``: its one-hot adjacency
    encoding over at most 25 nodes); ``compact``: the compact itself."""
    if encoding == "compact":
        return normalise_compact(compact)
    if encoding not in ("adjacency_one_hot", "adjacency_mix"):
        raise NotImplementedError(f"encoding {encoding!r} is not implemented for NAS-Bench-NLP cells")
    from naslib.search_spaces.nasbenchnlp.encodings import encode_adj

    return encode_adj(compact=normalise_compact(compact), max_nodes=ENCODING_MAX_NODES,
                      one_hot=encoding == "adjacency_one_hot")


def batch_of_inputs(inputs):
    """The token batch of a NASLib data loader's inputs: integer ids ``(B, T)``, batch-first."""
    import torch

    from ...data import TokenBatch
    from .model import VOCAB

    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 2 or inputs.dtype.is_floating_point:
        raise ValueError("expected integer token ids of shape (batch, time) from the data loader, got "
                         f"{getattr(inputs, 'dtype', type(inputs).__name__)} {tuple(getattr(inputs, 'shape', ()))}")
    tokens = inputs.detach().cpu().long().t().contiguous()
    return TokenBatch(tokens, max(VOCAB, int(tokens.max()) + 1), "naslib-dataloader")


def naslib_form() -> NASLibForm:
    from .model import VOCAB

    return NASLibForm(
        class_name="NasBenchNLPSpace", type_name="nlp", compact=compact_from_cell, arch=cell_from_compact,
        is_compact=_looks_like_compact, encode=encode, moves=None, benchmark="nasbench-nlp",
        metrics={"TEST_LOSS": lambda loss: loss, "VAL_ACCURACY": lambda loss: LOSS_OFFSET - loss,
                 "TEST_ACCURACY": lambda loss: LOSS_OFFSET - loss},
        base="naslib.search_spaces.nasbenchnlp.graph:NasBenchNLPSearchSpace", dataset="ptb",
        num_classes=VOCAB, batch_of_inputs=batch_of_inputs,
    )
