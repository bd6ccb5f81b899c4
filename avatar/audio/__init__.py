"""Audio in: reading any speech file and turning it into per-video-frame features."""

SAMPLE_RATE = 16000
"""Rate (Hz) of every audio track the avatar works with: the extracted soundtrack and the features' input
(the phoneme recogniser's rate)."""
