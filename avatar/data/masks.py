"""What a frame's masks say to training, computed once when the frame is loaded (cheap on the CPU with
OpenCV, and then cached with the frame instead of redone on the device every step):
- coverage targets: the hard part masks, except within a few pixels of the person's outline against the
  background, where the soft matte says how much of the pixel the person covers (hair and shoulder edges
  blend into the background as they do in the video). Where the head meets the torso (the jaw-line cut, a
  label boundary and not an edge in the image) the head target stays hard;
- clear background: pixels labelled background, with the matte below 2 %, at a margin from both: where a
  frame shows the plate and nothing of the person.
"""
from __future__ import annotations

import numpy as np


def _grow(mask: np.ndarray, radius: int) -> np.ndarray:
    import cv2

    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * radius + 1,) * 2, np.uint8)).astype(bool)


def edge_radius(size: int) -> int:
    """Pixels either side of the outline that are soft: the segmenter's soft edge is ~2 px of its 256-pixel input."""
    return max(1, round(size / 128))


def coverage_targets(labels: np.ndarray, matte: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(person, head) uint8 [H, W] alpha targets (255 = covered) from labels [H, W] (0 background, 1 torso,
    2 head, 3 mouth interior) and the uint8 matte [H, W]."""
    radius = edge_radius(labels.shape[0])
    person, head = labels > 0, labels >= 2
    band = _grow(person, radius) & _grow(~person, radius)
    hard_person = person.astype(np.uint8) * 255
    head_edge = band & _grow(head, radius) & (labels != 1)
    return np.where(band, matte, hard_person), np.where(head_edge, matte, head.astype(np.uint8) * 255)


def clear_background(labels: np.ndarray, matte: np.ndarray, margin: int | None = None) -> np.ndarray:
    """[H, W] bool: background at least `margin` pixels (default 4 at 512, at least 2) from any pixel that is
    labelled person or that the matte gives more than 2 %."""
    margin = max(2, edge_radius(labels.shape[0])) if margin is None else margin
    return ~_grow((labels > 0) | (matte > 5), margin)
