"""Cost measures (nni_zerocost.costs): protocol fields, orders of magnitude, hand-counted memory,
fingerprints, the worker guard, and that nothing is left changed or NaN.

Timing assertions use margins of 5x where the models differ by about 60x, so a loaded 2-core
machine does not fail them."""
import json
import math

import pytest
import torch
from torch import nn

from nni_zerocost import costs
from nni_zerocost.errors import BadInputError, UnknownNameError


class TinyLM(nn.Module):
    """Token ids -> embeddings -> ``layers`` square linear maps with ReLU; states its context."""

    def __init__(self, d=8, layers=1, vocab=100, tgt_len=64):
        super().__init__()
        self.config = type("Config", (), {"tgt_len": tgt_len, "vocab_size": vocab})()
        self.embedding = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList(nn.Linear(d, d) for _ in range(layers))

    def forward(self, ids):
        x = self.embedding(ids)
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x


def finite_numbers(result):
    """Every number in the result's JSON form (json refuses NaN and infinities)."""
    json.dumps(result.to_dict(), allow_nan=False)
    return True


# -- latency -----------------------------------------------------------------------------------
def test_latency_protocol_fields_are_lts_defaults():
    r = costs.latency_ms(TinyLM())
    assert (r.name, r.unit, r.runs) == ("latency_ms", "ms", 10)
    p = r.protocol
    assert (p["batch_size"], p["seq_len"], p["vocab_size"]) == (1, 64, 100)  # seq_len: the model's tgt_len
    assert (p["threads"], p["warmup"], p["method"], p["runs"], p["statistic"]) == (1, 2, "timeit", 10, "median")
    assert (p["device"], p["dtype"], p["mode"]) == ("cpu", "float32", "eval, inference_mode")
    assert r.fingerprint == costs.fingerprint_key(costs.device_fingerprint("cpu", 1, torch.float32))
    s = r.spread
    assert 0 < s["min"] <= s["q25"] <= r.value <= s["q75"] <= s["max"]
    assert finite_numbers(r)


def test_latency_grows_with_model_size():
    small = costs.latency_ms(TinyLM(d=8, layers=1))            # ~0.1 ms here
    large = costs.latency_ms(TinyLM(d=512, layers=8))          # ~5 ms here: 1 vs 8 x 512^2 x 64 multiply-adds
    assert large.value > 5 * small.value
    assert large.spread["min"] > small.spread["min"]


def test_latency_options_seq_len_batch_and_blocked_autorange():
    r = costs.latency_ms(TinyLM(), seq_len=16, batch_size=2, method="blocked_autorange", min_run_time=0.05)
    assert (r.protocol["seq_len"], r.protocol["batch_size"], r.protocol["method"]) == (16, 2, "blocked_autorange")
    assert r.runs >= 1 and r.protocol["runs"] is None and r.protocol["min_run_time"] == 0.05
    with pytest.raises(UnknownNameError):
        costs.latency_ms(TinyLM(), method="autorange")


def test_token_ids_are_deterministic_and_in_range():
    a, b = costs.token_ids(2, 32, 50, seed=3), costs.token_ids(2, 32, 50, seed=3)
    assert torch.equal(a, b) and a.dtype == torch.int64 and a.shape == (2, 32)
    assert int(a.min()) >= 0 and int(a.max()) < 50
    assert not torch.equal(a, costs.token_ids(2, 32, 50, seed=4))


def test_context_length_and_vocabulary_lookup():
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.tokens, self.positions = nn.Embedding(30, 4), nn.Embedding(12, 4)

    assert (costs.context_length(Plain()), costs.vocabulary_size(Plain())) == (12, 30)
    with pytest.raises(BadInputError) as e:
        costs.latency_ms(nn.Linear(4, 4))
    assert e.value.field == "seq_len"


def test_threads_and_training_flag_restored():
    seen = []

    def call(model, ids):
        seen.append(torch.get_num_threads())
        return model(ids)

    before = torch.get_num_threads()
    other = 2 if before != 2 else 3
    torch.set_num_threads(other)
    try:
        model = TinyLM().train()
        r = costs.latency_ms(model, threads=1, runs=3, call=call)
        assert set(seen) == {1} and torch.get_num_threads() == other
        assert model.training  # measured in eval mode, handed back as it came
        costs.peak_memory_mb(model, threads=1)
        assert torch.get_num_threads() == other and model.training
        assert r.protocol["call"] == "call"
        with pytest.raises(RuntimeError):
            costs.latency_ms(model, call=lambda m, ids: (_ for _ in ()).throw(RuntimeError("boom")))
        assert torch.get_num_threads() == other
    finally:
        torch.set_num_threads(before)


# -- peak memory -------------------------------------------------------------------------------
def test_peak_memory_of_a_linear_equals_the_hand_count():
    """Linear(256 -> 512) on an (8, 256) batch: the forward allocates only its (8, 512) output,
    8 x 512 x 4 = 16,384 bytes; the weights are (256 x 512 + 512) x 4 = 526,336 bytes.  Tolerance:
    none (the profiler reports the bytes asked of the allocator)."""
    r = costs.peak_memory_mb(nn.Linear(256, 512), inputs=torch.zeros(8, 256))
    assert r.parts["activations"] * costs.MIB == 8 * 512 * 4
    assert r.parts["weights"] * costs.MIB == (256 * 512 + 512) * 4
    assert r.value == pytest.approx((8 * 512 * 4 + (256 * 512 + 512) * 4) / costs.MIB, rel=0, abs=1e-12)
    assert (r.unit, r.runs, r.spread["min"], r.spread["max"]) == ("MiB", 2, r.value, r.value)
    assert r.protocol["inputs"] == [[8, 256]] and finite_numbers(r)


