"""Divergence-aware RNN proxies: the dynamics of the untrained recurrence over time.

Mechanism (stated before any measurement).  Hidden covariance sees how decorrelated the units
of the *untrained* cell are; it cannot see that a cell's recurrence will blow up once training
grows its weights, which is why 22% of NAS-Bench-NLP cells diverge while scoring well.  The
finite-time maximal Lyapunov exponent ``lambda`` of the state map ``h_t -> h_{t+1}`` (driven
by real inputs) measures exactly that: ``lambda > 0`` means perturbations (and gradients
through time) grow exponentially, ``lambda << 0`` means the cell forgets its context within a
few steps.  Untrained weights U(-1/sqrt(H), 1/sqrt(H)) have a spectral radius of about
1/sqrt(3); training moves recurrent networks towards unit radius (the edge of chaos), so the
exponent is also measured with every cell weight multiplied by ``gain`` = sqrt(3) (unit
spectral radius of each weight matrix).  ``gain`` was fixed from this argument, not tuned.

Passes.  One float64 forward of layer 1 (official sizes) over the first ``rows`` sequences of
the batch, step by step, for the reference trajectory and a perturbed twin (Benettin's
algorithm: the separation is renormalised to ``EPS`` after every step and its log growth
accumulated).  The same pass records the log magnitude of the reference state.  Cached per
(gain, rows) on the context, so the three proxies below share it.  Mode: eval, no dropout, no
autograd; the model's weights are never changed (the pass works on scaled copies).
"""
from __future__ import annotations

import math
import sys
from typing import Dict

import torch

from .base import Flagged, register_proxy
from .hidden_covariance import hidden_covariance

#: size of the perturbation kept between renormalisations (float64 state)
EPS = 1e-7
#: floor of a separation before its logarithm (a separation that underflows: fully contracted)
TINY = 1e-300
#: the gain that gives each U(-1/sqrt(H), 1/sqrt(H)) weight matrix unit spectral radius
UNIT_RADIUS_GAIN = math.sqrt(3.0)


def _scaled_copy(layer, gain: float):
    """A float64 copy of a CellLayer with every weight multiplied by ``gain`` (biases kept)."""
    import copy

    twin = copy.deepcopy(layer).double()
    with torch.no_grad():
        for p in twin.weights.values():
            p.mul_(float(gain))
    return twin


def dynamics(ctx, gain: float, rows: int, state_scale: float = 0.0) -> Dict[str, float]:
    """Lyapunov exponent (nats/step) and final log10 RMS state of layer 1 at ``gain``; cached.

    ``exploded`` is True when the reference state stopped being finite (the exponent then
    covers the steps before that).  ``state_scale`` > 0 starts the reference state at that RMS
    (seeded N(0, 1) draw) instead of zero: a trained network carries states of order 1.
    """
    return ctx.cached(("rnn_dynamics", float(gain), int(rows), float(state_scale)),
                      lambda: _dynamics(ctx, gain, rows, state_scale))


