"""PyTorch GPT-2 decoder of the LTS space, for scoring (the model archai's ``hf_gpt2_flex`` trained).

Facts taken from archai (branch ``neurips-lts``: ``models/hf_gpt2/``, ``model_utils/
adaptive_embedding.py``, ``model_utils/proj_adaptive_softmax.py``), written anew here:

* Input: adaptive embedding of the token (cluster ``i`` looked up in its own table of width
  ``w_i = d_embed // div_val**i`` and projected to d_model; with div_val 1 a single table,
  projected only when d_embed != d_model; d_embed -1 means d_model), multiplied by sqrt(d_model),
  plus a learned position embedding of ``tgt_len`` positions (192 in the WikiText-103 release,
  32 in most One Billion Words configs).  No embedding dropout.
* Blocks are GPT-2's, always pre-LN (archai's GPT-2 ignores the config's ``pre_lnorm``):
  ``x += Attn(LN1(x))``, ``x += FFN(LN2(x))``, a final LayerNorm (eps 1e-5).  Attention is causal
  multi-head scaled dot-product with the layer's own head count (head size d_model / heads),
  with biases on query, key, value and output; the feed-forward block is up projection (d_model ->
  d_inner[i]), GELU (tanh form, GPT-2's ``gelu_new``), down projection.
* Output: the projected adaptive log-softmax.  The head cluster's logits are its tokens plus one
  logit per tail cluster (``cluster_weight``/``cluster_bias``, width d_embed); a tail token's
  log-probability is its cluster's head log-probability plus its log-softmax inside the cluster.
  Logits are ``hidden @ P_i @ W_i^T + b_i``.  ``tie_weight``: ``W_i`` are the embedding tables;
  ``tie_projs[i]``: ``P_i`` is the embedding's projection of cluster ``i`` (with div_val 1 the one
  shared projection), else the softmax's own (the head cluster's, in the release).
* Initialisation (archai's ``_init_weights``): every weight matrix and table N(0, 0.02), except
  the attention output and feed-forward down projections, N(0, 0.02 / sqrt(2 n_layer)) (GPT-2's
  residual scaling), and the d_embed <-> d_model projections, N(0, 0.01); biases 0; LayerNorm 1/0.
  Each parameter is drawn on the CPU from its own ``torch.Generator`` seeded by (seed, parameter
  name, shape), never the global RNG: the same seed gives bit-identical weights, and two
  architectures share the draws of their same-named, same-shaped parts.

The model has no dropout (it is the eval-mode function; training used dropout 0.1) and registers
no hook.  Instrumentation is explicit: ``observer`` (an :class:`Observer`) receives every layer's
attention probabilities and feed-forward intermediate, and ``head_gates`` multiplies each head's
output before the output projection (gates of ones change nothing, bit for bit), so gradients
with respect to the gates give head importance.
"""
from __future__ import annotations

import hashlib
import math
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .config import INIT_STD, PROJ_INIT_STD, DecoderConfig

LN_EPS = 1e-5


class Observer:
    """Receives intermediate tensors of a forward pass; subclass and override what you need.

    The tensors are the live ones (part of the autograd graph when gradients are on): keep
    ``.detach()``-ed copies unless you mean to differentiate through them.
    """

    def attention(self, layer: int, probs: torch.Tensor) -> None:
        """``probs``: (B, heads, T, T) attention probabilities, zero above the diagonal."""

    def feed_forward(self, layer: int, hidden: torch.Tensor) -> None:
        """``hidden``: (B, T, d_inner) activation output, the input of the down projection."""


class RecordingObserver(Observer):
    """Keeps detached copies of everything it is shown: ``attentions[i]``, ``feed_forwards[i]``."""

    def __init__(self):
        self.attentions: Dict[int, torch.Tensor] = {}
        self.feed_forwards: Dict[int, torch.Tensor] = {}

    def attention(self, layer, probs):
        self.attentions[layer] = probs.detach()

    def feed_forward(self, layer, hidden):
        self.feed_forwards[layer] = hidden.detach()


