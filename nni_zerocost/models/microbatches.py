"""The gradient pass of a large model in row chunks (micro-batches), bounded by ``max_memory``.

One forward + backward of the whole batch holds the activations of every token at once (GPT-2
small on 50 x 70 tokens: 7 GiB, most of it activations and vocabulary logits).  Gradients add
up over rows: with each chunk's loss weighted by its share of the whole batch's (a sum over the
chunk's tokens divided by the whole batch's token count), the sum of the chunks' gradients is
the whole batch's gradient, equal up to float rounding.  So the pass holds the weights, one
set of gradients and one chunk's activations.

* :func:`chunk_rows`: rows per chunk from the memory bound and an estimate of what a row's
  activations take; the whole batch (one chunk, the unchunked pass, bit for bit) whenever it fits.
* :func:`accumulate_gradients`: runs the chunks' backward passes, adding each parameter's
  gradient into one buffer as soon as autograd has it (a post-accumulate hook), so no second
  set of gradients is ever held.  Gradients of a low-precision model are added up and kept in
  float32.  The parameters' ``.grad`` is the accumulator's landing place for the pass only:
  whatever the model had there before is put back after, also on error.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch

from ..precision import full_precision

#: safety factor on the estimate of a row's activations (autograd keeps more than the inputs of
#: the matrix products: norms, masks, softmax outputs, the logits' log-softmax)
ESTIMATE_MARGIN = 1.5


def activation_bytes_per_token(blocks: Sequence[Tuple[int, int, int]], vocab: int, seq_len: int,
                               element_size: int) -> int:
    """Bytes a gradient pass keeps per token: per layer ``(hidden, matrix_inputs, heads)``
    (``matrix_inputs``: the summed input widths of its weight matrices, each of whose inputs and
    outputs autograd keeps; attention scores and probabilities per head; ten hidden-wide tensors
    of norms and residuals) in the model's precision, and three vocabulary-wide tensors for the
    logits, their log-softmax and its gradient, in float32 at least (the loss is float32)."""
    per_layer = sum(2 * inputs + 2 * heads * seq_len + 10 * hidden for hidden, inputs, heads in blocks)
    return int(per_layer * element_size + 3 * vocab * max(4, element_size))


def chunk_rows(rows: int, row_bytes: float, fixed_bytes: float, max_memory: int) -> int:
    """Rows per chunk so that ``fixed_bytes`` (weights, gradients) plus a chunk's activations
    (``row_bytes`` each, times :data:`ESTIMATE_MARGIN`) stay within ``max_memory``; ``rows`` (one
    chunk) when the whole batch fits, at least 1; chunks balanced (sizes differ by at most one
    row... the last one may be smaller)."""
    room = max_memory - fixed_bytes
    per_row = max(1.0, row_bytes * ESTIMATE_MARGIN)
    fit = int(room // per_row) if room > 0 else 1
    if fit >= rows:
        return rows
    fit = max(1, fit)
    chunks = math.ceil(rows / fit)
    return math.ceil(rows / chunks)


def row_slices(rows: int, per_chunk: int) -> List[slice]:
    return [slice(a, min(rows, a + per_chunk)) for a in range(0, rows, per_chunk)]


def accumulate_gradients(chunks: Iterable[Callable[[], Tuple[torch.Tensor, torch.Tensor]]],
                         params: Sequence[torch.nn.Parameter],
                         progress: Optional[Callable[[int], None]] = None
                         ) -> Tuple[float, List[Optional[torch.Tensor]], List[torch.Tensor]]:
    """Forward + backward of every chunk: each callable returns its weighted loss and the leaf
    (its input embeddings) whose gradient is wanted.  Returns the summed loss value, each
    parameter's summed gradient (None where no chunk reached it) and each chunk's leaf gradient."""
    params = list(params)
    summed: Dict[int, torch.Tensor] = {}

    def take(p: torch.Tensor) -> None:
        g, p.grad = p.grad, None
        if g is None:
            return
        if id(p) in summed:
            summed[id(p)].add_(g)
        else:
            summed[id(p)] = full_precision(g.detach())

    saved = [p.grad for p in params]
    handles = []
    total = 0.0
    leaf_grads: List[torch.Tensor] = []
    try:
        for p in params:
            p.grad = None
            handles.append(p.register_post_accumulate_grad_hook(take))
        for i, run in enumerate(chunks):
            with torch.enable_grad():
                loss, leaf = run()
                torch.autograd.backward(loss, inputs=[leaf] + params)
            total += float(loss.detach())
            leaf_grads.append(torch.zeros_like(leaf) if leaf.grad is None else leaf.grad.detach())
            del loss, leaf
            if progress is not None:
                progress(i + 1)
    finally:
        for h in handles:
            h.remove()
        for p, g in zip(params, saved):
            p.grad = g
    return total, [summed.get(id(p)) for p in params], leaf_grads


__all__ = ["activation_bytes_per_token", "chunk_rows", "row_slices", "accumulate_gradients", "ESTIMATE_MARGIN"]
