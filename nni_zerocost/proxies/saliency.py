"""Gradient-based baselines for recurrent cells: saliencies and pruning-at-init scores.

``synaptic_saliency`` and ``hidden_synaptic_saliency`` are the paper's (Serianni & Kalita
2023); ``grad_norm``, ``snip``, ``grasp`` and ``fisher`` are the pruning-at-init proxies of
Abdelfattah et al. (2021), adapted to a recurrent model:

* every parameter of the recurrent layers counts (all linear-node weights and biases of all
  three layers), not only ``nn.Linear`` modules; a weight reused at every time step simply has
  its gradient summed over steps by autograd;
* the loss is the real language-modelling loss by default (next-token cross-entropy through
  the tied decoder), the paper's label-free losses are options (``loss="lm"|"sum"|"square"``,
  see :class:`nni_zerocost.capabilities.RecurrentGradients`);
* ``fisher`` uses the activation-gradient formulation on the hidden states (NASLib's
  per-module hooks break on modules reused across time steps).

Each value needs one forward + backward per loss, shared through the context cache with every
other proxy of the same loss (GraSP adds one double-backward of its own).
"""
from __future__ import annotations

import math
from typing import List


from .base import Flagged, register_proxy

PARAM_SETS = {
    "cell": "every weight and bias of the recurrent layers",
    "paper": (
        "the paper's selection: the weights of every linear node except those of its first "
        "input (an off-by-one of the paper's code), plus the tied embedding/decoder matrix"
    ),
}
_MODE = "eval (no dropout); one forward + backward of the chosen loss (shared per loss)"
_NAN = "non-finite loss or gradients (an exploding cell) give NaN, flagged"


#: losses of a recurrent gradient pass (see the ``recurrent_gradients`` capability)
LOSSES = ("lm", "sum", "square")
_LOSS = {"loss": LOSSES}

def parameter_names(ctx, which: str = "cell") -> List[str]:
    """``named_parameters`` names of one of :data:`PARAM_SETS`."""
    if which not in PARAM_SETS:
        raise ValueError(f"unknown params {which!r}; valid: {', '.join(PARAM_SETS)}")
    return ctx.recurrent_parameter_names() if which == "cell" else ctx.paper_parameter_names()


def _checked(ctx, loss: str):
    passed = ctx.gradients(loss)
    if not math.isfinite(passed.value):
        raise Flagged(f"the {loss!r} loss is not finite (the cell explodes)")
    return passed


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise Flagged(f"non-finite {what} (the cell explodes)")
    return value


def _saliency(ctx, loss: str, params: str) -> float:
    names = parameter_names(ctx, params)  # validates ``params`` before any pass runs
    grads = _checked(ctx, loss).param_grads
    named = ctx.parameter_values(names)
    total = sum(float((named[n].double() * grads[n].double()).abs().sum()) for n in names)
    return _finite(total, "saliency")


@register_proxy(
    "synaptic_saliency", needs=("recurrent_gradients",), higher_is_better=True, cost="gradients", mode=_MODE,
    nan_policy=_NAN, size="a sum over every recurrent parameter (or hidden unit), so it grows with the model's size", scales_with_size=True,
    choices={**_LOSS, "params": tuple(PARAM_SETS)}, option_needs={"params=paper": ("cell_graph",)},
)
def synaptic_saliency(ctx, loss: str = "sum", params: str = "cell") -> float:
    """Synaptic saliency ``Σ |θ ⊙ ∂L/∂θ|`` (synflow-style, as the paper ran it).

    Default: the paper's label-free loss ``L = Σ`` last-layer outputs (its ``y.backward(ones)``)
    over every recurrent parameter.  ``params="paper"`` reproduces the published
    ``tfn_synaptic_saliency`` exactly: first input's weights of each linear node left out, the
    tied embedding included.  ``loss``: ``"sum"``, ``"square"`` (``y.backward(y)``) or
    ``"lm"``; with ``loss="lm"`` this equals ``snip``.
    """
    return _saliency(ctx, loss, params)


