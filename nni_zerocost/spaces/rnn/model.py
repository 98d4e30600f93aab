"""The NAS-Bench-NLP AWD-RNN language model, with a fast compiled execution engine.

Architecture (official PTB setting): embedding 400, three stacked layers of the cell with
hidden sizes 600/600/400 (the last equals the embedding size because decoder and embedding are
tied), tied decoder with zero bias.  Initialisation as in the official code: every recurrent
weight and bias U(-1/sqrt(H), 1/sqrt(H)), embedding U(-0.1, 0.1).

Speed: a cell is compiled once into a flat list of steps.  All ``x`` inputs of all linear nodes
over all time steps are projected in one matrix product; the ``h_prev`` inputs of each step in
one product per state; only intermediate-node inputs need a product of their own.  Layers are
materialised lazily, so a proxy that reads layer 1 never builds layers 2-3.

Initialisation modes:

* ``"official"`` (default): the official distributions, each layer and the embedding drawn
  from its own generator stream derived from the seed, so a layer's weights do not depend on
  which other layers were built.  The scoring context builds the cell's canonical form
  (:meth:`Cell.canonical`), so isomorphic cells get bit-identical models.
* ``"compat"``: consumes one ``torch`` random stream in exactly the order of the official
  ``AWDRNNModel`` constructor, so with the same seed it yields the same weights as the code the
  paper ran (their per-run scores are reproduced).  It costs more (it draws every discarded
  tensor of the original constructor), and it builds the exact recipe, not the canonical cell.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .cell import Cell

VOCAB = 10_000
EMSIZE = 400
NHID = 600
NLAYERS = 3
INIT_MODES = ("official", "compat")


def layer_sizes(emsize: int = EMSIZE, nhid: int = NHID, nlayers: int = NLAYERS, tied: bool = True):
    """(input_size, hidden_size) of every layer of the AWD-RNN stack."""
    out = []
    for i in range(nlayers):
        inp = emsize if i == 0 else nhid
        hid = nhid if i != nlayers - 1 else (emsize if tied else nhid)
        out.append((inp, hid))
    return out


_ACT = {
    "activation_tanh": torch.tanh,
    "activation_sigm": torch.sigmoid,
    "activation_leaky_relu": F.leaky_relu,
}


@dataclass(frozen=True)
class _Step:
    name: str
    op: str
    inputs: Tuple[str, ...]


class CellLayer(nn.Module):
    """One recurrent layer running a :class:`Cell`.

    Parameters are kept per linear node as in the official ``MultiLinear`` (one weight per
    input, one bias), named ``<node>.w<i>`` / ``<node>.b`` in ``self.weights`` / ``self.biases``.
    """

    def __init__(self, cell: Cell, input_size: int, hidden_size: int):
        super().__init__()
        self.cell = cell
        self.input_size = input_size
        self.hidden_size = hidden_size
        nodes = cell.node_map
        self.steps: List[_Step] = [_Step(n, nodes[n].op, nodes[n].inputs) for n in cell.order]
        self.linear_nodes = [n for n, v in cell.nodes if v.op == "linear"]  # recipe order
        self.weights = nn.ParameterDict()
        self.biases = nn.ParameterDict()
        for n in self.linear_nodes:
            for i, src in enumerate(nodes[n].inputs):
                size = input_size if src == "x" else hidden_size
                self.weights[_wkey(n, i)] = nn.Parameter(torch.empty(hidden_size, size))
            self.biases[n] = nn.Parameter(torch.empty(hidden_size))
        # groups for batched projections: x inputs, and each h_prev_k
        self._by_source: Dict[str, List[Tuple[str, int]]] = {}
        for n in self.linear_nodes:
            for i, src in enumerate(nodes[n].inputs):
                if src == "x" or src.startswith("h_prev_"):
                    self._by_source.setdefault(src, []).append((n, i))

    # official parameter order (MultiLinear registers bias before its ParameterList)
    def official_parameter_order(self) -> List[Tuple[str, torch.Tensor]]:
        out = []
        for n in self.linear_nodes:
            out.append((f"{n}.b", self.biases[n]))
            for i in range(len(self.cell.node_map[n].inputs)):
                out.append((f"{n}.w{i}", self.weights[_wkey(n, i)]))
        return out

    def init_official(self, gen: torch.Generator) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            for _, p in self.official_parameter_order():
                p.uniform_(-stdv, stdv, generator=gen)

    def init_compat(self, gen: torch.Generator) -> None:
        """Replay the official constructor: MultiLinear init (discarded), then the reset."""
        nodes = self.cell.node_map
        with torch.no_grad():
            for n in self.linear_nodes:
                for i in range(len(nodes[n].inputs)):
                    torch.empty_like(self.weights[_wkey(n, i)]).uniform_(generator=gen)
                torch.empty_like(self.biases[n]).uniform_(generator=gen)
        self.init_official(gen)

    def _grouped(self, src: str) -> Optional[torch.Tensor]:
        """Weights of every (node, input) fed by ``src``, as one (in, k*H) matrix."""
        pairs = self._by_source.get(src)
        if not pairs:
            return None
        return torch.cat([self.weights[_wkey(n, i)] for n, i in pairs], 0).t()

    def forward(
        self,
        xs: torch.Tensor,
        state: Optional[Sequence[torch.Tensor]] = None,
        record_inputs: bool = False,
        observers: Sequence = (),
        state_observers: Sequence = (),
    ):
        """Run the layer over ``xs`` (T, B, input_size).

        Returns ``(outputs (T, B, H), final_state, incoming_h0)`` where ``incoming_h0`` is the
        stacked state ``h_prev_0`` entering every step (T, B, H) when ``record_inputs``.
        ``observers`` are callables ``obs(node_name, op, tensor)`` called on every activation
        node output (used by activation-based proxies; nothing is left registered).
        Works with and without autograd; under ``no_grad`` the grouped weights are made
        contiguous once so every per-step product runs on a dense (in, k*H) matrix.
        ``state_observers`` are callables ``obs(t, state)`` called with the state tuple entering
        step ``t``: the tensors themselves, so gradient-based proxies can differentiate with
        respect to them (``torch.autograd.grad(loss, states)``).
        """
        T, B, _ = xs.shape
        H = self.hidden_size
        k = self.cell.hidden_tuple_size
        grad = torch.is_grad_enabled()
        nodes = self.cell.node_map
        # x projections of every (node, input) pair for all steps at once, biases folded in
        base: Dict[str, torch.Tensor] = {}
        wx = self._grouped("x")
        xparts: Dict[Tuple[str, int], torch.Tensor] = {}
        if wx is not None:
            proj = (xs.reshape(T * B, -1) @ wx).reshape(T, B, -1)
            for j, key in enumerate(self._by_source["x"]):
                xparts[key] = proj[..., j * H:(j + 1) * H]
        for n in self.linear_nodes:
            acc = None
            for i, src in enumerate(nodes[n].inputs):
                if src == "x":
                    acc = xparts[(n, i)] if acc is None else acc + xparts[(n, i)]
            base[n] = self.biases[n] if acc is None else acc + self.biases[n]
        wh = []
        for s in range(k):
            w = self._grouped(f"h_prev_{s}")
            if w is not None:
                wh.append((s, w if grad else w.contiguous(), self._by_source[f"h_prev_{s}"]))
        other = {}
        for st in self.steps:
            if st.op == "linear":
                for i, src in enumerate(st.inputs):
                    if src != "x" and not src.startswith("h_prev_"):
                        w = self.weights[_wkey(st.name, i)].t()
                        other[(st.name, i)] = w if grad else w.contiguous()
        if state is None:
            state = [xs.new_zeros(B, H) for _ in range(k)]
            zero_state = True
        else:
            zero_state = False
        state = list(state)
        outputs = []
        incoming = []
        for t in range(T):
            vals: Dict[str, torch.Tensor] = {f"h_prev_{s}": state[s] for s in range(k)}
            if record_inputs:
                incoming.append(state[0])
            for obs in state_observers:
                obs(t, state)
            hparts: Dict[Tuple[str, int], torch.Tensor] = {}
            if not (zero_state and t == 0 and not grad):  # W @ 0 == 0: skip the first step's products
                for s, w, keys in wh:
                    proj = state[s] @ w
                    for j, key in enumerate(keys):
                        hparts[key] = proj[:, j * H:(j + 1) * H]
            for st in self.steps:
                if st.op == "linear":
                    b = base[st.name]
                    out = b[t] if b.dim() == 3 else b.expand(B, H)
                    for i, src in enumerate(st.inputs):
                        if src == "x":
                            continue
                        part = hparts.get((st.name, i))
                        if part is not None:
                            out = out + part
                        elif not src.startswith("h_prev_"):
                            out = torch.addmm(out, vals[src], other[(st.name, i)])
                elif st.op == "blend":
                    z, a, b = (vals[s] for s in st.inputs)
                    out = b + z * (a - b)
                elif st.op == "elementwise_prod":
                    out = vals[st.inputs[0]]
                    for s in st.inputs[1:]:
                        out = out * vals[s]
                elif st.op == "elementwise_sum":
                    out = vals[st.inputs[0]]
                    for s in st.inputs[1:]:
                        out = out + vals[s]
                else:
                    out = _ACT[st.op](vals[st.inputs[0]])
                    for obs in observers:
                        obs(st.name, st.op, out)
                vals[st.name] = out
            state = [vals[f"h_new_{s}"] for s in range(k)]
            outputs.append(state[0])
        inc = torch.stack(incoming) if record_inputs else None
        return torch.stack(outputs), state, inc


def _wkey(node: str, i: int) -> str:
    # ParameterDict keys may not contain '.'
    return f"{node}__w{i}".replace(".", "_")


class RNNLanguageModel(nn.Module):
    """AWD-RNN language model around a NAS-Bench-NLP cell (eval-mode: no dropout).

    ``forward(tokens)`` returns logits (T, B, vocab).  The training-time dropouts of the
    official model are not applied: zero-cost proxies are computed in eval mode, as in the
    paper.
    """

    def __init__(
        self,
        cell: Cell,
        vocab_size: int = VOCAB,
        emsize: int = EMSIZE,
        nhid: int = NHID,
        nlayers: int = NLAYERS,
        *,
        seed: int = 0,
        init: str = "official",
        depth: Optional[int] = None,
    ):
        """``depth`` materialises only the first ``depth`` layers (proxies that read layer 1
        need not build layers 2-3); with ``init="official"`` the weights of a built layer do
        not depend on ``depth``."""
        super().__init__()
        if init not in INIT_MODES:
            raise ValueError(f"init must be one of {INIT_MODES}, got {init!r}")
        self.cell = cell
        self.vocab_size, self.emsize, self.nhid, self.nlayers = vocab_size, emsize, nhid, nlayers
        # _weight skips nn.Embedding's own N(0,1) draw: reset_parameters overwrites it anyway
        # (compat mode replays that draw explicitly to keep the official random stream)
        self.encoder = nn.Embedding(vocab_size, emsize, _weight=torch.empty(vocab_size, emsize))
        self.depth = nlayers if depth is None else int(depth)
        if not 1 <= self.depth <= nlayers:
            raise ValueError(f"depth must be in 1..{nlayers}, got {depth}")
        sizes = layer_sizes(emsize, nhid, nlayers)
        self.layers = nn.ModuleList(CellLayer(cell, i, h) for i, h in sizes[: self.depth])
        self._unbuilt = [(i, h) for i, h in sizes[self.depth:]]
        self.seed, self.init = int(seed), init
        self.decoder_bias = nn.Parameter(torch.zeros(vocab_size))
        self.reset_parameters(seed, init)

    def reset_parameters(self, seed: int = 0, init: str = "official") -> None:
        with torch.no_grad():
            if init == "compat":
                g = torch.Generator().manual_seed(int(seed))
                torch.empty_like(self.encoder.weight).normal_(generator=g)  # nn.Embedding init
                for layer in self.layers:
                    layer.init_compat(g)
                for i, h in self._unbuilt:  # same draws, nothing kept
                    CellLayer(self.cell, i, h).init_compat(g)
                # nn.Linear(nhid, vocab) decoder init, then init_weights() draws the embedding
                # twice (encoder, then the tied decoder weight): the second draw is kept.
                torch.empty(self.vocab_size, self.nhid).uniform_(generator=g)
                torch.empty(self.vocab_size).uniform_(generator=g)
                torch.empty_like(self.encoder.weight).uniform_(generator=g)
                self.encoder.weight.uniform_(-0.1, 0.1, generator=g)
            else:
                self.encoder.weight.copy_(_official_embedding(int(seed), self.vocab_size, self.emsize))
                for li, layer in enumerate(self.layers):
                    layer.init_official(_stream(seed, li + 1))
            self.decoder_bias.zero_()

    def grow(self, depth: int) -> None:
        """Build the missing layers up to ``depth`` (official init: each layer has its own
        stream, so a grown model equals one built at that depth from the start)."""
        if depth <= self.depth:
            return
        if self.init != "official":
            raise RuntimeError("only an 'official'-init model can grow; build compat models at full depth")
        if depth > self.nlayers:
            raise ValueError(f"depth must be in 1..{self.nlayers}, got {depth}")
        for li in range(self.depth, depth):
            i, h = self._unbuilt.pop(0)
            layer = CellLayer(self.cell, i, h)
            layer.init_official(_stream(self.seed, li + 1))  # drawn on the CPU, then moved
            self.layers.append(layer.train(self.training).to(self.encoder.weight.device))
        self.depth = depth

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.embedding(tokens, self.encoder.weight)

    def run_layers(self, x: torch.Tensor, *, first: int = 1, upto: Optional[int] = None,
                   record_inputs: bool = False, observers=(), state_observers=()):
        """The one loop over the layers: run layers ``first..upto`` (1-based) on ``x``, the
        input of layer ``first``; returns per-layer ``(outputs, incoming_h0)``.

        ``observers``: ``obs(node, op, tensor)`` on every activation output;
        ``state_observers``: ``obs(layer_index, t, state)`` (0-based layer) with the state tuple
        entering step ``t``, the tensors themselves (gradient proxies differentiate w.r.t. them).
        """
        upto = self.depth if upto is None else upto
        if upto > self.depth:
            raise ValueError(f"layer {upto} requested but only {self.depth} layer(s) were built")
        out = x
        trace = []
        for i in range(first - 1, upto):
            per_layer = tuple(functools.partial(obs, i) for obs in state_observers)
            out, _, inc = self.layers[i](out, record_inputs=record_inputs, observers=observers,
                                         state_observers=per_layer)
            trace.append((out, inc))
        return trace

    def decode(self, out: torch.Tensor) -> torch.Tensor:
        return F.linear(out, self.encoder.weight, self.decoder_bias)

    def forward(self, tokens: torch.Tensor, emb: Optional[torch.Tensor] = None) -> torch.Tensor:
        if emb is None:
            emb = self.embed(tokens)
        if self.depth != self.nlayers:
            raise RuntimeError("forward() needs all layers; build the model with depth=None")
        return self.decode(self.run_layers(emb)[-1][0])


@functools.lru_cache(maxsize=2)
def _official_embedding(seed: int, vocab_size: int, emsize: int) -> torch.Tensor:
    """The official-init embedding depends on the seed only, not on the cell: drawn once per
    seed (4M uniforms cost ~4x a copy), copied into each model (never handed out shared)."""
    return torch.empty(vocab_size, emsize).uniform_(-0.1, 0.1, generator=_stream(seed, 0))


def _stream(seed: int, index: int) -> torch.Generator:
    """Independent generator for one component, derived from (seed, index)."""
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + index * 7_919 + 1) % (2**63))
