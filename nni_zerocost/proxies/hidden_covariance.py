"""Hidden covariance (Serianni & Kalita 2023), the paper's RNN proxy."""
from __future__ import annotations

import numpy as np

from .base import Flagged, register_proxy
from .linalg import correlation_eigen_score


@register_proxy(
    "hidden_covariance",
    spaces=("rnn",),
    higher_is_better=True,
    needs="forward",
    mode="eval (no dropout), no autograd",
    nan_policy=(
        "constant hidden units have no correlation: they count as zero eigenvalues (a dead "
        "unit is perfectly redundant) and the result is flagged; non-finite hidden states "
        "(exploding cells) give NaN, flagged"
    ),
    layer=1,
)
def hidden_covariance(ctx, layer: int = 1) -> float:
    """Eigen-spectrum score of the correlation matrix of the hidden units of ``layer``.

    Input: the recurrent state ``h_prev_0`` entering every step of the layer over one batch
    (paper protocol: PTB test split, 50 columns, first 70 steps), pooled over batch and time.
    Score ``-sum(log(l + k) + 1 / (l + k))`` over the eigenvalues ``l``, k = 1e-5 (NASWOT's
    Jacobian-covariance score); well-decorrelated units score higher.
    """
    h = ctx.incoming_states(layer)
    x = h.reshape(-1, h.shape[-1]).numpy()
    return correlation_eigen_score(x)
