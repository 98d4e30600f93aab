"""Pruning-based proxies for transformers (Serianni & Kalita 2023, section on transformers).

They apply to every context offering their capabilities (the BERT space, the decoder space, a
user's Hugging Face or torch transformer).  The gradient proxies share ONE forward + backward
pass of the model's own LM loss (``ctx.gradients()``: replaced-token detection for the BERT
space by default, next-token cross-entropy for decoders), the forward-only ones read the
statistics recorded by that pass, or by a single no-grad forward when no gradient was asked for.
The model is always in eval form (no dropout).  Causal models: attention statistics run over the
keys a query may see (the causal mask's zeros are never a maximum), see each proxy.

``normalize=True`` gives the paper's "normalized" variants: the raw sum divided by the number of
heads (head proxies) or of weight matrices (synaptic proxies), so models of different size are
compared per unit.
"""
from __future__ import annotations

import math
from typing import Iterable, List, Optional, Tuple

import torch

from ..precision import full_precision
from .base import Flagged, register_proxy

GRAD_MODE = "eval (no dropout); one shared forward+backward pass, replaced-token-detection loss by default"
FORWARD_MODE = "eval (no dropout), no autograd (reuses the gradient pass's forward when it ran)"
GRAD_NAN = "non-finite loss or gradients give NaN, flagged"
AXES = ("keys", "paper")


def _weights_and_grads(ctx, role: str) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    weights = ctx.weights(role)
    if not weights:  # said before the gradient pass runs (a Mamba has no feed-forward weights)
        raise Flagged(f"the model has no {role.replace('_', ' ')} weights")
    passed = ctx.gradients()
    if not math.isfinite(passed.loss):
        raise Flagged(f"non-finite loss ({passed.loss})")
    pairs = [(w.detach(), passed.weight_grads[name]) for name, w in weights]
    if any(not bool(torch.isfinite(g).all()) for _, g in pairs):
        raise Flagged("non-finite gradients")
    return pairs


def _total(values: Iterable[float], count: int, normalize: bool) -> float:
    s = float(sum(values))
    return s / count if normalize else s


SUM_SIZE = "a sum over weights, so it grows with the number and size of the matrices (model size)"
MEAN_SIZE = "normalize=true divides by the number of heads or matrices"


@register_proxy(
    "head_importance", needs=("weights", "weight_gradients"), higher_is_better=True, cost="gradients",
    mode=GRAD_MODE, nan_policy=GRAD_NAN, size=SUM_SIZE + "; " + MEAN_SIZE, scales_with_size=True,
    choices={"form": ("weights", "gates")}, option_needs={"form=gates": ("head_gates",)},
)
def head_importance(ctx, normalize: bool = False, form: Optional[str] = None) -> float:
    """Head importance as the paper computed it: ``sum |W * dL/dW|`` over the weights of every
    token-mixing operation (query/key/value, WMA matrix, LT input projection, DSC projections
    and convolutions; the mixer's output dense excluded).

    ``form="gates"`` is Michel et al.'s (2019) own definition, where the model has head gates:
    ``sum_h |dL/d(gate_h)|`` with a gate of one on every head's output.
    ``normalize=True`` divides by the number of heads of the model.
    """
    if form == "gates":
        passed = ctx.gradients()
        if not math.isfinite(passed.loss):
            raise Flagged(f"non-finite loss ({passed.loss})")
        grads = list(ctx.head_gate_gradients().values())
        if any(not bool(torch.isfinite(g).all()) for g in grads):
            raise Flagged("non-finite gate gradients")
        return _total((float(g.abs().sum()) for g in grads), sum(ctx.head_counts()), normalize)
    pairs = _weights_and_grads(ctx, "attention_input")
    return _total(((w * g).abs().sum().item() for w, g in pairs), sum(ctx.head_counts()), normalize)


@register_proxy(
    "synaptic_diversity", needs=("weights", "weight_gradients"), higher_is_better=True, cost="gradients",
    mode=GRAD_MODE, nan_policy=GRAD_NAN, size=SUM_SIZE + "; " + MEAN_SIZE, scales_with_size=True,
)
def synaptic_diversity(ctx, normalize: bool = False) -> float:
    """Synaptic diversity (TF-TAS, Zhou et al. 2022): ``sum ||W||_* ||dL/dW||_*`` (nuclear norms)
    over every token-mixing matrix, the mixers' output dense included (convolution kernels read
    as out x (in*k) matrices).

    ``normalize=True`` divides by the number of matrices (the paper's normalized variant).
    """
    pairs = _weights_and_grads(ctx, "attention")

    def nuclear(m):
        return torch.linalg.svdvals(full_precision(m).reshape(m.shape[0], -1)).sum().item()

    return _total((nuclear(w) * nuclear(g) for w, g in pairs), len(pairs), normalize)


