"""Issue #11: one checked door.  Every bad input fails at once -- exit code 2, one line, no
traceback, nothing left behind -- before any model is built or NNI starts."""
import ast
import json
import re
import subprocess
import sys

import pytest

import nni_zerocost as nz
from nni_zerocost.cli import main

from conftest import LSTM, REPO, RNN

BAD_SCORE = [
    (["--proxy", "hidden_covariance:layer=9"], "--proxy 'hidden_covariance:layer=9': option 'layer' must be one of 1, 2, 3, got 9"),
    (["--proxy", "hidden_covariance:layer=abc"], "option 'layer' must be one of 1, 2, 3, got 'abc'"),
    (["--proxy", "hidden_covariance:foo=1"], "proxy 'hidden_covariance' has no option 'foo'"),
    (["--proxy", "nope"], "unknown proxy 'nope'; proxies for the 'rnn' space:"),
    (["--proxy", "head_confidence"], "'head_confidence' does not apply to the 'rnn' space"),
    (["--proxy", "params", "--corpus", "/no/such/corpus"], "--corpus: /no/such/corpus: no such corpus file or folder"),
    (["--proxy", "params", "--workers", "0"], "--workers: must be 'auto' or an integer >= 1, got 0"),
]


def _run_cli(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize("extra, message", BAD_SCORE)
def test_score_refuses_bad_input_before_any_work(extra, message, tmp_path, monkeypatch, capsys):
    from nni_zerocost.plan import ScoringPlan

    monkeypatch.setattr(ScoringPlan, "context", lambda *a, **k: pytest.fail("a model was built"))
    code, err = _run_cli(["score", "--space", "rnn", "--sample", "2", "--out", "out.jsonl", "--no-progress", *extra],
                         tmp_path, monkeypatch, capsys)
    assert code == 2
    assert err.strip().count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith("nni-zerocost: error: ") and message in err, err
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("argv, message", [
    (["list", "proxies", "--space", "cnn"], "--space 'cnn': unknown space (did you mean 'rnn'?); valid spaces: bert, gpt2, hf, model, rnn"),
    (["score", "--space", "rnn", "--proxy", "params", "--sample", "0", "--out", "o.jsonl"], "--sample: must be at least 1, got 0"),
    (["score", "--space", "rnn", "--proxy", "params", "--sample", "-3", "--out", "o.jsonl"], "--sample: must be at least 1, got -3"),
    (["score", "--space", "rnn", "--proxy", "params", "--sample", "3", "--limit", "2", "--out", "o.jsonl"],
     "--limit: does not apply to --sample"),
    (["score", "--space", "bert", "--proxy", "params", "--sample", "3", "--init", "compat", "--out", "o.jsonl"],
     "--init: the 'bert' space takes no such option (its options: as_trained, loss)"),
    (["score", "--space", "rnn", "--proxy", "params", "--sample", "3", "--as-trained", "--out", "o.jsonl"],
     "--as-trained: the 'rnn' space takes no such option"),
    (["benchmark", "nasbench-nlp", "--proxy", "hidden_covariance:layer=0"], "option 'layer' must be one of 1, 2, 3, got 0"),
])
def test_silently_accepted_inputs_are_now_errors(argv, message, tmp_path, monkeypatch, capsys):
    code, err = _run_cli(argv + ["--no-progress"] if argv[0] != "list" else argv, tmp_path, monkeypatch, capsys)
    assert code == 2 and err.strip().count("\n") == 0 and "Traceback" not in err, err
    assert message in err, err
    assert not (tmp_path / "o.jsonl").exists()


def _cells_file(tmp_path, lines):
    f = tmp_path / "cells.jsonl"
    f.write_text("".join((l if isinstance(l, str) else json.dumps(l)) + "\n" for l in lines))
    return f


def test_unreadable_cells_lines_become_invalid_records_and_the_rest_is_scored(tmp_path, monkeypatch, capsys):
    f = _cells_file(tmp_path, [{"id": "a", "recipe": RNN}, "{not json", ["a", "list"], {"id": "b", "recipe": LSTM}])
    code, err = _run_cli(["score", "--space", "rnn", "--proxy", "params", "--cells", str(f), "--out", "o.jsonl",
                          "--no-store", "--no-progress"], tmp_path, monkeypatch, capsys)
    assert code == 0, err
    recs = [json.loads(l) for l in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["id"] for r in recs] == ["a", "line 2", "line 3", "b"]
    assert [r["status"] for r in recs] == ["ok", "invalid", "invalid", "ok"]
    assert recs[1]["error"].startswith("line 2: not a JSON object")
    assert recs[2]["error"] == "line 3: expected an object with 'id' and 'arch' (or 'recipe', 'config')"
    assert recs[0]["params"] == 5_731_600 and recs[3]["params"] > 0
    assert "wrote 4 records" in err and "invalid: 2, ok: 2" in err


def test_score_exits_1_when_no_record_got_a_score(tmp_path, monkeypatch, capsys):
    f = _cells_file(tmp_path, ["oops", {"id": 1, "recipe": {"h_new_0": {"op": "conv", "input": ["x"]}}}])
    code, err = _run_cli(["score", "--space", "rnn", "--proxy", "params", "--cells", str(f), "--out", "o.jsonl",
                          "--no-store", "--no-progress"], tmp_path, monkeypatch, capsys)
    assert code == 1
    assert "wrote 2 records" in err and "no architecture got a score" in err


def test_one_record_is_singular(tmp_path, monkeypatch, capsys):
    f = _cells_file(tmp_path, [{"id": "a", "recipe": RNN}])
    code, err = _run_cli(["score", "--space", "rnn", "--proxy", "params", "--cells", str(f), "--out", "o.jsonl",
                          "--no-store", "--no-progress"], tmp_path, monkeypatch, capsys)
    assert code == 0 and "wrote 1 record to" in err


def _cpu_seconds(code: str, *argv: str, cwd=None):
    """CPU seconds of a fresh Python process running ``code`` (start-up included), its stderr lines."""
    probe = code + "; import time; print(round(time.process_time(), 2), file=sys.stderr)"
    p = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=120, cwd=cwd)
    lines = p.stderr.strip().splitlines()
    return p, float(lines[-1]), lines[:-1]


