"""Build NAS-Bench-NLP's compact tables from the official release (``nni-zerocost data prepare
nasbench-nlp``).

    Input: the official PTB training logs (``train_logs_multi_runs/logs.zip`` of
    github.com/fmsnew/nas-bench-nlp-release, or the unzipped folder), optionally the single-run
    logs, and optionally Serianni & Kalita's ``RNN_results.csv`` (their published per-run
    scores).  Output: ``nasbench_nlp/nasbench_nlp.jsonl.gz`` (one record per cell),
    ``nasbench_nlp_ptb_runs.csv.gz`` (one row per run) and a copy of the recipe-id map.

    Cell numbering (``arch_id``) cannot come from the logs: 208 of the 4,322 cells of the
    official recipe list have no PTB run at all.  It comes from the recipe-id map shipped with
    the package (``nasbench_nlp_recipe_ids.csv.gz``: every official recipe id 1000000..1014002
    → arch_id, source, generator seed).  Cells are numbered by their smallest recipe id; every
    cell's recipe is regenerated from its generator seed (or is one of the three handcrafted
    cells), and each log's cell must equal the cell of its recipe id (canonical hash).

    A run's ``final_test_loss`` is its last test loss; a run whose status is not ``OK`` or
    whose last loss is not finite diverged (``null``).  Runs keep the order of the input:
    member order for a zip (the release's order), file-name order for a folder.

Every file is fully built and validated before anything is written; each output is written to
a temporary file and renamed, so a failed run leaves the previous tables in place.
"""
from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ...data import PACKAGE_DATA
from ...errors import DataError, InvalidArchitectureError
from .cell import Cell
from .generator import HANDCRAFTED

NLP_SUBDIR = "nasbench_nlp"
TABLE = "nasbench_nlp.jsonl.gz"
RUNS = "nasbench_nlp_ptb_runs.csv.gz"
RECIPE_IDS = "nasbench_nlp_recipe_ids.csv.gz"
#: the recipe-id map shipped with the package
RECIPE_IDS_PATH = PACKAGE_DATA / NLP_SUBDIR / RECIPE_IDS

#: the official PTB model: vocabulary, embedding and hidden sizes, layers (weights tied)
PTB_VOCAB, WT2_VOCAB, EMSIZE, NHID, NLAYERS = 10_000, 33_278, 400, 600, 3
_LOG_NAME = re.compile(r"log_stats_model_(\d+)_(.+)_(\d+)\.json$")

#: Serianni & Kalita's RNN_results.csv columns -> our run-table columns
PUBLISHED_COLUMNS = {
    "Activation Distance": "tfn_activation_distance",
    "Synaptic Saliency": "tfn_synaptic_saliency",
    "Jacobian Covariance": "tfn_jacobian_covariance",
    "Jacobian Cosine": "tfn_jacobian_cosine",
    "Large Noise Jacobian": "tfn_large_noise_jacobian",
    "Large Noise Jacobian Cosine": "tfn_large_noise_jacobian_cosine",
    "More Noised Jacobian": "tfn_more_noised_jacobian",
    "More Noised Jacobian Cosine": "tfn_more_noised_jacobian_cosine",
    "Hidden Synaptic Saliency": "tfn_hidden_synaptic_saliency",
    "Layer 1 Hidden Covariance": "tfn_layer_1_hidden_covariance",
    "Layer 2 Hidden Covariance": "tfn_layer_2_hidden_covariance",
    "Layer 3 Hidden Covariance": "tfn_layer_3_hidden_covariance",
}
RUN_COLUMNS = ["log_name", "recipe_id", "arch_id", "init_time", "experiment_id", "final_test_loss",
               "final_test_ppl", "n_params", "in_serianni_results"] + list(PUBLISHED_COLUMNS.values())



# -- the recipe-id map and the cells of the official list ----------------------------------------
@dataclass
class Arch:
    arch_id: int
    recipe_ids: List[int]
    source: str
    hidden_tuple_size: int
    generator_seeds: List[int]
    single_run_recipe_id: Optional[int]
    recipe: Dict = field(default_factory=dict)
    cell_hash: str = ""


def read_recipe_map(path: Path = RECIPE_IDS_PATH) -> Tuple[Dict[int, int], List[Arch]]:
    """(recipe id -> arch_id, the cells in arch_id order with their recipes); cached per file."""
    st = Path(path).stat() if Path(path).is_file() else None
    return _read_recipe_map(str(path), st.st_mtime_ns if st else None, st.st_size if st else None)


