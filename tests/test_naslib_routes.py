"""NASLib's own routes on our spaces: its zero-cost runners end to end, its look-ups, sampling."""
import importlib.util
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

if importlib.util.find_spec("naslib") is None:  # check first: enable() must not touch CI's process
    pytest.skip("NASLib is not installed (see README, section NASLib)", allow_module_level=True)
import naslib_ext  # noqa: E402

naslib_ext.enable()

import naslib  # noqa: E402
from naslib.search_spaces.nasbenchnlp.encodings import encode_adj  # noqa: E402

from naslib_ext.predictors import NO_DATA, ZeroCostProxyPredictor  # noqa: E402
from naslib_ext.search_spaces import Metric, naslib_space  # noqa: E402
from naslib_ext.zc_benchmark import ZeroCostTable, shipped_zc_api  # noqa: E402
from nni_zerocost.errors import BadInputError  # noqa: E402
from nni_zerocost.reproducibility import REL_TOL  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NASLIB = Path(naslib.__file__).resolve().parents[1]


def test_enable_is_idempotent_and_routes_only_our_names():
    from naslib.predictors.utils import encodings
    from naslib.search_spaces import get_search_space, supported_search_spaces
    from naslib.utils import get_dataset_api, get_train_val_loaders

    assert naslib_ext.enable() == frozenset()
    g = get_search_space("nlp", "ptb")
    assert type(g) is naslib_space("rnn") and g.get_type() == "nlp" and supported_search_spaces["bert"] is \
        naslib_space("bert")
    assert get_dataset_api("nlp", "ptb")["data_dir"] is None  # no NASLib data file needed
    assert get_dataset_api("test", None) is None  # NASLib's own names go to NASLib
    cfg = type("Cfg", (), {"search_space": "bert", "dataset": "glue"})()
    loaders = get_train_val_loaders(cfg)
    (inputs, targets), = list(loaders[0])
    assert (inputs == NO_DATA).all() and loaders[3:] == (None, None)
    np.random.seed(1)
    g.sample_random_architecture()
    # NB-NLP is encoded with NASLib's own NB-NLP one-hot encoding
    assert encodings.encode_spec(g.get_hash(), ss_type="nlp") == encode_adj(g.get_hash(), max_nodes=25, one_hot=True)
    with pytest.raises(NotImplementedError):
        encodings.encode_spec((0, 1), ss_type="no_such_space")  # NASLib's own error, unchanged


def test_sampling_honours_labeled_archs_and_sample_without_replacement():
    pool = [e for e in shipped_zc_api("rnn")][:600]
    g = naslib_space("rnn")()
    g.labeled_archs = [eval(k) for k in pool]
    random.seed(0)
    drawn = [str(g.sample_random_architecture(load_labeled=True)) for _ in range(50)]
    assert set(drawn) <= set(pool) and len(g.labeled_archs) == 600  # with replacement: pool untouched
    g.sample_without_replacement = True
    drawn = [str(g.sample_random_architecture(load_labeled=True)) for _ in range(600)]
    assert sorted(drawn) == sorted(pool) and g.labeled_archs == []  # every one once
    with pytest.raises(ValueError, match="every architecture of labeled_archs has been drawn"):
        g.sample_random_architecture(load_labeled=True)


def test_zero_cost_table_scores_what_it_lacks_and_names_what_it_holds():
    table = shipped_zc_api("rnn")
    key = next(iter(table))
    entry = dict(table[key])
    del table[key]
    table.meta = dict(table.meta, columns={c: v for c, v in table.meta["columns"].items() if c == "hidden_covariance"})
    table.columns = ["hidden_covariance"]
    fresh = table[key]  # scored on the fly with the column's own request
    # the table was computed on another machine: equal up to rounding (nni_zerocost.reproducibility)
    assert fresh["hidden_covariance"]["score"] == pytest.approx(entry["hidden_covariance"]["score"], rel=REL_TOL)
    g = naslib_space("rnn")()
    g.set_spec(key)
    assert fresh["val_accuracy"] == g.query(Metric.VAL_ACCURACY)  # pooled over isomorphic cells, as query does
    assert fresh["hidden_covariance"]["score"] == ZeroCostProxyPredictor("hidden_covariance").query(g)
    with pytest.raises(BadInputError, match="'jacov' not in the zero-cost table .* it holds: hidden_covariance$"):
        table.check_names(["hidden_covariance", "jacov"])
    assert isinstance(table, ZeroCostTable) and isinstance(table, dict)


