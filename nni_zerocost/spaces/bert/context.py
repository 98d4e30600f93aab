"""Scoring context of one BERT architecture: the model and the two shared passes.

* :meth:`BertContext.forward_stats` -- statistics of one forward pass (attention maxima,
  feed-forward activation patterns, ...), reduced on the fly so no big tensor is kept.
* :meth:`BertContext.gradients` -- ONE forward + backward pass giving every gradient the
  proxies use; it records the forward statistics at the same time, so a context that computes
  all proxies runs exactly one forward and one backward.

Loss of the backward pass (``loss`` context option).  15% of the real, non-special tokens of
every row are chosen with the context seed (at least one per row) and corrupted:

* ``"rtd"`` (default): ELECTRA's replaced-token detection, the objective the benchmark's
  networks (ELECTRA discriminators) were pre-trained with.  The chosen tokens are replaced by
  tokens drawn from other real positions of the batch (a unigram "generator"); a discriminator
  head (dense, GELU, one logit) predicts for every real token whether it was replaced; binary
  cross-entropy, mean over real tokens.  Costs about one extra dense layer.
* ``"mlm"``: masked-LM cross-entropy through ELECTRA's generator head tied to the word
  embeddings; the chosen tokens become [MASK] and are predicted over the 30,522-word vocabulary
  (mean over them).  The vocabulary-sized softmax makes it several times slower on small models.
* ``"sum"``: the paper's label-free loss, the sum of the final hidden states.  It is kept only
  to reproduce the paper and is *degenerate*: the encoder ends in a LayerNorm whose gain is 1
  and bias 0 at initialisation, and a LayerNorm output sums to exactly zero over its features,
  so this loss is identically 0 and every gradient is floating-point noise.

Gradients are taken with :func:`torch.autograd.grad` on exactly the tensors needed: no
``.grad`` attribute is written, no hook registered, and no weight changes.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from ...outputs import (CODE_ROWS, SPECTRA_TOKENS, FeedForwardCodes, LayerSpectra, WeightGradients, masked_positions,
                        rows_holding)
from ...spectra import covariance_eigenvalues
from ..base import ScoringContext, scoring_device
from .config import BertConfig
from .inputs import CLS_ID, SEP_ID, BertBatch
from .model import PAD_ID, BertModel, Packing, embedding_param_count, param_count

LOSSES = ("rtd", "mlm", "sum")


class ForwardRecorder:
    """Receives intermediate tensors from :class:`BertModel` and keeps small reductions.

    Token mixers report per length bucket (:class:`~.model.Group`), so averages are accumulated
    as (sum, count) and read through the properties.
    """

    def __init__(self, code_rows: int = CODE_ROWS):
        self.code_rows = code_rows
        self._attention: Dict[int, List[torch.Tensor]] = {}  # layer -> [sum per head, count]
        self._attention_paper: Dict[int, List[float]] = {}
        self._transform_paper: Dict[int, List[float]] = {}
        self.conv_keys: Dict[int, torch.Tensor] = {}  # layer -> (conv heads,) confidence over span
        self.projection_paper: List[Tuple[int, str, float]] = []  # mean of max over positions
        self.codes: Dict[Tuple[int, int], torch.Tensor] = {}  # (layer, ffn index) -> (n, F) bool
        self.code_row: Optional[torch.Tensor] = None  # row of each coded token
        self._n_coded = 0

    def start(self, pk: Packing) -> None:
        self._n_coded = int((pk.row < self.code_rows).sum())
        self.code_row = pk.row[: self._n_coded]

    @staticmethod
    def _add(store, layer, total, count):
        if layer in store:
            store[layer][0] = store[layer][0] + total
            store[layer][1] += count
        else:
            store[layer] = [total, count]

    @torch.no_grad()
    def attention(self, layer, probs, g) -> None:
        probs = probs.detach()  # (rows, heads, T, T)
        qmask = g.valid[:, None, :].float()
        self._add(self._attention, layer, (probs.amax(dim=-1) * qmask).sum(dim=(0, 2)), float(g.valid.sum()))
        pair = (g.valid[:, :, None] & g.valid[:, None, :]).float()
        self._add(self._attention_paper, layer, float((probs.amax(dim=1) * pair).sum()), float(pair.sum()))

    @torch.no_grad()
    def transform(self, layer, mixed, g) -> None:
        soft = torch.softmax(mixed.detach(), dim=-1).amax(dim=1)  # (rows, T, d)
        self._add(self._transform_paper, layer, float((soft * g.valid[..., None]).sum()),
                  float(g.valid.sum()) * soft.shape[-1])

    @torch.no_grad()
    def conv_kernel(self, layer, kernels) -> None:
        self.conv_keys[layer] = kernels.detach().amax(dim=-1).mean(dim=0)

    @torch.no_grad()
    def projection(self, layer, name, out, pk: Packing) -> None:
        out = out.detach()
        top = out.new_full((pk.batch, out.shape[1]), float("-inf"))
        top = top.scatter_reduce(0, pk.row[:, None].expand_as(out), out, reduce="amax", include_self=True)
        self.projection_paper.append((layer, name, float(top.mean())))

    @torch.no_grad()
    def ffn_activation(self, layer, j, pre) -> None:
        self.codes[(layer, j)] = pre[: self._n_coded].detach() > 0

    @property
    def attention_keys(self) -> Dict[int, torch.Tensor]:
        """layer -> (heads,) Voita confidence: mean over real queries of the max over keys."""
        return {l: t / c for l, (t, c) in sorted(self._attention.items())}

    @property
    def attention_paper(self) -> Dict[int, float]:
        """layer -> mean over real (query, key) pairs of the max over heads (the paper's axis)."""
        return {l: t / c for l, (t, c) in sorted(self._attention_paper.items())}

    @property
    def transform_paper(self) -> Dict[int, float]:
        """LT layer -> mean over tokens and features of a feature softmax's max over heads."""
        return {l: t / c for l, (t, c) in sorted(self._transform_paper.items())}


#: the gradient pass's typed result (defined once, for every context)
GradientPass = WeightGradients


class BertContext(ScoringContext):
    """One BERT architecture + one :class:`BertBatch` + one seed.

    Options: ``as_trained`` (build what the benchmark actually trained, see :mod:`.model`) and
    ``loss`` (``"rtd"`` default, ``"mlm"``, or the paper's degenerate ``"sum"``).  The model is always in
    eval form (no dropout).
    """

    offers = frozenset({"parameters", "weights", "weight_gradients", "attention_confidence", "ffn_codes",
                        "layer_spectra", "bert_paper_forms"})

    def __init__(self, config: BertConfig, batch: BertBatch, *, seed: int = 0, device=None,
                 as_trained: bool = False, loss: str = "rtd"):
        super().__init__(config, batch, seed=seed, device=device)
        if not isinstance(batch, BertBatch):
            raise TypeError(f"the bert space needs a BertBatch, got {type(batch).__name__}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.as_trained = bool(as_trained)
        self.loss = loss
        # the batch on the device (the CPU batch stays the source of the seeded corruption)
        self.input_ids = batch.input_ids.to(self.device)
        self.token_type_ids = batch.token_type_ids.to(self.device)
        self.attention_mask = batch.attention_mask.to(self.device)

    @classmethod
    def of_model(cls, model: BertModel, batch: BertBatch, *, seed: int = 0, device=None) -> "BertContext":
        """A context scoring an existing model (never rebuilt or modified): ``as_trained`` is the
        model's, the loss that of its pre-training head (``rtd``/``mlm``; ``sum`` without one).
        ``device``: the model's own when None; another device is refused."""
        own = scoring_device(model, device)
        loss = "rtd" if model.rtd_head is not None else "mlm" if model.mlm_head is not None else "sum"
        ctx = cls(model.config, batch, seed=seed, device=own, as_trained=model.as_trained, loss=loss)
        ctx.cache["model"] = model
        return ctx

    @property
    def config(self) -> BertConfig:
        return self.arch

    def model(self) -> BertModel:
        head = None if self.loss == "sum" else self.loss
        return self.cached("model", lambda: BertModel(self.config, seed=self.seed, as_trained=self.as_trained,
                                                      head=head).to(self.device))  # drawn on the CPU

    def param_count(self) -> int:
        """Parameters of the encoder with its embeddings (no MLM head), from the config alone."""
        return param_count(self.config, self.as_trained)

    def nonembedding_param_count(self) -> int:
        return self.param_count() - embedding_param_count()

    # -- capabilities -----------------------------------------------------------------------
    def weights(self, role: str) -> List[Tuple[str, torch.Tensor]]:
        """``attention_input``: every mixer's operation weights (query/key/value, WMA, LT input,
        DSC projections and convolutions); ``attention``: those and each mixer's output dense;
        ``feed_forward``: the GELU stack and its down projection."""
        model = self.model()
        chosen = {"attention_input": model.operation_weights, "attention": model.mixing_weights,
                  "feed_forward": model.feed_forward_weights}
        if role not in chosen:
            raise ValueError(f"unknown weight role {role!r}; valid: {', '.join(chosen)}")
        names = {id(p): n for n, p in model.named_parameters()}
        return [(names[id(p)], p) for _, _, p in chosen[role]()]

    def head_counts(self) -> List[int]:
        return self.model().head_counts()

    def attention_confidence(self) -> Dict[int, torch.Tensor]:
        """Every SA head and the self-attention heads of DSC layers (LT layers have none)."""
        return self.forward_stats().attention_keys

    def softmax_confidence(self) -> Dict[int, torch.Tensor]:
        """The attention heads and the DSC dynamic-convolution kernels (softmax over the span)."""
        stats = self.forward_stats()
        return {**{("attention", k): v for k, v in stats.attention_keys.items()},
                **{("conv", k): v for k, v in stats.conv_keys.items()}}

    def ffn_codes(self) -> FeedForwardCodes:
        stats = self.forward_stats()
        return FeedForwardCodes(stats.codes, stats.code_row, stats.code_rows)

    def spectra(self, tokens: int = SPECTRA_TOKENS) -> LayerSpectra:
        """One no-grad forward of the first rows holding ``tokens`` real tokens of the clean
        batch (no corruption): token-covariance eigenvalues of each mixer's output after its
        output dense (``mix``), every feed-forward intermediate after GELU (``ffn``) and each
        layer's output (``out``); cached."""
        key = ("spectra", int(tokens))
        if key in self.cache:
            return self.cache[key]
        model, batch = self.model(), self.batch
        rows = rows_holding(batch.attention_mask.sum(1), tokens)
        pk = Packing(batch.attention_mask[:rows].bool().to(self.device))
        ids = batch.input_ids[:rows].to(self.device)
        out: Dict[str, List[Tuple[int, int, torch.Tensor]]] = {"mix": [], "ffn": [], "out": []}
        keep = slice(0, int(tokens))
        with torch.no_grad():
            x = model.embedding_norm(model.embed(ids, batch.token_type_ids[:rows].to(self.device), pk))
            if model.embedding_project is not None:
                x = model.embedding_project(x)
            for i, layer in enumerate(model.layers):
                m = layer.mix_out(layer.mix(x, pk, None, i))
                out["mix"].append((i, 0, covariance_eigenvalues(m[keep])))
                x = layer.mix_norm(x + m)
                h = x
                for j, lin in enumerate(layer.ffn.dense):
                    h = F.gelu(lin(h))
                    out["ffn"].append((i, j, covariance_eigenvalues(h[keep])))
                x = layer.ffn_norm(x + layer.ffn.out(h))
                out["out"].append((i, 0, covariance_eigenvalues(x[keep])))
        self.cache[key] = LayerSpectra(**out)
        return self.cache[key]

    def packing(self) -> Packing:
        return self.cached("packing", lambda: Packing(self.attention_mask.bool()))

    # -- passes -----------------------------------------------------------------------------
    def forward_stats(self) -> ForwardRecorder:
        """Forward statistics: from the gradient pass if it ran, else one no-grad forward."""
        if "stats" not in self.cache:
            model, pk = self.model(), self.packing()
            rec = ForwardRecorder()
            rec.start(pk)
            with torch.no_grad():
                model.encode(model.embed(self._input_ids(), self.token_type_ids, pk), pk, rec)
            self.cache["stats"] = rec
        return self.cache["stats"]

    def gradients(self) -> WeightGradients:
        """The shared forward + backward pass (records the forward statistics too)."""
        if "gradients" not in self.cache:
            self.cache["gradients"] = self._gradient_pass()
        return self.cache["gradients"]

    def _input_ids(self) -> torch.Tensor:
        """Token ids fed to the model: the batch, corrupted at the chosen positions unless loss="sum"."""
        if self.loss == "sum":
            return self.input_ids
        return self.cached("input_ids", lambda: self._corrupt().to(self.device))

    def _corrupt(self) -> torch.Tensor:
        """The seeded corruption, drawn on the CPU (identical on every device)."""
        ids = self.batch.input_ids
        flat_ids = ids.reshape(-1)
        ordinary = self.batch.attention_mask.bool() & (ids != CLS_ID) & (ids != SEP_ID) & (ids != PAD_ID)
        positions, gen = masked_positions(ordinary, self.seed)
        self.cache["corrupted_positions"] = positions.to(self.device)
        out = flat_ids.clone()
        if self.loss == "mlm":
            out[positions] = self.batch.mask_token_id
        else:  # replacements drawn from the batch's own ordinary tokens (a unigram generator)
            pool = flat_ids[ordinary.reshape(-1)]
            out[positions] = pool[torch.randint(len(pool), (len(positions),), generator=gen)]
        return out.view_as(ids)

    def _gradient_pass(self) -> WeightGradients:
        model, pk = self.model(), self.packing()
        rec = ForwardRecorder()
        rec.start(pk)
        weights = model.mixing_weights() + model.feed_forward_weights()
        names = {id(p): n for n, p in model.named_parameters()}
        with torch.enable_grad():
            embedded = model.embed(self._input_ids(), self.token_type_ids, pk).detach().requires_grad_(True)
            hidden = model.encode(embedded, pk, rec)
            if self.loss == "rtd":
                replaced = (self._input_ids() != self.input_ids).reshape(-1)[pk.index].float()
                loss = F.binary_cross_entropy_with_logits(model.rtd_head(hidden), replaced)
            elif self.loss == "mlm":
                flat = self.cache["corrupted_positions"]
                rows = torch.searchsorted(pk.index, flat)  # packed row of each masked position
                logits = model.mlm_head(hidden.index_select(0, rows), model.word_embeddings.weight)
                loss = F.cross_entropy(logits, self.input_ids.view(-1)[flat])
            else:
                loss = hidden.sum()
            params = [p for _, _, p in weights]
            grads = torch.autograd.grad(loss, [embedded] + params)
        self.cache["stats"] = rec
        return WeightGradients(
            loss=float(loss.detach()),
            weight_grads={names[id(p)]: g for p, g in zip(params, grads[1:])},
            input_grad=pk.unpack(grads[0]),
        )
