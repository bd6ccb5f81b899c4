"""Motion: the per-frame code that drives the avatar (and, later, how audio produces it)."""
