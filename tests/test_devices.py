"""The ``device`` option: checked at the door, carried by every record, CPU keys unchanged."""
from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import pytest
import torch

import nni_zerocost as nz
from nni_zerocost import BadInputError
from nni_zerocost.cli import main
from nni_zerocost.devices import resolve_device
from nni_zerocost.worker import _worker_init

from conftest import run_items
from nni_zerocost.threads import THREAD_ENV, thread_env as _thread_env
from nni_zerocost.store import ResultStore, make_key

from conftest import LSTM, RNN

HAS_CUDA = torch.cuda.is_available()
no_cuda = pytest.mark.skipif(HAS_CUDA, reason="checks the refusal on a machine without CUDA")
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device here (torch.cuda.is_available() is False)")
SMALL = dict(emsize=16, nhid=24)


def test_auto_means_cuda_when_available_else_cpu():
    want = torch.device("cuda", torch.cuda.current_device()) if HAS_CUDA else torch.device("cpu")
    assert resolve_device("auto") == want
    assert resolve_device(None) == want
    assert nz.make_plan("rnn", "params").device == want  # make_plan's default is auto
    assert resolve_device("cpu") == resolve_device(" CPU ") == resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cpu:0", "auto:1", "cuda:-1", "", 3, ["cpu"]])
def test_a_malformed_device_is_refused_naming_the_field(bad):
    with pytest.raises(BadInputError) as e:
        nz.make_plan("rnn", "params", device=bad)
    assert e.value.field == "device"
    assert "auto, cpu, cuda or cuda:N" in str(e.value)


