"""NNI labels of NAS-Bench-NLP cells: architectures <-> flat samples of categorical labels.

NNI's samplers (Random, RegularizedEvolution, TPE, GridSearch, every HPO tuner) handle a flat
dict ``{label: value}`` of categorical choices best, so cells are encoded that way; the NNI
model space, the HPO search-space exporter and the HPO trial all go through this codec.

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
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from ...errors import InvalidArchitectureError
from ..base import check_sample as _check_sample
from .cell import ACTIVATIONS, Cell

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
