import os
from pathlib import Path

import pytest
import torch

# one thread, pinned (the package's thread policy would otherwise follow the machine's load):
# tests assert numbers, not speed, and subprocesses (CLI, NNI trials, workers) inherit the pin.
# numpy's and scipy's BLAS pools too: a score computed through the runner (which limits them to
# the pinned count) and one computed by a bare call in this process then round alike
os.environ.setdefault("NNI_ZEROCOST_THREADS", "1")
torch.set_num_threads(1)
_BLAS_LIMITS = __import__("threadpoolctl").threadpool_limits(limits=1)

REPO = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    env = os.environ.get("NNI_ZEROCOST_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def run_items(plan, items, store=None, *, progress=False, **fields):
    """The runner's records for ``(id, architecture)`` items under a plan's request: the job a
    front end would build (``fields``: ``workers``, ``threads``, ``ray``, ...; ``store``: a
    :class:`~nni_zerocost.store.ResultStore` or a path)."""
    from nni_zerocost.job import ScoringJob, check_job
    from nni_zerocost.runner import run

    path = None if store is None else str(getattr(store, "path", store))
    archs = tuple((i, a if isinstance(a, (dict, str, list)) else plan.to_dict(a)) for i, a in items)
    fields.setdefault("workers", 1)  # as given, not the policy's "auto"
    job = ScoringJob(plan.scoring_request, architectures=archs, store=path, **fields)
    return list(run(check_job(job), progress=progress))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = _data_dir()
    if not (d / "nasbench_nlp").is_dir():
        pytest.skip(f"reference data not found at {d} (set NNI_ZEROCOST_DATA to the shared/data folder)")
    return d


@pytest.fixture(scope="session")
def ptb_dir(data_dir) -> Path:
    d = data_dir / "ptb"
    if not (d / "ptb.test.txt").is_file():
        pytest.skip(f"PTB text not found in {d}")
    return d


@pytest.fixture(scope="session")
def nlp_entries(data_dir):
    from nni_zerocost.benchmarks.base import get_benchmark

    return get_benchmark("nasbench-nlp").load(data_dir)


# NNI_ZEROCOST_REQUIRE_NASLIB=1 (CI's NASLib run): a NASLib test (tests/test_naslib_*.py) that
# skips -- NASLib missing, data missing, anything -- fails instead, so CI cannot pass without
# having run them.  Without it they skip where NASLib is not installed, as a user's clone wants.
REQUIRE_NASLIB = os.environ.get("NNI_ZEROCOST_REQUIRE_NASLIB") == "1"


def _skip_is_failure(path, report) -> bool:
    return REQUIRE_NASLIB and report.skipped and not hasattr(report, "wasxfail") \
        and Path(str(path)).name.startswith("test_naslib_")


def _fail_instead(report) -> None:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped, but NNI_ZEROCOST_REQUIRE_NASLIB=1 requires every NASLib test to run: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    report = (yield).get_result()
    if _skip_is_failure(collector.path, report):
        _fail_instead(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if _skip_is_failure(item.path, report):
        _fail_instead(report)


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path, monkeypatch):
    """Never touch the user's ~/.cache store from tests."""
    monkeypatch.setenv("NNI_ZEROCOST_STORE", str(tmp_path / "store.jsonl"))


# the handcrafted cells of NAS-Bench-NLP's official list, as the package defines them
import copy  # noqa: E402

from nni_zerocost.spaces.rnn.generator import HANDCRAFTED  # noqa: E402

RNN, LSTM, GRU = (copy.deepcopy(HANDCRAFTED[k]) for k in ("rnn", "lstm", "gru"))  # tests may edit their copies
