"""`nni-zerocost data prepare`: tables built from the public releases, where data is read from.

Data-dependent tests (the official-format samples, the round trip on the full table, the BERT
files, the end-to-end run) skip without the reference data; the resolution order, the shipped
tables and the error paths need none.
"""
import csv
import gzip
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from nni_zerocost import cli
from nni_zerocost.benchmarks.base import get_benchmark
from nni_zerocost.benchmarks.prepare import prepare
from nni_zerocost.spaces.rnn.prepare import HANDCRAFTED, RECIPE_IDS, RUNS, TABLE, param_count, read_recipe_map
from nni_zerocost.data import PACKAGE_DATA, data_dir, prepare_dir, user_data_dir
from nni_zerocost.errors import DataError
from nni_zerocost.spaces.rnn.cell import Cell

REPO = Path(__file__).resolve().parents[1]


def _entry_tuple(e):
    return (e.arch_id, e.arch, e.truth, e.runs, e.group, e.extra)


def _table(folder: Path):
    with gzip.open(folder / "nasbench_nlp" / TABLE, "rt") as f:
        return [json.loads(line) for line in f]


def _ptb_log(recipe_id: int, recipe: dict, losses, status="OK", **extra) -> str:
    cell = Cell.parse(recipe)
    log = {"data": "data/ptb", "recepie_id": recipe_id, "recepie": json.dumps(recipe),
           "experiment_id": 999900000 + recipe_id % 1000, "init_time": "2020-04-01_00-00-00",
           "num_params": param_count(cell), "test_losses": losses, "status": status}
    log.update(extra)
    return json.dumps(log)


