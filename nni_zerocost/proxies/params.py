"""Parameter count: the baseline every proxy must beat."""
from __future__ import annotations

from .base import register_proxy


@register_proxy(
    "params",
    spaces=("rnn", "bert"),
    higher_is_better=True,
    needs="none",
    mode="no forward pass",
    nan_policy="never NaN",
)
def params(ctx) -> float:
    """Number of trainable parameters of the full model (tied weights counted once)."""
    return float(ctx.param_count())