@register_proxy(
    "snip", needs=("recurrent_gradients",), higher_is_better=True, cost="gradients", mode=_MODE,
    nan_policy=_NAN, size="a sum over every recurrent parameter (or hidden unit), so it grows with the model's size", scales_with_size=True,
    choices=_LOSS,
)
def snip(ctx, loss: str = "lm") -> float:
    """SNIP connection sensitivity ``Σ |θ ⊙ ∂L/∂θ|`` over every recurrent parameter (Lee et al.
    2019), with the language-modelling loss by default."""
    return _saliency(ctx, loss, "cell")


@register_proxy(
    "grad_norm", needs=("recurrent_gradients",), higher_is_better=True, cost="gradients", mode=_MODE,
    nan_policy=_NAN, size="a sum over every recurrent parameter (or hidden unit), so it grows with the model's size", scales_with_size=True,
    choices=_LOSS,
)
def grad_norm(ctx, loss: str = "lm") -> float:
    """Sum over the recurrent parameter tensors of the Euclidean norm of ``∂L/∂θ``."""
    grads = _checked(ctx, loss).param_grads
    total = sum(float(grads[n].double().norm()) for n in parameter_names(ctx, "cell"))
    return _finite(total, "gradient norm")


@register_proxy(
    "grasp", needs=("recurrent_gradients",), higher_is_better=True, cost="gradients",
    mode=_MODE + ", plus one forward and double backward for the Hessian-gradient product", nan_policy=_NAN,
    size="a sum over every recurrent parameter (or hidden unit), so it grows with the model's size", scales_with_size=True,
    choices=_LOSS,
)
def grasp(ctx, loss: str = "lm") -> float:
    """GraSP ``Σ -θ ⊙ (H g)`` over every recurrent parameter (Wang et al. 2020), ``g = ∂L/∂θ``
    and ``H`` the Hessian of the loss w.r.t. those parameters (exact Hessian-vector product)."""
    _checked(ctx, loss)
    names = parameter_names(ctx, "cell")
    hg = ctx.hessian_gradient(loss, names)
    named = ctx.parameter_values(names)
    total = sum(float((-named[n].double() * hg[n].double()).sum()) for n in names)
    return _finite(total, "Hessian-gradient product")


@register_proxy(
    "fisher", needs=("recurrent_gradients",), higher_is_better=True, cost="gradients", mode=_MODE,
    nan_policy=_NAN, size="a sum over every recurrent parameter (or hidden unit), so it grows with the model's size", scales_with_size=True,
    choices=_LOSS,
)
def fisher(ctx, loss: str = "lm") -> float:
    """Fisher information of the hidden units (Theis et al. 2018, as in Abdelfattah et al.).

    Activation-gradient formulation on the recurrent state entering every step of every layer:
    per sequence b and unit u, ``s_bu = Σ_t h_tbu · ∂L/∂h_tbu`` (time plays the role of a conv
    layer's spatial positions), score ``Σ_u ½ mean_b s_bu²``.  ``∂L/∂h`` is the total
    derivative through the recurrence, so the reuse of weights across steps needs no hooks.
    """
    passed = _checked(ctx, loss)
    total = 0.0
    for h, g in zip(passed.states, passed.state_grads):
        s = (h.double() * g.double()).sum(0)  # (B, H)
        total += float(0.5 * (s * s).mean(0).sum())
    return _finite(total, "Fisher information")


@register_proxy(
    "hidden_synaptic_saliency", needs=("recurrent_gradients",), higher_is_better=True, cost="gradients", mode=_MODE,
    nan_policy=_NAN, size="a sum over every recurrent parameter (or hidden unit), so it grows with the model's size", scales_with_size=True,
    choices=_LOSS,
)
def hidden_synaptic_saliency(ctx, loss: str = "sum") -> float:
    """Saliency of the hidden states ``Σ |h ⊙ ∂L/∂h|`` (the paper's hidden synaptic saliency).

    Input: the state ``h_prev_0`` entering every step of every layer, with the total derivative
    of the loss through the recurrence.  The default label-free ``sum`` loss reproduces the
    published ``tfn_hidden_synaptic_saliency`` to float32 precision, except for cells whose
    output ``h_new_0`` also feeds another node of the same step: the paper's ``retain_grad`` on a
    view of the state missed that path (up to 5% lower there); ours is the total derivative.
    """
    passed = _checked(ctx, loss)
    total = sum(float((h.double() * g.double()).abs().sum()) for h, g in zip(passed.states, passed.state_grads))
    return _finite(total, "hidden saliency")
