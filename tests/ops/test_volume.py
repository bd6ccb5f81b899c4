"""Volume rendering: the marching, compositing and volume-lookup kernels against their torch twins (random
rays, empty and single-ray packs, rounds of marching, points inside and beyond the box), the twins against
plain per-ray loops, explicit interpolation and finite differences, and bad input."""
from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck

from avatar.ops.volume import composite, lookup_volume, march_parts, march_rays
from avatar.ops.volume_ref import BIG, composite_ref, lookup_volume_ref

BOX_MIN, BOX_MAX = (-1.0, -0.8, -1.2), (1.0, 0.9, 1.1)


def _rays(n: int, seed: int):
    """Rays from around z = -3 towards the box, some of them missing it, some axis-aligned."""
    g = torch.Generator().manual_seed(seed)
    origins = torch.randn(n, 3, generator=g) * 0.4 + torch.tensor([0.0, 0.0, -3.0])
    target = (torch.rand(n, 3, generator=g) - 0.5) * 3.0
    dirs = target - origins
    if n >= 4:
        dirs[:2, :2] = 0.0  # straight along z
        dirs[2] = torch.tensor([1.0, 0.0, 0.0])  # parallel to a face: in or out by its origin
    return origins, dirs / dirs.norm(dim=1, keepdim=True)


def _grid(res: int, seed: int, fill: float = 0.5):
    return torch.rand(res, res, res, generator=torch.Generator().manual_seed(seed)) < fill


def _packs(n_rays: int, seed: int, channels: int = 4):
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(0, 9, (n_rays,), generator=g)
    if n_rays > 2:
        counts[1] = 0
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    s = int(offsets[-1])
    sigma = torch.rand(s, generator=g) * 3
    delta = torch.rand(s, generator=g) * 0.5 + 0.05
    color = torch.rand(s, channels, generator=g)
    return offsets, sigma, delta, color


@pytest.mark.parametrize("n", [0, 1, 300])
@pytest.mark.parametrize("max_samples", [1 << 20, 3])
@pytest.mark.parametrize("stop", [False, True])
def test_march_kernel_matches_reference(kernels, n, max_samples, stop):
    origins, dirs = _rays(n, seed=n)
    grid = _grid(16, seed=1)
    t_stop = torch.rand(n, generator=torch.Generator().manual_seed(n)) * 2 + 2.5 if stop else None
    kw = dict(step=0.07, near=0.5, max_samples=max_samples, t_stop=t_stop)
    got = march_rays(origins, dirs, grid, BOX_MIN, BOX_MAX, backend="cpu", **kw)
    want = march_rays(origins, dirs, grid, BOX_MIN, BOX_MAX, backend="torch", **kw)
    assert torch.equal(got.offsets, want.offsets)
    assert torch.equal(got.ray_ids, want.ray_ids)
    torch.testing.assert_close(got.t_begin, want.t_begin, rtol=0, atol=1e-5)
    torch.testing.assert_close(got.t_end, want.t_end, rtol=0, atol=1e-5)
    torch.testing.assert_close(got.t_next, want.t_next, rtol=0, atol=1e-5)
    if n == 300:
        counts = got.offsets[1:] - got.offsets[:-1]
        assert bool((counts == 0).any()) and int(counts.max()) == min(max_samples, int(counts.max()))
        assert got.count > (1000 if max_samples > 3 and not stop else 300)
    if stop and got.count:
        assert bool((got.t_begin < t_stop[got.ray_ids]).all())


