"""Packaging: models/ and inference/ install as bayesqcd.models and bayesqcd.inference, never bare."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True)


def test_installed_namespace_imports(tmp_path):
    """From outside the checkout, bayesqcd.models / bayesqcd.inference import and map to the folders."""
    ok = _run("import bayesqcd.models as m, bayesqcd.inference as i; print(m.__file__); print(i.__file__)", tmp_path)
    assert ok.returncode == 0, ok.stderr
    files = ok.stdout.split()
    assert Path(files[0]).parent.name == "models" and Path(files[1]).parent.name == "inference"
    for bare in ("models", "inference"):
        res = _run(f"import {bare}", tmp_path)
        assert res.returncode != 0 and "ModuleNotFoundError" in res.stderr


def test_built_wheel_contains_namespaced_packages(tmp_path):
    """A wheel built from the checkout holds bayesqcd/models and bayesqcd/inference, nothing top-level."""
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    (wheel,) = tmp_path.glob("bayesqcd-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "bayesqcd/models/__init__.py" in names and "bayesqcd/inference/__init__.py" in names
    assert "bayesqcd/eos/table.py" in names and "bayesqcd/diffusion/__init__.py" in names
    top = {n.split("/")[0] for n in names}
    assert "models" not in top and "inference" not in top
    # the wheel works on its own: install it into a target folder and import from there
    site = tmp_path / "site"
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    code = ("import sys; sys.path.insert(0, %r); import bayesqcd.models, bayesqcd.inference; "
            "print(bayesqcd.models.__file__)" % str(site))
    out = _run(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert str(site) in out.stdout
