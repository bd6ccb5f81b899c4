"""A preprocessed frame as training sees it: coverage targets from the matte beside the hard labels, boxes
around mouth and eyes."""
import numpy as np
import torch

from avatar.data.avatar_data import AvatarData
from avatar.face_mesh import LEFT_EYE, LIPS_OUTER, RIGHT_EYE


def test_a_frame_carries_its_targets_and_boxes_at_the_training_size(sample_avatar):
    data = AvatarData(sample_avatar, 64)
    i = int(data.train_ids[len(data.train_ids) // 2])
    batch = data.frame(i)
    assert batch.person.shape == batch.head.shape == batch.clear.shape == batch.labels.shape == (64, 64)
    assert batch.person.dtype == torch.float32 and batch.clear.dtype == torch.bool
    person = batch.labels > 0
    soft = (batch.person > 0) & (batch.person < 1)
    assert soft.any() and float(batch.person[person].mean()) > 0.9 and float(batch.person[~person].mean()) < 0.1
    assert not (batch.clear & person).any() and batch.clear.any()
    landmarks = data.tracking["landmarks"][i] * data.scale
    for box, points in zip((batch.mouth_box, *batch.eye_boxes), (LIPS_OUTER, RIGHT_EYE, LEFT_EYE)):
        x0, y0, x1, y1 = box
        marks = landmarks[list(points)]
        assert x0 <= marks[:, 0].min() and marks[:, 0].max() <= x1, (box, marks.min(0), marks.max(0))
        assert y0 <= marks[:, 1].min() and marks[:, 1].max() <= y1
    right, left = (np.mean(b[0::2]) for b in batch.eye_boxes)
    assert right < left  # the person's right eye is on the image's left
