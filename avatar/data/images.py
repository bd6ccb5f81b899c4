"""Reading stored frames, masks and plates: the one image reader of the project."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def read_rgb(path: Path | str, size: int | None = None, half: bool = False) -> np.ndarray:
    """RGB uint8 [H, W, 3], resized to `size` x `size` when given. `half` has the JPEG decoder halve the
    image, which is much faster than decoding at full size (use it when `size` is half the stored size)."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_2 if half else cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {path}")
    if size is not None and bgr.shape[:2] != (size, size):
        bgr = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_labels(path: Path | str, size: int | None = None) -> np.ndarray:
    """uint8 [H, W] label image (nearest-neighbour resized to `size` x `size` when given)."""
    import cv2

    labels = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if labels is None:
        raise FileNotFoundError(f"cannot read image {path}")
    if size is not None and labels.shape != (size, size):
        labels = cv2.resize(labels, (size, size), interpolation=cv2.INTER_NEAREST)
    return labels


def read_matte(path: Path | str, size: tuple[int, int]) -> np.ndarray:
    """[H, W] uint8 person confidence (0-255), bilinearly scaled to `size` (width, height) when stored
    at another size (mattes of large frames are stored at half size)."""
    import cv2

    matte = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if matte is None:
        raise FileNotFoundError(f"cannot read matte {path}")
    if matte.shape[::-1] != tuple(size):
        matte = cv2.resize(matte, tuple(size), interpolation=cv2.INTER_LINEAR)
    return matte
