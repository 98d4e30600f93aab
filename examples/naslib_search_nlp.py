"""Zero-cost-guided NAS with a NASLib optimizer on NAS-Bench-NLP.

NASLib's RegularizedEvolution (or LocalSearch) searches our NAS-Bench-NLP space; every
candidate is ranked by the hidden-covariance proxy (no training), and the search stays inside
the benchmark table (labeled mode) so that the cell it finally picks has a real PTB result to
compare against.

    PYTHONPATH=/path/to/NASLib python examples/naslib_search_nlp.py --epochs 100 --seed 0

Needs NASLib (see the README, section NASLib) and the NAS-Bench-NLP table (shared/data).
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from naslib_ext.compat import import_naslib

import_naslib()

from fvcore.common.config import CfgNode  # noqa: E402  (a NASLib dependency)
from naslib.optimizers import LocalSearch, RegularizedEvolution  # noqa: E402
from naslib.utils import set_seed  # noqa: E402

from naslib_ext.predictors import ZeroCostProxyPredictor  # noqa: E402
from naslib_ext.search_spaces import Metric, NasBenchNLPSpace, benchmark_table  # noqa: E402


def run(optimizer: str = "re", proxy: str = "hidden_covariance", epochs: int = 100, seed: int = 0,
        population: int = 20):
    set_seed(seed)  # NASLib seeds numpy, random and torch; our space samples from numpy's state
    config = CfgNode({
        "dataset": "ptb",
        "search": CfgNode({"epochs": epochs, "sample_size": 5, "population_size": population,
                             "num_init": population // 2}),
    })
    space = NasBenchNLPSpace()
    space.set_load_labeled()  # sample and move among the table's cells (they have a PTB result)
    space.set_fitness_predictor(ZeroCostProxyPredictor(proxy))  # the optimizer maximises the proxy

    opt = (RegularizedEvolution if optimizer == "re" else LocalSearch)(config)
    opt.adapt_search_space(space)
    for epoch in range(epochs):
        opt.new_epoch(epoch)
    return opt.get_final_architecture()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--optimizer", choices=("re", "ls"), default="re", help="RegularizedEvolution or LocalSearch")
    ap.add_argument("--proxy", default="hidden_covariance")
    ap.add_argument("--epochs", type=int, default=100, help="architectures the optimizer evaluates")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--population", type=int, default=None,
                    help="RegularizedEvolution's population (default: a quarter of --epochs, at least 4 and at "
                         "most 20); RE samples its first `population` architectures at random, LocalSearch its "
                         "first population // 2")
    args = ap.parse_args()
    population = args.population or min(20, max(4, args.epochs // 4))
    n_random = population if args.optimizer == "re" else population // 2
    if population < 1 or n_random >= args.epochs:
        ap.error(f"--population {population} with --epochs {args.epochs}: {args.optimizer.upper()} would only "
                 f"sample at random (its first {n_random} architectures are random samples)")

    best = run(args.optimizer, args.proxy, args.epochs, args.seed, population)
    loss = best.query(Metric.TEST_LOSS)
    table = benchmark_table(best.benchmark_name)
    losses = np.array([e.truth["test_loss"] for e in table.labeled])
    print(f"best cell found by {args.optimizer.upper()} guided by {args.proxy} ({args.epochs} evaluations, "
          f"{n_random} of them random samples; population {population}):")
    print(json.dumps(best.cell.to_recipe()))
    print(f"proxy score          : {best.query(Metric.VAL_ACCURACY):.4f}")
    print(f"true PTB test loss   : {loss:.4f} nats/token (NAS-Bench-NLP, mean of its training runs)")
    print(f"better than          : {(losses > loss).mean():.1%} of the {len(losses)} tabulated cells with a result")
    print(f"table median / best  : {np.median(losses):.4f} / {losses.min():.4f}")


if __name__ == "__main__":
    main()
