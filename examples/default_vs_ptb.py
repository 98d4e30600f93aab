"""How well does the embedded default batch stand in for real PTB text?

Scores N random NAS-Bench-NLP cells with hidden covariance on (a) the paper's PTB batch and
(b) the embedded Zipf batch (same shape), and prints the rank correlation between the two and
each one's Kendall tau with the true PTB test loss.

    python examples/default_vs_ptb.py --data-dir ../shared/data --n 200
"""
import argparse

import numpy as np
from scipy import stats

import nni_zerocost as nz
from nni_zerocost.benchmarks.base import get_benchmark
from nni_zerocost.benchmarks.study import select_entries
from nni_zerocost.data import corpus_batch, data_dir, zipf_batch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    root = data_dir(a.data_dir)
    bench = get_benchmark("nasbench-nlp")
    entries = select_entries(bench.load(root), bench, a.n, a.seed)
    batches = {"ptb": corpus_batch(root / "ptb", 50, 70), "zipf": zipf_batch(50, 70)}
    scores = {k: [] for k in batches}
    for e in entries:
        for k, b in batches.items():
            scores[k].append(nz.score("rnn", e.arch, "hidden_covariance", batch=b)["hidden_covariance"].score)
    loss = [e.truth["test_loss"] for e in entries]
    p, z = np.array(scores["ptb"]), np.array(scores["zipf"])
    ok = np.isfinite(p) & np.isfinite(z)
    print(f"cells: {len(entries)} ({(~ok).sum()} without a finite score on either batch)")
    print(f"Spearman(ptb, zipf) = {stats.spearmanr(p[ok], z[ok]).statistic:.3f}, "
          f"Kendall(ptb, zipf) = {stats.kendalltau(p[ok], z[ok]).statistic:.3f}")
    for k, v in (("ptb", p), ("zipf", z)):
        m = np.isfinite(v)
        print(f"Kendall tau vs test loss, {k}: {stats.kendalltau(v[m], np.array(loss)[m]).statistic:.3f}")


if __name__ == "__main__":
    main()
