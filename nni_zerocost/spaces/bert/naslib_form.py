"""How NASLib sees the BERT space: a compact form, one-choice moves and a one-hot encoding.

Compact: ``(hidden_size, ((op_type, op_param, heads, ff_dim, n_ff), ...))``.  Every value of every
choice comes from the core space's :meth:`choices` (nothing restated here).
"""
from __future__ import annotations

from typing import Dict, List

from ...errors import InvalidArchitectureError
from ..base import NASLibForm

#: per-layer fields of the benchmark's config form, in compact order
BERT_LAYER_FIELDS = ("operation_type", "operation_parameter", "num_operation_heads",
                     "feed_forward_dimension", "num_feed_forward")


def _bert_space():
    from .. import get_space

    return get_space("bert")


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


def _is_compact(spec) -> bool:
    return isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[1], (tuple, list))


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


def encode(compact, encoding: str = "adjacency_one_hot"):
    if encoding == "compact":
        return compact
    if encoding != "adjacency_one_hot":
        raise NotImplementedError(f"{encoding} is not implemented for the BERT space (use adjacency_one_hot)")
    return one_hot(compact)


def naslib_form() -> NASLibForm:
    from .model import VOCAB_SIZE

    return NASLibForm(
        class_name="NasBenchBERTSpace", type_name="bert", compact=bert_compact, arch=bert_config_from_compact,
        is_compact=_is_compact, encode=encode, moves=_bert_moves, benchmark="nasbench-bert",
        metrics={"VAL_ACCURACY": lambda glue: glue, "TEST_ACCURACY": lambda glue: glue}, dataset="glue",
        num_classes=VOCAB_SIZE,
    )
