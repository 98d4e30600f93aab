"""Two scoring jobs started together: do they share the cores, or oversubscribe them?

Runs pairs of ``nni-zerocost score --space rnn --proxy hidden_covariance --sample 8`` (seeds 4
and 5, fresh output files, as NNI trial concurrency 2 starts them), alternating the default
thread policy with one thread per job (``--threads 1``), on a quiet machine and beside a third
CPU-bound process.  Prints every pair's wall time (the slower job of the pair) and each arm's
median and slowest, as a Markdown table (docs/throughput.md holds it).

    python examples/concurrent_jobs.py --pairs 10
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARMS = {"default policy": [], "one thread per job": ["--threads", "1"]}


def pair(folder: Path, extra, tag: str) -> float:
    """Wall seconds until both jobs of one pair are done."""
    procs = []
    start = time.perf_counter()
    for seed in (4, 5):
        out = folder / f"{tag}-{seed}.jsonl"
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "nni_zerocost.cli", "score", "--space", "rnn", "--proxy", "hidden_covariance",
             "--sample", "8", "--seed", str(seed), "--out", str(out), "--no-store", "--no-progress", "--workers", "1",
             *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"a job failed: {err[-500:]}")
    return time.perf_counter() - start


def measure(pairs: int, loaded: bool):
    times = {arm: [] for arm in ARMS}
    busy = None
    if loaded:
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(1.0)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(pairs):
                for arm, extra in ARMS.items():  # alternating: both arms see the same conditions
                    times[arm].append(pair(Path(tmp), extra, f"{i}-{len(times[arm])}-{arm[:3]}"))
    finally:
        if busy is not None:
            busy.kill()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=10)
    args = ap.parse_args()
    print("| machine | arm | median s | slowest s | every pair, s |")
    print("|---|---|---:|---:|---|")
    for loaded in (False, True):
        times = measure(args.pairs, loaded)
        for arm, ts in times.items():
            print(f"| {'beside a busy process' if loaded else 'quiet'} | {arm} | {statistics.median(ts):.1f} | "
                  f"{max(ts):.1f} | {', '.join(f'{t:.1f}' for t in ts)} |", flush=True)
        ratio_median = statistics.median(times["default policy"]) / statistics.median(times["one thread per job"])
        ratio_max = max(times["default policy"]) / max(times["one thread per job"])
        print(f"|  | default / one thread | {ratio_median:.2f}x | {ratio_max:.2f}x | |", flush=True)


if __name__ == "__main__":
    main()
