"""Parameter counts and a forward FLOPs estimate from a :class:`DecoderConfig`, no model built.

Parameter buckets are the release's own (``params_summary.yaml``), so they can be checked against
it exactly (the 200 WikiText-103 models and the 122 One Billion Words Pareto models agree, see
the tests; the release's counts of the 200 random One Billion Words configs are those of archai's
Transformer-XL built from the same fields, not of its GPT-2).  What archai counts where:

* ``AdaEmb``: the adaptive input embedding (the cluster tables and their d_embed_i -> d_model
  projections) plus the learned positions (``tgt_len`` x d_model: 192 in the WikiText-103
  release, 32 in most One Billion Words configs);
* ``Attn``: per layer the query/key/value and output projections with their biases, 4 d (d + 1);
* ``FFN``: per layer the up and down projections with biases, 2 d f + f + d;
* ``nonembedding``: Attn + FFN + every LayerNorm (two per layer and the final one, 2 d each);
* ``total``: every distinct parameter, tied ones once: AdaEmb + nonembedding + what the adaptive
  softmax owns (its per-cluster biases over the whole vocabulary, the tail-cluster logits
  ``cluster_weight``/``cluster_bias``, the output projections not tied to the embedding's --
  the head cluster's in the release -- and the output tables when ``tie_weight`` is false).
"""
from __future__ import annotations

from typing import Dict, Optional

from .config import DecoderConfig


def _cluster_sizes(cfg: DecoderConfig):
    ends = (0,) + cfg.cluster_ends
    return [ends[i + 1] - ends[i] for i in range(len(cfg.cluster_ends))]


def embedding_table_params(cfg: DecoderConfig) -> int:
    """The embedding tables: one n_token x d_embed table when div_val is 1, else one per cluster."""
    if cfg.div_val == 1:
        return cfg.n_token * cfg.embedding_width
    return sum(n * w for n, w in zip(_cluster_sizes(cfg), cfg.cluster_widths))


def embedding_projection_widths(cfg: DecoderConfig):
    """Widths of the embedding's projections to d_model: one per cluster when div_val > 1, a single
    shared one when div_val is 1 and d_embed != d_model, none otherwise."""
    if cfg.div_val > 1:
        return list(cfg.cluster_widths)
    return [cfg.embedding_width] if cfg.embedding_width != cfg.d_model else []


def param_counts(cfg: DecoderConfig) -> Dict[str, int]:
    """``{AdaEmb, Attn, FFN, nonembedding, total}`` exactly as archai's ``params_summary.yaml``."""
    d = cfg.d_model
    ada = embedding_table_params(cfg) + sum(d * w for w in embedding_projection_widths(cfg)) + cfg.tgt_len * d
    attn = sum(4 * d * (d + 1) for _ in cfg.n_head)
    ffn = sum(2 * d * f + f + d for f in cfg.d_inner)
    norms = (2 * cfg.n_layer + 1) * 2 * d
    n_tails = len(cfg.cluster_ends) - 1
    softmax = cfg.n_token + n_tails * (cfg.embedding_width + 1)  # output biases, tail-cluster logits
    if cfg.has_projections:
        softmax += sum(d * w for w, tied in zip(cfg.cluster_widths, cfg.cluster_tie_projs) if not tied)
    if not cfg.tie_weight:
        softmax += embedding_table_params(cfg)
    nonembedding = attn + ffn + norms
    return {"AdaEmb": ada, "Attn": attn, "FFN": ffn, "nonembedding": nonembedding,
            "total": ada + nonembedding + softmax}


def flops_per_token(cfg: DecoderConfig, seq_len: Optional[int] = None) -> Dict[str, float]:
    """Forward-pass FLOPs per token (2 per multiply-add of every matrix product), by part.

    For a sequence of ``seq_len`` tokens (at most, and by default, the model's ``tgt_len``
    positions), per token:

    * ``embedding``: the head cluster's projection d_embed -> d_model, ``2 d e`` (0 when nothing
      is projected); table lookups are free.  (Tail tokens use narrower projections: an upper bound.)
    * ``attention``: per layer ``2 * 4 d^2`` (query, key, value, output) plus ``2 * 2 c d`` for
      the scores and the weighted sum over ``c = (seq_len + 1) / 2`` keys, the mean causal context.
    * ``ffn``: per layer ``2 * 2 d f``.
    * ``softmax``: the full distribution over the vocabulary (what ``log_probs`` computes): the head
      cluster's projection and its ``c_0 + n_tails`` logits, and every tail cluster's projection
      and logits, ``2 (d w_i [if projected] + w_i n_i)`` summed over clusters.  The training loss
      evaluates a tail only for tokens whose target lies in it, so this is an upper bound.

    Biases, LayerNorms, activations and softmax exponentials (O(d) or O(c) per token) are left out.
    ``total`` is the sum of the four parts.
    """
    seq_len = cfg.tgt_len if seq_len is None else seq_len
    if not 1 <= seq_len <= cfg.tgt_len:
        raise ValueError(f"seq_len must be in 1..{cfg.tgt_len} (the model's learned positions), got {seq_len}")
    d = cfg.d_model
    ctx = (seq_len + 1) / 2
    projected = cfg.has_projections
    widths, sizes = cfg.cluster_widths, _cluster_sizes(cfg)
    n_tails = len(sizes) - 1
    embedding = 2 * d * widths[0] if projected else 0
    attention = sum(2 * 4 * d * d + 2 * 2 * ctx * d for _ in cfg.n_head)
    ffn = sum(2 * 2 * d * f for f in cfg.d_inner)
    softmax = 0
    for i, (w, n) in enumerate(zip(widths, sizes)):
        logits = n + n_tails if i == 0 else n
        softmax += 2 * w * logits + (2 * d * w if projected else 0)
    total = embedding + attention + ffn + softmax
    return {"embedding": float(embedding), "attention": float(attention), "ffn": float(ffn),
            "softmax": float(softmax), "total": float(total)}