@pytest.mark.parametrize("extra, message", [
    (["--proxy", "nope"], "--proxy 'nope': unknown proxy 'nope'"),
    (["--proxy", "hidden_covariance:foo=1"], "has no option 'foo'"),
    (["--proxy", "hidden_covariance:layer=9"], "option 'layer' must be one of 1, 2, 3, got 9"),
    (["--proxy", "params", "--corpus", "/no/such/corpus"], "no such corpus file or folder"),
    (["--proxy", "params", "--budget", "0"], "--budget: must be at least 1, got 0"),
])
def test_search_with_bad_input_fails_fast_and_leaves_nothing(extra, message, tmp_path):
    """In a fresh process, as a user runs it: before NNI is imported, at the cost of importing
    torch (which checking the proxies needs) plus at most 1.5 CPU seconds.  Measured in CPU
    seconds against torch's own import in the same conditions, so that a busy shared machine,
    which inflates both, does not make the check flaky."""
    _, torch_cpu, _ = _cpu_seconds("import sys, torch")
    code = ("import sys; from nni_zerocost.cli import main; code = main(sys.argv[1:]); "
            "print(code, 'nni' in sys.modules, file=sys.stderr)")
    argv = ["search", "--space", "rnn", "--out", str(tmp_path / "run"), "--no-progress", *extra]
    p, cpu, lines = _cpu_seconds(code, *argv, cwd=tmp_path)
    err_line, (code, nni_loaded) = lines[-2], lines[-1].split()
    assert code == "2" and message in err_line and "Traceback" not in p.stderr, p.stderr
    assert nni_loaded == "False"  # NNI never started
    assert cpu < torch_cpu + 1.5, f"took {cpu} CPU seconds, importing torch {torch_cpu}"
    assert not (tmp_path / "run").exists()


def test_readme_proxy_example_registers_its_option(tmp_path):
    """The guide's 'Writing a proxy' block (docs/extending.md), run as written: its signature makes the option."""
    text = (REPO / "docs" / "extending.md").read_text()
    block = re.search(r"Writing a proxy is one decorated function:\s*```python\n(.*?)```", text, re.S).group(1)
    namespace = {}
    exec(compile(block, "README.md", "exec"), namespace)
    try:
        opt = nz.get_proxy("my_proxy").impl("rnn").options["layer"]
        assert (opt.type, opt.default) == (int, 1)
        res = nz.score("rnn", RNN, ["my_proxy", "my_proxy:layer=2"], emsize=8, nhid=8, batch_size=4, seq_len=6)
        assert res["my_proxy"].ok and res["my_proxy:layer=2"].ok
        assert res["my_proxy"].raw != res["my_proxy:layer=2"].raw
        with pytest.raises(nz.BadInputError, match="option 'layer' must be one of 1, 2, 3, got 4"):
            nz.make_plan("rnn", "my_proxy:layer=4")
    finally:
        from nni_zerocost.proxies.base import PROXIES

        PROXIES._items.pop("my_proxy", None)


