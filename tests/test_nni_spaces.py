"""NNI model spaces, codec, evaluator metric, tuner and trial settings (no experiment runs)."""
import json
import math

import numpy as np
import pytest

nni = pytest.importorskip("nni")
torch = pytest.importorskip("torch")

from nni_zerocost import InvalidArchitectureError, score  # noqa: E402
from nni_zerocost.data import data_dir, zipf_batch  # noqa: E402
from nni_zerocost.nas.codec import get_codec, search_space_json  # noqa: E402
from nni_zerocost.spaces.rnn.codec import RNNCellCodec  # noqa: E402
from nni_zerocost import NO_SCORE
from nni_zerocost.nas.evaluator import ZeroCostEvaluator, metric_dict  # noqa: E402
from nni_zerocost.nas.spaces import RNNModelSpace, model_space  # noqa: E402
from nni_zerocost.proxies.base import ProxyResult  # noqa: E402
from nni_zerocost.spaces import list_spaces  # noqa: E402
from nni_zerocost.spaces.rnn import Cell, RNNLanguageModel  # noqa: E402

LSTM_LIKE = {
    "node_0": {"op": "linear", "input": ["x", "h_prev_0"]},
    "node_1": {"op": "activation_sigm", "input": ["node_0"]},
    "node_2": {"op": "linear", "input": ["x", "h_prev_0", "h_prev_1"]},
    "node_3": {"op": "activation_tanh", "input": ["node_2"]},
    "h_new_1": {"op": "blend", "input": ["node_1", "node_3", "h_prev_1"]},
    "h_new_0": {"op": "activation_tanh", "input": ["h_new_1"]},
}


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """One thread: these tests score many tiny models, where threads only add contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def nasbench():
    from nni_zerocost.benchmarks.base import get_benchmark

    root = data_dir()
    if not (root / "nasbench_nlp").is_dir():
        pytest.skip(f"NAS-Bench-NLP data not found under {root} (set NNI_ZEROCOST_DATA)")
    return get_benchmark("nasbench-nlp").load(root)


def _random_samples(codec, n, seed):
    rs = np.random.RandomState(seed)
    return [{k: v[rs.randint(len(v))] for k, v in codec.choices().items()} for _ in range(n)]


def _linear_signature(cell):
    """What fixes the weights: linear nodes in recipe order and the kind of each input."""
    kind = lambda s: s if s == "x" or s.startswith("h_prev_") else "node"  # noqa: E731
    return [[kind(s) for s in node.inputs] for _, node in cell.nodes if node.op == "linear"]


# -- RNN codec ------------------------------------------------------------------------------
def test_every_benchmark_cell_round_trips(nasbench):
    codec = RNNCellCodec()
    assert len(nasbench) == 4322
    for entry in nasbench:
        back = codec.decode(codec.encode(entry.arch))
        assert back.canonical_hash() == entry.arch.canonical_hash(), entry.arch_id
        assert _linear_signature(back) == _linear_signature(entry.arch), entry.arch_id


def test_round_trip_keeps_the_weights_and_the_score(nasbench):
    codec, batch = RNNCellCodec(), zipf_batch(10, 20, seed=0)
    for entry in nasbench[:: len(nasbench) // 4][:4]:
        back = codec.decode(codec.encode(entry.arch))
        a = score("rnn", entry.arch, "hidden_covariance", batch=batch, seed=3)["hidden_covariance"]
        b = score("rnn", back, "hidden_covariance", batch=batch, seed=3)["hidden_covariance"]
        assert a.raw == b.raw


def test_every_random_sample_decodes_to_a_valid_runnable_cell():
    codec = RNNCellCodec()
    sizes = set()
    for sample in _random_samples(codec, 400, seed=0):
        cell = codec.decode(sample)
        assert isinstance(cell, Cell) and cell.hidden_tuple_size == sample["hidden_tuple_size"]
        assert codec.decode(sample) == cell  # deterministic
        sizes.add(len(cell.nodes))
        for _, node in cell.nodes:  # the embedding only ever feeds linear nodes
            assert node.op == "linear" or "x" not in node.inputs
    assert min(sizes) == 1 and max(sizes) >= 10
    for sample in _random_samples(codec, 5, seed=1):  # and the fast model runs them
        out = RNNLanguageModel(codec.decode(sample), vocab_size=50, depth=3)(torch.zeros(4, 2, dtype=torch.long))
        assert out.shape == (4, 2, 50) and torch.isfinite(out).all()


def _base_sample(codec, k=1):
    s = codec.encode(Cell.parse({"node_0": {"op": "linear", "input": ["x", "h_prev_0"]},
                                 "h_new_0": {"op": "activation_tanh", "input": ["node_0"]}}))
    s["hidden_tuple_size"] = k
    return s


def test_repair_rules_are_the_documented_ones():
    codec = RNNCellCodec()
    s = _base_sample(codec)
    s["node_0_in_1"] = "h_prev_2"  # state beyond k=1 -> last state h_prev_0
    assert codec.decode(s).node_map["node_0"].inputs == ("x", "h_prev_0")
    s = _base_sample(codec, k=2)
    s["h_new_1"] = s["h_new_0"]  # both outputs on slot 1 -> output 1 moves to slot 2
    cell = codec.decode(s)
    assert cell.hidden_tuple_size == 2 and set(cell.node_map) == {"node_0", "h_new_0", "h_new_1"}
    assert cell.node_map["h_new_1"].op == "linear"  # slot 2 is an unused (default) slot
    s = _base_sample(codec)
    s["node_1_op"] = "elementwise_sum"
    s["node_1_in_0"], s["node_1_in_1"] = "x", "node_0"  # x cannot feed a sum -> h_prev_0
    assert codec.decode(s).node_map["h_new_0"].inputs == ("h_prev_0", "node_0")
    s = _base_sample(codec)
    s["node_5_op"] = "blend"  # unreachable slot: pruned, not an error
    assert len(codec.decode(s).nodes) == 2


def test_encode_rejects_cells_outside_the_space_naming_the_node():
    codec = RNNCellCodec()
    wide = {"h_new_0": {"op": "linear", "input": ["x", "h_prev_0", "h_prev_0", "h_prev_0"]}}
    with pytest.raises(InvalidArchitectureError) as e:
        codec.encode(wide)
    assert e.value.node == "h_new_0" and "4 inputs" in str(e.value)
    with pytest.raises(InvalidArchitectureError) as e:
        codec.encode({"h_new_0": {"op": "elementwise_prod", "input": ["x", "h_prev_0"]}})
    assert e.value.node == "h_new_0" and "linear" in str(e.value)
    with pytest.raises(InvalidArchitectureError, match="holds at most 3"):
        RNNCellCodec(max_nodes=3).encode(LSTM_LIKE)


def test_decode_names_missing_or_bad_labels():
    codec = RNNCellCodec()
    s = codec.encode(LSTM_LIKE)
    del s["node_2_op"]
    with pytest.raises(InvalidArchitectureError, match="node_2_op"):
        codec.decode(s)
    s = codec.encode(LSTM_LIKE)
    s["node_1_in_0"] = "node_7"  # a later slot: not a choice of slot 1
    with pytest.raises(InvalidArchitectureError, match="node_1_in_0"):
        codec.decode(s)
    s = codec.encode(LSTM_LIKE)
    assert codec.decode({**s, "lr": 0.1}) == codec.decode(s)  # foreign labels are ignored


def test_codec_ops_are_exactly_the_core_ops():
    from nni_zerocost.spaces.rnn import cell, codec

    assert {op for op, _ in codec.RNN_OPS.values()} == set(cell.OPS)


@pytest.mark.parametrize("space", ["rnn", "bert"])
def test_shipped_search_space_files_are_current(space):
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[1] / "examples" / f"nni_search_space_{space}.json"
    assert json.loads(shipped.read_text()) == search_space_json(space)


# -- NNI model space ------------------------------------------------------------------------
def test_model_space_labels_equal_the_exported_search_space():
    space = RNNModelSpace()
    legacy = {k: m.as_legacy_dict() for k, m in space.simplify().items()}
    assert legacy == search_space_json("rnn")
    assert len(legacy) == 4 * 16 + 4 and all(v["_type"] == "choice" for v in legacy.values())
    json.dumps(legacy)  # plain JSON for searchSpaceFile


def test_freezing_gives_the_validated_cell_and_model_weights_follow_the_seed():
    space = model_space("rnn", vocab_size=100)
    sample = space.sample_of(LSTM_LIKE)
    torch.manual_seed(7)
    model = space.freeze(sample)
    assert isinstance(model, RNNLanguageModel) and model.zerocost_space == "rnn"
    assert model.cell.canonical_hash() == Cell.parse(LSTM_LIKE).canonical_hash()
    ref = RNNLanguageModel(model.cell, vocab_size=100, seed=7)
    for (n, p), (_, q) in zip(model.named_parameters(), ref.named_parameters()):
        assert torch.equal(p, q), n
    with pytest.raises(Exception):
        space.freeze({**sample, "node_0_op": "conv"})


def test_evaluator_scores_a_frozen_module_like_the_core():
    space, batch = model_space("rnn"), zipf_batch(10, 20, seed=0)
    ev = ZeroCostEvaluator("hidden_covariance", extra_proxies=["params"], seed=2, batch_size=10, seq_len=20)
    metrics = ev.evaluate(space.freeze(space.sample_of(LSTM_LIKE)))
    core = score("rnn", LSTM_LIKE, ["hidden_covariance", "params"], batch=batch, seed=2)
    assert metrics["default"] == metrics["hidden_covariance"] == core["hidden_covariance"].score
    assert metrics["params"] == core["params"].score and metrics["flag"] == ""
    assert metrics["arch"] == Cell.parse(LSTM_LIKE).canonical_hash()
    with pytest.raises(ValueError, match="unknown proxy"):
        ZeroCostEvaluator("no_such_proxy")


def test_a_nan_score_reaches_nni_as_a_finite_sentinel_with_its_flag():
    results = {
        "hidden_covariance": ProxyResult("hidden_covariance", math.nan, True, "non-finite activations"),
        "params": ProxyResult("params", 123.0, True),
    }
    m = metric_dict(results, "hidden_covariance")
    assert m["default"] == NO_SCORE and math.isfinite(m["default"])
    assert m["hidden_covariance"] is None and m["params"] == 123.0
    assert m["flag"] == "hidden_covariance: non-finite activations"
    lower = metric_dict({"x": ProxyResult("x", 5.0, False, "fallback")}, "x")
    assert lower["default"] == -5.0 and lower["flag"] == "x: fallback"  # normalised, flag kept
    json.loads(json.dumps(m, allow_nan=False))


# -- HPO route pieces -----------------------------------------------------------------------
def test_tuner_adds_settings_and_strips_them_for_the_inner_tpe():
    from nni_zerocost.nas.tuner import SETTINGS_KEY, ZeroCostTuner

    tuner = ZeroCostTuner(space="rnn", proxy="hidden_covariance", algorithm="TPE", seed=4,
                          algorithm_args={"seed": 0}, batch_size=10, seq_len=20)
    assert tuner.inner.optimize_mode.value == "maximize"
    tuner.update_search_space(search_space_json("rnn"))
    params = tuner.generate_parameters(0)
    sent = params[SETTINGS_KEY]
    assert sent["proxies"] == ["hidden_covariance"] and sent["seed"] == 4 and sent["space"] == "rnn"
    assert "device" not in sent  # unset: each trial's --device decides
    get_codec("rnn").decode(params)
    seen = []
    original = tuner.inner.receive_trial_result
    tuner.inner.receive_trial_result = lambda pid, p, v, **kw: (seen.append(p), original(pid, p, v, **kw))
    tuner.receive_trial_result(0, params, {"default": 1.0})
    assert seen and SETTINGS_KEY not in seen[0] and seen[0] == {k: v for k, v in params.items() if k != SETTINGS_KEY}
    with pytest.raises(ValueError, match="not the 'rnn' space"):
        tuner.update_search_space({"x": {"_type": "choice", "_value": [1]}})
    random_tuner = ZeroCostTuner(space="rnn", algorithm="Random", algorithm_args={"seed": 0})  # no optimize_mode
    random_tuner.update_search_space(search_space_json("rnn"))
    assert SETTINGS_KEY in random_tuner.generate_parameters(0)


def test_meta_file_registers_the_tuner_under_a_builtin_name(tmp_path, monkeypatch):
    import subprocess
    import sys
    from pathlib import Path

    from nni.tools.package_utils.tuner_factory import create_builtin_class_instance

    from nni_zerocost.nas.tuner import ZeroCostTuner

    monkeypatch.setenv("NNI_CONFIG_DIR", str(tmp_path))  # NNI records registrations there
    meta = Path(__file__).resolve().parents[1] / "examples" / "nni_zerocost_tuner_meta.yml"
    done = subprocess.run([sys.executable, "-m", "nni.tools.nnictl.nnictl", "algo", "register", "--meta", str(meta)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    tuner = create_builtin_class_instance("ZeroCost", {"space": "rnn", "algorithm": "Random"}, "tuners")
    assert isinstance(tuner, ZeroCostTuner) and type(tuner.inner).__name__ == "RandomTuner"


def test_trial_request_merges_flags_and_tuner():
    from nni_zerocost.nas.trial import build_parser, resolve_request

    args = build_parser().parse_args(["--seed", "3", "--init", "compat"])
    out = resolve_request(args, {"space": "rnn", "proxies": ["hidden_covariance:layer=2"]})
    assert (out.space, out.proxies, out.seed, dict(out.options)) == ("rnn", ("hidden_covariance:layer=2",), 3,
                                                                     {"init": "compat"})
    with pytest.raises(ValueError, match="contradicts"):
        resolve_request(build_parser().parse_args(["--space", "bert"]), {"space": "rnn", "proxies": ["params"]})
    with pytest.raises(ValueError, match="contradicts"):
        resolve_request(build_parser().parse_args(["--init", "official"]),
                        {"space": "rnn", "proxies": ["params"], "options": {"init": "compat"}})
    with pytest.raises(ValueError, match="no search space"):
        resolve_request(build_parser().parse_args([]), None)


def test_trial_scores_a_sample_standalone(capsys):
    from nni_zerocost.nas.trial import main

    sample = RNNCellCodec().encode(LSTM_LIKE)
    assert main(["--space", "rnn", "--batch-size", "10", "--seq-len", "20", "--sample", json.dumps(sample)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expect = score("rnn", LSTM_LIKE, "hidden_covariance", batch=zipf_batch(10, 20, seed=0), seed=0)
    assert out["metrics"]["default"] == expect["hidden_covariance"].score


# -- BERT -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bert_benchmark():
    if "bert" not in list_spaces():
        pytest.skip("the bert search space is not part of this checkout")
    path = data_dir() / "training_free_nas" / "BERT_benchmark.json"
    if not path.is_file():
        pytest.skip(f"{path} not found (set NNI_ZEROCOST_DATA)")
    return json.loads(path.read_text())


def test_every_bert_benchmark_config_round_trips(bert_benchmark):
    from nni_zerocost.spaces import get_space

    codec, sp = get_codec("bert"), get_space("bert")
    for entry in bert_benchmark:
        config = sp.parse(entry["hparams"]["model_hparam_overrides"])
        assert codec.decode(codec.encode(config)) == config
    for sample in _random_samples(codec, 200, seed=0):
        config = codec.decode(sample)
        assert config.num_layers == sample["num_layers"] and config.hidden_size == sample["hidden_size"]


def test_bert_model_space_freezes_to_the_core_model(bert_benchmark):
    from nni_zerocost.spaces.bert import BertModel

    space = model_space("bert")
    assert {k: m.as_legacy_dict() for k, m in space.simplify().items()} == search_space_json("bert")
    sample = space.sample_of(bert_benchmark[0]["hparams"]["model_hparam_overrides"])
    torch.manual_seed(5)
    model = space.freeze(sample)
    assert isinstance(model, BertModel) and model.zerocost_arch == space.arch_from_sample(sample)
