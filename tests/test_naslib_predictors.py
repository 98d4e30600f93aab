"""ZeroCostProxyPredictor, NASLib's ZeroCost on our measures, and the driver (need NASLib)."""
import importlib.util
import json
import math

import numpy as np
import pytest

if importlib.util.find_spec("naslib") is None:  # check first: enable() must not touch CI's process
    pytest.skip("NASLib is not installed (see README, section NASLib)", allow_module_level=True)
pytest.importorskip("naslib_ext.compat").enable()
pytest.importorskip("naslib")

from naslib.predictors import ZeroCost  # noqa: E402

import nni_zerocost  # noqa: E402
from naslib_ext import predictors as P  # noqa: E402
from naslib_ext.driver import evaluate, naslib_metrics  # noqa: E402
from naslib_ext.search_spaces import NasBenchNLPSpace  # noqa: E402
from nni_zerocost.errors import BadInputError, ProxyNotApplicableError  # noqa: E402
from nni_zerocost.proxies import ProxyResult  # noqa: E402

from conftest import GRU, LSTM  # noqa: E402


def _space(spec):
    s = NasBenchNLPSpace()
    s.set_spec(spec)
    return s


def _core(cell, batch=None, seed=0, proxy="hidden_covariance"):
    return nni_zerocost.score("rnn", cell, [proxy], batch=batch, seed=seed)[proxy].score


def test_both_query_conventions_give_the_core_score():
    gru, lstm = _space(GRU), _space(LSTM)
    pred = P.ZeroCostProxyPredictor("hidden_covariance", seed=3)
    expected = [_core(GRU, seed=3), _core(LSTM, seed=3)]
    many = pred.query([gru, lstm], None)  # PredictorEvaluator: list -> ndarray
    assert isinstance(many, np.ndarray) and many.dtype == np.float64
    assert many.tolist() == expected
    single = pred.query(gru)  # ZeroCost callers: one architecture -> float
    assert isinstance(single, float) and single == expected[0]
    assert pred.query(lstm.core_arch()) == expected[1]  # raw core architecture
    wrapped = gru.get_nbhd()[0]  # NASLib's module-with-.arch neighbour
    assert pred.query(wrapped) == _core(wrapped.arch.core_arch(), seed=3)


def test_dataloader_batch_is_used_batch_first():
    batch = nni_zerocost.data.zipf_batch(batch_size=8, seq_len=20, seed=5)
    pred = P.ZeroCostProxyPredictor("hidden_covariance:layer=2")
    got = pred.query(_space(GRU), dataloader=P.token_loader(batch))
    assert got == _core(GRU, batch=batch, proxy="hidden_covariance:layer=2")
    assert got != pred.query(_space(GRU))  # the default batch differs
    with pytest.raises(ValueError, match="integer token ids"):
        pred.query(_space(GRU), dataloader=[(batch.tokens.float().t(), None)])


def test_one_query_scores_every_architecture_on_the_same_batch():
    # a shuffling DataLoader gives a new first batch on each iter(): one query must take one
    class Shuffled:
        def __init__(self):
            self.seed = 0

        def __iter__(self):
            self.seed += 1
            return iter(P.token_loader(nni_zerocost.data.zipf_batch(batch_size=8, seq_len=20, seed=self.seed)))

    loader = Shuffled()
    pred = P.ZeroCostProxyPredictor("hidden_covariance")
    first, again = pred.query([_space(GRU), _space(GRU)], dataloader=loader).tolist()
    assert first == again == _core(GRU, batch=nni_zerocost.data.zipf_batch(batch_size=8, seq_len=20, seed=1))
    assert loader.seed == 1


def test_naslib_zerocost_uses_our_measure_and_equals_our_score():
    batch = nni_zerocost.get_space("rnn").default_batch()
    graph = _space(LSTM)
    expected = _core(LSTM, batch=batch, seed=P.MEASURE_SEED)
    for name in ("hidden_covariance", "nni_zerocost.hidden_covariance"):
        assert ZeroCost(method_type=name).query(graph, dataloader=P.token_loader(batch)) == expected


