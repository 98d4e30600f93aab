"""Measure the thread and worker policy against fixed settings, on a quiet and a loaded machine.

    python examples/thread_policy.py [--repeats 2] [--loads quiet,loaded] [--out docs/thread_policy.json]

Four cases, each run through the CLI exactly as a user runs it (``--no-store``, so every
architecture is computed):
- latency, rnn: ``score --space rnn --proxy hidden_covariance --sample 8`` (8 cells, one
  process): the model work per architecture the command prints;
- latency, bert: ``score --space bert --proxy synaptic_saliency --sample 4``: the same;
- throughput: ``score --space rnn --proxy hidden_covariance --sample 100``: the wall time;
- the README's first command (``search --space rnn --proxy hidden_covariance --strategy
  evolution --budget 60``, NNI's sequential engine, one process): the wall time;
each with the settings ``--threads 1``, ``--threads 2``, ``--workers 1/2`` combinations and the
default policy (no flag), once on a quiet machine and once beside one busy CPU-bound process
(``python -c "while True: pass"``, started 2 s before).  Prints a Markdown table: the best of
``--repeats`` runs per cell, and the policy's loss against the best fixed setting of its row.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

CASES = {
    "latency rnn (s/arch)": (["--space", "rnn", "--proxy", "hidden_covariance", "--sample", "8"], "per_arch"),
    "latency bert (s/arch)": (["--space", "bert", "--proxy", "synaptic_saliency", "--sample", "4"], "per_arch"),
    "throughput rnn, 100 cells (s wall)": (["--space", "rnn", "--proxy", "hidden_covariance", "--sample", "100"],
                                           "wall"),
    "latency README search (s wall)": (["search", "--space", "rnn", "--proxy", "hidden_covariance", "--strategy",
                                        "evolution", "--budget", "60", "--top", "5"], "wall"),
}
SETTINGS = {
    "latency": [("1 thread", ["--workers", "1", "--threads", "1"]), ("2 threads", ["--workers", "1", "--threads", "2"]),
                ("policy", [])],
    "throughput": [("1 worker x 1 thread", ["--workers", "1", "--threads", "1"]),
                   ("1 worker x 2 threads", ["--workers", "1", "--threads", "2"]),
                   ("2 workers x 1 thread", ["--workers", "2", "--threads", "1"]), ("policy", [])],
}
PRINTED = re.compile(r"([\d.]+) s wall: model work [\d.]+ s \(([\d.]+) s per architecture")


def run(args, env):
    search = args[0] == "search"
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out" if search else "o.jsonl")
        cmd = [sys.executable, "-m", "nni_zerocost.cli", *([] if search else ["score"]), *args, "--out", out,
               "--no-store", "--no-progress", "--device", "cpu"]
        start = time.perf_counter()
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp)
        elapsed = time.perf_counter() - start
    m = PRINTED.search(p.stderr)
    if p.returncode != 0 or not (m or search):
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr}")
    return {"wall": elapsed, "per_arch": float(m.group(2)) if m else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=None, help="also write the measurements as JSON")
    ap.add_argument("--loads", default="quiet,loaded", help="which machine states to measure (comma-separated)")
    args = ap.parse_args()
    loads = [x for x in ("quiet", "loaded") if x in args.loads.split(",")]
    env = {k: v for k, v in os.environ.items() if k != "NNI_ZEROCOST_THREADS"}
    table = {}
    for load in loads:
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load == "loaded" else None
        try:
            if busy:
                time.sleep(2)
            for case, (flags, measure) in CASES.items():
                for name, extra in SETTINGS[case.split()[0]]:
                    if "search" in case and "--workers" in extra:  # search: NNI's engine, one process
                        extra = extra[2:]
                    values = [run(flags + extra, env)[measure] for _ in range(args.repeats)]
                    table[(load, case, name)] = min(values)
                    print(f"{load:6} | {case:36} | {name:22} | {min(values):8.3f}", file=sys.stderr, flush=True)
        finally:
            if busy:
                busy.kill()
                busy.wait()
    print(f"machine: {os.cpu_count()} cores; best of {args.repeats} runs per cell; loss = policy / best fixed - 1\n")
    for case in CASES:
        names = [n for n, _ in SETTINGS[case.split()[0]]]
        print(f"| {case} | " + " | ".join(names) + " | policy's loss |")
        print("|---" * (len(names) + 2) + "|")
        for load in loads:
            row = [table[(load, case, n)] for n in names]
            best = min(row[:-1])
            print(f"| {load} | " + " | ".join(f"{v:.3f}" for v in row) + f" | {100 * (row[-1] / best - 1):+.0f}% |")
        print()
    if args.out:
        with open(args.out, "w") as f:
            json.dump([{"load": l, "case": c, "setting": n, "value": v} for (l, c, n), v in table.items()], f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
