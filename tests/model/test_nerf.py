"""The NeRF avatar kind: occupancy grids, the density prior a fresh avatar starts from, rendering (the
inference rounds against the training pass, gradients), and the nerf recipes end to end for a few steps."""
from __future__ import annotations

import shutil

import pytest
import torch

from avatar.config import load_config
from avatar.model.interface import PARTS
from avatar.model.nerf_avatar import RENDER_DARK
from avatar.model.occupancy import OccupancyGrid, dilate

CPU = torch.device("cpu")


def tiny_nerf(recipe: str = "nerf-preview", iterations: int = 6):
    cfg = load_config(recipe)
    cfg.model.hash_levels, cfg.model.hash_log2_table, cfg.model.mlp_width, cfg.model.nerf_grid = 6, 12, 32, 32
    cfg.train.resolution, cfg.train.patch, cfg.train.iterations = 128, 32, iterations
    cfg.train.adapter_steps = 50
    return cfg


def test_occupancy_grid_never_culls_a_dense_cell():
    """A scene of a ball and a small blob: after updates, every cell holding density above the threshold
    anywhere (checked on 4^3 points per cell) is occupied, and most empty space is not."""
    grid = OccupancyGrid((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0), 16)

    def density(p):
        ball = (p.norm(dim=1) < 0.5).float() * 10
        blob = ((p - torch.tensor([0.7, -0.6, 0.2])).norm(dim=1) < 0.09).float() * 10
        return ball + blob

    g = torch.Generator().manual_seed(0)
    for _ in range(4):
        grid.update(density, g)
    occupied = grid.occupied(threshold=1.0).reshape(-1)
    offsets = (torch.stack(torch.meshgrid(*[torch.arange(4.0)] * 3, indexing="ij"), -1).reshape(-1, 3) + 0.5) / 4
    cell = 2.0 / 16
    corners = grid.cell_corners()
    dense = torch.stack([density(corners + o * cell) for o in offsets]).amax(0) > 1.0
    assert bool(occupied[dense].all())
    assert float(occupied[~dense].float().mean()) < 0.3
    # cells never seen with weight drop out of what a trained field renders; seen ones stay
    grid.record(torch.tensor([[0.0, 0.0, -0.45]]), torch.tensor([0.5]))
    visible = grid.visible(threshold=1.0, margin=0).reshape(-1)
    assert int(visible.sum()) == 1 and bool(visible[grid.cells_of(torch.tensor([[0.0, 0.0, -0.45]]))].all())



@pytest.mark.parametrize("cells", [0, 1, 2])
def test_dilate_grows_a_mask_by_a_cube_of_cells(cells):
    """The same cells as a 3-d max pool of the cube's size (zero padding), for sparse, dense and tiny grids."""
    g = torch.Generator().manual_seed(cells)
    for res, fill in ((1, 0.5), (2, 0.3), (9, 0.01), (16, 0.05), (16, 0.5)):
        mask = torch.rand(res, res, res, generator=g) < fill
        pooled = torch.nn.functional.max_pool3d(mask.float()[None, None], 2 * cells + 1, stride=1, padding=cells)[0, 0] > 0
        assert torch.equal(dilate(mask, cells), pooled), (res, fill)


def test_occupancy_mask_follows_every_change_of_the_grid():
    """`occupied` keeps its mask between calls, and a new one comes after an update, a load or a new mask of
    allowed cells."""
    grid = OccupancyGrid((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0), 8)
    g = torch.Generator().manual_seed(0)
    grid.update(lambda p: (p.norm(dim=1) < 0.5).float() * 10, g)
    ball = grid.occupied(1.0)
    assert grid.occupied(1.0) is ball and 0 < int(ball.sum()) < 8**3
    grid.update(lambda p: torch.zeros(len(p)), g, decay=0.0)
    assert not bool(grid.occupied(1.0).any())
    other = OccupancyGrid((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0), 8)
    other.update(lambda p: torch.full((len(p),), 10.0), g)
    grid.load_state_dict(other.state_dict())
    assert bool(grid.occupied(1.0).all())
    grid.allowed[0] = False
    assert int(grid.occupied(1.0).sum()) == 8**3 - 64


