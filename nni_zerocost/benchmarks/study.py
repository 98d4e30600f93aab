"""Correlation study of proxies against a benchmark's ground truth."""
from __future__ import annotations

import math
import statistics
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from .base import Benchmark, Entry
from .metrics import correlations


def select_entries(entries: Sequence[Entry], benchmark: Benchmark, limit: Optional[int], seed: int) -> List[Entry]:
    """Entries with a finite primary result; ``limit`` picks a reproducible random subset.

    The subset is the first ``limit`` of one seeded permutation, in permutation order, so a
    smaller limit is a prefix of a larger one: an interrupted ``--limit 1000`` run leaves every
    ``--limit k`` (k = architectures done) fully answered by the results store.
    """
    eligible = [e for e in entries if _finite(e.truth.get(benchmark.primary))]
    if limit is not None:
        order = np.random.default_rng(seed).permutation(len(eligible))[:limit]
        eligible = [eligible[i] for i in order]
    return eligible


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


#: the fewest architectures a rank correlation is computed on (see ``metrics.correlations``)
MIN_FOR_TAU = 3


def no_tau(scores: Sequence[float], truth: Sequence[float]) -> Optional[str]:
    """Why no rank correlation exists for these pairs (None when one does), in a few words for
    tables and figure panels: too few architectures with a score, or a constant side."""
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    keep = np.isfinite(s) & np.isfinite(t)
    n = int(keep.sum())
    if n < MIN_FOR_TAU:
        return f"{n} with a score, needs {MIN_FOR_TAU}"
    if np.ptp(s[keep]) == 0:
        return "score constant"
    if np.ptp(t[keep]) == 0:
        return "truth constant"
    return None


def study(
    benchmark: Benchmark,
    entries: Sequence[Entry],
    scores: Mapping[str, Sequence[Optional[float]]],
    seconds: Mapping[str, Sequence[float]],
    flags: Mapping[str, Sequence[bool]],
    sizes: Optional[Sequence[Optional[float]]] = None,
) -> Dict[str, Any]:
    """Signed correlations of each proxy's normalised score (higher = better, as the runner's
    records hold it) with the primary ground truth, per training run (when the benchmark has
    runs; the paper's protocol) and per architecture; within-group correlations when entries
    carry groups.

    Counts, in the words the table and the figures use: ``n_flagged`` = architectures *with* a
    score whose value is a flagged fallback (``flags``); ``n_excluded`` = architectures with
    *no score*, left out of every correlation.  A group without a τ says why (``no_tau``).

    ``sizes`` (each architecture's parameter count, from the space): the within-budget ranking,
    Kendall τ over architectures inside each parameter-count decile (:func:`size_bins`), where
    size cannot help a proxy."""
    truth = np.array([e.truth[benchmark.primary] for e in entries], dtype=np.float64)
    n_runs = sum(sum(r is not None for r in e.runs) for e in entries)
    n_diverged = sum(sum(r is None for r in e.runs) for e in entries)
    out: Dict[str, Any] = {
        "benchmark": benchmark.name,
        "ground_truth": benchmark.primary,
        "ground_truth_higher_is_better": benchmark.primary_higher_is_better,
        "n_archs": len(entries),
        "n_runs": n_runs,
        "n_runs_diverged_excluded": n_diverged,
        "group_by": benchmark.group_by or "groups",
        "proxies": {},
    }
    groups = sorted({e.group for e in entries if e.group is not None})
    bins = size_bins(sizes) if sizes is not None else None
    if bins is not None:
        out["size_bins"] = {str(b + 1): [float(min(sz for sz, k in zip(sizes, bins) if k == b)),
                                         float(max(sz for sz, k in zip(sizes, bins) if k == b))]
                            for b in sorted(set(bins))}
    for name, vals in scores.items():
        s = np.array([np.nan if v is None else v for v in vals], dtype=np.float64)
        per_arch = correlations(s, truth)
        row: Dict[str, Any] = {}
        if n_runs:
            rs, rt = [], []
            for e, v in zip(entries, s):
                for r in e.runs:
                    if r is not None:
                        rs.append(v)
                        rt.append(r)
            per_run = correlations(rs, rt)
            row.update({k: per_run[k] for k in ("kendall_tau", "spearman", "pearson")})
            row["n_runs_used"] = per_run["n"]
            row["per_arch"] = per_arch
        else:
            row.update({k: per_arch[k] for k in ("kendall_tau", "spearman", "pearson")})
            row["precision_at_k"] = per_arch["precision_at_k"]
        secs = [x for x in seconds[name] if x is not None]
        row["seconds_per_arch"] = float(np.mean(secs)) if secs else math.nan
        row["median_seconds"] = float(statistics.median(secs)) if secs else math.nan
        row["n_flagged"] = int(sum(bool(f) for f, v in zip(flags[name], s) if not np.isnan(v)))
        row["n_excluded"] = int(np.isnan(s).sum())
        if groups:
            row["within_groups"] = {}
            for g in groups:
                idx = [i for i, e in enumerate(entries) if e.group == g]
                c = correlations(s[idx], truth[idx])
                cell = {k: c[k] for k in ("n", "kendall_tau", "spearman", "pearson")}
                why = no_tau(s[idx], truth[idx])
                if why:
                    cell["no_tau"] = why
                row["within_groups"]["/".join(map(str, g))] = cell
        if bins is not None:
            row["within_size_bins"] = {}
            for b in sorted(set(bins)):
                idx = [i for i, k in enumerate(bins) if k == b]
                c = correlations(s[idx], truth[idx])
                cell = {k: c[k] for k in ("n", "kendall_tau")}
                why = no_tau(s[idx], truth[idx])
                if why:
                    cell["no_tau"] = why
                row["within_size_bins"][str(b + 1)] = cell
            taus = [v["kendall_tau"] for v in row["within_size_bins"].values() if "no_tau" not in v]
            row["within_size_bins_mean_tau"] = float(np.mean(taus)) if taus else math.nan
            row["within_size_bins_with_tau"] = len(taus)
        out["proxies"][name] = row
    return out


