"""LiteTransformerSearch's 200 GPT-2 decoders trained on WikiText-103 (Javaheripi et al., NeurIPS 2022).

Source: archai (github.com/microsoft/archai, branch ``neurips-lts``, MIT licence), folder
``archai/nlp/nas/saved_logs/random_GPT2_wt103``: ``config_<k>/j<j>/model_config.yaml`` per model,
and ``ppl_summary.yaml`` / ``params_summary.yaml`` keyed ``config_<k>_j<j>``.

The compact table ``lts/lts_gpt2_wt103.jsonl.gz`` holds one JSON object per model, sorted by
``arch_id``: ``arch_id``, ``config`` (the ``model_config.yaml`` as is), ``valid_ppl``,
``test_ppl`` (WikiText-103 token perplexity, lower is better), ``train_elapsed_s`` and ``params``
(the release's ``{AdaEmb, Attn, FFN, nonembedding, total}``), in the order of the release's
folder paths (``config_1/``, ``config_10/``, ..., ``config_2/``).  :func:`prepare_lts` builds it from
the release's folder; every model's parameter counts must equal those of the model built from its
config, the check that it is the model that was trained.
"""
from __future__ import annotations

import gzip
import io
import json
import math
import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

from ...benchmarks.base import Benchmark, Entry, register_benchmark
from ...errors import DataError, InvalidArchitectureError
from .config import DecoderConfig
from .counts import param_counts

SUBDIR = "lts"
TABLE = "lts_gpt2_wt103.jsonl.gz"
PPL_SUMMARY = "ppl_summary.yaml"
PARAMS_SUMMARY = "params_summary.yaml"
PARAM_KEYS = ("AdaEmb", "Attn", "FFN", "nonembedding", "total")
HOW_TO_GET = (
    "The package ships this table; to build it from the release, clone github.com/microsoft/archai "
    "(branch neurips-lts, MIT) and run 'nni-zerocost data prepare lts --from "
    "archai/nlp/nas/saved_logs/random_GPT2_wt103'. Or point --data-dir or $NNI_ZEROCOST_DATA at a "
    "folder that contains lts/."
)
_ARCH_ID = re.compile(r"config_(\d+)_j(\d+)$")


@register_benchmark
class LTSGPT2WT103(Benchmark):
    name = "lts-gpt2-wt103"
    space = "gpt2"
    primary = "valid_ppl"
    primary_higher_is_better = False
    subdir = SUBDIR
    group_by = "d_model"
    table = TABLE
    how_to_get = HOW_TO_GET

    prepare_source = "archai's archai/nlp/nas/saved_logs/random_GPT2_wt103 folder (branch neurips-lts)"

    def build(self, src: Path) -> Dict[str, bytes]:
        data, summary = build_lts_table(Path(src))
        return {TABLE: data, "__summary__": json.dumps(summary).encode()}

    def baselines(self, entries) -> Dict[str, List[float]]:
        """LTS's own proxy (the release's non-embedding parameter count), n_layer x d_model,
        d_model and the total parameter count."""
        out: Dict[str, List[float]] = {"non-embedding params": [], "n_layer x d_model": [], "d_model": [],
                                       "total params": []}
        for e in entries:
            out["non-embedding params"].append(float(e.extra["params"]["nonembedding"]))
            out["n_layer x d_model"].append(float(e.arch.n_layer * e.arch.d_model))
            out["d_model"].append(float(e.arch.d_model))
            out["total params"].append(float(e.extra["params"]["total"]))
        return out

    def load(self, data_dir: Path) -> List[Entry]:
        """Entries with truth ``valid_ppl`` / ``test_ppl``, group ``(d_model,)`` and the release's
        ``params`` and ``train_elapsed_s`` in ``extra``."""
        path = Path(data_dir) / self.subdir / TABLE
        if not path.is_file():
            raise DataError(f"LTS GPT-2 table not found. {HOW_TO_GET}", str(path))
        entries, seen = [], set()
        for lineno, rec in _read_lines(path):
            try:
                arch_id = str(rec["arch_id"])
                config = DecoderConfig.parse(rec["config"])
                truth = {"valid_ppl": _ppl(rec["valid_ppl"], "valid_ppl"),
                         "test_ppl": _ppl(rec["test_ppl"], "test_ppl")}
                params = {k: int(rec["params"][k]) for k in PARAM_KEYS}
                elapsed = float(rec["train_elapsed_s"])
            except (KeyError, TypeError, ValueError) as e:
                detail = str(e) if isinstance(e, (InvalidArchitectureError, DataError)) else f"{type(e).__name__}: {e}"
                raise DataError(f"bad LTS record: {detail}", str(path), lineno) from None
            if arch_id in seen:
                raise DataError(f"duplicate arch_id {arch_id!r}", str(path), lineno)
            seen.add(arch_id)
            entries.append(Entry(arch_id=arch_id, arch=config, truth=truth, runs=[truth["valid_ppl"]],
                                 group=(config.d_model,), extra={"params": params, "train_elapsed_s": elapsed}))
        if not entries:
            raise DataError("the table holds no record", str(path))
        return entries