def _log_name(recipe_id: int) -> str:
    return f"log_stats_model_{recipe_id}_2020-04-01_00-00-00_{999900000 + recipe_id % 1000}.json"


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No $NNI_ZEROCOST_DATA, a private user data folder."""
    monkeypatch.delenv("NNI_ZEROCOST_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "nni-zerocost"


# -- resolution order ---------------------------------------------------------------------------
def test_data_folder_resolution_order(clean_env, monkeypatch, tmp_path):
    user = clean_env
    assert user_data_dir() == user
    assert prepare_dir() == user and prepare_dir("x") == Path("x")
    # nothing prepared: the shipped tables
    assert data_dir(None, "nasbench-nlp") == PACKAGE_DATA == data_dir(None, "nasbench-bert")
    assert data_dir() == PACKAGE_DATA
    # the user folder wins for the benchmark it holds, and only for that one
    (user / "nasbench_nlp").mkdir(parents=True)
    (user / "nasbench_nlp" / TABLE).write_bytes(b"")
    assert data_dir(None, "nasbench-nlp") == user
    assert data_dir(None, get_benchmark("nasbench-bert")) == PACKAGE_DATA
    assert data_dir() == user
    # the environment variable and --data-dir are used as given
    monkeypatch.setenv("NNI_ZEROCOST_DATA", str(tmp_path / "env"))
    assert data_dir(None, "nasbench-bert") == tmp_path / "env" == prepare_dir()
    assert data_dir(str(tmp_path / "flag"), "nasbench-nlp") == tmp_path / "flag"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_data_dir() == tmp_path / "home" / ".local" / "share" / "nni-zerocost"


def test_missing_table_error_says_how_to_prepare(tmp_path):
    with pytest.raises(DataError, match="data prepare nasbench-nlp --from logs.zip"):
        get_benchmark("nasbench-nlp").load(tmp_path)
    with pytest.raises(DataError, match="data prepare nasbench-bert --from DIR"):
        get_benchmark("nasbench-bert").load(tmp_path)


def test_shipped_tables_load_and_never_hold_a_corpus():
    nlp = get_benchmark("nasbench-nlp").load(PACKAGE_DATA)
    assert len(nlp) == 4322 and sum(e.truth["test_loss"] is not None for e in nlp) == 3371
    assert sum(1 for e in nlp if e.extra["published"]) == 2956
    bert = get_benchmark("nasbench-bert").load(PACKAGE_DATA)
    assert len(bert) == 500 and sum(1 for e in bert if e.extra["published"]) == 500
    every = sorted(str(p.relative_to(PACKAGE_DATA)) for p in PACKAGE_DATA.rglob("*") if p.is_file())
    # precomputed proxy tables (benchmarks/tables.py): CSV + provenance only
    tables = [f for f in every if f.startswith("precomputed/")]
    assert all(f.endswith((".csv.gz", ".json")) for f in tables), tables
    files = [f for f in every if f not in tables]
    assert files == ["NOTICE.md", "lts/LICENSE", "lts/lts_gpt2_wt103.jsonl.gz", "nasbench_nlp/LICENSE", "nasbench_nlp/nasbench_nlp.jsonl.gz",
                     "nasbench_nlp/nasbench_nlp_ptb_runs.csv.gz", "nasbench_nlp/nasbench_nlp_recipe_ids.csv.gz",
                     "training_free_nas/BERT_benchmark.json", "training_free_nas/BERT_results_activation.csv",
                     "training_free_nas/LICENSE", "training_free_nas/search_space.json"]
    assert sum((PACKAGE_DATA / f).stat().st_size for f in every) < 5_000_000
    assert "Apache License" in (PACKAGE_DATA / "nasbench_nlp" / "LICENSE").read_text()
    assert "Attribution 4.0 International" in (PACKAGE_DATA / "training_free_nas" / "LICENSE").read_text()
    assert "MIT License" in (PACKAGE_DATA / "lts" / "LICENSE").read_text()


def test_shipped_tables_are_the_reference_tables(data_dir):
    for sub, name in [("nasbench_nlp", TABLE), ("nasbench_nlp", RUNS), ("nasbench_nlp", RECIPE_IDS),
                      ("training_free_nas", "BERT_benchmark.json"), ("training_free_nas", "search_space.json"),
                      ("training_free_nas", "BERT_results_activation.csv"), ("training_free_nas", "LICENSE"),
                      ("lts", "lts_gpt2_wt103.jsonl.gz"), ("lts", "LICENSE")]:
        assert (PACKAGE_DATA / sub / name).read_bytes() == (data_dir / sub / name).read_bytes(), name


# -- the recipe list ----------------------------------------------------------------------------
def test_recipe_map_regenerates_every_cell_with_its_numbers(data_dir):
    by_recipe, archs = read_recipe_map()
    assert len(by_recipe) == 14003 and (min(by_recipe), max(by_recipe)) == (1000000, 1014002)
    assert len(archs) == 4322
    recs = _table(data_dir)
    for a, r in zip(archs, recs):
        cell = Cell.parse(a.recipe)
        assert (a.arch_id, a.recipe, list(a.recipe), a.recipe_ids, a.source, a.generator_seeds,
                a.single_run_recipe_id) == (r["arch_id"], r["recipe"], list(r["recipe"]), r["recipe_ids"],
                                            r["recipe_source"], r["generator_seeds"], r["single_run_recipe_id"])
        assert (param_count(cell), param_count(cell, 33_278), cell.n_linear) == \
               (r["n_params_ptb"], r["n_params_wt2"], r["n_linear"])
    # numbering: by smallest official recipe id
    assert [min(a.recipe_ids) for a in archs] == sorted(min(a.recipe_ids) for a in archs)
    assert archs[1].recipe == HANDCRAFTED["lstm"] and archs[1].hidden_tuple_size == 2


# -- NAS-Bench-NLP from official logs ---------------------------------------------------------
def test_prepare_from_the_official_log_samples_folder_and_zip(data_dir, tmp_path):
    src = tmp_path / "logs"
    shutil.copytree(data_dir / "nasbench_nlp" / "official_log_samples", src)
    logs = {f.name: json.loads(f.read_text()) for f in src.glob("*.json")}
    assert len(logs) == 12
    # three ways to diverge: NaN status, a non-finite last loss, an interrupted run
    names = sorted(logs)
    logs[names[0]]["test_losses"][-1] = float("nan")
    logs[names[0]]["status"] = "loss is nan!"
    logs[names[1]]["test_losses"][-1] = float("inf")
    logs[names[2]]["status"] = "KeyboardInterrupt"
    for n in names[:3]:
        (src / n).write_text(json.dumps(logs[n]))
    # these are WikiText-2 runs: refused unless asked for
    with pytest.raises(DataError, match=r"log_stats_model_1000000_.*json: this run trained on 'data/wikitext-2'"):
        prepare("nasbench-nlp", src, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    written, summary = prepare("nasbench-nlp", src, tmp_path / "out", any_corpus=True)
    assert [p.name for p in written] == [TABLE, RUNS, RECIPE_IDS]
    assert summary == {"cells": 4322, "cells_with_runs": 12, "runs": 12, "finite_runs": 9, "single_runs": 0}
    by_recipe, _ = read_recipe_map()
    recs = _table(tmp_path / "out")
    seen = 0
    for name, log in logs.items():
        rid = log["recepie_id"]
        rec = recs[by_recipe[rid]]
        assert rid in rec["recipe_ids"] and rec["recipe"] == json.loads(log["recepie"])
        (run,) = [r for r in rec["ptb_multi_runs"] if r["recipe_id"] == rid]
        assert run["log"] == name
        want = None if name in names[:3] else log["test_losses"][-1]
        assert run["final_test_loss"] == want
        assert rec["ptb_final_test_loss_mean"] == want and rec["ptb_n_runs"] == 1
        seen += 1
    assert seen == 12
    assert logs[names[3]]["test_losses"][-1] == pytest.approx(recs[by_recipe[logs[names[3]]["recepie_id"]]]["ptb_final_test_loss_min"])
    # the loader reads the built folder
    entries = get_benchmark("nasbench-nlp").load(tmp_path / "out")
    assert len(entries) == 4322 and sum(len(e.runs) for e in entries) == 12
    assert sum(r is None for e in entries for r in e.runs) == 3
    # the same logs in a zip (in a sub-folder, as the release packs them) give the same files
    z = tmp_path / "logs.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for n in names:
            zf.write(src / n, f"train_logs_multi_runs/{n}")
    prepare("nasbench-nlp", z, tmp_path / "out_zip", any_corpus=True)
    for name in (TABLE, RUNS, RECIPE_IDS):
        assert (tmp_path / "out_zip" / "nasbench_nlp" / name).read_bytes() == \
               (tmp_path / "out" / "nasbench_nlp" / name).read_bytes()


def _synthesize_official_zip(data_dir: Path, path: Path) -> int:
    """One official-format PTB log per run of the reference table, in the run table's order."""
    recs = _table(data_dir)
    by_log = {run["log"]: (r, run) for r in recs for run in r["ptb_multi_runs"]}
    with gzip.open(data_dir / "nasbench_nlp" / RUNS, "rt") as f:
        rows = list(csv.DictReader(f))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for row in rows:
            rec, run = by_log[row["log_name"]]
            loss = run["final_test_loss"]
            log = {"data": "data/ptb", "recepie_id": run["recipe_id"], "recepie": json.dumps(rec["recipe"]),
                   "experiment_id": int(row["experiment_id"]), "init_time": row["init_time"],
                   "num_params": rec["n_params_ptb"],
                   "test_losses": [6.5, 5.9, loss] if loss is not None else [6.5, float("nan")],
                   "status": "OK" if loss is not None else "loss is nan!"}
            z.writestr(f"train_logs_multi_runs/{row['log_name']}", json.dumps(log))
    return len(rows)


