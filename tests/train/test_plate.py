"""The learned background plate: it fixes a plate that is wrong, learns only from background pixels, and
travels with the trained model into renders."""
import cv2
import numpy as np
import torch
from tiny import tiny_config

from avatar.data.avatar_data import AvatarData
from avatar.model.gaussian_avatar import GaussianAvatar
from avatar.model.plate import PlateEstimate, learned_plate
from avatar.train.fit import AvatarFit

CPU = torch.device("cpu")


def _spoil_plate(folder) -> tuple[slice, slice]:
    """Paint a wrong colour over a patch of the plate that the video shows as background."""
    plate = cv2.imread(str(folder.background))
    rows, cols = slice(4, 40), slice(4, 40)  # top-left corner: background in the sample
    plate[rows, cols] = (255, 0, 255)
    cv2.imwrite(str(folder.background), plate)
    return rows, cols


def _patch_error(task: AvatarFit, rows, cols) -> float:
    scale = task.data.resolution / task.data.size
    r = slice(int(rows.start * scale), int(rows.stop * scale))
    c = slice(int(cols.start * scale), int(cols.stop * scale))
    errors = []
    with torch.no_grad():
        for i in task.data.train_ids[::10]:
            batch, _, rendered = task.render_frame(int(i))
            errors.append(float((rendered.image[r, c] - batch.image[r, c]).abs().mean()))
    return float(np.mean(errors))


def test_a_wrong_plate_is_corrected_where_frames_show_background(avatar_copy):
    rows, cols = _spoil_plate(avatar_copy)
    errors = {}
    for learn in (False, True):
        cfg = tiny_config(150)
        cfg.train.learn_background = learn
        data = AvatarData(avatar_copy, cfg.train.resolution, device=CPU)
        task = AvatarFit(data, GaussianAvatar.build(data, cfg.model, 0, CPU), cfg.train, cfg.model)
        for step in range(cfg.train.iterations):
            task.train_step(step)
        errors[learn] = _patch_error(task, rows, cols)
    assert errors[False] > 0.3  # the spoiled patch shows
    assert errors[True] < 0.5 * errors[False], errors


def test_only_clear_uncovered_background_teaches_the_plate():
    static = torch.full((8, 8, 3), 0.5)
    estimate = PlateEstimate(static, rate=0.5, prior_frames=0.0)
    clear = torch.ones(8, 8, dtype=torch.bool)
    clear[:, :4] = False  # the person and its margin on the left
    alpha = torch.zeros(8, 8)
    alpha[6:] = 1.0  # the avatar covers the bottom rows
    frame = torch.full((8, 8, 3), 0.9)
    estimate.update(frame, clear, alpha)
    learned = estimate.plate()
    torch.testing.assert_close(learned[:6, 4:], torch.full((6, 4, 3), 0.9))  # with no prior, the first frame counts fully
    assert (learned[:, :4] == 0.5).all() and (learned[6:] == 0.5).all()
    estimate.update(torch.full((8, 8, 3), 0.1), clear, alpha)  # later frames are averaged in
    torch.testing.assert_close(estimate.plate()[:6, 4:], torch.full((6, 4, 3), 0.5))


def test_a_pixel_seen_in_few_frames_moves_little():
    static = torch.full((4, 4, 3), 0.5)
    estimate = PlateEstimate(static, rate=0.05, prior_frames=4.0)
    clear, bare = torch.ones(4, 4, dtype=torch.bool), torch.zeros(4, 4)
    estimate.update(torch.full((4, 4, 3), 1.0), clear, bare)
    torch.testing.assert_close(estimate.plate(), torch.full((4, 4, 3), 0.6))  # one frame against four of prior
    for _ in range(200):
        estimate.update(torch.full((4, 4, 3), 1.0), clear, bare)
    torch.testing.assert_close(estimate.plate(), torch.full((4, 4, 3), 1.0), atol=1e-3, rtol=0)  # many frames: what they show


def test_the_learned_plate_is_resized_to_the_render():
    static = torch.full((8, 8, 3), 0.25)
    residual = torch.full((4, 4, 3), 0.5)
    torch.testing.assert_close(learned_plate(static, residual), torch.full((8, 8, 3), 0.75))
    assert learned_plate(static, None) is static
    assert float(learned_plate(static, torch.full((4, 4, 3), 2.0)).max()) == 1.0  # clamped
