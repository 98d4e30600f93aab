import json

import numpy as np

import pytest

from nni_zerocost.errors import InvalidArchitectureError
from nni_zerocost.spaces.rnn.cell import Cell

from conftest import GRU, LSTM, RNN


def test_parse_dict_and_official_json_string_agree():
    a = Cell.parse(LSTM)
    b = Cell.parse(json.dumps(LSTM))
    assert a == b
    assert a.hidden_tuple_size == 2
    assert a.to_recipe() == LSTM
    assert list(a.to_recipe()) == list(LSTM)  # key order kept (compat init depends on it)
    assert a.n_linear == 4


@pytest.mark.parametrize(
    "recipe, node, fragment",
    [
        ({"h_new_0": {"op": "conv", "input": ["x"]}}, "h_new_0", "unknown op 'conv'"),
        ({"h_new_0": {"op": "blend", "input": ["h_prev_0", "h_prev_0"]}}, "h_new_0", "exactly 3 input"),
        ({"h_new_0": {"op": "activation_tanh", "input": ["h_prev_0", "x"]}}, "h_new_0", "exactly 1 input"),
        ({"h_new_0": {"op": "elementwise_sum", "input": ["h_prev_0"]}}, "h_new_0", "at least 2 input"),
        ({"h_new_0": {"op": "activation_tanh", "input": ["ghost"]}}, "h_new_0", "input 'ghost' is not defined"),
        ({"h_new_0": {"op": "activation_tanh", "input": ["h_prev_1"]}}, "h_new_0", "state that does not exist"),
        ({"a": {"op": "activation_tanh", "input": ["b"]}, "b": {"op": "activation_tanh", "input": ["a"]},
          "h_new_0": {"op": "activation_tanh", "input": ["a"]}}, "a", "cycle"),
        ({"h_new_0": {"op": "activation_tanh", "input": ["h_new_0"]}}, "h_new_0", "cycle"),
        ({"f": {"op": "linear", "input": ["x"]}}, None, "no output node 'h_new_0'"),
        ({"h_new_0": {"op": "linear", "input": ["x"]}, "h_new_2": {"op": "linear", "input": ["x"]}}, "h_new_2", "missing h_new_1"),
        ({"h_new_0": {"op": "linear", "input": ["x"]}, "dead": {"op": "linear", "input": ["x"]}}, "dead", "does not reach any output"),
        ({"x": {"op": "linear", "input": ["h_prev_0"]}, "h_new_0": {"op": "linear", "input": ["x"]}}, "x", "reserved"),
        ({"h_new_0": {"op": "linear"}}, "h_new_0", "lacks ['input']"),
        ({"h_new_0": {"op": "linear", "input": "x"}}, "h_new_0", "must be a list"),
        ({"h_new_0": {"op": "linear", "input": [3]}}, "h_new_0", "strings"),
        ({"h_new_0": ["linear", "x"]}, "h_new_0", "must be a dict"),
        ({"h_new_0": {"op": "elementwise_sum", "input": ["x", "h_prev_0"]}}, "h_new_0", "cannot read 'x'"),
    ],
)
def test_invalid_cells_name_node_and_problem(recipe, node, fragment):
    with pytest.raises(InvalidArchitectureError) as ei:
        Cell.parse(recipe)
    assert ei.value.node == node
    assert fragment in str(ei.value)
    assert isinstance(ei.value, ValueError)


@pytest.mark.parametrize("bad", [{}, [], 3, None, "not json {", '["a list"]'])
def test_invalid_top_level(bad):
    with pytest.raises(InvalidArchitectureError):
        Cell.parse(bad)


def _renamed(recipe, mapping):
    return {mapping.get(k, k): {"op": v["op"], "input": [mapping.get(s, s) for s in v["input"]]} for k, v in recipe.items()}


def test_canonical_hash_ignores_names_order_and_commutative_input_order():
    h = Cell.parse(LSTM).canonical_hash()
    renamed = _renamed(LSTM, {"i": "q1", "i_act": "q2", "o": "zz"})
    assert Cell.parse(renamed).canonical_hash() == h
    reordered = dict(reversed(list(LSTM.items())))
    assert Cell.parse(reordered).canonical_hash() == h
    swapped = json.loads(json.dumps(LSTM))
    swapped["h_new_1_part2"]["input"].reverse()  # product is commutative
    swapped["i"]["input"].reverse()  # linear: independent weights per input
    assert Cell.parse(swapped).canonical_hash() == h


