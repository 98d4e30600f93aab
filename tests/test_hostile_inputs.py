"""Property-based: corrupted cells either score or raise InvalidArchitectureError, nothing else."""
import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nni_zerocost as nz
from nni_zerocost.data import zipf_batch
from nni_zerocost.errors import InvalidArchitectureError
from nni_zerocost.spaces.rnn.cell import OPS
from nni_zerocost.spaces.rnn.generator import CellGenerator

BATCH = zipf_batch(batch_size=3, seq_len=6, vocab_size=40, seed=0)
POOL = [CellGenerator(k).sample(seed).to_recipe() for k in (1, 2, 3) for seed in range(0, 400, 20)]


junk = st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.text(max_size=5), st.lists(st.integers(), max_size=3),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@st.composite
def hostile(draw):
    recipe = draw(st.sampled_from(POOL))
    names = list(recipe)
    kind = draw(st.sampled_from([
        "op", "arity", "dangling", "cycle", "drop_output", "gap", "fan_in", "type", "empty", "json", "junk_node",
        "junk_input", "self", "dead", "valid", "prev_out_of_range", "many_ops",
    ]))
    node = draw(st.sampled_from(names))
    r = json.loads(json.dumps(recipe))
    if kind == "op":
        r[node]["op"] = draw(st.one_of(st.sampled_from(OPS), st.text(max_size=8), junk))
    elif kind == "arity":
        r[node]["input"] = r[node]["input"] + draw(st.lists(st.sampled_from(["x"] + names), min_size=1, max_size=4))
    elif kind == "dangling":
        r[node]["input"][0] = draw(st.text(min_size=1, max_size=6))
    elif kind == "cycle":
        r[draw(st.sampled_from(names))]["input"].append(node)
    elif kind == "drop_output":
        r.pop("h_new_0")
    elif kind == "gap":
        r["h_new_7"] = {"op": "linear", "input": ["x"]}
    elif kind == "fan_in":
        r[node] = {"op": draw(st.sampled_from(["linear", "elementwise_sum", "elementwise_prod"])),
                   "input": ["x" if r[node]["op"] == "linear" else "h_prev_0"] * draw(st.integers(2, 200))}
    elif kind == "type":
        r[node] = draw(junk)
    elif kind == "empty":
        r = draw(st.sampled_from([{}, [], "", 0, None]))
    elif kind == "json":
        text = json.dumps(recipe)
        r = text[: draw(st.integers(0, len(text)))]
    elif kind == "junk_node":
        r[draw(st.text(max_size=6))] = draw(junk)
    elif kind == "junk_input":
        r[node]["input"] = draw(junk)
    elif kind == "self":
        r[node]["input"] = [node] + r[node]["input"][1:]
    elif kind == "dead":
        r["unused"] = {"op": "linear", "input": ["x"]}
    elif kind == "prev_out_of_range":
        r[node]["input"][-1] = "h_prev_9"
    elif kind == "many_ops":
        r[node]["op"] = draw(st.sampled_from(OPS))
    return r


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(hostile())
def test_hostile_cells_score_or_raise_invalid_architecture(recipe):
    try:
        res = nz.score("rnn", recipe, ["hidden_covariance", "params"], batch=BATCH, emsize=6, nhid=6)
    except InvalidArchitectureError as e:
        assert str(e)  # names the problem
        return
    for r in res.values():
        assert math.isfinite(r.raw) or r.flag, r


def _bert_pool():
    from nni_zerocost.spaces import get_space

    sp = get_space("bert")
    rng = __import__("numpy").random.default_rng(0)
    return [sp.to_dict(sp.sample(rng)) for _ in range(30)]


BERT_POOL = _bert_pool()
BERT_FIELDS = ("operation_type", "operation_parameter", "num_operation_heads", "feed_forward_dimension", "num_feed_forward")


@st.composite
def hostile_bert(draw):
    cfg = json.loads(json.dumps(draw(st.sampled_from(BERT_POOL))))
    layers = cfg["nas_config"]["encoder_layers"]
    kind = draw(st.sampled_from(["field", "drop_field", "extra_field", "hidden", "layers", "type", "json", "empty", "valid", "junk_layer"]))
    if kind == "field":
        layers[draw(st.integers(0, len(layers) - 1))][draw(st.sampled_from(BERT_FIELDS))] = draw(
            st.one_of(junk, st.sampled_from(["SA", "LT", "DSC", "SDP", "WMA", "DFT", "DCT", 5, 9, 2, 4, 512, 1024, 1, 3])))
    elif kind == "drop_field":
        layers[0].pop(draw(st.sampled_from(BERT_FIELDS)))
    elif kind == "extra_field":
        layers[0][draw(st.text(min_size=1, max_size=5))] = 1
    elif kind == "hidden":
        cfg["hidden_size"] = draw(st.one_of(junk, st.integers(-5, 1000)))
    elif kind == "layers":
        cfg["nas_config"]["encoder_layers"] = layers * draw(st.integers(0, 5))
    elif kind == "type":
        cfg["nas_config"] = draw(junk)
    elif kind == "json":
        text = json.dumps(cfg)
        cfg = text[: draw(st.integers(0, len(text)))]
    elif kind == "empty":
        cfg = draw(st.sampled_from([{}, [], "", None, 3]))
    elif kind == "junk_layer":
        layers[0] = draw(junk)
    return cfg


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(hostile_bert())
def test_hostile_bert_configs_parse_or_raise_invalid_architecture(cfg):
    from nni_zerocost.spaces import get_space

    sp = get_space("bert")
    try:
        parsed = sp.parse(cfg)
    except InvalidArchitectureError as e:
        assert str(e)
        return
    assert sp.parse(sp.to_dict(parsed)) == parsed  # whatever parses round-trips


def test_valid_bert_configs_score_finite_or_flagged_on_a_tiny_batch():
    from nni_zerocost.spaces.bert import zipf_bert_batch

    batch = zipf_bert_batch(batch_size=2, seq_len=16, seed=0)
    for cfg in BERT_POOL[:6]:
        res = nz.score("bert", cfg, nz.list_proxies("bert"), batch=batch)
        for r in res.values():
            assert math.isfinite(r.raw) or r.flag, r
