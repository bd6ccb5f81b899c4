"""The extension loader and backend choice: nothing builds at import, the cache key follows the
sources, and a machine without a compiler falls back to the torch references with one warning."""
from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import avatar.ops as ops
from avatar.ops import _backend, _extension

from ops_helpers import random_camera, random_gaussians


@pytest.fixture
def fresh_loader(monkeypatch):
    """A loader that has not tried anything yet (the real state is restored afterwards)."""
    monkeypatch.setattr(_extension, "_state", _extension._State())
    return _extension


def test_import_builds_nothing(tmp_path):
    code = ("import sys, avatar.ops, avatar.ops.rasterize, avatar.ops.hash_triplane, avatar.ops.deform; "
            "print(avatar.ops.backend_report()); "
            "print(any(m.startswith('avatar_kernels') for m in sys.modules))")
    env = dict(os.environ, AVATAR_CACHE_DIR=str(tmp_path))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("False")
    assert "not built yet" in run.stdout or "no compiler" in run.stdout
    assert not (tmp_path / "ext").exists(), "importing or reporting must not start a build"


def test_backend_report_names_every_op():
    report = ops.backend_report()
    assert set(report) == {"rasterize_gaussians", "hash_triplane_encode", "deform_gaussians", "march_rays", "march_parts",
                          "composite", "lookup_volume", "field_mlp"}
    assert all(isinstance(v, str) and v for v in report.values())


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AVATAR_CACHE_DIR", str(tmp_path))
    assert _extension.cache_root() == tmp_path / "ext"
    monkeypatch.delenv("AVATAR_CACHE_DIR")
    assert _extension.cache_root() == Path.home() / ".cache" / "avatar" / "ext"


def test_build_key_follows_sources(monkeypatch, tmp_path):
    for path in _extension.source_dir().iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(_extension, "source_dir", lambda: tmp_path)
    before = _extension.build_key(with_cuda=False)
    assert before == _extension.build_key(with_cuda=False)
    assert before != _extension.build_key(with_cuda=True)
    (tmp_path / "simd.h").write_text((tmp_path / "simd.h").read_text() + "\n// changed\n")
    assert _extension.build_key(with_cuda=False) != before


def test_no_compiler_falls_back_with_one_warning(fresh_loader, monkeypatch):
    monkeypatch.setattr(fresh_loader, "_prebuilt", lambda: None)
    monkeypatch.setattr(fresh_loader, "find_compiler", lambda: None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert fresh_loader.load() is None
        assert fresh_loader.load() is None
        means, quats, log_scales, logits, colors = random_gaussians(20, seed=0)
        viewmat, K = random_camera(16, 12)
        out = ops.rasterize_gaussians(means, quats, log_scales, logits, colors, viewmat, K, 16, 12)
        ops.deform_gaussians(means, quats, log_scales)
    assert out.image.shape == (12, 16, 3)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1, messages
    assert "no C++ compiler" in messages[0] and "pure-torch" in messages[0]
    assert ops.backend_report()["rasterize_gaussians"] == "torch reference (no compiler)"
    with pytest.raises(RuntimeError, match="backend 'cpu' was requested"):
        ops.deform_gaussians(means, quats, log_scales, backend="cpu")


def test_failed_build_falls_back(fresh_loader, monkeypatch):
    def broken(key, with_cuda):
        raise RuntimeError("Error building extension\nsomething.cpp:1: error: broken")

    monkeypatch.setattr(fresh_loader, "_prebuilt", lambda: None)
    monkeypatch.setattr(fresh_loader, "_build", broken)
    with pytest.warns(RuntimeWarning, match="the build failed: .*error: broken"):
        assert fresh_loader.load() is None


def test_backend_resolution_rules(kernels, monkeypatch):
    cpu = torch.device("cpu")
    assert _backend.resolve("op", "auto", cpu, torch.float32) == "cpu"
    assert _backend.resolve("op", "auto", cpu, torch.float64) == "torch"
    assert _backend.resolve("op", "torch", cpu, torch.float32) == "torch"
    with pytest.raises(ValueError, match="unknown backend"):
        _backend.resolve("op", "gpu", cpu, torch.float32)
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        _backend.resolve("op", "cuda", cpu, torch.float32)
    with pytest.raises(ValueError, match="float32"):
        _backend.resolve("op", "cpu", cpu, torch.float16)
    monkeypatch.setattr(_backend, "_default", "torch")
    assert _backend.resolve("op", None, cpu, torch.float32) == "torch"
    assert all(v.startswith("torch reference") for v in ops.backend_report().values())


def test_set_default_backend_validates():
    before = ops.get_default_backend()
    try:
        ops.set_default_backend("torch")
        assert ops.get_default_backend() == "torch"
        with pytest.raises(ValueError, match="unknown backend"):
            ops.set_default_backend("fast")
    finally:
        ops.set_default_backend(before)
