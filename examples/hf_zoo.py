"""Every causal-LM and masked-LM architecture of the installed transformers, built tiny from its
own config class with random weights, and what :func:`nni_zerocost.models.structure.read_structure`
finds in each.

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
import re
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import torch

# -- the config shrinker -------------------------------------------------------------------------
#: the sizes a tiny model gets (a field is only ever made smaller, never larger)
VOCAB, HIDDEN, EMBEDDING, HEADS, KV_HEADS, HEAD_DIM, INTERMEDIATE, EXPERT_INTERMEDIATE = 1000, 64, 32, 4, 2, 16, 128, 32
EXPERTS, TOP_K, SHARED_EXPERTS, STATE, POSITIONS, RANK = 4, 2, 1, 8, 128, 16
#: layers kept by a model whose layers are not all of one kind (2 otherwise)
MAX_LAYERS = 4

#: ``(pattern on the field name, cap)``, first match wins.  A field of a config (or of a nested
#: config, e.g. ``text_config``) that is an int and matches is capped.  Order matters: the
#: specific names come before the general ones they contain.
SIZE_RULES: List[Tuple[str, int]] = [
    # special token ids and counts that only look like sizes are handled elsewhere / left alone
    (r"token_id|token_index|_index$|^seed$|^lang_id|chunk_size_feed_forward|num_logits_to_keep", -1),
    (r"type_vocab_size", -1),
    (r"vocab_size", VOCAB),
    (r"vocab", VOCAB),
    # mixture of experts
    (r"experts_per_tok|moe_top_?k|^moe_k$|^top_?k$|num_experts_per_token", TOP_K),
    (r"shared_expert.*intermediate|expert.*(intermediate|ffn)|moe.*intermediate", EXPERT_INTERMEDIATE),
    (r"shared_experts?$|num_shared_experts|n_shared_experts|moe_num_shared_experts", SHARED_EXPERTS),
    (r"experts|expert_num", EXPERTS),
    (r"^n_group$|num_expert_group|topk_group", 1),
    # state-space / recurrent mixers
    (r"state_size|d_state", STATE),
    (r"dt_rank|time_step_rank", STATE),
    (r"mamba_d_ssm", HIDDEN),
    (r"mamba_(d_head|head_?dim)", HEAD_DIM),
    (r"mamba_(n_heads|num_heads)|n_mamba_heads", HEADS),
    (r"n_?groups$", 1),
    # attention geometry
    (r"lora_rank|_rank$", RANK),
    (r"rope_head_dim|nope_head_dim|rotary_dim", HEAD_DIM // 2),
    (r"head_dim|head_size|d_head|dim_head|^d_kv$|kv_channels|headdim", HEAD_DIM),
    (r"key_value_heads|kv_heads|kv_n_heads|num_query_groups", KV_HEADS),
    (r"index.*heads", HEADS // KV_HEADS),
    (r"heads", HEADS),
    (r"^n_head$", HEADS),
    # widths
    (r"intermediate|ffn|^d_ff$|^dff$|dim_ff|n_inner|d_inner|feed_forward_size|mlp_dim", INTERMEDIATE),
    (r"hidden_size_per_layer_input", 8),
    (r"embedding_size|embed_proj_dim|embedding_dim", EMBEDDING),
    (r"hidden_size|^n_embd$|^n_embed$|^d_model$|^dim$|^embed_dim$|^emb_dim$|hidden_dim|lru_width|model_dim|"
     r"d_latents", HIDDEN),
    (r"num_latents", 16),
    (r"bottleneck", HIDDEN),
    (r"per_block$|^num_blocks$", 2),
    # positions
    (r"max_position|n_positions|^n_ctx$|context_length|max_seq_len|max_target_positions|max_source_positions",
     POSITIONS),
]
#: fields counting layers (set to the number of layers kept)
LAYER_COUNT = re.compile(r"^(num_hidden_layers|n_layers?|num_layers|(en|de)coder_layers|num_(en|de)coder_layers|"
                         r"conf_num_hidden_layers)$")
#: fields placing kinds of layers periodically (an interval, capped at the layers kept) or from
#: a first layer (an offset or a count of leading layers, capped at the last layer)
LAYER_PERIOD = re.compile(r"period|interval|every|step$|freq|pattern$")
LAYER_START = re.compile(r"offset|first_k|dense_replace|num_dense_layers|start_index|max_window_layers|"
                         r"nextn_predict_layers")
#: fields that make some layers reuse others' state (a saving, not a kind of layer): none kept
LAYER_SHARING = re.compile(r"kv_shared_layers")
#: size fields that may be tied to the hidden size: one that is a multiple of it stays that multiple
#: (SqueezeBERT's embedding must equal it, Zamba2's attention runs on twice it; ALBERT's
#: factorised embedding, not a multiple, is just capped)
TIED_TO_HIDDEN = (EMBEDDING, HIDDEN, INTERMEDIATE)


#: fields of every config that are not sizes (a classifier's labels)
LABEL_MAPS = ("id2label", "label2id")


def _is_index(x, n: int) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x < n


def _layer_key(key, n: int) -> Optional[int]:
    """A dict key naming a layer (``3``, ``"03"``), else None."""
    if isinstance(key, str) and key.isdigit():
        key = int(key)
    return key if _is_index(key, n) else None


def _per_layer(d: Dict[str, Any], n: int) -> Dict[str, Any]:
    """The fields holding one entry per layer: lists of length ``n`` and dicts keyed by layer."""
    return {k: v for k, v in d.items() if isinstance(k, str) and k not in LABEL_MAPS and n > 2 and (
        (isinstance(v, list) and len(v) == n)
        or (isinstance(v, dict) and v and all(_layer_key(i, n) is not None for i in v)))}


def _layer_index_lists(d: Dict[str, Any], n: int) -> Dict[str, Any]:
    """The fields listing some layers by index (``moe_layers``, ``full_attn_idxs``, ...)."""
    return {k: v for k, v in d.items() if isinstance(k, str) and isinstance(v, list) and 0 < len(v) < n
            and all(_is_index(i, n) for i in v) and ("layer" in k or k.endswith(("idxs", "indexes", "indices", "ids")))}


def kept_layers(d: Dict[str, Any], n: int) -> List[int]:
    """The original layers to keep: the first of each distinct kind, where a layer's kind is its
    entry in every per-layer field and its membership in every list of layer indices.  Layers of
    one kind: the first 2.  Of several kinds: :data:`MAX_LAYERS`, the first of each kind, then a
    second of each, then the first layers."""
    per_layer, index_lists = _per_layer(d, n), _layer_index_lists(d, n)
    patterns = [v for k, v in d.items() if isinstance(k, str) and isinstance(v, list) and 1 < len(v) < n
                and all(isinstance(x, str) for x in v)]
    if patterns and not per_layer:  # a cycle of kinds (RecurrentGemma's block_types): one full cycle
        return list(range(min(n, MAX_LAYERS, max(2, max(len(p) for p in patterns)))))

    def entry(v, i):
        if isinstance(v, list):
            return json.dumps(v[i], sort_keys=True)
        return json.dumps(next((x for k, x in v.items() if _layer_key(k, n) == i), None), sort_keys=True)

    kinds: Dict[Any, List[int]] = {}
    for i in range(n):
        kind = (tuple(entry(v, i) for v in per_layer.values()), tuple(i in v for v in index_lists.values()))
        kinds.setdefault(kind, []).append(i)
    # one layer of each kind first, then a second of each (a kind some layers share, e.g. Zamba's
    # shared attention block, must occur twice), then the first layers
    order = [v[0] for v in kinds.values()] + [v[1] for v in kinds.values() if len(v) > 1] + list(range(n))
    wanted = 2 if len(kinds) == 1 else MAX_LAYERS
    return sorted(list(dict.fromkeys(order))[:wanted])


def _size_rule(key: str) -> Optional[int]:
    """The cap of the first :data:`SIZE_RULES` pattern ``key`` matches (None: no rule, -1: left alone)."""
    return next((cap for pattern, cap in SIZE_RULES if re.search(pattern, key)), None)


def _shrink_value(key: str, value: int, before: Dict[str, Any]) -> int:
    """One int field capped by its :data:`SIZE_RULES` cap; a width that is a multiple of the hidden
    size stays that multiple (Zamba2's attention runs on twice the hidden size), plain multi-head
    attention stays so."""
    cap = _size_rule(key)
    if cap is None or cap <= 0:
        return value
    if cap == KV_HEADS and value == before.get("heads"):
        return HEADS
    hidden = before.get("hidden")
    if cap in TIED_TO_HIDDEN and hidden and value % hidden == 0 and key not in HIDDEN_NAMES:
        return HIDDEN * (value // hidden)
    return min(value, cap)


def _keep_head_dims(before: Dict[str, Any], after: Dict[str, Any]) -> None:
    """Head dimensions keep their relations: one that times the head count made a width makes
    the new width (Zamba2's attention heads tile twice the hidden size); ones that were equal
    stay equal (DeepSeek's ``head_dim`` is its rotary part), each taking the smallest new value."""
    ints = {k: v for k, v in before.items() if isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)}
    dims = [k for k in ints if _size_rule(k) in (HEAD_DIM, HEAD_DIM // 2)]
    heads = next((k for k in ("num_attention_heads", "n_head", "num_heads") if k in ints), None)
    widths = [k for k in ints if _size_rule(k) == HIDDEN]
    for k in dims:
        tiled = next((w for w in widths if heads and ints[k] * ints[heads] == ints[w]), None)
        if tiled and after[heads]:
            after[k] = after[tiled] // after[heads]
    for k in dims:
        after[k] = min(after[j] for j in dims if before[j] == before[k])


HIDDEN_NAMES = ("hidden_size", "n_embd", "n_embed", "d_model", "dim", "embed_dim", "emb_dim", "hidden_dim")


def _shrink_dict(d: Dict[str, Any], token_ids: Dict[int, int]) -> Dict[str, Any]:
    """One config's fields, shrunk (nested configs recursively); ``token_ids`` maps special ids
    beyond the new vocabulary to ids at its top (shared across nested configs)."""
    out = dict(d)
    n = next((v for k, v in d.items() if isinstance(k, str) and LAYER_COUNT.match(k) and isinstance(v, int)), None)
    kept = kept_layers(d, n) if isinstance(n, int) and n > 0 else None
    layers = len(kept) if kept else None
    per_layer = _per_layer(d, n) if kept else {}
    index_lists = _layer_index_lists(d, n) if kept else {}
    before = {"heads": next((v for k, v in d.items() if k in ("num_attention_heads", "n_head", "num_heads")), None),
              "hidden": next((v for k, v in d.items() if k in HIDDEN_NAMES and isinstance(v, int)), None)}
    for key, value in d.items():
        if not isinstance(key, str) or key in LABEL_MAPS:
            continue
        if key in per_layer and isinstance(value, list):  # the kept layers' entries, sizes shrunk
            out[key] = [_shrink_value(key, value[i], before) if isinstance(value[i], int)
                        and not isinstance(value[i], bool) else value[i] for i in kept]
        elif key in per_layer:  # {layer: overrides}: the kept layers', renumbered in the same spelling
            width = max(len(str(k)) for k in value)
            out[key] = {(str(kept.index(_layer_key(k, n))).zfill(width) if isinstance(k, str) else kept.index(k)):
                        (_shrink_dict(v, token_ids) if isinstance(v, dict) else v)
                        for k, v in value.items() if _layer_key(k, n) in kept}
        elif key in index_lists:
            out[key] = [kept.index(i) for i in value if i in kept]
        elif isinstance(value, dict):
            out[key] = _shrink_dict(value, token_ids)
        elif re.search(r"token_id|token_index", key):
            out[key] = _token_id(value, token_ids)
        elif isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value) \
                and before["hidden"] and sum(value) == before["hidden"] and len(value) > 1:
            out[key] = [HIDDEN * v // before["hidden"] for v in value]  # a split of the hidden size
        elif not isinstance(value, int) or isinstance(value, bool):
            continue
        elif layers is not None and LAYER_COUNT.match(key):
            out[key] = layers
        elif layers is not None and LAYER_SHARING.search(key):
            out[key] = 0
        elif layers is not None and LAYER_PERIOD.search(key) and value > 0:
            out[key] = min(value, layers)
        elif layers is not None and LAYER_START.search(key):
            out[key] = min(value, layers - 1)
        else:
            out[key] = _shrink_value(key, value, before)
    _keep_head_dims(d, out)
    _fit_state_space_heads(out)
    return out


def _fit_state_space_heads(d: Dict[str, Any]) -> None:
    """Mamba-2 style mixers split their expanded width (``expand`` x hidden, or ``mamba_d_ssm``)
    into heads of ``head_dim``: the head count follows from the shrunk widths."""
    for prefix in ("mamba_", ""):
        expand = d.get(prefix + "expand")
        hidden = next((d[k] for k in HIDDEN_NAMES if isinstance(d.get(k), int)), None)
        heads = next((k for k in (prefix + "n_heads", prefix + "num_heads", "n_" + prefix + "heads")
                      if isinstance(d.get(k), int)), None)
        head_dim = next((d[k] for k in (prefix + "d_head", prefix + "head_dim", prefix + "headdim")
                         if isinstance(d.get(k), int)), None)
        if isinstance(expand, int) and hidden and heads and head_dim:
            width = d.get(prefix + "d_ssm") if isinstance(d.get(prefix + "d_ssm"), int) else expand * hidden
            d[heads] = max(1, width // head_dim)
            return


def _token_id(value, token_ids: Dict[int, int]):
    if isinstance(value, list):
        return [_token_id(v, token_ids) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and value >= VOCAB:
        return token_ids.setdefault(value, VOCAB - 1 - len(token_ids))
    return value


def shrink_config(config, *, decoder: bool = False):
    """A tiny config of the same class: every size-like field (:data:`SIZE_RULES`) capped, the
    layers cut to one of each kind (:func:`kept_layers`), special token ids moved inside the
    new vocabulary.  Rebuilt through the class (``from_dict``) so derived fields are recomputed.
    ``decoder``: set ``is_decoder`` (a causal-LM class of an encoder family, e.g.
    ``BertLMHeadModel``, is documented to be built so)."""
    d = _shrink_dict(config.to_dict(), {})
    for key in ("transformers_version", "architectures", "_name_or_path"):
        d.pop(key, None)
    if decoder:
        d["is_decoder"] = True
    return type(config).from_dict(d)


# -- the zoo -------------------------------------------------------------------------------------
def architectures() -> List[Tuple[str, str, str]]:
    """``(model_type, class name, head)`` of every causal-LM and masked-LM mapping entry."""
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_MASKED_LM_MAPPING_NAMES)

    return [(k, v, "causal-lm") for k, v in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.items()] + \
        [(k, v, "masked-lm") for k, v in MODEL_FOR_MASKED_LM_MAPPING_NAMES.items()]


def first_line(e: BaseException) -> str:
    """The exception's type and first line (and the next one when the first only introduces it,
    as a config validator's does)."""
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    text = " ".join(lines[:2]) if len(lines) > 1 and lines[0].endswith(":") else (lines[0] if lines else "")
    return f"{type(e).__name__}: {text[:240]}"


def build(model_type: str, class_name: str, head: str):
    """The tiny model of one entry; raises with the step that failed (``config``/``build``)."""
    import transformers
    from transformers import CONFIG_MAPPING

    try:
        config = shrink_config(CONFIG_MAPPING[model_type](), decoder=head == "causal-lm")
    except Exception as e:
        raise StepError("config", e) from None
    try:
        torch.manual_seed(0)
        return getattr(transformers, class_name)(config)
    except Exception as e:
        raise StepError("build", e) from None


class StepError(Exception):
    def __init__(self, step: str, error: BaseException):
        super().__init__(f"{step}: {first_line(error)}")
        self.step, self.error = step, error


def builds_at_default_size(model_type: str, class_name: str) -> Optional[str]:
    """None when the entry builds from its config class's defaults (on the meta device: no
    memory), else why not: tells a failing shrink from a class that does not build at all."""
    import transformers
    from transformers import CONFIG_MAPPING

    try:
        with torch.device("meta"):
            getattr(transformers, class_name)(CONFIG_MAPPING[model_type]())
        return None
    except Exception as e:
        return first_line(e)


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
    print(markdown(records).split("\n")[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