@pytest.mark.parametrize("by", ["count", "depth"])
def test_marching_in_rounds_gives_the_samples_of_one_pass(backend, by):
    origins, dirs = _rays(200, seed=3)
    grid = _grid(12, seed=2)
    whole = march_rays(origins, dirs, grid, BOX_MIN, BOX_MAX, 0.05, backend=backend)
    t_start, pieces = None, []
    for k in range(200):
        limit = dict(max_samples=4) if by == "count" else dict(t_stop=torch.full((200,), 2.0 + 0.3 * k))
        part = march_rays(origins, dirs, grid, BOX_MIN, BOX_MAX, 0.05, t_start=t_start, backend=backend, **limit)
        pieces.append(part)
        t_start = part.t_next
        if not bool((part.t_next < 1e38).any()):
            break
    ids = torch.cat([p.ray_ids for p in pieces])
    starts = torch.cat([p.t_begin for p in pieces])
    # Continuing from t_next restarts the float sum a = begin + k step: a midpoint that sits on a cell face
    # or the box's far side can land on the other side of it, so a sample may come or go; all others match.
    counts = torch.bincount(ids, minlength=200)
    assert int((counts - (whole.offsets[1:] - whole.offsets[:-1])).abs().max()) <= 1
    assert int((counts != whole.offsets[1:] - whole.offsets[:-1]).sum()) <= 2
    key = lambda i, t: i.double() * 1000 + t.double()
    gap = (key(ids, starts)[:, None] - key(whole.ray_ids, whole.t_begin)[None]).abs().amin(1)
    assert float((gap < 1e-4).float().mean()) > 0.998


def test_march_samples_lie_in_occupied_cells_of_the_box():
    origins, dirs = _rays(100, seed=5)
    grid = _grid(8, seed=4, fill=0.3)
    s = march_rays(origins, dirs, grid, BOX_MIN, BOX_MAX, 0.03, backend="torch")
    mid = origins[s.ray_ids] + 0.5 * (s.t_begin + s.t_end)[:, None] * dirs[s.ray_ids]
    lo, hi = torch.tensor(BOX_MIN), torch.tensor(BOX_MAX)
    assert bool(((mid >= lo) & (mid < hi)).all())
    ijk = ((mid - lo) / (hi - lo) * 8).long()
    assert bool(grid[ijk[:, 2], ijk[:, 1], ijk[:, 0]].all())
    torch.testing.assert_close(s.t_end - s.t_begin, torch.full_like(s.t_end, 0.03))
    # a full grid gives contiguous intervals along each ray
    full = march_rays(origins, dirs, torch.ones(8, 8, 8, dtype=torch.bool), BOX_MIN, BOX_MAX, 0.03, backend="torch")
    same_ray = full.ray_ids[1:] == full.ray_ids[:-1]
    torch.testing.assert_close(full.t_begin[1:][same_ray], full.t_end[:-1][same_ray], rtol=0, atol=1e-5)


@pytest.mark.parametrize("n_rays", [1, 2, 500])
def test_composite_kernel_matches_reference(kernels, n_rays):
    offsets, sigma, delta, color = _packs(n_rays, seed=n_rays)
    grads = {}
    for backend in ("cpu", "torch"):
        s, c = sigma.clone().requires_grad_(), color.clone().requires_grad_()
        out = composite(offsets, s, delta, c, backend=backend)
        g = torch.Generator().manual_seed(7)
        loss = (out.color * torch.randn(out.color.shape, generator=g)).sum() + (out.opacity * torch.randn(n_rays, generator=g)).sum()
        loss = loss + (out.weights * torch.randn(out.weights.shape, generator=g)).sum()  # the weights carry gradients too
        loss.backward()
        grads[backend] = (out.color.detach(), out.opacity.detach(), out.weights.detach(), s.grad, c.grad)
    for got, want in zip(grads["cpu"], grads["torch"]):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("channels", [1, 8])
def test_composite_weight_gradients_match_finite_differences(backend, channels):
    offsets, sigma, delta, color = _packs(7, seed=13, channels=channels)
    g = torch.Generator().manual_seed(5)
    pull = torch.randn(len(sigma), generator=g)

    def loss(s: torch.Tensor) -> torch.Tensor:
        return (composite(offsets, s, delta, color, backend=backend).weights * pull).sum()
    s = sigma.clone().requires_grad_()
    loss(s).backward()
    eps = 1e-2
    for i in range(0, len(sigma), 3):
        up, down = sigma.clone(), sigma.clone()
        up[i] += eps
        down[i] -= eps
        numeric = (loss(up) - loss(down)) / (2 * eps)
        assert float(s.grad[i]) == pytest.approx(float(numeric), rel=2e-2, abs=2e-3)


