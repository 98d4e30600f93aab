"""Issue #12: results that stand on their own, a search that shows its work, help and wording."""
import json

import pytest

from nni_zerocost.cli import build_parser, main

from conftest import LSTM, RNN


def _read(path):
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def test_score_records_carry_the_architecture_and_its_hash(tmp_path, capsys):
    import nni_zerocost as nz

    out = tmp_path / "s.jsonl"
    assert main(["score", "--space", "rnn", "--proxy", "params", "--sample", "3", "--seed", "5", "--out", str(out),
                 "--no-store", "--no-progress"]) == 0
    sp = nz.get_space("rnn")
    for rec in _read(out):
        cell = sp.parse(rec["arch"])  # the sampled architecture can be recovered
        assert sp.arch_hash(cell) == rec["arch_hash"]
        assert rec["scores"]["params"] == rec["params"] == nz.score("rnn", cell, "params")["params"].score
    err = capsys.readouterr().err
    assert "wrote 3 records" in err and "s wall: model work" in err and "per architecture" in err


def test_plot_refuses_results_of_other_architectures(tmp_path, data_dir, capsys):
    pytest.importorskip("matplotlib")
    sample = tmp_path / "sample.jsonl"
    assert main(["score", "--space", "rnn", "--proxy", "params", "--sample", "20", "--out", str(sample),
                 "--no-store", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["plot", str(sample), "--benchmark", "nasbench-nlp", "--data-dir", str(data_dir),
                 "--out", str(tmp_path / "fig")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "of 20 rows do not match an architecture of nasbench-nlp (by architecture hash)" in err
    assert not (tmp_path / "fig").exists()
    bench = tmp_path / "bench.jsonl"  # a matching file plots as before
    assert main(["score", "--space", "rnn", "--proxy", "params", "--benchmark", "nasbench-nlp", "--limit", "20",
                 "--data-dir", str(data_dir), "--out", str(bench), "--no-store", "--no-progress"]) == 0
    assert main(["plot", str(bench), "--benchmark", "nasbench-nlp", "--data-dir", str(data_dir),
                 "--out", str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig" / "nasbench-nlp_scatter.png").stat().st_size > 10_000


@pytest.mark.parametrize("command", ["score", "benchmark", "search", "plot", "list"])
def test_every_help_shows_defaults_and_every_option_has_help(command):
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    text = sub.format_help()
    for action in sub._actions:
        if action.dest != "help":
            assert action.help, f"{command} {action.option_strings or action.dest} has no help"
    if command in ("score", "benchmark"):
        assert "(default: 0)" in text and "(default: auto)" in text  # --seed, --workers
    if command == "search":
        assert "(default: evolution)" in text and "(default: 50)" in text and "--workers" in text and "--data-dir" in text


def test_bert_summary_names_every_field_that_differs():
    import nni_zerocost as nz

    def _summary(space, arch):
        return nz.get_space(space).summary(arch)

    layer = {"operation_type": "SA", "operation_parameter": "SDP", "num_operation_heads": 2,
             "feed_forward_dimension": 512, "num_feed_forward": 1}
    a = {"hidden_size": 128, "nas_config": {"encoder_layers": [layer, layer]}}
    b = {"hidden_size": 128, "nas_config": {"encoder_layers": [layer, {**layer, "num_operation_heads": 4}]}}
    c = {"hidden_size": 128, "nas_config": {"encoder_layers": [layer, {**layer, "feed_forward_dimension": 1024,
                                                                          "num_feed_forward": 3}]}}
    assert len({_summary("bert", x) for x in (a, b, c)}) == 3
    assert "SA/SDP x4 heads, FF 1x512" in _summary("bert", b) and "FF 3x1024" in _summary("bert", c)
    assert _summary("rnn", RNN) != _summary("rnn", LSTM)


def test_search_writes_a_figure_the_report_embeds_and_one_nni_folder(tmp_path, monkeypatch, capsys):
    pytest.importorskip("nni")
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("NNI_CONFIG_DIR", str(tmp_path / "nni-config"))
    out = tmp_path / "run"
    argv = ["search", "--space", "rnn", "--proxy", "params", "--strategy", "random", "--budget", "3", "--top", "2",
            "--out", str(out), "--store", str(tmp_path / "store.jsonl"), "--no-progress"]
    assert main(argv) == 0 and main(argv) == 0  # a re-run replaces NNI's folder
    assert len(list((out / "nni").iterdir())) == 1
    report = (out / "report.md").read_text()
    assert "![best score so far and score distribution](search.png)" in report
    assert "NNI's own experiment folder is `nni/<experiment id>/`" in report
    assert (out / "search.png").stat().st_size > 10_000
    cands = _read(out / "candidates.jsonl")
    assert all(0 <= c["seconds"] < 30 for c in cands)  # model work only, start-up excluded
    printed = capsys.readouterr().out
    assert "start-up and NNI" in printed and "3 candidates in" in printed
