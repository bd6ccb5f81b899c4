"""The personal driver on the built-in sample: the adapters learn what the priors miss of this person."""
import numpy as np
import pytest

from avatar.errors import AvatarError

from avatar.motion.driver import Driver, fit_driver
from avatar.data.avatar_data import AvatarData


def test_adapter_learns_the_person(sample_avatar, tmp_path):
    import shutil

    from avatar.folder import AvatarFolder
    from avatar.io_utils import load_npz

    folder = AvatarFolder(tmp_path / "a")
    shutil.copytree(sample_avatar.root, folder.root, ignore=shutil.ignore_patterns("model", "eval"))
    data = AvatarData(folder, 64)
    driver = fit_driver(folder, data.motion.numpy(), data.rest_pose.numpy(), steps=400)
    for kind in ("adapter", "live_adapter"):
        assert driver.report[kind]["train_error"] < 0.9 * driver.report[kind]["no_correction_train_error"]
    driver.save(folder)
    again = Driver.load(folder)
    f = load_npz(folder.features)
    tokens = [str(t) for t in f["ppg_tokens"]]
    a = driver.motion(f["ppg"], tokens, f["energy"], f["pitch"], 25, seed=3)
    b = again.motion(f["ppg"], tokens, f["energy"], f["pitch"], 25, seed=3)
    np.testing.assert_allclose(a.codes, b.codes, atol=1e-5)
    assert a.codes.shape == (data.count, data.motion_dim) and a.poses.shape == (data.count, 4, 4)
    # Pauses: `closed` leaves silence to the prior (adapter off), `person` keeps the adapter everywhere.
    from avatar.motion.learned_prior import speaking

    silent = speaking(f["energy"], 25) < 1e-3
    assert silent.any() and (~silent).any()
    person = driver.motion(f["ppg"], tokens, f["energy"], f["pitch"], 25, seed=3, pauses="person")
    adapter, driver.adapter = driver.adapter, None
    prior = driver.motion(f["ppg"], tokens, f["energy"], f["pitch"], 25, seed=3)
    driver.adapter = adapter
    np.testing.assert_allclose(a.codes[silent], prior.codes[silent], atol=1e-6)
    np.testing.assert_allclose(a.codes[~silent & (speaking(f["energy"], 25) > 0.999)],
                               person.codes[~silent & (speaking(f["energy"], 25) > 0.999)], atol=1e-6)
    assert np.abs(person.codes[silent] - prior.codes[silent]).max() > 1e-4
    with pytest.raises(AvatarError, match="--pauses"):
        driver.motion(f["ppg"], tokens, f["energy"], f["pitch"], 25, pauses="open")
