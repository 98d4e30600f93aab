"""The 500-architecture BERT benchmark of Serianni & Kalita (ACL 2023), GLUE scores.

``BERT_benchmark.json``: per architecture its id, GLUE dev scores (8 tasks and ``glue``, their
plain mean) and the training hyper-parameters, whose ``model_hparam_overrides`` is the
architecture.  ``BERT_results_activation.csv`` (optional): the authors' proxy scores, attached
to each entry as ``extra["published"]`` keyed by the CSV's column names.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Dict, List

from ...benchmarks.base import Benchmark, Entry, register_benchmark
from ...errors import DataError, InvalidArchitectureError
from .config import BertConfig

TABLE = "BERT_benchmark.json"
PUBLISHED = "BERT_results_activation.csv"
TASKS = ("cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst", "sts")
HOW_TO_GET = (
    "The package ships this table; to build it from the paper's repository "
    "(github.com/aaronserianni/training-free-nas, CC BY 4.0), run 'nni-zerocost data prepare "
    "nasbench-bert --from DIR' on the folder holding BERT_benchmark.json and search_space.json "
    "(and optionally BERT_results_activation.csv). Or point --data-dir or $NNI_ZEROCOST_DATA at a "
    "folder that contains training_free_nas/."
)
#: our proxy spec -> the authors' column in BERT_results_activation.csv
PUBLISHED_COLUMNS = {
    "params": "Number of Parameters",
    "head_importance": "Head Importance",
    "head_importance:normalize=true": "Head Importance Normalized",
    "head_confidence:axis=paper": "Head Confidence",
    "head_confidence:axis=paper,normalize=true": "Head Confidence Normalized",
    "head_softmax_confidence:axis=paper": "Head Softmax Confidence",
    "head_softmax_confidence:axis=paper,normalize=true": "Head Softmax Confidence Normalized",
    "synaptic_diversity": "Synaptic Diversity",
    "synaptic_diversity:normalize=true": "Synaptic Diversity Normalized",
    "synaptic_saliency": "Synaptic Saliency",
    "synaptic_saliency:normalize=true": "Synaptic Saliency Normalized",
    "activation_distance:form=paper": "Activation Distance",
    "activation_distance:form=paper,normalize=true": "Activation Distance Normalized",
    "jacobian_covariance:form=paper": "Jacobian Score",
}


@register_benchmark
class NASBenchBERT(Benchmark):
    name = "nasbench-bert"
    space = "bert"
    primary = "glue"
    primary_higher_is_better = True
    subdir = "training_free_nas"
    group_by = "hidden size/layers"
    table = TABLE
    how_to_get = HOW_TO_GET

    prepare_source = ("the folder holding BERT_benchmark.json and search_space.json (the data/ folder of "
                      "github.com/aaronserianni/training-free-nas)")

    def build(self, src: Path) -> Dict[str, bytes]:
        return build_nasbench_bert(Path(src))

    def baselines(self, entries) -> Dict[str, List[float]]:
        """Layers x hidden size, the layer count and the non-embedding parameter count (as
        declared, the corrected count)."""
        from .model import embedding_param_count, param_count

        out: Dict[str, List[float]] = {"layers x hidden": [], "layers": [], "non-embedding params (declared)": []}
        for e in entries:
            c = e.arch
            out["layers x hidden"].append(float(c.num_layers * c.hidden_size))
            out["layers"].append(float(c.num_layers))
            out["non-embedding params (declared)"].append(float(param_count(c, False) - embedding_param_count()))
        return out

    def load(self, data_dir: Path) -> List[Entry]:
        folder = Path(data_dir) / self.subdir
        table = folder / TABLE
        if not table.is_file():
            raise DataError(f"BERT benchmark table not found. {HOW_TO_GET}", str(table))
        published = _read_published(folder / PUBLISHED) if (folder / PUBLISHED).is_file() else {}
        return _read_table(table, published)


def _read_table(path: Path, published: Dict[int, Dict[str, float]]) -> List[Entry]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read the BERT benchmark ({e})", str(path)) from None
    try:
        records = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"not valid JSON ({e.msg}); the file is truncated or corrupt", str(path), e.lineno) from None
    if not isinstance(records, list):
        raise DataError(f"expected a JSON list of architecture records, got {type(records).__name__}", str(path))
    entries, seen = [], set()
    for i, rec in enumerate(records):
        where = f"record {i}" + (f" (id {rec.get('id')})" if isinstance(rec, dict) else "")
        try:
            arch_id = int(rec["id"])
            config = BertConfig.parse(rec["hparams"]["model_hparam_overrides"])
            scores = rec["scores"]
            truth = {task: _score(scores, task) for task in TASKS + ("glue",)}
        except (KeyError, TypeError, ValueError) as e:
            detail = str(e) if isinstance(e, InvalidArchitectureError) else f"{type(e).__name__}: {e}"
            raise DataError(f"bad {where}: {detail}", str(path)) from None
        if arch_id in seen:
            raise DataError(f"duplicate id {arch_id} in {where}", str(path))
        seen.add(arch_id)
        entries.append(Entry(
            arch_id=arch_id, arch=config, truth=truth,
            runs=[truth["glue"]], group=(config.hidden_size, config.num_layers),
            extra={"published": published.get(arch_id, {}), "time_to_train": rec.get("time_to_train")},
        ))
    return entries


def _score(scores, task):
    v = scores[task]
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _read_published(path: Path) -> Dict[int, Dict[str, float]]:
    out: Dict[int, Dict[str, float]] = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for lineno, row in enumerate(csv.DictReader(f), start=2):
                try:
                    arch_id = int(row["ID"])
                    values = {k: float(v) for k, v in row.items() if k not in ("ID", "GLUE Score") and v not in ("", None)}
                except (KeyError, TypeError, ValueError) as e:
                    raise DataError(f"bad published-scores row ({type(e).__name__}: {e})", str(path), lineno) from None
                out[arch_id] = values
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read published scores ({e})", str(path)) from None
    return out


# -- building from the paper's repository ---------------------------------------------------------
BERT_FILES = ("BERT_benchmark.json", "search_space.json")
BERT_OPTIONAL = ("BERT_results_activation.csv",)


def _bert_folder(src: Path) -> Path:
    p = Path(src).expanduser()
    if not p.is_dir():
        raise DataError("no such folder (expected the folder holding BERT_benchmark.json and search_space.json)", str(p))
    for cand in (p, p / "data"):
        if (cand / BERT_FILES[0]).is_file():
            return cand
    raise DataError("no BERT_benchmark.json in this folder (nor in its data/ subfolder)", str(p))


def build_nasbench_bert(src: Path) -> Dict[str, bytes]:
    """The BERT folder's files (name -> bytes, unchanged copies), validated, nothing written."""
    folder = _bert_folder(src)
    space_path = folder / "search_space.json"
    if not space_path.is_file():
        raise DataError("search_space.json missing beside BERT_benchmark.json", str(space_path))
    try:
        space = json.loads(space_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"not valid JSON ({e.msg})", str(space_path), e.lineno) from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read ({e})", str(space_path)) from None
    try:
        hidden, layers, per = set(space["hidden_size"]), set(space["num_encoder_layers"]), space["encoder_layer"]
        allowed = {
            "operation_type": set(per["operation_type"]),
            "num_operation_heads": set(per["num_operation_heads"]),
            "feed_forward_dimension": set(per["feed_forward_dimension"]),
            "num_feed_forward": set(per["num_feed_forward"]),
        }
        params = {t: set(per[t]) for t in allowed["operation_type"]}
    except (KeyError, TypeError) as e:
        raise DataError(f"not the BERT search space ({type(e).__name__}: {e})", str(space_path)) from None

    table_path = folder / BERT_FILES[0]
    entries = _read_table(table_path, {})  # every record parses, ids unique
    raw = json.loads(table_path.read_text(encoding="utf-8"))
    for i, (e, rec) in enumerate(zip(entries, raw)):
        over = rec["hparams"]["model_hparam_overrides"]
        layer_dicts = over["nas_config"]["encoder_layers"]
        problems = []
        if over.get("hidden_size") not in hidden:
            problems.append(f"hidden_size {over.get('hidden_size')!r}")
        if len(layer_dicts) not in layers:
            problems.append(f"{len(layer_dicts)} layers")
        for j, layer in enumerate(layer_dicts):
            for k, ok in allowed.items():
                if layer.get(k) not in ok:
                    problems.append(f"layer {j} {k} {layer.get(k)!r}")
            t = layer.get("operation_type")
            if t in params and layer.get("operation_parameter") not in params[t]:
                problems.append(f"layer {j} operation_parameter {layer.get('operation_parameter')!r}")
        if problems:
            raise DataError(f"record {i} (id {e.arch_id}) lies outside search_space.json: {', '.join(problems)}",
                            str(table_path))
    files = {name: (folder / name).read_bytes() for name in BERT_FILES}
    ids = {e.arch_id for e in entries}
    pub_path = folder / BERT_OPTIONAL[0]
    n_pub = 0
    if pub_path.is_file():
        pub = _read_published(pub_path)
        unknown = sorted(set(pub) - ids)
        if unknown:
            raise DataError(f"published scores for ids not in the benchmark: {unknown[:5]}", str(pub_path))
        n_pub = len(pub)
        files[BERT_OPTIONAL[0]] = pub_path.read_bytes()
    files["__summary__"] = json.dumps({"architectures": len(entries), "published_rows": n_pub,
                                       "groups": len({e.group for e in entries})}).encode()
    return files
