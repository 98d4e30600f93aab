"""Optuna 5 as a host: real studies (in memory, SQLite, journal files, several processes), small
models (rnn with emsize 16, nhid 24, batches of 4 x 8 tokens), a few dozen trials each."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

optuna = pytest.importorskip("optuna")

import nni_zerocost as nz  # noqa: E402
from nni_zerocost.reproducibility import REL_TOL  # noqa: E402
from nni_zerocost.optuna import (  # noqa: E402
    ZeroCostObjective, distributions, grid, prescreen, suggest_architecture,
)

REPO = Path(__file__).resolve().parents[1]
SMALL = dict(emsize=16, nhid=24, batch_size=4, seq_len=8)
#: a LLaMA family of a few thousand parameters (the hf space; see tests/test_hf_space.py)
TINY_LLAMA = {
    "model_type": "llama",
    "fixed": {"vocab_size": 128, "max_position_embeddings": 32, "tie_word_embeddings": True},
    "choices": {"hidden_size": [16, 32], "num_hidden_layers": {"low": 1, "high": 3},
                "num_attention_heads": [2, 4], "intermediate_size": {"low": 32, "high": 96, "step": 32}},
    "require": ["intermediate_size >= 2 * hidden_size"],
}
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def _store_keys(path: Path) -> Counter:
    """How many times each result was written to a store (each line is one model computation)."""
    return Counter(json.loads(line)["key"] for line in path.read_text().splitlines() if line.strip())


# -- the distributions ---------------------------------------------------------------------------
@pytest.mark.parametrize("space", ["rnn", "bert", "gpt2"])
def test_every_proposal_of_every_sampler_decodes_to_a_valid_architecture(space):
    sp = nz.get_space(space)
    hashes = []

    def objective(trial):
        arch = suggest_architecture(trial, space)
        again = sp.parse(sp.to_dict(arch))  # valid, and plain JSON both ways
        hashes.append(sp.arch_hash(again))
        return float(sp.param_count(arch) or 0)

    samplers = [(optuna.samplers.RandomSampler(seed=0), 200),
                (optuna.samplers.TPESampler(seed=0, n_startup_trials=8), 20),
                (optuna.samplers.NSGAIISampler(seed=0, population_size=8), 20)]
    for sampler, n in samplers:
        study = optuna.create_study(sampler=sampler, direction="minimize")
        study.optimize(objective, n_trials=n)  # a decode error would fail a trial and stop the study
        assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * n
        assert study.trials[-1].distributions == distributions(space)
    assert len(set(hashes[:200])) > 150  # the random proposals are mostly distinct architectures


def test_a_grid_sampler_walks_a_sub_grid_of_the_space():
    search_space = grid("bert", hidden_size=[128, 256], num_layers=[2, 4])
    study = optuna.create_study(sampler=optuna.samplers.GridSampler(search_space, seed=0))
    sp = nz.get_space("bert")
    study.optimize(lambda t: float(sp.param_count(suggest_architecture(t, "bert")) or 0), n_trials=4)
    configs = {(t.params["hidden_size"], t.params["num_layers"]) for t in study.trials}
    assert configs == {(128, 2), (128, 4), (256, 2), (256, 4)}
    with pytest.raises(nz.BadInputError, match="no_such_label"):
        grid("bert", no_such_label=[1])


# -- single and multi-objective ------------------------------------------------------------------
def test_single_objective_scores_each_trial_through_the_runner_and_the_store_answers_repeats(tmp_path):
    store = tmp_path / "store.jsonl"
    objective = ZeroCostObjective("rnn", ["hidden_covariance", "params"], store=str(store), seed=0, **SMALL)
    assert objective.directions == ["maximize"]
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5))
    study.optimize(objective, n_trials=12)
    best = study.best_trial
    sp = nz.get_space("rnn")
    arch = sp.parse(best.user_attrs["arch"])
    expected = nz.score("rnn", arch, "hidden_covariance", seed=0, **SMALL)["hidden_covariance"].score
    assert best.value == pytest.approx(expected, rel=1e-9)
    assert best.user_attrs["arch_hash"] == sp.arch_hash(arch) and best.user_attrs["status"] in ("ok", "flagged")
    assert best.user_attrs["metrics"]["params"] is not None and best.user_attrs["computed"] == 2  # the extra proxy too
    for t in study.trials:  # a value is the score; no trial ends without a state or with NaN
        assert t.state in FINISHED and (t.value is None or math.isfinite(t.value))

    written = _store_keys(store)
    again = optuna.create_study(direction="maximize")
    again.enqueue_trial(best.params)
    again.optimize(objective, n_trials=1)
    assert again.trials[0].value == best.value and again.trials[0].user_attrs["computed"] == 0  # no model work
    assert _store_keys(store) == written


def test_a_candidate_without_a_score_prunes_its_trial_never_nan(tmp_path):
    objective = ZeroCostObjective("rnn", "hidden_covariance:max_degree=1", store=None, seed=0, **SMALL)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=12)
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and all(t.user_attrs["status"] == "no_score" and "divergence risk" in t.user_attrs["flag"]
                          and t.value is None for t in pruned)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert complete and all(math.isfinite(t.value) for t in complete)
    assert study.best_trial.user_attrs["status"] in ("ok", "flagged")


def test_constrained_nsga2_never_picks_an_over_budget_candidate_and_those_cost_no_model_work(tmp_path):
    store = tmp_path / "store.jsonl"
    limit = 3000.0
    objective = ZeroCostObjective("rnn", "hidden_covariance", cost="nonembedding_params", store=str(store),
                                  max_nonembedding_params=limit, seed=0, **SMALL)
    assert objective.directions == ["maximize", "minimize"]
    study = optuna.create_study(directions=objective.directions,
                                sampler=optuna.samplers.NSGAIISampler(seed=0, population_size=6))
    study.optimize(objective, n_trials=24)
    over = [t for t in study.trials if t.user_attrs["status"] == "over_budget"]
    assert over, "the budget should turn some proposals away"
    stored = {json.loads(line)["arch_hash"] for line in store.read_text().splitlines()}
    for t in over:
        assert t.state == optuna.trial.TrialState.PRUNED and t.constraints["max_nonembedding_params"] > 0
        assert t.user_attrs["computed"] == 0 and t.user_attrs["metrics"]["seconds"] == 0.0
        assert t.user_attrs["metrics"]["size_nonembedding_params"] > limit
        assert t.user_attrs["arch_hash"] not in stored  # never built, never scored
    assert study.best_trials
    for t in study.best_trials:
        assert t.constraints["max_nonembedding_params"] <= 0 and t.values[1] <= limit
        assert t.user_attrs["status"] in ("ok", "flagged")

    tpe = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5))
    tpe.optimize(ZeroCostObjective("rnn", "hidden_covariance", store=str(store), max_nonembedding_params=limit,
                                   seed=0, **SMALL), n_trials=16)
    assert tpe.best_trial.constraints["max_nonembedding_params"] <= 0


def test_a_measured_cost_is_the_second_objective_only_when_the_job_measures_it():
    with pytest.raises(nz.BadInputError, match=r"cost 'peak_memory_mb': is measured only when the job asks for it"):
        ZeroCostObjective("rnn", "hidden_covariance", cost="peak_memory_mb", **SMALL)
    objective = ZeroCostObjective("rnn", "hidden_covariance", cost="peak_memory_mb", costs=["peak_memory_mb"],
                                  store=None, seed=0, **SMALL)
    study = optuna.create_study(directions=objective.directions, sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=3)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done
    for t in done:  # the trial's second value is the cost the runner measured for it
        assert t.values[1] == t.user_attrs["metrics"]["cost_peak_memory_mb"] > 0


def test_your_own_model_factory_is_searched_through_the_model_space(tmp_path):
    from optuna.distributions import IntDistribution

    from nni_zerocost.spaces.model.tiny import recurrent_lm

    store = tmp_path / "store.jsonl"
    objective = ZeroCostObjective(recurrent_lm, "hidden_covariance", cost="params", store=str(store), seed=0,
                                  params={"nhid": IntDistribution(8, 32, step=8), "kind": ["LSTM", "GRU"],
                                          "layers": 1})
    study = optuna.create_study(directions=objective.directions, sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=8)
    for t in study.trials:
        recipe = {"factory": "nni_zerocost.spaces.model.tiny:recurrent_lm",
                  "kwargs": {"kind": t.params["kind"], "layers": 1, "nhid": t.params["nhid"]}}
        assert t.user_attrs["arch"] == recipe
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # the job's seed draws the recipe's weights
            model = recurrent_lm(**recipe["kwargs"])
        assert t.values[1] == sum(p.numel() for p in model.parameters())
        expected = nz.score_model(model, ["hidden_covariance"], seed=0)["hidden_covariance"].score
        assert t.values[0] == pytest.approx(expected, rel=REL_TOL)  # the same model, seed and batch
    distinct = {json.dumps(t.params, sort_keys=True) for t in study.trials}
    assert len(_store_keys(store)) == len(distinct)  # a repeated recipe is answered by the store
    with pytest.raises(nz.BadInputError, match="not a lambda or a local function"):
        ZeroCostObjective(lambda: None, "params", params={})
    with pytest.raises(nz.BadInputError, match=r"params\.nhid"):
        ZeroCostObjective(recurrent_lm, "params", params={"nhid": object()})
    with pytest.raises(nz.BadInputError, match="params: applies to a model factory"):
        ZeroCostObjective("rnn", "params", params={"nhid": [8]})


def test_a_family_of_the_hf_space_is_proposed_and_scored_as_its_own_members():
    pytest.importorskip("transformers")
    hf = nz.get_space("hf").family(choices=TINY_LLAMA)
    objective = ZeroCostObjective("hf", "params", choices=TINY_LLAMA, store=None, seed=0)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, n_trials=6)
    for t in study.trials:
        arch = hf.parse(t.user_attrs["arch"])
        assert hf.to_dict(arch) == t.user_attrs["arch"]
        assert set(t.params) == set(hf.choices())
        assert t.value == hf.param_count(arch)
    assert set(distributions("hf", choices=TINY_LLAMA)) == set(hf.choices())


def test_prescreen_enqueues_the_best_for_your_own_objective(tmp_path):
    study = optuna.create_study(direction="minimize")
    best = prescreen(study, "rnn", "hidden_covariance", 16, 3, workers=2, store=str(tmp_path / "s.jsonl"), seed=0,
                     **SMALL)
    scores = [r.scores["hidden_covariance"] for r in best]
    assert len(best) == 3 and scores == sorted(scores, reverse=True)
    sp = nz.get_space("rnn")
    seen = []

    def training(trial):  # your real objective; here, a stand-in that reads the architecture only
        arch = suggest_architecture(trial, "rnn")
        seen.append(sp.arch_hash(arch))
        return float(len(sp.to_dict(arch)))

    study.optimize(training, n_trials=3)
    assert seen == [r.arch_hash for r in best]
    assert [t.user_attrs["prescreen_score"] for t in study.trials] == scores


def test_a_job_field_a_trial_cannot_honour_is_refused():
    with pytest.raises(nz.BadInputError, match="workers"):
        ZeroCostObjective("rnn", "hidden_covariance", workers=2)
    with pytest.raises(nz.BadInputError, match="sample"):
        ZeroCostObjective("rnn", "hidden_covariance", sample=3)
    with pytest.raises(nz.BadInputError, match="cost"):
        ZeroCostObjective("rnn", "hidden_covariance", cost="flop")
    with pytest.raises(nz.BadInputError, match="proxy"):
        ZeroCostObjective("rnn", "no_such_proxy")


# -- parallel and durable ------------------------------------------------------------------------
WORKER = """
import json, sys, optuna
from nni_zerocost.optuna import ZeroCostObjective
optuna.logging.set_verbosity(optuna.logging.WARNING)
storage, store, n, seed, candidates = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
if "://" not in storage:
    from optuna.storages.journal import JournalFileBackend, JournalStorage
    storage = JournalStorage(JournalFileBackend(storage))
