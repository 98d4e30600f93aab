"""nni-zerocost's precomputed tables as NASLib zero-cost benchmarks (NAS-Bench-Suite-Zero layout).

NASLib's zero-cost code (``get_zc_benchmark_api(search_space, dataset)``, its ZC runners and
evaluators) reads ``naslib/data/zc_<search_space>.json`` as ``{dataset: {str(graph.get_hash()):
{proxy: {"score": s, "time": t}, ..., "val_accuracy": y}}}``.  This module writes that layout
for any space with a benchmark, keyed by the compacts of :mod:`naslib_ext.search_spaces`; the
names (``<search_space>`` = the form's ``type_name``, the dataset key = its ``dataset``) come from
each space's :class:`~nni_zerocost.spaces.base.NASLibForm`::

    python -m naslib_ext.zc_benchmark --benchmark nasbench-nlp --out NASLib/naslib/data/zc_nlp.json

Beside the dataset the file holds one more key, ``"nni_zerocost"``: what it holds (space,
benchmark, tables, each column's scoring request and batch fingerprint).  NASLib ignores it;
:class:`ZeroCostTable` reads it, so that an architecture missing from the file is scored on the
fly with exactly the column's request instead of NASLib's ``KeyError``.

``val_accuracy`` is ``form.metrics["VAL_ACCURACY"]`` of the benchmark's primary value (``100 -
test loss`` on NAS-Bench-NLP, NASLib's NLP convention; the GLUE score on the BERT benchmark).

This module imports no NASLib (the shipped tables' tests use :func:`naslib_zc_json` without it).
"""
from __future__ import annotations

import argparse
import ast
import json
import math
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from nni_zerocost.benchmarks.base import get_benchmark, list_benchmarks
from nni_zerocost.benchmarks.tables import FOLDER, PrecomputedTable, _settings, list_precomputed, precomputed, read_table
from nni_zerocost.data import data_dir, resolve_corpus
from nni_zerocost.errors import BadInputError, DataError, ZeroCostError
from nni_zerocost.spaces import get_space

#: the score NASLib's ZeroCost gives a NaN measure (and our predictor an architecture without a score)
NO_SCORE = -1e8
META_KEY = "nni_zerocost"


def naslib_names() -> Dict[str, tuple]:
    """``{benchmark: (NASLib search-space name, dataset key)}`` from the spaces' NASLib forms."""
    out = {}
    for b in list_benchmarks():
        form = get_space(get_benchmark(b).space).naslib_form()
        out[b] = (form.type_name, form.dataset)
    return out


def naslib_zc_json(tables: Sequence[PrecomputedTable], *, arch_key, val_accuracy,
                   no_score: float = NO_SCORE) -> Dict[str, Dict[str, Any]]:
    """NASLib's zero-cost benchmark dict, ``{dataset: {arch_str: {proxy: {"score": s, "time": t},
    ..., "val_accuracy": y}}}``.

    ``arch_key(arch_id)`` gives NASLib's key (``str`` of it is used) and ``val_accuracy(arch_id)``
    the benchmark value.  Scores are sign-normalised (higher = better), as our NASLib predictor
    returns them; no score is ``no_score``.  Architectures with one NASLib key are merged: their
    values averaged, no score if any has none.  Architectures whose ``val_accuracy`` is None are
    left out (NASLib needs one for every entry).  A column in several tables is taken once,
    from the first, when the tables agree on it; otherwise it is refused.
    """
    if not tables:
        raise BadInputError("tables", "give at least one table")
    benchmarks = {t.benchmark for t in tables}
    if len(benchmarks) != 1:
        raise BadInputError("tables", f"all tables must be of one benchmark, got {sorted(benchmarks)}")
    dataset = naslib_names()[tables[0].benchmark][1]
    acc: Dict[str, Dict[str, Any]] = {}
    ids_of: Dict[str, set] = {}
    taken: Dict[str, PrecomputedTable] = {}
    for t in tables:
        for c in t.columns:
            if c in taken:
                if not _same_column(taken[c], t, c):
                    raise BadInputError("tables", f"column {c!r} is in tables {taken[c].name!r} and {t.name!r} with "
                                                  "different values (other settings); export one of them")
                continue
            taken[c] = t
            scores = t.scores(c)
            for r in t.rows:
                key = str(arch_key(r["arch_id"]))
                ids_of.setdefault(key, set()).add(r["arch_id"])
                slot = acc.setdefault(key, {}).setdefault(c, ([], []))
                slot[0].append(scores[r["arch_id"]])
                slot[1].append(r["seconds"].get(c) or 0.0)
    out: Dict[str, Dict[str, Any]] = {}
    for key, cols in acc.items():
        accs = [val_accuracy(i) for i in sorted(ids_of[key], key=str)]
        accs = [float(a) for a in accs if a is not None and math.isfinite(a)]
        if not accs:  # no benchmark value (e.g. a cell with no finite PTB run): left out
            continue
        entry = out[key] = {}
        for c, (ss, ts) in cols.items():
            finite = [x for x in ss if x is not None]
            entry[c] = {"score": no_score if len(finite) < len(ss) else sum(finite) / len(finite),
                        "time": sum(ts) / len(ts)}
        entry["val_accuracy"] = sum(accs) / len(accs)
    return {dataset: out}


