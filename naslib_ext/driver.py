"""Predictor benchmark in NASLib's terms, on the benchmark of any space.

    python -m naslib_ext.driver --space nlp --proxy hidden_covariance --n 300 --seed 0 --workers 2

``--space`` takes NASLib's name of a space (``get_type()``; every registered space with a
benchmark); without ``--proxy`` the space's own default is used (``SearchSpace.default_proxy``).

Draws ``n`` benchmark architectures with a finite result (``seed``; the same subset the core's
study picks), wraps them as NASLib graphs, asks :class:`ZeroCostProxyPredictor` for their
scores and the graphs' ``query(Metric.VAL_ACCURACY)`` for the truth (NASLib's convention:
higher is better, ``100 - loss`` on NB-NLP), and reports NASLib's metric names: pearson,
spearman, kendalltau, precision_10, precision_20 and query_time (wall seconds per architecture).

Metrics are computed with scipy (``nni_zerocost.benchmarks.metrics.correlations``), signed
(positive = the proxy ranks good architectures high), architectures without a score excluded
and counted (``n`` drawn = ``n_scored`` + ``n_excluded``).  NASLib's own
``PredictorEvaluator.compare`` is not used: with scikit-learn >= 1.6 it silently returns NaN for
every metric, and it reports |pearson|.

The predictor scores through the core's runner (``--workers`` processes, or ``auto``), with
the core's thread policy (``--threads`` pins it; docs/throughput.md).  With ``--check-core`` it scores into a result store, and the core then runs
its own plan over the table's architectures against that store: every result the adapter's
architectures share with the core's is read back, not recomputed, so the check costs no model
work unless the two disagree on an architecture or a setting (then the core computes it, and
``core_computed`` says how many).  Both sets of figures are printed with their largest
difference; the command exits with status 1 when they differ.  :func:`evaluate` returns the
figures as a dict.

The thread policy matters here: with torch's default of one thread per core, each of a cell's
small matrix products waited for a second thread on a busy 2-core machine, and ``query_time``
was 2.9 s/arch instead of 0.43 s/arch with one thread (``--n 30``; the same cells, the same
scores).  The policy uses only the idle cores.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

from .predictors import ZeroCostProxyPredictor
from .search_spaces import Metric, benchmark_table, naslib_space, naslib_types

from nni_zerocost.benchmarks.metrics import correlations
from nni_zerocost.benchmarks.study import select_entries
from nni_zerocost.errors import BadInputError, ZeroCostError
from nni_zerocost.data import resolve_corpus
from nni_zerocost.runner import run
from nni_zerocost.spaces import get_space
from nni_zerocost.store import ResultStore

METRICS = ("pearson", "spearman", "kendalltau", "precision_10", "precision_20")


def driver_spaces() -> Dict[str, str]:
    """``{NASLib name: core space}`` of the spaces with a benchmark to drive."""
    return {t: s for t, s in naslib_types().items() if get_space(s).naslib_form().benchmark}


def default_proxy(space: str) -> str:
    """The core space's default proxy (else its first proxy)."""
    from nni_zerocost.proxies.base import list_proxies

    return get_space(space).default_proxy or list_proxies(space)[0]


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
             check_core: bool = False, device: str = "auto", workers: int = 1) -> Dict[str, Any]:
    """Run the benchmark; returns the figures as a dict (what the CLI prints)."""
    spaces = driver_spaces()
    if space not in spaces:
        raise BadInputError("space", f"unknown space; valid: {', '.join(spaces)}", repr(space))
    from nni_zerocost.job import check_counts

    check_counts(n=n)
    core_space = spaces[space]
    proxy = proxy or default_proxy(core_space)
    with tempfile.TemporaryDirectory(prefix="naslib-driver-") as tmp:
        store = ResultStore(Path(tmp) / "store.jsonl") if check_core else None
        predictor = ZeroCostProxyPredictor(proxy, corpus=corpus, seed=proxy_seed, space=core_space, device=device,
                                           workers=workers, store=store)
        api = {"data_dir": data_dir} if data_dir else None
        cls = naslib_space(core_space)
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
            "seed": seed, "proxy_seed": proxy_seed, "device": predictor.device_name, "workers": workers,
            **{k: v for k, v in metrics.items() if k != "n"},
            "n_scored": metrics["n"],
            "query_time": query_time,
            "n_flagged": sum(r.flag is not None for r in results),
        }
        if check_core:
            out.update(_check_core(core_space, proxy, proxy_seed, corpus, device, entries, table, store, scores, metrics))
    return out


