"""``nni-zerocost benchmark NAME``: correlate proxies with a benchmark's ground truth."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from .options import (add_data_dir_flag, add_progress_flag, add_request_flags, add_store_flags, add_where_flags,
                      job_fields)

NAME = "benchmark"
#: what ``--report`` writes, by suffix
REPORT_FORMATS = {".md": "Markdown", ".csv": "CSV"}


def add_parser(sub):
    from .parser import Help

    p = sub.add_parser(
        NAME, help="correlate proxies with a benchmark's ground truth", formatter_class=Help,
        description="Correlations are signed: each proxy is oriented so that higher = better, and "
                    "correlated with the benchmark's ground truth as published. For nasbench-nlp the "
                    "truth is PTB test loss (lower is better), so a good proxy has NEGATIVE tau/rho; "
                    "for nasbench-bert it is GLUE (higher is better), so a good proxy is positive.")
    p.add_argument("name", help="benchmark name (see 'nni-zerocost list benchmarks')")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--report", default=None, metavar="FILE.md|FILE.csv",
                   help="also write the table as Markdown (.md) or CSV (.csv); other suffixes are refused")
    p.add_argument("--plot", default=None, metavar="DIR", help="also write scatter/rank/flagged figures (PNG+SVG) to DIR")
    p.add_argument("--all-cells", action="store_true",
                   help="nasbench-nlp: every cell with 3 runs, diverged ones included; adds the all-cells "
                        "Kendall tau-b (median run loss, diverged run = worst, missing score = worst)")
    p.add_argument("--rank-average", action="append", default=[], metavar="A+B",
                   help="also report the label-free rank average of proxy specs A and B (each also given "
                        "with --proxy; ranks over the architectures benchmarked; repeatable)")
    p.add_argument("--limit", type=int, default=None, help="score a reproducible random subset of N architectures")
    add_data_dir_flag(p)
    add_request_flags(p)
    add_store_flags(p)
    add_where_flags(p)
    add_progress_flag(p)
    return p


def run(args) -> int:
    from ..api import benchmark
    from ..job import check_output_file, check_output_folder

    report = check_output_file("report", args.report, REPORT_FORMATS)
    check_output_folder("plot", args.plot)
    result = benchmark(args.name, args.proxy, rank_averages=args.rank_average, progress=not args.no_progress,
                       **job_fields(args))
    if args.plot:
        from ..plots import plot_study

        bench, entries = result.benchmark, result.entries
        written = plot_study(bench.name, bench.primary, [e.truth[bench.primary] for e in entries], result.scores,
                             result.flags, args.plot, [e.group for e in entries], bench.primary_higher_is_better,
                             bench.group_by or "groups")
        print(f"wrote {len(written):,} figure{'s' if len(written) != 1 else ''} to {args.plot}", file=sys.stderr)
    if report is not None:
        write_report(result.table, report)
    print(json.dumps(clean(result.table), indent=2) if args.json else result.format())
    return 0


def write_report(result, path: Path) -> None:
    """The table as Markdown or CSV (by suffix, checked before any work), saying what the
    correlations are over, with the same counts as the printed table and the figures."""
    path.parent.mkdir(parents=True, exist_ok=True)
    over = "runs" if result.get("n_runs") else "architectures"
    rows = [(n, r["kendall_tau"], r["spearman"], r["pearson"], r.get("per_arch", r)["kendall_tau"],
             r["seconds_per_arch"], r["n_flagged"], r.get("n_excluded", 0)) for n, r in result["proxies"].items()]
    if path.suffix.lower() == ".csv":
        import csv

        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["proxy", "over", "kendall_tau", "spearman", "pearson", "kendall_tau_per_arch",
                        "seconds_per_arch", "n_flagged", "n_no_score"])
            w.writerows((n, over, *v) for n, *v in rows)
        return
    n_over = result["n_runs"] if over == "runs" else result["n_archs"]
    lines = [f"Signed correlations (higher = better) of each proxy with {result['ground_truth']} on "
             f"{result['benchmark']}: Kendall τ, Spearman ρ and Pearson r over {n_over} {over}"
             + (" (each training run paired with its architecture's score, the paper's protocol); "
                f"τ/arch over the {result['n_archs']} architectures" if over == "runs" else "")
             + ". Flagged: scored with a flagged fallback value; no score: left out of the correlations.", "",
             "| proxy | Kendall τ | Spearman ρ | Pearson r | τ/arch | s/arch | flagged | no score |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for n, *v in rows:
        lines.append(f"| `{n}` | " + " | ".join(
            "nan" if (isinstance(x, float) and math.isnan(x)) else (f"{x:.3f}" if isinstance(x, float) else str(x))
            for x in v) + " |")
    path.write_text("\n".join(lines) + "\n")


def clean(obj):
    """JSON-safe copy: NaN -> None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