def test_round_trip_gives_exactly_the_reference_entries(data_dir, tmp_path):
    n = _synthesize_official_zip(data_dir, tmp_path / "logs.zip")
    assert n == 12342
    published = tmp_path / "RNN_results.csv"
    shutil.copy(data_dir / "training_free_nas" / "RNN_results.csv", published)
    _, summary = prepare("nasbench-nlp", tmp_path / "logs.zip", tmp_path / "out", published=published)
    assert summary == {"cells": 4322, "cells_with_runs": 4114, "runs": 12342, "finite_runs": 10032,
                       "single_runs": 0, "published_runs_matched": 8794, "published_runs_unmatched": 0}
    bench = get_benchmark("nasbench-nlp")
    built, ref = bench.load(tmp_path / "out"), bench.load(data_dir)
    assert len(built) == len(ref) == 4322
    mismatched = [b.arch_id for b, r in zip(built, ref) if _entry_tuple(b) != _entry_tuple(r)]
    assert mismatched == []
    assert sum(1 for e in built if e.extra["published"]) == 2956
    # the raw records too, every field but the reference's wl_hash (an unpublished graph hash)
    for b, r in zip(_table(tmp_path / "out"), _table(data_dir)):
        r.pop("wl_hash")
        assert b == r
    # the run table: same runs, same order, same published scores
    def rows(folder):
        with gzip.open(folder / "nasbench_nlp" / RUNS, "rt") as f:
            return [(r["log_name"], r["arch_id"], r["in_serianni_results"], r["n_params"],
                     [float(r[k]) if r[k] else None for k in r if k.startswith("tfn_")]) for r in csv.DictReader(f)]
    assert rows(tmp_path / "out") == rows(data_dir)


