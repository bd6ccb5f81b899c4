"""End-to-end render speed of a trained avatar of either kind: `python benchmarks/render_avatar.py [AVATAR_DIR]`.

Per frame: motion code and head pose in, the model's render (Gaussian: expression field, fused deformation,
rasterisation; NeRF: ray marching through the occupancy grids, field evaluation, compositing) over the
background plate and conversion to 8-bit RGB out, at 512 x 512 (and at the avatar's own resolution).
Without AVATAR_DIR, an avatar is fitted quickly on the built-in sample first (few steps, the default
recipe's Gaussian budget). Prints one JSON object with `fps_512` (and `fps_512_blocks`, the rate of each ten
frames: how steady the machine was), the model kind, its size on disk and, for NeRF avatars, the forward FLOPs per
sample of each field.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def quick_avatar(workdir: Path) -> Path:
    video = workdir / "sample.mp4"
    out = workdir / "avatar"
    subprocess.run([sys.executable, "-m", "avatar", "sample", "--out", str(video), "--size", "512", "--seconds", "8"], check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "avatar", "fit", str(video), "--out", str(out), "--recipe", "gaussian",
                    "--train.iterations", "300", "--train.resolution", "256"], check=True, capture_output=True)
    return out


def measure(folder: Path, size: int, device, frames: int = 100) -> dict:
    """Frames per second at size x size, and of each block of 10 frames (how steady the machine was); a slow kind
    (over 0.2 s a frame) is timed on 30 frames."""
    from avatar.data.avatar_data import AvatarData
    from avatar.folder import AvatarFolder
    from avatar.model.store import WEIGHTS, load_trained
    from avatar.render.audio_render import parse_background
    from avatar.render.frames import FrameRenderer, to_uint8

    avatar_folder = AvatarFolder(folder)
    trained = load_trained(avatar_folder, device)
    data = AvatarData(avatar_folder, 0, basis=trained.basis, device=device)
    renderer = FrameRenderer(trained.model, data.camera.resized(size, size), parse_background("plate", trained.plate(data.background), size)[0])
    ids = [int(data.train_ids[i % len(data.train_ids)]) for i in range(frames)]
    warm = time.perf_counter()
    for i in ids[:5]:
        to_uint8(renderer.render(data.motion[i], data.head_pose[i], torso=data.torso[i]))
    if time.perf_counter() - warm > 1.0:
        ids = ids[:30]
    timings: dict[str, float] = {}
    ends = [time.perf_counter()]
    for i in ids:
        rendered = renderer.render_full(data.motion[i], data.head_pose[i], torso=data.torso[i])
        to_uint8(rendered.image.clamp(0, 1))
        for name, ms in rendered.timings.items():
            timings[name] = timings.get(name, 0.0) + ms / len(ids)
        ends.append(time.perf_counter())
    seconds = (ends[-1] - ends[0]) / len(ids)
    blocks = [round(10 / (ends[k + 10] - ends[k]), 2) for k in range(0, len(ids) - 9, 10)]
    model = trained.model
    out = {"fps": round(1 / seconds, 2), "fps_blocks": blocks, "ms_per_frame": round(seconds * 1000, 2),
           "sizes": model.sizes(), "kind": model.kind,
           "bytes_on_disk": (avatar_folder.model / WEIGHTS).stat().st_size,
           "model_ms": {name: round(ms, 1) for name, ms in timings.items()}}
    if hasattr(model, "flops_per_sample"):
        out["flops_per_sample"] = model.flops_per_sample()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("avatar", nargs="?", type=Path, help="a trained avatar folder")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    from avatar.device import resolve_device

    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory(prefix="avatar-bench-") as tmp:
        folder = args.avatar or quick_avatar(Path(tmp))
        at_512 = measure(folder, 512, device)
        own = json.loads((folder / "model" / "config.json").read_text())["info"]["resolution"]
        result = {
            "avatar": str(args.avatar) if args.avatar else "built-in sample, quick fit",
            "fps_512": at_512["fps"],
            "fps_512_blocks": at_512["fps_blocks"],
            "ms_per_frame_512": at_512["ms_per_frame"],
            **{k: at_512[k] for k in ("kind", "sizes", "bytes_on_disk", "flops_per_sample", "model_ms") if k in at_512},
            "device": str(device),
            "threads": os.cpu_count(),
        }
        if own != 512:  # and at the avatar's own resolution
            result[f"fps_{own}"] = measure(folder, own, device)["fps"]
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
