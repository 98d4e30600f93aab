"""Your own NNI model space over Hugging Face GPT-2 configurations, searched under a size budget.

    python examples/nni_user_space_hf.py [--trials 12] [--max-params 2e6] [--out result.json]

``nni.choice`` over the depth, head count and width of a ``transformers.GPT2LMHeadModel`` built
from a config (random weights: nothing downloads).  ``ZeroCostEvaluator`` scores each model with
the mean head confidence (``normalize=true``: per head, so more heads do not win by count) and
``max_params``: a model over the budget is not scored (its parameters are counted, no forward).
Needs the ``hf`` extra (``transformers``).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import warnings

import nni
from nni.nas.nn.pytorch import ModelSpace

warnings.filterwarnings("ignore", message=r".*(nn\.Buffer|not a nn\.Module).*")


class GPT2ConfigSpace(ModelSpace):
    """GPT-2 configurations; ``freeze(sample)`` is the ``GPT2LMHeadModel`` of one (the space
    itself holds only the choices)."""

    def __init__(self, vocab: int = 2000):
        super().__init__()
        self.vocab = vocab
        for label, values in (("n_layer", [1, 2, 4]), ("n_head", [2, 4]), ("n_embd", [32, 64, 128])):
            self.add_mutable(nni.choice(label, values))

    def freeze(self, sample):
        from transformers import GPT2Config, GPT2LMHeadModel

        self.validate(sample)
        return GPT2LMHeadModel(GPT2Config(vocab_size=self.vocab, n_positions=128, n_layer=sample["n_layer"],
                                          n_head=sample["n_head"], n_embd=sample["n_embd"]))

    def forward(self, ids):  # pragma: no cover - a space is not a network
        raise RuntimeError("freeze a sample to get a model")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--max-params", type=float, default=2e6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="also write the result as JSON")
    args = ap.parse_args(argv)

    from nni.nas.experiment import NasExperiment, NasExperimentConfig
    from nni.nas.strategy import Random

    from nni_zerocost.nas import ZeroCostEvaluator

    evaluator = ZeroCostEvaluator("head_confidence:normalize=true", extra_proxies=["nonembedding_params"],
                                  seed=args.seed, max_params=args.max_params)
    config = NasExperimentConfig("sequential", "simplified")
    config.max_trial_number = args.trials
    config.experiment_working_directory = tempfile.mkdtemp(prefix="nni-user-space-")
    experiment = NasExperiment(GPT2ConfigSpace(), evaluator, Random(seed=args.seed), config)
    try:
        experiment.run()
        trials = [{"sample": m.sample, "score": m.metric} for m in experiment.strategy.list_models()
                  if m.metric is not None]
        best = experiment.export_top_models(top_k=1, formatter="dict")[0]
    finally:
        experiment.stop()
    result = {"trials": trials, "best": best}
    print(json.dumps(result))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
