"""Export nni-zerocost's precomputed tables as NASLib zero-cost benchmark files.

NASLib's zero-cost-aware code (``get_zc_benchmark_api(search_space, dataset)``, the
``zc_api`` of its optimizers and predictors) reads ``data/zc_<search_space>.json`` and looks
an architecture up as ``zc_api[str(graph.get_hash())][proxy]["score"]``, with the benchmark
value under ``"val_accuracy"``.  This writes that layout for our NLP spaces, keyed by the
hashes of :class:`~naslib_ext.search_spaces.NasBenchNLPSpace` /
:class:`~naslib_ext.search_spaces.NasBenchBERTSpace`, so NASLib can use the shipped columns
instead of computing them::

    python -m naslib_ext.zc_benchmark --benchmark nasbench-nlp --out NASLib/naslib/data/zc_nlp.json

``val_accuracy`` follows the spaces' ``query(Metric.VAL_ACCURACY)``: ``100 - test loss`` on
NAS-Bench-NLP (NASLib's NLP convention), the GLUE score on the BERT benchmark.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from nni_zerocost.benchmarks.base import get_benchmark
from nni_zerocost.benchmarks.tables import NASLIB_NAMES, list_precomputed, naslib_zc_json, precomputed
from nni_zerocost.data import data_dir
from nni_zerocost.errors import BadInputError, DataError

from .predictors import NO_SCORE
from .search_spaces import LOSS_OFFSET, NasBenchBERTSpace, NasBenchNLPSpace

SPACE_CLASSES = {"nasbench-nlp": NasBenchNLPSpace, "nasbench-bert": NasBenchBERTSpace}


def zc_benchmark(benchmark: str, tables=None, data: Optional[str] = None, **filters: Any) -> Dict[str, Any]:
    """The NASLib zero-cost dict of ``benchmark`` from ``tables`` (default: the one shipped
    table matching ``filters``)."""
    if benchmark not in SPACE_CLASSES:
        raise BadInputError("benchmark", f"no NASLib space for it; valid: {', '.join(SPACE_CLASSES)}", repr(benchmark))
    if tables is None:
        tables = [precomputed(benchmark, **filters)]
    bench = get_benchmark(benchmark)
    entries = {e.arch_id: e for e in bench.load(data_dir(data, bench))}
    cls = SPACE_CLASSES[benchmark]
    keys: Dict[Any, str] = {}

    def arch_key(arch_id):
        if arch_id not in keys:
            if arch_id not in entries:
                raise DataError(f"architecture {arch_id!r} of the table is not in the {benchmark} benchmark")
            g = cls()
            g.set_core_arch(entries[arch_id].arch)
            keys[arch_id] = str(g.get_hash())
        return keys[arch_id]

    def val_accuracy(arch_id):  # None: no finite benchmark value (the architecture is left out)
        value = entries[arch_id].truth.get(bench.primary)
        if value is None:
            return None
        return LOSS_OFFSET - value if benchmark == "nasbench-nlp" else value

    return naslib_zc_json(tables, arch_key=arch_key, val_accuracy=val_accuracy, no_score=NO_SCORE)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m naslib_ext.zc_benchmark", description=__doc__.split("\n")[0])
    ap.add_argument("--benchmark", required=True, choices=sorted(SPACE_CLASSES))
    ap.add_argument("--table", action="append", default=None,
                    help="shipped table name(s) to merge (default: the only one of the benchmark); "
                         f"shipped: {', '.join(list_precomputed()) or 'none'}")
    ap.add_argument("--data-dir", default=None, help="benchmark data folder (default as for the CLI)")
    ap.add_argument("--out", required=True, help=f"output, e.g. NASLib/naslib/data/zc_<{'|'.join(n for n, _ in NASLIB_NAMES.values())}>.json")
    args = ap.parse_args(argv)
    try:
        tables = None if not args.table else [precomputed(args.benchmark, name=n) for n in args.table]
        zc = zc_benchmark(args.benchmark, tables, args.data_dir)
    except (BadInputError, DataError) as e:
        print(f"{ap.prog}: error: {e}", file=sys.stderr)
        return 2
    Path(args.out).write_text(json.dumps(zc))
    (dataset, archs), = zc.items()
    n_rows = len(tables[0].rows) if tables else len(precomputed(args.benchmark).rows)
    merged = (f" ({n_rows - len(archs)} table rows merged as duplicates or left out for lack of a "
              "benchmark value)") if n_rows > len(archs) else ""
    print(f"wrote {args.out}: dataset {dataset!r}, {len(archs)} architectures{merged}, proxies "
          f"{', '.join(sorted({k for a in archs.values() for k in a if k != 'val_accuracy'}))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
