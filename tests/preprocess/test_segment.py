import numpy as np

from avatar.face_mesh import FACE_OVAL, LIPS_INNER
from avatar.preprocess.segment import BACKGROUND, HEAD, MOUTH, TORSO, background_plate, part_labels


def _face_landmarks(cx=64.0, cy=50.0, r=20.0):
    """A round face: oval landmarks on a circle, an open mouth below the centre."""
    lm = np.tile([[cx, cy]], (478, 1)).astype(np.float64)
    for k, idx in enumerate(FACE_OVAL):  # FACE_OVAL starts at the forehead and runs clockwise on screen
        a = -np.pi / 2 + 2 * np.pi * k / len(FACE_OVAL)
        lm[idx] = (cx + r * np.cos(a), cy + r * np.sin(a))
    for k, idx in enumerate(LIPS_INNER):
        a = 2 * np.pi * k / len(LIPS_INNER)
        lm[idx] = (cx + 6 * np.cos(a), cy + 10 + 3 * np.sin(a))
    return lm


def test_parts_split_head_torso_and_mouth():
    person = np.zeros((128, 128), bool)
    person[20:75, 40:88] = True  # head and hair
    person[75:, 20:108] = True  # neck and shoulders
    labels = part_labels(person, _face_landmarks())
    assert labels[5, 5] == BACKGROUND
    assert labels[35, 64] == HEAD and labels[25, 45] == HEAD  # face and hair above the jaw
    assert labels[100, 30] == TORSO and labels[80, 64] == TORSO  # shoulders and neck below the chin
    assert labels[60, 64] == MOUTH


def test_face_is_head_even_when_the_person_mask_misses_it():
    labels = part_labels(np.zeros((128, 128), bool), _face_landmarks())
    assert labels[45, 64] == HEAD and (labels == TORSO).sum() == 0


def test_background_plate_uses_only_uncovered_pixels():
    rng = np.random.default_rng(0)
    scene = rng.integers(0, 255, (32, 32, 3)).astype(np.uint8)
    frames, covered = [], []
    for i in range(9):
        frame = scene.copy()
        mask = np.zeros((32, 32), bool)
        mask[:, i * 3: i * 3 + 8] = True  # a person walking across, covering a different band each time
        mask[10:20, 28:] = True  # a corner the person always covers
        frame[mask] = 255
        frames.append(frame)
        covered.append(mask)
    plate, seen = background_plate(frames, covered)
    np.testing.assert_array_equal(plate[seen], scene[seen])
    assert not seen[15, 30] and seen[0, 0]
    assert plate[15, 30].max() < 255  # the hole is filled from its surroundings, not from the person


def test_the_filled_hole_has_no_dark_outline():
    # A person that never moves over a flat grey wall: the hole is inpainted at a quarter of the size, and
    # the cells that straddle its edge must not bring the hole's empty (black) pixels into the fill.
    wall = np.full((128, 128, 3), 180, np.uint8)
    person = np.zeros((128, 128), bool)
    person[40:, 30:98] = True
    frames = [np.where(person[..., None], np.uint8(20), wall) for _ in range(3)]
    plate, seen = background_plate(frames, [person] * 3)
    assert not seen[64, 64]
    assert np.abs(plate.astype(int) - 180).max() <= 2, np.abs(plate.astype(int) - 180).max()
