"""NNI NasExperiment on the FlexiBERT-style BERT space: RegularizedEvolution by head confidence.

Runs on NNI's sequential engine (in-process, no training):

    python examples/nni_nas_bert.py --trials 60 [--batch-size 32 --seq-len 64]

Head confidence is the paper's best BERT proxy (|Kendall tau| 0.478 vs GLUE); the parameter
count is reported beside it, since model size alone ranks this benchmark better (tau ~0.50, see
README).  A configuration without attention heads (only LT layers) has no head confidence: it is
reported with nni_zerocost.NO_SCORE and ranked last.
"""
from __future__ import annotations

import argparse
import json
import time

import torch
from nni.nas.experiment import NasExperiment, NasExperimentConfig
from nni.nas.strategy import RegularizedEvolution
from nni.nas.strategy.middleware import Chain

from nni_zerocost.nas import BertModelSpace, TrialRecorder, ZeroCostEvaluator


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=60)
    p.add_argument("--population", type=int, default=16)
    p.add_argument("--proxy", default="head_confidence")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=None, help="rows of the zipf batch (default 128)")
    p.add_argument("--seq-len", type=int, default=None, help="positions (default 128)")
    p.add_argument("--experiment-dir", default=None)
    args = p.parse_args()
    torch.set_num_threads(1)

    space = BertModelSpace()
    evaluator = ZeroCostEvaluator(args.proxy, extra_proxies=["params"], seed=args.seed,
                                  batch_size=args.batch_size, seq_len=args.seq_len)
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

    print(f"{len(recorder.records)} configurations scored in {elapsed:.1f} s")
    for rank, model in enumerate(top, start=1):
        config_ = space.arch_from_sample(model.sample)
        print(f"#{rank} {args.proxy} {model.metric:.6g}")
        print("   ", json.dumps(config_.to_dict()))


if __name__ == "__main__":
    main()
