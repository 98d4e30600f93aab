"""Reproduce Serianni & Kalita's published hidden-covariance scores (paper protocol).

Paper protocol: PTB test split batchified into 50 columns, first 70 steps, eval mode, torch
seed 0 with the official constructor's random stream (``init="compat"``).  Compares our scores
with the published per-run ``tfn_layer_1_hidden_covariance`` on N random cells.

    python examples/reproduce_paper_rnn.py --data-dir ../shared/data --n 200 [--layer 1]
"""
import argparse

import numpy as np
from scipy import stats

from nni_zerocost.benchmarks.base import get_benchmark
from nni_zerocost.data import data_dir
from nni_zerocost import make_plan
from nni_zerocost.runner import score_many
from nni_zerocost.store import ResultStore, default_store_path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0, help="subset seed (weights always use seed 0, as the paper)")
    ap.add_argument("--layer", type=int, default=1, choices=(1, 2, 3))
    ap.add_argument("--store", default=None)
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()
    root = data_dir(a.data_dir)
    col = f"tfn_layer_{a.layer}_hidden_covariance"
    entries = [e for e in get_benchmark("nasbench-nlp").load(root) if e.extra["published"].get(col) is not None]
    rng = np.random.default_rng(a.seed)
    entries = [entries[i] for i in rng.permutation(len(entries))[: a.n]]
    spec = f"hidden_covariance:layer={a.layer}"
    job = make_plan("rnn", [spec], corpus=str(root / "ptb"), seed=0, init="compat")
    store = ResultStore(a.store or default_store_path())
    ours = np.array([np.nan if r.values[spec] is None else r.values[spec]
                     for r in score_many(job, [(e.arch_id, e.arch) for e in entries], store, workers=a.workers)])
    pub = np.array([e.extra["published"][col] for e in entries])
    ok = np.isfinite(ours) & np.isfinite(pub)
    rel = np.abs(ours[ok] - pub[ok]) / np.abs(pub[ok])
    print(f"cells: {len(entries)}, both finite: {ok.sum()}")
    print(f"Spearman(ours, published) = {stats.spearmanr(ours[ok], pub[ok]).statistic:.6f}")
    print(f"Kendall(ours, published)  = {stats.kendalltau(ours[ok], pub[ok]).statistic:.6f}")
    print(f"relative difference: median {np.median(rel):.2e}, max {rel.max():.2e}")


if __name__ == "__main__":
    main()
