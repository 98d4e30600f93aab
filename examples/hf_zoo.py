"""Every causal-LM and masked-LM architecture of the installed transformers, built tiny from its
own config class with random weights (:mod:`nni_zerocost.models.zoo`), what
:func:`nni_zerocost.models.structure.read_structure` finds in each, and every proxy that applies
to it scored through ``nz.score_model`` (the full run; tests/test_hf_zoo.py checks two proxies).

    python examples/hf_zoo.py [--only llama,opt,...] [--out DIR]

Writes ``DIR/hf_zoo.json`` (one record per architecture) and ``DIR/hf_zoo.md`` (counts and a
table).  Nothing downloads: each model comes from its config class's defaults, shrunk by
:func:`shrink_config` (hidden 64, 2-4 layers, vocabulary 1,000, small heads, experts and state
sizes).  Every architecture is tried; one that fails is recorded with the first line of its
exception: at ``config`` or ``build`` (with whether the class builds at its default size at
all), or as what the reader says is missing (a forward that fails, parts it cannot trace).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import json
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import torch

from nni_zerocost.models.zoo import (StepError, architectures, build, builds_at_default_size,  # noqa: F401
                                    first_line, shrink_config)


@contextlib.contextmanager
def eager_attention(model) -> Iterator[None]:
    """Every config of the model set to the eager attention implementation for the block."""
    configs = []
    for m in model.modules():
        c = getattr(m, "config", None)
        for x in [c] + [getattr(c, k, None) for k in (getattr(c, "sub_configs", None) or {})]:
            if x is not None and hasattr(x, "_attn_implementation") and not any(x is y for y in configs):
                configs.append(x)
    saved = [(c, dict(c.__dict__)) for c in configs]
    try:
        for c in configs:
            c._attn_implementation = "eager"
        yield
    finally:
        for c, d in saved:
            for k in ("_attn_implementation_internal", "_attn_implementation"):
                if k in d:
                    c.__dict__[k] = d[k]
                else:
                    c.__dict__.pop(k, None)


def probe_outputs(model, ids: torch.Tensor, blocks: int, attention_layers: int) -> Dict[str, Any]:
    """Whether the model returns its attention probabilities (``output_attentions=True`` under
    eager attention) and its hidden states (``output_hidden_states=True``): what a scoring
    context can read without hooks."""
    out: Dict[str, Any] = {}
    model.eval()
    extra = {"use_cache": False} if "use_cache" in inspect.signature(model.forward).parameters else {}
    with torch.no_grad():
        try:
            with eager_attention(model):
                res = model(input_ids=ids, output_attentions=True, return_dict=True, **extra)
            att = [a for key in ("attentions", "encoder_attentions", "decoder_attentions", "cross_attentions")
                   for a in (getattr(res, key, None) or ()) if isinstance(a, torch.Tensor)]
            out["attentions"] = len(att)
            out["attentions_ok"] = bool(att) and len(att) >= attention_layers and all(
                a.dim() == 4 and a.shape[0] == ids.shape[0] for a in att)
            out["attentions_shape"] = list(att[0].shape) if att else None
        except Exception as e:
            out["attentions"], out["attentions_ok"], out["attentions_error"] = 0, False, first_line(e)
        try:
            res = model(input_ids=ids, output_hidden_states=True, return_dict=True, **extra)
            hs = [h for key in ("hidden_states", "encoder_hidden_states", "decoder_hidden_states")
                  for h in (getattr(res, key, None) or ()) if isinstance(h, torch.Tensor)]
            out["hidden_states"] = len(hs)
            out["hidden_states_ok"] = len(hs) >= blocks > 0 or (blocks == 0 and bool(hs))
        except Exception as e:
            out["hidden_states"], out["hidden_states_ok"], out["hidden_states_error"] = 0, False, first_line(e)
    return out


def describe(structure) -> Dict[str, Any]:
    """The JSON record of a :class:`~nni_zerocost.models.structure.ModelStructure`."""
    from collections import Counter

    blocks = []
    for b in structure.blocks:
        blocks.append({
            "module": b.module, "calls": b.calls,
            "mixers": [{"module": m.module, "kind": m.kind, "evidence": m.evidence, "sees_future": m.sees_future,
                        "attention": [{"query": a.query, "key": a.key, "value": a.value, "output": a.output,
                                       "heads": a.heads, "kv_heads": a.kv_heads, "config_heads": a.config_heads,
                                       "head_columns": bool(a.head_columns), "head_rows": sorted(a.head_rows),
                                       "cross": a.cross}
                                      for a in m.attention]} for m in b.mixers],
            "feed_forwards": [dataclasses.asdict(f) for f in b.feed_forwards],
            "experts": None if b.experts is None else {
                "module": b.experts.module, "count": b.experts.count, "top_k": b.experts.top_k,
                "top_k_source": b.experts.top_k_source, "router": b.experts.router,
                "expert_params": b.experts.expert_params}})
    attentions = [a for b in structure.blocks for m in b.mixers for a in m.attention]
    ffns = [f for b in structure.blocks for f in b.feed_forwards]
    experts = [b.experts for b in structure.blocks if b.experts]
    params = dict(structure.roles)
    features = {  # what reading this architecture needed
        "fused_qkv": any(len(set(a.query + a.key + a.value)) == 1 for a in attentions),
        "fused_kv": any(set(a.key) & set(a.value) and not set(a.query) & set(a.key) for a in attentions),
        "query_or_key_from_several_projections": any(len(a.query) > 1 or len(a.key) > 1 for a in attentions),
        "transposed_projections": sum(p.transposed for p in structure.projections.values()),
        "bare_parameter_projections": sum(1 for a in attentions for n in a.query + a.key + a.value if n in params),
        "cross_attention": any(a.cross for a in attentions),
        "head_columns_measured": sum(1 for a in attentions if a.head_columns), "attentions": len(attentions),
        "gated_ffn": any(f.gate or f.fused_gate for f in ffns), "fused_gate_up": any(f.fused_gate for f in ffns),
        "fused_expert_tensors": any(any(structure.roles.get(n) == "expert" and "." in n and n.rsplit(".", 1)[1]
                                        not in ("weight", "bias") for n in e.parameters) for e in experts),
        "expert_module_lists": any(all(n.rsplit(".", 1)[1] in ("weight", "bias") for n in e.parameters)
                                   for e in experts if e.parameters),
        "evidence": sorted({m.evidence for b in structure.blocks for m in b.mixers}),
    }
    return {"features": features, "params": structure.params, "nonembedding_params": structure.nonembedding_params,
            "active_params": structure.active_params, "input_embedding": structure.input_embedding,
            "output_embedding": structure.output_embedding, "tied_output": structure.tied_output,
            "position_embeddings": list(structure.position_embeddings), "maps_to_logits": structure.maps_to_logits,
            "causal": structure.causal, "roles": dict(Counter(structure.roles.values())),
            "kinds": [list(b.kinds) for b in structure.blocks], "blocks": blocks,
            "missing": list(structure.missing), "notes": list(structure.notes)}


def status(record: Dict[str, Any]) -> str:
    """``does not build``, ``refused`` (the reader raised), ``parameters only`` (no blocks),
    ``partly mapped`` (blocks, something missing) or ``mapped``."""
    if not record["built"]:
        return "does not build"
    if record.get("error"):
        return "refused"
    s = record["structure"]
    if not s["blocks"]:
        return "parameters only"
    if s["missing"] or not any(s["kinds"]):
        return "partly mapped"
    return "mapped"


#: the batch every model is scored on: seeded ids, special ids left out (tiny models: small is enough)
SCORE_ROWS, SCORE_LENGTH = 8, 32
#: proxies whose finite value means the model was read with gradients
GRADIENT_PROXIES = ("synaptic_diversity", "synaptic_saliency")


def score_all(model, vocab: int) -> Dict[str, Any]:
    """Every proxy that applies to the model (``nz.list_proxies(model)``), scored through
    ``nz.score_model`` on one seeded batch: ``{"offers", "scores": {proxy: [value, flag]},
    "refused": {proxy: line}, "outcome"}``; outcome ``read`` (a gradient proxy finite),
    ``parameters only``, or ``refused: <the one line>``."""
    import nni_zerocost as nz
    from nni_zerocost.errors import BadInputError
    from nni_zerocost.models import model_batch, model_context
    from nni_zerocost.models.structure import token_ids

    batch = token_ids(model, vocab, batch=SCORE_ROWS, length=SCORE_LENGTH)
    out: Dict[str, Any] = {"scores": {}, "refused": {}}
    try:
        with model_context(model, model_batch(model, batch)) as ctx:
            out["offers"] = sorted(ctx.offers)
            names = nz.list_proxies(ctx)
    except BadInputError as e:
        out["outcome"] = f"refused: {e}"
        return out
    try:
        results = nz.score_model(model, names, batch=batch, progress=False)
    except BadInputError:  # one proxy refuses: each on its own, to see which
        results = {}
        for n in names:
            try:
                results.update(nz.score_model(model, n, batch=batch, progress=False))
            except BadInputError as e:
                out["refused"][n] = str(e)
    out["scores"] = {n: [r.raw, r.flag] for n, r in results.items()}
    read = any(n in results and results[n].raw == results[n].raw for n in GRADIENT_PROXIES)
    out["outcome"] = "read" if read else "parameters only" if "params" in results else \
        f"refused: {next(iter(out['refused'].values()), 'nothing scored')}"
    return out


def run_one(model_type: str, class_name: str, head: str) -> Dict[str, Any]:
    """Build, read and probe one architecture; every failure recorded, never raised."""
    from nni_zerocost.models.structure import read_structure, token_ids

    record: Dict[str, Any] = {"model_type": model_type, "class": class_name, "head": head}
    start = time.perf_counter()
    try:
        model = build(model_type, class_name, head)
    except StepError as e:
        record.update(built=False, step=e.step, reason=first_line(e.error),
                      default_size=builds_at_default_size(model_type, class_name) or "builds")
        record["status"] = status(record)
        return record
    record["built"] = True
    try:
        structure = read_structure(model)
        record["structure"] = describe(structure)
        attention_layers = sum(1 for b in structure.blocks for m in b.mixers if m.kind == "attention")
        if structure.vocab:
            record["outputs"] = probe_outputs(model, token_ids(model, structure.vocab), len(structure.blocks),
                                              attention_layers)
            record["scoring"] = score_all(model, structure.vocab)
    except Exception as e:
        record["error"] = first_line(e)
        record["traceback"] = traceback.format_exc().splitlines()[-6:]
    record["seconds"] = round(time.perf_counter() - start, 2)
    record["status"] = status(record)
    return record


def markdown(records: List[Dict[str, Any]]) -> str:
    from collections import Counter

    counts = Counter(r["status"] for r in records)
    built = sum(1 for r in records if r["built"])
    read = counts["mapped"] + counts["partly mapped"]
    import transformers

    lines = ["# Hugging Face architectures, built tiny, read by structure", "",
             f"`python examples/hf_zoo.py` with transformers {transformers.__version__}, torch "
             f"{torch.__version__.split('+')[0]}: every causal-LM and masked-LM mapping entry built from its own "
             "config class, shrunk (`shrink_config`), and read by `nni_zerocost.models.structure.read_structure`. "
             "*attentions*: tensors returned for `output_attentions=True` under eager attention; *hidden states*: "
             "tensors returned for `output_hidden_states=True`.", "",
             f"{len(records)} mapping entries; {built} build tiny; {read} read with more than parameters "
             f"({counts['mapped']} fully mapped, {counts['partly mapped']} partly), {counts['parameters only']} "
             f"parameters only, {counts['refused']} refused (the reader raised); "
             f"{counts['does not build']} do not build.", ""]
    scored = [r for r in records if r.get("scoring")]
    outcomes = Counter(r["scoring"]["outcome"].split(":")[0] for r in scored)
    lines += [f"Scored with every proxy that applies (`nz.score_model`, {SCORE_ROWS} x {SCORE_LENGTH} seeded ids): "
              f"{outcomes['read']} read (a gradient proxy, {' or '.join(GRADIENT_PROXIES)}, finite), "
              f"{outcomes['parameters only']} parameters only, {outcomes['refused']} refused in one line; "
              f"{sum(1 for r in records if r['built'] and not r.get('scoring'))} not scored (no vocabulary or "
              "the reader raised).", ""]
    refusals = Counter(line for r in scored for line in r["scoring"]["refused"].values())
    partial = [r for r in scored if r["scoring"]["outcome"] != "read"]
    if partial or refusals:
        lines += ["### Not read with gradients, or with a proxy refused", "", "| model_type | outcome | offers | "
                  "proxies refused |", "| --- | --- | --- | --- |"]
        for r in scored:
            sc = r["scoring"]
            if sc["outcome"] == "read" and not sc["refused"]:
                continue
            refused = "; ".join(f"{n}: {line}" for n, line in sc["refused"].items())
            lines.append(f"| {r['model_type']} | {sc['outcome'].replace('|', '/')[:200]} | "
                         f"{', '.join(sc.get('offers', []))} | {refused.replace('|', '/')[:300]} |")
        lines.append("")
    reasons = Counter(r["reason"] for r in records if not r["built"])
    if reasons:
        lines += ["## Does not build", "", "Built at the config class's default size too (on the meta device): "
                  "`builds` means only the tiny config fails.", "",
                  "| reason | at default size | entries |", "| --- | --- | --- |"]
        for reason, _ in reasons.most_common():
            failed = [r for r in records if not r["built"] and r["reason"] == reason]
            default = "; ".join(sorted({r["default_size"] if r["default_size"] == "builds" else "fails too"
                                        for r in failed}))
            names = ", ".join(f"{r['model_type']} ({r['step']})" for r in failed)
            lines.append(f"| {reason.replace('|', '/')} | {default} | {names} |")
        lines.append("")
    lines += ["## Every entry", "",
              "| model_type | class | status | mixers per block | heads | experts (E/k) | causal | "
              "attentions | hidden states | missing / reason |", "| --- " * 10 + "|"]
    for r in records:
        s = r.get("structure") or {}
        kinds = "; ".join("+".join(k) or "-" for k in s.get("kinds", [])) if s else ""
        heads = ",".join(str(a["heads"]) for b in s.get("blocks", []) for m in b["mixers"] for a in m["attention"])
        experts = ",".join(f"{b['experts']['count']}/{b['experts']['top_k']}" for b in s.get("blocks", [])
                           if b["experts"])
        out = r.get("outputs") or {}
        why = r.get("reason") or r.get("error") or "; ".join(s.get("missing", []))
        lines.append(f"| {r['model_type']} | {r['class']} | {r['status']} | {kinds} | {heads} | {experts} | "
                     f"{s.get('causal', '')} | {out.get('attentions', '')} | {out.get('hidden_states', '')} | "
                     f"{why.replace('|', '/')[:200]} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=None, help="comma-separated model types (default: all)")
    ap.add_argument("--out", default="results/hf_zoo", help="output folder")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # tiny models: more threads only contend
    warnings.filterwarnings("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    entries = architectures()
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {e[0] for e in entries}
        if unknown:
            ap.error(f"--only: not a causal-LM or masked-LM model type: {', '.join(sorted(unknown))}")
        entries = [e for e in entries if e[0] in wanted]
    records = []
    for model_type, class_name, head in entries:
        record = run_one(model_type, class_name, head)
        records.append(record)
        print(f"{model_type:28s} {head:9s} {record['status']:16s} {record.get('reason') or record.get('error') or ''}"
              [:160], flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "hf_zoo.json").write_text(json.dumps(records, indent=1, default=str))
    (out / "hf_zoo.md").write_text(markdown(records))
    print("\n".join(markdown(records).split("\n")[2:5]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
