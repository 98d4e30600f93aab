"""The ``model`` space: your own language models, scored like a space's architectures.

An architecture of this space names how to build a model -- a *recipe*,
``{"factory": "pkg.module:function", "kwargs": {...}}`` -- so a job of your own models is plain
JSON like any other: it runs in worker processes and Ray tasks, in shards, through the results
store and a resumed output file, with the same records as a space's architectures.  The
factory is called under ``torch.manual_seed(seed)`` (the job's seed), so the same recipe and
seed give the same weights in every process: the weights are part of what is scored.

Two more forms are taken, for scoring in this process only (they have no JSON form, so no
store key):

* a model object (``nz.score_model(model)``): scored as it is, with its own weights, on its own
  device;
* a candidate of a user's NNI model space (``build(seed)``, ``key``): built under the seed, its
  scores stored under the space's class and the frozen sample.

What a model offers is read from the model itself (:func:`nni_zerocost.models.model_context`),
so the capabilities differ per architecture (``offers_vary``): the job checks its first model
before any work, and every model is checked when it is scored.  The batch follows each model
(its vocabulary and positions): :class:`ModelBatchSource`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch

from ...errors import BadInputError, DataError, InvalidArchitectureError
from ..base import ContextOption, ScoringContext, SearchSpace, register_space

#: the capabilities the generic contexts implement (a model of a registered space offers its
#: space's); each model's own come from its context
GENERIC_CAPABILITIES = frozenset({"parameters", "active_parameters", "recurrent_states", "recurrent_gradients",
                                  "weights", "weight_gradients", "split_gradients", "attention_confidence",
                                  "head_gates", "ffn_codes", "layer_spectra"})


def size_options() -> Dict[str, ContextOption]:
    """The context options of spaces scoring models of any size: precision and memory bound."""
    from ...memory import parse_memory
    from ...precision import DTYPE_HELP, DTYPES

    return {
        "dtype": ContextOption("dtype", DTYPES, DTYPE_HELP),
        "max_memory": ContextOption("max_memory", str, "bound on the memory the gradient pass holds, e.g. 8GiB or "
                                                       "bytes (default: half the machine's memory, at most what is "
                                                       "free); a batch over it runs in row chunks", metavar="SIZE",
                                    parse=parse_memory),
    }


@dataclasses.dataclass(frozen=True)
class ModelRecipe:
    """How to build a model: ``factory`` (``"pkg.module:function"``) called with ``kwargs``
    (plain JSON values) under ``torch.manual_seed(seed)``."""

    factory: str
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> "ModelRecipe":
        unknown = sorted(set(obj) - {"factory", "kwargs"})
        if unknown:
            raise InvalidArchitectureError(f"a model recipe has 'factory' and 'kwargs', not {', '.join(unknown)}")
        factory = obj.get("factory")
        if not isinstance(factory, str) or factory.count(":") != 1 or not all(factory.split(":")):
            raise InvalidArchitectureError("'factory' must be 'pkg.module:function', e.g. "
                                           f"'my_package.models:small_lstm'; got {factory!r}", "factory")
        kwargs = obj.get("kwargs") or {}
        if not isinstance(kwargs, Mapping):
            raise InvalidArchitectureError(f"'kwargs' must be an object of arguments, got {type(kwargs).__name__}",
                                           "kwargs")
        try:
            kwargs = json.loads(json.dumps(dict(kwargs), sort_keys=True))
        except (TypeError, ValueError) as e:
            raise InvalidArchitectureError(f"'kwargs' must be plain JSON values ({e})", "kwargs") from None
        return cls(factory, kwargs)

    def to_dict(self) -> Dict[str, Any]:
        return {"factory": self.factory, "kwargs": dict(self.kwargs)}

    def function(self):
        """The factory itself; InvalidArchitectureError when it cannot be imported."""
        module, name = self.factory.split(":")
        try:
            fn = getattr(importlib.import_module(module), name)
        except ModuleNotFoundError as e:
            raise InvalidArchitectureError(f"no module named {e.name!r} (is it installed or on PYTHONPATH?)",
                                           "factory") from None
        except AttributeError:
            raise InvalidArchitectureError(f"module {module!r} has no {name!r}", "factory") from None
        if not callable(fn):
            raise InvalidArchitectureError(f"{self.factory} is not callable", "factory")
        return fn

    def build(self, seed: int) -> torch.nn.Module:
        """The model, weights drawn under ``torch.manual_seed(seed)`` (the caller's RNG states
        are put back after)."""
        fn = self.function()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            try:
                model = fn(**self.kwargs)
            except TypeError as e:
                raise InvalidArchitectureError(f"{self.factory}(**{json.dumps(dict(self.kwargs))}) failed: {e}",
                                               "kwargs") from None
        if not isinstance(model, torch.nn.Module):
            raise InvalidArchitectureError(f"{self.factory} returned a {type(model).__name__}, not a "
                                           "torch.nn.Module", "factory")
        return model


class ModelObject:
    """A model object scored as it is (its own weights, on its own device); it has no recipe,
    so its scores have no store key."""

    def __init__(self, model: torch.nn.Module):
        self.model = model

    def build(self, seed: int) -> torch.nn.Module:
        return self.model


@dataclasses.dataclass(frozen=True)
class ModelBatchSource:
    """What a model's batch is made from (a corpus path, ids, ``(texts, tokenizer)``, a
    tokenizer's output, or None for the Zipf batch over its vocabulary): resolved per model by
    :func:`nni_zerocost.models.model_batch`, since the vocabulary and positions are the model's.
    ``fingerprint`` identifies the source in store keys (the model itself is in the key)."""

    given: Any = None

    @property
    def fingerprint(self) -> str:
        g = self.given
        if g is None:
            return "zipf-default"
        h = hashlib.sha256()
        if isinstance(g, (str, os.PathLike)):
            p = Path(g)
            if not p.is_file():
                raise BadInputError("corpus", "no such file (a corpus is a .npy or .pt file of token ids)", repr(str(g)))
            h.update(p.name.encode())
            h.update(p.read_bytes())
        elif isinstance(g, Mapping):
            for k in ("input_ids", "attention_mask"):
                if g.get(k) is not None:
                    h.update(k.encode())
                    h.update(np.ascontiguousarray(np.asarray(_cpu(g[k]))).tobytes())
        elif isinstance(g, (tuple, list)) and len(g) == 2 and callable(g[1]):
            texts = [g[0]] if isinstance(g[0], str) else list(g[0])
            h.update("\x00".join(map(str, texts)).encode())
            h.update(type(g[1]).__name__.encode())
        else:
            ids = getattr(g, "input_ids", g)
            arr = np.asarray(_cpu(ids))
            h.update(str(arr.shape).encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:16]

    @property
    def source(self) -> str:
        g = self.given
        return "zipf (the model's vocabulary)" if g is None else str(g) if isinstance(g, (str, os.PathLike)) \
            else type(g).__name__

    def for_model(self, model: torch.nn.Module):
        from ...models import model_batch

        return model_batch(model, self.given)


def _cpu(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x


class PerModelBatches:
    """The batches of a space whose architectures are whole language models (this space and the
    hf space): the Zipf batch over each model's own vocabulary, or a corpus of token ids cut per
    model; the shape follows each model.  ``corpus_of``: whose corpus, for the one-line error."""

    corpus_of = "your own models"

    def default_batch(self, seed: int = 0) -> ModelBatchSource:
        """The Zipf batch over each model's own vocabulary (:mod:`nni_zerocost.models.batch`)."""
        return ModelBatchSource(None)

    def batch(self, corpus: Optional[str] = None, *, batch_size: Optional[int] = None,
              seq_len: Optional[int] = None) -> ModelBatchSource:
        """A corpus of token ids (``.npy``/``.pt``, cut per model as the paper cut PTB), or the
        Zipf batch; the shape follows each model (``batch_size``/``seq_len`` are not taken)."""
        if batch_size is not None or seq_len is not None:
            raise ValueError(f"the {self.name!r} space takes no batch shape: rows follow each model (or give ids)")
        if corpus is not None and not Path(corpus).is_file():
            raise DataError(f"no such file (a corpus of {self.corpus_of} is a .npy or .pt file of token ids)", corpus)
        return ModelBatchSource(corpus)

    def given_batch(self, batch) -> ModelBatchSource:
        return batch if isinstance(batch, ModelBatchSource) else ModelBatchSource(batch)

    def smoke_batch(self) -> ModelBatchSource:
        return ModelBatchSource(None)


