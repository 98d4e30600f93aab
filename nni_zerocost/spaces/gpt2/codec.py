"""NNI labels of the GPT-2 decoder space: configurations <-> flat samples of categorical labels.

``n_layer``, ``d_model``, ``d_embed``, ``div_val`` and, for each of the 16 layer slots,
``layer_{i}_n_head`` and ``layer_{i}_d_inner`` (every integer of 512..2048).  Slots beyond
``n_layer`` are unused genes.  Every sample decodes to a valid configuration by one repair: a
feed-forward width not above 1.7 x d_model (LTS's rule) is raised to the smallest allowed one, so
no sampler ever wastes a draw.  The other fields are the WikiText-103 release's (the searched
space): a config outside it (:func:`.config.check_searched`) has no encoding.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping

from ...errors import InvalidArchitectureError
from ..base import check_sample
from .config import (
    D_EMBEDS, D_INNER_MAX, D_INNER_MIN, D_MODELS, DIV_VALS, N_HEADS, N_LAYERS, DecoderConfig, check_searched,
    d_inner_min,
)

MAX_LAYERS = max(N_LAYERS)


class DecoderCodec:
    """Encoding of decoder configurations as ``4 + 2 * 16`` labels."""

    def choices(self) -> Dict[str, List[Any]]:
        out: Dict[str, List[Any]] = {"n_layer": list(N_LAYERS), "d_model": list(D_MODELS),
                                     "d_embed": list(D_EMBEDS), "div_val": list(DIV_VALS)}
        for i in range(MAX_LAYERS):
            out[f"layer_{i}_n_head"] = list(N_HEADS)
            out[f"layer_{i}_d_inner"] = list(range(D_INNER_MIN, D_INNER_MAX + 1))
        return out

    def decode(self, sample: Mapping[str, Any]) -> DecoderConfig:
        check_sample(sample, self.choices())
        n, d = int(sample["n_layer"]), int(sample["d_model"])
        low = d_inner_min(d)
        return DecoderConfig.parse({
            "n_layer": n, "d_model": d, "d_embed": int(sample["d_embed"]), "div_val": int(sample["div_val"]),
            "n_head": [int(sample[f"layer_{i}_n_head"]) for i in range(n)],
            "d_inner": [max(low, int(sample[f"layer_{i}_d_inner"])) for i in range(n)],
        })

    def encode(self, config: Any) -> Dict[str, Any]:
        cfg = DecoderConfig.parse(config)
        try:
            check_searched(cfg)
        except InvalidArchitectureError as e:
            raise InvalidArchitectureError(f"outside the NNI space (LTS's searched space): {e.problem}",
                                           e.node) from None
        sample: Dict[str, Any] = {"n_layer": cfg.n_layer, "d_model": cfg.d_model, "d_embed": cfg.d_embed,
                                  "div_val": cfg.div_val}
        for i in range(MAX_LAYERS):
            sample[f"layer_{i}_n_head"] = cfg.n_head[i] if i < cfg.n_layer else N_HEADS[0]
            sample[f"layer_{i}_d_inner"] = cfg.d_inner[i] if i < cfg.n_layer else D_INNER_MAX
        return sample
