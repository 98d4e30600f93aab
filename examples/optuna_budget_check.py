"""Check a budgeted Optuna search against a benchmark: is the pick good among the models that fit?

    python examples/optuna_budget_check.py --benchmark nasbench-nlp --proxy hidden_covariance:max_degree=1 \
        --max-params 1e7 --sampler tpe --seeds 10 --trials 100 --store S --threads 1 [--json]
    python examples/optuna_budget_check.py --benchmark lts-gpt2-wt103 --proxy synaptic_saliency \
        --max-nonembedding-params 5e6 --sampler nsga2 --cost nonembedding_params --seeds 10 --trials 100 --store S

The Optuna counterpart of ``budget_search_check.py`` (NNI's ``ProxyRanking``).  A space's own
distributions propose architectures that are mostly not in the benchmark, so they have no ground
truth; here a trial chooses among the benchmark's architectures with a known truth instead (one
categorical parameter, ``ZeroCostObjective(candidates=...)``), all of them, not only those that
fit: the budget acts through the objective's constraints, as in a real search (a candidate over
it is pruned with no model work).  For each seed, ``--trials`` trials of the seeded sampler
(the CLI's: TPE with a quarter of the trials random first, NSGA-II with a population of a
quarter), scores with the weights of seed 0 (as the NNI check scores); the pick is the feasible
trial with the best proxy score (for NSGA-II, the best-proxy end of its feasible front).  The
pick is then placed among *all* the benchmark's architectures within the budget: its percentile
(100 = better than every other one that fits) by the benchmark's ground truth.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--benchmark", required=True)
    ap.add_argument("--proxy", required=True)
    ap.add_argument("--max-params", type=float, default=None)
    ap.add_argument("--max-nonembedding-params", type=float, default=None)
    ap.add_argument("--sampler", default="tpe", choices=("tpe", "nsga2", "random"))
    ap.add_argument("--cost", default=None, help="a size to minimise beside the proxy (multi-objective)")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--store", default=None, help="results store to reuse (default: none)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import optuna

    import nni_zerocost as nz
    from nni_zerocost.benchmarks.base import get_benchmark
    from nni_zerocost.budget import SizeBudget, sizes
    from nni_zerocost.data import data_dir
    from nni_zerocost.optuna import ZeroCostObjective, make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    bench = get_benchmark(args.benchmark)
    budget = SizeBudget(max_params=args.max_params, max_nonembedding_params=args.max_nonembedding_params)
    entries = [e for e in bench.load(data_dir(None, bench)) if e.truth.get(bench.primary) is not None]
    sp = nz.get_space(bench.space)
    fits = [e for e in entries if budget.over(sizes(sp, sp.parse(e.arch))) is None]
    sign = 1.0 if bench.primary_higher_is_better else -1.0
    objective = ZeroCostObjective(bench.space, args.proxy, cost=args.cost, candidates=[e.arch for e in entries],
                                  store=args.store, max_params=args.max_params,
                                  max_nonembedding_params=args.max_nonembedding_params, seed=0, threads=args.threads)
    rows = []
    for seed in range(args.seeds):
        study = optuna.create_study(directions=objective.directions,
                                    sampler=make_sampler(args.sampler, seed, args.trials))
        start = time.perf_counter()
        study.optimize(objective, n_trials=args.trials)
        seconds = time.perf_counter() - start
        trials = study.get_trials(deepcopy=False)
        feasible = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE
                    and all(c <= 0 for c in t.constraints.values())]
        best = max(feasible, key=lambda t: t.values[0])
        pick = entries[best.params["candidate"]]
        value = sign * pick.truth[bench.primary]
        better = sum(sign * e.truth[bench.primary] < value for e in fits)
        status = [t.user_attrs.get("status") for t in trials]
        rows.append({"seed": seed, "pick": pick.arch_id, bench.primary: pick.truth[bench.primary],
                     "percentile": 100.0 * better / max(1, len(fits) - 1),
                     "distinct": len({t.params["candidate"] for t in trials}),
                     "scored": len({t.params["candidate"] for t in trials if t.user_attrs.get("status") in
                                    ("ok", "flagged")}),
                     "over_budget": status.count("over_budget"), "no_score": status.count("no_score"),
                     "model_seconds": round(sum(t.user_attrs["metrics"]["seconds"] or 0.0 for t in trials), 1),
                     "seconds": round(seconds, 1)})
    result = {"benchmark": bench.name, "proxy": args.proxy, "sampler": type(study.sampler).__name__,
              "cost": args.cost, "budget": budget.limits(), "trials": args.trials,
              "fit_the_budget": len(fits), "of": len(entries), "seeds": rows,
              "median_percentile": statistics.median(r["percentile"] for r in rows),
              "mean_percentile": statistics.fmean(r["percentile"] for r in rows)}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"{bench.name}: {args.proxy} ({result['sampler']}, {args.trials} trials) under {result['budget']}: "
              f"{len(fits)} of {len(entries)} architectures fit")
        for r in rows:
            print(f"  seed {r['seed']}: pick {r['pick']} ({bench.primary} {r[bench.primary]:.4g}), percentile "
                  f"{r['percentile']:.1f} among those that fit ({r['distinct']} distinct proposed, {r['scored']} "
                  f"scored, {r['over_budget']} trials over budget, {r['no_score']} without a score)")
        print(f"  median percentile {result['median_percentile']:.1f}, mean {result['mean_percentile']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
