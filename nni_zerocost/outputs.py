"""The typed result of each capability's pass, defined once for every context that offers it.

A proxy reads the same fields whatever produced the model -- a registered space's own model or
your own one (the way ``transformers``' ``modeling_outputs`` types what every model returns).
The constants that shape these passes live here too, so every context reads the same number of
rows and tokens.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Iterator, List, Mapping, Optional, Tuple

import torch

#: sequences whose tokens get feed-forward activation codes (NASWOT on transformers)
CODE_ROWS = 8
#: real tokens the layer spectra read (the first rows of the batch that hold them)
SPECTRA_TOKENS = 1024
#: share of the real tokens of each row a masked-LM pass corrupts (at least one per row)
MASK_FRACTION = 0.15


@dataclasses.dataclass(frozen=True)
class WeightGradients:
    """One forward + backward of the model's own LM loss (capability ``weight_gradients``).

    ``loss``: its value; ``weight_grads``: ``{name: dL/dW}`` for every weight the ``weights``
    capability lists, each shaped as that weight's (out, in) matrix; ``input_grad`` (B, T, E):
    w.r.t. the summed input embeddings, zeros at padding; ``head_gate_grads``: layer ->
    (heads,) dL/d(gate) of a gate on each attention head's output, where the pass computed them."""

    loss: float
    weight_grads: Dict[str, torch.Tensor]
    input_grad: torch.Tensor
    head_gate_grads: Optional[Dict[int, torch.Tensor]] = None


@dataclasses.dataclass(frozen=True)
class RecurrentGradients:
    """One forward + backward of one loss of a recurrent LM (capability ``recurrent_gradients``).
    All tensors are detached.

    ``loss``: its name (``lm``, ``sum``, ``square``); ``noise``: the input-noise amplitude;
    ``value``: the loss value; ``input_grad`` (T, B, E): w.r.t. the first recurrent layer's
    input; ``states[l]`` / ``state_grads[l]``: the state entering steps 1..T-1 of layer ``l``
    (0-based) and the total derivative of the loss w.r.t. it, (T-1, B, H); ``param_grads``: by
    ``named_parameters()`` name, zeros for parameters the loss does not reach."""

    loss: str
    noise: float
    value: float
    input_grad: torch.Tensor
    states: Tuple[torch.Tensor, ...]
    state_grads: Tuple[torch.Tensor, ...]
    param_grads: Dict[str, torch.Tensor]


@dataclasses.dataclass(frozen=True)
class FeedForwardCodes:
    """Binary activation patterns of the feed-forward units (capability ``ffn_codes``).

    ``codes``: per feed-forward intermediate ``(layer, j)`` a (tokens, units) bool tensor
    (pre-activation > 0) over the real tokens of the first ``rows`` sequences; ``row_of_token``:
    the sequence of each of those tokens.  Unpacks as ``codes, row_of_token, rows``."""

    codes: Mapping[Tuple[int, int], torch.Tensor]
    row_of_token: torch.Tensor
    rows: int

    def __iter__(self) -> Iterator:
        return iter((self.codes, self.row_of_token, self.rows))


@dataclasses.dataclass(frozen=True)
class LayerSpectra:
    """Descending float64 eigenvalues of the token covariance after every sub-layer of one
    forward (capability ``layer_spectra``), as ``(layer, j, eigenvalues)``: ``mix`` the token
    mixer's output, ``ffn`` every feed-forward intermediate after its activation, ``out`` every
    layer's output.  ``spectra["mix"]`` reads a field by name."""

    mix: List[Tuple[int, int, torch.Tensor]]
    ffn: List[Tuple[int, int, torch.Tensor]]
    out: List[Tuple[int, int, torch.Tensor]]

    def __getitem__(self, kind: str) -> List[Tuple[int, int, torch.Tensor]]:
        if kind not in ("mix", "ffn", "out"):
            raise KeyError(kind)
        return getattr(self, kind)

    def keys(self):
        return ("mix", "ffn", "out")

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def items(self):
        return [(k, self[k]) for k in self.keys()]


def rows_holding(lengths: torch.Tensor, tokens: int) -> int:
    """How many leading rows hold ``tokens`` real tokens (``lengths``: real tokens per row; at
    least one row, at most all of them)."""
    cum = torch.cumsum(lengths, 0)
    rows = int(torch.searchsorted(cum, torch.tensor(int(tokens), dtype=cum.dtype, device=cum.device)).item()) + 1
    return max(1, min(rows, lengths.numel()))


def masked_positions(eligible: torch.Tensor, seed: int,
                     fraction: float = MASK_FRACTION) -> Tuple[torch.Tensor, torch.Generator]:
    """The flat positions a masked-LM pass corrupts: ``fraction`` of each row's eligible tokens
    (rounded, at least one), drawn with ``seed`` on the CPU (the same on every device), sorted;
    and the generator, to draw the replacements from next."""
    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.rand(eligible.shape, generator=gen).masked_fill(~eligible, 2.0)
    order = noise.argsort(dim=1)
    counts = torch.minimum((eligible.sum(1).float() * fraction).round().clamp(min=1).long(), eligible.sum(1))
    take = torch.arange(eligible.shape[1])[None, :] < counts[:, None]
    rows = torch.arange(eligible.shape[0])[:, None].expand_as(order)
    return (rows * eligible.shape[1] + order)[take].sort().values, gen


__all__ = ["CODE_ROWS", "SPECTRA_TOKENS", "MASK_FRACTION", "WeightGradients", "RecurrentGradients",
           "FeedForwardCodes", "LayerSpectra", "rows_holding", "masked_positions"]
