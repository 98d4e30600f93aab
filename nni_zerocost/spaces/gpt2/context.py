"""Scoring context of one LTS GPT-2 decoder: the model, built lazily, and the shared passes.

Passes (each runs once per context and is cached):

* :meth:`GPT2Context.gradients` -- ONE forward + backward of the LM loss (mean next-token NLL
  through the adaptive softmax, the loss the release trained) with gates of ones on every head:
  gradients w.r.t. every attention and feed-forward weight, the summed input embeddings and the
  head gates.  The same forward records the forward statistics.
* :meth:`GPT2Context.forward_stats` -- the statistics of one forward (no autograd) when no
  gradient was asked for: per-head attention confidence and the feed-forward codes.
* :meth:`GPT2Context.spectra` -- one no-grad forward of the first rows holding about 1,024
  tokens, layer by layer, keeping the token-covariance spectra of every sub-layer.

Rows and positions: the model scores rows of at most its ``tgt_len`` learned positions.  A
batch with longer rows is re-cut, never truncated: each row becomes its consecutive windows of
equal length (:func:`.inputs.rows_within`), so the default 16 x 128 batch gives a tgt_len-32
model 64 rows of 32, the same 2,048 tokens, rather than 16 rows of their first 32.  The
gradients, attention confidence, spectra (the first 1,024 tokens, the same ones) and the halves
of split gradients keep their tokens; what is per row follows the rows: a query sees at most 31
earlier tokens, the feed-forward codes cover their first 8 rows (256 tokens), per-sequence
Jacobians number 64.  A model with at least the batch's positions (every WikiText-103 model:
192 >= 128) scores the batch as given, bit for bit as before positions could vary.

Causal attention: a query attends to itself and the positions before it (the model puts zeros
above the diagonal).  Head confidence takes each query's maximum over the keys it may see and
leaves out the first position, which sees only itself (its weight is 1 by construction).  The
feed-forward codes, spectra and gradients are over every position, each seeing its prefix.

Mode: eval (the model has no dropout); gradients are taken with :func:`torch.autograd.grad`, so
no ``.grad`` is written, no hook is registered and no weight changes.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from ...precision import convert, full_precision
from ...outputs import CODE_ROWS, SPECTRA_TOKENS, FeedForwardCodes, LayerSpectra, WeightGradients
from ...spectra import covariance_eigenvalues
from ..base import ScoringContext, scoring_device
from .config import DecoderConfig
from .counts import param_counts
from .inputs import LMBatch, rows_within
from .model import DecoderModel, Observer



class _Statistics(Observer):
    """Reduces what a forward shows it on the fly: per (layer, head) the sum over the queries
    that see at least two keys of their largest weight, and the codes of the first rows."""

    def __init__(self, code_rows: int = CODE_ROWS):
        self.code_rows = code_rows
        self.confidence: Dict[int, torch.Tensor] = {}
        self.codes: Dict[Tuple[int, int], torch.Tensor] = {}
        self.code_row = None

    @torch.no_grad()
    def attention(self, layer, probs):
        top = probs.detach()[:, :, 1:, :].amax(dim=-1)  # (B, heads, T-1): queries past the first
        self.confidence[layer] = full_precision(top).mean(dim=(0, 2))  # bfloat16 probabilities: a float32 mean

    @torch.no_grad()
    def feed_forward(self, layer, hidden):
        h = hidden.detach()[: self.code_rows]  # GELU(x) > 0 exactly when x > 0: the pre-activation's sign
        rows, t = h.shape[0], h.shape[1]
        self.codes[(layer, 0)] = (h > 0).reshape(rows * t, -1)
        self.code_row = torch.arange(rows, device=h.device).repeat_interleave(t)


class GPT2Context(ScoringContext):
    """One decoder configuration + one :class:`LMBatch` + one seed.  ``input_ids``: the rows
    scored, the batch's re-cut to the model's positions where they are longer."""

    offers = frozenset({"parameters", "weights", "weight_gradients", "split_gradients", "attention_confidence",
                        "head_gates", "ffn_codes", "layer_spectra"})

    def __init__(self, config: DecoderConfig, batch: LMBatch, *, seed: int = 0, device=None,
                 dtype: Optional[str] = None):
        super().__init__(config, batch, seed=seed, device=device)
        self.dtype = dtype  # the precision the model is built in (None: float32)
        if not isinstance(batch, LMBatch):
            raise TypeError(f"the gpt2 space needs an LMBatch, got {type(batch).__name__}")
        self.input_ids = rows_within(batch.input_ids, config.tgt_len).to(self.device)

    @classmethod
    def of_model(cls, model: DecoderModel, batch: LMBatch, *, seed: int = 0, device=None) -> "GPT2Context":
        """A context scoring an existing model (never rebuilt or modified); ``device``: the
        model's own when None, another device is refused."""
        own = scoring_device(model, device)
        ctx = cls(model.config, batch, seed=seed, device=own)
        ctx.cache["model"] = model
        return ctx

    @property
    def config(self) -> DecoderConfig:
        return self.arch

    def model(self) -> DecoderModel:
        return self.cached("model", lambda: convert(DecoderModel(self.config, seed=self.seed).to(self.device),
                                                    self.dtype))

    # -- capabilities -----------------------------------------------------------------------
    def param_count(self) -> int:
        return param_counts(self.config)["total"]

    def nonembedding_param_count(self) -> int:
        """The release's ``nonembedding``: attention, feed-forward and every LayerNorm."""
        return param_counts(self.config)["nonembedding"]

    def weights(self, role: str) -> List[Tuple[str, torch.Tensor]]:
        """``attention_input``: query/key/value; ``attention``: those and the output projection;
        ``feed_forward``: up and down projections."""
        parts = {"attention_input": ("attn.query", "attn.key", "attn.value"),
                 "attention": ("attn.query", "attn.key", "attn.value", "attn.out"),
                 "feed_forward": ("ffn.up", "ffn.down")}
        if role not in parts:
            raise ValueError(f"unknown weight role {role!r}; valid: {', '.join(parts)}")
        model = self.model()
        out = []
        for i, layer in enumerate(model.layers):
            for part in parts[role]:
                block, name = part.split(".")
                out.append((f"layers.{i}.{part}.weight", getattr(getattr(layer, block), name).weight))
        return out

    def head_counts(self) -> List[int]:
        return list(self.config.n_head)

    def gradients(self) -> WeightGradients:
        if "gradients" not in self.cache:
            self.cache["gradients"] = self._gradient_pass()
        return self.cache["gradients"]

    def split_gradients(self, n_splits: int = 2) -> List[Dict[str, torch.Tensor]]:
        """One forward + backward of the LM loss per contiguous part of the batch's rows."""
        key = ("split_gradients", int(n_splits))
        if key not in self.cache:
            rows = self.input_ids.shape[0]
            if not 2 <= n_splits <= rows:
                raise ValueError(f"n_splits must be in 2..{rows} (the batch's rows), got {n_splits}")
            model = self.model()
            names, params = zip(*[(n, w) for role in ("attention", "feed_forward") for n, w in self.weights(role)])
            out = []
            for part in torch.tensor_split(torch.arange(rows), int(n_splits)):
                with torch.enable_grad():
                    loss = model.loss(self.input_ids[part.to(self.device)])
                    out.append(dict(zip(names, torch.autograd.grad(loss, params))))
            self.cache[key] = out
        return self.cache[key]

    def head_gate_gradients(self) -> Dict[int, torch.Tensor]:
        return self.gradients().head_gate_grads

    def forward_stats(self) -> _Statistics:
        """Forward statistics: from the gradient pass if it ran, else one no-grad forward."""
        if "stats" not in self.cache:
            stats = _Statistics()
            with torch.no_grad():
                self.model().hidden_states(self.input_ids, stats)
            self.cache["stats"] = stats
        return self.cache["stats"]

    def attention_confidence(self) -> Dict[int, torch.Tensor]:
        return self.forward_stats().confidence

    def softmax_confidence(self) -> Dict[int, torch.Tensor]:
        """Attention is the only softmax mixing in a GPT-2 block."""
        return self.forward_stats().confidence

    def ffn_codes(self) -> FeedForwardCodes:
        stats = self.forward_stats()
        return FeedForwardCodes(stats.codes, stats.code_row, stats.code_rows)

    def spectra(self, tokens: int = SPECTRA_TOKENS) -> LayerSpectra:
        """Token-covariance eigenvalues of each attention output after its output projection
        (``mix``), each feed-forward intermediate after GELU (``ffn``) and each layer's output
        (``out``), over the first rows holding ``tokens`` tokens; cached."""
        key = ("spectra", int(tokens))
        if key in self.cache:
            return self.cache[key]
        model = self.model()
        ids = self.input_ids
        rows = max(1, min(ids.shape[0], -(-int(tokens) // ids.shape[1])))
        ids = ids[:rows]
        keep = slice(0, int(tokens))
        out: Dict[str, List[Tuple[int, int, torch.Tensor]]] = {"mix": [], "ffn": [], "out": []}

        def flat(x):
            return x.reshape(-1, x.shape[-1])[keep]

        with torch.no_grad():
            x = model.embed(ids)
            for i, layer in enumerate(model.layers):
                m = layer.attn(layer.ln_1(x), i)
                out["mix"].append((i, 0, covariance_eigenvalues(flat(m))))
                x = x + m
                h = F.gelu(layer.ffn.up(layer.ln_2(x)), approximate="tanh")
                out["ffn"].append((i, 0, covariance_eigenvalues(flat(h))))
                x = x + layer.ffn.down(h)
                out["out"].append((i, 0, covariance_eigenvalues(flat(x))))
        self.cache[key] = LayerSpectra(**out)
        return self.cache[key]

    def _gradient_pass(self) -> WeightGradients:
        model = self.model()
        stats = _Statistics()
        names, params = zip(*[(n, w) for role in ("attention", "feed_forward") for n, w in self.weights(role)])
        with torch.enable_grad():
            embedded = model.embed(self.input_ids).detach().requires_grad_(True)
            gates = [torch.ones(h, device=self.device, dtype=embedded.dtype, requires_grad=True)
                     for h in self.config.n_head]
            loss = model.loss(self.input_ids, stats, gates, inputs_embeds=embedded)
            grads = [full_precision(g) for g in torch.autograd.grad(loss, [embedded, *gates, *params])]
        self.cache["stats"] = stats
        n = len(gates)
        return WeightGradients(float(loss.detach()), dict(zip(names, grads[1 + n:])), grads[0],
                               {i: g for i, g in enumerate(grads[1:1 + n])})
