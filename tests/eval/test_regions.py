"""Regional metrics: where each region is, and that their PSNR pools exactly the region's squared error."""
import numpy as np
import pytest

from avatar.eval.regions import REGIONS, RegionScores, region_masks


def _frame(size: int = 128):
    """Labels of a head above a torso, and landmarks placing a face oval and lips inside the head."""
    from avatar.face_mesh import FACE_OVAL, LIPS_OUTER

    labels = np.zeros((size, size), np.uint8)
    labels[90:, 20:108] = 1  # torso
    yy, xx = np.mgrid[:size, :size]
    labels[((yy - 55) / 38) ** 2 + ((xx - 64) / 30) ** 2 < 1] = 2  # head
    landmarks = np.zeros((478, 2))
    angles = np.linspace(0, 2 * np.pi, len(FACE_OVAL), endpoint=False)
    landmarks[list(FACE_OVAL)] = np.stack([64 + 22 * np.sin(angles), 60 - 28 * np.cos(angles)], 1)
    angles = np.linspace(0, 2 * np.pi, len(LIPS_OUTER), endpoint=False)
    landmarks[list(LIPS_OUTER)] = np.stack([64 + 8 * np.cos(angles), 75 + 3 * np.sin(angles)], 1)
    landmarks[61], landmarks[291] = (56, 75), (72, 75)  # mouth corners
    return labels, landmarks


def test_regions_are_where_they_should_be():
    labels, landmarks = _frame()
    masks = region_masks(labels, landmarks)
    assert set(masks) == set(REGIONS)
    assert masks["mouth"][75, 64] and not masks["face"][75, 64]
    assert masks["face"][50, 64] and masks["hair"][22, 64] and masks["torso"][120, 64] and masks["background"][5, 5]
    # The band straddles the person's edge (the torso's left side at x = 20) by 4 px at 512, i.e. 1 px here.
    assert masks["silhouette"][110, 19] and masks["silhouette"][110, 20] and not masks["silhouette"][110, 40]
    for name in ("face", "hair", "torso", "background"):  # the band belongs to no other region
        assert not (masks[name] & masks["silhouette"]).any(), name


def test_region_psnr_pools_the_squared_error():
    labels, landmarks = _frame()
    real = np.full((128, 128, 3), 100, np.uint8)
    rendered = real.copy()
    masks = region_masks(labels, landmarks)
    rendered[masks["torso"]] = 110  # an error of 10 on every torso pixel, nothing elsewhere
    scores = RegionScores()
    scores.add(rendered, real, np.ones((128, 128)), labels, landmarks)
    scores.add(real, real, np.ones((128, 128)), labels, landmarks)  # a perfect frame halves the torso's MSE
    report = scores.report()
    assert report["torso"]["psnr"] == pytest.approx(10 * np.log10(255**2 / 50), abs=1e-3)
    assert report["face"]["psnr"] == pytest.approx(10 * np.log10(255**2 / 1e-10), abs=1e-3)  # no error: the floor
    assert all(r["pixel_fraction"] > 0 for r in report.values())
    heat = scores.error_map()
    assert heat.shape == (128, 128, 3) and heat[masks["torso"]].mean() > heat[masks["face"]].mean()


def test_colour_shift_is_the_mean_cast_of_the_region():
    labels, landmarks = _frame()
    real = np.full((128, 128, 3), 100, np.uint8)
    rendered = real.copy()
    masks = region_masks(labels, landmarks)
    rendered[masks["face"]] = (112, 100, 94)  # a warm face
    scores = RegionScores()
    scores.add(rendered, real, np.ones((128, 128)), labels, landmarks)
    report = scores.report()
    assert report["face"]["colour_shift"] == [12.0, 0.0, -6.0]
    assert report["background"]["colour_shift"] == [0.0, 0.0, 0.0]
