"""The lip-sync measure itself: d' finds closed bilabials and open vowels, at the right lag."""
import json

import numpy as np

from avatar.eval.lipsync import lip_contrast

FPS = 25


def _centres(pattern: str, step_s: float = 0.24) -> list[tuple[str, float]]:
    return [(phone, 0.5 + i * step_s) for i, phone in enumerate(pattern.split())]


def _opening(centres, lead_frames: int, seconds: float = 6.0) -> np.ndarray:
    """Mouth opening that is high around open vowels and zero around bilabials, `lead_frames` early."""
    rng = np.random.default_rng(0)
    opening = np.full(int(seconds * FPS), 0.3) + rng.normal(0, 0.02, int(seconds * FPS))
    for phone, t in centres:
        frame = int(round(t * FPS)) - lead_frames
        opening[frame] = 0.0 if phone in ("p", "b", "m") else 0.8
    return opening


def test_closed_bilabials_and_open_vowels_score_high_at_their_lead():
    centres = _centres("p a m a b a p a m a b a p a")
    result = lip_contrast(_opening(centres, lead_frames=3), FPS, centres)
    assert result["bilabials"] == 7 and result["open_vowels"] == 7
    assert result["best_lag"] == -3
    assert result["best_d_prime"] > 5
    assert result["d_prime"]["-3"] > result["d_prime"]["0"]


def test_lips_that_do_the_opposite_score_negative():
    centres = _centres("p a m a b a p a m a b a")
    inverted = 0.8 - _opening(centres, lead_frames=0)
    assert lip_contrast(inverted, FPS, centres)["d_prime"]["0"] < 0


def test_no_bilabials_gives_null_not_nan():
    centres = _centres("s a t a k a")
    result = lip_contrast(_opening(centres, 0), FPS, centres)
    assert result["best_lag"] is None and result["best_d_prime"] is None
    assert all(v is None for v in result["d_prime"].values())
    json.loads(json.dumps(result, allow_nan=False))  # valid JSON
