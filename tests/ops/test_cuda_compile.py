"""Every CUDA source compiles for Ampere (sm_80) and Hopper (sm_90) with nvcc, when nvcc exists.

torch here is a CPU build, so the CUDA kernels cannot run in this suite; compiling them is the
check that they stay valid. Their element math is the same header code the CPU tests run.
"""
from __future__ import annotations

import shutil
import subprocess

import pytest

from avatar.ops import _extension

NVCC = shutil.which("nvcc")
CUDA_SOURCES = sorted(p.name for p in _extension.source_dir().glob("*.cu"))


def test_every_cuda_source_is_built_by_the_loader():
    assert CUDA_SOURCES, "no .cu files found"
    assert set(CUDA_SOURCES) == set(_extension.CUDA_SOURCES)


@pytest.mark.skipif(NVCC is None, reason="nvcc not found: the CUDA sources were not compile-checked")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("source", CUDA_SOURCES)
def test_nvcc_compiles(tmp_path, source, arch):
    src = _extension.source_dir()
    run = subprocess.run(
        [NVCC, "-c", f"-arch={arch}", "-std=c++20", "-O2", "-Werror", "all-warnings", f"-I{src}", str(src / source),
         "-o", str(tmp_path / (source + ".o"))],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, f"nvcc failed for {source} ({arch}):\n{run.stderr}"
    assert (tmp_path / (source + ".o")).stat().st_size > 0


@pytest.mark.skipif(_extension.find_compiler() is None, reason="no C++ compiler")
@pytest.mark.parametrize("source", ["bindings.cpp", "bindings_fields.cpp", "bindings_raster.cpp", "bindings_volume.cpp"])
def test_bindings_compile_with_cuda_branch(tmp_path, source):
    """The bindings' CUDA dispatch (built only where torch has CUDA) still compiles here."""
    import sysconfig

    from torch.utils.cpp_extension import include_paths

    src = _extension.source_dir()
    includes = [f"-I{p}" for p in include_paths()] + [f"-I{sysconfig.get_paths()['include']}", f"-I{src}"]
    run = subprocess.run(
        [_extension.find_compiler(), "-std=c++20", "-fsyntax-only", "-DAVATAR_WITH_CUDA",
         "-DTORCH_EXTENSION_NAME=avatar_kernels_check", *includes, str(src / source)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-4000:]
