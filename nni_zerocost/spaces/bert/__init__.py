"""The FlexiBERT-style BERT space of Serianni & Kalita's 500-architecture benchmark."""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from ..base import SearchSpace, register_space
from .config import BertConfig, LayerConfig, space_size
from .context import BertContext, ForwardRecorder, GradientPass
from .inputs import BertBatch, batch_from_texts, zipf_bert_batch
from .model import BertModel, param_count

__all__ = [
    "BertConfig", "LayerConfig", "BertContext", "BertBatch", "BertModel", "BertSpace",
    "ForwardRecorder", "GradientPass", "batch_from_texts", "zipf_bert_batch", "param_count",
    "space_size",
]


@register_space
class BertSpace(SearchSpace[BertConfig]):
    """Hidden 128/256, 2/4 layers of SA (SDP/WMA), LT (DFT/DCT) or DSC (kernel 5/9) mixing."""

    name = "bert"

    def parse(self, obj: Any) -> BertConfig:
        return BertConfig.parse(obj)

    def sample(self, rng: np.random.Generator) -> BertConfig:
        return BertConfig.sample(rng)

    def to_dict(self, arch: BertConfig) -> Dict[str, Any]:
        return arch.to_dict()

    def arch_hash(self, arch: BertConfig) -> str:
        return arch.canonical_hash()

    def default_batch(self, seed: int = 0) -> BertBatch:
        """128 rows x 128 positions of Zipf-distributed word pieces (see :mod:`.inputs`)."""
        return zipf_bert_batch(batch_size=128, seq_len=128, seed=seed)

    def context(self, arch: Any, batch: Optional[BertBatch] = None, *, seed: int = 0,
                as_trained: bool = False, loss: str = "rtd") -> BertContext:
        return BertContext(self.parse(arch), batch if batch is not None else self.default_batch(),
                           seed=seed, as_trained=as_trained, loss=loss)