# -- blocks ---------------------------------------------------------------------------------
class Attention(nn.Module):
    """Causal multi-head self-attention: ``query``/``key``/``value`` and ``out`` projections."""

    def __init__(self, d_model: int, n_head: int):
        super().__init__()
        self.n_head, self.d_head = n_head, d_model // n_head
        self.query = nn.Linear(d_model, d_model, device="meta")
        self.key = nn.Linear(d_model, d_model, device="meta")
        self.value = nn.Linear(d_model, d_model, device="meta")
        self.out = nn.Linear(d_model, d_model, device="meta")

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_head, self.d_head).transpose(1, 2)  # (B, heads, T, d_head)

    def forward(self, x, layer: int = 0, observer: Optional[Observer] = None, gate: Optional[torch.Tensor] = None):
        b, t, d = x.shape
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.d_head)
        future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        probs = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
        if observer is not None:
            observer.attention(layer, probs)
        heads = probs @ v  # (B, heads, T, d_head)
        if gate is not None:
            heads = heads * gate.view(1, self.n_head, 1, 1)
        return self.out(heads.transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Module):
    """``down(gelu_tanh(up(x)))``."""

    def __init__(self, d_model: int, d_inner: int):
        super().__init__()
        self.up = nn.Linear(d_model, d_inner, device="meta")
        self.down = nn.Linear(d_inner, d_model, device="meta")

    def forward(self, x, layer: int = 0, observer: Optional[Observer] = None):
        h = F.gelu(self.up(x), approximate="tanh")
        if observer is not None:
            observer.feed_forward(layer, h)
        return self.down(h)


class DecoderLayer(nn.Module):
    """Pre-LN GPT-2 block with its own head count and feed-forward width."""

    def __init__(self, d_model: int, n_head: int, d_inner: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model, eps=LN_EPS, device="meta")
        self.attn = Attention(d_model, n_head)
        self.ln_2 = nn.LayerNorm(d_model, eps=LN_EPS, device="meta")
        self.ffn = FeedForward(d_model, d_inner)

    def forward(self, x, layer: int = 0, observer: Optional[Observer] = None, gate: Optional[torch.Tensor] = None):
        x = x + self.attn(self.ln_1(x), layer, observer, gate)
        return x + self.ffn(self.ln_2(x), layer, observer)


class AdaptiveEmbedding(nn.Module):
    """``tables[i]`` (one n_token x d_embed table when div_val is 1) and ``projections[i]``
    (d_model x w_i; with div_val 1 a single one, only when d_embed != d_model)."""

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.d_model, self.div_val = cfg.d_model, cfg.div_val
        self.ends = (0,) + cfg.cluster_ends
        if cfg.div_val == 1:
            shapes = [(cfg.n_token, cfg.embedding_width)]
            proj_widths = [cfg.embedding_width] if cfg.embedding_width != cfg.d_model else []
        else:
            shapes = [(self.ends[i + 1] - self.ends[i], w) for i, w in enumerate(cfg.cluster_widths)]
            proj_widths = list(cfg.cluster_widths)
        # created with uninitialised storage: the model draws every weight itself
        self.tables = nn.ModuleList(nn.Embedding(n, w, _weight=torch.empty(n, w)) for n, w in shapes)
        self.projections = nn.ParameterList(nn.Parameter(torch.empty(cfg.d_model, w)) for w in proj_widths)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.div_val == 1:
            emb = self.tables[0](ids)
            if len(self.projections):
                emb = F.linear(emb, self.projections[0])
        else:
            flat = ids.reshape(-1)
            out = torch.zeros(flat.numel(), self.d_model, dtype=self.projections[0].dtype, device=ids.device)
            for i, (table, proj) in enumerate(zip(self.tables, self.projections)):
                where = ((flat >= self.ends[i]) & (flat < self.ends[i + 1])).nonzero().squeeze(1)
                if where.numel():
                    out = out.index_copy(0, where, F.linear(table(flat[where] - self.ends[i]), proj))
            emb = out.view(*ids.shape, self.d_model)
        return emb * math.sqrt(self.d_model)


