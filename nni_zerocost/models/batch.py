"""The token batch a user's own model is scored on (:func:`nni_zerocost.score_model`'s ``batch``).

Whatever the user gives becomes a :class:`ModelBatch`: token ids ``(B, T)`` (int64) in the
model's vocabulary, an optional attention mask (1 = real token, Hugging Face models only), the
vocabulary size and where the ids came from (for store keys).  Accepted forms:

* token ids: a ``torch.Tensor`` or numpy array ``(B, T)`` of integers;
* a mapping with ``input_ids`` and optionally ``attention_mask`` (a Hugging Face tokenizer's
  output, ``tokenizer(texts, padding=True, return_tensors="pt")``): one row per text, padding kept
  and masked;
* a corpus path: ``.npy`` or ``.pt`` token ids, a 1-D stream cut into rows as the paper's
  protocol cuts PTB (``DEFAULT_ROWS`` columns of the stream, the first ``DEFAULT_LENGTH`` tokens of
  each), or a 2-D array used as given;
* ``(texts, tokenizer)``: texts (a string or a list of strings) tokenised with a tokenizer the
  user already has, called like a Hugging Face tokenizer or a ``tokenizers.Tokenizer`` (its
  ``encode_batch``; nothing downloads); the texts are joined
  into one token stream and cut into rows like a corpus file, so every row is full (no padding,
  which a recurrent LM could not skip);
* None: the embedded Zipf batch over the model's vocabulary (:func:`nni_zerocost.data.zipf_batch`),
  ``DEFAULT_ROWS`` x ``DEFAULT_LENGTH`` = 50 x 70 tokens: the recurrent space's paper shape, on which
  the Zipf default was checked against PTB text, with 3,500 tokens (more than the 1,024 the
  transformer spectra read, 8 rows for the activation codes, 50 sequences for the Jacobian
  covariance).  Rows are cut to the model's position limit where it has one.  Ids are Zipf ranks
  over the vocabulary with the special ids the model's config names (pad, bos, eos, ...) left out.

Bad input is refused with :class:`~nni_zerocost.errors.BadInputError` naming ``batch``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch

from ..errors import BadInputError

#: rows (sequences) and tokens per row of the default batch and of a corpus stream's cut
DEFAULT_ROWS, DEFAULT_LENGTH = 50, 70


@dataclasses.dataclass(frozen=True)
class ModelBatch:
    """Token ids ``(B, T)`` int64 for a user's model, an optional attention mask and its origin."""

    input_ids: torch.Tensor  # int64 (B, T)
    vocab_size: int
    source: str
    attention_mask: Optional[torch.Tensor] = None  # int64 (B, T), 1 = real token; None = all real
    mask_token_id: Optional[int] = None  # the tokenizer's [MASK] id, when one was given

    @property
    def fingerprint(self) -> str:
        h = hashlib.sha256(self.input_ids.cpu().numpy().tobytes())
        h.update(f"{tuple(self.input_ids.shape)}|{self.vocab_size}".encode())
        if self.attention_mask is not None:
            h.update(self.attention_mask.cpu().numpy().astype(np.int8).tobytes())
        return h.hexdigest()[:16]

    @property
    def mask(self) -> torch.Tensor:
        """The attention mask as bool (B, T); all True without padding."""
        if self.attention_mask is None:
            return torch.ones_like(self.input_ids, dtype=torch.bool)
        return self.attention_mask.bool()

    @property
    def padded(self) -> bool:
        return self.attention_mask is not None and not bool(self.attention_mask.bool().all())


# -- what the model tells about its inputs ------------------------------------------------------
def hf_config(model: torch.nn.Module):
    """The Hugging Face config of a ``transformers`` model, else None (no import of transformers)."""
    if not type(model).__module__.startswith("transformers."):
        return None
    return getattr(model, "config", None)


def input_embedding(model: torch.nn.Module) -> Optional[torch.nn.Embedding]:
    """The token embedding table: ``get_input_embeddings()`` where the model has it, else the first
    ``nn.Embedding`` in module order."""
    get = getattr(model, "get_input_embeddings", None)
    if callable(get):
        try:
            emb = get()
        except (NotImplementedError, AttributeError):
            emb = None
        if isinstance(emb, torch.nn.Embedding):
            return emb
    return next((m for m in model.modules() if isinstance(m, torch.nn.Embedding)), None)


def vocab_size(model: torch.nn.Module) -> int:
    """The model's vocabulary: Hugging Face ``config.vocab_size``, else the input embedding's rows."""
    config = hf_config(model)
    if config is not None and isinstance(getattr(config, "vocab_size", None), int):
        return int(config.vocab_size)
    emb = input_embedding(model)
    if emb is None:
        raise BadInputError("model", f"{type(model).__name__} has no nn.Embedding input table, so its vocabulary "
                                     "size is unknown; a language model maps token ids to logits")
    return int(emb.num_embeddings)


