"""Training any avatar kind: the generic trainer and its callbacks, the fit every kind shares (losses,
learning-rate schedule, pose corrections), checkpoints and resume."""
