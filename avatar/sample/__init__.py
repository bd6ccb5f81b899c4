"""`avatar sample`: a talking-head clip made offline, with its ground truth saved beside it.

A public-domain NASA portrait (shipped in the scikit-image wheel, fetched with the model files) is rigged
in 3D (scene.py), spoken for by espeak-ng, and animated with known head motion, a jaw that follows the
speech's loudness and blinks (animate.py). `<out>.truth.npz` holds the intrinsics, the head motion as
camera-space rigid transforms and angles, jaw opening and blink per frame.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from avatar.errors import AvatarError

DEFAULT_TEXT = (
    "Hello, and welcome to avatar. This little clip was made on your own computer, from a public domain "
    "photograph and a synthetic voice. Now the head turns, the mouth moves, and the eyes blink."
)
FPS = 25
LEAD_IN_S = 0.5


def truth_path(video: Path) -> Path:
    return Path(video).with_suffix(".truth.npz")


def _rig_photo(size: int):
    import cv2

    from avatar.model_files import model_path
    from avatar.preprocess.mediapipe_tasks import FaceLandmarker, PersonSegmenter, opened
    from avatar.sample.scene import build_scene

    photo = cv2.cvtColor(cv2.imread(str(model_path("sample_photo"))), cv2.COLOR_BGR2RGB)
    h, w = photo.shape[:2]
    with opened(FaceLandmarker(model_path("face_landmarker"), video=False)) as tracker:
        faces = tracker.detect(photo)
    if not faces:
        raise AvatarError("no face found in the sample photo; run `avatar models fetch --force`")
    with opened(PersonSegmenter(model_path("selfie_segmentation"))) as segmenter:
        person = segmenter.segment(photo, 0) > 0.5
    return build_scene(photo, faces[0].landmarks * (w, h, w), person, size)


def make_sample(out: Path, seconds: float = 10.0, size: int = 256, text: str | None = None, seed: int = 0,
                voice: str = "en-us") -> Path:
    """Write the sample video to `out` (h264 + aac mp4) and its ground truth beside it; returns the truth path."""
    from avatar.io_utils import atomic_save_npz
    from avatar.progress import progress
    from avatar.sample.animate import head_motion, make_motion, pose_vertices, render
    from avatar.speech_synth import synthesize
    from avatar.video_writer import VideoWriter

    if seconds < 1 or size < 64 or size % 2:
        raise AvatarError("the sample needs --seconds of at least 1 and an even --size of at least 64")
    out = Path(out)
    scene = _rig_photo(size)
    speech, rate = synthesize(text or DEFAULT_TEXT, voice=voice)
    total = int(round(seconds * rate))
    speech = np.concatenate([np.zeros(int(LEAD_IN_S * rate), np.float32), speech])[:total]
    speech = np.pad(speech, (0, total - len(speech)))
    count = int(round(seconds * FPS))
    motion = make_motion(count, FPS, speech, rate, seed)
    with VideoWriter(out, FPS, size, size, audio=speech, sample_rate=rate, crf=18) as writer:
        for frame in progress(range(count), total=count, desc="sample"):
            writer.write(render(scene, pose_vertices(scene, motion, frame)))
    truth = truth_path(out)
    atomic_save_npz(
        truth,
        fps=np.array(FPS),
        intrinsics=scene.intrinsics,
        head_motion=np.stack([head_motion(scene, motion, f) for f in range(count)]).astype(np.float32),
        head_angles_deg=motion.head_angles_deg.astype(np.float32),
        jaw_open=motion.jaw_open.astype(np.float32),
        blink=motion.blink.astype(np.float32),
    )
    return truth