def _same_column(a: PrecomputedTable, b: PrecomputedTable, c: str) -> bool:
    va, vb = a.values(c), b.values(c)
    return va.keys() == vb.keys() and all(
        (va[k] is None and vb[k] is None) or (va[k] is not None and vb[k] is not None
                                              and math.isclose(va[k], vb[k], rel_tol=1e-9)) for k in va)


# -- which tables -------------------------------------------------------------------------------------
def default_tables(benchmark: str, folder: Optional[Path] = None) -> List[PrecomputedTable]:
    """The shipped tables of ``benchmark`` computed with the space's defaults (embedded batch,
    default context options), merged by :func:`naslib_zc_json`."""
    folder = Path(folder or FOLDER)
    space = get_space(get_benchmark(benchmark).space)
    defaults = {k: o.default for k, o in space.context_options().items()}
    out = []
    for name in list_precomputed(folder):
        meta = json.loads((folder / f"{name}.json").read_text())
        settings = _settings(meta)
        if meta["benchmark"] == benchmark and settings["batch"] == "embedded" and settings["device"] == "cpu" \
                and all(settings.get(k, v) == v for k, v in defaults.items()):
            out.append(read_table(folder / f"{name}.csv.gz", meta))
    if not out:
        raise BadInputError("benchmark", f"no shipped table of it with the default settings; shipped: "
                                         f"{', '.join(list_precomputed(folder)) or 'none'}", repr(benchmark))
    return out


def column_request(table: PrecomputedTable, column: str) -> Dict[str, Any]:
    """The scoring request (:class:`~nni_zerocost.plan.ScoringRequest` JSON) that computed a column."""
    prov = table.provenance
    options = {k: v for k, v in _settings({"provenance": prov, "benchmark": table.benchmark, "name": table.name}).items()
               if k not in ("benchmark", "device", "batch", "seed", "name")}
    batch = prov.get("batch")
    if batch not in ("embedded", "ptb"):
        corpus = "?"  # an unnamed corpus: not reproducible on the fly
    else:
        corpus = None if batch == "embedded" else "ptb"
    return {"proxies": [column], "space": get_benchmark(table.benchmark).space, "seed": prov.get("seed", 0),
            "corpus": corpus, "batch_size": None, "seq_len": None, "device": prov.get("device", "cpu"),
            "options": options}


