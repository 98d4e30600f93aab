"""A family of Hugging Face configs to search, from a small YAML or JSON file (docs/hf-space.md).

.. code-block:: yaml

    model_type: llama                  # the config class (transformers' CONFIG_MAPPING)
    fixed:                             # fields every member has (any JSON value)
      vocab_size: 32000
      tie_word_embeddings: true
    choices:                           # the searched fields: a list of values or an integer range
      hidden_size: [256, 384, 512, 768]
      num_hidden_layers: {low: 2, high: 16}
      intermediate_size: {low: 512, high: 3072, step: 256}
    per_layer:                         # optional: fields holding one value per layer
      layer_types: [full_attention, sliding_attention]
    layers: num_hidden_layers          # optional: the field counting the layers (this default)
    require:                           # optional: relations every member satisfies
      - intermediate_size >= 2 * hidden_size

A member is valid when transformers' config class builds it (its own checks: heads dividing
the hidden size, ...) and every ``require`` relation holds.  A relation is a Python expression
over config fields (aliases and derived fields such as ``head_dim`` too), numbers and strings,
with ``+ - * / // % **``, comparisons, ``and or not``, ``in`` and ``len min max sum abs all any``.

Searching: :meth:`Family.labels` are flat NNI labels (each searched field; ``layer_{i}_{field}``
for the per-layer fields, the slots beyond a member's depth unused).  :meth:`Family.member` turns
labels into a valid member: the labels themselves when valid, else the nearest valid member
one label away (nearest value first), so every sampler's draw decodes; a draw with no valid
member that close is a clean :class:`~nni_zerocost.errors.InvalidArchitectureError`.
:meth:`Family.sample` draws labels uniformly and redraws an invalid draw (up to
:data:`DRAWS` times) before falling back on :meth:`member`.

Bad files fail at once with one line naming the file and the field
(:class:`~nni_zerocost.errors.BadInputError`, field ``choices``).
"""
from __future__ import annotations

import ast
import collections
import dataclasses
import functools
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from ...errors import BadInputError, InvalidArchitectureError, suggest
from .config import HFArch, config_class, config_of, field_name, parse

#: the keys of a family file
KEYS = ("model_type", "fixed", "choices", "per_layer", "layers", "require")
#: redraws of an invalid sample before it is repaired; members a repair tries; values of a range
DRAWS, REPAIRS, MAX_VALUES = 100, 2000, 100_000
#: what a relation may call
FUNCTIONS = {"len": len, "min": min, "max": max, "sum": sum, "abs": abs, "all": all, "any": any}
_NODES = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd, ast.BinOp,
          ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.Compare, ast.Eq, ast.NotEq,
          ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Name, ast.Load, ast.Constant, ast.Call,
          ast.List, ast.Tuple)


class _Refusal(Exception):
    """A bad family file: where (``choices.hidden_size``) and what is wrong."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}" if where else problem)


def _scalar(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _values(where: str, spec: Any) -> Tuple[Any, ...]:
    """A list of values, or an integer range ``{low, high, step}`` (both ends included)."""
    if isinstance(spec, list):
        if not spec:
            raise _Refusal(where, "an empty list (give at least one value)")
        bad = [v for v in spec if not _scalar(v)]
        if bad:
            raise _Refusal(where, f"{bad[0]!r}: values are numbers, strings, booleans or null (a list per layer "
                                  "goes under per_layer)")
        if len({json.dumps(v) for v in spec}) != len(spec):
            raise _Refusal(where, "lists a value twice")
        return tuple(spec)
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - {"low", "high", "step"})
        if unknown:
            raise _Refusal(where, f"unknown key {unknown[0]!r}{suggest(unknown[0], ['low', 'high', 'step'])} (a range "
                                  "is {low: L, high: H, step: S})")
        low, high, step = spec.get("low"), spec.get("high"), spec.get("step", 1)
        for key, v in (("low", low), ("high", high), ("step", step)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise _Refusal(where, f"{key} must be an integer, got {v!r}")
        if step < 1 or low > high:
            raise _Refusal(where, f"needs low <= high and step >= 1, got low {low}, high {high}, step {step}")
        if (high - low) // step + 1 > MAX_VALUES:
            raise _Refusal(where, f"has {(high - low) // step + 1:,} values; at most {MAX_VALUES:,} (raise step)")
        return tuple(range(low, high + 1, step))
    raise _Refusal(where, f"must be a list of values or a range {{low: L, high: H, step: S}}, got {spec!r}")


def _relation(where: str, text: Any, model_type: str):
    """A ``require`` relation compiled, its names checked against the config class."""
    if not isinstance(text, str) or not text.strip():
        raise _Refusal(where, f"a relation is a string such as 'hidden_size % num_attention_heads == 0', got {text!r}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise _Refusal(where, f"{text!r} is not an expression ({e.msg})") from None
    for node in ast.walk(tree):
        if not isinstance(node, _NODES):
            raise _Refusal(where, f"{text!r}: {type(node).__name__} is not allowed (fields, numbers, strings, "
                                  "arithmetic, comparisons, and/or/not, in, " + ", ".join(FUNCTIONS) + ")")
        if isinstance(node, ast.Call) and (not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS
                                           or node.keywords):
            raise _Refusal(where, f"{text!r}: calls only {', '.join(FUNCTIONS)} (no keywords)")
        if isinstance(node, ast.Name) and node.id not in FUNCTIONS:
            try:
                field_name(model_type, node.id)
            except InvalidArchitectureError as e:
                raise _Refusal(where, f"{text!r}: {e.problem}") from None
    return compile(tree, "<require>", "eval")


class _ConfigNames(Mapping):
    """A config's fields as the names a relation reads (aliases resolved by the config)."""

    def __init__(self, config):
        self.config = config

    def __getitem__(self, name):
        if not hasattr(self.config, name):
            raise KeyError(name)
        return getattr(self.config, name)

    def __iter__(self):
        return iter(())

    def __len__(self):
        return 0


