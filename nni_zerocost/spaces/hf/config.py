"""Hugging Face configs as architectures: facts read from transformers' own config classes.

An architecture is a config dict, ``{"model_type": "llama", "hidden_size": 512, ...}``: what the
config class of ``model_type`` takes.  :func:`parse` builds the config (so the class's own
validation decides what is valid: a hidden size that the heads do not divide is refused by
``LlamaConfig`` itself), refuses fields the class does not have (the classes accept any keyword
silently, so a typo would otherwise change nothing), and keeps the *canonical* form: every
architecture field of the built config, aliases resolved (GPT-2's ``hidden_size`` is ``n_embd``)
and derived values filled in (``head_dim``, ``num_key_value_heads``), without the fields that do
not change the model (``use_cache``, ``dtype``, ``transformers_version``, ...).  Two dicts that
build the same model have the same canonical form, hence the same hash and store keys.

transformers is imported here only, and lazily (the ``hf`` extra).
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
from typing import Any, Dict, Mapping, Optional

import torch

from ...errors import InvalidArchitectureError, suggest

#: fields of every config that do not change the model built (besides PreTrainedConfig's own)
NOT_ARCHITECTURE = frozenset({"_name_or_path", "output_attentions", "use_cache", "transformers_version", "dtype",
                              "torch_dtype", "_attn_implementation", "attn_implementation", "model_type"})


def available() -> bool:
    """Whether transformers is installed (no import)."""
    return importlib.util.find_spec("transformers") is not None


def _transformers():
    try:
        import transformers
    except ImportError:
        raise InvalidArchitectureError("the 'hf' space needs transformers: pip install 'nni-zerocost[hf]'") from None
    return transformers


@functools.lru_cache(maxsize=None)
def _base_fields() -> frozenset:
    """PreTrainedConfig's own fields (labels, return flags, dtype, ...): none shapes a model."""
    cls = _transformers().PreTrainedConfig
    names = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set(cls().to_dict())
    return frozenset(names) | NOT_ARCHITECTURE


@functools.lru_cache(maxsize=None)
def lm_class(model_type: str) -> str:
    """The Auto class building a language model of ``model_type``: the causal LM where
    transformers has one, else the masked LM; InvalidArchitectureError otherwise."""
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_MASKED_LM_MAPPING_NAMES)

    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return "AutoModelForCausalLM"
    if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "AutoModelForMaskedLM"
    raise InvalidArchitectureError(f"transformers has no causal or masked language model of {model_type!r}",
                                   "model_type")


@functools.lru_cache(maxsize=None)
def config_class(model_type: Any):
    """The config class of ``model_type`` (InvalidArchitectureError naming the close ones)."""
    mapping = _transformers().CONFIG_MAPPING
    if not isinstance(model_type, str) or model_type not in mapping:
        known = list(mapping.keys())
        raise InvalidArchitectureError(f"unknown model_type {model_type!r}{suggest(model_type, known)} (transformers "
                                       f"{_transformers().__version__} knows {len(known)})", "model_type")
    lm_class(model_type)
    return mapping[model_type]


@functools.lru_cache(maxsize=None)
def field_names(model_type: str) -> frozenset:
    """The fields ``model_type``'s config class takes (aliases not included); those that build
    no different model (``use_cache``, labels, ...) are taken but left out of the canonical form."""
    cls = config_class(model_type)
    names = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set(cls().to_dict())
    return frozenset(names | _base_fields()) - {"model_type"}


def field_name(model_type: str, name: Any) -> str:
    """The config field ``name`` stands for (an alias such as GPT-2's ``hidden_size`` is its
    ``n_embd``); InvalidArchitectureError for a name the class does not have."""
    cls = config_class(model_type)
    real = dict(getattr(cls, "attribute_map", {}) or {}).get(name, name)
    fields = field_names(model_type)
    if real not in fields:
        raise InvalidArchitectureError(f"{cls.__name__} has no field {name!r}{suggest(str(name), sorted(fields))}",
                                       str(name))
    return real


