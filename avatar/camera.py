"""A pinhole camera to render through: view matrix, intrinsics and image size, OpenCV axes.

Renders take a `Camera`. The camera of the video is `Camera.of_video(K, w, h)` (identity view: the
avatar lives in the video camera's space); `orbit` moves it around a point, for other angles; `cropped`
keeps a window of its image (training on patches); `rays` gives its pixels' rays (for neural fields).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from avatar.geometry import rotvec_to_matrix


@dataclass(frozen=True)
class Camera:
    viewmat: Tensor  # [4, 4] camera-from-world (world = the video camera's space)
    intrinsics: Tensor  # [3, 3] pixels
    width: int
    height: int

    def __post_init__(self) -> None:
        if tuple(self.viewmat.shape) != (4, 4) or tuple(self.intrinsics.shape) != (3, 3):
            raise ValueError(f"Camera needs a [4, 4] view matrix and [3, 3] intrinsics, got {tuple(self.viewmat.shape)} "
                             f"and {tuple(self.intrinsics.shape)}")
        if self.width < 1 or self.height < 1:
            raise ValueError(f"Camera size must be positive, got {self.width}x{self.height}")
        if self.viewmat.device != self.intrinsics.device:
            raise ValueError("Camera's view matrix and intrinsics must be on one device")

    @classmethod
    def of_video(cls, intrinsics: Tensor, width: int, height: int) -> "Camera":
        """The video's own camera (identity view) with intrinsics [3, 3] for a width x height image."""
        K = intrinsics.float()
        return cls(torch.eye(4, device=K.device), K, int(width), int(height))

    @property
    def device(self) -> torch.device:
        return self.viewmat.device

    def to(self, device: torch.device | str) -> "Camera":
        return Camera(self.viewmat.to(device), self.intrinsics.to(device), self.width, self.height)

    def resized(self, width: int, height: int) -> "Camera":
        """The same view for an image of another size (intrinsics scaled per axis)."""
        K = self.intrinsics.clone()
        K[0] *= width / self.width
        K[1] *= height / self.height
        return Camera(self.viewmat, K, int(width), int(height))

    def cropped(self, x0: int, y0: int, width: int, height: int) -> "Camera":
        """The pixels [y0, y0 + height) x [x0, x0 + width) of this camera's image, as a camera of their own."""
        K = self.intrinsics.clone()
        K[0, 2] -= x0
        K[1, 2] -= y0
        return Camera(self.viewmat, K, int(width), int(height))

    def rays(self) -> tuple[Tensor, Tensor]:
        """(origins [H * W, 3], unit directions [H * W, 3]) in world space through the pixel centres, row-major."""
        K, device = self.intrinsics.float(), self.device
        v, u = torch.meshgrid(torch.arange(self.height, device=device, dtype=torch.float32) + 0.5,
                              torch.arange(self.width, device=device, dtype=torch.float32) + 0.5, indexing="ij")
        x = (u.reshape(-1) - K[0, 2]) / K[0, 0]
        y = (v.reshape(-1) - K[1, 2]) / K[1, 1]
        local = torch.stack([x, y, torch.ones_like(x)], 1)
        rotation, translation = self.viewmat[:3, :3].float(), self.viewmat[:3, 3].float()
        dirs = local @ rotation  # R^T d for each row
        dirs = dirs / dirs.norm(dim=1, keepdim=True)
        origin = -(rotation.T @ translation)
        return origin.expand_as(dirs).contiguous(), dirs.contiguous()

    def orbit(self, centre: Tensor, yaw_deg: float = 0.0, pitch_deg: float = 0.0, zoom: float = 1.0) -> "Camera":
        """This camera turned around `centre` [3] (world) by yaw and pitch (degrees), moved towards it by
        `zoom` (2 halves the distance)."""
        return Camera(orbit_viewmat(centre.to(self.device), yaw_deg, pitch_deg, zoom) @ self.viewmat,
                      self.intrinsics, self.width, self.height)


def orbit_viewmat(centre: Tensor, yaw_deg: float = 0.0, pitch_deg: float = 0.0, zoom: float = 1.0) -> Tensor:
    """[4, 4] camera-from-world of a camera at the origin orbiting `centre` [3] by yaw and pitch."""
    device = centre.device
    to_rad = torch.pi / 180
    rx = rotvec_to_matrix(torch.tensor([pitch_deg * to_rad, 0.0, 0.0], device=device))
    ry = rotvec_to_matrix(torch.tensor([0.0, yaw_deg * to_rad, 0.0], device=device))
    rot = rx @ ry
    view = torch.eye(4, device=device)
    view[:3, :3] = rot
    centre = centre.float()
    distance = centre[2]
    view[:3, 3] = centre - rot @ centre + torch.stack([distance * 0, distance * 0, -distance * (1 - 1 / zoom)])
    return view
