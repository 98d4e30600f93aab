"""The CLI as a new user meets it: a resume that matches what was asked, every flag checked at
the door (exit 2, one line, before any work), and tables and figures that say what they show."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nni_zerocost.cli import build_parser, main

from conftest import GRU, LSTM, REPO, RNN


def _run(argv, capsys, cwd=None, monkeypatch=None):
    if cwd is not None:
        monkeypatch.chdir(cwd)
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _refused(code, err, message):
    assert code == 2, err
    assert err.strip().count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith("nni-zerocost: error: ") and message in err, err


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if any model is built: checks at the door come before any work."""
    from nni_zerocost.plan import ScoringPlan

    monkeypatch.setattr(ScoringPlan, "context", lambda *a, **k: pytest.fail("a model was built"))


# -- resume by what was asked -------------------------------------------------------------------
SCORE = ["score", "--space", "rnn", "--sample", "2", "--out", "f.jsonl", "--no-store", "--no-progress"]


def _corpus(tmp_path):
    """A small text file the corpus reader batches (50 columns x 70 rows, as the paper)."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in rng.integers(0, 300, size=4000)]
    f = tmp_path / "c.txt"
    f.write_text("\n".join(" ".join(words[i:i + 20]) for i in range(0, len(words), 20)) + "\n")
    return f


@pytest.mark.parametrize("change, message", [
    (["--proxy", "hidden_covariance"], "(proxy: params in the file, hidden_covariance asked)"),
    (["--proxy", "params", "--proxy", "hidden_covariance:layer=2"],
     "(proxy: params in the file, params, hidden_covariance:layer=2 asked)"),
    (["--proxy", "params", "--seed", "1"], "(seed: 0 in the file, 1 asked)"),
    (["--proxy", "params", "--corpus", "CORPUS"], "(data: zipf:1.0:0 in the file, corpus:c.txt:test asked)"),
    (["--proxy", "params", "--init", "compat"], "(init: official (the default) in the file, compat asked)"),
])
def test_resume_refuses_a_file_of_another_request(change, message, tmp_path, monkeypatch, capsys):
    """The bug: the second run printed 'resuming f.jsonl: 2 of 2 architectures already there',
    wrote nothing and exited 0, so the file never got the proxy asked for."""
    from nni_zerocost.plan import ScoringPlan

    monkeypatch.chdir(tmp_path)
    assert main(SCORE + ["--proxy", "params"]) == 0
    capsys.readouterr()
    before = (tmp_path / "f.jsonl").read_bytes()
    monkeypatch.setattr(ScoringPlan, "context", lambda *a, **k: pytest.fail("a model was built"))
    change = [str(_corpus(tmp_path)) if a == "CORPUS" else a for a in change]
    code, _, err = _run(SCORE + change, capsys)
    _refused(code, err, "--out 'f.jsonl': holds results of another request " + message
             + "; start over with --no-resume, or write to another --out")
    assert (tmp_path / "f.jsonl").read_bytes() == before  # nothing lost, nothing mixed in


def test_resume_refuses_an_edited_architecture_under_the_same_id(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cells = tmp_path / "cells.jsonl"
    argv = ["score", "--space", "rnn", "--proxy", "params", "--cells", "cells.jsonl", "--out", "f.jsonl",
            "--no-store", "--no-progress"]
    cells.write_text(json.dumps({"id": "a", "recipe": RNN}) + "\n" + json.dumps({"id": "b", "recipe": GRU}) + "\n")
    assert main(argv) == 0
    cells.write_text(json.dumps({"id": "a", "recipe": RNN}) + "\n" + json.dumps({"id": "b", "recipe": LSTM}) + "\n")
    capsys.readouterr()
    code, _, err = _run(argv, capsys)
    _refused(code, err, "--out 'f.jsonl': line 2 holds another architecture under id 'b' than the input now gives")
    # the way out the message names: --no-resume scores the new recipe
    assert main(argv + ["--no-resume"]) == 0
    recs = [json.loads(l) for l in (tmp_path / "f.jsonl").read_text().splitlines()]
    assert [r["id"] for r in recs] == ["a", "b"] and recs[1]["arch_hash"] != recs[0]["arch_hash"]
    import nni_zerocost as nz

    assert recs[1]["arch_hash"] == nz.get_space("rnn").arch_hash(nz.get_space("rnn").parse(LSTM))


def test_resume_extends_a_file_of_the_same_request_and_cuts_a_torn_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["score", "--space", "rnn", "--proxy", "params", "--out", "f.jsonl", "--no-store", "--no-progress"]
    assert main(argv + ["--sample", "2"]) == 0
    out = tmp_path / "f.jsonl"
    kept = out.read_text()
    rec = json.loads(kept.splitlines()[0])
    assert rec["request"]["proxies"] == {"params": {"name": "params", "options": {}}} and rec["request"]["seed"] == 0
    assert rec["arch_key"] == rec["arch_hash"]
    with open(out, "a") as f:
        f.write('{"id": 2, "arch_ha')  # a run killed mid-write
    capsys.readouterr()
    code, _, err = _run(argv + ["--sample", "4"], capsys)
    assert code == 0, err
    assert "cut a torn last line (line 3" in err and "resuming f.jsonl: 2 of 4 architectures already there" in err
    text = out.read_text()
    assert text.startswith(kept) and [json.loads(l)["id"] for l in text.splitlines()] == [0, 1, 2, 3]


def test_resume_refuses_records_that_do_not_say_their_request(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.jsonl").write_text(json.dumps({"id": 0, "params": 1.0, "status": "ok"}) + "\n")
    code, _, err = _run(SCORE + ["--proxy", "params"], capsys)
    _refused(code, err, "--out 'f.jsonl': line 1 does not say which request wrote it")


def test_resume_rule_is_documented_in_help_and_readme():
    sc = build_parser()._subparsers._group_actions[0].choices["score"]
    text = " ".join(sc.format_help().split())
    assert "a file of another request is refused (exit 2, saying what differs)" in text
    readme = " ".join((REPO / "README.md").read_text().split())
    assert "a file holding results of another request is refused" in readme


# -- checked at the door ------------------------------------------------------------------------
def test_rank_average_is_checked_before_scoring(tmp_path, monkeypatch, capsys, no_model):
    base = ["benchmark", "nasbench-nlp", "--proxy", "params", "--proxy", "hidden_covariance", "--limit", "5",
            "--no-store", "--no-progress"]
    code, _, err = _run(base + ["--rank-average", "params+nope"], capsys, tmp_path, monkeypatch)
    _refused(code, err, "--rank-average 'params+nope': 'nope' is not one of the --proxy specs "
                        "(params, hidden_covariance); give each part with --proxy too")
    code, _, err = _run(base + ["--rank-average", "params+hiden_covariance"], capsys)
    _refused(code, err, "--rank-average 'params+hiden_covariance': 'hiden_covariance' (did you mean "
                        "'hidden_covariance'?) is not one of the --proxy specs")
    code, _, err = _run(base + ["--rank-average", "params"], capsys)
    _refused(code, err, "--rank-average 'params': give 2 or more --proxy specs joined by '+', e.g. params+hidden_covariance")


@pytest.mark.parametrize("name", ["table.pdf", "table.txt", "table"])
def test_report_suffix_is_checked(name, tmp_path, monkeypatch, capsys, no_model):
    code, _, err = _run(["benchmark", "nasbench-nlp", "--proxy", "params", "--report", name, "--no-store",
                         "--no-progress"], capsys, tmp_path, monkeypatch)
    _refused(code, err, f"--report '{name}': writes Markdown (.md) or CSV (.csv), not ")
    assert not (tmp_path / name).exists()


def test_report_csv_says_what_the_correlations_are_over(tmp_path, monkeypatch, capsys):
    code, _, err = _run(["benchmark", "nasbench-nlp", "--proxy", "params", "--limit", "4", "--report", "t.csv",
                         "--json", "--no-store", "--no-progress"], capsys, tmp_path, monkeypatch)
    assert code == 0, err
    import csv

    rows = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert rows[0]["proxy"] == "params" and rows[0]["over"] == "runs"
    assert set(rows[0]) >= {"kendall_tau", "kendall_tau_per_arch", "n_flagged", "n_no_score"}


def test_out_and_store_paths_are_checked(tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    elsewhere = tmp_path / "elsewhere"  # outside the current folder, missing
    cases = [
        (["--out", "."], "--out '.': is a folder; give a file name in it"),
        (["--out", f"{elsewhere}/o.jsonl"],
         f"--out '{elsewhere}/o.jsonl': folder {elsewhere} does not exist (nni-zerocost creates missing folders "
         "only inside the current folder)"),
        (["--out", "o.jsonl", "--store", f"{elsewhere}/x/s.jsonl"],
         f"--store '{elsewhere}/x/s.jsonl': folder {elsewhere} does not exist"),
    ]
    for extra, message in cases:
        code, _, err = _run(["score", "--space", "rnn", "--proxy", "params", "--sample", "1", "--no-progress", *extra],
                            capsys, work, monkeypatch)
        _refused(code, err, message)
    assert not elsewhere.exists() and list(work.iterdir()) == []  # refused before anything was written
    # a missing folder inside the current folder is made (README: --out results/search in a fresh clone)
    assert main(["score", "--space", "rnn", "--proxy", "params", "--sample", "1", "--out", "results/o.jsonl",
                 "--store", "cache/s.jsonl", "--no-progress"]) == 0
    assert (work / "results" / "o.jsonl").is_file() and (work / "cache" / "s.jsonl").is_file()


def test_search_and_plot_folders_are_checked(tmp_path, monkeypatch, capsys):
    elsewhere = tmp_path / "elsewhere"
    work = tmp_path / "work"
    work.mkdir()
    (work / "afile").write_text("x")
    for argv, message in [
        (["search", "--space", "rnn", "--proxy", "params", "--out", f"{elsewhere}/run"],
         f"--out '{elsewhere}/run': folder {elsewhere} does not exist"),
        (["search", "--space", "rnn", "--proxy", "params", "--out", "afile"], "--out 'afile': is a file; give a folder"),
        (["plot", "r.jsonl", "--benchmark", "nasbench-nlp", "--out", f"{elsewhere}/figs"],
         f"--out '{elsewhere}/figs': folder {elsewhere} does not exist"),
        (["benchmark", "nasbench-nlp", "--proxy", "params", "--plot", f"{elsewhere}/figs"],
         f"--plot '{elsewhere}/figs': folder {elsewhere} does not exist"),
    ]:
        code, _, err = _run(argv, capsys, work, monkeypatch)
        _refused(code, err, message)
    assert not elsewhere.exists()


def test_empty_proxy_options_are_refused(tmp_path, monkeypatch, capsys, no_model):
    code, _, err = _run(SCORE + ["--proxy", "hidden_covariance:"], capsys, tmp_path, monkeypatch)
    _refused(code, err, "--proxy 'hidden_covariance:': nothing after ':'; write 'hidden_covariance' alone or "
                        "'hidden_covariance:key=value'")
    assert not (tmp_path / "f.jsonl").exists()


def test_empty_cells_file_and_limits_beyond_what_exists_are_refused(tmp_path, monkeypatch, capsys, no_model):
    (tmp_path / "empty.jsonl").write_text("\n")
    (tmp_path / "three.jsonl").write_text("".join(json.dumps({"id": i, "recipe": r}) + "\n"
                                                  for i, r in enumerate((RNN, LSTM, GRU))))
    score = ["score", "--space", "rnn", "--proxy", "params", "--out", "o.jsonl", "--no-store", "--no-progress"]
    code, _, err = _run(score + ["--cells", "empty.jsonl"], capsys, tmp_path, monkeypatch)
    _refused(code, err, "--cells 'empty.jsonl': holds no architectures (expected one JSON object per line")
    code, _, err = _run(score + ["--cells", "three.jsonl", "--limit", "5"], capsys)
    _refused(code, err, "--limit: the file has 3 architectures; got 5 (leave --limit out to use all of them)")
    assert not (tmp_path / "o.jsonl").exists()


def test_limit_beyond_the_benchmark_says_how_many_exist(data_dir, tmp_path, monkeypatch, capsys, no_model):
    from nni_zerocost.benchmarks.base import get_benchmark
    from nni_zerocost.benchmarks.study import select_entries

    bench = get_benchmark("nasbench-nlp")
    n = len(select_entries(bench.load(data_dir), bench, None, 0))
    assert n == 3371  # the data README
    argv = ["--proxy", "params", "--limit", "100000", "--data-dir", str(data_dir), "--no-store", "--no-progress"]
    code, _, err = _run(["benchmark", "nasbench-nlp", *argv], capsys, tmp_path, monkeypatch)
    _refused(code, err, "--limit: nasbench-nlp has 3,371 architectures with a known test_loss; got 100,000")
    code, _, err = _run(["score", "--space", "rnn", "--benchmark", "nasbench-nlp", "--out", "o.jsonl", *argv], capsys)
    _refused(code, err, "--limit: nasbench-nlp has 3,371 architectures with a known test_loss; got 100,000")
    code, _, err = _run(["benchmark", "nasbench-nlp", "--all-cells", *argv], capsys)
    _refused(code, err, "--limit: nasbench-nlp has 4,114 architectures with 3 training runs; got 100,000")


@pytest.mark.parametrize("argv, message", [
    (["score", "--space", "rnn", "--proxy", "hiden_covariance", "--sample", "1", "--out", "o.jsonl"],
     "--proxy 'hiden_covariance': unknown proxy 'hiden_covariance' (did you mean 'hidden_covariance' or "),
    (["score", "--space", "rn", "--proxy", "params", "--sample", "1", "--out", "o.jsonl"],
     "--space 'rn': unknown space (did you mean 'rnn'?); valid spaces: bert, "),
    (["list", "proxies", "--space", "bret"], "--space 'bret': unknown space (did you mean 'bert'?); valid spaces: "),
    (["benchmark", "nasbench-npl", "--proxy", "params"],
     "--benchmark 'nasbench-npl': unknown benchmark (did you mean 'nasbench-nlp' or 'nasbench-bert'?); valid: "),
    (["search", "--space", "rnn", "--proxy", "params", "--strategy", "evolutin", "--out", "run"],
     "--strategy 'evolutin': unknown strategy (did you mean 'evolution'?); valid: random, evolution, tpe, ranking"),
])
def test_typos_get_did_you_mean(argv, message, tmp_path, monkeypatch, capsys, no_model):
    code, _, err = _run(argv, capsys, tmp_path, monkeypatch)
    _refused(code, err, message)
    assert not (tmp_path / "run").exists()


def _subprocess(args, **kw):
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, *args], env={**env, **kw.pop("env", {})}, **kw)


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`nni-zerocost list proxies | head`: the reader closes the pipe; no BrokenPipeError traceback."""
    proc = _subprocess(["-m", "nni_zerocost.cli", "list", "proxies"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, cwd=tmp_path)
    proc.stdout.close()  # the reader is gone before anything is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1
    assert err == ""


def test_reproduce_paper_example_without_ptb_says_what_to_pass(tmp_path):
    empty = tmp_path / "data"
    empty.mkdir()
    proc = _subprocess([str(REPO / "examples" / "reproduce_paper_rnn.py"), "--n", "2"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, cwd=tmp_path, env={"NNI_ZEROCOST_DATA": str(empty)})
    out, err = proc.communicate(timeout=120)
    err = err.decode()
    assert proc.returncode == 2 and "Traceback" not in err and err.strip().count("\n") == 0, err
    assert err.startswith(f"reproduce_paper_rnn.py: error: --corpus: no PTB corpus at {empty / 'ptb'}; "
                          "pass --corpus PATH (a PTB folder or ptb.test.txt)"), err
    proc = _subprocess([str(REPO / "examples" / "reproduce_paper_rnn.py"), "--corpus", str(tmp_path / "nope")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, env={"NNI_ZEROCOST_DATA": str(empty)})
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and f"--corpus: {tmp_path / 'nope'}: no such corpus file or folder" in err.decode()


# -- tables and figures that say what they show -------------------------------------------------
@pytest.fixture
def figure_texts(monkeypatch):
    """Every saved figure's words by file stem: titles, axis labels, legend entries, and where
    each legend sits relative to its axes."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    texts = {}
    real = Figure.savefig

    def savefig(self, path, *a, **k):
        words = [self._suptitle.get_text()] if self._suptitle is not None else []
        legends = []
        for ax in self.axes:
            words += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
            leg = ax.get_legend()
            if leg is not None:
                words += [t.get_text() for t in leg.get_texts()]
                legends.append((ax, leg))
        texts[Path(str(path)).stem] = {"words": words, "axes": list(self.axes), "legends": legends,
                                       "renderer": self.canvas.get_renderer()}
        return real(self, path, *a, **k)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return texts


def test_table_and_scatter_say_what_tau_is_over(tmp_path, monkeypatch, capsys, figure_texts):
    code, out, err = _run(["benchmark", "nasbench-nlp", "--proxy", "params", "--limit", "6", "--plot", "figs",
                           "--no-store", "--no-progress"], capsys, tmp_path, monkeypatch)
    assert code == 0, err
    assert "kendall, spearman, pearson: over the 18 finite training runs (each run paired with its architecture's " \
           "score)" in out
    assert "tau/arch: Kendall tau over the 6 architectures (their mean test_loss), as the scatter figure shows" in out
    row = next(l for l in out.splitlines() if l.startswith("params "))
    tau_arch = float(row.split()[4])
    words = figure_texts["nasbench-nlp_scatter"]["words"]
    assert any("one point per architecture (τ, ρ over architectures)" in w for w in words)
    assert any(f"over 6 architectures: τ={tau_arch:.3f}" in w for w in words), words


def test_flagged_counts_the_same_things_in_table_and_figure(tmp_path, figure_texts):
    from nni_zerocost.benchmarks.base import Entry, get_benchmark
    from nni_zerocost.benchmarks.study import format_table, study
    from nni_zerocost.plots import plot_study

    bench = get_benchmark("nasbench-nlp")
    entries = [Entry(i, None, {"test_loss": 5.0 + 0.1 * i}, [5.0 + 0.1 * i]) for i in range(8)]
    scores = {"p": [None, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]}
    flags = {"p": [True, True, False, False, False, False, False, False]}  # no score (with its why); a fallback
    res = study(bench, entries, scores, {"p": [0.1] * 8}, flags)
    assert (res["proxies"]["p"]["n_flagged"], res["proxies"]["p"]["n_excluded"]) == (1, 1)
    table = format_table(res)
    header = next(l for l in table.splitlines() if l.startswith("proxy "))
    assert header.split()[-3:] == ["flagged", "no", "score"]
    assert next(l for l in table.splitlines() if l.startswith("p ")).split()[-2:] == ["1", "1"]
    plot_study("b", "test_loss", [e.truth["test_loss"] for e in entries], scores, flags, tmp_path)
    words = figure_texts["b_flagged"]["words"]
    assert "p\nflagged: 1, no score (not drawn): 1" in words
    assert "flagged (1)" in words and "not flagged (6)" in words


def test_bert_groups_have_labels_and_say_why_a_group_has_no_tau(tmp_path, monkeypatch, capsys, figure_texts):
    code, out, err = _run(["benchmark", "nasbench-bert", "--proxy", "params", "--limit", "10", "--plot", "figs",
                           "--json", "--no-store", "--no-progress"], capsys, tmp_path, monkeypatch)
    assert code == 0, err
    res = json.loads(out)
    groups = res["proxies"]["params"]["within_groups"]
    small = {k: g for k, g in groups.items() if g["n"] < 3}
    assert small, "the subset should have a group of fewer than 3 architectures"
    taus = [g["kendall_tau"] for g in groups.values() if g["kendall_tau"] is not None]
    assert res["proxies"]["params"]["within_groups_with_tau"] == len(taus) == len(groups) - len(small)
    assert res["proxies"]["params"]["within_groups_mean_tau"] == pytest.approx(np.mean(taus))
    fig = figure_texts["nasbench-bert_groups"]
    for k, g in small.items():
        assert f"params | {k}\nτ n/a: {g['n']} with a score, needs 3" in fig["words"]
        assert g["no_tau"] == f"{g['n']} with a score, needs 3"
    assert all(ax.get_xlabel().startswith("score (higher = better)") for ax in fig["axes"])
    assert any("within groups (hidden size/layers), one point per architecture" in w for w in fig["words"])
    assert fig["axes"][0].get_ylabel() == "glue"
    # the printed table: the within-group block once, its mean over the groups that have a tau
    assert main(["benchmark", "nasbench-bert", "--proxy", "params", "--limit", "10", "--no-store", "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert table.count("within-group Kendall tau over architectures (groups: hidden size/layers)") == 1
    assert "within (group)" not in table
    line = next(l for l in table.splitlines() if l.startswith("params ") and "mean" in l)
    assert f"mean {np.mean(taus):.3f} ({len(taus)} of {len(groups)} groups)" in line and "nan" not in line
    for k, g in small.items():
        assert f"{k}:n/a ({g['n']} with a score, needs 3)" in line


def test_search_figure_by_rank_for_ranking_with_legend_outside_and_whole_counts(tmp_path, figure_texts):
    import nni_zerocost as nz
    from nni_zerocost.search_report import SearchResult
    from nni_zerocost.plots import plot_search

    scores = [9.0, 7.0, 5.0, None]  # ranking reports its candidates best first
    plot_search(scores, [0, 1], "params", tmp_path / "search.png", ranked=True)
    fig = figure_texts["search"]
    left, right = fig["axes"]
    assert left.get_xlabel() == "rank by score (1 = best)" and "best so far" not in fig["words"]
    assert all(float(t).is_integer() for t in right.get_yticks())  # 1 candidate per bin: no 0.5 ticks
    for ax, leg in fig["legends"]:  # every legend below its axes, hiding no point
        assert leg.get_window_extent(fig["renderer"]).y1 <= ax.get_window_extent(fig["renderer"]).y0
    plot_search(scores, [0], "params", tmp_path / "search.png", ranked=False)
    assert "best so far" in figure_texts["search"]["words"]
    assert figure_texts["search"]["axes"][0].get_xlabel() == "candidates evaluated"
    checked = nz.check_job(nz.ScoringJob.of("params", "rnn"), need_architectures=False)
    report = SearchResult(checked, "ranking", 4, 5, False, [], 1.0).report(tmp_path / "search.png", tmp_path / "nni")
    assert "![scores by rank and score distribution](search.png)" in report
    assert "every candidate's score against its rank" in report


def test_a_warm_benchmark_says_s_per_arch_comes_from_the_store(tmp_path, monkeypatch, capsys):
    argv = ["benchmark", "nasbench-nlp", "--proxy", "params", "--limit", "3", "--store", "s.jsonl", "--no-progress"]
    code, cold, err = _run(argv, capsys, tmp_path, monkeypatch)
    assert code == 0, err
    assert "came from the store" not in cold
    code, warm, err = _run(argv, capsys)
    assert code == 0, err
    assert "; 3 of 3 results came from the store:\n  s/arch is the model work recorded when each result was " \
           "computed, not this run's" in warm