def test_an_update_measures_the_allowed_cells_only():
    """Each allowed cell is measured at a point inside it; a cell that is not allowed holds nothing afterwards,
    whatever the field says there, and its neighbours stay occupied only by their own density."""
    grid = OccupancyGrid((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0), 8)
    grid.allowed[:, :, 4:] = False  # x >= 0 is off limits
    asked = []

    def density(p):
        asked.append(p)
        return torch.full((len(p),), 10.0)

    grid.update(density, torch.Generator().manual_seed(0), chunk=37)
    points = torch.cat(asked)
    assert len(points) == 8**3 // 2 and bool((points[:, 0] < 0).all())
    assert bool((grid.cells_of(points).sort().values == torch.nonzero(grid.allowed.reshape(-1))[:, 0]).all())
    assert bool((grid.density[:, :, 4:] == 0).all()) and bool((grid.density[:, :, :4] == 10).all())
    assert int(grid.occupied(1.0).sum()) == 8**3 // 2
    grid.allowed.fill_(False)  # nothing allowed: nothing asked, nothing kept
    grid.update(density, torch.Generator().manual_seed(0))
    assert len(torch.cat(asked)) == 8**3 // 2 and not bool(grid.density.any())


@pytest.fixture(scope="module")
def nerf_model(sample_avatar):
    from avatar.data.avatar_data import AvatarData
    from avatar.model.nerf_avatar import NerfAvatar

    cfg = tiny_nerf()
    data = AvatarData(sample_avatar, cfg.train.resolution, device=CPU)
    return NerfAvatar.build(data, cfg.model, 0, CPU), data


