"""The ``hf`` space: Hugging Face configs, and the families of them you search (docs/hf-space.md).

An architecture is a config dict, ``{"model_type": "llama", "hidden_size": 512, ...}``: anything
the config class of ``model_type`` takes and transformers builds a causal (else masked) language
model of.  As registered, the space parses, sizes and scores any such config (``score --space hf
--cells configs.jsonl``); it has nothing to search.  ``--choices FILE`` (the family option
``choices``: a YAML or JSON file, :mod:`.family`) makes it a family to search:
:meth:`HFSpace.family` gives the configured space whose ``choices``, ``sample``, ``codec`` and
``naslib_form`` are the family's.  A score depends on the config alone, so the family is in no
store key: the space is ``hf`` and the architecture its canonical config (:mod:`.config`).

Models are built by transformers from the config, weights drawn under ``torch.manual_seed`` of
the job's seed, and scored by the generic context that reads any language model by structure
(:func:`nni_zerocost.models.model_context`): what a model offers depends on the model
(``offers_vary``).  Sizes are counted on the meta device, with no memory and no weights
(:mod:`.counts`), so a size budget skips a candidate before any model work.

transformers is imported lazily, inside this package only (the ``hf`` extra).
"""
from __future__ import annotations

import functools
import json
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from ...errors import InvalidArchitectureError
from ..base import ContextOption, FlatCodec, ScoringContext, SearchSpace, check_sample, register_space
from ..model import GENERIC_CAPABILITIES, PerModelBatches  # the model space's rules: hf models are your models
from .config import HFArch, available, build_model, config_value, parse
from .counts import counts

__all__ = ["HFSpace", "HFArch", "FamilyCodec", "causal_lm"]

#: fields a summary names when the space has no family (those the config has)
SUMMARY_FIELDS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                  "intermediate_size", "state_size", "num_local_experts", "num_experts", "num_experts_per_tok")
#: the smoke architectures of the conformance kit: tiny, of different layouts
SMOKE = (
    {"model_type": "llama", "vocab_size": 128, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
     "num_key_value_heads": 2, "intermediate_size": 64, "max_position_embeddings": 128},
    {"model_type": "gpt2", "vocab_size": 128, "n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 128,
     "bos_token_id": 0, "eos_token_id": 0},
    {"model_type": "mamba", "vocab_size": 128, "hidden_size": 32, "num_hidden_layers": 2, "state_size": 8},
)


class FamilyCodec:
    """The NNI labels of a family (:meth:`.family.Family.labels`): every sample decodes to a
    valid member (:meth:`.family.Family.member`), every member encodes."""

    def __init__(self, family):
        self.family = family

    def choices(self) -> Dict[str, List[Any]]:
        return self.family.labels()

    def decode(self, sample) -> HFArch:
        check_sample(sample, self.choices())
        return self.family.member(sample)

    def encode(self, arch) -> Dict[str, Any]:
        return self.family.encode(parse(arch))


