"""Precomputed per-architecture proxy tables, shipped with the package.

Each table is two files in ``benchmarks/data/precomputed/``:

* ``<name>.csv.gz``: one row per benchmark architecture: ``arch_id``, ``arch_hash``, then for
  every proxy spec its raw value (``repr`` of the float, empty = no score), then
  ``seconds:<spec>`` (the proxy's own seconds on that architecture) and ``flags`` (``spec:
  reason`` pairs joined by `` | ``; empty when none);
* ``<name>.json``: what produced it (``provenance``: commit, the exact ``nni-zerocost score``
  command, device, seconds, batch, init, seed, package version, CPU and wall time where
  measured) and per column whether higher is better.

Tables are built only from the CLI's own output (``score --benchmark ... --out X.jsonl``) by
``nni-zerocost data build-table``, which re-checks the command through
:func:`~nni_zerocost.make_plan` and hands the plan to :func:`write_table`; records that do not
match it (other proxies, other device, missing architectures) are refused, never filled in.

:func:`precomputed` reads them (NASLib's zero-cost layout is written by
:mod:`naslib_ext.zc_benchmark`).
"""
from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import math
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from ..version import __version__
from ..errors import BadInputError, DataError

FOLDER = Path(__file__).resolve().parent / "data" / "precomputed"
FLAG_SEP = " | "


@dataclasses.dataclass
class PrecomputedTable:
    """One shipped table: ``rows`` (``arch_id``, ``arch_hash``, ``values`` {spec: raw or None},
    ``seconds`` {spec: s}, ``flags`` {spec: reason}) and its ``provenance``."""

    name: str
    benchmark: str
    columns: List[str]
    rows: List[Dict[str, Any]]
    provenance: Dict[str, Any]
    higher_is_better: Dict[str, bool]

    def values(self, proxy: str) -> Dict[Any, Optional[float]]:
        """``{arch_id: raw value}`` of one column (None = no score)."""
        self._check(proxy)
        return {r["arch_id"]: r["values"][proxy] for r in self.rows}

    def scores(self, proxy: str) -> Dict[Any, Optional[float]]:
        """``{arch_id: score}``, sign-normalised: higher is better (None = no score)."""
        sign = 1.0 if self.higher_is_better[proxy] else -1.0
        return {k: None if v is None else sign * v for k, v in self.values(proxy).items()}

    def _check(self, proxy: str) -> None:
        if proxy not in self.columns:
            raise BadInputError("proxy", f"not in table {self.name!r} (its columns: {', '.join(self.columns)})",
                                repr(proxy))

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def options(self) -> Dict[str, Any]:
        """The space's context options the table was computed with: what a recomputation passes."""
        return context_options(self.provenance)


def list_precomputed(folder: Optional[Path] = None) -> List[str]:
    """Names of the shipped tables."""
    folder = Path(folder or FOLDER)
    return sorted(p.name[: -len(".json")] for p in folder.glob("*.json"))


def context_options(provenance: Mapping[str, Any]) -> Dict[str, Any]:
    """A table's context options (tables written before ``options`` existed name ``init`` and
    ``as_trained`` in the provenance itself)."""
    return dict(provenance.get("options")
                or {k: provenance[k] for k in ("init", "as_trained") if provenance.get(k) is not None})


def _settings(meta: Mapping[str, Any]) -> Dict[str, Any]:
    """What a table was computed with: benchmark, device, batch, seed, name and the space's
    context options (tables written before ``options`` existed name ``init``/``as_trained``)."""
    prov = meta["provenance"]
    options = context_options(prov)
    return {"benchmark": meta["benchmark"], "device": prov["device"], "batch": prov.get("batch"),
            "seed": prov.get("seed"), "name": meta["name"], **options}


def precomputed(benchmark: str, proxy: Optional[str] = None, *, folder: Optional[Path] = None,
                **filters: Any) -> PrecomputedTable:
    """The shipped table of ``benchmark`` that has column ``proxy`` (any column when None) and
    matches ``filters`` (``init=``, ``batch="embedded"|"ptb"``, ``seed=``, ``device=``,
    ``as_trained=``, ``name=``).  With ``proxy`` the table holds that column only.

    Exactly one table must match: none or several is a :class:`BadInputError` listing what
    there is, so a result is never silently taken from another setting.
    """
    folder = Path(folder or FOLDER)
    metas = [json.loads((folder / f"{n}.json").read_text()) for n in list_precomputed(folder)]
    allowed = {"batch", "seed", "device", "name"} | {k for m in metas for k in _settings(m)}
    for k in filters:
        if k not in allowed:
            raise BadInputError(k, f"not a table setting; filter by {', '.join(sorted(allowed))}")
    match = [m for m in metas if m["benchmark"] == benchmark
             and (proxy is None or proxy in m["columns"])
             and all(_settings(m).get(k) == v for k, v in filters.items())]
    if len(match) != 1:
        have = "; ".join(f"{m['name']} ({', '.join(f'{k}={v}' for k, v in _settings(m).items() if k != 'name')}: "
                         f"{', '.join(m['columns'])})" for m in metas) or "none"
        what = "no table" if not match else f"{len(match)} tables ({', '.join(m['name'] for m in match)})"
        raise BadInputError("benchmark", f"{what} for this request{f' with column {proxy!r}' if proxy else ''}"
                            f"{f' and {filters}' if filters else ''}; shipped tables: {have}", repr(benchmark))
    table = read_table(folder / f"{match[0]['name']}.csv.gz", match[0])
    if proxy is not None:
        table.columns = [proxy]
        for r in table.rows:
            r["values"] = {proxy: r["values"][proxy]}
            r["seconds"] = {proxy: r["seconds"].get(proxy)}
            r["flags"] = {k: v for k, v in r["flags"].items() if k == proxy}
    return table


