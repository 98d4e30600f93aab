"""The FlexiBERT-style architecture of the BERT benchmark as a frozen, validated value type.

Space (Serianni & Kalita 2023, ``search_space.json``): hidden size {128, 256}, 2 or 4 encoder
layers; per layer an operation type with its parameter -- ``SA`` (self-attention: ``SDP`` scaled
dot-product or ``WMA`` weighted multiplicative), ``LT`` (linear transform token mixing: ``DFT``
or ``DCT``), ``DSC`` (span-based dynamic convolution, kernel 5 or 9) -- a head count {2, 4}, a
feed-forward width {512, 1024} and a feed-forward depth {1, 3}.

Three dict forms are accepted by :meth:`BertConfig.parse`:

* the benchmark's ``model_hparam_overrides``: ``{"hidden_size": 256, "nas_config":
  {"encoder_layers": [{"operation_type": "SA", "operation_parameter": "SDP", ...}, ...]}}``
  (also inside a full benchmark record, under ``hparams``); this is what :meth:`to_dict` writes;
* a flat dict of scalars (one value per key, as hyper-parameter tuners such as NNI hand out):
  ``{"hidden_size": 256, "num_layers": 2, "layers.0.operation_type": "SA", ...}``
  (:meth:`to_flat`);
* a JSON string of either, or a :class:`BertConfig`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Dict, Mapping, Tuple, Union

import numpy as np

from ...errors import InvalidArchitectureError

HIDDEN_SIZES = (128, 256)
NUM_LAYERS = (2, 4)
OPERATIONS: Dict[str, Tuple[Union[str, int], ...]] = {
    "SA": ("SDP", "WMA"),
    "LT": ("DFT", "DCT"),
    "DSC": (5, 9),
}
HEADS = (2, 4)
FEED_FORWARD_DIMS = (512, 1024)
NUM_FEED_FORWARD = (1, 3)
LAYER_FIELDS = (
    "operation_type", "operation_parameter", "num_operation_heads",
    "feed_forward_dimension", "num_feed_forward",
)


@dataclasses.dataclass(frozen=True)
class LayerConfig:
    """One encoder layer: token-mixing operation + feed-forward stack."""

    operation_type: str
    operation_parameter: Union[str, int]
    num_operation_heads: int
    feed_forward_dimension: int
    num_feed_forward: int

    def to_dict(self) -> Dict[str, Any]:
        return {f: getattr(self, f) for f in LAYER_FIELDS}

    @property
    def kernel_size(self) -> int:
        """Convolution span of a DSC layer."""
        if self.operation_type != "DSC":
            raise AttributeError(f"a {self.operation_type} layer has no kernel size")
        return int(self.operation_parameter)


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """A validated architecture of the space (immutable, hashable, JSON round-trippable)."""

    hidden_size: int
    layers: Tuple[LayerConfig, ...]

    def __post_init__(self):
        _check_choice(self.hidden_size, HIDDEN_SIZES, "hidden_size")
        if not isinstance(self.layers, tuple):
            object.__setattr__(self, "layers", tuple(self.layers))
        _check_choice(len(self.layers), NUM_LAYERS, "number of encoder layers")
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, LayerConfig):
                raise InvalidArchitectureError(f"expected a LayerConfig, got {type(layer).__name__}", f"layers[{i}]")
            _validate_layer(layer, i)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def parse(cls, obj: Any) -> "BertConfig":
        """Validate a config in any accepted form; raise InvalidArchitectureError naming the field."""
        if isinstance(obj, BertConfig):
            return obj
        if isinstance(obj, (str, bytes)):
            try:
                obj = json.loads(obj)
            except json.JSONDecodeError as e:
                raise InvalidArchitectureError(f"not valid JSON: {e}") from None
        if not isinstance(obj, Mapping):
            raise InvalidArchitectureError(
                f"expected a dict, JSON string or BertConfig, got {type(obj).__name__}"
            )
        if "hparams" in obj and isinstance(obj["hparams"], Mapping):  # a whole benchmark record
            obj = obj["hparams"].get("model_hparam_overrides", obj["hparams"])
        if "model_hparam_overrides" in obj:
            obj = obj["model_hparam_overrides"]
        if "nas_config" in obj:
            return cls._from_nested(obj)
        if "num_layers" in obj or any(str(k).startswith("layers.") for k in obj):
            return cls._from_flat(obj)
        if "encoder_layers" in obj:  # nested without the nas_config level
            return cls._from_nested({"hidden_size": obj.get("hidden_size"), "nas_config": obj})
        raise InvalidArchitectureError(
            "unrecognised config dict: expected keys 'hidden_size' and 'nas_config' "
            "(benchmark form) or 'hidden_size', 'num_layers' and 'layers.<i>.<field>' (flat form); "
            f"got keys {sorted(map(str, obj))}"
        )

    @classmethod
    def _from_nested(cls, obj: Mapping) -> "BertConfig":
        _reject_unknown(obj, ("hidden_size", "nas_config"), None)
        if "hidden_size" not in obj:
            raise InvalidArchitectureError("missing", "hidden_size")
        nas = obj["nas_config"]
        if not isinstance(nas, Mapping) or "encoder_layers" not in nas:
            raise InvalidArchitectureError("must be a dict with an 'encoder_layers' list", "nas_config")
        _reject_unknown(nas, ("encoder_layers",), "nas_config")
        layers = nas["encoder_layers"]
        if not isinstance(layers, (list, tuple)):
            raise InvalidArchitectureError(f"must be a list, got {type(layers).__name__}", "nas_config.encoder_layers")
        _check_choice(len(layers), NUM_LAYERS, "number of encoder layers")
        parsed = []
        for i, layer in enumerate(layers):
            if not isinstance(layer, Mapping):
                raise InvalidArchitectureError(f"must be a dict, got {type(layer).__name__}", f"encoder_layers[{i}]")
            parsed.append(_parse_layer(layer, i))
        return cls(_as_int(obj["hidden_size"], "hidden_size"), tuple(parsed))

    @classmethod
    def _from_flat(cls, obj: Mapping) -> "BertConfig":
        for key in ("hidden_size", "num_layers"):
            if key not in obj:
                raise InvalidArchitectureError("missing", key)
        n = _as_int(obj["num_layers"], "num_layers")
        _check_choice(n, NUM_LAYERS, "num_layers")
        allowed = {"hidden_size", "num_layers"} | {f"layers.{i}.{f}" for i in range(n) for f in LAYER_FIELDS}
        _reject_unknown(obj, tuple(sorted(allowed)), None)
        layers = []
        for i in range(n):
            fields = {f: obj[f"layers.{i}.{f}"] for f in LAYER_FIELDS if f"layers.{i}.{f}" in obj}
            layers.append(_parse_layer(fields, i, prefix=f"layers.{i}."))
        return cls(_as_int(obj["hidden_size"], "hidden_size"), tuple(layers))

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "BertConfig":
        """Uniform draw: every choice independently uniform (as the benchmark was sampled)."""
        def pick(options):
            return options[int(rng.integers(len(options)))]

        hidden = pick(HIDDEN_SIZES)
        layers = []
        for _ in range(pick(NUM_LAYERS)):
            op = pick(tuple(OPERATIONS))
            layers.append(LayerConfig(op, pick(OPERATIONS[op]), pick(HEADS), pick(FEED_FORWARD_DIMS), pick(NUM_FEED_FORWARD)))
        return cls(hidden, tuple(layers))

    # -- views ----------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """The benchmark's ``model_hparam_overrides`` form."""
        return {"hidden_size": self.hidden_size, "nas_config": {"encoder_layers": [l.to_dict() for l in self.layers]}}

    def to_flat(self) -> Dict[str, Any]:
        """One scalar per key: ``hidden_size``, ``num_layers``, ``layers.<i>.<field>``."""
        out: Dict[str, Any] = {"hidden_size": self.hidden_size, "num_layers": len(self.layers)}
        for i, layer in enumerate(self.layers):
            for f in LAYER_FIELDS:
                out[f"layers.{i}.{f}"] = getattr(layer, f)
        return out

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def canonical_hash(self, as_trained: bool = False) -> str:
        """Hash of the architecture; equal configs hash equal (the benchmark has 491 of 500).

        Every field changes the function of the declared model, so the canonical form is the
        config itself.  ``as_trained=True`` hashes what was actually trained by the benchmark's
        code (operation type and parameter ignored, see :mod:`.model`), under which many more
        configs coincide.
        """
        if as_trained:
            key = {"hidden_size": self.hidden_size, "as_trained": [
                [l.num_operation_heads, l.num_feed_forward, l.feed_forward_dimension if l.num_feed_forward > 1 else None]
                for l in self.layers]}
        else:
            key = self.to_dict()
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


