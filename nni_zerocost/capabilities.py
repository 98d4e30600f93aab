"""What a scoring context can offer a proxy, as named, typed protocols.

A proxy declares the capabilities it *needs* (``register_proxy(..., needs=("recurrent_states",))``);
a scoring context declares the capabilities it *offers* (``offers = frozenset({...})``).  A proxy
applies to every context that offers everything it needs, whatever produced the model: a
registered search space, a user's ``nn.LSTM`` language model, a Hugging Face checkpoint-free
model built from a config.  Nothing here names a search space; spaces and proxies both import
this module and never each other.

Each capability is a :class:`typing.Protocol` documenting the methods a context provides for it;
:data:`CAPABILITIES` maps the name to the protocol (``nni-zerocost list capabilities`` prints
them).  A context that offers a capability must implement every method of its protocol: the
conformance kit (:mod:`nni_zerocost.testing`) checks that.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Mapping, Protocol, Sequence, Tuple, Type

import torch


@dataclasses.dataclass(frozen=True)
class Capability:
    """One capability: its name, the protocol documenting it, and a one-line summary."""

    name: str
    protocol: Type[Any]
    summary: str

    @property
    def methods(self) -> Tuple[str, ...]:
        """The names a context offering it must define (the protocol's public members)."""
        return tuple(n for n, v in vars(self.protocol).items() if not n.startswith("_") and callable(v))


CAPABILITIES: Dict[str, Capability] = {}


def capability(name: str) -> Callable[[type], type]:
    """Class decorator registering a protocol as the capability ``name`` (first docstring line
    = its summary)."""

    def deco(protocol: type) -> type:
        if name in CAPABILITIES:
            raise ValueError(f"capability {name!r} is already defined")
        summary = (protocol.__doc__ or "").strip().splitlines()[0] if protocol.__doc__ else name
        CAPABILITIES[name] = Capability(name, protocol, summary)
        protocol.capability_name = name
        return protocol

    return deco


def check_names(names: Iterable[str], what: str = "capability") -> FrozenSet[str]:
    """The names as a frozenset; ValueError naming any that is not a defined capability."""
    out = frozenset(names)
    unknown = sorted(out - set(CAPABILITIES))
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(map(repr, unknown))}; defined: {', '.join(sorted(CAPABILITIES))}")
    return out


def missing(needs: Iterable[str], offers: Iterable[str]) -> List[str]:
    """Needed capabilities not offered, in a stable order."""
    have = set(offers)
    return sorted(n for n in needs if n not in have)


# -- every model -------------------------------------------------------------------------------
@capability("parameters")
class Parameters(Protocol):
    """Parameter counts of the model (tied weights counted once), from the architecture where possible."""

    def param_count(self) -> int:
        """Every trainable parameter of the language model."""

    def nonembedding_param_count(self) -> int:
        """Parameters outside the token/position embedding tables and the output softmax tied to
        them (Kaplan et al. 2020): what grows with depth and width."""


@capability("active_parameters")
class ActiveParameters(Protocol):
    """Parameters one token uses, for a model routing tokens to some of its experts."""

    def active_param_count(self) -> int:
        """Every parameter less the experts a token is not routed to: ``(E - k) / E`` of each
        routed mixture's expert parameters (``k`` of ``E`` experts per token)."""


# -- recurrent models --------------------------------------------------------------------------
@capability("recurrent_states")
class RecurrentStates(Protocol):
    """The hidden state entering every time step of every recurrent layer."""

    def recurrent_layers(self) -> int:
        """Number of recurrent layers, in forward order (a 2-layer ``nn.LSTM`` counts 2)."""

    def incoming_states(self, layer: int) -> torch.Tensor:
        """``(T, B, H)``: the hidden state entering each of the T steps of ``layer`` (1-based;
        step 0's is the initial state), no autograd."""


@capability("recurrent_gradients")
class RecurrentGradients(Protocol):
    """One forward + backward of a recurrent LM: gradients w.r.t. its input, parameters and states."""

    def gradients(self, loss: str = "lm", noise: float = 0.0) -> Any:
        """A pass with ``input_grad`` (T, B, E) w.r.t. the first recurrent layer's input,
        ``states``/``state_grads`` per layer (T-1, B, H), ``param_grads`` {name: tensor} and the
        loss ``value``; ``loss``: ``lm`` (next-token cross-entropy), ``sum`` or ``square`` of the
        last recurrent layer's outputs; ``noise`` > 0 feeds a seeded noised copy of the input."""

    def recurrent_parameter_names(self) -> List[str]:
        """``named_parameters`` names of every weight and bias of the recurrent layers."""

    def parameter_values(self, names: Sequence[str]) -> Dict[str, torch.Tensor]:
        """``{name: weight}`` of the parameters ``names`` (the names ``gradients`` keys
        ``param_grads`` by), detached: what saliency-style proxies multiply the gradients by."""

    def hessian_gradient(self, loss: str, names: Sequence[str]) -> Dict[str, torch.Tensor]:
        """GraSP's Hessian-gradient product ``H g`` over the parameters ``names``."""


