"""Exporting the avatar as a standard 3D Gaussian Splatting PLY (the layout other splat viewers read):
x y z nx ny nz f_dc_0..2 opacity scale_0..2 rot_0..3, binary little-endian, colours as degree-0
spherical harmonics, opacity as a logit, scales as logs, rotations as (w, x, y, z).

The head is posed at the rest pose of the training video with a neutral expression (the mean motion
code), the torso as it is: the PLY shows the avatar as the camera of the video saw it (OpenCV axes).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from avatar.io_utils import atomic_path

SH_C0 = 0.28209479177387814
FIELDS = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
          "rot_0", "rot_1", "rot_2", "rot_3"]


def write_ply(path: Path, means: np.ndarray, rgb: np.ndarray, opacity_logits: np.ndarray, log_scales: np.ndarray,
              quats: np.ndarray) -> None:
    n = len(means)
    rows = np.zeros((n, len(FIELDS)), np.float32)
    rows[:, 0:3] = means
    rows[:, 6:9] = (rgb - 0.5) / SH_C0
    rows[:, 9] = opacity_logits
    rows[:, 10:13] = log_scales
    rows[:, 13:17] = quats / np.linalg.norm(quats, axis=1, keepdims=True)
    header = "ply\nformat binary_little_endian 1.0\n" + f"element vertex {n}\n" + "".join(f"property float {f}\n" for f in FIELDS) + "end_header\n"
    with atomic_path(Path(path)) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(header.encode("ascii"))
            fh.write(rows.astype("<f4").tobytes())


def read_ply(path: Path) -> dict[str, np.ndarray]:
    """The float properties of a binary little-endian PLY's vertices, by name."""
    data = Path(path).read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise ValueError(f"{path} is not a binary little-endian PLY")
    count = next(int(line.split()[2]) for line in header if line.startswith("element vertex"))
    names = [line.split()[2] for line in header if line.startswith("property float")]
    rows = np.frombuffer(data[end:end + 4 * count * len(names)], dtype="<f4").reshape(count, len(names))
    return {name: rows[:, i] for i, name in enumerate(names)}


def export_avatar(folder, path: Path, device: torch.device) -> int:
    """Write the avatar of `folder` (posed on `device`) to `path`; returns the number of Gaussians."""
    from avatar.data.avatar_data import AvatarData
    from avatar.model.store import load_trained

    trained = load_trained(folder, device)
    data = AvatarData(folder, 0, basis=trained.basis, device=device)
    with torch.no_grad():
        splats = trained.model.splats(data.motion[data.train_ids].mean(0), data.rest_pose)
    cpu = {name: getattr(splats, name).cpu().numpy() for name in ("means", "colors", "opacity_logits", "log_scales", "quats")}
    write_ply(path, cpu["means"], cpu["colors"][:, :3], cpu["opacity_logits"], cpu["log_scales"], cpu["quats"])
    return len(cpu["means"])
