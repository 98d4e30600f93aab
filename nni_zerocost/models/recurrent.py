"""Scoring context of a user's recurrent language model (``nn.RNN``/``nn.LSTM``/``nn.GRU``, or
cells reporting their state with :func:`~nni_zerocost.models.report_state`).

The model takes token ids ``(B, T)`` and returns logits ``(B, T, vocab)`` (or a tuple starting
with them, or an output with ``.logits``); it is called as ``model(ids)``.

Recurrent layers, in forward order: every layer of every recurrent module counts (a 2-layer
``nn.LSTM`` is 2 layers), numbered in the order the forward first calls the module; a user cell
that reports its state is one layer.  A module called once per step (with its state carried by
the model) is one layer whose steps are the calls.

How the states are read.  A fused ``nn.LSTM`` hides the states of its inner layers, so while a
pass runs, a temporary forward hook on each recurrent module recomputes its output step by step
from its own weights (``torch.lstm_cell`` / ``gru_cell`` / ``rnn_tanh_cell`` / ``rnn_relu_cell``,
LSTM projections applied by hand) and returns that output, so the model goes on with it and every
state entering every step is a tensor of the autograd graph.  The recomputation agrees with the
fused kernel to float rounding (about 1e-7), not bit for bit; every pass of a context uses it,
so the values of one context are consistent.

Capabilities (per model):

* ``parameters``: every parameter (tied ones once); non-embedding = less every ``nn.Embedding``
  table and the output layer onto the vocabulary (weight and bias, tied or not);
* ``recurrent_states``: the hidden state ``h`` entering each step (LSTM: ``h``, not ``c``; step
  0's = the initial state), ``(T, B, H)``, no autograd;
* ``recurrent_gradients`` (torch recurrent modules only, not reporting cells, whose input the
  context cannot see): one forward + backward per (loss, noise) with the fields of the RNN
  :class:`~nni_zerocost.outputs.RecurrentGradients`; ``input_grad`` is w.r.t. the
  first recurrent module's input (``noise`` > 0 feeds the paper's noised copy of it), ``lm`` is
  the mean next-token cross-entropy of the model's logits, ``sum``/``square`` use the last
  recurrent layer's outputs.

Not offered: ``cell_graph`` (the NAS-Bench-NLP graph of a cell), so ``activation_distance``,
the Lyapunov proxies and ``synaptic_saliency:params=paper`` do not apply.  Bidirectional modules
see the future, so a model with one offers ``parameters`` only.  Rows with padding are refused
(a recurrent LM cannot skip them).
"""
from __future__ import annotations

import functools
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..errors import BadInputError
from ..outputs import RecurrentGradients
from . import passes
from .adapters import register_model_adapter
from .batch import ModelBatch
from .common import Hooks, ModelContext, check_logits, eval_mode, logits_of, next_token_loss
from .states import ACTIVE

_CELLS = {"GRU": torch.gru_cell, "RNN_TANH": torch.rnn_tanh_cell, "RNN_RELU": torch.rnn_relu_cell}
#: rows per chunk of GraSP's double backward (bounded memory; exact, as rows are independent)
HESSIAN_CHUNK = passes.HESSIAN_CHUNK


def recurrent_modules(model: torch.nn.Module) -> List[torch.nn.RNNBase]:
    return [m for m in model.modules() if isinstance(m, torch.nn.RNNBase)]


def _weights(module: torch.nn.RNNBase, layer: int):
    get = lambda name: getattr(module, f"{name}_l{layer}", None)  # noqa: E731
    return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"), get("weight_hr")


