"""What scoring in bfloat16 does to the rankings: Kendall tau between the float32 and bfloat16
scores of every decoder proxy on the first N architectures of the LTS benchmark (GPT-2 decoders
on WikiText-103), and how far the values move.

    python examples/bf16_ranking.py --limit 60 [--out scores.jsonl]

Each architecture is scored twice on the gpt2 space (``nz.score(..., dtype="bfloat16")``), same
seed, same batch; the parameter counts are left out (no precision involved).  Prints one Markdown
row per proxy: tau (scipy's tau-b), the median and largest relative change of a score.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
from scipy import stats

import nni_zerocost as nz
from nni_zerocost.benchmarks.base import get_benchmark
from nni_zerocost.data import data_dir


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--limit", type=int, default=60, help="the first N architectures of the benchmark")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=None, help="write each architecture's scores here (JSON lines)")
    p.add_argument("--proxy", action="append", default=None, help="only these proxies (default: every one)")
    args = p.parse_args()
    entries = get_benchmark("lts-gpt2-wt103").load(data_dir(args.data_dir))[:args.limit]
    proxies = args.proxy or [x for x in nz.list_proxies("gpt2") if x not in ("params", "nonembedding_params")]
    scores = {dt: {x: [] for x in proxies} for dt in ("float32", "bfloat16")}
    seconds = {"float32": 0.0, "bfloat16": 0.0}
    out = open(args.out, "w") if args.out else None
    for e in entries:
        row = {"arch_id": e.arch_id}
        for dt in ("float32", "bfloat16"):
            t = time.perf_counter()
            res = nz.score("gpt2", e.arch, proxies, seed=0, **({} if dt == "float32" else {"dtype": dt}))
            seconds[dt] += time.perf_counter() - t
            for x in proxies:
                value = res[x].score if res[x].ok else float("nan")
                scores[dt][x].append(value)
                row[f"{x}/{dt}"] = value
        if out:
            out.write(json.dumps(row) + "\n")
            out.flush()
    print(f"{len(entries)} architectures of lts-gpt2-wt103; scoring seconds: float32 {seconds['float32']:.0f}, "
          f"bfloat16 {seconds['bfloat16']:.0f}\n")
    print("| proxy | Kendall tau fp32 vs bf16 | median rel. change | max rel. change |")
    print("| --- | --- | --- | --- |")
    for x in proxies:
        a, b = np.array(scores["float32"][x]), np.array(scores["bfloat16"][x])
        ok = np.isfinite(a) & np.isfinite(b)
        tau = stats.kendalltau(a[ok], b[ok]).statistic if ok.sum() > 1 else math.nan
        rel = np.abs(b[ok] - a[ok]) / np.maximum(np.abs(a[ok]), 1e-300)
        missing = "" if ok.all() else f" ({int((~ok).sum())} not finite)"
        print(f"| {x} | {tau:.3f}{missing} | {np.median(rel):.1e} | {rel.max():.1e} |")


if __name__ == "__main__":
    main()
