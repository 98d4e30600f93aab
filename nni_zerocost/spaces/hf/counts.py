"""Sizes of an hf architecture, counted on the meta device (shapes only: no memory, no weights).

The model is built by transformers itself from the config under ``torch.device("meta")``, so
every count is the real model's without any formula per model type:

* ``params``: every parameter, tied ones once (what the ``params`` proxy counts);
* ``nonembedding``: less every ``nn.Embedding`` table (tokens, learned positions, token types)
  and the output layer onto the vocabulary (``get_output_embeddings()``, weight and bias, tied or
  not): what the ``nonembedding_params`` proxy counts, Kaplan et al.'s N;
* ``active`` / ``active_nonembedding``: the parameters one token uses: a mixture of experts
  runs ``k`` of its ``E`` experts per token (``num_experts_per_tok`` of ``num_local_experts`` /
  ``num_experts`` / ``n_routed_experts``), so ``(E - k) / E`` of the routed experts' parameters
  are left out; shared experts and the router always run.  Equal to the totals for dense models;
* ``flops``: forward FLOPs per token, Kaplan et al. (2020): ``2 x active_nonembedding`` plus the
  attention term ``2 x n_ctx x d_attn`` per attention layer, with ``n_ctx`` the model's context
  (``max_position_embeddings``; a sliding-window layer's window when shorter) and ``d_attn`` the
  query width (heads x head dim).  Layers without softmax attention (Mamba, linear attention)
  add no such term.

Experts are found by shape: a routed expert's parameters lead with the ``E`` experts (fused
3-D tensors, or an ``nn.ModuleList`` of ``E`` modules named ``experts``).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Optional

import torch

from .config import HFArch, build_model, config_value

#: config fields naming the routed experts (E) and the experts each token uses (k)
EXPERTS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts", "num_routed_experts")
EXPERTS_PER_TOKEN = ("num_experts_per_tok", "num_experts_per_token", "moe_topk", "moe_k", "top_k")
#: layer types (``config.layer_types``) with softmax attention over the whole context / a window
FULL_ATTENTION = ("full_attention", "attention", "global_attention")
WINDOW_ATTENTION = ("sliding_attention", "chunked_attention", "local_attention")


@dataclasses.dataclass(frozen=True)
class Counts:
    params: int
    nonembedding: int
    active: int
    active_nonembedding: int
    flops: float


@functools.lru_cache(maxsize=512)
def counts(arch: HFArch) -> Counts:
    """The sizes of ``arch`` (module docstring); cached per architecture."""
    model = build_model(arch, meta=True)
    unique = dict(model.named_parameters())
    params = sum(p.numel() for p in unique.values())
    left_out = {}
    for m in model.modules():
        if isinstance(m, torch.nn.Embedding):
            left_out.update({id(p): p for p in m.parameters(recurse=False)})
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if isinstance(head, torch.nn.Module):
        left_out.update({id(p): p for p in head.parameters()})
    embedding = sum(p.numel() for p in left_out.values())
    inactive = _inactive_expert_params(model, arch)
    nonembedding = params - embedding
    active_nonembedding = nonembedding - inactive
    return Counts(params, nonembedding, params - inactive, active_nonembedding,
                  float(2 * active_nonembedding + attention_flops(arch)))


def _experts(arch: HFArch):
    """``(E, k)`` of a mixture of experts, else None."""
    E = config_value(arch, *EXPERTS)
    k = config_value(arch, *EXPERTS_PER_TOKEN)
    if isinstance(E, int) and isinstance(k, int) and 0 < k < E:
        return E, k
    return None


def _inactive_expert_params(model: torch.nn.Module, arch: HFArch) -> int:
    """The routed experts' parameters a token does not use: ``(E - k) / E`` of them."""
    experts = _experts(arch)
    if experts is None:
        return 0
    E, k = experts
    routed = {}
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.ModuleList) and name.rsplit(".", 1)[-1] == "experts" and len(m) == E:
            routed.update({id(p): p for p in m.parameters()})
        for pname, p in m.named_parameters(recurse=False):
            path = f"{name}.{pname}"
            if p.dim() == 3 and p.shape[0] == E and "shared" not in path:
                routed[id(p)] = p
            elif p.dim() == 2 and p.shape[0] == E and name.rsplit(".", 1)[-1] == "experts":  # fused biases
                routed[id(p)] = p
    total = sum(p.numel() for p in routed.values())
    return total * (E - k) // E


def attention_flops(arch: HFArch) -> float:
    """Kaplan's attention term per token: ``2 x n_ctx x d_attn`` per softmax-attention layer."""
    heads = config_value(arch, "num_attention_heads")
    layers = config_value(arch, "num_hidden_layers")
    ctx = config_value(arch, "max_position_embeddings")
    if not isinstance(heads, int) or not isinstance(layers, int) or not isinstance(ctx, int) or heads <= 0:
        return 0.0
    hidden = config_value(arch, "hidden_size")
    head_dim = config_value(arch, "head_dim", default=(hidden // heads if isinstance(hidden, int) else 0))
    d_attn = heads * int(head_dim)
    window: Optional[int] = config_value(arch, "sliding_window", "attention_chunk_size")
    types = config_value(arch, "layer_types")
    if not isinstance(types, (list, tuple)):
        types = ["full_attention"] * layers
    total = 0
    for kind in types:
        if kind in FULL_ATTENTION:
            total += ctx
        elif kind in WINDOW_ATTENTION:
            total += min(ctx, window) if isinstance(window, int) and window > 0 else ctx
    return float(2 * total * d_attn)