@dataclasses.dataclass(frozen=True, eq=False)
class Family:
    """A checked family (see the module docstring); ``spec`` is the file's content as plain
    JSON (what crosses process boundaries), ``source`` where it came from (for messages)."""

    model_type: str
    fixed: Mapping[str, Any]
    choices: Mapping[str, Tuple[Any, ...]]
    per_layer: Mapping[str, Tuple[Any, ...]]
    layers: str
    require: Tuple[Tuple[str, Any], ...]
    spec: Mapping[str, Any]
    source: str

    # -- labels -------------------------------------------------------------------------------
    @functools.cached_property
    def max_layers(self) -> int:
        if not self.per_layer:
            return 0
        n = self.fixed.get(self.layers)
        return int(n) if n is not None else max(self.choices[self.layers])

    @functools.cached_property
    def _labels(self) -> Dict[str, List[Any]]:
        out = {field: list(values) for field, values in self.choices.items()}
        for i in range(self.max_layers):
            out.update({f"layer_{i}_{field}": list(values) for field, values in self.per_layer.items()})
        return out

    def labels(self) -> Dict[str, List[Any]]:
        """``{label: [values]}``: the NNI labels of the family."""
        return {k: list(v) for k, v in self._labels.items()}

    def depth(self, labels: Mapping[str, Any]) -> int:
        return int(labels.get(self.layers, self.fixed.get(self.layers, 0)))

    def config_dict(self, labels: Mapping[str, Any]) -> Dict[str, Any]:
        """The config dict the labels describe (fixed fields, searched fields, per-layer lists)."""
        d = {"model_type": self.model_type, **self.fixed}
        d.update({field: labels[field] for field in self.choices})
        n = self.depth(labels) if self.per_layer else 0
        for field in self.per_layer:
            d[field] = [labels[f"layer_{i}_{field}"] for i in range(n)]
        return d

    # -- members ------------------------------------------------------------------------------
    def check(self, labels: Mapping[str, Any]) -> Tuple[Optional[HFArch], Optional[str]]:
        """``(architecture, None)`` when the labels describe a valid member, else ``(None, why)``."""
        try:
            arch = parse(self.config_dict(labels))
        except InvalidArchitectureError as e:
            return None, str(e)
        if self.require:
            names = _ConfigNames(config_of(arch))
            for text, code in self.require:
                try:
                    ok = eval(code, {"__builtins__": {}, **FUNCTIONS}, names)  # nodes checked by _relation
                except Exception as e:  # e.g. a division by zero: the relation does not hold
                    return None, f"require {text!r}: {type(e).__name__}: {e}"
                if not ok:
                    return None, f"require {text!r} does not hold"
        return arch, None

    def member(self, labels: Mapping[str, Any]) -> HFArch:
        """The valid member the labels describe, else the nearest one: labels moved one value
        at a time, breadth first (fewest steps first; then label order, the smaller value
        first), at most :data:`REPAIRS` tried; InvalidArchitectureError when none is found."""
        arch, why = self.check(labels)
        if arch is not None:
            return arch
        start = tuple(self._labels[label].index(labels[label]) for label in self._labels)
        names = list(self._labels)
        seen, queue = {start}, collections.deque([start])
        while queue and len(seen) <= REPAIRS:
            state = queue.popleft()
            for i in self._used(state, names):
                for j in (state[i] - 1, state[i] + 1):
                    if not 0 <= j < len(self._labels[names[i]]):
                        continue
                    moved = state[:i] + (j,) + state[i + 1:]
                    if moved in seen:
                        continue
                    seen.add(moved)
                    arch, _ = self.check({n: self._labels[n][k] for n, k in zip(names, moved)})
                    if arch is not None:
                        return arch
                    queue.append(moved)
        raise InvalidArchitectureError(f"{why.rstrip('.')}; no valid member of the family within {len(seen) - 1} "
                                       "nearest label changes")

    def _used(self, state: Tuple[int, ...], names: List[str]) -> List[int]:
        """Indices of the labels the config sees (per-layer slots within the depth)."""
        if not self.per_layer:
            return list(range(len(names)))
        n = self.depth({n: self._labels[n][k] for n, k in zip(names, state) if n == self.layers})
        return [i for i, name in enumerate(names) if name in self.choices or int(name.split("_")[1]) < n]

    def sample(self, rng: np.random.Generator) -> HFArch:
        """A member: labels drawn uniformly, redrawn while invalid (up to :data:`DRAWS` draws),
        the last draw repaired (:meth:`member`)."""
        labels: Dict[str, Any] = {}
        for _ in range(DRAWS):
            labels = {label: values[int(rng.integers(len(values)))] for label, values in self._labels.items()}
            arch, _ = self.check(labels)
            if arch is not None:
                return arch
        return self.member(labels)

    def encode(self, arch: HFArch) -> Dict[str, Any]:
        """The labels of a member; InvalidArchitectureError naming the field for a config
        outside the family."""
        if arch.model_type != self.model_type:
            raise InvalidArchitectureError(f"outside the family: model_type {arch.model_type!r}, the family's is "
                                           f"{self.model_type!r}", "model_type")
        fields = arch.fields
        labels: Dict[str, Any] = {}
        for field, values in self.choices.items():
            if fields.get(field) not in values:
                raise InvalidArchitectureError(f"outside the family: {fields.get(field)!r} is not one of "
                                               f"{_shown(values)}", field)
            labels[field] = values[values.index(fields[field])]
        n = self.depth(labels)
        for field, values in self.per_layer.items():
            given = fields.get(field)
            if not isinstance(given, list) or len(given) != n or any(v not in values for v in given):
                raise InvalidArchitectureError(f"outside the family: {given!r} is not {n} values of {_shown(values)}",
                                               field)
            for i in range(self.max_layers):
                labels[f"layer_{i}_{field}"] = values[values.index(given[i])] if i < n else values[0]
        again, why = self.check(labels)
        if again is None or again != arch:
            raise InvalidArchitectureError("outside the family: " + (why or "its fixed fields differ"))
        return labels

    def summary_fields(self) -> List[str]:
        """The fields that tell members apart."""
        return list(self.choices) + list(self.per_layer)


