"""Unattended-scale check: resident memory over many architectures, and the ``--workers`` speed-up.

    python examples/scale_check.py memory --n 1000
    python examples/scale_check.py workers --n 40 --workers 1 2

``memory`` scores ``--n`` random cells of the NAS-Bench-NLP space in one process through the
same loop as the CLI (``runner.score_many``, no store) and prints the resident set size after
the first 50 architectures and at the end (the reliability issue asks for at most +100 MB).
``workers`` scores the same ``--n`` cells once per ``--workers`` value and prints wall seconds,
architectures per second and whether the scores are bit-identical to the first value's.
Both use the default batch (50 x 70 Zipf tokens) and the official model sizes unless told
otherwise.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _job_and_cells(args):
    from nni_zerocost import make_plan
    from nni_zerocost.spaces import get_space

    space = get_space("rnn")
    rng = np.random.default_rng(args.seed)
    cells = [(i, space.to_dict(space.sample(rng))) for i in range(args.n)]
    sizes = {k: v for k, v in (("emsize", args.emsize), ("nhid", args.nhid)) if v}
    return make_plan("rnn", args.proxy, seed=args.seed, **sizes), cells


def memory(args):
    from nni_zerocost.runner import score_many

    job, cells = _job_and_cells(args)
    start, after50, statuses = time.perf_counter(), None, {}
    for k, rec in enumerate(score_many(job, cells, None, progress=not args.no_progress, total=len(cells)), 1):
        statuses[rec.status] = statuses.get(rec.status, 0) + 1
        if k == 50:
            gc.collect()
            after50 = _rss_mb()
    gc.collect()
    end = _rss_mb()
    print(f"{len(cells)} architectures, proxies {args.proxy}, {time.perf_counter() - start:.0f} s; statuses {statuses}")
    print(f"RSS after 50: {after50:.1f} MB; after {len(cells)}: {end:.1f} MB; growth {end - after50:+.1f} MB")


def workers(args):
    from nni_zerocost.runner import score_many

    job, cells = _job_and_cells(args)
    first, base = None, None
    for w in args.workers:
        start = time.perf_counter()
        values = [r.values for r in score_many(job, cells, None, workers=w, progress=False)]
        wall = time.perf_counter() - start
        base = base or wall
        same = "reference" if first is None else ("bit-identical" if values == first else "DIFFERENT")
        first = first or values
        print(f"--workers {w}: {wall:.1f} s, {len(cells) / wall:.2f} arch/s, speed-up {base / wall:.2f}x, {same}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["memory", "workers"])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--proxy", action="append", help="proxy spec (repeatable); default hidden_covariance + params")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--emsize", type=int, default=0, help="shrink the model (0 = official 400)")
    ap.add_argument("--nhid", type=int, default=0, help="shrink the model (0 = official 600)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    args.proxy = args.proxy or ["hidden_covariance", "params"]
    {"memory": memory, "workers": workers}[args.what](args)


if __name__ == "__main__":
    main()
