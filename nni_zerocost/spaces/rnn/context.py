"""Scoring context of one recurrent cell: the model, built lazily, and the cached passes."""
from __future__ import annotations

from typing import Dict, List, Optional

import torch

from ...data import TokenBatch
from ...errors import DataError
from ..base import ScoringContext, scoring_device
from . import passes
from .cell import Cell
from .model import EMSIZE, INIT_MODES, NHID, NLAYERS, VOCAB, RNNLanguageModel, layer_sizes


def param_count(cell: Cell, vocab_size: int = VOCAB, emsize: int = EMSIZE, nhid: int = NHID) -> int:
    """Parameters of the full AWD-RNN model of ``cell`` (embedding tied with the decoder, plus the
    decoder bias), counted from the cell alone."""
    n = vocab_size * emsize + vocab_size  # embedding + decoder bias
    for inp, hid in layer_sizes(emsize, nhid):
        for _, node in cell.nodes:
            if node.op == "linear":
                n += hid + sum(hid * (inp if s == "x" else hid) for s in node.inputs)
    return n


class RNNContext(ScoringContext):
    """Scoring context of one cell: lazily built model and cached passes.

    Mode: the model is always evaluated without dropout (the official model in ``eval()``),
    which is what the paper did.

    Passes shared by several proxies (:mod:`.passes`) run once per
    context and are cached: :meth:`activation_kernel`, :meth:`gradients` (one per loss and
    input noise), :meth:`hessian_gradient`.  None of them writes the model's weights or
    ``.grad`` fields or leaves a hook behind.
    """

    offers = frozenset({"parameters", "recurrent_states", "recurrent_gradients", "cell_graph", "cell_layers"})

    def __init__(self, cell: Cell, batch: TokenBatch, *, seed: int = 0, device=None, init: str = "official",
                 emsize: int = EMSIZE, nhid: int = NHID):
        super().__init__(cell, batch, seed=seed, device=device)
        self.emsize, self.nhid = int(emsize), int(nhid)
        if init not in INIT_MODES:
            raise ValueError(f"init must be one of {INIT_MODES}, got {init!r}")
        self.init = init
        self.tokens = batch.tokens
        if self.tokens.dim() != 2:
            raise DataError(f"token batch must be (T, B), got shape {tuple(self.tokens.shape)}")
        if self.tokens.numel() == 0:
            raise DataError("token batch is empty")
        if int(self.tokens.max()) >= batch.vocab_size or int(self.tokens.min()) < 0:
            raise DataError(f"token ids must lie in [0, {batch.vocab_size}); got {int(self.tokens.min())}..{int(self.tokens.max())}")
        self.tokens = self.tokens.to(self.device)  # a no-op on the CPU

    @classmethod
    def of_model(cls, model: RNNLanguageModel, batch: TokenBatch, *, seed: int = 0, device=None) -> "RNNContext":
        """A context scoring an existing model (not rebuilt; never modified).  ``device``: the
        model's own when None; another device is refused (moving would change the caller's model)."""
        own = scoring_device(model, device)
        if model.depth != model.nlayers:
            raise ValueError(f"the model has only {model.depth} of its {model.nlayers} layers built")
        ctx = cls(model.cell, batch, seed=seed, device=own, init=model.init, emsize=model.emsize, nhid=model.nhid)
        ctx.cache["model"] = model
        ctx.cache["canonical_cell"] = model.cell
        return ctx

    @property
    def cell(self) -> Cell:
        return self.arch

    @property
    def built_cell(self) -> Cell:
        """The cell the model is built from: the exact recipe for ``compat`` (it replays the
        official recipe-order random stream), else the canonical representative, so that
        isomorphic cells get bit-identical models and scores (and the store's de-duplication
        by canonical hash is exact)."""
        return self.cell if self.init == "compat" else self.cached("canonical_cell", self.cell.canonical)

    def model(self, depth: Optional[int] = None) -> RNNLanguageModel:
        """The model with at least ``depth`` layers built (all layers when None)."""
        want = NLAYERS if depth is None or self.init == "compat" else depth
        m = self.cache.get("model")
        if m is None:
            m = RNNLanguageModel(self.built_cell, vocab_size=self.batch.vocab_size, emsize=self.emsize,
                                 nhid=self.nhid, seed=self.seed, init=self.init, depth=want)
            m.eval()
            if self.device.type != "cpu":  # drawn on the CPU, moved: the same weights on every device
                m.to(self.device)
            self.cache["model"] = m
        elif m.depth < want:
            m.grow(want)
        return m

    def incoming_states(self, layer: int) -> torch.Tensor:
        """``h_prev_0`` entering every step of ``layer`` (1-based): (T, B, H), no autograd."""
        if not 1 <= layer <= NLAYERS:
            raise ValueError(f"layer must be in 1..{NLAYERS}, got {layer}")
        key = ("incoming", layer)
        if key not in self.cache:
            model = self.model(layer)
            done = max([i for i in range(1, layer) if ("output", i) in self.cache], default=0)
            with torch.no_grad():
                start = self.cache[("output", done)] if done else model.embed(self.tokens)
                # continue from the deepest layer already run
                trace = model.run_layers(start, first=done + 1, upto=layer, record_inputs=True)
                for i, (out, inc) in enumerate(trace, start=done + 1):
                    self.cache[("output", i)] = out
                    self.cache[("incoming", i)] = inc
        return self.cache[key]

    def activation_kernel(self):
        """``(K, n_codes)``: the NASWOT binary-code kernel over all layers (B, B) and the number
        of codes per sequence.  Its forward also caches the entering states of every layer."""
        if "activation_kernel" not in self.cache:
            K, n_codes, incoming = passes.activation_kernel(self.model(), self.tokens)
            self.cache["activation_kernel"] = (K, n_codes)
            for i, inc in enumerate(incoming, start=1):
                self.cache.setdefault(("incoming", i), inc)
        return self.cache["activation_kernel"]

    def layer_input(self, noise: float = 0.0) -> torch.Tensor:
        """The embedding output (T, B, E), or the paper's noised copy
        ``emb + noise * var_batch(emb) * N(0, 1)`` (one N(0, 1) draw per context, seeded)."""
        key = ("layer_input", float(noise))
        if key not in self.cache:
            with torch.no_grad():
                emb = self.model(1).embed(self.tokens)  # the embedding is built with layer 1
            if noise:
                draw = self.cached("noise", lambda: passes.standard_noise(emb.shape, self.seed))
                emb = passes.noised_input(emb, float(noise), draw)
            self.cache[key] = emb
        return self.cache[key]

    def gradients(self, loss: str = "lm", noise: float = 0.0) -> "passes.GradientPass":
        """One forward + backward of ``loss`` (see ``passes.LOSSES``), cached per (loss,
        noise): gradients w.r.t. the layer-1 input, every parameter and every entering state.
        ``noise`` > 0 feeds the noised layer input (:meth:`layer_input`) instead of the
        embedding."""
        passes.check_loss(loss)
        key = ("gradients", loss, float(noise))
        if key not in self.cache:
            x = self.layer_input(noise) if noise else None
            self.cache[key] = passes.gradient_pass(self.model(), self.tokens, loss, x, float(noise))
        return self.cache[key]

    def hessian_gradient(self, loss: str, names) -> Dict[str, torch.Tensor]:
        """GraSP's Hessian-gradient product ``H g`` over the parameters ``names`` (cached)."""
        names = tuple(names)
        key = ("hessian_gradient", loss, names)
        if key not in self.cache:
            g = self.gradients(loss).param_grads
            self.cache[key] = passes.hessian_gradient(self.model(), self.tokens, loss, names, g)
        return self.cache[key]

    # -- capabilities -----------------------------------------------------------------------
    def param_count(self) -> int:
        """Parameters of the full official PTB model (embedding tied with the decoder)."""
        return param_count(self.cell, self.batch.vocab_size, self.emsize, self.nhid)

    def nonembedding_param_count(self) -> int:
        """The recurrent layers' weights and biases (the tied embedding/decoder and the decoder
        bias left out)."""
        return self.param_count() - self.batch.vocab_size * (self.emsize + 1)

    def recurrent_layers(self) -> int:
        return NLAYERS

    def parameter_values(self, names) -> Dict[str, torch.Tensor]:
        named = dict(self.model().named_parameters())
        return {n: named[n].detach() for n in names}

    def recurrence_degree(self) -> int:
        return self.cell.recurrence_degree

    def cell_layer(self, layer: int):
        """Layer ``layer`` (1-based) of the context's model (built up to it)."""
        if not 1 <= layer <= NLAYERS:
            raise ValueError(f"layer must be in 1..{NLAYERS}, got {layer}")
        return self.model(layer).layers[layer - 1]

    def incoming_states_for_seed(self, layer: int, seed: int) -> torch.Tensor:
        """The states entering every step of ``layer`` of the model drawn with ``seed`` (the
        same cell, sizes and init; drawn on the CPU, moved); cached per (layer, seed)."""
        if int(seed) == self.seed:
            return self.incoming_states(layer)
        key = ("incoming_for_seed", int(layer), int(seed))
        if key not in self.cache:
            model = RNNLanguageModel(self.built_cell, vocab_size=self.batch.vocab_size, emsize=self.emsize,
                                     nhid=self.nhid, seed=int(seed), init=self.init,
                                     depth=None if self.init == "compat" else layer)
            model.eval().to(self.tokens.device)
            with torch.no_grad():
                trace = model.run_layers(model.embed(self.tokens), upto=layer, record_inputs=True)
            self.cache[key] = trace[-1][1]
        return self.cache[key]

    def recurrent_parameter_names(self) -> List[str]:
        model = self.model()
        names = {id(p): n for n, p in model.named_parameters()}
        return [names[id(p)] for layer in model.layers for p in layer.parameters()]

    def paper_parameter_names(self) -> List[str]:
        """The paper's selection: the weights of every linear node except those of its first
        input (an off-by-one of the paper's code), plus the tied embedding/decoder matrix."""
        model = self.model()
        names = {id(p): n for n, p in model.named_parameters()}
        out = []
        for layer in model.layers:
            for official, p in layer.official_parameter_order():
                kind = official.rsplit(".", 1)[1]  # "b" or "w<i>"
                if kind.startswith("w") and int(kind[1:]) >= 1:
                    out.append(names[id(p)])
        return out + [names[id(model.encoder.weight)]]
