"""Check a budgeted search against a benchmark: is the pick good among the models that fit?

    python examples/budget_search_check.py --benchmark lts-gpt2-wt103 --proxy nonembedding_params \
        --max-nonembedding-params 5e6 --seeds 10 --candidates 100 [--store PATH] [--json]

For each seed, NNI's ``ProxyRanking`` strategy (nni-zerocost's) ranks ``--candidates`` benchmark
architectures drawn with that seed by the proxy, under the size budget (candidates over it are
skipped before any model work), and submits its best.  The pick is then placed among *all* the
benchmark's architectures within the same budget: its percentile (100 = better than every
other one that fits) by the benchmark's ground truth.  With ``--store`` the scores of an
earlier ``score --benchmark`` run are reused.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import warnings

import numpy as np

warnings.filterwarnings("ignore", message=r".*(nn\.Buffer|not a nn\.Module).*")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--benchmark", required=True)
    ap.add_argument("--proxy", required=True)
    ap.add_argument("--max-params", type=float, default=None)
    ap.add_argument("--max-nonembedding-params", type=float, default=None)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--candidates", type=int, default=100)
    ap.add_argument("--store", default=None, help="results store to reuse (default: none)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from nni.nas.evaluator import FunctionalEvaluator
    from nni.nas.experiment import NasExperiment, NasExperimentConfig

    import nni_zerocost as nz
    from nni_zerocost.benchmarks.base import get_benchmark
    from nni_zerocost.budget import SizeBudget, sizes
    from nni_zerocost.data import data_dir
    from nni_zerocost.nas import ProxyRanking, model_space

    logging.getLogger("nni").setLevel(logging.WARNING)  # NNI logs every experiment's start and stop
    bench = get_benchmark(args.benchmark)
    budget = SizeBudget(max_params=args.max_params, max_nonembedding_params=args.max_nonembedding_params)
    entries = [e for e in bench.load(data_dir(None, bench)) if e.truth.get(bench.primary) is not None]
    sp = nz.get_space(bench.space)
    fits = [e for e in entries if budget.over(sizes(bench.space, e.arch)) is None]
    sign = 1.0 if bench.primary_higher_is_better else -1.0
    by_hash = {sp.arch_hash(e.arch): e for e in entries}
    rows = []
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        drawn = [entries[i] for i in rng.choice(len(entries), size=min(args.candidates, len(entries)), replace=False)]
        ranking = ProxyRanking(args.proxy, candidates=[e.arch for e in drawn], top_k=1, seed=0, store=args.store,
                               max_params=args.max_params, max_nonembedding_params=args.max_nonembedding_params)
        config = NasExperimentConfig("sequential", "simplified")
        config.max_trial_number = 1
        config.experiment_working_directory = tempfile.mkdtemp(prefix="budget-check-")
        experiment = NasExperiment(model_space(bench.space), FunctionalEvaluator(lambda model: None), ranking, config)
        try:
            experiment.run()
        finally:
            experiment.stop()
        sample, metrics = ranking.ranking[0]
        pick = by_hash[sp.arch_hash(model_space(bench.space).arch_from_sample(sample))]
        value = sign * pick.truth[bench.primary]
        better = sum(sign * e.truth[bench.primary] < value for e in fits)
        rows.append({"seed": seed, "pick": pick.arch_id, bench.primary: pick.truth[bench.primary],
                     "percentile": 100.0 * better / max(1, len(fits) - 1), "scored": len(ranking.ranking),
                     "over_budget": ranking.n_over_budget})
    result = {"benchmark": bench.name, "proxy": args.proxy, "budget": {k: getattr(budget, k) for k in budget.FIELDS},
              "fit_the_budget": len(fits), "of": len(entries), "seeds": rows,
              "median_percentile": statistics.median(r["percentile"] for r in rows),
              "mean_percentile": statistics.fmean(r["percentile"] for r in rows)}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"{bench.name}: {args.proxy} under {result['budget']}: {len(fits)} of {len(entries)} architectures fit")
        for r in rows:
            print(f"  seed {r['seed']}: pick {r['pick']} ({bench.primary} {r[bench.primary]:.4g}), percentile "
                  f"{r['percentile']:.1f} among those that fit ({r['scored']} scored, {r['over_budget']} over budget)")
        print(f"  median percentile {result['median_percentile']:.1f}, mean {result['mean_percentile']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
