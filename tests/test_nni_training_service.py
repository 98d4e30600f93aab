"""The training-service route: the example configs for NNI's remote and Kubernetes services,
and the HPO trial entry point run the way those services run it.

NNI 3.0 starts a trial as a process with its trial environment and one of two trial command
channels (``nni.runtime.trial_command_channel``):

* ``legacy``: no ``NNI_TRIAL_COMMAND_CHANNEL``; the parameter is ``$NNI_SYS_DIR/parameter.cfg``
  and, on any platform but ``local``, metrics are ``NNISDK_MEb'...'`` lines on stdout, which
  NNI's trial runner forwards.  This is what a trial on the Kubeflow / FrameworkController
  services (and remote machines with ``reuseMode: true``) sees; the environment here is the one
  ``nni.tools.trial_tool.trial_runner`` and its ``Trial`` set up.
* ``http``: ``NNI_TRIAL_COMMAND_CHANNEL`` = the URL of NNI's trial keeper (remote machines with
  NNI 3.0's default ``reuseMode: false``, and the local service); the trial PUTs
  ``request_parameter`` and ``metric`` commands and GETs its parameter.  A small server on
  127.0.0.1 stands in for the keeper.

The parameters are real ones: a sample of the space's NNI search space drawn by NNI's own
Random tuner, and the parameter set :class:`ZeroCostTuner` hands out (with its ``_zerocost``
scoring request).  The reported metric must be the core's, number for number.
"""
import json
import os
import queue
import re
import shlex
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

nni = pytest.importorskip("nni")
yaml = pytest.importorskip("yaml")  # installed with NNI

from nni.experiment.config import ExperimentConfig  # noqa: E402
from nni.experiment.config import utils as config_utils  # noqa: E402

import nni_zerocost as nz  # noqa: E402
from nni_zerocost.nas.codec import get_codec, search_space_json  # noqa: E402
from nni_zerocost.nas.evaluator import proxy_metrics  # noqa: E402
from nni_zerocost.nas.trial import build_parser, resolve_request  # noqa: E402
from nni_zerocost.nas.tuner import SETTINGS_KEY, ZeroCostTuner, builtin_tuner  # noqa: E402
from nni_zerocost.reproducibility import agree  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
TRIAL_MODULE = "nni_zerocost.nas.trial"
#: a trial process pays the imports of torch, NNI and the package (several seconds on a busy
#: machine), then scores one small cell; this bounds each subprocess
TRIAL_TIMEOUT = 90
#: bit-identical scores across processes need the same threading in both (conftest: 1 thread)
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
NNI_TRIAL_VARS = ("NNI_PLATFORM", "NNI_EXP_ID", "NNI_TRIAL_JOB_ID", "NNI_SYS_DIR", "NNI_OUTPUT_DIR",
                  "NNI_TRIAL_COMMAND_CHANNEL", "NNI_TRIAL_SEQ_ID", "NNI_CODE_DIR", "MULTI_PHASE", "REUSE_MODE")


@pytest.fixture(scope="module", autouse=True)
def single_threaded():
    """One BLAS thread here too (conftest sets torch's): the covariance eigenvalues come from
    NumPy's LAPACK, whose threaded sums round differently from the trial's single thread."""
    threadpoolctl = pytest.importorskip("threadpoolctl")  # installed with NNI (scikit-learn)
    with threadpoolctl.threadpool_limits(1):
        yield


# -- the example configs, checked with NNI's own config classes -----------------------------
# ExperimentConfig.load rejects unknown fields (a typo fails here); canonical_copy() runs NNI's
# own validation.  Nothing of it contacts a host or a cluster: the only local facts it checks are
# that the SSH key file exists (a stand-in file here) and that the code directory is a folder.
# Whether the hosts, the SSH login, the cluster, its operator and the NFS share work can only be
# seen by `nnictl create` against them.
CONFIGS = {"nni_remote.yml": "remote", "nni_kubernetes.yml": "kubeflow"}


