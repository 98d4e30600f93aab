"""Figures for a correlation study (matplotlib, optional: ``pip install nni-zerocost[plot]``).

Three figures, each PNG + SVG:
* ``scatter``: proxy score (higher = better) vs ground truth, one panel per proxy, tau/rho in
  the panel title; flagged architectures drawn as red crosses;
* ``ranks``: rank by proxy vs rank by ground truth (what a search actually uses);
* ``flagged``: score distributions of flagged vs unflagged architectures;
and for benchmarks with groups (BERT: hidden size x layers) ``groups``: per-group scatter.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
from scipy import stats


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover
        raise ImportError("plots need matplotlib: pip install 'nni-zerocost[plot]'") from e
    return plt


def _grid(n: int):
    cols = min(3, n)
    rows = math.ceil(n / cols)
    return rows, cols


def plot_study(
    benchmark_name: str,
    truth_name: str,
    truth: Sequence[float],
    scores: Mapping[str, Sequence[Optional[float]]],
    flagged: Mapping[str, Sequence[bool]],
    out_dir: str | Path,
    groups: Optional[Sequence] = None,
    higher_is_better: Optional[Mapping[str, bool]] = None,
    truth_higher_is_better: bool = False,
) -> List[Path]:
    """Write the study figures to ``out_dir``; returns the written paths."""
    plt = _plt()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t = np.asarray(truth, dtype=float)
    names = list(scores)
    sign = {n: 1.0 if (higher_is_better or {}).get(n, True) else -1.0 for n in names}
    S = {n: np.array([np.nan if v is None else sign[n] * v for v in scores[n]], dtype=float) for n in names}
    F = {n: np.asarray(flagged[n], dtype=bool) for n in names}
    written: List[Path] = []
    rows, cols = _grid(len(names))

    def save(fig, stem):
        fig.tight_layout()
        for ext in ("png", "svg"):
            p = out / f"{benchmark_name}_{stem}.{ext}"
            fig.savefig(p, dpi=110)
            written.append(p)
        plt.close(fig)

    # scatter
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    for ax, n in zip(axes.flat, names):
        s, f = S[n], F[n]
        ok = np.isfinite(s) & np.isfinite(t)
        x = _squash(s[ok])
        ax.scatter(x[~f[ok]], t[ok][~f[ok]], s=6, alpha=0.5, label="scored")
        if f[ok].any():
            ax.scatter(x[f[ok]], t[ok][f[ok]], s=12, marker="x", color="tab:red", alpha=0.7, label="flagged")
        tau = stats.kendalltau(s[ok], t[ok]).statistic if ok.sum() > 2 else float("nan")
        rho = stats.spearmanr(s[ok], t[ok]).statistic if ok.sum() > 2 else float("nan")
        ax.set_title(f"{n}\nτ={tau:.3f}  ρ={rho:.3f}  (n={ok.sum()})", fontsize=9)
        ax.set_xlabel("proxy score (higher = better)" + (", symlog" if _needs_log(s[ok]) else ""), fontsize=8)
        ax.set_ylabel(truth_name, fontsize=8)
        if f[ok].any():
            ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(f"{benchmark_name}: proxy vs {truth_name}", fontsize=11)
    save(fig, "scatter")

    # rank vs rank
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    for ax, n in zip(axes.flat, names):
        s = S[n]
        ok = np.isfinite(s) & np.isfinite(t)
        tt = t[ok] if truth_higher_is_better else -t[ok]
        rs = (stats.rankdata(-s[ok]) - 1) / max(ok.sum() - 1, 1)
        rt = (stats.rankdata(-tt) - 1) / max(ok.sum() - 1, 1)
        ax.scatter(rs, rt, s=5, alpha=0.4)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set_title(f"{n}  (perfect proxy = dashed diagonal)", fontsize=9)
        ax.set_xlabel("rank by proxy (0 = best)", fontsize=8)
        ax.set_ylabel(f"true rank by {truth_name} (0 = best)", fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(f"{benchmark_name}: rank vs rank", fontsize=11)
    save(fig, "ranks")

    # flagged vs not
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, n in zip(axes.flat, names):
        s, f = S[n], F[n]
        ok = np.isfinite(s)
        x = _squash(s[ok])
        bins = np.histogram_bin_edges(x, bins=40) if ok.any() else 10
        ax.hist(x[~f[ok]], bins=bins, alpha=0.6, label=f"ok ({(~f[ok]).sum()})")
        ax.hist(x[f[ok]], bins=bins, alpha=0.6, color="tab:red", label=f"flagged ({f[ok].sum()})")
        ax.set_title(f"{n}  (no score: {(~ok).sum()})", fontsize=9)
        ax.set_xlabel("proxy score" + (" (symlog)" if _needs_log(s[ok]) else ""), fontsize=8)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(f"{benchmark_name}: score distribution, flagged vs not", fontsize=11)
    save(fig, "flagged")

    if groups is not None and any(g is not None for g in groups):
        keys = sorted({g for g in groups if g is not None})
        fig, axes = plt.subplots(len(names), len(keys), figsize=(3.0 * len(keys), 2.6 * len(names)), squeeze=False)
        garr = np.array([str(g) for g in groups])
        for i, n in enumerate(names):
            for j, g in enumerate(keys):
                ax = axes[i, j]
                m = (garr == str(g)) & np.isfinite(S[n]) & np.isfinite(t)
                ax.scatter(_squash(S[n][m]), t[m], s=6, alpha=0.5)
                tau = stats.kendalltau(S[n][m], t[m]).statistic if m.sum() > 2 else float("nan")
                ax.set_title(f"{n} | {'/'.join(map(str, g))}\nτ={tau:.3f} n={m.sum()}", fontsize=8)
                ax.tick_params(labelsize=7)
        fig.suptitle(f"{benchmark_name}: within (hidden size / layers) groups", fontsize=11)
        save(fig, "groups")
    return written


def _needs_log(x: np.ndarray) -> bool:
    x = x[np.isfinite(x)]
    if len(x) < 3:
        return False
    spread = np.max(np.abs(x)) / max(np.median(np.abs(x)), 1e-300)
    return spread > 10


def _squash(x: np.ndarray) -> np.ndarray:
    """Symmetric log for heavy-tailed scores (hidden covariance spans 1e3..1e8)."""
    x = np.asarray(x, dtype=float)
    if not _needs_log(x):
        return x
    return np.sign(x) * np.log10(1 + np.abs(x))
