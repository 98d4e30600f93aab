"""NASWOT-family proxies for transformers: activation distance and Jacobian covariance.

The same proxy names have recurrent implementations in ``naswot.py``; the registry keeps one
implementation per kind of model (by the capabilities it needs) under one name.
"""
from __future__ import annotations

import math

import torch

from ..outputs import CODE_ROWS  # sequences whose tokens' codes the ffn_codes capability records
from .base import Flagged, register_proxy
from .linalg import correlation_eigen_score

FORMS_ACTIVATION = ("logdet", "paper")
FORMS_JACOBIAN = ("naswot", "paper")


@register_proxy(
    "activation_distance", needs=("ffn_codes",), higher_is_better=True, cost="forward",
    size="log det of token kernels whose entries count agreeing units, summed over feed-forward layers: "
         "grows with width and depth; normalize=true divides by the number of layers", scales_with_size=True,
    mode="eval (no dropout); no autograd (reuses the gradient pass's forward when it ran)",
    nan_policy="a singular token kernel (two tokens with identical activation patterns) gives NaN, "
               "flagged; never NaN with form='paper'",
    choices={"form": FORMS_ACTIVATION}, bounds={"rows": (1, CODE_ROWS)},
)
def bert_activation_distance(ctx, form: str = "logdet", rows: int = 8, normalize: bool = False) -> float:
    """NASWOT (Mellor et al. 2021) on the feed-forward GELU units.

    For each feed-forward layer, each real token of a row gets a binary code (pre-activation > 0);
    ``K[i, j]`` counts the units on which tokens i and j agree.  ``form="logdet"``: ``log det K``
    per row, averaged over the first ``rows`` rows (<= 8), summed over feed-forward layers --
    tokens the network keeps apart score higher.  ``form="paper"``: the paper's code, the sum of
    the entries of ``K`` for the first row (it grows with the layer width).
    ``normalize=True`` divides by the number of feed-forward layers.
    """
    all_codes, row_of, code_rows = ctx.ffn_codes()
    n_rows = 1 if form == "paper" else int(rows)
    if not 1 <= n_rows <= code_rows:
        raise ValueError(f"rows must be in 1..{code_rows}, got {rows}")
    total, singular = 0.0, 0
    for codes in all_codes.values():
        layer_value = 0.0
        used = 0
        for b in range(n_rows):
            x = codes[row_of == b].double()
            if x.shape[0] == 0:
                continue
            k = x @ x.T + (1 - x) @ (1 - x).T
            if form == "paper":
                layer_value += float(k.sum())
            else:
                sign, logdet = torch.linalg.slogdet(k)
                if sign <= 0 or not math.isfinite(float(logdet)):
                    singular += 1
                    continue
                layer_value += float(logdet)
            used += 1
        total += layer_value / max(used, 1) if form == "logdet" else layer_value
    if singular:
        raise Flagged(f"{singular} token-kernel matrices are singular (tokens with identical activation patterns)")
    return total / len(all_codes) if normalize else total


@register_proxy(
    "jacobian_covariance", needs=("weight_gradients",), higher_is_better=True, cost="gradients",
    size="a correlation spectrum between sequences (B x B), independent of width by construction",
    mode="eval (no dropout); one shared forward+backward pass, replaced-token-detection loss by default",
    nan_policy="sequences with an all-zero Jacobian count as zero eigenvalues, flagged with the "
               "finite fallback; a non-finite loss or Jacobian gives NaN, flagged",
    choices={"form": FORMS_JACOBIAN},
)
def bert_jacobian_covariance(ctx, form: str = "naswot") -> float:
    """Jacobian covariance (NASWOT v1, Mellor et al. 2020) with the pass's loss gradient.

    ``form="naswot"``: one Jacobian row per sequence, the gradient with respect to its summed
    input embeddings (positions x 128, zeros at padding); score of the correlation matrix between
    sequences, ``-sum(log(l + k) + 1/(l + k))``, k = 1e-5 (higher: inputs treated more
    differently).  ``form="paper"``: the paper's code, the gradient of the position-embedding table
    (= that Jacobian summed over the batch), correlation between its 128 columns across positions.
    """
    passed = ctx.gradients()
    if not math.isfinite(passed.loss):
        raise Flagged(f"non-finite loss ({passed.loss})")
    jac = passed.input_grad  # (B, T, E)
    if form == "paper":
        samples = jac.sum(dim=0)  # (T, E): rows = positions, columns = embedding features
    else:
        samples = jac.reshape(jac.shape[0], -1).T  # (T*E, B): columns = sequences
    return correlation_eigen_score(samples.double().cpu().numpy())
