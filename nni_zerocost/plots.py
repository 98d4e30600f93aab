"""Figures for a correlation study (matplotlib, optional: ``pip install nni-zerocost[plot]``).

Three figures, each PNG + SVG:
* ``scatter``: proxy score (higher = better) vs ground truth, one point per architecture, one
  panel per proxy, Kendall tau / Spearman rho *over architectures* in the panel title (the
  CLI's table leads with the paper's per-training-run numbers and shows this one as tau/arch);
  flagged architectures drawn as red crosses;
* ``ranks``: rank by proxy vs rank by ground truth (what a search actually uses);
* ``flagged``: score distributions of flagged vs not flagged architectures, and how many have
  no score -- counted as the table counts them (flagged = scored with a flagged fallback value);
and for benchmarks with groups (``group_by``, e.g. BERT's hidden size/layers) ``groups``: per-group scatter, each
panel's tau over the group's architectures or why it has none.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Tuple

import numpy as np
from scipy import stats

from .benchmarks.study import no_tau


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
    truth_higher_is_better: bool = False,
    group_by: str = "groups",
) -> List[Path]:
    """Write the study figures to ``out_dir``; returns the written paths.

    ``scores`` are sign-normalised (higher = better, as the runner's records hold them);
    ``flagged[name][i]`` says architecture i's value is a flagged fallback (an architecture
    without a score is counted as "no score" whatever its flag).  Axes show the scores
    themselves; a wide range gets a symlog axis, whose ticks are real values."""
    plt = _plt()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t = np.asarray(truth, dtype=float)
    names = list(scores)
    S = {n: np.array([np.nan if v is None else v for v in scores[n]], dtype=float) for n in names}
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
        x = s[ok]
        ax.scatter(x[~f[ok]], t[ok][~f[ok]], s=6, alpha=0.5, label="scored")
        if f[ok].any():
            ax.scatter(x[f[ok]], t[ok][f[ok]], s=12, marker="x", color="tab:red", alpha=0.7, label="flagged")
        why = no_tau(s, t)
        if why:
            stat = f"τ, ρ: n/a ({why})"
        else:
            tau, rho = stats.kendalltau(s[ok], t[ok]).statistic, stats.spearmanr(s[ok], t[ok]).statistic
            stat = f"over {ok.sum()} architectures: τ={tau:.3f}  ρ={rho:.3f}"
        n_none = int((~np.isfinite(s)).sum())
        ax.set_title(f"{n}\n{stat}" + (f"  (no score: {n_none})" if n_none else ""), fontsize=9)
        ax.set_xlabel("proxy score (higher = better)" + _scale(ax, x), fontsize=8)
        ax.set_ylabel(truth_name, fontsize=8)
        if f[ok].any():
            ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(f"{benchmark_name}: proxy vs {truth_name}, one point per architecture "
                 "(τ, ρ over architectures)", fontsize=11)
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
        x = s[ok]
        bins = _bins(x)
        ax.hist(x[~f[ok]], bins=bins, alpha=0.6, label=f"not flagged ({(~f[ok]).sum()})")
        ax.hist(x[f[ok]], bins=bins, alpha=0.6, color="tab:red", label=f"flagged ({f[ok].sum()})")
        ax.set_title(f"{n}\nflagged: {f[ok].sum()}, no score (not drawn): {(~ok).sum()}", fontsize=9)
        ax.set_xlabel("proxy score (higher = better)" + _scale(ax, x), fontsize=8)
        ax.set_ylabel("architectures", fontsize=8)
        ax.yaxis.set_major_locator(_integer_ticks())
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(f"{benchmark_name}: score distribution (flagged = scored with a flagged fallback value)",
                 fontsize=11)
    save(fig, "flagged")

    if groups is not None and any(g is not None for g in groups):
        keys = sorted({g for g in groups if g is not None})
        fig, axes = plt.subplots(len(names), len(keys), figsize=(3.0 * len(keys), 2.6 * len(names)), squeeze=False)
        garr = np.array([str(g) for g in groups])
        for i, n in enumerate(names):
            for j, g in enumerate(keys):
                ax = axes[i, j]
                in_group = garr == str(g)
                m = in_group & np.isfinite(S[n]) & np.isfinite(t)
                ax.scatter(S[n][m], t[m], s=6, alpha=0.5)
                suffix = _scale(ax, S[n][m])
                why = no_tau(S[n][in_group], t[in_group])
                stat = f"τ n/a: {why}" if why else f"τ={stats.kendalltau(S[n][m], t[m]).statistic:.3f} (n={m.sum()})"
                ax.set_title(f"{n} | {'/'.join(map(str, g))}\n{stat}", fontsize=8)
                ax.set_xlabel("score (higher = better)" + suffix, fontsize=7)
                if j == 0:
                    ax.set_ylabel(truth_name, fontsize=8)
                ax.tick_params(labelsize=7)
        fig.suptitle(f"{benchmark_name}: within groups ({group_by}), one point per architecture, "
                     "Kendall τ over the group's architectures", fontsize=11)
        save(fig, "groups")
    return written


def _needs_log(x: np.ndarray) -> bool:
    """True when the values span several orders of magnitude (a linear axis would hide most)."""
    x = x[np.isfinite(x)]
    if x.size < 2:
        return False
    a = np.abs(x[x != 0])
    return a.size > 1 and a.max() / max(a.min(), 1e-300) > 1e3


def _linthresh(x: np.ndarray) -> float:
    a = np.abs(x[np.isfinite(x) & (x != 0)])
    return float(np.quantile(a, 0.05)) if a.size else 1.0


def _scale(ax, x: np.ndarray) -> str:
    """Symlog x axis for wide-ranging values (ticks stay real values); returns a label suffix."""
    if not _needs_log(x):
        return ""
    ax.set_xscale("symlog", linthresh=_linthresh(x))
    return ", symlog axis"


def _bins(x: np.ndarray):
    """Histogram bins even on a symlog axis: edges spaced in the axis's own coordinates."""
    if not x.size:
        return 10
    if not _needs_log(x):
        return np.histogram_bin_edges(x, bins=40)
    c = _linthresh(x)
    f = lambda v: np.sign(v) * np.log1p(np.abs(v) / c)  # noqa: E731
    edges = np.linspace(f(x.min()), f(x.max()), 41)
    return np.sign(edges) * c * np.expm1(np.abs(edges))


