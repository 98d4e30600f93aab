"""Reproduce Serianni & Kalita's published hidden-covariance scores (paper protocol).

Paper protocol: PTB test split batchified into 50 columns, first 70 steps, eval mode, torch
seed 0 with the official constructor's random stream (``init="compat"``).  Compares our scores
with the published per-run ``tfn_layer_1_hidden_covariance`` on N random cells.  Needs the Penn
Treebank text, which no open licence lets the package ship: ``--corpus`` names it, or the data
folder holds it as ``ptb/``.

    python examples/reproduce_paper_rnn.py --data-dir ../shared/data --n 200 [--layer 1]
    python examples/reproduce_paper_rnn.py --corpus ~/data/ptb --n 200
"""
import argparse
import sys

import numpy as np
from scipy import stats

import nni_zerocost as nz
from nni_zerocost.benchmarks.base import get_benchmark
from nni_zerocost.data import data_dir, resolve_corpus
from nni_zerocost.errors import BadInputError, ZeroCostError

PROG = "reproduce_paper_rnn.py"


def fail(message: str) -> None:
    """One line and exit code 2, as the CLI does for bad input."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(2)


def main():
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None,
                    help="data folder with nasbench_nlp/ (and ptb/) (default: $NNI_ZEROCOST_DATA, else the tables "
                         "shipped with the package)")
    ap.add_argument("--corpus", default=None,
                    help="the PTB folder (ptb.train/valid/test.txt) or its test file (default: ptb/ in the data folder)")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0, help="subset seed (weights always use seed 0, as the paper)")
    ap.add_argument("--layer", type=int, default=1, choices=(1, 2, 3))
    ap.add_argument("--store", default=None)
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()
    if a.n < 1:
        fail(f"--n: must be at least 1, got {a.n}")
    root = data_dir(a.data_dir)
    corpus = resolve_corpus(a.corpus, a.data_dir) if a.corpus else str(root / "ptb")
    if a.corpus is None and not (root / "ptb").exists():
        fail(f"--corpus: no PTB corpus at {root / 'ptb'}; pass --corpus PATH (a PTB folder or ptb.test.txt), "
             "or --data-dir DATA with the corpus in DATA/ptb")
    col = f"tfn_layer_{a.layer}_hidden_covariance"
    spec = f"hidden_covariance:layer={a.layer}"
    try:  # every input checked before any scoring: the request first, then the data
        job = nz.ScoringJob.of([spec], "rnn", corpus=corpus, seed=0, init="compat", store=a.store or "default",
                               workers=a.workers)
        nz.check_job(job, need_architectures=False)
        entries = [e for e in get_benchmark("nasbench-nlp").load(root)
                   if e.extra.get("published", {}).get(col) is not None]
        if not entries:
            fail(f"--data-dir: the nasbench-nlp table in {root} has no published {col} scores")
        rng = np.random.default_rng(a.seed)
        entries = [entries[i] for i in rng.permutation(len(entries))[: a.n]]
        job = nz.check_job(job.replace(architectures=[(e.arch_id, e.arch) for e in entries]))
    except BadInputError as e:  # named by its flag, as the CLI names it
        from nni_zerocost.cli import flag_of

        fail(e.render(flag_of))
    except ZeroCostError as e:
        fail(str(e))
    ours = np.array([np.nan if r.values[spec] is None else r.values[spec] for r in nz.run(job, progress=True)])
    pub = np.array([e.extra["published"][col] for e in entries])
    ok = np.isfinite(ours) & np.isfinite(pub)
    rel = np.abs(ours[ok] - pub[ok]) / np.abs(pub[ok])
    print(f"cells: {len(entries)}, both finite: {ok.sum()}")
    print(f"Spearman(ours, published) = {stats.spearmanr(ours[ok], pub[ok]).statistic:.6f}")
    print(f"Kendall(ours, published)  = {stats.kendalltau(ours[ok], pub[ok]).statistic:.6f}")
    print(f"relative difference: median {np.median(rel):.2e}, max {rel.max():.2e}")


if __name__ == "__main__":
    main()
