"""Hash-grid triplane encoding: kernels vs torch twin, the twin vs finite differences and vs a
plain-Python lookup, and bad input."""
from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck

from avatar.ops import HashTriplaneSpec, hash_triplane_encode
from avatar.ops.hash_triplane_ref import hash_triplane_encode_ref

from ops_helpers import assert_close_scaled

BOX_MIN, BOX_MAX = (-0.1, -0.2, -0.15), (0.12, 0.2, 0.1)
SPECS = {
    # coarse levels dense, fine levels hashed into a small table
    "mixed": HashTriplaneSpec(levels=5, features_per_level=2, log2_table_size=8, base_resolution=4, growth_factor=2.0),
    "one_feature": HashTriplaneSpec(levels=3, features_per_level=1, log2_table_size=12, base_resolution=8,
                                    growth_factor=1.5),
    "wide": HashTriplaneSpec(levels=2, features_per_level=8, log2_table_size=6, base_resolution=3, growth_factor=3.0),
}


def _points(n, seed, outside=0.1):
    g = torch.Generator().manual_seed(seed)
    lo, hi = torch.tensor(BOX_MIN), torch.tensor(BOX_MAX)
    u = torch.rand(n, 3, generator=g) * (1 + 2 * outside) - outside  # some points outside the box
    return lo + u * (hi - lo)


@pytest.mark.parametrize("spec_name", list(SPECS))
@pytest.mark.parametrize("n", [0, 1, 300, 4000])
def test_kernel_matches_reference(kernels, spec_name, n):
    spec = SPECS[spec_name]
    tables = spec.init_tables(scale=1.0, generator=torch.Generator().manual_seed(n))
    points = _points(n, seed=n + 1)
    res = spec.resolutions()
    pk, tk = points.clone().requires_grad_(True), tables.clone().requires_grad_(True)
    pt, tt = points.clone().requires_grad_(True), tables.clone().requires_grad_(True)
    out_k = hash_triplane_encode(pk, tk, res, BOX_MIN, BOX_MAX, backend="cpu")
    out_t = hash_triplane_encode(pt, tt, res, BOX_MIN, BOX_MAX, backend="torch")
    assert out_k.shape == (n, spec.out_features)
    torch.testing.assert_close(out_k, out_t, atol=1e-6, rtol=1e-5)
    weights = torch.randn(out_k.shape, generator=torch.Generator().manual_seed(7))
    (out_k * weights).sum().backward()
    (out_t * weights).sum().backward()
    assert_close_scaled(tk.grad, tt.grad, 1e-5, "tables")
    assert_close_scaled(pk.grad, pt.grad, 1e-4, "points")


def test_reference_matches_plain_python_lookup():
    """Independent of torch indexing: the documented layout, hashing and interpolation by hand."""
    spec = SPECS["mixed"]
    tables = spec.init_tables(scale=1.0, generator=torch.Generator().manual_seed(3)).double()
    points = _points(7, seed=4, outside=0.0).double()
    out = hash_triplane_encode_ref(points, tables, spec.resolutions(), BOX_MIN, BOX_MAX)
    T, F = spec.table_size, spec.features_per_level
    for i, p in enumerate(points.tolist()):
        x = [(p[a] - BOX_MIN[a]) / (BOX_MAX[a] - BOX_MIN[a]) for a in range(3)]
        for plane, (a0, a1) in enumerate(((0, 1), (1, 2), (0, 2))):
            for level, r in enumerate(spec.resolutions()):
                u, v = x[a0] * r, x[a1] * r
                cu, cv = min(math.floor(u), r - 1), min(math.floor(v), r - 1)
                fu, fv = u - cu, v - cv

                def row(iu, iv):
                    if (r + 1) ** 2 <= T:
                        return iu + iv * (r + 1)
                    return (iu ^ ((iv * 2654435761) % 2**32)) % T

                for f in range(F):
                    t = tables[plane, level, :, f]
                    expect = ((1 - fu) * (1 - fv) * t[row(cu, cv)] + fu * (1 - fv) * t[row(cu + 1, cv)]
                              + (1 - fu) * fv * t[row(cu, cv + 1)] + fu * fv * t[row(cu + 1, cv + 1)])
                    got = out[i, (plane * spec.levels + level) * F + f]
                    assert got.item() == pytest.approx(expect.item(), abs=1e-9)