@functools.lru_cache(maxsize=2)
def _read_recipe_map(path: str, _mtime, _size) -> Tuple[Dict[int, int], List[Arch]]:
    by_recipe: Dict[int, int] = {}
    rows: Dict[int, List[dict]] = {}
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            for lineno, row in enumerate(csv.DictReader(f), start=2):
                try:
                    rid, aid = int(row["recipe_id"]), int(row["arch_id"])
                except (KeyError, TypeError, ValueError):
                    raise DataError("row without a valid recipe_id/arch_id", str(path), lineno) from None
                if rid in by_recipe:
                    raise DataError(f"recipe id {rid} listed twice", str(path), lineno)
                by_recipe[rid] = aid
                rows.setdefault(aid, []).append(row)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read the recipe-id map ({e})", str(path)) from None
    if sorted(rows) != list(range(len(rows))):
        raise DataError("arch ids are not 0..N-1", str(path))
    from .generator import CellGenerator

    gens: Dict[int, CellGenerator] = {}
    archs: List[Arch] = []
    for aid in range(len(rows)):
        rs = sorted(rows[aid], key=lambda r: int(r["recipe_id"]))
        first = rs[0]
        source = first["source"]
        single = [int(r["recipe_id"]) for r in rs if r.get("in_single_run_doc2vec") == "True"]
        if source.startswith("handcrafted:"):
            recipe = HANDCRAFTED[source.split(":", 1)[1]]
            k = Cell.parse(recipe).hidden_tuple_size
            seeds: List[int] = []
        else:
            k = int(first["hidden_tuple_size"])
            seeds = sorted({int(r["generator_seed"]) for r in rs})
            gen = gens.setdefault(k, CellGenerator(k))
            recipe, ok = gen.generate(seeds[0])
            if not ok:
                raise DataError(f"generator seed {seeds[0]} does not give a valid cell (arch {aid})", str(path))
        archs.append(Arch(aid, [int(r["recipe_id"]) for r in rs], source, k, seeds,
                          single[0] if single else None, recipe, Cell.parse(recipe).canonical_hash()))
    return by_recipe, archs


def param_count(cell: Cell, vocab: int = PTB_VOCAB) -> int:
    """Parameters of the official 3-layer model (emsize 400, nhid 600, tied embedding/decoder)."""
    n = vocab * EMSIZE + vocab  # embedding (= decoder weight) + decoder bias
    for i in range(NLAYERS):
        inp = EMSIZE if i == 0 else NHID
        hid = NHID if i != NLAYERS - 1 else EMSIZE
        for _, node in cell.nodes:
            if node.op == "linear":
                n += hid + sum(hid * (inp if s == "x" else hid) for s in node.inputs)
    return n


# -- official logs ------------------------------------------------------------------------------
@dataclass
class Run:
    log: str
    recipe_id: int
    init_time: str
    experiment_id: str
    final_test_loss: Optional[float]
    n_params: Optional[int]
    corpus: str
    where: str  # file (and zip member) for error messages


def iter_log_files(path: Path, what: str = "NAS-Bench-NLP logs") -> Iterator[Tuple[str, str, str]]:
    """(where, file name, text) of every ``log_stats_model_*.json`` in a folder (recursively,
    sorted by file name) or a zip (member order)."""
    p = Path(path).expanduser()
    if p.is_dir():
        files = sorted(p.rglob("log_stats_model_*.json"), key=lambda f: (f.name, str(f)))
        if not files:
            raise DataError(f"no log_stats_model_*.json files in this folder (expected {what})", str(p))
        for f in files:
            try:
                yield str(f), f.name, f.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise DataError(f"cannot read log ({e})", str(f)) from None
    elif p.is_file():
        if not zipfile.is_zipfile(p):
            raise DataError(f"not a zip file or a folder of {what}", str(p))
        try:
            with zipfile.ZipFile(p) as z:
                names = [n for n in z.namelist()
                         if Path(n).name.startswith("log_stats_model_") and n.endswith(".json")]
                if not names:
                    raise DataError(f"zip holds no log_stats_model_*.json files (expected {what})", str(p))
                for n in names:
                    try:
                        text = z.read(n).decode("utf-8")
                    except UnicodeDecodeError as e:
                        raise DataError(f"log is not UTF-8 ({e})", f"{p}:{n}") from None
                    yield f"{p}:{n}", Path(n).name, text
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise DataError(f"cannot read zip ({e}); the file is truncated or corrupt", str(p)) from None
    else:
        raise DataError(f"no such file or folder (expected a zip or folder of {what})", str(p))


