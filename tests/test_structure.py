"""The shape of the package, checked from its source: a lazy root, no import cycles, generic code
that never imports a space package, and a job whose fields are checked in one place only."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set

PACKAGE = Path(__file__).resolve().parents[1] / "nni_zerocost"
#: the job's field validators: private to nni_zerocost/job.py, imported by nobody
VALIDATORS = ("_check_count", "_check_workers", "_check_execution", "_parse_shard", "_check_budget",
              "_check_source_fields", "_check_output_path", "_check_store")
#: names the field checks had when they were spread over the package
OLD_VALIDATORS = ("check_workers", "check_threads", "check_count", "parse_shard", "check_search", "pop_from")


def _modules() -> Dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(module: str, path: Path, modules: Dict[str, Path]) -> Set[str]:
    """Every module of the package ``module`` imports, at module level or inside a function
    (``from pkg import mod`` counts as pkg.mod; type-checking-only imports do not count)."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test)
            for n in ast.walk(node)}
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                full = f"{target}.{a.name}"
                dep = full if full in modules else target
                if dep in modules:
                    out.add(dep)
    return out


def _graph() -> Dict[str, Set[str]]:
    modules = _modules()
    return {m: _imports(m, p, modules) for m, p in modules.items()}


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    out: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_package_root_loads_no_torch():
    code = "import sys, nni_zerocost; nni_zerocost.__version__; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
    # the NNI tuner process: NNI gives it 10 s to connect, so it imports no torch either
    code = "import sys, nni_zerocost.nas.tuner; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if "No module named 'nni'" not in out.stderr:
        assert out.stdout.strip() == "False", out.stderr[-2000:]


def test_no_import_cycles_even_through_imports_inside_functions():
    assert _cycles(_graph()) == []


def test_a_cycle_is_found_when_there_is_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_generic_code_never_imports_a_space_package():
    from nni_zerocost import builtin

    spaces = set(builtin.SPACES)
    bad = []
    for module, deps in _graph().items():
        if module.startswith("nni_zerocost.spaces."):
            continue
        for dep in deps:
            if any(dep == s or dep.startswith(s + ".") for s in spaces):
                bad.append(f"{module} imports {dep}")
    assert bad == []


def test_only_the_job_checks_a_job_field():
    bad = []
    for module, path in _modules().items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("job"):
                bad += [f"{module} imports {a.name}" for a in node.names if a.name in VALIDATORS]
            if isinstance(node, ast.Attribute) and node.attr in VALIDATORS and module != "nni_zerocost.job":
                bad.append(f"{module} uses {node.attr}")
            if isinstance(node, ast.FunctionDef) and node.name in OLD_VALIDATORS:
                bad.append(f"{module} defines {node.name}")
    assert bad == []
    job = ast.parse((PACKAGE / "job.py").read_text())
    defined = {n.name for n in ast.walk(job) if isinstance(n, ast.FunctionDef)}
    assert set(VALIDATORS) <= defined  # the list above names real functions


def test_a_job_crosses_a_process_boundary_as_json():
    import json

    import nni_zerocost as nz

    job = nz.ScoringJob.of(["hidden_covariance:layer=2", "params"], "rnn", sample=3, seed=4, workers=2,
                           max_params=1e7, init="compat", shard="1/2", out="o.jsonl")
    again = nz.ScoringJob.from_json(json.loads(json.dumps(job.to_json())))
    assert again == job and again.fields()["init"] == "compat" and again.request.options == {"init": "compat"}
    assert nz.ScoringJob.of(["hidden_covariance:layer=2", "params"], "rnn", **job.fields()) == job
