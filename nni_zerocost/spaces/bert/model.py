"""PyTorch encoder of the BERT benchmark (ELECTRA-small discriminator body), for scoring.

Facts taken from the benchmark's code (training-free-nas, ``tensorflow-model/model/modeling.py``,
``util/training_utils.py``; proxy model ``modeling_electra.py``):

* Embeddings as ELECTRA-small: word (30,522 x 128, row 0 = [PAD] zero), learned positions
  (512 x 128), token type (2 x 128), LayerNorm(eps 1e-12); a linear projection 128 -> hidden
  when hidden != 128.  Every weight N(0, 0.02), biases 0, LayerNorm 1/0.
* A layer is ``x = LN(x + Dense(mix(x)))`` then ``x = LN(x + Dense_out(FFN(x)))`` (GELU).
* ``as_trained=False`` (default) builds the architecture as *declared*, every field honoured:
  SA/SDP multi-head attention; SA/WMA the same with a learned H x H matrix applied to the
  queries; LT/DFT and LT/DCT an input projection split into heads followed by the real 2-D DFT
  (FNet) or the 2-D DCT-II over (positions, head features), unnormalised as in FNet and the
  authors' code; DSC ConvBERT mixed attention with head ratio 2 (``max(1, heads // 2)``
  attention heads plus as many span-based dynamic-convolution heads of size hidden/heads, kernel
  5 or 9); the feed-forward stack is ``num_feed_forward`` GELU layers of width
  ``feed_forward_dimension``.
* ``as_trained=True`` reproduces what the benchmark actually trained: its TensorFlow code picked
  the operation with ``is``-comparisons of strings, always false, so every layer is SDP
  self-attention with the declared head count; and its feed-forward stack started with the
  default ``intermediate_size = 4 * hidden`` layer, ``feed_forward_dimension`` only setting the
  width of the ``num_feed_forward - 1`` extra layers (``hidden -> 4h [-> ffd -> ffd] -> hidden``).

The model is always in inference form: there is no dropout anywhere (eval mode).  The attention
mask is honoured, so the output at a real token never depends on padding (nor on how much of it
there is): token-wise layers run on the packed real tokens only, attention gives padded keys zero
weight, LT transforms run over each row's own length, and DSC spans see zeros beyond a row's
ends.  Mixers run per length bucket, so padding costs no compute either.  Instrumentation is
explicit (an optional ``recorder`` argument): no hook is ever registered.
"""
from __future__ import annotations

import functools
import hashlib
import math
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .config import BertConfig, LayerConfig

VOCAB_SIZE = 30_522
EMBEDDING_SIZE = 128
MAX_POSITIONS = 512
TYPE_VOCAB_SIZE = 2
INIT_STD = 0.02
LN_EPS = 1e-12
PAD_ID = 0
CONV_HEAD_RATIO = 2


# -- layout: packed tokens and length buckets -------------------------------------------------
class Group:
    """Rows of similar length laid out as a padded (rows, T_g) block for the token mixers.

    A row's real tokens sit at local positions 0..L-1 in order (so left padding or holes in the
    mask are compacted away); ``tokens`` are their packed indices, ``slots`` their flat positions
    in the block.
    """

    def __init__(self, tokens: torch.Tensor, slots: torch.Tensor, lengths: torch.Tensor):
        self.tokens, self.slots, self.lengths = tokens, slots, lengths
        self.rows, self.length = int(lengths.numel()), int(lengths.max())
        self.valid = torch.arange(self.length, device=lengths.device)[None, :] < lengths[:, None]  # (rows, T_g)
        self._cache: Dict[str, torch.Tensor] = {}

    def to(self, device: torch.device) -> "Group":
        """The same layout with its index tensors on ``device`` (built on the CPU, then moved)."""
        g = Group(self.tokens.to(device), self.slots.to(device), self.lengths.to(device))
        return g

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """Packed (N, D) -> (rows, T_g, D), zeros at padding (differentiable)."""
        out = x.new_zeros(self.rows * self.length, x.shape[-1])
        return out.index_copy(0, self.slots, x.index_select(0, self.tokens)).view(self.rows, self.length, -1)

    def pack(self, y: torch.Tensor) -> torch.Tensor:
        """(rows, T_g, D) -> (n_g, D) in the order of ``tokens``."""
        return y.reshape(self.rows * self.length, -1).index_select(0, self.slots)

    def per_row(self, name: str, build) -> torch.Tensor:
        """(rows, T_g, T_g) stack of per-length matrices ``build(L)`` (zero outside L x L), cached."""
        if name not in self._cache:
            out = torch.zeros(self.rows, self.length, self.length)  # built on the CPU, then moved
            for r, n in enumerate(self.lengths.tolist()):
                out[r, :n, :n] = build(n)
            self._cache[name] = out.to(self.valid.device)
        return self._cache[name]


