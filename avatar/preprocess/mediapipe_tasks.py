"""MediaPipe Tasks (Face Landmarker, Image Segmenter) opened quietly and always closed properly.

Left to interpreter exit, a landmarker prints a TypeError, so tasks are closed explicitly. MediaPipe's
native code logs several lines to stderr when a task starts (no setting turns them off), which would
bury the one-line messages this tool promises; tasks are therefore created and warmed up with the
process's stderr briefly pointed at /dev/null.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

_STDERR_LOCK = threading.Lock()
_WARMUP = np.zeros((64, 64, 3), np.uint8)


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    with _STDERR_LOCK:  # one redirection at a time, or two threads could leave fd 2 on /dev/null
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


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
        self._video = video
        self.blendshape_names: list[str] = []
        with _native_stderr_silenced():
            self._task = vision.FaceLandmarker.create_from_options(options)
            self._run(_WARMUP, -1)

    def _run(self, rgb: np.ndarray, timestamp_ms: int):
        image = mp_image(rgb)
        # Video mode needs increasing time stamps; the warm-up call uses -1, so callers' times shift by one.
        return self._task.detect_for_video(image, timestamp_ms + 1) if self._video else self._task.detect(image)

    def detect(self, rgb: np.ndarray, timestamp_ms: int = 0) -> list[FaceResult]:
        result = self._run(rgb, timestamp_ms)
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
        with _native_stderr_silenced():
            self._task = vision.ImageSegmenter.create_from_options(options)
            self._task.segment_for_video(mp_image(_WARMUP), 0)

    def segment(self, rgb: np.ndarray, timestamp_ms: int) -> np.ndarray:
        """[H, W] float32 person confidence in [0, 1]."""
        result = self._task.segment_for_video(mp_image(rgb), timestamp_ms + 1)
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