def test_composite_with_no_samples(backend):
    offsets = torch.zeros(4, dtype=torch.long)
    sigma = torch.zeros(0, requires_grad=True)
    out = composite(offsets, sigma, torch.zeros(0), torch.zeros(0, 3), backend=backend)
    assert out.color.shape == (3, 3) and bool((out.color == 0).all()) and bool((out.opacity == 0).all())
    out.opacity.sum().backward()
    assert sigma.grad.shape == (0,)


def test_composite_reference_matches_a_plain_loop():
    offsets, sigma, delta, color = _packs(20, seed=9, channels=3)
    out, opacity, weights = composite_ref(offsets, sigma, delta, color)
    for r in range(20):
        T, acc = 1.0, torch.zeros(3)
        for i in range(int(offsets[r]), int(offsets[r + 1])):
            alpha = 1 - math.exp(-float(sigma[i] * delta[i]))
            assert float(weights[i]) == pytest.approx(T * alpha, abs=1e-6)
            acc += T * alpha * color[i]
            T *= 1 - alpha
        torch.testing.assert_close(out[r], acc, rtol=1e-5, atol=1e-6)
        assert float(opacity[r]) == pytest.approx(1 - T, abs=1e-6)


def test_composite_reference_gradcheck():
    offsets, sigma, delta, color = _packs(6, seed=11, channels=2)
    inputs = (sigma.double().requires_grad_(), color.double().requires_grad_())
    assert gradcheck(lambda s, c: composite_ref(offsets, s, delta.double(), c)[:2], inputs, eps=1e-6, atol=1e-6)


def test_dense_medium_is_opaque_and_empty_medium_transparent(backend):
    offsets = torch.tensor([0, 50, 100])
    sigma = torch.cat([torch.full((50,), 40.0), torch.zeros(50)])
    out = composite(offsets, sigma, torch.full((100,), 0.1), torch.ones(100, 1), backend=backend)
    assert float(out.opacity[0]) == pytest.approx(1.0, abs=1e-6) and float(out.opacity[1]) == 0.0


SECOND_BOX = ((-0.6, -1.0, -0.5), (0.7, 0.5, 0.9))


def _two_parts(n: int, seed: int):
    """The rays of `_rays` as two parts see them: as they are in the test box, and moved by a rigid motion into
    a second box with a grid of another size (as a head frame sees camera rays)."""
    origins, dirs = _rays(n, seed)
    angle = torch.tensor(0.4)
    c, s = torch.cos(angle), torch.sin(angle)
    rotation = torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    shift = torch.tensor([0.1, -0.2, 0.15])
    grids = [_grid(16, seed=1), _grid(11, seed=2, fill=0.4)]
    boxes = [(BOX_MIN, BOX_MAX), SECOND_BOX]
    return (torch.stack([origins, (origins - shift) @ rotation]), torch.stack([dirs, dirs @ rotation]), grids, boxes)


@pytest.mark.parametrize("n", [0, 1, 300])
@pytest.mark.parametrize("max_samples", [1 << 20, 3])
@pytest.mark.parametrize("parts", [1, 2])
def test_march_parts_kernel_matches_reference(kernels, n, max_samples, parts):
    origins, dirs, grids, boxes = _two_parts(n, seed=n + 7)
    origins, dirs, grids, boxes = origins[:parts], dirs[:parts], grids[:parts], boxes[:parts]
    t_stop = torch.rand(parts, n, generator=torch.Generator().manual_seed(n)) * 2 + 2.5
    kw = dict(step=0.07, near=0.5, max_samples=max_samples, t_stop=t_stop)
    got = march_parts(origins, dirs, grids, boxes, backend="cpu", **kw)
    want = march_parts(origins, dirs, grids, boxes, backend="torch", **kw)
    for name in ("offsets", "ray_ids", "parts"):
        assert torch.equal(getattr(got, name), getattr(want, name)), name
    for name in ("t_begin", "t_end", "points", "t_next"):
        torch.testing.assert_close(getattr(got, name), getattr(want, name), rtol=0, atol=1e-5, msg=name)
    if n == 300:
        counts = got.offsets[1:] - got.offsets[:-1]
        assert bool((counts == 0).any()) and int(counts.max()) <= max_samples
        assert len(got.ray_ids) > 300 and set(got.parts.tolist()) == set(range(parts))