def test_peak_memory_counts_what_is_alive_at_once():
    """Linear(64 -> 1024), ReLU, Linear(1024 -> 16) on (4, 64): the first output (16 KiB) is still
    alive while ReLU writes its own (16 KiB); later only 16 KiB + 256 bytes: peak 32,768 bytes."""
    model = nn.Sequential(nn.Linear(64, 1024), nn.ReLU(), nn.Linear(1024, 16))
    r = costs.peak_memory_mb(model, inputs=torch.zeros(4, 64))
    assert r.parts["activations"] * costs.MIB == 2 * 4 * 1024 * 4


def test_peak_memory_in_bfloat16_halves_and_tied_weights_count_once():
    r = costs.peak_memory_mb(nn.Linear(256, 512), inputs=torch.zeros(8, 256), dtype=torch.bfloat16)
    assert r.parts["weights"] * costs.MIB == (256 * 512 + 512) * 2 and r.protocol["dtype"] == "bfloat16"
    # the output, 8 x 512 x 2 B, exactly where the bf16 matmul allocates nothing else; a CPU with
    # native bf16 kernels (avx512_bf16: oneDNN) adds a scratch buffer through torch's allocator
    # (35,840 B on an AMD EPYC), which the measure rightly counts
    assert 8 * 512 * 2 <= r.parts["activations"] * costs.MIB <= 8 * 512 * 2 + 64 * 1024
    tied = nn.Sequential(nn.Embedding(10, 6), nn.Linear(6, 10, bias=False))
    tied[1].weight = tied[0].weight
    assert costs.weight_bytes(tied) == 10 * 6 * 4


# -- machine fingerprint and the worker guard ------------------------------------------------
def test_fingerprints_differ_by_threads_and_dtype_and_are_stable():
    base = costs.device_fingerprint("cpu", 1, torch.float32)
    assert base["cpu"] and base["torch"] == torch.__version__ and base["usable_cpus"] >= 1
    assert (base["device"], base["threads"], base["dtype"], base["gpu"]) == ("cpu", 1, "float32", None)
    key = costs.fingerprint_key(base)
    assert key == costs.fingerprint_key(costs.device_fingerprint("cpu", 1, "float32"))
    assert key.startswith("cpu-float32-t1-")
    others = {costs.fingerprint_key(costs.device_fingerprint("cpu", 2, torch.float32)),
              costs.fingerprint_key(costs.device_fingerprint("cpu", 1, torch.bfloat16))}
    assert key not in others and len(others) == 2
    with pytest.raises(BadInputError):
        costs.device_fingerprint("cpu", 1, torch.int64)


def test_guard_refuses_more_measuring_threads_than_cores():
    costs.check_latency_workers(2, 1, cores=2)
    with pytest.raises(BadInputError) as e:
        costs.check_latency_workers(3, 1, cores=2)
    assert e.value.field == "workers" and "\n" not in str(e.value) and "--workers 2" in str(e.value)
    with pytest.raises(BadInputError) as e:
        costs.check_latency_workers(2, 2, cores=2)
    assert e.value.field == "workers" and "--workers 1" in str(e.value)
    with pytest.raises(BadInputError) as e:
        costs.check_latency_workers(1, 3, cores=2)
    assert e.value.field == "threads"
    with pytest.raises(BadInputError):
        costs.check_latency_workers(costs.usable_cpus() + 1)
    with pytest.raises(BadInputError):
        costs.check_latency_workers(0)


# -- analytic costs, the registry, no NaN -------------------------------------------------------
def test_analytic_counts():
    assert costs.n_layers({"n_layer": 7}).value == 7
    assert costs.n_layers(TinyLM(layers=5)).value == 5  # the longest stack of one block class
    r = costs.flops_per_token({"d": 3}, count=lambda arch: 2 * arch["d"] ** 2)
    assert (r.value, r.unit, r.runs, r.fingerprint) == (18.0, "FLOP/token", 0, None)
    with pytest.raises(BadInputError):
        costs.n_layers(nn.Linear(2, 2))


def test_gpt2_space_counts_through_the_hook():
    import numpy as np

    from nni_zerocost.spaces.gpt2 import counts
    from nni_zerocost.spaces.gpt2.config import DecoderConfig

    cfg = DecoderConfig.sample(np.random.default_rng(0))
    assert costs.n_layers(cfg).value == cfg.n_layer
    flops = costs.flops_per_token(cfg, count=lambda c: counts.flops_per_token(c, 32)["total"])
    assert flops.value == counts.flops_per_token(cfg, 32)["total"] > 0


def test_registry_and_no_silent_nan():
    assert costs.list_costs() == ["flops_per_token", "latency_ms", "n_layers", "peak_memory_mb"]
    assert costs.get_cost("latency_ms").kind == "measured" and costs.get_cost("n_layers").kind == "analytic"
    with pytest.raises(UnknownNameError, match="did you mean 'latency_ms'"):
        costs.get_cost("latency_mss")
    assert costs.measure("n_layers", {"n_layer": 3}).value == 3
    with pytest.raises(costs.CostMeasurementError):
        costs.CostResult("latency_ms", math.nan, "ms")
    with pytest.raises(costs.CostMeasurementError):
        costs.flops_per_token({}, count=lambda arch: math.inf)
