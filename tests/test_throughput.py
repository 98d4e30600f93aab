"""Throughput: where the scoring runs (this process, local worker processes, Ray tasks), the
thread policy, shards of a job array and merging their stores.

Every route must give the same records and store values, bit for bit, with the same threads; a
worker that dies costs only the architecture that killed it.  Tests that need Ray share one
private local cluster (module scope, started last: see the end of the file)."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import nni_zerocost as nz
from nni_zerocost import threads
from nni_zerocost.cli import main
from nni_zerocost.errors import BadInputError
from nni_zerocost.runner import ProcessBackend, worker_devices
from nni_zerocost.spaces import get_space
from nni_zerocost.store import ResultStore, merge_stores

from conftest import run_items

#: a small model and batch: the scoring of one cell takes milliseconds
SMALL = dict(emsize=16, nhid=24, batch_size=4, seq_len=8)
PROXIES = ["hidden_covariance", "params"]

#: a plugin whose proxies kill their own process: ``kill_once`` the first time it scores an
#: architecture (a marker file remembers it), ``kill_target`` every time it scores one whose
#: canonical hash has a file in the ``target`` folder.  Workers import it through
#: $NNI_ZEROCOST_PLUGINS; the folder is named by $ZC_TEST_KILL_DIR.
KILL_PLUGIN = '''
import os
import signal
from pathlib import Path

from nni_zerocost.proxies import register_proxy


def _folder(name):
    return Path(os.environ["ZC_TEST_KILL_DIR"]) / name


@register_proxy("kill_once", needs=("cell_graph",), higher_is_better=True, cost="weights",
                mode="no model", nan_policy="never NaN")
def kill_once(ctx) -> float:
    """Kills its process the first time it scores an architecture (a test plugin)."""
    marker = _folder("once") / ctx.cell.canonical_hash()
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return float(ctx.cell.n_linear)


@register_proxy("kill_target", needs=("cell_graph",), higher_is_better=True, cost="weights",
                mode="no model", nan_policy="never NaN")
def kill_target(ctx) -> float:
    """Kills its process whenever it scores a target architecture (a test plugin)."""
    if (_folder("target") / ctx.cell.canonical_hash()).exists():
        os.kill(os.getpid(), signal.SIGKILL)
    return float(ctx.cell.n_linear)
'''


def _cells(n: int, seed: int = 0):
    sp = get_space("rnn")
    rng = np.random.default_rng(seed)
    cells = [sp.sample(rng) for _ in range(n)]
    assert len({c.canonical_hash() for c in cells}) == n  # distinct architectures
    return [(f"c{i}", sp.to_dict(c)) for i, c in enumerate(cells)]


def _hash(arch) -> str:
    return get_space("rnn").parse(arch).canonical_hash()


def _plan(proxies=PROXIES):
    return nz.make_plan("rnn", list(proxies), device="cpu", **SMALL)


def _raws(path):
    """key -> (raw, flag) of a store file."""
    return {r["key"]: (r["raw"], r.get("flag")) for r in ResultStore(path).records()}


def _same(a, b) -> None:
    """Two runs' records agree: ids in input order, values bit for bit, flags, status, hashes."""
    assert [r.id for r in a] == [r.id for r in b]
    for x, y in zip(a, b):
        assert (x.values, x.flags, x.status, x.arch_hash, x.arch_key) == (y.values, y.flags, y.status, y.arch_hash,
                                                                            y.arch_key), x.id


def _one_error_line(capsys, flag: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0], err
    return err[0]


@pytest.fixture(scope="module")
def kill_plugin(tmp_path_factory):
    """The kill plugin, importable here and by every process started from here (Ray included,
    which must start after this)."""
    site = tmp_path_factory.mktemp("site")
    (site / "zc_kill_plugin.py").write_text(KILL_PLUGIN)
    folder = tmp_path_factory.mktemp("kills")
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(site))
        mp.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
        mp.setenv("NNI_ZEROCOST_PLUGINS", "zc_kill_plugin")
        mp.setenv("ZC_TEST_KILL_DIR", str(folder))
        yield folder


