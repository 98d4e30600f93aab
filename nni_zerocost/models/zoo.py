"""Tiny Hugging Face models of every causal-LM and masked-LM architecture of the installed
``transformers``, built from each config class's defaults with random weights: what the zoo run
(``examples/hf_zoo.py``) and the zoo tests (``tests/test_hf_zoo.py``) build.

:func:`shrink_config` caps every size-like field of a config (hidden 64, 2-4 layers, vocabulary
1,000, small heads, experts and state sizes; a field is only made smaller), keeps one layer of
each kind, and moves special token ids inside the new vocabulary; :func:`build` makes the model
of one mapping entry (:func:`architectures`), raising :class:`StepError` with the step that
failed.  ``transformers`` is imported only when a function is called.  Nothing downloads.
"""
from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional, Tuple

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
    # a local attention's window: a model padding its input to the window must fit its positions
    (r"attention_window", 16),
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


__all__ = ["shrink_config", "kept_layers", "architectures", "build", "StepError", "first_line",
           "builds_at_default_size"]
