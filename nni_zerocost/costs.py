"""What an architecture costs on a device: measured latency and peak memory, and analytic counts.

Why: LiteTransformerSearch (LTS) searches the Pareto front of a training-free proxy against
latency and peak memory *measured on the target device*.  This module is that measurement, one
architecture at a time, each measure with a fixed, stated protocol (docs/costs.md):

* ``latency_ms``: one inference forward, LTS's protocol by default: batch 1, sequence = the
  model's context length, deterministic token ids, eval mode, ``torch.inference_mode``, one
  thread, warm-up calls, then 10 timed calls through ``torch.utils.benchmark.Timer`` (which
  synchronises CUDA); the median, with quartiles and min/max.
* ``peak_memory_mb``: the model's weights plus the peak of what one forward allocates (MiB).
* ``n_layers``, ``flops_per_token``: counted from the architecture, no model run.

Every result is a :class:`CostResult` that carries its protocol and, for measured costs, the
key of the machine it was measured on (:func:`device_fingerprint`), so numbers from different
machines, thread counts or dtypes are never mixed.  A value is never NaN: a non-finite
measurement raises :class:`CostMeasurementError`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
from typing import Any, Callable, Dict, Iterator, List, Optional

import torch
from torch import nn

from .errors import BadInputError, UnknownNameError, ZeroCostError
from .reproducibility import cpu_model
from .threads import usable_cpus

MIB = 2 ** 20
#: LTS's protocol: batch 1, one thread, 10 timed runs
DEFAULT_BATCH_SIZE = 1
DEFAULT_THREADS = 1
DEFAULT_RUNS = 10
DEFAULT_WARMUP = 2
DEFAULT_MEMORY_RUNS = 2
LATENCY_METHODS = ("timeit", "blocked_autorange")


class CostMeasurementError(ZeroCostError):
    """A measurement gave no usable number (non-finite, or no time at all)."""


@dataclasses.dataclass(frozen=True)
class CostResult:
    """One cost of one architecture.

    ``value`` in ``unit``; ``runs`` how many measurements it summarises (0 for an analytic
    count); ``spread`` their quartiles and extremes (``q25``, ``q75``, ``min``, ``max``; empty
    when analytic); ``parts`` what the value adds up from (peak memory: weights and
    activations); ``protocol`` everything that decides the number; ``fingerprint`` the machine's
    key (:func:`fingerprint_key`; None for analytic counts, which hold on every machine);
    ``load`` the 1-minute load average when measured (context, not protocol).
    """

    name: str
    value: float
    unit: str
    runs: int = 0
    spread: Dict[str, float] = dataclasses.field(default_factory=dict)
    parts: Dict[str, float] = dataclasses.field(default_factory=dict)
    protocol: Dict[str, Any] = dataclasses.field(default_factory=dict)
    fingerprint: Optional[str] = None
    load: Optional[float] = None

    def __post_init__(self):
        numbers = {"value": self.value, **self.spread, **self.parts}
        bad = {k: v for k, v in numbers.items() if not isinstance(v, (int, float)) or not math.isfinite(v)}
        if bad:
            raise CostMeasurementError(f"{self.name}: non-finite measurement {bad}")
        object.__setattr__(self, "value", float(self.value))

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form (what a results record stores under ``costs``)."""
        return dataclasses.asdict(self)


# -- the machine ----------------------------------------------------------------------------
def as_dtype(dtype) -> torch.dtype:
    """``torch.bfloat16`` or ``"bfloat16"`` -> ``torch.bfloat16``; BadInputError unless floating point."""
    value = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise BadInputError("dtype", f"must be a floating-point torch dtype, got {dtype!r}")
    return value


def dtype_name(dtype) -> str:
    """``"bfloat16"`` for ``torch.bfloat16`` (or the string itself, checked)."""
    return str(as_dtype(dtype)).replace("torch.", "")


