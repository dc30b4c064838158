"""The persistent compilation cache: where it goes and how it is switched on and off."""

from __future__ import annotations

import subprocess
import sys

import jax

from bayesqcd.compile_cache import cache_enabled_by_env, default_cache_dir, enable_compile_cache


def test_enable_sets_jax_config(tmp_path):
    before = jax.config.jax_compilation_cache_dir
    try:
        folder = enable_compile_cache(tmp_path / "cache")
        assert folder.is_dir() and jax.config.jax_compilation_cache_dir == str(folder)
    finally:
        jax.config.update("jax_compilation_cache_dir", before)


def test_before_jax_import_it_goes_through_the_environment(tmp_path):
    """Enabling the cache must not import JAX (commands set host devices before JAX starts)."""
    code = ("import sys; from bayesqcd.compile_cache import enable_compile_cache; "
            f"enable_compile_cache({str(tmp_path)!r}); print('jax' in sys.modules); "
            "import jax; print(jax.config.jax_compilation_cache_dir)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", str(tmp_path)]


def test_switches(monkeypatch, tmp_path):
    monkeypatch.setenv("BAYESQCD_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("BAYESQCD_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "bayesqcd" / "jax"
    for value, on in (("0", False), ("off", False), ("1", True), ("", True)):
        monkeypatch.setenv("BAYESQCD_COMPILE_CACHE", value)
        assert cache_enabled_by_env() is on
