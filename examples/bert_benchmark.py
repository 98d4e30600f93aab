"""Every BERT proxy on the 500-architecture BERT benchmark, in both build modes.

    python examples/bert_benchmark.py                 # all 500, declared + as_trained, 2 workers
    python examples/bert_benchmark.py --limit 20      # a quick look
    python examples/bert_benchmark.py --from results/bert_benchmark.jsonl   # re-analyse only

Prints, per build mode and proxy: Kendall tau / Spearman / Pearson with GLUE over all
architectures, Kendall tau inside each (hidden size, layers) group, the tau of the authors'
published scores for the same proxy, and the seconds per architecture.  Timing: "pass" is the
shared forward+backward pass (paid once per architecture by the first gradient proxy, and giving
the forward statistics too); a proxy's own seconds come on top of it.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nni_zerocost.benchmarks.base import get_benchmark  # noqa: E402
from nni_zerocost.benchmarks.metrics import correlations  # noqa: E402
from nni_zerocost.spaces.bert.benchmark import PUBLISHED_COLUMNS  # noqa: E402
from nni_zerocost.data import data_dir  # noqa: E402

PROXIES = [
    "params", "nonembedding_params",
    "head_importance", "head_importance:normalize=true",
    "synaptic_diversity", "synaptic_diversity:normalize=true",
    "synaptic_saliency", "synaptic_saliency:normalize=true",
    "jacobian_covariance", "jacobian_covariance:form=paper",
    "head_confidence", "head_confidence:normalize=true", "head_confidence:axis=paper",
    "head_softmax_confidence", "head_softmax_confidence:normalize=true", "head_softmax_confidence:axis=paper",
    "activation_distance", "activation_distance:normalize=true", "activation_distance:form=paper",
]
MODES = {"declared": False, "as_trained": True}
#: the paper's |tau| vs GLUE (N = 500), for the proxies it reported in the text
PAPER_TAU = {"head_confidence": 0.478, "params": 0.454, "head_softmax_confidence": 0.216, "head_importance": 0.164}


def _work(job):
    """Score a list of (arch_id, config dict) in one build mode; runs in a worker process."""
    import torch

    from nni_zerocost import make_plan
    from nni_zerocost.proxies.base import compute, get_proxy
    from nni_zerocost.spaces import get_space

    torch.set_num_threads(job["threads"])
    space = get_space("bert")
    batch = space.default_batch(job["seed"])
    specs = [(r.spec, r.name, r.options) for r in make_plan("bert", job["proxies"], batch=batch).requests]
    out = []
    for arch_id, arch in job["archs"]:
        t0, c0 = time.perf_counter(), time.process_time()
        with space.context(arch, batch, seed=job["seed"], as_trained=job["as_trained"], loss=job["loss"]) as ctx:
            ctx.model()
            t1 = time.perf_counter()
            ctx.gradients()
            t2 = time.perf_counter()
            rec = {"arch_id": arch_id, "mode": job["mode"], "raw": {}, "flag": {}, "seconds": {"build": t1 - t0, "pass": t2 - t1}}
            for spec, name, opts in specs:
                r = compute(get_proxy(name), ctx, **opts)
                rec["raw"][spec] = r.raw if math.isfinite(r.raw) else None
                rec["flag"][spec] = r.flag
                rec["seconds"][spec] = r.seconds
        rec["seconds"]["total"] = time.perf_counter() - t0
        rec["seconds"]["cpu"] = time.process_time() - c0  # this worker's CPU time: robust to a busy machine
        out.append(rec)
    return out


def run(entries, args):
    jobs = []
    for mode in args.modes:
        archs = [(e.arch_id, e.arch.to_dict()) for e in entries]
        for w in range(args.workers):
            jobs.append({"mode": mode, "as_trained": MODES[mode], "archs": archs[w::args.workers], "seed": args.seed,
                         "proxies": PROXIES, "threads": args.threads, "loss": args.loss})
    # small jobs so progress is visible and the two workers stay balanced
    small = []
    for job in jobs:
        for i in range(0, len(job["archs"]), 10):
            small.append({**job, "archs": job["archs"][i:i + 10]})
    if args.threads == 1:  # numpy/scipy BLAS in the workers too: no oversubscription
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
    results, start = [], time.perf_counter()
    out = open(args.out, "w") if args.out else None
    with mp.get_context("spawn").Pool(args.workers) as pool:
        for done in pool.imap_unordered(_work, small):
            results.extend(done)
            if out:
                for rec in done:
                    out.write(json.dumps(rec) + "\n")
                out.flush()
            print(f"  {len(results)}/{len(entries) * len(args.modes)} scored, {time.perf_counter() - start:.0f}s",
                  file=sys.stderr, flush=True)
    if out:
        out.close()
    return results, time.perf_counter() - start


def report(entries, results, wall=None):
    by_id = {e.arch_id: e for e in entries}
    groups = sorted({e.group for e in entries})
    print(f"N = {len(entries)} architectures; truth: mean GLUE (8 tasks); tau = Kendall, rho = Spearman, r = Pearson")
    glue_all = np.array([by_id[i].truth["glue"] for i in by_id])
    base = {"layers x hidden": [e.group[0] * e.group[1] for e in entries], "layers": [e.group[1] for e in entries]}
    for name, vals in base.items():
        print(f"  baseline {name:<16s} tau {stats.kendalltau(vals, glue_all).statistic:+.3f}")
    for mode in MODES:
        recs = [r for r in results if r["mode"] == mode]
        if not recs:
            continue
        ids = [r["arch_id"] for r in recs]
        glue = [by_id[i].truth["glue"] for i in ids]
        grp = [by_id[i].group for i in ids]
        print(f"\n=== build mode: {mode} ({len(recs)} architectures) ===")
        head = (f"{'proxy':<44s}{'tau':>7s}{'rho':>7s}{'r':>7s}{'flag':>5s} | "
                + "".join(f"{f'{h}/{l}':>8s}" for h, l in groups) + f"{'|in|':>6s} | {'pub.tau':>7s}{'paper':>6s} | {'s/arch':>7s}")
        print(head)
        print("-" * len(head))
        for spec in PROXIES:
            vals = [r["raw"].get(spec) for r in recs]
            x = np.array([np.nan if v is None else v for v in vals], dtype=float)
            c = correlations(x, glue)
            inside = []
            for g in groups:
                sel = [i for i, gg in enumerate(grp) if gg == g]
                inside.append(correlations(x[sel], [glue[i] for i in sel])["kendall_tau"])
            n_flag = sum(1 for r in recs if r["flag"].get(spec))
            col = PUBLISHED_COLUMNS.get(spec)
            pub = math.nan
            if col is not None:
                pv = [by_id[i].extra.get("published", {}).get(col, math.nan) for i in ids]
                pub = correlations(pv, glue)["kendall_tau"]
            name = spec.split(":")[0]
            paper = PAPER_TAU.get(name) if (spec == name or spec.endswith("axis=paper")) and spec in PUBLISHED_COLUMNS else None
            secs = np.mean([r["seconds"].get(spec, 0.0) for r in recs])
            in_mean = np.nanmean(np.abs(inside)) if not all(math.isnan(v) for v in inside) else math.nan
            print(f"{spec:<44s}{c['kendall_tau']:+7.3f}{c['spearman']:+7.3f}{c['pearson']:+7.3f}{n_flag:5d} | "
                  + "".join(f"{v:+8.3f}" for v in inside) + f"{in_mean:6.3f} | {pub:+7.3f}"
                  + (f"{paper:6.3f}" if paper else f"{'':6s}") + f" | {secs:7.4f}")
        sec = defaultdict(list)
        for r in recs:
            for k in ("build", "pass", "total", "cpu"):
                sec[k].append(r["seconds"].get(k, math.nan))
        print(f"seconds per architecture (worker wall time): build {np.mean(sec['build']):.3f}, shared pass "
              f"{np.mean(sec['pass']):.3f}, all proxies incl. pass {np.mean(sec['total']):.3f}; "
              f"CPU time {np.mean(sec['cpu']):.3f}")
    if wall is not None:
        print(f"\nwall time for everything: {wall / 60:.1f} min")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--limit", type=int, default=None, help="score only the first N architectures")
    p.add_argument("--modes", default="declared,as_trained")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--loss", default="rtd", choices=["rtd", "mlm", "sum"])
    p.add_argument("--out", default=None, help="write per-architecture results here (JSON lines)")
    p.add_argument("--from", dest="from_file", default=None, help="analyse an earlier --out file instead of scoring")
    args = p.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in args.modes:
        if m not in MODES:
            p.error(f"unknown mode {m!r}; valid: {', '.join(MODES)}")
    entries = get_benchmark("nasbench-bert").load(data_dir(args.data_dir))
    if args.limit:
        entries = entries[: args.limit]
    if args.from_file:
        with open(args.from_file) as f:
            results = [json.loads(line) for line in f if line.strip()]
        wanted = {e.arch_id for e in entries}
        report(entries, [r for r in results if r["arch_id"] in wanted])
        return
    results, wall = run(entries, args)
    report(entries, results, wall)


if __name__ == "__main__":
    main()
