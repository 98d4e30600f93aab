"""BertConfig: parsing, validation errors, sampling, hashing, and round trips over the benchmark."""
import json

import numpy as np
import pytest

from nni_zerocost.data import data_dir
from nni_zerocost.errors import InvalidArchitectureError
from nni_zerocost.spaces import get_space
from nni_zerocost.spaces.bert import BertConfig, LayerConfig, space_size

LAYERS = [
    {"operation_type": "SA", "operation_parameter": "WMA", "num_operation_heads": 4,
     "feed_forward_dimension": 1024, "num_feed_forward": 3},
    {"operation_type": "DSC", "operation_parameter": 9, "num_operation_heads": 2,
     "feed_forward_dimension": 512, "num_feed_forward": 1},
]
NESTED = {"hidden_size": 256, "nas_config": {"encoder_layers": LAYERS}}
BENCHMARK = data_dir() / "training_free_nas" / "BERT_benchmark.json"


def _with_layer(i, **changes):
    layers = [dict(l) for l in LAYERS]
    layers[i].update(changes)
    return {"hidden_size": 256, "nas_config": {"encoder_layers": layers}}


def test_parse_benchmark_form_and_its_views():
    cfg = BertConfig.parse(NESTED)
    assert cfg.hidden_size == 256 and cfg.num_layers == 2
    assert cfg.layers[0] == LayerConfig("SA", "WMA", 4, 1024, 3)
    assert cfg.layers[1].kernel_size == 9
    assert cfg.to_dict() == NESTED
    flat = cfg.to_flat()
    assert flat["num_layers"] == 2 and flat["layers.1.operation_parameter"] == 9
    assert all(not isinstance(v, (dict, list)) for v in flat.values())
    assert BertConfig.parse(flat) == cfg
    assert BertConfig.parse(json.dumps(NESTED)) == cfg
    assert BertConfig.parse({"hparams": {"model_hparam_overrides": NESTED}, "id": 3}) == cfg
    assert BertConfig.parse({"model_hparam_overrides": NESTED}) == cfg
    assert BertConfig.parse(cfg) is cfg


def test_dsc_kernel_given_as_string_is_accepted_as_int():
    cfg = BertConfig.parse(_with_layer(1, operation_parameter="5"))
    assert cfg.layers[1].operation_parameter == 5


@pytest.mark.parametrize("obj, node, words", [
    ({**NESTED, "hidden_size": 512}, "hidden_size", "[128, 256]"),
    ({"hidden_size": 128, "nas_config": {"encoder_layers": LAYERS[:1]}}, "number of encoder layers", "got 1"),
    (_with_layer(1, operation_type="CONV"), "encoder_layers[1].operation_type", "'CONV'"),
    (_with_layer(0, operation_parameter="DFT"), "encoder_layers[0].operation_parameter", "for operation_type 'SA'"),
    (_with_layer(1, operation_parameter=7), "encoder_layers[1].operation_parameter", "[5, 9]"),
    (_with_layer(1, operation_parameter="SDP"), "encoder_layers[1].operation_parameter", "integer"),
    (_with_layer(0, num_operation_heads=3), "encoder_layers[0].num_operation_heads", "[2, 4]"),
    (_with_layer(0, feed_forward_dimension=2048), "encoder_layers[0].feed_forward_dimension", "[512, 1024]"),
    (_with_layer(0, num_feed_forward=2), "encoder_layers[0].num_feed_forward", "[1, 3]"),
    (_with_layer(0, num_feed_forward=True), "encoder_layers[0].num_feed_forward", "integer"),
    (_with_layer(0, dropout=0.1), "encoder_layers[0]", "unknown key"),
    ({"hidden_size": 128, "nas_config": {"encoder_layers": [{"operation_type": "SA"}] * 2}}, "encoder_layers[0]", "missing"),
    ({"nas_config": {"encoder_layers": LAYERS}}, "hidden_size", "missing"),
    ({**NESTED, "extra": 1}, None, "unknown key"),
    ({"hidden_size": 128, "num_layers": 2, "layers.0.operation_type": "SA"}, "layers.0", "missing"),
])
def test_invalid_configs_name_the_field(obj, node, words):
    with pytest.raises(InvalidArchitectureError) as err:
        BertConfig.parse(obj)
    assert err.value.node == node
    assert words in str(err.value)
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("obj", ["{not json", 42, [1, 2], {"foo": 1}])
def test_unparseable_input_is_rejected(obj):
    with pytest.raises(InvalidArchitectureError):
        BertConfig.parse(obj)


def test_direct_construction_is_validated_too():
    with pytest.raises(InvalidArchitectureError, match="operation_parameter"):
        BertConfig(128, (LayerConfig("LT", "SDP", 2, 512, 1), LayerConfig("LT", "DFT", 2, 512, 1)))


def test_sampling_is_reproducible_valid_and_covers_the_space():
    a = [BertConfig.sample(np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(300):
        cfg = get_space("bert").sample(rng)
        assert BertConfig.parse(cfg.to_dict()) == cfg
        seen.update((l.operation_type, l.operation_parameter) for l in cfg.layers)
        seen.add(("layers", cfg.num_layers))
        seen.add(("hidden", cfg.hidden_size))
    assert len(seen) == 6 + 2 + 2


def test_canonical_hash_tells_fields_apart():
    cfg = BertConfig.parse(NESTED)
    assert cfg.canonical_hash() == BertConfig.parse(json.loads(json.dumps(NESTED))).canonical_hash()
    variants = [_with_layer(0, operation_parameter="SDP"), _with_layer(0, num_operation_heads=2),
                _with_layer(1, operation_parameter=5), _with_layer(1, feed_forward_dimension=1024),
                {**NESTED, "hidden_size": 128}]
    hashes = {BertConfig.parse(v).canonical_hash() for v in variants}
    assert len(hashes) == len(variants) and cfg.canonical_hash() not in hashes
    # what was trained ignores the operation, and the width of a 1-deep feed-forward stack
    assert (BertConfig.parse(_with_layer(1, operation_type="LT", operation_parameter="DFT")).canonical_hash(as_trained=True)
            == cfg.canonical_hash(as_trained=True))
    assert (BertConfig.parse(_with_layer(1, feed_forward_dimension=1024)).canonical_hash(as_trained=True)
            == cfg.canonical_hash(as_trained=True))
    assert (BertConfig.parse(_with_layer(0, feed_forward_dimension=512)).canonical_hash(as_trained=True)
            != cfg.canonical_hash(as_trained=True))


def test_space_size_matches_the_authors_count():
    assert space_size() == 10_621_440


def test_every_benchmark_config_round_trips():
    if not BENCHMARK.is_file():
        pytest.skip(f"BERT benchmark data not found at {BENCHMARK} (set NNI_ZEROCOST_DATA)")
    records = json.loads(BENCHMARK.read_text())
    space = get_space("bert")
    hashes = set()
    for rec in records:
        raw = rec["hparams"]["model_hparam_overrides"]
        cfg = space.parse(raw)
        assert space.to_dict(cfg) == raw
        assert space.parse(cfg.to_flat()) == cfg
        hashes.add(space.arch_hash(cfg))
    assert len(records) == 500
    assert len(hashes) == len({json.dumps(r["hparams"]["model_hparam_overrides"], sort_keys=True) for r in records}) == 491
