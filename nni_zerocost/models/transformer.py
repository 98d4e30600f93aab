"""Scoring contexts of a user's transformer LM: Hugging Face models built from a config, and
torch's own ``nn.TransformerEncoderLayer`` stacks.

Layouts read (by structure, not by class name, so relatives sharing a layout work too):

* BERT: ``attention.self.{query,key,value}``, ``attention.output.dense``, ``intermediate.dense``,
  ``output.dense`` per layer (BertModel/BertForMaskedLM, RoBERTa, ELECTRA, ...);
* GPT-2: ``attn.c_attn`` (query/key/value in one ``Conv1D``, read as three matrices),
  ``attn.c_proj``, ``mlp.c_fc``, ``mlp.c_proj``;
* LLaMA: ``self_attn.{q,k,v,o}_proj``, ``mlp.{gate,up,down}_proj`` (LLaMA, Mistral, Qwen2, ...);
* torch: ``nn.TransformerEncoderLayer`` (``self_attn``: ``nn.MultiheadAttention``, ``linear1``,
  ``linear2``), called by the user's model with whatever mask it passes.

``transformers`` is imported by nothing here: a Hugging Face model is recognised by its class's
module name, and its config is read as an object.

Capabilities and their passes (each cached, each in eval mode, no weight or ``.grad`` written,
every hook removed when the pass ends, the attention implementation put back):

* ``parameters``: every parameter (tied ones once, heads included); non-embedding = less every
  ``nn.Embedding`` table and the output layer onto the vocabulary (``get_output_embeddings()``).
* ``weights``: ``attention_input`` = query/key/value, ``attention`` = those and the output
  projection, ``feed_forward`` = up (and gate) and down projections, each as an (out, in) matrix;
  ``head_counts()`` = query heads per layer.
* ``weight_gradients``: ONE forward + backward of the model's own LM loss on the batch:
  masked LM for encoders (15% of the real tokens of each row, at least one, chosen with the
  context seed; replaced by the tokenizer's [MASK] id when the batch came with one, else by a
  seeded random token), next-token cross-entropy for causal LMs (GPT-2, LLaMA, a torch model).
  A model without an LM head (BertModel, GPT2Model, LlamaModel) is decoded with its input
  embedding table (tied decoder), because the sum of the last hidden state, the label-free loss
  of the paper, is identically zero after a final LayerNorm (see the BERT space); where the hidden
  size differs from the embedding size (ElectraModel) no loss is left, and the model offers
  neither ``weight_gradients`` nor ``head_gates``.
  ``input_grad`` (B, T, E) is w.r.t. the word embeddings fed to the model (Hugging Face:
  ``inputs_embeds``; torch: the embedding's output), equal to the gradient w.r.t. the summed
  input embeddings wherever positions and types are added to them; zeros at padding.
* ``head_gates``: dL/d(gate) of a gate on each head's output at gate = 1.  The output
  projection is linear in the concatenated heads, so this is exactly ``sum(W_o * dL/dW_o)``
  over the head's input columns of the output projection: read from the gradient pass, no hook.
* ``attention_confidence``: one forward with the attention probabilities (Hugging Face:
  ``output_attentions=True`` under the eager implementation, switched for the pass only; torch:
  ``need_weights=True, average_attn_weights=False`` set on the call by a pre-hook).  Per head,
  the mean over real queries of the largest attention weight; a key with weight exactly 0 is one
  the query may not see (causal mask, padding), so the maximum runs over the visible keys, and
  queries that see a single key (the first position of a causal LM: weight 1 by construction)
  are left out.
* ``ffn_codes``: the same forward: pre-activation > 0 of every feed-forward intermediate (gated
  FFNs: the gate's pre-activation) for the real tokens of the first 8 rows.
* ``layer_spectra``: one forward of the first rows holding 1,024 real tokens: the token
  covariance eigenvalues of the attention output after its output projection, the FFN
  intermediate after its activation (the down projection's input), and each layer's output.

torch models are run with gradients enabled and their embedding output made a leaf even in the
forward-only passes, which keeps ``nn.TransformerEncoderLayer`` off its fused inference path
(that path calls no submodule, so no hook would see the attention).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch

from ..errors import BadInputError
from ..outputs import (CODE_ROWS, SPECTRA_TOKENS, FeedForwardCodes, LayerSpectra, WeightGradients, masked_positions,
                       rows_holding)
from ..precision import full_precision
from ..spectra import covariance_eigenvalues
from .adapters import register_model_adapter
from . import microbatches
from .batch import ModelBatch
from .common import Hooks, ModelContext, check_logits, eval_mode, logits_of, next_token_loss, no_new_hooks



@dataclasses.dataclass(frozen=True)
class WeightRef:
    """One weight matrix: its name (the parameter's, ``[query]`` etc. for a slice of a fused
    one), the parameter, and how to read the (out, in) matrix from the parameter or its gradient."""

    name: str
    param: torch.nn.Parameter
    view: Callable[[torch.Tensor], torch.Tensor] = lambda t: t

    def matrix(self, tensor: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.view(self.param if tensor is None else tensor)


@dataclasses.dataclass
class Block:
    """One transformer layer: its weights by role and the modules its passes hook."""

    layer: torch.nn.Module
    heads: int  # softmax attention heads (0: the layer has no softmax attention)
    qkv: List[WeightRef]
    out: Optional[WeightRef]  # the attention output projection; heads are slices of its input columns
    ffn: List[WeightRef]
    mix: Optional[torch.nn.Module] = None  # output (first element) = the token mixer's output (attention:
    # after its output projection)
    ffn_pre: Optional[torch.nn.Module] = None  # output = the feed-forward pre-activation (the gate's when gated)
    ffn_down: Optional[torch.nn.Module] = None  # input = the feed-forward intermediate after its activation
    attention: Optional[torch.nn.MultiheadAttention] = None  # torch: the module giving probabilities
    batch_first: bool = True  # layout of the hooked tensors
    head_columns: Optional[Tuple[Tuple[int, ...], ...]] = None  # the output projection's input columns of
    # each head where they are not equal consecutive slices (read by structure); None: consecutive slices
    mixer_in: List[WeightRef] = dataclasses.field(default_factory=list)  # other token mixers' input weights
    mixer_out: List[WeightRef] = dataclasses.field(default_factory=list)  # and their output projections
    scan_state: int = 0  # a state-space / recurrent mixer's state per token (its largest own matrix, e.g.
    # Mamba's A: d_inner x d_state), which its scan keeps per step: the gradient pass's memory counts it


def _block_sizes(b: Block) -> Tuple[int, int, int]:
    """``(hidden, matrix_inputs, heads)`` of a block for the gradient pass's memory estimate; a
    block read by structure may lack attention (Mamba, RWKV) or a dense FFN: the residual width is
    the output of whichever projection writes back to it."""
    refs = [r for r in (*b.qkv, b.out, *b.ffn, *b.mixer_in, *b.mixer_out) if r is not None]
    writers = [r for r in (b.out, *b.mixer_out, *b.ffn[-1:]) if r is not None]
    hidden = writers[0].matrix().shape[0] if writers else 0
    return hidden, sum(r.matrix().shape[1] for r in refs) + SCAN_STATE_COPIES * b.scan_state, b.heads


#: state-sized tensors a scan keeps per token for the backward pass (a reference selective scan:
#: exp(A dt), B dt u, the step states and their products, each saved by autograd), counted as
#: matrix inputs (which the estimate doubles); without them Mamba-130M's pass went past its bound
SCAN_STATE_COPIES = 4


def _get(module: torch.nn.Module, path: str) -> Optional[torch.nn.Module]:
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def _has(module, *paths) -> bool:
    return all(isinstance(_get(module, p), torch.nn.Module) for p in paths)


def _transposed(t: torch.Tensor) -> torch.Tensor:
    return t.t()


def _rows(i: int, n: int) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda t: t[i * n:(i + 1) * n]


def _conv_columns(i: int, n: int) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda t: t[:, i * n:(i + 1) * n].t()


def _heads(config, *names) -> Optional[int]:
    for n in names:
        v = getattr(config, n, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


def hf_blocks(model: torch.nn.Module) -> Tuple[str, List[Block]]:
    """``(layout, blocks)`` of a Hugging Face model, or ``("", [])`` for a layout not read here."""
    names = {id(p): n for n, p in model.named_parameters()}
    config = getattr(model, "config", None)
    heads = _heads(config, "num_attention_heads", "n_head")

    def ref(module, attr="weight", view=None, suffix=""):
        p = getattr(module, attr)
        return WeightRef(names[id(p)] + suffix, p, view or (lambda t: t))

    mods = list(model.modules())
    bert = [m for m in mods if _has(m, "attention.self.query", "attention.self.key", "attention.self.value",
                                    "attention.output.dense", "intermediate.dense", "output.dense")]
    if bert and heads:
        return "bert_layout", [Block(m, heads, [ref(_get(m, f"attention.self.{k}")) for k in ("query", "key", "value")],
                              ref(_get(m, "attention.output.dense")),
                              [ref(_get(m, "intermediate.dense")), ref(_get(m, "output.dense"))],
                              mix=_get(m, "attention.output.dense"), ffn_pre=_get(m, "intermediate.dense"),
                              ffn_down=_get(m, "output.dense")) for m in bert]
    gpt2 = [m for m in mods if _has(m, "attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")]
    if gpt2 and heads:
        blocks = []
        for m in gpt2:
            c_attn = _get(m, "attn.c_attn")
            width = c_attn.weight.shape[1] // 3  # Conv1D weights are (in, out)
            qkv = [ref(c_attn, view=_conv_columns(i, width), suffix=f"[{k}]")
                   for i, k in enumerate(("query", "key", "value"))]
            ffn = [ref(_get(m, "mlp.c_fc"), view=_transposed), ref(_get(m, "mlp.c_proj"), view=_transposed)]
            blocks.append(Block(m, heads, qkv, ref(_get(m, "attn.c_proj"), view=_transposed), ffn,
                                mix=_get(m, "attn.c_proj"), ffn_pre=_get(m, "mlp.c_fc"),
                                ffn_down=_get(m, "mlp.c_proj")))
        return "gpt2_layout", blocks
    llama = [m for m in mods if _has(m, "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                     "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")]
    if llama and heads:
        return "llama_layout", [Block(m, heads, [ref(_get(m, f"self_attn.{k}_proj")) for k in "qkv"],
                               ref(_get(m, "self_attn.o_proj")),
                               [ref(_get(m, f"mlp.{k}_proj")) for k in ("gate", "up", "down")],
                               mix=_get(m, "self_attn.o_proj"), ffn_pre=_get(m, "mlp.gate_proj"),
                               ffn_down=_get(m, "mlp.down_proj")) for m in llama]
    return "", []


def torch_blocks(model: torch.nn.Module) -> List[Block]:
    """Blocks of every ``nn.TransformerEncoderLayer`` of a torch model, in module order."""
    names = {id(p): n for n, p in model.named_parameters()}
    blocks = []
    for m in model.modules():
        if not isinstance(m, torch.nn.TransformerEncoderLayer):
            continue
        mha = m.self_attn
        E = mha.embed_dim
        if mha._qkv_same_embed_dim:
            p = mha.in_proj_weight
            qkv = [WeightRef(f"{names[id(p)]}[{k}]", p, _rows(i, E)) for i, k in enumerate(("query", "key", "value"))]
        else:
            qkv = [WeightRef(names[id(getattr(mha, f"{k}_proj_weight"))], getattr(mha, f"{k}_proj_weight"))
                   for k in "qkv"]
        out = WeightRef(names[id(mha.out_proj.weight)], mha.out_proj.weight)
        ffn = [WeightRef(names[id(lin.weight)], lin.weight) for lin in (m.linear1, m.linear2)]
        blocks.append(Block(m, mha.num_heads, qkv, out, ffn, mix=mha, ffn_pre=m.linear1, ffn_down=m.linear2,
                            attention=mha, batch_first=bool(mha.batch_first)))
    return blocks


@contextlib.contextmanager
def eager_attention(model: torch.nn.Module) -> Iterator[None]:
    """A Hugging Face model's attention switched to the eager implementation (which returns the
    probabilities) for the block; every config's own setting put back after, as it was."""
    configs: List[Any] = []

    def collect(c):
        if c is None or any(c is x for x in configs) or not hasattr(c, "_attn_implementation"):
            return
        configs.append(c)
        for key in getattr(c, "sub_configs", None) or {}:
            collect(getattr(c, key, None))

    for m in model.modules():
        collect(getattr(m, "config", None))
    keys = ("_attn_implementation_internal", "_attn_implementation")
    saved = [(c, {k: c.__dict__[k] for k in keys if k in c.__dict__}) for c in configs]
    try:
        for c in configs:
            c._attn_implementation = "eager"
        yield
    finally:
        for c, old in saved:
            for k in keys:
                if k in old:
                    c.__dict__[k] = old[k]
                else:
                    c.__dict__.pop(k, None)


