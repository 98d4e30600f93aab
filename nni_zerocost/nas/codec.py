"""Architectures <-> flat samples of plain categorical labels (no NNI import here).

NNI's samplers (Random, RegularizedEvolution, TPE, GridSearch, every HPO tuner) handle a flat
dict ``{label: value}`` of categorical choices best, so both spaces are encoded that way.  This
module is the single place that knows the encoding; the NNI model spaces, the HPO search-space
exporter and the HPO trial all go through it.

RNN cells (NAS-Bench-NLP).  ``max_nodes`` node *slots*; slot ``i`` has

* ``node_{i}_op``: one of :data:`RNN_OP_CHOICES` (``linear`` takes 2 inputs, ``linear_3``
  is a linear node with 3 inputs, ``blend`` 3, ``elementwise_prod``/``_sum`` 2, activations 1);
* ``node_{i}_in_{j}`` for j = 0, 1, 2: ``x``, ``h_prev_0..2`` or an earlier slot ``node_{s}``
  (s < i, so every sample is acyclic); inputs beyond the op's arity are unused genes;

plus ``hidden_tuple_size`` (1-3) and ``h_new_{j}`` (j = 0..2): the slot that is output j.

Every sample decodes to a valid :class:`~nni_zerocost.spaces.rnn.Cell`, by a deterministic
*repair* (never a rejection, so no sampler ever wastes a draw or loops on rejections):

1. ``h_prev_m`` with m >= hidden_tuple_size reads ``h_prev_{k-1}`` (the last existing state);
   ``x`` feeding anything but a linear node reads ``h_prev_0`` (the embedding has another
   width than the hidden state, so only a linear node can take it, as in NAS-Bench-NLP);
2. outputs ``h_new_j`` for j >= hidden_tuple_size are ignored; an output slot already taken
   by an earlier output moves to the next slot (``(s + 1) mod max_nodes``) that is free;
3. slots that no output reaches are dropped (dead nodes are pruned, never an error).

The decoded recipe lists the live non-output slots in slot order, then ``h_new_0..k-1``, which
is the order the NAS-Bench-NLP generator produced; :meth:`RNNCellCodec.encode` places nodes so
that this order is reproduced for benchmark cells, hence a benchmark cell round-trips with the
same canonical hash *and* the same parameter order (same weights for the same seed).

BERT (FlexiBERT-style space of Serianni & Kalita): ``hidden_size``, ``num_layers`` and, for each
of the ``max(NUM_LAYERS)`` layer slots, ``layer_{i}_operation`` (``"SA:SDP"``, ``"LT:DCT"``,
``"DSC:5"``, ...: type and parameter in one label, so no label depends on another),
``layer_{i}_heads``, ``layer_{i}_ff_dim``, ``layer_{i}_ff_layers``.  Layers beyond
``num_layers`` are unused genes.  Every sample is valid; nothing is repaired.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from ..errors import InvalidArchitectureError, UnknownNameError

# Cells are imported lazily: the HPO tuner process needs only the labels, and importing the RNN
# space pulls in torch (NNI gives a tuner 10 s to connect).

# --------------------------------------------------------------------------------------------
# RNN cells
# --------------------------------------------------------------------------------------------
ACTIVATIONS = ("activation_tanh", "activation_sigm", "activation_leaky_relu")  # == spaces.rnn.cell's
#: op label value -> (cell op, number of inputs)
RNN_OPS: Dict[str, tuple] = {
    "linear": ("linear", 2),
    "linear_3": ("linear", 3),
    "blend": ("blend", 3),
    "elementwise_prod": ("elementwise_prod", 2),
    "elementwise_sum": ("elementwise_sum", 2),
    **{a: (a, 1) for a in ACTIVATIONS},
}
RNN_OP_CHOICES = tuple(RNN_OPS)
MAX_HIDDEN_TUPLE = 3
MAX_FAN_IN = 3
RNN_MAX_NODES = 16  # the largest NAS-Bench-NLP cell has 16 nodes
_STATES = tuple(f"h_prev_{m}" for m in range(MAX_HIDDEN_TUPLE))
_UNUSED = "x"  # value given to genes a cell does not use (unused inputs, padding slots)


def _slot(i: int) -> str:
    return f"node_{i}"


class RNNCellCodec:
    """Encoding of NAS-Bench-NLP cells as ``4 * max_nodes + 4`` categorical labels."""

    space = "rnn"

    def __init__(self, max_nodes: int = RNN_MAX_NODES):
        if not isinstance(max_nodes, int) or not MAX_HIDDEN_TUPLE <= max_nodes <= 64:
            raise ValueError(f"max_nodes must be an int in {MAX_HIDDEN_TUPLE}..64, got {max_nodes!r}")
        self.max_nodes = max_nodes

    def choices(self) -> Dict[str, list]:
        """Ordered ``{label: [values]}``; the first value of each label is its default."""
        out: Dict[str, list] = {"hidden_tuple_size": [1, 2, 3]}
        for i in range(self.max_nodes):
            out[f"node_{i}_op"] = list(RNN_OP_CHOICES)
            sources = ["x", *_STATES] + [_slot(s) for s in range(i)]
            for j in range(MAX_FAN_IN):
                out[f"node_{i}_in_{j}"] = list(sources)
        for j in range(MAX_HIDDEN_TUPLE):
            out[f"h_new_{j}"] = [_slot(s) for s in range(self.max_nodes)]
        return out

    # -- sample -> cell -----------------------------------------------------------------
    def decode(self, sample: Mapping[str, Any]):
        """The valid cell a sample stands for (see the module docstring for the repair rules)."""
        from ..spaces.rnn.cell import Cell

        _check_sample(sample, self.choices())
        k = int(sample["hidden_tuple_size"])
        outputs: List[int] = []
        for j in range(k):
            s = _slot_index(sample[f"h_new_{j}"])
            while s in outputs:
                s = (s + 1) % self.max_nodes
            outputs.append(s)

        def inputs(i: int) -> List[str]:
            op, arity = RNN_OPS[sample[f"node_{i}_op"]]
            out = []
            for j in range(arity):
                s = sample[f"node_{i}_in_{j}"]
                if s == "x" and op != "linear":
                    s = "h_prev_0"
                elif s.startswith("h_prev_"):
                    s = f"h_prev_{min(int(s[len('h_prev_'):]), k - 1)}"
                out.append(s)
            return out

        live, stack = set(), list(outputs)
        while stack:
            i = stack.pop()
            if i in live:
                continue
            live.add(i)
            stack.extend(_slot_index(s) for s in inputs(i) if s.startswith("node_"))
        names = {s: _slot(s) for s in live}
        names.update({s: f"h_new_{j}" for j, s in enumerate(outputs)})
        order = [s for s in sorted(live) if s not in outputs] + outputs
        recipe = {}
        for i in order:
            op, _ = RNN_OPS[sample[f"node_{i}_op"]]
            recipe[names[i]] = {
                "op": op,
                "input": [names[_slot_index(s)] if s.startswith("node_") else s for s in inputs(i)],
            }
        return Cell.parse(recipe)

    # -- cell -> sample -----------------------------------------------------------------
    def encode(self, cell: Any) -> Dict[str, Any]:
        """A sample that decodes to ``cell`` (same canonical hash, same node order for cells
        whose intermediate nodes are listed in dependency order, as NAS-Bench-NLP's are).

        Raises InvalidArchitectureError naming the node when the cell is outside the space's
        bounds (more than ``max_nodes`` nodes, an op arity the space does not encode, k > 3).
        """
        from ..spaces.rnn.cell import Cell

        cell = Cell.parse(cell)
        k = cell.hidden_tuple_size
        if k > MAX_HIDDEN_TUPLE:
            raise InvalidArchitectureError(
                f"hidden tuple size {k} is outside the NNI space (1..{MAX_HIDDEN_TUPLE})"
            )
        if len(cell.nodes) > self.max_nodes:
            raise InvalidArchitectureError(
                f"the cell has {len(cell.nodes)} nodes; this NNI space holds at most {self.max_nodes} "
                "(build the model space with a larger max_nodes)"
            )
        nodes = cell.node_map
        op_label = {}
        for name, node in cell.nodes:
            label = _op_label(node.op, len(node.inputs))
            if label is None:
                raise InvalidArchitectureError(
                    f"op {node.op!r} with {len(node.inputs)} inputs is outside the NNI space "
                    "(linear takes 2-3 inputs, blend 3, elementwise ops 2, activations 1)",
                    node=name,
                )
            if node.op != "linear" and "x" in node.inputs:
                raise InvalidArchitectureError(
                    f"input 'x' (the embedding, another width than the hidden state) can only "
                    f"feed linear nodes, not {node.op!r}",
                    node=name,
                )
            op_label[name] = label
        # dependency order that keeps intermediate nodes in recipe order; outputs are placed
        # just before their first user (or at the end), which is how decode() orders them back
        slots: Dict[str, int] = {}

        def place(name: str) -> None:
            if name in slots or name not in nodes:
                return
            for src in nodes[name].inputs:
                place(src)
            slots[name] = len(slots)

        outputs = [f"h_new_{j}" for j in range(k)]
        for name, _ in cell.nodes:
            if name not in outputs:
                place(name)
        for name in outputs:
            place(name)

        sample: Dict[str, Any] = {"hidden_tuple_size": k}
        for i in range(self.max_nodes):
            sample[f"node_{i}_op"] = RNN_OP_CHOICES[0]
            for j in range(MAX_FAN_IN):
                sample[f"node_{i}_in_{j}"] = _UNUSED
        for name, i in slots.items():
            sample[f"node_{i}_op"] = op_label[name]
            for j, src in enumerate(nodes[name].inputs):
                sample[f"node_{i}_in_{j}"] = _slot(slots[src]) if src in slots else src
        for j in range(MAX_HIDDEN_TUPLE):
            sample[f"h_new_{j}"] = _slot(slots[outputs[j]]) if j < k else _slot(0)
        return sample


def _op_label(op: str, n_inputs: int) -> Optional[str]:
    for label, (cell_op, arity) in RNN_OPS.items():
        if cell_op == op and arity == n_inputs:
            return label
    return None


def _slot_index(name: str) -> int:
    return int(name[len("node_"):])


# --------------------------------------------------------------------------------------------
# BERT
# --------------------------------------------------------------------------------------------
class BertCodec:
    """Encoding of FlexiBERT-style configurations as ``2 + 4 * max(num_layers)`` labels.

    The values of every label are the BERT space's own :meth:`~nni_zerocost.spaces.SearchSpace.choices`
    (read on first use: importing the space pulls in torch).  Decoding builds the dict format
    ``{"hidden_size", "nas_config": {"encoder_layers": [...]}}`` and hands it to the BERT space's
    ``parse``, so validation stays in one place.
    """

    space = "bert"

    def choices(self) -> Dict[str, list]:
        c = _bert_space().choices()
        ops = [f"{t}:{p}" for t, ps in c["operation"].items() for p in ps]
        out: Dict[str, list] = {"hidden_size": list(c["hidden_size"]), "num_layers": list(c["num_layers"])}
        for i in range(self.max_layers):
            out[f"layer_{i}_operation"] = list(ops)
            out[f"layer_{i}_heads"] = list(c["num_operation_heads"])
            out[f"layer_{i}_ff_dim"] = list(c["feed_forward_dimension"])
            out[f"layer_{i}_ff_layers"] = list(c["num_feed_forward"])
        return out

    @property
    def max_layers(self) -> int:
        return max(_bert_space().choices()["num_layers"])

    def decode_dict(self, sample: Mapping[str, Any]) -> Dict[str, Any]:
        """The BERT space's dict format for a sample (needs no BERT space installed)."""
        _check_sample(sample, self.choices())
        layers = []
        for i in range(int(sample["num_layers"])):
            op_type, _, param = str(sample[f"layer_{i}_operation"]).partition(":")
            layers.append({
                "operation_type": op_type,
                "operation_parameter": int(param) if param.isdigit() else param,
                "num_operation_heads": sample[f"layer_{i}_heads"],
                "feed_forward_dimension": sample[f"layer_{i}_ff_dim"],
                "num_feed_forward": sample[f"layer_{i}_ff_layers"],
            })
        return {"hidden_size": sample["hidden_size"], "nas_config": {"encoder_layers": layers}}

    def decode(self, sample: Mapping[str, Any]):
        return _bert_space().parse(self.decode_dict(sample))

    def encode(self, config: Any) -> Dict[str, Any]:
        """Sample of a BertConfig (or its dict form); InvalidArchitectureError when a value is
        outside the NNI space."""
        d = dict(_bert_space().to_dict(_bert_space().parse(config)))
        layers = list(d["nas_config"]["encoder_layers"])
        choices = self.choices()
        sample: Dict[str, Any] = {"hidden_size": d["hidden_size"], "num_layers": len(layers)}
        for i in range(self.max_layers):
            layer = layers[i] if i < len(layers) else None
            unused = {key: values[0] for key, values in choices.items() if key.startswith(f"layer_{i}_")}
            sample[f"layer_{i}_operation"] = (
                f"{layer['operation_type']}:{layer['operation_parameter']}" if layer else unused[f"layer_{i}_operation"]
            )
            sample[f"layer_{i}_heads"] = layer["num_operation_heads"] if layer else unused[f"layer_{i}_heads"]
            sample[f"layer_{i}_ff_dim"] = layer["feed_forward_dimension"] if layer else unused[f"layer_{i}_ff_dim"]
            sample[f"layer_{i}_ff_layers"] = layer["num_feed_forward"] if layer else unused[f"layer_{i}_ff_layers"]
        for label, value in sample.items():
            if value not in choices[label]:
                where = label.partition("_")[2].partition("_")[0] if label.startswith("layer_") else None
                raise InvalidArchitectureError(
                    f"{label} = {value!r} is outside the NNI space (valid: {choices[label]})",
                    node=f"layer {where}" if where else None,
                )
        return sample


def _bert_space():
    from ..spaces import get_space

    return get_space("bert")


# --------------------------------------------------------------------------------------------
# shared
# --------------------------------------------------------------------------------------------
CODECS = {"rnn": RNNCellCodec, "bert": BertCodec}


def get_codec(space: str, **options):
    """The codec of a space name (``rnn`` options: ``max_nodes``)."""
    try:
        cls = CODECS[space]
    except KeyError:
        raise UnknownNameError("NNI search space", space, sorted(CODECS)) from None
    return cls(**options)


def _check_sample(sample: Mapping[str, Any], choices: Mapping[str, list]) -> None:
    """Missing labels and values outside a label's choices are errors; extra keys (e.g. labels
    of a user's mutable evaluator sharing the sample) are ignored."""
    if not isinstance(sample, Mapping):
        raise InvalidArchitectureError(f"a sample must be a dict of labels, got {type(sample).__name__}")
    missing = [label for label in choices if label not in sample]
    if missing:
        raise InvalidArchitectureError(
            f"sample lacks {len(missing)} label(s): {', '.join(missing[:5])}"
            + (" ..." if len(missing) > 5 else "")
        )
    for label, values in choices.items():
        if sample[label] not in values:
            raise InvalidArchitectureError(f"{label} = {sample[label]!r} is not one of {values}")


def search_space_json(space: str, **options) -> Dict[str, Dict[str, Any]]:
    """NNI HPO search space ``{label: {"_type": "choice", "_value": [...]}}`` of a space."""
    return {label: {"_type": "choice", "_value": values} for label, values in get_codec(space, **options).choices().items()}


def write_search_space(space: str, path, **options) -> Path:
    """Write :func:`search_space_json` to ``path`` (for ``searchSpaceFile`` in an NNI config)."""
    p = Path(path)
    lines = [f" {json.dumps(label)}: {json.dumps(spec)}" for label, spec in search_space_json(space, **options).items()]
    p.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
    return p


if __name__ == "__main__":  # python -m nni_zerocost.nas.codec rnn|bert PATH
    import sys

    if len(sys.argv) != 3:
        sys.exit("usage: python -m nni_zerocost.nas.codec rnn|bert OUTPUT.json")
    print(write_search_space(sys.argv[1], sys.argv[2]))