@register_space
class HFSpace(PerModelBatches, SearchSpace[HFArch]):
    """Hugging Face configs (any model_type transformers builds); --choices FILE: a family to search."""

    name = "hf"
    corpus_of = "hf models"
    title = "HF"
    offers = GENERIC_CAPABILITIES  # what the generic contexts may offer; each model: what it has
    offers_vary = True
    #: provisional: the proxy of the LTS decoders' best within-size ranking until the hf guide measures
    default_proxy = "synaptic_saliency"

    def __init__(self, family=None):
        self._family = family
        self.space_options = {} if family is None else {"choices": json.loads(json.dumps(family.spec))}

    @property
    def searchable(self) -> bool:  # a family is searched; the space as registered scores what it is given
        return self._family is not None

    # -- the family ---------------------------------------------------------------------------
    def family_options(self) -> Dict[str, ContextOption]:
        return {"choices": ContextOption(
            "choices", str, "the family of configs to search: a YAML or JSON file of model_type, fixed fields, "
                            "choices or integer ranges per field, per-layer lists and relations (docs/hf-space.md)",
            metavar="FILE")}

    def family(self, choices=None, **others) -> "HFSpace":
        """The space searching the family of ``choices`` (a file path or its content as a dict);
        BadInputError naming the file and the field for a bad one."""
        if others:
            raise TypeError(f"the 'hf' space's family options are choices, got {sorted(others)}")
        if choices is None:
            return self
        from .family import load_family

        return _configured(load_family(choices))

    # -- architectures ------------------------------------------------------------------------
    def parse(self, obj: Any) -> HFArch:
        return parse(obj)

    def to_dict(self, arch: HFArch) -> Dict[str, Any]:
        return self.parse(arch).to_dict()

    def choices(self) -> Dict[str, Sequence[Any]]:
        """The family's labels (none without one)."""
        return {} if self._family is None else self._family.labels()

    def sample(self, rng: np.random.Generator) -> HFArch:
        if self._family is None:
            raise InvalidArchitectureError("the 'hf' space samples a family: give one (--choices FILE, "
                                           "docs/hf-space.md)")
        return self._family.sample(rng)

    def summary(self, arch: Any) -> str:
        arch = self.parse(arch)
        names = self._family.summary_fields() if self._family is not None else SUMMARY_FIELDS
        shown = []
        for name in names:
            try:
                value = config_value(arch, name)
            except InvalidArchitectureError:  # a field this config class does not have (Mamba: no FFN width)
                continue
            if value is not None:
                shown.append(f"{name} {'/'.join(map(str, value)) if isinstance(value, list) else value}")
        c = counts(arch)
        active = f", {c.active / 1e6:.2f}M active" if c.active != c.params else ""
        return (f"{arch.model_type}: {', '.join(shown)} ({c.params / 1e6:.2f}M parameters, "
                f"{c.nonembedding / 1e6:.2f}M non-embedding{active})")

    # -- sizes (meta device: no memory, no weights) --------------------------------------------
    def param_count(self, arch: Any, **_) -> int:
        """Every parameter, tied ones once."""
        return counts(self.parse(arch)).params

    def nonembedding_param_count(self, arch: Any, **_) -> int:
        """Without the embedding tables and the output layer onto the vocabulary."""
        return counts(self.parse(arch)).nonembedding

    def active_param_count(self, arch: Any, **_) -> int:
        """The parameters one token uses: ``k`` of ``E`` routed experts (all of a dense model)."""
        return counts(self.parse(arch)).active

    def flops(self, arch: Any, **_) -> float:
        """Forward FLOPs per token (Kaplan et al.): 2 x active non-embedding parameters + the
        attention term at the model's context (:mod:`.counts`)."""
        return counts(self.parse(arch)).flops

    def layer_count(self, arch: Any, **_) -> Optional[int]:
        """The config's block count (``num_hidden_layers`` or its alias, e.g. GPT-2's ``n_layer``)."""
        value = config_value(self.parse(arch), "num_hidden_layers", "n_layer", "num_layers")
        return None if value is None else int(value)

    def cost_inputs(self, arch: Any, **_) -> Dict[str, int]:
        """Ids over the config's whole vocabulary; rows of the model's context length unless the
        job gives ``cost_seq_len``."""
        vocab = config_value(self.parse(arch), "vocab_size")
        return {} if vocab is None else {"vocab_size": int(vocab)}

    # -- model and data -----------------------------------------------------------------------
    def build_model(self, arch: Any, *, seed: int = 0, **_) -> torch.nn.Module:
        return build_model(self.parse(arch), seed=seed)

    def smoke_architecture(self) -> HFArch:
        """A tiny LLaMA (the family's first sample when the space has a family)."""
        if self._family is not None:
            return self._family.sample(np.random.default_rng(0))
        return parse(SMOKE[0])

    def smoke_architectures(self, samples: int = 3) -> List[HFArch]:
        """A family: its seeded samples.  Without one: tiny LLaMA, GPT-2 and Mamba configs (each
        only where the generic context reads its layout; none without transformers)."""
        if self._family is not None:
            return super().smoke_architectures(samples)
        if not available():
            return []
        return [a for a in (parse(d) for d in SMOKE) if _readable(a)]

    def context_options(self) -> Dict[str, ContextOption]:
        from ..model import size_options

        return size_options()

    def context(self, arch: Any, batch=None, *, seed: int = 0, device=None, dtype: Optional[str] = None,
                max_memory: Optional[int] = None, **options) -> ScoringContext:
        from ...models import model_context
        from ...precision import convert

        if options:
            raise TypeError(f"the 'hf' space takes no context options but dtype and max_memory, got {sorted(options)}")
        arch = self.parse(arch)
        source = self.given_batch(batch) if batch is not None else self.default_batch()
        model = build_model(arch, seed=seed)
        if device is not None:
            model = model.to(device)  # weights drawn on the CPU, moved
        convert(model, dtype)
        ctx = model_context(model, source.for_model(model), seed=seed, device=device)
        ctx.label = f"the {arch.model_type} model {type(model).__name__}"
        ctx.max_memory = max_memory
        return ctx

    # -- host frameworks ----------------------------------------------------------------------
    def codec(self, **options):
        if options:
            raise TypeError(f"the 'hf' space's codec takes no options, got {sorted(options)}")
        return FlatCodec(self) if self._family is None else FamilyCodec(self._family)


@functools.lru_cache(maxsize=32)
def _configured(family) -> HFSpace:
    """One configured space per family (families are cached by content: :mod:`.family`)."""
    return HFSpace(family)


@functools.lru_cache(maxsize=None)
def _readable(arch: HFArch) -> bool:
    """Whether the generic context reads this model (the smoke checks score only those)."""
    from ...errors import BadInputError
    from ...models import model_batch, model_context

    model = build_model(arch, seed=0)
    try:
        with model_context(model, model_batch(model, None)):
            return True
    except BadInputError:
        return False


def causal_lm(**config) -> torch.nn.Module:
    """A factory for ``score --model nni_zerocost.spaces.hf:causal_lm --model-args configs.jsonl``:
    the language model of a config dict given as keyword arguments (``model_type`` and its
    fields), weights from the caller's ``torch.manual_seed``."""
    return build_model(parse(config), seed=None)
