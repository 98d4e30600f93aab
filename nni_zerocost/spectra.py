"""Eigen-spectra of token representations, shared by every context offering ``layer_spectra``."""
from __future__ import annotations

import torch


def covariance_eigenvalues(x: torch.Tensor) -> torch.Tensor:
    """Eigenvalues (descending, >= 0, float64) of the feature covariance of tokens ``x`` (N, D).

    The Gram matrix of the smaller side is decomposed (same non-zero spectrum), so wide layers
    over few tokens stay cheap."""
    x = x.double()
    x = x - x.mean(0, keepdim=True)
    n, d = x.shape
    g = (x.T @ x) if d <= n else (x @ x.T)
    return torch.linalg.eigvalsh(g / max(1, n - 1)).flip(0).clamp_min(0.0)
