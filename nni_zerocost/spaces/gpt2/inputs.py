"""Token batches for the GPT-2 space: an embedded Zipf default and pre-tokenised id files.

The vocabulary is archai's byte-level BPE trained on WikiText-103 (``Gpt2Vocab``, 50,257 tokens
padded to 50,264) with ``sorted_vocab``: ids below 258 are the two special tokens and the 256
byte tokens, every id from 258 on is ordered by training-corpus frequency, and 50,257..50,263 are
padding that never occurs.  The adaptive softmax's clusters rely on that order.  The default
batch therefore draws rank ``r`` with probability proportional to 1/r (Zipf, exponent 1) and maps
it to id ``257 + r``, so about 92% of the tokens fall in the head cluster and the two tail
clusters are exercised too.

Default shape 16 x 128: rows are independent sequences (a causal LM sees only each row's
prefix), 128 positions give every layer long contexts while staying inside the 192 learned
positions of the searched space, and the 2,048 tokens keep the largest model's forward + backward
to seconds on a CPU.  A model with fewer positions (``tgt_len`` 32 in most of LTS's One Billion
Words release) scores the same tokens re-cut into shorter rows: :func:`rows_within`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...errors import DataError
from .config import BPE_TOKENS, MAX_POSITIONS, VOCAB_SIZE

FIRST_SORTED_ID = 258  # 2 special tokens + 256 bytes precede the frequency-sorted tokens
REAL_VOCAB = BPE_TOKENS  # ids from here to VOCAB_SIZE are padding
BATCH_SIZE, SEQ_LEN = 16, 128


@dataclass(frozen=True)
class LMBatch:
    """``input_ids`` (B, T) int64 token ids; the LM loss predicts ``input_ids[:, 1:]``."""

    input_ids: torch.Tensor
    source: str = "custom"
    vocab_size: int = VOCAB_SIZE

    def __post_init__(self):
        ids = self.input_ids
        if not isinstance(ids, torch.Tensor) or ids.dim() != 2:
            raise ValueError(f"input_ids must be a 2-D (batch, length) tensor, got {getattr(ids, 'shape', type(ids))}")
        if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            raise ValueError(f"input_ids must hold integers, got {ids.dtype}")
        if ids.shape[0] < 1 or ids.shape[1] < 2:
            raise ValueError(f"need at least 1 row of 2 tokens, got shape {tuple(ids.shape)}")
        if ids.shape[1] > MAX_POSITIONS:
            raise ValueError(f"sequence length {ids.shape[1]} exceeds {MAX_POSITIONS}, the longest rows a batch holds "
                             f"(the searched space's learned positions)")
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= VOCAB_SIZE:
            raise ValueError(f"token ids must lie in [0, {VOCAB_SIZE}), got range [{lo}, {hi}]")
        object.__setattr__(self, "input_ids", ids.long().contiguous())

    @property
    def shape(self):
        return tuple(self.input_ids.shape)

    @property
    def fingerprint(self) -> str:
        h = hashlib.sha256(self.input_ids.cpu().numpy().tobytes())
        h.update(f"{self.shape}|{self.vocab_size}".encode())
        return h.hexdigest()[:16]


def row_length_within(length: int, positions: int) -> int:
    """Length of the rows :func:`rows_within` cuts rows of ``length`` tokens into."""
    pieces = -(-length // positions)
    return max(length // pieces, 2)


def rows_within(input_ids: torch.Tensor, positions: int) -> torch.Tensor:
    """(B, T) ids as rows of at most ``positions`` tokens: each row cut into its consecutive windows
    of equal length, as few as fit (16 x 128 -> 64 x 32 for 32 positions, the same 2,048 tokens;
    ``T mod windows`` tokens at a row's end are left out when the windows cannot share them).
    The same tensor, untouched, when the rows already fit."""
    rows, length = input_ids.shape
    if length <= positions:
        return input_ids
    cut = row_length_within(length, positions)
    pieces = length // cut
    return input_ids[:, : pieces * cut].reshape(rows * pieces, cut)


def zipf_lm_batch(batch_size: int = BATCH_SIZE, seq_len: int = SEQ_LEN, seed: int = 0,
                  exponent: float = 1.0) -> LMBatch:
    """The embedded default batch: i.i.d. Zipf-distributed frequency-sorted token ids."""
    if batch_size < 1 or not 2 <= seq_len <= MAX_POSITIONS:
        raise ValueError(f"need batch_size >= 1 and 2 <= seq_len <= {MAX_POSITIONS}, got {batch_size} x {seq_len}")
    n = REAL_VOCAB - FIRST_SORTED_ID
    p = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    p /= p.sum()
    ids = FIRST_SORTED_ID + np.random.default_rng(seed).choice(n, size=(batch_size, seq_len), p=p)
    return LMBatch(torch.from_numpy(ids).long(), f"zipf-gpt2:{exponent}:{seed}")


def batch_from_file(path, batch_size: int = BATCH_SIZE, seq_len: int = SEQ_LEN) -> LMBatch:
    """Pre-tokenised ids (archai's WikiText-103 GPT-2 tokenizer) from a ``.npy`` or ``.pt`` file.

    A 1-D id stream is cut into ``batch_size`` consecutive windows of ``seq_len`` tokens (its
    first ``batch_size * seq_len`` tokens); a 2-D (rows, length) array gives its first
    ``batch_size`` rows, first ``seq_len`` columns.  Nothing is downloaded or tokenised here.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError("no such token-id file (pass a .npy or .pt file of pre-tokenised ids)", str(p))
    if not 2 <= seq_len <= MAX_POSITIONS or batch_size < 1:
        raise ValueError(f"need batch_size >= 1 and 2 <= seq_len <= {MAX_POSITIONS}, got {batch_size} x {seq_len}")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif suffix == ".pt":
            obj = torch.load(p, map_location="cpu", weights_only=True)
            if not isinstance(obj, torch.Tensor):
                raise DataError(f"expected a saved tensor of token ids, got {type(obj).__name__}", str(p))
            arr = obj.numpy()
        else:
            raise DataError("unsupported file type (expected .npy or .pt pre-tokenised ids)", str(p))
    except DataError:
        raise
    except Exception as e:  # numpy and torch raise many types for a corrupt file
        raise DataError(f"cannot read token ids ({type(e).__name__}: {e})", str(p)) from None
    if arr.dtype.kind not in "iu":
        raise DataError(f"token ids must be integers, got dtype {arr.dtype}", str(p))
    if arr.ndim == 1:
        need = batch_size * seq_len
        if arr.size < need:
            raise DataError(f"{arr.size} tokens cannot fill {batch_size} rows of {seq_len}", str(p))
        ids = arr[:need].reshape(batch_size, seq_len)
    elif arr.ndim == 2:
        if arr.shape[0] < batch_size or arr.shape[1] < seq_len:
            raise DataError(f"shape {arr.shape} cannot give {batch_size} rows of {seq_len} tokens", str(p))
        ids = arr[:batch_size, :seq_len]
    else:
        raise DataError(f"expected a 1-D id stream or a 2-D (rows, length) array, got {arr.ndim} dimensions", str(p))
    if int(ids.min()) < 0 or int(ids.max()) >= VOCAB_SIZE:
        raise DataError(f"token ids must lie in [0, {VOCAB_SIZE}) (the model's vocabulary), got range "
                        f"[{int(ids.min())}, {int(ids.max())}]", str(p))
    return LMBatch(torch.from_numpy(np.ascontiguousarray(ids).astype(np.int64)), f"ids:{p.name}")
