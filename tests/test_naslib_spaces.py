"""NASLib search spaces made from the space plugins, on the NB-NLP / BERT tables (need NASLib Develop)."""
import importlib.util

import numpy as np
import pytest

if importlib.util.find_spec("naslib") is None:  # check first: enable() must not touch CI's process
    pytest.skip("NASLib is not installed (see README, section NASLib)", allow_module_level=True)
pytest.importorskip("naslib_ext.compat").enable()
pytest.importorskip("naslib")

from naslib.search_spaces.nasbenchnlp.conversions import (  # noqa: E402
    convert_compact_to_recipe,
    convert_recipe_to_compact,
)
from naslib.search_spaces.nasbenchnlp.graph import NasBenchNLPSearchSpace  # noqa: E402

from naslib_ext.search_spaces import Metric, NasBenchNLPSpace  # noqa: E402
from nni_zerocost.spaces.rnn.naslib_form import cell_from_compact, compact_from_cell, normalise_compact  # noqa: E402
from nni_zerocost.errors import InvalidArchitectureError  # noqa: E402
from nni_zerocost.spaces.rnn import Cell, RNNLanguageModel  # noqa: E402

from conftest import GRU, LSTM  # noqa: E402


@pytest.fixture
def api(data_dir):
    return {"data_dir": str(data_dir)}


def _space(spec, labeled=False):
    s = NasBenchNLPSpace()
    s.set_spec(spec)
    s.load_labeled = labeled
    return s


def _is_plain(compact):
    """Nested tuples of Python ints only."""
    edges, ops, hiddens = compact
    return all(type(v) is int for e in edges for v in e) and all(type(v) is int for v in ops + hiddens) \
        and all(type(p) is tuple for p in (edges, ops, hiddens)) and all(type(e) is tuple for e in edges)


# -- upstream bugs, shown and fixed ------------------------------------------------------------
def test_upstream_mutate_is_unhashable_ours_is_plain_and_hashable():
    np.random.seed(3)
    parent = _space(GRU)
    up_parent = NasBenchNLPSearchSpace()
    up_parent.set_compact(parent.get_compact())
    up_child = NasBenchNLPSearchSpace()
    up_child.mutate(up_parent)
    with pytest.raises(TypeError, match="unhashable"):
        hash(up_child.get_hash())

    for seed in range(20):
        np.random.seed(seed)
        child = parent.clone()
        child.mutate(parent)
        assert type(child) is NasBenchNLPSpace
        assert _is_plain(child.get_hash()) and hash(child.get_hash()) is not None
        assert child.get_hash() != parent.get_hash()  # never the parent itself
        assert child.core_arch() == cell_from_compact(child.get_hash())


def test_upstream_nbhd_loses_subclass_ours_keeps_it_and_drops_duplicates():
    parent = _space(LSTM)
    up = NasBenchNLPSearchSpace()
    up.set_compact(parent.get_compact())
    up_nbhd = up.get_nbhd()
    assert {type(n.arch) for n in up_nbhd} == {NasBenchNLPSearchSpace}
    with pytest.raises(TypeError, match="unhashable"):
        hash(up_nbhd[0].arch.get_hash())

    nbhd = parent.get_nbhd()
    hashes = [n.arch.get_hash() for n in nbhd]
    assert {type(n.arch) for n in nbhd} == {NasBenchNLPSpace}
    assert all(_is_plain(h) for h in hashes)
    assert len(set(hashes)) == len(hashes) and parent.get_hash() not in hashes
    # upstream lists the parent itself and duplicates; every valid distinct upstream move is kept
    up_valid = set()
    for n in up_nbhd:
        try:
            cell_from_compact(n.arch.compact)
        except InvalidArchitectureError:
            continue
        up_valid.add(compact_from_cell(cell_from_compact(n.arch.compact)))  # ours are canonical
    assert set(hashes) == up_valid - {parent.get_hash()}


def test_compact_keeps_which_node_is_which_output(nlp_entries):
    """NASLib's own round trip changes 750 benchmark cells; ours changes none, and its compact
    equals NASLib's for every cell NASLib converts faithfully."""
    naslib_changed = ours_equal_naslib = 0
    for e in nlp_entries:
        compact = compact_from_cell(e.arch)
        assert cell_from_compact(compact).canonical_hash() == e.arch.canonical_hash()
        assert compact_from_cell(cell_from_compact(compact)) == compact  # canonical: a fixed point
        up = convert_recipe_to_compact(e.arch.to_recipe())
        if Cell.parse(convert_compact_to_recipe(up)).canonical_hash() != e.arch.canonical_hash():
            naslib_changed += 1
        else:
            ours_equal_naslib += up == compact
    assert naslib_changed == 750
    assert ours_equal_naslib == len(nlp_entries) - 750


def test_compact_rejects_bad_input_with_a_clear_error():
    edges, ops, hiddens = compact_from_cell(GRU)
    with pytest.raises(InvalidArchitectureError, match="op code"):
        cell_from_compact((edges, ops[:-1] + (9,), hiddens))
    with pytest.raises(InvalidArchitectureError, match="outside"):
        cell_from_compact((edges + ((40, 5),), ops, hiddens))
    with pytest.raises(InvalidArchitectureError, match="compact"):
        normalise_compact("not a compact")