def _first(x) -> torch.Tensor:
    """The tensor of a module's output (tuples: their first element)."""
    while isinstance(x, (tuple, list)):
        x = x[0]
    return x


class AttentionStats:
    """Per-layer sums of Voita's confidence (largest weight of each real query over visible keys)."""

    def __init__(self):
        self.sums: Dict[int, torch.Tensor] = {}
        self.counts: Dict[int, torch.Tensor] = {}

    @torch.no_grad()
    def add(self, layer: int, probs: torch.Tensor, real: torch.Tensor) -> None:
        probs = probs.detach().float()  # (B, heads, Tq, Tk)
        seen = (probs > 0).sum(-1)  # keys each query may see (masked keys get exactly 0)
        query = real[:, None, :] & (seen >= 2)
        top = probs.amax(-1) * query
        self.sums[layer] = self.sums.get(layer, 0) + top.sum((0, 2)).double()
        self.counts[layer] = self.counts.get(layer, 0) + query.sum((0, 2)).double()

    def confidence(self) -> Dict[int, torch.Tensor]:
        return {l: (self.sums[l] / self.counts[l]).cpu() for l in sorted(self.sums)}


class TransformerContext(ModelContext):
    """A user's transformer LM: see the module docstring for what it offers and how."""

    def __init__(self, model: torch.nn.Module, batch: ModelBatch, *, seed: int = 0, device=None,
                 blocks: List[Block], layout: str, huggingface: bool):
        super().__init__(model, batch, seed=seed, device=device)
        self.blocks, self.layout, self.huggingface = blocks, layout, huggingface
        config = getattr(model, "config", None) if huggingface else None
        self.causal = layout in ("gpt2_layout", "llama_layout") or not huggingface or bool(getattr(config, "is_decoder", False))
        if self.batch.padded and not huggingface:
            raise BadInputError("batch", "has padding (attention_mask zeros), which only a Hugging Face model is "
                                         f"given; {self.label} is called as model(input_ids): pass full rows")
        offers = {"parameters", "weights", "weight_gradients", "attention_confidence", "head_gates", "ffn_codes",
                  "layer_spectra"}
        if huggingface and not self._has_lm_loss():
            offers -= {"weight_gradients", "head_gates"}
        if "weight_gradients" in offers:
            offers.add("split_gradients")
        self.offers = frozenset(offers)
        params = inspect.signature(model.forward).parameters
        self._takes = set(params)
        self._embeds_by_hook = False  # Hugging Face: inputs_embeds (False) or a hook on the embedding (True)

    def _has_lm_loss(self) -> bool:
        """A Hugging Face model has an LM loss with an LM head, or without one when its input
        embedding table fits its hidden size (the tied decoder).  Otherwise the only label-free
        loss left, the sum of the last hidden state, is zero after the final LayerNorm, and no
        gradient capability is offered (e.g. ElectraModel, whose embeddings are narrower)."""
        get = getattr(self._model, "get_output_embeddings", None)
        if callable(get) and get() is not None:
            return True
        config = getattr(self._model, "config", None)
        hidden = _heads(config, "hidden_size", "n_embd", "d_model")
        return hidden is not None and hidden == self.embedding_module().embedding_dim

    # -- calling the model ----------------------------------------------------------------------
    def _call(self, ids: torch.Tensor, mask: torch.Tensor, embeds: Optional[torch.Tensor] = None,
              attentions: bool = False, hooks: Optional[Hooks] = None):
        """One call on rows ``ids``: Hugging Face models get the mask (and the embeddings when
        given); a torch model gets ``ids``, its embedding's output replaced by ``embeds``."""
        try:
            return self._call_model(ids, mask, embeds, attentions, hooks)
        except BadInputError:
            raise
        except Exception as e:  # the model's own forward refuses these inputs: said in one line
            text = str(e).strip().splitlines()
            raise BadInputError("model", f"{self.label}'s forward failed on the batch: {type(e).__name__}: "
                                         f"{text[0][:200] if text else ''}") from e

    def _call_model(self, ids, mask, embeds, attentions, hooks):
        if self.huggingface and not self._embeds_by_hook:
            kw: Dict[str, Any] = {"attention_mask": mask.long(), "return_dict": True}
            # a copy of the leaf embeddings: a model may add to them in place (GIT)
            kw["inputs_embeds" if embeds is not None else "input_ids"] = embeds.clone() if embeds is not None else ids
            if "use_cache" in self._takes:
                kw["use_cache"] = False
            if attentions:
                kw["output_attentions"] = True
            return self._model(**kw)
        if embeds is not None and not self._embeds_by_hook:
            hooks.forward(self.embedding_module(), lambda mod, args, out: embeds)
        elif embeds is not None:  # only the look-up of these ids (an encoder-decoder looks up others too);
            # a copy, which the model may scale in place (CTRL)
            hooks.forward(self.embedding_module(), lambda mod, args, out: embeds.clone() if (
                args and isinstance(args[0], torch.Tensor) and args[0].shape == ids.shape
                and bool(torch.equal(args[0], ids))) else out)
        if self.huggingface:
            return self._model(**self._keywords(ids, mask, attentions))
        return self._model(ids)

    def _keywords(self, ids: torch.Tensor, mask: torch.Tensor, attentions: bool) -> Dict[str, Any]:
        """A Hugging Face call by the names its forward takes: ids, the mask, no cache."""
        kw: Dict[str, Any] = {"input_ids": ids, "return_dict": True}
        if "attention_mask" in self._takes:
            kw["attention_mask"] = mask.long()
        if "use_cache" in self._takes:
            kw["use_cache"] = False
        if attentions:
            kw["output_attentions"] = True
        return kw

    def call_model(self, ids: torch.Tensor) -> Any:
        return self._call(ids, torch.ones_like(ids, dtype=torch.bool))

    def _leaf_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.embedding_module()(ids).detach().requires_grad_(True)

    @contextlib.contextmanager
    def _forward_pass(self, attentions: bool = False) -> Iterator[Hooks]:
        """Eval mode, hooks removed after; Hugging Face: no autograd (eager attention when asked);
        torch: autograd on (off the fused path), outputs detached by the recorders."""
        with eval_mode(self._model), no_new_hooks(self._model), Hooks() as hooks:
            if self.huggingface:
                with torch.no_grad(), (eager_attention(self._model) if attentions else contextlib.nullcontext()):
                    yield hooks
            else:
                with torch.enable_grad():
                    yield hooks

    def _rows_forward(self, ids, mask, hooks: Hooks, attentions: bool = False):
        embeds = None if self.huggingface else self._leaf_embeddings(ids)
        return self._call(ids, mask, embeds, attentions, hooks)

    def _layout(self, block: Block, x: torch.Tensor, real: Optional[torch.Tensor] = None) -> torch.Tensor:
        """A hooked tensor batch-first; given the pass's mask ``real`` (B, T): rows flattened into
        tokens (OPT's feed-forward) put back as (B, T', F), and a sequence the model padded inside
        its forward (Longformer, to its attention window) cut to the T tokens it was given."""
        x = _first(x).detach()
        x = x if block.batch_first else x.transpose(0, 1)
        if real is not None:
            rows, length = real.shape
            if x.dim() == 2 and x.shape[0] % rows == 0:
                x = x.reshape(rows, -1, x.shape[-1])
            inner = range(1, x.dim() - 1)
            if x.dim() >= 3 and x.shape[0] != rows:  # time-major (XLNet) or streams first (Gemma 3n)
                axis = next((a for a in inner if x.shape[a] == rows), None)
                if axis is None:
                    raise BadInputError("model", f"{self.label}: a layer's tensor of shape {tuple(x.shape)} has no "
                                                 f"axis of the batch's {rows} rows")
                x = x.movedim(axis, 0)
            if x.dim() >= 3 and x.shape[1] != length:  # streams before the tokens (ProphetNet's n-grams)
                axis = next((a for a in inner if x.shape[a] == length), None)
                if axis is None:
                    axis = next((a for a in inner if x.shape[a] > length), None)
                if axis is None:
                    raise BadInputError("model", f"{self.label}: a layer's tensor of shape {tuple(x.shape)} has no "
                                                 f"axis of the {length} tokens (the model pools the sequence)")
                x = x.movedim(axis, 1)
            if x.dim() > 3:  # several streams per token (hyper-connections, Gemma 3n): one vector per token
                x = x.reshape(rows, x.shape[1], -1)
            if x.dim() == 3 and x.shape[1] > length:  # padded inside the model (Longformer): the given tokens
                x = x[:, :length]
        return x

    # -- weights --------------------------------------------------------------------------------
    def weights(self, role: str) -> List[Tuple[str, torch.Tensor]]:
        """``attention_input``: query/key/value; ``attention``: those and the output projection;
        ``feed_forward``: up (gate and up) and down projections; (out, in) matrices."""
        refs = self._refs(role)
        return [(r.name, r.matrix()) for r in refs]

    def _refs(self, role: str) -> List[WeightRef]:
        if role == "attention_input":
            return [r for b in self.blocks for r in (*b.qkv, *b.mixer_in)]
        if role == "attention":
            return [r for b in self.blocks for r in (*b.qkv, *([b.out] if b.out is not None else []), *b.mixer_in,
                                                     *b.mixer_out)]
        if role == "feed_forward":
            return [r for b in self.blocks for r in b.ffn]
        raise ValueError(f"unknown weight role {role!r}; valid: attention_input, attention, feed_forward")

    def head_counts(self) -> List[int]:
        return [b.heads for b in self.blocks]

    # -- the gradient pass ----------------------------------------------------------------------
    def _corrupt(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Masked-LM input and the flat positions chosen (seeded, drawn on the CPU)."""
        ids, real = self.batch.input_ids, self.batch.mask
        positions, gen = masked_positions(real, self.seed)
        out = ids.reshape(-1).clone()
        if self.batch.mask_token_id is not None:
            out[positions] = int(self.batch.mask_token_id)
        else:
            out[positions] = torch.randint(self.batch.vocab_size, (len(positions),), generator=gen)
        return out.view_as(ids).to(self.device), positions.to(self.device)

    def _logits(self, output, ids: torch.Tensor) -> torch.Tensor:
        """The (B, T, vocab) logits of an output for rows ``ids``; a Hugging Face model without LM
        head decoded with its input embedding table (tied decoder)."""
        logits = logits_of(output)
        vocab = self.batch.vocab_size
        B, T = ids.shape
        if self.huggingface and (logits is None or tuple(logits.shape) != (B, T, vocab)):
            hidden = getattr(output, "last_hidden_state", None)
            table = self.embedding_module().weight
            if hidden is None:
                raise BadInputError("model", f"{self.label} returned neither logits nor a last hidden state")
            logits = hidden @ table.t()  # the tied decoder of a model without LM head
        return check_logits(logits, ids, vocab, self.label)

    def _lm_loss(self, output, ids_in: torch.Tensor, positions: Optional[torch.Tensor],
                 rows: slice = slice(None), share: Optional[int] = None) -> torch.Tensor:
        """The LM loss of the rows ``rows`` (all by default); ``share``: a row chunk's loss is its
        sum over its tokens divided by this count of the whole batch's (so the chunks add up)."""
        vocab = self.batch.vocab_size
        targets, mask = self.input_ids[rows], self.mask[rows]
        logits = self._logits(output, targets)
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()  # the loss of a low-precision model in float32
        if positions is None:
            return next_token_loss(logits, targets, mask, n_pairs=share)
        if share is None:
            return torch.nn.functional.cross_entropy(logits.reshape(-1, vocab)[positions],
                                                     targets.reshape(-1)[positions])
        return torch.nn.functional.cross_entropy(logits.reshape(-1, vocab)[positions], targets.reshape(-1)[positions],
                                                 reduction="sum") / share

    def split_gradients(self, n_splits: int = 2) -> List[Dict[str, torch.Tensor]]:
        """One forward + backward of the LM loss of :meth:`gradients` per contiguous part of the
        batch's rows (masked LM: the same seeded positions, those in the part's rows), for every
        weight :meth:`weights` lists; ``{name: dL_k/dW}`` per part."""
        key = ("split_gradients", int(n_splits))
        if key in self.cache:
            return self.cache[key]
        rows, T = self.input_ids.shape
        if not 2 <= n_splits <= rows:
            raise ValueError(f"n_splits must be in 2..{rows} (the batch's rows), got {n_splits}")
        ids, positions = self.input_ids, None
        if not self.causal:
            ids, positions = self._corrupt()
        refs = self._refs("attention") + self._refs("feed_forward")
        params = list({id(r.param): r.param for r in refs}.values())
        vocab = self.batch.vocab_size
        out = []
        for part in torch.tensor_split(torch.arange(rows, device=self.device), int(n_splits)):
            first, last = int(part[0]), int(part[-1]) + 1
            with eval_mode(self._model), no_new_hooks(self._model), Hooks() as hooks, torch.enable_grad():
                embeds = self._leaf_embeddings(ids[first:last])
                logits = self._logits(self._call(ids[first:last], self.mask[first:last], embeds, hooks=hooks),
                                      self.input_ids[first:last])
                if positions is None:
                    loss = next_token_loss(logits, self.input_ids[first:last], self.mask[first:last])
                else:
                    mine = positions[(positions >= first * T) & (positions < last * T)] - first * T
                    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab)[mine],
                                                             self.input_ids[first:last].reshape(-1)[mine])
                grads = torch.autograd.grad(loss, params, allow_unused=True)
            full = {id(p): (torch.zeros_like(p) if g is None else g.detach()) for p, g in zip(params, grads)}
            out.append({r.name: r.matrix(full[id(r.param)]) for r in refs})
        self.cache[key] = out
        return out

    def gradients(self) -> WeightGradients:
        """The one forward + backward of the model's LM loss (see the module docstring); in row
        chunks adding up to it when the whole batch would exceed ``max_memory`` (:mod:`.microbatches`)."""
        if "gradients" in self.cache:
            return self.cache["gradients"]
        positions = None
        ids = self.input_ids
        if not self.causal:
            ids, positions = self._corrupt()
        refs = self._refs("attention") + self._refs("feed_forward")
        params = list({id(r.param): r.param for r in refs}.values())
        rows = self.gradient_chunk_rows(params)
        if rows < ids.shape[0]:  # a large model: row chunks within max_memory (models/microbatches.py)
            value, grads, input_grad = self._chunked_gradients(ids, positions, params, rows)
        else:  # the whole batch at once
            with eval_mode(self._model), no_new_hooks(self._model), Hooks() as hooks, torch.enable_grad():
                embeds = self._leaf_embeddings(ids)
                out = self._call(ids, self.mask, embeds, hooks=hooks)
                loss = self._lm_loss(out, ids, positions)
                grads = torch.autograd.grad(loss, [embeds] + params, allow_unused=True)
            value = float(loss.detach())
            input_grad = torch.zeros_like(embeds) if grads[0] is None else grads[0].detach()
            grads = grads[1:]
        as_float = full_precision  # bfloat16 gradients in float32; float32 as it is
        full = {id(p): as_float(torch.zeros_like(p) if g is None else g.detach()) for p, g in zip(params, grads)}
        input_grad = as_float(input_grad)
        result = WeightGradients(value, {r.name: r.matrix(full[id(r.param)]) for r in refs},
                                 input_grad * self.mask[..., None])
        self.cache["gradients"] = result
        return result

    def gradient_chunk_rows(self, params: List[torch.nn.Parameter]) -> int:
        """Rows per chunk of the gradient pass within ``max_memory`` (all rows when they fit)."""
        blocks = [_block_sizes(b) for b in self.blocks]
        B, T = self.input_ids.shape
        per_token = microbatches.activation_bytes_per_token(blocks, self.batch.vocab_size, T, self.element_size())
        return microbatches.chunk_rows(B, row_bytes=T * per_token, fixed_bytes=self.weight_and_gradient_bytes(params),
                                       max_memory=self.memory_bound())

    def _chunked_gradients(self, ids: torch.Tensor, positions: Optional[torch.Tensor], params, rows: int):
        """:meth:`gradients` over row chunks of ``rows`` rows, each chunk's loss its share of the
        whole batch's: the summed gradients equal the whole batch's up to rounding."""
        B, T = ids.shape
        if positions is None:
            share = max(1, int((self.mask[:, :-1] & self.mask[:, 1:]).sum()))
        else:
            share = max(1, len(positions))

        def chunk(part: slice):
            with Hooks() as hooks:
                embeds = self._leaf_embeddings(ids[part])
                out = self._call(ids[part], self.mask[part], embeds, hooks=hooks)
                inside = None
                if positions is not None:
                    inside = positions[(positions >= part.start * T) & (positions < part.stop * T)] - part.start * T
                return self._lm_loss(out, ids[part], inside, rows=part, share=share), embeds

        parts = microbatches.row_slices(B, rows)
        with eval_mode(self._model), no_new_hooks(self._model):
            value, grads, leaf = microbatches.accumulate_gradients(
                (functools.partial(chunk, p) for p in parts), params, progress=self.progress_of("gradient", len(parts)))
        return value, grads, torch.cat(leaf, 0)

    def head_gate_gradients(self) -> Dict[int, torch.Tensor]:
        """layer -> (heads,) dL/d(gate) at gates = 1, as ``sum(W_o * dL/dW_o)`` over each head's
        input columns of the attention output projection (exact: the projection is linear)."""
        passed = self.gradients()
        out = {}
        for i, b in enumerate(self.blocks):
            if b.out is None or not b.heads:
                continue
            w = b.out.matrix().detach()
            prod = (w * passed.weight_grads[b.out.name]).double().sum(0)  # per input column
            if b.head_columns is None:
                out[i] = prod.view(b.heads, -1).sum(1).cpu()
            else:
                out[i] = torch.stack([prod[list(cols)].sum() for cols in b.head_columns]).cpu()
        return out

    # -- the forward statistics -----------------------------------------------------------------
    def forward_stats(self) -> Dict[str, Any]:
        """One forward of the whole (clean) batch: attention confidence and activation codes."""
        if "stats" in self.cache:
            return self.cache["stats"]
        stats = AttentionStats()
        real = self.mask
        coded = real[:CODE_ROWS]
        codes: Dict[Tuple[int, int], torch.Tensor] = {}
        row_of = torch.arange(coded.shape[0], device=self.device)[:, None].expand_as(coded)[coded]
        asks = "attention_confidence" in self.offers
        attending = [i for i, b in enumerate(self.blocks) if b.heads and asks]
        coding = [i for i, b in enumerate(self.blocks) if b.ffn_pre is not None and "ffn_codes" in self.offers]
        with self._forward_pass(attentions=asks) as hooks:
            for i in coding:
                b = self.blocks[i]
                hooks.forward(b.ffn_pre, lambda mod, args, out, i=i, b=b: codes.__setitem__(
                    (i, 0), self._layout(b, out, real)[:CODE_ROWS][coded] > 0))
            for i in attending:
                b = self.blocks[i]
                if b.attention is not None:
                    hooks.pre(b.attention, _ask_weights, with_kwargs=True)
                    hooks.forward(b.attention, lambda mod, args, out, i=i: stats.add(i, out[1], real))
            out = self._rows_forward(self.input_ids, self.mask, hooks, attentions=asks)
            unread = None  # why the probabilities returned cannot be read (the codes still can)
            if self.huggingface and attending:
                probs = _attention_probabilities(out)
                if not probs or len(probs) != len(attending):
                    unread = (f"{self.label} returned {len(probs)} attention probability tensors for "
                              f"output_attentions=True under the eager implementation, for {len(attending)} "
                              "attention layers")
                for p in probs if unread is None else ():
                    if p.dim() != 4 or p.shape[0] != real.shape[0] or p.shape[-1] != real.shape[1]:
                        unread = (f"{self.label} returned attention probabilities of shape {tuple(p.shape)}, not "
                                  "(batch, heads, tokens, tokens): a local or approximate attention's are not read")
                for i, p in zip(attending, probs) if unread is None else ():
                    stats.add(i, p, real)
                if unread is not None:
                    attending = []
        if len(stats.sums) != len(attending) or len(codes) != len(coding):
            raise BadInputError("model", f"{self.label}: the forward skipped some transformer layers' submodules "
                                         "(a fused path?), so their statistics cannot be read")
        result = {"attention": stats.confidence(), "codes": codes, "row_of": row_of, "unread": unread}
        self.cache["stats"] = result
        return result

    def attention_confidence(self) -> Dict[int, torch.Tensor]:
        stats = self.forward_stats()
        if stats["unread"]:
            raise BadInputError("model", stats["unread"])
        return stats["attention"]

    def softmax_confidence(self) -> Dict[Any, torch.Tensor]:
        """The attention heads (the only softmax these token mixers use)."""
        return {("attention", k): v for k, v in self.attention_confidence().items()}

    def ffn_codes(self) -> FeedForwardCodes:
        stats = self.forward_stats()
        return FeedForwardCodes(stats["codes"], stats["row_of"], CODE_ROWS)

    # -- the layer spectra ----------------------------------------------------------------------
    def spectra(self, tokens: int = SPECTRA_TOKENS) -> LayerSpectra:
        """Token-covariance eigenvalues after every sub-layer, over the first ``tokens`` real
        tokens (the first rows holding them), one forward; cached."""
        key = ("spectra", int(tokens))
        if key in self.cache:
            return self.cache[key]
        rows = rows_holding(self.mask.sum(1), tokens)
        real = self.mask[:rows]
        seen: Dict[Tuple[str, int], torch.Tensor] = {}

        def keep(kind, i, b, x):
            seen[(kind, i)] = self._layout(b, x, real)[real][:tokens]

        parts = {"mix": [i for i, b in enumerate(self.blocks) if b.mix is not None],
                 "ffn": [i for i, b in enumerate(self.blocks) if b.ffn_down is not None],
                 "out": list(range(len(self.blocks)))}
        with self._forward_pass() as hooks:
            for i, b in enumerate(self.blocks):
                if b.mix is not None:
                    hooks.forward(b.mix, lambda mod, args, out, i=i, b=b: keep("mix", i, b, out))
                if b.ffn_down is not None:
                    hooks.pre(b.ffn_down, lambda mod, args, i=i, b=b: keep("ffn", i, b, args[0]))
                hooks.forward(b.layer, lambda mod, args, out, i=i, b=b: keep("out", i, b, out))
            self._rows_forward(self.input_ids[:rows], real, hooks)
        out: Dict[str, List[Tuple[int, int, torch.Tensor]]] = {"mix": [], "ffn": [], "out": []}
        for kind in out:
            for i in parts[kind]:
                if (kind, i) not in seen:
                    raise BadInputError("model", f"{self.label}: layer {i}'s {kind} output was not seen in the forward")
                out[kind].append((i, 0, covariance_eigenvalues(seen[(kind, i)])))
        self.cache[key] = LayerSpectra(**out)
        return self.cache[key]


