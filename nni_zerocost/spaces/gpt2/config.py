"""The GPT-2 decoder architectures of LiteTransformerSearch (LTS) as a frozen, validated value type.

Javaheripi et al. (NeurIPS 2022) trained 200 random GPT-2 variants on WikiText-103 with archai's
``hf_gpt2_flex`` model and released each one's ``model_config.yaml``.  :meth:`DecoderConfig.parse`
takes that file's dict as is; :meth:`DecoderConfig.to_dict` writes it back, field for field.

Two sets are kept apart: what *parses* and what the space *samples*.

What parses is any decoder ``hf_gpt2_flex`` builds: positive sizes, one ``n_head`` and one
``d_inner`` per layer, ``d_model`` divisible by every head count, ``d_embed`` positive or -1
(archai: ``d_embed = d_model``), any ``div_val`` >= 1 with valid ``cutoffs`` (read as archai's
``clean_cutoffs`` does: the list is cut before the first entry larger than the vocabulary and the
vocabulary size is appended, so ``[19997, 39997, 199997, 50264]`` means the three clusters
``[0, 19997)``, ``[19997, 39997)``, ``[39997, 50264)``, and ``[59997, ...]`` one cluster), any
``tie_weight`` / ``tie_projs``, ``tgt_len`` learned positions and an ``n_token`` vocabulary of
archai's GPT-2 BPE (50,257 tokens, padded).  So every config LTS released parses: the 200 of
WikiText-103 and those of One Billion Words (``tgt_len`` 32, ``d_embed`` -1, one cluster, Pareto
models with d_model up to 960).

What the space samples (:meth:`DecoderConfig.sample`, the space's ``choices()``, the NNI codec)
is the space LTS searched; every WikiText-103 config lies inside it (see the tests), and
:func:`check_searched` names the first field of a config outside it:

* ``n_layer`` 2..16 and one ``d_model`` in {64, 128, 256, 512} shared by all layers;
* per layer a head count ``n_head[i]`` in {2, 4, 8} and a feed-forward width ``d_inner[i]``, an
  integer in 512..2048 that must exceed 1.7 x d_model: LTS draws ``d_inner`` only among the
  values ``> 1.7 * d_model`` (archai ``nas/evolution.py``; for d_model 512 that means >= 871), and
  the release's extremes are exactly 512 and 2048;
* the adaptive input embedding / softmax: ``d_embed`` in {128, 256, 512} and ``div_val`` in
  {1, 2, 4} (cluster ``i`` has width ``d_embed // div_val**i``);
* the rest as in the WikiText-103 release (the defaults below): its cutoffs and tying, 192
  positions, the 50,264-token vocabulary.

Every other field of the release file is fixed (:data:`FIXED`); it may be given, but only with the
release's value.  Several are Transformer-XL options that archai's GPT-2 ignores -- notably
``pre_lnorm: false``: the GPT-2 blocks archai trained are always pre-LN (LayerNorm before
attention and before the feed-forward block, one final LayerNorm), whatever this field says.
``use_cache`` (Hugging Face's key/value cache at inference) is kept as written but changes
nothing the space computes.
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
BPE_TOKENS = 50_257  # that BPE without padding: every batch here draws its ids below it
TGT_LEN = 192  # learned positions of the WikiText-103 release (the default and the searched value)
N_LAYERS = tuple(range(2, 17))
D_MODELS = (64, 128, 256, 512)
N_HEADS = (2, 4, 8)
D_INNER_MIN, D_INNER_MAX = 512, 2048
D_INNER_RATIO = 1.7
D_EMBEDS = (128, 256, 512)
DIV_VALS = (1, 2, 4)
RELEASE_CUTOFFS = (19997, 39997, 199997, 50264)
RELEASE_TIE_PROJS = (False, True, True, True)

#: the release's fixed fields and their values (the same in every released config)
FIXED: Dict[str, Any] = {
    "adaptive": True, "attn_type": 0, "clamp_len": -1, "d_head": -1, "dropatt": 0.0, "dropout": 0.1,
    "dtype": None, "ext_len": 0, "mem_len": 192, "pre_lnorm": False,
    "primer_conv": False, "primer_square": False, "proj_init_std": 0.01, "same_length": False,
    "sample_softmax": -1, "weight_init_range": 0.1,
    "weight_init_std": 0.02, "weight_init_type": "normal",
}
#: why a fixed field cannot change, where the reason is not just "the space fixes it"
_FIXED_WHY = {
    "pre_lnorm": "archai's GPT-2 ignores it (its blocks are always pre-LN), so only the release's value is accepted",
}
REQUIRED = ("n_layer", "d_model", "n_head", "d_inner", "d_embed", "div_val")
OPTIONAL = ("cutoffs", "tie_weight", "tie_projs", "tgt_len", "n_token", "use_cache")
#: the longest batch row; a model with fewer positions scores the batch re-cut (``context.py``)
MAX_POSITIONS = TGT_LEN
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
    """A validated GPT-2 decoder (immutable, hashable, JSON round-trippable); see the module
    docstring for what parses and what the space samples."""

    n_layer: int
    d_model: int
    n_head: Tuple[int, ...]
    d_inner: Tuple[int, ...]
    d_embed: int
    div_val: int
    cutoffs: Tuple[int, ...] = RELEASE_CUTOFFS
    tie_weight: bool = True
    tie_projs: Tuple[bool, ...] = RELEASE_TIE_PROJS
    tgt_len: int = TGT_LEN
    n_token: int = VOCAB_SIZE
    use_cache: bool = False

    def __post_init__(self):
        """Validate, and store plain ints, bools and tuples (numpy scalars and lists are accepted)."""
        for name in ("n_layer", "d_model", "d_embed", "div_val", "tgt_len", "n_token"):
            object.__setattr__(self, name, _as_int(getattr(self, name), name))
        for name in ("n_head", "d_inner", "cutoffs"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, name, tuple(_as_int(v, f"{name}[{i}]") for i, v in enumerate(value)))
        for name in ("tie_weight", "use_cache"):
            object.__setattr__(self, name, _as_bool(getattr(self, name), name))
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
        if n_layer < 1:
            raise InvalidArchitectureError(f"must be a positive integer, got {n_layer}", "n_layer")
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
            tgt_len=_as_int(obj.get("tgt_len", TGT_LEN), "tgt_len"),
            n_token=_as_int(obj.get("n_token", VOCAB_SIZE), "n_token"),
            use_cache=_as_bool(obj.get("use_cache", False), "use_cache"),
        )

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "DecoderConfig":
        """Every searched choice independently uniform (d_inner uniform over its allowed integers);
        the other fields as in the WikiText-103 release."""
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
                   tie_weight=self.tie_weight, tie_projs=list(self.tie_projs), tgt_len=self.tgt_len,
                   n_token=self.n_token, use_cache=self.use_cache)
        return dict(sorted(out.items()))

    @property
    def embedding_width(self) -> int:
        """``d_embed`` as archai uses it: d_model where the file says -1."""
        return self.d_model if self.d_embed == -1 else self.d_embed

    @property
    def cluster_ends(self) -> Tuple[int, ...]:
        """End of each vocabulary cluster (the last is the vocabulary size)."""
        return clean_cutoffs(self.cutoffs, self.n_token)

    @property
    def cluster_widths(self) -> Tuple[int, ...]:
        """Embedding width of each cluster: ``d_embed // div_val**i`` (all ``d_embed`` when div_val is 1)."""
        return tuple(self.embedding_width // self.div_val ** i for i in range(len(self.cluster_ends)))

    @property
    def cluster_tie_projs(self) -> Tuple[bool, ...]:
        """``tie_projs`` for the clusters that exist (archai reads only that many entries)."""
        return self.tie_projs[: len(self.cluster_ends)]

    @property
    def has_projections(self) -> bool:
        """Whether any cluster is projected between d_embed and d_model (all are when div_val > 1)."""
        return self.div_val > 1 or self.embedding_width != self.d_model

    def canonical_hash(self) -> str:
        """Hash of what defines the function: the layers in order, the embedding / softmax shape,
        the effective clusters and tying, the positions and the vocabulary.  Equal for configs that
        build the same model, e.g. the release's cutoffs and their cleaned form, ``d_embed`` -1 and
        d_model, or any ``tie_projs`` when nothing is projected.  Positions and vocabulary enter only
        where they differ from the WikiText-103 release's, so the hashes stored before they could
        vary stay what they were."""
        key = {
            "d_model": self.d_model,
            "layers": [[h, f] for h, f in zip(self.n_head, self.d_inner)],
            "d_embed": self.embedding_width,
            "div_val": self.div_val,
            "clusters": list(self.cluster_ends),
            "tie_weight": self.tie_weight,
            "tie_projs": list(self.cluster_tie_projs) if self.has_projections else None,
        }
        if self.tgt_len != TGT_LEN:
            key["positions"] = self.tgt_len
        if self.n_token != VOCAB_SIZE:
            key["vocabulary"] = self.n_token
        text = json.dumps(key, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_searched(cfg: DecoderConfig) -> None:
    """InvalidArchitectureError naming the first field of ``cfg`` outside the space LTS searched
    (what :meth:`DecoderConfig.sample` and the NNI codec draw from)."""
    _check_choice(cfg.n_layer, N_LAYERS, "n_layer")
    _check_choice(cfg.d_model, D_MODELS, "d_model")
    _check_choice(cfg.d_embed, D_EMBEDS, "d_embed")
    _check_choice(cfg.div_val, DIV_VALS, "div_val")
    lo = d_inner_min(cfg.d_model)
    for i, (heads, inner) in enumerate(zip(cfg.n_head, cfg.d_inner)):
        _check_choice(heads, N_HEADS, f"n_head[{i}]")
        if not lo <= inner <= D_INNER_MAX:
            raise InvalidArchitectureError(
                f"must be an integer in {lo}..{D_INNER_MAX} in the searched space (at least {D_INNER_MIN} and "
                f"above {D_INNER_RATIO} x d_model = {D_INNER_RATIO * cfg.d_model:g}), got {inner!r}", f"d_inner[{i}]")
    for name in ("cutoffs", "tie_weight", "tie_projs", "tgt_len", "n_token", "use_cache"):
        value, default = getattr(cfg, name), _DEFAULTS[name]
        if value != default:
            shown = list(default) if isinstance(default, tuple) else default
            raise InvalidArchitectureError(f"must be {shown!r} in the searched space, got {value!r}", name)


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(DecoderConfig) if f.default is not dataclasses.MISSING}


# -- validation helpers ---------------------------------------------------------------------
def _validate(cfg: DecoderConfig) -> None:
    """What archai's ``hf_gpt2_flex`` builds, and what the batches here can feed."""
    for name in ("n_layer", "d_model", "div_val"):
        _check_positive(getattr(cfg, name), name)
    if cfg.d_embed != -1:
        _check_positive(cfg.d_embed, "d_embed", "or -1 (= d_model)")
    if cfg.tgt_len < 2:
        raise InvalidArchitectureError(f"must be at least 2 (a next-token loss needs two positions), got "
                                       f"{cfg.tgt_len}", "tgt_len")
    if cfg.n_token < BPE_TOKENS:
        raise InvalidArchitectureError(f"must be at least {BPE_TOKENS} (archai's GPT-2 BPE, the token ids every batch "
                                       f"here holds), got {cfg.n_token}", "n_token")
    for name in ("n_head", "d_inner"):
        value = getattr(cfg, name)
        if not isinstance(value, tuple) or len(value) != cfg.n_layer:
            got = f"{len(value)} entries" if isinstance(value, tuple) else repr(value)
            raise InvalidArchitectureError(f"must hold one entry per layer (n_layer = {cfg.n_layer}), got {got}", name)
    for i, (heads, inner) in enumerate(zip(cfg.n_head, cfg.d_inner)):
        _check_positive(heads, f"n_head[{i}]")
        if cfg.d_model % heads:
            raise InvalidArchitectureError(f"must divide d_model = {cfg.d_model} (head size d_model / heads), "
                                           f"got {heads}", f"n_head[{i}]")
        _check_positive(inner, f"d_inner[{i}]")
    _validate_cutoffs(cfg.cutoffs, cfg.n_token)
    widths = cfg.cluster_widths
    if min(widths) < 1:
        raise InvalidArchitectureError(
            f"{len(widths)} clusters are too many for d_embed {cfg.embedding_width} and div_val {cfg.div_val} "
            f"(cluster widths {list(widths)})", "cutoffs")
    if not isinstance(cfg.tie_projs, tuple) or len(cfg.tie_projs) < len(widths):
        raise InvalidArchitectureError(
            f"needs one entry per cluster ({len(widths)} clusters), got {cfg.tie_projs!r}", "tie_projs")


def _validate_cutoffs(cutoffs, n_token: int) -> None:
    """archai's rule: positive and strictly increasing up to the first entry above the vocabulary
    (entries after it are ignored)."""
    if not isinstance(cutoffs, tuple) or not cutoffs:
        raise InvalidArchitectureError(f"must be a non-empty list of integers, got {cutoffs!r}", "cutoffs")
    for i, c in enumerate(cutoffs):
        if c <= 0:
            raise InvalidArchitectureError(f"must be positive, got {c!r}", f"cutoffs[{i}]")
        if i > 0 and c <= cutoffs[i - 1]:
            raise InvalidArchitectureError(f"must exceed cutoffs[{i - 1}] = {cutoffs[i - 1]}, got {c}", f"cutoffs[{i}]")
        if c > n_token:
            break


def _per_layer(value, n_layer: int, field: str) -> Tuple[int, ...]:
    """A list with one entry per layer, or one integer for every layer."""
    if isinstance(value, (list, tuple)):
        if len(value) != n_layer:
            raise InvalidArchitectureError(
                f"must hold one entry per layer (n_layer = {n_layer}), got {len(value)} entries", field)
        return tuple(_as_int(v, f"{field}[{i}]") for i, v in enumerate(value))
    return (_as_int(value, field),) * n_layer


def _check_positive(value: int, field: str, alternative: str = "") -> None:
    if value < 1:
        raise InvalidArchitectureError(f"must be a positive integer{' ' + alternative if alternative else ''}, "
                                       f"got {value}", field)


def _check_choice(value, options, field) -> None:
    if isinstance(value, bool) or value not in options:
        shown = f"{options[0]}..{options[-1]}" if len(options) > 8 else str(list(options))
        raise InvalidArchitectureError(f"must be one of {shown} in the searched space, got {value!r}", field)


def _as_int(value, field) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise InvalidArchitectureError(f"must be an integer, got {value!r}", field)


def _as_bool(value, field) -> bool:
    """true/false, or 0/1 as some release files write ``tie_projs`` (archai reads them as truth values)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
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
