"""Capacity and signal-propagation proxies for transformers.

Two published peers, implemented from their papers' descriptions (no code was available or
copied), and our own rank-based proxies.  Mechanisms, stated before any measurement:

* ``wpca`` (W-PCA, Wang, ICLR 2025): the parameter count times the number of principal
  components of the feed-forward activations that reach a cumulative variance ``eta``.  Size
  times how many directions the feed-forward layers actually use.
* ``zerolm`` (ZeroLM, Chen et al. 2025): data-free capacity from weight statistics per
  functional sub-module (attention, feed-forward), the two contributions balanced.  The paper
  chooses its balance ``alpha`` by sampling the benchmark; that is fitting to labels, so we fix
  ``alpha = 0.5`` (equal weight) a priori.  Capacity of a sub-module: the sum of the nuclear
  norms (sum of singular values) of its weight matrices; score ``alpha log A + (1-alpha) log F``.
* ``attention_rank``, ``ffn_rank``, ``representation_rank``, ``subspace_rank``: signal
  propagation / rank collapse (Dong et al. 2021: pure attention loses rank doubly
  exponentially with depth; heads and residual paths counter it).  The effective rank
  (Roy & Vetterli 2007: exp of the entropy of the normalised singular values) of the tokens'
  representations after every sub-layer, summed over sub-layers: the number of dimensions the
  untrained network keeps distinct, which grows with width and depth (model size) and, within
  one (hidden size, layers) group, with what the group differs in: heads (attention outputs)
  and feed-forward width/depth (feed-forward activations).  Compute them ``--as-trained``
  (every layer SDP attention, what the benchmark really trained).

Shared pass (the ``layer_spectra`` capability): one no-grad forward of the first rows of the
batch holding about 1,024 real tokens; for each sub-layer output the eigenvalues of the token
covariance (features centred over tokens) are kept, cached on the context.  Mode: eval (no
dropout), no autograd; weights unchanged.  Causal models: every token's representation is what
the causal mask lets it see; the spectra are over tokens all the same.
"""
from __future__ import annotations

import math
import torch

from ..spectra import nuclear_norm
from .base import Flagged, register_proxy

def effective_rank(ev: torch.Tensor) -> float:
    """Roy & Vetterli's effective rank from covariance eigenvalues (singular values = sqrt)."""
    s = ev.clamp_min(0).sqrt()
    total = float(s.sum())
    if not total > 0:
        return 0.0
    p = s / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def pca_count(ev: torch.Tensor, eta: float) -> int:
    """Smallest number of principal components whose cumulative variance reaches ``eta``."""
    total = float(ev.sum())
    if not total > 0:
        return 0
    cum = torch.cumsum(ev, 0) / total
    return int(torch.searchsorted(cum, torch.tensor(float(eta), dtype=cum.dtype, device=cum.device)).item()) + 1


