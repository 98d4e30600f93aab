"""What a language model is made of, read from the model object by what it computes.

:func:`read_structure` maps any ``torch.nn.Module`` that takes token ids to its parts without a
list of known layouts or class names: one forward pass on a few seeded token ids is recorded
(every module call, and the few torch operations that give a mechanism away: embedding
look-ups, softmax, scaled-dot-product attention, products of two activations, top-k, causal
convolutions, scans), and each question is then answered from that recording, mostly by asking
autograd which tensor depends on which:

* **embeddings**: ``get_input_embeddings()`` / ``get_output_embeddings()`` where the model has
  them (a Hugging Face convention, read as attributes), else the tables looked up with the
  token ids; a table looked up with ``0..T-1`` (plus an offset) holds positions, one looked up
  with a constant holds token types;
* **blocks**: the outermost lists of modules (``nn.ModuleList``/``nn.Sequential``) whose every
  element was called on a sequence of hidden states: the repeated layers (an encoder-decoder
  has two such stacks; ALBERT one element called at every depth);
* **mixers**: in each block, the smallest modules whose output at one position depends on the
  input at another position (a gradient test).  Their kind is what their forward computed:
  ``attention`` (a softmax, or scaled-dot-product attention), ``state_space`` (a causal
  depthwise convolution and a scan: a cumulative sum, or a step loop), ``recurrent`` (a step
  loop: its operations grow with the sequence length), ``other`` (FFT, token shift, ...);
* **attention**: the query, key and value projections are the weight modules the attention
  operation's operands come from (one fused module when it is one; the rows of each head are
  found by back-propagating from that head), the output projection is the first weight module
  fed by the attention's output, and the head layout of its input columns is measured the same
  way; heads are counted on the attention tensors (and compared with the config where named);
* **feed-forward**: a weight module fed pointwise by other weight modules of the block is a
  down projection; the one it reaches through an activation is the gate, the other the up
  projection;
* **experts**: a block that calls top-k routes tokens: the router is the weight module that
  produces the scores, the experts are the 3-D tensors (or the list of modules) with one entry
  per expert under the same module; active parameters per token count ``k`` of ``E`` experts;
* **norms**: leaf modules with only vectors of parameters whose output does not change when
  their input is scaled.

Nothing here imports transformers.  A model that cannot be mapped yields a structure listing
what is missing (``missing``), never an exception; ``roles={"module.path": "attention", ...}``
overrides what is found for anything exotic.  The model is left as it was: eval mode,
``requires_grad`` flags and every hook are put back, no weight or ``.grad`` is written.
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
from collections import Counter
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple

import torch
from torch.overrides import TorchFunctionMode

#: roles a parameter can have (``ModelStructure.roles``)
ROLES = ("input_embedding", "output_embedding", "position_embedding", "token_type_embedding", "embedding",
         "query", "key", "value", "query_key_value", "key_value", "query_key", "query_value", "attention_input",
         "attention_output", "ffn_up", "ffn_gate", "ffn_down",
         "router", "expert", "mixer_input", "mixer_output", "mixer_conv", "mixer_parameter", "norm", "other")
#: kinds of token mixer
MIXER_KINDS = ("attention", "state_space", "recurrent", "other")
#: roles whose parameters are embedding tables or the output layer onto the vocabulary
EMBEDDING_ROLES = ("input_embedding", "output_embedding", "position_embedding", "token_type_embedding", "embedding")

BATCH, LENGTH, LONGER = 3, 11, 14  # odd sizes, unlikely to equal a head count or a width


# -- what is found ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Projection:
    """One weight matrix applied to every token (``nn.Linear``, GPT-2's ``Conv1D``, ...), read as
    an ``(out, in)`` matrix; ``transposed``: stored ``(in, out)``.  ``parts``: for a fused
    projection, the output rows of each part (``{"query": rows, "key": rows, ...}``)."""

    module: str
    weight: str
    bias: Optional[str]
    out_features: int
    in_features: int
    transposed: bool = False
    parts: Mapping[str, Tuple[int, ...]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Attention:
    """One softmax attention: its projections (module paths, or a parameter's name where the
    projection is a bare parameter such as ``nn.MultiheadAttention.in_proj_weight``; one path
    under several roles when fused), heads (counted on its tensors, else the config's), per head
    the output rows of each projection (``head_rows``) and the output projection's input columns
    (``head_columns``; None where the path between is not a plain rearrangement)."""

    query: Tuple[str, ...]
    key: Tuple[str, ...]
    value: Tuple[str, ...]
    output: Optional[str]
    heads: int
    kv_heads: Optional[int]
    config_heads: Optional[int]
    head_columns: Optional[Tuple[Tuple[int, ...], ...]]
    head_rows: Mapping[str, Tuple[Tuple[int, ...], ...]]
    cross: bool = False  # keys and values come from outside the block (an encoder's output)


@dataclasses.dataclass(frozen=True)
class Mixer:
    """A module mixing tokens, its kind (:data:`MIXER_KINDS`), why (the evidence measured), whether
    a position sees later positions, and its attention when it is one."""

    module: str
    kind: str
    evidence: str
    sees_future: Optional[bool]
    attention: Tuple[Attention, ...] = ()


@dataclasses.dataclass(frozen=True)
class FeedForward:
    """A feed-forward: up (and gate) projections feeding a down projection pointwise."""

    up: Tuple[str, ...]
    gate: Tuple[str, ...]
    down: str
    fused_gate: bool = False  # one module computes gate and up (its halves multiplied)


@dataclasses.dataclass(frozen=True)
class Experts:
    """A routed mixture of experts: ``count`` experts, ``top_k`` of them per token (where it was
    read: ``topk`` call or ``config``), the router and the expert parameters."""

    module: str
    count: int
    top_k: Optional[int]
    top_k_source: str
    router: Optional[str]
    parameters: Tuple[str, ...]
    expert_params: int  # all experts together

    @property
    def inactive_params(self) -> int:
        """Expert parameters a token does not use: ``(E - k) / E`` of them."""
        if not self.top_k:
            return 0
        return self.expert_params * (self.count - self.top_k) // self.count


@dataclasses.dataclass(frozen=True)
class Block:
    """One repeated layer: its list (``stack``) and position, how often one forward calls it, its
    token mixers, feed-forwards and experts."""

    stack: str
    index: int
    module: str
    calls: int
    mixers: Tuple[Mixer, ...]
    feed_forwards: Tuple[FeedForward, ...]
    experts: Optional[Experts]
    parts: Tuple[str, ...] = ()  # every module of the layer, when it spans parallel lists

    @property
    def kinds(self) -> Tuple[str, ...]:
        return tuple(m.kind for m in self.mixers)


@dataclasses.dataclass(frozen=True)
class ModelStructure:
    """Everything :func:`read_structure` found: parameter roles and counts, embeddings, blocks,
    whether the model maps ids to vocabulary logits and is causal, and what is missing."""

    model: str
    params: int
    nonembedding_params: int
    active_params: int
    roles: Mapping[str, str]  # parameter name -> role (:data:`ROLES`)
    projections: Mapping[str, Projection]  # module path -> its matrix
    input_embedding: Optional[str]
    output_embedding: Optional[str]
    tied_output: bool
    position_embeddings: Tuple[str, ...]
    blocks: Tuple[Block, ...]
    vocab: Optional[int]
    maps_to_logits: bool
    causal: Optional[bool]
    missing: Tuple[str, ...]
    notes: Tuple[str, ...] = ()

    def params_with_role(self, *roles: str) -> List[str]:
        return [n for n, r in self.roles.items() if r in roles]

    @property
    def mapped(self) -> bool:
        """Everything: blocks, token mixers, nothing missing (a block may be a feed-forward only)."""
        return bool(self.blocks) and any(b.mixers for b in self.blocks) and not self.missing


# -- recording one forward pass -----------------------------------------------------------------
@dataclasses.dataclass
class Call:
    """One module call: its input (first tensor) and output (first tensor), and the op counter
    window it spans."""

    name: str
    module: torch.nn.Module
    start: int
    end: int = -1
    input: Optional[torch.Tensor] = None
    output: Optional[torch.Tensor] = None
    ops: int = 0
    in_node: Any = None  # the autograd nodes of input and output when the call ran (later
    out_node: Any = None  # in-place operations give a tensor a new one)
    others: List[torch.Tensor] = dataclasses.field(default_factory=list)  # further inputs (keys, values)
    arguments: Optional[Tuple[tuple, dict]] = None  # kept for leaves with only vector parameters (norms)


@dataclasses.dataclass
class Op:
    """A recorded torch operation: ``kind`` (embedding, sdpa, mha, softmax, bilinear (a product of
    two activations), param_proj (an activation times a parameter matrix), topk, conv, scan,
    fft), its tensors and their autograd nodes, and when it ran (the op counter)."""

    kind: str
    at: int
    tensors: Dict[str, torch.Tensor]
    info: Dict[str, Any]
    nodes: Dict[str, Any] = dataclasses.field(default_factory=dict)  # autograd nodes when it ran


_BILINEAR = {"matmul", "__matmul__", "bmm", "mm", "einsum", "baddbmm"}
_SOFTMAX = {"softmax", "_softmax", "log_softmax"}
_SCAN = {"cumsum", "cumprod", "logcumsumexp"}


class _Recorder(TorchFunctionMode):
    """Records the operations that give a mechanism away; every embedding look-up's output is
    made a leaf that requires grad (parameters are frozen during the pass), so a tensor requires
    grad exactly when it depends on the tokens, and autograd can say what depends on what."""

    def __init__(self, open_calls: List[Call]):
        super().__init__()
        self.ops: List[Op] = []
        self.count = 0
        self.open_calls = open_calls
        self.leaves: List[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (leaf, weight, indices)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.count += 1
        for c in self.open_calls:
            c.ops += 1
        name = getattr(func, "__name__", "")
        try:
            out = self._record(name, args, kwargs, out)
        except Exception:  # recording must never break the model's forward
            pass
        return out

    def _op(self, kind, tensors, **info):
        nodes = {k: t.grad_fn for k, t in tensors.items() if isinstance(t, torch.Tensor)}
        self.ops.append(Op(kind, self.count, tensors, info, nodes))

    def _record(self, name, args, kwargs, out):
        if name == "embedding" and isinstance(out, torch.Tensor) and out.is_floating_point():
            indices, weight = (args + (None, None))[:2]
            weight = kwargs.get("weight", weight)
            leaf = out.detach().requires_grad_(True)
            self.leaves.append((leaf, weight, indices))
            self._op("embedding", {"out": leaf}, weight=weight, indices=indices)
            return leaf.clone()
        if name == "multi_head_attention_forward":  # torch's functional attention, a documented contract
            kw = dict(zip(("query", "key", "value", "embed_dim_to_check", "num_heads", "in_proj_weight",
                           "in_proj_bias", "bias_k", "bias_v", "add_zero_attn", "dropout_p", "out_proj_weight",
                           "out_proj_bias"), args))
            kw.update(kwargs)
            self._op("mha", {"q": kw["query"], "k": kw["key"], "v": kw["value"], "out": _first(out)},
                     heads=int(kw["num_heads"]), width=int(kw["embed_dim_to_check"]),
                     weights={k: kw.get(k) for k in ("in_proj_weight", "in_proj_bias", "q_proj_weight",
                                                      "k_proj_weight", "v_proj_weight", "out_proj_weight")})
        elif name == "scaled_dot_product_attention":
            q, k, v = (list(args) + [kwargs.get("query"), kwargs.get("key"), kwargs.get("value")])[:3] \
                if len(args) >= 3 else (kwargs.get("query"), kwargs.get("key"), kwargs.get("value"))
            self._op("sdpa", {"q": q, "k": k, "v": v, "out": _first(out)})
        elif name in _SOFTMAX and isinstance(out, torch.Tensor) and out.requires_grad:
            self._op("softmax", {"in": args[0], "out": out}, dim=kwargs.get("dim", args[1] if len(args) > 1 else -1))
        elif name in _BILINEAR | {"linear", "addmm"} and isinstance(out, torch.Tensor):
            tensors = _tensors(args, kwargs)
            operands = [t for t in tensors if t.requires_grad and not isinstance(t, torch.nn.Parameter)]
            params = [_base(t) for t in tensors if isinstance(_base(t), torch.nn.Parameter) and t.dim() >= 2]
            if len(operands) == 2 and name in _BILINEAR:
                self._op("bilinear", {"a": operands[0], "b": operands[1], "out": out})
            elif len(operands) == 1 and len(params) == 1 and out.requires_grad:
                self._op("param_proj", {"in": operands[0], "out": out}, param=params[0])
        elif name == "topk":
            k = kwargs.get("k", args[1] if len(args) > 1 else None)
            self._op("topk", {"in": args[0]}, k=int(k) if k is not None else None, width=int(args[0].shape[-1]))
        elif name == "conv1d":
            weight = kwargs.get("weight", args[1] if len(args) > 1 else None)
            bias = kwargs.get("bias", args[2] if len(args) > 2 else None)
            groups = kwargs.get("groups", args[6] if len(args) > 6 else 1)
            self._op("conv", {"in": args[0]}, groups=int(groups), channels=int(weight.shape[0]), weight=_base(weight),
                     bias=_base(bias))
        elif name in _SCAN:
            self._op("scan", {}, name=name)
        elif name.startswith("fft_"):
            self._op("fft", {}, name=name)
        return out


def _tensors(args, kwargs) -> List[torch.Tensor]:
    out = []
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, torch.Tensor):
            out.append(a)
        elif isinstance(a, (list, tuple)):
            out.extend(t for t in a if isinstance(t, torch.Tensor))
    return out


def _base(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """The tensor a view was taken of (a convolution's weight reshaped on the fly)."""
    while t is not None and getattr(t, "_base", None) is not None:
        t = t._base
    return t


def _first(x) -> Optional[torch.Tensor]:
    """The first tensor of a module's output (tuples, lists, Hugging Face outputs)."""
    if isinstance(x, torch.Tensor):
        return x
    if hasattr(x, "to_tuple"):
        x = x.to_tuple()
    if isinstance(x, Mapping):
        x = list(x.values())
    if isinstance(x, (tuple, list)):
        for item in x:
            t = _first(item)
            if t is not None:
                return t
    return None


def _own_copy(x):
    return x.clone() if isinstance(x, torch.Tensor) and x.requires_grad and x.is_floating_point() else x


def _input_of(args, kwargs) -> Optional[torch.Tensor]:
    t = next((a for a in args if isinstance(a, torch.Tensor)), None)
    if t is None and isinstance(kwargs.get("hidden_states"), torch.Tensor):
        t = kwargs["hidden_states"]
    if t is None:
        t = next((v for v in kwargs.values() if isinstance(v, torch.Tensor) and v.is_floating_point()), None)
    return t


@dataclasses.dataclass
class Trace:
    """One recorded forward: module calls in call order, operations, the embedding leaves, the
    token ids and the model's output."""

    ids: torch.Tensor
    calls: List[Call]
    ops: List[Op]
    leaves: List[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    output: Any

    def calls_of(self, module: torch.nn.Module) -> List[Call]:
        return [c for c in self.calls if c.module is module]

    def inside(self, call: Call) -> Tuple[List[Call], List[Op]]:
        """The module calls and operations made during ``call``."""
        calls = [c for c in self.calls if call.start <= c.start and c.end <= call.end and c is not call]
        return calls, [o for o in self.ops if call.start < o.at <= call.end]


#: marks a library sets on a module when it installs hooks of its own (transformers 5)
_HOOK_MARKS = ("_output_capturing_hooks_installed",)


@contextlib.contextmanager
def _left_as_it_was(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and frozen parameters for the block, all-zero matrices filled with small seeded
    noise; every module's train flag, every parameter's ``requires_grad``, every zero and every
    hook dict put back after."""
    modules = list(model.modules())
    flags = [(m, m.training) for m in modules]
    grads = [(p, p.requires_grad) for p in model.parameters()]
    hooks = [(m, dict(m._forward_hooks), dict(m._forward_pre_hooks)) for m in modules]
    marks = [(m, {k: v for k, v in m.__dict__.items() if k in _HOOK_MARKS}) for m in modules]
    model.eval()
    for p, _ in grads:
        p.requires_grad_(False)
    zeroed = [p for p, _ in grads if p.dim() >= 2 and p.is_floating_point() and not bool(p.any())]
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # an all-zero matrix (a zero-initialised output projection) would hide
        for p in zeroed:  # every dependence through it: small seeded noise for the read
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.02)
    try:
        yield
    finally:
        with torch.no_grad():
            for p in zeroed:
                p.zero_()
        for m, flag in flags:
            m.training = flag
        for p, flag in grads:
            p.requires_grad_(flag)
        for m, kept in marks:  # a library's note that it installed hooks goes with its hooks
            for k in _HOOK_MARKS:
                m.__dict__.pop(k, None)
            m.__dict__.update(kept)
        for m, fwd, pre in hooks:
            for d, keep in ((m._forward_hooks, fwd), (m._forward_pre_hooks, pre)):
                for key in [k for k in d if k not in keep]:
                    del d[key]
                    for flags_dict in ("_forward_hooks_with_kwargs", "_forward_hooks_always_called",
                                       "_forward_pre_hooks_with_kwargs"):
                        getattr(m, flags_dict, {}).pop(key, None)


def call_model(model: torch.nn.Module, ids: torch.Tensor) -> Any:
    """One call on token ids: by keyword (``input_ids``, no cache) where the forward names it (a
    Hugging Face convention), else ``model(ids)``."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        params = {}
    if "input_ids" not in params:
        return model(ids)
    kw: Dict[str, Any] = {"input_ids": ids}
    if "use_cache" in params:
        kw["use_cache"] = False
    if "return_dict" in params:
        kw["return_dict"] = True
    return model(**kw)


def trace(model: torch.nn.Module, ids: torch.Tensor) -> Trace:
    """Run the model once on ``ids`` recording module calls and operations (see :class:`_Recorder`).
    Must run inside :func:`_left_as_it_was` (frozen parameters) with grad enabled."""
    calls: List[Call] = []
    open_calls: List[Call] = []
    recorder = _Recorder(open_calls)
    handles = []

    def pre(module, args, kwargs, name):
        # every input that depends on the tokens is passed on as a copy of its own, so what the
        # module's output depends on through this input is what the module computed
        args = tuple(_own_copy(a) for a in args)
        kwargs = {k: _own_copy(v) for k, v in kwargs.items()}
        call = Call(name, module, recorder.count, input=_input_of(args, kwargs))
        call.others = [t for t in _tensors(args, kwargs) if t is not call.input and t.is_floating_point()
                       and t.requires_grad]
        call.in_node = call.input.grad_fn if call.input is not None else None
        own = [p for p in module.parameters(recurse=False)]
        if own and all(p.dim() == 1 for p in own) and not any(True for _ in module.children()):
            call.arguments = (args, kwargs)
        calls.append(call)
        open_calls.append(call)
        return args, kwargs

    def post(module, args, kwargs, output, name):
        for i in range(len(open_calls) - 1, -1, -1):
            if open_calls[i].module is module:
                call = open_calls.pop(i)
                call.end, call.output = recorder.count, _first(output)
                call.out_node = call.output.grad_fn if call.output is not None else None
                break

    for name, m in model.named_modules():
        handles.append(m.register_forward_pre_hook(lambda mod, a, k, n=name: pre(mod, a, k, n), with_kwargs=True))
        handles.append(m.register_forward_hook(lambda mod, a, k, o, n=name: post(mod, a, k, o, n), with_kwargs=True))
    try:
        with torch.enable_grad(), recorder:
            output = call_model(model, ids)
    finally:
        for h in handles:
            h.remove()
    for c in calls:
        if c.end < 0:
            c.end = recorder.count
    return Trace(ids, calls, recorder.ops, recorder.leaves, output)


# -- asking autograd ----------------------------------------------------------------------------
def _sources(node, stops: Mapping[Any, str]) -> Set[str]:
    """Labels of the nearest ``stops`` (autograd nodes) the autograd ``node`` was computed from:
    the graph is walked back from it and not past a stop (the node itself may be one)."""
    found: Set[str] = set()
    seen = set()
    todo = [node] if node is not None else []
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        label = stops.get(node)
        if label is None and type(node).__name__ == "AccumulateGrad":
            label = stops.get(("leaf", id(node.variable)))
        if label is not None:
            found.add(label)
            continue
        todo.extend(n for n, _ in node.next_functions if n is not None)
    return found


def _path_names(start, source, stops: Mapping[Any, str]) -> List[str]:
    """Names of the autograd nodes on the paths from node ``start`` back to node ``source`` that
    pass no other stop (the operations between a module's output and another's input)."""
    reaches: Dict[Any, bool] = {}

    def reach(node) -> bool:
        if node is source:
            return True
        if node is None or node in reaches or (node in stops and node is not start):
            return reaches.get(node, False)
        reaches[node] = False
        reaches[node] = any([reach(n) for n, _ in node.next_functions])
        return reaches[node]

    reach(start)
    return [n.name() for n, on_path in reaches.items() if on_path]


def _grad(out: torch.Tensor, wrt: torch.Tensor, weight: torch.Tensor) -> Optional[torch.Tensor]:
    """d(sum(out * weight))/d(wrt), None where ``out`` does not depend on ``wrt``."""
    try:
        g = torch.autograd.grad((out * weight).sum(), wrt, retain_graph=True, allow_unused=True)[0]
    except RuntimeError:
        return None
    return g


def _time_axis(t: torch.Tensor, batch: int, length: int) -> Optional[int]:
    """The sequence axis of hidden states: the one of the input's length (SqueezeBERT keeps
    ``(B, C, T)``), else next to the batch axis (batch-first or time-major)."""
    if t.dim() < 3:
        return None
    b = 0 if t.shape[0] == batch else 1 if t.shape[1] == batch else None
    if b is None:
        return None
    same = [i for i, s in enumerate(t.shape) if i != b and s == length]
    return same[0] if len(same) == 1 else (1 if b == 0 else 0)


def sees(out: Optional[torch.Tensor], inp: Optional[torch.Tensor], batch: int,
         length: int = LENGTH) -> Tuple[Optional[bool], Optional[bool]]:
    """``(past, future)``: whether ``out`` at the middle (and second) position depends on ``inp``
    at an earlier / a later position (None: not sequences, or unrelated).  A module may lengthen or shorten
    the sequence (prompt tokens, pooling): positions are compared in proportion."""
    if out is None or inp is None or not out.requires_grad or not inp.requires_grad or not out.is_floating_point():
        return None, None
    ta, tb = _time_axis(out, batch, length), _time_axis(inp, batch, length)
    if ta is None or tb is None or out.shape[ta] < 2 or inp.shape[tb] < 2:
        return None, None
    # the middle position, and the second (a model that pads the sequence, e.g. to a window,
    # puts padding in the middle)
    past = future = False
    for t in sorted({1, out.shape[ta] // 2}):
        gen = torch.Generator().manual_seed(t)
        weight = torch.zeros(out.shape, dtype=out.dtype).index_fill_(ta, torch.tensor([t]), 1.0)
        weight = weight * torch.rand(out.shape, generator=gen, dtype=out.dtype)
        g = _grad(out, inp, weight.to(out.device))
        if g is None:
            return None, None
        length = inp.shape[tb]
        per_position = g.detach().abs().movedim(tb, 0).reshape(length, -1).sum(1)
        lo = t * length // out.shape[ta]
        hi = (t + 1) * length // out.shape[ta]  # the input positions at the output's own
        past = past or bool(per_position[:lo].sum() > 0)
        future = future or bool(per_position[max(hi, lo + 1):].sum() > 0)
    return past, future


# -- the pieces ---------------------------------------------------------------------------------
def _own_params(m: torch.nn.Module) -> List[Tuple[str, torch.nn.Parameter]]:
    return list(m.named_parameters(recurse=False))


def _is_weight_module(m: torch.nn.Module) -> bool:
    """Owns a parameter of 2 or more dimensions and no descendant owns any: a projection, a
    convolution, a table, fused expert tensors."""
    return any(p.dim() >= 2 for _, p in _own_params(m)) and not any(
        _own_params(c) for c in m.modules() if c is not m)


def _hf_get(model, attr) -> Optional[torch.nn.Module]:
    get = getattr(model, attr, None)
    if not callable(get):
        return None
    try:
        out = get()
    except Exception:
        return None
    return out if isinstance(out, torch.nn.Module) else None


def _config_int(model, *names) -> Optional[int]:
    config = getattr(model, "config", None)
    for sub in (config, getattr(config, "text_config", None) if config is not None else None):
        for n in names:
            v = getattr(sub, n, None) if sub is not None else None
            if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                return v
    return None


def model_vocab(model: torch.nn.Module) -> Optional[int]:
    """``config.vocab_size`` where named, else the rows of the input embedding."""
    v = _config_int(model, "vocab_size")
    if v:
        return v
    emb = _hf_get(model, "get_input_embeddings")
    if isinstance(emb, torch.nn.Embedding):
        return emb.num_embeddings
    emb = next((m for m in model.modules() if isinstance(m, torch.nn.Embedding)), None)
    return emb.num_embeddings if emb is not None else None


def special_ids(model: torch.nn.Module) -> Set[int]:
    """Token ids a config names (``*token_id``, ``*token_index``: pad, bos, image, ...)."""
    out: Set[int] = set()
    config = getattr(model, "config", None)
    configs = [config] + [getattr(config, k, None) for k in (getattr(config, "sub_configs", None) or {})] \
        if config is not None else []
    for c in configs:
        if c is None:
            continue
        for key, v in vars(c).items():
            if "token_id" in key or "token_index" in key:
                for x in (v if isinstance(v, (list, tuple)) else [v]):
                    if isinstance(x, int) and not isinstance(x, bool):
                        out.add(x)
    return out


def token_ids(model: torch.nn.Module, vocab: int, batch: int = BATCH, length: int = LENGTH,
              seed: int = 0) -> torch.Tensor:
    """Seeded ids over the vocabulary, special ids left out, on the model's device."""
    allowed = torch.tensor(sorted(set(range(vocab)) - special_ids(model)) or list(range(vocab)))
    gen = torch.Generator().manual_seed(seed)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    return allowed[torch.randint(len(allowed), (batch, length), generator=gen)].to(device)


def logits_of(output: Any) -> Optional[torch.Tensor]:
    """The logits in a model's output: the output itself, ``.logits``, or its first element."""
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


def is_causal(model: torch.nn.Module, vocab: Optional[int] = None, length: int = LENGTH) -> Optional[bool]:
    """Measured: change the tokens of a row from its middle on and see whether the logits of the
    earlier positions move (beyond 1e-5 of the largest logit: kernels may round differently).
    None when the model gives no ``(B, T, vocab)`` logits or the change moves nothing."""
    vocab = vocab or model_vocab(model)
    if not vocab:
        return None
    ids = token_ids(model, vocab, batch=1, length=length)
    t = length // 2
    changed = ids.clone()
    allowed = token_ids(model, vocab, batch=1, length=8, seed=1)[0]
    changed[0, t:] = next(int(a) for a in allowed if int(a) != int(ids[0, t]))
    with _left_as_it_was(model), torch.no_grad():
        try:
            a, b = logits_of(call_model(model, ids)), logits_of(call_model(model, changed))
        except Exception:
            return None
    if a is None or b is None or a.dim() != 3 or a.shape[:2] != ids.shape:
        return None
    scale = float(a.abs().max()) or 1.0
    moved = (a[0, :t] - b[0, :t]).abs().max() / scale
    later = (a[0, t:] - b[0, t:]).abs().max() / scale
    if later == 0:
        return None  # the change reached nothing: no evidence
    return bool(moved <= 1e-5)


# -- reading one model --------------------------------------------------------------------------
class _Reader:
    """The analysis of one trace (see the module docstring); :func:`read_structure` assembles
    what it finds.  ``longer``: a trace of a longer sequence (step loops grow with it)."""

    def __init__(self, model: torch.nn.Module, tr: Trace, vocab: Optional[int], length: int):
        self.model, self.tr, self.vocab, self.length = model, tr, vocab, length
        self.batch = int(tr.ids.shape[0])
        self.names = {m: n for n, m in model.named_modules()}
        self.param_names = {id(p): n for n, p in model.named_parameters()}
        self.roles: Dict[str, str] = {}
        self.projections: Dict[str, Projection] = {}
        self.missing: List[str] = []
        self.notes: List[str] = []
        self.longer: Optional[Trace] = None
        self.embedding_info: Tuple[Optional[str], Optional[str], bool, List[str]] = (None, None, False, [])
        self.blocks_found: List[Block] = []
        tables = {id(w) for _, w, _ in tr.leaves}
        self.weight_calls = [c for c in tr.calls if _is_weight_module(c.module) and c.output is not None
                             and c.output.requires_grad and not any(id(p) in tables for _, p in _own_params(c.module))]
        self.weight_calls = sorted(self.weight_calls + self._parameter_projections(tables), key=lambda c: c.start)
        self.stops: Dict[Any, str] = {}
        for c in self.weight_calls:
            self.stops.setdefault(c.out_node, c.name)
        for leaf, weight, _ in tr.leaves:
            self.stops[("leaf", id(leaf))] = "embedding:" + self.param_names.get(id(weight), "?")

    def _parameter_projections(self, tables: Set[int]) -> List[Call]:
        """A parameter matrix applied by a module that is not a weight module (XLNet's ``q``,
        ``k``, ``v``, ``o`` in its attention's einsums, a router's ``F.linear``) is a projection
        of its own: a call named after the parameter, spanning its one operation."""
        owners = {id(p) for c in self.tr.calls if _is_weight_module(c.module) for _, p in _own_params(c.module)}
        out = []
        for o in self.tr.ops:
            p = o.info.get("param") if o.kind == "param_proj" else None
            if p is None or id(p) in owners or id(p) in tables or id(p) not in self.param_names:
                continue
            name = self.param_names[id(p)]
            out.append(Call(name, self.module_of(name), o.at - 1, o.at, o.tensors["in"], o.tensors["out"],
                            in_node=o.nodes["in"], out_node=o.nodes["out"]))
        return out

    def set_role(self, module_or_param, role: str, overwrite: bool = False) -> None:
        """The role of a parameter (by name), or of every parameter a module owns (the module, or
        its path)."""
        if isinstance(module_or_param, str) and module_or_param not in self.param_names.values():
            module_or_param = self.module(module_or_param)
        if isinstance(module_or_param, str):
            names = [module_or_param]
        else:
            prefix = self.names[module_or_param]
            names = [f"{prefix}.{n}" if prefix else n for n, _ in _own_params(module_or_param)]
        for n in names:
            if n in self.param_names.values() and (overwrite or n not in self.roles):
                self.roles[n] = role

    def module(self, name: str) -> torch.nn.Module:
        return self.model.get_submodule(name)

    # -- embeddings -----------------------------------------------------------------------------
    def embeddings(self) -> Tuple[Optional[str], Optional[str], bool, List[str]]:
        ids = self.tr.ids
        input_emb = _hf_get(self.model, "get_input_embeddings")
        output_emb = _hf_get(self.model, "get_output_embeddings")
        positions = []
        for leaf, weight, indices in self.tr.leaves:
            name = self.param_names.get(id(weight))
            if name is None or not isinstance(indices, torch.Tensor):
                continue
            if indices.shape == ids.shape and torch.equal(indices, ids):
                role = "input_embedding"
            elif _is_positions(indices):
                role = "position_embedding"
                positions.append(name)
            elif indices.numel() and bool((indices == indices.flatten()[0]).all()):
                role = "token_type_embedding"
            else:
                role = "embedding"
            self.set_role(name, role)
        input_name = None
        if isinstance(input_emb, torch.nn.Module) and _own_params(input_emb):
            input_name = self.param_names[id(_own_params(input_emb)[0][1])]  # a tied table: its first name
            self.set_role(input_name, "input_embedding", overwrite=True)
        else:
            input_name = next((n for n, r in self.roles.items() if r == "input_embedding"), None)
        for m in self.model.modules():  # tables the pass did not use are tables all the same
            if isinstance(m, torch.nn.Embedding):
                self.set_role(m, "embedding")
        head = output_emb if isinstance(output_emb, torch.nn.Module) else self._vocab_projection()
        output_name, tied = None, False
        if head is not None and _own_params(head):
            weight = dict(_own_params(head)).get("weight")
            output_name = self.param_names.get(id(weight)) if weight is not None else None
            tied = output_name is not None and output_name == input_name
            for n, p in _own_params(head):  # weight and bias onto the vocabulary (a tied table stays input)
                if not (tied and p is weight):
                    self.set_role(self.param_names[id(p)], "output_embedding", overwrite=True)
        if input_name is None:
            self.missing.append("input_embedding: no table looked up with the token ids")
        return input_name, output_name, tied, positions

    def _vocab_projection(self) -> Optional[torch.nn.Module]:
        """The last weight module whose output has ``vocab`` features (a head without the HF
        accessor)."""
        if not self.vocab:
            return None
        last = [c for c in self.weight_calls if c.output.shape[-1] == self.vocab]
        return last[-1].module if last else None

    # -- blocks ---------------------------------------------------------------------------------
    def element_call(self, e: torch.nn.Module) -> Optional[Call]:
        """The call of a list element that the read uses: its first call with autograd on (a model
        may run early passes without it, e.g. HRM's cycles); an element run through ``.forward``
        (no hooks fire) is the span of its modules' calls."""
        calls = self.tr.calls_of(e)
        if calls:
            return next((c for c in calls if c.output is not None and c.output.requires_grad), calls[0])
        prefix = self.names[e] + "."
        inner = [c for c in self.tr.calls if c.name.startswith(prefix)]
        if not inner:
            return None
        return Call(self.names[e], e, min(c.start for c in inner) - 1, max(c.end for c in inner), inner[0].input,
                    inner[-1].output, in_node=inner[0].in_node, out_node=inner[-1].out_node)

    def block_lists(self) -> List[List[Tuple[str, List[torch.nn.Module]]]]:
        """The outermost module lists whose elements (modules of modules) were called on a
        sequence, in call order (a list whose elements the forward skips, e.g. cross-attention
        layers without an image, keeps those it called); lists of one length whose elements are
        called in turn (XLM's ``attentions``, ``ffns``, ...) are one stack, one group."""
        found = []
        for name, m in self.model.named_modules():
            if not isinstance(m, (torch.nn.ModuleList, torch.nn.Sequential)) or len(m) == 0:
                continue
            elements = [e for e in m.children() if any(True for _ in e.children()) and any(True for _ in e.parameters())
                        and not isinstance(e, torch.nn.ModuleList)]  # a list of lists: the inner ones
            calls = {id(e): self.element_call(e) for e in elements}
            called = [e for e in elements if calls[id(e)] is not None and calls[id(e)].input is not None
                      and calls[id(e)].input.dim() >= 3]
            if len(called) < min(2, len(m)) or len(elements) != len(m):
                continue
            for e in elements:
                if e not in called:
                    self.notes.append(f"{self.names[e]}: not called by this forward")
            found.append((name, called, [calls[id(e)].start for e in called]))
        outer = sorted((f for f in found if not any(f[0].startswith(g[0] + ".") for g in found if g is not f)),
                       key=lambda f: f[2][0])
        groups: List[List[Tuple[str, List[torch.nn.Module], List[int]]]] = []
        for f in outer:
            home = next((g for g in groups if all(_in_turn(f[2], h[2]) for h in g)), None)
            if home is None:
                groups.append([f])
            else:
                home.append(f)
        return [[(n, e) for n, e, _ in g] for g in groups]

    def blocks(self) -> List[Block]:
        groups = self.block_lists()
        if not groups:
            self.missing.append("blocks: no list of repeated layers was called on the hidden states")
            return []
        out = []
        for group in groups:
            for i in range(len(group[0][1])):
                elements = [elements[i] for _, elements in group]
                out.append(self.block(group[0][0], i, elements))
        return out

    def block(self, stack: str, index: int, elements: List[torch.nn.Module]) -> Block:
        """One layer: the i-th element of its list (of each list of its group)."""
        firsts = [self.element_call(e) for e in elements]
        call = Call(self.names[elements[0]], elements[0], min(c.start for c in firsts), max(c.end for c in firsts),
                    firsts[0].input, firsts[-1].output, in_node=firsts[0].in_node, out_node=firsts[-1].out_node)
        parts = tuple(self.names[e] for e in elements)
        name = parts[0]
        inner_calls, ops = self.tr.inside(call)
        inner_calls = [c for c in inner_calls if c.module not in elements]
        mixers = self.mixers(call, inner_calls + (firsts if len(firsts) > 1 else []), ops)
        in_mixers = lambda n: any(n == m.module or n.startswith(m.module + ".") for m in mixers)  # noqa: E731
        experts = self.experts(call, inner_calls, ops, mixers)
        taken = set(experts.parameters) if experts else set()
        if experts and experts.router:
            taken |= {p for p in self.params_under(experts.router)}
        weights = [c for c in self.weight_calls if call.start <= c.start and c.end <= call.end
                   and not in_mixers(c.name) and not set(self.params_under(c.name)) & taken]
        ffns = self.feed_forwards(weights)
        for m in mixers:  # what a mixer owns beyond its projections: decays, sinks, ...
            for p in self.params_under(m.module):
                self.set_role(p, "mixer_parameter")
        for part in parts:
            for p in self.params_under(part):
                self.set_role(p, "other")
        if call.output is not None and not call.output.requires_grad:
            self.missing.append(f"{name}: runs without autograd (e.g. reversible layers), so nothing inside it "
                                "can be traced")
        elif not mixers and not ffns and not experts:
            self.missing.append(f"{name}: no module of the block mixes tokens, and it holds no feed-forward")
        calls = len(self.tr.calls_of(elements[0])) or 1
        return Block(stack, index, name, calls, tuple(mixers), tuple(ffns), experts, parts)

    def params_under(self, prefix: str) -> List[str]:
        return [n for n in self.param_names.values() if n == prefix or n.startswith(prefix + ".") or prefix == ""]

    def param(self, name: str) -> torch.nn.Parameter:
        return self.model.get_parameter(name)

    def module_of(self, param: str) -> torch.nn.Module:
        return self.module(param.rsplit(".", 1)[0]) if "." in param else self.model

    # -- token mixers ---------------------------------------------------------------------------
    def mixers(self, block: Call, calls: List[Call], ops: List[Op]) -> List[Mixer]:
        """The block's token mixers: each module that computed an attention (the innermost one
        around a softmax or scaled-dot-product attention), and the smallest non-leaf modules
        whose output depends on other positions of their input outside those (the block itself
        when none of its modules does but it does)."""
        attention_ops = [o for o in ops if o.kind in ("sdpa", "softmax", "mha")]
        owners: List[Call] = []
        for o in attention_ops:
            around = [c for c in calls if c.start < o.at <= c.end and any(True for _ in c.module.children())]
            if around:
                inner = max(around, key=lambda c: c.start)
                if all(inner is not c for c in owners) and any(self.sees(inner)):
                    owners.append(inner)
        mixing = []
        for c in calls:
            if not any(True for _ in c.module.children()) or c.input is None:
                continue
            if any(c.module is m.module for m in mixing):
                continue
            if any(self.sees(c)):
                mixing.append(c)
        inside = lambda c, o: c.name.startswith(o.name + ".")  # noqa: E731
        minimal = [c for c in mixing if not any(o is not c and inside(o, c) for o in mixing)
                   and not any(inside(c, o) or c is o for o in owners)]
        found = sorted(owners + [c for c in minimal if not any(inside(o, c) for o in owners)], key=lambda c: c.start)
        if not found:
            found = [block] if any(self.sees(block)) else []
        out = []
        for c in found:
            inner_calls, inner_ops = self.tr.inside(c)
            out.append(self.mixer(c, inner_calls, inner_ops, block))
        return out

    def sees(self, c: Call) -> Tuple[bool, bool]:
        """Whether a call's output at one position depends on its inputs (the hidden states, and
        any keys and values it was given) at earlier / later positions."""
        found = [sees(c.output, x, self.batch, self.length) for x in [c.input] + c.others]
        return any(bool(p) for p, _ in found), any(bool(f) for _, f in found)

    def mixer(self, c: Call, calls: List[Call], ops: List[Op], block: Call) -> Mixer:
        _, future = self.sees(c)
        kinds = Counter(o.kind for o in ops)
        if kinds["sdpa"] or kinds["softmax"] or kinds["mha"]:
            attention = tuple(a for a in (self.attention(o, c, block, ops) for o in ops
                                          if o.kind in ("sdpa", "softmax", "mha")) if a is not None)
            for w in self.weight_calls:
                if c.start <= w.start and w.end <= c.end:
                    self.set_role(w.name, "attention_input")
            evidence = ("scaled_dot_product_attention" if kinds["sdpa"] else
                        "multi_head_attention_forward" if kinds["mha"] else "softmax over token pairs")
            if not attention:
                self.missing.append(f"{c.name}: attention whose projections could not be traced")
            return Mixer(c.name, "attention", evidence, future, attention)
        depthwise = any(o.kind == "conv" and o.info["groups"] == o.info["channels"] and o.info["groups"] > 1
                        for o in ops)
        grows = self.grows_with_length(c)
        if depthwise and (kinds["scan"] or grows):
            kind = "state_space"
            evidence = "causal depthwise convolution and a " + ("scan" if kinds["scan"] else "step loop")
        elif grows:
            kind, evidence = "recurrent", "a step loop (operations grow with the sequence length)"
        else:
            kind = "other"
            evidence = ("FFT" if kinds["fft"] else "convolution" if kinds["conv"] else
                        "products of token pairs without softmax (linear attention)" if kinds["bilinear"] else
                        "token mixing without softmax or recurrence")
        convs = {id(t) for o in ops if o.kind == "conv" for t in (o.info["weight"], o.info["bias"]) if t is not None}
        for n in self.params_under(c.name):
            if id(self.param(n)) in convs:
                self.set_role(n, "mixer_conv")
        weights = [w for w in self.weight_calls if c.start <= w.start and w.end <= c.end
                   and not any(id(self.param(n)) in convs for n in self.params_under(w.name))]
        out_proj = self.output_projection(c, weights)
        for w in weights:
            self.set_role(w.name, "mixer_output" if w is out_proj else "mixer_input")
        return Mixer(c.name, kind, evidence, future)

    def output_projection(self, c: Call, weights: List[Call]) -> Optional[Call]:
        """The weight module whose output the mixer's output comes from (its last such call)."""
        src = _sources(c.out_node, self.stops)
        last = [w for w in weights if w.name in src]
        return last[-1] if last else None

    def grows_with_length(self, c: Call) -> bool:
        """The module ran more operations on the longer sequence: a loop over steps."""
        if self.longer is None:
            return False
        other = [x for x in self.longer.calls if x.name == c.name]
        return bool(other) and other[0].ops > c.ops

    # -- attention ------------------------------------------------------------------------------
    def attention(self, op: Op, mixer: Call, block: Call, ops: List[Op]) -> Optional[Attention]:
        """One attention operation: its projections, heads and head layouts (see the module
        docstring)."""
        if op.kind == "mha":
            return self.functional_attention(op, block)
        parts = self._parts(op, ops)
        if parts is None:
            return None
        (q, k, v, out), nodes = parts
        probs = op.tensors["out"] if op.kind == "softmax" else None
        documented = probs is None  # scaled_dot_product_attention: (B, H, T, D) by its contract
        measured = self._heads(q if documented else probs, mixer)
        config_heads = _config_int(self.model, "num_attention_heads", "n_head", "num_heads", "n_heads",
                                   "decoder_attention_heads", "encoder_attention_heads")
        heads = measured or config_heads  # counted on the tensors where their layout says; else the config's
        if not heads:
            return None
        if config_heads and measured and config_heads != measured:
            self.notes.append(f"{mixer.name}: {measured} heads in the attention tensors, the config names "
                              f"{config_heads}")
        qs, ks, vs = ([s for s in sorted(_sources(nodes[x], self.stops)) if not s.startswith("embedding:")]
                      for x in ("q", "k", "v"))
        for names, role in ((qs, "query"), (ks, "key"), (vs, "value")):
            for n in names:
                self.set_role(n, role)
        fused = len({*qs, *ks, *vs}) < len(qs) + len(ks) + len(vs)
        rows = {"query": self._head_rows(q, qs, heads, documented),
                "key": self._head_rows(k, ks, heads if not documented else k.shape[1], documented),
                "value": self._head_rows(v, vs, heads if not documented else v.shape[1], documented)}
        kv_heads = len(set(rows["key"])) if rows["key"] else (int(k.shape[1]) if documented else None)
        self._record_parts(qs, ks, vs, rows, fused)
        out_call = self._first_consumer(nodes["out"], block)
        columns = None
        if out_call is not None:
            self.set_role(out_call.name, "attention_output", overwrite=True)
            self.projection(out_call.name)
            columns = self._head_columns(out_call.input, out, heads, documented)
        else:
            self.missing.append(f"{mixer.name}: no weight module takes the attention's output")
        cross = block.input is not None and _grad(k, block.input, torch.ones_like(k)) is None
        return Attention(tuple(qs), tuple(ks), tuple(vs), out_call.name if out_call else None, heads, kv_heads,
                         config_heads, columns, {k_: v_ for k_, v_ in rows.items() if v_}, cross)

    def functional_attention(self, op: Op, block: Call) -> Attention:
        """torch's ``multi_head_attention_forward``: its packed (or separate) query/key/value
        parameters and output projection, heads and their rows and columns as its contract lays
        them out (head ``h`` is rows/columns ``[h * D, (h + 1) * D)`` of each part)."""
        E, heads, w = op.info["width"], op.info["heads"], op.info["weights"]
        D = E // heads
        name = lambda t: self.param_names.get(id(t)) if t is not None else None  # noqa: E731
        rows = tuple(tuple(range(h * D, (h + 1) * D)) for h in range(heads))
        if w["in_proj_weight"] is not None:
            packed = name(w["in_proj_weight"])
            qs = ks = vs = (packed,)
            parts = {part: tuple(range(i * E, (i + 1) * E)) for i, part in enumerate(("query", "key", "value"))}
            self.set_role(packed, "query_key_value", overwrite=True)
            if w["in_proj_bias"] is not None:
                self.set_role(name(w["in_proj_bias"]), "query_key_value", overwrite=True)
            self.projections[packed] = Projection(packed.rsplit(".", 1)[0], packed, name(w["in_proj_bias"]),
                                                  3 * E, int(w["in_proj_weight"].shape[1]), False, parts)
        else:
            qs, ks, vs = ((name(w[f"{x}_proj_weight"]),) for x in "qkv")
            for names, role in ((qs, "query"), (ks, "key"), (vs, "value")):
                self.set_role(names[0], role, overwrite=True)
        out_owner = name(w["out_proj_weight"]).rsplit(".", 1)[0]
        self.set_role(self.module(out_owner), "attention_output", overwrite=True)
        self.projection(out_owner)
        cross = op.tensors["k"] is not op.tensors["q"] and block.input is not None and \
            _grad(op.tensors["k"], block.input, torch.ones_like(op.tensors["k"])) is None
        offset = (lambda i: i * E) if w["in_proj_weight"] is not None else (lambda i: 0)
        head_rows = {part: tuple(tuple(r + offset(i) for r in head) for head in rows)
                     for i, part in enumerate(("query", "key", "value"))}
        return Attention(qs, ks, vs, out_owner, heads, heads, None, rows, head_rows, cross)

    def _parts(self, op: Op, ops: List[Op]):
        """``((query, key, value, output), nodes)`` of an attention operation: the operands of
        scaled-dot-product attention, or for an eager softmax the product of two activations that
        feeds it (query, key) and the one it feeds (value, output)."""
        if op.kind == "sdpa":
            names = ("q", "k", "v", "out")
            return tuple(op.tensors[x] for x in names), {x: op.nodes.get(x) for x in names}
        bilinear = [o for o in ops if o.kind == "bilinear"]
        stops = {o.nodes["out"]: str(i) for i, o in enumerate(bilinear)}
        stops.update(self.stops)
        scores = [bilinear[int(s)] for s in _sources(op.nodes["in"], stops) if s.isdigit()]
        if not scores:
            return None
        sc = scores[0]
        for o in (o for o in bilinear if o.at > op.at):
            for mine, other in (("a", "b"), ("b", "a")):
                if o.tensors[mine] is op.tensors["out"] or _reachable(o.nodes[mine], op.nodes["out"]):
                    return (sc.tensors["a"], sc.tensors["b"], o.tensors[other], o.tensors["out"]), \
                        {"q": sc.nodes["a"], "k": sc.nodes["b"], "v": o.nodes[other], "out": o.nodes["out"]}
        return None

    def _heads(self, t: torch.Tensor, mixer: Call) -> Optional[int]:
        """Heads counted on an attention tensor of a known layout: scaled-dot-product attention's
        query ``(B, H, T, D)``, or probabilities ``(B, H, Tq, Tk)`` / ``(B * H, Tq, Tk)`` whose query
        axis has the mixer's own sequence length; None for any other layout (Longformer's bands)."""
        B = self.batch
        if t.dim() == 4 and t.shape[0] == B and t.shape[2] == self._length_of(mixer):
            return int(t.shape[1])
        if t.dim() == 3 and t.shape[0] % B == 0 and t.shape[1] == self._length_of(mixer):
            return int(t.shape[0] // B)
        return None

    def _length_of(self, c: Call) -> Optional[int]:
        axis = _time_axis(c.input, self.batch, self.length) if c.input is not None else None
        return int(c.input.shape[axis]) if axis is not None else None

    def _head_axis(self, t: torch.Tensor, heads: int, documented: bool) -> Optional[Tuple[int, int]]:
        """``(axis, groups)``: the head axis of an attention tensor (documented layout for
        scaled-dot-product attention: ``(B, H, T, D)``), where ``groups`` heads share it (merged
        batch and heads: ``(B * H, T, D)``)."""
        if documented:
            return (1, 1) if t.dim() == 4 else None
        B = self.tr.ids.shape[0]
        axes = [i for i, s in enumerate(t.shape) if s == heads]
        if t.dim() == 4 and len(axes) == 1:
            return axes[0], 1
        if t.dim() >= 3 and t.shape[0] == B * heads:
            return 0, B
        if t.dim() == 4 and t.shape[1] == heads:
            return 1, 1
        return None

    def _head_rows(self, t: torch.Tensor, modules: List[str], heads: int, documented: bool):
        """Per head, the output rows of the (one) projection it comes from; () when not one."""
        if len(modules) != 1 or not heads:
            return ()
        if modules[0] in self.param_names.values() and self.param(modules[0]).dim() != 2:
            return ()  # a parameter of several axes (XLNet's (width, heads, head_dim)) has no rows
        src = next(c for c in self.weight_calls if c.name == modules[0])
        layout = self._head_axis(t, heads, documented)
        if layout is None:
            return ()
        axis, merged = layout
        out = []
        gen = torch.Generator().manual_seed(0)
        noise = torch.rand(t.shape, generator=gen, dtype=t.dtype).to(t.device)
        for h in range(heads):
            select = torch.zeros(t.shape, dtype=t.dtype, device=t.device)
            if merged > 1:  # (B * H, ...): head h of every row
                select.view(merged, heads, *t.shape[1:])[:, h] = 1
            else:
                select.select(axis, h).fill_(1)
            g = _grad(t, src.output, select * noise)
            if g is None:
                return ()
            used = g.detach().abs().reshape(-1, g.shape[-1]).sum(0).nonzero().flatten()
            out.append(tuple(int(i) for i in used))
        return tuple(out)

    def _record_parts(self, qs, ks, vs, rows, fused: bool) -> None:
        for names in (qs, ks, vs):
            for n in names:
                self.projection(n)
        if not fused:
            return
        for n in {*qs, *ks, *vs}:
            parts = {}
            for role, names in (("query", qs), ("key", ks), ("value", vs)):
                if n in names and rows.get(role):
                    parts[role] = tuple(sorted({r for head in rows[role] for r in head}))
            roles = [r for r, names in (("query", qs), ("key", ks), ("value", vs)) if n in names]
            self.set_role(n, "_".join(roles) if len(roles) > 1 else roles[0], overwrite=True)
            proj = self.projections.get(n)
            if proj is not None:
                self.projections[n] = dataclasses.replace(proj, parts=parts)

    def _first_consumer(self, out_node, block: Call) -> Optional[Call]:
        """The first weight module of the block fed by the attention's output."""
        stops = dict(self.stops)
        stops[out_node] = "attention"
        for c in self.weight_calls:
            if block.start <= c.start <= block.end and c.input is not None \
                    and "attention" in _sources(c.in_node, stops):
                return c
        return None

    def _head_columns(self, inp: torch.Tensor, out: torch.Tensor, heads: int, documented: bool):
        """Per head, the input columns of the output projection that carry it: column ``j`` belongs
        to head ``h`` when it moves with head ``h`` of the attention's output and with no other
        (forward derivatives, one per head, by differentiating the backward pass)."""
        layout = self._head_axis(out, heads, documented)
        if layout is None:
            return None
        axis, merged = layout
        gen = torch.Generator().manual_seed(0)
        noise = torch.rand(out.shape, generator=gen, dtype=out.dtype).to(out.device)
        try:
            u = torch.zeros_like(inp, requires_grad=True)
            back = torch.autograd.grad(inp, out, u, retain_graph=True, create_graph=True)[0]
            reached = []
            for h in range(heads):
                direction = torch.zeros_like(noise)
                if merged > 1:
                    direction.view(merged, heads, *out.shape[1:])[:, h] = 1
                else:
                    direction.select(axis, h).fill_(1)
                moved = torch.autograd.grad(back, u, direction * noise, retain_graph=True, allow_unused=True)[0]
                if moved is None:
                    return None
                reached.append(moved.detach().abs().reshape(-1, inp.shape[-1]).sum(0) > 0)
        except RuntimeError:
            return None
        per_column = torch.stack(reached, 1)  # (columns, heads)
        if not bool((per_column.sum(1) == 1).all()):
            return None
        owner = per_column.float().argmax(1)
        return tuple(tuple(int(j) for j in (owner == h).nonzero().flatten()) for h in range(heads))

    # -- feed-forwards and experts --------------------------------------------------------------
    def feed_forwards(self, weights: List[Call]) -> List[FeedForward]:
        """Down projections fed pointwise by other weight modules of the block."""
        names = {w.name for w in weights}
        out = []
        for w in weights:
            src = _sources(w.in_node, self.stops)
            feeders = sorted(src & names - {w.name})
            if not feeders or src - names:
                continue
            past, future = sees(w.input, next(c for c in weights if c.name == feeders[0]).output, self.batch,
                                self.length)
            if past or future:
                continue
            by_name = {c.name: c for c in weights}
            paths = {f: _path_names(w.in_node, by_name[f].out_node, self.stops) for f in feeders}
            gates = [f for f in feeders if len(feeders) > 1 and _through_activation(paths[f])]
            ups = [f for f in feeders if f not in gates]
            fused = len(feeders) == 1 and _gated_halves(paths[feeders[0]])
            for f in ups:
                self.set_role(f, "ffn_up")
                self.projection(f)
            for g in gates:
                self.set_role(g, "ffn_gate")
                self.projection(g)
            self.set_role(w.name, "ffn_down")
            self.projection(w.name)
            out.append(FeedForward(tuple(ups), tuple(gates), w.name, fused))
        return out

    def experts(self, block: Call, calls: List[Call], ops: List[Op], mixers: List[Mixer]) -> Optional[Experts]:
        """A routed mixture: a top-k outside the mixers; the module that made it holds the router
        and the experts."""
        topk = [o for o in ops if o.kind == "topk" and not any(self._op_in(o, m.module) for m in mixers)]
        if not topk:
            return None
        route = max(topk, key=lambda o: o.info["width"])
        owner = self._owner_below(route, calls)
        if owner is None:
            return None
        router = self._router(route, calls, owner)
        count, parameters = self._expert_parameters(owner, router)
        for n in parameters:
            self.set_role(n, "expert")
        if router:
            self.set_role(router, "router", overwrite=True)
        k, source = route.info["k"], "topk"
        if not k:
            k, source = _config_int(self.model, "num_experts_per_tok", "num_experts_per_token", "top_k", "moe_topk",
                                    "moe_k"), "config"
        if not parameters:
            self.missing.append(f"{owner}: routes tokens among {route.info['width']} choices, but no expert "
                                "parameters (one tensor entry or one module per expert) were found")
        elif route.info["width"] != count:
            self.notes.append(f"{owner}: routes among {route.info['width']} choices for {count} experts with "
                              "parameters (the others hold none)")
        size = sum(self.param(n).numel() for n in parameters)
        return Experts(owner, count or route.info["width"], min(k, count) if k and count else k, source, router,
                       tuple(parameters), size)

    def _expert_parameters(self, owner: str, router: Optional[str]) -> Tuple[int, List[str]]:
        """``(experts, parameter names)`` under the routing module: tensors of 3 dimensions with one
        entry per expert (and their per-expert biases), or a list of identical modules."""
        outside_router = [n for n in self.params_under(owner) if router is None or not n.startswith(router + ".")]
        fused = Counter(self.param(n).shape[0] for n in outside_router if self.param(n).dim() == 3)
        if fused:
            count = fused.most_common(1)[0][0]
            holders = {n.rsplit(".", 1)[0] for n in outside_router
                       if self.param(n).dim() == 3 and self.param(n).shape[0] == count}
            return count, sorted(n for n in outside_router if n.rsplit(".", 1)[0] in holders
                                 and self.param(n).dim() >= 2 and self.param(n).shape[0] == count)
        for name, m in self.model.named_modules():
            if name.startswith(owner + ".") and isinstance(m, torch.nn.ModuleList) and len(m) >= 2 and \
                    len({tuple((k, tuple(p.shape)) for k, p in e.named_parameters()) for e in m}) == 1:
                return len(m), self.params_under(name)
        return 0, []

    def _op_in(self, op: Op, module: str) -> bool:
        return any(c.name == module and c.start < op.at <= c.end for c in self.tr.calls)

    def _owner_below(self, op: Op, calls: List[Call]) -> Optional[str]:
        """The outermost of the block's module calls that made ``op``."""
        around = [c for c in calls if c.start < op.at <= c.end]
        return min(around, key=lambda c: c.name.count(".")).name if around else None

    def _router(self, op: Op, calls: List[Call], owner: str) -> Optional[str]:
        """The weight module scoring the experts: the one whose call made the top-k, else the one
        the top-k's input comes from, else the only one under the module whose call made it."""
        around = [c for c in calls if c.start < op.at <= c.end]
        weights = [c for c in around if _is_weight_module(c.module)]
        if weights:
            return weights[-1].name
        src = [s for s in _sources(op.nodes["in"], self.stops) if s.startswith(owner + ".")]
        if len(src) == 1:
            return src[0]
        for c in sorted(around, key=lambda c: -c.name.count(".")):
            inside = [n for n, m in c.module.named_modules() if _is_weight_module(m)]
            if len(inside) == 1:
                return f"{c.name}.{inside[0]}" if inside[0] else c.name
        return None

    # -- norms and projections ------------------------------------------------------------------
    def unused(self) -> None:
        """Say which parameters the forward did not use (modules it never called: cross-attention
        without an encoder, a vision tower without an image)."""
        called = {id(c.module) for c in self.tr.calls}
        used = {id(t) for o in self.tr.ops for t in o.info.values() if isinstance(t, torch.Tensor)}
        used |= {id(w) for _, w, _ in self.tr.leaves} | {id(t) for o in self.tr.ops if o.kind == "mha"
                                                         for t in o.info["weights"].values() if t is not None}
        touched = {id(self.module_of(n)) for n in self.param_names.values() if id(self.param(n)) in used}
        idle = [n for n in self.param_names.values() if id(self.module_of(n)) not in called | touched]
        if idle:
            owners = sorted({n.rsplit(".", 1)[0] for n in idle})
            self.notes.append(f"{sum(self.param(n).numel() for n in idle)} parameters in {len(owners)} modules this "
                              f"forward never called (e.g. {', '.join(owners[:3])})")

    def norms(self) -> None:
        """Every norm the forward called, in blocks or not (the final norm, embedding norms)."""
        seen = set()
        for c in self.tr.calls:
            if c.module not in seen:
                seen.add(c.module)
                if self.is_norm(c):
                    self.set_role(c.module, "norm", overwrite=self.roles.get(
                        next(iter(self.params_under(c.name)), ""), "other") in ("other", "mixer_parameter"))

    def is_norm(self, c: Call) -> bool:
        """A leaf with only vector parameters whose output does not change when its input is
        scaled (called again on its recorded arguments, the input scaled far above any epsilon)."""
        params = _own_params(c.module)
        x = c.input
        if c.arguments is None or x is None or not x.is_floating_point() or params[0][1].shape[0] not in x.shape:
            return False
        args, kwargs = c.arguments
        scale = 100.0 / (float(x.detach().abs().mean()) + 1e-12)

        def scaled(factor):
            swap = lambda a: (a.detach() * factor) if a is x else a  # noqa: E731
            return _first(c.module(*[swap(a) for a in args], **{k: swap(v) for k, v in kwargs.items()}))

        try:
            with torch.no_grad():
                y1, y2 = scaled(scale), scaled(10 * scale)
        except Exception:
            return False
        if y1 is None or y2 is None or y1.shape != y2.shape:
            return False
        return bool((y1 - y2).abs().max() <= 1e-4 * (y1.abs().max() + 1e-6))

    def projection(self, name: str) -> Optional[Projection]:
        """The (out, in) view of a weight module's matrix; ``transposed`` when the module computes
        ``x @ W`` (GPT-2's ``Conv1D``), measured on its recorded call."""
        if name in self.projections:
            return self.projections[name]
        if name in self.param_names.values():  # a bare parameter matrix
            params, w = {}, self.param(name)
        else:
            params = dict(_own_params(self.module(name)))
            w = params.get("weight", next((p for p in params.values() if p.dim() == 2), None))
        if w is None or w.dim() != 2:
            return None
        call = next((c for c in self.weight_calls if c.name == name), None)
        transposed = w.shape[0] != w.shape[1] and call is not None and call.input is not None \
            and call.input.shape[-1] == w.shape[0]
        if w.shape[0] == w.shape[1] and call is not None and call.input is not None:
            with torch.no_grad():
                x, y = call.input.detach(), call.output.detach()
                b = params.get("bias")
                plain = torch.nn.functional.linear(x, w, b)
                flipped = x @ w + (b if b is not None else 0)
                transposed = bool((y - flipped).abs().max() < (y - plain).abs().max())
        bias = params.get("bias")
        out_f, in_f = (w.shape[1], w.shape[0]) if transposed else (w.shape[0], w.shape[1])
        proj = Projection(name if params else name.rsplit(".", 1)[0], self.param_names[id(w)],
                          self.param_names.get(id(bias)) if bias is not None else None, int(out_f), int(in_f),
                          bool(transposed))
        self.projections[name] = proj
        return proj


def _in_turn(a: Sequence[int], b: Sequence[int]) -> bool:
    """Two lists of first-call times of one length whose i-th elements both run before either's
    (i+1)-th: parallel lists of one stack."""
    return len(a) == len(b) and all(max(a[i], b[i]) < min(a[i + 1], b[i + 1]) for i in range(len(a) - 1))


def _reachable(start, target) -> bool:
    """Whether the autograd graph from node ``start`` reaches node ``target`` (within 200 nodes)."""
    seen, todo = set(), [start]
    while todo and len(seen) < 200:
        node = todo.pop()
        if node is None or node in seen:
            continue
        if node is target:
            return True
        seen.add(node)
        todo.extend(n for n, _ in node.next_functions)
    return False


_ACTIVATIONS = ("Silu", "Gelu", "Relu", "Sigmoid", "Tanh", "Erf", "Elu", "Softplus", "Pow", "Exp")
_SPLITS = ("Split", "Slice", "Chunk", "Unbind", "Select")


def _through_activation(names: List[str]) -> bool:
    """Whether a path (:func:`_path_names`) passes an activation function."""
    return any(a in n for n in names for a in _ACTIVATIONS)


def _gated_halves(names: List[str]) -> bool:
    """A gated unit computed by one module: its output split, one half activated, the halves
    multiplied."""
    return _through_activation(names) and any(n.startswith("Mul") for n in names) and \
        any(s in n for n in names for s in _SPLITS)


def _is_positions(indices: torch.Tensor) -> bool:
    """Ids ``offset, offset + 1, ...`` along the last axis, in every row."""
    if indices.dim() == 0 or indices.shape[-1] < 2:
        return False
    steps = indices.diff(dim=-1)
    return bool((steps == 1).all())


def read_structure(model: torch.nn.Module, *, roles: Optional[Mapping[str, str]] = None,
                   vocab: Optional[int] = None, length: int = LENGTH) -> ModelStructure:
    """The :class:`ModelStructure` of ``model`` (see the module docstring).  ``roles`` maps module
    paths to a role of :data:`ROLES` (every parameter under the path) or a mixer kind of
    :data:`MIXER_KINDS` (the module is that block's mixer), overriding what is found."""
    vocab = vocab or model_vocab(model)
    params = dict(model.named_parameters())
    total = sum(p.numel() for p in params.values())
    missing: List[str] = []
    reader = None
    if not vocab:
        missing.append("vocabulary: no config.vocab_size and no embedding table")
    else:
        reader, error = _read(model, vocab, length)
        if error:
            missing.append(error)
    if reader is None:  # parameters only: the tables a model names, without a forward
        roles_found = _static_roles(model)
        embedding = sum(params[n].numel() for n, r in roles_found.items() if r in EMBEDDING_ROLES)
        return _override(ModelStructure(type(model).__name__, total, total - embedding, total, roles_found, {}, None,
                                        None, False, (), (), vocab, False, None, tuple(missing)), model, roles)
    blocks, (input_name, output_name, tied, positions) = reader.blocks_found, reader.embedding_info
    for n in params:
        reader.roles.setdefault(n, "other")
    embedding = sum(params[n].numel() for n, r in reader.roles.items() if r in EMBEDDING_ROLES)
    inactive = sum(b.experts.inactive_params for b in blocks if b.experts)
    logits = logits_of(reader.tr.output)
    maps = logits is not None and logits.dim() == 3 and tuple(logits.shape[:2]) == tuple(reader.tr.ids.shape) \
        and logits.shape[-1] == vocab
    if not maps:
        reader.missing.append("logits: the output is not (batch, tokens, vocab)")
    structure = ModelStructure(
        type(model).__name__, total, total - embedding, total - inactive, dict(reader.roles), dict(reader.projections),
        input_name, output_name, tied, tuple(positions), tuple(blocks), vocab, maps,
        is_causal(model, vocab, length) if maps else None, tuple(missing + reader.missing), tuple(reader.notes))
    return _override(structure, model, roles)


def _static_roles(model: torch.nn.Module) -> Dict[str, str]:
    """Roles known without a forward: the tables a model names (``get_input_embeddings`` /
    ``get_output_embeddings``) and every ``nn.Embedding``; the rest ``other``."""
    names = {id(p): n for n, p in model.named_parameters()}
    roles = {n: "other" for n in names.values()}
    for m in model.modules():
        if isinstance(m, torch.nn.Embedding):
            for p in m.parameters(recurse=False):
                roles[names[id(p)]] = "embedding"
    for attr, role in (("get_output_embeddings", "output_embedding"), ("get_input_embeddings", "input_embedding")):
        m = _hf_get(model, attr)
        for p in (m.parameters(recurse=False) if m is not None else ()):
            roles[names[id(p)]] = role
    return roles


def _read(model: torch.nn.Module, vocab: int, length: int) -> Tuple[Optional[_Reader], Optional[str]]:
    """Trace at ``length`` (and a longer length, for step loops) and read; ``(None, why)`` when
    the forward fails."""
    with _left_as_it_was(model):
        try:
            tr = trace(model, token_ids(model, vocab, length=length))
        except Exception as e:
            return None, f"forward: {type(e).__name__}: {_first_line(e)}"
        reader = _Reader(model, tr, vocab, length)
        try:
            reader.longer = trace(model, token_ids(model, vocab, length=length + LONGER - LENGTH))
        except Exception:
            reader.longer = None
        try:
            reader.embedding_info = reader.embeddings()
            reader.blocks_found = reader.blocks()
            if reader.blocks_found and not any(b.mixers for b in reader.blocks_found):
                reader.missing.append("mixers: no block combines positions in this forward")
            reader.norms()
            reader.unused()
        except Exception as e:  # a part this reader does not understand: said, not raised
            reader.blocks_found = []
            reader.missing.append(f"structure: {type(e).__name__}: {_first_line(e)}")
        reader.longer = None
    return reader, None


def _override(s: ModelStructure, model: torch.nn.Module, roles: Optional[Mapping[str, str]]) -> ModelStructure:
    """The user's ``roles`` applied: parameter roles under each path, mixer kinds on blocks."""
    if not roles:
        return s
    new_roles = dict(s.roles)
    blocks = list(s.blocks)
    for path, role in roles.items():
        if role not in ROLES and role not in MIXER_KINDS:
            raise ValueError(f"roles[{path!r}] = {role!r}: expected one of {', '.join(ROLES + MIXER_KINDS)}")
        try:
            model.get_submodule(path)
        except AttributeError:
            raise ValueError(f"roles: the model has no module {path!r}") from None
        under = [n for n in new_roles if n.startswith(path + ".") or path == ""]
        if role in MIXER_KINDS:
            for i, b in enumerate(blocks):
                if path == b.module or path.startswith(b.module + "."):
                    kept = tuple(m for m in b.mixers if m.module != path)
                    blocks[i] = dataclasses.replace(b, mixers=kept + (Mixer(path, role, "given by roles=", None),))
            for n in under:
                new_roles[n] = "mixer_parameter" if role != "attention" else "attention_input"
        else:
            for n in under:
                new_roles[n] = role
    given = [b for b in blocks if b.mixers]
    missing = tuple(m for m in s.missing if not (
        ("no module of the block mixes tokens" in m and any(m.startswith(b.module + ":") for b in given))
        or (m.startswith("mixers: ") and given)))
    embedding = sum(p.numel() for n, p in model.named_parameters() if new_roles.get(n) in EMBEDDING_ROLES)
    return dataclasses.replace(s, roles=new_roles, blocks=tuple(blocks), missing=missing,
                               nonembedding_params=s.params - embedding)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else ""


__all__ = ["ROLES", "MIXER_KINDS", "Projection", "Attention", "Mixer", "FeedForward", "Experts", "Block",
           "ModelStructure", "read_structure", "is_causal", "call_model", "trace", "sees", "model_vocab",
           "token_ids", "logits_of"]
