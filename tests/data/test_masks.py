"""Coverage targets and clear background: soft only at the outline against the background; the plate
learns only far from the person."""
import numpy as np

from avatar.data.masks import clear_background, coverage_targets


def _frame():
    labels = np.zeros((128, 128), np.uint8)  # edge radius 1 at this size
    labels[:, :60] = 1  # torso on the left
    labels[:40, :60] = 2  # head above it: the jaw-line cut at row 40 is a label boundary, not an image edge
    matte = np.where(labels > 0, 230, 13).astype(np.uint8)
    matte[:, 60] = 100  # the real edge blends over a pixel
    return labels, matte


def test_coverage_targets_are_soft_only_at_the_outline_against_the_background():
    labels, matte = _frame()
    person, head = coverage_targets(labels, matte)
    assert (person[:, 58] == 255).all() and (person[:, 62] == 0).all()  # hard away from the outline
    assert (person[:, 59] == 230).all() and (person[:, 60] == 100).all()  # soft on it, as the matte says
    assert (head[38:42, :59] == np.where(labels[38:42, :59] >= 2, 255, 0)).all()  # the jaw cut stays hard
    assert (head[:39, 60] == 100).all()  # the head's own outline is soft
    assert (head[42:, 60] == 0).all()  # beside the torso the head target is zero


def test_clear_background_keeps_a_margin_from_the_person_and_its_soft_edge():
    labels, matte = _frame()
    clear = clear_background(labels, matte, margin=2)
    # the matte's 13 (5 %) beyond the edge counts as person too: nothing is clear
    assert not clear.any()
    matte[:, 61:] = 0
    clear = clear_background(labels, matte, margin=2)
    assert not clear[:, :63].any() and clear[:, 63:].all()  # column 60 is the soft edge, 61-62 the margin
