"""The learned mouth prior: the shipped file, the nets' look-ahead, the training script end to end."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from avatar.errors import AvatarError
from avatar.motion.context_net import CONTEXT, LIVE_FUTURE, OFFLINE_FUTURE, ContextNet
from avatar.motion.learned_prior import PRIOR_FILE, PRIOR_META, checksum, load_prior

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_prior_loads_and_its_checksum_is_checked(tmp_path):
    from safetensors.torch import load_file

    meta = json.loads(PRIOR_META.read_text())
    assert checksum(PRIOR_FILE) == meta["sha256"]
    assert {k.split(".")[0] for k in load_file(str(PRIOR_FILE))} == {"offline", "live"}
    prior = load_prior()
    assert prior.nets["offline"].future == OFFLINE_FUTURE and prior.nets["live"].future == LIVE_FUTURE
    damaged = tmp_path / "prior.safetensors"
    data = bytearray(PRIOR_FILE.read_bytes())
    data[-1] ^= 0xFF
    damaged.write_bytes(bytes(data))
    shutil.copy(PRIOR_META, tmp_path / "prior.json")
    with pytest.raises(AvatarError, match="checksum"):
        load_prior(damaged, tmp_path / "prior.json")


@pytest.mark.parametrize("future", [OFFLINE_FUTURE, LIVE_FUTURE, 0])
def test_the_look_ahead_is_what_it_says(future):
    torch.manual_seed(0)
    net = ContextNet(5, 3, future, width=8, dropout=0.0)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.3)  # the last layer starts at zero: give it weights to see through
    x = torch.randn(1, 60, 5)
    t = 30
    base = net(x)[0, t]

    def moved(frame: int) -> bool:
        y = x.clone()
        y[0, frame] += 1.0
        return bool((net(y)[0, t] - base).abs().max() > 1e-6)
    assert moved(t + future) and not moved(t + future + 1)
    assert moved(t - (CONTEXT - future)) and not moved(t - (CONTEXT - future) - 1)


def test_a_bad_look_ahead_is_refused():
    with pytest.raises(ValueError, match="look-ahead"):
        ContextNet(5, 3, CONTEXT + 1)


def test_the_training_script_runs_end_to_end(sample_video, sample_avatar, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(sample_avatar.root, work / sample_video.stem, ignore=shutil.ignore_patterns("model", "eval"))
    out = tmp_path / "prior.safetensors"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_prior.py"), str(sample_video), "--work", str(work),
                          "--steps", "60", "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert report["videos"] == [sample_video.name] and report["offline"]["future_frames"] == OFFLINE_FUTURE
    prior = load_prior(out, out.with_suffix(".json"))
    inputs = np.random.default_rng(0).random((40, prior.nets["offline"].sizes[0]), dtype=np.float32)
    mouth = inputs[:, :6]
    channels = prior.channels(inputs, mouth, 25.0, np.ones(40, np.float32))
    assert channels.shape == (40, 6) and np.isfinite(channels).all()
    np.testing.assert_allclose(prior.channels(inputs, mouth, 25.0, np.zeros(40, np.float32)), mouth)  # silent: the curves