class AdaptiveSoftmax(nn.Module):
    """The output layer's own parameters: per-cluster ``biases``, the tail-cluster logits
    (``cluster_weight``, ``cluster_bias``), untied ``projections`` (by cluster index) and, when
    ``tie_weight`` is false, output ``tables`` laid out like the embedding's."""

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        ends = (0,) + cfg.cluster_ends
        n_tails = len(cfg.cluster_ends) - 1
        self.biases = nn.ParameterList(nn.Parameter(torch.empty(ends[i + 1] - ends[i]))
                                       for i in range(len(cfg.cluster_ends)))
        self.cluster_weight = nn.Parameter(torch.empty(n_tails, cfg.embedding_width)) if n_tails else None
        self.cluster_bias = nn.Parameter(torch.empty(n_tails)) if n_tails else None
        self.projections = nn.ParameterDict({
            str(i): nn.Parameter(torch.empty(cfg.d_model, w))
            for i, (w, tied) in enumerate(zip(cfg.cluster_widths, cfg.cluster_tie_projs))
            if cfg.has_projections and not tied})
        if cfg.tie_weight:
            self.tables = None
        elif cfg.div_val == 1:
            self.tables = nn.ParameterList([nn.Parameter(torch.empty(cfg.n_token, cfg.embedding_width))])
        else:
            self.tables = nn.ParameterList(nn.Parameter(torch.empty(ends[i + 1] - ends[i], w))
                                           for i, w in enumerate(cfg.cluster_widths))


# -- the model ------------------------------------------------------------------------------
def _draw(seed: int, name: str, shape, std: float) -> torch.Tensor:
    """N(0, std) from a CPU generator seeded by (seed, parameter name, shape)."""
    digest = hashlib.sha256(f"{seed}|{name}|{tuple(shape)}".encode()).digest()
    gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
    return torch.empty(tuple(shape)).normal_(0.0, std, generator=gen)


