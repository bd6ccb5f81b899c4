"""The Camera: video camera, resizing, orbits, and renders through it equal to the orbit renders of old."""
import pytest
import torch

from avatar.camera import Camera
from avatar.geometry import rotvec_to_matrix

CPU = torch.device("cpu")
K = torch.tensor([[500.0, 0, 128], [0, 500.0, 128], [0, 0, 1]])


def _orbit_reference(centre, yaw_deg, pitch_deg, zoom):
    """The yaw/pitch/zoom view matrix renders used before `Camera` existed (written out as a reference)."""
    angles = torch.tensor([pitch_deg, yaw_deg, 0.0]) * torch.pi / 180
    rot = rotvec_to_matrix(torch.tensor([angles[0], 0.0, 0.0])) @ rotvec_to_matrix(torch.tensor([0.0, angles[1], 0.0]))
    view = torch.eye(4)
    view[:3, :3] = rot
    view[:3, 3] = centre - rot @ centre + torch.tensor([0.0, 0.0, -centre[2] * (1 - 1 / zoom)])
    return view


def test_video_camera_and_resize():
    cam = Camera.of_video(K, 256, 256)
    assert torch.equal(cam.viewmat, torch.eye(4)) and (cam.width, cam.height) == (256, 256)
    big = cam.resized(512, 384)
    torch.testing.assert_close(big.intrinsics[0], K[0] * 2)
    torch.testing.assert_close(big.intrinsics[1], K[1] * 1.5)
    assert (big.width, big.height) == (512, 384) and torch.equal(cam.intrinsics, K)  # the original is unchanged


@pytest.mark.parametrize("yaw,pitch,zoom", [(0.0, 0.0, 1.0), (25.0, 0.0, 1.0), (-30.0, 12.0, 1.6), (5.0, -8.0, 0.7)])
def test_orbit_matches_the_reference(yaw, pitch, zoom):
    centre = torch.tensor([1.5, -2.0, 60.0])
    cam = Camera.of_video(K, 256, 256).orbit(centre, yaw, pitch, zoom)
    torch.testing.assert_close(cam.viewmat, _orbit_reference(centre, yaw, pitch, zoom), atol=1e-5, rtol=1e-6)


def test_bad_cameras_are_refused():
    with pytest.raises(ValueError, match=r"\[4, 4\] view matrix"):
        Camera(torch.eye(3), K, 10, 10)
    with pytest.raises(ValueError, match="positive"):
        Camera.of_video(K, 0, 10)


def test_camera_render_equals_the_orbit_render(trained_sample):
    from avatar.data.avatar_data import AvatarData
    from avatar.model.store import load_trained
    from avatar.ops import rasterize_gaussians
    from avatar.render.frames import FrameRenderer

    trained = load_trained(trained_sample, CPU)
    data = AvatarData(trained_sample, 0, basis=trained.basis)
    background = torch.full((3,), 0.5)
    renderer = FrameRenderer(trained.model, data.camera, background)
    motion, pose = data.motion[3], data.head_pose[3]
    for yaw, pitch, zoom in ((0.0, 0.0, 1.0), (20.0, 5.0, 1.2)):
        ours = renderer.render(motion, pose, data.camera.orbit(pose[:3, 3], yaw, pitch, zoom))
        with torch.no_grad():
            posed = trained.model.posed(motion, pose)
            out = rasterize_gaussians(posed.means, posed.quats, posed.log_scales, posed.opacity_logits, posed.colors,
                                      _orbit_reference(pose[:3, 3], yaw, pitch, zoom), data.intrinsics,
                                      data.resolution, data.resolution)
        reference = (out.image[..., :3] + (1 - out.alpha)[..., None] * background).clamp(0, 1)
        torch.testing.assert_close(ours, reference, atol=2e-3, rtol=0)
        assert (ours - reference).abs().mean() < 1e-4
