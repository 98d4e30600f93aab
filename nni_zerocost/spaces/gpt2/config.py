"""The GPT-2 decoder architectures of LiteTransformerSearch (LTS) as a frozen, validated value type.

Javaheripi et al. (NeurIPS 2022) trained 200 random GPT-2 variants on WikiText-103 with archai's
``hf_gpt2_flex`` model and released each one's ``model_config.yaml``.  :meth:`DecoderConfig.parse`
takes that file's dict as is; :meth:`DecoderConfig.to_dict` writes it back, field for field.

What varies (the space LTS searched; every release config lies inside it, see the tests):

* ``n_layer`` 2..16 and one ``d_model`` in {64, 128, 256, 512} shared by all layers;
* per layer a head count ``n_head[i]`` in {2, 4, 8} and a feed-forward width ``d_inner[i]``, an
  integer in 512..2048 that must exceed 1.7 x d_model: LTS draws ``d_inner`` only among the
  values ``> 1.7 * d_model`` (archai ``nas/evolution.py``; for d_model 512 that means >= 871), and
  the release's extremes are exactly 512 and 2048;
* the adaptive input embedding / softmax: ``d_embed`` in {128, 256, 512} and ``div_val`` in
  {1, 2, 4} (cluster ``i`` has width ``d_embed // div_val**i``).

``cutoffs``, ``tie_weight`` and ``tie_projs`` are the same in all 200 configs (the defaults
below), but they define the model, so any valid value is accepted and honoured by the model and
the parameter counts.  ``cutoffs`` is kept as written; archai reads it as its
``clean_cutoffs`` does: the list is cut before the first entry larger than the vocabulary and
the vocabulary size is appended, so the release's ``[19997, 39997, 199997, 50264]`` means the
three clusters ``[0, 19997)``, ``[19997, 39997)``, ``[39997, 50264)``.

Every other field of the release file is fixed (:data:`FIXED`); it may be given, but only with the
release's value.  Several are Transformer-XL options that archai's GPT-2 ignores -- notably
``pre_lnorm: false``: the GPT-2 blocks archai trained are always pre-LN (LayerNorm before
attention and before the feed-forward block, one final LayerNorm), whatever this field says.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import Any, Dict, Mapping, Tuple

import numpy as np

from ...errors import InvalidArchitectureError

VOCAB_SIZE = 50_264  # archai's GPT-2 byte-level BPE for WikiText-103, padded to a multiple of 8
N_LAYERS = tuple(range(2, 17))
D_MODELS = (64, 128, 256, 512)
N_HEADS = (2, 4, 8)
D_INNER_MIN, D_INNER_MAX = 512, 2048
D_INNER_RATIO = 1.7
D_EMBEDS = (128, 256, 512)
DIV_VALS = (1, 2, 4)
RELEASE_CUTOFFS = (19997, 39997, 199997, 50264)
RELEASE_TIE_PROJS = (False, True, True, True)

#: the release's fixed fields and their values (the same in all 200 configs)
FIXED: Dict[str, Any] = {
    "adaptive": True, "attn_type": 0, "clamp_len": -1, "d_head": -1, "dropatt": 0.0, "dropout": 0.1,
    "dtype": None, "ext_len": 0, "mem_len": 192, "n_token": VOCAB_SIZE, "pre_lnorm": False,
    "primer_conv": False, "primer_square": False, "proj_init_std": 0.01, "same_length": False,
    "sample_softmax": -1, "tgt_len": 192, "use_cache": False, "weight_init_range": 0.1,
    "weight_init_std": 0.02, "weight_init_type": "normal",
}
#: why a fixed field cannot change, where the reason is not just "the space fixes it"
_FIXED_WHY = {
    "pre_lnorm": "archai's GPT-2 ignores it (its blocks are always pre-LN), so only the release's value is accepted",
    "n_token": "the vocabulary of archai's WikiText-103 GPT-2 tokenizer",
    "tgt_len": "the number of learned positions",
}
REQUIRED = ("n_layer", "d_model", "n_head", "d_inner", "d_embed", "div_val")
OPTIONAL = ("cutoffs", "tie_weight", "tie_projs")
MAX_POSITIONS = FIXED["tgt_len"]
INIT_STD = FIXED["weight_init_std"]
PROJ_INIT_STD = FIXED["proj_init_std"]


def d_inner_min(d_model: int) -> int:
    """Smallest feed-forward width allowed with ``d_model``: above 1.7 x d_model, and >= 512."""
    return max(D_INNER_MIN, math.floor(D_INNER_RATIO * d_model) + 1)


def clean_cutoffs(cutoffs, n_token: int = VOCAB_SIZE) -> Tuple[int, ...]:
    """The cluster ends archai uses: ``cutoffs`` up to (not including) the first entry above
    ``n_token``, with ``n_token`` appended (or the last entry clipped to it)."""
    cut = list(cutoffs)
    c = 1
    while c < len(cut) and cut[c] <= n_token:
        c += 1
    cut = cut[:c]
    if cut[-1] > n_token:
        cut[-1] = n_token
    if cut[-1] < n_token:
        cut.append(n_token)
    return tuple(cut)


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
    """A validated GPT-2 decoder of the LTS space (immutable, hashable, JSON round-trippable)."""

    n_layer: int
    d_model: int
    n_head: Tuple[int, ...]
    d_inner: Tuple[int, ...]
    d_embed: int
    div_val: int
    cutoffs: Tuple[int, ...] = RELEASE_CUTOFFS
    tie_weight: bool = True
    tie_projs: Tuple[bool, ...] = RELEASE_TIE_PROJS

    def __post_init__(self):
        """Validate, and store plain ints, bools and tuples (numpy scalars and lists are accepted)."""
        for name in ("n_layer", "d_model", "d_embed", "div_val"):
            object.__setattr__(self, name, _as_int(getattr(self, name), name))
        for name in ("n_head", "d_inner", "cutoffs"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, name, tuple(_as_int(v, f"{name}[{i}]") for i, v in enumerate(value)))
        object.__setattr__(self, "tie_weight", _as_bool(self.tie_weight, "tie_weight"))
        if isinstance(self.tie_projs, (list, tuple)):
            object.__setattr__(self, "tie_projs",
                               tuple(_as_bool(t, f"tie_projs[{i}]") for i, t in enumerate(self.tie_projs)))
        _validate(self)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def parse(cls, obj: Any) -> "DecoderConfig":
        """A release ``model_config.yaml`` dict (or a benchmark record holding it under
        ``config``), its JSON string, or a DecoderConfig; InvalidArchitectureError names the field."""
        if isinstance(obj, DecoderConfig):
            return obj
        if isinstance(obj, (str, bytes)):
            try:
                obj = json.loads(obj)
            except json.JSONDecodeError as e:
                raise InvalidArchitectureError(f"not valid JSON: {e}") from None
        if not isinstance(obj, Mapping):
            raise InvalidArchitectureError(f"expected a dict, JSON string or DecoderConfig, got {type(obj).__name__}")
        if "config" in obj and isinstance(obj["config"], Mapping):  # a benchmark record
            obj = obj["config"]
        unknown = sorted(str(k) for k in obj if k not in REQUIRED + OPTIONAL and k not in FIXED)
        if unknown:
            raise InvalidArchitectureError(
                f"unknown key(s) {unknown}; allowed: {list(REQUIRED + OPTIONAL)} and the release's fixed fields "
                f"{sorted(FIXED)}", unknown[0])
        for key in REQUIRED:
            if key not in obj:
                raise InvalidArchitectureError("missing", key)
        for key, value in FIXED.items():
            if key in obj and not _same(obj[key], value):
                why = _FIXED_WHY.get(key, "fixed in the LTS space")
                raise InvalidArchitectureError(f"must be {value!r} ({why}), got {obj[key]!r}", key)
        n_layer = _as_int(obj["n_layer"], "n_layer")
        _check_choice(n_layer, N_LAYERS, "n_layer")
        per_layer = {key: _per_layer(obj[key], n_layer, key) for key in ("n_head", "d_inner")}
        cutoffs = obj.get("cutoffs", RELEASE_CUTOFFS)
        if not isinstance(cutoffs, (list, tuple)) or not cutoffs:
            raise InvalidArchitectureError(f"must be a non-empty list of integers, got {cutoffs!r}", "cutoffs")
        tie_projs = obj.get("tie_projs", RELEASE_TIE_PROJS)
        if not isinstance(tie_projs, (list, tuple)):
            raise InvalidArchitectureError(f"must be a list of booleans, got {tie_projs!r}", "tie_projs")
        return cls(
            n_layer=n_layer,
            d_model=_as_int(obj["d_model"], "d_model"),
            n_head=per_layer["n_head"],
            d_inner=per_layer["d_inner"],
            d_embed=_as_int(obj["d_embed"], "d_embed"),
            div_val=_as_int(obj["div_val"], "div_val"),
            cutoffs=tuple(_as_int(c, f"cutoffs[{i}]") for i, c in enumerate(cutoffs)),
            tie_weight=_as_bool(obj.get("tie_weight", True), "tie_weight"),
            tie_projs=tuple(_as_bool(t, f"tie_projs[{i}]") for i, t in enumerate(tie_projs)),
        )

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "DecoderConfig":
        """Every searched choice independently uniform (d_inner uniform over its allowed integers);
        cutoffs and tying as in the release."""
        def pick(options):
            return options[int(rng.integers(len(options)))]

        n_layer, d_model = pick(N_LAYERS), pick(D_MODELS)
        heads = tuple(pick(N_HEADS) for _ in range(n_layer))
        inner = tuple(int(rng.integers(d_inner_min(d_model), D_INNER_MAX + 1)) for _ in range(n_layer))
        return cls(n_layer, d_model, heads, inner, pick(D_EMBEDS), pick(DIV_VALS))

    # -- views ----------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """The release's ``model_config.yaml`` form: every field, the fixed ones included."""
        out = dict(FIXED)
        out.update(n_layer=self.n_layer, d_model=self.d_model, n_head=list(self.n_head), d_inner=list(self.d_inner),
                   d_embed=self.d_embed, div_val=self.div_val, cutoffs=list(self.cutoffs),
                   tie_weight=self.tie_weight, tie_projs=list(self.tie_projs))
        return dict(sorted(out.items()))

    @property
    def cluster_ends(self) -> Tuple[int, ...]:
        """End of each vocabulary cluster (the last is the vocabulary size)."""
        return clean_cutoffs(self.cutoffs)

    @property
    def cluster_widths(self) -> Tuple[int, ...]:
        """Embedding width of each cluster: ``d_embed // div_val**i`` (all ``d_embed`` when div_val is 1)."""
        return tuple(self.d_embed // self.div_val ** i for i in range(len(self.cluster_ends)))

    @property
    def cluster_tie_projs(self) -> Tuple[bool, ...]:
        """``tie_projs`` for the clusters that exist (archai reads only that many entries)."""
        return self.tie_projs[: len(self.cluster_ends)]

    @property
    def has_projections(self) -> bool:
        """Whether any cluster is projected between d_embed and d_model (all are when div_val > 1)."""
        return self.div_val > 1 or self.d_embed != self.d_model

    def canonical_hash(self) -> str:
        """Hash of what defines the function: the layers in order, the embedding / softmax shape,
        the effective clusters and tying.  Equal for configs that build the same model, e.g. the
        release's cutoffs and their cleaned form, or any ``tie_projs`` when nothing is projected."""
        key = {
            "d_model": self.d_model,
            "layers": [[h, f] for h, f in zip(self.n_head, self.d_inner)],
            "d_embed": self.d_embed,
            "div_val": self.div_val,
            "clusters": list(self.cluster_ends),
            "tie_weight": self.tie_weight,
            "tie_projs": list(self.cluster_tie_projs) if self.has_projections else None,
        }
        text = json.dumps(key, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- validation helpers ---------------------------------------------------------------------
def _validate(cfg: DecoderConfig) -> None:
    _check_choice(cfg.n_layer, N_LAYERS, "n_layer")
    _check_choice(cfg.d_model, D_MODELS, "d_model")
    _check_choice(cfg.d_embed, D_EMBEDS, "d_embed")
    _check_choice(cfg.div_val, DIV_VALS, "div_val")
    for name in ("n_head", "d_inner"):
        value = getattr(cfg, name)
        if not isinstance(value, tuple) or len(value) != cfg.n_layer:
            got = f"{len(value)} entries" if isinstance(value, tuple) else repr(value)
            raise InvalidArchitectureError(f"must hold one entry per layer (n_layer = {cfg.n_layer}), got {got}", name)
    lo = d_inner_min(cfg.d_model)
    for i, (heads, inner) in enumerate(zip(cfg.n_head, cfg.d_inner)):
        _check_choice(heads, N_HEADS, f"n_head[{i}]")
        if not lo <= inner <= D_INNER_MAX:
            raise InvalidArchitectureError(
                f"must be an integer in {lo}..{D_INNER_MAX} (at least {D_INNER_MIN} and above "
                f"{D_INNER_RATIO} x d_model = {D_INNER_RATIO * cfg.d_model:g}), got {inner!r}", f"d_inner[{i}]")
    _validate_cutoffs(cfg.cutoffs)
    widths = cfg.cluster_widths
    if min(widths) < 1:
        raise InvalidArchitectureError(
            f"{len(widths)} clusters are too many for d_embed {cfg.d_embed} and div_val {cfg.div_val} "
            f"(cluster widths {list(widths)})", "cutoffs")
    if not isinstance(cfg.tie_projs, tuple) or len(cfg.tie_projs) < len(widths):
        raise InvalidArchitectureError(
            f"needs one entry per cluster ({len(widths)} clusters), got {cfg.tie_projs!r}", "tie_projs")


def _validate_cutoffs(cutoffs) -> None:
    """archai's rule: positive and strictly increasing up to the first entry above the vocabulary
    (entries after it are ignored)."""
    if not isinstance(cutoffs, tuple) or not cutoffs:
        raise InvalidArchitectureError(f"must be a non-empty list of integers, got {cutoffs!r}", "cutoffs")
    for i, c in enumerate(cutoffs):
        if c <= 0:
            raise InvalidArchitectureError(f"must be positive, got {c!r}", f"cutoffs[{i}]")
        if i > 0 and c <= cutoffs[i - 1]:
            raise InvalidArchitectureError(f"must exceed cutoffs[{i - 1}] = {cutoffs[i - 1]}, got {c}", f"cutoffs[{i}]")
        if c > VOCAB_SIZE:
            break


def _per_layer(value, n_layer: int, field: str) -> Tuple[int, ...]:
    """A list with one entry per layer, or one integer for every layer."""
    if isinstance(value, (list, tuple)):
        if len(value) != n_layer:
            raise InvalidArchitectureError(
                f"must hold one entry per layer (n_layer = {n_layer}), got {len(value)} entries", field)
        return tuple(_as_int(v, f"{field}[{i}]") for i, v in enumerate(value))
    return (_as_int(value, field),) * n_layer


def _check_choice(value, options, field) -> None:
    if isinstance(value, bool) or value not in options:
        shown = f"{options[0]}..{options[-1]}" if len(options) > 8 else str(list(options))
        raise InvalidArchitectureError(f"must be one of {shown}, got {value!r}", field)


def _as_int(value, field) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise InvalidArchitectureError(f"must be an integer, got {value!r}", field)


def _as_bool(value, field) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise InvalidArchitectureError(f"must be true or false, got {value!r}", field)


def _same(given, fixed) -> bool:
    """A fixed field's value matches the release's (0.1 == 0.1, 192 == 192.0; True is not 1)."""
    if isinstance(fixed, bool) or isinstance(given, bool) or fixed is None or given is None:
        return given is fixed or (isinstance(given, np.bool_) and bool(given) is fixed)
    if isinstance(fixed, str) or isinstance(given, str):
        return given == fixed
    try:
        return float(given) == float(fixed)
    except (TypeError, ValueError):
        return False
