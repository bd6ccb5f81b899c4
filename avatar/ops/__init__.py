"""Differentiable compute kernels: Gaussian rasterisation, hash-grid triplane encoding, fused Gaussian
deformation, volume rendering (ray marching through an occupancy grid, compositing, volume lookups) and the NeRF
fields' layers (fused for rendering).

Each op is a public function with its shapes documented, backed by the compiled kernels of
`cuda_ext/` (built on first use, never at import) and by a pure-torch twin it is tested against.
See :mod:`avatar.ops._backend` for how the implementation is chosen.
"""
from avatar.ops._backend import BACKENDS, get_default_backend, set_default_backend
from avatar.ops.deform import DeformedGaussians, deform_gaussians
from avatar.ops.field_mlp import FieldLayers, field_mlp
from avatar.ops.hash_triplane import HashTriplaneSpec, hash_triplane_encode
from avatar.ops.rasterize import RasterOutput, blend_gaussians, project_gaussians, rasterize_gaussians
from avatar.ops.volume import Composite, PartSamples, RaySamples, composite, lookup_volume, march_parts, march_rays

__all__ = [
    "BACKENDS",
    "Composite",
    "DeformedGaussians",
    "FieldLayers",
    "HashTriplaneSpec",
    "PartSamples",
    "RasterOutput",
    "RaySamples",
    "backend_report",
    "blend_gaussians",
    "composite",
    "deform_gaussians",
    "field_mlp",
    "get_default_backend",
    "hash_triplane_encode",
    "lookup_volume",
    "march_parts",
    "march_rays",
    "project_gaussians",
    "rasterize_gaussians",
    "set_default_backend",
]


def backend_report() -> dict[str, str]:
    """Op name -> the backend its calls use by default on this machine. Compiles nothing."""
    import torch

    from avatar.ops import _backend, _extension

    default = get_default_backend()
    ops = ("rasterize_gaussians", "hash_triplane_encode", "deform_gaussians", "march_rays", "march_parts", "composite",
           "lookup_volume", "field_mlp")
    if default == "torch":
        return {op: "torch reference (selected by AVATAR_OPS_BACKEND / set_default_backend)" for op in ops}
    status = _extension.status()
    if status.startswith("prebuilt"):
        cpu = "cpu extension (prebuilt)"
    elif status.startswith("built"):
        cpu = "cpu extension (built)"
    elif status.startswith("not built"):
        cpu = "cpu extension (not built yet; builds on first use)"
    elif "no C++ compiler" in status:
        cpu = "torch reference (no compiler)"
    else:
        cpu = f"torch reference ({status})"
    if torch.cuda.is_available() and default in ("auto", "cuda"):
        cuda = cpu.replace("cpu extension", "cuda extension") if "extension" in cpu else cpu
        raster = "gsplat CUDA" if _backend.gsplat_available() else "torch reference (gsplat not installed)"
        return {"rasterize_gaussians": raster, **{op: cuda for op in ops[1:]}}
    return {op: cpu for op in ops}