def _run_runner(tmp_path, runner, data_dir, **config):
    cfg = {"config_type": "zc_example", "out_dir": str(tmp_path / "run"), "seed": 0, "batch_size": 32,
           "train_portion": 0.7, "cutout": False, "cutout_length": 16, "cutout_prob": 1.0, **config}
    cfg["search"] = {k: cfg[k] for k in ("seed", "batch_size", "train_portion")}
    path = tmp_path / "zc.yaml"
    path.write_text(json.dumps(cfg))  # YAML is a superset of JSON
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(NASLIB), os.environ.get("PYTHONPATH", "")]),
               NNI_ZEROCOST_DATA=str(data_dir))
    p = subprocess.run([sys.executable, "-m", "naslib_ext.run", str(NASLIB / "naslib" / "runners" / "zc" / runner),
                        "--config-file", str(path)], capture_output=True, text=True, env=env, timeout=600,
                       cwd=tmp_path)
    save = tmp_path / "run" / "zc_example" / cfg["search_space"] / cfg["dataset"] / cfg["predictor"] / "0"
    return p, save


def test_naslib_xgb_zero_cost_runner_end_to_end(tmp_path, data_dir):
    names = ["hidden_covariance", "params"]
    p, save = _run_runner(tmp_path, "bbo/xgb_runner.py", data_dir, search_space="nlp", dataset="ptb",
                          predictor="xgb", train_size=15, test_size=40, zc_ensemble=True, zc_only=False,
                          zc_names=names)
    assert p.returncode == 0, p.stderr[-3000:]
    n = len(shipped_zc_api("rnn"))
    # train and test drawn without replacement from the table's keys: 15 + 40 distinct
    assert f"len labeled_archs after drawing train samples {n - 15}" in p.stdout
    assert f"len labeled_archs after drawing test samples {n - 55}" in p.stdout
    config, scores = json.loads((save / "scores.json").read_text())
    assert -1 <= scores["kendalltau"] <= 1 and np.isfinite(scores["spearman"])
    assert sorted(scores["zc_feature_importances"]) == names
    assert sum(scores["zc_feature_importances"].values()) > 0  # XGBoost used the zero-cost columns


def test_naslib_single_proxy_runner_end_to_end_and_bad_zc_name(tmp_path, data_dir):
    p, save = _run_runner(tmp_path, "runner.py", data_dir, search_space="bert", dataset="glue",
                          predictor="params", train_size=5, test_size=60)
    assert p.returncode == 0, p.stderr[-3000:]
    config, scores = json.loads((save / "scores.json").read_text())
    table = shipped_zc_api("bert")
    # its figures are those of the table's own column against the benchmark
    assert 0.0 < scores["kendalltau"] <= 1 and scores["query_time"] >= 0
    assert len(scores["full_ytest"]) == 60 and set(scores["full_ytest"]) <= {e["val_accuracy"] for e in table.values()}

    p, _ = _run_runner(tmp_path, "runner.py", data_dir, search_space="bert", dataset="glue",
                       predictor="jacov", train_size=5, test_size=10)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("python -m naslib_ext.run: error: predictor: 'jacov' not in the zero-cost table")
    assert last.endswith("it holds: " + ", ".join(table.columns))


def test_predictor_evaluator_on_the_bert_space(data_dir, tmp_path, monkeypatch):
    from fvcore.common.config import CfgNode
    from naslib.defaults.predictor_evaluator import PredictorEvaluator
    from scipy import stats

    monkeypatch.setenv("NNI_ZEROCOST_DATA", str(data_dir))
    np.random.seed(0)
    cfg = CfgNode(dict(experiment_type="single", test_size=12, train_size_single=2, train_size_list=[2],
                       fidelity_single=5, fidelity_list=[5], max_hpo_time=0, dataset="glue",
                       uniform_random=True, save=str(tmp_path)))
    ev = PredictorEvaluator(ZeroCostProxyPredictor("params", space="bert"), config=cfg)
    ev.adapt_search_space(naslib_space("bert")(), load_labeled=True)
    res = ev.evaluate()[-1]
    y, pred = np.array(res["full_ytest"]), np.array(res["full_testpred"])
    assert len(y) == 12 and np.all((50 < y) & (y < 90))  # GLUE scores
    assert res["spearman"] == pytest.approx(stats.spearmanr(y, pred).statistic)
    g = naslib_space("bert")()
    g.load_labeled_architecture()
    assert g.query(Metric.VAL_ACCURACY) == g.query(Metric.TEST_ACCURACY)
