"""Extra benchmark metrics: all-cells tau-b, within-group summary, trivial baselines.

* **All cells** (NAS-Bench-NLP).  ``select_all_cells`` keeps every cell with ``N_RUNS`` (3)
  training runs, diverged ones included.  ``all_cells_tau`` correlates a proxy with the cell's
  *median* test loss over its runs, a diverged run counting as the worst possible loss
  (+inf), by Kendall's tau-b with ties (scipy).  A proxy value that is missing (NaN, e.g. a
  cell refused by ``max_degree``) counts as the worst score, as a search ranks it last.
* **Within groups** (BERT).  The mean of the per-group Kendall taus over the groups that have
  one (a group of fewer than 3 scored architectures, or with a constant score, has none and
  says why), with how many groups that is, next to each group.
* **Trivial baselines**, computed from the table alone (no model), reported with the same
  metrics as the proxies so that tables come from one CLI call.  They are *raw features*,
  correlated as they are (not oriented), and each benchmark defines its own
  (:meth:`~.base.Benchmark.baselines`).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
from scipy import stats

from .base import Benchmark, Entry

N_RUNS = 3


def select_all_cells(entries: Sequence[Entry], limit: Optional[int], seed: int, n_runs: int = N_RUNS) -> List[Entry]:
    """Every entry with exactly ``n_runs`` runs (finite or diverged); ``limit`` as in
    :func:`~.study.select_entries` (prefix of one seeded permutation)."""
    eligible = [e for e in entries if len(e.runs) == n_runs]
    if limit is not None:
        order = np.random.default_rng(seed).permutation(len(eligible))[:limit]
        eligible = [eligible[i] for i in order]
    return eligible


def median_truth(entry: Entry) -> float:
    """Median run loss, a diverged run (None) counted as +inf."""
    runs = [math.inf if r is None else float(r) for r in entry.runs]
    return float(np.median(runs)) if runs else math.nan


def all_cells_tau(entries: Sequence[Entry], signed_scores: Sequence[float]) -> Dict[str, Any]:
    """Kendall tau-b of oriented scores (higher = better; NaN = worst) vs median loss (+inf =
    worst).  Negative is good (loss: lower is better)."""
    t = np.array([median_truth(e) for e in entries], dtype=np.float64)
    s = np.array(signed_scores, dtype=np.float64)
    keep = ~np.isnan(t)
    t, s = t[keep], s[keep]
    n_worst = int(np.isinf(t).sum())
    n_missing = int(np.isnan(s).sum())
    finite_t = t[np.isfinite(t)]
    # inf / NaN replaced by values beyond the finite range (tau only sees the order)
    t = np.where(np.isfinite(t), t, (finite_t.max() + 1.0) if finite_t.size else 1.0)
    finite_s = s[np.isfinite(s)]
    lo = (finite_s.min() - 1.0) if finite_s.size else -1.0
    hi = (finite_s.max() + 1.0) if finite_s.size else 1.0
    s = np.where(np.isnan(s) | (s == -np.inf), lo, np.where(s == np.inf, hi, s))
    if len(s) < 3 or np.ptp(s) == 0 or np.ptp(t) == 0:
        tau = math.nan
    else:
        tau = float(stats.kendalltau(s, t, variant="b").statistic)
    return {"kendall_tau_b": tau, "n": int(len(t)), "n_worst_truth": n_worst, "n_missing_scores_ranked_last": n_missing}


# -- trivial baselines -------------------------------------------------------------------------
def baseline_features(benchmark: Benchmark, entries: Sequence[Entry]) -> Dict[str, List[float]]:
    """The benchmark's own trivial baselines (:meth:`~.base.Benchmark.baselines`)."""
    return benchmark.baselines(entries)


def rank_average(columns: Sequence[Sequence[Optional[float]]]) -> List[float]:
    """Label-free combination: the mean of each proxy's rank over the architectures being ranked
    (``columns`` are sign-normalised scores, higher = better; average ranks for ties; a missing
    value ranks lowest).  Higher = better."""
    ranks = []
    for vals in columns:
        s = np.array([np.nan if v is None else float(v) for v in vals], dtype=np.float64)
        s = np.where(np.isnan(s), -np.inf, s)
        ranks.append(stats.rankdata(s) / len(s))
    return [float(x) for x in np.mean(ranks, axis=0)]


def add_rank_averages(result: Dict[str, Any], benchmark: Benchmark, entries: Sequence[Entry],
                      scores: Dict[str, Sequence[Optional[float]]], combos: Sequence[str]) -> None:
    """Add ``rankavg(a+b)`` rows for each combo ``"a+b[+c]"`` of proxy specs already scored
    (in place: ``scores`` gains the combined column)."""
    from .study import study

    for combo in combos or ():
        parts = [c for c in combo.split("+") if c]
        missing = [c for c in parts if c not in scores]
        if len(parts) < 2 or missing:
            raise ValueError(f"--rank-average {combo!r}: give 2+ proxy specs joined by '+', each also passed "
                             f"as --proxy (missing: {missing})")
        name = f"rankavg({combo})"
        scores[name] = rank_average([scores[c] for c in parts])
        n = len(entries)
        row = study(benchmark, entries, {name: scores[name]}, {name: [0.0] * n}, {name: [False] * n})["proxies"][name]
        row["seconds_per_arch"] = float(sum(result["proxies"][c]["seconds_per_arch"] for c in parts))
        row["median_seconds"] = float(sum(result["proxies"][c]["median_seconds"] for c in parts))
        row["n_flagged"] = 0
        result["proxies"][name] = row


def augment(result: Dict[str, Any], benchmark: Benchmark, entries: Sequence[Entry],
            scores: Mapping[str, Sequence[Optional[float]]], all_cells: bool = False,
            rank_averages: Sequence[str] = (), sizes: Optional[Sequence[Optional[float]]] = None) -> Dict[str, Any]:
    """Add the extra metrics (all-cells tau-b, group means, trivial baselines) to a
    :func:`~.study.study` result (in place; returned).  ``scores`` are sign-normalised
    (higher = better), as the runner's records hold them."""
    from .study import study

    scores = dict(scores)
    add_rank_averages(result, benchmark, entries, scores, rank_averages)

    def add(rows, vals_by_name):
        for name, vals in vals_by_name.items():
            row = rows[name]
            g = row.get("within_groups")
            if g:  # the mean over the groups that have a tau (a group of too few has none), counted
                taus = [v["kendall_tau"] for v in g.values() if math.isfinite(v["kendall_tau"])]
                row["within_groups_mean_tau"] = float(np.mean(taus)) if taus else math.nan
                row["within_groups_with_tau"] = len(taus)
            if all_cells:
                signed = [math.nan if v is None else float(v) for v in vals]
                row["all_cells"] = all_cells_tau(entries, signed)

    add(result["proxies"], scores)
    feats = baseline_features(benchmark, entries)
    if feats:
        n = len(entries)
        base = study(benchmark, entries, feats, {k: [0.0] * n for k in feats}, {k: [False] * n for k in feats},
                     sizes)
        rows = base["proxies"]
        for r in rows.values():
            for k in ("seconds_per_arch", "median_seconds", "n_flagged"):
                r.pop(k, None)
        add(rows, feats)
        result["trivial_baselines"] = rows
    result["all_cells"] = bool(all_cells)
    return result
