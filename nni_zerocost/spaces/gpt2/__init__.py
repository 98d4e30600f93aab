"""The GPT-2 decoder space of LiteTransformerSearch (LTS), ground truth in ``lts-gpt2-wt103``.

Not registered in the space registry yet: ``GPT2Space()`` is usable directly, and proxies have
no scoring context for it so far (:meth:`GPT2Space.context` says so).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import numpy as np

from ..base import SearchSpace
from .config import (
    D_EMBEDS, D_INNER_MAX, D_INNER_MIN, D_MODELS, DIV_VALS, N_HEADS, N_LAYERS, VOCAB_SIZE,
    DecoderConfig, d_inner_min,
)
from .counts import flops_per_token, param_counts
from .inputs import BATCH_SIZE, SEQ_LEN, LMBatch, batch_from_file, zipf_lm_batch
from .model import DecoderModel, Observer, RecordingObserver

__all__ = [
    "DecoderConfig", "DecoderModel", "GPT2Space", "LMBatch", "Observer", "RecordingObserver",
    "batch_from_file", "d_inner_min", "flops_per_token", "param_counts", "zipf_lm_batch", "VOCAB_SIZE",
]


class GPT2Space(SearchSpace[DecoderConfig]):
    """GPT-2 decoders: 2-16 layers, d_model 64-512, per-layer heads and FFN width, adaptive I/O."""

    name = "gpt2"

    def parse(self, obj: Any) -> DecoderConfig:
        return DecoderConfig.parse(obj)

    def sample(self, rng: np.random.Generator) -> DecoderConfig:
        return DecoderConfig.sample(rng)

    def to_dict(self, arch: DecoderConfig) -> Dict[str, Any]:
        return arch.to_dict()

    def arch_hash(self, arch: DecoderConfig) -> str:
        return arch.canonical_hash()

    def choices(self) -> Dict[str, Sequence[Any]]:
        """``n_layer`` and ``d_model`` per model, ``n_head`` and ``d_inner`` per layer (d_inner
        must also exceed 1.7 x d_model: :func:`.config.d_inner_min`), ``d_embed`` and ``div_val``
        of the adaptive embedding / softmax."""
        return {
            "n_layer": N_LAYERS, "d_model": D_MODELS, "n_head": N_HEADS,
            "d_inner": range(D_INNER_MIN, D_INNER_MAX + 1),
            "d_embed": D_EMBEDS, "div_val": DIV_VALS,
        }

    def default_batch(self, seed: int = 0) -> LMBatch:
        """16 rows x 128 positions of Zipf-distributed BPE ids (see :mod:`.inputs` for why)."""
        return zipf_lm_batch(BATCH_SIZE, SEQ_LEN, seed=seed)

    def batch(self, corpus: Optional[str] = None, *, batch_size: Optional[int] = None,
              seq_len: Optional[int] = None) -> LMBatch:
        """Pre-tokenised ids from a ``.npy``/``.pt`` file (``corpus``), or the Zipf batch; the
        shape defaults to 16 x 128 (at most 192 positions)."""
        bs, sl = batch_size or BATCH_SIZE, seq_len or SEQ_LEN
        if corpus is None:
            return self.default_batch() if (bs, sl) == (BATCH_SIZE, SEQ_LEN) else zipf_lm_batch(bs, sl, seed=0)
        return batch_from_file(corpus, bs, sl)

    def context_options(self) -> Dict[str, Any]:
        return {}

    def context(self, arch: Any, batch=None, *, seed: int = 0, device=None, **options):
        raise NotImplementedError(
            "the gpt2 space has no scoring context yet: build the model with "
            "nni_zerocost.spaces.gpt2.DecoderModel(config, seed=...) and score it directly")