def _check_core(core_space, proxy, proxy_seed, corpus, device, entries, table, store, scores,
                adapter) -> Dict[str, Any]:
    """The core's own plan over the table's architectures, reading the adapter's store."""
    from nni_zerocost.job import ScoringJob, check_job

    job = ScoringJob.of([proxy], core_space, seed=proxy_seed, corpus=corpus, device=device, workers=1,
                        store=str(store.path), architectures=tuple((e.arch_id, e.arch) for e in entries))
    records = list(run(check_job(job), progress=False))
    core_scores = [np.nan if r.results[proxy] is None else r.results[proxy].score for r in records]
    sign = 1.0 if table.benchmark.primary_higher_is_better else -1.0
    core = naslib_metrics(core_scores, [sign * e.truth[table.benchmark.primary] for e in entries])
    a, b = np.asarray(scores, dtype=np.float64), np.asarray(core_scores, dtype=np.float64)
    same_nan = bool(np.array_equal(np.isnan(a), np.isnan(b)))
    diff = float(np.nanmax(np.abs(a - b))) if np.isfinite(a - b).any() else 0.0
    return {
        "core": {**{k: core[k] for k in METRICS + ("n_excluded",)}, "n_scored": core["n"]},
        "core_computed": sum(r.computed for r in records),
        "max_abs_score_difference": diff if same_nan else math.inf,
        "core_match": same_nan and diff == 0.0 and all(_close(adapter[k], core[k]) for k in METRICS),
    }


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
        lines.append(f"  identical: {r['core_match']} (largest score difference {r['max_abs_score_difference']:.3g}; "
                     f"the core's plan computed {r['core_computed']} result(s) the adapter's store did not hold)")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m naslib_ext.driver", description=__doc__.split("\n\n")[0])
    spaces = driver_spaces()
    ap.add_argument("--space", choices=sorted(spaces), default="nlp", help="NASLib's name of the space")
    ap.add_argument("--proxy", default=None,
                    help="proxy name or spec, e.g. hidden_covariance:layer=2 (default: "
                         + ", ".join(f"{k}: {default_proxy(v)}" for k, v in spaces.items()) + ")")
    ap.add_argument("--n", type=int, default=300, help="number of benchmark architectures")
    ap.add_argument("--seed", type=int, default=0, help="seed of the architecture subset")
    ap.add_argument("--proxy-seed", type=int, default=0, help="seed of the scored models' initialisation")
    ap.add_argument("--corpus", help="input corpus as for 'nni-zerocost score --corpus', e.g. ptb "
                                     "(default: the space's embedded batch)")
    ap.add_argument("--data-dir", help="folder holding nasbench_nlp/ etc. (default: $NNI_ZEROCOST_DATA or ../shared/data)")
    ap.add_argument("--check-core", action="store_true",
                    help="also run the core's own plan on the same architectures and compare (through a "
                         "result store: no second scoring)")
    ap.add_argument("--workers", default=1, metavar="N|auto",
                    help="scoring processes (the core's runner; auto: one per usable core, at most one per 8 "
                         "architectures)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--device", default="auto", help="auto (default: CUDA when available), cpu, cuda or cuda:N")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch/BLAS threads per scoring process (default: the core's policy, the idle cores "
                         "shared out; docs/throughput.md)")
    args = ap.parse_args(argv)
    try:
        from nni_zerocost.job import check_counts
        from nni_zerocost.threads import pinned_for_run

        if args.threads is not None:
            check_counts(threads=args.threads)
        with pinned_for_run(args.threads):  # this process and its workers
            r = evaluate(args.space, args.proxy, args.n, args.seed, proxy_seed=args.proxy_seed,
                         corpus=resolve_corpus(args.corpus, args.data_dir), data_dir=args.data_dir,
                         check_core=args.check_core, device=args.device, workers=args.workers)
    except ZeroCostError as e:
        print(f"{ap.prog}: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(r, indent=2) if args.json else format_report(r))
    return 0 if r.get("core_match", True) else 1


if __name__ == "__main__":
    sys.exit(main())
