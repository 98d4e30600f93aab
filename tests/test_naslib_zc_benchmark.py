"""NASLib zero-cost benchmark export: NASLib's own lookup finds our predictor's scores."""
import importlib.util
import json
import shlex

import pytest

if importlib.util.find_spec("naslib") is None:  # check first: enable() must not touch CI's process
    pytest.skip("NASLib is not installed (see README, section NASLib)", allow_module_level=True)
pytest.importorskip("naslib_ext.compat").enable()
pytest.importorskip("naslib")

from naslib_ext.predictors import ZeroCostProxyPredictor  # noqa: E402
from naslib_ext.search_spaces import Metric, NasBenchNLPSpace  # noqa: E402
from naslib_ext.zc_benchmark import zc_benchmark  # noqa: E402
from nni_zerocost.benchmarks.base import get_benchmark  # noqa: E402
from nni_zerocost.benchmarks.tables import precomputed  # noqa: E402
from nni_zerocost.cli import build_table  # noqa: E402
from nni_zerocost.cli import main  # noqa: E402


def test_naslib_reads_the_exported_scores_as_its_predictor_computes_them(tmp_path, data_dir):
    out = tmp_path / "r.jsonl"
    argv = ["score", "--space", "rnn", "--benchmark", "nasbench-nlp", "--proxy", "hidden_covariance", "--limit", "3",
            "--device", "cpu", "--data-dir", str(data_dir), "--out", str(out), "--no-store", "--no-progress"]
    assert main(argv) == 0
    build_table(out, "nni-zerocost " + " ".join(shlex.quote(a) for a in argv), "t", folder=tmp_path / "tables")
    zc = zc_benchmark("nasbench-nlp", [precomputed("nasbench-nlp", folder=tmp_path / "tables")], str(data_dir))
    path = tmp_path / "zc_nlp.json"
    path.write_text(json.dumps(zc))
    zc_api = json.loads(path.read_text())["ptb"]  # what NASLib's get_zc_benchmark_api("nlp", "ptb") returns
    assert len(zc_api) == 3
    entries = {e.arch_id: e for e in get_benchmark("nasbench-nlp").load(data_dir)}
    predictor = ZeroCostProxyPredictor("hidden_covariance", device="cpu")
    api = {"data_dir": str(data_dir)}
    for rec in map(json.loads, out.read_text().splitlines()):
        g = NasBenchNLPSpace()
        g.set_core_arch(entries[rec["arch_id"]].arch)
        row = zc_api[str(g.get_hash())]  # NASLib's lookup
        assert row["hidden_covariance"]["score"] == predictor.query(g)
        assert row["hidden_covariance"]["time"] > 0
        assert row["val_accuracy"] == g.query(Metric.VAL_ACCURACY, dataset_api=api)