def zc_benchmark(benchmark: str, tables: Optional[Sequence[PrecomputedTable]] = None, data: Optional[str] = None,
                 **filters: Any) -> Dict[str, Any]:
    """The NASLib zero-cost dict of ``benchmark`` from ``tables`` (default: :func:`default_tables`,
    or the one shipped table matching ``filters``), with what it holds under ``"nni_zerocost"``."""
    names = naslib_names()
    if benchmark not in names:
        raise BadInputError("benchmark", f"unknown; valid: {', '.join(names)}", repr(benchmark))
    if tables is None:
        tables = [precomputed(benchmark, **filters)] if filters else default_tables(benchmark)
    bench = get_benchmark(benchmark)
    space = get_space(bench.space)
    form = space.naslib_form()
    entries = {e.arch_id: e for e in bench.load(data_dir(data, bench))}

    def entry(arch_id):
        if arch_id not in entries:
            raise DataError(f"architecture {arch_id!r} of the table is not in the {benchmark} benchmark")
        return entries[arch_id]

    def val_accuracy(arch_id):  # None: no finite benchmark value (the architecture is left out)
        value = entry(arch_id).truth.get(bench.primary)
        if value is None or not math.isfinite(value):
            return None
        return form.metrics["VAL_ACCURACY"](float(value))

    out = naslib_zc_json(tables, arch_key=lambda i: form.compact(entry(i).arch), val_accuracy=val_accuracy)
    columns: Dict[str, Any] = {}
    for t in tables:
        for c in t.columns:
            columns.setdefault(c, {"table": t.name, "request": column_request(t, c),
                                   "batch_fingerprint": t.provenance.get("batch_fingerprint"),
                                   "higher_is_better": t.higher_is_better[c]})
    out[META_KEY] = {"space": bench.space, "search_space": form.type_name, "dataset": form.dataset,
                     "benchmark": benchmark, "tables": [t.name for t in tables], "columns": columns}
    return out


# -- what NASLib reads ----------------------------------------------------------------------------------
class ZeroCostTable(dict):
    """A NASLib ``zc_api`` (``{str(compact): {proxy: {"score", "time"}, "val_accuracy"}}``) that
    knows what it holds (:attr:`columns`) and scores an architecture it lacks on the fly with
    each column's own request (the same batch, seed and options; refused when the batch here
    is not the table's), instead of NASLib's ``KeyError``.  Scored entries are kept."""

    def __init__(self, entries: Mapping[str, Any], meta: Optional[Mapping[str, Any]], source: str):
        super().__init__(entries)
        self.meta = dict(meta or {})
        self.source = source
        self.columns = list((self.meta.get("columns") or {}).keys()) or sorted(
            {k for e in self.values() for k in e if k != "val_accuracy"})
        self._plans: Dict[str, Any] = {}

    def check_names(self, names: Sequence[str], what: str = "zc_names") -> None:
        """One-line :class:`BadInputError` when a name is not a column of this table."""
        lacking = [n for n in names if n not in self.columns]
        if lacking:
            raise BadInputError(what, f"{', '.join(map(repr, lacking))} not in the zero-cost table of {self.source}; "
                                      f"it holds: {', '.join(self.columns)}")

    def __missing__(self, key: str):
        if not self.meta.get("columns"):
            raise KeyError(f"{key} is not in {self.source}, which says nothing about how it was computed "
                           "(export it with python -m naslib_ext.zc_benchmark to score missing architectures)")
        space = self.meta["space"]
        form = get_space(space).naslib_form()
        try:
            compact = ast.literal_eval(key) if isinstance(key, str) else key
            arch = form.arch(compact)
        except (ValueError, SyntaxError, ZeroCostError) as e:
            raise KeyError(f"{key!r} is not an architecture of the {space!r} space ({e})") from None
        entry: Dict[str, Any] = {}
        for c in self.columns:
            from nni_zerocost.runner import raise_for_error, score_one

            rec = score_one(self._job(c), arch, key)
            raise_for_error(rec)
            result = rec.results[c]
            entry[c] = {"score": float(result.score) if result.ok else NO_SCORE, "time": result.seconds}
        truth = _benchmark_value(self.meta.get("benchmark"), arch)
        if truth is not None:
            entry["val_accuracy"] = form.metrics["VAL_ACCURACY"](truth)
        self[key] = entry
        return entry

    def _job(self, column: str):
        """The checked job that computed ``column`` (its request, no store): what scores a
        missing architecture on the fly."""
        if column not in self._plans:
            from nni_zerocost.job import ScoringJob, check_job

            info = self.meta["columns"][column]
            request = dict(info["request"])
            if request.get("corpus") == "?":
                raise DataError(f"column {column!r} of {self.source} was computed on a corpus it does not name; "
                                "it cannot be scored on the fly")
            request["corpus"] = resolve_corpus(request.get("corpus"))
            checked = check_job(ScoringJob(request, store=None), need_architectures=False)
            want = info.get("batch_fingerprint")
            if want and checked.plan.data_fingerprint != want:
                raise DataError(f"column {column!r} of {self.source} was computed on batch {want}; the batch here is "
                                f"{checked.plan.data_fingerprint} (a missing or different corpus), so it cannot be "
                                "scored on the fly")
            self._plans[column] = checked
        return self._plans[column]


