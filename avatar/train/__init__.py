"""Training: data, losses, densification, checkpoints and the generic trainer."""