def _load_canonical(path: Path, tmp_path: Path) -> ExperimentConfig:
    config = ExperimentConfig.load(path)
    key = tmp_path / "id_stand_in"
    key.write_text("not a key: NNI's validation only checks that the file exists\n")
    for machine in getattr(config.training_service, "machine_list", None) or []:
        assert machine.ssh_key_file and machine.python_path  # the config says both
        machine.ssh_key_file = str(key)
    return config.canonical_copy()


def _trial_argv(command: str):
    """The flags of a config's trial command, which must start the trial entry point."""
    words = shlex.split(command)
    assert words[:3] == ["python3", "-m", TRIAL_MODULE], command
    return words[3:]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_training_service_config_validates_with_nni_config_classes(name, tmp_path):
    canon = _load_canonical(EXAMPLES / name, tmp_path)
    ts = canon.training_service
    assert ts.platform == CONFIGS[name]
    assert ts.nni_manager_ip  # set: remote trials must reach the manager at a known address
    assert canon.search_space == search_space_json("rnn")  # the file is the rnn space's export
    assert canon.tuner.name == "TPE" and canon.tuner.class_args["optimize_mode"] == "maximize"
    argv = _trial_argv(ts.trial_command)
    args = build_parser().parse_args(argv)  # every flag exists
    request = resolve_request(args, None)
    assert (request.space, request.proxies, request.seed) == ("rnn", ("hidden_covariance",), 0)
    nz.make_plan(request.replace(device="cpu"))  # the request is valid (device aside: see below)
    # trialGpuNumber, the pod's gpuNumber and --device go together
    gpus = ts.trial_gpu_number
    if ts.platform == "kubeflow":
        role = ts.master
        assert ts.worker is None and ts.ps is None and role.replicas == 1
        assert role.command == ts.trial_command  # reuseMode false runs this one
        assert role.gpu_number == gpus and config_utils.parse_memory_size(role.memory_size) > 0
        assert ts.operator == "pytorch-operator" and ts.api_version == "v1" and ts.reuse_mode is True
        assert ts.storage.storage_type == "nfs" and ts.storage.server and ts.storage.path
    else:
        assert len(ts.machine_list) >= 1 and ts.reuse_mode is False
        assert all(m.python_path.endswith("/bin") for m in ts.machine_list)  # a directory, as NNI wants
    assert args.device == ("cuda" if gpus else "cpu")


@pytest.mark.parametrize("name, section, bad", [
    ("nni_remote.yml", "machine", "sshKeyPath"),
    ("nni_kubernetes.yml", "master", "gpuNumbers"),
    ("nni_kubernetes.yml", "root", "trialGpuNumbers"),
])
def test_a_misspelt_field_fails_the_same_loader(name, section, bad, tmp_path):
    """The check above can fail: the same loader refuses a config with one field misspelt."""
    data = yaml.safe_load((EXAMPLES / name).read_text())
    target = {"machine": lambda d: d["trainingService"]["machineList"][0],
              "master": lambda d: d["trainingService"]["master"], "root": lambda d: d}[section](data)
    good = {"sshKeyPath": "sshKeyFile", "gpuNumbers": "gpuNumber", "trialGpuNumbers": "trialGpuNumber"}[bad]
    target[bad] = target.pop(good)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    try:
        with pytest.raises(AttributeError, match=f"(?i)does not have field.*{bad}"):  # NNI lower-cases it
            ExperimentConfig.load(path)
    finally:
        config_utils.unset_base_path()  # NNI's load leaves its base path set when it raises


# -- the trial entry point as a training service runs it -----------------------------------
def _random_sample(seed: int):
    """A sample of the rnn space's NNI search space, drawn by NNI's own Random tuner."""
    tuner = builtin_tuner("Random", {"seed": seed})
    tuner.update_search_space(search_space_json("rnn"))
    return tuner.generate_parameters(0)


def _zerocost_tuner_parameters(seed: int):
    """A parameter set exactly as ZeroCostTuner hands it to a trial (``_zerocost`` request)."""
    tuner = ZeroCostTuner(space="rnn", proxy="hidden_covariance", extra_proxies=["params"], algorithm="Random",
                          algorithm_args={"seed": seed}, seed=3, batch_size=10, seq_len=20)
    tuner.update_search_space(search_space_json("rnn"))
    return tuner.generate_parameters(0)


