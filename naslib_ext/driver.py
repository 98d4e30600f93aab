"""Predictor benchmark in NASLib's terms, on our NAS-Bench-NLP and BERT tables.

    python -m naslib_ext.driver --space nlp --proxy hidden_covariance --n 300 --seed 0

Without ``--proxy`` the space's own default is used (:data:`DEFAULT_PROXY`).

Draws ``n`` benchmark architectures with a finite result (``seed``; the same subset the core's
study picks), wraps them as NASLib graphs, asks :class:`ZeroCostProxyPredictor` for their
scores and the graphs' ``query(Metric.VAL_ACCURACY)`` for the truth (NASLib's convention:
higher is better, ``100 - loss`` on NB-NLP), and reports NASLib's metric names: pearson,
spearman, kendalltau, precision_10, precision_20 and query_time (seconds per architecture).

Metrics are computed with scipy (``nni_zerocost.benchmarks.metrics.correlations``), signed
(positive = the proxy ranks good architectures high), architectures without a score excluded
and counted (``n`` drawn = ``n_scored`` + ``n_excluded``).  NASLib's own
``PredictorEvaluator.compare`` is not used: with scikit-learn >= 1.6 it silently returns NaN for
every metric, and it reports |pearson|.

With ``--check-core`` the same architectures are also scored by the core directly
(``nni_zerocost.score`` on the table's architectures, truth from the table) and both sets of
figures are printed with their largest difference, so the adapter is shown not to change them;
the command exits with status 1 when they differ.  :func:`evaluate` returns the same figures as
a dict, for a CLI command to call.

The command scores on one torch CPU thread (``--threads``), as the core's worker processes do:
with torch's default of one thread per core, each of a cell's small matrix products waits for a
second thread, and on a busy 2-core machine that made ``query_time`` 2.9 s/arch instead of
0.43 s/arch (``--n 30``; the same cells, the same scores).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch

from .predictors import ZeroCostProxyPredictor
from .search_spaces import Metric, NasBenchBERTSpace, NasBenchNLPSpace, benchmark_table

import nni_zerocost
from nni_zerocost.benchmarks.metrics import correlations
from nni_zerocost.benchmarks.study import select_entries
from nni_zerocost.errors import BadInputError, ZeroCostError

SPACES = {"nlp": NasBenchNLPSpace, "bert": NasBenchBERTSpace}
#: the proxy each space is scored with when none is named: the paper's main proxy of the space
DEFAULT_PROXY = {"nlp": "hidden_covariance", "bert": "head_confidence"}
METRICS = ("pearson", "spearman", "kendalltau", "precision_10", "precision_20")


def naslib_metrics(scores: Sequence[float], truth: Sequence[float]) -> Dict[str, float]:
    """NASLib's metric names over the pairs where both values are finite.

    ``precision_k``: share of the top ``k`` architectures by truth that are also in the top
    ``k`` by score (``k`` absolute, as in NASLib).
    """
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    n = int((np.isfinite(s) & np.isfinite(t)).sum())
    base = correlations(s, t)
    out = {"pearson": base["pearson"], "spearman": base["spearman"], "kendalltau": base["kendall_tau"]}
    for k in (10, 20):
        out[f"precision_{k}"] = correlations(s, t, top_k_frac=k / n)["precision_at_k"] if n >= k else math.nan
    out["n"] = base["n"]
    out["n_excluded"] = base["n_excluded"]
    return out


def evaluate(space: str = "nlp", proxy: Optional[str] = None, n: int = 300, seed: int = 0, *,
             proxy_seed: int = 0, corpus: Optional[str] = None, data_dir: Optional[str] = None,
             check_core: bool = False, device: str = "auto") -> Dict[str, Any]:
    """Run the benchmark; returns the figures as a dict (what the CLI prints)."""
    if space not in SPACES:
        raise BadInputError("space", f"unknown space; valid: {', '.join(SPACES)}", repr(space))
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise BadInputError("n", f"must be an integer >= 1, got {n!r}")
    proxy = proxy or DEFAULT_PROXY[space]
    cls = SPACES[space]
    predictor = ZeroCostProxyPredictor(proxy, corpus=corpus, seed=proxy_seed, space=cls.core_space, device=device)
    api = {"data_dir": data_dir} if data_dir else None
    table = benchmark_table(cls.benchmark_name, api)
    entries = select_entries(table.entries, table.benchmark, n, seed)
    graphs = []
    for e in entries:
        g = cls()
        g.set_core_arch(e.arch)
        graphs.append(g)
    truth = [g.query(Metric.VAL_ACCURACY, dataset_api=api) for g in graphs]

    start = time.perf_counter()
    results = predictor.query_results(graphs)
    query_time = (time.perf_counter() - start) / max(1, len(graphs))
    scores = [r.score for r in results]  # NaN where the proxy has no score: excluded, counted

    metrics = naslib_metrics(scores, truth)
    out: Dict[str, Any] = {
        "space": space, "benchmark": table.benchmark.name, "proxy": proxy,
        "n": len(entries),  # architectures drawn and scored; the metrics use the n_scored with a score
        "seed": seed, "proxy_seed": proxy_seed, "device": predictor.device_name,
        **{k: v for k, v in metrics.items() if k != "n"},
        "n_scored": metrics["n"],
        "query_time": query_time,
        "n_flagged": sum(r.flag is not None for r in results),
    }
    if check_core:
        sign = 1.0 if table.benchmark.primary_higher_is_better else -1.0
        core_scores = [
            nni_zerocost.score(cls.core_space, e.arch, [proxy], corpus=corpus, seed=proxy_seed,
                               device=device)[proxy].score
            for e in entries
        ]
        core_truth = [sign * e.truth[table.benchmark.primary] for e in entries]
        core = naslib_metrics(core_scores, core_truth)
        a, b = np.asarray(scores), np.asarray(core_scores)
        same_nan = bool(np.array_equal(np.isnan(a), np.isnan(b)))
        diff = float(np.nanmax(np.abs(a - b))) if np.isfinite(a - b).any() else 0.0
        out["core"] = {**{k: core[k] for k in METRICS + ("n_excluded",)}, "n_scored": core["n"]}
        out["max_abs_score_difference"] = diff if same_nan else math.inf
        out["core_match"] = same_nan and diff == 0.0 and all(
            _close(out[k], core[k]) for k in METRICS
        )
    return out


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= 1e-9


def format_report(r: Dict[str, Any]) -> str:
    lines = [
        f"{r['benchmark']}: proxy {r['proxy']} on {r['n']} architectures (seed {r['seed']}; "
        f"{r['n_excluded']} without a score excluded, {r['n_flagged']} flagged; device {r.get('device', 'cpu')})",
        "  NASLib adapter: " + ", ".join(f"{k}: {r[k]:.4f}" for k in METRICS)
        + f", query_time: {r['query_time']:.4f} s/arch",
    ]
    if "core" in r:
        lines.append("  core directly : " + ", ".join(f"{k}: {r['core'][k]:.4f}" for k in METRICS))
        lines.append(
            f"  identical: {r['core_match']} (largest score difference {r['max_abs_score_difference']:.3g})"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m naslib_ext.driver", description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", choices=sorted(SPACES), default="nlp")
    ap.add_argument("--proxy", default=None,
                    help="proxy name or spec, e.g. hidden_covariance:layer=2 (default: "
                         + ", ".join(f"{k}: {v}" for k, v in DEFAULT_PROXY.items()) + ")")
    ap.add_argument("--n", type=int, default=300, help="number of benchmark architectures")
    ap.add_argument("--seed", type=int, default=0, help="seed of the architecture subset")
    ap.add_argument("--proxy-seed", type=int, default=0, help="seed of the scored models' initialisation")
    ap.add_argument("--corpus", help="PTB-style corpus for the RNN input batch (default: embedded batch)")
    ap.add_argument("--data-dir", help="folder holding nasbench_nlp/ etc. (default: $NNI_ZEROCOST_DATA or ../shared/data)")
    ap.add_argument("--check-core", action="store_true",
                    help="also score with the core directly and compare (scores every architecture twice)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--device", default="auto", help="auto (default: CUDA when available), cpu, cuda or cuda:N")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: a second thread barely speeds up the small "
                         "dependent products of a proxy and, on a busy machine, makes them several times slower)")
    args = ap.parse_args(argv)
    try:
        if args.threads < 1:
            raise BadInputError("threads", f"must be an integer >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
        r = evaluate(args.space, args.proxy, args.n, args.seed, proxy_seed=args.proxy_seed, corpus=args.corpus,
                     data_dir=args.data_dir, check_core=args.check_core, device=args.device)
    except ZeroCostError as e:
        print(f"{ap.prog}: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(r, indent=2) if args.json else format_report(r))
    return 0 if r.get("core_match", True) else 1


if __name__ == "__main__":
    sys.exit(main())
