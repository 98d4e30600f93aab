"""How NASLib sees the GPT-2 decoder space: compact form, moves and encoding.

Compact: ``(d_model, d_embed, div_val, ((n_head, d_inner), ...))``, for configs of the searched
space only (a compact form has no room for the other fields).  A move changes one choice:
``d_model``/``d_embed``/``div_val``, the layer count (drop the last layer, or repeat it), one
layer's heads, or one layer's feed-forward width by a step of 64 or 256 (kept inside
512..2048 and above 1.7 x d_model).  Encoding (``adjacency_one_hot``, what NASLib's predictors
read): one-hot of d_model, d_embed, div_val and the layer count, then per layer slot the one-hot
of its heads and its width / 2048 (zeros for absent layers).
"""
from __future__ import annotations

import math
from typing import Any, List

from ...errors import InvalidArchitectureError
from ..base import NASLibForm
from .config import (
    VOCAB_SIZE, D_EMBEDS, D_INNER_MAX, D_INNER_MIN, D_MODELS, DIV_VALS, N_HEADS, N_LAYERS, DecoderConfig,
    check_searched, d_inner_min,
)

STEPS = (-256, -64, 64, 256)


def compact(config) -> tuple:
    cfg = DecoderConfig.parse(config)
    check_searched(cfg)
    return (cfg.d_model, cfg.d_embed, cfg.div_val, tuple(zip(cfg.n_head, cfg.d_inner)))


def arch(c) -> DecoderConfig:
    try:
        d_model, d_embed, div_val, layers = c
        return DecoderConfig.parse({"n_layer": len(layers), "d_model": d_model, "d_embed": d_embed, "div_val": div_val,
                                    "n_head": [h for h, _ in layers], "d_inner": [f for _, f in layers]})
    except (TypeError, ValueError) as e:
        if isinstance(e, InvalidArchitectureError):
            raise
        raise InvalidArchitectureError(f"not a GPT-2 compact (d_model, d_embed, div_val, layers): {e}") from None


def moves(c) -> List[tuple]:
    d_model, d_embed, div_val, layers = c
    out = []
    for d in D_MODELS:
        if d != d_model:
            low = d_inner_min(d)
            out.append((d, d_embed, div_val, tuple((h, max(low, f)) for h, f in layers)))
    out += [(d_model, e, div_val, layers) for e in D_EMBEDS if e != d_embed]
    out += [(d_model, d_embed, v, layers) for v in DIV_VALS if v != div_val]
    if len(layers) > min(N_LAYERS):
        out.append((d_model, d_embed, div_val, layers[:-1]))
    if len(layers) < max(N_LAYERS):
        out.append((d_model, d_embed, div_val, layers + layers[-1:]))
    low = d_inner_min(d_model)
    for i, (h, f) in enumerate(layers):
        def with_layer(new):
            return (d_model, d_embed, div_val, layers[:i] + (new,) + layers[i + 1:])
        out += [with_layer((g, f)) for g in N_HEADS if g != h]
        out += [with_layer((h, f + s)) for s in STEPS if max(low, D_INNER_MIN) <= f + s <= D_INNER_MAX]
    return out


def encode(c, encoding: str = "adjacency_one_hot") -> Any:
    if encoding == "compact":
        return c
    d_model, d_embed, div_val, layers = c
    code: List[float] = [float(d == d_model) for d in D_MODELS] + [float(e == d_embed) for e in D_EMBEDS]
    code += [float(v == div_val) for v in DIV_VALS] + [float(n == len(layers)) for n in N_LAYERS]
    for i in range(max(N_LAYERS)):
        h, f = layers[i] if i < len(layers) else (None, 0)
        code += [float(g == h) for g in N_HEADS] + [f / D_INNER_MAX]
    return code


def naslib_form() -> NASLibForm:
    return NASLibForm(
        class_name="LTSGPT2Space", type_name="gpt2", compact=compact, arch=arch,
        is_compact=lambda s: isinstance(s, (tuple, list)) and len(s) == 4 and isinstance(s[3], (tuple, list)),
        encode=encode, moves=moves, benchmark="lts-gpt2-wt103",
        # NASLib's NLP convention (as for NAS-Bench-NLP): accuracy-like = 100 - loss, the loss in
        # nats per token being log(perplexity)
        metrics={"VAL_ACCURACY": lambda ppl: 100.0 - math.log(ppl), "VAL_LOSS": math.log},
        dataset="wikitext103", num_classes=VOCAB_SIZE,
    )
