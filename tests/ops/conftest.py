"""Fixtures of the kernel tests (helpers are in ops_helpers.py)."""
from __future__ import annotations

import pytest

from avatar.ops import _extension


@pytest.fixture(scope="session")
def kernels():
    """The compiled extension. Skips only when this machine has no C++ compiler; a compiler that
    fails to build the kernels is a test failure."""
    if _extension.find_compiler() is None:
        pytest.skip("no C++ compiler: the CPU kernels cannot be built here (the torch references still are tested)")
    module = _extension.load()
    assert module is not None, f"the kernels failed to build: {_extension.failure_reason()}"
    return module


@pytest.fixture(params=["cpu", "torch"])
def backend(request):
    """Each backend that runs on this machine: the CPU kernels (when they build) and the torch twin."""
    if request.param == "cpu":
        request.getfixturevalue("kernels")
    return request.param
