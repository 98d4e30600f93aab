"""NAS-Bench-NLP (Klyuchnikov et al. 2020), PTB results: compact table and official logs."""
from __future__ import annotations

import csv
import gzip
import json
import math
import zipfile
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

from ...benchmarks.base import Benchmark, Entry, register_benchmark
from ...errors import DataError, InvalidArchitectureError
from .cell import Cell

TABLE = "nasbench_nlp.jsonl.gz"
RUNS = "nasbench_nlp_ptb_runs.csv.gz"
HOW_TO_GET = (
    "The package ships this table; to build it from the official release, download "
    "train_logs_multi_runs/logs.zip from github.com/fmsnew/nas-bench-nlp-release (Apache-2.0) and run "
    "'nni-zerocost data prepare nasbench-nlp --from logs.zip' (add --published RNN_results.csv for "
    "Serianni & Kalita's scores). Or point --data-dir or $NNI_ZEROCOST_DATA at a folder that "
    "contains nasbench_nlp/."
)
#: published per-run scores of Serianni & Kalita, by our proxy spec
PUBLISHED = {
    "hidden_covariance": "tfn_layer_1_hidden_covariance",
    "hidden_covariance:layer=1": "tfn_layer_1_hidden_covariance",
    "hidden_covariance:layer=2": "tfn_layer_2_hidden_covariance",
    "hidden_covariance:layer=3": "tfn_layer_3_hidden_covariance",
    # measured to agree to float32 precision (compat init, seed 0, PTB paper batch)
    "activation_distance": "tfn_activation_distance",
    "jacobian_cosine": "tfn_jacobian_cosine",
    "jacobian_cosine:noise=large": "tfn_large_noise_jacobian_cosine",
    "jacobian_cosine:noise=more": "tfn_more_noised_jacobian_cosine",
    "synaptic_saliency:params=paper": "tfn_synaptic_saliency",
    "hidden_synaptic_saliency": "tfn_hidden_synaptic_saliency",
    # not listed: tfn_large_noise_jacobian and tfn_more_noised_jacobian hold the negation of
    # jacobian_covariance:noise=large / :noise=more; tfn_jacobian_covariance is not a Jacobian
    # score at all (the time-step correlation of the embedding output, independent of the cell)
}


@register_benchmark
class NASBenchNLP(Benchmark):
    name = "nasbench-nlp"
    space = "rnn"
    primary = "test_loss"
    primary_higher_is_better = False
    subdir = "nasbench_nlp"
    table = TABLE
    how_to_get = HOW_TO_GET

    prepare_source = ("the official multi-run PTB logs (train_logs_multi_runs/logs.zip of the NAS-Bench-NLP "
                      "release, or its unzipped folder)")
    prepare_options = {
        "single_run": ("path", "also import the single-run logs (zip or folder) as ptb_single_runs"),
        "published": ("path", "Serianni & Kalita's RNN_results.csv, for their published per-run scores"),
        "any_corpus": ("switch", "accept logs of runs on other corpora (e.g. WikiText-2); only for testing the "
                                 "format, the table's truth is PTB"),
    }

    def build(self, src: Path, single_run=None, published=None, any_corpus: bool = False) -> Dict[str, bytes]:
        from .prepare import build_nasbench_nlp

        return build_nasbench_nlp(Path(src), single_run, published, bool(any_corpus))

    def baselines(self, entries) -> Dict[str, List[float]]:
        """"h_new_0 is a sigmoid" (such cells are bad), the official model's parameter count and
        the number of nodes."""
        out: Dict[str, List[float]] = {"h_new_0 is sigmoid": [], "n_params (official PTB model)": [], "n_nodes": []}
        for e in entries:
            nodes = e.arch.node_map
            out["h_new_0 is sigmoid"].append(1.0 if nodes["h_new_0"].op == "activation_sigm" else 0.0)
            n = e.extra.get("n_params")
            out["n_params (official PTB model)"].append(float(n) if n is not None else math.nan)
            out["n_nodes"].append(float(len(nodes)))
        return out

    def load(self, data_dir: Path) -> List[Entry]:
        folder = Path(data_dir) / self.subdir
        table = folder / TABLE
        if not table.is_file():
            raise DataError(f"NAS-Bench-NLP table not found. {HOW_TO_GET}", str(table))
        published = _read_published(folder / RUNS) if (folder / RUNS).is_file() else {}
        return list(_read_table(table, published))


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def _read_table(path: Path, published: Dict[int, Dict[str, float]]) -> Iterator[Entry]:
    from ...store import read_jsonl

    for lineno, rec in read_jsonl(path):
        try:
            arch_id = int(rec["arch_id"])
            cell = Cell.parse(rec["recipe"])
            runs = [r["final_test_loss"] for r in rec.get("ptb_multi_runs", [])]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise DataError(f"bad NAS-Bench-NLP record: {e}", str(path), lineno) from None
        runs = [None if v is None or not math.isfinite(v) else float(v) for v in runs]
        finite = [v for v in runs if v is not None]
        truth = {
            "test_loss": (sum(finite) / len(finite)) if finite else None,
            "test_loss_min": min(finite) if finite else None,
        }
        yield Entry(
            arch_id, cell, truth, runs, None,
            {"n_params": rec.get("n_params_ptb"), "recipe_ids": rec.get("recipe_ids", []),
             "published": published.get(arch_id, {})},
        )