def test_measure_registration_is_idempotent_and_never_replaces_naslib():
    from naslib.predictors.utils.pruners import measures

    jacov = measures._measure_impls["jacov"]
    assert P.register_naslib_measures() == []
    assert P.register_naslib_measures(["params"]) == []  # 'params' is NASLib's own (find_measures)
    assert "nni_zerocost.params" in measures._measure_impls
    assert measures._measure_impls["jacov"] is jacov


def test_measure_refuses_foreign_networks():
    import torch

    with pytest.raises(ProxyNotApplicableError, match="naslib_ext.search_spaces"):
        P._naslib_measure(torch.nn.Linear(2, 2), torch.zeros(2, 3, dtype=torch.long), None, proxy="hidden_covariance")


def test_no_score_is_finite_and_ranks_last(monkeypatch):
    # the predictor scores through its plan (ScoringPlan.score): make it find no score, and count
    # what it is asked to score
    from nni_zerocost.plan import ScoringPlan

    scored = []

    def no_score(self, arch, requests=None):
        scored.append(arch)
        return {r.spec: ProxyResult(r.name, math.nan, r.higher_is_better, "non-finite hidden states")
                for r in (self.requests if requests is None else requests)}

    monkeypatch.setattr(ScoringPlan, "score", no_score)
    pred = P.ZeroCostProxyPredictor()
    gru, lstm = _space(GRU), _space(LSTM)
    assert pred.query(gru) == P.NO_SCORE == -1e8
    assert pred.query([gru, lstm]).tolist() == [-1e8, -1e8]
    result = pred.query_results([gru])[0]
    assert result.flag == "non-finite hidden states" and not result.ok
    # each architecture is scored once per query, as its core architecture, in the given order
    assert [c.canonical_hash() for c in scored] == [gru.core_arch().canonical_hash()] * 2 + [
        lstm.core_arch().canonical_hash(), gru.core_arch().canonical_hash()]


def test_predictor_metadata():
    pred = P.ZeroCostProxyPredictor("hidden_covariance")
    assert pred.fit([_space(GRU)], [1.0]) is None
    reqs = pred.get_data_reqs()
    assert not reqs["requires_partial_lc"] and not reqs["requires_hyperparameters"] and not reqs["unlabeled"]
    assert pred.method_type == "hidden_covariance" and pred.space == "rnn"
    both = P.ZeroCostProxyPredictor("head_confidence")  # applies to two spaces: each graph says its own
    assert both.space is None and sorted(both._plans) == ["bert", "gpt2"]
    # specs are checked at construction, through the core's door, before any model is built
    with pytest.raises(BadInputError, match="unknown proxy 'no_such_proxy'") as e:
        P.ZeroCostProxyPredictor("no_such_proxy")
    assert e.value.field == "proxy"
    with pytest.raises(BadInputError, match="layer") as e:
        P.ZeroCostProxyPredictor("hidden_covariance:layer=9")
    assert e.value.field == "proxy"
    with pytest.raises(BadInputError, match="does not apply to the 'bert' space"):
        P.ZeroCostProxyPredictor("hidden_covariance", space="bert")
    with pytest.raises(ValueError, match="space="):
        P.ZeroCostProxyPredictor("params", space=None).query(GRU)


def test_naslib_metrics_on_known_rankings():
    truth = np.arange(30.0)
    perfect = naslib_metrics(truth * 2 + 1, truth)
    assert perfect["kendalltau"] == perfect["spearman"] == pytest.approx(1.0)
    assert perfect["precision_10"] == perfect["precision_20"] == 1.0
    reverse = naslib_metrics(-truth, truth)
    assert reverse["kendalltau"] == pytest.approx(-1.0) and reverse["precision_10"] == 0.0
    with_nan = naslib_metrics(np.r_[truth[:-1], np.nan], truth)
    assert with_nan["n"] == 29 and with_nan["n_excluded"] == 1


