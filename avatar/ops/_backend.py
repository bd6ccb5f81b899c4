"""Which implementation an op runs: `auto | cpu | cuda | torch`, chosen in one place.

- ``cpu``: the compiled CPU kernels (float32 CPU tensors).
- ``cuda``: CUDA; the rasteriser goes through gsplat, the other ops through our CUDA kernels.
- ``torch``: the pure-torch reference (any device and dtype; slow, memory-hungry on big inputs).
- ``auto``: ``cuda`` for CUDA tensors, ``cpu`` for float32 CPU tensors when the kernels can be
  built, otherwise ``torch`` (float64 inputs also go to ``torch``, which keeps their precision).

The default is ``auto``; the environment variable ``AVATAR_OPS_BACKEND`` or
:func:`set_default_backend` change it, and every op takes a ``backend`` argument.
"""
from __future__ import annotations

import os

import torch

from avatar.ops import _extension

BACKENDS = ("auto", "cpu", "cuda", "torch")


def _validated(name: str, where: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"{where}: unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return name


_default = _validated(os.environ.get("AVATAR_OPS_BACKEND", "auto"), "AVATAR_OPS_BACKEND")


def set_default_backend(name: str) -> None:
    """Backend used by ops called with ``backend=None``."""
    global _default
    _default = _validated(name, "set_default_backend")


def get_default_backend() -> str:
    return _default


def gsplat_available() -> bool:
    try:
        import gsplat  # noqa: F401
    except Exception:  # gsplat raises more than ImportError when its CUDA build is broken
        return False
    return True


def resolve(op: str, backend: str | None, device: torch.device, dtype: torch.dtype, *, via_gsplat: bool = False) -> str:
    """Concrete backend ("cpu", "cuda" or "torch") for one call of `op`."""
    name = _validated(backend or _default, op)
    if name == "torch":
        return "torch"
    if name == "auto":
        if device.type == "cuda":
            if via_gsplat:
                return "cuda" if gsplat_available() else "torch"
            module = _extension.load()
            return "cuda" if module is not None and getattr(module, "with_cuda", False) else "torch"
        if device.type != "cpu" or dtype != torch.float32:
            return "torch"
        return "cpu" if _extension.load() is not None else "torch"
    if name == "cpu":
        if device.type != "cpu":
            raise ValueError(f"{op}: backend 'cpu' needs CPU tensors, got tensors on {device}")
        if dtype != torch.float32:
            raise ValueError(f"{op}: backend 'cpu' computes in float32, got {dtype}; use backend='torch' for {dtype}")
        if _extension.load() is None:
            raise RuntimeError(f"{op}: backend 'cpu' was requested but the kernels are unavailable: "
                               f"{_extension.failure_reason()}")
        return "cpu"
    # name == "cuda"
    if device.type != "cuda":
        raise ValueError(f"{op}: backend 'cuda' needs CUDA tensors, got tensors on {device}")
    if via_gsplat:
        if not gsplat_available():
            raise RuntimeError(f"{op}: backend 'cuda' needs gsplat (`pip install gsplat`)")
        return "cuda"
    module = _extension.load()
    if module is None or not getattr(module, "with_cuda", False):
        raise RuntimeError(f"{op}: backend 'cuda' was requested but the kernels were not built with CUDA: "
                           f"{_extension.failure_reason() or 'torch has no CUDA'}")
    return "cuda"
