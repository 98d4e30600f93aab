"""The recurrent passes every recurrent context shares: the paper's losses and input noise, and
GraSP's chunked Hessian-gradient product.  Generic: the NAS-Bench-NLP space's cells and a user's
``nn.LSTM`` LM both use them, and neither depends on the other."""
from __future__ import annotations

from typing import Callable, Dict, Iterable, Sequence

import numpy as np
import torch

#: losses a gradient pass can differentiate (documented once, referred to by every proxy)
LOSSES = {
    "lm": "mean next-token cross-entropy of the tied decoder's logits (token t+1 predicted at step t)",
    "sum": "sum of the last layer's outputs, label-free (the paper's y.backward(ones))",
    "square": "half the sum of squares of the last layer's outputs (the paper's y.backward(y))",
}

#: input-noise amplitudes of the paper's noised Jacobians: emb + a * var_batch(emb) * N(0, 1)
NOISE_AMPLITUDES = {"small": 0.1, "large": 10.0, "huge": 100.0}


def check_loss(loss: str) -> str:
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid losses: {', '.join(LOSSES)}")
    return loss


#: sequences per chunk of GraSP's double backward: its graph grows with batch x steps (16 GB
#: for a large cell on the full paper batch), and the Hessian of a loss summed over
#: independent sequences is the sum of the chunks' Hessians, so chunking is exact
HESSIAN_CHUNK = 10


def accumulate_hessian_gradient(losses: Iterable[Callable[[], torch.Tensor]], named: Dict[str, torch.Tensor],
                                names: Sequence[str], grads: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``sum over chunks of H_k g`` over the parameters ``names``: each callable gives one chunk's
    loss (a share of the whole loss), whose Hessian-vector product with ``grads`` is added up.
    The one double backward behind GraSP, for the space's cells and for a user's recurrent LM."""
    params = [named[n] for n in names]
    out = {n: torch.zeros_like(named[n]) for n in names}
    for loss_of in losses:
        with torch.enable_grad():
            value = loss_of()
            first = torch.autograd.grad(value, params, create_graph=True, allow_unused=True)
            used = [(n, p, f) for n, p, f in zip(names, params, first) if f is not None and f.requires_grad]
            if not used:
                continue
            z = sum((f * grads[n]).sum() for n, _, f in used)
            hg = torch.autograd.grad(z, [p for _, p, _ in used], allow_unused=True)
        for (n, _, _), h in zip(used, hg):
            if h is not None:
                out[n] += h.detach()
    return out


def noised_input(embedding: torch.Tensor, amplitude: float, noise: np.ndarray) -> torch.Tensor:
    """The paper's noised layer input ``emb + a * var * noise``.

    ``var`` is the variance over the batch (per step and feature), in float32 as the paper's
    numpy code computed it; the sum is formed in float64 and rounded to float32, as there.
    """
    e = embedding.detach().cpu().numpy()  # numpy's float32 variance, as the paper computed it
    var = np.var(e, axis=1, keepdims=True)
    return torch.from_numpy((e + amplitude * var * noise).astype(np.float32)).to(embedding.device)


def standard_noise(shape, seed: int) -> np.ndarray:
    """N(0, 1) noise from numpy's legacy generator: with seed 0 this is the paper's draw
    (``np.random.seed(0); np.random.normal(size=shape)``)."""
    return np.random.RandomState(int(seed)).normal(size=tuple(shape))
