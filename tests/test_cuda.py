"""CPU and GPU agree: the same initial weights, and rank agreement per proxy.

Skipped as a whole without CUDA (CI on CPU stays green).  Weights are drawn on the CPU and
moved, so they must be *equal*; scores differ only by the device's float rounding, so over 100
NAS-Bench-NLP cells and 100 BERT architectures every proxy must rank them alike (Spearman >=
0.999 between the two devices) and give no score on exactly the same ones.  The CPU side runs
with one worker per two cores (the GPU machines have many); the benchmark architectures come
from the reference data (skipped without it).
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

if not torch.cuda.is_available():
    pytest.skip("no CUDA device here (torch.cuda.is_available() is False)", allow_module_level=True)

from scipy.stats import spearmanr  # noqa: E402

import nni_zerocost as nz  # noqa: E402
from nni_zerocost.benchmarks.base import get_benchmark  # noqa: E402
from nni_zerocost.benchmarks.study import select_entries  # noqa: E402
from conftest import run_items  # noqa: E402

from conftest import LSTM  # noqa: E402

N = 100
MIN_SPEARMAN = 0.999
CPU_WORKERS = max(1, (os.cpu_count() or 2) // 2)


def _entries(name: str, data_dir):
    bench = get_benchmark(name)
    return select_entries(bench.load(data_dir), bench, N, 0)


def _scores(plan, entries, workers=1):
    recs = list(run_items(plan, [(e.arch_id, e.arch) for e in entries], None, workers=workers))
    assert all(r.error is None for r in recs), [r.error for r in recs if r.error][:3]
    return {s: np.array([np.nan if r.values[s] is None else r.values[s] for r in recs]) for s in plan.specs}


def _agree(space: str, entries, **options):
    specs = nz.list_proxies(space)
    cpu = _scores(nz.make_plan(space, specs, device="cpu", **options), entries, workers=CPU_WORKERS)
    gpu_plan = nz.make_plan(space, specs, device="cuda", **options)
    assert gpu_plan.device.type == "cuda"
    gpu = _scores(gpu_plan, entries)
    bad = {}
    for s in specs:
        a, b = cpu[s], gpu[s]
        assert np.array_equal(np.isnan(a), np.isnan(b)), f"{s}: no score on different architectures"
        keep = ~np.isnan(a)
        if keep.sum() < 3 or np.ptp(a[keep]) == 0:
            assert np.allclose(a[keep], b[keep], rtol=1e-4), s
            continue
        rho = spearmanr(a[keep], b[keep]).correlation
        if not rho >= MIN_SPEARMAN:
            bad[s] = rho
    assert not bad, f"CPU/GPU Spearman below {MIN_SPEARMAN}: {bad}"


def test_rnn_weights_are_bit_identical_on_cpu_and_gpu():
    for init in ("official", "compat"):
        cpu = nz.get_space("rnn").context(LSTM, device="cpu", init=init).model()
        gpu = nz.get_space("rnn").context(LSTM, device="cuda", init=init).model()
        assert {p.device.type for p in gpu.parameters()} == {"cuda"}
        for (n, a), (m, b) in zip(cpu.state_dict().items(), gpu.state_dict().items()):
            assert n == m and torch.equal(a, b.cpu()), n


def test_bert_weights_are_bit_identical_on_cpu_and_gpu():
    sp = nz.get_space("bert")
    config = sp.sample(np.random.default_rng(0))
    cpu, gpu = sp.context(config, device="cpu").model(), sp.context(config, device="cuda").model()
    for (n, a), (m, b) in zip(cpu.state_dict().items(), gpu.state_dict().items()):
        assert n == m and torch.equal(a, b.cpu()), n


def test_every_rnn_proxy_agrees_on_100_nasbench_nlp_cells(data_dir):
    _agree("rnn", _entries("nasbench-nlp", data_dir))


@pytest.mark.parametrize("as_trained", [False, True], ids=["declared", "as-trained"])
def test_every_bert_proxy_agrees_on_100_bert_architectures(data_dir, as_trained):
    if not (data_dir / "training_free_nas" / "BERT_benchmark.json").is_file():
        pytest.skip(f"BERT benchmark not found in {data_dir}")
    _agree("bert", _entries("nasbench-bert", data_dir), as_trained=as_trained or None)


def test_gpu_records_are_keyed_and_labelled_by_device(tmp_path):
    from nni_zerocost.store import ResultStore

    store = ResultStore(tmp_path / "s.jsonl")
    cpu = nz.make_plan("rnn", "hidden_covariance", device="cpu")
    gpu = nz.make_plan("rnn", "hidden_covariance", device="cuda")
    (a,) = run_items(cpu, [(0, LSTM)], store)
    (b,) = run_items(gpu, [(0, LSTM)], store)
    assert b.computed == 1, "a CPU result must not answer a CUDA request"
    assert a.device == "cpu" and b.device.startswith("cuda")
    assert math.isclose(a.values["hidden_covariance"], b.values["hidden_covariance"], rel_tol=1e-3)