# -- validation helpers ---------------------------------------------------------------------
def _check_choice(value, options, field):
    if isinstance(value, bool) or value not in options:
        raise InvalidArchitectureError(f"must be one of {list(options)}, got {value!r}", field)


def _as_int(value, field) -> int:
    if isinstance(value, bool):
        raise InvalidArchitectureError(f"must be an integer, got {value!r}", field)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise InvalidArchitectureError(f"must be an integer, got {value!r}", field)


def _reject_unknown(obj: Mapping, allowed, where):
    unknown = sorted(str(k) for k in obj if k not in allowed)
    if unknown:
        raise InvalidArchitectureError(f"unknown key(s) {unknown}; allowed: {list(allowed)}", where)


def _parse_layer(d: Mapping, i: int, prefix: str | None = None) -> LayerConfig:
    where = prefix if prefix is not None else f"encoder_layers[{i}]."
    _reject_unknown(d, LAYER_FIELDS, where.rstrip("."))
    missing = [f for f in LAYER_FIELDS if f not in d]
    if missing:
        raise InvalidArchitectureError(f"missing field(s) {missing}", where.rstrip("."))
    op = d["operation_type"]
    if not isinstance(op, str) or op not in OPERATIONS:
        raise InvalidArchitectureError(f"must be one of {list(OPERATIONS)}, got {op!r}", where + "operation_type")
    param = d["operation_parameter"]
    if op == "DSC":
        param = _as_int(param, where + "operation_parameter")
    layer = LayerConfig(
        op, param,
        _as_int(d["num_operation_heads"], where + "num_operation_heads"),
        _as_int(d["feed_forward_dimension"], where + "feed_forward_dimension"),
        _as_int(d["num_feed_forward"], where + "num_feed_forward"),
    )
    _validate_layer(layer, i, where)
    return layer


