"""The precision of the NeRF fields' matrix products where no gradient is taken: rendering, the no-gradient pass
of a training step that finds the samples worth a gradient, and the occupancy updates.

A CPU that multiplies bfloat16 natively (the `avx512_bf16` or `amx_bf16` instructions: AMD EPYC since Zen 4,
Intel Xeon since Cooper Lake) runs the fields' layers about five times faster in bfloat16 than in float32 (one
hidden layer of 48 on 2^14 samples, 2 cores of an EPYC: 54 against 291 ns a sample). There they run under
bfloat16 autocast: inputs and weights rounded to 8 bits of mantissa, sums kept in float32, the outputs turned
back into float32 before the activations of density and colour. Everywhere else, on CUDA and wherever a
gradient is taken (the trained samples of a fit) the fields stay in float32.

`AVATAR_FIELD_PRECISION=float32` in the environment keeps float32 everywhere (renders identical across
machines); `bfloat16` asks for it on any CPU (slower than float32 where the CPU lacks the instructions).
"""
from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

import torch

from avatar.errors import AvatarError

ENV = "AVATAR_FIELD_PRECISION"
CHOICES = ("auto", "float32", "bfloat16")


@functools.cache
def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU multiplies bfloat16 natively (read from the kernel's CPU flags; False where there are none)."""
    try:
        flags = set(cpuinfo.read_text().split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def no_grad_dtype(device: torch.device) -> torch.dtype:
    """The dtype the fields multiply in on `device` when no gradient is taken (see the module's docstring)."""
    choice = os.environ.get(ENV, "auto")
    if choice not in CHOICES:
        raise AvatarError(f"{ENV}={choice!r} is not one of {', '.join(CHOICES)}; unset it or pick one")
    if device.type != "cpu" or choice == "float32":
        return torch.float32
    return torch.bfloat16 if choice == "bfloat16" or cpu_has_bf16() else torch.float32


def fast_fields(device: torch.device):
    """A context in which the fields' products run in `no_grad_dtype(device)`, unless gradients are being taken."""
    dtype = no_grad_dtype(device)
    if dtype == torch.float32 or torch.is_grad_enabled():
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
