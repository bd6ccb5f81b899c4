"""What a trained avatar produces: deterministic eval, replay videos, camera moves, PLY export."""
import json

import numpy as np
import pytest
import torch
from helpers import run_cli
from media import read_audio, read_frames

from avatar.eval.run import evaluate
from avatar.render.export_ply import FIELDS, read_ply
from avatar.render.replay import parse_camera, parse_frames
from avatar.errors import AvatarError

CPU = torch.device("cpu")


def test_eval_is_deterministic_and_complete(trained_sample):
    first = evaluate(trained_sample, CPU, video=False)
    second = evaluate(trained_sample, CPU, video=True)
    for key in ("psnr", "ssim", "lmd_mouth_px"):
        assert first[key] == second[key]
    assert 10 < first["psnr"] < 60 and 0 < first["ssim"] <= 1 and first["lmd_mouth_px"] >= 0
    saved = json.loads((trained_sample.eval / "metrics.json").read_text())
    assert set(saved["covers"]) >= {"psnr", "ssim", "lmd_mouth_px", "regions"}
    assert first["regions"] == second["regions"]
    driven = saved["audio_driven"]
    for part in (driven, driven["closed_pauses"], driven["prior_only"], driven["hand_prior_only"]):
        assert set(part["channels_r"]) == {"jaw_open", "lip_close", "funnel", "pucker", "stretch", "roll"}
        assert all(r is None or -1 <= r <= 1 for r in part["channels_r"].values())
    references = driven["references"]
    assert references["still_mouth"]["lmd_mouth_px"] > references["tracked_channels"]["lmd_mouth_px"] >= 0
    regions = saved["regions"]
    assert set(regions) == {"face", "mouth", "hair", "torso", "background", "silhouette"}
    for name in ("face", "mouth", "hair", "background", "silhouette"):
        assert 10 < regions[name]["psnr"] < 70 and 0 < regions[name]["ssim"] <= 1, (name, regions[name])
    import cv2

    error_map = cv2.imread(str(trained_sample.eval / "error_map.png"))
    assert error_map.shape == (saved["resolution"], saved["resolution"], 3)
    frames = read_frames(trained_sample.eval / "side_by_side.mp4")
    assert len(frames) == saved["frames"] and frames[0].shape[1] == 2 * frames[0].shape[0]


def test_replay_has_the_original_audio_and_length(trained_sample, tmp_path):
    out = tmp_path / "clip.mp4"
    result = run_cli("render", trained_sample.root, "--replay", "--frames", "10:60", "--out", out)
    assert result.returncode == 0, result.stderr
    frames = read_frames(out)
    audio, rate = read_audio(out)
    assert len(frames) == 50 and abs(len(audio) / rate - 2.0) < 0.05


def test_camera_moves_change_the_view(trained_sample, tmp_path):
    from avatar.data.avatar_data import AvatarData
    from avatar.model.store import load_trained
    from avatar.render.frames import FrameRenderer

    trained = load_trained(trained_sample, CPU)
    data = AvatarData(trained_sample, 0, basis=trained.basis)
    renderer = FrameRenderer(trained.model, data.camera)
    straight = renderer.render(data.motion[0], data.head_pose[0])
    turned = renderer.render(data.motion[0], data.head_pose[0], data.camera.orbit(data.head_pose[0, :3, 3], 25.0, 0.0, 1.0))
    assert (straight - turned).abs().mean() > 0.01
    assert parse_camera("20") == (20.0, 0.0, 1.0) and parse_camera("20,5,1.5") == (20.0, 5.0, 1.5)
    assert parse_frames("5:", 10) == range(5, 10)
    with pytest.raises(AvatarError):
        parse_frames("9:3", 10)


def test_ply_export_reimports(trained_sample, tmp_path):
    from avatar.model.store import load_trained

    out = tmp_path / "avatar.ply"
    result = run_cli("export", trained_sample.root, "--ply", out)
    assert result.returncode == 0, result.stderr
    ply = read_ply(out)
    assert list(ply) == FIELDS
    trained = load_trained(trained_sample, CPU)
    count = len(trained.model.head) + len(trained.model.torso)
    assert len(ply["x"]) == count
    quats = np.stack([ply[f"rot_{i}"] for i in range(4)], 1)
    np.testing.assert_allclose(np.linalg.norm(quats, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(ply["opacity"][len(trained.model.head):], trained.model.torso.opacity_logits.detach().numpy(), atol=1e-6)
    assert np.isfinite(np.stack(list(ply.values()))).all()


def test_commands_without_a_trained_avatar_explain(sample_avatar, tmp_path):
    for args in (("eval", sample_avatar.root), ("export", sample_avatar.root, "--ply", tmp_path / "x.ply")):
        result = run_cli(*args)
        assert result.returncode == 2 and "no trained avatar" in result.stderr and "Traceback" not in result.stderr
