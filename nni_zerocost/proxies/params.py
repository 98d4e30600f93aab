"""Parameter count: the baseline every proxy must beat."""
from __future__ import annotations

from .base import register_proxy


@register_proxy(
    "params",
    needs=("parameters",),
    higher_is_better=True,
    cost="weights",
    mode="no forward pass",
    nan_policy="never NaN",
    size="is the model's size: the baseline every other proxy must beat",
    scales_with_size=True,
)
def params(ctx) -> float:
    """Number of trainable parameters of the full model (tied weights counted once)."""
    return float(ctx.param_count())
