"""What the viewer shows, without a window: the same frames as `avatar render`, and controls that change
what they say they change."""
import numpy as np
import pytest
import torch

from avatar.face_mesh import LEFT_BROW, LEFT_EYE, LIPS_OUTER, RIGHT_BROW, RIGHT_EYE
from avatar.viewer.scene import Controls, Scene, expression_direction
from avatar.viewer.sources import speak_text

SIZE = 128


@pytest.fixture(scope="module")
def scene(trained_sample):
    scene = Scene(trained_sample, torch.device("cpu"), SIZE)
    scene.set_speech(speak_text("Maybe the big apple pie."), Controls(head="still"))
    return scene


def _centre(scene, points) -> np.ndarray:
    """Where `points` of the face mesh sit on average in the video (pixels of the scene's view)."""
    from avatar.io_utils import load_npz

    tracking = load_npz(scene.folder.tracking)
    import json

    width = json.loads(scene.folder.manifest.read_text())["width"]
    return tracking["landmarks"][:, list(points), :2].reshape(-1, 2).mean(0) * SIZE / width


def _changed(a: np.ndarray, b: np.ndarray, level: int = 3) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).max(-1) > level


def test_frames_are_what_avatar_render_draws(scene):
    from avatar.render.audio_render import drive, is_silent

    controls = Controls(head="still")
    driven = drive(scene.driver, scene.track.features, scene.fps, "still", silent=is_silent(scene.track.features))
    for i in (0, scene.track.frames // 2):
        expected = scene.renderer.render(torch.from_numpy(driven.codes[i]), torch.from_numpy(driven.poses[i]),
                                         torso=torch.from_numpy(driven.torso[i]))
        from avatar.render.frames import to_uint8

        assert np.array_equal(scene.render(float(i), controls).image, to_uint8(expected))


def test_between_frames_motion_is_interpolated(scene):
    controls = Controls(head="still")
    a, b = scene.inputs(10.0, controls)[0], scene.inputs(11.0, controls)[0]
    assert torch.allclose(scene.inputs(10.25, controls)[0], 0.75 * a + 0.25 * b, atol=1e-5)
    pose = scene.inputs(10.5, Controls(head="generated"))[1][:3, :3]
    assert torch.allclose(pose @ pose.T, torch.eye(3), atol=1e-5)


@pytest.mark.parametrize("edit,region", [(dict(smile=2.0), LIPS_OUTER), (dict(mouth_scale=0.0), LIPS_OUTER),
                                         (dict(brow=2.0), LEFT_BROW + RIGHT_BROW)])
def test_expression_controls_change_the_face_only(scene, edit, region):
    """The region moves; the torso and the background do not. (How tightly the change stays around the mouth
    or brows is the field's: a test avatar trained for seconds smears it over the face; see the direction test
    for the motion itself.)"""
    index = float(scene.track.frames // 2)
    base = scene.render(index, Controls(head="still")).image
    difference = np.abs(base.astype(float) - scene.render(index, Controls(head="still", **edit)).image).max(-1)
    x, y = _centre(scene, region).astype(int)
    box = SIZE // 12
    assert difference[y - box: y + box, x - box: x + box].max() > 1, f"{edit} did not change its region"
    chin = _centre(scene, (152,))[1]
    border = SIZE // 10
    assert not (difference[int(chin + border):] > 3).any(), f"{edit} changed the torso"
    assert not (difference[:, :border] > 3).any() and not (difference[:, -border:] > 3).any(), f"{edit} changed the background"


def test_blink_now_closes_the_eyes_then_they_open(scene):
    start = 5
    plain = Controls(head="still", auto_blink=False)
    asked = plain.edited(blinks_at=(start,))
    closed_at = start + int(np.argmax(scene.blink_shape))
    eyes = _centre(scene, LEFT_EYE + RIGHT_EYE)
    changed = _changed(scene.render(float(closed_at), plain).image, scene.render(float(closed_at), asked).image)
    ys, xs = np.nonzero(changed)
    assert len(xs) > 3 and np.median(np.hypot(xs - eyes[0], ys - eyes[1])) < 0.25 * SIZE
    later = float(start + len(scene.blink_shape) + 2)
    assert np.array_equal(scene.render(later, plain).image, scene.render(later, asked).image)


def test_view_background_and_part_controls(scene):
    index = 3.0
    base = scene.render(index, Controls(head="still")).image
    assert _changed(base, scene.render(index, Controls(head="still", yaw=25.0)).image).mean() > 0.05
    assert _changed(base, scene.render(index, Controls(head="still", zoom=1.5)).image).mean() > 0.05
    nothing = scene.render(index, Controls(head="still", show_head=False, show_torso=False, background="checker")).image
    assert np.array_equal(nothing, (scene.checker.numpy() * 255 + 0.5).astype(np.uint8))
    colour = scene.render(index, Controls(head="still", show_head=False, show_torso=False, background="colour",
                                          colour=(1.0, 0.0, 0.0))).image
    assert (colour[..., 0] == 255).all() and (colour[..., 1:] == 0).all()
    no_head = scene.render(index, Controls(head="still", show_head=False)).image
    head = _centre(scene, LIPS_OUTER).astype(int)
    assert _changed(base, no_head)[head[1], head[0]]


def test_record_writes_what_avatar_render_writes(trained_sample, tmp_path):
    from helpers import run_cli
    from media import read_audio, read_frames

    from avatar.audio.io import write_wav
    from avatar.speech_synth import synthesize
    from avatar.viewer.sources import audio_file, record_track

    samples, rate = synthesize("Maybe.", voice="en-us")
    speech = tmp_path / "speech.wav"
    write_wav(speech, samples, rate)
    scene = Scene(trained_sample, torch.device("cpu"), 96)
    scene.set_speech(audio_file(speech), Controls(head="still"))
    record_track(scene, Controls(head="still"), tmp_path / "viewer.mp4")
    result = run_cli("render", trained_sample.root, "--audio", speech, "--pose", "still", "--size", "96", "--out", tmp_path / "render.mp4")
    assert result.returncode == 0, result.stderr
    ours, theirs = read_frames(tmp_path / "viewer.mp4"), read_frames(tmp_path / "render.mp4")
    assert len(ours) == len(theirs) == scene.track.frames
    assert np.abs(np.asarray(ours, float) - np.asarray(theirs, float)).max() <= 2
    (a, rate_a), (b, rate_b) = read_audio(tmp_path / "viewer.mp4"), read_audio(tmp_path / "render.mp4")
    assert rate_a == rate_b and abs(len(a) - len(b)) <= rate_a // 50


def test_idle_source_keeps_the_mouth_shut(trained_sample):
    from avatar.motion.visemes import SILENCE

    scene = Scene(trained_sample, torch.device("cpu"), SIZE)
    track = scene.set_idle(Controls())
    channels = np.concatenate([np.tile(SILENCE, (track.frames, 1)), track.blink[:, None]], 1)
    assert np.allclose(track.codes, scene.driver.mapping.codes(channels.astype(np.float32)), atol=1e-5)
    assert track.poses.shape == (track.frames, 4, 4) and np.ptp(track.poses[:, :3, 3], 0).max() > 0


def test_expression_direction_moves_only_its_region():
    from avatar.motion.code import fit_expression_basis

    rng = np.random.default_rng(0)
    signal = rng.uniform(0, 1, 400)
    offsets = 0.05 * rng.normal(size=(400, 6, 3))
    offsets[:, :2, 1] += 2.0 * signal[:, None]  # landmarks 0, 1 move with the signal...
    offsets[:, 4, 0] += 1.0 * signal  # ...and so does landmark 4, outside the region
    basis = fit_expression_basis(offsets, components=18)  # all of it: the projection is exact
    blendshapes = np.zeros((400, 52))
    blendshapes[:, 3], blendshapes[:, 7] = 0.5 * signal, 0.3 * signal
    codes = np.concatenate([blendshapes, basis.coefficients(offsets)], 1)
    direction = expression_direction(codes, offsets, basis, signal, np.array([3]), np.array([0, 1, 2]))
    spread = np.percentile(signal, 95) - np.median(signal)
    assert np.isclose(direction[3], 0.5 * spread, atol=0.01) and direction[7] == 0
    moved = (basis.offsets(basis.coefficients(offsets[:1]) + direction[52:]) - offsets[:1])[0]
    assert np.allclose(moved[:2, 1], 2.0 * spread, atol=0.05) and np.abs(moved[3:]).max() < 0.05


def test_live_feed_fills_the_live_track(trained_sample):
    import time

    from avatar.viewer.live import LiveFeed

    scene = Scene(trained_sample, torch.device("cpu"), SIZE)
    scene.set_live(Controls())
    assert scene.live_frames == 0 and scene.track.frames == 1  # the rest frame until motion arrives
    feed = LiveFeed(scene, lookahead_s=0.12)
    wave = speak_text("Maybe the big apple pie.").wave
    for start in range(0, len(wave), 320):
        feed.put(wave[start: start + 320], time.perf_counter())
    feed.close()
    expected = int(np.floor((len(wave) / 16000 - 0.12) * scene.fps))
    assert expected - 4 <= scene.live_frames <= expected
    assert feed.clock.available() == (scene.live_frames - 1) / scene.fps
    assert scene.render(1e6, Controls()).position == scene.live_frames - 1  # the newest there is


def test_the_render_thread_renders_what_its_planner_names_unasked(scene):
    import time

    from avatar.viewer.worker import RenderWorker

    worker = RenderWorker(scene)
    try:
        time.sleep(0.2)  # the thread is waiting for work by now
        planned = iter([(0.2, Controls(head="still")), (0.4, Controls(head="still"))])
        worker.plan_with(lambda: None if worker.waiting else next(planned, None))  # as the window's planner
        deadline, seen = time.perf_counter() + 60, []
        while len(seen) < 2 and time.perf_counter() < deadline:
            seen.extend(taken[0] for taken in worker.take())
            time.sleep(0.01)
        assert seen == [0.2, 0.4]
    finally:
        worker.close()