@no_cuda
@pytest.mark.parametrize("asked", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_is_refused_before_any_work(asked):
    with pytest.raises(BadInputError) as e:
        nz.make_plan("rnn", "hidden_covariance", device=asked)
    assert e.value.field == "device"
    assert "CUDA was asked for but is not available" in e.value.problem
    with pytest.raises(BadInputError):  # every front end goes through the same check
        nz.score("rnn", RNN, "params", device=asked)
    with pytest.raises(BadInputError):
        nz.get_space("rnn").context(RNN, device=asked)


@needs_cuda
def test_a_cuda_index_that_does_not_exist_is_refused():
    n = torch.cuda.device_count()
    with pytest.raises(BadInputError) as e:
        nz.make_plan("rnn", "params", device=f"cuda:{n}")
    assert e.value.field == "device" and f"no CUDA device {n}" in e.value.problem


def test_cpu_store_keys_are_those_stored_before_devices_existed():
    plan = nz.make_plan("rnn", ["hidden_covariance"], device="cpu")
    r = plan.requests[0]
    old = make_key("rnn", "h", r.name, r.options, plan.data_fingerprint, plan.seed, plan.context_options)
    assert plan.key("h", r) == old
    # another device type is another measurement (float rounding differs); its key says so
    gpu = dataclasses.replace(plan, device=torch.device("cuda", 1))
    key = gpu.key("h", r)
    assert key != old and json.loads(key)[6] == {"device": "cuda"}
    assert dataclasses.replace(plan, device=torch.device("cuda", 0)).key("h", r) == key  # one key per type


def test_records_say_which_device_computed_them(tmp_path):
    plan = nz.make_plan("rnn", ["params", "hidden_covariance"], device="cpu", **SMALL)
    store = ResultStore(tmp_path / "s.jsonl")
    (rec,) = run_items(plan, [("a", LSTM)], store)
    assert rec.device == "cpu" and rec.to_json()["device"] == "cpu"
    stored = [json.loads(line) for line in open(tmp_path / "s.jsonl")]
    assert len(stored) == 2 and {s["device"] for s in stored} == {"cpu"}
    (again,) = run_items(plan, [("a", LSTM)], store)  # from the store
    assert again.computed == 0 and again.device == "cpu" and again.values == rec.values


def test_the_device_option_gives_the_same_numbers_on_the_cpu():
    a = nz.score("rnn", LSTM, ["hidden_covariance", "activation_distance"], **SMALL)
    b = nz.score("rnn", LSTM, ["hidden_covariance", "activation_distance"], device="cpu", **SMALL)
    assert {k: v.raw for k, v in a.items()} == {k: v.raw for k, v in b.items()}


def test_nni_metrics_carry_the_device():
    pytest.importorskip("nni")
    from nni_zerocost.nas.evaluator import ZeroCostEvaluator

    ev = ZeroCostEvaluator("params", device="cpu")
    assert ev.score(("rnn", RNN))["device"] == "cpu"
    with pytest.raises(BadInputError) as e:
        ZeroCostEvaluator("params", device="tpu")
    assert e.value.field == "device"


def test_cli_device_flag(tmp_path, capsys):
    cells = tmp_path / "c.jsonl"
    cells.write_text(json.dumps({"id": 1, "recipe": RNN}) + "\n")
    out = tmp_path / "o.jsonl"
    assert main(["score", "--space", "rnn", "--proxy", "params", "--cells", str(cells), "--out", str(out),
                 "--device", "cpu", "--no-store", "--no-progress"]) == 0
    assert json.loads(out.read_text())["device"] == "cpu"
    capsys.readouterr()
    assert main(["score", "--space", "rnn", "--proxy", "params", "--cells", str(cells), "--out", str(out),
                 "--device", "gpu", "--no-progress"]) == 2
    assert "--device 'gpu': must be one of auto, cpu, cuda or cuda:N" in capsys.readouterr().err


@no_cuda
def test_cli_refuses_cuda_without_cuda(tmp_path, capsys):
    for argv in (["score", "--space", "rnn", "--proxy", "params", "--sample", "1", "--out", str(tmp_path / "x")],
                 ["benchmark", "nasbench-nlp", "--proxy", "params"],
                 ["search", "--space", "rnn", "--proxy", "params", "--out", str(tmp_path / "d")]):
        assert main(argv + ["--device", "cuda", "--no-progress"]) == 2
        assert "--device 'cuda': CUDA was asked for but is not available" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()  # refused before the output folder exists


def test_benchmark_json_says_device_workers_and_wall_time(data_dir, capsys):
    assert main(["benchmark", "nasbench-nlp", "--proxy", "params", "--limit", "3", "--data-dir", str(data_dir),
                 "--device", "cpu", "--json", "--no-store", "--no-progress"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["device"] == "cpu" and res["workers"] == 1 and res["wall_seconds"] >= 0


# -- worker threads ---------------------------------------------------------------------------------
def _threads_seen():
    info = {}
    try:
        from threadpoolctl import threadpool_info

        info = {i["filepath"]: i["num_threads"] for i in threadpool_info()}
    except ImportError:
        pass
    return torch.get_num_threads(), {k: os.environ.get(k) for k in THREAD_ENV}, info


def test_each_worker_gets_one_thread():
    plan = nz.make_plan("rnn", "params", device="cpu")
    before = {k: os.environ.get(k) for k in THREAD_ENV}
    ctx = multiprocessing.get_context("spawn")
    job_text = json.dumps(nz.ScoringJob(plan.scoring_request).to_json())  # what a worker gets: the job as JSON
    with _thread_env(1), ProcessPoolExecutor(1, mp_context=ctx, initializer=_worker_init,
                                             initargs=(1, job_text)) as pool:
        torch_threads, env, blas = pool.submit(_threads_seen).result(timeout=300)
    assert torch_threads == 1
    assert set(env.values()) == {"1"}
    assert all(n == 1 for n in blas.values()), blas
    assert {k: os.environ.get(k) for k in THREAD_ENV} == before  # the parent's environment is restored


def test_workers_records_equal_one_process_and_carry_the_device():
    plan = nz.make_plan("rnn", ["hidden_covariance"], device="cpu", **SMALL)
    items = [(i, a) for i, a in enumerate([RNN, LSTM, RNN])]
    one = list(run_items(plan, items, None))
    two = list(run_items(plan, items, None, workers=2))
    assert [r.values for r in one] == [r.values for r in two]
    assert {r.device for r in two} == {"cpu"}


def test_trial_and_tuner_take_a_device(capsys):
    pytest.importorskip("nni")
    from nni_zerocost.nas.codec import get_codec
    from nni_zerocost.nas.trial import build_parser, main as trial_main, resolve_request
    from nni_zerocost.nas.tuner import ZeroCostTuner

    sample = get_codec("rnn").encode(nz.get_space("rnn").parse(RNN))
    assert trial_main(["--space", "rnn", "--device", "cpu", "--batch-size", "6", "--seq-len", "8",
                       "--sample", json.dumps(sample)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["metrics"]["device"] == "cpu"
    assert resolve_request(build_parser().parse_args(["--space", "rnn"]), None).device == "auto"
    sent = {"space": "rnn", "proxies": ["params"]}
    assert resolve_request(build_parser().parse_args(["--device", "cpu"]), sent).device == "cpu"
    with pytest.raises(ValueError, match="contradicts"):
        resolve_request(build_parser().parse_args(["--space", "rnn", "--device", "cpu"]), {**sent, "device": "cuda"})
    if not HAS_CUDA:
        with pytest.raises(BadInputError) as e:  # checked when NNI hands the tuner its search space
            ZeroCostTuner(space="rnn", algorithm="Random", device="cuda").update_search_space({})
        assert e.value.field == "device"
