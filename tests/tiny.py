"""A training config small enough for CPU tests."""
from avatar.config import load_config


def tiny_config(iterations: int = 120):
    """The preview recipe, shrunk so a CPU test trains in seconds."""
    cfg = load_config("preview")
    cfg.model.head_gaussians, cfg.model.torso_gaussians, cfg.model.max_gaussians = 3000, 1200, 6000
    cfg.model.hash_levels, cfg.model.hash_log2_table = 8, 12
    cfg.train.resolution = 128
    cfg.train.iterations = iterations
    cfg.train.densify_every = 50
    cfg.train.log_every = 20
    cfg.train.adapter_steps = 100
    return cfg