@capability("cell_graph")
class CellGraph(Protocol):
    """The recurrent cell as a NAS-Bench-NLP graph of ops (its recipe, degree and activation nodes)."""

    def activation_kernel(self) -> Tuple[Any, int]:
        """NASWOT kernel ``(K (B, B), n_codes)`` of the binary codes of every activation node of
        the cell, every step and layer."""

    def paper_parameter_names(self) -> List[str]:
        """The parameters the paper's synaptic saliency summed (its selection, off-by-one kept)."""

    def recurrence_degree(self) -> int:
        """The highest power of the state the cell multiplies without a squashing activation
        between (1: linear in the state; >= 2: it multiplies itself, a divergence risk)."""


@capability("cell_layers")
class CellLayers(Protocol):
    """The NAS-Bench-NLP model's layers as modules, for proxies that run its recurrence step by step."""

    def cell_layer(self, layer: int) -> Any:
        """Layer ``layer`` (1-based) of the context's model: called on inputs (T, B, E) with an
        optional state list; ``hidden_size`` and ``cell.hidden_tuple_size`` describe it."""

    def layer_input(self, noise: float = 0.0) -> torch.Tensor:
        """(T, B, E): the embedded batch layer 1 reads (no autograd)."""

    def incoming_states_for_seed(self, layer: int, seed: int) -> torch.Tensor:
        """(T, B, H): :meth:`RecurrentStates.incoming_states` of the model whose weights are drawn
        with ``seed`` instead of the context's."""


# -- transformers ------------------------------------------------------------------------------
@capability("weights")
class Weights(Protocol):
    """The weight matrices of the token mixers and feed-forward blocks, by role, and the heads."""

    def weights(self, role: str) -> List[Tuple[str, torch.Tensor]]:
        """``(name, weight)`` pairs of a role: ``attention_input`` (query/key/value and every
        other mixer's input weights), ``attention`` (those and the mixers' output projections)
        or ``feed_forward`` (up and down projections)."""

    def head_counts(self) -> List[int]:
        """Attention heads of each layer (0 for a layer without softmax attention)."""


@capability("weight_gradients")
class WeightGradients(Protocol):
    """One shared forward + backward of the model's own LM loss: weight and input-embedding gradients."""

    def gradients(self) -> Any:
        """A pass with ``loss`` (float), ``weight_grads`` {name: dL/dW} for every weight
        :meth:`Weights.weights` lists, and ``input_grad`` (B, T, E) w.r.t. the summed input
        embeddings (zeros at padding)."""


@capability("split_gradients")
class SplitGradients(Protocol):
    """Weight gradients of the LM loss on separate parts of the batch (gradient statistics across batches)."""

    def split_gradients(self, n_splits: int = 2) -> List[Dict[str, torch.Tensor]]:
        """One ``{name: dL_k/dW}`` per part ``k`` of the batch (its rows split into ``n_splits``
        contiguous parts), for every weight :meth:`Weights.weights` lists."""


@capability("attention_confidence")
class AttentionConfidence(Protocol):
    """Per head, how peaked its attention is: the mean over real queries of its largest weight."""

    def attention_confidence(self) -> Dict[int, torch.Tensor]:
        """layer -> (heads,) Voita confidence of every softmax attention head."""

    def softmax_confidence(self) -> Dict[int, torch.Tensor]:
        """The same over every softmax a token mixer uses (attention heads and, where a model has
        them, dynamic-convolution kernels)."""


@capability("head_gates")
class HeadGates(Protocol):
    """Gradients of the loss w.r.t. a gate on every attention head's output (Michel et al. 2019)."""

    def head_gate_gradients(self) -> Dict[int, torch.Tensor]:
        """layer -> (heads,) dL/d(gate) at gates = 1."""


@capability("ffn_codes")
class FeedForwardCodes(Protocol):
    """Binary activation patterns of the feed-forward units, per token (NASWOT on transformers)."""

    def ffn_codes(self) -> Tuple[Mapping[Tuple[int, int], torch.Tensor], torch.Tensor, int]:
        """``(codes, row_of_token, rows)``: per feed-forward intermediate ``(layer, j)`` a
        (tokens, units) bool tensor (pre-activation > 0) over the real tokens of the first
        ``rows`` sequences, and the sequence of each of those tokens."""


@capability("layer_spectra")
class LayerSpectra(Protocol):
    """Eigenvalues of the token covariance after every sub-layer of one forward pass."""

    def spectra(self) -> Mapping[str, List[Tuple[int, int, torch.Tensor]]]:
        """``{"mix": [(layer, 0, ev)], "ffn": [(layer, j, ev)], "out": [(layer, 0, ev)]}``:
        descending float64 eigenvalues of the token mixer's output, every feed-forward
        intermediate after its activation, and every layer's output."""


@capability("bert_paper_forms")
class BertPaperForms(Protocol):
    """The statistics Serianni & Kalita's BERT code computed instead of the published definitions."""

    def forward_stats(self) -> Any:
        """A recorder with ``projection_paper``, ``attention_paper`` and ``transform_paper``."""


__all__ = ["Capability", "CAPABILITIES", "capability", "check_names", "missing"] + [
    p.__name__ for p in (Parameters, RecurrentStates, RecurrentGradients, CellGraph, CellLayers, Weights, WeightGradients,
                         SplitGradients, ActiveParameters,
                         AttentionConfidence, HeadGates, FeedForwardCodes, LayerSpectra, BertPaperForms)
]
