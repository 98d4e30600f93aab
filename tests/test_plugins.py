"""Third-party plugins: proxies registered through installed entry points reach every process
(the CLI, its worker processes), and a plugin that fails to load is an error naming it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PLUGIN = '''
from nni_zerocost.proxies import register_proxy


@register_proxy("plugin_width", needs=("recurrent_states",), higher_is_better=True, cost="forward",
                mode="eval (no dropout), no autograd", nan_policy="never NaN",
                size="the layer's width: it ranks by size", scales_with_size=True)
def plugin_width(ctx, layer: int = 1) -> float:
    """The number of hidden units of a recurrent layer (a test plugin)."""
    return float(ctx.incoming_states(layer).shape[-1])
'''


def _install(site: Path, name: str, module_text: str) -> None:
    """A distribution as pip leaves it: the module, and a dist-info with its entry point."""
    (site / f"{name}.py").write_text(module_text)
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[nni_zerocost.proxies]\n{name} = {name}\n")
    (info / "RECORD").write_text("")


def _cli(site: Path, cwd: Path, *args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    env.pop("NNI_ZEROCOST_PLUGINS", None)
    return subprocess.run([sys.executable, "-m", "nni_zerocost.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_an_installed_plugin_proxy_reaches_the_cli_and_its_workers(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "zc_test_plugin", PLUGIN)
    listed = _cli(site, tmp_path, "list", "proxies", "--space", "rnn")
    assert listed.returncode == 0, listed.stderr
    assert "plugin_width [rnn] higher is better" in listed.stdout
    done = _cli(site, tmp_path, "score", "--space", "rnn", "--sample", "2", "--proxy", "plugin_width:layer=3",
                "--out", "o.jsonl", "--no-store", "--no-progress", "--workers", "2")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["plugin_width:layer=3"] for r in rows] == [400.0, 400.0]  # the last layer is tied to the embedding


def test_a_broken_plugin_is_an_error_naming_it(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "zc_broken_plugin", "import a_module_that_does_not_exist\n")
    done = _cli(site, tmp_path, "list", "proxies")
    assert done.returncode != 0
    assert "the nni-zerocost plugin 'zc_broken_plugin'" in done.stderr and "a_module_that_does_not_exist" in done.stderr