@dataclasses.dataclass(frozen=True)
class HFArch:
    """One architecture: ``model_type`` and the canonical JSON text of its fields (what
    equality and the hash see).  Build with :func:`parse`."""

    model_type: str
    text: str

    @property
    def fields(self) -> Dict[str, Any]:
        return json.loads(self.text)

    def to_dict(self) -> Dict[str, Any]:
        return {"model_type": self.model_type, **self.fields}

    def config(self):
        """The transformers config object (a fresh one: callers may change it)."""
        return config_class(self.model_type)(**self.fields)


def _one_line(e: BaseException) -> str:
    """The cause of a config class's refusal in one line (transformers' validation errors put it
    on the last line)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[-1] if lines else type(e).__name__


def build_config(model_type: str, fields: Mapping[str, Any]):
    """The config object, fields given by name or alias; InvalidArchitectureError naming the
    field or saying why the class refused the combination."""
    cls = config_class(model_type)
    given = {}
    for name, value in fields.items():
        real = field_name(model_type, name)
        if real in given:
            raise InvalidArchitectureError(f"given twice (as {name!r} and under its own name)", real)
        given[real] = value
    try:
        return cls(**given)
    except Exception as e:  # the class's own validation: types and relations between fields
        raise InvalidArchitectureError(f"{cls.__name__} refuses it: {_one_line(e)}") from None


def canonical(config) -> HFArch:
    """The architecture of a built config (see the module docstring)."""
    d = config.to_dict()
    fields = field_names(config.model_type)
    # a value the class derives itself (Mamba's intermediate_size = expand x hidden) is not a
    # field it takes: left out, so the architecture parses back from its own dict
    kept = {k: v for k, v in d.items() if k not in _base_fields() and k in fields}
    return HFArch(config.model_type, json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str))


def parse(obj: Any) -> HFArch:
    """An :class:`HFArch` from a config dict, its JSON text, a transformers config object or an
    HFArch; InvalidArchitectureError otherwise."""
    if isinstance(obj, HFArch):
        return obj
    if hasattr(obj, "model_type") and hasattr(obj, "to_dict") and not isinstance(obj, Mapping):
        obj = {k: v for k, v in obj.to_dict().items() if k not in _base_fields() or k == "model_type"}
    if isinstance(obj, str):
        try:
            obj = json.loads(obj)
        except json.JSONDecodeError:
            raise InvalidArchitectureError('an hf architecture is a config dict, {"model_type": "llama", ...}') from None
    if not isinstance(obj, Mapping):
        raise InvalidArchitectureError(f"an hf architecture is a config dict with a model_type, got {type(obj).__name__}")
    if "model_type" not in obj:
        raise InvalidArchitectureError('a config dict needs its "model_type" (e.g. "llama", "gpt2")', "model_type")
    fields = {k: v for k, v in obj.items() if k != "model_type"}
    try:
        fields = json.loads(json.dumps(fields))
    except (TypeError, ValueError) as e:
        raise InvalidArchitectureError(f"fields must be plain JSON values ({e})") from None
    return _parse_cached(obj["model_type"], json.dumps(fields, sort_keys=True))


@functools.lru_cache(maxsize=4096)
def _parse_cached(model_type: Any, text: str) -> HFArch:
    config_class(model_type)
    return canonical(build_config(model_type, json.loads(text)))


def build_model(arch: HFArch, *, seed: Optional[int] = 0, meta: bool = False) -> torch.nn.Module:
    """The language model of ``arch`` with weights drawn under ``torch.manual_seed(seed)`` on
    the CPU (the caller's RNG states are put back after; None: drawn from the caller's RNG), in
    eval mode; ``meta``: on the meta device (shapes only: no memory, no weights)."""
    transformers = _transformers()
    auto = getattr(transformers, lm_class(arch.model_type))
    config = arch.config()
    if meta:
        with torch.device("meta"):
            return auto.from_config(config).eval()
    if seed is None:
        return auto.from_config(config).eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return auto.from_config(config).eval()


@functools.lru_cache(maxsize=1024)
def config_of(arch: HFArch):
    """The config object of ``arch``, built once (read it; do not change it)."""
    return arch.config()


def config_value(arch: HFArch, *names: str, default: Optional[Any] = None) -> Any:
    """The first of ``names`` the config has (aliases resolved by the config itself)."""
    config = config_of(arch)
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return default