def _same_metrics(reported, expected):
    """The trial process's metric dict is the core's: the same keys and strings, every score
    equal up to rounding (another process: nni_zerocost.reproducibility)."""
    assert set(reported) == set(expected), (reported, expected)
    for key, want in expected.items():
        got = reported[key]
        if isinstance(want, float) and isinstance(got, float):
            assert agree(got, want), (key, got, want)
        else:
            assert got == want, (key, got, want)


def _core_metrics(sample, *proxies, **fields):
    """What the core says for the sample's architecture (``seconds``: wall time, not compared)."""
    arch = get_codec("rnn").decode(sample)
    metrics = proxy_metrics(nz.make_plan("rnn", list(proxies), **fields), arch)
    metrics.pop("seconds")
    scores = nz.score("rnn", arch, list(proxies), **fields)
    assert metrics["default"] == scores[proxies[0]].score  # the metric is the core's score
    for spec in proxies:
        assert metrics[spec] == scores[spec].score
    return metrics


def _base_env(tmp_path: Path, platform: str):
    env = {k: v for k, v in os.environ.items() if k not in NNI_TRIAL_VARS and not k.lower().endswith("_proxy")}
    sys_dir = tmp_path / "trials" / "Tr1aL"
    (sys_dir / "code").mkdir(parents=True)
    env.update(SINGLE_THREAD_ENV, PYTHONPATH=str(REPO), NO_PROXY="127.0.0.1,localhost",
               NNI_PLATFORM=platform, NNI_EXP_ID="zcExp001", NNI_TRIAL_JOB_ID="Tr1aL", NNI_TRIAL_SEQ_ID="5",
               NNI_SYS_DIR=str(sys_dir), NNI_OUTPUT_DIR=str(sys_dir / "nnioutput"), NNI_CODE_DIR=str(sys_dir / "code"))
    return env, sys_dir


def _record(params, parameter_id: int = 17) -> str:
    """The parameter record NNI's manager sends (JSON text), as nni.trial unpacks it."""
    return json.dumps({"parameter_id": parameter_id, "parameter_source": "algorithm", "parameters": params,
                       "parameter_index": 0})


def _run(argv, env, cwd):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", TRIAL_MODULE, *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=TRIAL_TIMEOUT)
    return proc, time.perf_counter() - start


def run_legacy(argv, params, tmp_path):
    """The trial as NNI's trial runner starts it in a Kubeflow / FrameworkController pod (reuse
    mode): parameter file in NNI_SYS_DIR, metrics on stdout.  Returns (process, metric
    commands, seconds)."""
    env, sys_dir = _base_env(tmp_path, "kubeflow")
    env.update(REUSE_MODE="true", MULTI_PHASE="true")
    (sys_dir / "parameter.cfg").write_text(_record(params))
    proc, seconds = _run(argv, env, sys_dir / "code")
    sent = [json.loads(m) for m in re.findall(r"^NNISDK_MEb'(.*)'$", proc.stdout, flags=re.M)]
    return proc, sent, seconds


