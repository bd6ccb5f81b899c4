"""The precision the NeRF fields multiply in without gradients: bfloat16 on a CPU that has the instructions (or
when asked), float32 on CUDA, with gradients, and when asked; a wrong setting is one line."""
from __future__ import annotations

import pytest
import torch

from avatar.errors import AvatarError
from avatar.model import field_precision
from avatar.model.field_precision import ENV, cpu_has_bf16, fast_fields, no_grad_dtype

CPU = torch.device("cpu")


def test_the_cpu_flags_say_whether_bfloat16_is_native(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n")
    assert cpu_has_bf16(info)
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni\n")
    assert not cpu_has_bf16.__wrapped__(info)
    assert not cpu_has_bf16(tmp_path / "missing")


@pytest.mark.parametrize("native", [True, False])
def test_the_choice_follows_the_cpu_and_the_environment(monkeypatch, native):
    monkeypatch.setattr(field_precision, "cpu_has_bf16", lambda: native)
    monkeypatch.delenv(ENV, raising=False)
    assert no_grad_dtype(CPU) == (torch.bfloat16 if native else torch.float32)
    assert no_grad_dtype(torch.device("cuda")) == torch.float32
    monkeypatch.setenv(ENV, "float32")
    assert no_grad_dtype(CPU) == torch.float32
    monkeypatch.setenv(ENV, "bfloat16")
    assert no_grad_dtype(CPU) == torch.bfloat16 and no_grad_dtype(torch.device("cuda")) == torch.float32
    monkeypatch.setenv(ENV, "half")
    with pytest.raises(AvatarError, match=f"{ENV}='half' is not one of auto, float32, bfloat16"):
        no_grad_dtype(CPU)


def test_products_run_in_bfloat16_only_without_gradients(monkeypatch):
    monkeypatch.setenv(ENV, "bfloat16")
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(5, 8)
    with fast_fields(CPU):
        assert layer(x).dtype == torch.float32  # gradients are on: float32
    with torch.no_grad(), fast_fields(CPU):
        low = layer(x)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), layer(x).detach(), atol=0.05, rtol=0.02)
    monkeypatch.setenv(ENV, "float32")
    with torch.no_grad(), fast_fields(CPU):
        assert layer(x).dtype == torch.float32
