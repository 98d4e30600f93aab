"""Determinism across workers, bounded memory, nothing left behind after scoring."""
import gc
import os

import pytest

import nni_zerocost as nz
from conftest import run_items
from nni_zerocost.data import zipf_batch
from nni_zerocost.spaces.rnn.generator import CellGenerator

SMALL = {"emsize": 16, "nhid": 32}


def _cells(n):
    return [(i, CellGenerator(1 + i % 3).sample(100 + 7 * i)) for i in range(n)]


def test_workers_give_bit_identical_results():
    job = nz.make_plan("rnn", ["hidden_covariance", "hidden_covariance:layer=3", "params"], batch_size=6, seq_len=12,
                       seed=3, **SMALL)  # workers get the job as JSON: the batch is a shape, not an object
    items = _cells(8)
    one = [r.values for r in run_items(job, items, None, workers=1)]
    two = [r.values for r in run_items(job, items, None, workers=2)]
    assert len(one) == 8
    for a, b in zip(one, two):
        for k in a:
            assert (a[k] is None and b[k] is None) or a[k] == b[k], k


def test_bad_architecture_does_not_stop_a_parallel_run():
    job = nz.make_plan("rnn", ["params"], batch_size=4, seq_len=6, **SMALL)
    items = [(0, CellGenerator(1).sample(0)), (1, {"h_new_0": {"op": "nope", "input": ["x"]}}), (2, CellGenerator(2).sample(0))]
    recs = list(run_items(job, items, None, workers=2))
    assert [r.status for r in recs] == ["ok", "invalid", "ok"]
    assert "unknown op 'nope'" in recs[1].error


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_memory_stays_flat_over_many_architectures():
    batch = zipf_batch(10, 20, seed=0)
    cells = _cells(150)
    levels = []
    for i, (_, cell) in enumerate(cells):
        nz.score("rnn", cell, ["hidden_covariance", "params"], batch=batch, emsize=64, nhid=128)
        if i in (49, 149):
            gc.collect()
            levels.append(_rss_mb())
    assert levels[1] - levels[0] < 30, levels


def test_no_hooks_or_grads_survive_a_scoring_call():
    from torch.nn.modules import module as mm

    sp = nz.get_space("rnn")
    cell = CellGenerator(2).sample(3)
    with sp.context(cell, zipf_batch(4, 8), **SMALL) as ctx:
        nz.get_proxy("hidden_covariance")(ctx)
        model = ctx.model()
        assert not ctx.incoming_states(1).requires_grad
    assert ctx.cache == {}
    assert all(p.grad is None for p in model.parameters())
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
    assert not mm._global_forward_hooks and not mm._global_backward_hooks
