"""Precomputed tables: built only from the CLI's output, read back exactly, NASLib layout."""
from __future__ import annotations

import json
import shlex

import pytest

import nni_zerocost as nz
from nni_zerocost import BadInputError, DataError
from nni_zerocost.benchmarks.base import get_benchmark
from nni_zerocost.cli import build_table
from nni_zerocost.benchmarks.tables import FOLDER, list_precomputed, precomputed, read_table
from nni_zerocost.cli import main
from nni_zerocost.reproducibility import agree

from naslib_ext.zc_benchmark import naslib_names, naslib_zc_json  # NASLib's layout (imports no NASLib)


def _run(tmp_path, data_dir, limit=4):
    out = tmp_path / "r.jsonl"
    argv = ["score", "--space", "rnn", "--benchmark", "nasbench-nlp", "--proxy", "params", "--proxy",
            "hidden_covariance:layer=1", "--limit", str(limit), "--device", "cpu", "--data-dir", str(data_dir),
            "--out", str(out), "--no-store", "--no-progress"]
    assert main(argv) == 0
    return out, "nni-zerocost " + " ".join(shlex.quote(a) for a in argv)


def test_a_table_holds_exactly_what_the_cli_wrote(tmp_path, data_dir):
    out, command = _run(tmp_path, data_dir)
    build_table(out, command, "t", folder=tmp_path / "tables", wall_seconds=1.5, machine="test")
    table = precomputed("nasbench-nlp", folder=tmp_path / "tables")
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["arch_id"] for r in table.rows] == [r["arch_id"] for r in recs]
    for spec in ("params", "hidden_covariance:layer=1"):
        assert table.values(spec) == {r["arch_id"]: r[spec] for r in recs}  # bit-exact round trip
        assert all(r["seconds"][spec] is not None for r in table.rows)
    hc = table.scores("hidden_covariance:layer=1")
    assert all(v == table.values("hidden_covariance:layer=1")[k] for k, v in hc.items())  # higher is better
    prov = table.provenance
    assert prov["device"] == "cpu" and prov["batch"] == "embedded" and prov["options"] == {"init": "official"}
    assert prov["seed"] == 0 and prov["command"] == command and prov["wall_seconds"] == 1.5
    assert prov["seconds"] == pytest.approx(sum(r["seconds"] for r in recs), abs=1e-2)
    only = precomputed("nasbench-nlp", "params", folder=tmp_path / "tables")
    assert only.columns == ["params"] and set(only.rows[0]["values"]) == {"params"}


def test_build_refuses_incomplete_or_mismatched_records(tmp_path, data_dir):
    out, command = _run(tmp_path, data_dir, limit=3)
    with pytest.raises(DataError, match="1 of 4 architectures have no record"):
        build_table(out, command.replace("--limit 3", "--limit 4"), "t", folder=tmp_path)
    with pytest.raises(DataError, match="lacks the command's proxy column"):
        build_table(out, command + " --proxy activation_distance", "t", folder=tmp_path)
    with pytest.raises(BadInputError) as e:
        build_table(out, "nni-zerocost benchmark nasbench-nlp --proxy params", "t", folder=tmp_path)
    assert e.value.field == "command"
    assert list(tmp_path.glob("*.csv.gz")) == []


def test_lookup_errors_name_what_is_shipped(tmp_path, data_dir):
    out, command = _run(tmp_path, data_dir, limit=2)
    build_table(out, command, "t", folder=tmp_path)
    with pytest.raises(BadInputError) as e:
        precomputed("nasbench-nlp", folder=tmp_path, init="compat")
    assert "no table" in str(e.value) and "t (benchmark=nasbench-nlp" in str(e.value)
    with pytest.raises(BadInputError) as e:
        precomputed("nasbench-nlp", folder=tmp_path, colour="red")
    assert e.value.field == "colour"
    with pytest.raises(BadInputError):
        precomputed("nasbench-nlp", "grasp", folder=tmp_path)