study = optuna.load_study(study_name="shared", storage=storage, sampler=optuna.samplers.RandomSampler(seed=seed))
study.optimize(ZeroCostObjective("rnn", "hidden_covariance", store=store, seed=0, threads=1, emsize=16, nhid=24,
                                 batch_size=4, seq_len=8,
                                 candidates=None if candidates == "-" else json.loads(candidates)), n_trials=n)
"""


def _journal(path):
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return JournalStorage(JournalFileBackend(path))


def test_two_processes_on_one_sqlite_study_score_what_one_process_scores_and_reuse_each_others_scores(tmp_path):
    # five architectures, proposed by a RandomSampler per process (seeds 0 and 1): what each
    # process proposes does not depend on the other, so one process running both seeds in turn
    # must see the same trials; repeats are many, so the results store has work to save
    sp = nz.get_space("rnn")
    candidates = [sp.to_dict(sp.sample(np.random.default_rng(i))) for i in range(5)]
    n = 6

    alone = optuna.create_study(direction="maximize")
    objective = ZeroCostObjective("rnn", "hidden_covariance", store=str(tmp_path / "alone.jsonl"), seed=0, threads=1,
                                  candidates=candidates, **SMALL)
    for seed in (0, 1):
        alone.sampler = optuna.samplers.RandomSampler(seed=seed)
        alone.optimize(objective, n_trials=n)

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    optuna.create_study(study_name="shared", storage=url, direction="maximize")
    store = tmp_path / "shared.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, url, str(store), str(n), str(seed),
                               json.dumps(candidates)], env=_env(), stderr=subprocess.PIPE, text=True)
             for seed in (0, 1)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()[-3000:]
    shared = optuna.load_study(study_name="shared", storage=url).get_trials()
    assert len(shared) == 2 * n and all(t.state in FINISHED for t in shared)

    def outcomes(trials):
        return {t.user_attrs["arch_hash"]: (t.user_attrs["status"], t.value) for t in trials}

    hashes = Counter(t.user_attrs["arch_hash"] for t in shared)
    assert hashes == Counter(t.user_attrs["arch_hash"] for t in alone.trials)
    got, want = outcomes(shared), outcomes(alone.trials)
    for h, (status, value) in want.items():
        assert got[h][0] == status
        assert (value is None and got[h][1] is None) or got[h][1] == pytest.approx(value, rel=1e-9)
    # no trial did model work for an architecture another trial had stored before it started
    for t in shared:
        if t.user_attrs["computed"]:
            assert not [u for u in shared if u.number != t.number and u.user_attrs["arch_hash"] ==
                        t.user_attrs["arch_hash"] and u.datetime_complete < t.datetime_start]
    assert sum(_store_keys(store).values()) == sum(t.user_attrs["computed"] for t in shared) < 2 * n


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_worker_killed_by_sigkill_loses_no_finished_trial_and_the_study_goes_on(tmp_path, kind):
    storage_arg = f"sqlite:///{tmp_path / 'study.db'}" if kind == "sqlite" else str(tmp_path / "study.log")

    def load():
        return optuna.load_study(study_name="shared",
                                 storage=storage_arg if kind == "sqlite" else _journal(storage_arg))

    storage = storage_arg if kind == "sqlite" else _journal(storage_arg)
    optuna.create_study(study_name="shared", storage=storage, direction="maximize")  # before the worker opens it
    store = tmp_path / "store.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", WORKER, storage_arg, str(store), "1000", "0", "-"], env=_env(),
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline, seen = time.monotonic() + 180, []
        while time.monotonic() < deadline and len(seen) < 4:
            time.sleep(0.5)
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            seen = [(t.number, t.state, t.value) for t in load().get_trials(states=FINISHED)]
        assert len(seen) >= 4
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    study = load()
    after = {t.number: (t.state, t.value) for t in study.get_trials(states=FINISHED)}
    assert all(after[n] == (state, value) for n, state, value in seen)  # nothing finished was lost
    assert len([t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]) <= 1  # the one in flight

    study.optimize(ZeroCostObjective("rnn", "hidden_covariance", store=str(store), seed=0, threads=1, **SMALL),
                   n_trials=3)
    study = load()
    assert len(study.get_trials(states=FINISHED)) == len(after) + 3
    names = optuna.get_all_study_names(storage_arg) if kind == "sqlite" else ["shared"]
    assert names == ["shared"]


# -- the command line ----------------------------------------------------------------------------
def _search(tmp_path, *extra):
    return ["search", "--engine", "optuna", "--space", "rnn", "--proxy", "hidden_covariance", "--budget", "12",
            "--emsize", "16", "--nhid", "24", "--store", str(tmp_path / "store.jsonl"), "--no-progress", *extra]


def test_the_cli_run_twice_continues_one_study_and_writes_the_usual_report(tmp_path, monkeypatch, capsys):
    from nni_zerocost.cli import main
    from nni_zerocost.runner import score_one
    from nni_zerocost.search_report import candidate_record, record_metrics

    monkeypatch.chdir(tmp_path)
    argv = _search(tmp_path, "--storage", "sqlite:///s.db", "--out", "out")
    assert main(argv) == 0
    assert main(argv) == 0
    assert optuna.get_all_study_names("sqlite:///s.db") == ["rnn-hidden_covariance"]
    study = optuna.load_study(study_name="rnn-hidden_covariance", storage="sqlite:///s.db")
    assert len(study.trials) == 24
    cands = [json.loads(line) for line in (tmp_path / "out" / "candidates.jsonl").read_text().splitlines()]
    assert [c["index"] for c in cands] == list(range(24))
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Optuna, TPESampler; study 'rnn-hidden_covariance', 24 trials" in report
    assert (tmp_path / "out" / "search.png").exists()
    assert "optuna-dashboard sqlite:///s.db" in capsys.readouterr().out

    # the same candidate record as the NNI route builds, from the runner's record of that architecture
    checked = nz.check_job(nz.ScoringJob.of(["hidden_covariance"], "rnn", seed=0, emsize=16, nhid=24,
                                            store=str(tmp_path / "store.jsonl")), need_architectures=False)
    arch = checked.plan.parse(cands[5]["arch"])
    nni_route = candidate_record(checked, 5, arch, record_metrics(score_one(checked, arch), "hidden_covariance"))
    assert {k: v for k, v in nni_route.items() if k != "seconds"} == \
        {k: v for k, v in cands[5].items() if k != "seconds"}


def test_the_cli_refuses_flags_of_the_other_engine_and_a_study_of_another_search(tmp_path, monkeypatch, capsys):
    from nni_zerocost.cli import main

    monkeypatch.chdir(tmp_path)
    nni = [a for a in _search(tmp_path, "--out", "o") if a not in ("--engine", "optuna")]
    assert main([*nni, "--sampler", "tpe"]) == 2
    assert capsys.readouterr().err.strip() == \
        "nni-zerocost: error: --sampler 'tpe': applies to --engine optuna only (NNI's search takes --strategy)"
    assert main(_search(tmp_path, "--out", "o", "--strategy", "evolution")) == 2
    assert capsys.readouterr().err.strip() == ("nni-zerocost: error: --strategy 'evolution': is NNI's; the Optuna "
                                               "engine takes --sampler (tpe, nsga2, random)")
    assert main(_search(tmp_path, "--out", "o", "--budget", "1", "--storage", "sqlite:///s.db")) == 0
    capsys.readouterr()
    assert main(_search(tmp_path, "--out", "o", "--budget", "1", "--storage", "sqlite:///s.db", "--seed", "1")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--study-name 'rnn-hidden_covariance': holds a study of another search (seed: 0 in the " \
                             "study, 1 asked)" in err[0]


# -- the example ---------------------------------------------------------------------------------
def test_the_nsga2_example_searches_a_llama_family_with_two_workers_on_sqlite(tmp_path):
    pytest.importorskip("transformers")
    family = tmp_path / "family.json"
    family.write_text(json.dumps(TINY_LLAMA))
    url = f"sqlite:///{tmp_path / 'ex.db'}"
    out = subprocess.run([sys.executable, str(REPO / "examples" / "optuna_nsga2.py"), "--choices", str(family),
                          "--max-params", "2e4", "--trials", "8", "--workers", "2", "--population", "2",
                          "--storage", url, "--store", str(tmp_path / "ex.jsonl")],
                         env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "feasible Pareto front of synaptic_saliency against non-embedding parameters" in out.stdout
    assert "pick (best synaptic_saliency within the budget): trial" in out.stdout and "llama: " in out.stdout
    study = optuna.load_study(study_name="hf-synaptic_saliency", storage=url)
    assert len(study.trials) == 8
    for t in study.trials:
        assert t.state in FINISHED
        if t.user_attrs["status"] == "over_budget":
            assert t.state == optuna.trial.TrialState.PRUNED and t.constraints["max_params"] > 0
    assert all(t.constraints["max_params"] <= 0 for t in study.best_trials)
