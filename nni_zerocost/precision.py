"""Scoring a model in another floating-point precision (the ``dtype`` option).

``float32`` is the default and changes nothing.  ``bfloat16`` halves the memory of the weights
and activations (CPU and CUDA); ``float16`` is for CUDA only (CPU kernels for it are few and
slow, and its range overflows in untrained models' logits more easily).  The scores then differ
from float32's by bfloat16's rounding: docs/your-own-model.md gives the measured effect on
rankings.  Losses are formed from float32 logits, and the spectra and norms are computed in
float64 from the low-precision tensors.

:func:`scored_in` converts a model that must be given back as it was (a model object of yours):
each floating-point parameter and buffer gets a converted ``.data`` for the block and its own
storage back after, bit for bit (the float32 weights are kept meanwhile: 1.5x the weights'
memory for bfloat16).  A model built for the scoring alone (a recipe, a space's candidate) is
simply converted (:func:`convert`).
"""
from __future__ import annotations

import contextlib
from typing import Iterator, List, Optional, Tuple

import torch

from .errors import BadInputError

#: the precisions the ``dtype`` option takes, the default first
DTYPES = ("float32", "bfloat16", "float16")
#: the option's help, one for every space taking it
DTYPE_HELP = ("precision the model is scored in: float32 (default), bfloat16, float16 (CUDA only); a model object "
              "of yours is given back as it was")


def torch_dtype(name: Optional[str]) -> torch.dtype:
    if name is None:
        return torch.float32
    if name not in DTYPES:
        raise BadInputError("dtype", f"must be one of {', '.join(DTYPES)}, got {name!r}")
    return getattr(torch, name)


def check_dtype_device(name: Optional[str], device: torch.device) -> None:
    """float16 only on CUDA: one line naming ``dtype`` otherwise."""
    if name == "float16" and torch.device(device).type != "cuda":
        raise BadInputError("dtype", f"float16 is for CUDA devices only, not {torch.device(device).type}: use "
                                     "bfloat16 on the CPU")


def _floating(model: torch.nn.Module) -> List[torch.Tensor]:
    seen = {}
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            seen.setdefault(id(t), t)
    return list(seen.values())


def full_precision(t: torch.Tensor) -> torch.Tensor:
    """A low-precision (bfloat16, float16) tensor as float32, so that sums over millions of
    products are not rounded to 8 bits and float32-only kernels (SVD) take it; float32 and
    float64 as they are (no copy)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def convert(model: torch.nn.Module, name: Optional[str]) -> torch.nn.Module:
    """A model built for the scoring, converted in place (float32: as it is)."""
    dtype = torch_dtype(name)
    if dtype != torch.float32:
        model.to(dtype=dtype)
    return model


@contextlib.contextmanager
def scored_in(model: torch.nn.Module, name: Optional[str]) -> Iterator[torch.nn.Module]:
    """The model in precision ``name`` for the block; every parameter and buffer has its own
    storage (dtype, values, identity of the tensor objects) back after, also on error."""
    dtype = torch_dtype(name)
    saved: List[Tuple[torch.Tensor, torch.Tensor]] = []
    try:
        for t in _floating(model):
            if t.dtype != dtype:
                saved.append((t, t.data))
                t.data = t.data.to(dtype)
        yield model
    finally:
        for t, data in saved:
            t.data = data


__all__ = ["DTYPES", "DTYPE_HELP", "torch_dtype", "check_dtype_device", "full_precision", "convert", "scored_in"]
