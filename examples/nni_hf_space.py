"""An NNI NasExperiment over a family of Hugging Face configs (the hf space's NNI model space).

    python examples/nni_hf_space.py [--choices examples/llama_family.yaml] [--trials 8]

The family file becomes plain JSON labels of an NNI ``ModelSpace`` (``model_space("hf",
choices=...)``: the file's content travels in the space's init arguments, so trial processes
need no file); NNI's Random strategy samples them, every sample decodes to a valid config, and
:class:`~nni_zerocost.nas.ZeroCostEvaluator` scores it without training, on NNI's sequential
engine (in-process).  Prints the best configs.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from nni.nas.experiment import NasExperiment, NasExperimentConfig
from nni.nas.strategy import Random
from nni.nas.strategy.middleware import Chain

import nni_zerocost as nz
from nni_zerocost.nas import TrialRecorder, ZeroCostEvaluator, model_space

HERE = Path(__file__).resolve().parent


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--choices", default=str(HERE / "llama_family.yaml"), help="the family file (YAML or JSON)")
    p.add_argument("--proxy", default="synaptic_saliency")
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--max-params", type=float, default=1e8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--experiment-dir", default=None, help="where NNI keeps logs and checkpoints")
    args = p.parse_args(argv)

    family = nz.get_space("hf").family(choices=args.choices)  # checked here: one line naming file and field
    space = model_space("hf", **family.space_options)           # the file's content, as plain JSON
    evaluator = ZeroCostEvaluator(args.proxy, extra_proxies=["params"], seed=args.seed, max_params=args.max_params)
    recorder = TrialRecorder()
    config = NasExperimentConfig("sequential", "simplified")
    config.max_trial_number = args.trials
    if args.experiment_dir:
        config.experiment_working_directory = args.experiment_dir
    experiment = NasExperiment(space, evaluator, Chain(Random(seed=args.seed), recorder), config)
    start = time.perf_counter()
    experiment.run()
    experiment.stop()
    elapsed = time.perf_counter() - start

    ranked = sorted(recorder.records, key=lambda r: -r[1]["default"])
    print(f"{len(ranked)} configs scored in {elapsed:.1f} s")
    for rank, (sample, metrics) in enumerate(ranked[:3], start=1):
        arch = space.arch_from_sample(sample, **family.space_options)
        print(f"#{rank} {args.proxy} {metrics[args.proxy]}  {family.summary(arch)}")
        print("   ", json.dumps(sample))


if __name__ == "__main__":
    main()