def _validate_layer(layer: LayerConfig, i: int, where: str | None = None) -> None:
    where = where if where is not None else f"encoder_layers[{i}]."
    if not isinstance(layer.operation_type, str) or layer.operation_type not in OPERATIONS:
        raise InvalidArchitectureError(
            f"must be one of {list(OPERATIONS)}, got {layer.operation_type!r}", where + "operation_type")
    allowed = OPERATIONS[layer.operation_type]
    if isinstance(layer.operation_parameter, bool) or layer.operation_parameter not in allowed:
        raise InvalidArchitectureError(
            f"must be one of {list(allowed)} for operation_type {layer.operation_type!r}, "
            f"got {layer.operation_parameter!r}", where + "operation_parameter")
    _check_choice(layer.num_operation_heads, HEADS, where + "num_operation_heads")
    _check_choice(layer.feed_forward_dimension, FEED_FORWARD_DIMS, where + "feed_forward_dimension")
    _check_choice(layer.num_feed_forward, NUM_FEED_FORWARD, where + "num_feed_forward")


def space_size() -> int:
    """Number of distinct configs (10,621,440 per the authors' count)."""
    per_layer = sum(len(p) for p in OPERATIONS.values()) * len(HEADS) * len(FEED_FORWARD_DIMS) * len(NUM_FEED_FORWARD)
    return len(HIDDEN_SIZES) * sum(per_layer ** n for n in NUM_LAYERS)
