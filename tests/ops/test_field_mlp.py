"""The fused NeRF field layers (`field_mlp`) against their torch twin: the head's gated form and the torso's plain
one, density only, empty and single-point inputs, strided features, and gradients through the twin."""
from __future__ import annotations

import pytest
import torch

from avatar.ops import FieldLayers, field_mlp, hash_triplane_encode
from avatar.ops.field_mlp_ref import field_mlp_ref

SHIFT = -2.0


def _layers(inputs: int, width: int, groups: int, seed: int, scale: float = 0.5) -> FieldLayers:
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=g) * scale  # noqa: E731
    return FieldLayers(r(width + groups, inputs), r(width + groups), r(groups, width), r(width, width), r(width),
                       r(4, width), r(4))


def _features(n: int, inputs: int, seed: int) -> torch.Tensor:
    return torch.randn(n, inputs, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 1000, 3001])
@pytest.mark.parametrize("inputs,width,groups", [(60, 48, 3), (60, 32, 0), (7, 9, 1), (12, 16, 8)])
def test_kernel_matches_the_twin(kernels, n, inputs, width, groups):
    features, layers = _features(n, inputs, seed=n), _layers(inputs, width, groups, seed=width)
    want_d, want_c = field_mlp_ref(features, layers, SHIFT)
    got_d, got_c = field_mlp(features, layers, SHIFT, backend="cpu")
    assert got_d.shape == (n,) and got_c.shape == (n, 3)
    torch.testing.assert_close(got_d, want_d, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got_c, want_c, rtol=1e-4, atol=1e-5)
    only_d, none = field_mlp(features, layers, SHIFT, density_only=True, backend="cpu")
    assert none is None
    torch.testing.assert_close(only_d, want_d, rtol=1e-4, atol=1e-5)


def test_kernel_reads_the_encodings_transposed_view_and_any_strides(kernels):
    """The CPU encoding returns a transposed view of a feature-major buffer; the kernel reads it, a row-major copy
    and a column slice alike."""
    g = torch.Generator().manual_seed(3)
    points = torch.rand(777, 3, generator=g) * 2 - 1
    tables = torch.randn(3, 4, 256, 2, generator=g) * 0.3
    features = hash_triplane_encode(points, tables, [4, 8, 16, 32], (-1, -1, -1), (1, 1, 1), backend="cpu")
    assert features.stride(0) == 1  # feature-major underneath
    layers = _layers(24, 32, 3, seed=5)
    want = field_mlp_ref(features.contiguous(), layers, SHIFT)
    for view in (features, features.contiguous()):
        got = field_mlp(view, layers, SHIFT, backend="cpu")
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    wide = torch.randn(50, 40, generator=g)
    got = field_mlp(wide[:, 3:27], layers, SHIFT, backend="cpu")
    for a, b in zip(got, field_mlp_ref(wide[:, 3:27].contiguous(), layers, SHIFT)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_kernel_holds_its_accuracy_at_saturated_outputs(kernels):
    """Large pre-activations: softplus stays linear without overflow, sigmoid reaches 0 and 1."""
    features, layers = _features(64, 10, seed=1), _layers(10, 16, 2, seed=2, scale=6.0)
    want_d, want_c = field_mlp_ref(features, layers, SHIFT)
    assert want_d.max() > 100 and (want_c < 1e-6).any() and (want_c > 1 - 1e-6).any()
    got_d, got_c = field_mlp(features, layers, SHIFT, backend="cpu")
    torch.testing.assert_close(got_d, want_d, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(got_c, want_c, rtol=1e-4, atol=1e-6)


def test_gradients_flow_through_the_twin(backend):
    features = _features(40, 12, seed=4).requires_grad_(True)
    layers = FieldLayers(*(t.requires_grad_(True) for t in _layers(12, 8, 2, seed=6)))
    density, colour = field_mlp(features, layers, SHIFT, backend=backend)
    assert density.requires_grad and colour.requires_grad
    got = torch.autograd.grad((density + colour.sum(1)).sum(), [features, layers.w_in, layers.vectors])
    want = torch.autograd.grad((lambda d, c: (d + c.sum(1)).sum())(*field_mlp_ref(features, layers, SHIFT)),
                               [features, layers.w_in, layers.vectors])
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_bad_layers_are_named():
    features, layers = _features(5, 12, seed=0), _layers(12, 8, 2, seed=0)
    with pytest.raises(ValueError, match="w_in"):
        field_mlp(features, layers._replace(w_in=layers.w_in[:, :5]), SHIFT)
    with pytest.raises(ValueError, match="vectors"):
        field_mlp(features, layers._replace(vectors=layers.vectors[:, :5]), SHIFT)
    with pytest.raises(ValueError, match="b_hidden.*NaN"):
        field_mlp(features, layers._replace(b_hidden=torch.full((8,), float("nan"))), SHIFT)
    with pytest.raises(ValueError, match="width"):
        field_mlp(features, _layers(12, 200, 0, seed=0), SHIFT)
