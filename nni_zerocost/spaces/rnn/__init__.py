"""The NAS-Bench-NLP recurrent-cell search space."""
from __future__ import annotations

import functools
from typing import Any, Dict, Optional, Sequence

import numpy as np


from ...data import TokenBatch, corpus_batch, zipf_batch
from ..base import ContextOption, ScoringContext, SearchSpace, register_space
from .cell import ACTIVATIONS, ARITY, OPS, Cell, Node
from .codec import RNN_MAX_NODES, RNNCellCodec
from .context import RNNContext, param_count
from .generator import CellGenerator
from .model import EMSIZE, INIT_MODES, NHID, NLAYERS, VOCAB, RNNLanguageModel

__all__ = ["Cell", "Node", "CellGenerator", "RNNLanguageModel", "RNNSpace", "RNNContext"]

#: the paper's protocol: 50 columns of the batchified test split, first 70 steps
BATCH_SIZE, SEQ_LEN = 50, 70


@register_space
class RNNSpace(SearchSpace[Cell]):
    """NAS-Bench-NLP cells: hidden tuple size 1-3, 13 intermediate vertices."""

    name = "rnn"
    default_proxy = "hidden_covariance"
    title = "RNN"
    offers = RNNContext.offers

    def parse(self, obj: Any) -> Cell:
        if isinstance(obj, dict) and "recipe" in obj and not _looks_like_recipe(obj):
            obj = obj["recipe"]
        return Cell.parse(obj)

    def sample(self, rng: np.random.Generator) -> Cell:
        k = int(rng.integers(1, 4))
        return CellGenerator(k).sample(int(rng.integers(0, 2**31 - 1)))

    def to_dict(self, arch: Cell) -> Dict[str, Any]:
        return arch.to_recipe()

    def arch_hash(self, arch: Cell) -> str:
        return arch.canonical_hash()

    def arch_key(self, arch: Cell, **context_options) -> str:
        """``compat`` replays the official recipe-order random stream, so its scores depend on
        the exact recipe; every other init builds the canonical cell (isomorphic cells score
        bit-identically) and is keyed by the canonical hash."""
        if context_options.get("init") == "compat":
            return arch.exact_hash()
        return arch.canonical_hash()

    def choices(self) -> Dict[str, Sequence[Any]]:
        """``op``: every node op; ``arity``: (min, max) inputs per op (None = unbounded);
        ``hidden_tuple_size``: the sizes NAS-Bench-NLP's generator draws."""
        return {"hidden_tuple_size": (1, 2, 3), "op": OPS, "activation": ACTIVATIONS, "arity": dict(ARITY)}

    def default_batch(self, seed: int = 0) -> TokenBatch:
        return zipf_batch(batch_size=BATCH_SIZE, seq_len=SEQ_LEN, seed=seed)

    def batch(self, corpus: Optional[str] = None, *, batch_size: Optional[int] = None,
              seq_len: Optional[int] = None) -> TokenBatch:
        """A PTB-style folder or text file (its test split, ``batch_size`` columns, the first
        ``seq_len`` steps; the paper's 50 x 70 by default), or the Zipf batch of that shape."""
        bs, sl = batch_size or BATCH_SIZE, seq_len or SEQ_LEN
        if bs < 1 or sl < 2:
            raise ValueError(f"need batch_size >= 1 and seq_len >= 2, got {bs} x {sl}")
        if corpus is None:
            return self.default_batch() if (bs, sl) == (BATCH_SIZE, SEQ_LEN) else zipf_batch(bs, sl, seed=0)
        return _corpus_batch(str(corpus), bs, sl)

    def smoke_options(self) -> Dict[str, Any]:
        """An 8-wide model on 3 rows of 4 steps: a backend check compares records, not scores."""
        return {"emsize": 8, "nhid": 8, "batch_size": 3, "seq_len": 4}

    def smoke_batch(self) -> TokenBatch:
        """12 steps x 6 sequences of the default batch: enough for every proxy's code path."""
        batch = self.default_batch(0)
        return TokenBatch(batch.tokens[:12, :6].clone(), batch.vocab_size, batch.source + ":12x6")

    def context_options(self) -> Dict[str, ContextOption]:
        """``init`` (see :mod:`.model`); ``emsize``/``nhid`` shrink the model for quick checks."""
        return {
            "init": ContextOption("init", INIT_MODES,
                                  "weight init: 'official' distributions, built from the canonical cell (default), "
                                  "or 'compat' = the official code's exact random stream (reproduces the paper's "
                                  "scores with --seed 0)"),
            "emsize": ContextOption("emsize", int, f"embedding size (default {EMSIZE}; smaller for quick checks)"),
            "nhid": ContextOption("nhid", int, f"hidden size of the inner layers (default {NHID})"),
        }

    def limits(self) -> Dict[str, int]:
        return {"recurrent_layers": NLAYERS}

    def summary(self, arch: Any) -> str:
        """Op counts, the hidden tuple size and the output op."""
        recipe = self.to_dict(self.parse(arch))
        ops = [v["op"] for v in recipe.values()]
        k = sum(1 for n in recipe if n.startswith("h_new_"))
        acts = ", ".join(f"{ops.count(a)} {a[len('activation_'):]}" for a in sorted(set(ops)) if a.startswith("activation_"))
        other = ", ".join(f"{ops.count(o)} {o}" for o in ("blend", "elementwise_prod", "elementwise_sum") if o in ops)
        return f"{len(recipe)} nodes: {ops.count('linear')} linear" + (f", {acts}" if acts else "") + \
            (f", {other}" if other else "") + f"; hidden tuple {k}; h_new_0 = {recipe['h_new_0']['op']}"

    def build_model(self, arch: Any, *, seed: int = 0, init: str = "official", vocab_size: int = VOCAB,
                    **sizes) -> RNNLanguageModel:
        """The model the proxies score: the canonical cell for ``official`` init (isomorphic
        cells get identical models), the exact recipe for ``compat``."""
        cell = self.parse(arch)
        return RNNLanguageModel(cell if init == "compat" else cell.canonical(), vocab_size=vocab_size, seed=seed,
                                init=init, **sizes)

    def layer_count(self, arch: Any, **_) -> int:
        return NLAYERS

    def cost_inputs(self, arch: Any, **_) -> Dict[str, int]:
        """The paper's row length (70 steps, bptt) over the PTB vocabulary."""
        return {"seq_len": 70, "vocab_size": VOCAB}

    def param_count(self, arch: Any, *, vocab_size: int = VOCAB, emsize: int = EMSIZE, nhid: int = NHID, **_) -> int:
        return param_count(self.parse(arch), vocab_size, emsize, nhid)

    def nonembedding_param_count(self, arch: Any, *, vocab_size: int = VOCAB, emsize: int = EMSIZE, **sizes) -> int:
        """The recurrent layers (the tied embedding/decoder and the decoder bias left out)."""
        return self.param_count(arch, vocab_size=vocab_size, emsize=emsize, **sizes) - vocab_size * (emsize + 1)

    def codec(self, max_nodes: int = RNN_MAX_NODES) -> RNNCellCodec:
        return RNNCellCodec(max_nodes)

    def codec_options(self) -> Dict[str, Any]:
        return {"max_nodes": RNN_MAX_NODES}

    def naslib_form(self):
        from .naslib_form import naslib_form

        return naslib_form()

    def claims(self, model) -> bool:
        return isinstance(model, RNNLanguageModel)

    def context_for_model(self, model, batch, *, seed: int = 0, device=None) -> ScoringContext:
        """Our own :class:`RNNLanguageModel` (as :meth:`build_model` or NNI's ``freeze`` made it), scored as is with the space's passes."""
        return RNNContext.of_model(model, self.default_batch() if batch is None else batch, seed=seed, device=device)

    def context(self, arch: Any, batch: Optional[TokenBatch] = None, *, seed: int = 0, device=None,
                init: str = "official", **sizes) -> RNNContext:
        """``sizes`` (emsize, nhid) shrink the model for quick checks; default: official PTB sizes."""
        return RNNContext(self.parse(arch), batch if batch is not None else self.default_batch(), seed=seed,
                          device=device, init=init, **sizes)


@functools.lru_cache(maxsize=4)
def _corpus_batch(corpus: str, batch_size: int, seq_len: int) -> TokenBatch:
    """Read once per process: every front end checks a corpus through the plan, and NNI
    adapters make a plan per candidate space (batches are immutable)."""
    return corpus_batch(corpus, batch_size, seq_len)


def _looks_like_recipe(d: dict) -> bool:
    return all(isinstance(v, dict) and "op" in v for v in d.values())


from . import benchmark  # noqa: E402,F401  (registers the space's benchmark)
