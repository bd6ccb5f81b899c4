"""A preprocessed frame as training sees it: the soft matte beside the hard labels, boxes around mouth and eyes."""
import numpy as np
import torch

from avatar.data.avatar_data import AvatarData
from avatar.face_mesh import LEFT_EYE, LIPS_OUTER, RIGHT_EYE


def test_a_frame_carries_its_matte_and_boxes_at_the_training_size(sample_avatar):
    data = AvatarData(sample_avatar, 64)
    i = int(data.train_ids[len(data.train_ids) // 2])
    batch = data.frame(i)
    assert batch.matte.shape == batch.labels.shape == (64, 64) and batch.matte.dtype == torch.float32
    assert 0 <= float(batch.matte.min()) and float(batch.matte.max()) <= 1
    person = batch.labels > 0
    assert float(batch.matte[person].mean()) > 0.7 > 0.3 > float(batch.matte[~person].mean())  # the same person
    landmarks = data.tracking["landmarks"][i] * data.scale
    for box, points in zip((batch.mouth_box, *batch.eye_boxes), (LIPS_OUTER, RIGHT_EYE, LEFT_EYE)):
        x0, y0, x1, y1 = box
        marks = landmarks[list(points)]
        assert x0 <= marks[:, 0].min() and marks[:, 0].max() <= x1, (box, marks.min(0), marks.max(0))
        assert y0 <= marks[:, 1].min() and marks[:, 1].max() <= y1
    right, left = (np.mean(b[0::2]) for b in batch.eye_boxes)
    assert right < left  # the person's right eye is on the image's left
