"""What every generic model context shares: the model left as it was, hooks that never outlive a
pass, parameter counts, and reading logits from a model's output.

The contract (tests/test_score_model.py checks it on every adapter): scoring never changes a
weight (gradients come from :func:`torch.autograd.grad`, so no ``.grad`` is written either), every
hook is removed when its pass ends (also on error), and the model's train/eval flags are put back
module by module.  Passes run in eval mode: no dropout.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable, Dict, Iterator, List, Optional

import torch

from ..errors import BadInputError
from ..spaces.base import ScoringContext, scoring_device
from .batch import ModelBatch, input_embedding
from .structure import logits_of  # noqa: F401  (one reading of a model's output, for the contexts here)


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """The model in eval mode (no dropout) for the block; every module's own flag restored after."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
_HOOK_FLAGS = ("_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks_with_kwargs")
#: marks a library sets on a module when it installs hooks of its own (transformers 5)
_HOOK_MARKS = ("_output_capturing_hooks_installed",)


@contextlib.contextmanager
def no_new_hooks(model: torch.nn.Module) -> Iterator[None]:
    """Every hook registered on the model's modules during the block is removed after it, with the
    marks saying it was installed.  transformers 5 installs output-capturing hooks the first time
    a model is asked for its attentions and keeps them; the model is given back without them (and
    without the mark, so transformers installs them again when the user asks).  transformers 4
    patches ``forward`` instead and puts back the bound method as an instance attribute: removed
    too, so the class's ``forward`` is the module's again."""
    modules = list(model.modules())
    before = [{a: set(getattr(m, a, None) or ()) for a in _HOOK_DICTS} for m in modules]
    missing = object()
    marks = [{k: m.__dict__.get(k, missing) for k in _HOOK_MARKS} for m in modules]
    own_forward = ["forward" in m.__dict__ for m in modules]
    try:
        yield
    finally:
        for m, had_forward in zip(modules, own_forward):
            bound = m.__dict__.get("forward")
            if not had_forward and getattr(bound, "__func__", None) is getattr(type(m), "forward", None) \
                    and getattr(bound, "__self__", None) is m:
                del m.__dict__["forward"]
        for m, had, mark in zip(modules, before, marks):
            for a in _HOOK_DICTS:
                d = getattr(m, a, None)
                for key in [k for k in (d or ()) if k not in had[a]]:
                    del d[key]
                    for flag in _HOOK_FLAGS:
                        getattr(m, flag, {}).pop(key, None)
            for k, v in mark.items():
                if v is missing:
                    m.__dict__.pop(k, None)
                else:
                    m.__dict__[k] = v


class Hooks:
    """Hooks registered for one pass and all removed on exit (also when the pass fails)."""

    def __init__(self):
        self._handles: List[Any] = []

    def forward(self, module: torch.nn.Module, fn: Callable, **kw) -> None:
        self._handles.append(module.register_forward_hook(fn, **kw))

    def pre(self, module: torch.nn.Module, fn: Callable, **kw) -> None:
        self._handles.append(module.register_forward_pre_hook(fn, **kw))

    def __enter__(self) -> "Hooks":
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def model_device(model: torch.nn.Module) -> torch.device:
    return scoring_device(model)


def unique_parameters(model: torch.nn.Module) -> Dict[str, torch.nn.Parameter]:
    """``{name: parameter}`` with shared (tied) parameters once, under their first name."""
    return dict(model.named_parameters())


def embedding_parameters(model: torch.nn.Module, heads: List[torch.nn.Module]) -> Dict[int, torch.nn.Parameter]:
    """The parameters Kaplan et al. leave out of the non-embedding count: every ``nn.Embedding``
    table (tokens, learned positions, token types) and the output layers ``heads`` onto the
    vocabulary (weight and bias, tied to the input table or not).  Keyed by ``id``."""
    out: Dict[int, torch.nn.Parameter] = {}
    for m in model.modules():
        if isinstance(m, torch.nn.Embedding):
            out.update({id(p): p for p in m.parameters(recurse=False)})
    for head in heads:
        out.update({id(p): p for p in head.parameters(recurse=False)})
    return out


def check_logits(logits: Optional[torch.Tensor], ids: torch.Tensor, vocab: int, what: str) -> torch.Tensor:
    """Logits ``(B, T, vocab)`` for ids ``(B, T)``; BadInputError naming the model otherwise."""
    B, T = ids.shape
    if logits is None:
        raise BadInputError("model", f"{what} returned no logits for token ids (B, T): it must return a tensor "
                                     "(B, T, vocab), a tuple starting with one, or an output with .logits")
    if tuple(logits.shape) != (B, T, vocab):
        hint = " (time-major? give logits batch-first)" if tuple(logits.shape) == (T, B, vocab) else ""
        raise BadInputError("model", f"{what} returned logits of shape {tuple(logits.shape)} for token ids of shape "
                                     f"{(B, T)}; expected {(B, T, vocab)}{hint}")
    return logits


def next_token_loss(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor,
                    n_pairs: Optional[int] = None) -> torch.Tensor:
    """Mean next-token cross-entropy: the logits at t predict token t + 1, over the pairs whose
    two tokens are real; ``n_pairs`` divides instead of this batch's count (batch chunks add up)."""
    pairs = (mask[:, :-1] & mask[:, 1:]).reshape(-1)
    flat = logits[:, :-1].reshape(-1, logits.shape[-1])[pairs]
    total = torch.nn.functional.cross_entropy(flat, ids[:, 1:].reshape(-1)[pairs], reduction="sum")
    return total / (n_pairs if n_pairs is not None else max(1, int(pairs.sum())))


