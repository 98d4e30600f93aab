"""NSGA-II on Optuna: a zero-cost proxy against non-embedding parameters, under a size budget, with
several worker processes sharing one SQLite study (no training).  By default it searches the
LLaMA family of ``examples/llama_family.yaml`` (the hf space); ``--space gpt2`` (no
``--choices``) searches LTS's decoders instead.

    python examples/optuna_nsga2.py --choices examples/llama_family.yaml --proxy synaptic_saliency \
        --max-params 1e8 --trials 60 --workers 2 --storage sqlite:///nsga2.db --store nsga2.jsonl
    optuna-dashboard sqlite:///nsga2.db        # the study: Pareto front, trials, user attributes

Each worker process loads the study and runs its share of the trials with its own NSGA-II sampler
(seeded ``--seed`` + its index); Optuna's storage hands every process the others' trials, and the
results store hands it their scores.  A candidate over the budget is not scored: it is pruned
with its constraint (its size over the limit) recorded.  Running the command again continues the
study.  The end prints the feasible Pareto front and the pick with the best proxy score.
"""
from __future__ import annotations

import argparse
import multiprocessing
from pathlib import Path

HERE = Path(__file__).resolve().parent


def objective_of(args):
    from nni_zerocost.optuna import ZeroCostObjective

    family = {"choices": args.choices} if args.choices else {}  # the hf space's family file
    return ZeroCostObjective(args.space, args.proxy, cost="nonembedding_params", max_params=args.max_params,
                             max_nonembedding_params=args.max_nonembedding_params, store=args.store,
                             seed=args.seed, threads=args.threads, **family)


def work(args, index: int, trials: int) -> None:
    """One worker process: its own sampler on the shared study."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=args.study_name, storage=args.storage,
                              sampler=optuna.samplers.NSGAIISampler(seed=args.seed + index,
                                                                    population_size=args.population))
    study.optimize(objective_of(args), n_trials=trials)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--space", default="hf", help="any registered searchable space (hf: with --choices)")
    ap.add_argument("--choices", default=None,
                    help="the hf space's family file (default with --space hf: examples/llama_family.yaml)")
    ap.add_argument("--proxy", default="synaptic_saliency")
    ap.add_argument("--max-params", type=float, default=1e8)
    ap.add_argument("--max-nonembedding-params", type=float, default=None)
    ap.add_argument("--trials", type=int, default=60, help="trials this run adds, shared out between the workers")
    ap.add_argument("--workers", type=int, default=2, help="processes sharing the study")
    ap.add_argument("--population", type=int, default=10, help="NSGA-II population")
    ap.add_argument("--storage", default="sqlite:///nsga2.db")
    ap.add_argument("--study-name", default=None, help="default: <space>-<proxy>")
    ap.add_argument("--store", default=None, help="results store (default: the user's)")
    ap.add_argument("--seed", type=int, default=0, help="seeds the weights, and worker i's sampler with seed + i")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    args = ap.parse_args(argv)
    args.store = args.store or "default"
    if args.space == "hf" and args.choices is None:
        args.choices = str(HERE / "llama_family.yaml")

    import optuna

    from nni_zerocost.optuna import open_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    objective = objective_of(args)  # the whole job is checked here, before any process starts
    study = open_study(objective.checked, directions=objective.directions, cost=objective.cost,
                       storage=args.storage, study_name=args.study_name)
    args.study_name = study.study_name
    shares = [args.trials // args.workers + (i < args.trials % args.workers) for i in range(args.workers)]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=work, args=(args, i, n)) for i, n in enumerate(shares) if n]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    failed = [p.exitcode for p in procs if p.exitcode != 0]

    study = optuna.load_study(study_name=args.study_name, storage=args.storage)
    trials = study.get_trials(deepcopy=False)
    status = {}
    for t in trials:
        s = t.user_attrs.get("status", t.state.name.lower())
        status[s] = status.get(s, 0) + 1
    scored_now = sum(t.user_attrs.get("computed", 0) > 0 for t in trials)
    from_store = sum(t.user_attrs.get("computed") == 0 and t.user_attrs.get("status") != "over_budget" for t in trials)
    print(f"study {args.study_name!r} in {args.storage}: {len(trials)} trials "
          f"({', '.join(f'{n} {s}' for s, n in sorted(status.items()))}); "
          f"{len({t.user_attrs.get('arch_hash') for t in trials})} distinct architectures; {scored_now} scored "
          f"(model work), {from_store} answered by the results store, the others over the budget (not scored)")
    front = sorted(study.best_trials, key=lambda t: t.values[1])
    print(f"feasible Pareto front of {args.proxy} against non-embedding parameters ({len(front)} trials):")
    for t in front:
        print(f"  trial {t.number:4d}  {t.values[1]:>12,.0f} non-embedding params  score {t.values[0]:.6g}  "
              f"hash {t.user_attrs['arch_hash'][:12]}")
    if front:
        pick = max(front, key=lambda t: t.values[0])
        space = objective_of(args).checked.plan.search_space  # the family, where there is one
        print(f"pick (best {args.proxy} within the budget): trial {pick.number}, "
              f"{space.summary(pick.user_attrs['arch'])}")
    print(f"open the study: optuna-dashboard {args.storage}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
