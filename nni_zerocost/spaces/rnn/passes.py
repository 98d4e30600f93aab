"""The forward/backward passes the RNN proxies share, run once per context and cached.

A proxy never runs the model itself: it asks its :class:`~.context.RNNContext`
for a pass (``ctx.activation_kernel()``, ``ctx.gradients(loss, noise)``,
``ctx.hessian_gradient(loss)``), which runs here the first time and comes from the context's
cache afterwards.  So asking for many proxies of one model costs one pass per *kind* of pass:

* activation kernel: one forward without autograd over all layers (NASWOT binary codes); the
  same forward also fills the hidden-state cache that ``hidden_covariance`` reads.
* gradients: one forward and one backward per (loss, input noise), differentiating with
  respect to everything any proxy reads, at once: the layer-1 input (the Jacobian), every
  parameter, and the recurrent state entering every step of every layer.
* Hessian-gradient product (GraSP only): one more forward with a double backward.

Everything uses :func:`torch.autograd.grad`: no ``.grad`` field of the model is written, no
hook is registered, and the weights are never touched, so a context can be scored in any order
and the model stays exactly as built.
"""
from __future__ import annotations

import functools
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

from ...models.passes import (  # noqa: E402,F401  (the generic recurrent passes, re-exported)
    HESSIAN_CHUNK, LOSSES, NOISE_AMPLITUDES, accumulate_hessian_gradient, check_loss, noised_input, standard_noise,
)
from ...outputs import RecurrentGradients as GradientPass  # noqa: E402  (the typed result, defined once)


def _loss_value(model, last: torch.Tensor, tokens: torch.Tensor, loss: str, n_tokens: Optional[int] = None):
    """``loss`` of the last layer's outputs; the ``lm`` mean is taken over ``n_tokens``
    predictions (default: this batch's), so that batch chunks add up to the whole batch's loss."""
    if loss == "sum":
        return last.sum()
    if loss == "square":
        return 0.5 * (last * last).sum()
    if tokens.shape[0] < 2:
        raise ValueError("the 'lm' loss needs at least 2 time steps (it predicts the next token)")
    logits = model.decode(last[:-1])
    total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[1:].reshape(-1), reduction="sum")
    return total / (n_tokens if n_tokens is not None else tokens[1:].numel())


def _forward(model, layer_input: torch.Tensor, record_states: bool):
    """Run every layer; return the last layer's outputs and the per-layer entering states."""
    states: List[List[torch.Tensor]] = [[] for _ in model.layers]
    observers = ((lambda layer, t, state: t > 0 and states[layer].append(state[0])),) if record_states else ()
    trace = model.run_layers(layer_input, state_observers=observers)
    return trace[-1][0], states


def gradient_pass(model, tokens: torch.Tensor, loss: str, layer_input: Optional[torch.Tensor] = None,
                  noise: float = 0.0) -> GradientPass:
    """One forward + backward of ``loss``; ``layer_input`` replaces the embedding output."""
    check_loss(loss)
    names, params = zip(*model.named_parameters())
    with torch.enable_grad():
        x = model.embed(tokens) if layer_input is None else layer_input.detach().requires_grad_(True)
        last, states = _forward(model, x, record_states=True)
        value = _loss_value(model, last, tokens, loss)
        flat = [s for seen in states for s in seen]
        wrt = [x, *params, *flat]
        live = [w for w in wrt if w.requires_grad]
        got = iter(torch.autograd.grad(value, live, allow_unused=True))
        grads = [next(got) if w.requires_grad else None for w in wrt]
    grads = [torch.zeros_like(w) if g is None else g.detach() for w, g in zip(wrt, grads)]
    input_grad, pgrads, sgrads = grads[0], grads[1:1 + len(params)], grads[1 + len(params):]
    B, H_of = tokens.shape[1], [layer.hidden_size for layer in model.layers]
    st, sg, i = [], [], 0
    for seen, H in zip(states, H_of):
        n = len(seen)
        st.append(torch.stack([s.detach() for s in seen]) if n else x.new_zeros(0, B, H))
        sg.append(torch.stack(sgrads[i:i + n]) if n else x.new_zeros(0, B, H))
        i += n
    return GradientPass(loss, float(noise), float(value.detach()), input_grad, tuple(st), tuple(sg),
                        dict(zip(names, pgrads)))


def hessian_gradient(model, tokens: torch.Tensor, loss: str, names: Sequence[str],
                     grads: Dict[str, torch.Tensor], chunk: int = HESSIAN_CHUNK) -> Dict[str, torch.Tensor]:
    """``H g`` restricted to the parameters ``names``, for the given gradient ``g`` (GraSP).

    Computed over chunks of ``chunk`` sequences (the model treats sequences independently) so
    that memory stays bounded; the result is the whole batch's ``H g``.
    """
    check_loss(loss)
    n_tokens = tokens[1:].numel()

    def chunk_loss(part):
        last, _ = _forward(model, model.embed(part), record_states=False)
        return _loss_value(model, last, part, loss, n_tokens)

    parts = (tokens[:, start:start + chunk] for start in range(0, tokens.shape[1], chunk))
    return accumulate_hessian_gradient((functools.partial(chunk_loss, p) for p in parts),
                                       dict(model.named_parameters()), names, grads)


def activation_kernel(model, tokens: torch.Tensor):
    """NASWOT kernel of the binary codes of every activation node, every step, every layer.

    ``K[i, j]`` = number of (node, step, unit) codes on which sequences ``i`` and ``j`` agree
    (code = output > 0), i.e. ``c cᵀ + (1 - c)(1 - c)ᵀ`` accumulated; exact in float64.
    Returns ``(K, n_codes, incoming)`` where ``incoming`` are the per-layer entering states
    (what ``hidden_covariance`` reads), recorded by the same forward.
    """
    B = tokens.shape[1]
    K = torch.zeros(B, B, dtype=torch.float64, device=tokens.device)
    n_codes = [0]

    def observe(name, op, out):
        c = (out > 0).to(torch.float64)
        K.add_(c @ c.T).add_((1 - c) @ (1 - c).T)
        n_codes[0] += c.shape[1]

    with torch.no_grad():
        trace = model.run_layers(model.embed(tokens), record_inputs=True, observers=(observe,))
    return K.cpu().numpy(), n_codes[0], [inc for _, inc in trace]