def _kills(folder: Path, targets=()) -> Path:
    """Fresh marker folders; ``targets``: the architectures ``kill_target`` kills for."""
    for name in ("once", "target"):
        shutil.rmtree(folder / name, ignore_errors=True)
        (folder / name).mkdir()
    for arch in targets:
        (folder / "target" / _hash(arch)).write_text("")
    return folder


# -- thread policy ------------------------------------------------------------------------------------
@pytest.fixture
def unpinned(monkeypatch):
    """No pinned thread count and no cached load measurement (restored after)."""
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    monkeypatch.setattr(threads, "_pinned", None)
    monkeypatch.setattr(threads, "_measured", None)
    yield monkeypatch
    torch.set_num_threads(1)


def test_auto_workers_one_per_core_at_most_one_per_eight_architectures(monkeypatch):
    monkeypatch.setattr(threads, "usable_cpus", lambda: 4)
    assert threads.ARCHS_PER_WORKER == 8
    assert [threads.resolve_workers("auto", n) for n in (1, 8, 16, 1000)] == [1, 1, 2, 4]
    assert threads.resolve_workers("auto", None) == 4  # unknown count: every usable core
    assert threads.resolve_workers(3, 1) == 3  # a count is taken as given
    job = nz.ScoringJob.of("params", "rnn", sample=40, workers=" AUTO ")
    assert nz.check_job(job).workers == 4  # the job reads 'auto' in any case
    assert nz.check_job(job.replace(workers="3")).workers == 3


@pytest.mark.parametrize("bad", [0, -1, "x", "0", "1.5", True, 2.0, None])
def test_a_job_refuses_workers_but_auto_or_a_positive_count(bad):
    with pytest.raises(BadInputError) as e:
        nz.check_job(nz.ScoringJob.of("params", "rnn", sample=1, workers=bad))
    assert e.value.field == "workers" and f"got {bad!s}" in str(e.value).replace("got '", "got ").rstrip("'")


def test_threads_per_process_explicit_then_pinned_then_idle_cores_shared(unpinned):
    unpinned.setattr(threads, "usable_cpus", lambda: 8)
    unpinned.setattr(threads, "busy_cores", lambda window_s=0.1: 2.4)  # 6 idle
    assert [threads.threads_per_process(w) for w in (1, 2, 3, 4, 12)] == [6, 3, 2, 1, 1]
    assert threads.threads_per_process(2, threads=5) == 5
    # the measurement is trusted for LOAD_TTL_S, then taken again
    unpinned.setattr(threads, "busy_cores", lambda window_s=0.1: 7.0)
    assert threads.idle_cores() == 6
    unpinned.setattr(threads, "_measured", (time.monotonic() - threads.LOAD_TTL_S - 1, 6))
    assert threads.idle_cores() == 1 and threads.threads_per_process(4) == 1
    unpinned.setattr(threads, "busy_cores", lambda window_s=0.1: 30.0)  # more than there are: still 1
    unpinned.setattr(threads, "_measured", None)
    assert threads.idle_cores() == 1
    # $NNI_ZEROCOST_THREADS pins it, over the load, under an explicit count
    unpinned.setenv(threads.THREADS_ENV, "3")
    assert threads.pinned_threads() == 3
    assert threads.threads_per_process(1) == threads.threads_per_process(8) == 3
    assert threads.threads_per_process(8, threads=2) == 2
    for bad in ("0", "two"):
        unpinned.setenv(threads.THREADS_ENV, bad)
        with pytest.raises(BadInputError, match=threads.THREADS_ENV):
            threads.threads_per_process(1)
    with pytest.raises(BadInputError, match="threads: must be at least 1, got 0"):  # the job checks a count
        nz.check_job(nz.ScoringJob.of("params", "rnn", sample=1, threads=0))