def _shown(values) -> str:
    values = list(values)
    return str(values) if len(values) <= 8 else f"[{values[0]!r}, {values[1]!r}, ..., {values[-1]!r}] ({len(values)})"


# -- reading a family ------------------------------------------------------------------------------
def load_family(value: Any) -> Family:
    """The family of a file path or of its content (a mapping); BadInputError (field
    ``choices``) naming the file and the field otherwise."""
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        subject = repr(str(value))
        if not path.is_file():
            raise BadInputError("choices", "no such file (a YAML or JSON family of configs: docs/hf-space.md)", subject)
        try:
            text = path.read_text(encoding="utf-8")
            if path.suffix.lower() == ".json":
                spec = json.loads(text)
            else:
                try:
                    import yaml
                except ImportError:
                    raise BadInputError("choices", "reading YAML needs PyYAML (pip install pyyaml); or give a .json "
                                                   "file", subject) from None
                spec = yaml.safe_load(text)
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise BadInputError("choices", f"not readable as {'JSON' if path.suffix.lower() == '.json' else 'YAML'} "
                                           f"({str(e).splitlines()[0]})", subject) from None
        except Exception as e:  # yaml.YAMLError
            raise BadInputError("choices", f"not valid YAML ({' '.join(str(e).split())})", subject) from None
        source = path.name
    elif isinstance(value, Mapping):
        spec, subject, source = value, None, "inline"
    else:
        raise BadInputError("choices", f"must be a family file (YAML or JSON) or its content as a dict, got "
                                       f"{type(value).__name__}")
    try:
        text = json.dumps(spec)  # the file's order is the labels' order
    except (TypeError, ValueError) as e:
        raise BadInputError("choices", f"values must be plain JSON ({e})", subject) from None
    try:
        return _family(text, source)
    except _Refusal as e:
        raise BadInputError("choices", str(e), subject) from None


