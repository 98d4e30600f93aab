"""nni-zerocost: training-free NAS proxies for language models, for NNI and NASLib."""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    BadInputError,
    DataError,
    InvalidArchitectureError,
    ProxyNotApplicableError,
    UnknownNameError,
    ZeroCostError,
)
from .plan import ScoringPlan, ScoringRequest, make_model_plan, make_plan  # noqa: E402
from .proxies import NO_SCORE, ProxyResult, get_proxy, list_proxies, register_proxy  # noqa: E402
from .spaces import get_space, list_spaces, register_space  # noqa: E402


def score(space: str, arch, proxies, *, batch=None, seed: int = 0, **options):
    """Score one architecture of a registered space; returns ``{spec: ProxyResult}``.

    ``proxies`` is a name, a spec string like ``"hidden_covariance:layer=2"``, or a list;
    ``options`` are :func:`make_plan`'s (``corpus``, ``device`` = "auto" | "cpu" | "cuda" |
    "cuda:N", and the space's context options such as ``init`` or ``as_trained``).
    """
    plan = make_plan(space, proxies, seed=seed, batch=batch, **options)
    return plan.score(get_space(space).parse(arch))


def score_model(model, proxies, *, batch=None, seed: int = 0, device=None):
    """Score your own language model; returns ``{spec: ProxyResult}`` like :func:`score`.

    ``model``: any ``torch.nn.Module`` that maps token ids ``(B, T)`` to logits (or an output
    with ``.logits``, or ``.last_hidden_state`` for an encoder): an ``nn.LSTM``/``nn.GRU``/
    ``nn.RNN`` LM, a Hugging Face model built from a config, torch transformer layers, or a model
    of a registered space.  The proxies that apply follow from what the model offers; one that
    does not apply is refused before any work, naming what the model lacks.  ``batch``: token
    ids ``(B, T)``, a corpus path (``.npy``/``.pt`` ids), ``(texts, tokenizer)``, or None (the
    embedded Zipf batch over the model's vocabulary).  ``seed`` seeds every random draw of the
    scoring (the model's weights are yours).  ``device``: None = where the model is.
    """
    plan = make_model_plan(model, proxies, batch=batch, seed=seed, device=device)
    return plan.score(model)


__all__ = [
    "__version__", "score", "score_model", "make_plan", "make_model_plan", "ScoringPlan", "ScoringRequest",
    "get_space", "list_spaces", "register_space", "get_proxy", "list_proxies", "register_proxy", "ProxyResult",
    "NO_SCORE", "ZeroCostError", "BadInputError", "InvalidArchitectureError", "UnknownNameError",
    "ProxyNotApplicableError", "DataError",
]