@register_space
class ModelSpace(PerModelBatches, SearchSpace):
    """Your own language models: an architecture names a factory and its arguments."""

    name = "model"
    title = "Model"
    offers_vary = True

    @property
    def offers(self):
        """Every capability a model may offer: the generic contexts', and those of the registered
        spaces whose own models are scored by their space (``score_model`` of a space's model)."""
        from .. import get_space, list_spaces

        return GENERIC_CAPABILITIES.union(*(get_space(s).offers for s in list_spaces() if s != self.name))
    searchable = False

    # -- architectures --------------------------------------------------------------------------
    def parse(self, obj: Any):
        if isinstance(obj, (ModelRecipe, ModelObject)):
            return obj
        if isinstance(obj, torch.nn.Module):
            return ModelObject(obj)
        if hasattr(obj, "build") and hasattr(obj, "key"):  # a candidate of a user's NNI model space
            return obj
        if isinstance(obj, str):
            try:
                obj = json.loads(obj)
            except json.JSONDecodeError:
                raise InvalidArchitectureError("a model architecture is a recipe {\"factory\": "
                                               "\"pkg.module:function\", \"kwargs\": {...}}") from None
        if isinstance(obj, Mapping):
            return ModelRecipe.parse(obj)
        raise InvalidArchitectureError(f"expected a model recipe, a torch.nn.Module or an NNI sample, got "
                                       f"{type(obj).__name__}")

    def to_dict(self, arch) -> Mapping[str, Any]:
        arch = self.parse(arch)
        if isinstance(arch, ModelRecipe):
            return arch.to_dict()
        if isinstance(arch, ModelObject):
            return {"model": type(arch.model).__name__}
        return {"space": arch.space, "sample": dict(getattr(arch, "sample", None) or {})}

    def arch_hash(self, arch) -> Optional[str]:
        arch = self.parse(arch)
        if isinstance(arch, ModelRecipe):
            return super().arch_hash(arch)
        if isinstance(arch, ModelObject):
            return None
        return None if arch.key is None else hashlib.sha256(f"{arch.space}|{arch.key}".encode()).hexdigest()

    def arch_key(self, arch, **_) -> Optional[str]:
        arch = self.parse(arch)
        if isinstance(arch, (ModelRecipe, ModelObject)):
            return self.arch_hash(arch)
        return arch.key  # a user's NNI space: its class and frozen sample

    def sample(self, rng: np.random.Generator):
        raise InvalidArchitectureError("the 'model' space has nothing to sample: your models come from their "
                                       "factories (score --model)")

    def choices(self) -> Dict[str, Sequence[Any]]:
        return {}

    def summary(self, arch) -> str:
        arch = self.parse(arch)
        if isinstance(arch, ModelRecipe):
            args = ", ".join(f"{k}={json.dumps(v)}" for k, v in arch.kwargs.items())
            return f"{arch.factory}({args})"
        return json.dumps(self.to_dict(arch), sort_keys=True, default=str)

    def param_count(self, arch, **_) -> Optional[int]:
        """Parameters of the recipe's model, tied ones once, counted on the meta device (no
        memory, no weights); None where the factory cannot build there."""
        arch = self.parse(arch)
        try:
            if isinstance(arch, ModelRecipe):
                with torch.device("meta"):
                    model = arch.build(0)
            else:
                model = arch.build(0)
        except InvalidArchitectureError:
            raise
        except Exception:  # a factory that needs real tensors to build
            return None
        return sum(p.numel() for p in dict(model.named_parameters()).values())

    # -- model and data: PerModelBatches ---------------------------------------------------------
    def smoke_architecture(self) -> ModelRecipe:
        return ModelRecipe("nni_zerocost.spaces.model.tiny:recurrent_lm", {"kind": "LSTM"})

    def smoke_architectures(self, samples: int = 3) -> List[ModelRecipe]:
        """Small models of each kind the generic contexts read: recurrent LMs and a torch
        transformer LM (and a Hugging Face GPT-2 when ``transformers`` is installed)."""
        out = [self.smoke_architecture(),
               ModelRecipe("nni_zerocost.spaces.model.tiny:recurrent_lm", {"kind": "GRU", "layers": 1}),
               ModelRecipe("nni_zerocost.spaces.model.tiny:transformer_lm", {})]
        try:
            import transformers  # noqa: F401
        except ImportError:
            return out
        return out + [ModelRecipe("nni_zerocost.spaces.model.tiny:huggingface_lm", {"model_type": "gpt2"})]

    def context_options(self) -> Dict[str, ContextOption]:
        return size_options()

    def context(self, arch, batch=None, *, seed: int = 0, device=None, dtype: Optional[str] = None,
                max_memory: Optional[int] = None, **options) -> ScoringContext:
        from ...models import model_context
        from ...precision import convert, scored_in

        if options:
            raise TypeError(f"the 'model' space takes no context options but dtype and max_memory, got "
                            f"{sorted(options)}")
        arch = self.parse(arch)
        source = self.given_batch(batch)
        model = arch.build(seed)
        restore = contextlib.ExitStack()
        if isinstance(arch, ModelRecipe):
            if device is not None:
                model = model.to(device)  # weights drawn on the CPU, moved
            convert(model, dtype)
            label = f"the model of {arch.factory}"
        elif isinstance(arch, ModelObject):  # scored where it lives; another device is refused
            restore.enter_context(scored_in(model, dtype))  # your model, given back as it was
            label = f"the {type(model).__name__} model"
        else:  # a candidate of a user's NNI space, built as the space builds it
            convert(model, dtype)
            device, label = None, f"a {arch.space} model"
        with restore:
            ctx = model_context(model, source.for_model(model), seed=seed, device=device)
            ctx.on_close(restore.pop_all().close)
        if not getattr(ctx, "label", "").startswith("the '"):  # a space's own model keeps its label
            ctx.label = label
        ctx.max_memory = max_memory
        return ctx

    def build_model(self, arch, *, seed: int = 0, **_) -> torch.nn.Module:
        return self.parse(arch).build(seed)
