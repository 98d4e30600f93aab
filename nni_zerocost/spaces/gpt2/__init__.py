"""The GPT-2 decoder space of LiteTransformerSearch (LTS), ground truth in ``lts-gpt2-wt103``."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import numpy as np

from ..base import ContextOption, ScoringContext, SearchSpace, register_space
from .codec import DecoderCodec
from .context import GPT2Context
from .config import (
    D_EMBEDS, D_INNER_MAX, D_INNER_MIN, D_MODELS, DIV_VALS, N_HEADS, N_LAYERS, TGT_LEN, VOCAB_SIZE,
    DecoderConfig, check_searched, d_inner_min,
)
from .counts import flops_per_token, param_counts
from .inputs import BATCH_SIZE, SEQ_LEN, LMBatch, batch_from_file, row_length_within, zipf_lm_batch
from .model import DecoderModel, Observer, RecordingObserver

__all__ = [
    "DecoderConfig", "DecoderModel", "GPT2Space", "LMBatch", "Observer", "RecordingObserver",
    "batch_from_file", "check_searched", "d_inner_min", "flops_per_token", "param_counts", "zipf_lm_batch",
    "VOCAB_SIZE",
]


@register_space
class GPT2Space(SearchSpace[DecoderConfig]):
    """GPT-2 decoders: 2-16 layers, d_model 64-512, per-layer heads and FFN width, adaptive I/O.
    ``parse`` takes any decoder archai's GPT-2 builds (every config LTS released); ``sample``,
    ``choices`` and the codec stay inside the space LTS searched (:mod:`.config`)."""

    name = "gpt2"
    #: chosen by mechanism, before any benchmark table: the capacity outside the embeddings decides
    #: a decoder's loss (LTS; Kaplan et al. 2020); label-free proxies pay off inside a size budget
    default_proxy = "nonembedding_params"
    title = "GPT2"
    offers = GPT2Context.offers

    def parse(self, obj: Any) -> DecoderConfig:
        return DecoderConfig.parse(obj)

    def sample(self, rng: np.random.Generator) -> DecoderConfig:
        return DecoderConfig.sample(rng)

    def to_dict(self, arch: DecoderConfig) -> Dict[str, Any]:
        return arch.to_dict()

    def arch_hash(self, arch: DecoderConfig) -> str:
        return arch.canonical_hash()

    def choices(self) -> Dict[str, Sequence[Any]]:
        """The searched space: ``n_layer`` and ``d_model`` per model, ``n_head`` and ``d_inner`` per
        layer (d_inner must also exceed 1.7 x d_model: :func:`.config.d_inner_min`), ``d_embed``
        and ``div_val`` of the adaptive embedding / softmax."""
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
        shape defaults to 16 x 128 (at most 192 positions; a model with fewer scores it re-cut
        into shorter rows, see :mod:`.context`)."""
        bs, sl = batch_size or BATCH_SIZE, seq_len or SEQ_LEN
        if corpus is None:
            return self.default_batch() if (bs, sl) == (BATCH_SIZE, SEQ_LEN) else zipf_lm_batch(bs, sl, seed=0)
        return batch_from_file(corpus, bs, sl)

    def smoke_batch(self) -> LMBatch:
        """2 rows x 16 positions of the default batch (speed only)."""
        return LMBatch(self.default_batch(0).input_ids[:2, :16].clone(), "zipf:smoke")

    def smoke_architecture(self) -> DecoderConfig:
        """3 small layers of different heads and widths, all three vocabulary clusters."""
        return DecoderConfig.parse({"n_layer": 3, "d_model": 64, "n_head": [2, 4, 8], "d_inner": [512, 640, 768],
                                    "d_embed": 128, "div_val": 2})

    def context_options(self) -> Dict[str, ContextOption]:
        from ...precision import DTYPE_HELP, DTYPES

        return {"dtype": ContextOption("dtype", DTYPES, DTYPE_HELP)}

    def context(self, arch: Any, batch=None, *, seed: int = 0, device=None, dtype: Optional[str] = None) -> GPT2Context:
        return GPT2Context(self.parse(arch), batch if batch is not None else self.default_batch(), seed=seed,
                           device=device, dtype=dtype)

    def summary(self, arch: Any) -> str:
        cfg = self.parse(arch)
        counts = param_counts(cfg)
        positions = f", {cfg.tgt_len} positions" if cfg.tgt_len != TGT_LEN else ""
        return (f"{cfg.n_layer} layers, d_model {cfg.d_model}, heads {'/'.join(map(str, cfg.n_head))}, "
                f"d_inner {'/'.join(map(str, cfg.d_inner))}, d_embed {cfg.embedding_width}, div_val {cfg.div_val}"
                f"{positions} ({counts['nonembedding'] / 1e6:.2f}M non-embedding parameters)")

    def build_model(self, arch: Any, *, seed: int = 0, **_) -> DecoderModel:
        return DecoderModel(self.parse(arch), seed=seed)

    def param_count(self, arch: Any, **_) -> int:
        """Every parameter, tied ones once (the release's ``total``)."""
        return param_counts(self.parse(arch))["total"]

    def nonembedding_param_count(self, arch: Any, **_) -> int:
        """The release's ``nonembedding`` (LTS's decoder parameters)."""
        return param_counts(self.parse(arch))["nonembedding"]

    def layer_count(self, arch: Any, **_) -> int:
        return self.parse(arch).n_layer

    def cost_inputs(self, arch: Any, **_) -> Dict[str, int]:
        """LTS's protocol: a row of the model's own length (``tgt_len``), ids over the whole BPE
        vocabulary (an adaptive embedding's largest table is only its head cluster)."""
        cfg = self.parse(arch)
        return {"seq_len": cfg.tgt_len, "vocab_size": cfg.n_token}

    def flops(self, arch: Any, **_) -> float:
        """Forward FLOPs per token on the default batch's rows (as the model scores them: 128
        tokens, or shorter re-cut rows where the model has fewer positions)."""
        cfg = self.parse(arch)
        return float(flops_per_token(cfg, row_length_within(SEQ_LEN, cfg.tgt_len))["total"])

    def codec(self) -> DecoderCodec:
        return DecoderCodec()

    def naslib_form(self):
        from .naslib_form import naslib_form

        return naslib_form()

    def claims(self, model) -> bool:
        return isinstance(model, DecoderModel)

    def context_for_model(self, model, batch, *, seed: int = 0, device=None) -> ScoringContext:
        """Our own :class:`DecoderModel`, scored as is."""
        return GPT2Context.of_model(model, self.default_batch() if batch is None else batch, seed=seed, device=device)


from . import benchmark  # noqa: E402,F401  (registers the space's benchmark)