def _check(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise Flagged(f"non-finite {what}")
    return value


_MODE = "eval (no dropout), no autograd; one forward of the first rows holding 1024 real tokens"
RANK_SIZE = ("a sum of effective ranks over sub-layers: grows with width (more dimensions) and depth "
             "(more sub-layers)")
_NAN = "finite for any finite forward; non-finite activations give NaN, flagged"


@register_proxy("wpca", needs=("layer_spectra", "parameters"), higher_is_better=True, cost="forward", mode=_MODE,
                size="parameters x principal components: grows with size twice over", scales_with_size=True,
                nan_policy=_NAN + "; a feed-forward with zero variance counts 0 components",
                bounds={"eta": (0.0, 1.0)}, choices={"params": ("all", "nonembedding")})
def wpca(ctx, eta: float = 0.99, params: str = "all") -> float:
    """W-PCA (ICLR 2025): parameters x sum over feed-forward intermediates of the number of
    principal components reaching cumulative variance ``eta``.

    ``params``: ``"all"`` (the paper's #Params, embeddings included) or ``"nonembedding"``
    (the embeddings are the same for every architecture of this space).  Every intermediate of
    a deeper feed-forward stack counts (this space has stacks of 1 or 3).
    """
    if params not in ("all", "nonembedding"):
        raise ValueError(f"params must be 'all' or 'nonembedding', got {params!r}")
    n = ctx.param_count() if params == "all" else ctx.nonembedding_param_count()
    count = sum(pca_count(ev, eta) for _, _, ev in ctx.spectra()["ffn"])
    return _check(float(n) * float(count), "W-PCA")


@register_proxy("zerolm", needs=("weights",), higher_is_better=True, cost="weights",
                size="log of summed nuclear norms: grows with width and depth", scales_with_size=True,
                mode="weights only (data-free), no forward",
                nan_policy="finite for finite weights; a zero capacity gives -inf, flagged NaN",
                bounds={"alpha": (0.0, 1.0)})
def zerolm(ctx, alpha: float = 0.5) -> float:
    """ZeroLM (2025), from its description: ``alpha log A + (1 - alpha) log F`` with ``A``/``F``
    the summed nuclear norms of the token-mixing / feed-forward weight matrices.  ``alpha``
    fixed at 0.5 (the paper tunes it on benchmark samples, which we do not do).  Nuclear norms of
    matrices of 2^21 entries or more come from the Gram matrix's eigenvalues
    (:func:`~nni_zerocost.spectra.singular_values`), equal to the SVD's to rounding."""
    with torch.no_grad():
        a = sum(nuclear_norm(w) for _, w in ctx.weights("attention"))
        f = sum(nuclear_norm(w) for _, w in ctx.weights("feed_forward"))
    if not (a > 0 and f > 0):
        raise Flagged("a sub-module has zero capacity")
    return _check(alpha * math.log(a) + (1 - alpha) * math.log(f), "ZeroLM score")


@register_proxy("attention_rank", needs=("layer_spectra",), higher_is_better=True, cost="forward", mode=_MODE,
                size=RANK_SIZE, scales_with_size=True,
                nan_policy=_NAN)
def attention_rank(ctx) -> float:
    """Sum over layers of the effective rank of the token mixer's output (after its output
    dense): how many directions attention keeps distinct (rank collapse, heads)."""
    return _check(sum(effective_rank(ev) for _, _, ev in ctx.spectra()["mix"]), "attention rank")


@register_proxy("ffn_rank", needs=("layer_spectra",), higher_is_better=True, cost="forward", mode=_MODE,
                size=RANK_SIZE, scales_with_size=True,
                nan_policy=_NAN)
def ffn_rank(ctx) -> float:
    """Sum over every feed-forward intermediate (after GELU) of its effective rank: the
    directions the feed-forward stacks use (width and depth)."""
    return _check(sum(effective_rank(ev) for _, _, ev in ctx.spectra()["ffn"]), "feed-forward rank")


@register_proxy("representation_rank", needs=("layer_spectra",), higher_is_better=True, cost="forward",
                mode=_MODE, size=RANK_SIZE, scales_with_size=True,
                nan_policy=_NAN)
def representation_rank(ctx) -> float:
    """Sum over layers of the effective rank of the layer's output tokens (signal propagation
    through depth: collapse lowers it)."""
    return _check(sum(effective_rank(ev) for _, _, ev in ctx.spectra()["out"]), "representation rank")


@register_proxy("subspace_rank", needs=("layer_spectra",), higher_is_better=True, cost="forward", mode=_MODE,
                size=RANK_SIZE, scales_with_size=True,
                nan_policy=_NAN)
def subspace_rank(ctx) -> float:
    """``attention_rank + ffn_rank``: the effective dimensions produced by every sub-layer
    (mixers and feed-forward intermediates), the sum of the two mechanisms above."""
    s = ctx.spectra()
    return _check(sum(effective_rank(ev) for k in ("mix", "ffn") for _, _, ev in s[k]), "subspace rank")


@register_proxy("balanced_rank", needs=("layer_spectra",), higher_is_better=True, cost="forward", mode=_MODE,
                size="log of the rank sums: grows with width and depth, slowly", scales_with_size=True,
                nan_policy=_NAN + "; a zero rank (all tokens identical) gives -inf, flagged NaN")
def balanced_rank(ctx) -> float:
    """``0.5 log attention_rank + 0.5 log ffn_rank``: the two functional sub-modules balanced
    with equal weight (ZeroLM's balancing, alpha = 0.5 fixed, applied to the measured ranks
    instead of weight norms), so that neither the wide feed-forward spectra nor the narrow
    attention spectra dominate the sum.  Post-hoc: designed after the 500-architecture results
    of the proxies above, where attention rank and feed-forward rank ranked different groups."""
    s = ctx.spectra()
    a = sum(effective_rank(ev) for _, _, ev in s["mix"])
    f = sum(effective_rank(ev) for _, _, ev in s["ffn"])
    if not (a > 0 and f > 0):
        raise Flagged("zero effective rank")
    return _check(0.5 * math.log(a) + 0.5 * math.log(f), "balanced rank")
