"""From IPA phonemes to visemes (mouth shapes), for any language the phoneme recogniser knows.

Each of the recogniser's tokens is reduced to the base letter that decides the mouth shape: the vowel of
a glide + vowel token (ja, wa), the first vowel of a diphthong (aɪ), the second half of an affricate
(t͡ʃ), the consonant itself otherwise. Diacritics, length marks, tones and punctuation say nothing about
the lips and map to no viseme.
"""
from __future__ import annotations

import unicodedata

import numpy as np

VISEMES = ("PP", "FF", "TH", "DD", "KK", "CH", "SS", "RR", "AA", "EE", "II", "OO", "UU")
"""Bilabial closure, labiodental, dental, alveolar, velar/glottal, post-alveolar, sibilant, r-coloured,
open, mid, close-spread, mid-rounded and close-rounded."""

_BY_LETTER = {
    **dict.fromkeys("pbmɓʙɸβ", "PP"),
    **dict.fromkeys("fvɱʋ", "FF"),
    **dict.fromkeys("θð", "TH"),
    **dict.fromkeys("tdnlɾɫɗɖʈɮɲʎñ", "DD"),
    **dict.fromkeys("kgɡŋxɣqʔhɦχʁɰɴcɟħ", "KK"),
    **dict.fromkeys("ʃʒɕʑʂʐçʝ", "CH"),
    **dict.fromkeys("szẑ", "SS"),
    **dict.fromkeys("ɹrɻʀɽɚɝ", "RR"),
    **dict.fromkeys("aɑæʌɐäàãå", "AA"),
    **dict.fromkeys("eɛəɜẽɘᵊɤ", "EE"),
    **dict.fromkeys("iɪĩìǐɨjɯ", "II"),
    **dict.fromkeys("oɔɵøœõɒ", "OO"),
    **dict.fromkeys("uʊʉyʏũwɥ", "UU"),
}
_VOWELS = set("aɑæʌɐäàãåeɛəɜẽɘᵊɤiɪĩìǐɨɯoɔɵøœõɒuʊʉyʏũɚɝ")
_GLIDES = set("jwɥ")

# Mouth targets on the six channels the prior drives, in [0, 1] of each channel's range:
#   jaw open, lip closure, funnel, pucker, stretch, roll (lips in).
CHANNELS = ("jaw_open", "lip_close", "funnel", "pucker", "stretch", "roll")
TARGETS = {
    "PP": (0.00, 1.00, 0.00, 0.10, 0.00, 0.35),
    "FF": (0.08, 0.30, 0.00, 0.00, 0.10, 0.80),
    "TH": (0.25, 0.00, 0.00, 0.00, 0.20, 0.00),
    "DD": (0.28, 0.00, 0.00, 0.00, 0.25, 0.00),
    "KK": (0.35, 0.00, 0.00, 0.00, 0.10, 0.00),
    "CH": (0.22, 0.00, 0.60, 0.35, 0.00, 0.00),
    "SS": (0.12, 0.00, 0.00, 0.00, 0.55, 0.00),
    "RR": (0.25, 0.00, 0.40, 0.45, 0.00, 0.00),
    "AA": (1.00, 0.00, 0.00, 0.00, 0.10, 0.00),
    "EE": (0.55, 0.00, 0.00, 0.00, 0.50, 0.00),
    "II": (0.22, 0.00, 0.00, 0.00, 0.85, 0.00),
    "OO": (0.60, 0.00, 0.80, 0.35, 0.00, 0.00),
    "UU": (0.22, 0.00, 0.50, 1.00, 0.00, 0.00),
}
SILENCE = (0.0, 0.15, 0.0, 0.0, 0.0, 0.0)
"""The mouth at rest: closed, lips touching lightly."""

# Coarticulation: how strongly a viseme holds the mouth (dominance) and how far before and after its
# centre it reaches (seconds). Lip closures and labiodentals must be reached; alveolars and velars leave
# the lips to their neighbours.
DOMINANCE = {"PP": 8.0, "FF": 5.0, "TH": 2.0, "DD": 0.6, "KK": 0.6, "CH": 3.0, "SS": 1.5, "RR": 2.0,
             "AA": 2.5, "EE": 2.0, "II": 2.0, "OO": 3.0, "UU": 3.5}
REACH_BEFORE_S = {v: (0.12 if v in ("PP", "FF", "OO", "UU", "CH") else 0.09) for v in VISEMES}
REACH_AFTER_S = {v: 0.07 for v in VISEMES}


def _base_letters(token: str) -> list[str]:
    decomposed = unicodedata.normalize("NFC", token)
    return [c for c in decomposed if unicodedata.category(c) in ("Ll", "Lo", "Lu", "Lm") and c not in "ʰʲʷˀːˑ˞ˤ"]


def token_viseme(token: str) -> str | None:
    """The viseme of one recogniser token, or None for tokens that say nothing about the lips."""
    if token.startswith("<") or not token.strip():
        return None
    if "͡" in token:  # affricate: the release shapes the lips
        token = token.split("͡")[-1]
    letters = [c for c in _base_letters(token) if c in _BY_LETTER]
    if not letters:
        return None
    if len(letters) > 1 and letters[0] in _GLIDES and letters[1] in _VOWELS:
        return _BY_LETTER[letters[1]]
    vowels = [c for c in letters if c in _VOWELS]
    return _BY_LETTER[vowels[0] if vowels else letters[0]]


def viseme_matrix(tokens: list[str]) -> np.ndarray:
    """[len(tokens), len(VISEMES)] 0/1 map from posteriorgram columns to visemes."""
    out = np.zeros((len(tokens), len(VISEMES)), np.float32)
    for i, token in enumerate(tokens):
        v = token_viseme(token)
        if v is not None:
            out[i, VISEMES.index(v)] = 1.0
    return out


def target_matrix() -> np.ndarray:
    """[len(VISEMES), len(CHANNELS)] mouth target of each viseme."""
    return np.array([TARGETS[v] for v in VISEMES], np.float32)
