"""NASWOT-family baselines for recurrent cells (Mellor et al. 2021), as the paper ran them.

* ``activation_distance``: log-determinant of the kernel of binary activation codes.
* ``jacobian_covariance`` / ``jacobian_cosine``: how differently the model responds to the
  sequences of the batch (Jacobian of the summed last-layer output w.r.t. the embedding
  output, one row per sequence), with the paper's input-noise variants as the ``noise`` option.

All passes come from the context's cache (the recurrent passes: :mod:`nni_zerocost.models.passes`): the four
noise levels cost one forward+backward each, shared by both Jacobian proxies and by
``hidden_synaptic_saliency`` / ``synaptic_saliency`` (same label-free loss).
"""
from __future__ import annotations

import math
from typing import Callable, List

import numpy as np

from .base import Flagged, register_proxy
from .linalg import correlation_eigen_score
from ..models.passes import NOISE_AMPLITUDES

NOISE_OPTIONS = ("none", "small", "large", "more")


@register_proxy(
    "activation_distance",
    needs=("cell_graph",),
    higher_is_better=True,
    cost="forward",
    mode="eval (no dropout), no autograd",
    size="log det of a B x B kernel whose entries count codes, so it grows with the number of activation "
         "nodes and hidden units (un-normalised, as in the paper)",
    scales_with_size=True,
    nan_policy=(
        "a cell without activation nodes has no codes, and a singular kernel (two sequences with "
        "the same codes everywhere) has log|K| = -inf: both NaN, flagged"
    ),
)
def activation_distance(ctx) -> float:
    """NASWOT score ``log|K|`` of the binary activation codes (Mellor et al. 2021).

    Input: every activation node's output (tanh, sigmoid, leaky ReLU) at every step of all three
    layers over the batch.  Code = output > 0, per sequence; ``K = Σ c cᵀ + (1 - c)(1 - c)ᵀ``
    (agreements between sequences, counted exactly), score ``slogdet(K)``.  Un-normalised, as
    in the paper: cells with more activation nodes get larger kernels.  Reproduces the
    published ``tfn_activation_distance`` to ~1e-7 relative (compat init, seed 0, PTB batch):
    one forward's codes, no hook contamination.
    """
    K, n_codes = ctx.activation_kernel()
    if n_codes == 0:
        raise Flagged("the cell has no activation node, so no binary codes")
    sign, logdet = np.linalg.slogdet(K)
    if sign <= 0 or not math.isfinite(logdet):
        raise Flagged("singular code kernel: some sequences have identical codes everywhere")
    return float(logdet)


def _per_sequence(ctx, noise: float) -> np.ndarray:
    """Jacobian rows (B, T*E), float64: d(sum of last-layer outputs)/d(layer-1 input)."""
    J = ctx.gradients("sum", noise).input_grad  # (T, B, E)
    return J.transpose(0, 1).reshape(J.shape[1], -1).double().cpu().numpy()


def covariance_score(rows: np.ndarray) -> float:
    """NASWOT v1: eigen score of the correlation matrix between the rows (sequences)."""
    try:
        return correlation_eigen_score(rows.T)
    except Flagged as f:
        raise Flagged(f"per-sequence Jacobians: {f.reason}", f.value) from None


def cosine_score(rows: np.ndarray) -> float:
    """``1 - mean_{i≠j} |cos(J_i, J_j)|^(1/20) / 2`` (the paper's Jacobian cosine)."""
    if not np.isfinite(rows).all():
        raise Flagged("non-finite Jacobian (the cell explodes)")
    norms = np.linalg.norm(rows, axis=1)
    if (norms == 0).any():
        raise Flagged(f"{int((norms == 0).sum())} sequence(s) have a zero Jacobian (no cosine)")
    unit = rows / norms[:, None]
    cos = np.clip(unit @ unit.T, -1.0, 1.0)
    off = ~np.eye(len(rows), dtype=bool)
    return float(1.0 - np.mean(np.abs(cos[off]) ** (1.0 / 20)) / 2.0)


