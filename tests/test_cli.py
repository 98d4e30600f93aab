import json
import warnings

import pytest

from nni_zerocost.cli import main
from nni_zerocost.store import ResultStore, make_key

from conftest import GRU, LSTM, RNN


def _cells(tmp_path, extra=()):
    f = tmp_path / "cells.jsonl"
    lines = [{"id": "rnn", "recipe": RNN}, {"id": "lstm", "recipe": json.dumps(LSTM)}, {"id": "gru", "recipe": GRU}, *extra]
    f.write_text("".join(json.dumps(l) + "\n" for l in lines))
    return f


def _read(path):
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def test_score_cells_writes_one_record_per_arch_and_rerun_does_no_model_work(tmp_path, capsys):
    cells = _cells(tmp_path, [{"id": "bad", "recipe": {"h_new_0": {"op": "conv", "input": ["x"]}}}])
    out = tmp_path / "out.jsonl"
    store = tmp_path / "s.jsonl"
    args = ["score", "--space", "rnn", "--proxy", "hidden_covariance", "--proxy", "params", "--cells", str(cells),
            "--out", str(out), "--store", str(store), "--no-progress"]
    assert main(args) == 0
    recs = _read(out)
    assert [r["id"] for r in recs] == ["rnn", "lstm", "gru", "bad"]
    assert recs[0]["params"] == 5_731_600 and recs[0]["status"] == "ok"
    assert isinstance(recs[1]["hidden_covariance"], float) and recs[1]["seconds"] > 0
    assert recs[3]["status"] == "invalid" and "unknown op 'conv'" in recs[3]["error"]
    assert len(ResultStore(store)) == 6  # 3 valid cells x 2 proxies
    # a second, fresh run over a new output: every value comes from the store
    out2 = tmp_path / "out2.jsonl"
    args2 = [a if a != str(out) else str(out2) for a in args]
    from nni_zerocost.plan import ScoringPlan

    calls = []
    real = ScoringPlan.score
    ScoringPlan.score = lambda *a, **k: calls.append(a) or real(*a, **k)
    try:
        assert main(args2) == 0
    finally:
        ScoringPlan.score = real
    assert calls == []
    assert [r["hidden_covariance"] for r in _read(out2)] == [r["hidden_covariance"] for r in recs]
    assert len(ResultStore(store)) == 6


def test_score_resumes_existing_output_without_duplicates(tmp_path, capsys):
    cells = _cells(tmp_path)
    out = tmp_path / "out.jsonl"
    first = tmp_path / "first.jsonl"  # a run that stopped after the first architecture
    first.write_text(cells.read_text().splitlines()[0] + "\n")
    args = ["score", "--space", "rnn", "--proxy", "params", "--out", str(out), "--no-store", "--no-progress"]
    assert main(args + ["--cells", str(first)]) == 0
    line = out.read_text()
    capsys.readouterr()
    assert main(args + ["--cells", str(cells)]) == 0
    assert [r["id"] for r in _read(out)] == ["rnn", "lstm", "gru"]
    assert out.read_text().startswith(line)  # kept byte for byte, not recomputed
    err = capsys.readouterr().err
    assert "1 of 3 architectures already there (same request)" in err and "wrote 2 records" in err


def test_score_sample_and_benchmark_ids(tmp_path, data_dir):
    out = tmp_path / "s.jsonl"
    assert main(["score", "--space", "rnn", "--proxy", "params", "--sample", "3", "--out", str(out), "--no-progress"]) == 0
    assert [r["id"] for r in _read(out)] == [0, 1, 2]
    out = tmp_path / "b.jsonl"
    assert main(["score", "--space", "rnn", "--proxy", "params", "--benchmark", "nasbench-nlp", "--limit", "4",
                 "--data-dir", str(data_dir), "--out", str(out), "--no-progress"]) == 0
    recs = _read(out)
    assert len(recs) == 4 and all("arch_id" in r for r in recs)


def test_benchmark_json_schema(tmp_path, data_dir, capsys):
    assert main(["benchmark", "nasbench-nlp", "--proxy", "params", "--proxy", "hidden_covariance", "--limit", "6",
                 "--data-dir", str(data_dir), "--json", "--no-progress", "--report", str(tmp_path / "t.md")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["benchmark"] == "nasbench-nlp" and res["n_archs"] == 6 and res["n_runs"] >= 6
    for name in ("params", "hidden_covariance"):
        row = res["proxies"][name]
        assert set(row) >= {"kendall_tau", "spearman", "pearson", "seconds_per_arch", "n_flagged"}
        assert -1 <= row["kendall_tau"] <= 1
    assert "| `hidden_covariance` |" in (tmp_path / "t.md").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["score", "--space", "rnn", "--proxy", "nope", "--sample", "1", "--out", "X"],
         "--proxy 'nope': unknown proxy 'nope'; proxies for the 'rnn' space: activation_distance, "),
        (["score", "--space", "cnn", "--proxy", "params", "--sample", "1", "--out", "X"],
         "--space 'cnn': unknown space (did you mean 'rnn'?); valid spaces: bert, gpt2, hf, model, rnn"),
        (["score", "--space", "rnn", "--proxy", "hidden_covariance:depth=2", "--sample", "1", "--out", "X"],
         "proxy 'hidden_covariance' has no option 'depth'; its options: layer (an integer in 1..(the model's "
         "recurrent layers)), max_degree"),
        (["benchmark", "nasbench-nlp", "--proxy", "params", "--data-dir", "/nonexistent"], "/nonexistent/nasbench_nlp/nasbench_nlp.jsonl.gz"),
        (["score", "--space", "rnn", "--proxy", "params", "--cells", "/nonexistent.jsonl", "--out", "X"], "--cells '/nonexistent.jsonl': no such file"),
    ],
)
def test_errors_are_actionable(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv + ["--no-progress"]) == 2
    assert message in capsys.readouterr().err


def test_list(capsys):
    assert main(["list", "proxies", "--space", "rnn"]) == 0
    out = capsys.readouterr().out
    assert "hidden_covariance [rnn] higher is better" in out and "option layer=1: one of 1, 2, 3" in out
    assert "Eigen-spectrum score of the correlation matrix" in out  # one-line description


def test_store_skips_torn_line_with_warning_and_keeps_the_rest(tmp_path):
    p = tmp_path / "store.jsonl"
    s = ResultStore(p)
    s.put("a", {"raw": 1.0})
    with open(p, "a") as f:
        f.write('{"key": "b", "raw": 2')  # killed mid-write
    with pytest.warns(RuntimeWarning, match="line 2: corrupt record skipped"):
        s2 = ResultStore(p)
    assert s2.get("a")["raw"] == 1.0 and "b" not in s2 and s2.skipped_lines == 1
    s2.put("c", {"raw": 3.0})  # appended on a fresh line, the torn one stays isolated
    with warnings.catch_warnings(record=True):
        s3 = ResultStore(p)
    assert s3.get("c")["raw"] == 3.0 and len(s3) == 2


def test_an_option_switched_off_does_not_change_the_store_key():
    """Adding an optional feature (default None) to a proxy keeps earlier results valid."""
    old = make_key("rnn", "h", "hidden_covariance", {"layer": 1}, "data", 0, {"init": "compat"})
    assert make_key("rnn", "h", "hidden_covariance", {"layer": 1, "max_degree": None}, "data", 0, {"init": "compat"}) == old
    assert make_key("rnn", "h", "hidden_covariance", {"layer": 1, "max_degree": 1}, "data", 0, {"init": "compat"}) != old
