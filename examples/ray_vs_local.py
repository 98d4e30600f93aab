"""Wall time of one benchmark run with local workers against the same run on Ray.

    python examples/ray_vs_local.py [--limit 400] [--cpus 2]

Runs ``nni-zerocost benchmark nasbench-nlp --proxy hidden_covariance --limit N --no-store
--json`` three ways, one thread per scoring process each time:
1. ``--workers CPUS`` (local processes);
2. ``--ray local`` (a private Ray instance started and stopped by the command);
3. ``--ray auto`` against a Ray cluster started beforehand (``ray start --head --num-cpus CPUS``
   on 127.0.0.1, no dashboard), which is how a cluster is used: its start-up is not the run's.
Prints the command's own scoring-loop wall time (``wall_seconds``: worker or task start-up
included, data loading not), the whole command's wall time, Ray's overhead per architecture
against the local run, and whether the correlations agree to the last digit.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time


def bench(extra, limit, env):
    cmd = [sys.executable, "-m", "nni_zerocost.cli", "benchmark", "nasbench-nlp", "--proxy", "hidden_covariance",
           "--limit", str(limit), "--no-store", "--json", "--no-progress", "--device", "cpu", "--threads", "1", *extra]
    start = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    out = json.loads(p.stdout)
    return out, time.perf_counter() - start


def _correlations(out):
    """What the run computed, without its timings."""
    return {p: {k: v for k, v in r.items() if "seconds" not in k} for p, r in out["proxies"].items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=400)
    ap.add_argument("--cpus", type=int, default=2)
    args = ap.parse_args()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    rows = []
    local, local_cmd = bench(["--workers", str(args.cpus)], args.limit, env)
    rows.append((f"--workers {args.cpus}", local, local_cmd))
    ray_local, ray_local_cmd = bench(["--ray", "local"], args.limit, env)
    rows.append(("--ray local (starts Ray)", ray_local, ray_local_cmd))
    ray_bin = shutil.which("ray") or os.path.join(os.path.dirname(sys.executable), "ray")
    subprocess.run([ray_bin, "start", "--head", "--num-cpus", str(args.cpus), "--include-dashboard=false",
                    "--node-ip-address=127.0.0.1", "--disable-usage-stats"], env=env, check=True,
                   capture_output=True)
    try:
        ray_auto, ray_auto_cmd = bench(["--ray", "auto"], args.limit, env)
        rows.append(("--ray auto (cluster already up)", ray_auto, ray_auto_cmd))
    finally:
        subprocess.run([ray_bin, "stop"], env=env, capture_output=True)
    base = local["wall_seconds"] / args.limit
    print(f"{args.limit} NAS-Bench-NLP cells, hidden_covariance, {args.cpus} CPUs, one thread per process\n")
    print("| run | scoring wall (s) | command wall (s) | s/arch | overhead/arch vs local | tau | rho |")
    print("|---|---|---|---|---|---|---|")
    for name, out, cmd_wall in rows:
        per = out["wall_seconds"] / args.limit
        hc = out["proxies"]["hidden_covariance"]
        print(f"| {name} | {out['wall_seconds']:.1f} | {cmd_wall:.1f} | {per:.3f} | {100 * (per / base - 1):+.1f}% "
              f"| {hc['kendall_tau']:.4f} | {hc['spearman']:.4f} |")
    same = all(_correlations(r[1]) == _correlations(local) for r in rows)
    print(f"\ncorrelations identical in all runs: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
