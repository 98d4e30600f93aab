"""Token batches for the BERT space: an embedded default and a hook for real text.

The default needs no download.  Token ids follow a Zipf law (exponent 1) over the word pieces of
the BERT uncased vocabulary: ids from 1996 ("the") on are, to a good approximation, ordered by
frequency, so rank ``r`` maps to id ``1995 + r``.  Each row is ``[CLS] text [SEP]`` or, every
other row, a sentence pair ``[CLS] a [SEP] b [SEP]`` with token type 1 on ``b`` (GLUE's format),
then [PAD].  Lengths follow a fixed, seed-independent pattern, log-uniform between 12 and the
row length (GLUE-like: median 39, mean 49 of 128), so the attention mask is exercised and every
seed sees the same padding.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from .model import MAX_POSITIONS, PAD_ID, TYPE_VOCAB_SIZE, VOCAB_SIZE

CLS_ID, SEP_ID, MASK_ID = 101, 102, 103
FIRST_WORD_ID = 1996
MIN_LENGTH = 12


@dataclass(frozen=True)
class BertBatch:
    """``input_ids``, ``attention_mask`` (1 = real token) and ``token_type_ids``, all (B, T)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor
    source: str = "custom"
    vocab_size: int = VOCAB_SIZE
    mask_token_id: int = MASK_ID

    def __post_init__(self):
        ids, mask, types = self.input_ids, self.attention_mask, self.token_type_ids
        for name, t in (("input_ids", ids), ("attention_mask", mask), ("token_type_ids", types)):
            if not isinstance(t, torch.Tensor) or t.dim() != 2:
                raise ValueError(f"{name} must be a 2-D (batch, length) tensor, got {getattr(t, 'shape', type(t))}")
        if mask.shape != ids.shape or types.shape != ids.shape:
            raise ValueError(
                f"input_ids {tuple(ids.shape)}, attention_mask {tuple(mask.shape)} and token_type_ids "
                f"{tuple(types.shape)} must have the same shape")
        if ids.shape[1] > MAX_POSITIONS:
            raise ValueError(f"sequence length {ids.shape[1]} exceeds the {MAX_POSITIONS} learned positions")
        if ids.numel() == 0:
            raise ValueError("empty batch")
        if int(ids.min()) < 0 or int(ids.max()) >= VOCAB_SIZE:
            raise ValueError(f"token ids must lie in [0, {VOCAB_SIZE}) (the model's vocabulary); "
                             f"got range [{int(ids.min())}, {int(ids.max())}]")
        if int(types.min()) < 0 or int(types.max()) >= TYPE_VOCAB_SIZE:
            raise ValueError(f"token_type_ids must be 0 or 1, got range [{int(types.min())}, {int(types.max())}]")
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError("attention_mask must hold only 0 and 1")
        empty = (mask.sum(1) == 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"rows {empty[:5]} of the attention mask have no real token")
        object.__setattr__(self, "input_ids", ids.long())
        object.__setattr__(self, "attention_mask", mask.long())
        object.__setattr__(self, "token_type_ids", types.long())

    @property
    def shape(self):
        return tuple(self.input_ids.shape)

    @property
    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for t in (self.input_ids, self.attention_mask, self.token_type_ids):
            h.update(t.numpy().tobytes())
        h.update(f"{self.shape}|{self.vocab_size}|{self.mask_token_id}".encode())
        return h.hexdigest()[:16]


def default_lengths(batch_size: int, seq_len: int) -> np.ndarray:
    """Seed-independent row lengths, log-uniform from ``MIN_LENGTH`` to ``seq_len`` in a fixed
    (golden-ratio) order: for T = 128, median 39 and mean 49 word pieces, the range of GLUE inputs
    (single sentences of ~10-25 pieces up to paragraph pairs of 100+)."""
    lo = min(MIN_LENGTH, seq_len)
    spread = np.exp(np.linspace(np.log(lo), np.log(seq_len), batch_size)).round().astype(int)
    order = np.argsort((np.arange(batch_size) * 0.6180339887) % 1.0)
    return spread[order]


def zipf_bert_batch(batch_size: int = 128, seq_len: int = 128, seed: int = 0, exponent: float = 1.0) -> BertBatch:
    """The embedded default batch (see the module docstring)."""
    if batch_size < 1 or not 4 <= seq_len <= MAX_POSITIONS:
        raise ValueError(f"need batch_size >= 1 and 4 <= seq_len <= {MAX_POSITIONS}")
    rng = np.random.default_rng(seed)
    n_words = VOCAB_SIZE - FIRST_WORD_ID
    p = np.arange(1, n_words + 1, dtype=np.float64) ** -exponent
    p /= p.sum()
    ids = np.full((batch_size, seq_len), PAD_ID, dtype=np.int64)
    types = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    words = FIRST_WORD_ID + rng.choice(n_words, size=(batch_size, seq_len), p=p)
    for b, n in enumerate(default_lengths(batch_size, seq_len)):
        ids[b, :n] = words[b, :n]
        ids[b, 0], ids[b, n - 1] = CLS_ID, SEP_ID
        mask[b, :n] = 1
        if b % 2 == 1 and n >= 6:  # sentence pair
            cut = n // 2
            ids[b, cut] = SEP_ID
            types[b, cut + 1:n] = 1
    return BertBatch(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types), f"zipf-bert:{exponent}:{seed}")


def batch_from_texts(texts: Sequence[Any], tokenizer, max_length: int = 128) -> BertBatch:
    """Tokenise real text with a Hugging Face tokenizer (object, or a name to load).

    ``texts`` are strings or (a, b) pairs.  The tokenizer must produce ids inside the model's
    30,522-word vocabulary (a BERT/ELECTRA uncased WordPiece tokenizer).  ``transformers`` is
    imported only when a name is given.
    """
    if isinstance(tokenizer, str):
        try:
            from transformers import AutoTokenizer
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("batch_from_texts(name) needs the 'transformers' package; "
                              "pass a tokenizer object instead or `pip install transformers`") from e
        name = tokenizer
        tokenizer = AutoTokenizer.from_pretrained(name)
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty")
    pairs = all(isinstance(t, (tuple, list)) and len(t) == 2 for t in texts)
    args = ([t[0] for t in texts], [t[1] for t in texts]) if pairs else (texts,)
    enc = tokenizer(*args, padding="max_length", truncation=True, max_length=max_length, return_tensors="np")

    def field(key, default):
        val = enc[key] if key in enc else None
        return default if val is None else torch.as_tensor(np.asarray(val), dtype=torch.long)

    ids = field("input_ids", None)
    if ids is None:
        raise ValueError("the tokenizer returned no 'input_ids'")
    mask = field("attention_mask", (ids != getattr(tokenizer, "pad_token_id", PAD_ID)).long())
    types = field("token_type_ids", torch.zeros_like(ids))
    mask_id = getattr(tokenizer, "mask_token_id", None)
    name = getattr(tokenizer, "name_or_path", type(tokenizer).__name__)
    return BertBatch(ids, mask, types, f"texts:{name}:{len(texts)}", mask_token_id=MASK_ID if mask_id is None else int(mask_id))