def parse_log(where: str, name: str, text: str) -> Tuple[Run, Dict]:
    """One official log: the run and its cell; DataError naming the file (and line) if bad."""
    try:
        log = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"not valid JSON ({e.msg}, column {e.colno}); the log is truncated or corrupt",
                        where, e.lineno) from None
    if not isinstance(log, dict):
        raise DataError(f"expected a JSON object, got {type(log).__name__}", where)
    m = _LOG_NAME.match(name)
    try:
        recipe_id = int(log["recepie_id"]) if "recepie_id" in log else int(m.group(1))
    except (TypeError, ValueError, AttributeError):
        raise DataError("no recipe id (neither a 'recepie_id' field nor one in the file name)", where) from None
    if "recepie" not in log:
        raise DataError("no 'recepie' field (the cell)", where)
    try:
        recipe = log["recepie"]
        recipe = json.loads(recipe) if isinstance(recipe, str) else recipe
        Cell.parse(recipe)
    except (InvalidArchitectureError, json.JSONDecodeError, TypeError, ValueError) as e:
        raise DataError(f"bad cell in 'recepie': {e}", where) from None
    losses = log.get("test_losses")
    if isinstance(losses, str):
        try:
            losses = json.loads(losses.replace("nan", "NaN"))
        except json.JSONDecodeError:
            losses = None
    if not isinstance(losses, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in losses):
        raise DataError("'test_losses' is missing or not a list of numbers", where)
    status = log.get("status", "OK")
    if not isinstance(status, str):
        raise DataError(f"'status' is not a string: {status!r}", where)
    last = float(losses[-1]) if losses else None
    final = last if status == "OK" and last is not None and math.isfinite(last) else None
    n_params = log.get("num_params")
    if n_params is not None and (not isinstance(n_params, int) or isinstance(n_params, bool)):
        raise DataError(f"'num_params' is not an integer: {n_params!r}", where)
    init_time = str(log.get("init_time", m.group(2) if m else ""))
    experiment_id = str(log.get("experiment_id", m.group(3) if m else ""))
    return Run(name, recipe_id, init_time, experiment_id, final, n_params, str(log.get("data", "")), where), recipe


def _is_ptb(data: str) -> bool:
    base = Path(data.replace("\\", "/")).name.lower() if data else "ptb"
    return base in ("ptb", "penn", "penntreebank", "penn_treebank") or "ptb" in base


def read_runs(path: Path, by_recipe: Dict[int, int], archs: Sequence[Arch], any_corpus: bool = False,
              what: str = "NAS-Bench-NLP logs") -> List[Tuple[Run, int]]:
    """Every log under ``path`` as (run, arch_id), checked against the official recipe list."""
    out: List[Tuple[Run, int]] = []
    seen: Dict[str, str] = {}
    lo, hi = min(by_recipe), max(by_recipe)
    for where, name, text in iter_log_files(path, what):
        run, recipe = parse_log(where, name, text)
        if name in seen:
            raise DataError(f"the same log appears twice (also at {seen[name]})", where)
        seen[name] = where
        if not any_corpus and not _is_ptb(run.corpus):
            raise DataError(
                f"this run trained on {run.corpus!r}, not PTB; the benchmark's ground truth is PTB "
                "(the release's train_logs_wikitext-2 are a different task). Pass --any-corpus to "
                "import it anyway", where)
        aid = by_recipe.get(run.recipe_id)
        if aid is None:
            raise DataError(f"recipe id {run.recipe_id} is not in the official recipe list ({lo}..{hi})", where)
        arch = archs[aid]
        if recipe != arch.recipe:
            same = Cell.parse(recipe).canonical_hash() == arch.cell_hash
            raise DataError(f"the log's cell differs from official recipe {run.recipe_id} (arch {aid})"
                            + (" in node names or input order" if same else ""), where)
        if not any_corpus and run.n_params is not None and run.n_params != param_count(Cell.parse(recipe)):
            raise DataError(f"num_params {run.n_params} is not the official PTB model's "
                            f"{param_count(Cell.parse(recipe))} for this cell (different hyperparameters?)", where)
        out.append((run, aid))
    return out