def max_length(model: torch.nn.Module) -> Optional[int]:
    """The longest row the model takes (learned positions), or None when unbounded."""
    config = hf_config(model)
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None) if config is not None else None
        if isinstance(value, int) and value > 0:
            return value
    return None


def special_ids(model: torch.nn.Module, vocab: int) -> list:
    """Special token ids a Hugging Face config names (pad, bos, eos, ...) inside the vocabulary."""
    config = hf_config(model)
    out = set()
    for name in ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id",
                 "mask_token_id", "unk_token_id", "decoder_start_token_id"):
        value = getattr(config, name, None) if config is not None else None
        for v in (value if isinstance(value, (list, tuple)) else [value]):
            if isinstance(v, int) and 0 <= v < vocab:
                out.add(v)
    return sorted(out)


# -- the forms of ``batch`` ---------------------------------------------------------------------
def model_batch(model: torch.nn.Module, batch: Any = None) -> ModelBatch:
    """``batch`` (see the module docstring) as a checked :class:`ModelBatch` for ``model``."""
    vocab = vocab_size(model)
    limit = max_length(model)
    if batch is None:
        return default_batch(model, vocab, limit)
    if isinstance(batch, ModelBatch):
        return _checked(batch.input_ids, batch.attention_mask, vocab, limit, batch.source, batch.mask_token_id)
    from ..data import TokenBatch

    if isinstance(batch, TokenBatch):  # the package's own (T, B) layout
        return _checked(batch.tokens.t(), None, vocab, limit, batch.source)
    if isinstance(batch, (str, os.PathLike)):
        return corpus_batch(batch, vocab, limit)
    if isinstance(batch, Mapping):
        if "input_ids" not in batch:
            raise BadInputError("batch", "a mapping must hold 'input_ids' (and optionally 'attention_mask'), got keys "
                                         f"{sorted(map(str, batch))}")
        mask = batch.get("attention_mask")
        return _checked(_ids(batch["input_ids"], "input_ids"), mask, vocab, limit, "input_ids")
    if isinstance(batch, (tuple, list)) and len(batch) == 2 and not _is_array(batch[0]) and (
            callable(batch[1]) or callable(getattr(batch[1], "encode_batch", None))):
        return text_batch(batch[0], batch[1], vocab, limit)
    if _is_array(batch):
        return _checked(_ids(batch, "batch"), None, vocab, limit, "input_ids")
    raise BadInputError("batch", f"expected token ids (B, T), a mapping with input_ids, a .npy/.pt path, "
                                 f"(texts, tokenizer) or None; got {type(batch).__name__}")


def default_batch(model: torch.nn.Module, vocab: int, limit: Optional[int]) -> ModelBatch:
    """The embedded Zipf batch (seed 0) over the model's vocabulary, specials left out."""
    from ..data import zipf_batch

    specials = special_ids(model, vocab)
    ordinary = np.setdiff1d(np.arange(vocab), np.asarray(specials, dtype=np.int64))
    if len(ordinary) < 2:
        raise BadInputError("model", f"its vocabulary has {vocab} token(s); a language model needs at least 2")
    length = min(DEFAULT_LENGTH, limit) if limit else DEFAULT_LENGTH
    zb = zipf_batch(batch_size=DEFAULT_ROWS, seq_len=length, vocab_size=len(ordinary), seed=0)
    ids = torch.from_numpy(ordinary[zb.tokens.t().numpy()]).long().contiguous()
    source = f"{zb.source}:{vocab}" + (f":no-specials={','.join(map(str, specials))}" if specials else "")
    return _checked(ids, None, vocab, limit, source)


