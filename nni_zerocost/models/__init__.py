"""Scoring contexts for a user's own language model (:func:`nni_zerocost.score_model`).

:func:`model_context` wraps a ``torch.nn.Module`` in the scoring context that knows it best:

1. a registered search space that claims its own module type (``SearchSpace.claims``:
   the NAS-Bench-NLP ``RNNLanguageModel``, the benchmark's ``BertModel``) scores it with the
   space's own passes, so ``score_model`` equals ``score`` on the architecture;
2. otherwise the first generic adapter that recognises the model (:data:`ADAPTERS`, see
   :func:`register_model_adapter`): recurrent LMs over ``nn.RNN``/``nn.LSTM``/``nn.GRU`` or user
   cells, Hugging Face transformers built from a config, torch's own transformer layers.

A user's own recurrent cell reports the state entering each step with :func:`report_state`
(a no-op outside scoring).  docs/your-own-model.md says what applies to which model.

Each context declares the capabilities it offers for *this* model, so the proxies that apply
follow from the model (``list_proxies(ctx)``).  Contexts never modify the model: no weight is
changed, no hook outlives a pass, and its train/eval mode is restored.
"""
from __future__ import annotations

from typing import Any, Optional

import torch

from ..errors import BadInputError
from ..spaces import get_space, list_spaces
from ..spaces.base import ScoringContext
from .states import report_state  # noqa: F401  (the hook a user's own recurrent cell calls)

from .adapters import ADAPTERS, register_model_adapter  # noqa: F401  (a plugin's adapters register here)


def claiming_space(model) -> Optional[str]:
    """The registered space whose own module type ``model`` is, or None."""
    return next((name for name in list_spaces() if get_space(name).claims(model)), None)


def model_batch(model: torch.nn.Module, batch: Any = None):
    """The batch a model is scored on: a space's own batch for a space's model (None = its
    default), else :func:`~.batch.model_batch` (token ids, a corpus path, texts with a tokenizer,
    or the Zipf batch over the model's vocabulary)."""
    space = claiming_space(model)
    if space is not None:
        return get_space(space).default_batch() if batch is None else batch
    from .batch import model_batch as generic

    return generic(model, batch)


def model_context(model: torch.nn.Module, batch, *, seed: int = 0, device=None) -> ScoringContext:
    """The scoring context of a user's model (see the module docstring); BadInputError when
    nothing recognises it."""
    if not isinstance(model, torch.nn.Module):
        raise BadInputError("model", f"expected a torch.nn.Module language model, got {type(model).__name__}")
    space = claiming_space(model)
    if space is not None:
        ctx = get_space(space).context_for_model(model, batch, seed=seed, device=device)
        ctx.label = f"the {space!r} space's {type(model).__name__}"
        return ctx
    for adapter in ADAPTERS.latest_first():
        if adapter.matches(model):
            return adapter.make(model, batch, seed=seed, device=device)
    from .transformer import structure_context  # any other LM: what its forward computes

    return structure_context(model, batch, seed=seed, device=device)
