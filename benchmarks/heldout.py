"""A quick held-out figure for an avatar of either kind: `python benchmarks/heldout.py AVATAR_DIR [--every 12]`.

Renders every k-th held-out frame at the avatar's own resolution with the frames' tracked motion, head pose and
torso signal over the plate (as `avatar eval` does, nothing pasted) and prints one JSON object: mean full-frame
PSNR against the real frames, seconds per frame and the frames used. `avatar eval` scores every held-out frame
and region; at a second or more a NeRF frame on a CPU this is the figure to compare fits and render settings by.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from avatar.data.avatar_data import AvatarData
    from avatar.device import resolve_device
    from avatar.folder import AvatarFolder
    from avatar.model.store import load_trained
    from avatar.render.frames import FrameRenderer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("avatar", type=Path)
    parser.add_argument("--every", type=int, default=12)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    device = resolve_device(args.device)
    folder = AvatarFolder(args.avatar)
    trained = load_trained(folder, device)
    data = AvatarData(folder, 0, basis=trained.basis, device=device)
    renderer = FrameRenderer(trained.model, data.camera, trained.plate(data.background))
    ids = [int(i) for i in data.test_ids[::args.every]]
    psnr, seconds = [], 0.0
    for i in ids:
        start = time.perf_counter()
        image = renderer.render(data.motion[i], data.head_pose[i], torso=data.torso[i])
        seconds += time.perf_counter() - start
        error = float(((image - data.frame(i).image.to(device)) ** 2).mean())
        psnr.append(-10 * np.log10(error))
    print(json.dumps({"avatar": str(args.avatar), "kind": trained.model.kind, "frames": ids,
                      "psnr": round(float(np.mean(psnr)), 3), "seconds_per_frame": round(seconds / len(ids), 3),
                      "resolution": data.resolution, "device": str(device)}, indent=2))


if __name__ == "__main__":
    main()
