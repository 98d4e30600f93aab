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


def study(
    benchmark: Benchmark,
    entries: Sequence[Entry],
    scores: Mapping[str, Sequence[Optional[float]]],
    seconds: Mapping[str, Sequence[float]],
    flags: Mapping[str, Sequence[bool]],
) -> Dict[str, Any]:
    """Signed correlations of each proxy's normalised score (higher = better, as the runner's
    records hold it) with the primary ground truth, per training run (when the benchmark has
    runs; the paper's protocol) and per architecture; within-group correlations when entries
    carry groups."""
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
        "proxies": {},
    }
    groups = sorted({e.group for e in entries if e.group is not None})
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
        row["n_flagged"] = int(sum(flags[name]))
        row["n_excluded"] = int(np.isnan(s).sum())
        if groups:
            row["within_groups"] = {}
            for g in groups:
                idx = [i for i, e in enumerate(entries) if e.group == g]
                c = correlations(s[idx], truth[idx])
                row["within_groups"]["/".join(map(str, g))] = {k: c[k] for k in ("n", "kendall_tau", "spearman", "pearson")}
        out["proxies"][name] = row
    return out


def format_table(result: Mapping[str, Any]) -> str:
    """Plain-text table of a study result (what the CLI prints)."""
    per = "per run" if result.get("n_runs") else "per architecture"
    lines = [
        f"{result['benchmark']}: {result['n_archs']} architectures"
        + (f", {result['n_runs']} finite runs ({result['n_runs_diverged_excluded']} diverged runs excluded)" if result.get("n_runs") else ""),
        f"signed correlations of each proxy (higher = better) with {result['ground_truth']} ({per})",
        "",
        f"{'proxy':<36} {'kendall':>8} {'spearman':>9} {'pearson':>8} {'s/arch':>8} {'median s':>9} {'flagged':>8}",
    ]
    if "wall_seconds" in result:
        lines[0] += (f"; scored on {result.get('device', 'cpu')} in {result['wall_seconds']:.1f} s wall "
                     f"({result.get('workers', 1)} worker{'s' if result.get('workers', 1) != 1 else ''})")
    for name, r in result["proxies"].items():
        lines.append(
            f"{name:<36} {_f(r['kendall_tau']):>8} {_f(r['spearman']):>9} {_f(r['pearson']):>8} "
            f"{_f(r['seconds_per_arch'], 4):>8} {_f(r['median_seconds'], 4):>9} {r['n_flagged']:>8}"
        )
    any_groups = any("within_groups" in r for r in result["proxies"].values())
    if any_groups:
        lines += ["", "within (group) Kendall tau:"]
        for name, r in result["proxies"].items():
            g = r.get("within_groups", {})
            lines.append(f"{name:<36} " + "  ".join(f"{k}:{_f(v['kendall_tau'])}" for k, v in g.items()))
    from .extra import format_extra  # issue #14: all-cells tau-b, group means, trivial baselines

    lines += format_extra(result)
    return "\n".join(lines)


def _f(x, nd=3):
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"
