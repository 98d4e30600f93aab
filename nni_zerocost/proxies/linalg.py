"""Numerics shared by the eigen-spectrum proxies (float64, symmetric solver)."""
from __future__ import annotations

import numpy as np

from .base import Flagged

EIGEN_K = 1e-5


def eigen_score(eigenvalues: np.ndarray, k: float = EIGEN_K) -> float:
    """NASWOT's covariance score ``-sum(log(l + k) + 1/(l + k))``."""
    v = np.asarray(eigenvalues, dtype=np.float64)
    return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


def correlation_eigen_score(samples: np.ndarray, k: float = EIGEN_K) -> float:
    """Eigen score of the correlation matrix of the columns of ``samples`` (n, d).

    Computed in float64 with a symmetric eigen-solver.  Constant columns have no correlation:
    their row and column are zeroed (eigenvalue 0) and :class:`Flagged` is raised carrying the
    finite fallback value.  Non-finite samples raise :class:`Flagged` with NaN.
    """
    x = np.asarray(samples, dtype=np.float64)
    if not np.isfinite(x).all():
        raise Flagged("non-finite activations (the cell explodes)")
    x = x - x.mean(axis=0)
    cov = x.T @ x
    std = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    scale = np.abs(x).max(axis=0) if x.size else std
    const = std <= 1e-12 * np.maximum(scale * np.sqrt(x.shape[0]), 1e-300)
    const |= std == 0
    inv = np.where(const, 0.0, 1.0 / np.where(const, 1.0, std))
    corr = cov * inv[:, None] * inv[None, :]
    np.clip(corr, -1.0, 1.0, out=corr)
    eig = np.linalg.eigvalsh(corr)
    value = eigen_score(eig, k)
    n_const = int(const.sum())
    if n_const:
        raise Flagged(f"{n_const} of {len(std)} units are constant (counted as zero eigenvalues)", value)
    return value