def test_reference_gradcheck():
    spec = HashTriplaneSpec(levels=2, features_per_level=2, log2_table_size=4, base_resolution=2, growth_factor=2.5)
    tables = spec.init_tables(scale=1.0, generator=torch.Generator().manual_seed(0)).double().requires_grad_(True)
    points = _points(6, seed=1, outside=0.0).double().requires_grad_(True)

    def encode(p, t):
        return hash_triplane_encode_ref(p, t, spec.resolutions(), BOX_MIN, BOX_MAX)

    assert gradcheck(encode, (points, tables), eps=1e-7, atol=1e-6, rtol=1e-5)


def test_points_outside_the_box_are_clamped(backend):
    spec = SPECS["mixed"]
    tables = spec.init_tables(scale=1.0, generator=torch.Generator().manual_seed(1))
    inside = torch.tensor([[0.12, 0.0, -0.15]])  # on the box's faces
    outside = torch.tensor([[0.5, 0.0, -0.9]], requires_grad=True)
    a = hash_triplane_encode(inside, tables, spec.resolutions(), BOX_MIN, BOX_MAX, backend=backend)
    b = hash_triplane_encode(outside, tables, spec.resolutions(), BOX_MIN, BOX_MAX, backend=backend)
    torch.testing.assert_close(a, b)
    (grad,) = torch.autograd.grad(b.sum(), outside)
    assert grad[0, 0] == 0 and grad[0, 2] == 0 and grad[0, 1] != 0


def test_non_contiguous_inputs(kernels):
    spec = SPECS["one_feature"]
    tables = spec.init_tables(scale=1.0, generator=torch.Generator().manual_seed(2))
    points = _points(50, seed=3)
    strided_points = torch.cat([points, points], 1)[:, 3:]
    strided_tables = tables.transpose(2, 3).contiguous().transpose(2, 3)
    assert not strided_points.is_contiguous()
    a = hash_triplane_encode(points, tables, spec.resolutions(), BOX_MIN, BOX_MAX, backend="cpu")
    b = hash_triplane_encode(strided_points, strided_tables, spec.resolutions(), BOX_MIN, BOX_MAX, backend="cpu")
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["points", "tables"])
def test_nan_is_rejected_by_name(name):
    spec = SPECS["mixed"]
    args = {"points": _points(4, seed=5), "tables": spec.init_tables()}
    args[name].view(-1)[1] = float("nan")
    with pytest.raises(ValueError, match=f"`{name}` contains NaN"):
        hash_triplane_encode(args["points"], args["tables"], spec.resolutions(), BOX_MIN, BOX_MAX)


def test_bad_configuration_is_rejected():
    spec = SPECS["mixed"]
    tables = spec.init_tables()
    points = _points(4, seed=6)
    with pytest.raises(ValueError, match="`resolutions`"):
        hash_triplane_encode(points, tables, spec.resolutions()[:-1], BOX_MIN, BOX_MAX)
    with pytest.raises(ValueError, match="power of two"):
        hash_triplane_encode(points, tables[:, :, :100], spec.resolutions(), BOX_MIN, BOX_MAX)
    with pytest.raises(ValueError, match="box_max > box_min"):
        hash_triplane_encode(points, tables, spec.resolutions(), BOX_MAX, BOX_MIN)
    with pytest.raises(ValueError, match="`points` must have shape"):
        hash_triplane_encode(points[:, :2], tables, spec.resolutions(), BOX_MIN, BOX_MAX)
    with pytest.raises(ValueError, match="levels"):
        HashTriplaneSpec(levels=0, features_per_level=2, log2_table_size=10, base_resolution=16, growth_factor=1.5)


def test_spec_shapes():
    spec = HashTriplaneSpec(levels=4, features_per_level=2, log2_table_size=10, base_resolution=16, growth_factor=1.5)
    assert spec.resolutions() == [16, 24, 36, 54]
    assert spec.table_shape() == (3, 4, 1024, 2)
    assert spec.out_features == 24


def test_nan_written_into_checked_tables_is_caught():
    """Large tables are checked once per version: an in-place change must bring the check back."""
    spec = HashTriplaneSpec(levels=8, features_per_level=2, log2_table_size=16, base_resolution=16, growth_factor=1.4)
    tables = spec.init_tables()
    assert tables.numel() >= 1 << 20
    points = _points(10, seed=8)
    hash_triplane_encode(points, tables, spec.resolutions(), BOX_MIN, BOX_MAX)
    tables[2, 5, 1234, 1] = float("nan")
    with pytest.raises(ValueError, match="`tables` contains NaN"):
        hash_triplane_encode(points, tables, spec.resolutions(), BOX_MIN, BOX_MAX)