def recompute(module: torch.nn.RNNBase, x: torch.Tensor, hx, entering: List[List[torch.Tensor]]):
    """Run a unidirectional ``module`` step by step on time-major ``x`` (T, B, E) from ``hx``;
    appends the state entering every step to ``entering[layer]``; returns ``(output, h_n, c_n,
    last)``, ``last`` the tensors of the final state of each layer (``h_n`` stacks them)."""
    T, B = x.shape[0], x.shape[1]
    L, H = module.num_layers, module.hidden_size
    P = module.proj_size or H
    lstm = module.mode == "LSTM"
    if hx is None:
        h0 = x.new_zeros(L, B, P)
        c0 = x.new_zeros(L, B, H) if lstm else None
    else:
        h0, c0 = hx if lstm else (hx, None)
    inp, h_n, c_n = x, [], []
    for layer in range(L):
        w_ih, w_hh, b_ih, b_hh, w_hr = _weights(module, layer)
        h, c = h0[layer], c0[layer] if lstm else None
        outs = []
        for t in range(T):
            entering[layer].append(h)
            if lstm and w_hr is None:
                h, c = torch.lstm_cell(inp[t], (h, c), w_ih, w_hh, b_ih, b_hh)
            elif lstm:  # projected LSTM: torch.lstm_cell infers H from h, so the gates by hand
                gates = F.linear(inp[t], w_ih, b_ih) + F.linear(h, w_hh, b_hh)
                i, f, g, o = gates.chunk(4, 1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = F.linear(torch.sigmoid(o) * torch.tanh(c), w_hr)
            else:
                h = _CELLS[module.mode](inp[t], h, w_ih, w_hh, b_ih, b_hh)
            outs.append(h)
        h_n.append(h)
        if lstm:
            c_n.append(c)
        inp = torch.stack(outs)
    return inp, torch.stack(h_n), torch.stack(c_n) if lstm else None, h_n


class Recorder:
    """Records the recurrent layers of one forward (and, in a scoring pass, their states).

    ``recompute=False`` (the probe): only which modules run, in order.  ``grad=True``: states are
    kept in the autograd graph; ``input_noise`` (amplitude, draw) replaces the first module's
    input by the paper's noised copy.
    """

    def __init__(self, recompute: bool = True, grad: bool = False, noise: float = 0.0, draw=None):
        self.recompute, self.grad, self.noise, self.draw = recompute, grad, float(noise), draw
        self.order: List[Any] = []  # modules, first call first
        self.states: Dict[int, List[List[torch.Tensor]]] = {}  # id(module) -> per layer: step states
        self.outputs: Dict[int, List[torch.Tensor]] = {}  # id(module) -> last layer's output chunks (T, B, H)
        self.inputs: List[torch.Tensor] = []  # the first module's input chunks (T, B, E)
        self.returned: Dict[int, Tuple[torch.Tensor, List[torch.Tensor]]] = {}  # id(module) -> (h_n, its layers)
        self._cursor = 0

    def _slot(self, module, layers: int) -> List[List[torch.Tensor]]:
        if id(module) not in self.states:
            self.order.append(module)
            self.states[id(module)] = [[] for _ in range(layers)]
            self.outputs[id(module)] = []
        return self.states[id(module)]

    def report(self, module, state) -> None:
        """A user cell's state entering one step (see :func:`~nni_zerocost.models.report_state`)."""
        h = state[0] if isinstance(state, (tuple, list)) and state else state
        if not isinstance(h, torch.Tensor) or h.dim() not in (1, 2):
            raise BadInputError("model", "report_state(module, state): state must be a tensor (B, H), or a tuple "
                                         f"starting with one; got {type(h).__name__} {tuple(getattr(h, 'shape', ()))}")
        h = h.reshape(-1, h.shape[-1]) if h.dim() == 2 else h[None]
        self._slot(module, 1)[0].append(h if self.grad else h.detach())

    def hook(self, module, args, kwargs, output):
        """Forward hook on an ``nn.RNNBase``: the step-by-step recomputation replaces its output."""
        slot = self._slot(module, module.num_layers)
        if not self.recompute:
            return None
        x = args[0] if args else kwargs["input"]
        hx = args[1] if len(args) > 1 else kwargs.get("hx")
        if isinstance(x, torch.nn.utils.rnn.PackedSequence):
            raise BadInputError("model", f"its {type(module).__name__} takes a PackedSequence; nni-zerocost reads "
                                         "recurrent modules fed padded tensors only")
        unbatched = x.dim() == 2
        if unbatched:
            xt = x[:, None]
            hx = None if hx is None else tuple(h[:, None] for h in hx) if isinstance(hx, tuple) else hx[:, None]
        else:
            xt = x.transpose(0, 1) if module.batch_first else x
        if module is self.order[0]:
            xt = self._first_input(xt)
        entering: List[List[torch.Tensor]] = [[] for _ in range(module.num_layers)]
        out, h_n, c_n, last = recompute(module, xt, hx, entering)
        carried = self.returned.get(id(module))
        given = hx[0] if isinstance(hx, tuple) else hx
        if carried is not None and given is carried[0]:
            # the model carries the state we returned into this call: the state entering its first
            # step is the previous call's final state itself, so that its gradient is the total one
            # (through this call and through the previous call's output), as in one call
            for layer, steps in enumerate(entering):
                steps[0] = carried[1][layer]
        self.returned[id(module)] = (h_n, last)
        for layer, steps in enumerate(entering):
            slot[layer].extend(steps if self.grad else [s.detach() for s in steps])
        self.outputs[id(module)].append(out)
        if unbatched:
            out, h_n, c_n = out[:, 0], h_n[:, 0], None if c_n is None else c_n[:, 0]
        elif module.batch_first:
            out = out.transpose(0, 1)
        return (out, (h_n, c_n)) if module.mode == "LSTM" else (out, h_n)

    def _first_input(self, xt: torch.Tensor) -> torch.Tensor:
        """The first module's input as the gradients are taken w.r.t. it (noised if asked)."""
        if self.noise:
            fits = self.draw is not None and self._cursor + xt.shape[0] <= self.draw.shape[0] \
                and xt.shape[1:] == self.draw.shape[1:]
            if not fits:
                raise BadInputError("model", "its first recurrent layer's input does not follow the token batch "
                                             f"(input {tuple(xt.shape)}), so it cannot be noised")
            part = self.draw[self._cursor:self._cursor + xt.shape[0]]
            self._cursor += xt.shape[0]
            xt = passes.noised_input(xt, self.noise, part).requires_grad_(True)
        elif self.grad and not xt.requires_grad:
            xt = xt.detach().requires_grad_(True)
        self.inputs.append(xt)
        return xt

    def layers(self) -> List[Tuple[Any, int]]:
        """``(module, layer index inside it)`` of every recurrent layer, in forward order."""
        return [(m, i) for m in self.order for i in range(len(self.states[id(m)]))]


class RecurrentLMContext(ModelContext):
    """A user's recurrent LM: see the module docstring for what it offers and how."""

    def __init__(self, model: torch.nn.Module, batch: ModelBatch, *, seed: int = 0, device=None):
        super().__init__(model, batch, seed=seed, device=device)
        if self.batch.padded:
            raise BadInputError("batch", "has padding (attention_mask zeros); a recurrent LM is scored on full rows: "
                                         "pass token ids, a corpus file or (texts, tokenizer)")
        probe = self._probe()
        self._layers = probe.layers()
        self._rnn_layers = all(isinstance(m, torch.nn.RNNBase) for m, _ in self._layers)
        bidirectional = any(m.bidirectional for m in recurrent_modules(model))
        offers = {"parameters"}
        if self._layers and not bidirectional:
            offers.add("recurrent_states")
            if self._rnn_layers:
                offers.add("recurrent_gradients")
        self.offers = frozenset(offers)
        self.tokens = self.input_ids.t()  # (T, B), as the space contexts keep them

    # -- passes ---------------------------------------------------------------------------------
    def _run(self, recorder: Recorder, ids: Optional[torch.Tensor] = None):
        """One forward of the model with ``recorder`` active; returns its checked logits."""
        ids = self.input_ids if ids is None else ids
        with Hooks() as hooks:
            for m in recurrent_modules(self._model):
                hooks.forward(m, recorder.hook, with_kwargs=True)
            token = ACTIVE.set(recorder)
            try:
                out = self._model(ids)
            finally:
                ACTIVE.reset(token)
        return check_logits(logits_of(out), ids, self.batch.vocab_size, self.label)

    def _probe(self) -> Recorder:
        recorder = Recorder(recompute=False)
        with eval_mode(self._model), torch.no_grad():
            self._run(recorder, self.input_ids[:1, :2])
        return recorder

    def recurrent_layers(self) -> int:
        return len(self._layers)

    def incoming_states(self, layer: int) -> torch.Tensor:
        """``(T, B, H)``: the hidden state entering every step of ``layer`` (1-based, forward
        order; step 0's = the initial state), no autograd; one forward fills every layer."""
        if not 1 <= layer <= len(self._layers):
            raise ValueError(f"layer must be in 1..{len(self._layers)}, got {layer}")
        if "incoming" not in self.cache:
            recorder = Recorder()
            with eval_mode(self._model), torch.no_grad():
                self._run(recorder)
            self.cache["incoming"] = [torch.stack(recorder.states[id(m)][i]) for m, i in recorder.layers()]
        return self.cache["incoming"][layer - 1]

    def recurrent_parameter_names(self) -> List[str]:
        names = {id(p): n for n, p in self._model.named_parameters()}
        seen, out = set(), []
        for m in dict.fromkeys(m for m, _ in self._layers):
            for p in m.parameters():
                if id(p) in names and id(p) not in seen:
                    seen.add(id(p))
                    out.append(names[id(p)])
        return out

    def parameter_values(self, names) -> Dict[str, torch.Tensor]:
        named = dict(self._model.named_parameters())
        return {n: named[n].detach() for n in names}

    def _loss(self, recorder: Recorder, logits: torch.Tensor, loss: str, ids: torch.Tensor,
              n_pairs: Optional[int] = None) -> torch.Tensor:
        if loss == "lm":
            return next_token_loss(logits, ids, torch.ones_like(ids, dtype=torch.bool), n_pairs)
        last = torch.cat(recorder.outputs[id(recorder.order[-1])], 0)
        return last.sum() if loss == "sum" else 0.5 * (last * last).sum()

    def gradients(self, loss: str = "lm", noise: float = 0.0) -> RecurrentGradients:
        """One forward + backward of ``loss`` (``lm``, ``sum``, ``square``), cached per (loss,
        noise): gradients w.r.t. the first recurrent module's input, every parameter and every
        state entering steps 1..T-1 of every layer."""
        passes.check_loss(loss)
        key = ("gradients", loss, float(noise))
        if key in self.cache:
            return self.cache[key]
        B, T = self.input_ids.shape
        recorder = Recorder(grad=True, noise=float(noise))
        if noise:
            width = self._first_input_width()
            recorder.draw = self.cached(("noise_draw", width), lambda: passes.standard_noise((T, B, width), self.seed))
        names, params = zip(*self._model.named_parameters())
        with eval_mode(self._model), torch.enable_grad():
            logits = self._run(recorder)
            value = self._loss(recorder, logits, loss, self.input_ids)
            states = [recorder.states[id(m)][i] for m, i in recorder.layers()]
            flat = [s for steps in states for s in steps[1:]]
            wrt = [*recorder.inputs, *params, *flat]
            live = [w for w in wrt if w.requires_grad]
            got = iter(torch.autograd.grad(value, live, allow_unused=True)) if live else iter(())
            grads = [next(got) if w.requires_grad else None for w in wrt]
        grads = [torch.zeros_like(w) if g is None else g.detach() for w, g in zip(wrt, grads)]
        n_in = len(recorder.inputs)
        input_grad = torch.cat(grads[:n_in], 0)
        pgrads = grads[n_in:n_in + len(params)]
        sgrads = grads[n_in + len(params):]
        st, sg, i = [], [], 0
        for steps in states:
            n = len(steps) - 1
            st.append(torch.stack([s.detach() for s in steps[1:]]))
            sg.append(torch.stack(sgrads[i:i + n]))
            i += n
        result = RecurrentGradients(loss, float(noise), float(value.detach()), input_grad, tuple(st), tuple(sg),
                                     dict(zip(names, pgrads)))
        self.cache[key] = result
        return result

    def _first_input_width(self) -> int:
        """Features of the first recurrent layer's input (the noise draw's last dimension)."""
        first = self._layers[0][0]
        return int(first.input_size)

    def hessian_gradient(self, loss: str, names: Sequence[str]) -> Dict[str, torch.Tensor]:
        """GraSP's ``H g`` over the parameters ``names`` for the gradient of :meth:`gradients`,
        in chunks of ``HESSIAN_CHUNK`` rows (rows are independent: the chunks add up exactly)."""
        passes.check_loss(loss)
        names = tuple(names)
        key = ("hessian_gradient", loss, names)
        if key in self.cache:
            return self.cache[key]
        g = self.gradients(loss).param_grads
        B, T = self.input_ids.shape

        def chunk_loss(part):
            recorder = Recorder(grad=True)
            return self._loss(recorder, self._run(recorder, part), loss, part, n_pairs=B * (T - 1))

        parts = (self.input_ids[start:start + HESSIAN_CHUNK] for start in range(0, B, HESSIAN_CHUNK))
        with eval_mode(self._model):
            out = passes.accumulate_hessian_gradient((functools.partial(chunk_loss, p) for p in parts),
                                                     dict(self._model.named_parameters()), names, g)
        self.cache[key] = out
        return out


def reports_states(model: torch.nn.Module) -> bool:
    """Whether the model's forward reports cell states (one forward of two tokens)."""
    recorder = Recorder(recompute=False)
    try:
        with eval_mode(model), torch.no_grad():
            token = ACTIVE.set(recorder)
            try:
                model(torch.zeros(1, 2, dtype=torch.long, device=next(model.parameters()).device))
            finally:
                ACTIVE.reset(token)
    except Exception:  # not a model of token ids: the other adapters or the final error say so
        return False
    return bool(recorder.order)


@register_model_adapter("recurrent", lambda m: bool(recurrent_modules(m)) or reports_states(m))
def recurrent_context(model, batch, *, seed: int = 0, device=None) -> RecurrentLMContext:
    return RecurrentLMContext(model, batch, seed=seed, device=device)
