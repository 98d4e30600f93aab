"""Costs through the one job and runner: every front end reports, stores, budgets and plots them.

tests/test_costs.py checks each measure's protocol on hand-built models; here the route: records
carry ``costs``, the store answers a re-run by the machine's fingerprint, a measured budget skips
the proxies, a counted one skips the model, and the CLI, ``nz.score`` and ``score_model`` agree."""
import csv
import json

import pytest
import torch

import nni_zerocost as nz
from nni_zerocost.cli import main
from nni_zerocost.errors import BadInputError, UnknownNameError
from nni_zerocost.job import ScoringJob, check_job
from nni_zerocost.store import ResultStore
from nni_zerocost.threads import usable_cpus

from conftest import LSTM, RNN

SMALL = {"emsize": 16, "nhid": 16}  # a few-ms model: the measures' protocol, not their size, is tested


def _job(**fields):
    fields = {"workers": 1, **SMALL, **fields}
    return ScoringJob.of(["params"], "rnn", architectures=(("rnn", RNN), ("lstm", LSTM)), **fields)


def test_records_carry_measured_and_counted_costs_and_a_rerun_measures_nothing(tmp_path):
    store = str(tmp_path / "s.jsonl")
    recs = list(nz.run(_job(costs=("n_layers", "latency_ms", "peak_memory_mb"), store=store)))
    assert [r.status for r in recs] == ["ok", "ok"]
    for r in recs:
        assert r.costs["n_layers"]["value"] == 3 and r.costs["n_layers"]["fingerprint"] is None
        lat, mem = r.costs["latency_ms"], r.costs["peak_memory_mb"]
        assert lat["value"] > 0 and lat["unit"] == "ms" and lat["runs"] == 10
        assert lat["protocol"]["seq_len"] == 70 and lat["protocol"]["threads"] == 1  # the rnn space's row
        assert lat["fingerprint"].startswith("cpu-float32-t1-") and mem["fingerprint"] == lat["fingerprint"]
        assert mem["value"] == pytest.approx(mem["parts"]["weights"] + mem["parts"]["activations"])
    keys = [json.loads(line)["key"] for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert sum("cost:latency_ms" in k for k in keys) == 2 and sum("cost:peak_memory_mb" in k for k in keys) == 2
    again = list(nz.run(_job(costs=("n_layers", "latency_ms", "peak_memory_mb"), store=store)))
    assert [r.computed for r in again] == [0, 0]
    assert [r.costs for r in again] == [r.costs for r in recs]  # the stored measurement, not a new one
    assert len(ResultStore(store)) == len(keys)


def test_a_measured_budget_skips_the_proxies_and_keeps_the_measurement():
    recs = list(nz.run(_job(costs=("latency_ms",), max_latency_ms=1e-6, store=None)))
    for r in recs:
        assert r.status == "over_budget" and r.computed == 0 and r.results["params"] is None
        assert "latency_ms" in r.error and r.costs["latency_ms"]["value"] > 1e-6


def test_a_layer_budget_skips_before_any_model_work():
    recs = list(nz.run(_job(max_layers=2, costs=("latency_ms",), store=None)))
    assert [r.status for r in recs] == ["over_budget", "over_budget"]
    assert all(r.seconds == 0.0 and not r.costs for r in recs)  # nothing built, nothing measured


def test_bad_cost_fields_are_refused_naming_the_field():
    with pytest.raises(BadInputError) as e:
        check_job(_job(costs=("latency",)))
    assert e.value.field == "cost" and "latency_ms" in str(e.value)
    with pytest.raises(BadInputError) as e:
        check_job(_job(costs=("latency_ms",), workers=usable_cpus() + 1))
    assert e.value.field == "workers" and "contention" in str(e.value)
    with pytest.raises(BadInputError) as e:
        check_job(_job(max_memory_mb=-1))
    assert e.value.field == "max_memory_mb"


def test_cli_score_writes_costs_beside_the_scores(tmp_path):
    out = tmp_path / "out.jsonl"
    assert main(["score", "--space", "rnn", "--sample", "2", "--proxy", "params", "--cost", "n_layers",
                 "--cost", "peak_memory_mb", "--emsize", "16", "--nhid", "16", "--no-store", "--no-progress",
                 "--workers", "1", "--out", str(out)]) == 0
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(recs) == 2
    for r in recs:
        assert r["costs"]["n_layers"] == 3 and r["costs"]["peak_memory_mb"] > 0
        assert r["cost_details"]["peak_memory_mb"]["fingerprint"].startswith("cpu-float32-t1-")


def test_search_writes_the_front_against_a_measured_cost(tmp_path, capsys):
    out = tmp_path / "search"
    assert main(["search", "--space", "rnn", "--strategy", "ranking", "--budget", "4", "--proxy", "params",
                 "--emsize", "16", "--nhid", "16", "--pareto", "--pareto-against", "peak_memory_mb",
                 "--no-store", "--out", str(out)]) == 0
    assert "front.csv, pareto.png" in capsys.readouterr().out  # the files are named where they are written
    rows = list(csv.DictReader((out / "front.csv").open()))
    assert rows and all(float(r["peak_memory_mb"]) > 0 for r in rows)
    memory = [float(r["peak_memory_mb"]) for r in rows]
    score = [float(r["score"]) for r in rows]
    # a front: sorted by the cost, each member beats every cheaper one on the score
    assert memory == sorted(memory) and score == sorted(score)
    assert (out / "pareto.png").stat().st_size > 0


def test_python_score_returns_the_costs_beside_the_same_scores():
    plain = nz.score("rnn", RNN, ["params", "hidden_covariance"], **SMALL)
    with_costs = nz.score("rnn", RNN, ["params", "hidden_covariance"], costs=["n_layers", "peak_memory_mb"],
                          **SMALL)
    assert {k: v.raw for k, v in with_costs.items()} == {k: v.raw for k, v in plain.items()}
    assert plain.costs == {} and with_costs.costs["n_layers"].value == 3
    assert with_costs.costs["peak_memory_mb"].value > 0 and with_costs.costs["peak_memory_mb"].fingerprint
    with pytest.raises(UnknownNameError):
        nz.score("rnn", RNN, "params", costs=["latency"], **SMALL)


class _TinyLSTM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.rnn, self.out = torch.nn.Embedding(50, 8), torch.nn.LSTM(8, 8, 2, batch_first=True), \
            torch.nn.Linear(8, 50)

    def forward(self, ids):
        return self.out(self.rnn(self.emb(ids))[0])


def test_score_model_measures_the_model_where_it_is():
    model = _TinyLSTM()
    res = nz.score_model(model, ["params"], costs=["latency_ms", "n_layers"], cost_seq_len=12)
    assert res.costs["n_layers"].value == 2  # the LSTM's stacked layers
    assert res["params"].raw == sum(p.numel() for p in model.parameters())
    assert res.costs["latency_ms"].protocol["seq_len"] == 12 and res.costs["latency_ms"].value > 0
    with pytest.raises(BadInputError) as e:
        nz.score_model(model, ["params"], costs=["flops_per_token"])
    assert e.value.field == "costs"


def test_search_under_a_measured_budget_says_which_budget_left_candidates_out(tmp_path, capsys):
    assert main(["search", "--space", "rnn", "--strategy", "ranking", "--budget", "3", "--proxy", "params",
                 "--emsize", "16", "--nhid", "16", "--max-memory-mb", "0.001", "--no-store",
                 "--out", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "3 candidates over the measured budget, proxies not scored" in out, out
    recs = [json.loads(line) for line in (tmp_path / "s" / "candidates.jsonl").read_text().splitlines()]
    assert all(r["status"] == "over_budget" and r["costs"]["peak_memory_mb"] > 0.001 for r in recs)
