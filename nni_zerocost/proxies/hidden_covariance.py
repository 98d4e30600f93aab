"""Hidden covariance (Serianni & Kalita 2023), the paper's RNN proxy."""
from __future__ import annotations

from typing import Optional

from .base import Flagged, register_proxy
from .linalg import correlation_eigen_score


@register_proxy(
    "hidden_covariance",
    needs=("recurrent_states",),
    higher_is_better=True,
    cost="forward",
    mode="eval (no dropout), no autograd",
    nan_policy=(
        "constant hidden units have no correlation: they count as zero eigenvalues (a dead "
        "unit is perfectly redundant) and the result is flagged; non-finite hidden states "
        "(exploding cells) give NaN, flagged; with max_degree, a cell whose recurrence degree "
        "exceeds it gets NaN, flagged as a divergence risk (ranked last in searches)"
    ),
    size=(
        "a sum over hidden units, so it grows in magnitude with the layer's width (more units, more "
        "eigenvalue terms): across models of different widths it ranks by size. normalize=true "
        "divides by the number of units (the mean term), comparable across widths"
    ),
    scales_with_size=True,
    bounds={"layer": (1, None), "max_degree": (0, None)},
    limits={"layer": "recurrent_layers"},
    option_needs={"max_degree": ("cell_graph",)},
)
def hidden_covariance(ctx, layer: int = 1, max_degree: Optional[int] = None, normalize: Optional[bool] = None) -> float:
    """Eigen-spectrum score of the correlation matrix of the hidden units of ``layer``.

    Input: the recurrent state ``h_prev_0`` entering every step of the layer over one batch
    (paper protocol: PTB test split, 50 columns, first 70 steps), pooled over batch and time.
    Score ``-sum(log(l + k) + 1 / (l + k))`` over the eigenvalues ``l``, k = 1e-5 (NASWOT's
    Jacobian-covariance score); well-decorrelated units score higher.

    ``normalize=true`` (not in the paper; off by default) divides by the number of hidden units, so that models
    of different widths compare per unit instead of by width.

    ``max_degree`` (not in the paper; default off; NAS-Bench-NLP cells only): hidden covariance sees the untrained cell
    only and cannot tell that a cell will blow up once training grows its weights.  A cell
    whose state multiplies itself without a squashing activation
    (:attr:`~nni_zerocost.spaces.rnn.Cell.recurrence_degree` >= 2) diverged in every PTB run
    for 72% of such NAS-Bench-NLP cells; ``max_degree=1`` gives those cells no score (flagged),
    so a search ranks them last.
    """
    if max_degree is not None:
        degree = ctx.recurrence_degree()
        if degree > int(max_degree):
            raise Flagged(f"divergence risk: recurrence degree {degree} > max_degree {int(max_degree)}")
    h = ctx.incoming_states(layer)
    x = h.reshape(-1, h.shape[-1]).cpu().numpy()
    if not normalize:
        return correlation_eigen_score(x)
    try:
        return correlation_eigen_score(x) / x.shape[1]
    except Flagged as f:
        raise Flagged(f.reason, f.value / x.shape[1]) from None