def _benchmark_value(benchmark: Optional[str], arch) -> Optional[float]:
    if not benchmark:
        return None
    from .search_spaces import benchmark_table

    truth = benchmark_table(benchmark).truth(arch)
    value = None if truth is None else truth.get(get_benchmark(benchmark).primary)
    return float(value) if value is not None and math.isfinite(value) else None


def load_zc_api(data: Mapping[str, Any], dataset: str, source: str) -> ZeroCostTable:
    """The :class:`ZeroCostTable` of dataset ``dataset`` in a loaded zero-cost file."""
    datasets = [k for k in data if k != META_KEY]
    if dataset not in datasets:
        raise BadInputError("dataset", f"not in {source} (it holds: {', '.join(datasets) or 'nothing'})", repr(dataset))
    return ZeroCostTable(data[dataset], data.get(META_KEY), source)


def shipped_zc_api(space: str) -> ZeroCostTable:
    """The zero-cost table of a space's benchmark from the shipped tables (:func:`default_tables`)."""
    form = get_space(space).naslib_form()
    if not form.benchmark:
        raise BadInputError("search_space", f"the {space!r} space has no benchmark, so no zero-cost table")
    data = zc_benchmark(form.benchmark)
    return load_zc_api(data, form.dataset, f"nni-zerocost's shipped tables {', '.join(data[META_KEY]['tables'])}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    names = naslib_names()
    ap = argparse.ArgumentParser(prog="python -m naslib_ext.zc_benchmark", description=__doc__.split("\n")[0])
    ap.add_argument("--benchmark", required=True, choices=sorted(names))
    ap.add_argument("--table", action="append", default=None,
                    help="shipped table name(s) to merge (default: those with the space's default settings); "
                         f"shipped: {', '.join(list_precomputed()) or 'none'}")
    ap.add_argument("--data-dir", default=None, help="benchmark data folder (default as for the CLI)")
    ap.add_argument("--out", required=True,
                    help=f"output, e.g. NASLib/naslib/data/zc_<{'|'.join(sorted({n for n, _ in names.values()}))}>.json")
    args = ap.parse_args(argv)
    try:
        tables = None if not args.table else [precomputed(args.benchmark, name=n) for n in args.table]
        zc = zc_benchmark(args.benchmark, tables, args.data_dir)
    except ZeroCostError as e:
        print(f"{ap.prog}: error: {e}", file=sys.stderr)
        return 2
    Path(args.out).write_text(json.dumps(zc))
    meta = zc[META_KEY]
    archs = zc[meta["dataset"]]
    print(f"wrote {args.out}: NASLib search space {meta['search_space']!r}, dataset {meta['dataset']!r}, "
          f"{len(archs)} architectures; tables {', '.join(meta['tables'])}")
    print(f"zc_names it holds: {', '.join(meta['columns'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