def test_single_run_logs_are_kept_apart_from_the_truth(tmp_path):
    _, archs = read_recipe_map()
    multi, single = tmp_path / "multi", tmp_path / "single"
    multi.mkdir()
    single.mkdir()
    a = archs[5]
    (multi / _log_name(a.recipe_ids[0])).write_text(_ptb_log(a.recipe_ids[0], a.recipe, [5.0, 4.75]))
    (single / _log_name(a.recipe_ids[1])).write_text(_ptb_log(a.recipe_ids[1], a.recipe, [5.0, 4.5]))
    _, summary = prepare("nasbench-nlp", multi, tmp_path / "out", single_run=single)
    assert summary["single_runs"] == 1
    rec = _table(tmp_path / "out")[5]
    assert [r["final_test_loss"] for r in rec["ptb_multi_runs"]] == [4.75]
    assert rec["ptb_single_runs"] == [{"recipe_id": a.recipe_ids[1], "log": _log_name(a.recipe_ids[1]),
                                       "final_test_loss": 4.5}]
    assert get_benchmark("nasbench-nlp").load(tmp_path / "out")[5].truth["test_loss"] == 4.75


# -- BERT ---------------------------------------------------------------------------------------
BERT_FILES = ("BERT_benchmark.json", "search_space.json", "BERT_results_activation.csv")


def test_prepare_bert_gives_exactly_the_reference_entries(data_dir, tmp_path):
    src = tmp_path / "training-free-nas" / "data"
    src.mkdir(parents=True)
    for f in BERT_FILES:
        shutil.copy(data_dir / "training_free_nas" / f, src)
    _, summary = prepare("nasbench-bert", src.parent, tmp_path / "out")  # the repo root works too
    assert summary == {"architectures": 500, "published_rows": 500, "groups": 4}
    bench = get_benchmark("nasbench-bert")
    built, ref = bench.load(tmp_path / "out"), bench.load(data_dir)
    assert [_entry_tuple(e) for e in built] == [_entry_tuple(e) for e in ref]
    for f in BERT_FILES:
        assert (tmp_path / "out" / "training_free_nas" / f).read_bytes() == (src / f).read_bytes()