def test_driver_matches_the_core_on_benchmark_cells(data_dir):
    # 'params' needs no forward pass, so 30 cells stay fast; hidden covariance equality per
    # architecture is covered above
    r = evaluate("nlp", "params", n=30, seed=1, data_dir=str(data_dir), check_core=True)
    assert r["n"] == 30 and r["core_match"] is True and r["max_abs_score_difference"] == 0.0
    assert r["query_time"] > 0 and r["n_excluded"] == 0
    for k in ("pearson", "spearman", "kendalltau", "precision_10", "precision_20"):
        assert r[k] == pytest.approx(r["core"][k], abs=1e-12)
    assert -1.0 <= r["kendalltau"] <= 1.0 and r["kendalltau"] != 0.0


def test_naslib_predictor_evaluator_runs_on_our_space_and_predictor(data_dir, tmp_path, monkeypatch):
    from fvcore.common.config import CfgNode
    from naslib.defaults.predictor_evaluator import PredictorEvaluator
    from scipy import stats

    monkeypatch.setenv("NNI_ZEROCOST_DATA", str(data_dir))
    np.random.seed(0)
    cfg = CfgNode(dict(experiment_type="single", test_size=15, train_size_single=2, train_size_list=[2],
                       fidelity_single=5, fidelity_list=[5], max_hpo_time=0, dataset="ptb",
                       uniform_random=True, save=str(tmp_path)))
    ev = PredictorEvaluator(P.ZeroCostProxyPredictor("params"), config=cfg)
    ev.adapt_search_space(NasBenchNLPSpace(), load_labeled=True)
    res = ev.evaluate()[-1]
    y, pred = np.array(res["full_ytest"]), np.array(res["full_testpred"])
    assert len(y) == 15 and np.all((90 < y) & (y < 97))  # 100 - PTB test loss
    assert np.all(pred > 5e6)  # parameter counts of the PTB model
    assert res["spearman"] == pytest.approx(stats.spearmanr(y, pred).statistic)