def _attention_probabilities(output) -> List[torch.Tensor]:
    """The attention probabilities of a Hugging Face output: ``attentions``, else an
    encoder-decoder's encoder then decoder self-attentions (cross-attentions are not heads of the
    blocks' own mixers)."""
    probs = getattr(output, "attentions", None)
    if not probs:
        probs = [*(getattr(output, "encoder_attentions", None) or ()),
                 *(getattr(output, "decoder_attentions", None) or ())]
    return [p for p in probs if isinstance(p, torch.Tensor)]


def _ask_weights(module, args, kwargs):
    """Pre-hook: a ``nn.MultiheadAttention`` call returns its per-head probabilities."""
    kwargs = dict(kwargs)
    kwargs["need_weights"] = True
    kwargs["average_attn_weights"] = False
    return args, kwargs


def is_huggingface(model: torch.nn.Module) -> bool:
    return type(model).__module__.startswith("transformers.")


@register_model_adapter("torch-transformer",
                        lambda m: any(isinstance(x, torch.nn.TransformerEncoderLayer) for x in m.modules()))
def torch_transformer_context(model, batch, *, seed: int = 0, device=None) -> TransformerContext:
    return TransformerContext(model, batch, seed=seed, device=device, blocks=torch_blocks(model), layout="torch",
                              huggingface=False)


