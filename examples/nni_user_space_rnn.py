"""Your own NNI model space of recurrent language models, searched by a training-free proxy.

    python examples/nni_user_space_rnn.py [--trials 12] [--strategy random|evolution] [--out result.json]

The space is plain NNI 3.0: ``nni.choice`` over the cell type, hidden size and depth of an
``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` language model.  ``ZeroCostEvaluator`` scores each sampled
model as it is (``nni_zerocost.score_model``); nothing here knows nni-zerocost's own spaces.
The hidden size varies, so the proxy is the size-normalised hidden covariance (the plain one
sums over units and would pick the widest model), and ``params`` is reported beside it.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import warnings

import nni
import torch
from nni.mutable import ensure_frozen
from nni.nas.nn.pytorch import ModelSpace

warnings.filterwarnings("ignore", message=r".*(nn\.Buffer|not a nn\.Module).*")


class RecurrentLMSpace(ModelSpace):
    """Embedding -> recurrent layers -> vocabulary logits; token ids (B, T) in, logits out."""

    def __init__(self, vocab: int = 1000):
        super().__init__()
        cell = ensure_frozen(self.add_mutable(nni.choice("cell", ["lstm", "gru", "rnn"])))
        hidden = ensure_frozen(self.add_mutable(nni.choice("hidden", [32, 64, 128])))
        layers = ensure_frozen(self.add_mutable(nni.choice("layers", [1, 2, 3])))
        self.vocab = vocab
        self.embedding = torch.nn.Embedding(vocab, hidden)
        self.rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](
            hidden, hidden, layers, batch_first=True)
        self.decoder = torch.nn.Linear(hidden, vocab)

    def freeze(self, sample):
        from nni.nas.space import model_context

        with model_context(sample):  # NNI's recipe: rebuild the module under the sample
            return self.__class__(self.vocab)

    def forward(self, ids):
        return self.decoder(self.rnn(self.embedding(ids))[0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--strategy", choices=("random", "evolution"), default="random")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="also write the result as JSON")
    args = ap.parse_args(argv)

    from nni.nas.experiment import NasExperiment, NasExperimentConfig
    from nni.nas.strategy import Random, RegularizedEvolution

    from nni_zerocost.nas import ZeroCostEvaluator

    evaluator = ZeroCostEvaluator("hidden_covariance:normalize=true", extra_proxies=["params"], seed=args.seed)
    strategy = Random(seed=args.seed) if args.strategy == "random" else \
        RegularizedEvolution(population_size=4, sample_size=2, seed=args.seed)
    config = NasExperimentConfig("sequential", "simplified")
    config.max_trial_number = args.trials
    config.experiment_working_directory = tempfile.mkdtemp(prefix="nni-user-space-")
    experiment = NasExperiment(RecurrentLMSpace(), evaluator, strategy, config)
    try:
        experiment.run()
        models = experiment.strategy.list_models()
        trials = [{"sample": m.sample, "score": m.metric} for m in models if m.metric is not None]
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