def test_naslib_layout():
    from nni_zerocost.benchmarks.tables import PrecomputedTable

    t = PrecomputedTable("t", "nasbench-nlp", ["a", "b"], [
        {"arch_id": 1, "arch_hash": "h1", "values": {"a": 2.0, "b": None}, "seconds": {"a": 0.5, "b": 0.1}, "flags": {}},
        {"arch_id": 2, "arch_hash": "h2", "values": {"a": 3.0, "b": 4.0}, "seconds": {"a": 0.4, "b": None}, "flags": {}},
    ], {}, {"a": True, "b": False})
    zc = naslib_zc_json([t], arch_key=lambda i: (i, "x"), val_accuracy=lambda i: 95.0 + i, no_score=-1e8)
    assert zc == {"ptb": {
        "(1, 'x')": {"a": {"score": 2.0, "time": 0.5}, "b": {"score": -1e8, "time": 0.1}, "val_accuracy": 96.0},
        "(2, 'x')": {"a": {"score": 3.0, "time": 0.4}, "b": {"score": -4.0, "time": 0.0}, "val_accuracy": 97.0},
    }}
    # two benchmark entries with one NASLib hash: one entry, values averaged, no score wins
    zc = naslib_zc_json([t], arch_key=lambda i: "same", val_accuracy=lambda i: 95.0 + i)
    assert zc == {"ptb": {"same": {"a": {"score": 2.5, "time": 0.45}, "b": {"score": -1e8, "time": 0.05},
                                   "val_accuracy": 96.5}}}
    # no benchmark value: left out (NASLib needs val_accuracy on every entry)
    zc = naslib_zc_json([t], arch_key=lambda i: i, val_accuracy=lambda i: None if i == 1 else 90.0)
    assert list(zc["ptb"]) == ["2"]
    # a column in two tables: taken once where they agree, refused where they do not
    u = PrecomputedTable("u", "nasbench-nlp", ["a", "c"], [
        {"arch_id": 1, "arch_hash": "h1", "values": {"a": 2.0, "c": 1.0}, "seconds": {"a": 9.0, "c": 0.1}, "flags": {}},
        {"arch_id": 2, "arch_hash": "h2", "values": {"a": 3.0, "c": 1.0}, "seconds": {"a": 9.0, "c": 0.1}, "flags": {}},
    ], {}, {"a": True, "c": True})
    zc = naslib_zc_json([t, u], arch_key=lambda i: i, val_accuracy=lambda i: 90.0)
    assert sorted(zc["ptb"]["1"]) == ["a", "b", "c", "val_accuracy"] and zc["ptb"]["1"]["a"]["time"] == 0.5
    u.rows[0]["values"]["a"] = 2.5
    with pytest.raises(BadInputError, match="column 'a' is in tables 't' and 'u' with different values"):
        naslib_zc_json([t, u], arch_key=lambda i: i, val_accuracy=lambda i: 90.0)
    # NASLib's names come from the spaces' NASLib forms
    assert naslib_names()["nasbench-nlp"] == ("nlp", "ptb") and naslib_names()["nasbench-bert"] == ("bert", "glue")


@pytest.mark.parametrize("name", list_precomputed() or [pytest.param(None, marks=pytest.mark.skip("no table shipped"))])
def test_shipped_tables_match_a_fresh_computation(name, data_dir):
    """Every shipped table says how it was made, and its numbers are what that command gives
    (three architectures recomputed on the CPU), equal up to rounding, not bit for bit: the
    tables were built on another machine (:mod:`nni_zerocost.reproducibility`)."""
    meta = json.loads((FOLDER / f"{name}.json").read_text())
    table = read_table(FOLDER / f"{name}.csv.gz", meta)
    prov = table.provenance
    for field in ("command", "commit", "device", "seconds", "batch", "seed", "version"):
        assert prov.get(field) is not None, field
    bench = get_benchmark(table.benchmark)
    entries = bench.load(data_dir)
    if prov["limit"] is not None:
        from nni_zerocost.benchmarks.study import select_entries

        entries = select_entries(entries, bench, prov["limit"], prov["seed"])
    assert len(table) == len(entries) == meta["n_archs"]
    for c in table.columns:
        assert sum(v is None for v in table.values(c).values()) == meta["no_score"][c]
    if not prov["device"].startswith("cpu") or prov["batch"] != "embedded":
        pytest.skip("recomputation checked for CPU tables on the embedded batch")
    by_id = {e.arch_id: e for e in entries}
    for row in table.rows[:3]:
        res = nz.score(bench.space, by_id[row["arch_id"]].arch, table.columns, seed=prov["seed"], device="cpu",
                       **table.options)
        for c in table.columns:
            want = row["values"][c]
            got = res[c].raw if res[c].ok else None
            assert agree(want, got), (c, want, got)  # computed on another machine: equal up to rounding


def test_the_package_level_api(tmp_path, data_dir):
    import nni_zerocost.benchmarks as nb

    assert nb.list_precomputed() == list_precomputed()
    with pytest.raises(BadInputError):
        nb.precomputed("nasbench-nlp", "no_such_column")


def test_build_table_from_the_command_line(tmp_path, data_dir):
    from nni_zerocost.cli import main

    out, command = _run(tmp_path, data_dir)
    assert main(["data", "build-table", str(out), "--command", command, "--name", "t",
                 "--folder", str(tmp_path / "cli_tables")]) == 0
    table = precomputed("nasbench-nlp", folder=tmp_path / "cli_tables")
    assert table.provenance["command"] == command and len(table.rows) == 4
