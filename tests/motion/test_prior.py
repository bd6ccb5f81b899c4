"""The generic prior on synthetic phoneme sequences: closure on p/b/m, rounding on u/o, open on a."""
import numpy as np
import pytest

from avatar.audio.phonemes import token_names
from avatar.motion.prior import find_events, loudness, mouth_curves, silence_gate, viseme_posteriors
from avatar.motion.visemes import CHANNELS, SILENCE, VISEMES, token_viseme

FPS = 25
JAW, CLOSE, FUNNEL, PUCKER = (CHANNELS.index(c) for c in ("jaw_open", "lip_close", "funnel", "pucker"))


@pytest.mark.parametrize("token, viseme", [("p", "PP"), ("m", "PP"), ("b", "PP"), ("f", "FF"), ("aɪ", "AA"), ("ja", "AA"),
                                           ("t͡ʃ", "CH"), ("u", "UU"), ("w", "UU"), ("o", "OO"), ("ɕ", "CH"), ("kʰ", "KK"),
                                           ("˥", None), ("<blank>", None), (" ", None)])
def test_tokens_map_to_visemes(token, viseme):
    assert token_viseme(token) == viseme


def _speech(sequence: list[tuple[str, float]], seconds: float):
    """A posteriorgram with one frame of each token at its time, blank elsewhere, and loud speech energy."""
    tokens = token_names()
    count = int(seconds * FPS)
    ppg = np.zeros((count, len(tokens)), np.float32)
    ppg[:, tokens.index("<blank>")] = 1.0
    for token, t in sequence:
        k = int(round(t * FPS))
        ppg[k] = 0.0
        ppg[k, tokens.index(token)] = 0.9
        ppg[k, tokens.index("<blank>")] = 0.1
    energy = np.full(count, -60.0, np.float32)
    if sequence:
        energy[int(sequence[0][1] * FPS) - 3: int(sequence[-1][1] * FPS) + 4] = -20.0
    return ppg, tokens, energy


def _at(curves, t, lead=0.12):
    return curves[int(round((t - lead) * FPS))]


def test_closure_rounding_and_opening():
    seq = [("m", 0.6), ("a", 0.8), ("p", 1.0), ("a", 1.2), ("b", 1.4), ("u", 1.6), ("o", 1.9), ("a", 2.2)]
    ppg, tokens, energy = _speech(seq, 3.0)
    curves = mouth_curves(ppg, tokens, energy, FPS, lead_s=0.12)
    for token, t in seq:
        c = _at(curves, t)
        if token in ("m", "p", "b"):
            assert c[CLOSE] > 0.6 and c[JAW] < 0.15, (token, c)
        if token == "a":
            assert c[JAW] > 0.45 and c[CLOSE] < 0.2, (token, c)
        if token in ("u", "o"):
            assert max(c[FUNNEL], c[PUCKER]) > 0.4, (token, c)
    assert _at(curves, 1.6)[PUCKER] > _at(curves, 2.2)[PUCKER] + 0.3


def test_coarticulation_is_smooth_and_anticipates():
    ppg, tokens, energy = _speech([("a", 0.8), ("m", 1.0), ("a", 1.2)], 2.0)
    curves = mouth_curves(ppg, tokens, energy, FPS, lead_s=0.0)
    assert np.abs(np.diff(curves, axis=0)).max() < 0.6  # no frame-to-frame switching
    # The lips start closing before the /m/ itself (anticipation).
    assert curves[int(0.96 * FPS), CLOSE] > curves[int(0.84 * FPS), CLOSE] > curves[int(0.8 * FPS) - 3, CLOSE]


def test_silence_closes_the_mouth():
    ppg, tokens, energy = _speech([("a", 0.5), ("a", 0.7)], 3.0)
    curves = mouth_curves(ppg, tokens, energy, FPS)
    np.testing.assert_allclose(curves[int(1.5 * FPS):], np.tile(SILENCE, (len(curves) - int(1.5 * FPS), 1)), atol=1e-3)
    gate = silence_gate(loudness(energy), FPS)
    assert gate[int(0.6 * FPS)] > 0.9 and gate[int(2.5 * FPS)] < 0.01


def test_events_merge_repeated_frames_of_one_phoneme():
    tokens = token_names()
    ppg, _, _ = _speech([("a", 0.4), ("a", 0.44), ("m", 0.8)], 1.2)  # two frames of /a/ in a row
    events = find_events(*viseme_posteriors(ppg, tokens), FPS)
    assert [VISEMES[int(np.argmax(e.visemes))] for e in events] == ["AA", "PP"]
    assert events[0].time_s == pytest.approx(0.42, abs=0.01)
