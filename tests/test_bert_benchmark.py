"""The nasbench-bert loader: counts, truth, groups, published scores, and clear errors on bad files."""
import json
import shutil

import pytest

from nni_zerocost.benchmarks.base import get_benchmark, list_benchmarks
from nni_zerocost.spaces.bert.benchmark import PUBLISHED_COLUMNS, TASKS
from nni_zerocost.data import data_dir
from nni_zerocost.errors import DataError
from nni_zerocost.proxies.base import get_proxy, parse_proxy_spec  # noqa: F401

FOLDER = data_dir() / "training_free_nas"
needs_data = pytest.mark.skipif(not (FOLDER / "BERT_benchmark.json").is_file(),
                                reason=f"BERT benchmark data not found in {FOLDER} (set NNI_ZEROCOST_DATA)")


def test_registration():
    bench = get_benchmark("nasbench-bert")
    assert "nasbench-bert" in list_benchmarks()
    assert (bench.space, bench.primary, bench.primary_higher_is_better) == ("bert", "glue", True)
    for spec in PUBLISHED_COLUMNS:  # every published column maps to a valid proxy spec
        name, opts = parse_proxy_spec(spec)
        assert set(opts) <= set(get_proxy(name).defaults), spec


@needs_data
def test_loads_the_500_architectures():
    entries = get_benchmark("nasbench-bert").load(data_dir())
    assert len(entries) == 500
    assert len({e.arch_id for e in entries}) == 500
    assert len({e.arch.canonical_hash() for e in entries}) == 491
    groups = {}
    for e in entries:
        groups[e.group] = groups.get(e.group, 0) + 1
        assert e.group == (e.arch.hidden_size, e.arch.num_layers)
        assert e.truth["glue"] == pytest.approx(sum(e.truth[t] for t in TASKS) / 8, abs=1e-6)
    assert groups == {(128, 2): 123, (128, 4): 128, (256, 2): 116, (256, 4): 133}
    first = entries[0]
    assert first.arch_id == 0 and first.truth["glue"] == pytest.approx(74.73375)
    assert first.extra["published"]["Number of Parameters"] == 13330176
    assert all(len(e.extra["published"]) == 15 for e in entries)


def _copy(tmp_path):
    folder = tmp_path / "training_free_nas"
    folder.mkdir()
    return folder


def _records():
    return json.loads((FOLDER / "BERT_benchmark.json").read_text())[:3]


def test_missing_table_says_where_to_get_it(tmp_path):
    with pytest.raises(DataError, match="not found") as err:
        get_benchmark("nasbench-bert").load(tmp_path)
    assert err.value.path.endswith("BERT_benchmark.json") and "NNI_ZEROCOST_DATA" in str(err.value)


@needs_data
def test_truncated_json_is_a_data_error(tmp_path):
    folder = _copy(tmp_path)
    text = (FOLDER / "BERT_benchmark.json").read_text()
    (folder / "BERT_benchmark.json").write_text(text[: len(text) // 2])
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        get_benchmark("nasbench-bert").load(tmp_path)
    assert err.value.line is not None


@needs_data
@pytest.mark.parametrize("breakage, words", [
    (lambda r: r[1]["hparams"]["model_hparam_overrides"]["nas_config"]["encoder_layers"][0].update(operation_type="RNN"),
     "record 1 (id 1)"),
    (lambda r: r[2].pop("scores"), "record 2"),
    (lambda r: r[2].update(id=0), "duplicate id 0"),
    (lambda r: r[0]["scores"].update(glue="n/a"), "record 0"),
])
def test_bad_records_name_the_record(tmp_path, breakage, words):
    folder = _copy(tmp_path)
    records = _records()
    breakage(records)
    (folder / "BERT_benchmark.json").write_text(json.dumps(records))
    with pytest.raises(DataError, match=words.replace("(", r"\(").replace(")", r"\)")):
        get_benchmark("nasbench-bert").load(tmp_path)


def test_not_a_list_is_a_data_error(tmp_path):
    folder = _copy(tmp_path)
    (folder / "BERT_benchmark.json").write_text('{"id": 0}')
    with pytest.raises(DataError, match="JSON list"):
        get_benchmark("nasbench-bert").load(tmp_path)


@needs_data
def test_published_scores_are_optional_and_checked(tmp_path):
    folder = _copy(tmp_path)
    (folder / "BERT_benchmark.json").write_text(json.dumps(_records()))
    entries = get_benchmark("nasbench-bert").load(tmp_path)
    assert len(entries) == 3 and entries[0].extra["published"] == {}
    shutil.copy(FOLDER / "BERT_results_activation.csv", folder)
    assert get_benchmark("nasbench-bert").load(tmp_path)[0].extra["published"]["Head Confidence"] > 0
    with open(folder / "BERT_results_activation.csv", "a") as f:
        f.write("x,1,2\n")
    with pytest.raises(DataError, match="published") as err:
        get_benchmark("nasbench-bert").load(tmp_path)
    assert err.value.line == 502