# -- the driver (python -m naslib_ext.driver) ---------------------------------------------------
def test_driver_bert_defaults_to_head_confidence(data_dir, capsys):
    from naslib_ext.driver import main
    from naslib_ext.search_spaces import benchmark_table
    from nni_zerocost.benchmarks.study import select_entries

    assert main(["--space", "bert", "--n", "6", "--data-dir", str(data_dir), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["proxy"] == "head_confidence" and r["benchmark"] == "nasbench-bert"
    assert r["n"] == 6 and r["n_excluded"] == 0 and "core" not in r
    # the figures are those of head_confidence scored by the core on the same six configs
    table = benchmark_table("nasbench-bert", {"data_dir": str(data_dir)})
    entries = select_entries(table.entries, table.benchmark, 6, 0)
    core = [nni_zerocost.score("bert", e.arch, ["head_confidence"])["head_confidence"].score for e in entries]
    sign = 1.0 if table.benchmark.primary_higher_is_better else -1.0
    expected = naslib_metrics(core, [sign * e.truth[table.benchmark.primary] for e in entries])
    for k in ("pearson", "spearman", "kendalltau"):
        assert r[k] == pytest.approx(expected[k], abs=1e-12)


@pytest.mark.parametrize("argv, says", [
    (["--space", "bert", "--proxy", "hidden_covariance"], "'hidden_covariance' does not apply to the 'bert' space"),
    (["--proxy", "hidden_covariance:layer=9"], "proxy 'hidden_covariance:layer=9'"),
    (["--proxy", "hidden_covariance:nope=1"], "proxy 'hidden_covariance:nope=1'"),
    (["--n", "0"], "n: must be at least 1, got 0"),
    (["--threads", "0"], "threads: must be at least 1, got 0"),
])
def test_driver_bad_input_is_one_line_before_any_work(argv, says, monkeypatch, capsys):
    from naslib_ext import driver

    def no_work(*a, **k):
        raise AssertionError("the benchmark table was loaded for a refused request")

    monkeypatch.setattr(driver, "benchmark_table", no_work)
    assert driver.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("python -m naslib_ext.driver: error: ")
    assert says in err


def test_driver_threads_flag_pins_this_process_and_its_workers(monkeypatch, capsys):
    import os

    import torch

    from naslib_ext import driver
    from nni_zerocost import threads

    monkeypatch.setenv(threads.THREADS_ENV, "1")  # the test session's pin, restored after the test
    monkeypatch.setattr(threads, "_pinned", None)
    seen = []

    def stop(*a, **k):  # record what scoring would run with, then stop
        seen.append((torch.get_num_threads(), os.environ[threads.THREADS_ENV], threads.pinned_threads()))
        raise BadInputError("n", "stopped by the test")

    monkeypatch.setattr(driver, "evaluate", stop)
    before = torch.get_num_threads()
    try:
        assert driver.main([]) == 2  # no flag: the policy (here the session's pin) decides
        assert driver.main(["--threads", "2"]) == 2
        assert driver.main(["--threads", "0"]) == 2
    finally:
        threads.pin_threads(None)
        torch.set_num_threads(before)
    assert seen[0][1:] == ("1", 1)
    assert seen[1] == (2, "2", 2)  # torch now, and every worker through the environment
    assert os.environ[threads.THREADS_ENV] == "1"  # and put back when the run returns
    assert len(seen) == 2
    err = capsys.readouterr().err
    assert err.count("stopped by the test") == 2 and "threads" in err.splitlines()[-1]


def test_driver_unknown_proxy_exits_2_with_one_line_and_no_traceback(data_dir):
    import os
    import subprocess
    import sys
    from pathlib import Path

    import naslib

    path = [str(Path(naslib.__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path + [os.environ.get("PYTHONPATH", "")]),
               NNI_ZEROCOST_DATA=str(data_dir))
    p = subprocess.run([sys.executable, "-m", "naslib_ext.driver", "--proxy", "nope"], capture_output=True,
                       text=True, env=env, timeout=300)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert p.stderr.startswith("python -m naslib_ext.driver: error: proxy 'nope': unknown proxy 'nope'; ")
    assert "hidden_covariance" in p.stderr  # it lists the proxies of the space


def test_driver_scores_each_architecture_once_unless_asked_to_check(data_dir, monkeypatch):
    from nni_zerocost.plan import ScoringPlan

    scored = []
    original = ScoringPlan.score

    def counting(self, arch, *a, **k):
        scored.append(str(getattr(arch, "to_recipe", lambda: arch)()))
        return original(self, arch, *a, **k)

    monkeypatch.setattr(ScoringPlan, "score", counting)
    r = evaluate("nlp", "params", n=12, seed=2, data_dir=str(data_dir))
    assert r["n"] == 12 and len(scored) == 12 and "core" not in r
    scored.clear()
    r = evaluate("nlp", "params", n=12, seed=2, data_dir=str(data_dir), check_core=True)
    # the core's plan reads the adapter's results back from the store: no second scoring
    assert len(scored) == 12 and r["core_match"] is True and r["core_computed"] == 0


def test_driver_counts_drawn_scored_and_excluded_apart(data_dir, monkeypatch):
    # three of ten cells get no score: the report still says ten were drawn, the metrics use seven
    from naslib_ext.driver import format_report
    from nni_zerocost.plan import ScoringPlan

    original, calls = ScoringPlan.score, []

    def some_fail(self, arch, *a, **k):
        calls.append(arch)
        out = original(self, arch, *a, **k)
        if len(calls) <= 3:
            out = {spec: ProxyResult(r.name, math.nan, r.higher_is_better, "test: no score") for spec, r in out.items()}
        return out

    monkeypatch.setattr(ScoringPlan, "score", some_fail)
    r = evaluate("nlp", "params", n=10, seed=3, data_dir=str(data_dir), device="cpu")
    assert (r["n"], r["n_scored"], r["n_excluded"], r["n_flagged"]) == (10, 7, 3, 3)
    assert format_report(r).splitlines()[0] == (
        "nasbench-nlp: proxy params on 10 architectures (seed 3; 3 without a score excluded, 3 flagged; device cpu)")