def _noise_variant(ctx, score: Callable[[np.ndarray], float], noise: str, more_sign: float) -> float:
    """Combine clean and noised scores as the paper did; flags of the parts are carried."""
    if noise not in NOISE_OPTIONS:
        raise ValueError(f"unknown noise {noise!r}; valid: {', '.join(NOISE_OPTIONS)}")
    a = NOISE_AMPLITUDES
    amplitudes = {"none": [0.0], "small": [0.0, a["small"]], "large": [0.0, a["large"]],
                  "more": [0.0, a["small"], a["large"], a["huge"]]}[noise]
    values: List[float] = []
    reasons: List[str] = []
    for amp in amplitudes:
        try:
            values.append(score(_per_sequence(ctx, amp)))
        except Flagged as f:
            values.append(f.value)
            reasons.append(f"noise {amp:g}: {f.reason}" if amp else f.reason)
    if noise == "none":
        value = values[0]
    elif noise == "more":
        value = more_sign * math.prod(values)
    else:
        value = 1.0 - abs(values[0] - values[1])
    if reasons:
        raise Flagged("; ".join(reasons), value)
    return value


@register_proxy(
    "jacobian_covariance",
    needs=("recurrent_gradients",),
    higher_is_better=True,
    cost="gradients",
    size="a correlation spectrum between sequences (B x B), independent of width by construction",
    mode="eval (no dropout); one forward + backward of the label-free sum loss per noise level",
    nan_policy=(
        "a sequence whose Jacobian is constant counts as a zero eigenvalue (finite value, "
        "flagged); a non-finite Jacobian (exploding cell) gives NaN, flagged; a noise variant "
        "carries the flags of its parts"
    ),
    choices={"noise": NOISE_OPTIONS},
)
def jacobian_covariance(ctx, noise: str = "none") -> float:
    """NASWOT v1 Jacobian covariance of the per-sequence Jacobians.

    Input: ``J_b = d(Σ last-layer outputs)/d(embedding output of sequence b)``, flattened over
    steps and features; score ``-Σ log(l + k) + 1/(l + k)`` over the eigenvalues of the (B, B)
    correlation matrix, k = 1e-5, float64 symmetric solver.  Sequences that the model treats
    alike (correlated Jacobians) lower the score.  For ``more`` the product of the four
    (negative) scores is negated, so that for every option higher is better.

    ``noise``: the paper's variants, with the noised input ``emb + a * var_batch(emb) * N(0, 1)``
    (one seeded draw per context).  ``none``: the clean score s(0); ``small``:
    1 - |s(0) - s(0.1)|; ``large``: 1 - |s(0) - s(10)| (robustness to noise); ``more``: the
    product s(0)·s(0.1)·s(10)·s(100).  The published ``tfn_jacobian_covariance`` column is not
    this score (it is the time-step correlation of the embedding alone; see the README), while
    ``large`` and ``more`` reproduce the published columns up to their sign.
    """
    return _noise_variant(ctx, covariance_score, noise, more_sign=-1.0)


@register_proxy(
    "jacobian_cosine",
    needs=("recurrent_gradients",),
    higher_is_better=True,
    cost="gradients",
    size="mean cosine between sequences' Jacobians, in [0.5, 1] whatever the size",
    mode="eval (no dropout); one forward + backward of the label-free sum loss per noise level",
    nan_policy=(
        "a sequence with an all-zero Jacobian has no cosine, and a non-finite Jacobian "
        "(exploding cell) none either: NaN, flagged; a noise variant carries the flags of its parts"
    ),
    choices={"noise": NOISE_OPTIONS},
)
def jacobian_cosine(ctx, noise: str = "none") -> float:
    """Jacobian cosine similarity score of the per-sequence Jacobians (paper's variant).

    Input: the same Jacobians as ``jacobian_covariance``; score
    ``1 - mean_{i≠j} |cos(J_i, J_j)|^(1/20) / 2`` in float64: 1 for orthogonal Jacobians, 0.5
    for collinear ones.  Reproduces the published ``tfn_jacobian_cosine`` (and its ``large``
    and ``more`` variants) to float32 precision.

    ``noise``: as for ``jacobian_covariance`` (``none``, ``small``, ``large``, ``more``); the
    ``more`` product of the four cosine scores is returned as is.
    """
    return _noise_variant(ctx, cosine_score, noise, more_sign=1.0)
