"""Divergence-aware RNN proxies, transformer capacity proxies, and the benchmark extras (all-cells tau,
rank averages, within-group means, trivial baselines)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import nni_zerocost as nz
from nni_zerocost.benchmarks.base import Entry, get_benchmark
from nni_zerocost.benchmarks.extra import all_cells_tau, augment, median_truth, select_all_cells
from nni_zerocost.benchmarks.study import select_entries, study
from nni_zerocost.proxies.bert_capacity import effective_rank, pca_count
from nni_zerocost.spaces import get_space

from conftest import LSTM, RNN

#: h <- h + (W x + U h + b)^2: the state multiplies itself and only grows (recurrence degree 2)
SQUARING = {
    "a": {"op": "linear", "input": ["x", "h_prev_0"]},
    "b": {"op": "elementwise_prod", "input": ["a", "a"]},
    "h_new_0": {"op": "elementwise_sum", "input": ["b", "h_prev_0"]},
}


def _small_ctx(recipe, seed=0):
    sp = get_space("rnn")
    batch = sp.default_batch(0)
    return sp.context(recipe, batch, seed=seed)


# -- RNN ----------------------------------------------------------------------------------
def test_lyapunov_numbers_and_divergent_cell_is_worse():
    res = {name: nz.score("rnn", c, ["recurrent_lyapunov", "recurrent_lyapunov:gain=1", "edge_of_chaos"], seed=0)
           for name, c in (("lstm", LSTM), ("rnn", RNN), ("squaring", SQUARING))}
    lstm = res["lstm"]["recurrent_lyapunov"]
    # untrained LSTM: forget gate ~ sigmoid(0) = 1/2 contracts the cell state by ~ln(1/2) per step
    assert lstm.flag is None and lstm.raw == pytest.approx(-0.6742, abs=2e-3)
    # a plain tanh RNN at unit-radius weights sits at the edge of chaos
    assert abs(res["rnn"]["recurrent_lyapunov"].raw) < 0.1
    sq = res["squaring"]["recurrent_lyapunov"]
    assert sq.flag and "overflowed" in sq.flag and sq.raw == pytest.approx(math.log(np.finfo(np.float64).max))
    # normalised scores: the divergent cell is worse than the LSTM on both dynamics proxies
    assert sq.score < lstm.score
    assert res["squaring"]["edge_of_chaos"].score < res["lstm"]["edge_of_chaos"].score


def test_stable_veto_ranks_divergent_cell_below_lstm_and_keeps_stable_cells_unchanged():
    r = {name: nz.score("rnn", c, ["hidden_covariance", "hidden_covariance_stable"], seed=0)
         for name, c in (("lstm", LSTM), ("squaring", SQUARING))}
    assert r["lstm"]["hidden_covariance_stable"].raw == r["lstm"]["hidden_covariance"].raw
    assert r["lstm"]["hidden_covariance_stable"].flag is None
    v = r["squaring"]["hidden_covariance_stable"]
    assert v.ok and v.flag and "veto" in v.flag
    assert v.score < r["lstm"]["hidden_covariance_stable"].score - 1e8


def test_hidden_covariance_seeds_one_seed_equals_hidden_covariance_and_mean_of_three():
    r = nz.score("rnn", LSTM, ["hidden_covariance", "hidden_covariance_seeds:n_seeds=1",
                               "hidden_covariance_seeds"], seed=0)
    assert r["hidden_covariance_seeds:n_seeds=1"].raw == r["hidden_covariance"].raw
    others = [nz.score("rnn", LSTM, ["hidden_covariance"], seed=s)["hidden_covariance"].raw for s in (1000, 2000)]
    assert r["hidden_covariance_seeds"].raw == pytest.approx(np.mean([r["hidden_covariance"].raw] + others), rel=1e-9)


def test_dynamics_pass_does_not_touch_weights():
    with _small_ctx(LSTM) as ctx:
        before = {n: p.clone() for n, p in ctx.model(1).named_parameters()}
        nz.get_proxy("recurrent_lyapunov")(ctx)
        for n, p in ctx.model(1).named_parameters():
            assert torch.equal(p, before[n]), n


# -- BERT ---------------------------------------------------------------------------------
def test_rank_helpers():
    assert effective_rank(torch.ones(7, dtype=torch.float64)) == pytest.approx(7.0)
    assert effective_rank(torch.tensor([4.0, 0, 0], dtype=torch.float64)) == pytest.approx(1.0)
    ev = torch.tensor([50.0, 30.0, 19.0, 1.0], dtype=torch.float64)
    assert pca_count(ev, 0.5) == 1 and pca_count(ev, 0.8) == 2 and pca_count(ev, 0.99) == 3 and pca_count(ev, 1.0) == 4


def _bert(hidden=128, layers=2, ff=1, heads=2):
    layer = {"operation_type": "SA", "operation_parameter": "SDP", "num_operation_heads": heads,
             "feed_forward_dimension": 512, "num_feed_forward": ff}
    return {"hidden_size": hidden, "nas_config": {"encoder_layers": [dict(layer) for _ in range(layers)]}}


def test_spectra_pass_replays_the_model_forward():
    """The spectra pass re-runs the encoder layer by layer; its last output must equal encode()."""
    from nni_zerocost.spaces.bert.model import Packing

    sp = get_space("bert")
    with sp.context(_bert(), seed=0, as_trained=True) as ctx:
        s = ctx.spectra()
        assert [k for k in s] == ["mix", "ffn", "out"] and len(s["out"]) == 2
        model, batch = ctx.model(), ctx.batch
        lengths = batch.attention_mask.sum(1)
        rows = int(torch.searchsorted(torch.cumsum(lengths, 0), torch.tensor(1024)).item()) + 1
        pk = Packing(batch.attention_mask[:rows].bool())
        with torch.no_grad():
            x = model.encode(model.embed(batch.input_ids[:rows], batch.token_type_ids[:rows], pk), pk)
        x = x[:1024].double()
        x = x - x.mean(0)
        ev = torch.linalg.eigvalsh(x.T @ x / (x.shape[0] - 1)).flip(0).clamp_min(0)
        assert torch.allclose(ev, s["out"][-1][2], rtol=1e-4, atol=1e-6)


def test_bert_capacity_proxies_see_feed_forward_depth_and_size():
    names = ["wpca", "ffn_rank", "subspace_rank", "zerolm", "attention_rank", "representation_rank", "balanced_rank"]
    shallow = nz.score("bert", _bert(ff=1), names, seed=0, as_trained=True)
    deep = nz.score("bert", _bert(ff=3), names, seed=0, as_trained=True)
    big = nz.score("bert", _bert(hidden=256, layers=4, ff=1), names, seed=0, as_trained=True)
    for n in names:
        assert shallow[n].ok and shallow[n].flag is None, n
    for n in ("wpca", "ffn_rank", "subspace_rank", "zerolm"):
        assert deep[n].score > shallow[n].score, n  # deeper feed-forward stacks: more capacity
    for n in names:
        assert big[n].score > shallow[n].score, n  # 4 x 256 vs 2 x 128


# -- benchmark extras ---------------------------------------------------------------------
def test_all_cells_tau_ranks_diverged_runs_and_missing_scores_last():
    E = [Entry(i, None, {}, runs) for i, runs in enumerate(
        [[4.0, 4.1, 4.2], [4.5, None, 4.6], [5.0, None, None], [None, None, None]])]
    assert [median_truth(e) for e in E] == [4.1, 4.6, math.inf, math.inf]
    # a perfect proxy (higher = better) is perfectly anti-correlated with loss, tie in truth kept
    perfect = all_cells_tau(E, [4.0, 3.0, 2.0, 1.0])
    assert perfect["kendall_tau_b"] == pytest.approx(-1.0 / math.sqrt(1 - 1 / 6)) or perfect["kendall_tau_b"] < -0.9
    assert perfect["n_worst_truth"] == 2
    missing = all_cells_tau(E, [4.0, 3.0, math.nan, math.nan])
    assert missing["n_missing_scores_ranked_last"] == 2 and missing["kendall_tau_b"] < -0.9


def test_trivial_baselines_on_nasbench_nlp(data_dir, nlp_entries):
    b = get_benchmark("nasbench-nlp")
    fin = select_entries(nlp_entries, b, None, 0)
    allc = select_all_cells(nlp_entries, None, 0)
    assert (len(fin), len(allc)) == (3371, 4114)
    r = augment(study(b, allc, {}, {}, {}), b, allc, {}, all_cells=True)
    sig = r["trivial_baselines"]["h_new_0 is sigmoid"]
    assert sig["per_arch"]["kendall_tau"] == pytest.approx(0.347, abs=1e-3)  # data README
    assert sig["all_cells"]["kendall_tau_b"] == pytest.approx(0.1734, abs=1e-3)
    assert sig["all_cells"]["n_worst_truth"] == 772
    assert r["trivial_baselines"]["n_params (official PTB model)"]["all_cells"]["kendall_tau_b"] == pytest.approx(-0.1000, abs=1e-3)


def test_trivial_baselines_on_bert(data_dir):
    b = get_benchmark("nasbench-bert")
    E = select_entries(b.load(data_dir), b, None, 0)
    r = augment(study(b, E, {}, {}, {}), b, E, {})
    base = r["trivial_baselines"]
    assert base["layers x hidden"]["kendall_tau"] == pytest.approx(0.745, abs=1e-3)
    assert base["layers"]["kendall_tau"] == pytest.approx(0.682, abs=1e-3)
    ne = base["non-embedding params (declared)"]
    assert ne["kendall_tau"] == pytest.approx(0.489, abs=1e-3)
    assert ne["within_groups_mean_tau"] == pytest.approx(0.19, abs=5e-3)
    assert [round(v["kendall_tau"], 2) for v in ne["within_groups"].values()] == [0.19, 0.39, 0.17, 0.03]


def test_cli_benchmark_json_has_extras(data_dir, tmp_path, capsys):
    import json

    from nni_zerocost.cli import main

    rc = main(["benchmark", "nasbench-nlp", "--all-cells", "--limit", "12", "--proxy", "params",
               "--store", str(tmp_path / "s.jsonl"), "--no-progress", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_archs"] == 12 and out["all_cells"] is True
    assert "kendall_tau_b" in out["proxies"]["params"]["all_cells"]
    assert set(out["trivial_baselines"]) == {"h_new_0 is sigmoid", "n_params (official PTB model)", "n_nodes"}


#: h <- (W x + U h + b) * h + h: degree 2, but the zero initial state stays zero when untrained
SELF_GATED = {
    "a": {"op": "linear", "input": ["x", "h_prev_0"]},
    "b": {"op": "elementwise_prod", "input": ["a", "h_prev_0"]},
    "h_new_0": {"op": "elementwise_sum", "input": ["b", "h_prev_0"]},
}


def test_bounded_veto_catches_degree_two_cells_that_look_harmless_untrained():
    from nni_zerocost.spaces.rnn.cell import Cell

    assert Cell.parse(SELF_GATED).recurrence_degree == 2
    names = ["hidden_covariance", "hidden_covariance_bounded"]
    lstm = nz.score("rnn", LSTM, names, seed=0)
    gated = nz.score("rnn", SELF_GATED, names, seed=0)
    assert lstm["hidden_covariance_bounded"].raw == lstm["hidden_covariance"].raw
    assert lstm["hidden_covariance_bounded"].flag is None
    v = gated["hidden_covariance_bounded"]
    assert v.ok and "veto" in v.flag
    assert v.score < lstm["hidden_covariance_bounded"].score - 1e8


def test_hidden_covariance_gain_one_equals_hidden_covariance():
    r = nz.score("rnn", LSTM, ["hidden_covariance", "hidden_covariance_gain:gain=1", "hidden_covariance_gain"], seed=0)
    assert r["hidden_covariance_gain:gain=1"].raw == r["hidden_covariance"].raw
    assert r["hidden_covariance_gain"].ok and r["hidden_covariance_gain"].raw != r["hidden_covariance"].raw


def test_rank_average_ranks_normalised_scores_and_missing_last():
    from nni_zerocost.benchmarks.extra import rank_average

    # sign-normalised scores (higher = better); proxy b was lower-is-better with raw 4, 3, 2, and
    # the last architecture has no b score
    r = rank_average([[1.0, 2.0, 3.0, 4.0], [-4.0, -3.0, -2.0, None]])
    assert r == pytest.approx([(0.25 + 0.5) / 2, (0.5 + 0.75) / 2, (0.75 + 1.0) / 2, (1.0 + 0.25) / 2])
