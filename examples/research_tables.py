"""Markdown tables of the research proxies (docs/research.md) from `nni-zerocost benchmark ... --json` outputs.

    python examples/research_tables.py rnn.json [bert.json ...]

Prints, for each JSON file, one row per proxy (and per trivial baseline): per-run / overall
Kendall tau and Spearman rho, the all-cells tau-b (nasbench-nlp with --all-cells), the
within-group taus and their mean, the mean tau within parameter-count deciles, and the seconds
per architecture; then a second table with the tau of each decile.  Nothing is computed here but
formatting: every number comes from the CLI's JSON.
"""
from __future__ import annotations

import json
import math
import sys


def f(x, nd=3):
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.{nd}f}"


def table(result: dict) -> str:
    groups = sorted({g for r in result["proxies"].values() for g in r.get("within_groups", {})})
    head = ["proxy", "τ" + (" per run" if result.get("n_runs") and result["benchmark"] == "nasbench-nlp" else ""), "ρ"]
    if result.get("all_cells"):
        head.append("all-cells τ-b")
    if groups:
        head += [f"τ {g}" for g in groups] + ["within mean"]
    deciles = any("within_size_bins_mean_tau" in r for r in result["proxies"].values())
    if deciles:
        head.append("decile mean")
    head.append("s/arch")
    lines = [f"{result['benchmark']}: {result['n_archs']} architectures", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = [(n, r, False) for n, r in result["proxies"].items()]
    rows += [(f"*{n}* (baseline)", r, True) for n, r in result.get("trivial_baselines", {}).items()]
    for name, r, base in rows:
        cells = [name, f(r["kendall_tau"]), f(r["spearman"])]
        if result.get("all_cells"):
            cells.append(f(r.get("all_cells", {}).get("kendall_tau_b")))
        if groups:
            cells += [f(r.get("within_groups", {}).get(g, {}).get("kendall_tau")) for g in groups]
            cells.append(f(r.get("within_groups_mean_tau")))
        if deciles:
            cells.append(f(r.get("within_size_bins_mean_tau")))
        cells.append("0" if base else f"{r.get('seconds_per_arch', float('nan')):.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    if deciles:
        bins = result.get("size_bins", {})
        lines += ["", f"τ within each decile of {result.get('size_measure', 'parameters')} (" + ", ".join(
            f"{k}: {lo / 1e6:.3g}–{hi / 1e6:.3g}M" for k, (lo, hi) in bins.items()) + ")", "",
                  "| proxy | " + " | ".join(bins) + " |", "|---|" + "---:|" * len(bins)]
        for name, r, _ in rows:
            cells = [f(r.get("within_size_bins", {}).get(k, {}).get("kendall_tau")) for k in bins]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    for path in sys.argv[1:]:
        with open(path) as fh:
            print(table(json.load(fh)))
            print()
