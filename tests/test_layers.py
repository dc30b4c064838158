"""The layer rule, read from the import graph (AST only, nothing is executed).

Core (``bayesqcd/`` physics) never imports argparse, matplotlib, ``bayesqcd.models``,
``bayesqcd.inference``, ``bayesqcd.report``, ``bayesqcd.studies`` or ``bayesqcd.cli``;
``models/`` and ``inference/`` never import studies, cli, argparse or matplotlib (nor each
other); studies never import cli. Imports inside functions count the same as top-level ones.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"bayesqcd": "bayesqcd", "models": "bayesqcd.models", "inference": "bayesqcd.inference"}
"""Source folder -> installed package name (setuptools' package-dir mapping)."""


def layer_of(module: str) -> str:
    """The layer of a module: core, models, inference, report, studies or cli."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("models", "inference", "report", "studies", "cli"):
        return parts[1]
    return "core"


FORBIDDEN: dict[str, tuple[str, ...]] = {
    "core": ("argparse", "matplotlib", "bayesqcd.models", "bayesqcd.inference", "bayesqcd.report",
             "bayesqcd.studies", "bayesqcd.cli"),
    "models": ("argparse", "matplotlib", "bayesqcd.inference", "bayesqcd.report", "bayesqcd.studies",
               "bayesqcd.cli"),
    "inference": ("argparse", "matplotlib", "bayesqcd.models", "bayesqcd.report", "bayesqcd.studies",
                  "bayesqcd.cli"),
    "report": ("argparse", "bayesqcd.models", "bayesqcd.inference", "bayesqcd.studies", "bayesqcd.cli"),
    "studies": ("argparse", "bayesqcd.cli"),
    "cli": (),
}
"""Per layer, the modules (and their submodules) it must not import."""


def modules(root: Path) -> dict[str, Path]:
    """Every module of the source folders under ``root``, by installed dotted name."""
    out = {}
    for folder, package in PACKAGES.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = list(path.relative_to(root / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([package, *parts])] = path
    return out


def imports(module: str, path: Path) -> list[tuple[int, list[str]]]:
    """Per import statement of ``path``: its line and the absolute names it may bring in
    (``from a import b`` gives ``a`` and ``a.b``; relative imports resolved)."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.append((node.lineno, [a.name for a in node.names]))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, [name] + [f"{name}.{a.name}" for a in node.names]))
    return found


def violations(root: Path) -> list[str]:
    """``module:line (layer) imports name`` for every import statement that breaks the rule."""
    bad = []
    for module, path in modules(root).items():
        layer = layer_of(module)
        for line, names in imports(module, path):
            hits = [n for n in names for b in FORBIDDEN[layer] if n == b or n.startswith(b + ".")]
            if hits:
                bad.append(f"{module}:{line} ({layer}) imports {hits[0]}")
    return bad


def test_the_package_keeps_its_layers():
    assert violations(ROOT) == []


def test_every_layer_is_present():
    layers = {layer_of(m) for m in modules(ROOT)}
    assert layers == {"core", "models", "inference", "report", "studies", "cli"}


@pytest.mark.parametrize("folder, module, line", [
    ("bayesqcd", "tov_extra.py", "import matplotlib.pyplot as plt"),
    ("bayesqcd", "eos/extra.py", "from bayesqcd.inference.nuts import run_nuts"),
    ("bayesqcd", "spectral/extra.py", "def f():\n    from bayesqcd.studies import spectral\n"),
    ("bayesqcd", "lattice/extra.py", "from ..models import neutron_star"),
    ("models", "extra.py", "from bayesqcd.cli import main"),
    ("inference", "extra.py", "from bayesqcd.studies.neutron_star import run"),
    ("bayesqcd", "studies/extra.py", "import argparse"),
])
def test_a_planted_violation_is_found(tmp_path, folder, module, line):
    for name in PACKAGES:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    target = tmp_path / folder / module
    target.parent.mkdir(parents=True, exist_ok=True)
    (target.parent / "__init__.py").touch()
    target.write_text("import numpy\n")
    assert violations(tmp_path) == []
    target.write_text(line + "\n")
    found = violations(tmp_path)
    assert len(found) == 1 and found[0].startswith("bayesqcd."), found


def test_importing_the_toolkit_changes_no_jax_setting():
    """Importing the public packages leaves JAX in float32 (the user decides)."""
    code = ("import bayesqcd, bayesqcd.eos, bayesqcd.tov, bayesqcd.inference, bayesqcd.models, "
            "bayesqcd.report, bayesqcd.spectral, bayesqcd.lattice, bayesqcd.diffusion, bayesqcd.topology, "
            "bayesqcd.data, bayesqcd.nn, bayesqcd.studies.neutron_star; "
            "from bayesqcd.inference import run_nuts, run_svi; from bayesqcd import eos, tov; "
            "import jax; print(jax.config.jax_enable_x64)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "False"


def test_float64_code_says_how_to_enable_it():
    """In float32 the TOV solver refuses with an error naming the fix."""
    code = ("import bayesqcd\nfrom bayesqcd import eos\n"
            "try:\n    eos.named('SLy')\nexcept RuntimeError as e:\n    print(e)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "bayesqcd.enable_x64()" in res.stdout, res.stdout + res.stderr
