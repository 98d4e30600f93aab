import gzip
import json
import math
import zipfile

import numpy as np
import pytest
from scipy import stats

from nni_zerocost.benchmarks.base import Entry, get_benchmark, list_benchmarks
from nni_zerocost.benchmarks.metrics import correlations
from nni_zerocost.spaces.rnn.benchmark import read_official_logs
from nni_zerocost.benchmarks.study import select_entries, study
from nni_zerocost.errors import DataError, UnknownNameError


def test_correlations_match_scipy_and_drop_non_finite():
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=50), rng.normal(size=50)
    t[:25] += 2 * s[:25]
    c = correlations(np.append(s, np.nan), np.append(t, 1.0))
    assert c["n"] == 50 and c["n_excluded"] == 1
    assert c["kendall_tau"] == pytest.approx(stats.kendalltau(s, t).statistic)
    assert c["spearman"] == pytest.approx(stats.spearmanr(s, t).statistic)
    assert c["pearson"] == pytest.approx(stats.pearsonr(s, t).statistic)
    assert correlations([1, 2, 3, 4], [4, 3, 2, 1])["kendall_tau"] == pytest.approx(-1.0)
    assert correlations([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], list(range(10)))["precision_at_k"] == 1.0
    assert math.isnan(correlations([1, 1, 1], [1, 2, 3])["kendall_tau"])


def test_nasbench_nlp_table(nlp_entries):
    assert len(nlp_entries) == 4322
    finite = [e for e in nlp_entries if e.truth["test_loss"] is not None]
    assert len(finite) == 3371
    runs = sum(sum(r is not None for r in e.runs) for e in finite)
    diverged = sum(sum(r is None for r in e.runs) for e in nlp_entries)
    assert (runs, diverged) == (10032, 2310)  # 12,342 official PTB runs, 18.7% diverged
    assert sum(1 for e in nlp_entries if e.extra["published"]) > 2900


def test_official_logs_from_folder_and_zip(data_dir, tmp_path):
    folder = data_dir / "nasbench_nlp" / "official_log_samples"
    entries = read_official_logs(folder)
    assert sum(len(e.runs) for e in entries) == 12
    z = tmp_path / "logs.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in folder.glob("*.json"):
            zf.write(f, f"train_logs/{f.name}")
    from_zip = read_official_logs(z)
    assert sorted(e.arch_id for e in from_zip) == sorted(e.arch_id for e in entries)
    assert sorted(r for e in from_zip for r in e.runs if r is not None) == sorted(r for e in entries for r in e.runs if r is not None)
    log = json.loads(next(folder.glob("*1000000_*.json")).read_text())
    rnn = [e for e in entries if 1000000 in e.extra["recipe_ids"]][0]
    assert rnn.runs[0] == pytest.approx(log["test_losses"][-1])


def test_corrupt_files_name_file_and_line(tmp_path):
    bad = tmp_path / "nasbench_nlp"
    bad.mkdir()
    with gzip.open(bad / "nasbench_nlp.jsonl.gz", "wt") as f:
        f.write(json.dumps({"arch_id": 0, "recipe": {"h_new_0": {"op": "linear", "input": ["x"]}}, "ptb_multi_runs": []}) + "\n")
        f.write('{"arch_id": 1, "recipe": \n')
    with pytest.raises(DataError, match=r"nasbench_nlp.jsonl.gz, line 2"):
        get_benchmark("nasbench-nlp").load(tmp_path)
    raw = (bad / "nasbench_nlp.jsonl.gz").read_bytes()
    (bad / "nasbench_nlp.jsonl.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        get_benchmark("nasbench-nlp").load(tmp_path)
    with pytest.raises(DataError, match="not found"):
        get_benchmark("nasbench-nlp").load(tmp_path / "nowhere")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "log_stats_model_1_x.json").write_text('{"recepie": "{"}')
    with pytest.raises(DataError, match="log_stats_model_1_x.json"):
        read_official_logs(tmp_path / "logs")


def test_unknown_benchmark_lists_valid_names():
    with pytest.raises(UnknownNameError, match="nasbench-nlp"):
        get_benchmark("nasbench-101")
    assert "nasbench-nlp" in list_benchmarks()


def test_study_per_run_and_per_arch():
    bench = get_benchmark("nasbench-nlp")
    entries = [Entry(i, None, {"test_loss": 5.0 - i}, [5.0 - i, 5.1 - i, None]) for i in range(6)]
    # normalised scores (higher = better), as the runner's records hold them; q is a
    # lower-is-better proxy whose raw values were 1, 0, 3, 2, 5
    scores = {"p": [float(i) for i in range(6)], "q": [None, -1.0, -0.0, -3.0, -2.0, -5.0]}
    # q's first architecture has no score (its flag says why), its second a flagged fallback value
    res = study(bench, entries, scores, {"p": [0.1] * 6, "q": [0.2] * 6},
                {"p": [False] * 6, "q": [True, True] + [False] * 4})
    assert res["n_runs"] == 12 and res["n_runs_diverged_excluded"] == 6
    p = res["proxies"]["p"]
    assert p["per_arch"]["kendall_tau"] == pytest.approx(-1.0)  # higher score, lower loss
    assert p["n_runs_used"] == 12
    q = res["proxies"]["q"]
    # counted as the table and the figures count: flagged = scored with a flagged value; no score apart
    assert q["n_flagged"] == 1 and q["n_excluded"] == 1 and q["per_arch"]["n"] == 5
    assert q["per_arch"]["kendall_tau"] > 0  # study takes the orientation as given, never re-derives it


def test_select_entries_reproducible(nlp_entries):
    bench = get_benchmark("nasbench-nlp")
    a = select_entries(nlp_entries, bench, 20, 0)
    assert [e.arch_id for e in a] == [e.arch_id for e in select_entries(nlp_entries, bench, 20, 0)]
    assert [e.arch_id for e in a] != [e.arch_id for e in select_entries(nlp_entries, bench, 20, 1)]
    assert all(e.truth["test_loss"] is not None for e in a)
    assert [e.arch_id for e in select_entries(nlp_entries, bench, 5, 0)] == [e.arch_id for e in a[:5]]  # prefix
