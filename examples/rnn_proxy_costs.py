"""What sharing passes saves: every RNN proxy on one context vs each proxy on a fresh context.

    python examples/rnn_proxy_costs.py --n 20

For each of ``--n`` random cells of the NAS-Bench-NLP space (default batch: 50 sequences of 70
Zipf tokens, no data needed), times (a) all proxies computed on one shared context, and (b)
each proxy alone on a fresh context (model built again, passes run again).  Model building is
included in both.  Prints per-proxy mean seconds alone and the totals.  Times are CPU seconds
of this process (one torch thread by default), so a busy shared machine does not distort them.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPECS = [
    "params",
    "hidden_covariance",
    "activation_distance",
    "jacobian_covariance",
    "jacobian_cosine",
    "jacobian_cosine:noise=more",
    "synaptic_saliency",
    "hidden_synaptic_saliency",
    "grad_norm",
    "snip",
    "grasp",
    "fisher",
]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20, help="number of random cells (default 20)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--specs", nargs="*", default=SPECS)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from nni_zerocost import make_plan
    from nni_zerocost.proxies.base import compute, get_proxy
    from nni_zerocost.spaces import get_space

    space = get_space("rnn")
    batch = space.default_batch(0)
    rng = np.random.default_rng(args.seed)
    cells = [space.sample(rng) for _ in range(args.n)]
    parsed = [(r.spec, r.name, r.options) for r in make_plan("rnn", args.specs, batch=batch).requests]

    together, alone = [], {s: [] for s in args.specs}
    for k, cell in enumerate(cells, start=1):
        t = time.process_time()
        with space.context(cell, batch, seed=0) as ctx:
            for _, name, opts in parsed:
                compute(get_proxy(name), ctx, **opts)
        together.append(time.process_time() - t)
        for spec, name, opts in parsed:
            t = time.process_time()
            with space.context(cell, batch, seed=0) as ctx:
                compute(get_proxy(name), ctx, **opts)
            alone[spec].append(time.process_time() - t)
        print(f"  cell {k}/{len(cells)}: together {together[-1]:.1f}s, alone "
              f"{sum(v[-1] for v in alone.values()):.1f}s", file=sys.stderr)

    print(f"{len(cells)} cells, batch {tuple(batch.tokens.shape)}, {args.threads} thread(s); "
          f"mean CPU seconds per cell")
    for spec in args.specs:
        print(f"  {spec:32s} alone {np.mean(alone[spec]):7.2f}")
    sum_alone = float(np.sum([np.sum(v) for v in alone.values()]))
    print(f"  {'sum of each alone':32s}       {sum_alone / len(cells):7.2f}")
    print(f"  {'all together on one context':32s}       {np.mean(together):7.2f}"
          f"   ({sum_alone / np.sum(together):.2f}x less)")


if __name__ == "__main__":
    main()