def _read_lines(path: Path):
    from ...store import read_jsonl

    return read_jsonl(path)


def _ppl(value, field) -> float:
    v = float(value)
    if not math.isfinite(v) or v < 1.0:
        raise ValueError(f"{field} must be a finite perplexity >= 1, got {value!r}")
    return v


# -- building the table from archai's release folder -------------------------------------------
def _yaml():
    try:
        import yaml
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("reading archai's release folder needs PyYAML: pip install pyyaml") from None
    return yaml


def _load_yaml(path: Path) -> Any:
    yaml = _yaml()
    if not path.is_file():
        raise DataError("missing (expected archai's random_GPT2_wt103 layout)", str(path))
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise DataError(f"not valid YAML ({' '.join(str(e).split())})", str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read ({e})", str(path)) from None


def _summary(path: Path) -> Dict[str, Dict[str, Any]]:
    data = _load_yaml(path)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise DataError("expected a mapping 'config_<k>_j<j>' -> {metric: value}", str(path))
    return {str(k): v for k, v in data.items()}


def build_lts_table(src: Path) -> Tuple[bytes, Dict[str, Any]]:
    """The compact table (gzip bytes, reproducible) and a summary, from the release's folder;
    everything is validated first, nothing is written."""
    folder = Path(src).expanduser()
    if not folder.is_dir():
        raise DataError("no such folder (expected archai's archai/nlp/nas/saved_logs/random_GPT2_wt103)", str(folder))
    ppl_path, params_path = folder / PPL_SUMMARY, folder / PARAMS_SUMMARY
    ppl, params = _summary(ppl_path), _summary(params_path)
    configs: Dict[str, Path] = {}  # in the folders' path order (config_1/, config_10/, ..., config_2/)
    found = folder.glob("config_*/j*/model_config.yaml")
    for path in sorted(found, key=lambda p: (p.parent.parent.name, p.parent.name)):
        arch_id = f"{path.parent.parent.name}_{path.parent.name}"
        if not _ARCH_ID.match(arch_id):
            raise DataError("unexpected folder name (expected config_<k>/j<j>/model_config.yaml)", str(path))
        configs[arch_id] = path
    if not configs:
        raise DataError("no config_<k>/j<j>/model_config.yaml files in this folder", str(folder))
    for name, summary, path in (("perplexities", ppl, ppl_path), ("parameter counts", params, params_path)):
        missing = sorted(set(configs) - set(summary))
        if missing:
            raise DataError(f"no {name} for {len(missing)} model folder(s), e.g. {missing[0]}", str(path))
        orphans = sorted(set(summary) - set(configs))
        if orphans:
            raise DataError(f"{len(orphans)} entries have no model folder, e.g. {orphans[0]}", str(path))

    records = []
    for arch_id, path in configs.items():
        raw = _load_yaml(path)
        if not isinstance(raw, dict):
            raise DataError("expected a mapping of model fields", str(path))
        try:
            config = DecoderConfig.parse(raw)
        except InvalidArchitectureError as e:
            raise DataError(f"not a model of the gpt2 space: {e}", str(path)) from None
        metrics = ppl[arch_id]
        try:
            rec = {"arch_id": arch_id, "config": raw,
                   "valid_ppl": _ppl(metrics["valid_ppl"], "valid_ppl"),
                   "test_ppl": _ppl(metrics["test_ppl"], "test_ppl"),
                   "train_elapsed_s": float(metrics["train_elapsed"])}
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{arch_id}: bad perplexity entry ({type(e).__name__}: {e})", str(ppl_path)) from None
        counts = params[arch_id]
        try:
            rec["params"] = {k: float(counts[k]) for k in PARAM_KEYS}
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{arch_id}: bad parameter counts ({type(e).__name__}: {e})", str(params_path)) from None
        ours = param_counts(config)
        if any(rec["params"][k] != ours[k] for k in PARAM_KEYS):
            raise DataError(f"{arch_id}: the release's parameter counts {counts} differ from the model built from "
                            f"its config {ours}", str(params_path))
        records.append(rec)

    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as f:
        f.write(text.encode("utf-8"))
    summary = {"architectures": len(records), "groups": len({r["config"]["d_model"] for r in records})}
    return buf.getvalue(), summary


def prepare_lts(src: Path, out_root: Path) -> Tuple[List[Path], Dict[str, Any]]:
    """Build ``out_root/lts/lts_gpt2_wt103.jsonl.gz`` from the release folder ``src`` (written to a
    temporary name, then renamed); returns (written paths, summary)."""
    from ...benchmarks.prepare import prepare

    return prepare("lts-gpt2-wt103", Path(src), Path(out_root))
