"""Audio in: reading any speech file and turning it into per-video-frame features."""