class ModelContext(ScoringContext):
    """Base of the generic contexts: one user model + one :class:`ModelBatch` + one seed.

    ``offers`` is set per instance (what *this* model offers); ``label`` names the model in
    messages.  The model is never rebuilt or moved: ``device`` None means the model's own, and
    another device is refused (moving the model would change the caller's object).
    """

    def __init__(self, model: torch.nn.Module, batch: ModelBatch, *, seed: int = 0, device=None):
        own = scoring_device(model, device)
        if not isinstance(batch, ModelBatch):
            from .batch import model_batch

            batch = model_batch(model, batch)
        super().__init__(type(model).__name__, batch, seed=seed, device=own)
        self._model = model
        self.label = f"the {type(model).__name__} model"
        self.input_ids = batch.input_ids.to(own)
        self.mask = batch.mask.to(own)
        self.offers: frozenset = frozenset({"parameters"})

    def model(self, *_: Any) -> torch.nn.Module:
        """The user's model itself (never a copy)."""
        return self._model

    # -- memory ---------------------------------------------------------------------------------
    #: bytes the gradient pass may hold (the ``max_memory`` option); None: derived from the machine
    max_memory: Optional[int] = None

    def memory_bound(self) -> int:
        """``max_memory``, or :func:`~nni_zerocost.memory.default_max_memory` of the device."""
        from ..memory import default_max_memory

        return int(self.max_memory) if self.max_memory is not None else default_max_memory(self.device)

    def element_size(self) -> int:
        """Bytes of one float of the model (its first floating-point parameter's dtype)."""
        p = next((p for p in self._model.parameters() if p.is_floating_point()), None)
        return 4 if p is None else p.element_size()

    def weight_and_gradient_bytes(self, params: List[torch.nn.Parameter]) -> int:
        """What the gradient pass holds besides activations: everything the process holds now
        (CPU: its resident memory, the weights among it and anything kept beside them, such as
        a converted model's float32 originals; CUDA: the memory allocated there; where neither is
        known, the model's parameters and buffers), the gradients of ``params`` (float32 at
        least), and the largest of those once more (autograd's copy before it is added up)."""
        from ..memory import resident_bytes

        grads = [p.numel() * max(4, p.element_size()) for p in params]  # low precision: float32 gradients
        if self.device.type == "cuda":
            held = torch.cuda.memory_allocated(self.device)
        else:
            held = resident_bytes()
        if not held:
            seen = {id(t): t.numel() * t.element_size()
                    for t in list(self._model.parameters()) + list(self._model.buffers())}
            held = sum(seen.values())
        return held + sum(grads) + max(grads, default=0)

    def progress_of(self, what: str, total: int) -> Callable[[int], None]:
        """A callback logging ``what`` chunk i of ``total`` (logger ``nni_zerocost``, INFO)."""
        log = logging.getLogger("nni_zerocost")

        def report(done: int) -> None:
            log.info("%s: %s pass, chunk %d of %d", self.label, what, done, total)
        return report

    # -- parameters -----------------------------------------------------------------------------
    def param_count(self) -> int:
        """Every parameter of the model, shared (tied) ones once, the output head included."""
        return sum(p.numel() for p in unique_parameters(self._model).values())

    def nonembedding_param_count(self) -> int:
        """:meth:`param_count` less the embedding tables and the output projection onto the
        vocabulary (weight and bias, tied or not): see :func:`embedding_parameters`."""
        left_out = embedding_parameters(self._model, self.output_layers())
        return self.param_count() - sum(p.numel() for p in left_out.values())

    def output_layers(self) -> List[torch.nn.Module]:
        """The output layer onto the vocabulary: Hugging Face ``get_output_embeddings()``, else
        the last ``nn.Linear`` with ``vocab`` outputs that one forward of two tokens calls (none
        when the model decodes with the embedding table itself)."""
        if "output_layers" in self.cache:
            return self.cache["output_layers"]
        get = getattr(self._model, "get_output_embeddings", None)
        head = None
        if callable(get):
            try:
                head = get()
            except (NotImplementedError, AttributeError):
                head = None
        if isinstance(head, torch.nn.Module):
            found = [head]
        else:
            vocab = self.batch.vocab_size
            called: List[torch.nn.Module] = []
            with Hooks() as hooks, eval_mode(self._model), torch.no_grad():
                for m in self._model.modules():
                    if isinstance(m, torch.nn.Linear) and m.out_features == vocab:
                        hooks.forward(m, lambda mod, args, out: called.append(mod))
                self.call_model(self.input_ids[:1, :2])
            found = called[-1:]
        self.cache["output_layers"] = found
        return found

    def call_model(self, ids: torch.Tensor) -> Any:
        """One call of the model on token ids (B, T); subclasses pass what else it takes."""
        return self._model(ids)

    def embedding_module(self) -> torch.nn.Embedding:
        emb = input_embedding(self._model)
        if emb is None:
            raise BadInputError("model", f"{self.label} has no nn.Embedding input table")
        return emb