#: parameter-count bins of the within-budget ranking
N_SIZE_BINS = 10


def size_bins(sizes: Sequence[Optional[float]], n_bins: int = N_SIZE_BINS) -> Optional[List[int]]:
    """Decile (0-based) of each architecture by parameter count: equal-count bins by rank (ties
    broken by position), or None when a size is unknown or fewer than 2 architectures per bin."""
    if any(s is None for s in sizes) or len(sizes) < 2 * n_bins:
        return None
    order = np.argsort(np.asarray(sizes, dtype=np.float64), kind="stable")
    rank = np.empty(len(sizes), dtype=np.int64)
    rank[order] = np.arange(len(sizes))
    return [int(r * n_bins // len(sizes)) for r in rank]


def format_table(result: Mapping[str, Any]) -> str:
    """Plain-text table of a study result (what the CLI prints)."""
    n_runs, n_archs = result.get("n_runs"), result["n_archs"]
    truth = result["ground_truth"]
    lines = [
        f"{result['benchmark']}: {n_archs} architectures"
        + (f", {n_runs} finite runs ({result['n_runs_diverged_excluded']} diverged runs excluded)" if n_runs else ""),
    ]
    if "wall_seconds" in result:
        workers = result.get("workers", 1)
        lines.append(f"scored on {result.get('device', 'cpu')} in {result['wall_seconds']:.1f} s wall "
                     f"({workers} worker{'s' if workers != 1 else ''})")
        stored, total = result.get("results_from_store", 0), result.get("results", 0)
        if stored:
            lines[-1] += f"; {stored} of {total} results came from the store:"
            lines.append("  s/arch is the model work recorded when each result was computed, not this run's")
    lines.append(f"signed correlations of each proxy (higher = better) with {truth}:")
    if n_runs:
        lines += [f"  kendall, spearman, pearson: over the {n_runs} finite training runs (each run paired with its "
                  "architecture's score)",
                  f"  tau/arch: Kendall tau over the {n_archs} architectures (their mean {truth}), as the scatter "
                  "figure shows"]
    else:
        lines.append(f"  kendall, spearman, pearson: over the {n_archs} architectures")
    lines.append("flagged: scored, the value a flagged fallback; no score: left out of the correlations")
    per_arch = bool(n_runs)
    lines += ["", f"{'proxy':<36} {'kendall':>8} {'spearman':>9} {'pearson':>8}"
              + (f" {'tau/arch':>8}" if per_arch else "")
              + f" {'s/arch':>8} {'median s':>9} {'flagged':>8} {'no score':>9}"]
    for name, r in result["proxies"].items():
        lines.append(
            f"{name:<36} {_f(r['kendall_tau']):>8} {_f(r['spearman']):>9} {_f(r['pearson']):>8}"
            + (f" {_f(r.get('per_arch', {}).get('kendall_tau')):>8}" if per_arch else "")
            + f" {_f(r['seconds_per_arch'], 4):>8} {_f(r['median_seconds'], 4):>9} {r['n_flagged']:>8}"
            f" {r.get('n_excluded', 0):>9}"
        )
    lines += format_extra(result)  # all-cells tau-b, within-group taus, trivial baselines
    return "\n".join(lines)


def _f(x, nd=3):
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def format_extra(result: Mapping[str, Any]) -> List[str]:
    """Extra table lines for :func:`format_table`: the all-cells tau-b, trivial baselines,
    within-group and within-budget taus (computed by :mod:`.extra`)."""
    lines: List[str] = []
    if result.get("all_cells"):
        lines += ["", "all cells with 3 runs: Kendall tau-b vs median run loss (diverged run = +inf, missing score = worst)"]
        for name, r in list(result["proxies"].items()) + list(result.get("trivial_baselines", {}).items()):
            a = r.get("all_cells", {})
            lines.append(f"{name:<36} {_f(a.get('kendall_tau_b'))}  (n={a.get('n')}, ranked last: {a.get('n_missing_scores_ranked_last')})")
    base = result.get("trivial_baselines")
    if base:
        lines += ["", "trivial baselines (raw features, not oriented):"]
        for name, r in base.items():
            lines.append(f"{name:<36} {_f(r['kendall_tau']):>8} {_f(r['spearman']):>9} {_f(r['pearson']):>8}")
    rows = list(result["proxies"].items()) + list((base or {}).items())
    if any("within_groups_mean_tau" in r for _, r in rows):
        lines += ["", f"within-group Kendall tau over architectures (groups: {result.get('group_by', 'groups')}); mean over the "
                      "groups that have a tau; n/a: why a group has none"]
        for name, r in rows:
            if "within_groups_mean_tau" in r:
                g = r.get("within_groups", {})
                k = r.get("within_groups_with_tau", len(g))
                mean = f"mean {_f(r['within_groups_mean_tau'])} ({k} of {len(g)} groups)" if k else "mean n/a (no group)"
                lines.append(f"{name:<36} {mean:<24} " + "  ".join(
                    f"{k}:{_f(v['kendall_tau'])}" if "no_tau" not in v else f"{k}:n/a ({v['no_tau']})"
                    for k, v in g.items()))
    if any("within_size_bins_mean_tau" in r for _, r in rows):
        bins = result.get("size_bins", {})
        edges = "  ".join(f"{k}:{lo / 1e6:.3g}-{hi / 1e6:.3g}M" for k, (lo, hi) in bins.items())
        measure = result.get("size_measure", "parameters")
        lines += ["", f"within-budget ranking: Kendall tau over architectures inside each decile of {measure} "
                      "(where size cannot help); mean over the deciles that have a tau",
                  f"  deciles ({measure}): {edges}"]
        for name, r in rows:
            if "within_size_bins_mean_tau" in r:
                g = r["within_size_bins"]
                lines.append(f"{name:<36} mean {_f(r['within_size_bins_mean_tau'])}  " + "  ".join(
                    f"{k}:{_f(v['kendall_tau'])}" if "no_tau" not in v else f"{k}:n/a" for k, v in g.items()))
    return lines
