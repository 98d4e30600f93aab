"""Registry conformance through the shipped kit (:mod:`nni_zerocost.testing`): every registered
proxy on every registered space it applies to, and every space, on every device.

Parametrized from the live registries, so proxies and spaces added later (or by plugins) are
checked without editing this file.  The CUDA cases skip, with the reason, where there is no GPU.
Deliberately broken proxies must fail the kit (a test of the tests).
"""
from __future__ import annotations

import math

import pytest
import torch

import nni_zerocost as nz
from nni_zerocost import testing
from nni_zerocost.proxies.base import PROXIES, Flagged, register_proxy

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here (torch.cuda.is_available() is False)")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread is faster, and immune to oversubscribed shared machines."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_registry_is_not_empty():
    assert testing.checks(), "no (proxy, space) pair registered"
    assert len(nz.list_spaces()) >= 3


@testing.parametrize_with_checks()
def test_conformance_cpu(check):
    check()


@CUDA
@testing.parametrize_with_checks(device="cuda")
def test_conformance_cuda(check):
    check()


# -- broken proxies fail the kit ---------------------------------------------------------------
@pytest.fixture
def broken():
    """Registers throw-away proxies on the rnn space's capabilities; removed afterwards."""
    added = []

    def add(name, fn, **kw):
        options = dict(needs=("recurrent_states",), higher_is_better=True, cost="forward", mode="eval",
                       nan_policy="flags NaN", size="independent of width")
        options.update(kw)
        fn.__doc__ = fn.__doc__ or "A deliberately broken test proxy."
        register_proxy(name, **options)(fn)
        added.append(name)
        return name

    yield add
    for name in added:
        PROXIES._items.pop(name, None)


def test_a_proxy_that_always_flags_fails(broken):
    def always(ctx) -> float:
        raise Flagged("I never know")

    name = broken("t_always_flags", always)
    with pytest.raises(AssertionError, match="flagged or without a score on every one"):
        testing.check_proxy(name, "rnn")


def test_a_proxy_that_changes_weights_fails(broken):
    def vandal(ctx) -> float:
        with torch.no_grad():
            next(ctx.model().parameters()).add_(1.0)
        return 1.0

    name = broken("t_changes_weights", vandal)
    with pytest.raises(AssertionError, match="modified weights"):
        testing.check_leaves_model_unchanged(name, "rnn")


def test_a_proxy_that_leaves_a_hook_fails(broken):
    def hooked(ctx) -> float:
        ctx.model().layers[0].register_forward_hook(lambda *a: None)
        return 1.0

    name = broken("t_leaves_hook", hooked)
    with pytest.raises(AssertionError, match="left hooks behind"):
        testing.check_leaves_model_unchanged(name, "rnn")


def test_a_nondeterministic_or_undocumented_proxy_fails(broken):
    gen = torch.Generator().manual_seed(0)

    def noisy(ctx) -> float:
        return float(torch.rand(1, generator=gen))

    name = broken("t_noisy", noisy)
    with pytest.raises(AssertionError, match="not deterministic"):
        testing.check_deterministic(name, "rnn")
    undocumented = broken("t_undocumented", lambda ctx: 1.0, size="")
    with pytest.raises(AssertionError, match="size is not documented"):
        testing.check_documented(undocumented, "rnn")


def test_a_weights_cost_proxy_that_runs_the_model_fails(broken):
    def sneaky(ctx) -> float:
        return float(ctx.incoming_states(1).mean())

    name = broken("t_sneaky", sneaky, cost="weights")
    with pytest.raises(AssertionError, match="declared cost='weights' but ran passes"):
        testing.check_weights_cost_runs_no_model(name, "rnn")
    assert math.isfinite(nz.score("rnn", nz.get_space("rnn").smoke_architecture(), name, emsize=8, nhid=8,
                                  batch_size=3, seq_len=4)[name].raw)


def test_a_proxy_that_reads_an_undeclared_member_fails(broken):
    def peeks(ctx) -> float:  # declares recurrent_states, reads the model itself
        return float(sum(p.numel() for p in ctx.model().parameters()))

    name = broken("t_peeks", peeks)
    with pytest.raises(AssertionError, match=r"reads ctx\.model, which none of its declared capabilities "
                                             r"\(recurrent_states\) provides"):
        testing.check_uses_only_declared(name, "rnn")
    assert nz.score("rnn", nz.get_space("rnn").smoke_architecture(), name, emsize=8, nhid=8, batch_size=3,
                    seq_len=4)[name].ok  # scoring itself is not restricted: the kit is


def test_the_kit_takes_a_proxy_object_and_a_space_object():
    testing.check_proxy(nz.get_proxy("params"), nz.get_space("rnn"))
    testing.check_space(nz.get_space("gpt2"), proxies=False)


def test_the_kit_checks_a_model_object_and_fails_an_always_flagging_proxy(broken):
    from nni_zerocost.spaces.model.tiny import recurrent_lm

    torch.manual_seed(0)
    scores = testing.check_model(recurrent_lm("LSTM"), proxies=["hidden_covariance", "params"])
    assert math.isfinite(scores["hidden_covariance"].raw) and scores["params"].raw > 0

    def always(ctx) -> float:
        raise Flagged("I never know")

    name = broken("t_always_flags_model", always)
    with pytest.raises(AssertionError, match="gave no clean value"):
        testing.check_model(recurrent_lm("LSTM"), proxies=[name])


class _Reordering:
    """A backend that answers the architectures in another order than they were submitted."""

    def __init__(self, checked):
        from nni_zerocost.worker import evaluate

        self.capacity, self.plan, self.evaluate, self.pending = 8, checked.plan, evaluate, []

    def submit(self, arch, specs):
        from concurrent.futures import Future

        self.pending.append((arch, specs, Future()))
        if len(self.pending) == 2:  # answer each pair crosswise
            (a, sa, fa), (b, sb, fb) = self.pending
            fa.set_result(self.evaluate(self.plan, b, sb))
            fb.set_result(self.evaluate(self.plan, a, sa))
            self.pending = []
        return self.pending[-1][2] if self.pending else fb

    def close(self):
        pass


class _Dropping(_Reordering):
    """A backend whose every third architecture never comes back."""

    def submit(self, arch, specs):
        from concurrent.futures import Future

        f = Future()
        self.pending.append(arch)
        if len(self.pending) % 3:
            f.set_result(self.evaluate(self.plan, arch, specs))
        else:
            f.set_exception(ConnectionError("lost"))
        return f


def test_the_kit_fails_a_backend_that_reorders_or_drops_records():
    with pytest.raises(AssertionError, match="got"):
        testing.check_backend(_Reordering)
    with pytest.raises(AssertionError, match=r"got .*\(error\)"):
        testing.check_backend(_Dropping)
    from nni_zerocost.runner import ProcessBackend
    from nni_zerocost.worker import plan_job_text

    testing.check_backend(lambda checked: ProcessBackend(checked.plan, plan_job_text(checked), 2, 1))


class TestParamsThroughTheClasses(testing.ProxyChecks):
    """The shipped test class, as a plugin author uses it."""

    proxy = "params"
    space = "rnn"
