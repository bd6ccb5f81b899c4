"""MediaPipe Tasks (Face Landmarker, Image Segmenter) opened and always closed properly.

Left to interpreter exit, a landmarker prints a TypeError; these context managers close them.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

# MediaPipe's native logging would otherwise print several lines per task to stderr.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass
class FaceResult:
    landmarks: np.ndarray  # [478, 3] normalised x, y in [0, 1] of the image; z relative depth
    blendshapes: np.ndarray  # [52]
    matrix: np.ndarray  # [4, 4] MediaPipe facial transformation (canonical face -> its metric camera space)


def _vision():
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    return vision, BaseOptions


def mp_image(rgb: np.ndarray):
    import mediapipe as mp

    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))


class FaceLandmarker:
    """Face Landmarker in video mode (tracking across frames) or image mode (independent images)."""

    def __init__(self, model: Path, video: bool, num_faces: int = 1):
        vision, BaseOptions = _vision()
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model)),
            running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
            num_faces=num_faces,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self._task = vision.FaceLandmarker.create_from_options(options)
        self._video = video
        self.blendshape_names: list[str] = []

    def detect(self, rgb: np.ndarray, timestamp_ms: int = 0) -> list[FaceResult]:
        image = mp_image(rgb)
        result = self._task.detect_for_video(image, timestamp_ms) if self._video else self._task.detect(image)
        faces = []
        for i, points in enumerate(result.face_landmarks):
            landmarks = np.array([(p.x, p.y, p.z) for p in points], dtype=np.float32)
            categories = result.face_blendshapes[i] if result.face_blendshapes else []
            if categories and not self.blendshape_names:
                self.blendshape_names = [c.category_name for c in categories]
            blendshapes = np.array([c.score for c in categories], dtype=np.float32)
            matrix = (np.asarray(result.facial_transformation_matrixes[i], dtype=np.float32)
                      if result.facial_transformation_matrixes else np.eye(4, dtype=np.float32))
            faces.append(FaceResult(landmarks, blendshapes, matrix))
        return faces

    def close(self) -> None:
        if self._task is not None:
            self._task.close()
            self._task = None


class PersonSegmenter:
    """Selfie segmentation in video mode: a soft person mask per frame."""

    def __init__(self, model: Path):
        vision, BaseOptions = _vision()
        options = vision.ImageSegmenterOptions(
            base_options=BaseOptions(model_asset_path=str(model)),
            running_mode=vision.RunningMode.VIDEO,
            output_confidence_masks=True,
            output_category_mask=False,
        )
        self._task = vision.ImageSegmenter.create_from_options(options)

    def segment(self, rgb: np.ndarray, timestamp_ms: int) -> np.ndarray:
        """[H, W] float32 person confidence in [0, 1]."""
        result = self._task.segment_for_video(mp_image(rgb), timestamp_ms)
        return np.array(result.confidence_masks[0].numpy_view(), dtype=np.float32).reshape(rgb.shape[:2])

    def close(self) -> None:
        if self._task is not None:
            self._task.close()
            self._task = None


@contextlib.contextmanager
def opened(task) -> Iterator:
    try:
        yield task
    finally:
        task.close()
