"""Gradient statistics across batches: ZiCo (Li et al., ICLR 2023).

Mechanism (stated before measuring it on any benchmark): a network whose weight gradients point
the same way on different batches (a large mean magnitude against their standard deviation)
descends faster and generalises better; summing the per-layer log signal-to-noise over layers
rewards every layer that trains consistently, so deeper networks of equal quality score higher.
It needs no label beyond the LM's own next tokens and fits nothing to benchmark results.
"""
from __future__ import annotations

import math

import torch

from .base import Flagged, register_proxy


@register_proxy(
    "zico", needs=("weights", "split_gradients"), higher_is_better=True, cost="gradients",
    mode="eval (no dropout); one forward + backward of the LM loss per part of the batch",
    nan_policy="a weight matrix whose gradients have no spread across the parts is left out (as ZiCo's "
               "code does); non-finite gradients, or no matrix left, give NaN, flagged",
    size="a sum over weight matrices of a log: grows with depth, slowly with width",
    scales_with_size=True, bounds={"splits": (2, None)},
)
def zico(ctx, splits: int = 2) -> float:
    """ZiCo: ``sum over weight matrices W of log(sum_w mean_k|g_k(w)| / std_k(g_k(w)))``, the
    gradients ``g_k`` of the LM loss on ``splits`` separate parts of the batch (attention and
    feed-forward weights).  Higher: gradients more consistent across batches."""
    grads = ctx.split_gradients(int(splits))
    total, used = 0.0, 0
    for name, _ in ctx.weights("attention") + ctx.weights("feed_forward"):
        g = torch.stack([part[name].double() for part in grads])
        if not bool(torch.isfinite(g).all()):
            raise Flagged(f"non-finite gradients of {name}")
        std = g.std(dim=0)
        keep = std > 0
        if not bool(keep.any()):
            continue
        ratio = float((g.abs().mean(dim=0)[keep] / std[keep]).sum())
        if ratio > 0:
            total += math.log(ratio)
            used += 1
    if not used:
        raise Flagged("no weight matrix has gradients that vary across the batch's parts")
    return total