def _dynamics(ctx, gain: float, rows: int, state_scale: float) -> Dict[str, float]:
    embedded = ctx.layer_input()[:, : max(1, int(rows))]
    T, B = embedded.shape[:2]
    layer = _scaled_copy(ctx.cell_layer(1), gain)
    k = layer.cell.hidden_tuple_size
    H = layer.hidden_size
    gen = torch.Generator().manual_seed(ctx.seed * 7919 + 17)
    with torch.no_grad():
        xs = embedded.double()
        ref = [xs.new_zeros(B, H) for _ in range(k)]
        if state_scale:
            ref = [float(state_scale) * torch.randn(B, H, generator=gen, dtype=torch.float64).to(xs.device)
                   for _ in range(k)]
        direction = torch.randn(B, k * H, generator=gen, dtype=torch.float64).to(xs.device)  # drawn on the CPU
        direction = EPS * direction / direction.norm(dim=1, keepdim=True)
        pert = [r + direction[:, s * H:(s + 1) * H] for s, r in enumerate(ref)]
        log_growth = torch.zeros(B, dtype=torch.float64, device=xs.device)
        steps = 0
        exploded = False
        for t in range(T):  # both trajectories in one batch: one call per step
            _, both, _ = layer(xs[t:t + 1].repeat(1, 2, 1), state=[torch.cat([r, q]) for r, q in zip(ref, pert)])
            ref_cat = torch.cat([b[:B] for b in both], 1)
            pert_cat = torch.cat([b[B:] for b in both], 1)
            if not bool(torch.isfinite(ref_cat).all()):
                exploded = True
                break
            diff = pert_cat - ref_cat
            if not bool(torch.isfinite(diff).all()):  # the twin overflowed: maximal growth
                exploded = True
                break
            dist = diff.norm(dim=1).clamp_min(TINY)
            log_growth += torch.log(dist / EPS)
            steps += 1
            diff = diff * (EPS / dist)[:, None]
            ref = [b[:B] for b in both]
            pert = [r + diff[:, s * H:(s + 1) * H] for s, r in enumerate(ref)]
        rms = float(torch.cat(ref, 1).pow(2).mean().sqrt()) if steps else math.inf
    return {
        "lyapunov": float(log_growth.mean() / steps) if steps else math.inf,
        "log10_rms": math.log10(rms) if rms > 0 and math.isfinite(rms) else (math.inf if rms > 0 else -300.0),
        "exploded": exploded,
        "steps": steps,
    }


#: value given to a cell whose state overflowed float64 (documented fallback, flagged):
#: larger than any finite exponent a 70-step run can produce (log of float64's range / step)
EXPLODED_EXPONENT = math.log(sys.float_info.max)


@register_proxy(
    "recurrent_lyapunov",
    needs=("cell_graph", "cell_layers"),
    higher_is_better=False,
    cost="forward",
    size="a per-step exponent of the layer-1 recurrence, independent of width by construction",
    mode="eval (no dropout), no autograd; float64 copy of layer 1 with weights x gain",
    nan_policy=(
        "finite always: a state that overflows float64 is flagged and scored "
        "EXPLODED_EXPONENT (= log(float64 max) = 709.78, above any finite exponent): the worst value"
    ),
    bounds={"gain": (0.0, None), "rows": (1, None)},
)
def recurrent_lyapunov(ctx, gain: float = UNIT_RADIUS_GAIN, rows: int = 10) -> float:
    """Finite-time maximal Lyapunov exponent (nats per step) of layer 1's recurrence.

    Input: the first ``rows`` sequences of the batch (PTB test split with ``--corpus``), all
    time steps; every cell weight multiplied by ``gain`` (default sqrt(3): unit spectral
    radius, where training pushes recurrent weights).  Lower is better: a positive exponent
    means exploding perturbations and gradients, the divergence hidden covariance cannot see.
    """
    d = dynamics(ctx, gain, rows)
    if d["exploded"]:
        raise Flagged(f"state overflowed at gain {gain:g} after {d['steps']} steps", EXPLODED_EXPONENT)
    return d["lyapunov"]


@register_proxy(
    "edge_of_chaos",
    needs=("cell_graph", "cell_layers"),
    higher_is_better=True,
    cost="forward",
    size="a per-step exponent of the layer-1 recurrence, independent of width by construction",
    mode="eval (no dropout), no autograd; float64 copy of layer 1 with weights x gain",
    nan_policy="finite always: an overflowing state is flagged and scored -EXPLODED_EXPONENT (the worst value)",
    bounds={"gain": (0.0, None), "rows": (1, None)},
)
def edge_of_chaos(ctx, gain: float = UNIT_RADIUS_GAIN, rows: int = 10) -> float:
    """``-|lambda|``: distance of the recurrence from the edge of chaos (higher is better).

    Same pass as ``recurrent_lyapunov``.  Mechanism: ``lambda > 0`` explodes (divergence,
    exploding gradients), ``lambda << 0`` forgets the context within a few steps (vanishing
    gradients, a unigram-like model); trainable recurrences sit near ``lambda = 0``
    (Bertschinger & Natschlaeger 2004; Pennington et al. 2017).
    """
    d = dynamics(ctx, gain, rows)
    if d["exploded"]:
        raise Flagged(f"state overflowed at gain {gain:g} after {d['steps']} steps", -EXPLODED_EXPONENT)
    return -abs(d["lyapunov"])