def read_table(path: Path, meta: Optional[Mapping[str, Any]] = None) -> PrecomputedTable:
    path = Path(path)
    if meta is None:
        meta = json.loads(path.with_name(path.name[: -len(".csv.gz")] + ".json").read_text())
    columns = list(meta["columns"])
    rows = []
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        want = ["arch_id", "arch_hash", *columns, *(f"seconds:{c}" for c in columns), "flags"]
        if header != want:
            raise DataError(f"header {header} does not match its provenance file's columns", str(path), 1)
        for lineno, rec in enumerate(reader, start=2):
            if len(rec) != len(want):
                raise DataError(f"expected {len(want)} fields, got {len(rec)}", str(path), lineno)
            n = len(columns)
            vals = {c: (float(v) if v else None) for c, v in zip(columns, rec[2:2 + n])}
            secs = {c: (float(v) if v else None) for c, v in zip(columns, rec[2 + n:2 + 2 * n])}
            flags = dict(item.split(": ", 1) for item in rec[-1].split(FLAG_SEP)) if rec[-1] else {}
            rows.append({"arch_id": _id(rec[0]), "arch_hash": rec[1], "values": vals, "seconds": secs, "flags": flags})
    return PrecomputedTable(meta["name"], meta["benchmark"], columns, rows, dict(meta["provenance"]),
                            dict(meta["higher_is_better"]))


def _id(text: str):
    try:
        return int(text)
    except ValueError:
        return text


# -- writing a table from the CLI's output -------------------------------------------------------
def write_table(records_path: Path, plan, bench, entries, command: str, name: str, *, limit: Optional[int] = None,
                folder: Optional[Path] = None, wall_seconds: Optional[float] = None,
                cpu_seconds: Optional[float] = None, machine: Optional[str] = None, commit: Optional[str] = None,
                note: Optional[str] = None) -> Path:
    """Write table ``name`` from the JSONL a ``score --benchmark`` run wrote to ``records_path``
    with the checked ``plan`` over ``entries``; returns the CSV path.

    Every record must carry exactly the plan's proxy columns and device, and every one of
    ``entries`` must be there once: missing ones stop the build, listed.
    """
    from ..store import read_jsonl

    want_ids = [e.arch_id for e in entries]
    by_id: Dict[Any, Dict[str, Any]] = {}
    for lineno, rec in read_jsonl(records_path):
        if rec.get("device") != plan.device_name:
            raise DataError(f"record computed on {rec.get('device')!r}, the command says {plan.device_name!r}",
                            str(records_path), lineno)
        missing = [s for s in plan.specs if s not in rec]
        if missing:
            raise DataError(f"record lacks the command's proxy column(s) {missing}", str(records_path), lineno)
        by_id[rec["arch_id"]] = rec
    absent = [i for i in want_ids if i not in by_id]
    if absent:
        raise DataError(f"{len(absent)} of {len(want_ids)} architectures have no record (first: {absent[:5]}); "
                        "finish the run (it resumes) before building", str(records_path))
    cols = list(plan.specs)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["arch_id", "arch_hash", *cols, *(f"seconds:{c}" for c in cols), "flags"])
    n_none = {c: 0 for c in cols}
    total = 0.0
    for i in want_ids:
        rec = by_id[i]
        vals = []
        for c in cols:
            v = rec[c]
            if v is None or (isinstance(v, float) and not math.isfinite(v)):
                n_none[c] += 1
                vals.append("")
            else:
                vals.append(repr(float(v)))
        ps = rec.get("proxy_seconds") or {}
        secs = ["" if ps.get(c) is None else f"{ps[c]:.4g}" for c in cols]
        total += float(rec.get("seconds") or 0.0)
        flags = FLAG_SEP.join(f"{k}: {v}" for k, v in sorted((rec.get("flags") or {}).items()))
        if "\n" in flags:
            raise DataError("a flag with a line break", str(records_path))
        w.writerow([i, rec.get("arch_hash") or "", *vals, *secs, flags])
    folder = Path(folder or FOLDER)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / f"{name}.csv.gz"
    with gzip.GzipFile(csv_path, "wb", mtime=0) as f:  # reproducible bytes
        f.write(buf.getvalue().encode("utf-8"))
    request = plan.scoring_request
    corpus = request.corpus if request is not None else None
    batch = "embedded" if corpus is None else ("ptb" if "ptb" in Path(corpus).name.lower() else "corpus")
    from ..spaces import get_space

    options = {k: o.default for k, o in get_space(bench.space).context_options().items() if o.default is not None}
    options.update(plan.context_options)
    meta = {
        "name": name, "benchmark": bench.name, "space": bench.space, "columns": cols,
        "higher_is_better": {r.spec: r.higher_is_better for r in plan.requests},
        "no_score": n_none, "n_archs": len(want_ids),
        "provenance": {
            "command": command, "commit": commit or _git_commit(), "version": __version__,
            "device": plan.device_name, "machine": machine, "batch": batch,
            "batch_fingerprint": plan.data_fingerprint, "options": options,
            "seed": plan.seed, "limit": limit,
            "seconds": round(total, 3), "seconds_meaning": "sum of per-architecture model seconds (records' 'seconds')",
            "wall_seconds": wall_seconds, "cpu_seconds": cpu_seconds, "note": note,
        },
    }
    (folder / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    return csv_path


def _git_commit() -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