def read_published(path: Path) -> Dict[str, Dict[str, str]]:
    """Serianni & Kalita's ``RNN_results.csv``: log name -> {tfn_* column: value string}."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError("no such file (expected Serianni & Kalita's RNN_results.csv)", str(p))
    out: Dict[str, Dict[str, str]] = {}
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in ["log name", *PUBLISHED_COLUMNS] if c not in header]
            if missing:
                raise DataError(f"not an RNN_results.csv: missing column(s) {', '.join(missing)}", str(p), 1)
            for lineno, row in enumerate(reader, start=2):
                name = (row.get("log name") or "").strip()
                if not _LOG_NAME.match(name):
                    raise DataError(f"bad log name {name!r}", str(p), lineno)
                vals = {}
                for col, ours in PUBLISHED_COLUMNS.items():
                    v = (row.get(col) or "").strip()
                    if v:
                        try:  # 10 significant digits, the precision of the published file
                            v = format(float(v), ".10g")
                        except ValueError:
                            raise DataError(f"column {col!r}: not a number: {v!r}", str(p), lineno) from None
                    vals[ours] = v
                if name in out and out[name] != vals:
                    raise DataError(f"log {name} listed twice with different scores", str(p), lineno)
                out[name] = vals
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read ({e})", str(p)) from None
    return out


# -- building -----------------------------------------------------------------------------------
def _stats(losses: Sequence[Optional[float]]) -> Dict[str, Optional[float]]:
    f = [v for v in losses if v is not None]
    return {
        "ptb_n_runs": len(losses),
        "ptb_n_finite": len(f),
        "ptb_final_test_loss_mean": sum(f) / len(f) if f else None,
        "ptb_final_test_loss_median": float(np.median(f)) if f else None,
        "ptb_final_test_loss_min": min(f) if f else None,
        "ptb_final_test_loss_std": float(np.std(f, ddof=1)) if len(f) > 1 else None,
    }


def build_nasbench_nlp(logs: Path, single_run: Optional[Path] = None, published: Optional[Path] = None,
                       any_corpus: bool = False, recipe_ids: Path = RECIPE_IDS_PATH) -> Dict[str, bytes]:
    """The NAS-Bench-NLP folder's files (name -> bytes), fully validated, nothing written."""
    by_recipe, archs = read_recipe_map(recipe_ids)
    runs = read_runs(logs, by_recipe, archs, any_corpus, "NAS-Bench-NLP multi-run logs")
    singles = read_runs(single_run, by_recipe, archs, any_corpus, "NAS-Bench-NLP single-run logs") if single_run else []
    pub = read_published(published) if published else None

    per_arch: Dict[int, List[Run]] = {}
    for run, aid in runs:
        per_arch.setdefault(aid, []).append(run)
    single_per_arch: Dict[int, List[Run]] = {}
    for run, aid in singles:
        single_per_arch.setdefault(aid, []).append(run)

    lines = []
    for a in archs:
        cell = Cell.parse(a.recipe)
        rs = per_arch.get(a.arch_id, [])
        rec = {
            "arch_id": a.arch_id, "recipe_ids": a.recipe_ids, "single_run_recipe_id": a.single_run_recipe_id,
            "recipe": a.recipe, "recipe_source": a.source, "hidden_tuple_size": a.hidden_tuple_size,
            "generator_seeds": a.generator_seeds, "n_nodes": len(a.recipe) + 1 + a.hidden_tuple_size,
            "n_linear": cell.n_linear, "n_params_ptb": param_count(cell), "n_params_wt2": param_count(cell, WT2_VOCAB),
            "ptb_multi_runs": [{"recipe_id": r.recipe_id, "log": r.log, "final_test_loss": r.final_test_loss} for r in rs],
        }
        rec.update(_stats([r.final_test_loss for r in rs]))
        if single_run:
            rec["ptb_single_runs"] = [{"recipe_id": r.recipe_id, "log": r.log, "final_test_loss": r.final_test_loss}
                                      for r in single_per_arch.get(a.arch_id, [])]
        lines.append(json.dumps(rec))
    table = ("\n".join(lines) + "\n").encode("utf-8")

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(RUN_COLUMNS)
    for run, aid in runs:
        loss = run.final_test_loss
        vals = pub.get(run.log) if pub is not None else None
        try:
            ppl = format(math.exp(loss), ".10g") if loss is not None else ""
        except OverflowError:
            ppl = "inf"
        w.writerow([run.log, run.recipe_id, aid, run.init_time, run.experiment_id,
                    repr(loss) if loss is not None else "", ppl,
                    run.n_params if run.n_params is not None else "",
                    "" if pub is None else str(vals is not None)]
                   + [(vals or {}).get(c, "") for c in PUBLISHED_COLUMNS.values()])
    files = {
        TABLE: gzip.compress(table, mtime=0),
        RUNS: gzip.compress(buf.getvalue().encode("utf-8"), mtime=0),
        RECIPE_IDS: Path(recipe_ids).read_bytes(),
    }
    n_cells = sum(1 for a in archs if per_arch.get(a.arch_id))
    summary = {
        "cells": len(archs), "cells_with_runs": n_cells, "runs": len(runs),
        "finite_runs": sum(r.final_test_loss is not None for r, _ in runs),
        "single_runs": len(singles),
    }
    if pub is not None:
        logged = {r.log for r, _ in runs}
        summary["published_runs_matched"] = sum(1 for n in pub if n in logged)
        summary["published_runs_unmatched"] = len(pub) - summary["published_runs_matched"]
    files["__summary__"] = json.dumps(summary).encode()
    return files