class Packing:
    """Bookkeeping between the padded (B, T) batch and the packed real tokens (N,).

    Token-wise layers run on the N packed tokens only.  Token mixers run per length bucket
    (rows whose length rounds up to the same power of two, at least 16), each bucket padded only
    to its own longest row: attention over padding costs nothing and the result is the same as
    with one padded block, since no mixer lets padding influence a real token.
    """

    def __init__(self, valid: torch.Tensor, min_bucket: int = 16):
        device = valid.device  # the bookkeeping is computed on the CPU and moved once
        valid = valid.cpu()
        self.valid = valid  # (B, T) bool
        self.batch, self.length = valid.shape
        self.index = valid.reshape(-1).nonzero().squeeze(1)  # (N,) flat positions of real tokens
        self.row = self.index // self.length  # (N,) row of each token
        self.position = self.index % self.length  # (N,) original position (for position embeddings)
        self.n = int(self.index.numel())
        lengths = valid.sum(1)
        rank = torch.arange(self.n) - (torch.cumsum(lengths, 0) - lengths)[self.row]  # index within its row
        bucket = torch.ceil(torch.log2(lengths.clamp(min=min_bucket).double())).long()
        self.groups: List[Group] = []
        for value in torch.unique(bucket).tolist():
            rows = (bucket == value).nonzero().squeeze(1)
            slot = torch.full((self.batch,), -1, dtype=torch.long)
            slot[rows] = torch.arange(len(rows))
            tokens = (slot[self.row] >= 0).nonzero().squeeze(1)
            width = int(lengths[rows].max())
            self.groups.append(Group(tokens, slot[self.row[tokens]] * width + rank[tokens], lengths[rows]))
        order = torch.cat([g.tokens for g in self.groups])
        self._inverse = torch.empty_like(order)
        self._inverse[order] = torch.arange(self.n)
        if device.type != "cpu":
            self.valid, self.index, self.row, self.position, self._inverse = (
                t.to(device) for t in (self.valid, self.index, self.row, self.position, self._inverse))
            self.groups = [g.to(device) for g in self.groups]

    def merge(self, parts: List[torch.Tensor]) -> torch.Tensor:
        """Per-group packed outputs (in group order) -> (N, D) in packed order."""
        return torch.cat(parts).index_select(0, self._inverse)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (B, T, D) with zeros at padded positions (differentiable)."""
        out = x.new_zeros(self.batch * self.length, x.shape[-1])
        return out.index_copy(0, self.index, x).view(self.batch, self.length, x.shape[-1])


@functools.lru_cache(maxsize=1024)
def dct_matrix(n: int) -> torch.Tensor:
    """Unnormalised DCT-II (scipy's default, ``norm=None``): ``2 cos(pi k (2m+1) / 2n)``."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    m = torch.arange(n, dtype=torch.float64)[None, :]
    return (2.0 * torch.cos(math.pi * k * (2 * m + 1) / (2 * n))).float()


@functools.lru_cache(maxsize=1024)
def dft_matrices(n: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the n-point DFT: ``Re(F X G) = C X C' - S X S'`` for real X."""
    k = torch.arange(n, dtype=torch.float64)
    angle = 2 * math.pi * torch.outer(k, k) / n
    return torch.cos(angle).float(), torch.sin(angle).float()


def _heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, T, n*d) -> (B, n, T, d)."""
    b, t, _ = x.shape
    return x.view(b, t, n_heads, -1).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, n, T, d) -> (B, T, n*d)."""
    b, n, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, n * d)


def _attend(q, k, v, n_heads, pk: Packing, recorder, layer):
    """Multi-head scaled dot-product attention on packed q, k, v (N, n*d) -> (N, n*d)."""
    parts = []
    for g in pk.groups:
        qh, kh, vh = (_heads(g.unpack(z), n_heads) for z in (q, k, v))
        scores = qh @ kh.transpose(-1, -2) / math.sqrt(qh.shape[-1])
        probs = torch.softmax(scores.masked_fill(~g.valid[:, None, None, :], float("-inf")), dim=-1)
        if recorder is not None:
            recorder.attention(layer, probs, g)
        parts.append(g.pack(_merge_heads(probs @ vh)))
    return pk.merge(parts)


# -- token mixers ---------------------------------------------------------------------------
class SelfAttention(nn.Module):
    """SA: SDP, or WMA (queries multiplied by a learned matrix before the dot product)."""

    def __init__(self, hidden: int, heads: int, weighted: bool):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(hidden, hidden, device="meta")
        self.key = nn.Linear(hidden, hidden, device="meta")
        self.value = nn.Linear(hidden, hidden, device="meta")
        self.weight = nn.Linear(hidden, hidden, bias=False, device="meta") if weighted else None

    def forward(self, x, pk, recorder=None, layer=0):
        q = self.query(x)
        if self.weight is not None:
            q = self.weight(q)
        k, v = self.key(x), self.value(x)
        if recorder is not None:
            for name, out in (("query", q), ("key", k), ("value", v)):
                recorder.projection(layer, name, out, pk)
        return _attend(q, k, v, self.heads, pk, recorder, layer)

    def head_count(self) -> int:
        return self.heads


class LinearTransform(nn.Module):
    """LT: input projection, split into heads, real 2-D DFT (FNet) or DCT-II per head, over the
    row's own length (padding excluded) and the head's features."""

    def __init__(self, hidden: int, heads: int, kind: str):
        super().__init__()
        self.heads, self.kind = heads, kind
        self.input = nn.Linear(hidden, hidden, device="meta")

    def forward(self, x, pk, recorder=None, layer=0):
        z = self.input(x)
        if recorder is not None:
            recorder.projection(layer, "input", z, pk)
        parts = []
        for g in pk.groups:
            zh = _heads(g.unpack(z), self.heads)  # (rows, n, T_g, d), zeros at padding
            d = zh.shape[-1]
            if self.kind == "DFT":  # real part of the 2-D DFT over (own length, head features)
                cos_t = g.per_row("dft_cos", lambda n: dft_matrices(n)[0])[:, None]
                sin_t = g.per_row("dft_sin", lambda n: dft_matrices(n)[1])[:, None]
                cos_d, sin_d = (m.to(zh.device) for m in dft_matrices(d))
                mixed = cos_t @ zh @ cos_d - sin_t @ zh @ sin_d
            else:  # 2-D DCT-II over (own length, head features)
                mixed = g.per_row("dct", dct_matrix)[:, None] @ zh @ dct_matrix(d).to(zh.device).T
            if recorder is not None:
                recorder.transform(layer, mixed, g)
            parts.append(g.pack(_merge_heads(mixed)))
        return pk.merge(parts)

    def head_count(self) -> int:
        return self.heads


class DynamicConvAttention(nn.Module):
    """DSC: ConvBERT mixed attention (head ratio 2): self-attention heads + span-based dynamic
    convolution heads whose kernels are generated from the token and its local span."""

    def __init__(self, hidden: int, heads: int, kernel: int):
        super().__init__()
        self.n = max(1, heads // CONV_HEAD_RATIO)
        self.head_size = hidden // heads
        width = self.n * self.head_size
        self.kernel = kernel
        self.query = nn.Linear(hidden, width, device="meta")
        self.key = nn.Linear(hidden, width, device="meta")
        self.value = nn.Linear(hidden, width, device="meta")
        # separable convolution of the span: depthwise (per channel) then pointwise
        self.depthwise = nn.Conv1d(hidden, hidden, kernel, groups=hidden, padding=kernel // 2, bias=False)
        self.pointwise = nn.Linear(hidden, width, device="meta")
        self.conv_kernel = nn.Linear(width, self.n * kernel, device="meta")
        self.conv_out = nn.Linear(hidden, width, device="meta")

    def forward(self, x, pk, recorder=None, layer=0):
        q, k, v = self.query(x), self.key(x), self.value(x)
        if recorder is not None:
            for name, out in (("query", q), ("key", k), ("value", v)):
                recorder.projection(layer, name, out, pk)
        attn = _attend(q, k, v, self.n, pk, recorder, layer)

        spans = [self.depthwise(g.unpack(x).transpose(1, 2)).transpose(1, 2) for g in pk.groups]
        key_conv = self.pointwise(pk.merge([g.pack(s) for g, s in zip(pk.groups, spans)]))  # (N, width)
        kernels = torch.softmax(self.conv_kernel(key_conv * q).view(-1, self.n, self.kernel), dim=-1)
        if recorder is not None:
            recorder.conv_kernel(layer, kernels)
        vals = self.conv_out(x)
        half = (self.kernel - 1) // 2
        parts = []
        for g in pk.groups:  # the span around each token, zeros beyond the row's ends
            win = F.pad(g.unpack(vals), (0, 0, half, half)).unfold(1, self.kernel, 1)  # (rows, T_g, width, k)
            parts.append(g.pack(win.reshape(g.rows, g.length, -1)))
        windows = pk.merge(parts).view(-1, self.n, self.head_size, self.kernel)
        conv = torch.einsum("nhdk,nhk->nhd", windows, kernels)
        n_tok = attn.shape[0]
        return torch.cat([attn.view(n_tok, self.n, -1), conv], dim=1).reshape(n_tok, -1)

    def head_count(self) -> int:
        return 2 * self.n


class FeedForward(nn.Module):
    """GELU stack ``widths[0] -> ... -> widths[-1]`` followed by the down projection."""

    def __init__(self, hidden: int, widths: List[int]):
        super().__init__()
        dims = [hidden] + widths
        self.dense = nn.ModuleList(nn.Linear(a, b, device="meta") for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(widths[-1], hidden, device="meta")

    def forward(self, x, recorder=None, layer=0):
        h = x
        for j, lin in enumerate(self.dense):
            pre = lin(h)
            if recorder is not None:
                recorder.ffn_activation(layer, j, pre)
            h = F.gelu(pre)
        return self.out(h)


class EncoderLayer(nn.Module):
    def __init__(self, hidden: int, spec: LayerConfig, as_trained: bool):
        super().__init__()
        heads = spec.num_operation_heads
        if as_trained or spec.operation_type == "SA":
            self.mix = SelfAttention(hidden, heads, weighted=(not as_trained and spec.operation_parameter == "WMA"))
        elif spec.operation_type == "LT":
            self.mix = LinearTransform(hidden, heads, spec.operation_parameter)
        else:
            self.mix = DynamicConvAttention(hidden, heads, spec.kernel_size)
        self.mix_out = nn.Linear(hidden, hidden, device="meta")
        self.mix_norm = nn.LayerNorm(hidden, eps=LN_EPS, device="meta")
        if as_trained:
            widths = [4 * hidden] + [spec.feed_forward_dimension] * (spec.num_feed_forward - 1)
        else:
            widths = [spec.feed_forward_dimension] * spec.num_feed_forward
        self.ffn = FeedForward(hidden, widths)
        self.ffn_norm = nn.LayerNorm(hidden, eps=LN_EPS, device="meta")

    def forward(self, x, pk, recorder=None, layer=0):
        x = self.mix_norm(x + self.mix_out(self.mix(x, pk, recorder, layer)))
        return self.ffn_norm(x + self.ffn(x, recorder, layer))


class DiscriminatorHead(nn.Module):
    """ELECTRA discriminator head: dense -> GELU -> one logit per token ("was it replaced?")."""

    def __init__(self, hidden: int):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden, device="meta")
        self.prediction = nn.Linear(hidden, 1, device="meta")

    def forward(self, h):
        return self.prediction(F.gelu(self.dense(h))).squeeze(-1)


class MaskedLMHead(nn.Module):
    """ELECTRA generator head: dense -> GELU -> LayerNorm -> decoder tied to the word embeddings."""

    def __init__(self, hidden: int):
        super().__init__()
        self.dense = nn.Linear(hidden, EMBEDDING_SIZE, device="meta")
        self.norm = nn.LayerNorm(EMBEDDING_SIZE, eps=LN_EPS, device="meta")
        self.bias = nn.Parameter(torch.empty(VOCAB_SIZE))

    def forward(self, h, word_embeddings: torch.Tensor):
        return self.norm(F.gelu(self.dense(h))) @ word_embeddings.T + self.bias


# -- the model ------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _normal_draw(seed: int, name: str, shape: Tuple[int, ...]) -> torch.Tensor:
    """N(0, 0.02) tensor from a generator seeded by (seed, parameter name, shape); cached for the
    embedding tables, which every architecture shares (read-only: callers copy it)."""
    digest = hashlib.sha256(f"{seed}|{name}|{shape}".encode()).digest()
    gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
    return torch.empty(shape).normal_(0.0, INIT_STD, generator=gen)


class BertModel(nn.Module):
    """Embeddings + encoder of one architecture; ``forward`` returns packed final states.

    ``seed`` fixes the initialisation.  Each parameter is drawn from its own generator seeded by
    (seed, parameter name), so two architectures that share a part (the embeddings, a first
    layer of the same shape) get the same weights there: common random numbers make proxy
    differences reflect the architecture rather than the draw.
    """

    def __init__(self, config: BertConfig, *, seed: int = 0, as_trained: bool = False, head: Optional[str] = None):
        super().__init__()
        self.config, self.seed, self.as_trained = config, int(seed), bool(as_trained)
        hidden = config.hidden_size
        # created without their default initialisation (meta embeddings would import sympy)
        self.word_embeddings = nn.Embedding(VOCAB_SIZE, EMBEDDING_SIZE, padding_idx=PAD_ID,
                                            _weight=torch.empty(VOCAB_SIZE, EMBEDDING_SIZE))
        self.position_embeddings = nn.Embedding(MAX_POSITIONS, EMBEDDING_SIZE, _weight=torch.empty(MAX_POSITIONS, EMBEDDING_SIZE))
        self.token_type_embeddings = nn.Embedding(TYPE_VOCAB_SIZE, EMBEDDING_SIZE,
                                                  _weight=torch.empty(TYPE_VOCAB_SIZE, EMBEDDING_SIZE))
        self.embedding_norm = nn.LayerNorm(EMBEDDING_SIZE, eps=LN_EPS, device="meta")
        self.embedding_project = nn.Linear(EMBEDDING_SIZE, hidden, device="meta") if hidden != EMBEDDING_SIZE else None
        self.layers = nn.ModuleList(EncoderLayer(hidden, spec, self.as_trained) for spec in config.layers)
        if head not in (None, "rtd", "mlm"):
            raise ValueError(f"head must be None, 'rtd' or 'mlm', got {head!r}")
        # pre-training heads exist only to give the gradient pass a loss; not counted as parameters
        self.rtd_head = DiscriminatorHead(hidden) if head == "rtd" else None
        self.mlm_head = MaskedLMHead(hidden) if head == "mlm" else None
        self._materialise()
        self._initialise()
        self.eval()

    def _materialise(self) -> None:
        """Give the meta-device parameters real storage; layers are created on the meta device so
        their default initialisation (overwritten anyway) costs nothing.  (``to_empty`` would do
        it too, but imports sympy on first use: seconds of start-up.)"""
        for module in self.modules():
            for key, p in module._parameters.items():
                if p is not None and p.is_meta:
                    module._parameters[key] = nn.Parameter(torch.empty(p.shape, dtype=p.dtype))

    @torch.no_grad()
    def _initialise(self) -> None:
        for name, p in self.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            owner = self.get_submodule(name.rsplit(".", 1)[0]) if "." in name else self
            if isinstance(owner, nn.LayerNorm):
                p.fill_(1.0 if leaf == "weight" else 0.0)
            elif leaf == "bias":
                p.zero_()
            elif isinstance(owner, nn.Embedding):  # the same for every architecture: drawn once
                p.copy_(_normal_draw(self.seed, name, tuple(p.shape)))
            else:
                p.copy_(_normal_draw.__wrapped__(self.seed, name, tuple(p.shape)))
        self.word_embeddings.weight[PAD_ID].zero_()

    def embed(self, input_ids, token_type_ids, pk: Packing):
        """Summed embeddings of the real tokens (N, 128), before the LayerNorm."""
        flat = pk.index
        return (self.word_embeddings(input_ids.reshape(-1)[flat])
                + self.position_embeddings(pk.position)
                + self.token_type_embeddings(token_type_ids.reshape(-1)[flat]))

    def encode(self, embedded, pk: Packing, recorder=None):
        """Packed embedding sums (N, 128) -> packed final hidden states (N, hidden)."""
        x = self.embedding_norm(embedded)
        if self.embedding_project is not None:
            x = self.embedding_project(x)
        for i, layer in enumerate(self.layers):
            x = layer(x, pk, recorder, i)
        return x

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, recorder=None):
        """Padded (B, T, hidden) final states (zeros at padding), for ordinary use."""
        valid = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
        types = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        pk = Packing(valid)
        return pk.unpack(self.encode(self.embed(input_ids, types, pk), pk, recorder))

    # -- which weights the proxies look at ----------------------------------------------------
    def mixing_weights(self) -> List[Tuple[int, str, torch.Tensor]]:
        """(layer, name, weight) of every token-mixing matrix: the operation's projections
        (query/key/value/WMA weight, LT input, DSC projections and convolutions) and the
        mixer's output dense."""
        out = []
        for i, layer in enumerate(self.layers):
            for name, p in layer.mix.named_parameters():
                if name.endswith("weight"):
                    out.append((i, name, p))
            out.append((i, "mix_out.weight", layer.mix_out.weight))
        return out

    def operation_weights(self) -> List[Tuple[int, str, torch.Tensor]]:
        """Like :meth:`mixing_weights` without the output dense (the paper's head-importance set)."""
        return [w for w in self.mixing_weights() if w[1] != "mix_out.weight"]

    def feed_forward_weights(self) -> List[Tuple[int, str, torch.Tensor]]:
        out = []
        for i, layer in enumerate(self.layers):
            for name, p in layer.ffn.named_parameters():
                if name.endswith("weight"):
                    out.append((i, name, p))
        return out

    def head_counts(self) -> List[int]:
        return [layer.mix.head_count() for layer in self.layers]


# -- analytic parameter counts (no model needed) --------------------------------------------
def embedding_param_count() -> int:
    """Word, position and token-type tables plus the embedding LayerNorm."""
    return (VOCAB_SIZE + MAX_POSITIONS + TYPE_VOCAB_SIZE) * EMBEDDING_SIZE + 2 * EMBEDDING_SIZE


def param_count(config: BertConfig, as_trained: bool = False) -> int:
    """Trainable parameters of :class:`BertModel` (without a pre-training head), from the config."""
    h = config.hidden_size
    n = embedding_param_count()
    if h != EMBEDDING_SIZE:
        n += EMBEDDING_SIZE * h + h

    def lin(a, b, bias=True):
        return a * b + (b if bias else 0)

    for spec in config.layers:
        heads = spec.num_operation_heads
        if as_trained or spec.operation_type == "SA":
            n += 3 * lin(h, h)
            if not as_trained and spec.operation_parameter == "WMA":
                n += lin(h, h, bias=False)
        elif spec.operation_type == "LT":
            n += lin(h, h)
        else:
            k = spec.kernel_size
            n_conv = max(1, heads // CONV_HEAD_RATIO)
            width = n_conv * (h // heads)
            n += 3 * lin(h, width) + h * k + lin(h, width) + lin(width, n_conv * k) + lin(h, width)
        n += lin(h, h) + 2 * h  # mixer output dense + LayerNorm
        if as_trained:
            widths = [4 * h] + [spec.feed_forward_dimension] * (spec.num_feed_forward - 1)
        else:
            widths = [spec.feed_forward_dimension] * spec.num_feed_forward
        dims = [h] + widths
        n += sum(lin(a, b) for a, b in zip(dims[:-1], dims[1:])) + lin(widths[-1], h) + 2 * h
    return n