def device_fingerprint(device="cpu", threads: int = DEFAULT_THREADS, dtype=torch.float32) -> Dict[str, Any]:
    """What decides a latency besides the model: the CPU (and its kernel level), the GPU, the
    usable cores, the thread count, the torch build and the dtype.  Nothing here changes between
    runs on one machine; the load does, and is kept beside each result instead."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    return {
        "device": device.type,
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "usable_cpus": usable_cpus(),
        "threads": int(threads),
        "gpu": torch.cuda.get_device_name(device) if cuda else None,
        "cuda": torch.version.cuda if cuda else None,
        "torch": torch.__version__,
        "dtype": dtype_name(dtype),
    }


def fingerprint_key(fingerprint: Dict[str, Any]) -> str:
    """Short stable key, readable at the front: ``cpu-float32-t1-3fa9c2d1e0``."""
    text = json.dumps(fingerprint, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{fingerprint['device']}-{fingerprint['dtype']}-t{fingerprint['threads']}-{digest}"


def check_latency_workers(workers, threads: int = DEFAULT_THREADS, cores: Optional[int] = None) -> None:
    """Refuse latency measurements by more measuring threads than usable cores: they would time
    the contention, not the model.  BadInputError with field ``workers``, in one line."""
    for field, value in (("workers", workers), ("threads", threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BadInputError(field, f"must be an integer >= 1, got {value!r}")
    cores = usable_cpus() if cores is None else int(cores)
    if threads > cores:
        raise BadInputError("threads", f"{threads} measuring threads exceed the {cores} usable cores; use at most "
                            f"{cores}", str(threads))
    if workers * threads > cores:
        fit = max(1, cores // threads)
        raise BadInputError(
            "workers", f"measuring latency in {workers} processes x {threads} thread(s) needs {workers * threads} "
            f"cores, this machine has {cores} usable: the timings would measure the contention; "
            f"use --workers {fit} or fewer", str(workers))


# -- the model's inputs ------------------------------------------------------------------------
def context_length(model: nn.Module) -> int:
    """The sequence length LTS measures with: the model's ``tgt_len`` / context length.

    Looked up, in order, on ``model.config`` then ``model``: ``tgt_len``, ``n_positions``,
    ``max_position_embeddings``, ``n_ctx``; then the rows of a position embedding (an
    ``nn.Embedding`` whose name contains "position").  BadInputError names ``seq_len`` if none."""
    for owner in (getattr(model, "config", None), model):
        for attr in ("tgt_len", "n_positions", "max_position_embeddings", "n_ctx"):
            value = getattr(owner, attr, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    for name, module in model.named_modules():
        if isinstance(module, nn.Embedding) and "position" in name:
            return module.num_embeddings
    raise BadInputError("seq_len", f"{type(model).__name__} states no context length; give seq_len")


def vocabulary_size(model: nn.Module) -> int:
    """The range token ids are drawn from: ``n_token`` / ``vocab_size`` of ``model.config`` or
    ``model``, else the largest ``nn.Embedding`` that is not a position embedding (for an
    adaptive embedding only its largest cluster: give ``vocab_size`` there)."""
    for owner in (getattr(model, "config", None), model):
        for attr in ("n_token", "vocab_size"):
            value = getattr(owner, attr, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    tables = [m.num_embeddings for name, m in model.named_modules()
              if isinstance(m, nn.Embedding) and "position" not in name]
    if tables:
        return max(tables)
    raise BadInputError("vocab_size", f"{type(model).__name__} states no vocabulary size; give vocab_size")


def token_ids(batch_size: int, seq_len: int, vocab_size: int, seed: int = 0, device="cpu") -> torch.Tensor:
    """(batch_size, seq_len) int64 ids, uniform over the vocabulary, drawn on the CPU from a
    generator seeded by ``seed`` (the same ids on every machine), then moved."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randint(0, vocab_size, (batch_size, seq_len), generator=gen).to(device)


