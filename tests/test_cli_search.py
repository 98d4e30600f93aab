"""`nni-zerocost search` end to end on NNI's sequential engine (small budget)."""
import json

import pytest

pytest.importorskip("nni")

from nni_zerocost.cli import main  # noqa: E402


def test_search_writes_candidates_top_and_report_and_replays_from_store(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NNI_CONFIG_DIR", str(tmp_path / "nni-config"))
    out = tmp_path / "run"
    argv = ["search", "--space", "rnn", "--proxy", "params", "--strategy", "random", "--budget", "4", "--top", "2",
            "--seed", "1", "--out", str(out), "--store", str(tmp_path / "store.jsonl"), "--no-progress"]
    assert main(argv) == 0
    cands = [json.loads(l) for l in (out / "candidates.jsonl").read_text().splitlines()]
    assert len(cands) == 4
    assert all(c["score"] is not None and c["arch"] and c["arch_hash"] for c in cands)
    tops = sorted((out / "top").glob("*.json"))
    assert 1 <= len(tops) <= 2
    best = json.loads(tops[0].read_text())
    assert best["score"] == max(c["score"] for c in cands)
    from nni_zerocost import get_space, score

    arch = get_space("rnn").parse(best["arch"])
    assert score("rnn", arch, "params")["params"].score == best["score"]  # loadable, same score
    assert "Search report" in (out / "report.md").read_text()
    assert "top" in capsys.readouterr().out
