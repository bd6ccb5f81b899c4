"""Image and lip metrics, each stating exactly what it covers."""
from __future__ import annotations

import numpy as np
import torch

from avatar.face_mesh import LIPS_INNER, LIPS_OUTER

MOUTH_LANDMARKS = np.array(LIPS_OUTER + LIPS_INNER)


def psnr(image: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB of two uint8 images over every pixel and channel."""
    mse = np.mean((image.astype(np.float64) - target.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


def ssim_map(image: np.ndarray, target: np.ndarray) -> np.ndarray:
    """[H, W] SSIM (11-pixel Gaussian window, mean over the channels) of two uint8 RGB images."""
    import kornia

    a = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    b = torch.from_numpy(target).permute(2, 0, 1)[None].float() / 255
    return kornia.metrics.ssim(a, b, 11)[0].mean(0).numpy()


def ssim(image: np.ndarray, target: np.ndarray) -> float:
    """Mean SSIM (11-pixel Gaussian window) of two uint8 RGB images over the whole frame."""
    return float(ssim_map(image, target).mean())


def mouth_landmark_distance(rendered: np.ndarray, real: np.ndarray, size: int) -> np.ndarray:
    """Per frame: mean distance between the 40 lip landmarks found on rendered and real frames, in pixels
    of a 512 x 512 frame. rendered, real: [T, 478, 2] landmarks in pixels of `size` frames (NaN rows where
    the tracker found no face are skipped)."""
    d = np.linalg.norm(rendered[:, MOUTH_LANDMARKS] - real[:, MOUTH_LANDMARKS], axis=-1).mean(1)
    return d * 512 / size


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """[T] inner-lip gap (upper to lower lip centre) relative to the mouth width."""
    gap = np.linalg.norm(landmarks[:, 13] - landmarks[:, 14], axis=-1)
    width = np.linalg.norm(landmarks[:, 78] - landmarks[:, 308], axis=-1)
    return gap / np.maximum(width, 1e-6)