@functools.lru_cache(maxsize=32)
def _family(text: str, source: str) -> Family:
    spec = json.loads(text)
    if not isinstance(spec, dict):
        raise _Refusal("", "a family is a mapping with model_type, choices and optionally fixed, per_layer, layers, "
                           "require")
    unknown = [k for k in spec if k not in KEYS]
    if unknown:
        raise _Refusal(unknown[0], f"unknown key{suggest(unknown[0], KEYS)}; a family has {', '.join(KEYS)}")
    model_type = spec.get("model_type")
    try:
        cls = config_class(model_type)
    except InvalidArchitectureError as e:
        raise _Refusal("model_type", e.problem) from None

    def real(where: str, name: str) -> str:
        try:
            return field_name(model_type, name)
        except InvalidArchitectureError as e:
            raise _Refusal(where, e.problem) from None

    sections: Dict[str, Dict[str, Any]] = {}
    seen: Dict[str, str] = {}
    for section in ("fixed", "choices", "per_layer"):
        given = spec.get(section) or {}
        if not isinstance(given, dict):
            raise _Refusal(section, f"must be a mapping of field: value, got {type(given).__name__}")
        out = {}
        for name, v in given.items():
            where = f"{section}.{name}"
            field = real(where, name)
            if field in seen:
                raise _Refusal(where, f"is already in {seen[field]} (a field is fixed, searched or per layer)")
            seen[field] = where
            out[field] = v if section == "fixed" else _values(where, v)
        sections[section] = out
    fixed, choices, per_layer = sections["fixed"], sections["choices"], sections["per_layer"]
    if not choices and not per_layer:
        raise _Refusal("choices", "nothing to search: give at least one field with several values")
    layers = real("layers", spec.get("layers", "num_hidden_layers"))
    if per_layer:
        counts = [fixed[layers]] if layers in fixed else list(choices.get(layers, ()))
        if not counts or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in counts):
            raise _Refusal("per_layer", f"needs the layer count {layers!r} fixed or in choices, as integers >= 1")
    require = spec.get("require") or []
    if isinstance(require, str):
        require = [require]
    if not isinstance(require, list):
        raise _Refusal("require", f"must be a list of relations, got {type(require).__name__}")
    relations = tuple((text, _relation(f"require[{i}]", text, model_type)) for i, text in enumerate(require))
    _check_types(cls, fixed, choices, per_layer)
    family = Family(model_type, fixed, choices, per_layer, layers, relations, spec, source)
    try:
        family.sample(np.random.default_rng(0))
    except InvalidArchitectureError as e:
        raise _Refusal("", f"no valid {cls.__name__} found in {DRAWS} draws of the family: {e}") from None
    return family


def _check_types(cls, fixed: Mapping[str, Any], choices: Mapping[str, Tuple[Any, ...]],
                 per_layer: Mapping[str, Tuple[Any, ...]]) -> None:
    """Each value alone must be of its field's type (the class checks it field by field; a
    refusal of a combination is left to the members).  Long ranges: their two ends."""
    def refuses(fields) -> Optional[str]:
        try:
            cls(**fields)
        except Exception as e:
            if "FieldValidation" in type(e).__name__ or isinstance(e, TypeError):
                lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
                return lines[-1] if lines else type(e).__name__
        return None

    for field, v in fixed.items():
        why = refuses({field: v})
        if why:
            raise _Refusal(f"fixed.{field}", why)
    for section, searched in (("choices", choices), ("per_layer", per_layer)):
        for field, values in searched.items():
            for v in (values if len(values) <= 64 else (values[0], values[-1])):
                why = refuses({**fixed, field: [v] if section == "per_layer" else v})
                if why:
                    raise _Refusal(f"{section}.{field}", f"{v!r}: {why}")
