"""Live audio to motion: chunked output follows the offline motion of the same file, and no frame depends on
audio more than its look-ahead (plus one hop) after it."""
import json

import numpy as np
import pytest

from avatar.audio import SAMPLE_RATE
from avatar.folder import preprocessed_config
from avatar.motion.driver import Driver
from avatar.motion.live import LiveMotion

CHUNK = 320  # 20 ms


@pytest.fixture(scope="module")
def person(trained_sample):
    from avatar.speech_synth import synthesize

    import soxr

    samples, rate = synthesize("Maybe the big apple pie is open. Bob thought so, and we agreed.", voice="en-us")
    wave = soxr.resample(samples, rate, SAMPLE_RATE).astype(np.float32)
    fps = json.loads(trained_sample.manifest.read_text())["fps"]
    return Driver.load(trained_sample), preprocessed_config(trained_sample).audio, fps, wave, trained_sample


def _live(person, wave, **options) -> tuple[np.ndarray, LiveMotion]:
    driver, settings, fps, _, _ = person
    live = LiveMotion(driver, settings, fps, **options)
    out = [live.push(wave[s: s + CHUNK]) for s in range(0, len(wave), CHUNK)]
    return np.concatenate(out + [live.finish()]), live


def _offline(person, wave) -> tuple[np.ndarray, np.ndarray]:
    from avatar.audio.phonemes import token_names
    from avatar.render.audio_render import speech_features

    driver, _, fps, _, folder = person
    count = int(round(len(wave) / SAMPLE_RATE * fps))
    features = speech_features(folder, wave, count)
    return driver.speech_codes(features.ppg, token_names(), features.energy, features.pitch, fps, np.zeros(count, np.float32))


@pytest.mark.parametrize("lookahead,jaw_least,codes_least", [(0.12, 0.75, 0.92), (0.2, 0.83, 0.92)])
def test_chunked_output_follows_the_offline_motion(person, lookahead, jaw_least, codes_least):
    """The live nets are taught by the offline ones on the features the live path has; what is left is the
    recogniser's: it reads both ways in time, and live it has 0.12 s of audio after a frame (0.2 s: closer)."""
    driver, _, _, wave, _ = person
    codes, mouth = _offline(person, wave)
    live_codes, live = _live(person, wave, lookahead_s=lookahead)
    assert len(live_codes) == len(codes) and len(live.mouth) == len(codes)
    live_mouth = np.array(live.mouth)
    jaw = np.corrcoef(live_mouth[:, 0], mouth[:, 0])[0, 1]
    dims = driver.dims
    blink = live.blink[: len(codes), None] * driver.mapping.weights[-1][None]  # live blinks; offline had none
    together = np.corrcoef((live_codes - blink)[:, dims].ravel() - (live_codes - blink)[:, dims].mean(),
                           codes[:, dims].ravel() - codes[:, dims].mean())[0, 1]
    assert jaw >= jaw_least and together >= codes_least, (jaw, together)


def test_no_frame_hears_past_its_lookahead(person):
    _, _, fps, wave, _ = person
    lookahead, hop = 0.12, 0.1
    cut = len(wave) // 2
    other = wave.copy()
    other[cut:] = np.random.default_rng(1).normal(0, 0.3, len(wave) - cut).astype(np.float32)
    a, _ = _live(person, wave, lookahead_s=lookahead, hop_s=hop)
    b, _ = _live(person, other, lookahead_s=lookahead, hop_s=hop)
    settled = int(np.floor((cut / SAMPLE_RATE - lookahead - hop) * fps)) - 1
    assert settled > 10
    np.testing.assert_array_equal(a[:settled], b[:settled])
    assert np.abs(a[settled + int((lookahead + hop) * fps) + 2:] - b[settled + int((lookahead + hop) * fps) + 2:]).max() > 0


def test_bad_settings_are_refused(person):
    driver, settings, fps, _, _ = person
    with pytest.raises(ValueError):
        LiveMotion(driver, settings, fps, lookahead_s=-0.1)


def test_streamed_features_replay_the_live_path(person):
    """What the live nets are trained on is exactly what LiveMotion feeds them: every frame's features as they
    were when it became final."""
    from avatar.motion.live_features import streamed_features, streamed_hops

    driver, settings, fps, wave, _ = person
    live = LiveMotion(driver, settings, fps)
    seen: dict[int, np.ndarray] = {}
    for s in range(0, len(wave), CHUNK):
        before = live.emitted
        live.push(wave[s: s + CHUNK])
        final = live.features
        seen.update({i: final.final["ppg"][i - final.final_first] for i in range(before, live.emitted)})
    count = int(round(len(wave) / SAMPLE_RATE * fps))
    streamed = streamed_features(streamed_hops(wave, count, fps, settings, live.lookahead_s), count)
    assert set(streamed) == {"ppg", "energy", "pitch"} and all(len(v) == count for v in streamed.values())
    rows = sorted(seen)
    assert len(rows) > count // 2
    np.testing.assert_array_equal(np.stack([seen[i] for i in rows]), streamed["ppg"][rows])


def test_padding_a_short_sequence_leaves_the_nets_output_on_it_unchanged():
    """Training pads sequences shorter than its window with copies of the last frame (zero weight): what the net's
    own padding sees past the end, so its output on the real frames is what it is on the sequence alone."""
    import torch

    from avatar.motion.context_net import LIVE_FUTURE, OFFLINE_FUTURE, ContextNet, run
    from avatar.motion.context_training import Sequence, padded

    torch.manual_seed(0)
    inputs = np.random.default_rng(0).normal(size=(30, 5)).astype(np.float32)
    seq = padded(Sequence(inputs, np.ones((30, 2), np.float32), np.ones(30, np.float32)), 40)
    assert seq.inputs.shape == (40, 5) and seq.weights[:30].all() and not seq.weights[30:].any()
    for future in (LIVE_FUTURE, OFFLINE_FUTURE):
        net = ContextNet(5, 2, future, width=8).eval()
        torch.nn.init.normal_(net.layers[-1].weight)
        np.testing.assert_allclose(run(net, seq.inputs)[:30], run(net, inputs), rtol=1e-5, atol=1e-6)
