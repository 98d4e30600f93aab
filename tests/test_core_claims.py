"""Jobs started together share the cores: claims on lock files, dropped when their process dies."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from nni_zerocost import threads
from nni_zerocost.core_claims import CoreClaim


@pytest.fixture
def cores(tmp_path, monkeypatch):
    """A claims folder of the test's own, two usable cores, nothing else busy, no pin."""
    monkeypatch.setenv("NNI_ZEROCOST_CORES_DIR", str(tmp_path / "cores"))
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    monkeypatch.setattr(threads, "_pinned", None)
    monkeypatch.setattr(threads, "_measured", None)
    monkeypatch.setattr(threads, "usable_cpus", lambda: 2)
    monkeypatch.setattr(threads, "busy_cores", lambda window_s=0.05: 0.0)
    return tmp_path / "cores"


def test_a_core_has_one_holder_until_it_is_released(cores):
    a, b = CoreClaim(2), CoreClaim(2)
    assert a.available and a.take(2) == 2
    assert b.take(2) == 0 and b.held_by_others() == 2
    a.release()
    assert b.take(2) == 2 and a.held_by_others() == 2


def test_jobs_started_together_split_the_cores(cores):
    first = CoreClaim(2)
    assert first.take(1) == 1  # the other job got its first core before this one measured
    n, claim = threads.claim_threads(1)
    assert n == 1 and claim.count == 1
    assert first.take(2) == 1  # and the first job, measuring next, finds the rest taken
    claim.release()
    first.release()
    n, claim = threads.claim_threads(1)  # a job alone takes every idle core, as before claims
    assert n == 2
    claim.release()


def test_workers_share_what_their_pool_claimed(cores):
    other = CoreClaim(2)
    other.take(1)
    n, claim = threads.claim_threads(2)  # two workers, one core left: one thread each, at least
    assert n == 1 and claim.count == 1
    claim.release()
    other.release()


def test_an_explicit_count_holds_whatever_is_claimed(cores):
    other = CoreClaim(2)
    other.take(2)
    n, claim = threads.claim_threads(1, threads=2)
    assert n == 2 and claim.count == 0  # asked for: used as asked, claimed where free
    claim.release()
    other.release()


def test_a_killed_process_drops_its_claim(cores):
    holder = textwrap.dedent("""
        import sys, time
        from nni_zerocost.core_claims import CoreClaim
        c = CoreClaim(2)
        print(c.take(2), flush=True)
        time.sleep(120)
    """)
    env = {**os.environ, "NNI_ZEROCOST_CORES_DIR": str(cores)}
    p = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert p.stdout.readline().strip() == "2"
        mine = CoreClaim(2)
        assert mine.take(2) == 0
        os.kill(p.pid, signal.SIGKILL)  # no exit handler runs: the kernel drops the locks
        p.wait(timeout=30)
        assert mine.take(2) == 2
        mine.release()
    finally:
        if p.poll() is None:
            p.kill()


def test_a_scoring_scope_releases_its_claim(cores):
    with threads.scoring_threads() as n:
        assert n == 2 and CoreClaim(2).held_by_others() == 2
    assert CoreClaim(2).held_by_others() == 0


def test_without_a_writable_folder_the_measurement_alone_decides(tmp_path, monkeypatch, cores):
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setenv("NNI_ZEROCOST_CORES_DIR", str(blocked / "cores"))  # under a file: cannot be made
    n, claim = threads.claim_threads(1)
    assert not claim.available and n == 2