def plot_search(scores: Sequence[Optional[float]], top_indices: Sequence[int], proxy: str, out: str | Path,
                title: str = "", ranked: bool = False) -> Path:
    """The search at a glance, one PNG: the candidates' scores (left) and their distribution
    with the kept top-k marked (right).

    Left: with ``ranked=False`` every candidate's score in evaluation order and the best so far;
    with ``ranked=True`` (a strategy that scores every candidate first and reports them best
    first, where a best-so-far line would be flat) the scores against their rank.
    ``scores`` in the order reported, sign-normalised (higher = better), None for candidates
    without a score (drawn as a count, not as a value); ``top_indices`` index into ``scores``.
    """
    plt = _plt()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    s = np.array([np.nan if v is None else v for v in scores], dtype=float)
    ok = np.isfinite(s)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.4))
    x = np.arange(1, len(s) + 1)
    top = [i for i in top_indices if ok[i]]
    if ranked:
        a.plot(x[ok], s[ok], marker=".", ms=4, lw=1, color="tab:gray", label="candidate")
        a.set_xlabel("rank by score (1 = best)")
        a.set_title(f"{proxy}: every candidate scored, then ranked", fontsize=10)
    else:
        best = np.fmax.accumulate(np.where(ok, s, -np.inf)) if len(s) else s
        shown = np.isfinite(best)
        a.scatter(x[ok], s[ok], s=10, alpha=0.5, color="tab:gray", label="candidate")
        a.step(x[shown], best[shown], where="post", color="tab:blue", lw=1.8, label="best so far")
        a.set_xlabel("candidates evaluated")
        a.set_title(f"{proxy}: best score so far", fontsize=10)
    a.scatter(x[top], s[top], s=40, marker="*", color="tab:red", zorder=3, label=f"kept top {len(top)}")
    a.xaxis.set_major_locator(_integer_ticks())
    a.set_ylabel("score (higher = better)")
    # below the axes, where it hides no point
    a.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    if ok.any():
        a.set_ylabel("score (higher = better)" + _scale_y(a, s[ok]))
        bins = _bins(s[ok])
        b.hist(s[ok], bins=bins, color="tab:gray", alpha=0.7)
        b.set_xlabel("score (higher = better)" + _scale(b, s[ok]))
        for i in top:
            b.axvline(s[i], color="tab:red", lw=1, alpha=0.8)
    b.set_ylabel("candidates")
    b.yaxis.set_major_locator(_integer_ticks())
    b.set_title(f"score distribution (red: kept top {len(top)}; no score: {int((~ok).sum())})", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _integer_ticks():
    """Counts and positions are whole numbers: no 0.5 ticks."""
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _scale_y(ax, y: np.ndarray) -> str:
    if not _needs_log(y):
        return ""
    ax.set_yscale("symlog", linthresh=_linthresh(y))
    return ", symlog axis"


def plot_front(points: Sequence[Tuple[float, float]], front: Sequence[Tuple[float, float]], proxy: str, measure: str,
               out: str | Path, title: str = "") -> Path:
    """The score of every scored candidate against a size or cost (x: lower is cheaper), the
    Pareto front drawn as a step line through its points (no candidate has both a higher score
    and a lower cost than a point on it)."""
    plt = _plt()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    if points:
        x, y = np.array(points, dtype=float).T
        ax.scatter(x, y, s=12, alpha=0.5, color="tab:gray", label="candidate")
    if front:
        fx, fy = np.array(sorted(front), dtype=float).T
        ax.step(fx, fy, where="post", color="tab:red", lw=1.5)
        ax.scatter(fx, fy, s=36, color="tab:red", zorder=3, label=f"Pareto front ({len(front)})")
    ax.set_xlabel(measure)
    ax.set_ylabel(f"{proxy} (higher = better)")
    ax.set_title(title or f"{proxy} against {measure}", fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    fig.savefig(out.with_suffix(".svg"))
    plt.close(fig)
    return out


def plot_results(results: str, benchmark: str, out, data_dir: Optional[str] = None) -> List[Path]:
    """Figures of a score file against a benchmark's truth (``plot`` command), joined on the
    architecture hash: a record whose id names another architecture is matched by its hash, and
    a file with records of architectures outside the benchmark is refused (one line)."""
    from .benchmarks.base import get_benchmark
    from .data import data_dir as folder_of
    from .errors import ZeroCostError
    from .spaces import get_space
    from .store import read_jsonl

    bench = get_benchmark(benchmark)
    sp = get_space(bench.space)
    entries = bench.load(folder_of(data_dir, bench))
    by_id = {json.dumps(e.arch_id): e for e in entries}
    by_hash: dict = {}
    for e in entries:
        by_hash.setdefault(sp.arch_hash(e.arch), e)
    rows = [obj for _, obj in read_jsonl(results)]
    if not rows:
        raise ZeroCostError(f"{results}: no records")
    if any("scores" not in r for r in rows):
        raise ZeroCostError(f"{results}: records without 'scores' (written by an older version); "
                            "re-run 'nni-zerocost score' (the store makes it cheap)")
    matched, unmatched = [], 0
    for r in rows:
        h = r.get("arch_hash")
        e = by_id.get(json.dumps(r.get("arch_id", r.get("id"))))
        if e is None or sp.arch_hash(e.arch) != h:  # the id is not this architecture: join on the hash
            e = by_hash.get(h)
        if e is None:
            if r.get("status") != "invalid":
                unmatched += 1
            continue
        if e.truth.get(bench.primary) is not None:
            matched.append((e, r))
    if unmatched:
        rows_text = f"{len(rows):,} row" + ("s" if len(rows) != 1 else "")
        raise ZeroCostError(f"{results}: {unmatched} of {rows_text} do not match an architecture of {bench.name} "
                            "(by architecture hash); plot only results scored on its architectures")
    if not matched:
        raise ZeroCostError(f"{results}: no record matches an architecture of {bench.name} with a known {bench.primary}")
    specs = list(matched[0][1]["scores"])
    scores = {s: [r["scores"].get(s) for _, r in matched] for s in specs}
    flags = {s: [s in (r.get("flags") or {}) for _, r in matched] for s in specs}
    written = plot_study(bench.name, bench.primary, [e.truth[bench.primary] for e, _ in matched], scores, flags,
                         out, [e.group for e, _ in matched], bench.primary_higher_is_better,
                         bench.group_by or "groups")
    return written