def test_scoring_threads_restores_torch_unless_pinned(unpinned):
    from threadpoolctl import threadpool_info, threadpool_limits

    unpinned.setattr(threads, "idle_cores", lambda: 2)
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        with threads.scoring_threads() as n:
            assert n == 2 and torch.get_num_threads() == 2
            pools = threadpool_info()
            assert pools and {p["num_threads"] for p in pools} == {2}  # BLAS (and OpenMP) pools too
        assert {p["num_threads"] for p in threadpool_info()} == {1}
    assert torch.get_num_threads() == 1  # the caller's own setting holds again
    with threads.scoring_threads(3) as n:
        assert n == 3 and torch.get_num_threads() == 3
    assert torch.get_num_threads() == 1
    threads.pin_threads(2)  # pinned: torch keeps the pinned count
    assert torch.get_num_threads() == 2
    torch.set_num_threads(1)
    with threads.scoring_threads() as n:
        assert n == 2 and torch.get_num_threads() == 2
    assert torch.get_num_threads() == 2


def test_an_explicit_thread_count_holds_inside_every_scoring_it_wraps(unpinned):
    """run_items(threads=N) wraps its loop in scoring_threads(N); plan.score inside opens its own
    scope without a count, which must keep N, not fall back to the measured idle cores."""
    unpinned.setattr(threads, "idle_cores", lambda: 1)  # a loaded machine
    torch.set_num_threads(1)
    seen = []
    with threads.scoring_threads(2):
        with threads.scoring_threads() as inner:
            seen.append((inner, torch.get_num_threads()))
        seen.append((None, torch.get_num_threads()))
    with threads.scoring_threads() as alone:
        seen.append((alone, torch.get_num_threads()))
    assert seen == [(2, 2), (None, 2), (1, 1)]

    plan = nz.make_plan("rnn", "params", device="cpu")
    counts = []
    real = nz.ScoringPlan.context

    def context(self, arch):  # the thread count the model work runs with
        counts.append(torch.get_num_threads())
        return real(self, arch)

    unpinned.setattr(nz.ScoringPlan, "context", context)
    arch = nz.get_space("rnn").sample(np.random.default_rng(0))
    run_items(plan, [(0, arch)], None, workers=1, threads=2)
    run_items(plan, [(1, arch)], None, workers=1)
    assert counts == [2, 1]
    assert torch.get_num_threads() == 1


def test_usable_cpus_is_the_affinity_capped_by_a_cgroup_quota(monkeypatch):
    affinity = len(os.sched_getaffinity(0))
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: None)
    assert threads.usable_cpus() == affinity
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: 1)
    assert threads.usable_cpus() == 1
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: affinity + 100)
    assert threads.usable_cpus() == affinity


