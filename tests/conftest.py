import os
from pathlib import Path

import pytest
import torch

# one thread: tests assert numbers, not speed, and tiny tensors suffer badly from OpenMP
# oversubscription when the machine is busy
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    env = os.environ.get("NNI_ZEROCOST_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


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


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path, monkeypatch):
    """Never touch the user's ~/.cache store from tests."""
    monkeypatch.setenv("NNI_ZEROCOST_STORE", str(tmp_path / "store.jsonl"))


RNN = {"f": {"op": "linear", "input": ["x", "h_prev_0"]}, "h_new_0": {"op": "activation_tanh", "input": ["f"]}}
LSTM = {
    "i": {"op": "linear", "input": ["x", "h_prev_0"]}, "i_act": {"op": "activation_tanh", "input": ["i"]},
    "j": {"op": "linear", "input": ["x", "h_prev_0"]}, "j_act": {"op": "activation_sigm", "input": ["j"]},
    "f": {"op": "linear", "input": ["x", "h_prev_0"]}, "f_act": {"op": "activation_sigm", "input": ["f"]},
    "o": {"op": "linear", "input": ["x", "h_prev_0"]}, "o_act": {"op": "activation_tanh", "input": ["o"]},
    "h_new_1_part1": {"op": "elementwise_prod", "input": ["f_act", "h_prev_1"]},
    "h_new_1_part2": {"op": "elementwise_prod", "input": ["i_act", "j_act"]},
    "h_new_1": {"op": "elementwise_sum", "input": ["h_new_1_part1", "h_new_1_part2"]},
    "h_new_1_act": {"op": "activation_tanh", "input": ["h_new_1"]},
    "h_new_0": {"op": "elementwise_prod", "input": ["h_new_1_act", "o_act"]},
}
GRU = {
    "r": {"op": "linear", "input": ["x", "h_prev_0"]}, "r_act": {"op": "activation_sigm", "input": ["r"]},
    "z": {"op": "linear", "input": ["x", "h_prev_0"]}, "z_act": {"op": "activation_sigm", "input": ["z"]},
    "rh": {"op": "elementwise_prod", "input": ["r_act", "h_prev_0"]},
    "h_tilde": {"op": "linear", "input": ["x", "rh"]}, "h_tilde_act": {"op": "activation_tanh", "input": ["h_tilde"]},
    "h_new_0": {"op": "blend", "input": ["z_act", "h_prev_0", "h_tilde_act"]},
}
