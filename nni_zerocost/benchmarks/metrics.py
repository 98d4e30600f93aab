"""Correlation metrics between proxy scores and ground truth (scipy under the hood)."""
from __future__ import annotations

import math
from typing import Dict, Sequence

import numpy as np
from scipy import stats


def correlations(scores: Sequence[float], truth: Sequence[float], top_k_frac: float = 0.1) -> Dict[str, float]:
    """Kendall tau, Spearman rho, Pearson r and top-k precision of ``scores`` vs ``truth``.

    Signed: a proxy whose high values go with high ``truth`` gives positive numbers.  Pairs
    where either side is not finite are dropped and counted in ``n_excluded``.  ``precision_at_k``
    is the overlap of the top ``top_k_frac`` by score and by truth (both "higher first"), so
    pass ``truth`` already oriented as "higher is better" when using it.
    """
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if s.shape != t.shape:
        raise ValueError(f"scores and truth differ in length: {s.shape} vs {t.shape}")
    keep = np.isfinite(s) & np.isfinite(t)
    s, t = s[keep], t[keep]
    out = {"n": int(keep.sum()), "n_excluded": int((~keep).sum())}
    if len(s) < 3 or np.ptp(s) == 0 or np.ptp(t) == 0:
        out.update(kendall_tau=math.nan, spearman=math.nan, pearson=math.nan, precision_at_k=math.nan)
        return out
    out["kendall_tau"] = float(stats.kendalltau(s, t).statistic)
    out["spearman"] = float(stats.spearmanr(s, t).statistic)
    with np.errstate(all="ignore"):
        out["pearson"] = float(stats.pearsonr(s, t).statistic)
    k = max(1, int(round(top_k_frac * len(s))))
    top_s = set(np.argsort(-s, kind="stable")[:k])
    top_t = set(np.argsort(-t, kind="stable")[:k])
    out["precision_at_k"] = len(top_s & top_t) / k
    return out