def _read_published(path: Path) -> Dict[int, Dict[str, float]]:
    """Per-architecture published tfn_* scores (identical across an architecture's runs)."""
    out: Dict[int, Dict[str, float]] = {}
    try:
        with _open_text(path) as f:
            for lineno, row in enumerate(csv.DictReader(f), start=2):
                try:
                    aid = int(row["arch_id"])
                except (KeyError, TypeError, ValueError):
                    raise DataError("row without a valid arch_id", str(path), lineno) from None
                vals = {k: float(v) for k, v in row.items() if k and k.startswith("tfn_") and v not in ("", None)}
                if row.get("in_serianni_results") == "True" and vals:
                    out.setdefault(aid, vals)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read run table ({e})", str(path)) from None
    return out


def read_official_logs(path: str | Path) -> List[Entry]:
    """Read official ``log_stats_model_*.json`` files from a folder or a zip.

    Runs with the same cell (canonical hash) are grouped into one entry; a run whose status is
    not OK or whose last test loss is not finite counts as diverged (None).
    """
    p = Path(path)
    groups: Dict[str, Entry] = {}
    for name, text in _iter_logs(p):
        try:
            log = json.loads(text)
            cell = Cell.parse(log["recepie"])
            losses = log.get("test_losses", [])
            if isinstance(losses, str):
                losses = json.loads(losses.replace("nan", "NaN"))
        except (json.JSONDecodeError, KeyError, TypeError, InvalidArchitectureError) as e:
            raise DataError(f"bad NAS-Bench-NLP log: {e}", name) from None
        last = losses[-1] if losses else None
        ok = log.get("status", "OK") == "OK" and isinstance(last, (int, float)) and math.isfinite(last)
        h = cell.canonical_hash()
        e = groups.get(h)
        if e is None:
            e = groups[h] = Entry(h, cell, {}, [], None, {"recipe_ids": [], "n_params": log.get("num_params")})
        e.runs.append(float(last) if ok else None)
        e.extra["recipe_ids"].append(log.get("recepie_id"))
    for e in groups.values():
        finite = [v for v in e.runs if v is not None]
        e.truth = {"test_loss": sum(finite) / len(finite) if finite else None,
                   "test_loss_min": min(finite) if finite else None}
    return list(groups.values())


def _iter_logs(p: Path) -> Iterator[Tuple[str, str]]:
    if p.is_dir():
        files = sorted(p.glob("log_stats_model_*.json"))
        if not files:
            raise DataError("no log_stats_model_*.json files in folder", str(p))
        for f in files:
            yield str(f), f.read_text(encoding="utf-8")
    elif p.is_file() and zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as z:
            names = sorted(n for n in z.namelist() if Path(n).name.startswith("log_stats_model_") and n.endswith(".json"))
            if not names:
                raise DataError("zip holds no log_stats_model_*.json files", str(p))
            for n in names:
                yield f"{p}:{n}", z.read(n).decode("utf-8")
    else:
        raise DataError("not a folder or zip of NAS-Bench-NLP logs", str(p))
