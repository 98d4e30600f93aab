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


@register_proxy(
    "active_params",
    needs=("active_parameters",),
    higher_is_better=True,
    cost="weights",
    mode="no forward pass",
    nan_policy="never NaN",
    size="is the size a token pays for in a mixture of experts: params less the experts it skips",
    scales_with_size=True,
)
def active_params(ctx) -> float:
    """Parameters one token uses in a routed mixture of experts: every parameter less
    ``(E - k) / E`` of each routed block's expert parameters (``k`` of ``E`` experts per token)."""
    return float(ctx.active_param_count())
