"""Search under a size budget: sizes from the architecture (no model work over budget), the
Pareto front, and the budget in the NNI adapters and the CLI."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import nni_zerocost as nz
from nni_zerocost.budget import SizeBudget, pareto_front
from nni_zerocost.budget import sizes as nz_sizes


def test_budget_is_checked_and_counts_without_building(monkeypatch):
    with pytest.raises(nz.BadInputError, match="max_params: must be a positive number, got -1"):
        nz.check_job(nz.ScoringJob.of("params", "rnn", max_params=-1), need_architectures=False)
    with pytest.raises(nz.BadInputError, match="max_flops: the 'rnn' space does not count FLOPs"):
        nz.check_job(nz.ScoringJob.of("params", "rnn", max_flops=1e9), need_architectures=False)
    sp = nz.get_space("gpt2")
    cfg = sp.smoke_architecture()
    monkeypatch.setattr(type(sp), "context", lambda *a, **k: pytest.fail("a model was built"))
    sizes = nz_sizes(sp, cfg)
    counts = nz.spaces.gpt2.param_counts(cfg)
    assert sizes == {"params": counts["total"], "nonembedding_params": counts["nonembedding"],
                     "flops": sp.flops(cfg), "n_layers": float(sp.layer_count(cfg))}
    assert SizeBudget(max_nonembedding_params=1e5).over(sizes) == \
        f"over budget: {counts['nonembedding']:.4g} non-embedding parameters > 1e+05"
    assert SizeBudget(max_params=1e9, max_flops=1e12).over(sizes) is None


def test_pareto_front():
    pts = [(1.0, 10), (2.0, 20), (1.5, 30), (None, 5), (3.0, 20), (0.5, 5), (float("nan"), 1)]
    assert pareto_front(pts) == [5, 0, 4]


def test_ranking_under_a_budget_scores_only_what_fits(monkeypatch, tmp_path):
    pytest.importorskip("nni")
    from nni_zerocost.nas import run_search

    sp = nz.get_space("rnn")
    rng = np.random.default_rng(0)
    sizes = sorted(sp.param_count(sp.sample(rng)) for _ in range(40))
    budget = sizes[len(sizes) // 2]
    scored = []
    original = nz.ScoringPlan.score
    monkeypatch.setattr(nz.ScoringPlan, "score", lambda self, arch, *a: scored.append(arch) or original(self, arch, *a))
    found = run_search("rnn", "params", "ranking", 8, seed=0, max_params=budget, experiment_dir=str(tmp_path),
                       batch_size=4, seq_len=6)
    assert found and all(m["size_params"] <= budget for _, m in found)
    assert all(sp.param_count(a) <= budget for a in scored)  # nothing over budget was ever scored
    assert [m["default"] for _, m in found] == sorted((m["default"] for _, m in found), reverse=True)


def test_evaluator_reports_a_candidate_over_budget_without_scoring(monkeypatch):
    pytest.importorskip("nni")
    from nni_zerocost.nas import ZeroCostEvaluator

    cfg = nz.get_space("gpt2").smoke_architecture()
    monkeypatch.setattr(nz.ScoringPlan, "score", lambda *a, **k: pytest.fail("scored a candidate over budget"))
    m = ZeroCostEvaluator("head_confidence", max_nonembedding_params=1000).evaluate(("gpt2", cfg))
    assert m["default"] == nz.NO_SCORE and m["over_budget"] and m["head_confidence"] is None
    assert m["flag"].startswith("over budget:") and m["size_nonembedding_params"] > 1000


def test_cli_search_with_a_budget_and_the_front(tmp_path, monkeypatch, capsys):
    pytest.importorskip("nni")
    from nni_zerocost.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(["search", "--space", "gpt2", "--proxy", "nonembedding_params", "--strategy", "ranking",
                 "--budget", "6", "--max-nonembedding-params", "3e6", "--pareto", "--out", "s", "--no-store",
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = [json.loads(line) for line in (tmp_path / "s" / "candidates.jsonl").read_text().splitlines()]
    assert rows and all(r["params"] is not None and r["nonembedding_params"] is not None for r in rows)
    assert "Pareto front of nonembedding_params against non-embedding parameters" in out
    report = (tmp_path / "s" / "report.md").read_text()
    assert "size budget: max non-embedding params 3e+06" in report and "Pareto front" in report
    assert math.isfinite(rows[0]["params"])
    # without a budget a proxy that is the size itself ranks the run by size: said once, with the
    # run's own numbers; a run whose best are not its biggest gets no such note
    code = main(["search", "--space", "gpt2", "--proxy", "nonembedding_params", "--strategy", "ranking",
                 "--budget", "12", "--out", "t", "--no-store", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and out.count("ranked this run's candidates largely by size (Kendall tau 1.00") == 1, out
    assert "ranked this run's candidates largely by size" in (tmp_path / "t" / "report.md").read_text()
    code = main(["search", "--space", "gpt2", "--proxy", "head_confidence", "--strategy", "ranking",
                 "--budget", "12", "--out", "u", "--no-store", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "largely by size" not in out, out