@register_proxy(
    "hidden_covariance_stable",
    needs=("recurrent_states", "cell_graph", "cell_layers"),
    higher_is_better=True,
    cost="forward",
    size="hidden covariance's: a sum over hidden units (grows with width)",
    scales_with_size=True,
    mode="eval (no dropout), no autograd (hidden covariance pass + the float64 dynamics pass)",
    nan_policy=(
        "as hidden_covariance for its part (constant units flagged fallback; non-finite states "
        "NaN, flagged); a cell with lambda > 0 at the gain is not dropped but pushed below every "
        "stable cell (score - VETO), flagged; a cell whose untrained states are already "
        "non-finite scores -2 VETO (the worst), flagged: finite always"
    ),
    choices={"layer": (1, 2, 3)},
    bounds={"gain": (0.0, None), "rows": (1, None)},
)
def hidden_covariance_stable(ctx, layer: int = 1, gain: float = UNIT_RADIUS_GAIN, rows: int = 10) -> float:
    """Hidden covariance with a divergence veto: lexicographic (stable?, hidden covariance).

    A cell whose layer-1 recurrence is chaotic or exploding at unit-radius weights
    (``lambda > 0``, the sign of the exponent: no tuned threshold) is ranked below every cell
    that is not, and among each side by hidden covariance (layer ``layer``).  Unlike
    ``hidden_covariance:max_degree=1`` (structural, drops the cell), the veto is measured on the
    cell's own dynamics and keeps an order inside the vetoed cells.
    """
    try:
        hc, flag = hidden_covariance(ctx, layer=layer), None
    except Flagged as f:
        hc, flag = f.value, f.reason
    if not math.isfinite(hc):  # the untrained cell already explodes: below every vetoed cell
        raise Flagged(f"divergence veto: {flag or 'hidden covariance is not finite'}", -2 * VETO)
    d = dynamics(ctx, gain, rows)
    if d["exploded"] or d["lyapunov"] > 0:
        raise Flagged(f"divergence veto: lambda > 0 at gain {gain:g}" + (f"; {flag}" if flag else ""), hc - VETO)
    if flag:
        raise Flagged(flag, hc)
    return hc


#: offset of a vetoed cell; hidden covariance of a 600-unit layer lies within about +-2e7
VETO = 1e9


@register_proxy(
    "hidden_covariance_seeds",
    needs=("recurrent_states", "cell_graph", "cell_layers"),
    higher_is_better=True,
    cost="forward",
    size="hidden covariance's: a sum over hidden units (grows with width)",
    scales_with_size=True,
    mode="eval (no dropout), no autograd; n_seeds independently initialised models",
    nan_policy=(
        "mean over seeds of hidden_covariance: a seed whose value is a flagged fallback (constant "
        "units) enters with that value and the mean is flagged; a non-finite seed value gives "
        "NaN, flagged"
    ),
    choices={"layer": (1, 2, 3)},
    bounds={"n_seeds": (1, None)},
)
def hidden_covariance_seeds(ctx, layer: int = 1, n_seeds: int = 3) -> float:
    """Hidden covariance averaged over ``n_seeds`` weight initialisations.

    Mechanism: one untrained draw of the weights is a noisy sample of the cell's behaviour;
    the mean over draws estimates the cell's expected score, cutting the part of the ranking
    that belongs to the draw.  Seed ``i`` is ``ctx.seed + 1000 * i`` (i = 0 is the context's own
    model, so ``n_seeds=1`` equals ``hidden_covariance``).  Costs ``n_seeds`` layer forwards.
    """
    from .linalg import correlation_eigen_score

    vals, flags = [], []
    for i in range(max(1, int(n_seeds))):
        try:
            if i == 0:
                v = hidden_covariance(ctx, layer=layer)
            else:
                h = ctx.incoming_states_for_seed(layer, ctx.seed + 1000 * i)
                v = correlation_eigen_score(h.reshape(-1, h.shape[-1]).cpu().numpy())
        except Flagged as f:
            v = f.value
            flags.append(f"seed {i}: {f.reason}")
        if not math.isfinite(v):
            raise Flagged("; ".join(flags) or f"seed {i}: non-finite hidden covariance")
        vals.append(v)
    mean = float(sum(vals) / len(vals))
    if flags:
        raise Flagged("; ".join(flags), mean)
    return mean