def _prepare(model, device, dtype, inputs, batch_size, seq_len, vocab_size, seed):
    """The model on its device and dtype, and the inputs plus the protocol fields they decide."""
    if not isinstance(model, nn.Module):
        raise BadInputError("model", f"must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise BadInputError("batch_size", f"must be an integer >= 1, got {batch_size!r}")
    first = next(iter(model.parameters()), None)
    if device is None:
        device = first.device if first is not None else "cpu"
    device, dtype = torch.device(device), as_dtype(dtype if dtype is not None else first.dtype if first is not None else torch.float32)
    model.to(device=device, dtype=dtype)
    if inputs is None:
        seq_len = context_length(model) if seq_len is None else seq_len
        vocab_size = vocabulary_size(model) if vocab_size is None else vocab_size
        for field, value in (("seq_len", seq_len), ("vocab_size", vocab_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BadInputError(field, f"must be an integer >= 1, got {value!r}")
        inputs = (token_ids(batch_size, seq_len, vocab_size, seed, device),)
        shape = {"batch_size": batch_size, "seq_len": seq_len, "vocab_size": vocab_size,
                 "token_ids": f"uniform, seed {seed}"}
    else:
        given = inputs if isinstance(inputs, (tuple, list)) else (inputs,)
        inputs = tuple(t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype) for t in given)
        shape = {"inputs": [list(t.shape) for t in inputs]}
    return model, device, dtype, inputs, shape


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``threads`` for the measurement, restored after."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise BadInputError("threads", f"must be an integer >= 1, got {threads!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode and no autograd while measuring; the model's training flag restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _call(model, inputs, call):
    return model(*inputs) if call is None else call(model, *inputs)


def _call_name(call) -> str:
    return "model(*inputs)" if call is None else getattr(call, "__name__", "call")


def _spread(values: List[float]) -> Dict[str, float]:
    t = torch.tensor(values, dtype=torch.float64)
    q = torch.quantile(t, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)).tolist()
    return {"median": q[1], "q25": q[0], "q75": q[2], "min": min(values), "max": max(values)}


def _load() -> Optional[float]:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # pragma: no cover - not Unix
        return None


# -- measured costs ---------------------------------------------------------------------------
def latency_ms(model: nn.Module, *, device=None, dtype=None, batch_size: int = DEFAULT_BATCH_SIZE,
               seq_len: Optional[int] = None, vocab_size: Optional[int] = None, inputs=None,
               threads: int = DEFAULT_THREADS, warmup: int = DEFAULT_WARMUP, runs: int = DEFAULT_RUNS,
               method: str = "timeit", min_run_time: float = 0.2, seed: int = 0,
               call: Optional[Callable[..., Any]] = None) -> CostResult:
    """Forward latency of one inference call, in milliseconds: the median over ``runs``.

    LTS's protocol unless told otherwise: ``batch_size`` 1 x ``seq_len`` (default: the model's
    :func:`context_length`) token ids (:func:`token_ids`), eval mode under
    ``torch.inference_mode``, ``threads`` intra-op threads (restored after), ``warmup`` untimed
    calls, then ``runs`` timed calls.  ``method`` "timeit": each run is ``Timer.timeit(1)``, one
    call (the Timer itself adds 2 untimed calls before each); "blocked_autorange": the Timer's
    blocks of calls for at least ``min_run_time`` seconds, each block's mean one run.  On CUDA
    the Timer synchronises before reading the clock.  ``inputs`` (tensors) replace the token
    ids; ``call(model, *inputs)`` replaces ``model(*inputs)``.  The model is moved to
    ``device``/``dtype`` (default: where its parameters are) in place.
    """
    from torch.utils.benchmark import Timer

    if method not in LATENCY_METHODS:
        raise UnknownNameError("latency method", str(method), list(LATENCY_METHODS))
    for field, value, low in (("warmup", warmup, 0), ("runs", runs, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise BadInputError(field, f"must be an integer >= {low}, got {value!r}")
    model, device, dtype, inputs, shape = _prepare(model, device, dtype, inputs, batch_size, seq_len, vocab_size, seed)
    with torch_threads(threads), _eval_mode(model):
        for _ in range(warmup):
            _call(model, inputs, call)
        timer = Timer(stmt="fn()", globals={"fn": lambda: _call(model, inputs, call)}, num_threads=threads)
        if method == "timeit":
            times = [timer.timeit(number=1).times[0] for _ in range(runs)]
        else:
            times = list(timer.blocked_autorange(min_run_time=min_run_time).times)
    times_ms = [1e3 * t for t in times]
    if not times_ms or min(times_ms) <= 0:
        raise CostMeasurementError(f"latency_ms: no usable time from {len(times_ms)} runs")
    spread = _spread(times_ms)
    protocol = {**shape, "device": device.type, "dtype": dtype_name(dtype), "threads": threads, "warmup": warmup,
                "method": method, "runs": runs if method == "timeit" else None,
                "min_run_time": min_run_time if method == "blocked_autorange" else None,
                "mode": "eval, inference_mode", "call": _call_name(call), "statistic": "median"}
    return CostResult("latency_ms", spread.pop("median"), "ms", len(times_ms), spread, {}, protocol,
                      fingerprint_key(device_fingerprint(device, threads, dtype)), _load())


def weight_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters and buffers, each storage once (tied weights once)."""
    storages = {}
    for t in list(model.parameters()) + list(model.buffers()):
        storage = t.untyped_storage()
        storages[(storage.device, storage.data_ptr())] = storage.nbytes()
    return sum(storages.values())


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 to /dev/null for a moment (C++ libraries write to it directly)."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _cpu_forward_peak_bytes(run: Callable[[], Any]) -> int:
    """Peak of the bytes torch's CPU allocator holds for ``run`` above what it held before:
    the profiler's allocation and free events, replayed in order."""
    from torch.profiler import ProfilerActivity, profile

    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with _native_stderr_silenced():  # kineto prints two lines at every start and stop
        prof.start()
    try:
        out = run()
        del out  # the output counts while it lives; freeing it closes the forward
    finally:
        with _native_stderr_silenced():
            prof.stop()
    events = [e for e in prof.profiler.kineto_results.events()
              if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU]
    live = peak = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        live += e.nbytes()
        peak = max(peak, live)
    return peak


def _cuda_forward_peak_bytes(run: Callable[[], Any], device: torch.device) -> int:
    """``torch.cuda.max_memory_allocated`` over ``run`` minus what was allocated before it."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    out = run()
    torch.cuda.synchronize(device)
    del out
    return torch.cuda.max_memory_allocated(device) - before


def peak_memory_mb(model: nn.Module, *, device=None, dtype=None, batch_size: int = DEFAULT_BATCH_SIZE,
                   seq_len: Optional[int] = None, vocab_size: Optional[int] = None, inputs=None,
                   threads: int = DEFAULT_THREADS, runs: int = DEFAULT_MEMORY_RUNS, seed: int = 0,
                   call: Optional[Callable[..., Any]] = None) -> CostResult:
    """Peak memory of one inference forward, in MiB (2**20 bytes): weights + activations.

    ``weights``: the parameters and buffers (:func:`weight_bytes`).  ``activations``: the
    highest level, above the level before the call, of what the forward holds through torch's
    allocator at once: every intermediate, temporary and the output while alive.  On CPU it is
    replayed from the torch profiler's allocation events (``profile_memory=True``); on CUDA it
    is ``max_memory_allocated`` after ``reset_peak_memory_stats``.  Not counted: the inputs
    (allocated before), memory a library allocates past torch's allocator (BLAS scratch), the
    caching allocator's reserve and fragmentation, the Python process.  One untimed forward
    first (lazy one-off buffers), then ``runs`` measured ones; the value is their maximum.
    Inputs and protocol as :func:`latency_ms`.
    """
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise BadInputError("runs", f"must be an integer >= 1, got {runs!r}")
    model, device, dtype, inputs, shape = _prepare(model, device, dtype, inputs, batch_size, seq_len, vocab_size, seed)
    with torch_threads(threads), _eval_mode(model):
        _call(model, inputs, call)
        run = lambda: _call(model, inputs, call)  # noqa: E731
        if device.type == "cuda":
            peaks = [_cuda_forward_peak_bytes(run, device) for _ in range(runs)]
        else:
            peaks = [_cpu_forward_peak_bytes(run) for _ in range(runs)]
    weights = weight_bytes(model)
    totals_mib = [(weights + p) / MIB for p in peaks]
    mechanism = "cuda max_memory_allocated" if device.type == "cuda" else "torch profiler allocation events"
    protocol = {**shape, "device": device.type, "dtype": dtype_name(dtype), "threads": threads, "warmup": 1,
                "runs": runs, "mode": "eval, inference_mode", "mechanism": mechanism,
                "counts": "weights + peak forward allocation above its start",
                "call": _call_name(call), "statistic": "max"}
    return CostResult("peak_memory_mb", max(totals_mib), "MiB", runs, {"min": min(totals_mib), "max": max(totals_mib)},
                      {"weights": weights / MIB, "activations": max(peaks) / MIB}, protocol,
                      fingerprint_key(device_fingerprint(device, threads, dtype)), _load())


# -- analytic costs ---------------------------------------------------------------------------
def repeated_blocks(subject: Any) -> int:
    """The repeated block count of a config or model: ``n_layer`` / ``num_hidden_layers`` /
    ``n_layers`` (of ``subject`` or its ``config``), else the longest ``nn.ModuleList`` whose
    entries are all one class, else the stacked layers of its ``nn.RNN``/``LSTM``/``GRU``.
    BadInputError if there is none."""
    for owner in (subject, getattr(subject, "config", None)):
        for attr in ("n_layer", "num_hidden_layers", "n_layers"):
            value = owner.get(attr) if isinstance(owner, dict) else getattr(owner, attr, None)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                return value
    if isinstance(subject, nn.Module):
        stacks = [len(m) for m in subject.modules()
                  if isinstance(m, nn.ModuleList) and len(m) and len({type(c) for c in m}) == 1]
        if stacks:
            return max(stacks)
        recurrent = [m.num_layers for m in subject.modules() if isinstance(m, nn.RNNBase)]
        if recurrent:  # nn.LSTM(num_layers=2): its stacked layers are the blocks
            return sum(recurrent)
    raise BadInputError("n_layers", f"{type(subject).__name__} has no repeated blocks to count; give count=")


def analytic_cost(name: str, subject: Any, count: Callable[[Any], float], unit: str, what: str) -> CostResult:
    """A cost counted from the architecture by ``count(subject)``; no model run, no machine."""
    try:
        value = float(count(subject))
    except BadInputError:
        raise
    except (TypeError, ValueError) as e:
        raise CostMeasurementError(f"{name}: the count gave no number ({e})") from None
    return CostResult(name, value, unit, protocol={"analytic": what})


def n_layers(subject: Any, count: Optional[Callable[[Any], float]] = None) -> CostResult:
    """The repeated block count (:func:`repeated_blocks`, or ``count(subject)``)."""
    return analytic_cost("n_layers", subject, count or repeated_blocks, "blocks", "repeated block count")


def flops_per_token(subject: Any, count: Callable[[Any], float]) -> CostResult:
    """Forward FLOPs per token as a space counts them: ``count(subject)``, e.g.
    ``lambda cfg: gpt2.counts.flops_per_token(cfg, seq_len)["total"]`` or ``space.flops``."""
    if not callable(count):
        raise BadInputError("flops_per_token", "needs count=, a function of the architecture (e.g. space.flops)")
    return analytic_cost("flops_per_token", subject, count, "FLOP/token",
                         "forward FLOPs per token, by the space's count")


# -- the registry -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CostMeasure:
    """A registered cost: ``measure(subject, **options)`` returns a :class:`CostResult`;
    ``kind`` "measured" (runs the model on a device: pass a model) or "analytic" (pass the
    architecture or model, and a ``count`` where the measure needs one)."""

    name: str
    unit: str
    kind: str
    protocol: str
    measure: Callable[..., CostResult]


COSTS: Dict[str, CostMeasure] = {m.name: m for m in (
    CostMeasure("latency_ms", "ms", "measured",
                "median of 10 timed forwards (torch.utils.benchmark.Timer) after warm-up; batch 1 x context "
                "length, seeded token ids, eval + inference_mode, 1 thread", latency_ms),
    CostMeasure("peak_memory_mb", "MiB", "measured",
                "weights + peak forward allocation (CPU: torch profiler events; CUDA: max_memory_allocated); "
                "batch 1 x context length", peak_memory_mb),
    CostMeasure("n_layers", "blocks", "analytic", "repeated block count of the architecture", n_layers),
    CostMeasure("flops_per_token", "FLOP/token", "analytic", "forward FLOPs per token as the space counts them",
                flops_per_token),
)}


def list_costs() -> List[str]:
    return sorted(COSTS)


def get_cost(name: str) -> CostMeasure:
    """The registered cost ``name``; UnknownNameError (with "did you mean") otherwise."""
    if name not in COSTS:
        raise UnknownNameError("cost", str(name), list_costs())
    return COSTS[name]


def measure(name: str, subject: Any, **options) -> CostResult:
    """``get_cost(name).measure(subject, **options)``."""
    return get_cost(name).measure(subject, **options)