def _covers_its_stacks(model: torch.nn.Module, blocks: List[Block]) -> bool:
    """Whether a layout's blocks are every element of the module lists they are in: a model
    whose other layers differ (a mixture of experts after a dense first layer) is read by its
    structure instead, not by the layout's few layers."""
    found = {id(b.layer) for b in blocks}
    return all(all(id(x) in found for x in m) for m in model.modules()
               if isinstance(m, torch.nn.ModuleList) and any(id(x) in found for x in m))


@register_model_adapter("huggingface", lambda m: is_huggingface(m) and bool(hf_blocks(m)[1])
                        and _covers_its_stacks(m, hf_blocks(m)[1]))
def huggingface_context(model, batch, *, seed: int = 0, device=None) -> TransformerContext:
    layout, blocks = hf_blocks(model)
    return TransformerContext(model, batch, seed=seed, device=device, blocks=blocks, layout=layout, huggingface=True)


# -- any other language model: read by structure ---------------------------------------------------
def _part_rows(view: Callable[[torch.Tensor], torch.Tensor], rows: Tuple[int, ...]) -> Callable:
    """The (out, in) view of a fused projection cut to one part's output rows."""
    first = rows[0]
    if list(rows) == list(range(first, first + len(rows))):
        return lambda t: view(t)[first:first + len(rows)]
    index = torch.tensor(rows)
    return lambda t: view(t).index_select(0, index.to(t.device))


