"""The FlexiBERT-style BERT space of Serianni & Kalita's 500-architecture benchmark."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import numpy as np

from ..base import ContextOption, ScoringContext, SearchSpace, register_space
from .codec import BertCodec
from .config import (
    FEED_FORWARD_DIMS, HEADS, HIDDEN_SIZES, NUM_FEED_FORWARD, NUM_LAYERS, OPERATIONS, BertConfig, LayerConfig,
    space_size,
)
from .context import LOSSES, BertContext, ForwardRecorder, GradientPass
from .inputs import BertBatch, batch_from_texts, zipf_bert_batch
from .model import BertModel, embedding_param_count, param_count

__all__ = [
    "BertConfig", "LayerConfig", "BertContext", "BertBatch", "BertModel", "BertSpace",
    "ForwardRecorder", "GradientPass", "batch_from_texts", "zipf_bert_batch", "param_count",
    "space_size",
]


@register_space
class BertSpace(SearchSpace[BertConfig]):
    """Hidden 128/256, 2/4 layers of SA (SDP/WMA), LT (DFT/DCT) or DSC (kernel 5/9) mixing."""

    name = "bert"
    default_proxy = "head_confidence"
    title = "Bert"
    offers = BertContext.offers

    def parse(self, obj: Any) -> BertConfig:
        return BertConfig.parse(obj)

    def sample(self, rng: np.random.Generator) -> BertConfig:
        return BertConfig.sample(rng)

    def to_dict(self, arch: BertConfig) -> Dict[str, Any]:
        return arch.to_dict()

    def arch_hash(self, arch: BertConfig) -> str:
        return arch.canonical_hash()

    def choices(self) -> Dict[str, Sequence[Any]]:
        """The published ``search_space.json``: per-model ``hidden_size`` and layer count, per
        layer an operation (type -> parameters), heads and the feed-forward stack."""
        return {
            "hidden_size": HIDDEN_SIZES, "num_layers": NUM_LAYERS, "operation": dict(OPERATIONS),
            "num_operation_heads": HEADS, "feed_forward_dimension": FEED_FORWARD_DIMS,
            "num_feed_forward": NUM_FEED_FORWARD,
        }

    def default_batch(self, seed: int = 0) -> BertBatch:
        """128 rows x 128 positions of Zipf-distributed word pieces (see :mod:`.inputs`)."""
        return zipf_bert_batch(batch_size=128, seq_len=128, seed=seed)

    def batch(self, corpus: Optional[str] = None, *, batch_size: Optional[int] = None,
              seq_len: Optional[int] = None) -> BertBatch:
        """Zipf word pieces of the given shape (default 128 x 128).  There is no corpus reader
        for word pieces: a corpus is refused here, before any model is built."""
        if corpus is not None:
            raise ValueError("a corpus is supported for the 'rnn' space only; the bert space scores on "
                             "Zipf-distributed word pieces (change the shape with batch_size/seq_len)")
        if batch_size is None and seq_len is None:
            return self.default_batch()
        return zipf_bert_batch(batch_size or 128, seq_len or 128, seed=0)

    def smoke_batch(self) -> BertBatch:
        """16 rows x 64 positions of Zipf word pieces (speed only)."""
        return zipf_bert_batch(16, 64, seed=0)

    def context_options(self) -> Dict[str, ContextOption]:
        return {
            "as_trained": ContextOption("as_trained", (False, True),
                                        "build every layer as SDP self-attention, as the benchmark was actually "
                                        "trained (its training code ignored the operation type)"),
            "loss": ContextOption("loss", LOSSES, "loss of the gradient pass: 'rtd' (ELECTRA's replaced-token "
                                                  "detection, default), 'mlm', or the paper's degenerate 'sum'"),
        }

    def summary(self, arch: Any) -> str:
        """Hidden size, layers, and per layer its op, heads and feed-forward stack."""
        d = self.to_dict(self.parse(arch))
        layers = d["nas_config"]["encoder_layers"]
        return f"hidden {d['hidden_size']}, {len(layers)} layers: " + "; ".join(
            f"{l['operation_type']}/{l['operation_parameter']} x{l['num_operation_heads']} heads, "
            f"FF {l['num_feed_forward']}x{l['feed_forward_dimension']}" for l in layers)

    def build_model(self, arch: Any, *, seed: int = 0, as_trained: bool = False, loss: str = "rtd", **_) -> BertModel:
        """The model the proxies score, with the pre-training head of ``loss`` (not counted as
        parameters; it gives the gradient pass its loss)."""
        return BertModel(self.parse(arch), seed=seed, as_trained=as_trained, head=None if loss == "sum" else loss)

    def layer_count(self, arch: Any, **_) -> int:
        return len(self.parse(arch).layers)

    def param_count(self, arch: Any, *, as_trained: bool = False, **_) -> int:
        """The encoder with its embeddings (no LM head), from the configuration alone."""
        return param_count(self.parse(arch), as_trained)

    def nonembedding_param_count(self, arch: Any, *, as_trained: bool = False, **_) -> int:
        return param_count(self.parse(arch), as_trained) - embedding_param_count()

    def codec(self) -> BertCodec:
        return BertCodec()

    def naslib_form(self):
        from .naslib_form import naslib_form

        return naslib_form()

    def claims(self, model) -> bool:
        return isinstance(model, BertModel)

    def context_for_model(self, model, batch, *, seed: int = 0, device=None) -> ScoringContext:
        """Our own :class:`BertModel` (as :meth:`build_model` or NNI's ``freeze`` made it), scored as is with the space's passes."""
        return BertContext.of_model(model, self.default_batch() if batch is None else batch, seed=seed, device=device)

    def context(self, arch: Any, batch: Optional[BertBatch] = None, *, seed: int = 0, device=None,
                as_trained: bool = False, loss: str = "rtd") -> BertContext:
        return BertContext(self.parse(arch), batch if batch is not None else self.default_batch(),
                           seed=seed, device=device, as_trained=as_trained, loss=loss)


from . import benchmark  # noqa: E402,F401  (registers the space's benchmark)
