"""``score --model``: your own models through the one runner, like a space's architectures.

Twelve small recurrent LMs from one factory with a file of argument sets: one process, two
worker processes, three shards merged, and Ray give the same records bit for bit; the weights
are seeded (the same model and seed give the same scores in every run); a re-run resumes; a
flag that cannot apply is refused with one line.
"""
from __future__ import annotations

import json
import os
import sys

import pytest

from nni_zerocost.cli import main
from nni_zerocost.store import ResultStore

FACTORY = "nni_zerocost.spaces.model.tiny:recurrent_lm"
PROXIES = ["--proxy", "hidden_covariance", "--proxy", "params", "--proxy", "synaptic_saliency"]


@pytest.fixture
def model_args(tmp_path):
    path = tmp_path / "models.jsonl"
    sets = [{"kind": kind, "nhid": nhid, "layers": layers, "vocab": 60}
            for kind in ("LSTM", "GRU") for nhid in (8, 12, 16) for layers in (1, 2)]
    path.write_text("".join(json.dumps(s) + "\n" for s in sets))
    assert len(sets) == 12
    return path


def _score(tmp_path, name, *extra, args=None):
    out = tmp_path / f"{name}.jsonl"
    argv = ["score", "--model", FACTORY, "--model-args", str(args), *PROXIES, "--out", str(out), "--no-progress",
            "--threads", "1", *extra]
    code = main(argv)
    return code, out


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _values(path):
    return [(r["id"], r["arch"], r["hidden_covariance"], r["params"], r["synaptic_saliency"], r["status"])
            for r in _records(path)]


def test_own_models_score_alike_in_every_route(tmp_path, model_args, capsys):
    code, one = _score(tmp_path, "one", "--workers", "1", "--store", str(tmp_path / "one.store"), args=model_args)
    assert code == 0
    recs = _records(one)
    assert len(recs) == 12 and {r["status"] for r in recs} == {"ok"}
    assert recs[0]["arch"] == {"factory": FACTORY, "kwargs": {"kind": "LSTM", "layers": 1, "nhid": 8, "vocab": 60}}
    assert len({r["arch_hash"] for r in recs}) == 12 and all(r["request"]["space"] == "model" for r in recs)
    code, two = _score(tmp_path, "two", "--workers", "2", "--no-store", args=model_args)
    assert code == 0 and _values(two) == _values(one)
    stores = []
    for k in (1, 2, 3):
        code, _ = _score(tmp_path, f"shard{k}", "--workers", "1", "--shard", f"{k}/3", "--store",
                         str(tmp_path / f"s{k}.store"), args=model_args)
        assert code == 0
        stores.append(str(tmp_path / f"s{k}.store"))
    assert main(["store", "merge", *stores, "--out", str(tmp_path / "merged.store"), "--rel-tol", "0"]) == 0
    raws = lambda p: {r["key"]: r["raw"] for r in ResultStore(p).records()}  # noqa: E731
    assert raws(tmp_path / "merged.store") == raws(tmp_path / "one.store") and len(raws(tmp_path / "one.store")) == 36
    capsys.readouterr()


def test_own_models_on_ray_give_the_records_of_one_process(tmp_path, model_args):
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")
    code, one = _score(tmp_path, "one", "--workers", "1", "--no-store", args=model_args)
    code, remote = _score(tmp_path, "ray", "--ray", "local", "--no-store", args=model_args)
    assert code == 0 and _values(remote) == _values(one)
    assert not ray.is_initialized()


def test_the_weights_are_seeded_and_a_rerun_resumes(tmp_path, model_args, capsys):
    runs = []
    for i in range(5):
        code, out = _score(tmp_path, f"run{i}", "--no-store", "--seed", "3", args=model_args)
        assert code == 0
        runs.append(_values(out))
    assert all(r == runs[0] for r in runs[1:])
    code, other = _score(tmp_path, "seed4", "--no-store", "--seed", "4", args=model_args)
    assert [v[2] for v in _values(other)] != [v[2] for v in runs[0]]  # another seed, other weights
    capsys.readouterr()
    code, again = _score(tmp_path, "run0", "--no-store", "--seed", "3", args=model_args)
    assert code == 0 and "12 of 12 architectures already there" in capsys.readouterr().err
    assert len(_records(again)) == 12  # nothing appended twice


@pytest.mark.parametrize("extra, flag", [
    (["--init", "compat"], "--init"),
    (["--sample", "3"], "--sample"),  # two things to score
    (["--max-flops", "1e6"], "--max-flops"),
    (["--gpus-per-task", "0.5"], "--gpus-per-task"),
    (["--model-arg", "nhid=4"], "--model-arg"),
    (["--proxy", "head_confidence"], "--proxy"),
])
def test_a_flag_that_cannot_apply_is_refused_in_one_line(tmp_path, model_args, capsys, extra, flag):
    code, out = _score(tmp_path, "bad", "--no-store", *extra, args=model_args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"nni-zerocost: error: {flag}"), err
    assert not out.exists()


def test_a_factory_that_cannot_be_imported_is_refused(tmp_path, capsys):
    out = tmp_path / "o.jsonl"
    assert main(["score", "--model", "no_such_module:f", "--proxy", "params", "--out", str(out), "--no-store"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nni-zerocost: error: --model") and "no module named 'no_such_module'" in err, err
    assert not out.exists()


def test_a_model_arg_names_its_own_flag(tmp_path, capsys, monkeypatch):
    module = tmp_path / "my_models.py"
    module.write_text("from nni_zerocost.spaces.model.tiny import recurrent_lm as small\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    out = tmp_path / "o.jsonl"
    code = main(["score", "--model", "my_models:small", "--model-arg", "nhid=10", "--model-arg", "kind=GRU",
                 "--proxy", "params", "--out", str(out), "--no-store", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    (rec,) = _records(out)
    assert rec["arch"]["kwargs"] == {"kind": "GRU", "nhid": 10} and rec["params"] > 0
    assert sys.modules["my_models"].small is not None
