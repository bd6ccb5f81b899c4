"""Per-frame corrections of training frames: the row optimiser, and the colour correction (learned for
training frames, never applied to renders)."""
import torch
from tiny import tiny_config

from avatar.data.avatar_data import AvatarData
from avatar.model.gaussian_avatar import GaussianAvatar
from avatar.render.frames import FrameRenderer
from avatar.train.fit import AvatarFit
from avatar.train.per_frame import PerFrameParameters

CPU = torch.device("cpu")


def test_rows_move_only_on_their_own_steps():
    rows = PerFrameParameters(5, (2,), CPU, lr=0.1, pull=0.0)
    target = torch.tensor([0.5, -0.3])
    for _ in range(200):
        row = rows.row(2)
        ((row - target) ** 2).sum().backward()
        rows.step(2, row.grad)
    torch.testing.assert_close(rows.values[2], target, atol=0.02, rtol=0)
    assert (rows.values[[0, 1, 3, 4]] == 0).all() and (rows.steps[[0, 1, 3, 4]] == 0).all()


def test_colour_correction_learns_a_frames_exposure_and_never_reaches_renders(avatar_copy):
    cfg = tiny_config(40)
    data = AvatarData(avatar_copy, cfg.train.resolution, device=CPU)
    task = AvatarFit(data, GaussianAvatar.build(data, cfg.model, 0, CPU), cfg.train, cfg.model)
    index = int(data.train_ids[5])
    with torch.no_grad():
        plain = task.render_frame(index)[2].image
    target = (plain * torch.tensor([1.15, 1.0, 0.85]) + 0.03).clamp(0, 1)  # a warmer, brighter frame
    losses = []
    for _ in range(150):
        _, rows, rendered = task.render_frame(index, refine=True)
        loss = (rendered.image - target).abs().mean()
        loss.backward()
        task.colour.step(index, rows["colour"].grad)
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.3 * losses[0]
    assert task.colour.values[index].abs().max() > 0.05 and (task.colour.values[int(data.train_ids[6])] == 0).all()
    # Renders (eval, replay, audio) go through FrameRenderer: no per-frame correction there.
    renderer = FrameRenderer(task.model, data.camera, data.background)
    torch.testing.assert_close(renderer.render(data.motion[index], data.head_pose[index], torso=data.torso[index]),
                               plain.clamp(0, 1))


def test_motion_noise_perturbs_training_steps_only_by_the_configured_spread(avatar_copy, monkeypatch):
    cfg = tiny_config(40)
    cfg.train.motion_noise = 0.5
    data = AvatarData(avatar_copy, cfg.train.resolution, device=CPU)
    task = AvatarFit(data, GaussianAvatar.build(data, cfg.model, 0, CPU), cfg.train, cfg.model)
    seen = []
    monkeypatch.setattr(task.model, "render", lambda motion, *args, **kwargs: seen.append(motion.clone()))
    index = int(data.train_ids[3])
    task.render_frame(index)
    for _ in range(400):
        task.render_frame(index, noise=True)
    clean = data.motion[index]
    assert torch.equal(seen[0], clean)
    drawn = torch.stack(seen[1:]) - clean
    spread = task.motion_spread
    moving = spread > 1e-4
    torch.testing.assert_close(drawn.std(0)[moving] / spread[moving], torch.full((int(moving.sum()),), 0.5), atol=0.1, rtol=0)
    assert drawn[:, ~moving].abs().max() < 1e-4
