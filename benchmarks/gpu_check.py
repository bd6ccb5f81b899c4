"""The one short check for a CUDA machine: `PYTHONPATH=. python3 benchmarks/gpu_check.py [--avatar DIR]`.

1. CPU-vs-CUDA parity of every op, forward and gradients, on random inputs, with the tolerances of the CPU
   tests (project/blend/rasterize through gsplat where installed, hash-grid triplane, fused deformation,
   the NeRF kind's ray marching and compositing).
2. With `--avatar DIR` (an already preprocessed avatar folder, e.g. of the built-in sample): `--steps`
   training steps of the Gaussian avatar on CUDA, then rendering at 512x512; then a tenth as many steps of
   a NeRF avatar (the nerf-preview recipe) and one 512x512 frame of it.

Prints one JSON object (per-op max errors and whether each is within tolerance, seconds per step, render
FPS). Without CUDA it prints {"cuda": false, "reason": ...} and exits 0. It needs only torch, numpy,
OpenCV, safetensors and ninja (gsplat when present): nothing here imports the media or tracking packages.

`--dry-run` runs the same script on a machine without CUDA, with the torch reference on the CPU standing in
for the CUDA side and small inputs (a test runs it, so the script is known to work before a GPU is lent).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
FWD_ATOL, GRAD_RTOL = 2e-5, 2e-4  # tests/ops/test_rasterize.py
HASH_FWD = (1e-6, 1e-5)  # tests/ops/test_hash_triplane.py (atol, rtol); gradients: scaled 1e-5 tables, 1e-4 points
DEFORM_FWD = (1e-6, 1e-5)  # tests/ops/test_deform.py; gradients scaled 1e-5


class Target:
    """The side compared with the CPU kernels: CUDA, or (dry run) the torch reference on the CPU."""

    device = torch.device("cuda")
    backend: str | None = None  # None: each op's automatic choice for the device
    scale = 1  # input sizes are divided by this in a dry run

    @classmethod
    def sync(cls) -> None:
        if cls.device.type == "cuda":
            torch.cuda.synchronize()

    @classmethod
    @contextlib.contextmanager
    def ops(cls):
        from avatar.ops import get_default_backend, set_default_backend

        before = get_default_backend()
        set_default_backend(cls.backend or before)
        try:
            yield
        finally:
            set_default_backend(before)


def scaled_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |a - e| / max |e|: the measure the CPU tests bound gradients with."""
    a, e = actual.detach().double().cpu(), expected.detach().double().cpu()
    if e.numel() == 0:
        return 0.0
    return float((a - e).abs().max() / max(float(e.abs().max()), 1e-6))


def abs_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    a, e = actual.detach().double().cpu(), expected.detach().double().cpu()
    return float((a - e).abs().max()) if e.numel() else 0.0


def close(actual, expected, atol: float, rtol: float) -> bool:
    a, e = actual.detach().double().cpu(), expected.detach().double().cpu()
    return bool(((a - e).abs() <= atol + rtol * e.abs()).all())


def run_both(fn, inputs: list[torch.Tensor], weights_like) -> tuple[dict, dict]:
    """fn on CPU copies and on CUDA copies of `inputs` (leaves), then backward of a fixed random weighting
    of every output; returns ({"out": [...], "grad": [...]}, same for CUDA)."""
    results = []
    for device, backend in ((torch.device("cpu"), contextlib.nullcontext()), (Target.device, Target.ops())):
        with backend:
            leaves = [t.detach().to(device).requires_grad_(t.is_floating_point()) for t in inputs]
            outputs = [o for o in fn(*leaves) if torch.is_tensor(o) and o.is_floating_point()]
            weights = weights_like(outputs)
            loss = sum((o * w.to(device)).sum() for o, w in zip(outputs, weights))
            loss.backward()
        results.append({"out": [o.detach().cpu() for o in outputs],
                        "grad": [t.grad.cpu() if t.grad is not None else torch.zeros_like(t).cpu() for t in leaves]})
    return results[0], results[1]