def test_a_fresh_avatar_starts_from_the_person_masks(nerf_model):
    """The density prior: before any training step the rendered coverage follows the person's mask and the
    head coverage the head's (a fresh field without it is a uniform fog covering everything)."""
    model, data = nerf_model
    i = int(data.train_ids[len(data.train_ids) // 2])
    batch = data.frame(i)
    out = model.render(data.motion[i], data.head_pose[i], data.camera, data.background, torso=data.torso[i], stage=0)
    assert out.image.shape == (128, 128, 3) and out.alpha.shape == (128, 128)
    alpha, head = out.alpha.detach(), out.head.detach()
    assert float((alpha - batch.person).abs().mean()) < 0.15
    assert float((head - batch.head).abs().mean()) < 0.15
    # The hull is grown by a few pixels and the 32-cell test grids are coarse (two cells of dilation are about
    # ten pixels here): away from the person's edge the frame is mostly clear, where a fog would cover it all.
    far = torch.nn.functional.max_pool2d(batch.person[None, None], 25, stride=1, padding=12)[0, 0] < 0.01
    assert float(far.float().mean()) > 0.1 and float(alpha[far].mean()) < 0.25


def test_inference_rounds_match_the_training_pass_and_gradients_reach_both_fields(nerf_model):
    model, data = nerf_model
    i = int(data.train_ids[3])
    grids = model.prepare()
    camera = data.camera.cropped(30, 20, 64, 80)
    background = data.background[20:100, 30:94]
    args = (data.motion[i], data.head_pose[i], camera, background)
    with torch.no_grad():
        fast = model.render(*args, torso=data.torso[i], prepared=grids)
    trained = model.render(*args, torso=data.torso[i], prepared=grids)
    assert fast.head is None and {"cells", "march", "fields", "composite", "total"} <= fast.timings.keys()
    # The render stops rays at RENDER_DARK and marches only the frame's own cells (`_frame_grid`, whose test
    # points can miss a faint patch of this untrained fog): a few pixels move by a few thousandths, and a ray that
    # stops leaves out at most RENDER_DARK of its light.
    torch.testing.assert_close(fast.image, trained.image.detach(), atol=5e-3, rtol=0)
    torch.testing.assert_close(fast.alpha, trained.alpha.detach(), atol=5e-3, rtol=0)
    assert float((fast.image - trained.image.detach()).abs().mean()) < 0.25 * RENDER_DARK
    (trained.image.sum() + trained.alpha.sum()).backward()
    for field in (model.head_field, model.torso_field):
        assert field.tables.grad is not None and float(field.tables.grad.abs().sum()) > 0
    assert set(trained.samples) == {"head", "torso"} and len(trained.samples["head"][0]) > 0
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("per_round", [1, 3])
def test_rounds_composite_every_sample_in_depth_order(nerf_model, monkeypatch, per_round):
    """Marching a few samples a round, both parts' samples together in depth order (`march_parts`), gives the image
    of one march of each part on its own, the two sorted together (to RENDER_DARK, where rays stop)."""
    from avatar.model import nerf_avatar
    from avatar.ops import composite, march_rays

    model, data = nerf_model
    i = int(data.train_ids[5])
    camera = data.camera.cropped(30, 20, 48, 64)
    monkeypatch.setattr(nerf_avatar, "RENDER_ROUND_SAMPLES", per_round)
    with torch.no_grad():
        parts = model._parts(data.motion[i], data.head_pose[i], camera, data.torso[i], True, model.grids(trained=False), PARTS)
        rays = camera.width * camera.height
        marched = [march_rays(p.origins, p.dirs, p.grid, *p.box, model.step, near=nerf_avatar.NEAR_CM) for p in parts]
        mids = [0.5 * (m.t_begin + m.t_end)[:, None] for m in marched]
        ray_ids, t, delta, part, points = (torch.cat(column) for column in zip(*(
            (m.ray_ids, m.t_begin, m.t_end - m.t_begin, torch.full_like(m.ray_ids, k), p.origins[m.ray_ids] + mid * p.dirs[m.ray_ids])
            for k, (p, m, mid) in enumerate(zip(parts, marched, mids)))))
        order = torch.argsort(t, stable=True)
        order = order[torch.argsort(ray_ids[order], stable=True)]
        samples = nerf_avatar._Samples(nerf_avatar._offsets(ray_ids[order], rays), ray_ids[order], t[order], delta[order],
                                       points[order], part[order])
        density, colour = nerf_avatar._evaluate(parts, samples, density_only=False)
        expected = composite(samples.offsets, density, samples.delta, colour[:, :3])
        assert bool((samples.part == 0).any()) and bool((samples.part == 1).any())
        out, opacity, _, _ = model._rounds(parts, rays, colour=True)
    tolerance = 1.5 * nerf_avatar.RENDER_DARK
    torch.testing.assert_close(out, expected.color, atol=tolerance, rtol=0)
    torch.testing.assert_close(opacity, expected.opacity, atol=tolerance, rtol=0)


def test_a_frame_marches_a_subset_of_the_trained_cells(nerf_model):
    """A render tests the prepared cells with the frame's own density: it keeps a subset of them (here a proper
    one: the fresh avatar's faint band is below the threshold), and the image it gives is the full march's
    (the test above)."""
    model, data = nerf_model
    i = int(data.train_ids[3])
    grids = model.prepare()
    with torch.no_grad():
        pieces = model._parts(data.motion[i], data.head_pose[i], data.camera, data.torso[i], True, grids, PARTS)
        for piece in pieces:
            mask = model._frame_grid(piece, grids.head_cells if piece.name == "head" else grids.torso_cells)
            assert mask.shape == piece.grid.shape and not bool((mask & ~piece.grid).any())
            assert 0 < int(mask.sum()) < int(piece.grid.sum())


def test_a_frame_keeps_the_cells_next_to_dense_ones_that_hold_a_thin_sheet():
    """Cells whose centre is dense are kept; of their neighbours, those holding a dense sheet off their centre are
    kept too (the test points around the centre find it), the empty ones are not (growing the dense cells by one
    would keep them)."""
    from types import SimpleNamespace

    from avatar.model.nerf_avatar import NerfAvatar, _Part, _shell_offsets
    from avatar.model.nerf_fields import cell_centres

    stages = _shell_offsets(torch.device("cpu"))
    assert [len(s) for s in stages] == [8, 12, 6] and len(torch.unique(torch.cat(stages), dim=0)) == 26
    size, lo, hi = 8, (-1.0, -1.0, -1.0), (1.0, 1.0, 1.0)  # cells of 0.25, centres at -0.875, -0.625, ...

    def field(points, density_only):
        x = points[:, 0]
        solid = x < -0.5  # the first two columns of cells, centres and all
        # Off the centres of column 2 (its lower half only) and of column 6 (not next to a dense cell).
        sheet = ((x > -0.47) & (x < -0.45) & (points[:, 1] < 0)) | ((x > 0.53) & (x < 0.55))
        return 10.0 * (solid | sheet).float(), None

    grid = torch.ones(size, size, size, dtype=torch.bool)
    part = _Part("head", torch.zeros(1, 3), torch.ones(1, 3), grid, (lo, hi), field)
    kept = NerfAvatar._frame_grid(SimpleNamespace(threshold=1.0), part, cell_centres(lo, hi, size, torch.device("cpu")))
    columns = kept.any(0).any(0)  # [x]: the grid is [z, y, x]
    assert columns.tolist() == [True, True, True, False, False, False, False, False]
    assert bool(kept[:, :, :2].all()) and bool(kept[:, :4, 2].all()) and not bool(kept[:, 4:, 2].any())


def test_a_march_spans_only_the_box_of_the_set_cells_on_the_steps_from_the_part_box():
    from avatar.model.nerf_avatar import NEAR_CM, _Part, _span
    from avatar.ops.volume_ref import BIG

    grid = torch.zeros(8, 8, 8, dtype=torch.bool)
    grid[2:4, 3:5, 4:6] = True  # z 2-3, y 3-4, x 4-5: the box [0, -0.25, -0.5] .. [0.5, 0.25, 0] of [-1, 1]^3
    origins = torch.tensor([[0.25, 0.0, -10.0], [-0.5, 0.0, -10.0]])
    dirs = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    part = _Part("torso", origins, dirs, grid, ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0)), lambda p, only: (p[:, 0], None))
    start, stop = _span(part, 0.3)
    # The first ray enters the box at t = 9 and the set cells' box at 9.5, leaves it at 10: it starts on the step at
    # 9.3, the last one before 9.5; the second ray passes beside the set cells.
    assert NEAR_CM < 9.0
    torch.testing.assert_close(start, torch.tensor([9.3, BIG]))
    torch.testing.assert_close(stop, torch.tensor([10.0, BIG]))


