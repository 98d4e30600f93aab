"""naslib_ext.compat without NASLib: what enable() installs, when, and that it is idempotent.

Each case runs in a fresh interpreter so the stand-in never leaks into the test process.
"""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(code: str, extra_path: str = "") -> dict:
    prelude = f"import sys; sys.path[:0] = [{str(REPO)!r}] + ([{extra_path!r}] if {extra_path!r} else [])\n"
    proc = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_stand_in_when_torchvision_is_missing():
    out = _run("""
        import collections, json, sys
        sys.modules["torchvision"] = None  # block a real torchvision, if installed
        from naslib_ext import compat
        had_iterable = hasattr(collections, "Iterable")
        first = compat.enable()
        import torchvision, torchvision.transforms as T
        from torchvision.transforms import functional as F, Compose
        import torchvision.datasets, torchvision.models
        class MyCompose(T.Compose):  # what naslib.utils.load_ops does at import time
            pass
        errors = []
        for thunk in (lambda: T.Compose([]), lambda: MyCompose(), lambda: torchvision.datasets.CIFAR10,
                      lambda: torchvision.models.resnet50, lambda: F.to_tensor):
            try:
                thunk()
                errors.append(None)
            except ModuleNotFoundError as e:
                errors.append(str(e))
        second = compat.enable()
        print(json.dumps({
            "first": sorted(first), "second": sorted(second), "had_iterable": had_iterable,
            "iterable_ok": collections.Iterable is collections.abc.Iterable,
            "stand_in": compat.is_stand_in(torchvision), "same": sys.modules["torchvision"] is torchvision,
            "errors": errors, "applied": sorted(compat.applied()),
        }))
    """)
    expected = ["torchvision"] + ([] if out["had_iterable"] else ["collections.Iterable"])
    assert out["first"] == sorted(expected)
    assert out["second"] == []  # idempotent
    assert out["applied"] == sorted(expected)
    assert out["iterable_ok"] and out["stand_in"] and out["same"]
    assert all(e is not None and "torchvision" in e for e in out["errors"]), out["errors"]
    assert "datasets.CIFAR10" in out["errors"][2]


def test_real_torchvision_is_left_alone(tmp_path):
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text("REAL = True\n")
    out = _run("""
        import json
        from naslib_ext import compat
        applied = compat.enable()
        import torchvision
        print(json.dumps({"applied": sorted(applied), "real": getattr(torchvision, "REAL", False),
                          "stand_in": compat.is_stand_in(torchvision)}))
    """, extra_path=str(tmp_path))
    assert "torchvision" not in out["applied"]
    assert out["real"] is True and out["stand_in"] is False


def test_compat_imports_without_naslib_and_explains_how_to_get_it():
    out = _run("""
        import json, sys
        sys.modules["naslib"] = None  # NASLib absent
        from naslib_ext import compat
        try:
            compat.import_naslib()
            msg = None
        except ImportError as e:
            msg = str(e)
        print(json.dumps({"msg": msg, "patched": sorted(compat.applied()), "tv": "torchvision" in sys.modules}))
    """)
    assert out["msg"] is not None
    assert out["patched"] == [] and out["tv"] is False  # nothing patched when NASLib is absent
    assert "automl/NASLib" in out["msg"] and "Develop" in out["msg"] and "PYTHONPATH" in out["msg"]