def structure_blocks(model: torch.nn.Module, structure) -> List[Block]:
    """The blocks of a :class:`~.structure.ModelStructure`: per repeated layer, its first softmax
    self-attention's query/key/value and output projections (fused ones cut into their parts'
    rows), heads and head columns; its feed-forwards' gate, up and down projections and its
    experts' weights; the modules the passes hook (the mixer's output, the feed-forward's
    pre-activation and down projection)."""
    params = dict(model.named_parameters())
    modules = dict(model.named_modules())
    roles_of: Dict[str, List[str]] = {}

    def refs(path: str, role: Optional[str] = None) -> List[WeightRef]:
        proj = structure.projections.get(path)
        if proj is None:
            p = params.get(path)
            return [WeightRef(path, p)] if p is not None and p.dim() == 2 else []
        p = params[proj.weight]
        view = _transposed if proj.transposed else (lambda t: t)
        rows = proj.parts.get(role) if role else None
        if rows and len(roles_of.get(path, ())) > 1:
            return [WeightRef(f"{proj.weight}[{role}]", p, _part_rows(view, tuple(rows)))]
        return [WeightRef(proj.weight, p, view)]

    blocks = []
    for b in structure.blocks:
        attention = next((a for m in b.mixers if m.kind == "attention" for a in m.attention if not a.cross), None)
        qkv: List[WeightRef] = []
        out = None
        heads, columns = 0, None
        mix = None
        if attention is not None:
            roles_of.clear()
            for role in ("query", "key", "value"):
                for path in getattr(attention, role):
                    roles_of.setdefault(path, []).append(role)
            seen = set()
            for role in ("query", "key", "value"):
                for path in getattr(attention, role):
                    for r in refs(path, role):
                        if r.name not in seen:
                            seen.add(r.name)
                            qkv.append(r)
            outs = refs(attention.output) if attention.output else []
            out = outs[0] if outs else None
            heads = int(attention.heads or 0)
            columns = attention.head_columns
            if columns is not None and out is not None:
                width = out.matrix().shape[1]
                if heads and width % heads == 0 and [list(c) for c in columns] == \
                        [list(range(h * (width // heads), (h + 1) * (width // heads))) for h in range(heads)]:
                    columns = None  # equal consecutive slices: the plain view
            elif out is not None:
                out = None  # no measured head layout: no head gates
            mix = modules.get(attention.output) if attention.output else None
        if mix is None and b.mixers:
            mix = modules.get(b.mixers[0].module)
        ffn: List[WeightRef] = []
        pre = down = None
        for f in b.feed_forwards:
            roles_of.clear()
            for path in (*f.gate, *f.up, f.down):
                ffn.extend(refs(path))
            if down is None:
                pre = modules.get((f.gate or f.up or (None,))[0]) if (f.gate or f.up) else None
                down = modules.get(f.down)
        if b.experts is not None:
            ffn.extend(WeightRef(n, params[n]) for n in b.experts.parameters if n in params and params[n].dim() >= 2)
        if pre is None or down is None:
            pre = down = None
        mixer_in: List[WeightRef] = []
        mixer_out: List[WeightRef] = []
        scan_state = 0
        for m in b.mixers:  # token mixers other than softmax attention: their input and output weights
            if m.kind == "attention" and m.attention:
                continue
            if m.kind in ("state_space", "recurrent"):
                scan_state = max([scan_state] + [params[n].numel() for n, role in structure.roles.items()
                                                 if role == "mixer_parameter" and n.startswith(m.module + ".")
                                                 and n in params and params[n].dim() == 2])
            for name, role in structure.roles.items():
                if role in ("mixer_input", "mixer_output") and name.startswith(m.module + ".") \
                        and params[name].dim() == 2:
                    path = name.rsplit(".", 1)[0]
                    found = refs(path) if path in structure.projections else [WeightRef(name, params[name])]
                    (mixer_in if role == "mixer_input" else mixer_out).extend(
                        r for r in found if r.name == name or r.param is params[name])
        layer = modules.get(b.module)
        if layer is None:
            continue
        blocks.append(Block(layer, heads if attention is not None else 0, qkv, out, ffn, mix=mix, ffn_pre=pre,
                            ffn_down=down, head_columns=columns, mixer_in=mixer_in, mixer_out=mixer_out,
                            scan_state=scan_state))
    return blocks


class StructureContext(TransformerContext):
    """A language model read by :func:`~.structure.read_structure`: what it offers follows from
    the parts found (see docs/your-own-model.md)."""

    def __init__(self, model: torch.nn.Module, batch: ModelBatch, *, seed: int = 0, device=None, structure):
        huggingface = is_huggingface(model)
        super().__init__(model, batch, seed=seed, device=device, blocks=structure_blocks(model, structure),
                         layout="structure", huggingface=huggingface)
        self.structure = structure
        self._embeds_by_hook = True
        if structure.causal is not None:
            self.causal = bool(structure.causal)
        if self.batch.padded and huggingface and "attention_mask" not in self._takes:
            raise BadInputError("batch", f"has padding (attention_mask zeros), which {self.label} takes no "
                                         "attention_mask to skip: pass full rows")
        self.offers = frozenset(self._structure_offers())

    def _structure_offers(self) -> set:
        s, blocks = self.structure, self.blocks
        offers = {"parameters"}
        if any(b.experts is not None and b.experts.top_k for b in s.blocks):
            offers.add("active_parameters")
        if not s.maps_to_logits:
            return offers
        if not any("without autograd" in m for m in s.missing):  # reversible layers (Reformer) differentiate
            offers |= {"weight_gradients", "split_gradients"}  # only in training mode: no gradient pass
        if any(b.qkv or b.ffn or b.mixer_in or b.mixer_out for b in blocks):
            offers.add("weights")
        if blocks:
            offers.add("layer_spectra")
        if any(b.ffn_pre is not None for b in blocks):
            offers.add("ffn_codes")
        attending = [b for b in blocks if b.heads]
        if attending and self.huggingface:
            offers.add("attention_confidence")
        if attending and all(b.out is not None for b in attending) and {"weights", "weight_gradients"} <= offers:
            offers.add("head_gates")
        return offers

    def nonembedding_param_count(self) -> int:
        """Every parameter less those the structure reads as embedding tables or the output layer
        onto the vocabulary."""
        return int(self.structure.nonembedding_params)

    def active_param_count(self) -> int:
        """Parameters a token uses: a routed mixture of experts counts ``k`` of its ``E`` experts."""
        return int(self.structure.active_params)


class ParametersContext(ModelContext):
    """A model whose forward the structure reader could not follow: its parameter counts only,
    by the roles it names (embedding tables, the output layer)."""

    def __init__(self, model: torch.nn.Module, batch: ModelBatch, *, seed: int = 0, device=None, structure):
        super().__init__(model, batch, seed=seed, device=device)
        self.structure = structure
        if any(b.experts is not None and b.experts.top_k for b in structure.blocks):
            self.offers = frozenset({"parameters", "active_parameters"})

    def nonembedding_param_count(self) -> int:
        return int(self.structure.nonembedding_params)

    def active_param_count(self) -> int:
        return int(self.structure.active_params)


def structure_context(model: torch.nn.Module, batch, *, seed: int = 0, device=None) -> ModelContext:
    """The context of a model no adapter reads, from its structure: a model mapping ids to
    vocabulary logits offers what its parts support; one whose forward cannot be followed its
    parameters; one without a vocabulary is refused with what is missing."""
    from .structure import read_structure

    structure = read_structure(model)
    name = type(model).__name__
    if not structure.vocab:
        raise BadInputError("model", f"{name} is not a language model nni-zerocost can read: "
                                     f"{'; '.join(structure.missing)}")
    if not structure.maps_to_logits and not structure.blocks and any(m.startswith("forward:")
                                                                     for m in structure.missing):
        return ParametersContext(model, batch, seed=seed, device=device, structure=structure)
    return StructureContext(model, batch, seed=seed, device=device, structure=structure)
