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
import numbers
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .errors import BadInputError


@dataclasses.dataclass(frozen=True)
class SizeBudget:
    """``max_params`` (every parameter, tied ones once), ``max_nonembedding_params`` (without the
    embedding tables: LTS's "decoder parameters") and/or ``max_flops`` (forward FLOPs per token);
    None = no limit.  Checked when made: positive numbers only."""

    max_params: Optional[float] = None
    max_flops: Optional[float] = None
    max_nonembedding_params: Optional[float] = None

    #: the keyword arguments every adapter takes for a budget
    FIELDS = ("max_params", "max_nonembedding_params", "max_flops")

    @classmethod
    def pop_from(cls, fields: Dict[str, Any]) -> "SizeBudget":
        """The budget in keyword arguments (removed from ``fields``)."""
        return cls(**{k: fields.pop(k) for k in cls.FIELDS if k in fields})

    def __post_init__(self):
        for field in self.FIELDS:
            v = getattr(self, field)
            if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real) or not v > 0
                                  or not math.isfinite(v)):
                raise BadInputError(field, f"must be a positive number, got {v!r}")

    @property
    def active(self) -> bool:
        return any(getattr(self, f) is not None for f in self.FIELDS)

    def check_space(self, space: str) -> None:
        """A FLOPs budget needs a space that counts FLOPs (before any work)."""
        from .spaces import get_space

        sp = get_space(space)
        if self.max_flops is not None and sp.flops(sp.smoke_architecture()) is None:
            raise BadInputError("max_flops", f"the {space!r} space does not count FLOPs; use max_params")
        if self.max_nonembedding_params is not None and sp.nonembedding_param_count(sp.smoke_architecture()) is None:
            raise BadInputError("max_nonembedding_params", f"the {space!r} space does not count non-embedding "
                                                           "parameters; use max_params")

    def sizes(self, space: Optional[str], arch, options: Optional[Mapping[str, Any]] = None) -> Dict[str, float]:
        """``{"params": n, "flops": f}`` of an architecture (a space's) or a candidate of a user's
        NNI space (``build(seed)``, then its parameters counted); FLOPs only where counted."""
        if space is None:
            if self.max_nonembedding_params is not None or self.max_flops is not None:
                raise BadInputError("max_params", "a user's own model space is budgeted by max_params only")
            model = arch.build(0) if hasattr(arch, "build") else arch
            return {"params": float(sum(p.numel() for p in {id(p): p for p in model.parameters()}.values()))}
        from .spaces import get_space

        sp = get_space(space)
        out: Dict[str, float] = {}
        n = sp.param_count(arch, **dict(options or {}))
        if n is None:
            with sp.context(arch, sp.smoke_batch(), **dict(options or {})) as ctx:
                n = ctx.param_count()
        out["params"] = float(n)
        f = sp.flops(arch, **dict(options or {}))
        if f is not None:
            out["flops"] = float(f)
        ne = sp.nonembedding_param_count(arch, **dict(options or {}))
        if ne is not None:
            out["nonembedding_params"] = float(ne)
        return out

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
        return "over budget: " + "; ".join(reasons) if reasons else None


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


def size_note(space: str, proxy: str, budget: SizeBudget, samples: int = 8) -> Optional[str]:
    """A warning (one line) when ``proxy`` ranks bigger models higher by construction
    (``scales_with_size``) and ``space`` varies model size while ``budget`` sets no limit: the
    search would mostly return the space's biggest models.  None otherwise."""
    import numpy as np

    from .proxies import get_proxy
    from .proxies.base import parse_proxy_spec
    from .spaces import get_space

    if budget.active:
        return None
    name = parse_proxy_spec(proxy)[0]
    impl = get_proxy(name).impl(space)
    if not impl.scales_with_size:
        return None
    sp = get_space(space)
    rng = np.random.default_rng(0)
    sizes = {sp.param_count(sp.sample(rng)) for _ in range(samples)}
    if len(sizes) < 2 or None in sizes:
        return None
    return (f"note: {name} grows with model size ({impl.size}); the {space} space varies size "
            f"({min(sizes):,}..{max(sizes):,} parameters in {samples} samples), so this search tends to return its "
            "biggest models: set a size budget (max_params / max_nonembedding_params / max_flops), or use a "
            "size-normalised variant")