class DecoderModel(nn.Module):
    """One architecture of the space.  ``layers[i].attn`` (query/key/value/out, n_head) and
    ``layers[i].ffn`` (up, down) are plain ``nn.Linear``; see the module docstring."""

    def __init__(self, config: DecoderConfig, *, seed: int = 0):
        super().__init__()
        self.config, self.seed = config, int(seed)
        d = config.d_model
        self.ends = (0,) + config.cluster_ends
        self.embedding = AdaptiveEmbedding(config)
        self.positions = nn.Embedding(config.tgt_len, d, _weight=torch.empty(config.tgt_len, d))
        self.layers = nn.ModuleList(DecoderLayer(d, h, f) for h, f in zip(config.n_head, config.d_inner))
        self.final_norm = nn.LayerNorm(d, eps=LN_EPS, device="meta")
        self.softmax = AdaptiveSoftmax(config)
        self._materialise()
        self._initialise()
        self.eval()

    def _materialise(self) -> None:
        """Real storage for the parameters created on the meta device (their default
        initialisation would be overwritten anyway)."""
        for module in self.modules():
            for key, p in module._parameters.items():
                if p is not None and p.is_meta:
                    module._parameters[key] = nn.Parameter(torch.empty(p.shape, dtype=p.dtype))

    @torch.no_grad()
    def _initialise(self) -> None:
        residual_std = INIT_STD / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            owner_name, _, leaf = name.rpartition(".")
            owner = self.get_submodule(owner_name) if owner_name else self
            if isinstance(owner, nn.LayerNorm):
                p.fill_(1.0 if leaf == "weight" else 0.0)
            elif leaf == "bias" or name.startswith("softmax.biases.") or name == "softmax.cluster_bias":
                p.zero_()
            elif ".projections." in name:
                p.copy_(_draw(self.seed, name, p.shape, PROJ_INIT_STD))
            elif name.endswith(("attn.out.weight", "ffn.down.weight")):
                p.copy_(_draw(self.seed, name, p.shape, residual_std))
            else:
                p.copy_(_draw(self.seed, name, p.shape, INIT_STD))

    # -- the output layer's weights, tied or not ------------------------------------------------
    def output_weight(self, i: int) -> torch.Tensor:
        """(n_i, w_i) output embedding of cluster ``i``."""
        if self.config.tie_weight:
            table = self.embedding.tables[0].weight if self.config.div_val == 1 else self.embedding.tables[i].weight
        else:
            table = self.softmax.tables[0] if self.config.div_val == 1 else self.softmax.tables[i]
        if self.config.div_val == 1:
            return table[self.ends[i]:self.ends[i + 1]]
        return table

    def output_projection(self, i: int) -> Optional[torch.Tensor]:
        """(d_model, w_i) projection of cluster ``i``'s logits, or None when nothing is projected."""
        if not self.config.has_projections:
            return None
        if self.config.cluster_tie_projs[i]:
            return self.embedding.projections[0 if self.config.div_val == 1 else i]
        return self.softmax.projections[str(i)]

    def _cluster_logits(self, hidden: torch.Tensor, i: int) -> torch.Tensor:
        weight, bias = self.output_weight(i), self.softmax.biases[i]
        if i == 0 and self.softmax.cluster_weight is not None:
            weight = torch.cat([weight, self.softmax.cluster_weight])
            bias = torch.cat([bias, self.softmax.cluster_bias])
        proj = self.output_projection(i)
        if proj is not None:
            hidden = hidden @ proj
        return F.linear(hidden, weight, bias)

    # -- passes ---------------------------------------------------------------------------------
    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids -> (B, T, d_model): the adaptive embedding plus the positions (the
        input of the first block)."""
        _check_ids(input_ids, self.config)
        t = input_ids.shape[1]
        return self.embedding(input_ids) + self.positions(torch.arange(t, device=input_ids.device))

    def hidden_states(self, input_ids: torch.Tensor, observer: Optional[Observer] = None,
                      head_gates: Optional[Sequence[torch.Tensor]] = None,
                      inputs_embeds: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, T) token ids -> (B, T, d_model) final (normalised) hidden states.  ``inputs_embeds``
        replaces :meth:`embed`'s output (gradients with respect to the input embeddings)."""
        if head_gates is not None:
            _check_gates(head_gates, self.config)
        x = self.embed(input_ids) if inputs_embeds is None else inputs_embeds
        for i, layer in enumerate(self.layers):
            x = layer(x, i, observer, None if head_gates is None else head_gates[i])
        return self.final_norm(x)

    def log_probs_from_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., d_model) -> (..., n_token) log-probabilities over the whole vocabulary."""
        shape = hidden.shape[:-1]
        h = hidden.reshape(-1, hidden.shape[-1])
        head = torch.log_softmax(self._cluster_logits(h, 0), dim=-1)
        c0 = self.ends[1]
        parts = [head[:, :c0]]
        for i in range(1, len(self.ends) - 1):
            parts.append(head[:, c0 + i - 1, None] + torch.log_softmax(self._cluster_logits(h, i), dim=-1))
        return torch.cat(parts, dim=-1).view(*shape, self.config.n_token)

    def nll_from_hidden(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(..., d_model) hidden states and (...) targets -> (...) negative log-likelihoods.  Tail
        clusters are evaluated only on the tokens whose target lies in them."""
        shape = targets.shape
        h, y = hidden.reshape(-1, hidden.shape[-1]), targets.reshape(-1)
        head = torch.log_softmax(self._cluster_logits(h, 0), dim=-1)
        c0 = self.ends[1]
        in_head = y < c0
        nll = -head.gather(1, torch.where(in_head, y, 0)[:, None]).squeeze(1)
        for i in range(1, len(self.ends) - 1):
            rows = ((y >= self.ends[i]) & (y < self.ends[i + 1])).nonzero().squeeze(1)
            if rows.numel() == 0:
                continue
            tail = torch.log_softmax(self._cluster_logits(h[rows], i), dim=-1)
            inside = tail.gather(1, (y[rows] - self.ends[i])[:, None]).squeeze(1)
            nll = nll.index_copy(0, rows, -(head[rows, c0 + i - 1] + inside))
        return nll.view(shape)

    def forward(self, input_ids: torch.Tensor, observer: Optional[Observer] = None,
                head_gates: Optional[Sequence[torch.Tensor]] = None) -> torch.Tensor:
        """(B, T) ids -> (B, T, n_token) next-token log-probabilities (the logits' normalised form);
        B x T x 50,264 floats, 0.4 GB for a 16 x 128 batch: use :meth:`loss` / :meth:`token_nll`
        when only the observed next tokens matter."""
        return self.log_probs_from_hidden(self.hidden_states(input_ids, observer, head_gates))

    def token_nll(self, input_ids: torch.Tensor, observer: Optional[Observer] = None,
                  head_gates: Optional[Sequence[torch.Tensor]] = None,
                  inputs_embeds: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, T) ids -> (B, T - 1) NLL of each next token ``ids[:, 1:]`` given its prefix."""
        if input_ids.dim() != 2 or input_ids.shape[1] < 2:
            raise ValueError(f"the LM loss needs (batch, length >= 2) token ids, got shape {tuple(input_ids.shape)}")
        hidden = self.hidden_states(input_ids, observer, head_gates, inputs_embeds)
        return self.nll_from_hidden(hidden[:, :-1], input_ids[:, 1:])

    def loss(self, input_ids: torch.Tensor, observer: Optional[Observer] = None,
             head_gates: Optional[Sequence[torch.Tensor]] = None,
             inputs_embeds: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Mean next-token NLL (nats) through the adaptive softmax: the LM training loss."""
        return self.token_nll(input_ids, observer, head_gates, inputs_embeds).mean()

    # -- bookkeeping ------------------------------------------------------------------------
    def head_counts(self) -> List[int]:
        return [layer.attn.n_head for layer in self.layers]

    def param_counts(self) -> Dict[str, int]:
        """The release's buckets counted on the built modules (tied parameters once); must equal
        :func:`~.counts.param_counts` of the config."""
        def size(module):
            return sum(p.numel() for p in module.parameters())

        ada = size(self.embedding) + size(self.positions)
        attn = sum(size(layer.attn) for layer in self.layers)
        ffn = sum(size(layer.ffn) for layer in self.layers)
        norms = sum(size(m) for m in self.modules() if isinstance(m, nn.LayerNorm))
        return {"AdaEmb": ada, "Attn": attn, "FFN": ffn, "nonembedding": attn + ffn + norms, "total": size(self)}


def _check_ids(ids: torch.Tensor, cfg: DecoderConfig) -> None:
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"input_ids must be a (batch, length) integer tensor, got "
                         f"{getattr(ids, 'shape', type(ids).__name__)} {getattr(ids, 'dtype', '')}".rstrip())
    if ids.numel() == 0:
        raise ValueError("input_ids is empty")
    if ids.shape[1] > cfg.tgt_len:
        raise ValueError(f"sequence length {ids.shape[1]} exceeds the model's {cfg.tgt_len} learned positions")
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= cfg.n_token:
        raise ValueError(f"token ids must lie in [0, {cfg.n_token}), got range [{lo}, {hi}]")


def _check_gates(gates: Sequence[torch.Tensor], cfg: DecoderConfig) -> None:
    if len(gates) != cfg.n_layer:
        raise ValueError(f"head_gates needs one tensor per layer ({cfg.n_layer}), got {len(gates)}")
    for i, (g, h) in enumerate(zip(gates, cfg.n_head)):
        if tuple(g.shape) != (h,):
            raise ValueError(f"head_gates[{i}] must have shape ({h},) (the layer's heads), got {tuple(g.shape)}")