@register_proxy(
    "hidden_covariance_bounded",
    needs=("recurrent_states", "cell_graph", "cell_layers"),
    higher_is_better=True,
    cost="forward",
    size="hidden covariance's: a sum over hidden units (grows with width)",
    scales_with_size=True,
    mode="eval (no dropout), no autograd (hidden covariance pass + a float64 layer-1 run from unit-RMS states)",
    nan_policy=(
        "finite always: as hidden_covariance for its part (constant units: flagged fallback); a "
        "cell whose state overflows float64 from order-1 states at the gain is scored "
        "hidden covariance - VETO, flagged; a cell whose untrained states are already non-finite "
        "scores -2 VETO, flagged"
    ),
    choices={"layer": (1, 2, 3)},
    bounds={"gain": (0.0, None), "rows": (1, None)},
)
def hidden_covariance_bounded(ctx, layer: int = 1, gain: float = UNIT_RADIUS_GAIN, rows: int = 10) -> float:
    """Hidden covariance with a measured blow-up veto (lexicographic: bounded?, hidden covariance).

    Mechanism: a cell diverges in training when its state grows without bound once the state
    and the weights reach trained magnitudes, which the untrained cell's small states hide.
    Layer 1 is run over the batch from states of RMS 1 with every weight x ``gain`` (unit
    spectral radius); a state that overflows float64 within the sequence (70 steps on the
    paper batch) grows super-exponentially (geometric growth would need a rate above e^10 per
    step), the signature of a state that multiplies itself.  Such cells rank below every cell
    that stays finite.  No tuned threshold: overflow or not.  This is the measured counterpart
    of ``hidden_covariance:max_degree=1`` (structural) and keeps an order among vetoed cells.

    (Added after a first look at 100 cells, where the ``lambda > 0`` veto of
    ``hidden_covariance_stable`` hurt: the exponent of small states sees chaos, not blow-up.)
    """
    try:
        hc, flag = hidden_covariance(ctx, layer=layer), None
    except Flagged as f:
        hc, flag = f.value, f.reason
    if not math.isfinite(hc):
        raise Flagged(f"blow-up veto: {flag or 'hidden covariance is not finite'}", -2 * VETO)
    d = dynamics(ctx, gain, rows, state_scale=1.0)
    if d["exploded"]:
        raise Flagged(f"blow-up veto: state overflowed after {d['steps']} steps from unit-RMS states"
                      + (f"; {flag}" if flag else ""), hc - VETO)
    if flag:
        raise Flagged(flag, hc)
    return hc


@register_proxy(
    "hidden_covariance_gain",
    needs=("cell_graph", "cell_layers"),
    higher_is_better=True,
    cost="forward",
    size="hidden covariance's: a sum over hidden units (grows with width)",
    scales_with_size=True,
    mode="eval (no dropout), no autograd; a copy of layer 1 with every weight x gain",
    nan_policy=(
        "as hidden_covariance: constant units are a flagged fallback (zero eigenvalues); "
        "non-finite states (the scaled cell explodes) give NaN, flagged"
    ),
    bounds={"gain": (0.0, None)},
)
def hidden_covariance_gain(ctx, gain: float = UNIT_RADIUS_GAIN) -> float:
    """Layer-1 hidden covariance of the cell with its weights at trained scale (x ``gain``).

    Mechanism: with U(-1/sqrt(H), 1/sqrt(H)) weights most pre-activations are small, so
    tanh/sigmoid act almost linearly and cells that differ in their nonlinearities look alike
    untrained; at unit spectral radius (where training takes recurrent weights) the
    nonlinearities saturate and the decorrelation of the hidden units reflects the operating
    point the cell will train in.  (Added after the 1000-cell results of the other variants.)
    """
    from .linalg import correlation_eigen_score

    layer = _scaled_copy(ctx.cell_layer(1), gain).float()
    with torch.no_grad():
        _, _, inc = layer(ctx.layer_input(), record_inputs=True)
    return correlation_eigen_score(inc.reshape(-1, inc.shape[-1]).cpu().numpy())