def test_canonical_hash_separates_different_functions():
    gru = Cell.parse(GRU).canonical_hash()
    blend_swapped = json.loads(json.dumps(GRU))
    blend_swapped["h_new_0"]["input"] = ["z_act", "h_tilde_act", "h_prev_0"]  # blend is ordered
    assert Cell.parse(blend_swapped).canonical_hash() != gru
    shared = {"a": {"op": "linear", "input": ["x", "h_prev_0"]}, "h_new_0": {"op": "elementwise_prod", "input": ["a", "a"]}}
    twins = {"a": {"op": "linear", "input": ["x", "h_prev_0"]}, "b": {"op": "linear", "input": ["x", "h_prev_0"]},
             "h_new_0": {"op": "elementwise_prod", "input": ["a", "b"]}}
    assert Cell.parse(shared).canonical_hash() != Cell.parse(twins).canonical_hash()
    assert Cell.parse(RNN).canonical_hash() != gru


def test_canonical_hash_finds_isomorphic_duplicates_in_the_benchmark(nlp_entries):
    by_id = {e.arch_id: e.arch.canonical_hash() for e in nlp_entries}
    # the table removed exact duplicates only: the handcrafted RNN (0) and regenerated cells
    # that differ by node names or linear input order (3, 63) are the same function family
    assert by_id[0] == by_id[3] == by_id[63]
    assert by_id[1] != by_id[0]
    assert len(set(by_id.values())) == 3776  # of 4,322 recipes


# -- recurrence degree (divergence risk) -------------------------------------------------
LEAKY_RNN = {"f": {"op": "linear", "input": ["x", "h_prev_0"]}, "h_new_0": {"op": "activation_leaky_relu", "input": ["f"]}}
SQUARING = {
    "a": {"op": "linear", "input": ["x", "h_prev_0"]},
    "b": {"op": "linear", "input": ["h_prev_0"]},
    "h_new_0": {"op": "elementwise_prod", "input": ["a", "b"]},
}
GATED_SQUARE = {  # an unbounded gate times an unbounded value: degree 1 + 1
    "z": {"op": "linear", "input": ["x", "h_prev_0"]},
    "a": {"op": "linear", "input": ["h_prev_0"]},
    "b": {"op": "linear", "input": ["x"]},
    "h_new_0": {"op": "blend", "input": ["z", "a", "b"]},
}


@pytest.mark.parametrize("recipe, degree", [
    (RNN, 0), (LEAKY_RNN, 1), (LSTM, 1), (GRU, 1), (SQUARING, 2), (GATED_SQUARE, 2),
    ({**SQUARING, "h_new_0": {"op": "elementwise_prod", "input": ["a", "b", "a"]}}, 3),
    # squashing the product bounds the state again
    ({**SQUARING, "p": {"op": "elementwise_prod", "input": ["a", "b"]},
      "h_new_0": {"op": "activation_tanh", "input": ["p"]}}, 0),
])
def test_recurrence_degree(recipe, degree):
    assert Cell.parse(recipe).recurrence_degree == degree


def test_bounded_state_feeding_a_product_does_not_raise_the_degree():
    # h_new_1 = tanh(...) is bounded, so h_prev_1 * h_prev_0 grows like h_prev_0 alone
    cell = Cell.parse({
        "t": {"op": "linear", "input": ["x", "h_prev_0"]}, "h_new_1": {"op": "activation_tanh", "input": ["t"]},
        "l": {"op": "linear", "input": ["x", "h_prev_0"]},
        "h_new_0": {"op": "elementwise_prod", "input": ["l", "h_prev_1"]},
    })
    assert cell.recurrence_degree == 1


def test_recurrence_degree_predicts_divergence_on_nasbench_nlp(nlp_entries):
    """The figures the docstring quotes: share of cells whose every PTB run diverged."""
    by_degree = {}
    for e in nlp_entries:
        d = min(e.arch.recurrence_degree, 2)
        by_degree.setdefault(d, []).append(e.truth["test_loss"] is None)
    share = {d: float(np.mean(v)) for d, v in by_degree.items()}
    assert share[0] == pytest.approx(0.0316, abs=0.001)
    assert share[1] == pytest.approx(0.1532, abs=0.001)
    assert share[2] == pytest.approx(0.7223, abs=0.001)