def fixed_weights(seed: int):
    def make(outputs):
        g = torch.Generator().manual_seed(seed)
        return [torch.rand(o.shape, generator=g) for o in outputs]
    return make


def scene(n: int, seed: int):
    """Gaussians around the origin seen from z = -2.5 (as tests/ops/ops_helpers.py draws them)."""
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g) - 0.5) * 1.2
    quats = torch.randn(n, 4, generator=g)
    log_scales = -4.5 + 2.5 * torch.rand(n, 3, generator=g)
    logits = torch.randn(n, generator=g) * 1.5
    colors = torch.rand(n, 3, generator=g)
    viewmat = torch.eye(4)
    viewmat[:3, 3] = torch.tensor([0.05, -0.03, 2.5])
    K = torch.tensor([[115.2, 0.0, 66.6], [0.0, 121.0, 45.1], [0.0, 0.0, 1.0]])
    return means, quats, log_scales, logits, colors, viewmat, K


def check_rasterize(report: dict) -> None:
    from avatar.ops import _backend, rasterize_gaussians

    width, height = 128, 96
    means, quats, log_scales, logits, colors, viewmat, K = scene(3000 // Target.scale, 1)

    def fn(m, q, s, o, c):
        out = rasterize_gaussians(m, q, s, o, c, viewmat.to(m.device), K.to(m.device), width, height)
        return out.image, out.alpha

    cpu, cuda = run_both(fn, [means, quats, log_scales, logits, colors], fixed_weights(2))
    fwd = max(abs_error(a, b) for a, b in zip(cuda["out"], cpu["out"]))
    grads = {name: scaled_error(a, b) for name, a, b in zip(("means", "quats", "log_scales", "opacity_logits", "colors"),
                                                             cuda["grad"], cpu["grad"])}
    gsplat = Target.device.type == "cuda" and Target.backend is None and _backend.gsplat_available()
    report["rasterize_gaussians"] = {
        "backend": "gsplat" if gsplat else "torch reference",
        "forward_max_abs": fwd, "forward_ok": fwd <= FWD_ATOL,
        "grad_max_scaled": grads, "grad_ok": all(v <= GRAD_RTOL for v in grads.values()),
    }


def check_hash_triplane(report: dict) -> None:
    from avatar.ops import HashTriplaneSpec, hash_triplane_encode

    spec = HashTriplaneSpec(levels=8, features_per_level=2, log2_table_size=12, base_resolution=8, growth_factor=1.5)
    g = torch.Generator().manual_seed(3)
    box_min, box_max = (-1.0, -1.0, -1.0), (1.0, 1.0, 1.0)
    points = torch.rand(20000 // Target.scale, 3, generator=g) * 2 - 1
    tables = spec.init_tables(scale=0.1, generator=g)

    def fn(p, t):
        return (hash_triplane_encode(p, t, spec.resolutions(), box_min, box_max),)

    cpu, cuda = run_both(fn, [points, tables], fixed_weights(4))
    report["hash_triplane_encode"] = {
        "forward_max_abs": abs_error(cuda["out"][0], cpu["out"][0]),
        "forward_ok": close(cuda["out"][0], cpu["out"][0], *HASH_FWD),
        "grad_max_scaled": {"points": scaled_error(cuda["grad"][0], cpu["grad"][0]),
                            "tables": scaled_error(cuda["grad"][1], cpu["grad"][1])},
    }
    grads = report["hash_triplane_encode"]["grad_max_scaled"]
    report["hash_triplane_encode"]["grad_ok"] = grads["points"] <= 1e-4 and grads["tables"] <= 1e-5


def check_deform(report: dict) -> None:
    from avatar.geometry import rotvec_to_matrix
    from avatar.ops import deform_gaussians

    g = torch.Generator().manual_seed(5)
    n = 20000 // Target.scale
    inputs = [torch.randn(n, 3, generator=g), torch.randn(n, 4, generator=g), torch.randn(n, 3, generator=g) * 0.3,
              torch.randn(n, 3, generator=g) * 0.1, torch.randn(n, 4, generator=g) * 0.1 + torch.tensor([1.0, 0, 0, 0]),
              torch.randn(n, 3, generator=g) * 0.05, torch.randn(3, generator=g) * 0.4, torch.randn(3, generator=g)]

    def fn(means, quats, log_scales, d_means, d_quats, d_log_scales, rotvec, translation):
        out = deform_gaussians(means, quats, log_scales, d_means, d_quats, d_log_scales, rotvec_to_matrix(rotvec), translation)
        return out.means, out.quats, out.log_scales

    cpu, cuda = run_both(fn, inputs, fixed_weights(6))
    names = ("means", "quats", "log_scales", "d_means", "d_quats", "d_log_scales", "rotation", "translation")
    grads = {name: scaled_error(a, b) for name, a, b in zip(names, cuda["grad"], cpu["grad"])}
    report["deform_gaussians"] = {
        "forward_max_abs": max(abs_error(a, b) for a, b in zip(cuda["out"], cpu["out"])),
        "forward_ok": all(close(a, b, *DEFORM_FWD) for a, b in zip(cuda["out"], cpu["out"])),
        "grad_max_scaled": grads, "grad_ok": all(v <= 1e-5 for v in grads.values()),
    }


def check_volume(report: dict) -> None:
    """march_rays and march_parts (exact sample sets), composite (forward and gradients of colour, opacity and
    weights), lookup_volume and the fused field layers (field_mlp) on CUDA against the CPU kernels."""
    from avatar.ops import FieldLayers, composite, field_mlp, lookup_volume, march_parts, march_rays

    g = torch.Generator().manual_seed(7)
    n = 4000 // Target.scale
    origins = torch.randn(n, 3, generator=g) * 0.4 + torch.tensor([0.0, 0.0, -3.0])
    dirs = (torch.rand(n, 3, generator=g) - 0.5) * 3.0 - origins
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    grid = torch.rand(24, 24, 24, generator=g) < 0.5
    box = ((-1.0, -0.8, -1.2), (1.0, 0.9, 1.1))
    samples = []
    for device, backend in ((torch.device("cpu"), contextlib.nullcontext()), (Target.device, Target.ops())):
        with backend:
            samples.append(march_rays(origins.to(device), dirs.to(device), grid.to(device), *box, 0.03, near=0.5))
    cpu, cuda = samples
    same_pack = torch.equal(cpu.offsets, cuda.offsets.cpu()) and torch.equal(cpu.ray_ids, cuda.ray_ids.cpu())
    t_error = abs_error(cuda.t_begin, cpu.t_begin) if same_pack else float("inf")
    # Two parts (the second sees the rays turned and shifted, through a grid of another size), four samples a ray.
    turn = torch.linalg.matrix_exp(torch.tensor([[0.0, -0.3, 0.2], [0.3, 0.0, -0.1], [-0.2, 0.1, 0.0]]))
    part_rays = (torch.stack([origins, (origins - 0.1) @ turn]), torch.stack([dirs, dirs @ turn]))
    part_grids = [grid, torch.rand(17, 17, 17, generator=g) < 0.4]
    both = []
    for device, backend in ((torch.device("cpu"), contextlib.nullcontext()), (Target.device, Target.ops())):
        with backend:
            both.append(march_parts(*(t.to(device) for t in part_rays), [m.to(device) for m in part_grids], [box, box], 0.03,
                                    near=0.5, max_samples=4))
    same_parts = all(torch.equal(getattr(both[0], name), getattr(both[1], name).cpu()) for name in ("offsets", "ray_ids", "parts"))
    parts_error = max(abs_error(getattr(both[1], name), getattr(both[0], name)) for name in ("t_begin", "points", "t_next")) \
        if same_parts else float("inf")
    offsets = cpu.offsets
    s = len(cpu.ray_ids)
    sigma, color = torch.rand(s, generator=g) * 3, torch.rand(s, 4, generator=g)
    delta = cpu.t_end - cpu.t_begin

    def fn(sigma, color):
        out = composite(offsets.to(sigma.device), sigma, delta.to(sigma.device), color)
        return out.color, out.opacity, out.weights  # the weights carry gradients too (the distortion loss)

    a, b = run_both(fn, [sigma, color], fixed_weights(8))
    grads = {name: scaled_error(x, y) for name, x, y in zip(("sigma", "color"), b["grad"], a["grad"])}
    volume, points = torch.randn(3, 20, 20, 20, generator=g), torch.rand(n, 3, generator=g) * 2.4 - 1.2
    with torch.no_grad(), Target.ops():
        looked_up = lookup_volume(volume.to(Target.device), points.to(Target.device), *box)
    lookup_error = abs_error(looked_up, lookup_volume(volume, points, *box))
    # The head field's layers: 60 features, 48 wide, three gated region vectors.
    features = torch.randn(n, 60, generator=g)
    layers = FieldLayers(*(torch.randn(*shape, generator=g) * 0.3 for shape in
                           ((51, 60), (51,), (3, 48), (48, 48), (48,), (4, 48), (4,))))
    with torch.no_grad(), Target.ops():
        on_device = field_mlp(features.to(Target.device), FieldLayers(*(t.to(Target.device) for t in layers)), -2.0)
    field_error = max(abs_error(x, y) for x, y in zip(on_device, field_mlp(features, layers, -2.0)))
    report["volume"] = {
        "samples": s, "same_samples": same_pack, "t_max_abs": t_error,
        "parts_samples": len(both[0].ray_ids), "parts_same_samples": same_parts, "parts_max_abs": parts_error,
        "forward_max_abs": max(abs_error(x, y) for x, y in zip(b["out"], a["out"])),
        "lookup_max_abs": lookup_error, "field_mlp_max_abs": field_error,
        "forward_ok": same_pack and t_error <= 1e-5 and same_parts and parts_error <= 1e-5 and lookup_error <= 1e-5
        and field_error <= 1e-4
        and all(close(x, y, 1e-5, 1e-4) for x, y in zip(b["out"], a["out"])),
        "grad_max_scaled": grads, "grad_ok": all(v <= 1e-4 for v in grads.values()),
    }


def check_nerf(folder: Path, steps: int, report: dict) -> None:
    from avatar.config import load_config
    from avatar.data.avatar_data import AvatarData
    from avatar.folder import AvatarFolder
    from avatar.model.nerf_avatar import NerfAvatar
    from avatar.train.fit import AvatarFit

    device = Target.device
    cfg = load_config("nerf-preview")
    cfg.train.iterations = steps
    if Target.scale > 1:
        cfg.model.hash_levels, cfg.model.hash_log2_table, cfg.model.nerf_grid = 6, 12, 24
        cfg.train.resolution = 128
    data = AvatarData(AvatarFolder(folder), cfg.train.resolution, device=device)
    model = NerfAvatar.build(data, cfg.model, 0, device)
    task = AvatarFit(data, model, cfg.train, cfg.model)
    times, psnr = [], []
    for step in range(steps):
        Target.sync()
        start = time.perf_counter()
        psnr.append(task.train_step(step)["psnr"])
        Target.sync()
        times.append(time.perf_counter() - start)
    i = int(data.train_ids[0])
    camera = data.camera.resized(512 // Target.scale, 512 // Target.scale)
    Target.sync()
    start = time.perf_counter()
    with torch.no_grad():
        image = model.render(data.motion[i], data.head_pose[i], camera, torch.full((3,), 0.5, device=device),
                             torso=data.torso[i], prepared=model.prepare()).image
    Target.sync()
    report["nerf"] = {
        "steps": steps, "seconds_per_step_median": round(sorted(times)[len(times) // 2], 5),
        "psnr_first_5": round(sum(psnr[:5]) / 5, 2), "psnr_last_5": round(sum(psnr[-5:]) / 5, 2),
        "loss_finite": all(math.isfinite(p) for p in psnr),
        "all_parameters_on_device": all(p.device.type == device.type for p in model.parameters()),
        "render_512_seconds": round(time.perf_counter() - start, 3), "image_finite": bool(torch.isfinite(image).all()),
    }


def check_training(folder: Path, steps: int, report: dict) -> None:
    from avatar.camera import Camera
    from avatar.config import AvatarConfig
    from avatar.data.avatar_data import AvatarData
    from avatar.folder import AvatarFolder
    from avatar.model.registry import model_class
    from avatar.render.frames import FrameRenderer
    from avatar.train.fit import AvatarFit

    device = Target.device
    cfg = AvatarConfig()
    cfg.train.iterations = steps
    if Target.scale > 1:
        cfg.model.head_gaussians, cfg.model.torso_gaussians = 3000, 1000
    data = AvatarData(AvatarFolder(folder), 0, device=device, expression_components=cfg.model.expression_components)
    model = model_class(cfg.model.kind).build(data, cfg.model, cfg.train.seed, device)
    task = AvatarFit(data, model, cfg.train, cfg.model)
    times, psnr = [], []
    for step in range(steps):
        Target.sync()
        start = time.perf_counter()
        scalars = task.train_step(step)
        Target.sync()
        times.append(time.perf_counter() - start)
        psnr.append(scalars["psnr"])
    on_device = all(p.device == device for p in model.parameters())
    report["training"] = {
        "steps": steps, "seconds_per_step_median": round(sorted(times)[len(times) // 2], 5),
        "first_step_seconds": round(times[0], 3), "psnr_first_10": round(sum(psnr[:10]) / 10, 2),
        "psnr_last_10": round(sum(psnr[-10:]) / 10, 2), "sizes": model.sizes(), "all_parameters_on_device": on_device,
        "loss_finite": all(math.isfinite(p) for p in psnr),
    }
    model.eval()
    camera = Camera.of_video(data.intrinsics, data.resolution, data.resolution).resized(512, 512)
    renderer = FrameRenderer(model, camera, torch.full((3,), 0.5, device=device))
    ids = [int(data.train_ids[i % len(data.train_ids)]) for i in range(60 // Target.scale)]
    for i in ids[:5]:
        renderer.render(data.motion[i], data.head_pose[i])
    Target.sync()
    start = time.perf_counter()
    for i in ids:
        image = renderer.render(data.motion[i], data.head_pose[i])
        image.cpu()
    Target.sync()
    report["render_512"] = {"fps": round(len(ids) / (time.perf_counter() - start), 1), "frames": len(ids),
                            "mean_value": round(float(image.mean()), 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--avatar", type=Path, help="a preprocessed avatar folder to train on for a few steps")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--dry-run", action="store_true", help="no GPU: the torch reference on the CPU plays the CUDA side")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.dry_run:
        Target.device, Target.backend, Target.scale = torch.device("cpu"), "torch", 10
    elif not torch.cuda.is_available():
        reason = f"torch {torch.__version__} is a CPU build" if torch.version.cuda is None else "torch finds no CUDA GPU"
        print(json.dumps({"cuda": False, "reason": reason, "torch": torch.__version__}))
        return 0
    from avatar.ops import _extension

    report = {"cuda": not args.dry_run, "dry_run": args.dry_run, "torch": torch.__version__,
              "cuda_version": torch.version.cuda,
              "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    start = time.perf_counter()
    _extension.load()
    report["extension"] = {"status": _extension.status(), "with_cuda": bool(getattr(_extension.load(), "with_cuda", False)),
                           "load_seconds": round(time.perf_counter() - start, 1)}
    checks = [("rasterize_gaussians", check_rasterize), ("hash_triplane_encode", check_hash_triplane),
              ("deform_gaussians", check_deform), ("volume", check_volume)]
    for name, check in checks:
        try:
            check(report)
        except Exception as exc:  # report every op, even when one fails
            report[name] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc(limit=4)}
    if args.avatar is not None:
        try:
            check_training(args.avatar, args.steps, report)
        except Exception as exc:
            report["training"] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc(limit=6)}
        try:
            check_nerf(args.avatar, max(5, args.steps // 10), report)
        except Exception as exc:
            report["nerf"] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc(limit=6)}
    report["all_ops_ok"] = all(report.get(name, {}).get("forward_ok") and report[name].get("grad_ok") for name, _ in checks)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
