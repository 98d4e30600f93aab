"""A third search space defined in this file and nowhere else gets everything the built-in ones
get: ``score``, ``list``, the CLI (as a ``--plugin``), an NNI model space and search, a NASLib
search space, and the conformance kit.  No other file of the package names it.

The toy space: Elman RNN language models (torch's ``nn.RNN``) over hidden size, depth and
non-linearity; its context offers ``parameters`` and ``recurrent_states``, so ``params``,
``nonembedding_params`` and ``hidden_covariance`` apply and nothing else does.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import nni_zerocost as nz
from nni_zerocost.data import TokenBatch, zipf_batch
from nni_zerocost.errors import InvalidArchitectureError
from nni_zerocost.spaces import SPACES, ScoringContext, SearchSpace, register_space

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VOCAB = 50
CHOICES = {"hidden": [8, 16], "layers": [1, 2], "nonlinearity": ["tanh", "relu"]}


@dataclasses.dataclass(frozen=True)
class Toy:
    hidden: int
    layers: int
    nonlinearity: str


class ToyLM(torch.nn.Module):
    def __init__(self, arch: Toy, seed: int):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.embedding = torch.nn.Embedding(VOCAB, arch.hidden)
        self.rnn = torch.nn.RNN(arch.hidden, arch.hidden, arch.layers, nonlinearity=arch.nonlinearity)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.empty_like(p).uniform_(-0.3, 0.3, generator=gen))

    def layer_inputs(self, tokens):
        """The hidden state entering every step of every layer, (T, B, H) each."""
        x, out = self.embedding(tokens), []
        for i in range(self.rnn.num_layers):
            w_ih, w_hh = getattr(self.rnn, f"weight_ih_l{i}"), getattr(self.rnn, f"weight_hh_l{i}")
            b = getattr(self.rnn, f"bias_ih_l{i}") + getattr(self.rnn, f"bias_hh_l{i}")
            h, states, ys = x.new_zeros(x.shape[1], w_hh.shape[0]), [], []
            for t in range(x.shape[0]):
                states.append(h)
                h = torch.tanh(x[t] @ w_ih.T + h @ w_hh.T + b) if self.rnn.nonlinearity == "tanh" else \
                    torch.relu(x[t] @ w_ih.T + h @ w_hh.T + b)
                ys.append(h)
            out.append(torch.stack(states))
            x = torch.stack(ys)
        return out


class ToyContext(ScoringContext):
    offers = frozenset({"parameters", "recurrent_states"})

    def model(self) -> ToyLM:
        return self.cached("model", lambda: ToyLM(self.arch, self.seed).eval())

    def param_count(self) -> int:
        return sum(p.numel() for p in self.model().parameters())

    def nonembedding_param_count(self) -> int:
        return sum(p.numel() for p in self.model().rnn.parameters())

    def recurrent_layers(self) -> int:
        return self.arch.layers

    def incoming_states(self, layer: int) -> torch.Tensor:
        with torch.no_grad():
            return self.cached("states", lambda: self.model().layer_inputs(self.batch.tokens))[layer - 1]


class ToySpace(SearchSpace):
    """Elman RNN LMs: hidden 8/16, 1-2 layers, tanh or relu."""

    name = "toy_rnn"
    title = "ToyRNN"
    offers = ToyContext.offers

    def parse(self, obj):
        if isinstance(obj, Toy):
            return obj
        d = json.loads(obj) if isinstance(obj, str) else dict(obj)
        for field, values in CHOICES.items():
            if d.get(field) not in values:
                raise InvalidArchitectureError(f"must be one of {values}, got {d.get(field)!r}", node=field)
        return Toy(**{k: d[k] for k in CHOICES})

    def sample(self, rng):
        return Toy(*(values[int(rng.integers(len(values)))] for values in CHOICES.values()))

    def to_dict(self, arch):
        return dataclasses.asdict(self.parse(arch))

    def choices(self):
        return CHOICES

    def default_batch(self, seed: int = 0) -> TokenBatch:
        return zipf_batch(6, 10, vocab_size=VOCAB, seed=seed)

    def context(self, arch, batch=None, *, seed: int = 0, device=None):
        return ToyContext(self.parse(arch), batch if batch is not None else self.default_batch(), seed=seed,
                          device=device)


@pytest.fixture
def toy():
    register_space(ToySpace)
    try:
        yield "toy_rnn"
    finally:
        SPACES._items.pop("toy_rnn", None)


ARCH = {"hidden": 16, "layers": 2, "nonlinearity": "tanh"}


def test_score_and_list_by_capability(toy):
    assert toy in nz.list_spaces()
    assert nz.list_proxies(toy) == ["hidden_covariance", "nonembedding_params", "params"]
    res = nz.score(toy, ARCH, ["params", "hidden_covariance:layer=2", "hidden_covariance:normalize=true"])
    assert res["params"].raw == 50 * 16 + 2 * (16 * 16 * 2 + 32)
    assert res["hidden_covariance:layer=2"].ok
    # depth varies within the space, so the layer bound is the architecture's, checked when scored
    with pytest.raises(nz.ZeroCostError, match="option 'layer' must be one of 1, got 2"):
        nz.score(toy, {**ARCH, "layers": 1}, "hidden_covariance:layer=2")
    with pytest.raises(nz.BadInputError, match="'head_confidence' does not apply to the 'toy_rnn' space: it needs "
                                               "attention_confidence"):
        nz.make_plan(toy, "head_confidence")
    with pytest.raises(nz.BadInputError, match="option max_degree=1 needs cell_graph, which the 'toy_rnn' space"):
        nz.make_plan(toy, "hidden_covariance:max_degree=1")


def test_conformance_kit(toy):
    from nni_zerocost import testing

    testing.check_space(toy)


def test_cli_with_the_space_as_a_plugin(tmp_path):
    (tmp_path / "toy_plugin.py").write_text("from nni_zerocost.spaces import register_space\n"
                                            "from test_toy_space import ToySpace\n"
                                            "register_space(ToySpace)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(HERE), str(REPO)])}
    env.pop("NNI_ZEROCOST_PLUGINS", None)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "nni_zerocost.cli", *args], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=300)

    listed = cli("list", "proxies", "--space", "toy_rnn", "--plugin", "toy_plugin")
    assert listed.returncode == 0, listed.stderr
    assert "hidden_covariance" in listed.stdout and "head_confidence" not in listed.stdout
    done = cli("score", "--plugin", "toy_plugin", "--space", "toy_rnn", "--sample", "3", "--proxy", "params",
               "--proxy", "hidden_covariance", "--out", "toy.jsonl", "--no-store", "--no-progress", "--workers", "2")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (tmp_path / "toy.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["status"] in ("ok", "flagged") for r in rows)
    for r in rows:  # the workers (other processes) loaded the plugin too: same numbers as here
        arch = ToySpace().parse(r["arch"])
        assert r["params"] == ToyContext(arch, ToySpace().default_batch()).param_count()
    missing = cli("list", "proxies", "--space", "toy_rnn")
    assert missing.returncode == 2 and "unknown space" in missing.stderr


def test_nni_model_space_and_search(toy, tmp_path):
    pytest.importorskip("nni")
    from nni_zerocost.nas import ZeroCostEvaluator, model_space, run_search

    ms = model_space(toy)
    assert type(ms).__name__ == "ToyRNNModelSpace"
    model = ms.freeze({"hidden": 8, "layers": 1, "nonlinearity": "relu"})
    assert isinstance(model, ToyLM) and model.zerocost_arch == Toy(8, 1, "relu")
    metrics = ZeroCostEvaluator("params").evaluate(model)
    assert metrics["default"] == nz.score(toy, Toy(8, 1, "relu"), "params")["params"].score
    found = run_search(toy, "hidden_covariance", "ranking", 6, seed=0, experiment_dir=str(tmp_path / "nni"))
    assert len(found) == 6 and found[0][1]["default"] == max(m["default"] for _, m in found)


def test_naslib_search_space(toy):
    pytest.importorskip("naslib", reason="NASLib is not installed (see README, section NASLib)")
    from naslib_ext.search_spaces import naslib_space

    cls = naslib_space(toy)
    g = cls()
    g.set_spec(Toy(16, 2, "relu"))
    assert g.get_type() == toy and g.core_arch() == Toy(16, 2, "relu")
    assert len(g.get_nbhd()) == 3 and len(g.encode()) == 6
    child = cls()
    child.mutate(g)
    assert child.get_hash() != g.get_hash()
    # NASLib's own look-ups find it once naslib_ext.enable() has run
    import naslib_ext

    naslib_ext.enable()
    from naslib.predictors.utils.encodings import encode_spec
    from naslib.search_spaces import get_search_space

    assert type(get_search_space(toy, toy)) is cls
    assert encode_spec(g.get_hash(), ss_type=toy) == g.encode()