def test_prepare_bert_rejects_files_that_disagree(data_dir, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for f in BERT_FILES:
        shutil.copy(data_dir / "training_free_nas" / f, src)
    space = json.loads((src / "search_space.json").read_text())
    space["hidden_size"] = [256]
    (src / "search_space.json").write_text(json.dumps(space))
    with pytest.raises(DataError, match=r"BERT_benchmark.json: record 2 \(id 2\) lies outside search_space.json: hidden_size 128"):
        prepare("nasbench-bert", src, tmp_path / "out")
    shutil.copy(data_dir / "training_free_nas" / "search_space.json", src)
    with open(src / "BERT_results_activation.csv", "a") as f:
        f.write("9999" + ",1.0" * 16 + "\n")
    with pytest.raises(DataError, match=r"published scores for ids not in the benchmark: \[9999\]"):
        prepare("nasbench-bert", src, tmp_path / "out")
    (src / "BERT_benchmark.json").write_text((data_dir / "training_free_nas" / "BERT_benchmark.json").read_text()[:5000])
    with pytest.raises(DataError, match="BERT_benchmark.json.*truncated or corrupt"):
        prepare("nasbench-bert", src, tmp_path / "out")
    assert not (tmp_path / "out" / "training_free_nas").exists()


# -- errors: one line, exit 2, nothing half-written ----------------------------------------------
def _cli(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_errors_exit_2_with_one_line_and_leave_tables_alone(tmp_path, capsys, clean_env):
    _, archs = read_recipe_map()
    good = tmp_path / "good"
    good.mkdir()
    rnn = archs[0]
    (good / _log_name(1000000)).write_text(_ptb_log(1000000, rnn.recipe, [5.5, 5.0]))
    out = tmp_path / "data"
    rc, stdout, err = _cli(capsys, "data", "prepare", "nasbench-nlp", "--from", str(good), "--data-dir", str(out))
    assert rc == 0 and stdout.splitlines()[0] == str(out / "nasbench_nlp" / TABLE)
    before = {p.name: p.read_bytes() for p in (out / "nasbench_nlp").iterdir()}
    assert _table(out)[0]["ptb_multi_runs"][0]["final_test_loss"] == 5.0

    def fails(src, match, *more):
        rc, _, err = _cli(capsys, "data", "prepare", "nasbench-nlp", "--from", str(src), "--data-dir", str(out), *more)
        assert rc == 2, err
        assert len(err.strip().splitlines()) == 1 and err.startswith("nni-zerocost: error: "), err
        assert match in err, err
        assert {p.name: p.read_bytes() for p in (out / "nasbench_nlp").iterdir()} == before  # no temp files left
        return err

    fails(tmp_path / "missing.zip", "missing.zip: no such file or folder")
    (tmp_path / "empty").mkdir()
    fails(tmp_path / "empty", "empty: no log_stats_model_*.json files in this folder")
    (tmp_path / "notzip.zip").write_text("hello")
    fails(tmp_path / "notzip.zip", "notzip.zip: not a zip file or a folder")
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    name = _log_name(1000001)
    (bad / name).write_text(_ptb_log(1000001, archs[1].recipe, [5.0])[:-40])
    fails(bad, f"{name}, line 1: not valid JSON")
    (bad / name).write_text(_ptb_log(1000001, archs[0].recipe, [5.0]))
    fails(bad, f"{name}: the log's cell differs from official recipe 1000001 (arch 1)")
    (bad / name).unlink()
    (bad / _log_name(2000000)).write_text(_ptb_log(2000000, archs[0].recipe, [5.0]))
    fails(bad, "recipe id 2000000 is not in the official recipe list (1000000..1014002)")
    (bad / _log_name(2000000)).unlink()
    (bad / name).write_text(_ptb_log(1000001, archs[1].recipe, "oops"))
    fails(bad, "'test_losses' is missing or not a list of numbers")
    (bad / name).write_text(_ptb_log(1000001, archs[1].recipe, [5.0], num_params=123))
    fails(bad, "num_params 123 is not the official PTB model's 10896400")
    z = tmp_path / "dup.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(good / _log_name(1000000), f"a/{_log_name(1000000)}")
        zf.write(good / _log_name(1000000), f"b/{_log_name(1000000)}")
    fails(z, "the same log appears twice")
    csvf = tmp_path / "RNN_results.csv"
    csvf.write_text("log name,loss\nx,1\n")
    fails(good, "RNN_results.csv, line 1: not an RNN_results.csv: missing column(s) Activation Distance", "--published", str(csvf))
    rc, _, err = _cli(capsys, "data", "prepare", "nasbench-bert", "--from", str(good), "--data-dir", str(out))
    assert rc == 2 and "no BERT_benchmark.json in this folder" in err
    # a data folder that cannot be written
    (tmp_path / "file").write_text("")
    rc, _, err = _cli(capsys, "data", "prepare", "nasbench-nlp", "--from", str(good), "--data-dir", str(tmp_path / "file" / "x"))
    assert rc == 2 and "cannot create the data folder" in err


def test_published_scores_join_on_the_log_name(tmp_path):
    _, archs = read_recipe_map()
    logs = tmp_path / "logs"
    logs.mkdir()
    a = archs[7]
    for rid, loss in zip(a.recipe_ids[:2], (4.9, 5.1)):
        (logs / _log_name(rid)).write_text(_ptb_log(rid, a.recipe, [6.0, loss]))
    from nni_zerocost.spaces.rnn.prepare import PUBLISHED_COLUMNS

    csvf = tmp_path / "RNN_results.csv"
    with open(csvf, "w", newline="", encoding="utf-8-sig") as f:  # the published file has a BOM
        w = csv.writer(f)
        w.writerow(["log name", "loss", "perplexity", "bits per word", *PUBLISHED_COLUMNS])
        w.writerow([_log_name(a.recipe_ids[1]), "5.1", "", "", *[f"{i}.5" for i in range(12)]])
        w.writerow(["log_stats_model_1000000_2020-01-01_00-00-00_1.json", "5", "", "", *["1"] * 12])
    _, summary = prepare("nasbench-nlp", logs, tmp_path / "out", published=csvf)
    assert (summary["published_runs_matched"], summary["published_runs_unmatched"]) == (1, 1)
    e = get_benchmark("nasbench-nlp").load(tmp_path / "out")[7]
    assert e.runs == [4.9, 5.1] and e.truth["test_loss"] == pytest.approx(5.0)
    assert e.extra["published"]["tfn_layer_1_hidden_covariance"] == 9.5
    assert e.extra["published"]["tfn_activation_distance"] == 0.5


# -- end to end, as a user with no reference data beside the checkout -------------------------------
def _user_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NNI_ZEROCOST_DATA", "XDG_DATA_HOME")}
    env.update(HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(tmp_path / "home" / ".local" / "share"),
               PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    (tmp_path / "home").mkdir(exist_ok=True)
    (tmp_path / "cwd").mkdir(exist_ok=True)
    return env


def _run(tmp_path, env, *argv):
    p = subprocess.run([sys.executable, "-m", "nni_zerocost.cli", *argv], cwd=tmp_path / "cwd", env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return p.stdout


def _bench_numbers(stdout: str):
    d = json.loads(stdout)
    p = d["proxies"]["params"]
    return d["n_archs"], d["n_runs"], round(p["kendall_tau"], 4), round(p["spearman"], 4)


EXPECTED_NLP = (100, 298, 0.0923, 0.1321)   # --limit 100 --seed 0, params vs PTB test loss per run
EXPECTED_BERT = (50, 50, 0.5123, 0.6972)    # --limit 50 --seed 0, params vs GLUE


def test_end_to_end_prepare_then_benchmark_without_data_flags(data_dir, tmp_path):
    env = _user_env(tmp_path)
    user = tmp_path / "home" / ".local" / "share" / "nni-zerocost"
    _synthesize_official_zip(data_dir, tmp_path / "logs.zip")
    shutil.copy(data_dir / "training_free_nas" / "RNN_results.csv", tmp_path / "RNN_results.csv")
    bert = tmp_path / "bert"
    bert.mkdir()
    for f in BERT_FILES:
        shutil.copy(data_dir / "training_free_nas" / f, bert)
    _run(tmp_path, env, "data", "prepare", "nasbench-nlp", "--from", str(tmp_path / "logs.zip"),
         "--published", str(tmp_path / "RNN_results.csv"))
    _run(tmp_path, env, "data", "prepare", "nasbench-bert", "--from", str(bert))
    assert (user / "nasbench_nlp" / TABLE).is_file() and (user / "training_free_nas" / "BERT_benchmark.json").is_file()
    where = _run(tmp_path, env, "data", "where")
    assert f"nasbench-nlp   reads {user / 'nasbench_nlp'} (data folder)" in where
    assert f"nasbench-bert  reads {user / 'training_free_nas'} (data folder)" in where
    common = ["--proxy", "params", "--no-store", "--no-progress", "--json"]
    assert _bench_numbers(_run(tmp_path, env, "benchmark", "nasbench-nlp", "--limit", "100", *common)) == EXPECTED_NLP
    assert _bench_numbers(_run(tmp_path, env, "benchmark", "nasbench-bert", "--limit", "50", *common)) == EXPECTED_BERT


def test_with_nothing_prepared_the_shipped_tables_are_used(tmp_path):
    env = _user_env(tmp_path)
    where = _run(tmp_path, env, "data", "where")
    assert f"nasbench-nlp   reads {PACKAGE_DATA / 'nasbench_nlp'} (shipped with the package)" in where
    common = ["--proxy", "params", "--no-store", "--no-progress", "--json"]
    assert _bench_numbers(_run(tmp_path, env, "benchmark", "nasbench-nlp", "--limit", "100", *common)) == EXPECTED_NLP
    assert _bench_numbers(_run(tmp_path, env, "benchmark", "nasbench-bert", "--limit", "50", *common)) == EXPECTED_BERT
    assert not (tmp_path / "home" / ".local" / "share" / "nni-zerocost").exists()
