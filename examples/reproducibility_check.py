"""How far do recomputed scores drift from the shipped tables under other kernels and thread counts?

Recomputes the first rows of every shipped CPU table (embedded batch) and prints, per table and
column, the largest relative difference from the shipped value.  With ``--matrix`` it runs itself
once per setting (numpy's OpenBLAS kernel, torch's vector kernels, 1 or 2 threads) in fresh
processes, since these variables are read when the libraries load.  docs/reproducibility.md
holds the table this prints.

    python examples/reproducibility_check.py --matrix --rows 12
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

#: (label, environment) of each setting --matrix runs; unset variables keep the library's choice
SETTINGS = [
    ("default kernels, 1 thread", {"NNI_ZEROCOST_THREADS": "1"}),
    ("default kernels, 2 threads", {"NNI_ZEROCOST_THREADS": "2"}),
    ("OPENBLAS_CORETYPE=Sandybridge, 1 thread", {"OPENBLAS_CORETYPE": "Sandybridge", "NNI_ZEROCOST_THREADS": "1"}),
    ("OPENBLAS_CORETYPE=Nehalem, 2 threads", {"OPENBLAS_CORETYPE": "Nehalem", "NNI_ZEROCOST_THREADS": "2"}),
    ("ATEN_CPU_CAPABILITY=default + MKL_ENABLE_INSTRUCTIONS=SSE4_2, 1 thread",
     {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "NNI_ZEROCOST_THREADS": "1"}),
]


def drift(rows: int) -> dict:
    """``{table: {column: largest relative difference}}`` over the first ``rows`` rows."""
    import nni_zerocost as nz
    from nni_zerocost.benchmarks.base import get_benchmark
    from nni_zerocost.benchmarks.study import select_entries
    from nni_zerocost.benchmarks.tables import FOLDER, read_table
    from nni_zerocost.data import data_dir
    from nni_zerocost.reproducibility import relative_difference

    out = {}
    for meta_path in sorted(FOLDER.glob("*.json")):
        meta = json.loads(meta_path.read_text())
        table = read_table(FOLDER / f"{meta_path.stem}.csv.gz", meta)
        prov = table.provenance
        if not prov["device"].startswith("cpu") or prov["batch"] != "embedded":
            continue
        bench = get_benchmark(table.benchmark)
        entries = bench.load(data_dir(None, bench))
        if prov["limit"] is not None:
            entries = select_entries(entries, bench, prov["limit"], prov["seed"])
        by_id = {e.arch_id: e for e in entries}
        options = table.options  # as the table was computed (the as-trained BERT table: as_trained=True)
        worst = {c: 0.0 for c in table.columns}
        for row in table.rows[:rows]:
            res = nz.score(bench.space, by_id[row["arch_id"]].arch, table.columns, seed=prov["seed"], device="cpu",
                           **options)
            for c in table.columns:
                want, got = row["values"][c], (res[c].raw if res[c].ok else None)
                if want is None or got is None:
                    worst[c] = worst[c] if want is None and got is None else float("inf")
                else:
                    worst[c] = max(worst[c], relative_difference(want, got))
        out[meta_path.stem] = worst
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=12, help="rows recomputed per table")
    ap.add_argument("--matrix", action="store_true", help="run every setting in a fresh process")
    args = ap.parse_args()
    if not args.matrix:
        from nni_zerocost.reproducibility import describe

        info = describe()
        print(json.dumps({"kernels": [p["kernel"] for p in info["thread pools"]],
                          "torch capability": info["torch cpu capability"], "drift": drift(args.rows)}))
        return
    from nni_zerocost.reproducibility import cpu_model

    print(f"CPU: {cpu_model()}; {args.rows} rows per table\n")
    print("| setting | kernels (OpenBLAS / torch) | table | column | largest relative difference |")
    print("|---|---|---|---|---:|")
    for label, env in SETTINGS:
        clean = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "ATEN_CPU_CAPABILITY",
                                                                   "MKL_ENABLE_INSTRUCTIONS")}
        p = subprocess.run([sys.executable, __file__, "--rows", str(args.rows)], env={**clean, **env},
                           capture_output=True, text=True, check=True)
        res = json.loads(p.stdout.strip().splitlines()[-1])
        kernels = f"{'/'.join(k for k in res['kernels'] if k)} / {res['torch capability']}"
        for table, columns in res["drift"].items():
            for column, d in columns.items():
                print(f"| {label} | {kernels} | {table} | `{column}` | {d:.2g} |")


if __name__ == "__main__":
    main()
