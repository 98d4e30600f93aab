"""A user's own NNI model spaces (the two examples), searched in real NNI experiments by
training-free proxies, with the size budget applied to a space nni-zerocost does not know."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nni_zerocost.reproducibility import REL_TOL

pytest.importorskip("nni")
REPO = Path(__file__).resolve().parents[1]


def _run(script, tmp_path, *args):
    out = tmp_path / "result.json"
    done = subprocess.run([sys.executable, str(REPO / "examples" / script), "--out", str(out), *args],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def test_recurrent_user_space(tmp_path):
    import nni_zerocost as nz

    result = _run("nni_user_space_rnn.py", tmp_path, "--trials", "4")
    trials = result["trials"]
    assert len(trials) == 4 and all(isinstance(t["score"], float) for t in trials)
    assert all(-10 < t["score"] < 0 for t in trials)  # a normalised hidden covariance: a mean per unit
    best = max(trials, key=lambda t: t["score"])
    assert result["best"] == best["sample"]
    # the score is the one score_model gives the model NNI built for the sample, seed 0
    sys.path.insert(0, str(REPO / "examples"))
    try:
        import torch
        from nni_user_space_rnn import RecurrentLMSpace

        torch.manual_seed(0)
        model = RecurrentLMSpace().freeze(best["sample"])
        got = nz.score_model(model, "hidden_covariance:normalize=true", seed=0)["hidden_covariance:normalize=true"]
        assert got.score == pytest.approx(best["score"], rel=REL_TOL)  # scored in the example's own process
    finally:
        sys.path.pop(0)


def test_hugging_face_user_space_under_a_budget(tmp_path):
    pytest.importorskip("transformers")
    import nni_zerocost as nz

    budget = 300_000
    result = _run("nni_user_space_hf.py", tmp_path, "--trials", "8", "--max-params", str(budget))
    from transformers import GPT2Config, GPT2LMHeadModel

    over = scored = 0
    for t in result["trials"]:
        s = t["sample"]
        n = sum(p.numel() for p in GPT2LMHeadModel(GPT2Config(vocab_size=2000, n_positions=128, n_layer=s["n_layer"],
                                                             n_head=s["n_head"], n_embd=s["n_embd"])).parameters())
        if n > budget:
            over += 1
            assert t["score"] == nz.NO_SCORE  # not scored, ranked last
        else:
            scored += 1
            assert 0 < t["score"] <= 1  # the mean head confidence
    assert over and scored