def corpus_batch(path, vocab: int, limit: Optional[int]) -> ModelBatch:
    """Token ids from a ``.npy`` / ``.pt`` file: a 2-D array as given, a 1-D stream cut into rows."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError("batch", "no such file (a corpus is a .npy or .pt file of token ids)", repr(str(path)))
    try:
        if p.suffix == ".npy":
            data = np.load(p, allow_pickle=False)
        elif p.suffix == ".pt":
            data = torch.load(p, map_location="cpu", weights_only=True)
        else:
            raise BadInputError("batch", "a corpus file must be .npy or .pt token ids", repr(str(path)))
    except BadInputError:
        raise
    except Exception as e:  # unreadable file: say so in one line
        raise BadInputError("batch", f"cannot read token ids: {type(e).__name__}: {e}", repr(str(path))) from None
    ids = _ids(data, "batch")
    if ids.dim() == 1:
        ids = cut_stream(ids, limit)
    return _checked(ids, None, vocab, limit, f"file:{p.name}")


def cut_stream(stream: torch.Tensor, limit: Optional[int]) -> torch.Tensor:
    """A 1-D token stream as rows, the paper's way: ``DEFAULT_ROWS`` equal columns of the stream
    (fewer when it is short), the first ``DEFAULT_LENGTH`` tokens of each."""
    n = stream.numel()
    length = min(DEFAULT_LENGTH, limit) if limit else DEFAULT_LENGTH
    if n < 2:
        raise BadInputError("batch", f"a token stream of {n} token(s) is too short (at least 2)")
    if n < length:
        return stream[None, :].clone()
    rows = min(DEFAULT_ROWS, n // length)
    column = n // rows
    return stream[: rows * column].view(rows, column)[:, :length].clone()


def text_batch(texts, tokenizer, vocab: int, limit: Optional[int]) -> ModelBatch:
    """Texts tokenised with the user's tokenizer, joined into one stream and cut into rows."""
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence) or not texts or not all(isinstance(t, str) for t in texts):
        raise BadInputError("batch", "(texts, tokenizer): texts must be a string or a non-empty list of strings")
    raw = not callable(tokenizer) and callable(getattr(tokenizer, "encode_batch", None))
    if not callable(tokenizer) and not raw:
        raise BadInputError("batch", f"(texts, tokenizer): a {type(tokenizer).__name__} is neither called like a "
                                     "Hugging Face tokenizer nor a tokenizers.Tokenizer (encode_batch)")
    try:
        if raw:  # a tokenizers.Tokenizer: its encodings' ids, special tokens added as its post-processor says
            encoded = [e.ids for e in tokenizer.encode_batch(list(texts))]
        else:
            encoded = tokenizer(list(texts))
    except Exception as e:
        raise BadInputError("batch", f"the tokenizer failed on the texts: {type(e).__name__}: {e}") from None
    rows = encoded["input_ids"] if isinstance(encoded, Mapping) or hasattr(encoded, "keys") else encoded
    if isinstance(rows, torch.Tensor):
        rows = rows.tolist()
    stream = [int(i) for row in rows for i in (row if isinstance(row, (list, tuple)) else [row])]
    mask_id = getattr(tokenizer, "mask_token_id", None)
    if raw:  # a tokenizers.Tokenizer names no mask token: its [MASK] or <mask> entry, if any
        mask_id = next((i for i in (tokenizer.token_to_id(t) for t in ("[MASK]", "<mask>")) if i is not None), None)
    batch = _checked(cut_stream(torch.tensor(stream, dtype=torch.long), limit), None, vocab, limit,
                     f"texts:{type(tokenizer).__name__}:{hashlib.sha256(''.join(texts).encode()).hexdigest()[:12]}",
                     mask_id if isinstance(mask_id, int) and 0 <= mask_id < vocab else None)
    return batch


def _is_array(x) -> bool:
    return isinstance(x, (torch.Tensor, np.ndarray))


def _ids(x, what: str) -> torch.Tensor:
    """An integer tensor from a tensor, an array or nested lists; BadInputError otherwise."""
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.integer) and x.dtype != np.bool_:
            raise BadInputError("batch", f"{what} must hold integer token ids, got dtype {x.dtype}")
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as e:
            raise BadInputError("batch", f"{what} is not an array of integers: {e}") from None
    if x.dtype.is_floating_point or x.dtype.is_complex:
        raise BadInputError("batch", f"{what} must hold integer token ids, got dtype {x.dtype}")
    return x.detach().to("cpu", torch.long)


def _checked(ids: torch.Tensor, mask: Optional[torch.Tensor], vocab: int, limit: Optional[int], source: str,
             mask_token_id: Optional[int] = None) -> ModelBatch:
    ids = _ids(ids, "input_ids")
    if ids.dim() != 2:
        raise BadInputError("batch", f"token ids must be 2-D (B, T), got shape {tuple(ids.shape)}")
    if ids.shape[0] < 1 or ids.shape[1] < 2:
        raise BadInputError("batch", f"token ids (B, T) need at least 1 row of 2 tokens, got shape {tuple(ids.shape)}")
    if limit is not None and ids.shape[1] > limit:
        raise BadInputError("batch", f"rows of {ids.shape[1]} tokens exceed the model's {limit} positions")
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= vocab:
        raise BadInputError("batch", f"token ids must lie in [0, {vocab}) (the model's vocabulary), got {lo}..{hi}")
    if mask is not None:
        if not isinstance(mask, torch.Tensor):
            mask = torch.as_tensor(np.asarray(mask))
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise BadInputError("batch", "attention_mask must hold only 0 and 1")
        mask = mask.detach().to("cpu", torch.long)
        if mask.shape != ids.shape:
            raise BadInputError("batch", f"attention_mask {tuple(mask.shape)} and input_ids {tuple(ids.shape)} "
                                         "must have the same shape")
        empty = (mask.sum(1) == 0).nonzero().flatten().tolist()
        if empty:
            raise BadInputError("batch", f"rows {empty[:5]} of the attention mask have no real token")
        if bool(mask.bool().all()):
            mask = None
    return ModelBatch(ids.contiguous(), int(vocab), source, mask, mask_token_id)
