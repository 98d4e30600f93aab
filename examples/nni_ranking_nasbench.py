"""Does proxy ranking inside NNI pick good cells?  A measurement on NAS-Bench-NLP (ground truth).

For each seed: 200 random cells of the NAS-Bench-NLP table are the candidates of a
:class:`~nni_zerocost.nas.ProxyRanking` strategy in a real NNI NasExperiment (sequential
engine).  The strategy ranks them by hidden covariance in-process and submits only its top cell
to the "real" evaluator, which here looks up the cell's trained PTB test loss in the table
instead of training it.  Reported per seed: the picked cell's loss, its percentile in the whole
table (0 = best cell, 50 = median) and among the 200 candidates, and whether it beats the
table's median.

    python examples/nni_ranking_nasbench.py --data-dir ../shared/data [--seeds 10 --n 200]

By default the proxy reads the paper's batch (PTB test, 50 columns x 70 steps, layer 1); pass
--no-ptb for the embedded zipf batch.  A diverged cell (no finite loss) counts as a miss.
``--proxy hidden_covariance:max_degree=1`` ranks last the cells whose state multiplies itself
without a squashing activation (``Cell.recurrence_degree`` >= 2), most of which diverge.
--trained-only draws the candidates among cells whose training finished (the setting of the
paper's correlations, which excluded diverged runs); the script then also reports what the
paper's own published hidden-covariance scores would have picked among the same candidates.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from collections import defaultdict
from pathlib import Path

import nni
import numpy as np
import torch
from nni.nas.evaluator import FunctionalEvaluator
from nni.nas.experiment import NasExperiment, NasExperimentConfig
from scipy import stats

from nni_zerocost.benchmarks.base import get_benchmark
from nni_zerocost.data import data_dir
from nni_zerocost.nas import ProxyRanking, RNNModelSpace
from nni_zerocost.spaces.rnn.codec import RNNCellCodec


def report_table_loss(model, table):
    """Stands in for training: the cell's PTB test loss from the table (mean over the table's
    cells with this canonical hash), negated; -1e9 when every such cell diverged."""
    loss = table.get(model.cell.canonical_hash())
    nni.report_final_result(-loss if loss is not None else -1e9)


def _published_pick(entries):
    """Loss of the candidate with the best published layer-1 hidden covariance (Serianni &
    Kalita's own scores; they exist only for runs that finished), or None if none has one."""
    scored = [e for e in entries if e.extra.get("published", {}).get("tfn_layer_1_hidden_covariance") is not None]
    if not scored:
        return None
    return max(scored, key=lambda e: e.extra["published"]["tfn_layer_1_hidden_covariance"]).truth["test_loss"]


def loss_by_hash(entries):
    groups = defaultdict(list)
    for e in entries:
        losses = groups[e.arch.canonical_hash()]  # a hash whose cells all diverged maps to None
        if e.truth["test_loss"] is not None:
            losses.append(e.truth["test_loss"])
    return {h: (float(np.mean(v)) if v else None) for h, v in groups.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--n", type=int, default=200, help="candidates per seed")
    p.add_argument("--proxy", default="hidden_covariance")
    p.add_argument("--no-ptb", action="store_true", help="score on the embedded zipf batch instead of PTB")
    p.add_argument("--trained-only", action="store_true", help="candidates only among cells with a finite loss")
    p.add_argument("--experiment-dir", default=None)
    p.add_argument("--json", default=None, help="also write the per-seed results here")
    args = p.parse_args()
    torch.set_num_threads(1)

    root = data_dir(args.data_dir)
    entries = get_benchmark("nasbench-nlp").load(root)
    table = loss_by_hash(entries)
    finite = np.array([e.truth["test_loss"] for e in entries if e.truth["test_loss"] is not None])
    codec = RNNCellCodec()
    median = float(np.median(finite))
    corpus = None if args.no_ptb else str(Path(root) / "ptb")
    print(f"{len(entries)} cells, {len(finite)} with a finite PTB loss, median {median:.4f}; "
          f"proxy {args.proxy} on {'PTB test 50x70' if corpus else 'zipf 50x70'}")

    pool = [e for e in entries if e.truth["test_loss"] is not None] if args.trained_only else entries
    rows = []
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        picked_entries = [pool[i] for i in rng.choice(len(pool), args.n, replace=False)]
        candidates = [codec.encode(e.arch) for e in picked_entries]
        strategy = ProxyRanking(args.proxy, candidates=candidates, top_k=1, seed=seed, corpus=corpus)
        config = NasExperimentConfig("sequential", "simplified")
        config.max_trial_number = 1
        if args.experiment_dir:
            config.experiment_working_directory = args.experiment_dir
        experiment = NasExperiment(RNNModelSpace(), FunctionalEvaluator(report_table_loss, table=table), strategy, config)
        start = time.perf_counter()
        experiment.run()
        seconds = time.perf_counter() - start
        (trained,) = list(experiment.strategy.list_models(sort=False))
        experiment.stop()
        top = candidates.index(trained.sample)  # the entry the strategy submitted
        loss = picked_entries[top].truth["test_loss"]
        cand = np.array([e.truth["test_loss"] if e.truth["test_loss"] is not None else math.inf
                         for e in picked_entries])
        value = loss if loss is not None else math.inf
        row = {
            "seed": seed, "arch_id": picked_entries[top].arch_id, "picked_loss": loss, "beats_median": value < median,
            "table_percentile": float(stats.percentileofscore(finite, value, kind="weak")),
            "candidate_percentile": float(stats.percentileofscore(cand, value, kind="weak")),
            "best_candidate_loss": float(cand.min()), "n_candidate_diverged": int(np.isinf(cand).sum()),
            "seconds": seconds, "proxy_score": strategy.ranking[0][1]["default"],
            "published_pick_loss": _published_pick(picked_entries),
        }
        rows.append(row)
        print(f"seed {seed}: picked loss {loss if loss is not None else 'diverged'}"
              f" | table percentile {row['table_percentile']:.1f} | among candidates {row['candidate_percentile']:.1f}"
              f" | best candidate {row['best_candidate_loss']:.4f} | {seconds:.0f} s", flush=True)

    wins = sum(r["beats_median"] for r in rows)
    pct = np.array([r["table_percentile"] for r in rows])
    print(f"\nbeats the table median in {wins} of {len(rows)} seeds")
    published = [r["published_pick_loss"] for r in rows if r["published_pick_loss"] is not None]
    if published:
        print(f"the paper's published scores' pick among the same candidates beats it in "
              f"{sum(v < median for v in published)} of {len(published)} seeds")
    print("picked cell's loss percentile in the table (0 = best): "
          f"min {pct.min():.1f}, 25% {np.percentile(pct, 25):.1f}, median {np.median(pct):.1f}, "
          f"75% {np.percentile(pct, 75):.1f}, max {pct.max():.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"median_loss": median, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