def test_march_parts_merges_each_parts_samples_in_depth_order():
    origins, dirs, grids, boxes = _two_parts(200, seed=4)
    both = march_parts(origins, dirs, grids, boxes, 0.05, near=0.5, backend="torch")
    same_ray = both.ray_ids[1:] == both.ray_ids[:-1]
    assert bool((both.t_begin[1:][same_ray] >= both.t_begin[:-1][same_ray]).all())
    for p in range(2):
        alone = march_rays(origins[p], dirs[p], grids[p], *boxes[p], 0.05, near=0.5, backend="torch")
        mine = both.parts == p
        assert torch.equal(both.ray_ids[mine], alone.ray_ids)
        torch.testing.assert_close(both.t_begin[mine], alone.t_begin)
        mid = 0.5 * (alone.t_begin + alone.t_end)[:, None]
        torch.testing.assert_close(both.points[mine], origins[p][alone.ray_ids] + mid * dirs[p][alone.ray_ids])
    assert bool((both.t_next == BIG).all())


def test_marching_parts_in_rounds_gives_the_samples_of_one_pass(backend):
    origins, dirs, grids, boxes = _two_parts(200, seed=5)
    whole = march_parts(origins, dirs, grids, boxes, 0.05, backend=backend)
    t_start, pieces = None, []
    for _ in range(400):
        piece = march_parts(origins, dirs, grids, boxes, 0.05, t_start=t_start, max_samples=3, backend=backend)
        assert int(piece.offsets.diff().max()) <= 3
        pieces.append(piece)
        t_start = piece.t_next
        if not bool((piece.t_next < BIG).any()):
            break
    ids = torch.cat([p.ray_ids for p in pieces])
    order = torch.argsort(ids, stable=True)  # each round is deeper along every ray than the last
    for name in ("ray_ids", "t_begin", "parts"):
        got = torch.cat([getattr(p, name) for p in pieces])[order]
        torch.testing.assert_close(got, getattr(whole, name), rtol=0, atol=1e-4, msg=name)


@pytest.mark.parametrize("bad, message", [
    (dict(boxes=[(BOX_MIN, BOX_MAX)]), "one box per grid"),
    (dict(grids=[torch.ones(4, 4, 4)] * 2), "bool or uint8"),
    (dict(origins=torch.zeros(3, 4, 3)), "origins"),
    (dict(t_start=torch.zeros(2, 5)), "t_start"),
])
def test_march_parts_rejects_bad_input(bad, message):
    origins, dirs, grids, boxes = _two_parts(4, seed=0)
    args = dict(origins=origins, dirs=dirs, grids=grids, boxes=boxes, step=0.1)
    args.update(bad)
    with pytest.raises(ValueError, match=message):
        march_parts(**args)


@pytest.mark.parametrize("bad, message", [
    (dict(grid=torch.ones(4, 4, 5, dtype=torch.bool)), "grid"),
    (dict(grid=torch.ones(4, 4, 4)), "bool or uint8"),
    (dict(step=0.0), "step"),
    (dict(box_max=(1.0, -0.9, 1.0)), "box_max > box_min"),
    (dict(max_samples=0), "max_samples"),
])
def test_march_rejects_bad_input(bad, message):
    origins, dirs = _rays(4, seed=0)
    args = dict(grid=torch.ones(4, 4, 4, dtype=torch.bool), box_min=BOX_MIN, box_max=BOX_MAX, step=0.1)
    args.update(bad)
    with pytest.raises(ValueError, match=message):
        march_rays(origins, dirs, **args)