@register_proxy(
    "synaptic_saliency", needs=("weights", "weight_gradients"), higher_is_better=True, cost="gradients",
    mode=GRAD_MODE, nan_policy=GRAD_NAN, size=SUM_SIZE + "; " + MEAN_SIZE, scales_with_size=True,
)
def synaptic_saliency(ctx, normalize: bool = False) -> float:
    """Synaptic saliency (SynFlow-style, TF-TAS's MLP term): ``sum |W * dL/dW|`` over every
    feed-forward weight (the GELU stack and its down projection).

    ``normalize=True`` divides by the number of matrices (the paper's normalized variant).
    """
    pairs = _weights_and_grads(ctx, "feed_forward")
    return _total(((w * g).abs().sum().item() for w, g in pairs), len(pairs), normalize)


@register_proxy(
    "head_confidence", needs=("attention_confidence",), higher_is_better=True, cost="forward", mode=FORWARD_MODE,
    nan_policy="an architecture without attention heads (only LT layers) has no confidence: NaN, "
               "flagged (axis='keys'); axis='paper' is never NaN",
    size="a sum over heads (grows with the number of heads); normalize=true gives the mean head",
    scales_with_size=True,
    choices={"axis": AXES}, option_needs={"axis=paper": ("bert_paper_forms",)},
)
def head_confidence(ctx, axis: str = "keys", normalize: bool = False) -> float:
    """Head confidence (Voita et al. 2019): per attention head, the mean over real query tokens of
    its largest attention weight (max over keys); summed over heads (``normalize=True``: mean).

    Heads: every softmax attention head (BERT space: SA heads and the self-attention heads of DSC
    layers; LT layers have none).  Causal models: a query's maximum runs over the keys it may
    see, and queries that see a single key (the first position: weight 1 by construction) are
    left out of the mean.
    ``axis="paper"`` reproduces the paper's code instead, which did not look at attention weights
    at all: for each query/key/value (LT: input) projection output it took the max over sequence
    positions and averaged it; summed over projections (``normalize=True``: mean).
    """
    if axis == "paper":
        vals = [v for _, _, v in ctx.forward_stats().projection_paper]
        return _total(vals, len(vals), normalize)
    heads = [h for t in ctx.attention_confidence().values() for h in t.tolist()]
    if not heads:
        raise Flagged("no attention heads (every layer is LT)")
    return _total(heads, len(heads), normalize)


@register_proxy(
    "head_softmax_confidence", needs=("attention_confidence",), higher_is_better=True, cost="forward",
    mode=FORWARD_MODE, size="a sum over heads (grows with the number of heads); normalize=true gives the mean",
    scales_with_size=True, option_needs={"axis=paper": ("bert_paper_forms",)},
    nan_policy="an architecture without any softmax mixing (only LT layers) gives NaN, flagged "
               "(axis='keys'); axis='paper' is never NaN",
    choices={"axis": AXES},
)
def head_softmax_confidence(ctx, axis: str = "keys", normalize: bool = False) -> float:
    """Softmax confidence: Voita's confidence over every softmax distribution a token mixer uses,
    i.e. the attention heads of SA/DSC layers *and* the DSC dynamic-convolution kernels (softmax
    over the span): per head, mean over tokens of the largest weight; summed over heads
    (``normalize=True``: mean).

    ``axis="paper"`` reproduces the paper's code: for each attention softmax output (B, heads, T,
    T) the max over the *heads* axis averaged over (query, key) pairs, and for LT layers the same
    on a softmax over the transformed features (which their model computed and discarded); summed
    over layers (``normalize=True``: mean).
    """
    if axis == "paper":
        stats = ctx.forward_stats()
        vals = list(stats.attention_paper.values()) + list(stats.transform_paper.values())
        return _total(vals, len(vals), normalize)
    heads = [h for t in ctx.softmax_confidence().values() for h in t.tolist()]
    if not heads:
        raise Flagged("no softmax mixing (every layer is LT)")
    return _total(heads, len(heads), normalize)


@register_proxy(
    "nonembedding_params", needs=("parameters",), higher_is_better=True, cost="weights",
    mode="no forward pass", nan_policy="never NaN", size="is the model's size without embeddings (LTS's proxy)",
    scales_with_size=True,
)
def nonembedding_params(ctx) -> float:
    """Parameters outside the embedding tables (Kaplan et al. 2020): what grows with depth and
    width (BERT space: the 128 -> hidden projection and the encoder layers; decoders: the
    layers, the adaptive embeddings' tables and projections left out)."""
    return float(ctx.nonembedding_param_count())
