"""NNI NasExperiment on NAS-Bench-NLP cells: RegularizedEvolution scored by hidden covariance.

Runs on NNI's sequential engine (in-process, no NNI manager, no training):

    python examples/nni_nas_rnn.py --trials 100 [--corpus ../shared/data/ptb]

Without --corpus the proxy reads the embedded zipf batch (50 x 70 tokens); with a PTB folder it
reads the paper's batch (first 70 rows of the test split in 50 columns).  Prints the best cells
and writes every candidate with its metrics to --out (JSON lines).
"""
from __future__ import annotations

import argparse
import json
import time

import torch
from nni.nas.experiment import NasExperiment, NasExperimentConfig
from nni.nas.strategy import RegularizedEvolution
from nni.nas.strategy.middleware import Chain

from nni_zerocost.nas import RNNModelSpace, TrialRecorder, ZeroCostEvaluator


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--population", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--corpus", default=None, help="PTB folder or text file (default: embedded batch)")
    p.add_argument("--out", default="nni_nas_rnn.jsonl")
    p.add_argument("--experiment-dir", default=None, help="where NNI keeps logs and checkpoints")
    args = p.parse_args()
    torch.set_num_threads(1)

    space = RNNModelSpace()
    evaluator = ZeroCostEvaluator("hidden_covariance", extra_proxies=["params"], seed=args.seed, corpus=args.corpus)
    recorder = TrialRecorder()
    strategy = Chain(RegularizedEvolution(population_size=args.population, sample_size=max(2, args.population // 4),
                                          seed=args.seed), recorder)
    config = NasExperimentConfig("sequential", "simplified")
    config.max_trial_number = args.trials
    if args.experiment_dir:
        config.experiment_working_directory = args.experiment_dir
    experiment = NasExperiment(space, evaluator, strategy, config)
    start = time.perf_counter()
    experiment.run()
    elapsed = time.perf_counter() - start
    top = experiment.export_top_models(top_k=3)
    experiment.stop()

    with open(args.out, "w", encoding="utf-8") as f:
        for sample, metrics in recorder.records:
            cell = space.arch_from_sample(sample)
            f.write(json.dumps({"recipe": cell.to_recipe(), "hash": cell.canonical_hash(), "metrics": metrics}) + "\n")
    print(f"{len(recorder.records)} cells scored in {elapsed:.1f} s ({elapsed / max(1, len(recorder.records)):.3f} s each)")
    for rank, model in enumerate(top, start=1):
        cell = space.arch_from_sample(model.sample)
        print(f"#{rank} hidden covariance {model.metric:.6g}  k={cell.hidden_tuple_size} nodes={len(cell.nodes)}")
        print("   ", json.dumps(cell.to_recipe()))
    print(f"all candidates: {args.out}")


if __name__ == "__main__":
    main()