# -- queries from our table ----------------------------------------------------------------------
def test_query_answers_from_the_table(nlp_entries, api):
    e = next(x for x in nlp_entries if x.truth["test_loss"] is not None and len(x.arch.nodes) > 5)
    s = _space(e.arch)
    assert s.query(Metric.TEST_LOSS, dataset_api=api) == e.truth["test_loss"]
    assert s.query(Metric.VAL_ACCURACY, dataset_api=api) == pytest.approx(100 - e.truth["test_loss"])
    assert s.query(Metric.TEST_ACCURACY, dataset_api=api) == s.query(Metric.VAL_ACCURACY, dataset_api=api)
    assert s.query(Metric.PARAMETERS, dataset_api=api) == e.extra["n_params"]
    assert s.query(Metric.TRAIN_TIME, dataset_api=api) == 0.0
    with pytest.raises(NotImplementedError, match="learning curves"):
        s.query(Metric.VAL_ACCURACY, full_lc=True, dataset_api=api)
    # the same cell rebuilt from its compact (renamed nodes) is found through the canonical hash
    renamed = _space(s.get_compact())
    assert renamed.core_arch() != e.arch
    assert renamed.query(Metric.TEST_LOSS, dataset_api=api) == pytest.approx(e.truth["test_loss"])


def test_query_outside_the_table_says_what_to_do(api):
    from naslib_ext.search_spaces import benchmark_table

    cell = {"a": {"op": "linear", "input": ["x", "h_prev_0"]}, "b": {"op": "activation_tanh", "input": ["a"]},
            "c": {"op": "linear", "input": ["b", "x", "h_prev_0"]}, "d": {"op": "activation_sigm", "input": ["c"]},
            "e": {"op": "elementwise_prod", "input": ["b", "d"]},
            "h_new_0": {"op": "blend", "input": ["d", "e", "b"]}}
    assert benchmark_table("nasbench-nlp", api).truth(Cell.parse(cell)) is None
    with pytest.raises(LookupError, match="set_load_labeled"):
        _space(cell).query(Metric.VAL_ACCURACY, dataset_api=api)


def test_labeled_mode_stays_in_the_table(api):
    np.random.seed(0)
    s = NasBenchNLPSpace()
    s.set_load_labeled()
    s.sample_random_architecture(dataset_api=api)
    loss = s.query(Metric.TEST_LOSS, dataset_api=api)
    assert 3.0 < loss < 10.0
    child = s.clone()
    child.mutate(s, dataset_api=api)
    assert child.get_hash() != s.get_hash()
    assert np.isfinite(child.query(Metric.TEST_LOSS, dataset_api=api))
    nbhd = s.get_nbhd(dataset_api=api)
    assert len(nbhd) == NasBenchNLPSpace.LABELED_NEIGHBOURS
    assert all(type(n.arch) is NasBenchNLPSpace and n.arch.load_labeled for n in nbhd)
    assert all(np.isfinite(n.arch.query(Metric.TEST_LOSS, dataset_api=api)) for n in nbhd)
    assert s.get_hash() not in {n.arch.get_hash() for n in nbhd}


def test_unlabeled_sampling_is_seeded_by_numpy_and_valid():
    def draw(seed):
        np.random.seed(seed)
        s = NasBenchNLPSpace()
        s.sample_random_architecture()
        return s.get_hash()

    assert draw(5) == draw(5) and draw(5) != draw(6)


def test_builds_our_model_and_encodes_like_naslib():
    s = _space(LSTM)
    model = s.build_model(seed=1)
    assert isinstance(model, RNNLanguageModel) and model.cell.canonical_hash() == s.core_arch().canonical_hash()
    assert s.get_type() == "nlp"
    assert len(s.encode()) == 26 * 26 + 26 * 9  # NASLib one-hot adjacency with max_nodes 25


def test_fitness_predictor_travels_with_children():
    class Constant:
        def query(self, arch):
            return 42.0

    s = _space(GRU)
    s.set_fitness_predictor(Constant())
    child = s.clone()
    np.random.seed(0)
    child.mutate(s)
    assert child.query(Metric.VAL_ACCURACY) == 42.0
    assert all(n.arch.query(Metric.VAL_ACCURACY) == 42.0 for n in s.get_nbhd()[:3])


# -- BERT (needs the core BERT space and benchmark) ----------------------------------------------
@pytest.fixture(scope="module")
def bert():
    from nni_zerocost.errors import UnknownNameError
    from nni_zerocost.spaces import get_space

    try:
        get_space("bert")
    except UnknownNameError:
        pytest.skip("the core BERT space is not in this checkout")
    from naslib_ext.search_spaces import NasBenchBERTSpace

    return NasBenchBERTSpace


def test_bert_moves_change_exactly_one_choice(bert):
    np.random.seed(0)
    s = bert()
    s.sample_random_architecture()
    assert s.get_hash() == s.form.compact(s.core_arch())
    nbhd = s.get_nbhd()
    hashes = [n.arch.get_hash() for n in nbhd]
    assert len(set(hashes)) == len(hashes) and s.get_hash() not in hashes
    code = np.array(s.one_hot(s.get_hash()))
    for h in hashes:
        d = np.abs(np.array(s.one_hot(h)) - code).sum()
        assert d >= 2  # one choice changed: one option off, one on (a layer-count change adds more)
    child = s.clone()
    child.mutate(s)
    assert child.get_hash() in set(hashes)


def test_bert_query_answers_from_the_table(bert, data_dir):
    from naslib_ext.search_spaces import benchmark_table

    api = {"data_dir": str(data_dir)}
    table = benchmark_table(bert.benchmark_name, api)
    e = table.labeled[0]
    s = bert()
    s.set_spec(e.arch)
    assert s.query(Metric.VAL_ACCURACY, dataset_api=api) == pytest.approx(e.truth[table.benchmark.primary])
