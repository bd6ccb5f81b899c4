"""Stage `matte`: a soft person mask per frame (MediaPipe selfie segmentation) -> mattes/*.png.

The segmenter sees 256 x 256 pixels whatever it is given, so large frames are decoded at half size
(cheaper) and their mattes are stored at that size; `avatar.data.images.read_matte` scales them to the frame.
"""
from __future__ import annotations

import numpy as np

from avatar.io_utils import atomic_dir
from avatar.preprocess.frames import iter_frames
from avatar.preprocess.stages import StageContext
from avatar.preprocess.track import read_manifest


def run_matte(ctx: StageContext) -> None:
    import cv2

    from avatar.model_files import model_path
    from avatar.preprocess.mediapipe_tasks import PersonSegmenter, opened

    manifest = read_manifest(ctx)
    count, fps = manifest["num_frames"], manifest["fps"]
    half = min(manifest["width"], manifest["height"]) >= 512
    model = model_path("selfie_segmentation", ctx.config.segment.model_path)
    with atomic_dir(ctx.folder.mattes) as out, opened(PersonSegmenter(model)) as segmenter:
        for i, rgb in ctx.progress(iter_frames(ctx.folder, range(count), half=half), count, "matte"):
            confidence = segmenter.segment(rgb, int(round(i * 1000 / fps)))
            cv2.imwrite(str(out / f"{i:06d}.png"), np.round(confidence * 255).astype(np.uint8))

