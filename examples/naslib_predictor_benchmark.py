"""NASLib's XGBoost predictor with and without zero-cost features, against the raw proxy.

    python examples/naslib_predictor_benchmark.py --space nlp --space bert --json results.json

The NAS-Bench-Suite-Zero protocol of NASLib's ``ZCEnsembleEvaluator``, on our benchmarks: for
each seed, a test set of ``--test-size`` architectures is drawn from the zero-cost table's keys
(without replacement, as ``sample_without_replacement`` does), and training sets of each
``--train-sizes`` from the rest (nested, so the figures of one seed share their test set).  Three
predictors are scored by Kendall tau against ``val_accuracy`` on the test set:

* ``xgb``: NASLib's ``Ensemble(predictor_type="xgb", zc=False)`` on the space's encoding
  (``encode_spec(..., ADJACENCY_ONE_HOT)``: NASLib's own NB-NLP one-hot for NAS-Bench-NLP);
* ``xgb+zc``: the same with every column of the zero-cost table as features (``zc=True``);
* the raw proxy (the space's default proxy, or ``--proxy``): no training at all, so one figure per
  seed, repeated on every row.

The zero-cost table is the one NASLib's ``get_zc_benchmark_api`` returns after
``naslib_ext.enable()`` (the shipped tables, unless ``--table`` names others).  Where the
benchmark has fewer architectures than the largest training set plus ``--test-size``, the test
set is what remains (printed).  Needs NASLib (see the README, section NASLib).
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
import time

import numpy as np
from scipy import stats

import naslib_ext

naslib_ext.enable()

from naslib.predictors.ensemble import Ensemble  # noqa: E402
from naslib.predictors.utils.encodings import encode_spec  # noqa: E402
from naslib.utils import get_zc_benchmark_api, set_seed  # noqa: E402
from naslib.utils.encodings import EncodingType  # noqa: E402

from naslib_ext.search_spaces import naslib_types  # noqa: E402
from naslib_ext.zc_benchmark import load_zc_api, zc_benchmark  # noqa: E402
from nni_zerocost.benchmarks.tables import precomputed  # noqa: E402
from nni_zerocost.spaces import get_space  # noqa: E402


def run_space(ss_type: str, train_sizes, test_size: int, seeds: int, proxy=None, tables=None):
    space = naslib_types()[ss_type]
    form = get_space(space).naslib_form()
    if tables:
        data = zc_benchmark(form.benchmark, [precomputed(form.benchmark, name=n) for n in tables])
        zc_api = load_zc_api(data, form.dataset, ", ".join(tables))
    else:
        zc_api = get_zc_benchmark_api(ss_type, form.dataset)
    proxy = proxy or get_space(space).default_proxy
    zc_api.check_names([proxy], "proxy")
    keys = sorted(zc_api)
    n_test = min(test_size, len(keys) - max(train_sizes))
    if n_test < 10:
        raise SystemExit(f"{ss_type}: {len(keys)} architectures leave {n_test} for testing; use smaller --train-sizes")
    enc = {k: encode_spec(ast.literal_eval(k), EncodingType.ADJACENCY_ONE_HOT, ss_type) for k in keys}
    y = {k: zc_api[k]["val_accuracy"] for k in keys}
    zc = {k: {c: zc_api[k][c]["score"] for c in zc_api.columns} for k in keys}
    rows = {n: {"xgb": [], "xgb+zc": [], "proxy": []} for n in train_sizes}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        order = [keys[i] for i in rng.permutation(len(keys))]
        test, pool = order[:n_test], order[n_test:]
        ytest = [y[k] for k in test]
        tau_proxy = stats.kendalltau([zc[k][proxy] for k in test], ytest).statistic
        for n in train_sizes:
            train = pool[:n]
            xtrain, ytrain = [enc[k] for k in train], [y[k] for k in train]
            for name, use_zc in (("xgb", False), ("xgb+zc", True)):
                set_seed(seed)
                ens = Ensemble(num_ensemble=1, ss_type=ss_type, predictor_type="xgb", zc=use_zc, zc_only=False)
                info = None
                if use_zc:
                    ens.set_pre_computations(xtrain_zc_info={"zero_cost_scores": [zc[k] for k in train]})
                    info = [{"zero_cost_scores": zc[k]} for k in test]
                ens.fit(xtrain, ytrain)
                pred = np.mean(ens.query([enc[k] for k in test], info), axis=0)
                rows[n][name].append(float(stats.kendalltau(pred, ytest).statistic))
            rows[n]["proxy"].append(float(tau_proxy))
    return {"search_space": ss_type, "benchmark": form.benchmark, "n_archs": len(keys), "n_test": n_test,
            "seeds": seeds, "proxy": proxy, "zc_features": list(zc_api.columns), "table": zc_api.source,
            "kendall_tau": {str(n): v for n, v in rows.items()}}


def format_result(r) -> str:
    lines = [f"{r['benchmark']} (NASLib '{r['search_space']}'): {r['n_archs']} architectures, test set {r['n_test']}, "
             f"{r['seeds']} seeds; Kendall tau, mean +- std over seeds",
             f"  zero-cost features: {', '.join(r['zc_features'])} (from {r['table']})",
             f"| train size | XGBoost (encoding) | XGBoost (encoding + zero-cost) | {r['proxy']} alone |",
             "|---:|---:|---:|---:|"]
    for n, cols in r["kendall_tau"].items():
        cells = [f"{np.mean(cols[c]):.3f} +- {np.std(cols[c]):.3f}" for c in ("xgb", "xgb+zc", "proxy")]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", action="append", default=None, help="NASLib's name of a space (repeatable; default nlp, bert)")
    ap.add_argument("--train-sizes", default="20,50,100,200,400")
    ap.add_argument("--test-size", type=int, default=500)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--proxy", default=None, help="the raw proxy to compare (default: the space's default proxy)")
    ap.add_argument("--table", action="append", default=None, help="shipped table(s) to use instead of NASLib's look-up")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.train_sizes.split(",")]
    out = []
    for ss in args.space or ["nlp", "bert"]:
        start = time.perf_counter()
        r = run_space(ss, sizes, args.test_size, args.seeds, args.proxy, args.table)
        r["seconds"] = round(time.perf_counter() - start, 1)
        out.append(r)
        print(format_result(r) + "\n", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