def test_only_the_parts_asked_for_are_rendered(nerf_model):
    model, data = nerf_model
    i = int(data.train_ids[0])
    with torch.no_grad():
        both = model.render(data.motion[i], data.head_pose[i], data.camera, torch.zeros(3), torso=data.torso[i])
        head = model.render(data.motion[i], data.head_pose[i], data.camera, torch.zeros(3), torso=data.torso[i], parts=frozenset({"head"}))
        none = model.render(data.motion[i], data.head_pose[i], data.camera, torch.ones(3), parts=frozenset())
    assert float(head.alpha.sum()) < float(both.alpha.sum())
    assert bool((none.image == 1).all()) and bool((none.alpha == 0).all())


def test_nerf_recipe_trains_a_few_steps(nerf_model):
    """The quality recipe's settings (stages, learning rate, patches at the processed size, the tables' own Adam
    beta2) run; the losses are finite and the fields change."""
    from avatar.train.fit import AvatarFit

    _, data = nerf_model
    from avatar.model.nerf_avatar import NerfAvatar

    cfg = tiny_nerf("nerf", iterations=3)
    cfg.train.patch = 0  # the kind's own patch size
    model = NerfAvatar.build(data, cfg.model, 1, CPU)
    before = model.head_field.tables.detach().clone()
    task = AvatarFit(data, model, cfg.train, cfg.model)
    assert task.patch == NerfAvatar.patch_size
    betas = {group["name"]: group["betas"] for group in task.optimizer.param_groups}
    assert betas["head_field.tables"] == betas["torso_field.tables"] == (0.9, 0.99)
    assert betas["head_field.mlp"] == betas["torso_field.mlp"] == (0.9, 0.999)
    scalars = [task.train_step(step) for step in range(3)]
    assert all(torch.isfinite(torch.tensor(s["loss"])) for s in scalars)
    assert not torch.equal(before, model.head_field.tables.detach())


def test_preview_recipe_fits_saves_renders_and_refuses_ply(sample_avatar, tmp_path):
    recipe = "nerf-preview"
    from helpers import run_cli

    from avatar.folder import AvatarFolder
    from avatar.model.nerf_avatar import NerfAvatar
    from avatar.model.store import load_trained
    from avatar.train.run import train_avatar

    target = tmp_path / "avatar"
    shutil.copytree(sample_avatar.root, target, ignore=shutil.ignore_patterns("model", "eval", "logs"))
    folder = AvatarFolder(target)
    train_avatar(folder, tiny_nerf(recipe), recipe)
    trained = load_trained(folder, CPU)
    assert isinstance(trained.model, NerfAvatar) and trained.info["steps"] == 6
    assert trained.model.meta()["grid_resolution"] == 32
    from avatar.data.avatar_data import AvatarData

    data = AvatarData(folder, 0, basis=trained.basis, device=CPU)
    i = int(data.test_ids[0])
    with torch.no_grad():
        out = trained.model.render(data.motion[i], data.head_pose[i], data.camera.resized(48, 48), torch.zeros(3),
                                   torso=data.torso[i], prepared=trained.model.prepare())
    assert out.image.shape == (48, 48, 3) and bool(torch.isfinite(out.image).all())
    result = run_cli("export", target, "--ply", tmp_path / "a.ply")
    assert result.returncode != 0 and "PLY export is for gaussian avatars" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_torso_offset_volume_is_the_offset_at_each_point(nerf_model):
    """A render looks one frame's torso offset (image shift and warp) up in a volume computed once: it agrees
    with evaluating both at each point to a small fraction of a millimetre, for a frame's pose and signal."""
    from avatar.model.fields import head_pose_features
    from avatar.model.nerf_avatar import WARP_RESOLUTION

    model, data = nerf_model
    field = model.torso_field
    i = int(data.train_ids[7])
    pose = head_pose_features(data.head_pose[i], model.rest_pose)
    signal = data.torso[i] + torch.tensor([0.02, -0.01, -0.02, 0.01])  # the halves apart: the split matters
    lo, hi = torch.tensor(field.box_min), torch.tensor(field.box_max)
    points = lo + torch.rand(2000, 3, generator=torch.Generator().manual_seed(1)) * (hi - lo)
    with torch.no_grad():
        volume = field.warp_volume(field.warp_basis(WARP_RESOLUTION), pose, signal)
        looked_up = field.canonical(points, pose, signal, volume)
        exact = field.canonical(points, pose, signal)
    assert float((exact - points).abs().max()) > 0.1  # the offset is not nothing
    # Inside the outermost cell centres the volume interpolates; the border cells hold their centre's value.
    inside = ((points - lo) / (hi - lo) - 0.5).abs().amax(1) < 0.5 - 1 / WARP_RESOLUTION
    assert float((looked_up - exact)[inside].abs().max()) < 0.02


