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


#: matrices with at least this many entries get their singular values from the smaller Gram
#: matrix; below it an exact SVD, so that every matrix of the benchmark spaces (gpt2: at most
#: 512 x 2048 = 2^20 entries; bert: 256 x 1024) keeps its values bit for bit
GRAM_MIN_ENTRIES = 1 << 21


def singular_values(w: torch.Tensor) -> torch.Tensor:
    """Singular values (descending, float64) of the matrix ``w``.

    Below :data:`GRAM_MIN_ENTRIES` entries: ``torch.linalg.svdvals`` in float64.  From there on:
    the square roots of the eigenvalues of the smaller Gram matrix (``W^T W`` or ``W W^T``, float64),
    the same values up to rounding at a fraction of the time (a 2048 x 2048 matrix: 1.8 s instead of
    14 s on 2 CPU cores).  Small singular values lose relative precision there (an error of about
    ``sqrt(eps) * s_max``), and values below ``sqrt(size * eps) * s_max`` (1e-6 of the largest for
    2048 columns) are returned as 0, which a sum over them (a nuclear norm) hardly sees:
    tests/test_real_size.py checks the sum against the SVD to 1e-12 relative on full-rank
    matrices, 1e-6 on a rank-8 one in float32 (whose rounding's singular values are dropped)."""
    x = w.detach().double()
    if x.numel() < GRAM_MIN_ENTRIES:
        return torch.linalg.svdvals(x)
    m, n = x.shape
    g = (x.T @ x) if n <= m else (x @ x.T)
    del x
    ev = torch.linalg.eigvalsh(g).flip(0)
    # eigenvalues within the Gram matrix's rounding (size x eps x the largest) are zeros: their
    # square roots would be noise of about sqrt(eps) x s_max each
    noise = g.shape[0] * torch.finfo(g.dtype).eps * ev[0].clamp_min(0.0)
    return torch.where(ev > noise, ev, torch.zeros_like(ev)).sqrt()


def nuclear_norm(w: torch.Tensor) -> float:
    """Sum of the singular values of ``w`` (:func:`singular_values`); a stack of matrices (a
    mixture of experts' ``(E, out, in)`` weights) sums its matrices' norms."""
    if w.dim() > 2:
        return float(sum(nuclear_norm(m) for m in w.reshape(-1, *w.shape[-2:])))
    return float(singular_values(w).sum())