def test_composite_rejects_a_pack_that_does_not_match_its_samples():
    with pytest.raises(ValueError, match="offsets"):
        composite(torch.tensor([0, 3]), torch.ones(4), torch.ones(4), torch.ones(4, 3))
    with pytest.raises(ValueError, match="NaN"):
        composite(torch.tensor([0, 1]), torch.tensor([float("nan")]), torch.ones(1), torch.ones(1, 3))


def _volume_and_points(channels: int, res: int, n: int, seed: int):
    """A random volume and points spread a little beyond the box (the border rule) with some on its faces."""
    g = torch.Generator().manual_seed(seed)
    volume = torch.randn(channels, res, res, res, generator=g)
    lo, hi = torch.tensor(BOX_MIN), torch.tensor(BOX_MAX)
    points = lo + (torch.rand(n, 3, generator=g) * 1.4 - 0.2) * (hi - lo)
    if n >= 2:
        points[0], points[1] = lo, hi
    return volume, points


@pytest.mark.parametrize("channels, res, n", [(3, 7, 500), (1, 1, 20), (4, 2, 33), (3, 5, 0), (2, 4, 1)])
def test_lookup_kernel_matches_reference(kernels, channels, res, n):
    volume, points = _volume_and_points(channels, res, n, seed=res)
    got = lookup_volume(volume, points, BOX_MIN, BOX_MAX, backend="cpu")
    want = lookup_volume(volume, points, BOX_MIN, BOX_MAX, backend="torch")
    assert got.shape == (n, channels)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_lookup_reference_interpolates_between_cell_centres_and_holds_the_border():
    """A volume whose values are x, y and z of its cell centres gives back any point's coordinates inside the
    outermost centres, and the clamped coordinates beyond them."""
    res = 6
    lo, hi = torch.tensor(BOX_MIN), torch.tensor(BOX_MAX)
    axis = (torch.arange(res, dtype=torch.float32) + 0.5) / res
    z, y, x = torch.meshgrid(axis, axis, axis, indexing="ij")
    volume = torch.stack([x, y, z]) * (hi - lo)[:, None, None, None] + lo[:, None, None, None]
    _, points = _volume_and_points(3, res, 400, seed=4)
    first, last = lo + 0.5 * (hi - lo) / res, hi - 0.5 * (hi - lo) / res
    out = lookup_volume_ref(volume, points, BOX_MIN, BOX_MAX)
    torch.testing.assert_close(out, torch.maximum(torch.minimum(points, last), first), rtol=0, atol=1e-5)


def test_lookup_is_differentiable_through_its_twin(kernels):
    volume, points = _volume_and_points(3, 5, 50, seed=2)
    volume.requires_grad_(True)
    out = lookup_volume(volume, points, BOX_MIN, BOX_MAX)
    assert out.requires_grad
    (grad,) = torch.autograd.grad(out.square().sum(), volume)
    (want,) = torch.autograd.grad(lookup_volume_ref(volume, points, BOX_MIN, BOX_MAX).square().sum(), volume)
    torch.testing.assert_close(grad, want)
    with torch.no_grad():
        torch.testing.assert_close(lookup_volume(volume, points, BOX_MIN, BOX_MAX), out.detach(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("volume, points, message", [
    (torch.zeros(3, 4, 4, 5), torch.zeros(2, 3), r"\[C, G, G, G\]"),
    (torch.zeros(3, 4, 4, 4), torch.zeros(2, 2), "points"),
    (torch.zeros(3, 4, 4, 4), torch.full((2, 3), float("nan")), "NaN"),
    (torch.zeros(3, 4, 4, 4, dtype=torch.long), torch.zeros(2, 3), "volume"),
])
def test_lookup_rejects_bad_input(volume, points, message):
    with pytest.raises(ValueError, match=message):
        lookup_volume(volume, points, BOX_MIN, BOX_MAX)
