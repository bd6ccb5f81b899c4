"""Input validation shared by the ops: wrong shapes and non-finite values fail early and by name."""
from __future__ import annotations

import weakref
from typing import Sequence

import torch
from torch import Tensor


def check_shape(op: str, name: str, t: Tensor, shape: Sequence[int | None]) -> None:
    """`shape` entries of None match any size."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: `{name}` must be a torch.Tensor, got {type(t).__name__}")
    ok = t.dim() == len(shape) and all(s is None or t.shape[i] == s for i, s in enumerate(shape))
    if not ok:
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise ValueError(f"{op}: `{name}` must have shape {want}, got {list(t.shape)}")


def check_float(op: str, name: str, t: Tensor) -> None:
    if not t.is_floating_point():
        raise ValueError(f"{op}: `{name}` must be a floating-point tensor, got {t.dtype}")


# Large tensors already found finite: a weak reference (so a new tensor reusing the id and the
# memory is never mistaken for the checked one) and (storage pointer, version counter, shape).
# A hash-grid table (millions of entries) used unchanged for every rendered frame is then checked
# once (a NeRF frame calls its fields' ops in a hundred chunks, each with the same tables and warp
# volume); any in-place change bumps the version counter and brings the check back.
_LARGE = 1 << 16
_checked_large: dict[int, tuple[weakref.ref, tuple[int, int, tuple[int, ...]]]] = {}


def _fingerprint(t: Tensor) -> tuple[int, int, tuple[int, ...]]:
    return (t.data_ptr(), t._version, tuple(t.shape))


def check_finite(op: str, tensors: dict[str, Tensor | None]) -> None:
    """Raise ValueError naming the first tensor holding NaN or infinity."""
    for name, t in tensors.items():
        if t is None or t.numel() == 0:
            continue
        large = t.numel() >= _LARGE
        seen = _checked_large.get(id(t)) if large else None
        if seen is not None and seen[0]() is t and seen[1] == _fingerprint(t):
            continue
        # One reduction first: a sum is finite whenever every term is (short of overflow, which
        # the exact test below then clears). This keeps the check cheap on large tables.
        if not bool(torch.isfinite(t.detach().sum())) and not bool(torch.isfinite(t).all()):
            what = "NaN" if bool(torch.isnan(t).any()) else "infinite values"
            raise ValueError(f"{op}: `{name}` contains {what}; every input must be finite")
        if large:
            if len(_checked_large) > 64:
                _checked_large.clear()
            _checked_large[id(t)] = (weakref.ref(t), _fingerprint(t))


def check_same_device(op: str, tensors: dict[str, Tensor | None]) -> torch.device:
    device = None
    for name, t in tensors.items():
        if t is None:
            continue
        if device is None:
            device = t.device
        elif t.device != device:
            raise ValueError(f"{op}: `{name}` is on {t.device} but the other inputs are on {device}")
    return device if device is not None else torch.device("cpu")