def test_options_come_from_the_signature_only():
    from nni_zerocost.proxies.base import register_proxy

    with pytest.raises(TypeError, match="annotate option 'k'"):
        register_proxy("t_bad", needs=("parameters",), higher_is_better=True, cost="weights", mode="-", nan_policy="-")(
            lambda ctx, k=1.5j: 0.0)
    with pytest.raises(TypeError, match="unknown option"):
        @register_proxy("t_bad2", needs=("parameters",), higher_is_better=True, cost="weights", mode="-", nan_policy="-",
                        choices={"nope": (1,)})
        def f(ctx, k: int = 1) -> float:
            return 0.0


def test_no_module_under_spaces_imports_proxies():
    """Spaces sit below proxies: space -> model -> batch -> proxy -> score."""
    offenders = []
    for path in (REPO / "nni_zerocost" / "spaces").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")] + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if any("proxies" in n for n in names):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []


def test_plan_checks_context_options_and_batch():
    with pytest.raises(nz.BadInputError, match="init: must be one of 'official', 'compat', got 'x'"):
        nz.make_plan("rnn", "params", init="x")
    with pytest.raises(nz.BadInputError, match="seed: must be an integer >= 0"):
        nz.make_plan("rnn", "params", seed=-1)
    with pytest.raises(nz.BadInputError, match="corpus is supported for the 'rnn' space only"):
        nz.make_plan("bert", "params", corpus="x")
    plan = nz.make_plan("rnn", ["params", "params", "hidden_covariance:layer=2"], init="official")
    assert plan.specs == ("params", "hidden_covariance:layer=2") and plan.context_options == {}
    assert plan.request("hidden_covariance:layer=2").options == {"layer": 2, "max_degree": None, "normalize": None}


# -- item 5: a score is a function of the architecture ------------------------------------------
SMALL = dict(batch_size=6, seq_len=10, emsize=8, nhid=8)
SPECS = ["hidden_covariance", "hidden_covariance:layer=3", "activation_distance", "params"]


def _classes(entries):
    from collections import defaultdict

    out = defaultdict(list)
    for e in entries:
        out[e.arch.canonical_hash()].append(e)
    return [v for v in out.values() if len(v) > 1]


def _same(a, b):
    return all((x is None and y is None) or x == y for x, y in zip(a, b))


def test_every_isomorphic_benchmark_pair_scores_bit_identically(nlp_entries):
    """Default (official) init builds the canonical cell: every member of each of the table's
    isomorphism classes gets the same model, hence the same value, bit for bit."""
    multi = _classes(nlp_entries)
    assert len(multi) == 184 and sum(map(len, multi)) == 730
    plan = nz.make_plan("rnn", SPECS, seed=3, **SMALL)
    for members in multi:
        assert len({json.dumps(e.arch.canonical(rename=True).to_recipe()) for e in members}) == 1
        values = [[r.raw if r.ok else None for r in plan.score(e.arch).values()] for e in members]
        assert all(_same(v, values[0]) for v in values), [e.arch_id for e in members]


def test_compat_init_is_keyed_by_the_exact_recipe(nlp_entries):
    members = _classes(nlp_entries)[0]
    official = nz.make_plan("rnn", "params", **SMALL)
    compat = nz.make_plan("rnn", "params", init="compat", **SMALL)
    assert len({official.arch_key(e.arch) for e in members}) == 1
    assert len({compat.arch_key(e.arch) for e in members}) == len(members)


def test_store_interrupted_and_resumed_equals_no_store_bit_for_bit(nlp_entries, tmp_path):
    pairs = [e for members in _classes(nlp_entries)[:8] for e in members[:2]]
    items = [(e.arch_id, e.arch) for e in pairs + list(nlp_entries[:8])]

    def job(store):
        return nz.check_job(nz.ScoringJob.of(SPECS, "rnn", seed=3, **SMALL, workers=1, store=store,
                                             architectures=items))

    fresh = [r.values for r in nz.run(job(None))]
    path = tmp_path / "store.jsonl"
    run = nz.run(job(str(path)))
    for _ in range(7):  # interrupted after 7 architectures
        next(run)
    run.close()
    resumed = list(nz.run(job(str(path))))
    assert sum(r.computed > 0 for r in resumed) < len(items)  # the store answered some
    assert [r.values for r in resumed] == fresh


def test_space_free_adapters_name_every_proxy_for_an_unknown_name():
    from nni_zerocost.plan import plans_for_any_space

    with pytest.raises(nz.BadInputError, match="unknown proxy 'nope'; valid proxies: activation_distance, .*hidden_covariance"):
        plans_for_any_space(nz.ScoringRequest(["nope"]))
    assert set(plans_for_any_space(nz.ScoringRequest(["params"]))) >= {"bert", "rnn"}
    assert set(plans_for_any_space(nz.ScoringRequest(["hidden_covariance"]))) == {"rnn"}