class _KeeperStandIn(BaseHTTPRequestHandler):
    """NNI's HTTP trial command channel, server side: PUT = a command from the trial; GET = the
    next command for it (here its parameter, once asked for), 408 while there is none."""

    def do_PUT(self):
        command = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.received.append(command)
        if command.get("type") == "request_parameter":
            self.server.outgoing.put({"type": "parameter", "parameter": self.server.parameter})
        self._reply(200, b"")

    def do_GET(self):
        try:
            command = self.server.outgoing.get(timeout=1.0)
        except queue.Empty:
            self._reply(408, b"")
            return
        self._reply(200, json.dumps(command).encode())

    def _reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def run_http(argv, params, tmp_path):
    """The trial as NNI 3.0's remote service (trial keeper) starts it: NNI_TRIAL_COMMAND_CHANNEL
    is an HTTP channel.  Returns (process, metric commands, seconds)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeeperStandIn)
    server.received, server.outgoing, server.parameter = [], queue.Queue(), _record(params)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env, sys_dir = _base_env(tmp_path, "remote")
        env["NNI_TRIAL_COMMAND_CHANNEL"] = f"http://127.0.0.1:{server.server_address[1]}/channel/Tr1aL"
        proc, seconds = _run(argv, env, sys_dir / "code")
    finally:
        server.shutdown()
        server.server_close()
    if proc.returncode == 0:
        assert server.received[0] == {"type": "request_parameter"}
    sent = [json.loads(c["metric"]) for c in server.received if c.get("type") == "metric"]
    return proc, sent, seconds


CHANNELS = {"legacy": run_legacy, "http": run_http}


def _final_metric(sent):
    assert len(sent) == 1, sent
    (m,) = sent
    assert (m["type"], m["parameter_id"], m["trial_job_id"], m["sequence"]) == ("FINAL", 17, "Tr1aL", 0)
    value = nni.load(m["value"])
    value.pop("seconds")
    return value


@pytest.mark.timeout(2 * TRIAL_TIMEOUT)
@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_trial_reports_the_core_score_for_a_search_space_sample(channel, tmp_path):
    sample = _random_sample(seed=21)
    proc, sent, seconds = CHANNELS[channel](["--space", "rnn", "--proxy", "params"], sample, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    reported = _final_metric(sent)
    _same_metrics(reported, _core_metrics(sample, "params"))
    assert reported["default"] > 0 and reported["flag"] == ""
    print(f"\n[{channel}] trial process {seconds:.1f} s")


@pytest.mark.timeout(2 * TRIAL_TIMEOUT)
@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_trial_follows_the_zerocost_tuner_request(channel, tmp_path):
    params = _zerocost_tuner_parameters(seed=6)  # a cell whose units vary (many random cells' do not)
    assert params[SETTINGS_KEY]["proxies"] == ["hidden_covariance", "params"]
    proc, sent, seconds = CHANNELS[channel]([], params, tmp_path)  # no flags: the request decides
    assert proc.returncode == 0, proc.stderr[-2000:]
    reported = _final_metric(sent)
    sample = {k: v for k, v in params.items() if k != SETTINGS_KEY}
    expected = _core_metrics(sample, "hidden_covariance", "params", seed=3, batch_size=10, seq_len=20)
    _same_metrics(reported, expected)
    assert reported["flag"] == ""
    # the request's seed and batch were used: other ones give another hidden_covariance value
    assert reported["hidden_covariance"] != _core_metrics(sample, "hidden_covariance")["hidden_covariance"]
    print(f"\n[{channel}] trial process {seconds:.1f} s")


def _one_error_line(proc):
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith(f"python -m {TRIAL_MODULE}: error: ")
    return lines[0]


@pytest.mark.timeout(2 * TRIAL_TIMEOUT)
@pytest.mark.parametrize("case", ["bad_op", "missing_label"])
def test_trial_refuses_an_invalid_architecture_with_one_line(case, tmp_path):
    sample = _random_sample(seed=21)
    if case == "bad_op":
        sample["node_3_op"] = "conv3x3"
        named = "node_3_op = 'conv3x3' is not one of"
    else:
        del sample["h_new_0"]
        named = "lacks 1 label(s): h_new_0"
    proc, sent, _ = run_legacy(["--space", "rnn", "--proxy", "params"], sample, tmp_path)
    assert proc.returncode == 2 and sent == []  # nothing reported: NNI marks the trial failed
    assert named in _one_error_line(proc)


@pytest.mark.timeout(2 * TRIAL_TIMEOUT)
def test_trial_refuses_a_flag_that_contradicts_the_tuner(tmp_path):
    params = _zerocost_tuner_parameters(seed=4)
    proc, sent, _ = run_legacy(["--proxy", "params"], params, tmp_path)
    assert proc.returncode == 2 and sent == []
    assert "proxy" in _one_error_line(proc)
