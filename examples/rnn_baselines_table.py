"""Every RNN proxy on a random subset of NAS-Bench-NLP: rank correlation with PTB test loss,
and (where the paper published per-run scores) agreement with the published values.

Paper protocol: PTB test split batchified into 50 columns, first 70 rows; ``init="compat"``
(the official model's weights for torch seed 0), seed 0.  All proxies of one cell share one
context, so each pass runs once per cell.

    python examples/rnn_baselines_table.py --n 300 --workers 2 --out results/rnn_table.jsonl
    python examples/rnn_baselines_table.py --n 100 --published-only   # + reproduction check

Correlations are signed so that positive means "the proxy works in its documented direction":
the normalised score (higher is better) against minus the mean test loss.  ``--out`` keeps one
JSON line per cell; an interrupted run resumes from it.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPECS = [
    "params",
    "hidden_covariance:layer=1",
    "hidden_covariance:layer=2",
    "hidden_covariance:layer=3",
    "activation_distance",
    "jacobian_covariance",
    "jacobian_covariance:noise=large",
    "jacobian_covariance:noise=more",
    "jacobian_cosine",
    "jacobian_cosine:noise=large",
    "jacobian_cosine:noise=more",
    "synaptic_saliency",
    "synaptic_saliency:params=paper",
    "hidden_synaptic_saliency",
    "hidden_synaptic_saliency:loss=lm",
    "grad_norm",
    "grad_norm:loss=sum",
    "snip",
    "grasp",
    "fisher",
    "fisher:loss=sum",
]

#: published column -> (our spec, sign relating ours to the published value)
PUBLISHED = {
    "tfn_activation_distance": ("activation_distance", 1),
    "tfn_jacobian_covariance": ("jacobian_covariance", 1),
    "tfn_jacobian_cosine": ("jacobian_cosine", 1),
    "tfn_large_noise_jacobian": ("jacobian_covariance:noise=large", -1),
    "tfn_large_noise_jacobian_cosine": ("jacobian_cosine:noise=large", 1),
    "tfn_more_noised_jacobian": ("jacobian_covariance:noise=more", -1),
    "tfn_more_noised_jacobian_cosine": ("jacobian_cosine:noise=more", 1),
    "tfn_synaptic_saliency": ("synaptic_saliency:params=paper", 1),
    "tfn_hidden_synaptic_saliency": ("hidden_synaptic_saliency", 1),
    "tfn_layer_1_hidden_covariance": ("hidden_covariance:layer=1", 1),
}
#: diagnostic, not a proxy: what the published "jacobian covariance" column actually holds
EMBEDDING_TIME_SCORE = "diag:embedding_time_correlation"

_STATE = {}


def _init(data_dir: str):
    import torch

    torch.set_num_threads(1)
    from nni_zerocost.data import corpus_batch

    _STATE["batch"] = corpus_batch(Path(data_dir) / "ptb", 50, 70)


def score_cell(job):
    """The given specs on one shared context; returns one JSON-able row."""
    from nni_zerocost import make_plan
    from nni_zerocost.proxies.base import compute, get_proxy
    from nni_zerocost.proxies.linalg import correlation_eigen_score
    from nni_zerocost.spaces import get_space

    arch_id, recipe, specs = job
    start = time.perf_counter()
    row = {"arch_id": arch_id, "raw": {}, "flag": {}, "seconds": {}}
    with get_space("rnn").context(recipe, _STATE["batch"], seed=0, init="compat") as ctx:
        for req in make_plan("rnn", specs, batch=_STATE["batch"]).requests:
            spec = req.spec
            r = compute(get_proxy(req.name), ctx, **req.options)
            row["raw"][spec] = r.score if r.ok else None  # normalised: higher is better
            row["flag"][spec] = r.flag
            row["seconds"][spec] = round(r.seconds, 3)
        emb = ctx.layer_input().numpy()
        row["raw"][EMBEDDING_TIME_SCORE] = correlation_eigen_score(emb.reshape(emb.shape[0], -1).T)
    row["total_seconds"] = round(time.perf_counter() - start, 2)
    return row


def _merge(rows, row):
    old = rows.setdefault(row["arch_id"], {"arch_id": row["arch_id"], "raw": {}, "flag": {}, "seconds": {}})
    for key in ("raw", "flag", "seconds"):
        old[key].update(row[key])


def _orient(spec: str, value):
    """Back from the normalised score to the proxy's raw value."""
    from nni_zerocost import make_plan

    if value is None or spec.startswith("diag:"):
        return value
    return value if make_plan("rnn", spec).requests[0].higher_is_better else -value


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="shared data folder (default: $NNI_ZEROCOST_DATA or ../shared/data)")
    ap.add_argument("--n", type=int, default=300, help="number of random cells (default 300)")
    ap.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    ap.add_argument("--published-only", action="store_true", help="sample only cells with published scores")
    ap.add_argument("--specs", nargs="*", default=SPECS, help="proxy specs (default: every RNN proxy)")
    ap.add_argument("--workers", type=int, default=1, help="processes (one thread each)")
    ap.add_argument("--out", default=None, help="JSONL of per-cell scores (resumable)")
    ap.add_argument("--report-only", action="store_true",
                    help="compute nothing: report on the sampled cells that --out already covers")
    args = ap.parse_args(argv)

    from nni_zerocost.benchmarks.base import get_benchmark
    from nni_zerocost.benchmarks.metrics import correlations
    from nni_zerocost.data import data_dir

    root = data_dir(args.data_dir)
    entries = [e for e in get_benchmark("nasbench-nlp").load(root) if e.truth["test_loss"] is not None]
    if args.published_only:
        entries = [e for e in entries if e.extra.get("published")]
    rng = np.random.default_rng(args.seed)
    # a permutation prefix: a smaller --n gives the first cells of a larger one (resumable runs)
    chosen = [entries[i] for i in rng.permutation(len(entries))[: args.n]]
    by_id = {e.arch_id: e for e in chosen}

    rows = {}  # arch_id -> merged row; later lines of --out add specs to earlier ones
    if args.out and Path(args.out).is_file():
        for line in Path(args.out).read_text().splitlines():
            r = json.loads(line)
            if r["arch_id"] in by_id:
                _merge(rows, r)
    if args.report_only:
        chosen = [e for e in chosen if all(s in rows.get(e.arch_id, {}).get("raw", {}) for s in args.specs)]
    todo = []
    for e in chosen:
        missing = [s for s in args.specs if s not in rows.get(e.arch_id, {}).get("raw", {})]
        if missing:
            todo.append((e.arch_id, e.arch.to_recipe(), missing))
    print(f"{len(chosen)} cells ({len(chosen) - len(todo)} fully cached), {len(args.specs)} specs, "
          f"{args.workers} worker(s)", file=sys.stderr)
    sink = open(args.out, "a") if args.out else None
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    pool = mp.get_context("spawn").Pool(args.workers, _init, (str(root),)) if args.workers > 1 else None
    if pool is None:
        _init(str(root))
    results = pool.imap_unordered(score_cell, todo) if pool else map(score_cell, todo)
    for k, row in enumerate(results, start=1):
        _merge(rows, row)
        if sink:
            sink.write(json.dumps(row) + "\n")
            sink.flush()
        print(f"  {k}/{len(todo)} arch {row['arch_id']}: {row['total_seconds']:.1f}s "
              f"(elapsed {time.time() - t0:.0f}s)", file=sys.stderr)
    if pool:
        pool.close()

    ids = [e.arch_id for e in chosen]
    truth = [-by_id[i].truth["test_loss"] for i in ids]
    print(f"\nRank correlation with PTB test loss ({len(ids)} cells with a finite result, sampling seed "
          f"{args.seed}; positive = works in the documented direction)")
    print("(sec/cell: this spec's time on the shared context; the first spec needing a pass pays for it)")
    print(f"{'proxy':36s} {'n':>4s} {'flagged':>7s} {'kendall':>8s} {'spearman':>8s} {'sec/cell':>8s}")
    for spec in args.specs:
        scores = [rows[i]["raw"][spec] for i in ids]
        scores = [math.nan if s is None else s for s in scores]
        c = correlations(scores, truth)
        n_flag = sum(1 for i in ids if rows[i]["flag"][spec])
        sec = np.mean([rows[i]["seconds"][spec] for i in ids])
        print(f"{spec:36s} {c['n']:4d} {n_flag:7d} {c['kendall_tau']:8.3f} {c['spearman']:8.3f} {sec:8.2f}")

    pub = [i for i in ids if by_id[i].extra.get("published")]
    if pub:
        print(f"\nReproduction of the published scores ({len(pub)} cells): Spearman of ours vs published, "
              f"and median relative difference (published sign convention)")
        cols = list(PUBLISHED.items()) + [("tfn_jacobian_covariance", (EMBEDDING_TIME_SCORE, 1))]
        for col, (spec, sign) in cols:
            if spec not in rows[pub[0]]["raw"]:
                continue
            ours = np.array([np.nan if (v := _orient(spec, rows[i]["raw"][spec])) is None else sign * v for i in pub])
            theirs = np.array([by_id[i].extra["published"].get(col, np.nan) for i in pub])
            keep = np.isfinite(ours) & np.isfinite(theirs)
            rho = stats.spearmanr(ours[keep], theirs[keep]).statistic if keep.sum() > 2 else math.nan
            rel = np.median(np.abs(ours[keep] - theirs[keep]) / np.maximum(np.abs(theirs[keep]), 1e-300))
            label = f"{col} vs {'-' if sign < 0 else ''}{spec}"
            print(f"  {label:75s} n={keep.sum():3d} spearman={rho:7.4f} median_rel_diff={rel:.2e}")


if __name__ == "__main__":
    main()