def test_expression_warp_moves_points_with_their_landmarks_and_leaves_the_rest():
    """Two far-apart landmarks, one coefficient moving the first by 1 cm in x and the second by 0.5 cm in y:
    a point at a landmark moves (almost) as the landmark does, a point far from both stays, and a zero
    coefficient is no warp at all."""
    from avatar.model.nerf_fields import ExpressionWarp
    from avatar.ops import lookup_volume

    anchors = torch.tensor([[-3.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
    modes = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.5, 0.0]]])
    warp = ExpressionWarp(anchors, modes, (-8.0, -8.0, -8.0), (8.0, 8.0, 8.0), resolution=64, sigma=1.0)
    points = torch.tensor([[-3.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 6.0, 6.0]])
    moved = lookup_volume(warp.volume(torch.tensor([2.0])), points, warp.box_min, warp.box_max)
    assert torch.allclose(moved[0], torch.tensor([2.0, 0.0, 0.0]), atol=0.1)
    assert torch.allclose(moved[1], torch.tensor([0.0, 1.0, 0.0]), atol=0.05)
    assert moved[2].abs().max() < 1e-4
    assert lookup_volume(warp.volume(torch.zeros(1)), points, warp.box_min, warp.box_max).abs().max() == 0


def test_a_resumed_nerf_run_is_the_same_run(sample_avatar, tmp_path, monkeypatch):
    """20 steps straight, and 10 steps + Ctrl-C + resume for 10 more, end with the same fields and occupancy
    grids (the grid refreshes and the seen-weight recording of the last stage included)."""
    from safetensors.torch import load_file

    from avatar.folder import AvatarFolder
    from avatar.train import trainer as trainer_module
    from avatar.train.fit import AvatarFit
    from avatar.train.run import train_avatar

    cfg = tiny_nerf(iterations=20)
    folders = []
    for name in ("straight", "resumed"):
        shutil.copytree(sample_avatar.root, tmp_path / name, ignore=shutil.ignore_patterns("model", "eval", "logs"))
        folders.append(AvatarFolder(tmp_path / name))
    train_avatar(folders[0], cfg, "nerf-preview")

    original, calls = AvatarFit.train_step, {"n": 0}

    def interrupted(self, step):
        calls["n"] += 1
        if calls["n"] == 11:
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(AvatarFit, "train_step", interrupted)
    with pytest.raises(trainer_module.TrainingInterrupted, match="--resume"):
        train_avatar(folders[1], cfg, "nerf-preview")
    monkeypatch.undo()
    train_avatar(folders[1], cfg, "nerf-preview", resume=True)
    a, b = (load_file(str(f.model / "avatar.safetensors")) for f in folders)
    assert a.keys() == b.keys() and any(k.endswith("head_grid.seen") for k in a)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


def test_the_distortion_loss_reaches_the_fields(nerf_model):
    model, data = nerf_model
    cfg = tiny_nerf().train
    cfg.distortion_weight = 0.01
    i = int(data.train_ids[0])
    out = model.render(data.motion[i], data.head_pose[i], data.camera.cropped(32, 32, 64, 64), torch.zeros(3), torso=data.torso[i])
    value, weight = model.losses(out, cfg)["distortion"]
    assert weight == 0.01 and float(value.detach()) > 0
    value.backward()
    assert float(model.head_field.tables.grad.abs().sum()) > 0
    model.zero_grad(set_to_none=True)
