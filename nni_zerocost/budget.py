"""Search under a size budget: the best model with at most N parameters or F FLOPs.

Size-like proxies rank bigger models higher (every ``scales_with_size`` proxy), so maximising one
over a whole space returns its biggest model.  What a user asks is the best model *under a
budget*.  A :class:`SizeBudget` admits an architecture by its size, measured from the
architecture alone wherever the space can count it (:meth:`SearchSpace.param_count`,
:meth:`SearchSpace.flops`), so a candidate over budget costs no model work; a user's own NNI
model space has no such count, so its model is built and its parameters counted (no forward).

:func:`pareto_front` gives the candidates no other beats on both proxy score and size.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple



@dataclasses.dataclass(frozen=True)
class SizeBudget:
    """``max_params`` (every parameter, tied ones once), ``max_nonembedding_params`` (without the
    embedding tables: LTS's "decoder parameters") and/or ``max_flops`` (forward FLOPs per token);
    None = no limit.  A value type: the job checks the numbers (:func:`nni_zerocost.job.check_job`)."""

    max_params: Optional[float] = None
    max_nonembedding_params: Optional[float] = None
    max_flops: Optional[float] = None
    max_layers: Optional[float] = None

    #: the fields, in the order reports name them (each is a job field and a search flag)
    FIELDS = ("max_params", "max_nonembedding_params", "max_flops", "max_layers")

    @property
    def active(self) -> bool:
        return any(getattr(self, f) is not None for f in self.FIELDS)

    def limits(self) -> Dict[str, float]:
        return {f: getattr(self, f) for f in self.FIELDS if getattr(self, f) is not None}

    def over(self, sizes: Mapping[str, float]) -> Optional[str]:
        """Why ``sizes`` break the budget (one line), or None when they fit."""
        reasons = []
        if self.max_params is not None and sizes.get("params", 0.0) > self.max_params:
            reasons.append(f"{sizes['params']:.4g} parameters > {self.max_params:.4g}")
        if self.max_nonembedding_params is not None and \
                sizes.get("nonembedding_params", 0.0) > self.max_nonembedding_params:
            reasons.append(f"{sizes['nonembedding_params']:.4g} non-embedding parameters > "
                           f"{self.max_nonembedding_params:.4g}")
        if self.max_flops is not None and sizes.get("flops", 0.0) > self.max_flops:
            reasons.append(f"{sizes['flops']:.4g} FLOPs per token > {self.max_flops:.4g}")
        if self.max_layers is not None and sizes.get("n_layers", 0.0) > self.max_layers:
            reasons.append(f"{sizes['n_layers']:.0f} layers > {self.max_layers:.0f}")
        return "over budget: " + "; ".join(reasons) if reasons else None


def sizes(space, arch, options: Optional[Mapping[str, Any]] = None) -> Dict[str, float]:
    """``{"params": n, "nonembedding_params": m, "flops": f}`` of an architecture of ``space``
    (a :class:`~nni_zerocost.spaces.SearchSpace`), counted from the architecture where the space
    can (no model work), else from its built model (no forward); FLOPs and non-embedding
    parameters only where the space counts them."""
    options = dict(options or {})
    out: Dict[str, float] = {}
    n = space.param_count(arch, **options)
    if n is None:
        with space.context(arch, space.smoke_batch(), **options) as ctx:
            n = ctx.param_count()
    out["params"] = float(n)
    f = space.flops(arch, **options)
    if f is not None:
        out["flops"] = float(f)
    ne = space.nonembedding_param_count(arch, **options)
    if ne is not None:
        out["nonembedding_params"] = float(ne)
    depth = space.layer_count(arch, **options)
    if depth is not None:
        out["n_layers"] = float(depth)
    return out


def pareto_front(points: Sequence[Tuple[Optional[float], float]]) -> List[int]:
    """Indices of the points ``(score, size)`` that no other point beats on both (a higher or
    equal score with a smaller or equal size, one of them strictly), by increasing size.
    Points without a score are never on the front."""
    order = sorted((i for i, (s, _) in enumerate(points) if s is not None and math.isfinite(s)),
                   key=lambda i: (points[i][1], -points[i][0]))
    front, best = [], -math.inf
    for i in order:
        if points[i][0] > best:
            front.append(i)
            best = points[i][0]
    return front


def size_bias_note(proxy: str, sizes: Sequence[Optional[float]], scores: Sequence[Optional[float]],
                   top: int = 5, tau_above: float = 0.5, what: str = "parameters") -> Optional[str]:
    """One line when a search's result is driven by size, measured on the run itself: the
    candidates' Kendall tau between size and score is above ``tau_above`` *and* the ``top``
    best are bigger than the median candidate.  None otherwise (a proxy that grows with size
    in general may still rank this run's candidates by something else)."""
    import numpy as np
    from scipy import stats

    pairs = [(float(n), float(s)) for n, s in zip(sizes, scores)
             if n is not None and s is not None and math.isfinite(s)]
    if len(pairs) < max(8, top + 3):
        return None
    n, s = np.array(pairs).T
    if np.ptp(n) == 0 or np.ptp(s) == 0:
        return None
    tau = float(stats.kendalltau(n, s).statistic)
    best = n[np.argsort(-s, kind="stable")[:top]]
    if tau <= tau_above or float(np.median(best)) <= float(np.median(n)):
        return None
    return (f"note: {proxy} ranked this run's candidates largely by size (Kendall tau {tau:.2f} between {what} "
            f"and score over {len(pairs)} candidates; the top {len(best)} have a median of {np.median(best):,.0f} "
            f"{what} against {np.median(n):,.0f} for all): set a size budget (on parameters, non-embedding "
            "parameters or FLOPs per token) or look at the Pareto front")