@pytest.mark.parametrize("files, want", [
    ({"/sys/fs/cgroup/cpu.max": "150000 100000\n"}, 2),  # v2: 1.5 CPUs -> 2
    ({"/sys/fs/cgroup/cpu.max": "max 100000\n"}, None),
    ({"/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "250000\n", "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n"}, 3),
    ({"/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n", "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
])
def test_cgroup_quota_v1_and_v2(monkeypatch, files, want):
    import io

    def fake_open(path, *a, **k):
        if path not in files:
            raise FileNotFoundError(path)
        return io.StringIO(files[path])

    monkeypatch.setattr(threads, "open", fake_open, raising=False)
    assert threads._cgroup_quota() == want


def test_busy_cores_sees_a_spinning_process():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        busy = threads.busy_cores(0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert 0.5 <= busy <= len(os.sched_getaffinity(0)) + 0.5


# -- devices of local workers ---------------------------------------------------------------------------
def test_worker_devices_round_robin_over_gpus_only_when_none_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    plan = _plan()
    assert worker_devices(plan, 5) is None  # a CPU plan

    def on(asked):
        return dataclasses.replace(plan, device=torch.device("cuda"),
                                   scoring_request=dataclasses.replace(plan.scoring_request, device=asked))

    want = ["cuda:0", "cuda:1", "cuda:2", "cuda:0", "cuda:1"]
    assert worker_devices(on("cuda"), 5) == want
    assert worker_devices(on("auto"), 5) == want
    assert worker_devices(on("cuda:1"), 5) is None  # a GPU named: every worker on it
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert worker_devices(on("cuda"), 5) is None


# -- local worker processes -----------------------------------------------------------------------------
def test_worker_processes_give_the_records_of_this_process(tmp_path):
    items = _cells(8)
    here = list(run_items(_plan(), items, ResultStore(tmp_path / "a.jsonl")))
    pool = list(run_items(_plan(), items, ResultStore(tmp_path / "b.jsonl"), workers=2, threads=1))
    assert {r.status for r in here} == {"ok"}
    _same(here, pool)
    assert _raws(tmp_path / "a.jsonl") == _raws(tmp_path / "b.jsonl") and len(_raws(tmp_path / "a.jsonl")) == 16


@pytest.mark.timeout(90, method="thread")  # a pool whose workers wait for a device hangs: end the run
@pytest.mark.parametrize("round_robin", [False, True], ids=["one-device", "device-per-worker"])
def test_a_killed_local_worker_costs_only_its_architecture(tmp_path, kill_plugin, monkeypatch, round_robin):
    if round_robin:  # the route of several GPUs: each worker takes its device from a queue
        import nni_zerocost.runner as runner

        monkeypatch.setattr(runner, "worker_devices", lambda plan, workers: ["cpu"] * workers)
    items = _cells(6)
    target = items[2]
    _kills(kill_plugin, [target[1]])
    expected = {r.id: r.values["params"] for r in run_items(_plan(["params"]), items, None)}
    path = tmp_path / "s.jsonl"
    started = []
    real_init = ProcessBackend.__init__

    def counting_init(self, *a, **k):
        started.append(a)
        real_init(self, *a, **k)

    monkeypatch.setattr(ProcessBackend, "__init__", counting_init)
    recs = list(run_items(_plan(["params", "kill_target"]), items, ResultStore(path), workers=2, threads=1))
    assert len(started) == 1  # it ran in worker processes
    assert [r.id for r in recs] == [i for i, _ in items]
    lost = recs[2]
    assert lost.status == "error" and "worker" in lost.error and "died" in lost.error
    assert lost.values == {"params": None, "kill_target": None} and lost.traceback is None
    for r in recs[:2] + recs[3:]:
        assert r.status == "ok", (r.id, r.error)
        assert r.values["params"] == expected[r.id] and r.values["kill_target"] >= 1
    stored = list(ResultStore(path).records())
    assert len(stored) == 2 * 5 and _hash(target[1]) not in {s["arch_hash"] for s in stored}


# -- shards and merging ---------------------------------------------------------------------------------
SCORE = ["score", "--space", "rnn", "--benchmark", "nasbench-nlp", "--limit", "12", "--proxy", "hidden_covariance",
         "--proxy", "params", "--emsize", "16", "--nhid", "24", "--workers", "1", "--no-progress"]


def _ids(path):
    return [json.loads(line)["arch_id"] for line in path.read_text().splitlines()]


def test_shards_partition_the_architectures_and_merge_into_the_unsharded_store(tmp_path, data_dir, capsys):
    base = SCORE + ["--data-dir", str(data_dir)]
    assert main(base + ["--out", str(tmp_path / "all.jsonl"), "--store", str(tmp_path / "all.store")]) == 0
    stores, ids = [], []
    for k in (1, 2, 3):
        out, store = tmp_path / f"o{k}.jsonl", tmp_path / f"s{k}.store"
        assert main(base + ["--shard", f"{k}/3", "--out", str(out), "--store", str(store)]) == 0
        assert f"shard {k}/3: 4 of 12 architectures" in capsys.readouterr().err
        stores.append(str(store))
        ids.append(_ids(out))
    every = _ids(tmp_path / "all.jsonl")
    assert len(every) == len(set(every)) == 12
    assert sorted(sum(ids, [])) == sorted(every)  # the union is everything, and no id twice
    assert [len(set(a) & set(b)) for a, b in ((ids[0], ids[1]), (ids[0], ids[2]), (ids[1], ids[2]))] == [0, 0, 0]
    assert ids[0] == every[0::3] and ids[1] == every[1::3] and ids[2] == every[2::3]
    merged = tmp_path / "merged.store"
    assert main(["store", "merge", *stores, "--out", str(merged), "--rel-tol", "0"]) == 0
    assert "24 records" in capsys.readouterr().err
    assert _raws(merged) == _raws(tmp_path / "all.store") and len(_raws(merged)) == 24
    # the merged store answers an unsharded run with no model work and the same values
    out2 = tmp_path / "again.jsonl"
    from nni_zerocost.plan import ScoringPlan

    real = ScoringPlan.score
    ScoringPlan.score = lambda *a, **k: pytest.fail("scored again although the merged store holds it")
    try:
        assert main(base + ["--out", str(out2), "--store", str(merged)]) == 0
    finally:
        ScoringPlan.score = real
    strip = lambda p: [{k: v for k, v in json.loads(l).items() if k not in ("seconds", "proxy_seconds")}
                       for l in p.read_text().splitlines()]
    assert strip(out2) == strip(tmp_path / "all.jsonl")


@pytest.mark.parametrize("bad", ["0/3", "4/3", "x", "1/0", "1/3/3"])
def test_a_bad_shard_is_refused_before_any_work(tmp_path, capsys, bad):
    empty = tmp_path / "no-data"
    empty.mkdir()  # checked before the benchmark is loaded: no data needed to hear about --shard
    args = SCORE + ["--data-dir", str(empty), "--shard", bad, "--out", str(tmp_path / "o.jsonl"), "--no-store"]
    assert main(args) == 2
    _one_error_line(capsys, "--shard")
    assert not (tmp_path / "o.jsonl").exists()


@pytest.fixture
def two_stores(tmp_path):
    """Stores of two runs sharing architecture c1: a.store holds c0, c1; b.store c1, c2."""
    items = _cells(3)
    a, b = tmp_path / "a.store", tmp_path / "b.store"
    list(run_items(_plan(), items[:2], ResultStore(a)))
    list(run_items(_plan(), items[1:], ResultStore(b)))
    return a, b


def test_merge_deduplicates_agreeing_results(tmp_path, two_stores, capsys):
    a, b = two_stores
    out = tmp_path / "m.store"
    assert main(["store", "merge", str(a), str(b), "--out", str(out), "--rel-tol", "0"]) == 0
    assert "2 duplicate keys agreeing" in _one_error_line(capsys, str(out))
    merged = _raws(out)
    assert merged == {**_raws(a), **_raws(b)} and len(merged) == 6
    lines = out.read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == sorted(merged)  # one line per key, sorted
    assert merge_stores([a, b], tmp_path / "m2.store") == {"inputs": 8, "written": 6, "duplicates": 2, "torn": 0}


def _edit_raw(src: Path, dst: Path, factor: float) -> str:
    """``src`` copied to ``dst`` with the first hidden_covariance raw value times ``factor``; its key."""
    rows = [json.loads(line) for line in src.read_text().splitlines()]
    row = next(r for r in rows if r["proxy"] == "hidden_covariance")
    row["raw"] *= factor
    dst.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return row["key"]


def test_merge_refuses_a_conflicting_result_unless_within_tolerance(tmp_path, two_stores, capsys):
    a, b = two_stores
    edited = tmp_path / "edited.store"
    key = _edit_raw(a, edited, 1 + 1e-3)
    out = tmp_path / "m.store"
    for tol in ([], ["--rel-tol", "0"], ["--rel-tol", "1e-4"]):  # the CLI's default is 1e-6
        assert main(["store", "merge", str(a), str(edited), "--out", str(out), *tol]) == 2
        line = _one_error_line(capsys, key)
        assert str(a) in line and str(edited) in line and "raw" in line
        assert not out.exists() and not list(tmp_path.glob("m.store*"))  # nothing written, no temp file
    assert main(["store", "merge", str(a), str(edited), str(b), "--out", str(out), "--rel-tol", "1e-2"]) == 0
    capsys.readouterr()
    assert _raws(out) == {**_raws(b), **_raws(a)}  # the first file's value is kept


def test_merge_skips_and_counts_a_torn_last_line(tmp_path, two_stores, capsys):
    a, b = two_stores
    torn = tmp_path / "torn.store"
    text = b.read_text()
    torn.write_text(text + text.splitlines()[0][:40])  # a writer killed mid-line
    out = tmp_path / "m.store"
    assert main(["store", "merge", str(a), str(torn), "--out", str(out), "--rel-tol", "0"]) == 0
    assert "1 corrupt line skipped" in capsys.readouterr().err
    assert _raws(out) == {**_raws(a), **_raws(b)}
    assert merge_stores([a, torn], tmp_path / "m2.store")["torn"] == 1


def test_merge_into_one_of_its_inputs_is_refused(tmp_path, two_stores, capsys):
    a, b = two_stores
    before = a.read_bytes()
    assert main(["store", "merge", str(a), str(b), "--out", str(a)]) == 2
    assert str(a) in _one_error_line(capsys, "output")
    assert a.read_bytes() == before


# -- CLI checks before any work -------------------------------------------------------------------------
@pytest.mark.parametrize("extra, flag", [
    (["--gpus-per-task", "0.5"], "--gpus-per-task"),
    (["--ray", "local", "--workers", "3"], "--workers"),
    (["--workers", "0"], "--workers"),
    (["--workers", "x"], "--workers"),
    (["--workers", "-2"], "--workers"),
    (["--threads", "0"], "--threads"),
])
def test_where_the_work_runs_is_checked_before_any_work(tmp_path, capsys, monkeypatch, extra, flag):
    import nni_zerocost.runner as runner
    import nni_zerocost.ray_backend as ray_backend

    monkeypatch.setattr(runner, "run", lambda *a, **k: pytest.fail("scoring started"))
    monkeypatch.setattr(ray_backend, "import_ray", lambda: pytest.fail("Ray started"))
    out = tmp_path / "o.jsonl"
    for command in (["score", "--space", "rnn", "--sample", "2", "--out", str(out)],
                    ["benchmark", "nasbench-nlp", "--data-dir", str(tmp_path)]):
        assert main(command + ["--proxy", "params", "--no-store", "--no-progress", *extra]) == 2, command
        _one_error_line(capsys, flag)
    assert not out.exists()


@pytest.mark.parametrize("gpus", ["0", "-1", "2.5", "nan"])
def test_a_bad_gpu_fraction_is_refused_before_ray_starts(tmp_path, capsys, monkeypatch, gpus):
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray started"))
    out = tmp_path / "o.jsonl"
    args = ["score", "--space", "rnn", "--sample", "1", "--proxy", "params", "--out", str(out), "--no-store",
            "--no-progress", "--ray", "local", "--gpus-per-task", gpus]
    assert main(args) == 2
    assert "fraction" in _one_error_line(capsys, "--gpus-per-task")
    assert not ray.is_initialized()


@pytest.mark.timeout(120)  # tasks no node can run would wait forever
def test_more_threads_per_task_than_a_node_has_is_refused_and_the_private_ray_stopped(tmp_path, capsys):
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")
    too_many = threads.usable_cpus() + 1  # Ray would keep such tasks pending forever
    out = tmp_path / "o.jsonl"
    args = ["score", "--space", "rnn", "--sample", "2", "--proxy", "params", "--out", str(out), "--no-store",
            "--no-progress", "--ray", "local", "--threads", str(too_many)]
    assert main(args) == 2
    ours = [l for l in capsys.readouterr().err.splitlines() if l.startswith("nni-zerocost")]  # Ray says things too
    assert len(ours) == 1 and "--threads" in ours[0] and f"asks for {too_many} CPUs" in ours[0], ours
    assert not ray.is_initialized()  # the private Ray it started is stopped again


# -- Ray (one private local cluster for the module; these tests come last, so that its processes
#    do not run beside the others) ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster(kill_plugin):
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")
    ctx = ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
                   configure_logging=False)
    try:
        yield ctx.address_info["address"]
    finally:
        ray.shutdown()


@pytest.mark.timeout(120)  # tasks no node can run would wait forever
def test_ray_gives_the_records_and_store_of_local_workers(tmp_path, ray_cluster, monkeypatch):
    import ray

    from nni_zerocost.ray_backend import RayBackend

    items = _cells(8)
    local = list(run_items(_plan(), items, ResultStore(tmp_path / "local.jsonl"), workers=2, threads=1))
    submitted = []
    real_submit = RayBackend.submit
    monkeypatch.setattr(RayBackend, "submit", lambda self, *a: submitted.append(a) or real_submit(self, *a))
    remote = list(run_items(_plan(), items, ResultStore(tmp_path / "ray.jsonl"), ray=ray_cluster, threads=1))
    assert len(submitted) == 8  # one Ray task per architecture
    assert {r.status for r in remote} == {"ok"}
    _same(local, remote)
    assert _raws(tmp_path / "local.jsonl") == _raws(tmp_path / "ray.jsonl")
    assert len(_raws(tmp_path / "ray.jsonl")) == 16
    assert ray.is_initialized()  # the caller's Ray is the caller's to shut down
    (again,) = run_items(_plan(), items[:1], None, ray="auto", threads=1)
    assert again.values == local[0].values and ray.is_initialized()
    with pytest.raises(BadInputError) as e:  # the fixture's nodes have 2 CPUs: a 3-CPU task never runs
        list(run_items(_plan(), items[:1], None, ray=ray_cluster, threads=3))
    assert e.value.field == "threads" and ray.is_initialized()


def test_ray_retries_a_killed_worker(tmp_path, ray_cluster, kill_plugin):
    items = _cells(4, seed=1)
    _kills(kill_plugin)
    recs = list(run_items(_plan(["params", "kill_once"]), items, ResultStore(tmp_path / "s.jsonl"), ray=ray_cluster,
                           threads=1))
    assert [r.status for r in recs] == ["ok"] * 4, [r.error for r in recs]
    assert sorted(p.name for p in (kill_plugin / "once").iterdir()) == sorted(_hash(a) for _, a in items)
    assert all(r.values["kill_once"] >= 1 for r in recs)
    assert len(ResultStore(tmp_path / "s.jsonl")) == 8


def test_ray_an_architecture_that_always_kills_its_worker_is_an_error_record(tmp_path, ray_cluster, kill_plugin):
    items = _cells(5, seed=2)
    target = items[3]
    _kills(kill_plugin, [target[1]])
    plan = _plan(["params", "kill_target"])
    path = tmp_path / "s.jsonl"
    (first,) = run_items(plan, items[:1], ResultStore(path))  # stored before the run
    before = path.read_bytes()
    recs = list(run_items(plan, items, ResultStore(path), ray=ray_cluster, threads=1))
    assert [r.id for r in recs] == [i for i, _ in items]
    lost = recs[3]
    assert lost.status == "error" and "worker" in lost.error and "lost" in lost.error, lost.error
    assert lost.values == {"params": None, "kill_target": None}
    assert recs[0].computed == 0 and recs[0].values == first.values  # from the store
    for r in recs[:3] + recs[4:]:
        assert r.status == "ok" and r.values["params"] > 0 and r.values["kill_target"] >= 1, (r.id, r.error)
    assert path.read_bytes().startswith(before)  # appended to, nothing rewritten
    stored = list(ResultStore(path).records())
    assert len(stored) == 2 * 4 and _hash(target[1]) not in {s["arch_hash"] for s in stored}
